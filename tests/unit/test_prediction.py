"""The prediction core on real reviews: features equal to the trainer's, one row out per row in, lineage kept."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from reviews_model.model import predict_proba
from reviews_model.prediction import Classifier
from services.predictor.prediction import Lineage, predict_parquet, predict_table, predictions_schema
from shared.etl_schema import etl_arrow_schema
from tests.unit.test_trainer_core import real_etl_rows, trained

LINEAGE = Lineage(
    source_key="raw/inference/marc_en_train_kshot_union.csv", predicted_at=datetime(2026, 11, 27, tzinfo=UTC)
)


@lru_cache(maxsize=1)
def classifier() -> Classifier:
    return Classifier.of("v1.0", trained().model, threads=1)


def reviews(rows: int = 2_000) -> pa.Table:
    """`rows` real MARC reviews as the ETL writes them, spread over every star rating (the file is sorted by
    stars), in file order, with their row numbers in the original file."""
    table = real_etl_rows()
    return table.take(np.linspace(0, table.num_rows - 1, rows).astype(np.int64))


def parquet_of(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_each_row_gets_the_models_probabilities_and_its_lineage() -> None:
    table = reviews()
    predicted = predict_table(classifier(), table, LINEAGE)

    assert predicted.schema == predictions_schema(("negative", "neutral", "positive"))
    assert predicted.column_names == [
        "review_id",
        "row_number",
        "predicted_label",
        "proba_negative",
        "proba_neutral",
        "proba_positive",
        "model_version",
        "source_key",
        "predicted_at",
    ]
    assert predicted.num_rows == table.num_rows
    # Row numbers (positions in the original file) and review ids are carried through, in order
    assert predicted.column("row_number").equals(table.column("row_number"))
    assert predicted.column("review_id").equals(table.column("review_id"))
    # The probabilities are the trainer's own and sum to 1; the label is the most probable class
    probabilities = np.column_stack(
        [predicted.column(f"proba_{label}").to_numpy() for label in ("negative", "neutral", "positive")]
    )
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    reference = predict_proba(
        classifier().model,
        table.column("tokens").to_pylist(),
        table.column("token_count").to_numpy(),
        table.column("text_length").to_numpy(),
    )
    np.testing.assert_allclose(probabilities, reference, atol=1e-5)
    labels = np.array(["negative", "neutral", "positive"])[probabilities.argmax(axis=1)]
    assert predicted.column("predicted_label").to_pylist() == labels.tolist()
    # Every row says which model, which file and when
    assert set(predicted.column("model_version").to_pylist()) == {"v1.0"}
    assert set(predicted.column("source_key").to_pylist()) == {LINEAGE.source_key}
    assert set(predicted.column("predicted_at").to_pylist()) == {LINEAGE.predicted_at}


def test_the_model_reads_real_sentiment() -> None:
    # Real reviews with their stars: most 1-star ones read negative, most 5-star ones positive
    table = reviews()
    predicted = predict_table(classifier(), table, LINEAGE).column("predicted_label").to_numpy(zero_copy_only=False)
    stars = table.column("rating").to_numpy()
    assert (predicted[stars == 1] == "negative").mean() > 0.6
    assert (predicted[stars == 5] == "positive").mean() > 0.6


def test_rows_without_a_review_id_keep_their_row_number() -> None:
    table = reviews(50)
    anonymous = table.set_column(1, "review_id", pa.nulls(table.num_rows, pa.string()))
    predicted = predict_table(classifier(), anonymous, LINEAGE)
    assert predicted.column("review_id").null_count == table.num_rows
    assert predicted.column("row_number").to_pylist() == table.column("row_number").to_pylist()


def test_a_part_read_in_batches_comes_out_whole_as_parquet_and_csv() -> None:
    # Given an etl/ parquet file of real reviews, read 300 rows at a time
    table = reviews()
    part = predict_parquet(classifier(), parquet_of(table), LINEAGE, batch_rows=300, with_csv=True)
    # Then every row is predicted once, in order, in parquet and in CSV
    assert part.rows == table.num_rows
    from_parquet = pq.read_table(io.BytesIO(part.parquet))
    assert from_parquet.column("row_number").equals(table.column("row_number"))
    assert from_parquet.equals(predict_table(classifier(), table, LINEAGE))
    assert part.csv is not None
    from_csv = pa_csv.read_csv(io.BytesIO(part.csv))
    assert from_csv.num_rows == table.num_rows
    assert from_csv.column("predicted_label").to_pylist() == from_parquet.column("predicted_label").to_pylist()


def test_an_empty_part_gives_an_empty_predictions_file() -> None:
    part = predict_parquet(classifier(), parquet_of(etl_arrow_schema().empty_table()), LINEAGE)
    assert part.rows == 0
    assert part.csv is None
    assert pq.read_table(io.BytesIO(part.parquet)).schema == predictions_schema(classifier().classes)


@pytest.mark.parametrize("rows", [1, 7])
def test_tiny_parts_are_predicted(rows: int) -> None:
    predicted = predict_table(classifier(), reviews(rows), LINEAGE)
    assert predicted.num_rows == rows
