"""The ETL handler, called with SQS-wrapped FileValidated events, against moto in-process.

Processed files are built from the real AWS Gift Card TSV in the canonical schema; what the handler
publishes is read back from an SQS queue subscribed to the bus by a catch-all rule.
"""

from __future__ import annotations

import copy
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from services.etl.app import lambda_handler
from services.etl.transform import EMPTY_AFTER_CLEANING, NEUTRAL_DROPPED_FOR_BINARY
from shared import layout
from shared.canonical import canonical_arrow_schema
from shared.etl_schema import etl_arrow_schema
from shared.events import Dataset, EtlCompleted, FileRejected
from shared.ledger import FileRecord
from shared.samples import sample_event, sqs_wrapped
from tests.data_paths import SHARED_DATA
from tests.integration.conftest import BUCKET, MotoStack, lambda_context

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

GIFT_CARD = SHARED_DATA / "aws-pds-us-gift-card-sample" / "amazon_reviews_us_Gift_Card_v1_00.tsv"
GIFT_CARD_ROWS = 1452
# One review of the file is "=)" in title and body: nothing is left of it after cleaning.
GIFT_CARD_EMPTY_AFTER_CLEANING = 1
GIFT_CARD_THREE_STARS = 33


class Pipeline(MotoStack):
    """The stack, able to read what the ETL wrote."""

    def versions(self, key: str) -> int:
        listing = self.aws.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
        return len([item for item in listing.get("Versions", []) if item["Key"] == key])

    def read_parquet(self, key: str) -> pa.Table:
        return pq.read_table(io.BytesIO(self.aws.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()))


@pytest.fixture(scope="module")
def stack_type() -> type[MotoStack]:
    return Pipeline


@pytest.fixture
def pipeline(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """The emptied stack, with default ETL settings."""
    for name in ("REMOVE_STOP_WORDS", "LABEL_TARGET", "COMBINE_TITLE"):
        monkeypatch.delenv(f"REVIEWS_ETL_{name}", raising=False)
    return pipeline


@pytest.fixture(scope="module")
def gift_card() -> pa.Table:
    """The real Gift Card TSV in the canonical schema, as the validator writes it to processed/."""
    source = pacsv.read_csv(
        GIFT_CARD,
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types={"review_body": pa.string(), "review_headline": pa.string()}),
    )
    rows = source.num_rows
    assert rows == GIFT_CARD_ROWS
    return pa.table(
        {
            "row_number": pa.array(np.arange(rows, dtype=np.int64)),
            "review_id": source["review_id"],
            "title": source["review_headline"],
            "text": source["review_body"],
            "rating": pc.cast(source["star_rating"], pa.int8()),
            "language": pa.nulls(rows, pa.string()),
        },
        schema=canonical_arrow_schema(),
    )


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@dataclass(frozen=True)
class ProcessedFile:
    file_id: str
    root_file_id: str
    processed_key: str
    part_index: int | None
    part_count: int
    dataset: Dataset
    rows: int


def put_processed(
    pipeline: Pipeline,
    body: bytes,
    rows: int,
    *,
    root_file_id: str,
    part_index: int | None = None,
    part_count: int = 1,
    dataset: Dataset = "train",
) -> ProcessedFile:
    """Register the file (and its root) in the ledger as the validator leaves them, and put its processed parquet."""
    file_id = root_file_id if part_index is None else f"{root_file_id[:24]}part{part_index:04d}"
    processed_key = layout.processed_key(dataset, root_file_id, part_index)
    for each, index in {root_file_id: None, file_id: part_index}.items():
        pipeline.ledger.register(
            FileRecord(
                file_id=each,
                root_file_id=root_file_id,
                correlation_id=root_file_id,
                bucket=BUCKET,
                key=f"raw/{dataset}/amazon_reviews_us_Gift_Card_v1_00.tsv",
                dataset=dataset,
                origin="s3" if index is None else "chunk",
                part_index=index,
                status="validated",
                stage="validator",
            )
        )
    pipeline.aws.s3.put_object(Bucket=BUCKET, Key=processed_key, Body=body)
    return ProcessedFile(file_id, root_file_id, processed_key, part_index, part_count, dataset, rows)


