"""shared.ledger.FileLedger against DynamoDB (moto, in-process): records, the part barrier, idempotency."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from shared.ledger import BarrierState, FileLedger, FileRecord, create_ledger_table, file_id_for
from tests.integration.conftest import BUCKET, REGION, AwsClients, lambda_context

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def new_client() -> DynamoDBClient:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table(aws: AwsClients) -> str:
    """A new ledger table of its own for each test, in the module's in-process AWS."""
    name = f"reviews-ledger-{uuid.uuid4().hex[:12]}"
    create_ledger_table(aws.dynamodb, name)
    return name


@pytest.fixture
def ledger(aws: AwsClients, table: str) -> FileLedger:
    return FileLedger(aws.dynamodb, table)


def test_a_record_with_float_timestamps_can_be_registered_and_updated(aws: AwsClients, table: str) -> None:
    ledger = FileLedger(aws.dynamodb, table)
    first = record()

    assert ledger.register(first) is True
    ledger.update(first.file_id, status="validated")
    ledger.set_stage_status(first.file_id, "etl", "completed")
    stored = ledger.get(first.file_id)
    assert stored is not None
    assert stored.received_at == pytest.approx(first.received_at)


def record(
    key: str = "raw/train/amazon_reviews_us_Gift_Card_v1_00.tsv", version: str = "v1", **fields: Any
) -> FileRecord:
    file_id = file_id_for(BUCKET, key, version)
    values: dict[str, Any] = {
        "file_id": file_id,
        "root_file_id": file_id,
        "correlation_id": file_id,
        "bucket": BUCKET,
        "key": key,
        "version_id": version,
        "size": 301983,
        "dataset": "train",
        "origin": "s3",
        **fields,
    }
    return FileRecord(**values)


def chunk_record(root: FileRecord, index: int) -> FileRecord:
    key = f"chunks/train/{root.file_id}/part-{index:05d}.tsv"
    return record(key, root_file_id=root.file_id, parent_file_id=root.file_id, part_index=index, origin="chunk")


# -- records ------------------------------------------------------------------------------------


def test_file_ids_are_stable_per_object_version_and_differ_between_versions() -> None:
    assert file_id_for(BUCKET, "raw/train/a.tsv", "v1") == file_id_for(BUCKET, "raw/train/a.tsv", "v1")
    assert file_id_for(BUCKET, "raw/train/a.tsv", "v1") != file_id_for(BUCKET, "raw/train/a.tsv", "v2")
    assert file_id_for(BUCKET, "raw/train/a.tsv", "v1") != file_id_for("other-bucket", "raw/train/a.tsv", "v1")


def test_register_is_idempotent_and_never_overwrites(ledger: FileLedger) -> None:
    first = record()
    assert ledger.register(first) is True
    ledger.update(first.file_id, status="validated", rows_in=1452)

    # When the same file is registered again (a redelivered notification, with different values)
    again = ledger.register(record(size=1, status="received"))

    # Then nothing changes
    assert again is False
    stored = ledger.get(first.file_id)
    assert stored is not None
    assert (stored.status, stored.size, stored.rows_in) == ("validated", 301983, 1452)


def test_get_unknown_file_is_none(ledger: FileLedger) -> None:
    assert ledger.get("0" * 32) is None


def test_update_and_get_round_trip_every_kind_of_value(ledger: FileLedger) -> None:
    first = record()
    ledger.register(first)

    ledger.update(
        first.file_id,
        status="rejected",
        check="size",
        reason="0 bytes is below the minimum of 1",
        error_key="errors/train/raw/x.tsv",
        rows_dropped={"empty_text": 2, "bad_rating": 1},
        outputs={"processed": "processed/train/x/part-00000.parquet"},
        report_key=None,
    )

    stored = ledger.get(first.file_id)
    assert stored is not None
    assert stored.status == "rejected"
    assert stored.is_final
    assert stored.check == "size"
    assert stored.reason == "0 bytes is below the minimum of 1"
    assert stored.error_key == "errors/train/raw/x.tsv"
    assert stored.report_key is None
    assert stored.rows_dropped == {"empty_text": 2, "bad_rating": 1}
    assert stored.outputs == {"processed": "processed/train/x/part-00000.parquet"}
    assert stored.updated_at >= first.updated_at
    # Untouched fields keep their values
    assert (stored.key, stored.size, stored.version_id) == (first.key, 301983, "v1")


