"""Receiving objects: S3 notifications become FileReceived, and every announcement is checked before use.

The receiver trusts nothing it did not read itself: part information for chunks comes from the
object's own metadata (written by the chunker), not from the key.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import layout
from shared.events import Dataset, FileReceived, PartInfo
from shared.ledger import FileLedger, FileRecord, FileStatus, file_id_for
from shared.publisher import EventPublisher
from shared.rejection import Rejection, reject_file, rejected_file
from shared.storage import ObjectStore


@dataclass(frozen=True)
class ObjectAnnouncement:
    """What an S3 "Object Created" notification says about an object."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None


def record_for(received: FileReceived, file_id: str, dataset: Dataset | None) -> FileRecord:
    part = received.part
    return FileRecord(
        file_id=file_id,
        root_file_id=part.root_file_id if part else file_id,
        parent_file_id=part.parent_file_id if part else None,
        correlation_id=received.correlation_id or file_id,
        bucket=received.bucket,
        key=received.key,
        version_id=received.version_id,
        etag=received.etag,
        size=received.size,
        dataset=dataset,
        origin=received.origin,
        part_index=part.part_index if part else None,
    )


def receive_object(
    announcement: ObjectAnnouncement, *, store: ObjectStore, ledger: FileLedger, publisher: EventPublisher
) -> FileReceived | None:
    """Turn an S3 notification into a ledger entry and a FileReceived; None when the key is refused."""
    file_id = file_id_for(announcement.bucket, announcement.key, announcement.version_id or announcement.etag)
    received = FileReceived(
        bucket=announcement.bucket,
        key=announcement.key,
        version_id=announcement.version_id,
        size=announcement.size,
        etag=announcement.etag,
        dataset="train",  # replaced below once the key is known to be safe
        origin="s3",
    )
    try:
        inbound = layout.parse_inbound_key(announcement.key)
    except layout.UnsafeKeyError as error:
        record = record_for(received, file_id, dataset=None)
        ledger.register(record)
        reject_file(
            rejected_file(record, announcement.key),
            Rejection(check="key", reason=f"refused key: {error}"),
            "receiver",
            store=None,
            ledger=ledger,
            publisher=publisher,
        )
        return None
    part = None
    correlation_id = file_id
    if inbound.area == "chunks":
        info = store.head(announcement.key, announcement.version_id)
        metadata = info.metadata if info else {}
        part = layout.part_from_metadata(metadata)
        correlation_id = metadata.get(layout.CORRELATION_METADATA, file_id)
    received = received.model_copy(
        update={
            "dataset": inbound.dataset,
            "origin": "chunk" if part else "s3",
            "part": part,
            "correlation_id": correlation_id,
        }
    )
    ledger.register(record_for(received, file_id, inbound.dataset))
    publisher.publish(received)
    return received


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
