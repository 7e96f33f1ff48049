"""Receiving objects: S3 notifications become FileReceived, and every announcement is checked before use.

The receiver trusts nothing it did not read itself: part information for chunks comes from the
object's own metadata (written by the chunker), not from the key.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import layout
from shared.events import Dataset, FileReceived, PartInfo
from shared.ledger import FileLedger, FileRecord, file_id_for
from shared.publisher import EventPublisher
from shared.rejection import RejectedFile, Rejection, reject_file
from shared.storage import ObjectStore

# S3 user metadata the chunker writes on every part (x-amz-meta-*).
PART_METADATA_FIELDS = ("parent-file-id", "root-file-id", "part-index", "first-row-number")
CORRELATION_METADATA = "correlation-id"


@dataclass(frozen=True)
class ObjectAnnouncement:
    """What an S3 "Object Created" notification says about an object."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None


def part_info_from_metadata(metadata: dict[str, str]) -> PartInfo | None:
    if not all(name in metadata for name in PART_METADATA_FIELDS):
        return None
    return PartInfo(
        parent_file_id=metadata["parent-file-id"],
        root_file_id=metadata["root-file-id"],
        part_index=int(metadata["part-index"]),
        first_row_number=int(metadata["first-row-number"]),
    )


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
        ledger.register(record_for(received, file_id, dataset=None))
        reject_file(
            RejectedFile(
                file_id=file_id, root_file_id=file_id, correlation_id=file_id, dataset=None, source_key=announcement.key
            ),
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
        part = part_info_from_metadata(metadata)
        correlation_id = metadata.get(CORRELATION_METADATA, file_id)
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


@dataclass(frozen=True)
class AdmittedFile:
    """A FileReceived that passed the admission checks: it names an object in our inbound prefixes."""

    file_id: str
    root_file_id: str
    correlation_id: str
    dataset: Dataset
    key: str
    version_id: str | None
    part: PartInfo | None


def admit(
    received: FileReceived, *, pipeline_bucket: str, ledger: FileLedger, publisher: EventPublisher
) -> AdmittedFile | None:
    """Check where an announcement points before anything reads it; refuse it, touching nothing, if it is wrong.

    External systems publish FileReceived too, so the bucket, the key and the dataset are all checked
    here; an announcement that fails is recorded and answered with FileRejected, and no object is read,
    moved or written.
    """
    file_id = file_id_for(received.bucket, received.key, received.version_id or received.etag)
    record = record_for(received, file_id, received.dataset)
    if not ledger.register(record):
        existing = ledger.get(file_id)
        if existing is not None and existing.is_final:
            # This version already settled: a repeated (or forged) announcement must not change its outcome.
            return None
    problem: str | None = None
    if received.bucket != pipeline_bucket:
        problem = f"bucket {received.bucket!r} is not the pipeline's bucket"
    else:
        try:
            inbound = layout.parse_inbound_key(received.key)
        except layout.UnsafeKeyError as error:
            problem = f"refused key: {error}"
        else:
            if inbound.dataset != received.dataset:
                problem = f"dataset {received.dataset!r} does not match the key's folder {inbound.dataset!r}"
            elif inbound.area == "chunks" and received.part is None:
                problem = "a key under chunks/ must come with part information"
    if problem is not None:
        reject_file(
            RejectedFile(
                file_id=file_id,
                root_file_id=record.root_file_id,
                correlation_id=record.correlation_id,
                dataset=received.dataset,
                source_key=received.key,
            ),
            Rejection(check="key", reason=problem),
            "validator",
            store=None,
            ledger=ledger,
            publisher=publisher,
        )
        return None
    return AdmittedFile(
        file_id=file_id,
        root_file_id=record.root_file_id,
        correlation_id=record.correlation_id,
        dataset=received.dataset,
        key=received.key,
        version_id=received.version_id,
        part=received.part,
    )
