"""Features from the ETL's tokens: word n-gram TF-IDF over three windows, sentiment-lexicon sums, lengths.

One implementation for training and prediction. Every matrix is built from the Arrow token lists with
vectorised kernels (no Python loop per review): the tokens become word ids with one hash lookup
(`index_in`) against the words of the vocabulary's terms; an n-gram is then the integer key of its
words' ids over shifted slices of the flat id array, kept where all its tokens belong to the same
review, and becomes a column with one int64 lookup (`NgramIndex`); counts are summed per row by
scipy's CSR code. No n-gram text is built to count a review, which is what makes prediction fast.
The trainer and the predictor therefore compute the same features by construction, and a million
reviews are vectorised in seconds rather than the minutes scikit-learn's Python analyzer takes.

What a review becomes:

- TF-IDF rows (1 + log tf, smoothed idf, L2 norm: scikit-learn's TfidfVectorizer, which a unit test
  checks against) over three windows of its tokens: all of them, the first `head_window` (where the
  ETL puts the title, and where reviewers state their verdict) and the last `tail_window` (where they
  sum up). A review that opens with praise and ends with a complaint is the typical 3-star review; the
  same linear heads scoring each window let the booster see that shape.
- Sentiment-lexicon sums per window: the VADER lexicon's valences (a hand-rated, domain-independent
  list of ~7,500 English words) as two fixed weights per vocabulary term, positive and negative; a
  bigram "not good" carries minus the unigram's valence plus -0.74 times it, so the pair counts as
  negated (VADER's own factor). The linear heads learn which words matter *in the training sources*
  ("alexa" is positive there because Alexa owners were happy); the lexicon's valences do not move
  with the sources, which is what holds up on reviews from products never seen.
- Two length figures (log tokens, log characters).

The fitted vocabulary is plain data: its terms in column order, the idf weights and the lexicon weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from sklearn.preprocessing import normalize

TokenLists = Sequence[Sequence[str]]
FloatArray = npt.NDArray[np.float32]
Tokens: TypeAlias = pa.Array | pa.ChunkedArray | TokenLists
"""A list<string> Arrow array (one list per review) or plain lists of strings."""

DENSE_FEATURES = ("log_token_count", "log_text_length")
LEXICON_FIGURES = ("positive", "negative", "sum", "words")
"""Per window: positive and negative valence, their sum (each over √tokens), and lexicon words per √tokens."""
BATCH_ROWS = 65_536
"""Reviews vectorised at a time (bounds the working memory, not the result)."""
NEGATED_VALENCE = -0.74
"""How much of a word's valence survives a negation right before it (VADER's N_SCALAR)."""
NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "nor",
        "neither",
        "cannot",
        "without",
        "hardly",
        "barely",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "won't",
        "wouldn't",
        "can't",
        "couldn't",
        "shouldn't",
        "haven't",
        "hasn't",
        "hadn't",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "wont",
        "wouldnt",
        "cant",
        "couldnt",
        "shouldnt",
    ]
)


class FeatureConfig(BaseModel):
    """How text becomes features; a change here changes the model's major version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ngram_max: int = Field(default=2, ge=1, le=3, description="Word n-grams from 1 to this length.")
    min_df: int = Field(default=2, ge=1, description="An n-gram must occur in this many training reviews.")
    max_features: int = Field(default=200_000, ge=1, description="At most this many n-grams, the most frequent.")
    sublinear_tf: bool = Field(default=True, description="Term frequency as 1 + log(tf).")
    head_window: int = Field(
        default=8, ge=0, description="The heads also score the n-grams within the first this many tokens (0: not)."
    )
    tail_window: int = Field(
        default=12, ge=0, description="The heads also score the n-grams within the last this many tokens (0: not)."
    )
    lexicon: bool = Field(default=True, description="Add the sentiment lexicon's valence sums per window.")
    vocabulary_sample_rows: int = Field(
        default=300_000,
        ge=1_000,
        description="The vocabulary's terms are chosen on at most this many reviews (a seeded sample); the idf "
        "is counted on all. The most frequent 200k n-grams of 300k reviews are those of a million, and choosing "
        "them is what grows faster than the corpus.",
    )

    @property
    def windows(self) -> tuple[str, ...]:
        """The windows whose TF-IDF rows the heads score, "all" first."""
        return ("all",) + (("head",) if self.head_window else ()) + (("tail",) if self.tail_window else ())


