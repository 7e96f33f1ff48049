"""The prediction core: a loaded model and rows of an etl/ table in, class probabilities and labels out.

Plain functions over Arrow data, nothing Lambda-specific, so the same code runs in the predictor's
handler, in an AWS Batch array job (one part per index) or in the bench; the predictions/ file
format around it is the predictor's (`services/predictor/prediction.py`).

Speed. The trainer builds TF-IDF rows with scikit-learn's CountVectorizer and a Python analyzer:
one Python call per review, about 25,000 reviews/s on one core. The predictor builds the very same
matrix (same terms, same counts, same sublinear tf, idf and L2 norm: a unit test checks equality
with `reviews_model.features.tfidf_matrix`) from the Arrow token lists with vectorised kernels:
n-grams are `binary_join_element_wise` over shifted slices of the flat token array, kept where both
ends belong to the same review; terms become columns with one hash lookup (`index_in`) against the
vocabulary; counts are summed per row by scipy's CSR code. No Python loop per review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from shared.etl_schema import TEXT_LENGTH, TOKEN_COUNT, TOKENS

from .features import Vocabulary, dense_features
from .model import StackedModel, stacked_features


@dataclass(frozen=True)
class Classifier:
    """A loaded model version, ready to predict: the model and its vocabulary as an Arrow lookup set."""

    version: str
    model: StackedModel
    terms: pa.Array

    @classmethod
    def of(cls, version: str, model: StackedModel, threads: int | None = None) -> Classifier:
        if threads is not None:
            model.booster.set_param({"nthread": threads})
        return cls(version=version, model=model, terms=pa.array(model.vocabulary.terms, pa.string()))

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes


def _list_array(tokens: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks() if tokens.num_chunks else pa.array([], pa.list_(pa.string()))
    return tokens


def _counts(rows: np.ndarray[Any, Any], columns: pa.Array, shape: tuple[int, int]) -> Any:
    """Term counts as a canonical CSR matrix, from terms in row order (`rows` non-decreasing)."""
    known = pc.is_valid(columns).to_numpy(zero_copy_only=False)
    rows = rows[known]
    # A writable copy: scipy sorts the indices in place.
    indices = columns.drop_null().to_numpy(zero_copy_only=False).astype(np.int32, copy=True)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=shape)
    matrix.sum_duplicates()
    return matrix


def tfidf_rows(tokens: pa.Array | pa.ChunkedArray, vocabulary: Vocabulary, terms: pa.Array) -> Any:
    """`features.tfidf_matrix` over Arrow token lists, vectorised: a scipy CSR matrix, one row per review.

    `terms` is the vocabulary as an Arrow array (built once per model, see `Classifier`).
    """
    lists = _list_array(tokens)
    flat = lists.flatten()
    review = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    shape = (len(lists), len(vocabulary.terms))
    matrix = _counts(review, pc.index_in(flat, value_set=terms), shape)
    for size in range(2, vocabulary.config.ngram_max + 1):
        starts = len(flat) - size + 1
        if starts <= 0:
            break
        within_review = review[:starts] == review[size - 1 :]
        ngrams = pc.binary_join_element_wise(*(flat.slice(offset, starts) for offset in range(size)), " ")
        kept = ngrams.filter(pa.array(within_review))
        matrix = matrix + _counts(review[:starts][within_review], pc.index_in(kept, value_set=terms), shape)
    if not matrix.has_sorted_indices:
        matrix.sort_indices()
    if vocabulary.config.sublinear_tf:
        np.log(matrix.data, out=matrix.data)
        matrix.data += 1.0
    matrix.data *= vocabulary.idf[matrix.indices]
    return normalize(matrix, norm="l2", copy=False)


def class_probabilities(classifier: Classifier, etl: pa.Table | pa.RecordBatch) -> np.ndarray[Any, Any]:
    """(rows, classes) float32 probabilities, one column per `classifier.classes`."""
    model = classifier.model
    if etl.num_rows == 0:
        return np.zeros((0, len(model.classes)), dtype=np.float32)
    matrix = tfidf_rows(etl.column(TOKENS), model.vocabulary, classifier.terms)
    dense = dense_features(etl.column(TOKEN_COUNT).to_numpy(), etl.column(TEXT_LENGTH).to_numpy())
    stacked = stacked_features(matrix, dense, model.heads)
    probabilities = model.booster.inplace_predict(stacked)
    return np.asarray(probabilities, dtype=np.float32).reshape(etl.num_rows, len(model.classes))


def predicted_labels(classes: tuple[str, ...], probabilities: np.ndarray[Any, Any]) -> pa.Array:
    """The most probable class of each row of `probabilities` (one column per class), as strings."""
    return pa.array(classes, pa.string()).take(pa.array(probabilities.argmax(axis=1)))