def test_update_of_an_unknown_file_fails_instead_of_creating_a_partial_record(ledger: FileLedger) -> None:
    with pytest.raises(ClientError):
        ledger.update("f" * 32, status="validated")

    assert ledger.get("f" * 32) is None


def test_files_lists_every_record_or_only_roots(ledger: FileLedger) -> None:
    root = record()
    ledger.register(root)
    parts = [chunk_record(root, index) for index in range(3)]
    for part in parts:
        ledger.register(part)
    other = record("raw/inference/reviews.csv", dataset="inference")
    ledger.register(other)
    # Barrier markers and counters live in the same table and must not show up as files.
    ledger.set_parts_expected(root.file_id, "validation", 3)
    ledger.record_part_done(root.file_id, "validation", 0)

    every = {item.file_id for item in ledger.files()}
    roots = {item.file_id for item in ledger.files(roots_only=True)}

    assert every == {root.file_id, other.file_id, *(part.file_id for part in parts)}
    assert roots == {root.file_id, other.file_id}


def test_stage_status_is_recorded_per_stage(ledger: FileLedger) -> None:
    first, second = record(), record("raw/train/b.tsv")
    ledger.register(first)
    ledger.register(second)

    ledger.set_stage_status(first.file_id, "etl", "completed")
    ledger.set_stage_status(first.file_id, "predictions", "waiting_for_model")
    ledger.set_stage_status(second.file_id, "predictions", "completed")
    ledger.set_stage_status(first.file_id, "etl", "failed")

    stored = ledger.get(first.file_id)
    assert stored is not None
    assert stored.stages == {"etl": "failed", "predictions": "waiting_for_model"}
    waiting = [item for item in ledger.files() if item.stages.get("predictions") == "waiting_for_model"]
    assert [item.file_id for item in waiting] == [first.file_id]


# -- the part barrier ---------------------------------------------------------------------------


def registered_root(ledger: FileLedger) -> str:
    root = record()
    ledger.register(root)
    return root.file_id


def counters(ledger: FileLedger, root_id: str) -> dict[str, int]:
    stored = ledger.get(root_id)
    assert stored is not None
    return stored.counters


def test_barrier_completes_once_when_the_last_part_finishes_after_parts_are_announced(ledger: FileLedger) -> None:
    root_id = registered_root(ledger)

    announced = ledger.set_parts_expected(root_id, "validation", 3)
    states = [ledger.record_part_done(root_id, "validation", index) for index in range(3)]

    assert announced == BarrierState(expected=3, done=0, completed_now=False)
    assert [state.done for state in states] == [1, 2, 3]
    assert [state.completed_now for state in states] == [False, False, True]


def test_parts_finishing_before_the_count_is_known_complete_when_it_arrives(ledger: FileLedger) -> None:
    root_id = registered_root(ledger)

    early = [ledger.record_part_done(root_id, "validation", index) for index in range(3)]
    announced = ledger.set_parts_expected(root_id, "validation", 3)
    announced_again = ledger.set_parts_expected(root_id, "validation", 3)

    assert [state.completed_now for state in early] == [False, False, False]
    assert all(state.expected is None for state in early)
    assert announced.completed_now is True
    assert announced_again.completed_now is False