@dataclass(frozen=True)
class Vocabulary:
    """The fitted features: terms in column order, their idf and lexicon weights (plain data)."""

    config: FeatureConfig
    terms: list[str]
    idf: FloatArray
    """One float32 weight per term."""
    lexicon: FloatArray | None = None
    """(2, terms) float32: each term's positive and negative valence; None when the config has no lexicon."""

    @cached_property
    def ngram_index(self) -> NgramIndex:
        """The terms as integer keys of their words, what every review's n-grams are looked up in."""
        return NgramIndex.of(self.terms, self.config.ngram_max)


@dataclass(frozen=True)
class NgramIndex:
    """The vocabulary's terms as integers: each word of any term gets an id, an n-gram the key
    `((id1 * words) + id2) * words + …` (below 2**63 for up to 3 words of ~2M distinct words)."""

    words: pa.Array
    """Every word of every term: the one value set the reviews' tokens are looked up in (as strings)."""
    unigram_columns: npt.NDArray[np.int32]
    """Per word id: the column of the word as a unigram term, or -1."""
    keys: dict[int, pa.Array]
    """Per n-gram size from 2: the int64 keys of the terms of that many words."""
    columns: dict[int, npt.NDArray[np.int32]]
    """Per size: the column of each key, in the order of `keys[size]`."""

    @classmethod
    def of(cls, terms: Sequence[str], ngram_max: int) -> NgramIndex:
        parts = pc.split_pattern(pa.array(terms, pa.string()), " ")
        size_of_term = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(parts)
        words = pc.unique(flat)
        word = pc.index_in(flat, value_set=words).to_numpy(zero_copy_only=False).astype(np.int64)
        first_word = parts.offsets.to_numpy()[:-1].astype(np.int64)
        index = cls(words, np.full(len(words), -1, dtype=np.int32), {}, {})
        for size in range(1, ngram_max + 1):
            term_columns = np.flatnonzero(size_of_term == size).astype(np.int32)
            keys = index.keys_of(word, first_word[term_columns], size)
            if size == 1:
                index.unigram_columns[keys] = term_columns
            else:
                index.keys[size], index.columns[size] = pa.array(keys, pa.int64()), term_columns
        return index

    def keys_of(self, word: npt.NDArray[Any], start: npt.NDArray[np.int64], size: int) -> npt.NDArray[np.int64]:
        """The keys of the n-grams of `size` words starting at each `start` of the word-id sequence `word`."""
        key = word[start].astype(np.int64)
        for offset in range(1, size):
            key = key * len(self.words) + word[start + offset]
        return key


def ngrams_of(ngram_max: int) -> Any:
    """A scikit-learn analyzer: a review's tokens and its n-grams up to `ngram_max`, joined by single spaces.

    The reference the vectorised kernels are tested against, and the peers' analyzer in the benchmarks.
    """

    def ngrams(tokens: Sequence[str]) -> list[str]:
        terms = list(tokens)
        for size in range(2, ngram_max + 1):
            terms.extend(" ".join(tokens[start : start + size]) for start in range(len(tokens) - size + 1))
        return terms

    return ngrams


# -- n-gram occurrences, vectorised -------------------------------------------------------------------


def token_lists(tokens: Tokens) -> pa.ListArray:
    if isinstance(tokens, pa.ChunkedArray):
        return tokens.combine_chunks() if tokens.num_chunks else pa.array([], pa.list_(pa.string()))
    if isinstance(tokens, pa.Array):
        return tokens
    return pa.array([list(row) for row in tokens], pa.list_(pa.string()))


def ngram_texts(lists: pa.ListArray, ngram_max: int) -> list[tuple[pa.Array, npt.NDArray[np.int64]]]:
    """The unigrams, then the bigrams, … of every review as text (words joined by a space), each with
    its review: what the vocabulary's terms are chosen from (counting against a fitted vocabulary
    needs no text, see `_window_counts`)."""
    flat = lists.flatten()
    review = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    found = [(flat, review)]
    for size in range(2, ngram_max + 1):
        starts = len(flat) - size + 1
        if starts <= 0:
            break
        within = review[:starts] == review[size - 1 :]
        joined = pc.binary_join_element_wise(*(flat.slice(offset, starts) for offset in range(size)), " ")
        found.append((joined.filter(pa.array(within)), review[:starts][within]))
    return found


