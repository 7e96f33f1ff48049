"""The validator's four checks — format, readability, size, columns — as a pure function.

Checks 1, 2 and 4 look at a bounded head sample (the first `sample_bytes` of content, decompressed
when gzip-compressed; for Parquet, the footer), so an oversize file is only sent to the chunker once
its header and sample passed them: no chunking of junk. A file within the size limits is then read
whole and written to processed/ in the canonical schema, with bad rows dropped and counted.

`examine_file` is the checks as a pure function over a `ByteSource` (bytes in tests and engines, the
bucket in the Lambda); `service.validate_file` performs what they decide against the bucket, the
ledger and the bus.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.canonical import LANGUAGE
from shared.events import Dataset, DetectedFormat
from shared.rejection import Rejection

from .checks import CheckFailedError
from .decoding import content_as_utf8
from .formats import (
    ContentFormat,
    Head,
    inflate,
    inspect_head,
    parquet_footer_length,
    parquet_schema,
    read_head,
)
from .layouts import Layout, LayoutSettings, ResolvedLayout, known_column_names, resolve_layout
from .reading import CanonicalRows, json_document_columns, read_canonical
from .records import Dialect

# A gzip head read takes this much more compressed data than the sample needs, so that even
# incompressible content fills the sample.
_GZIP_HEAD_SLACK = 64 * 1024
# The footer of a Parquet file usually fits here, so one tail read is enough.
_PARQUET_TAIL_BYTES = 64 * 1024


class ValidatorSettings(BaseSettings):
    """Limits on what the validator accepts (env prefix REVIEWS_VALIDATOR_)."""

    model_config = SettingsConfigDict(env_prefix="REVIEWS_VALIDATOR_", frozen=True, extra="ignore")

    min_size_bytes: int = Field(default=1, ge=0, description="Smaller files are rejected.")
    max_size_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="Larger files (stored size, or content size once decompressed) are split by the chunker; "
        "the validator holds at most this much content in memory.",
    )
    max_decompressed_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1,
        description="A gzip file whose content is larger is rejected (check size): the guard against gzip bombs. "
        "Decompression stops there, keeping nothing beyond max_size_bytes (the chunker has the same guard).",
    )
    sample_bytes: int = Field(
        default=1024 * 1024,
        ge=4096,
        description="Content read from the head for the format, readability and columns checks; the first "
        "record must end within it.",
    )
    max_record_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=4096,
        description="A record (line, or quoted multi-line row) longer than this rejects the file; it is also "
        "the block size the reader parses in.",
    )
    fallback_encoding: str | None = Field(
        default=None,
        description="An encoding (e.g. cp1252) for byte sequences that are not UTF-8; off by default, so such "
        "files are refused with the offset of the first bad byte. The report says when it was used.",
    )
    max_malformed_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="A file whose share of malformed records (wrong number of fields, broken quoting, bad JSON "
        "lines) is above this is rejected: the dialect is wrong or the file is damaged.",
    )
    round_ratings: bool = Field(
        default=False,
        description="Round ratings that are not whole (4.5) half up instead of dropping them as rating_not_whole.",
    )
    layout_settings: LayoutSettings = Field(
        default_factory=LayoutSettings,
        description="Configured layouts and column roles (REVIEWS_VALIDATOR_LAYOUTS, REVIEWS_VALIDATOR_LAYOUTS_FILE, "
        "REVIEWS_VALIDATOR_COLUMN_ROLES).",
    )


class ByteSource(Protocol):
    """An object's size and byte ranges: the bucket in production, bytes in tests."""

    @property
    def size(self) -> int: ...

    def read(self, start: int, stop: int) -> bytes:
        """Bytes [start, stop) of the object."""
        ...


