"""Splitting an oversize file into parts that re-enter validation, each cut on a record boundary.

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

import posixpath
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import layout
from shared.compression import GZIP_MAGIC, BrokenGzipError, DecompressedTooLargeError, gunzip
from shared.events import ChunkPart, DetectedFormat, FileChunked, FileOversized, PartInfo
from shared.ledger import FileLedger
from shared.publisher import EventPublisher
from shared.rejection import Rejection, reject_file, rejected_file
from shared.storage import ObjectStore, RangedReader

from .boundaries import QUOTE, PartOpened, RecordRules, RecordTooLongError, group_row_groups, split_records
from .parts import PartStream, PartUploads
from .sources import ranged_blocks
from .text import UndecodableError, codec_name

MiB = 1024 * 1024

_CONTENT_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "jsonl": "application/x-ndjson",
    "parquet": layout.PARQUET_CONTENT_TYPE,
}
_DEFAULT_SUFFIXES = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}
_KNOWN_SUFFIXES = frozenset({".csv", ".tsv", ".tab", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq"})
_COMPRESSION_SUFFIXES = (".gz", ".gzip")


class ChunkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVIEWS_CHUNKER_", frozen=True, extra="ignore")

    part_size_bytes: int = Field(
        default=64 * MiB, ge=1024, description="Target size of one part; a part ends at the first record end past it."
    )
    read_block_bytes: int = Field(
        default=8 * MiB, ge=1024, le=256 * MiB, description="Size of one ranged read, and of one decompression step."
    )
    upload_part_bytes: int = Field(
        default=8 * MiB,
        ge=5 * MiB,
        le=5 * 1024 * MiB,
        description="Bytes buffered before a piece of a part is uploaded (S3's minimum piece is 5 MiB).",
    )
    max_decompressed_bytes: int = Field(
        # Parts are streamed, so the cap guards time and storage, not memory: set it well above real files
        # (the AWS Books TSV inflates to several GiB) and far below what a bomb inflates to.
        default=32 * 1024 * MiB,
        ge=1,
        description="A gzip file that decompresses to more is rejected (gzip bombs).",
    )
    max_record_bytes: int = Field(
        default=16 * MiB,
        ge=1024,
        description="A line longer than this rejects the file: it is not review data, and would otherwise be "
        "held whole in memory.",
    )
    max_quoted_record_bytes: int = Field(
        default=1 * MiB,
        ge=1024,
        description="A record may span lines (a quoted field holding newlines) over at most this many bytes; past "
        "it, the quote that opened the field is taken to be stray: the record ends at its first newline (a "
        "malformed row for the validator) and splitting goes on. At most max_record_bytes.",
    )
    parquet_batch_rows: int = Field(
        default=64 * 1024, ge=1, description="Rows decoded at a time when rewriting Parquet row groups into parts."
    )

    @model_validator(mode="after")
    def _quoted_records_fit_in_records(self) -> ChunkerSettings:
        if self.max_quoted_record_bytes > self.max_record_bytes:
            raise ValueError(
                f"max_quoted_record_bytes ({self.max_quoted_record_bytes}) must be at most max_record_bytes "
                f"({self.max_record_bytes})"
            )
        return self


class UnsplittableError(Exception):
    """The file cannot be split; it is rejected with this reason instead."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


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


PartNamer = Callable[[int, int], tuple[str, dict[str, str]]]
"""(part index, first row number) → (key, S3 user metadata) of the part."""


def record_rules(detected: DetectedFormat) -> RecordRules:
    """Quoted fields and a header exist only in delimited text; JSON lines end records at every newline.

    `skip_initial_space` changes nothing here: a quote after the spaces is still a quote for parity.
    """
    delimited = detected.format in ("csv", "tsv")
    quoting = delimited and detected.quoting
    # Producers from before header_rows say only has_header, and leave header_rows at its default.
    header_rows = detected.header_rows if delimited and detected.has_header else 0
    # An escape that is the quote itself is the doubled quote, which parity already takes in its stride.
    escape = detected.escape_char if quoting and detected.escape_char != detected.quote_char else None
    return RecordRules(
        quoting=quoting,
        header_rows=header_rows,
        quote=detected.quote_char.encode() if quoting else QUOTE,
        escape=escape.encode() if escape else None,
        encoding=detected.encoding,
        cr_line_ends=detected.line_terminator == "cr",
        preamble_lines=detected.preamble_lines,
    )


def format_refusal(detected: DetectedFormat) -> Rejection | None:
    """Why a file of this format cannot be split at all (before any byte is read), or None."""
    if detected.format == "json":
        return Rejection(
            check="format",
            reason="a JSON document (one array of records) cannot be split on record boundaries without parsing "
            "it whole; upload it as JSON lines (one record per line) or in smaller files",
        )
    if detected.format == "parquet":
        if detected.compression == "gzip":
            return Rejection(
                check="format",
                reason="gzip-compressed Parquet cannot be split without reading it whole; upload the .parquet "
                "file itself (Parquet compresses its own columns)",
            )
        return None
    try:
        codec_name(detected.encoding)
    except LookupError:
        return Rejection(check="readability", reason=f"the text encoding {detected.encoding!r} is unknown")
    return None


