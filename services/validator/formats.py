"""Checks 1 and 2 — format and readability — recognised from content, never from the file name.

Everything here looks at a bounded head sample of the content (decompressed when the file is
gzip-compressed), except the few whole-content helpers the validator calls once the size check has
passed: `inflate` and `parquet_schema`.

A file is one of:

- Parquet: `PAR1` at the start (and at the end, checked when the footer is read);
- JSON lines: one JSON object per line (or one array per line under a first line of column names);
- a JSON document holding an array of review objects (read whole: it cannot be split);
- delimited text, in the dialect `dialect` finds, with or without a header row and a preamble.

Each may be gzip-compressed (one or more gzip members). Text is decoded by `decoding`: UTF-8 with or
without a BOM, UTF-16/32, or a configured fallback encoding.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from shared.compression import GZIP_MAGIC, BrokenGzipError, DecompressedTooLargeError, gunzip
from shared.events import DetectedFormat
from shared.readers import SeekableReader

from .checks import CheckFailedError
from .decoding import TextEncoding, decode_head, detect_encoding
from .dialect import TableShape, looks_like_column_names, table_shape
from .records import ARROW_CONTENT_ERRORS, Dialect

ContainerFormat = Literal["csv", "tsv", "jsonl", "json", "parquet"]
Compression = Literal["none", "gzip"]

PARQUET_MAGIC = b"PAR1"
# Enough JSON lines to judge the keys and their types; more only costs time.
MAX_SAMPLE_RECORDS = 2000
# Parquet footers of review files are a few KiB; one this large is not one we want to parse.
MAX_PARQUET_FOOTER_BYTES = 16 * 1024 * 1024
# Bounded steps for inflating: input fed 64 KiB at a time, output taken 1 MiB at a time, so neither
# a gzip bomb nor a large file ever needs more than that beyond what the caller keeps.
_INFLATE_INPUT_STEP = 64 * 1024
_INFLATE_OUTPUT_STEP = 1024 * 1024


@dataclass(frozen=True)
class ContentFormat:
    """What checks 1 and 2 found in a file's content; check 4 and the reader work from it."""

    format: ContainerFormat
    compression: Compression = "none"
    encoding: TextEncoding | None = None
    """How the text is decoded; None for Parquet."""
    shape: TableShape | None = None
    """For delimited text: the dialect, header and preamble."""
    columns: tuple[str, ...] = ()
    """Header names, JSON keys seen in the sample, or Parquet columns; empty for a headerless file."""
    column_count: int = 0
    json_types: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """For JSON lines: the JSON types each key took in the sample ("string", "number", "null", …)."""
    json_arrays: bool = False
    """JSON lines whose lines are arrays, under a first line of column names."""
    parquet_schema: pa.Schema | None = None

    @property
    def has_header(self) -> bool:
        return self.shape.header_rows > 0 if self.shape is not None else bool(self.columns)

    @property
    def delimiter(self) -> str | None:
        return self.shape.dialect.delimiter if self.shape is not None else None

    @property
    def quoting(self) -> bool:
        return self.shape is None or self.shape.dialect.quote_char is not None

    @property
    def encoding_name(self) -> str | None:
        return self.encoding.name if self.encoding is not None else None

    @property
    def columns_known(self) -> bool:
        """False when the columns show only once the whole content is read (a JSON document)."""
        return self.format != "json" or bool(self.columns)

    def with_parquet_schema(self, schema: pa.Schema) -> ContentFormat:
        return replace(self, parquet_schema=schema, columns=tuple(schema.names), column_count=len(schema.names))

    def with_columns(self, columns: tuple[str, ...], json_types: Mapping[str, frozenset[str]]) -> ContentFormat:
        return replace(self, columns=columns, column_count=len(columns), json_types=json_types)

    def detected(self, layout: str) -> DetectedFormat:
        shape = self.shape
        dialect = shape.dialect if shape is not None else None
        return DetectedFormat(
            format=self.format,
            compression=self.compression,
            encoding=self.encoding.name if self.encoding is not None else "utf-8",
            delimiter=dialect.delimiter if dialect is not None else None,
            quoting=dialect.quote_char is not None if dialect is not None else True,
            quote_char=(dialect.quote_char or '"') if dialect is not None else '"',
            escape_char=dialect.escape_char if dialect is not None else None,
            skip_initial_space=dialect.skip_initial_space if dialect is not None else False,
            line_terminator=shape.line_terminator if shape is not None else "lf",
            preamble_lines=shape.preamble_lines if shape is not None else 0,
            header_rows=shape.header_rows if shape is not None else (1 if self.json_arrays else 0),
            has_header=self.has_header,
            layout=layout,
        )


