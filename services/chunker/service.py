"""Splitting an oversize file against the bucket, the ledger and the bus: parts that re-enter validation.

The source is streamed: ranged reads of `read_block_bytes`, decompressed on the fly when it is gzip,
cut into parts by `boundaries` (delimited text and JSON lines) or by row group (Parquet), and each
part streamed out as its own S3 multipart upload. Memory is a few blocks and one upload piece,
whatever the size of the file.

Ordering (the part barrier): the ledger must know how many parts there are before any part is
visible, because validated parts are counted against that number. So no upload is completed until
the whole source has been read; then the count goes to the ledger; then the uploads are completed
(each completion is the S3 event that sends the part back through the receiver); then FileChunked.
A failure before completion aborts every open upload, and the message is retried. Part keys are
deterministic, so a retry after a crash rewrites the same keys, and the ledger counts each part
index once however often it is validated.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any

from shared import layout
from shared.compression import GZIP_MAGIC, gunzip
from shared.events import ChunkPart, FileChunked, FileOversized, PartInfo
from shared.ledger import FileLedger
from shared.publisher import EventPublisher
from shared.readers import RangedReader
from shared.rejection import Rejection, reject_file, rejected_file
from shared.storage import ObjectStore

from .parts import PartUploads
from .sources import ranged_blocks
from .splitting import (
    CONTENT_TYPES,
    ChunkerSettings,
    PartNamer,
    UnsplittableError,
    format_refusal,
    part_suffix,
    split_parquet_parts,
    split_record_parts,
)


class SourceUnavailableError(RuntimeError):
    """Reading the source failed (S3, the network): not the file's fault, so the message is retried."""


class _SourceReader(RangedReader):
    """The source as a file for pyarrow, whose own errors about a broken file are plain OSErrors: a failed
    read is told apart from those, so a network error is retried instead of rejecting the file."""

    def readinto(self, buffer: Any) -> int:
        try:
            return super().readinto(buffer)
        except Exception as error:
            raise SourceUnavailableError(f"reading the source failed: {error}") from error


def source_blocks(
    store: ObjectStore, oversized: FileOversized, size: int, settings: ChunkerSettings
) -> Iterator[bytes]:
    """The file's content, decompressed when it is gzip (said by the validator or by the magic bytes)."""
    raw = ranged_blocks(
        lambda first, last: store.read_bytes(oversized.key, oversized.version_id, (first, last)),
        size,
        settings.read_block_bytes,
    )
    first = next(raw, b"")
    stream = chain([first], raw)
    if oversized.detected.compression == "gzip" or first.startswith(GZIP_MAGIC):
        return gunzip(stream, step_bytes=settings.read_block_bytes, limit_bytes=settings.max_decompressed_bytes)
    return stream


def split_file(
    oversized: FileOversized,
    settings: ChunkerSettings,
    *,
    store: ObjectStore,
    ledger: FileLedger,
    publisher: EventPublisher,
) -> FileChunked | None:
    """Split the file into parts under chunks/, then announce them; None when the file was rejected instead."""
    info = store.head(oversized.key, oversized.version_id)
    if info is None:
        _reject(oversized, Rejection(check="key", reason="no object at that key and version"), None, ledger, publisher)
        return None
    parts_prefix = _parts_prefix(oversized)
    # Uploads left open by an attempt that died (a timeout gives no chance to abort) are dropped first.
    for key, upload_id in store.open_multipart_uploads(parts_prefix):
        store.abort_multipart(key, upload_id)

    detected = oversized.detected
    refusal = format_refusal(detected)
    if refusal is not None:
        _reject(oversized, refusal, store, ledger, publisher)
        return None
    uploads = PartUploads(
        store, upload_part_bytes=settings.upload_part_bytes, content_type=CONTENT_TYPES[detected.format]
    )
    name_part = _part_namer(oversized, part_suffix(oversized.key, detected))
    try:
        _write_parts(oversized, info.size, settings, store, uploads, name_part)
        uploads.finish_writing()
    except UnsplittableError as unsplittable:
        uploads.abort_all()
        _reject(oversized, unsplittable.rejection, store, ledger, publisher)
        return None
    except BaseException:
        uploads.abort_all()
        raise
    if not uploads.parts:
        _reject(oversized, Rejection(check="columns", reason="the file has no data rows"), store, ledger, publisher)
        return None

    # The barrier: the part count is in the ledger before the first part can be seen, let alone validated.
    ledger.set_parts_expected(oversized.root_file_id, "validation", len(uploads.parts))
    try:
        uploads.complete_all()
    except BaseException:
        # Parts already completed stay (a retry rewrites the same keys); the rest must not linger.
        uploads.abort_all()
        raise

    parts = [ChunkPart(key=part.key, part_index=part.index, rows=part.rows, size=part.size) for part in uploads.parts]
    chunked = FileChunked(
        correlation_id=oversized.correlation_id,
        file_id=oversized.file_id,
        root_file_id=oversized.root_file_id,
        dataset=oversized.dataset,
        source_key=oversized.key,
        parts=parts,
        rows_total=sum(part.rows for part in parts),
    )
    ledger.update(
        oversized.file_id,
        outputs={"parts": str(len(parts)), "rows": str(chunked.rows_total), "parts_prefix": parts_prefix},
    )
    publisher.publish(chunked)
    return chunked


def _write_parts(
    oversized: FileOversized,
    size: int,
    settings: ChunkerSettings,
    store: ObjectStore,
    uploads: PartUploads,
    name_part: PartNamer,
) -> None:
    """Stream the source into open uploads; a file that turns out unsplittable raises UnsplittableError."""
    if oversized.detected.format == "parquet":
        reader = _SourceReader(store, oversized.key, oversized.version_id, size)
        split_parquet_parts(reader, settings, uploads, name_part)
    else:
        split_record_parts(
            source_blocks(store, oversized, size, settings), oversized.detected, settings, uploads, name_part
        )


def _parts_prefix(oversized: FileOversized) -> str:
    """The folder of this file's parts (the part key less its name)."""
    return layout.chunks_prefix(oversized.dataset, oversized.root_file_id)


def _part_namer(oversized: FileOversized, suffix: str) -> PartNamer:
    def name_part(index: int, first_row_number: int) -> tuple[str, dict[str, str]]:
        part = PartInfo(
            parent_file_id=oversized.file_id,
            root_file_id=oversized.root_file_id,
            part_index=index,
            first_row_number=first_row_number,
        )
        key = layout.chunk_key(oversized.dataset, oversized.root_file_id, index, suffix)
        return key, layout.chunk_metadata(part, oversized.correlation_id)

    return name_part


def _reject(
    oversized: FileOversized,
    rejection: Rejection,
    store: ObjectStore | None,
    ledger: FileLedger,
    publisher: EventPublisher,
) -> None:
    reject_file(
        rejected_file(oversized, oversized.key, source_version_id=oversized.version_id),
        rejection,
        "chunker",
        store=store,
        ledger=ledger,
        publisher=publisher,
    )