def window_counts(tokens: Tokens, vocabulary: Vocabulary) -> dict[str, Any]:
    """Raw term counts per window (`config.windows`), each a CSR matrix (reviews, terms).

    Built `BATCH_ROWS` reviews at a time: the occurrences of a million reviews' n-grams would take
    several GB at once; one batch's are dropped once counted.
    """
    lists = token_lists(tokens)
    if len(lists) <= BATCH_ROWS:
        return _window_counts(lists, vocabulary)
    batches = [_window_counts(lists.slice(start, BATCH_ROWS), vocabulary) for start in range(0, len(lists), BATCH_ROWS)]
    return {window: sp.vstack([batch[window] for batch in batches], format="csr") for window in batches[0]}


def _window_counts(lists: pa.ListArray, vocabulary: Vocabulary) -> dict[str, Any]:
    """The counting kernel: tokens become word ids with one string lookup, n-grams become integer keys.

    No n-gram text is built: a bigram is the pair of its words' ids (`NgramIndex`), looked up as one
    int64. Every token gets a row of slots, one per n-gram size, holding the column of the n-gram that
    starts there (or -1), so the slots are already in review order: a window's CSR is its tokens' slots,
    with no sort and no per-occurrence row numbers.
    """
    config = vocabulary.config
    index = vocabulary.ngram_index
    shape = (len(lists), len(vocabulary.terms))
    word = pc.index_in(lists.flatten(), value_set=index.words).fill_null(-1).to_numpy(zero_copy_only=False)
    offsets = (lists.offsets.to_numpy() - lists.offsets[0].as_py()).astype(np.int64)
    lengths = np.diff(offsets)
    sizes = config.ngram_max
    slots = np.full((len(word), sizes), -1, dtype=np.int32)
    known = word >= 0
    slots[known, 0] = index.unigram_columns[word[known]]
    opens_review = np.zeros(len(word) + 1, dtype=bool)
    opens_review[offsets] = True  # an n-gram cannot run on into the next review
    for size in range(2, sizes + 1):
        starts = len(word) - size + 1
        if starts <= 0:
            break
        whole = known[:starts].copy()
        for offset in range(1, size):
            whole &= known[offset : offset + starts] & ~opens_review[offset : offset + starts]
        start = np.flatnonzero(whole)
        found = pc.index_in(pa.array(index.keys_of(word, start, size)), value_set=index.keys[size])
        found_column = found.fill_null(-1).to_numpy(zero_copy_only=False)
        hit = found_column >= 0
        slots[start[hit], size - 1] = index.columns[size][found_column[hit]]
    counts: dict[str, Any] = {}
    if config.head_window:
        head_lengths = np.minimum(lengths, config.head_window)
        head_tokens = _ranges(offsets[:-1], head_lengths)
        head = slots[head_tokens]
        position = head_tokens - np.repeat(offsets[:-1], head_lengths)
        head[position[:, None] + np.arange(sizes) >= config.head_window] = -1  # n-grams that end past the head
        counts["head"] = _csr_of_slots(head, _offsets_of(head_lengths), shape)
    if config.tail_window:
        tail_lengths = np.minimum(lengths, config.tail_window)
        tail_tokens = _ranges(offsets[1:] - tail_lengths, tail_lengths)
        counts["tail"] = _csr_of_slots(slots[tail_tokens], _offsets_of(tail_lengths), shape)
    counts["all"] = _csr_of_slots(slots, offsets, shape)
    return {window: counts[window] for window in config.windows}


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The concatenated ranges [start, start + length)."""
    ends = np.cumsum(lengths)
    within = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    ranges: npt.NDArray[np.int64] = within + np.repeat(starts - (ends - lengths), lengths)
    return ranges


def _offsets_of(lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _csr_of_slots(slots: npt.NDArray[np.int32], token_offsets: npt.NDArray[np.int64], shape: tuple[int, int]) -> Any:
    """Counts as a canonical CSR matrix from a (tokens, sizes) slot table whose tokens are grouped by review
    (review r's are token_offsets[r]:token_offsets[r + 1])."""
    valid = slots >= 0
    per_token = valid[:, 0].astype(np.int64)
    for size in range(1, valid.shape[1]):
        per_token += valid[:, size]  # column by column: numpy's sum over a row of 2 is ~5x slower
    before_token = _offsets_of(per_token)
    indices = slots[valid]
    data = np.ones(len(indices), dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, before_token[token_offsets]), shape=shape)
    matrix.sum_duplicates()
    return matrix


