"""Rejecting a file the same way at every stage: move it to errors/, write its report, tell the ledger and the bus."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import layout
from .events import Dataset, FileRejected, Stage

if TYPE_CHECKING:  # types only: a pure core that builds a Rejection must not load boto3 through here
    from .ledger import FileLedger
    from .publisher import EventPublisher
    from .storage import ObjectStore


@dataclass(frozen=True)
class Rejection:
    """Why a stage refused a file, in terms a user can act on."""

    check: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    rows_in: int | None = None
    """Rows the stage read before refusing the file (all dropped), when it got that far."""
    rows_dropped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RejectedFile:
    file_id: str
    root_file_id: str
    correlation_id: str
    dataset: Dataset | None
    source_key: str
    source_version_id: str | None = None
    part_index: int | None = None
    part_count: int = 1


class IdentifiedFile(Protocol):
    """What names a file in the ledger: a stage's event detail, the file's record, or an admitted file."""

    @property
    def file_id(self) -> str: ...
    @property
    def root_file_id(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def dataset(self) -> Dataset | None: ...


def rejected_file(
    file: IdentifiedFile,
    source_key: str,
    *,
    source_version_id: str | None = None,
    part_index: int | None = None,
    part_count: int = 1,
) -> RejectedFile:
    """The file to reject: its ids and dataset from what names it, and where it is now (`source_key`)."""
    return RejectedFile(
        file_id=file.file_id,
        root_file_id=file.root_file_id,
        correlation_id=file.correlation_id,
        dataset=file.dataset,
        source_key=source_key,
        source_version_id=source_version_id,
        part_index=part_index,
        part_count=part_count,
    )


def reject_file(
    rejected: RejectedFile,
    rejection: Rejection,
    stage: Stage,
    *,
    store: ObjectStore | None,
    ledger: FileLedger | None,
    publisher: EventPublisher,
) -> FileRejected:
    """Move the file under errors/ with `<name>.report.json` beside it, then record and announce it.

    With `store=None` nothing in the bucket is touched: used for announcements that must not be
    acted on (a forged bucket or key), where moving the object would itself be the harm. With
    `ledger=None` no record is written: the caller recorded the refusal itself, or must leave an
    existing record (a settled file's) as it is.
    """
    error_key = report_key = None
    if store is not None and rejected.dataset is not None:
        error_key = layout.error_key(rejected.dataset, rejected.source_key)
        report_key = layout.report_key(error_key)
        # The report goes first: if the move is interrupted, the retry finds a report and finishes the move.
        store.write_json(
            report_key,
            {
                "file_id": rejected.file_id,
                "root_file_id": rejected.root_file_id,
                "correlation_id": rejected.correlation_id,
                "stage": stage,
                "check": rejection.check,
                "reason": rejection.reason,
                "source_key": rejected.source_key,
                "error_key": error_key,
                "part_index": rejected.part_index,
                "details": dict(rejection.details),
                "rejected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        store.move(rejected.source_key, error_key, rejected.source_version_id)
    # Rows read before the refusal are recorded: "rows_in: 0" would say the file was empty.
    rows = (
        {"rows_in": rejection.rows_in, "rows_out": 0, "rows_dropped": dict(rejection.rows_dropped)}
        if rejection.rows_in is not None
        else {}
    )
    if ledger is not None:
        ledger.update(
            rejected.file_id,
            status="rejected",
            stage=stage,
            check=rejection.check,
            reason=rejection.reason,
            error_key=error_key,
            report_key=report_key,
            **rows,
        )
    event = FileRejected(
        correlation_id=rejected.correlation_id,
        file_id=rejected.file_id,
        root_file_id=rejected.root_file_id,
        dataset=rejected.dataset,
        stage=stage,
        check=rejection.check,
        reason=rejection.reason,
        source_key=rejected.source_key,
        error_key=error_key,
        report_key=report_key,
        part_index=rejected.part_index,
        part_count=rejected.part_count,
    )
    publisher.publish(event)
    return event