def file_validated(processed: ProcessedFile) -> dict[str, Any]:
    event = sample_event("FileValidated")
    event["id"] = str(uuid.uuid4())
    event["detail"].update(
        correlation_id=processed.root_file_id,
        file_id=processed.file_id,
        root_file_id=processed.root_file_id,
        dataset=processed.dataset,
        processed_key=processed.processed_key,
        rows_in=processed.rows,
        rows_out=processed.rows,
        rows_dropped={},
        part_index=processed.part_index,
        part_count=processed.part_count,
    )
    return event


def run_etl(event: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    wrapped = sqs_wrapped(event, "etl-queue", message_id or str(uuid.uuid4()))
    result: dict[str, Any] = lambda_handler(wrapped, lambda_context("etl", 2048, 300_000))
    return result


def new_root_id() -> str:
    return uuid.uuid4().hex


# -- the tests ------------------------------------------------------------------------------------------


def test_a_processed_file_becomes_tokenised_parquet_and_one_etl_completed(
    pipeline: Pipeline, gift_card: pa.Table
) -> None:
    # Given the real Gift Card file, validated and unchunked
    processed = put_processed(pipeline, parquet_bytes(gift_card), GIFT_CARD_ROWS, root_file_id=new_root_id())

    # When the ETL gets its FileValidated
    assert run_etl(file_validated(processed)) == {"batchItemFailures": []}

    # Then one EtlCompleted names the etl parquet, with rows in = rows out + dropped, and completes the root
    (completed,) = pipeline.details("EtlCompleted")
    EtlCompleted.model_validate(completed)
    etl_key = layout.etl_key("train", processed.root_file_id, None)
    assert (completed["etl_key"], completed["processed_key"]) == (etl_key, processed.processed_key)
    assert completed["rows_in"] == GIFT_CARD_ROWS
    assert completed["rows_dropped"] == {EMPTY_AFTER_CLEANING: GIFT_CARD_EMPTY_AFTER_CLEANING}
    assert completed["rows_out"] == GIFT_CARD_ROWS - GIFT_CARD_EMPTY_AFTER_CLEANING
    assert completed["root_complete"] is True
    assert (completed["part_index"], completed["part_count"]) == (None, 1)
    # And the parquet holds the cleaned tokens as a list column, with labels from the stars
    output = pipeline.read_parquet(etl_key)
    assert output.schema == etl_arrow_schema()
    assert output.num_rows == completed["rows_out"]
    first = output.slice(0, 1).to_pylist()[0]
    assert first["tokens"] == ["five", "stars", "great", "birthday", "gift", "for", "a", "young", "adult"]
    assert (first["label"], first["token_count"], first["review_id"]) == ("positive", 9, "R27ZP1F1CD0C3Y")
    assert not any("<br" in token or "&#" in token for row in output["tokens"].to_pylist() for token in row)
    # And the ledger records the stage and the root's counts
    stored = pipeline.record(processed.file_id)
    assert stored.stages == {"etl": "completed"}
    assert stored.counters["etl_rows_in"] == GIFT_CARD_ROWS
    assert stored.counters[f"etl_dropped:{EMPTY_AFTER_CLEANING}"] == GIFT_CARD_EMPTY_AFTER_CLEANING
    assert pipeline.details("FileRejected") == []


def test_root_complete_is_set_only_on_the_last_of_three_parts_to_finish(
    pipeline: Pipeline, gift_card: pa.Table
) -> None:
    # Given the file validated as three chunks
    root = new_root_id()
    slices = [(0, 500), (500, 500), (1000, GIFT_CARD_ROWS - 1000)]
    parts = [
        put_processed(
            pipeline, parquet_bytes(gift_card.slice(start, length)), length, root_file_id=root, part_index=index,
            part_count=3,
        )
        for index, (start, length) in enumerate(slices)
    ]  # fmt: skip

    # When the parts finish ETL out of order
    for index in (2, 0, 1):
        assert run_etl(file_validated(parts[index])) == {"batchItemFailures": []}

    # Then only the event of the last part to finish says the root is complete
    completed = pipeline.details("EtlCompleted")
    assert [(event["part_index"], event["root_complete"]) for event in completed] == [(2, False), (0, False), (1, True)]
    assert sum(event["rows_in"] for event in completed) == GIFT_CARD_ROWS
    assert [event["etl_key"] for event in completed] == [layout.etl_key("train", root, index) for index in (2, 0, 1)]
    assert pipeline.record(root).counters["etl_rows_in"] == GIFT_CARD_ROWS


def test_a_part_the_validator_rejected_still_counts_and_can_complete_its_root(
    pipeline: Pipeline, gift_card: pa.Table
) -> None:
    # Given a file chunked in two parts, the first validated, the second rejected by the validator
    root = new_root_id()
    first = put_processed(
        pipeline, parquet_bytes(gift_card.slice(0, 700)), 700, root_file_id=root, part_index=0, part_count=2
    )
    rejected = sample_event("FileRejected")
    rejected["id"] = str(uuid.uuid4())
    rejected["detail"].update(
        correlation_id=root,
        file_id=f"{root[:24]}part0001",
        root_file_id=root,
        dataset="train",
        part_index=1,
        part_count=2,
    )

    # When the good part finishes ETL first and the rejection of the other arrives last (twice)
    assert run_etl(file_validated(first)) == {"batchItemFailures": []}
    assert run_etl(rejected) == {"batchItemFailures": []}
    assert run_etl(copy.deepcopy(rejected)) == {"batchItemFailures": []}

    # Then each part has one EtlCompleted, the skipped one without an etl key, and it completes the root
    completed = pipeline.details("EtlCompleted")
    assert [(event["part_index"], event["etl_key"] is None, event["root_complete"]) for event in completed] == [
        (0, False, False),
        (1, True, True),
    ]
    assert "rejected by the validator" in completed[1]["skipped_reason"]
    assert pipeline.record(root).counters["etl_parts_skipped"] == 1


def test_the_same_file_delivered_twice_is_transformed_once(pipeline: Pipeline, gift_card: pa.Table) -> None:
    processed = put_processed(pipeline, parquet_bytes(gift_card), GIFT_CARD_ROWS, root_file_id=new_root_id())
    event = file_validated(processed)

    assert run_etl(event) == {"batchItemFailures": []}
    assert run_etl(copy.deepcopy(event)) == {"batchItemFailures": []}

    assert len(pipeline.details("EtlCompleted")) == 1
    assert pipeline.versions(layout.etl_key("train", processed.root_file_id, None)) == 1
    assert pipeline.record(processed.root_file_id).counters["etl_rows_in"] == GIFT_CARD_ROWS


@pytest.mark.parametrize(
    ("damage", "check"),
    [
        (lambda body: body[: len(body) // 2], "readability"),
        (lambda body: b"PAR1" + bytes(200) + b"PAR1", "readability"),
        (lambda body: parquet_bytes(pq.read_table(io.BytesIO(body)).drop_columns(["text"])), "columns"),
    ],
    ids=["truncated", "not-parquet", "no-text-column"],
)
def test_a_processed_file_that_cannot_be_transformed_goes_to_errors_with_a_report(
    pipeline: Pipeline, gift_card: pa.Table, damage: Any, check: str
) -> None:
    # Given a processed file that is damaged, or lacks a canonical column
    body = damage(parquet_bytes(gift_card))
    processed = put_processed(pipeline, body, GIFT_CARD_ROWS, root_file_id=new_root_id())

    # When the ETL gets its FileValidated
    assert run_etl(file_validated(processed)) == {"batchItemFailures": []}

    # Then the file is moved under errors/ with a report beside it, and FileRejected says why
    (rejected,) = pipeline.details("FileRejected")
    FileRejected.model_validate(rejected)
    error_key = f"errors/train/processed/{processed.root_file_id}/part-00000.parquet"
    assert (rejected["stage"], rejected["check"]) == ("etl", check)
    assert (rejected["source_key"], rejected["error_key"]) == (processed.processed_key, error_key)
    assert rejected["report_key"] == error_key + ".report.json"
    report = json.loads(pipeline.aws.s3.get_object(Bucket=BUCKET, Key=rejected["report_key"])["Body"].read())
    assert (report["stage"], report["check"], report["file_id"]) == ("etl", check, processed.file_id)
    assert pipeline.aws.s3.get_object(Bucket=BUCKET, Key=error_key)["Body"].read() == body
    assert "Contents" not in pipeline.aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="processed/")
    # And nothing reached etl/, and the ledger has the file rejected by the ETL
    assert pipeline.details("EtlCompleted") == []
    assert "Contents" not in pipeline.aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="etl/")
    stored = pipeline.record(processed.file_id)
    assert (stored.status, stored.stage, stored.check, stored.stages) == ("rejected", "etl", check, {"etl": "rejected"})


def test_a_poison_message_fails_every_delivery_and_publishes_nothing(pipeline: Pipeline) -> None:
    # Given a FileValidated for a processed file that is not there
    processed = ProcessedFile(
        file_id=(root := new_root_id()),
        root_file_id=root,
        processed_key=layout.processed_key("train", root, None),
        part_index=None,
        part_count=1,
        dataset="train",
        rows=10,
    )
    pipeline.ledger.register(
        FileRecord(
            file_id=root, root_file_id=root, correlation_id=root, bucket=BUCKET, key="raw/train/x.tsv",
            dataset="train", origin="s3",
        )
    )  # fmt: skip
    event = file_validated(processed)

    # When it is delivered, and redelivered (as SQS does until the redrive count sends it to the DLQ)
    results = [run_etl(event, message_id=f"m{attempt}") for attempt in range(3)]

    # Then every delivery is a batch item failure, never a silent success, and nothing is published
    assert results == [{"batchItemFailures": [{"itemIdentifier": f"m{attempt}"}]} for attempt in range(3)]
    assert pipeline.published() == []
    assert pipeline.record(root).stages == {}


def test_an_inference_file_keeps_its_three_star_rows_whatever_the_label_target(
    pipeline: Pipeline, gift_card: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWS_ETL_LABEL_TARGET", "binary")
    training = put_processed(pipeline, parquet_bytes(gift_card), GIFT_CARD_ROWS, root_file_id=new_root_id())
    inference = put_processed(
        pipeline, parquet_bytes(gift_card), GIFT_CARD_ROWS, root_file_id=new_root_id(), dataset="inference"
    )

    assert run_etl(file_validated(training)) == run_etl(file_validated(inference)) == {"batchItemFailures": []}

    by_dataset = {event["dataset"]: event for event in pipeline.details("EtlCompleted")}
    assert by_dataset["train"]["rows_dropped"] == {
        NEUTRAL_DROPPED_FOR_BINARY: GIFT_CARD_THREE_STARS,
        EMPTY_AFTER_CLEANING: GIFT_CARD_EMPTY_AFTER_CLEANING,
    }
    assert by_dataset["inference"]["rows_dropped"] == {EMPTY_AFTER_CLEANING: GIFT_CARD_EMPTY_AFTER_CLEANING}
    labels = pipeline.read_parquet(by_dataset["inference"]["etl_key"])["label"]
    assert labels.null_count == len(labels)
