"""Receiving objects: S3 notifications become ledger entries and FileReceived events.

The receiver trusts nothing it did not read itself: part information for chunks comes from the
object's own metadata (written by the chunker), not from the key.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import layout
from shared.events import FileReceived
from shared.ledger import FileLedger, file_id_for
from shared.publisher import EventPublisher
from shared.received import record_for
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