def tfidf_of_counts(counts: Any, vocabulary: Vocabulary) -> Any:
    """L2-normalised TF-IDF rows from raw counts (a new matrix; `counts` is left as it is)."""
    matrix = counts.copy()
    if vocabulary.config.sublinear_tf:
        np.log(matrix.data, out=matrix.data)
        matrix.data += 1.0
    matrix.data *= vocabulary.idf[matrix.indices]
    return normalize(matrix, norm="l2", copy=False)


def tfidf_matrix(tokens: Tokens, vocabulary: Vocabulary) -> Any:
    """L2-normalised TF-IDF rows of whole reviews over the vocabulary's terms (unknown n-grams ignored)."""
    return tfidf_of_counts(window_counts(tokens, vocabulary)["all"], vocabulary)


@dataclass(frozen=True)
class ReviewFeatures:
    """What the model scores: TF-IDF rows per window, and the dense figures (lexicon sums, lengths)."""

    tfidf: dict[str, Any]
    dense: FloatArray

    def rows(self, selected: npt.NDArray[np.int64]) -> ReviewFeatures:
        return ReviewFeatures({window: matrix[selected] for window, matrix in self.tfidf.items()}, self.dense[selected])


def review_features(tokens: Tokens, token_count: Any, text_length: Any, vocabulary: Vocabulary) -> ReviewFeatures:
    return _features_of_counts(window_counts(tokens, vocabulary), token_count, text_length, vocabulary)


def _features_of_counts(
    counts: dict[str, Any], token_count: Any, text_length: Any, vocabulary: Vocabulary
) -> ReviewFeatures:
    tfidf = {window: tfidf_of_counts(matrix, vocabulary) for window, matrix in counts.items()}
    dense = [dense_features(token_count, text_length)]
    if vocabulary.lexicon is not None:
        dense.insert(0, lexicon_features(counts, np.asarray(token_count), vocabulary))
    return ReviewFeatures(tfidf, np.hstack(dense).astype(np.float32))


def dense_names(config: FeatureConfig) -> list[str]:
    lexicon = [f"lexicon@{window}:{figure}" for window in config.windows for figure in LEXICON_FIGURES]
    return (lexicon if config.lexicon else []) + list(DENSE_FEATURES)


def lexicon_features(counts: dict[str, Any], token_count: npt.NDArray[Any], vocabulary: Vocabulary) -> FloatArray:
    assert vocabulary.lexicon is not None
    config = vocabulary.config
    positive, negative = vocabulary.lexicon
    in_lexicon = (positive != 0) | (negative != 0)
    sizes = {"all": token_count, "head": np.minimum(token_count, config.head_window)}
    sizes["tail"] = np.minimum(token_count, config.tail_window)
    columns = []
    for window in config.windows:
        matrix = counts[window]
        scale = 1.0 / np.sqrt(np.maximum(sizes[window], 1).astype(np.float32))
        plus = np.asarray(matrix @ positive).ravel() * scale
        minus = np.asarray(matrix @ negative).ravel() * scale
        words = np.asarray(matrix @ in_lexicon.astype(np.float32)).ravel() * scale
        columns.extend([plus, minus, plus + minus, words])
    return np.column_stack(columns).astype(np.float32)


def dense_features(token_count: Any, text_length: Any) -> FloatArray:
    """Per-review figures the linear scores do not carry: how long the review is."""
    return np.column_stack(
        [np.log1p(np.asarray(token_count, dtype=np.float32)), np.log1p(np.asarray(text_length, dtype=np.float32))]
    ).astype(np.float32)


# -- fitting ----------------------------------------------------------------------------------------


def fit_vocabulary(
    tokens: Tokens, config: FeatureConfig, seed: int = 42, valences: Mapping[str, float] | None = None
) -> Vocabulary:
    """The `max_features` n-grams in most reviews (at least `min_df`), chosen on a sample; idf over all.

    `valences` (word → valence, `reviews_model.lexicon.valences()`) is required when `config.lexicon`.
    """
    lists = token_lists(tokens)
    terms = _chosen_terms(lists, config, seed, valences)
    whole_reviews = config.model_copy(update={"head_window": 0, "tail_window": 0})
    counts = window_counts(lists, Vocabulary(whole_reviews, terms, np.ones(len(terms), dtype=np.float32)))
    return _weighted(terms, counts["all"], config, valences)


