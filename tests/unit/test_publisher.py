"""shared.publisher.EventPublisher against a recording stand-in for the EventBridge client."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from shared.events import FileRejected, PipelineDetail
from shared.publisher import MAX_ENTRIES_PER_CALL, EventPublisher, PublishError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

BUS = "reviews-bus"


class RefusingEventBridge:
    """Records every put_events call; refuses an entry (by its detail's file_id) the first N times it is sent."""

    def __init__(self, refusals: Mapping[str, int] | None = None, error_code: str = "ThrottlingException") -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self._refusals_left = dict(refusals or {})
        self._error_code = error_code

    def put_events(self, *, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        assert len(Entries) <= MAX_ENTRIES_PER_CALL, "EventBridge refuses the whole call above 10 entries"
        self.calls.append([dict(entry) for entry in Entries])
        results: list[dict[str, Any]] = []
        for entry in Entries:
            file_id = json.loads(entry["Detail"])["file_id"]
            if self._refusals_left.get(file_id, 0) > 0:
                self._refusals_left[file_id] -= 1
                results.append({"ErrorCode": self._error_code, "ErrorMessage": f"slow down {file_id}"})
            else:
                results.append({"EventId": f"event-{file_id}-{len(self.calls)}"})
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedEntryCount": failed, "Entries": results}

    def sent_file_ids(self, call: int) -> list[str]:
        return [json.loads(entry["Detail"])["file_id"] for entry in self.calls[call]]

    def accepted_file_ids(self) -> list[str]:
        """Every file id EventBridge ended up accepting, in order (replays the refusal bookkeeping)."""
        return [file_id for call in range(len(self.calls)) for file_id in self.sent_file_ids(call)]


def rejection(file_id: str, reason: str = "the file has no data rows") -> FileRejected:
    return FileRejected(
        correlation_id=file_id,
        file_id=file_id,
        root_file_id=file_id,
        dataset="train",
        stage="validator",
        check="columns",
        reason=reason,
        source_key=f"raw/train/{file_id}.csv",
    )


def publisher_for(client: RefusingEventBridge, sleeps: list[float], max_attempts: int = 5) -> EventPublisher:
    return EventPublisher(
        cast("EventBridgeClient", client),
        BUS,
        "validator",
        max_attempts=max_attempts,
        base_delay_seconds=0.1,
        sleep=sleeps.append,
    )


def test_each_entry_names_the_bus_the_service_source_and_the_event_type() -> None:
    client = RefusingEventBridge()
    detail = rejection("f1")

    publisher_for(client, []).publish(detail)

    (entry,) = client.calls[0]
    assert entry["EventBusName"] == BUS
    assert entry["Source"] == "amazon-reviews-nlp.validator"
    assert entry["DetailType"] == "FileRejected"
    assert FileRejected.model_validate_json(entry["Detail"]) == detail


def test_25_details_go_out_in_three_calls_of_at_most_ten_in_order() -> None:
    client = RefusingEventBridge()
    details: list[PipelineDetail] = [rejection(f"f{index:02d}") for index in range(25)]
    sleeps: list[float] = []

    publisher_for(client, sleeps).publish(*details)

    assert [len(call) for call in client.calls] == [10, 10, 5]
    assert client.accepted_file_ids() == [f"f{index:02d}" for index in range(25)]
    assert sleeps == []


def test_publishing_nothing_makes_no_call() -> None:
    client = RefusingEventBridge()

    publisher_for(client, []).publish()

    assert client.calls == []


def test_only_refused_entries_are_sent_again() -> None:
    # Given EventBridge refuses f3 twice and f7 once in a batch of ten
    client = RefusingEventBridge({"f3": 2, "f7": 1})
    sleeps: list[float] = []

    publisher_for(client, sleeps).publish(*[rejection(f"f{index}") for index in range(10)])

    # Then the retries carry only what was refused, and nothing is sent twice once accepted
    assert client.sent_file_ids(0) == [f"f{index}" for index in range(10)]
    assert client.sent_file_ids(1) == ["f3", "f7"]
    assert client.sent_file_ids(2) == ["f3"]
    assert len(client.calls) == 3


def test_backoff_delays_grow_between_attempts() -> None:
    client = RefusingEventBridge({"f1": 4})
    sleeps: list[float] = []

    publisher_for(client, sleeps, max_attempts=5).publish(rejection("f1"))

    assert len(client.calls) == 5
    assert len(sleeps) == 4
    assert sleeps[0] > 0
    assert all(later > earlier for earlier, later in itertools.pairwise(sleeps))
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_what_is_still_refused_after_the_last_attempt_raises_naming_it() -> None:
    # Given f2 is refused more often than the publisher tries, and f1 only once
    client = RefusingEventBridge({"f1": 1, "f2": 99}, error_code="InternalFailure")
    sleeps: list[float] = []

    with pytest.raises(PublishError) as raised:
        publisher_for(client, sleeps, max_attempts=3).publish(rejection("f1"), rejection("f2"), rejection("f3"))

    # Then exactly the remaining entry is reported, with EventBridge's error
    assert len(client.calls) == 3
    assert client.sent_file_ids(2) == ["f2"]
    assert len(raised.value.failures) == 1
    assert "FileRejected" in raised.value.failures[0]
    assert "InternalFailure" in raised.value.failures[0]
    assert "1 event(s) not published" in str(raised.value)


def test_a_failed_batch_stops_before_later_batches_are_sent() -> None:
    # The caller's message is retried as a whole, so later batches must not have been sent half-way.
    client = RefusingEventBridge({"f00": 99})

    with pytest.raises(PublishError):
        publisher_for(client, [], max_attempts=2).publish(*[rejection(f"f{index:02d}") for index in range(15)])

    assert all("f10" not in client.sent_file_ids(call) for call in range(len(client.calls)))


def test_an_oversize_detail_is_refused_before_anything_is_sent() -> None:
    client = RefusingEventBridge()
    huge = rejection("f-huge", reason="x" * (256 * 1024))

    with pytest.raises(ValueError, match="256 KB"):
        publisher_for(client, []).publish(rejection("f-small"), huge)

    assert client.calls == []


def test_a_detail_just_under_the_limit_is_sent() -> None:
    client = RefusingEventBridge()
    overhead = len(rejection("f-big", reason="").model_dump_json().encode())
    big = rejection("f-big", reason="x" * (200 * 1024 - overhead))

    publisher_for(client, []).publish(big)

    assert client.sent_file_ids(0) == ["f-big"]


def test_a_multibyte_detail_is_measured_in_bytes_not_characters() -> None:
    client = RefusingEventBridge()
    # 100 K characters, 300 KB once encoded: over EventBridge's limit.
    huge = rejection("f-cjk", reason="評" * (100 * 1024))

    with pytest.raises(ValueError, match="256 KB"):
        publisher_for(client, []).publish(huge)


def _entry_size(entry: Mapping[str, Any]) -> int:
    """EventBridge's own measure of a PutEvents entry (Source, DetailType, Detail, Resources, Time)."""
    return sum(len(str(entry.get(name, "")).encode()) for name in ("Source", "DetailType", "Detail"))


class SizeCheckingEventBridge(RefusingEventBridge):
    """Also enforces PutEvents' size rule: the entries of one request total less than 256 KB."""

    def put_events(self, *, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        if sum(_entry_size(entry) for entry in Entries) >= 256 * 1024:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Total size of the entries is over the limit"}},
                "PutEvents",
            )
        return super().put_events(Entries=Entries)


def test_a_detail_that_fits_but_whose_entry_does_not_is_refused_before_sending() -> None:
    client = RefusingEventBridge()
    overhead = len(rejection("f-edge", reason="").model_dump_json().encode())
    # Detail is 10 bytes under 256 KB; with Source and DetailType the entry is over it.
    edge = rejection("f-edge", reason="x" * (256 * 1024 - 10 - overhead))

    with pytest.raises(ValueError, match="256 KB"):
        publisher_for(client, []).publish(edge)


def test_ten_large_details_are_split_so_each_request_stays_under_256_kb() -> None:
    # Given ten 40 KB details (each well under the limit, 400 KB together)
    client = SizeCheckingEventBridge()
    details = [rejection(f"f{index}", reason="x" * (40 * 1024)) for index in range(10)]

    # When they are published, Then every one is accepted
    publisher_for(client, []).publish(*details)

    assert sorted(client.accepted_file_ids()) == sorted(f"f{index}" for index in range(10))
