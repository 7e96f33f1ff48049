"""A received file's ledger record, built the one way both the receiver and the validator need it."""

from __future__ import annotations

from .events import Dataset, FileReceived
from .ledger import FileRecord


def record_for(received: FileReceived, file_id: str, dataset: Dataset | None) -> FileRecord:
    """The ledger record of the file an announcement names: a part's ids come from its part information."""
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