def fit_features(
    tokens: Tokens,
    token_count: Any,
    text_length: Any,
    config: FeatureConfig,
    seed: int = 42,
    valences: Mapping[str, float] | None = None,
) -> tuple[Vocabulary, ReviewFeatures]:
    """`fit_vocabulary` and the training reviews' features, counting their n-grams once: the idf needs the
    whole-review counts the features are built from."""
    lists = token_lists(tokens)
    terms = _chosen_terms(lists, config, seed, valences)
    counts = window_counts(lists, Vocabulary(config, terms, np.ones(len(terms), dtype=np.float32)))
    vocabulary = _weighted(terms, counts["all"], config, valences)
    return vocabulary, _features_of_counts(counts, token_count, text_length, vocabulary)


def _chosen_terms(
    lists: pa.ListArray, config: FeatureConfig, seed: int, valences: Mapping[str, float] | None
) -> list[str]:
    """The vocabulary's terms, in column order: chosen on a seeded sample of at most `vocabulary_sample_rows`."""
    if config.lexicon and valences is None:
        raise ValueError("the lexicon features need the lexicon's valences: pass reviews_model.lexicon.valences()")
    sample = lists
    if len(lists) > config.vocabulary_sample_rows:
        chosen = np.sort(np.random.default_rng(seed).choice(len(lists), config.vocabulary_sample_rows, replace=False))
        sample = lists.take(pa.array(chosen))
    frequencies = [
        _document_frequencies(sample.slice(start, BATCH_ROWS), config.ngram_max)
        for start in range(0, len(sample), BATCH_ROWS)
    ]
    table = pa.concat_tables(frequencies).group_by("term").aggregate([("df", "sum")]).rename_columns(["term", "df"])
    table = table.filter(pc.greater_equal(table.column("df"), config.min_df))
    if table.num_rows == 0:
        raise ValueError(
            f"no n-gram occurs in at least features.min_df={config.min_df} of the {len(sample)} reviews the "
            "vocabulary is chosen on: lower min_df"
        )
    # The most frequent first, ties in term order, so the choice does not depend on the order of the rows.
    table = table.sort_by([("df", "descending"), ("term", "ascending")]).slice(0, config.max_features)
    return sorted(table.column("term").to_pylist())


def _weighted(
    terms: list[str], whole_review_counts: Any, config: FeatureConfig, valences: Mapping[str, float] | None
) -> Vocabulary:
    """The vocabulary of `terms` with scikit-learn's smoothed idf, ln((1 + n) / (1 + df)) + 1, over every review."""
    reviews = whole_review_counts.shape[0]
    document_frequency = np.bincount(whole_review_counts.indices, minlength=len(terms))
    idf = (np.log((1.0 + reviews) / (1.0 + document_frequency)) + 1.0).astype(np.float32)
    lexicon = lexicon_weights(terms, valences) if valences is not None and config.lexicon else None
    return Vocabulary(config=config, terms=terms, idf=idf, lexicon=lexicon)


def _document_frequencies(lists: pa.ListArray, ngram_max: int) -> pa.Table:
    """(term, df): in how many of `lists`' reviews each n-gram occurs."""
    tables = []
    for texts, review in ngram_texts(lists, ngram_max):
        encoded = pc.dictionary_encode(texts)
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        distinct = len(encoded.dictionary)
        pairs = np.unique(review * distinct + codes)  # each (review, term) once
        tables.append(pa.table({"term": encoded.dictionary, "df": np.bincount(pairs % distinct, minlength=distinct)}))
    return pa.concat_tables(tables)


def lexicon_weights(terms: Sequence[str], valence: Mapping[str, float]) -> FloatArray:
    """(2, terms): each term's positive and negative valence, from the VADER lexicon (see the module's note)."""
    weights = np.zeros((2, len(terms)), dtype=np.float32)
    for column, term in enumerate(terms):
        words = term.split(" ")
        if len(words) == 1 and term in valence:
            value = valence[term]
            weights[0 if value > 0 else 1, column] = value
        elif len(words) == 2 and words[0] in NEGATORS and words[1] in valence:
            # Cancel the word's own valence (counted by its unigram) and add it negated.
            value = valence[words[1]]
            weights[0 if value > 0 else 1, column] -= value
            weights[1 if value > 0 else 0, column] += NEGATED_VALENCE * value
    return weights
