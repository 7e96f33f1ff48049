"""The validator's storage, ledger and event work: admitting an announcement, then doing what the checks decide.

Every announcement is checked before use (`admit`): external systems publish FileReceived too. An
admitted file is registered in the ledger, examined by the pure checks of `validation.py`, and its
outcome written: processed/ Parquet and FileValidated, FileOversized for the chunker, or FileRejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from shared import layout
from shared.events import Dataset, DetectedFormat, FileOversized, FileReceived, FileValidated, PartInfo
from shared.ledger import FileLedger, FileStatus, file_id_for
from shared.publisher import EventPublisher
from shared.received import record_for
from shared.rejection import Rejection, reject_file, rejected_file
from shared.storage import ObjectStore

from .formats import dialect_of
from .validation import Oversized, Rejected, ValidatorSettings, examine_file, parquet_bytes


def admit(
    received: FileReceived, *, pipeline_bucket: str, store: ObjectStore, ledger: FileLedger, publisher: EventPublisher
) -> FileReceived | None:
    """Check where an announcement points and pin it to one object version; refuse it, touching nothing, if wrong.

    External systems publish FileReceived too, so the bucket, the key and the dataset are all checked
    here. An announcement that names no version (the README's example: bucket, key, size, dataset)
    is pinned to the version now under its key, read from S3 only once the key is known to be ours,
    so that it is keyed, in the idempotency records and the ledger, exactly as S3's notification of
    that version is. A refused announcement is answered with FileRejected, every time it comes.
    """
    problem = admission_problem(received, pipeline_bucket)
    if problem is None and received.version_id is None:
        received, problem = pinned_to_current_version(received, store)
    if problem is not None:
        refuse(received, problem, ledger=ledger, publisher=publisher)
        return None
    return received


def admission_problem(received: FileReceived, pipeline_bucket: str) -> str | None:
    """Why an announcement may not be acted on, from where it points; None when it names one of our inbound keys."""
    if received.bucket != pipeline_bucket:
        return f"bucket {received.bucket!r} is not the pipeline's bucket"
    try:
        inbound = layout.parse_inbound_key(received.key)
    except layout.UnsafeKeyError as error:
        return f"refused key: {error}"
    if inbound.dataset != received.dataset:
        return f"dataset {received.dataset!r} does not match the key's folder {inbound.dataset!r}"
    if inbound.area == "chunks" and received.part is None:
        return "a key under chunks/ must come with part information"
    return None


def pinned_to_current_version(received: FileReceived, store: ObjectStore) -> tuple[FileReceived, str | None]:
    """The announcement naming the object now under its key (version, ETag, size), or why it cannot.

    Without versioning S3 gives no version id, and the ETag is the identity, as for the receiver.
    An ETag that is not the current object's names content no longer there: it is refused rather
    than have the current object validated under the old content's id.
    """
    current = store.head(received.key)
    if current is None:
        return received, f"no object at {received.key!r} in the pipeline bucket"
    announced_etag = received.etag.strip('"')
    if announced_etag and announced_etag != current.etag:
        return received, f"the object at {received.key!r} is not the one announced (ETag {announced_etag!r})"
    pinned = received.model_copy(update={"version_id": current.version_id, "etag": current.etag, "size": current.size})
    return pinned, None


def refuse(received: FileReceived, reason: str, *, ledger: FileLedger, publisher: EventPublisher) -> None:
    """Answer an announcement with FileRejected(check=key), moving no object and altering no record.

    The refusal is recorded under the announcement's file id unless that id already has a record: a
    settled file announced again with the wrong dataset keeps its status, counts and report (forged
    announcements cannot change an outcome), and a refusal repeated keeps its first record.
    """
    file_id = file_id_for(received.bucket, received.key, received.version_id or received.etag)
    refusal = record_for(received, file_id, received.dataset).model_copy(
        update={"status": "rejected", "stage": "validator", "check": "key", "reason": reason}
    )
    # Registered already rejected, in one write: a crash before the event is published leaves a
    # record the redelivery finds final, never one stuck at "received".
    record = refusal if ledger.register(refusal) else (ledger.get(file_id) or refusal)
    reject_file(
        # The record's ids, under the dataset the announcement gave.
        rejected_file(record.model_copy(update={"dataset": received.dataset}), received.key),
        Rejection(check="key", reason=reason),
        "validator",
        store=None,
        ledger=None,
        publisher=publisher,
    )


@dataclass(frozen=True)
class AdmittedFile:
    """An admitted announcement's file, as the ledger knows it: one object version in our inbound prefixes."""

    file_id: str
    root_file_id: str
    correlation_id: str
    dataset: Dataset
    key: str
    version_id: str | None
    part: PartInfo | None


@dataclass(frozen=True)
class AlreadySettled:
    """An admitted announcement of an object version whose file already reached a final status."""

    file_id: str
    status: FileStatus
    """The status it settled as (validated, chunked or rejected): a repeated announcement leaves it so."""


def register_admitted(received: FileReceived, ledger: FileLedger) -> AdmittedFile | AlreadySettled:
    """Record an admitted announcement's file in the ledger; AlreadySettled when that object version already settled.

    The ids come from the ledger's record when there is one (the receiver's, for an object S3
    announced), not from the announcement.
    """
    file_id = file_id_for(received.bucket, received.key, received.version_id or received.etag)
    record = record_for(received, file_id, received.dataset)
    if not ledger.register(record):
        existing = ledger.get(file_id)
        if existing is not None and existing.is_final:
            # This version already settled: a repeated announcement must not change its outcome.
            return AlreadySettled(file_id=file_id, status=existing.status)
        record = existing or record
    return AdmittedFile(
        file_id=file_id,
        root_file_id=record.root_file_id,
        correlation_id=record.correlation_id,
        dataset=received.dataset,
        key=received.key,
        version_id=received.version_id,
        part=received.part,
    )


@dataclass(frozen=True)
class Outcome:
    """What became of a validated file: its status and, once read, its row counts."""

    status: Literal["validated", "oversized", "rejected"]
    rows_in: int = 0
    rows_out: int = 0
    rows_dropped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredObject:
    """A ByteSource over one version of an object in the pipeline bucket."""

    store: ObjectStore
    key: str
    version_id: str | None
    size: int

    def read(self, start: int, stop: int) -> bytes:
        return self.store.read_bytes(self.key, self.version_id, byte_range=(start, stop - 1))


def validate_received(
    received: FileReceived,
    limits: ValidatorSettings,
    *,
    store: ObjectStore,
    ledger: FileLedger,
    publisher: EventPublisher,
) -> Outcome | AlreadySettled:
    """Validate an admitted announcement's file and count it towards its root; AlreadySettled when it was done."""
    admitted = register_admitted(received, ledger)
    if isinstance(admitted, AlreadySettled):
        return admitted
    ledger.update(admitted.file_id, status="validating", stage="validator")
    outcome = validate_file(admitted, limits, store=store, ledger=ledger, publisher=publisher)
    account_for_part(admitted, outcome, ledger)
    return outcome


def validate_file(
    admitted: AdmittedFile,
    limits: ValidatorSettings,
    *,
    store: ObjectStore,
    ledger: FileLedger,
    publisher: EventPublisher,
) -> Outcome:
    part_count = 1
    expected_layout = None
    root_dialect = None
    if admitted.part is not None:
        expected = ledger.parts_expected(admitted.root_file_id)
        if expected is None:
            # The chunker records the count before any part becomes visible; without it, retry later.
            raise LookupError(f"root file {admitted.root_file_id} has no part count in the ledger yet")
        part_count = expected
        root = ledger.get(admitted.root_file_id)
        expected_layout = root.layout if root is not None else None
        if root is not None and root.detected is not None:
            root_dialect = dialect_of(DetectedFormat.model_validate(root.detected))
    part_index = admitted.part.part_index if admitted.part else None
    rejected = rejected_file(
        admitted, admitted.key, source_version_id=admitted.version_id, part_index=part_index, part_count=part_count
    )

    def reject(rejection: Rejection) -> Outcome:
        reject_file(rejected, rejection, "validator", store=store, ledger=ledger, publisher=publisher)
        return Outcome(status="rejected")

    # The size announced by an external producer is not trusted: the object itself is asked.
    info = store.head(admitted.key, admitted.version_id)
    if info is None:
        reject_file(
            rejected,
            Rejection(check="key", reason="no object at that key and version"),
            "validator",
            store=None,
            ledger=ledger,
            publisher=publisher,
        )
        return Outcome(status="rejected")
    first_row_number = admitted.part.first_row_number if admitted.part else 0
    verdict = examine_file(
        StoredObject(store, admitted.key, admitted.version_id, info.size),
        dataset=admitted.dataset,
        limits=limits,
        first_row_number=first_row_number,
        expected_layout=expected_layout,
        root_dialect=root_dialect,
    )
    if isinstance(verdict, Rejected):
        return reject(verdict.rejection)
    if isinstance(verdict, Oversized):
        if admitted.part is not None:
            return reject(Rejection(check="size", reason="a chunk is itself above the size limit"))
        ledger.update(
            admitted.file_id,
            status="chunking",
            stage="chunker",
            layout=verdict.detected.layout,
            detected=verdict.detected.model_dump(),
        )
        publisher.publish(
            FileOversized(
                correlation_id=admitted.correlation_id,
                file_id=admitted.file_id,
                root_file_id=admitted.root_file_id,
                dataset=admitted.dataset,
                bucket=store.bucket,
                key=admitted.key,
                version_id=admitted.version_id,
                size=info.size,
                max_size_bytes=limits.max_size_bytes,
                detected=verdict.detected,
            )
        )
        return Outcome(status="oversized")

    rows = verdict.rows
    processed_key = layout.processed_key(admitted.dataset, admitted.root_file_id, part_index)
    store.write_bytes(processed_key, parquet_bytes(rows.table), layout.PARQUET_CONTENT_TYPE)
    ledger.update(
        admitted.file_id,
        status="validated",
        stage="validator",
        processed_key=processed_key,
        layout=verdict.resolved.name,
        rows_in=rows.rows_in,
        rows_out=rows.rows_out,
        rows_dropped=rows.rows_dropped,
        first_dropped_rows=rows.first_dropped_rows,
        column_roles=dict(verdict.resolved.source_columns),
        detected=verdict.detected.model_dump(),
    )
    publisher.publish(
        FileValidated(
            correlation_id=admitted.correlation_id,
            file_id=admitted.file_id,
            root_file_id=admitted.root_file_id,
            dataset=admitted.dataset,
            source_key=admitted.key,
            processed_key=processed_key,
            layout=verdict.resolved.name,
            rows_in=rows.rows_in,
            rows_out=rows.rows_out,
            rows_dropped=rows.rows_dropped,
            first_dropped_rows=rows.first_dropped_rows,
            kept_columns=list(verdict.resolved.kept_columns),
            column_roles=dict(verdict.resolved.source_columns),
            dropped_columns=list(verdict.resolved.dropped_columns),
            detected=verdict.detected,
            malformed_lines=rows.malformed_lines,
            records_in_other_dialect=rows.records_in_other_dialect,
            part_index=part_index,
            part_count=part_count,
            first_row_number=first_row_number,
        )
    )
    return Outcome(status="validated", rows_in=rows.rows_in, rows_out=rows.rows_out, rows_dropped=rows.rows_dropped)


def account_for_part(admitted: AdmittedFile, outcome: Outcome, ledger: FileLedger) -> None:
    """Count a finished part towards its root file; the last one marks the root `chunked`."""
    if admitted.part is None or outcome.status == "oversized":
        return
    barrier = ledger.record_part_done(
        admitted.root_file_id,
        "validation",
        admitted.part.part_index,
        adds={
            "rows_in": outcome.rows_in,
            "rows_out": outcome.rows_out,
            f"parts_{outcome.status}": 1,
            **{f"dropped:{reason}": count for reason, count in outcome.rows_dropped.items()},
        },
    )
    if barrier.completed_by_part(admitted.part.part_index):
        ledger.update(admitted.root_file_id, status="chunked", stage="validator")