@dataclass(frozen=True)
class InMemoryBytes:
    """A ByteSource over bytes already in memory."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, start: int, stop: int) -> bytes:
        return self.data[start:stop]


@dataclass(frozen=True)
class Rejected:
    rejection: Rejection


@dataclass(frozen=True)
class Oversized:
    detected: DetectedFormat


@dataclass(frozen=True)
class Accepted:
    detected: DetectedFormat
    resolved: ResolvedLayout
    rows: CanonicalRows


Verdict = Rejected | Oversized | Accepted


def examine_file(
    source: ByteSource,
    *,
    dataset: Dataset,
    limits: ValidatorSettings,
    first_row_number: int = 0,
    expected_layout: str | None = None,
    root_dialect: Dialect | None = None,
) -> Verdict:
    """Run the four checks in order and, for a file within the limits, read it into canonical rows.

    `expected_layout` is the layout of the root file a chunk was cut from: its parts must match it.
    `root_dialect` is the dialect found in that file: a part is read in it, not in one detected on the
    part alone (a part's sample can lack what told the whole file's dialect, e.g. its quoted fields).
    """
    try:
        return _examine(source, dataset, limits, first_row_number, expected_layout, root_dialect)
    except CheckFailedError as problem:
        return Rejected(problem.rejection)


def _read_parquet_footer(source: ByteSource) -> pa.Schema:
    tail = source.read(max(0, source.size - _PARQUET_TAIL_BYTES), source.size)
    needed = parquet_footer_length(tail)
    if needed > source.size:
        raise CheckFailedError("readability", "the Parquet footer is longer than the file: truncated or broken")
    if needed > len(tail):
        tail = source.read(source.size - needed, source.size)
    return parquet_schema(tail, source.size)


def _resolve(
    content: ContentFormat, dataset: Dataset, limits: ValidatorSettings, expected_layout: str | None
) -> ResolvedLayout:
    settings = limits.layout_settings
    resolved = resolve_layout(content, dataset, settings.in_order(), settings.column_roles)
    if expected_layout is not None and resolved.name != expected_layout:
        raise CheckFailedError(
            "columns",
            f"this part is in layout {resolved.name!r}, but the file it was cut from is in {expected_layout!r}",
            layout=resolved.name,
            expected_layout=expected_layout,
        )
    return resolved


def _inspect(
    source: ByteSource, limits: ValidatorSettings, layouts: tuple[Layout, ...], dialect: Dialect | None
) -> tuple[Head, ContentFormat | None]:
    """Checks 1 and 2 on the head: the content sample, and the format found in it (None: nothing in it)."""
    head_length = min(source.size, limits.sample_bytes + _GZIP_HEAD_SLACK)
    raw_head = source.read(0, head_length) if head_length else b""
    head = read_head(raw_head, whole=head_length == source.size, sample_bytes=limits.sample_bytes)
    content_format = inspect_head(
        head, known_columns=known_column_names(layouts), fallback_encoding=limits.fallback_encoding, dialect=dialect
    )
    if content_format is not None and content_format.format == "parquet" and head.compression == "none":
        content_format = content_format.with_parquet_schema(_read_parquet_footer(source))
    return head, content_format


def _whole_content(source: ByteSource, head: Head, limits: ValidatorSettings) -> pa.Buffer | None:
    """The file's whole content, decompressed; None when that is above max_size_bytes."""
    raw = head.content if head.complete and head.compression == "none" else source.read(0, source.size)
    if head.compression == "gzip":
        return inflate(raw, keep_at_most=limits.max_size_bytes, give_up_after=limits.max_decompressed_bytes)
    return pa.py_buffer(raw)


def _refuse_malformed(rows: CanonicalRows, limits: ValidatorSettings) -> None:
    malformed = rows.rows_dropped.get("malformed_record", 0)
    if rows.rows_in and malformed / rows.rows_in > limits.max_malformed_share:
        raise CheckFailedError(
            "format",
            f"{malformed} of the file's {rows.rows_in} records ({malformed / rows.rows_in:.1%}) are malformed "
            f"(wrong number of fields, broken quoting or bad JSON), above the {limits.max_malformed_share:.0%} "
            f"allowed (max_malformed_share): the file is damaged or not in one consistent format; first "
            f"malformed lines: {rows.malformed_lines}",
            malformed_records=malformed,
            malformed_share=round(malformed / rows.rows_in, 4),
            malformed_lines=rows.malformed_lines,
            records=rows.rows_in,
        )