def test_a_part_counted_twice_adds_nothing(ledger: FileLedger) -> None:
    root_id = registered_root(ledger)
    ledger.set_parts_expected(root_id, "validation", 2)

    ledger.record_part_done(root_id, "validation", 0, adds={"rows_in": 100, "rows_out": 98})
    before = counters(ledger, root_id)
    again = ledger.record_part_done(root_id, "validation", 0, adds={"rows_in": 100, "rows_out": 98})

    assert counters(ledger, root_id) == before
    assert before["rows_in"] == 100
    assert before["validation_done"] == 1
    assert again.completed_now is False
    assert again.done == 1


def test_redelivering_the_last_part_does_not_complete_the_root_twice(ledger: FileLedger) -> None:
    root_id = registered_root(ledger)
    ledger.set_parts_expected(root_id, "etl", 2)
    ledger.record_part_done(root_id, "etl", 0)

    last = ledger.record_part_done(root_id, "etl", 1)
    redelivered = ledger.record_part_done(root_id, "etl", 1)

    assert (last.completed_now, redelivered.completed_now) == (True, False)
    assert redelivered.done == 2


def test_a_retry_of_the_completing_part_is_told_it_completed_the_barrier(ledger: FileLedger) -> None:
    # The first delivery of part 1 completed the barrier and crashed before announcing it; its retry
    # must announce it, and a redelivery of any other part must not.
    root_id = registered_root(ledger)
    ledger.set_parts_expected(root_id, "etl", 2, part_index=0)
    ledger.record_part_done(root_id, "etl", 0)
    ledger.record_part_done(root_id, "etl", 1)

    retried_completer = ledger.record_part_done(root_id, "etl", 1)
    redelivered_other = ledger.record_part_done(root_id, "etl", 0)

    assert retried_completer.completed_now is False
    assert retried_completer.completed_by_part(1) is True
    assert redelivered_other.completed_by_part(0) is False


def test_a_barrier_completed_by_setting_the_count_names_the_part_that_set_it(ledger: FileLedger) -> None:
    root_id = registered_root(ledger)
    for index in range(2):
        ledger.record_part_done(root_id, "etl", index)

    completed = ledger.set_parts_expected(root_id, "etl", 2, part_index=1)
    retried = ledger.set_parts_expected(root_id, "etl", 2, part_index=1)
    by_the_chunker = ledger.set_parts_expected(registered_root_done(ledger), "validation", 1)

    assert completed.completed_now and completed.completed_by_part(1)
    assert not retried.completed_now and retried.completed_by_part(1)
    assert by_the_chunker.completed_now and by_the_chunker.completed_by == -1


def registered_root_done(ledger: FileLedger) -> str:
    root_id = registered_root(ledger)
    ledger.record_part_done(root_id, "validation", 0)
    return root_id


def test_barriers_of_different_stages_are_independent(ledger: FileLedger) -> None:
    root_id = registered_root(ledger)
    ledger.set_parts_expected(root_id, "validation", 1)
    ledger.set_parts_expected(root_id, "etl", 1)

    validation = ledger.record_part_done(root_id, "validation", 0)
    etl = ledger.record_part_done(root_id, "etl", 0)

    assert validation.completed_now and etl.completed_now
    assert counters(ledger, root_id)["validation_done"] == 1
    assert counters(ledger, root_id)["etl_done"] == 1


def test_recording_a_part_of_an_unknown_root_fails(ledger: FileLedger) -> None:
    with pytest.raises((ClientError, LookupError)):
        ledger.record_part_done("9" * 32, "validation", 0)


