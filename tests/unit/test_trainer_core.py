"""The training core on real reviews: labels, de-duplication, the split, the model, its files and the loader."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reviews_model.artifacts import UnsafeModelError, model_files, model_from_files
from reviews_model.features import FeatureConfig
from reviews_model.model import ModelConfig, predict_proba
from services.etl.transform import EtlSettings, transform_table
from services.trainer.evaluation import evaluate_labels
from services.trainer.training import (
    NotEnoughDataError,
    TrainerSettings,
    TrainingOutcome,
    prepare_reviews,
    read_etl_parquet,
    stratified_split,
    train_and_evaluate,
    train_on_split,
)
from services.validator.validation import Accepted, InMemoryBytes, ValidatorSettings, examine_file

MARC_EN = Path("/work/shared/data/marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv")
ROWS = 3_000
FAST = TrainerSettings(model=ModelConfig(folds=3, max_rounds=200, early_stopping_rounds=20))


@lru_cache(maxsize=1)
def real_etl_rows() -> pa.Table:
    """3,000 MARC English reviews (every 4th: the file is sorted by stars), read and cleaned as the pipeline does."""
    verdict = examine_file(InMemoryBytes(MARC_EN.read_bytes()), dataset="train", limits=ValidatorSettings())
    assert isinstance(verdict, Accepted)
    table, _ = transform_table(verdict.rows.table.take(np.arange(0, 4 * ROWS, 4)), EtlSettings())
    return table


@lru_cache(maxsize=1)
def trained() -> TrainingOutcome:
    return train_and_evaluate(real_etl_rows(), FAST)


def test_labels_come_from_the_rating_for_the_configured_target() -> None:
    # Given real reviews with 1-5 stars
    table = real_etl_rows()
    # When they are labelled for each target
    sentiment, _ = prepare_reviews(table, "sentiment3")
    binary, binary_preparation = prepare_reviews(table, "binary")
    stars, _ = prepare_reviews(table, "stars")
    # Then the classes are the target's and 3-star reviews are left out of binary
    assert sentiment.classes == ("negative", "neutral", "positive")
    assert set(np.unique(binary.labels)) == {0, 1}
    assert binary_preparation.rows_unlabelled == int((table.column("rating").to_numpy() == 3).sum())
    assert len(np.unique(stars.labels)) == 5


def test_duplicate_texts_are_kept_once() -> None:
    # Given the same reviews twice, as when a file is uploaded again
    table = real_etl_rows()
    doubled = pa.concat_tables([table, table])
    # When prepared
    reviews, preparation = prepare_reviews(doubled, "sentiment3")
    once, _ = prepare_reviews(table, "sentiment3")
    # Then the copies are dropped and counted
    assert len(reviews) == len(once)
    assert preparation.rows_duplicate == doubled.num_rows - len(once)


def test_split_is_stratified_seeded_and_stable_as_the_corpus_grows() -> None:
    reviews, _ = prepare_reviews(real_etl_rows(), "sentiment3")
    train, test = stratified_split(reviews.texts, reviews.labels, 0.2, seed=7)
    # Every class holds out its share
    for label in range(3):
        in_class = int((reviews.labels == label).sum())
        assert int((reviews.labels[test] == label).sum()) == round(0.2 * in_class)
    assert not set(train) & set(test)
    # Same seed, same split; and with a quarter of the rows more, most test reviews stay in test
    _, again = stratified_split(reviews.texts, reviews.labels, 0.2, seed=7)
    assert np.array_equal(again, test)
    first = np.flatnonzero(np.arange(len(reviews)) < 2_400)
    _, earlier_test = stratified_split([reviews.texts[row] for row in first], reviews.labels[first], 0.2, seed=7)
    kept = len(set(earlier_test) & set(test)) / len(earlier_test)
    assert kept > 0.8


def test_a_corpus_missing_a_class_is_refused_with_every_class_counted() -> None:
    # Given real reviews without a single 3-star one, and an empty corpus
    table = real_etl_rows()
    without_neutral = table.filter(pc.not_equal(table.column("rating"), 3))
    # When each is trained on for sentiment3
    with pytest.raises(NotEnoughDataError) as missing:
        train_and_evaluate(without_neutral, FAST)
    with pytest.raises(NotEnoughDataError) as empty:
        train_and_evaluate(read_etl_parquet([]), FAST)
    # Then the refusal counts every class, the short ones and the others, and says what is needed
    counts = missing.value.class_counts
    assert list(counts) == ["negative", "neutral", "positive"]
    assert counts["neutral"] == 0 and counts["negative"] > 10 and counts["positive"] > 10
    assert missing.value.minimum == FAST.min_reviews_per_class
    assert str(missing.value).startswith("too few labelled reviews, need 10 per class, have negative ")
    assert empty.value.class_counts == {"negative": 0, "neutral": 0, "positive": 0}


def test_the_model_learns_sentiment_from_real_reviews() -> None:
    outcome = trained()
    evaluation = outcome.evaluation
    # Balanced 3-class data: chance is about 0.33
    assert evaluation.macro_f1 > 0.5
    assert evaluation.rows == len(outcome.test)
    assert sum(map(sum, evaluation.confusion)) == evaluation.rows
    assert set(evaluation.per_class) == {"negative", "neutral", "positive"}
    assert outcome.fit.best_rounds >= 1


def test_a_model_saved_as_plain_files_predicts_the_same() -> None:
    # Given a trained model written as files
    outcome = trained()
    files = model_files(outcome.model, "v1.0")
    assert {name.rsplit(".", 1)[-1] for name in files} <= {"json", "npy", "ubj"}
    # When loaded back
    loaded = model_from_files(files)
    # Then it gives the same probabilities
    test = outcome.test
    before = predict_proba(outcome.model, test.tokens, test.token_count, test.text_length)
    after = predict_proba(loaded, test.tokens, test.token_count, test.text_length)
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)


def test_the_heads_learn_the_star_grades_and_the_files_carry_the_lexicon() -> None:
    model = trained().model
    assert model.head_classes == ("1", "2", "3", "4", "5")
    assert model.classes == ("negative", "neutral", "positive")
    files = model_files(model, "v1.0")
    assert "lexicon.npy" in files
    assert json.loads(files["manifest.json"])["head_classes"] == ["1", "2", "3", "4", "5"]
    assert len(model.feature_names) == model.booster.num_features()


def test_a_model_of_the_previous_format_still_loads_and_predicts() -> None:
    # Given a model as the previous trainer made them: whole-review TF-IDF, heads on the classes, no lexicon,
    # and a format-1 manifest (which knew none of the new settings)
    table = real_etl_rows()
    reviews, _ = prepare_reviews(table, "sentiment3")
    old_features = FeatureConfig(head_window=0, tail_window=0, lexicon=False)
    settings = FAST.model_copy(update={"features": old_features})
    old = dataclasses.replace(reviews, ratings=None)
    model, _ = train_on_split(old, settings)
    files = model_files(model, "v1.0")
    manifest = json.loads(files["manifest.json"])
    manifest["format"] = "amazon-reviews-nlp/stacked-model/1"
    del manifest["head_classes"]
    for name in ("head_window", "tail_window", "lexicon", "vocabulary_sample_rows"):
        del manifest["features"][name]
    files["manifest.json"] = json.dumps(manifest).encode()
    # When the loader reads it
    loaded = model_from_files(files)
    # Then it predicts as the model did, with its own feature names
    sample = reviews.subset(np.arange(200))
    np.testing.assert_allclose(
        predict_proba(loaded, sample.tokens, sample.token_count, sample.text_length),
        predict_proba(model, sample.tokens, sample.token_count, sample.text_length),
        rtol=1e-5,
        atol=1e-6,
    )
    assert loaded.feature_names[:3] == ["logistic:negative", "logistic:neutral", "logistic:positive"]


def test_the_loader_refuses_a_pickle_among_the_files() -> None:
    files = model_files(trained().model, "v1.0")
    with pytest.raises(UnsafeModelError, match="not plain data"):
        model_from_files({**files, "model.pkl": pickle.dumps({"anything": 1})})


def test_the_loader_refuses_a_pickle_disguised_as_an_array() -> None:
    files = model_files(trained().model, "v1.0")
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"code": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeModelError):
        model_from_files({**files, "idf.npy": buffer.getvalue()})
    with pytest.raises(UnsafeModelError, match="pickle"):
        model_from_files({**files, "idf.npy": pickle.dumps([1.0])})


def test_the_loader_refuses_files_of_two_versions_mixed() -> None:
    files = model_files(trained().model, "v1.0")
    other = dict(files)
    other["vocabulary.json"] = b'["mixed"]'
    with pytest.raises(UnsafeModelError, match="hash"):
        model_from_files(other)


def test_metrics_of_known_predictions() -> None:
    evaluation = evaluate_labels(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert evaluation.accuracy == 0.75
    assert evaluation.confusion == [[1, 1], [0, 2]]
    assert evaluation.per_class["a"].recall == 0.5
    assert evaluation.per_class["b"].precision == pytest.approx(2 / 3)