@dataclass(frozen=True)
class Head:
    """The first bytes of a file's content, decompressed when it is gzip-compressed."""

    content: bytes
    complete: bool
    """True when `content` is the file's whole content (so its last line is complete)."""
    compression: Compression


# -- gzip ---------------------------------------------------------------------------------------


def _inflated_pieces(compressed: bytes, *, whole: bool, limit: int | None = None) -> Iterator[bytes]:
    """Decompress gzip data (one or more members) in bounded pieces, refusing what is not readable gzip.

    `whole` says `compressed` is the entire object, so a stream that stops before its end marker is
    truncated; otherwise it is a head read and simply ends. `limit`: see `gunzip`.
    """
    view = memoryview(compressed)
    steps = (view[start : start + _INFLATE_INPUT_STEP] for start in range(0, len(view), _INFLATE_INPUT_STEP))
    try:
        yield from gunzip(steps, step_bytes=_INFLATE_OUTPUT_STEP, limit_bytes=limit, whole=whole)
    except BrokenGzipError as error:
        raise CheckFailedError("readability", str(error), compressed_offset=error.compressed_offset) from error


def _inflate_head(compressed_head: bytes, *, limit: int, whole: bool) -> tuple[bytes, bool]:
    pieces: list[bytes] = []
    kept = 0
    for piece in _inflated_pieces(compressed_head, whole=whole):
        pieces.append(piece)
        kept += len(piece)
        if kept > limit:
            return b"".join(pieces)[:limit], False
    return b"".join(pieces), whole


def inflate(compressed: bytes, *, keep_at_most: int, give_up_after: int) -> pa.Buffer | None:
    """A whole gzip file's content; None when it is larger than `keep_at_most` bytes.

    Decompression stops at `give_up_after` bytes of content, so a gzip bomb costs bounded time and
    memory: it is a size problem (the content is too large to be taken in, whatever its ratio), and
    the reason says how far decompression got.
    """
    sink: pa.BufferOutputStream | None = pa.BufferOutputStream()
    total = 0
    try:
        for piece in _inflated_pieces(compressed, whole=True, limit=give_up_after):
            total += len(piece)
            if sink is not None:
                if total <= keep_at_most:
                    sink.write(piece)
                else:
                    sink = None  # too big to validate whole: keep counting, keep nothing
    except DecompressedTooLargeError as error:
        raise CheckFailedError(
            "size",
            f"the gzip content is larger than the {give_up_after}-byte limit on decompressed size "
            f"(max_decompressed_bytes); {len(compressed)} compressed bytes inflated past it",
            compressed_bytes=len(compressed),
            max_decompressed_bytes=give_up_after,
        ) from error
    return None if sink is None else sink.getvalue()


# -- Parquet ------------------------------------------------------------------------------------


def parquet_footer_length(tail: bytes) -> int:
    """Bytes the footer needs at the end of the file (metadata, its length and the magic)."""
    if len(tail) < 8 or tail[-4:] != PARQUET_MAGIC:
        raise CheckFailedError(
            "readability", "a Parquet file must end with the PAR1 magic; this one is truncated or broken"
        )
    (metadata_length,) = struct.unpack("<I", tail[-8:-4])
    needed = int(metadata_length) + 8
    if needed > MAX_PARQUET_FOOTER_BYTES:
        raise CheckFailedError(
            "readability", f"the Parquet footer claims {metadata_length} bytes; that is not a review file"
        )
    return needed