def part_suffix(key: str, detected: DetectedFormat) -> str:
    """The source's own extension, less any compression suffix (parts are written uncompressed)."""
    name = posixpath.basename(key)
    for compression in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(compression):
            name = name[: -len(compression)]
            break
    suffix = posixpath.splitext(name)[1]
    return suffix if suffix.lower() in _KNOWN_SUFFIXES else _DEFAULT_SUFFIXES[detected.format]


def write_record_parts(
    blocks: Iterable[bytes],
    rules: RecordRules,
    settings: ChunkerSettings,
    uploads: PartUploads,
    name_part: PartNamer,
) -> None:
    """Split delimited text or JSON lines on record boundaries into parts, one open upload each."""
    for event in split_records(
        blocks,
        rules,
        part_size=settings.part_size_bytes,
        max_record_bytes=settings.max_record_bytes,
        max_quoted_record_bytes=settings.max_quoted_record_bytes,
    ):
        if isinstance(event, PartOpened):
            key, metadata = name_part(event.index, event.first_row_number)
            uploads.begin(event.index, key, event.first_row_number, metadata)
        else:
            uploads.write(event.data, event.rows)


def write_parquet_parts(
    source: RangedReader, settings: ChunkerSettings, uploads: PartUploads, name_part: PartNamer
) -> None:
    """Gather whole row groups into parts of about `part_size_bytes` (of compressed data), one open upload each.

    Row groups are rewritten batch by batch, and column data is read in blocks of `read_block_bytes`
    (no pre-buffering of whole row groups), so memory is one batch and a few blocks, not a row group.
    """
    parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=settings.read_block_bytes)
    metadata = parquet.metadata
    sizes = []
    for index in range(metadata.num_row_groups):
        row_group = metadata.row_group(index)
        compressed = sum(row_group.column(column).total_compressed_size for column in range(row_group.num_columns))
        sizes.append((compressed, row_group.num_rows))
    first_row_number = 0
    for index, span in enumerate(group_row_groups(sizes, settings.part_size_bytes)):
        key, part_metadata = name_part(index, first_row_number)
        uploads.begin(index, key, first_row_number, part_metadata)
        with pq.ParquetWriter(PartStream(uploads), parquet.schema_arrow) as writer:
            for batch in parquet.iter_batches(batch_size=settings.parquet_batch_rows, row_groups=list(span.row_groups)):
                writer.write_table(pa.Table.from_batches([batch]))
        uploads.current.rows = span.rows
        first_row_number += span.rows


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
        store, upload_part_bytes=settings.upload_part_bytes, content_type=_CONTENT_TYPES[detected.format]
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
    """Stream the source into open uploads; the ways a file can turn out unsplittable become UnsplittableError."""
    detected = oversized.detected
    if detected.format == "parquet":
        _write_parquet(oversized, size, settings, store, uploads, name_part)
        return
    try:
        write_record_parts(
            source_blocks(store, oversized, size, settings), record_rules(detected), settings, uploads, name_part
        )
    except BrokenGzipError as error:
        raise UnsplittableError(Rejection(check="readability", reason=f"the gzip stream is broken: {error}")) from error
    except DecompressedTooLargeError as error:
        raise UnsplittableError(
            Rejection(
                check="size",
                reason=f"the gzip file {error} (REVIEWS_CHUNKER_MAX_DECOMPRESSED_BYTES); a gzip bomb, or a file to "
                "upload in smaller pieces",
                details={"max_decompressed_bytes": error.limit, "compressed_offset": error.compressed_offset},
            )
        ) from error
    except RecordTooLongError as error:
        raise UnsplittableError(
            Rejection(
                check="readability",
                reason=f"{error} (REVIEWS_CHUNKER_MAX_RECORD_BYTES)",
                details={"record_offset": error.offset, "max_record_bytes": error.limit},
            )
        ) from error
    except UndecodableError as error:
        counted = " (counting the decompressed content)" if detected.compression == "gzip" else ""
        raise UnsplittableError(
            Rejection(
                check="readability",
                reason=f"the text cannot be decoded: {error}{counted}",
                details={"byte_offset": error.offset, "encoding": error.encoding},
            )
        ) from error


def _write_parquet(
    oversized: FileOversized,
    size: int,
    settings: ChunkerSettings,
    store: ObjectStore,
    uploads: PartUploads,
    name_part: PartNamer,
) -> None:
    try:
        write_parquet_parts(
            _SourceReader(store, oversized.key, oversized.version_id, size), settings, uploads, name_part
        )
    except (pa.ArrowException, OSError) as error:
        # pyarrow reports a corrupt file as ArrowInvalid or as a bare OSError; a failed read is neither here.
        raise UnsplittableError(
            Rejection(check="readability", reason=f"not a readable Parquet file: {error}")
        ) from error


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
