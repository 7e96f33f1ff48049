"""Splitting an oversize file into parts that re-enter validation.

STAND-IN (issue 2): parts are cut at line ends, which is right for JSON lines and for delimited text
without quoted newlines; record-aware cutting (quoted fields, Parquet row groups, gzip) and bounded
streaming come with the ingestion issue. The part barrier is real: the number of parts is fixed
from the file size before any part is written, so the ledger knows how many to wait for before the
first part can come back validated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import layout
from shared.events import ChunkPart, FileChunked, FileOversized
from shared.ledger import FileLedger
from shared.publisher import EventPublisher
from shared.rejection import RejectedFile, Rejection, reject_file
from shared.storage import ObjectStore

GZIP_MAGIC = b"\x1f\x8b"


class ChunkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVIEWS_CHUNKER_", frozen=True, extra="ignore")

    part_size_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="Target size of one part.")


@dataclass(frozen=True)
class PlannedPart:
    index: int
    start: int
    end: int


def plan_parts(size: int, part_size: int) -> list[PlannedPart]:
    """Byte ranges of roughly `part_size`; each part later moves its edges to the next line end."""
    count = max(1, math.ceil(size / part_size))
    return [PlannedPart(index, index * part_size, min(size, (index + 1) * part_size)) for index in range(count)]


def _next_line_start(body: bytes, position: int) -> int:
    if position == 0:
        return 0
    newline = body.find(b"\n", position - 1)
    return len(body) if newline < 0 else newline + 1


def split_file(
    oversized: FileOversized,
    settings: ChunkerSettings,
    *,
    store: ObjectStore,
    ledger: FileLedger,
    publisher: EventPublisher,
) -> FileChunked | None:
    body = store.read_bytes(oversized.key, oversized.version_id)
    if body[:2] == GZIP_MAGIC:
        reject_file(
            RejectedFile(
                file_id=oversized.file_id,
                root_file_id=oversized.root_file_id,
                correlation_id=oversized.correlation_id,
                dataset=oversized.dataset,
                source_key=oversized.key,
                source_version_id=oversized.version_id,
            ),
            Rejection(check="size", reason="splitting gzip files is not supported yet"),
            "chunker",
            store=store,
            ledger=ledger,
            publisher=publisher,
        )
        return None
    planned = plan_parts(len(body), settings.part_size_bytes)
    # Expected parts are known before any part exists, so no part can finish before the barrier is set.
    ledger.set_parts_expected(oversized.root_file_id, "validation", len(planned))
    header_end = (
        _next_line_start(body, 1)
        if oversized.detected.has_header and oversized.detected.format in ("csv", "tsv")
        else 0
    )
    header = body[:header_end]
    suffix = "." + oversized.key.rsplit(".", 1)[-1] if "." in oversized.key.rsplit("/", 1)[-1] else ""
    parts: list[ChunkPart] = []
    rows_before = 0
    for part in planned:
        start = max(_next_line_start(body, part.start), header_end)
        end = _next_line_start(body, part.end) if part.end < len(body) else len(body)
        records = body[start:end]
        rows = sum(1 for line in records.split(b"\n") if line.strip())
        if rows == 0:
            # A record longer than a part leaves this range empty: count it done, with nothing in it.
            barrier = ledger.record_part_done(oversized.root_file_id, "validation", part.index, adds={"parts_empty": 1})
            if barrier.completed_now:
                ledger.update(oversized.root_file_id, status="chunked", stage="chunker")
            continue
        key = layout.chunk_key(oversized.dataset, oversized.root_file_id, part.index, suffix)
        store.write_bytes(
            key,
            header + records,
            metadata={
                "parent-file-id": oversized.file_id,
                "root-file-id": oversized.root_file_id,
                "part-index": str(part.index),
                "first-row-number": str(rows_before),
                "correlation-id": oversized.correlation_id,
            },
        )
        parts.append(ChunkPart(key=key, part_index=part.index, rows=rows, size=len(header) + len(records)))
        rows_before += rows
    chunked = FileChunked(
        correlation_id=oversized.correlation_id,
        file_id=oversized.file_id,
        root_file_id=oversized.root_file_id,
        dataset=oversized.dataset,
        source_key=oversized.key,
        parts=parts,
        rows_total=rows_before,
    )
    ledger.update(oversized.file_id, outputs={"parts": str(len(parts))})
    publisher.publish(chunked)
    return chunked
