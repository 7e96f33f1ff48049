"""Cutting a file's content into parts on record boundaries: plain functions over blocks and open uploads.

Delimited text and JSON lines are cut by `boundaries` (a part ends at the first record end past
`part_size_bytes`), Parquet by whole row groups. What reads the source and what the parts are
uploaded to is the caller's (services/chunker/service.py, the bench); so is the order in which the
uploads are completed. A file that cannot be split raises UnsplittableError, carrying the rejection.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import layout
from shared.compression import BrokenGzipError, DecompressedTooLargeError
from shared.events import DetectedFormat
from shared.readers import RangedReader
from shared.rejection import Rejection

from .boundaries import QUOTE, PartOpened, RecordRules, RecordTooLongError, group_row_groups, split_records
from .parts import PartStream, PartUploads
from .text import UndecodableError, codec_name

MiB = 1024 * 1024

CONTENT_TYPES = {
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


def split_record_parts(
    blocks: Iterable[bytes],
    detected: DetectedFormat,
    settings: ChunkerSettings,
    uploads: PartUploads,
    name_part: PartNamer,
) -> None:
    """`write_record_parts` with the ways a text file can turn out unsplittable raised as UnsplittableError."""
    try:
        write_record_parts(blocks, record_rules(detected), settings, uploads, name_part)
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


def split_parquet_parts(
    source: RangedReader, settings: ChunkerSettings, uploads: PartUploads, name_part: PartNamer
) -> None:
    """`write_parquet_parts` with a file pyarrow cannot read raised as UnsplittableError.

    A failed read of the source must raise something else (the service's SourceUnavailableError), so
    that it is retried instead of rejecting the file.
    """
    try:
        write_parquet_parts(source, settings, uploads, name_part)
    except (pa.ArrowException, OSError) as error:
        # pyarrow reports a corrupt file as ArrowInvalid or as a bare OSError.
        raise UnsplittableError(
            Rejection(check="readability", reason=f"not a readable Parquet file: {error}")
        ) from error
