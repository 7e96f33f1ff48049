"""The receiver and validator handlers, called with SQS-wrapped events, against moto in-process.

What they publish is read back from an SQS queue subscribed to the bus by a catch-all rule, the
way a downstream consumer would see it.
"""

from __future__ import annotations

import copy
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from services.receiver.app import lambda_handler as receiver_handler
from services.receiver.service import ObjectAnnouncement, receive_object
from services.validator.app import lambda_handler
from services.validator.service import pinned_to_current_version, register_admitted
from shared import layout
from shared.canonical import canonical_arrow_schema
from shared.events import FileReceived, FileValidated
from shared.ledger import file_id_for
from shared.publisher import EventPublisher
from shared.resources import resources_for
from shared.samples import sample_event, sample_s3_object_created, sqs_wrapped
from shared.settings import PipelineSettings
from shared.storage import ObjectStore
from tests.data_paths import GIFT_CARD_DETECTED, SHARED_DATA
from tests.integration.conftest import MotoStack, lambda_context

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

GIFT_CARD = SHARED_DATA / "aws-pds-us-gift-card-sample" / "amazon_reviews_us_Gift_Card_v1_00.tsv"
GIFT_CARD_KEY = "raw/train/amazon_reviews_us_Gift_Card_v1_00.tsv"
OTHER_BUCKET = "someone-elses-bucket"


class Pipeline(MotoStack):
    """The stack, able to upload a file as S3 would announce it."""

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """Put an object and return the S3 "Object Created" event S3 would send for it."""
        response = self.aws.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        event = sample_s3_object_created(key)
        event["id"] = str(uuid.uuid4())
        event["detail"]["bucket"]["name"] = self.bucket
        event["resources"] = [f"arn:aws:s3:::{self.bucket}"]
        event["detail"]["object"].update(
            size=len(body), etag=response["ETag"].strip('"'), **{"version-id": response["VersionId"]}
        )
        return event


@pytest.fixture(scope="module")
def stack_type() -> type[MotoStack]:
    return Pipeline


def file_received_event(detail: dict[str, Any]) -> dict[str, Any]:
    event = sample_event("FileReceived")
    event["id"] = str(uuid.uuid4())
    event["detail"] = detail
    return event