class _TailOfFile(SeekableReader):
    """The last bytes of an object, presented as the whole object (zeros before them), for Parquet's footer."""

    def __init__(self, tail: bytes, size: int) -> None:
        super().__init__(size, "the Parquet footer")
        self._tail = tail
        self._tail_start = size - len(tail)

    def readinto(self, buffer: Any) -> int:
        # Arrow reads a fixed-size tail speculatively; bytes before the footer are not used, so zeros do.
        wanted = max(0, min(len(buffer), self._size - self._position))
        unread = max(0, min(wanted, self._tail_start - self._position))
        buffer[:unread] = bytes(unread)
        start = self._position + unread - self._tail_start
        chunk = self._tail[start : start + wanted - unread]
        buffer[unread : unread + len(chunk)] = chunk
        self._position += unread + len(chunk)
        return unread + len(chunk)


def parquet_schema(tail: bytes, size: int) -> pa.Schema:
    """The schema in a Parquet footer, from the file's last bytes (at least `parquet_footer_length`)."""
    try:
        return pq.read_schema(_TailOfFile(tail, size))
    except (*ARROW_CONTENT_ERRORS, OSError, ValueError) as error:
        raise CheckFailedError("readability", f"the Parquet footer cannot be read: {error}") from error


# -- recognising the format of text -------------------------------------------------------------


def read_head(raw_head: bytes, *, whole: bool, sample_bytes: int) -> Head:
    """The content sample: up to `sample_bytes` of content from the first bytes of the object.

    `whole` says `raw_head` is the entire object.
    """
    if raw_head[:2] == GZIP_MAGIC:
        content, complete = _inflate_head(raw_head, limit=sample_bytes, whole=whole)
        return Head(content=content, complete=complete, compression="gzip")
    return Head(content=raw_head[:sample_bytes], complete=whole and len(raw_head) <= sample_bytes, compression="none")


def inspect_head(
    head: Head,
    *,
    known_columns: frozenset[str] = frozenset(),
    fallback_encoding: str | None = None,
    dialect: Dialect | None = None,
) -> ContentFormat | None:
    """Checks 1 and 2 on the head sample: the format, and that its bytes are readable text.

    Returns None when there is nothing to recognise (no bytes, or only whitespace): that is for the
    size and columns checks to report. `known_columns` are column names of configured layouts; a
    first row made of them is a header. `dialect`, when given, is how delimited text is read (a part
    of a chunked file, in the dialect found in the file it was cut from).
    """
    content = head.content
    if content[:4] == PARQUET_MAGIC:
        if head.complete and content[-4:] != PARQUET_MAGIC:
            raise CheckFailedError(
                "readability", "the file starts like Parquet (PAR1) but does not end like it: truncated?"
            )
        return ContentFormat(format="parquet", compression=head.compression)
    encoding, text = decode_head(content, detect_encoding(content, fallback=fallback_encoding), complete=head.complete)
    if not text.strip():
        if content.strip() and not head.complete:
            raise CheckFailedError(
                "readability",
                f"no complete line in the first {len(content)} bytes: a record longer than the sample "
                "(sample_bytes) cannot be checked, so it is refused",
                sample_bytes=len(content),
            )
        return None
    first_line = text.lstrip()[:1]
    if first_line in ("{", "["):
        return _inspect_json(text, head, encoding)
    shape = table_shape(text, known_columns=known_columns, dialect=dialect)
    return ContentFormat(
        format="tsv" if shape.dialect.delimiter == "\t" else "csv",
        compression=head.compression,
        encoding=encoding,
        shape=shape,
        columns=shape.columns,
        column_count=shape.width,
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def keys_and_types(records: list[Any]) -> tuple[tuple[str, ...], dict[str, frozenset[str]]]:
    """The keys of the JSON objects among `records`, in order of first appearance, and their JSON types."""
    columns: dict[str, set[str]] = {}
    for record in records:
        if isinstance(record, dict):
            for name, value in record.items():
                columns.setdefault(name, set()).add(_json_type(value))
    return tuple(columns), {name: frozenset(types) for name, types in columns.items()}


def _parsed_lines(text: str) -> tuple[list[str], list[Any]]:
    # Split at line ends only: JSON strings may hold U+2028 and the other breaks splitlines() knows.
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()][:MAX_SAMPLE_RECORDS]
    parsed: list[Any] = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            parsed.append(None)
    return lines, parsed


