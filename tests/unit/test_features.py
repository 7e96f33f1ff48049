"""The model's features on real reviews: scikit-learn's TF-IDF, the windows, the lexicon, the vocabulary's sample."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from reviews_model import features
from reviews_model.features import (
    FeatureConfig,
    fit_features,
    fit_vocabulary,
    ngrams_of,
    review_features,
    tfidf_matrix,
    window_counts,
)
from reviews_model.lexicon import valences
from tests.unit.test_trainer_core import real_etl_rows


def real_tokens(rows: int = 1_500) -> list[list[str]]:
    tokens: list[list[str]] = real_etl_rows().column("tokens").to_pylist()
    return tokens[:rows]


@pytest.mark.parametrize("ngram_max", [1, 2, 3])
def test_the_vectorised_tfidf_is_scikit_learns(ngram_max: int) -> None:
    # Given real reviews, among them reviews of no token and of one, and scikit-learn's TfidfVectorizer
    # with the same analyzer and settings
    tokens = real_tokens()
    tokens[10:10] = [[], ["great"], [], ["not", "great"]]
    reference = TfidfVectorizer(analyzer=ngrams_of(ngram_max), min_df=2, sublinear_tf=True, dtype=np.float32)
    expected = reference.fit_transform(tokens)
    # When the model fits its vocabulary and builds the rows
    config = FeatureConfig(ngram_max=ngram_max, min_df=2, max_features=10**7)
    vocabulary = fit_vocabulary(tokens, config, valences=valences())
    actual = tfidf_matrix(tokens, vocabulary)
    # Then the terms, the idf and every entry are scikit-learn's
    order = [reference.vocabulary_[term] for term in vocabulary.terms]
    assert sorted(reference.vocabulary_) == vocabulary.terms
    np.testing.assert_allclose(vocabulary.idf, reference.idf_[order], rtol=1e-6)
    np.testing.assert_allclose(actual.toarray(), expected[:, order].toarray(), rtol=1e-5, atol=1e-6)


def test_arrow_lists_and_python_lists_give_the_same_rows() -> None:
    table = real_etl_rows().slice(0, 500)
    tokens = table.column("tokens")
    vocabulary = fit_vocabulary(tokens, FeatureConfig(), valences=valences())
    assert (tfidf_matrix(tokens, vocabulary) != tfidf_matrix(tokens.to_pylist(), vocabulary)).nnz == 0


@pytest.mark.parametrize("ngram_max", [1, 2, 3])
def test_the_windows_are_the_first_and_last_tokens_ngrams(ngram_max: int) -> None:
    # Given real reviews (long and short ones, and empty ones) and a vocabulary over them
    tokens = real_tokens()
    tokens[3:3] = [[], ["fine"], []]
    config = FeatureConfig(ngram_max=ngram_max, head_window=8, tail_window=12)
    vocabulary = fit_vocabulary(tokens, config, valences=valences())
    # When the counts are taken per window
    counts = window_counts(tokens, vocabulary)
    # Then the head window counts exactly the n-grams of the first 8 tokens, the tail those of the last 12
    whole = FeatureConfig(ngram_max=ngram_max, head_window=0, tail_window=0)
    plain = type(vocabulary)(whole, vocabulary.terms, vocabulary.idf)
    assert (counts["head"] != window_counts([row[:8] for row in tokens], plain)["all"]).nnz == 0
    assert (counts["tail"] != window_counts([row[-12:] for row in tokens], plain)["all"]).nnz == 0
    assert any(len(row) < 8 for row in tokens) and any(len(row) > 40 for row in tokens)


def test_the_lexicon_reads_praise_complaints_and_negation() -> None:
    tokens = [
        ["great", "product", "love", "it"],
        ["terrible", "broke", "after", "a", "day"],
        ["not", "good", "at", "all"],
        ["good", "good", "value"],
        ["it", "is", "a", "box"],
    ] * 3
    vocabulary = fit_vocabulary(tokens, FeatureConfig(min_df=1), valences=valences())
    counts = [len(row) for row in tokens]
    features = review_features(tokens, counts, counts, vocabulary)
    positive, negative, total = features.dense[:5, 0], features.dense[:5, 1], features.dense[:5, 2]
    assert total[0] > 0 and total[3] > 0, "praise is positive"
    assert total[1] < 0, "a complaint is negative"
    assert total[2] < 0 and positive[2] == pytest.approx(0) and negative[2] < 0, "'not good' is negative"
    assert total[4] == 0 and features.dense[4, 3] == 0, "no lexicon word, no valence"


def test_the_vocabulary_is_chosen_on_a_sample_but_weighted_on_all() -> None:
    # Given more reviews than the sample the vocabulary is chosen on
    tokens = real_tokens(3_000)
    config = FeatureConfig(vocabulary_sample_rows=1_000)
    vocabulary = fit_vocabulary(tokens, config, valences=valences())
    everything = fit_vocabulary(tokens, FeatureConfig(), valences=valences())
    # Then its terms come from the sample (fewer than from all), the common ones are all there, and the idf
    # is counted on every review: a term's weight is the same as when fitted on everything
    assert 0 < len(vocabulary.terms) < len(everything.terms)
    common = set(everything.terms[column] for column in np.argsort(everything.idf)[:500])
    assert common <= set(vocabulary.terms)
    weights = dict(zip(everything.terms, everything.idf, strict=True))
    assert all(weights[term] == weight for term, weight in zip(vocabulary.terms, vocabulary.idf, strict=True))


def test_counting_in_batches_gives_the_same_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given real reviews, counted at once and then 97 at a time (batches that end mid-way through nothing special)
    tokens = real_tokens(1_000)
    vocabulary = fit_vocabulary(tokens, FeatureConfig(), valences=valences())
    at_once = window_counts(tokens, vocabulary)
    monkeypatch.setattr(features, "BATCH_ROWS", 97)
    batched = window_counts(tokens, vocabulary)
    refitted = fit_vocabulary(tokens, FeatureConfig(), valences=valences())
    # Then every window's counts and the vocabulary are the same
    for window, matrix in at_once.items():
        assert (batched[window] != matrix).nnz == 0
    assert refitted.terms == vocabulary.terms
    np.testing.assert_array_equal(refitted.idf, vocabulary.idf)


def test_a_min_df_beyond_the_corpus_is_refused_naming_it() -> None:
    tokens = real_tokens(200)
    with pytest.raises(ValueError, match=r"features\.min_df=1000 of the 200 reviews"):
        fit_vocabulary(tokens, FeatureConfig(min_df=1_000), valences=valences())


def test_fitting_the_features_counts_once_and_gives_what_the_vocabulary_and_the_features_give() -> None:
    table = real_etl_rows().slice(0, 800)
    tokens, counts, lengths = table.column("tokens"), table.column("token_count"), table.column("text_length")
    vocabulary, fitted = fit_features(tokens, counts, lengths, FeatureConfig(), valences=valences())
    separately = fit_vocabulary(tokens, FeatureConfig(), valences=valences())
    assert vocabulary.terms == separately.terms
    np.testing.assert_array_equal(vocabulary.idf, separately.idf)
    again = review_features(tokens, counts, lengths, vocabulary)
    assert all((fitted.tfidf[window] != matrix).nnz == 0 for window, matrix in again.tfidf.items())
    np.testing.assert_array_equal(fitted.dense, again.dense)
