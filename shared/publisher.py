"""Publishing pipeline events to the stack's EventBridge bus.

PutEvents takes at most 10 entries a call and can accept some entries while refusing others
(`FailedEntryCount`); refused entries are sent again with exponential backoff, and whatever is still
refused after the last attempt raises, so the caller's message goes back to its queue instead of the
event being silently lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .events import PipelineDetail, source_of

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

MAX_ENTRIES_PER_CALL = 10
# EventBridge's limit is on the whole entry (source, detail-type, detail, …) and on a request's total.
MAX_REQUEST_BYTES = 256 * 1024


def _entry_bytes(entry: PutEventsRequestEntryTypeDef) -> int:
    """An entry's size as EventBridge counts it: source, detail-type and detail, in UTF-8."""
    return sum(len(entry[field].encode("utf-8")) for field in ("Source", "DetailType", "Detail"))


class PublishError(RuntimeError):
    """Some events were still refused by EventBridge after every retry."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__(f"{len(failures)} event(s) not published: {'; '.join(failures[:5])}")
        self.failures = failures


class EventPublisher:
    """Publishes details as `source = amazon-reviews-nlp.<service>`, `detail-type = <event name>`."""

    def __init__(
        self,
        client: EventBridgeClient,
        event_bus: str,
        service: str,
        *,
        max_attempts: int = 5,
        base_delay_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._event_bus = event_bus
        self._source = source_of(service)
        self._max_attempts = max_attempts
        self._base_delay_seconds = base_delay_seconds
        self._sleep = sleep

    def publish(self, *details: PipelineDetail) -> None:
        batch: list[PutEventsRequestEntryTypeDef] = []
        batch_bytes = 0
        for detail in details:
            entry = self._entry(detail)
            size = _entry_bytes(entry)
            if batch and (len(batch) == MAX_ENTRIES_PER_CALL or batch_bytes + size > MAX_REQUEST_BYTES):
                self._put_with_retries(batch)
                batch, batch_bytes = [], 0
            batch.append(entry)
            batch_bytes += size
        if batch:
            self._put_with_retries(batch)

    def _entry(self, detail: PipelineDetail) -> PutEventsRequestEntryTypeDef:
        entry: PutEventsRequestEntryTypeDef = {
            "Source": self._source,
            "DetailType": detail.detail_type,
            "Detail": detail.model_dump_json(),
            "EventBusName": self._event_bus,
        }
        if _entry_bytes(entry) > MAX_REQUEST_BYTES:
            raise ValueError(f"{detail.detail_type} event exceeds EventBridge's 256 KB entry limit")
        return entry

    def _put_with_retries(self, pending: Sequence[PutEventsRequestEntryTypeDef]) -> None:
        failures: list[str] = []
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(self._base_delay_seconds * 2 ** (attempt - 1))
            response = self._client.put_events(Entries=list(pending))
            if not response.get("FailedEntryCount"):
                return
            # Results are positional: result i answers entry i.
            refused = [
                (entry, result)
                for entry, result in zip(pending, response["Entries"], strict=True)
                if result.get("ErrorCode")
            ]
            pending = [entry for entry, _ in refused]
            failures = [
                f"{entry['DetailType']}: {result.get('ErrorCode')} {result.get('ErrorMessage', '')}"
                for entry, result in refused
            ]
        raise PublishError(failures)