def test_parts_recorded_from_eight_threads_complete_exactly_once(
    ledger: FileLedger, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto's in-process DynamoDB is not thread-safe (a transaction deep-copies the table while other
    # threads write to it), so each API call is made atomic; the ledger's own races lie between calls.
    one_call_at_a_time = threading.Lock()
    make_api_call = BaseClient.__dict__["_make_api_call"]

    def serialised_api_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        with one_call_at_a_time:
            return make_api_call(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", serialised_api_call)

    # Given a root of 20 parts whose count arrives while parts are finishing, some of them twice
    root_id = registered_root(ledger)
    part_count = 20
    deliveries: list[int | None] = [*range(part_count), 3, 7, 19, None]  # None: set_parts_expected

    def deliver(index: int | None) -> BarrierState:
        own_ledger = FileLedger(new_client(), table)
        if index is None:
            return own_ledger.set_parts_expected(root_id, "validation", part_count)
        return own_ledger.record_part_done(root_id, "validation", index, adds={"rows_in": 10})

    # When every delivery runs at once on eight threads
    with ThreadPoolExecutor(max_workers=8) as pool:
        states = list(pool.map(deliver, deliveries))

    # Then exactly one caller completed the root, and every part counted once
    assert sum(state.completed_now for state in states) == 1
    final = counters(ledger, root_id)
    assert final["validation_done"] == part_count
    assert final["rows_in"] == 10 * part_count
    assert final["validation_complete"] == 1


# -- idempotency --------------------------------------------------------------------------------


def test_once_per_version_runs_once_per_key_and_replays_the_first_result(ledger: FileLedger) -> None:
    calls: list[dict[str, Any]] = []

    @ledger.once_per_version("validator", "[bucket, key, version_id]", lambda_context())
    def validate(detail: dict[str, Any]) -> dict[str, Any]:
        calls.append(detail)
        return {"status": "validated", "call": len(calls)}

    detail = {"bucket": BUCKET, "key": "raw/train/a.tsv", "version_id": "v1", "size": 10}
    first = validate(detail=detail)
    replay = validate(detail={**detail, "size": 999})  # same version, other fields differ
    other_version = validate(detail={**detail, "version_id": "v2"})

    assert first == {"status": "validated", "call": 1}
    assert replay == first
    assert other_version == {"status": "validated", "call": 2}
    assert len(calls) == 2


def test_idempotency_is_per_stage(ledger: FileLedger) -> None:
    calls: list[str] = []
    detail = {"bucket": BUCKET, "key": "raw/train/a.tsv", "version_id": "v1"}

    @ledger.once_per_version("receiver", "[bucket, key, version_id]", lambda_context())
    def receive(detail: dict[str, Any]) -> dict[str, Any]:
        calls.append("receiver")
        return {}

    @ledger.once_per_version("validator", "[bucket, key, version_id]", lambda_context())
    def validate(detail: dict[str, Any]) -> dict[str, Any]:
        calls.append("validator")
        return {}

    receive(detail=detail)
    validate(detail=detail)
    receive(detail=detail)

    assert calls == ["receiver", "validator"]


def test_idempotency_survives_a_new_invocation_context(ledger: FileLedger) -> None:
    # A redelivery arrives in a later Lambda invocation, with another request id.
    calls: list[int] = []
    detail = {"bucket": BUCKET, "key": "raw/train/a.tsv", "version_id": "v1"}

    for _ in range(2):

        @ledger.once_per_version("validator", "[bucket, key, version_id]", lambda_context())
        def validate(detail: dict[str, Any]) -> dict[str, Any]:
            calls.append(1)
            return {}

        validate(detail=detail)

    assert calls == [1]


def test_idempotency_records_do_not_appear_as_files(ledger: FileLedger) -> None:
    root_id = registered_root(ledger)

    @ledger.once_per_version("validator", "[bucket, key]", lambda_context())
    def validate(detail: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    validate(detail={"bucket": BUCKET, "key": "raw/train/a.tsv"})

    assert [item.file_id for item in ledger.files()] == [root_id]


def test_a_failed_run_is_not_remembered_so_the_retry_runs_again(ledger: FileLedger) -> None:
    attempts: list[int] = []
    detail = {"bucket": BUCKET, "key": "raw/train/a.tsv", "version_id": "v1"}

    @ledger.once_per_version("validator", "[bucket, key, version_id]", lambda_context())
    def validate(detail: dict[str, Any]) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("S3 went away")
        return {"status": "validated"}

    with pytest.raises(ConnectionError):
        validate(detail=detail)
    assert validate(detail=detail) == {"status": "validated"}
    assert len(attempts) == 2
