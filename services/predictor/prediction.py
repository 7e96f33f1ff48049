"""The predictions/ files: a loaded model and an ETL part in, its predictions table (or parquet bytes) out.

Plain functions over Arrow data and bytes, nothing Lambda-specific, so the same code runs in the
handler, in an AWS Batch array job (one part per index) or in the bench. The probabilities come
from the model package's prediction core (`reviews_model.prediction`); this module adds the
lineage columns and writes the part.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reviews_model.prediction import Classifier, class_probabilities, predicted_labels
from shared.etl_schema import REVIEW_ID, ROW_NUMBER, TEXT_LENGTH, TOKEN_COUNT, TOKENS

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


def predict_table(classifier: Classifier, etl: pa.Table | pa.RecordBatch, lineage: Lineage) -> pa.Table:
    """Predictions for every row of an ETL table or batch, in its row order."""
    probabilities = class_probabilities(classifier, etl)
    rows = etl.num_rows
    labels = predicted_labels(classifier.classes, probabilities)
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
