"""The prediction core: a loaded model and an ETL part in, its predictions table (or parquet bytes) out.

Plain functions over Arrow data and bytes, nothing Lambda-specific, so the same code runs in the
handler, in an AWS Batch array job (one part per index) or in the bench.

Speed. The trainer builds TF-IDF rows with scikit-learn's CountVectorizer and a Python analyzer:
one Python call per review, about 25,000 reviews/s on one core. The predictor builds the very same
matrix (same terms, same counts, same sublinear tf, idf and L2 norm: a unit test checks equality
with `services.trainer.features.tfidf_matrix`) from the Arrow token lists with vectorised kernels:
n-grams are `binary_join_element_wise` over shifted slices of the flat token array, kept where both
ends belong to the same review; terms become columns with one hash lookup (`index_in`) against the
vocabulary; counts are summed per row by scipy's CSR code. No Python loop per review.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import scipy.sparse as sp
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sklearn.preprocessing import normalize

from services.etl.transform import TEXT_LENGTH, TOKEN_COUNT, TOKENS
from services.trainer.features import Vocabulary, dense_features
from services.trainer.model import StackedModel, stacked_features
from shared.canonical import REVIEW_ID, ROW_NUMBER

PREDICTED_LABEL = "predicted_label"
MODEL_VERSION = "model_version"
SOURCE_KEY = "source_key"
PREDICTED_AT = "predicted_at"
PROBA_PREFIX = "proba_"
INPUT_COLUMNS = (ROW_NUMBER, REVIEW_ID, TOKENS, TOKEN_COUNT, TEXT_LENGTH)


class PredictorSettings(BaseSettings):
    """How the predictor writes its output (env prefix REVIEWS_PREDICTOR_)."""

    model_config = SettingsConfigDict(env_prefix="REVIEWS_PREDICTOR_", frozen=True, extra="ignore")

    write_csv: bool = Field(default=False, description="Also write each part's predictions as CSV beside the parquet.")
    batch_rows: int = Field(
        default=65_536, ge=1, description="Rows per record batch read from etl/ (bounds the working memory)."
    )
    threads: int | None = Field(
        default=None, ge=1, description="Threads XGBoost predicts with; unset: XGBoost's default (all cores)."
    )


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


@dataclass(frozen=True)
class Lineage:
    """What every prediction row says about where it came from."""

    source_key: str
    predicted_at: datetime


@dataclass(frozen=True)
class PredictedPart:
    parquet: bytes
    csv: bytes | None
    rows: int


def predictions_schema(classes: tuple[str, ...]) -> pa.Schema:
    """Columns of every predictions/ parquet file of a model with these classes."""
    return pa.schema(
        [
            pa.field(REVIEW_ID, pa.string()),
            pa.field(ROW_NUMBER, pa.int64(), nullable=False),
            pa.field(PREDICTED_LABEL, pa.string(), nullable=False),
            *(pa.field(f"{PROBA_PREFIX}{label}", pa.float32(), nullable=False) for label in classes),
            pa.field(MODEL_VERSION, pa.string(), nullable=False),
            pa.field(SOURCE_KEY, pa.string(), nullable=False),
            pa.field(PREDICTED_AT, pa.timestamp("us", tz="UTC"), nullable=False),
        ]
    )


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


def predict_table(classifier: Classifier, etl: pa.Table | pa.RecordBatch, lineage: Lineage) -> pa.Table:
    """Predictions for every row of an ETL table or batch, in its row order."""
    probabilities = class_probabilities(classifier, etl)
    rows = etl.num_rows
    labels = pa.array(classifier.classes, pa.string()).take(pa.array(probabilities.argmax(axis=1)))
    schema = predictions_schema(classifier.classes)
    columns: list[Any] = [
        etl.column(REVIEW_ID),
        etl.column(ROW_NUMBER),
        labels,
        *(probabilities[:, index] for index in range(len(classifier.classes))),
        pa.repeat(pa.scalar(classifier.version, pa.string()), rows),
        pa.repeat(pa.scalar(lineage.source_key, pa.string()), rows),
        pa.repeat(pa.scalar(lineage.predicted_at, schema.field(PREDICTED_AT).type), rows),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _etl_batches(etl_parquet: bytes, batch_rows: int) -> Iterator[pa.RecordBatch]:
    source = pq.ParquetFile(io.BytesIO(etl_parquet))
    yield from source.iter_batches(batch_size=batch_rows, columns=list(INPUT_COLUMNS))


def predict_parquet(
    classifier: Classifier, etl_parquet: bytes, lineage: Lineage, *, batch_rows: int = 65_536, with_csv: bool = False
) -> PredictedPart:
    """An etl/ parquet file's bytes → its predictions parquet (and CSV) bytes, one record batch at a time."""
    schema = predictions_schema(classifier.classes)
    parquet_sink, csv_sink = io.BytesIO(), io.BytesIO()
    rows = 0
    with pq.ParquetWriter(parquet_sink, schema, compression="zstd") as parquet:
        csv = pa_csv.CSVWriter(csv_sink, schema) if with_csv else None
        try:
            for batch in _etl_batches(etl_parquet, batch_rows):
                predicted = predict_table(classifier, batch, lineage)
                parquet.write_table(predicted)
                if csv is not None:
                    csv.write_table(predicted)
                rows += predicted.num_rows
        finally:
            if csv is not None:
                csv.close()
    return PredictedPart(parquet=parquet_sink.getvalue(), csv=csv_sink.getvalue() if with_csv else None, rows=rows)