def receive(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = receiver_handler(sqs_wrapped(event, "receiver-queue", str(uuid.uuid4())), lambda_context())
    return result


def validate(event: dict[str, Any]) -> dict[str, Any]:
    return validate_sqs_event(sqs_wrapped(event, "validator-queue", str(uuid.uuid4())))


def validate_sqs_event(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = lambda_handler(event, lambda_context())
    return result


def batch(*bodies: str) -> dict[str, Any]:
    """An SQS event with one record per body, message ids m0, m1, …"""
    records = [
        {**sqs_wrapped({}, "validator-queue", f"m{index}")["Records"][0], "body": body}
        for index, body in enumerate(bodies)
    ]
    return {"Records": records}


@pytest.fixture(scope="module")
def gift_card() -> bytes:
    return GIFT_CARD.read_bytes()


def received_gift_card(pipeline: Pipeline, gift_card: bytes) -> dict[str, Any]:
    """Upload the real file under raw/train/ and run the receiver: the FileReceived event it published."""
    notification = pipeline.upload(GIFT_CARD_KEY, gift_card)
    assert receive(notification) == {"batchItemFailures": []}
    (event,) = [event for event in pipeline.published() if event["detail-type"] == "FileReceived"]
    return event


# -- the receiver -------------------------------------------------------------------------------


def test_receiver_accepts_a_real_upload_with_the_ledger_as_written(pipeline: Pipeline, gift_card: bytes) -> None:
    notification = pipeline.upload(GIFT_CARD_KEY, gift_card)

    assert receive(notification) == {"batchItemFailures": []}


def test_receiver_announces_an_upload_once_and_records_it(pipeline: Pipeline, gift_card: bytes) -> None:
    # Given the real Gift Card file uploaded under raw/train/
    notification = pipeline.upload(GIFT_CARD_KEY, gift_card)
    version_id = notification["detail"]["object"]["version-id"]

    # When S3's notification reaches the receiver, twice (at-least-once delivery)
    first = receive(notification)
    redelivered = copy.deepcopy(notification)
    second = receive(redelivered)

    # Then one FileReceived is published, naming the object exactly
    assert first == second == {"batchItemFailures": []}
    (received,) = pipeline.details("FileReceived")
    assert received["bucket"] == pipeline.bucket
    assert received["key"] == GIFT_CARD_KEY
    assert received["version_id"] == version_id
    assert received["size"] == len(gift_card)
    assert (received["dataset"], received["origin"]) == ("train", "s3")
    # And the ledger has one record of it, under the file id every later stage will use
    file_id = file_id_for(pipeline.bucket, GIFT_CARD_KEY, version_id)
    assert received["correlation_id"] == file_id
    stored = pipeline.record(file_id)
    assert (stored.status, stored.key, stored.size, stored.dataset) == ("received", GIFT_CARD_KEY, 301983, "train")
    assert [item.file_id for item in pipeline.ledger.files()] == [file_id]


def test_receiver_refuses_a_key_outside_the_inbound_prefixes_without_announcing_it(pipeline: Pipeline) -> None:
    notification = pipeline.upload("processed/train/sneaky.tsv", b"a\tb\n1\t2\n")
    before = pipeline.object_versions()

    assert receive(notification) == {"batchItemFailures": []}

    assert pipeline.details("FileReceived") == []
    (rejected,) = pipeline.details("FileRejected")
    assert (rejected["stage"], rejected["check"], rejected["error_key"]) == ("receiver", "key", None)
    assert pipeline.object_versions() == before


# -- the validator ------------------------------------------------------------------------------


def test_validator_validates_the_real_file_once_however_often_it_is_announced(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    # Given the FileReceived the receiver published for the real Gift Card file
    received = received_gift_card(pipeline, gift_card)
    file_id = pipeline.record(received["detail"]["correlation_id"]).file_id

    # When the validator gets it twice
    assert validate(received) == {"batchItemFailures": []}
    assert validate(copy.deepcopy(received)) == {"batchItemFailures": []}

    # Then one FileValidated, for all of the file's rows, and the ledger says validated
    (validated,) = pipeline.details("FileValidated")
    FileValidated.model_validate(validated)
    data_rows = sum(1 for line in gift_card.decode("utf-8").splitlines() if line.strip()) - 1  # less the header
    assert validated["file_id"] == validated["root_file_id"] == file_id
    assert validated["source_key"] == GIFT_CARD_KEY
    assert validated["processed_key"] == layout.processed_key("train", file_id, None)
    assert validated["rows_in"] == data_rows == validated["rows_out"]
    assert pipeline.details("FileRejected") == []
    stored = pipeline.record(file_id)
    assert (stored.status, stored.stage, stored.processed_key) == ("validated", "validator", validated["processed_key"])
    # And processed/ holds the file's rows in the canonical schema, mapped from the AWS TSV layout
    assert (validated["layout"], stored.layout) == ("aws-customer-reviews", "aws-customer-reviews")
    assert validated["kept_columns"] == ["review_id", "star_rating", "review_headline", "review_body"]
    assert "customer_id" in validated["dropped_columns"] and validated["rows_dropped"] == {}
    # And the event says which column became which role, and how the file was read
    assert validated["column_roles"] == {
        "review_id": "review_id",
        "title": "review_headline",
        "text": "review_body",
        "rating": "star_rating",
    }
    assert validated["detected"]["delimiter"] == "\t" and validated["detected"]["quoting"] is False
    assert (validated["detected"]["preamble_lines"], validated["malformed_lines"]) == (0, [])
    assert stored.detected == validated["detected"]
    processed = pq.read_table(
        io.BytesIO(pipeline.aws.s3.get_object(Bucket=pipeline.bucket, Key=validated["processed_key"])["Body"].read())
    )
    assert processed.schema == canonical_arrow_schema() and processed.num_rows == data_rows
    # And the raw file is left where it landed
    assert pipeline.aws.s3.head_object(Bucket=pipeline.bucket, Key=GIFT_CARD_KEY)["ContentLength"] == len(gift_card)


@pytest.mark.parametrize(
    ("forgery", "why"),
    [
        ({"bucket": OTHER_BUCKET}, "another bucket"),
        ({"key": "raw/train/../../etc/passwd"}, "path traversal"),
        ({"key": "processed/train/x.csv"}, "outside the inbound prefixes"),
        ({"key": "raw/train/../inference/amazon_reviews_us_Gift_Card_v1_00.tsv"}, "traversal that stays inside"),
        ({"dataset": "inference"}, "dataset not matching the key"),
        ({"key": "chunks/train/abc/part-00000.tsv"}, "a chunk key without part information"),
    ],
)
def test_a_forged_announcement_is_rejected_and_nothing_in_any_bucket_is_touched(
    pipeline: Pipeline, gift_card: bytes, forgery: dict[str, Any], why: str
) -> None:
    # Given real objects in the pipeline bucket and in another one
    pipeline.aws.s3.create_bucket(Bucket=OTHER_BUCKET)
    pipeline.aws.s3.put_object(Bucket=OTHER_BUCKET, Key=GIFT_CARD_KEY, Body=gift_card)
    pipeline.upload(GIFT_CARD_KEY, gift_card)
    pipeline.upload("processed/train/x.csv", gift_card)
    pipeline.upload("chunks/train/abc/part-00000.tsv", gift_card)
    before = (pipeline.object_versions(), pipeline.object_versions(OTHER_BUCKET))

    # When an external system announces a file that is not one the validator may act on
    detail = {
        "bucket": pipeline.bucket,
        "key": GIFT_CARD_KEY,
        "size": len(gift_card),
        "dataset": "train",
        "origin": "external",
        **forgery,
    }
    result = validate(file_received_event(detail))

    # Then it is answered with FileRejected(check=key), and no object anywhere was written, moved or deleted
    assert result == {"batchItemFailures": []}
    (rejected,) = pipeline.details("FileRejected")
    assert (rejected["stage"], rejected["check"]) == ("validator", "key")
    assert rejected["source_key"] == detail["key"]
    assert rejected["error_key"] is None and rejected["report_key"] is None
    assert pipeline.details("FileValidated") == pipeline.details("FileOversized") == []
    assert (pipeline.object_versions(), pipeline.object_versions(OTHER_BUCKET)) == before
    stored = pipeline.record(rejected["file_id"])
    assert (stored.status, stored.check) == ("rejected", "key")


def test_a_file_above_the_size_limit_goes_to_the_chunker_and_stays_in_raw(
    pipeline: Pipeline, gift_card: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a size limit below the real file's size
    monkeypatch.setenv("REVIEWS_VALIDATOR_MAX_SIZE_BYTES", str(100_000))
    received = received_gift_card(pipeline, gift_card)
    before = pipeline.object_versions()

    assert validate(received) == {"batchItemFailures": []}

    (oversized,) = pipeline.details("FileOversized")
    assert (oversized["key"], oversized["size"], oversized["max_size_bytes"]) == (GIFT_CARD_KEY, 301983, 100_000)
    assert oversized["version_id"] == received["detail"]["version_id"]
    # The head passed the format, readability and columns checks: the chunker is told what it will split
    assert oversized["detected"] == GIFT_CARD_DETECTED
    assert pipeline.details("FileValidated") == pipeline.details("FileRejected") == []
    assert pipeline.record(oversized["file_id"]).status == "chunking"
    assert pipeline.object_versions() == before


def test_an_empty_file_is_moved_to_errors_with_a_report_beside_it(pipeline: Pipeline) -> None:
    # Given an empty file uploaded under raw/train/ and received
    key = "raw/train/amazon_reviews_us_Gift_Card_empty.tsv"
    receive(pipeline.upload(key, b""))
    (received,) = [event for event in pipeline.published() if event["detail-type"] == "FileReceived"]

    # When it is validated
    assert validate(received) == {"batchItemFailures": []}

    # Then it is rejected by the size check, moved under errors/ with a report naming check and reason
    (rejected,) = pipeline.details("FileRejected")
    error_key = "errors/train/raw/amazon_reviews_us_Gift_Card_empty.tsv"
    assert (rejected["check"], rejected["stage"]) == ("size", "validator")
    assert rejected["error_key"] == error_key
    assert rejected["report_key"] == error_key + ".report.json"
    report = json.loads(pipeline.aws.s3.get_object(Bucket=pipeline.bucket, Key=rejected["report_key"])["Body"].read())
    assert report["check"] == "size"
    assert report["reason"] == rejected["reason"]
    assert "0 bytes" in report["reason"]
    assert report["source_key"] == key
    assert pipeline.aws.s3.head_object(Bucket=pipeline.bucket, Key=error_key)["ContentLength"] == 0
    # And the raw object is gone, and the ledger says where it went
    assert key not in [
        item.get("Key") for item in pipeline.aws.s3.list_objects_v2(Bucket=pipeline.bucket).get("Contents", [])
    ]
    stored = pipeline.record(rejected["file_id"])
    assert (stored.status, stored.check, stored.error_key, stored.report_key) == (
        "rejected",
        "size",
        error_key,
        rejected["report_key"],
    )
    assert pipeline.details("FileValidated") == []


def test_a_file_whose_every_row_is_dropped_says_how_many_rows_were_read(pipeline: Pipeline, gift_card: bytes) -> None:
    # Given the real Gift Card file with every rating blanked, uploaded for training
    header, *rows = gift_card.rstrip(b"\n").split(b"\n")
    star = header.split(b"\t").index(b"star_rating")
    blanked = [
        b"\t".join(field if index != star else b"" for index, field in enumerate(row.split(b"\t"))) for row in rows
    ]
    key = "raw/train/gift_card_without_ratings.tsv"
    receive(pipeline.upload(key, b"\n".join([header, *blanked]) + b"\n"))
    (received,) = [event for event in pipeline.published() if event["detail-type"] == "FileReceived"]

    assert validate(received) == {"batchItemFailures": []}

    # Then it is rejected, and the ledger (and so the run summary) counts the 1,452 rows it read, all dropped
    (rejected,) = pipeline.details("FileRejected")
    stored = pipeline.record(rejected["file_id"])
    assert (stored.status, stored.rows_in, stored.rows_out) == ("rejected", 1452, 0)
    assert stored.rows_dropped == {"missing_rating": 1452}
    report = json.loads(pipeline.aws.s3.get_object(Bucket=pipeline.bucket, Key=rejected["report_key"])["Body"].read())
    assert report["details"]["rows_in"] == 1452


def test_a_corrected_reupload_of_a_rejected_file_is_processed_afresh(pipeline: Pipeline, gift_card: bytes) -> None:
    # Given a file rejected (empty) under a key
    receive(pipeline.upload(GIFT_CARD_KEY, b""))
    (first,) = [event for event in pipeline.published() if event["detail-type"] == "FileReceived"]
    assert validate(first) == {"batchItemFailures": []}
    (rejected,) = pipeline.details("FileRejected")

    # When the corrected file is uploaded under the same key and announced
    receive(pipeline.upload(GIFT_CARD_KEY, gift_card))
    second = [event for event in pipeline.published() if event["detail-type"] == "FileReceived"][-1]
    assert validate(second) == {"batchItemFailures": []}

    # Then the new version is a new file, validated, and the rejected one keeps its outcome
    (validated,) = pipeline.details("FileValidated")
    assert validated["file_id"] != rejected["file_id"]
    assert validated["rows_in"] == 1452
    assert pipeline.record(rejected["file_id"]).status == "rejected"
    assert pipeline.record(validated["file_id"]).status == "validated"
    assert pipeline.aws.s3.get_object(Bucket=pipeline.bucket, Key=GIFT_CARD_KEY)["Body"].read() == gift_card


class _ErrorBody:
    """The raw body of an S3 error answer, as botocore reads it."""

    def __init__(self, code: str) -> None:
        self._body = f"<Error><Code>{code}</Code><Message>injected by the test</Message></Error>".encode()

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_throttling_and_server_errors_from_s3_are_retried_and_the_file_still_validates(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    # Given the handler's own S3 client answering its next reads with throttling and 500s
    received = received_gift_card(pipeline, gift_card)
    s3 = resources_for(PipelineSettings()).clients.s3  # the handler's own client: settings from the environment
    faults = [(503, "SlowDown"), (500, "InternalError"), (503, "SlowDown")]
    injected: list[int] = []

    # Typed Any: a before-send hook that returns a response short-circuits the request.
    def inject(request: Any, **_: Any) -> Any:
        if len(injected) == len(faults):
            return None
        status, code = faults[len(injected)]
        injected.append(status)
        return AWSResponse(request.url, status, HTTPHeaders(), _ErrorBody(code))

    s3.meta.events.register("before-send.s3.GetObject", inject)
    try:
        # When the file is validated
        result = validate(received)
    finally:
        s3.meta.events.unregister("before-send.s3.GetObject", inject)

    # Then every fault was met, retried with backoff, and the file validated once
    assert injected == [503, 500, 503]
    assert result == {"batchItemFailures": []}
    (validated,) = pipeline.details("FileValidated")
    assert validated["rows_in"] == 1452


def test_bad_messages_fail_alone_and_the_rest_of_the_batch_succeeds(pipeline: Pipeline, gift_card: bytes) -> None:
    # Given a batch with a body that is not JSON, a valid FileReceived, a FileReceived with a negative
    # size, an event this service does not consume, and JSON that is not an object
    received = received_gift_card(pipeline, gift_card)
    negative = copy.deepcopy(received)
    negative["detail"]["size"] = -1
    negative["detail"]["key"] = "raw/train/other.tsv"
    unrelated = sample_event("ModelTrained")

    result = validate_batch(
        "this is { not json",
        json.dumps(received),
        json.dumps(negative),
        json.dumps(unrelated),
        "[1, 2, 3]",
    )

    # Then exactly the bad records are handed back to SQS, and the good one was validated
    assert sorted(item["itemIdentifier"] for item in result["batchItemFailures"]) == ["m0", "m2", "m3", "m4"]
    (validated,) = pipeline.details("FileValidated")
    assert validated["source_key"] == GIFT_CARD_KEY
    assert pipeline.details("FileRejected") == []


def validate_batch(*bodies: str) -> dict[str, Any]:
    return validate_sqs_event(batch(*bodies))


def test_a_batch_of_only_bad_messages_is_handed_back_without_raising(pipeline: Pipeline) -> None:
    result = validate_batch("this is { not json")

    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_receiver_hands_back_a_message_that_is_not_an_s3_notification(pipeline: Pipeline, gift_card: bytes) -> None:
    notification = pipeline.upload(GIFT_CARD_KEY, gift_card)
    broken = copy.deepcopy(notification)
    del broken["detail"]["object"]["key"]
    event = {
        "Records": [
            {**sqs_wrapped(notification, "receiver-queue", "good")["Records"][0]},
            {**sqs_wrapped(broken, "receiver-queue", "broken")["Records"][0]},
        ]
    }

    result = receiver_handler(event, lambda_context())

    assert result == {"batchItemFailures": [{"itemIdentifier": "broken"}]}
    assert len(pipeline.details("FileReceived")) == 1


def test_the_same_object_version_announced_by_s3_and_by_an_external_system_is_validated_once(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    from_s3 = received_gift_card(pipeline, gift_card)
    external = copy.deepcopy(from_s3)
    external["detail"].update(etag="", origin="external", correlation_id="")

    validate(from_s3)
    validate(external)

    assert len(pipeline.details("FileValidated")) == 1


@pytest.mark.parametrize("names_the_version", [True, False], ids=["with its version", "without a version"])
def test_a_forged_dataset_for_a_settled_file_is_refused_every_time_and_the_file_keeps_its_outcome(
    pipeline: Pipeline, gift_card: bytes, names_the_version: bool
) -> None:
    # Given the real file received and validated
    received = received_gift_card(pipeline, gift_card)
    validate(received)
    file_id = pipeline.record(received["detail"]["correlation_id"]).file_id
    settled = pipeline.record(file_id)
    assert settled.status == "validated"
    before = pipeline.object_versions()

    # When someone announces the same object, twice, with the wrong dataset
    forged = copy.deepcopy(received)
    forged["detail"].update(dataset="inference", etag="", origin="external")
    if not names_the_version:
        forged["detail"]["version_id"] = None
    assert validate(forged) == validate(copy.deepcopy(forged)) == {"batchItemFailures": []}

    # Then each announcement is answered with FileRejected(check=key), and nothing was validated again
    rejections = pipeline.details("FileRejected")
    assert [(rejected["stage"], rejected["check"]) for rejected in rejections] == [("validator", "key")] * 2
    assert all("does not match the key's folder" in rejected["reason"] for rejected in rejections)
    assert len(pipeline.details("FileValidated")) == 1
    # And the file's record is exactly as it was: status, counts and report untouched, no object touched
    assert pipeline.record(file_id) == settled
    assert pipeline.object_versions() == before


def idempotency_results(pipeline: Pipeline, stage: str) -> list[dict[str, Any]]:
    """The results Powertools stored for a stage's completed deliveries."""
    items = pipeline.aws.dynamodb.query(
        TableName=pipeline.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"idempotency#{stage}"}},
    )["Items"]
    return [json.loads(item["data"]["S"]) for item in items if "data" in item]


def forget_idempotency_records(pipeline: Pipeline, stage: str) -> None:
    """As the records' TTL does, long after a file settled."""
    items = pipeline.aws.dynamodb.query(
        TableName=pipeline.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"idempotency#{stage}"}},
    )["Items"]
    for item in items:
        pipeline.aws.dynamodb.delete_item(TableName=pipeline.table, Key={"pk": item["pk"], "sk": item["sk"]})


def test_a_settled_file_announced_again_is_a_duplicate_of_its_outcome_not_a_rejection(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    # Given the real file validated, and its idempotency record gone (as after its TTL)
    received = received_gift_card(pipeline, gift_card)
    assert validate(received) == {"batchItemFailures": []}
    assert idempotency_results(pipeline, "validator") == [{"status": "validated"}]
    file_id = pipeline.record(received["detail"]["correlation_id"]).file_id
    settled = pipeline.record(file_id)
    forget_idempotency_records(pipeline, "validator")

    # When the same object version is announced again
    assert validate(copy.deepcopy(received)) == {"batchItemFailures": []}

    # Then the delivery's stored result says it was a duplicate of a validated file; nothing else changes
    assert idempotency_results(pipeline, "validator") == [{"status": "duplicate", "settled_as": "validated"}]
    assert len(pipeline.details("FileValidated")) == 1
    assert pipeline.details("FileRejected") == []
    assert pipeline.record(file_id) == settled


def versionless_announcement(pipeline: Pipeline, key: str, size: int, dataset: str = "train") -> dict[str, Any]:
    """A FileReceived as README shows an external system publishing it: bucket, key, size and dataset only."""
    return file_received_event({"bucket": pipeline.bucket, "key": key, "size": size, "dataset": dataset})


def test_a_versionless_announcement_of_a_received_object_does_not_validate_it_again(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    # Given the real file uploaded, announced by S3 and validated
    received = received_gift_card(pipeline, gift_card)
    validate(received)
    file_id = pipeline.record(received["detail"]["correlation_id"]).file_id
    settled = pipeline.record(file_id)
    before = pipeline.object_versions()

    # When an external system announces it without a version or an ETag
    result = validate(versionless_announcement(pipeline, GIFT_CARD_KEY, len(gift_card)))

    # Then it is the same object version, already done: nothing is validated, written or refused
    assert result == {"batchItemFailures": []}
    assert len(pipeline.details("FileValidated")) == 1
    assert pipeline.details("FileRejected") == pipeline.details("FileOversized") == []
    assert [record.file_id for record in pipeline.ledger.files()] == [file_id]
    assert pipeline.record(file_id) == settled
    assert pipeline.object_versions() == before


def test_an_overwritten_object_announced_without_a_version_is_validated_as_its_new_version(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    # Given the real file validated, then overwritten under the same key by its first 500 reviews
    first = received_gift_card(pipeline, gift_card)
    validate(first)
    (validated_first,) = pipeline.details("FileValidated")
    shorter = b"\n".join(gift_card.split(b"\n")[:501]) + b"\n"
    overwrite = pipeline.upload(GIFT_CARD_KEY, shorter)
    new_version = overwrite["detail"]["object"]["version-id"]

    # When an external system announces the key without a version, before S3's notification arrives
    assert validate(versionless_announcement(pipeline, GIFT_CARD_KEY, len(gift_card))) == {"batchItemFailures": []}

    # Then the new version is validated afresh, under the id the receiver gives that version
    validated_first, validated_second = pipeline.details("FileValidated")
    new_file_id = file_id_for(pipeline.bucket, GIFT_CARD_KEY, new_version)
    assert validated_second["file_id"] == new_file_id != validated_first["file_id"]
    assert validated_second["rows_in"] == 500
    stored = pipeline.record(new_file_id)
    assert (stored.status, stored.version_id, stored.size) == ("validated", new_version, len(shorter))
    assert pipeline.record(validated_first["file_id"]).rows_in == 1452
    # And when S3's notification of that version then arrives, it is the same file: not validated again
    receive(overwrite)
    validate([event for event in pipeline.published() if event["detail-type"] == "FileReceived"][-1])
    assert len(pipeline.details("FileValidated")) == 2
    assert sorted(record.file_id for record in pipeline.ledger.files()) == sorted(
        [validated_first["file_id"], new_file_id]
    )


def test_an_unchanged_object_announced_without_a_version_again_and_again_is_validated_once(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    # Given the real file put in raw/train/ (no S3 notification reaches the pipeline)
    version_id = pipeline.upload(GIFT_CARD_KEY, gift_card)["detail"]["object"]["version-id"]
    announcement = versionless_announcement(pipeline, GIFT_CARD_KEY, 1)  # a wrong size: S3's is taken

    # When an external system announces it three times, without a version
    for _ in range(3):
        assert validate(copy.deepcopy(announcement)) == {"batchItemFailures": []}

    # Then it is validated once, as the version now under the key, with the object's own size and ETag
    (validated,) = pipeline.details("FileValidated")
    file_id = file_id_for(pipeline.bucket, GIFT_CARD_KEY, version_id)
    assert validated["file_id"] == file_id and validated["rows_in"] == 1452
    (stored,) = pipeline.ledger.files()
    assert (stored.file_id, stored.version_id, stored.size) == (file_id, version_id, len(gift_card))
    assert stored.etag == pipeline.aws.s3.head_object(Bucket=pipeline.bucket, Key=GIFT_CARD_KEY)["ETag"].strip('"')
    assert (stored.origin, stored.status) == ("external", "validated")


def test_an_announcement_of_a_key_with_no_object_is_refused_without_a_retry(pipeline: Pipeline) -> None:
    key = "raw/train/never_uploaded.tsv"

    results = [validate(versionless_announcement(pipeline, key, 1000)) for _ in range(2)]

    # Every announcement is answered (no batch item failure for SQS to redeliver), and nothing is written
    assert results == [{"batchItemFailures": []}] * 2
    rejections = pipeline.details("FileRejected")
    assert [(rejected["check"], rejected["source_key"]) for rejected in rejections] == [("key", key)] * 2
    assert "no object at" in rejections[0]["reason"]
    assert rejections[0]["error_key"] is None and rejections[0]["report_key"] is None
    assert pipeline.object_versions() == []
    (stored,) = pipeline.ledger.files()
    assert (stored.status, stored.check, stored.key) == ("rejected", "key", key)


def test_an_announcement_whose_etag_is_not_the_current_objects_is_refused(pipeline: Pipeline, gift_card: bytes) -> None:
    # Given the real file put in raw/train/, and an announcement naming other content by its ETag
    pipeline.upload(GIFT_CARD_KEY, gift_card)
    announcement = versionless_announcement(pipeline, GIFT_CARD_KEY, len(gift_card))
    announcement["detail"]["etag"] = "0123456789abcdef0123456789abcdef"

    assert validate(announcement) == {"batchItemFailures": []}

    # Then the current object is not validated under the id of content no longer there
    (rejected,) = pipeline.details("FileRejected")
    assert rejected["check"] == "key" and "not the one announced" in rejected["reason"]
    assert pipeline.details("FileValidated") == []


def test_an_object_in_an_unversioned_bucket_is_pinned_to_its_etag_as_the_receiver_keys_it(
    pipeline: Pipeline, gift_card: bytes
) -> None:
    # Given the real file in a bucket without versioning (S3 gives no version id), received from S3's notification
    pipeline.aws.s3.create_bucket(Bucket=OTHER_BUCKET)
    etag = pipeline.aws.s3.put_object(Bucket=OTHER_BUCKET, Key=GIFT_CARD_KEY, Body=gift_card)["ETag"].strip('"')
    store = ObjectStore(pipeline.aws.s3, OTHER_BUCKET)
    notified = ObjectAnnouncement(
        bucket=OTHER_BUCKET, key=GIFT_CARD_KEY, size=len(gift_card), etag=etag, version_id=None
    )
    publisher = EventPublisher(pipeline.aws.events, pipeline.bus, "receiver")
    from_s3 = receive_object(notified, store=store, ledger=pipeline.ledger, publisher=publisher)
    assert from_s3 is not None

    # When the same object is announced without a version or an ETag, and pinned
    announced = FileReceived(
        correlation_id="", bucket=OTHER_BUCKET, key=GIFT_CARD_KEY, size=0, dataset="train", origin="external"
    )
    pinned, problem = pinned_to_current_version(announced, store)

    # Then its ETag is its identity, and it is the file the receiver recorded, not a second one
    assert problem is None
    assert (pinned.version_id, pinned.etag, pinned.size) == (None, etag, len(gift_card))
    admitted = register_admitted(pinned, pipeline.ledger)
    assert admitted is not None and admitted.file_id == from_s3.correlation_id
    assert [record.file_id for record in pipeline.ledger.files()] == [admitted.file_id]


def test_a_received_event_is_a_valid_file_received(pipeline: Pipeline, gift_card: bytes) -> None:
    # What the receiver publishes must parse as the FileReceived external producers are held to.
    received = received_gift_card(pipeline, gift_card)

    parsed = FileReceived.model_validate(received["detail"])

    assert received["source"] == "amazon-reviews-nlp.receiver"
    assert parsed.key == GIFT_CARD_KEY