def _inspect_json(text: str, head: Head, encoding: TextEncoding) -> ContentFormat:
    lines, parsed = _parsed_lines(text)
    objects = sum(isinstance(record, dict) for record in parsed)
    arrays = sum(isinstance(record, list) for record in parsed)
    if len(parsed) == 1 and isinstance(parsed[0], dict) and records_in_document(parsed[0]) is not None:
        # One object on one line whose one array holds the records ({"reviews": [{…}, {…}]}): a document.
        return ContentFormat(format="json", compression=head.compression, encoding=encoding)
    if objects >= len(lines) / 2:
        columns, types = keys_and_types(parsed)
        return ContentFormat(
            format="jsonl",
            compression=head.compression,
            encoding=encoding,
            columns=columns,
            column_count=len(columns),
            json_types=types,
        )
    if arrays >= len(lines) / 2 and len(lines) > 1:
        names = parsed[0]
        if isinstance(names, list) and names and looks_like_column_names(names):
            return ContentFormat(
                format="jsonl",
                compression=head.compression,
                encoding=encoding,
                columns=tuple(names),
                column_count=len(names),
                json_arrays=True,
            )
        raise CheckFailedError(
            "format",
            "JSON lines whose lines are arrays of values, with no first line naming the columns: write one "
            'JSON object per line ({"text": …, "rating": …}), or make the first line the column names '
            '(["text", "rating"])',
        )
    # Not one record per line: a JSON document (pretty-printed or on one line), read whole.
    if text.lstrip().startswith("{") and head.complete:
        try:
            document = parse_json_document(text)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict) and records_in_document(document) is None:
            raise CheckFailedError(
                "format",
                "a single JSON object, not review records: expected JSON lines (one object per line), or a "
                "JSON array of review objects, or an object with one key holding that array",
            )
    return ContentFormat(format="json", compression=head.compression, encoding=encoding)


def parse_json_document(text: str | bytes) -> Any:
    """A JSON document; several top-level values one after the other (pretty-printed objects) become a list."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if not error.msg.startswith("Extra data"):
            raise
    source = text.decode("utf-8") if isinstance(text, bytes) else text
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while True:
        while position < len(source) and source[position].isspace():
            position += 1
        if position >= len(source):
            return values
        value, position = decoder.raw_decode(source, position)
        values.append(value)


def dialect_of(detected: DetectedFormat) -> Dialect | None:
    """The dialect a detected format says delimited text is in; None for other formats."""
    if detected.format not in ("csv", "tsv") or detected.delimiter is None:
        return None
    quote = detected.quote_char if detected.quoting else None
    return Dialect(detected.delimiter, quote, detected.escape_char, detected.skip_initial_space)


def records_in_document(document: Any) -> list[Any] | None:
    """The records of a JSON document: the array itself, or the one array of objects an object holds."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        arrays = [value for value in document.values() if isinstance(value, list) and value]
        if len(arrays) == 1 and sum(isinstance(item, dict) for item in arrays[0]) >= len(arrays[0]) / 2:
            return arrays[0]
    return None