def _examine(
    source: ByteSource,
    dataset: Dataset,
    limits: ValidatorSettings,
    first_row_number: int,
    expected_layout: str | None,
    root_dialect: Dialect | None,
) -> Verdict:
    layouts = limits.layout_settings.in_order()
    head, content_format = _inspect(source, limits, layouts, root_dialect)
    # A gzip-compressed Parquet file, and a JSON document, show their columns only once read whole.
    columns_later = content_format is not None and (
        (content_format.format == "parquet" and head.compression == "gzip") or not content_format.columns_known
    )

    # Check 3: size.
    if source.size < limits.min_size_bytes:
        raise CheckFailedError(
            "size", f"{source.size} bytes is below the minimum of {limits.min_size_bytes}", size=source.size
        )
    if content_format is None:
        raise CheckFailedError("columns", "the file holds no records: it is empty or only whitespace")
    if columns_later and source.size > limits.max_size_bytes:
        what = "a gzip-compressed Parquet file" if content_format.format == "parquet" else "a JSON document"
        advice = (
            "write it uncompressed (Parquet compresses its own pages) or in smaller files"
            if content_format.format == "parquet"
            else "write it as JSON lines (one object per line), which can be split, or in smaller files"
        )
        raise CheckFailedError("size", f"{what} above max_size_bytes cannot be split; {advice}", size=source.size)

    # Check 4: columns, on the head, so that an oversize file is known to be worth splitting.
    resolved = None if columns_later else _resolve(content_format, dataset, limits, expected_layout)
    if resolved is not None and source.size > limits.max_size_bytes:
        return Oversized(content_format.detected(resolved.name))

    content = _whole_content(source, head, limits)
    if content is None:
        if resolved is None:
            raise CheckFailedError("size", f"the decompressed {content_format.format} file is above max_size_bytes")
        return Oversized(content_format.detected(resolved.name))
    if content_format.encoding is not None:
        content, encoding = content_as_utf8(content, content_format.encoding)
        content_format = replace(content_format, encoding=encoding)
    if resolved is None:
        if content_format.format == "parquet":
            footer = _read_parquet_footer(InMemoryBytes(content.to_pybytes()))
            content_format = content_format.with_parquet_schema(footer)
        else:
            content_format = content_format.with_columns(*json_document_columns(content))
        resolved = _resolve(content_format, dataset, limits, expected_layout)
    rows = read_canonical(
        content,
        content_format,
        resolved,
        dataset=dataset,
        first_row_number=first_row_number,
        block_size=limits.max_record_bytes,
        round_ratings=limits.round_ratings,
    )
    if rows.rows_in == 0:
        raise CheckFailedError("columns", "the file has no data rows (a header alone, or no records)")
    _refuse_malformed(rows, limits)
    if rows.rows_out == 0:
        raise CheckFailedError(
            "columns",
            f"none of the file's {rows.rows_in} rows is usable: "
            + ", ".join(f"{count} {reason}" for reason, count in rows.rows_dropped.items()),
            rows_in=rows.rows_in,
            rows_dropped=rows.rows_dropped,
            first_dropped_rows=rows.first_dropped_rows,
        )
    return Accepted(detected=content_format.detected(resolved.name), resolved=resolved, rows=rows)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    # Dictionary-encoding review texts and ids (nearly all distinct) costs time and saves nothing; the
    # language column is where it pays. Snappy, because every reader (DuckDB, Spark on Glue) has it.
    pq.write_table(table, sink, compression="snappy", use_dictionary=[LANGUAGE])
    return bytes(sink.getvalue().to_pybytes())
