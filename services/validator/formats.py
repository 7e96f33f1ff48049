"""Checks 1 and 2 — format and readability — recognised from content, never from the file name.

Everything here looks at a bounded head sample of the content (decompressed when the file is
gzip-compressed), except the few whole-content helpers the validator calls once the size check has
passed: `inflate`, `check_utf8` and `parquet_schema`.

A file is one of:

- Parquet: `PAR1` at the start (and at the end, checked when the footer is read);
- JSON lines: the first non-blank line starts with `{` and most sample lines are JSON objects;
- delimited text: the delimiter among `,` `\\t` `;` `|` that splits the sample into a consistent
  number of fields, with or without double-quote quoting (the AWS customer-reviews TSV has bare `"`
  inside fields and is only consistent with quoting off), with or without a header row.

Each may be gzip-compressed (one or more gzip members). Text must be UTF-8, with or without a BOM.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from shared.events import DetectedFormat
from shared.rejection import Rejection
from shared.storage import SeekableReader

ContainerFormat = Literal["csv", "tsv", "jsonl", "parquet"]
Compression = Literal["none", "gzip"]
Encoding = Literal["utf-8", "utf-8-sig"]

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = codecs.BOM_UTF8
CANDIDATE_DELIMITERS = (",", "\t", ";", "|")

# A delimiter is accepted when at least this share of the sample records have the same field count:
# real files have the odd broken row (dropped later as `unparseable_row`), but a wrong delimiter
# splits prose at random and rarely reaches it.
MIN_CONSISTENT_SHARE = 0.9
# Enough records to judge a delimiter and a header; more only costs time.
MAX_SAMPLE_RECORDS = 2000
# Bytes looked at for control characters: enough to tell text from binary.
BINARY_PROBE_BYTES = 64 * 1024
# Text has no NUL and almost no other C0 control bytes; binary data is full of them.
MAX_CONTROL_BYTE_SHARE = 0.01
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20)])
# Parquet footers of review files are a few KiB; one this large is not one we want to parse.
MAX_PARQUET_FOOTER_BYTES = 16 * 1024 * 1024
# Bounded steps for inflating: input fed 64 KiB at a time, output taken 1 MiB at a time, so neither
# a gzip bomb nor a large file ever needs more than that beyond what the caller keeps.
_INFLATE_INPUT_STEP = 64 * 1024
_INFLATE_OUTPUT_STEP = 1024 * 1024

# What Arrow raises for content it cannot parse; its memory and I/O errors are not the file's fault.
ARROW_CONTENT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, pa.ArrowKeyError)

_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")
# Column names are short identifiers ("review_body", "reviews.text", "Score"), never sentences.
_COLUMN_NAME = re.compile(r"[^\W\d][\w .\-/()#:]{0,63}")
# A field that a standard CSV writer quoted: opening and closing quote, inner quotes doubled.
_PROPERLY_QUOTED = re.compile(r'"([^"]|"")*"', re.DOTALL)


class CheckFailedError(Exception):
    """A file fails one of the validator's checks; carries what the rejection report says."""

    def __init__(self, check: str, reason: str, **details: Any) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason
        self.details = details

    @property
    def rejection(self) -> Rejection:
        return Rejection(check=self.check, reason=self.reason, details=self.details)


@dataclass(frozen=True)
class ContentFormat:
    """What checks 1 and 2 found in a file's content; check 4 and the reader work from it."""

    format: ContainerFormat
    compression: Compression = "none"
    encoding: Encoding = "utf-8"
    delimiter: str | None = None
    quoting: bool = True
    has_header: bool = True
    columns: tuple[str, ...] = ()
    """Header names, JSON keys seen in the sample, or Parquet columns; empty for a headerless file."""
    column_count: int = 0
    json_types: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """For JSON lines: the JSON types each key took in the sample ("string", "number", "null", …)."""
    parquet_schema: pa.Schema | None = None

    @property
    def is_text(self) -> bool:
        return self.format != "parquet"

    def with_parquet_schema(self, schema: pa.Schema) -> ContentFormat:
        return replace(self, parquet_schema=schema, columns=tuple(schema.names), column_count=len(schema.names))

    def detected(self, layout: str) -> DetectedFormat:
        return DetectedFormat(
            format=self.format,
            compression=self.compression,
            encoding=self.encoding,
            delimiter=self.delimiter,
            quoting=self.quoting,
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


def _inflated_pieces(compressed: bytes, *, whole: bool) -> Iterator[bytes]:
    """Decompress gzip data (one or more members) in bounded pieces.

    `whole` says `compressed` is the entire object, so a stream that stops before its end marker is
    truncated; otherwise it is a head read and simply ends.
    """
    view = memoryview(compressed)
    start = 0
    while start < len(view):
        if view[start : start + 2] != GZIP_MAGIC:
            if not any(view[start:]):
                return  # NUL padding after the last member, as some writers leave it
            raise CheckFailedError(
                "readability",
                f"bytes after the end of the gzip stream, at compressed offset {start}, are not another gzip member",
                compressed_offset=start,
            )
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        position = start
        while not inflater.eof:
            if position >= len(view):
                if whole:
                    raise CheckFailedError(
                        "readability",
                        "the gzip stream is truncated: the file ends before the end of its compressed data",
                        compressed_bytes=len(view),
                    )
                return
            pending: bytes | memoryview = view[position : position + _INFLATE_INPUT_STEP]
            position += len(pending)
            while True:
                try:
                    piece = inflater.decompress(pending, _INFLATE_OUTPUT_STEP)
                except zlib.error as error:
                    raise CheckFailedError(
                        "readability",
                        f"the gzip stream is corrupt near compressed offset {position}: {error}",
                        compressed_offset=position,
                    ) from error
                if piece:
                    yield piece
                if inflater.eof:
                    break
                pending = inflater.unconsumed_tail
                # With no input left, a full output piece may still leave output inside zlib: drain it.
                if not pending and len(piece) < _INFLATE_OUTPUT_STEP:
                    break
        # The next member starts where this one's data ended, inside the last input step.
        start = position - len(inflater.unused_data)


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
    for piece in _inflated_pieces(compressed, whole=True):
        total += len(piece)
        if total > give_up_after:
            raise CheckFailedError(
                "size",
                f"the gzip content is larger than the {give_up_after}-byte limit on decompressed size "
                f"(max_decompressed_bytes); {len(compressed)} compressed bytes inflated past it",
                compressed_bytes=len(compressed),
                max_decompressed_bytes=give_up_after,
            )
        if sink is not None:
            if total <= keep_at_most:
                sink.write(piece)
            else:
                sink = None  # too big to validate whole: keep counting, keep nothing
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


# -- readability of text ------------------------------------------------------------------------


def _line_of(content: bytes | memoryview, offset: int) -> int:
    return bytes(content[:offset]).count(b"\n") + 1


def _refuse_binary(content: bytes) -> None:
    probe = content[:BINARY_PROBE_BYTES]
    control = len(probe) - len(probe.translate(None, _CONTROL_BYTES))
    if b"\x00" in probe or control > MAX_CONTROL_BYTE_SHARE * len(probe):
        offset = next(index for index, byte in enumerate(probe) if byte in _CONTROL_BYTES)
        raise CheckFailedError(
            "readability",
            f"binary content, not text: {control} control bytes in the first {len(probe)} bytes "
            f"(the first, 0x{probe[offset]:02x}, at byte offset {offset})",
            offset=offset,
            control_bytes=control,
        )


def _undecodable(content: bytes | memoryview, error: UnicodeDecodeError, base: int) -> CheckFailedError:
    offset = base + error.start
    bad = bytes(content[offset : offset + min(4, error.end - error.start)])
    line = _line_of(content, offset)
    return CheckFailedError(
        "readability",
        f"not UTF-8: undecodable byte(s) 0x{bad.hex()} at byte offset {offset} (line {line}); "
        "convert the file to UTF-8 (a mix of UTF-8 and cp1252/latin-1 is a common cause)",
        offset=offset,
        line=line,
    )


def content_as_text(content: pa.Buffer) -> pa.Array:
    """The content as a one-value Arrow string array, without a copy (and without checking it)."""
    offsets = pa.py_buffer(struct.pack("<qq", 0, content.size))
    return pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, content])


def check_utf8(content: pa.Buffer) -> None:
    """Refuse content that is not entirely UTF-8, naming the first bad byte's offset and line.

    Arrow validates the whole buffer (vectorised, no copy); only when it fails is the content decoded
    in Python to find where.
    """
    try:
        content_as_text(content).validate(full=True)
    except pa.ArrowInvalid:
        raw = content.to_pybytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _undecodable(raw, error, 0) from None
        raise


# -- recognising the format of text -------------------------------------------------------------


def read_head(raw_head: bytes, *, whole: bool, sample_bytes: int) -> Head:
    """The content sample: up to `sample_bytes` of content from the first bytes of the object.

    `whole` says `raw_head` is the entire object.
    """
    if raw_head[:2] == GZIP_MAGIC:
        content, complete = _inflate_head(raw_head, limit=sample_bytes, whole=whole)
        return Head(content=content, complete=complete, compression="gzip")
    return Head(content=raw_head[:sample_bytes], complete=whole and len(raw_head) <= sample_bytes, compression="none")


def inspect_head(head: Head, *, known_columns: frozenset[str] = frozenset()) -> ContentFormat | None:
    """Checks 1 and 2 on the head sample: the format, and that its bytes are readable text.

    Returns None when there is nothing to recognise (no bytes, or only whitespace): that is for the
    size and columns checks to report. `known_columns` are column names of known layouts; a first
    row made of them is a header.
    """
    content = head.content
    if content[:4] == PARQUET_MAGIC:
        if head.complete and content[-4:] != PARQUET_MAGIC:
            raise CheckFailedError(
                "readability", "the file starts like Parquet (PAR1) but does not end like it: truncated?"
            )
        return ContentFormat(format="parquet", compression=head.compression)
    if not content.strip():
        return None
    _refuse_binary(content)
    encoding: Encoding = "utf-8-sig" if content.startswith(UTF8_BOM) else "utf-8"
    base = len(UTF8_BOM) if encoding == "utf-8-sig" else 0
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(content[base:], final=head.complete)
    except UnicodeDecodeError as error:
        raise _undecodable(content, error, base) from None
    if not head.complete:
        text = text[: text.rfind("\n") + 1]  # the sample was cut: whole lines only
    first_line = next((line.strip() for line in text.split("\n") if line.strip()), None)
    if first_line is None:
        raise CheckFailedError(
            "readability",
            f"no complete line in the first {len(content)} bytes: a record longer than the sample "
            "(sample_bytes) cannot be checked, so it is refused",
            sample_bytes=len(content),
        )
    if first_line.startswith("["):
        raise CheckFailedError(
            "format",
            "the content starts with '[': a JSON document (array), not JSON lines; write one JSON object per line",
        )
    if first_line.startswith("{"):
        return _inspect_json_lines(text, head.compression, encoding)
    return _inspect_delimited(text, head.compression, encoding, head.complete, known_columns)


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


def _inspect_json_lines(text: str, compression: Compression, encoding: Encoding) -> ContentFormat:
    lines = [line for line in text.split("\n") if line.strip()][:MAX_SAMPLE_RECORDS]
    columns: dict[str, set[str]] = {}
    objects = 0
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            continue
        if isinstance(record, dict):
            objects += 1
            for name, value in record.items():
                columns.setdefault(name, set()).add(_json_type(value))
    if objects < len(lines) / 2:
        raise CheckFailedError(
            "format",
            f"the content starts with '{{' but only {objects} of its first {len(lines)} lines are JSON objects: "
            "pretty-printed JSON or a single JSON document, not JSON lines (one object per line)",
        )
    return ContentFormat(
        format="jsonl",
        compression=compression,
        encoding=encoding,
        columns=tuple(columns),
        column_count=len(columns),
        json_types={name: frozenset(types) for name, types in columns.items()},
    )


@dataclass(frozen=True)
class _DelimiterTrial:
    """The sample split by one delimiter, with quoting on or off."""

    delimiter: str
    quoting: bool
    records: list[list[str]]
    line_numbers: list[int]
    broken: bool

    @property
    def field_counts(self) -> list[int]:
        return [len(record) for record in self.records]

    @property
    def modal_fields(self) -> int:
        counts = Counter(self.field_counts[1:] or self.field_counts)
        return counts.most_common(1)[0][0] if counts else 0

    @property
    def share(self) -> float:
        """Share of data records (the first record excluded: it may be a header) with the modal count."""
        data = self.field_counts[1:] or self.field_counts
        return data.count(self.modal_fields) / len(data) if data else 0.0

    @property
    def consistent(self) -> bool:
        return not self.broken and self.modal_fields >= 2 and self.share >= MIN_CONSISTENT_SHARE

    @property
    def bare_quotes(self) -> bool:
        """A `"` inside a field that a standard writer would have quoted: the file is written without quoting."""
        return any(
            '"' in value and not _PROPERLY_QUOTED.fullmatch(value) for record in self.records for value in record
        )

    def inconsistent_lines(self) -> list[int]:
        modal = self.modal_fields
        return [line for line, record in zip(self.line_numbers, self.records, strict=True) if len(record) != modal][:10]


def _split(text: str, delimiter: str, *, quoting: bool, complete: bool) -> _DelimiterTrial:
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
        strict=False,
    )
    records: list[list[str]] = []
    line_numbers: list[int] = []
    broken = False
    try:
        for record in reader:
            if record:
                records.append(record)
                line_numbers.append(reader.line_num)
            if len(records) > MAX_SAMPLE_RECORDS:
                break
    except csv.Error:
        broken = True  # e.g. a quoted field running past the field size limit
    if not complete and len(records) > 1:
        # The sample was cut: its last record may be a piece of a longer one.
        records, line_numbers = records[:-1], line_numbers[:-1]
    return _DelimiterTrial(delimiter, quoting, records, line_numbers, broken)


def _best_split(text: str, complete: bool) -> _DelimiterTrial | None:
    chosen: list[_DelimiterTrial] = []
    for delimiter in CANDIDATE_DELIMITERS:
        quoted = _split(text, delimiter, quoting=True, complete=complete)
        bare = _split(text, delimiter, quoting=False, complete=complete)
        if quoted.consistent and bare.consistent:
            # Both read the sample alike; bare quotes mean quoting would swallow fields further on.
            chosen.append(bare if bare.bare_quotes else quoted)
        elif quoted.consistent or bare.consistent:
            chosen.append(quoted if quoted.consistent else bare)
    if not chosen:
        return None
    return max(chosen, key=lambda trial: (trial.share, trial.modal_fields))


def _describe_delimiter(delimiter: str) -> str:
    return "TAB" if delimiter == "\t" else repr(delimiter)


def _undetermined_delimiter(text: str, complete: bool) -> CheckFailedError:
    trials = [_split(text, delimiter, quoting=True, complete=complete) for delimiter in CANDIDATE_DELIMITERS]
    best = max(trials, key=lambda trial: (trial.modal_fields >= 2, trial.share))
    if best.modal_fields < 2:
        reason = (
            "the delimiter cannot be determined: none of , TAB ; | splits the lines into fields "
            "(a single column, or not delimited text)"
        )
    else:
        reason = (
            f"the delimiter cannot be determined: none of , TAB ; | gives the lines a consistent number of fields "
            f"(closest: {_describe_delimiter(best.delimiter)} gives {best.modal_fields} fields on "
            f"{best.share:.0%} of {len(best.records)} sample records; lines {best.inconsistent_lines()} differ)"
        )
    return CheckFailedError(
        "format",
        reason,
        closest_delimiter=best.delimiter,
        first_inconsistent_lines=best.inconsistent_lines(),
        sample_records=len(best.records),
    )


def _is_number(value: str) -> bool:
    return _NUMBER.fullmatch(value) is not None


def _looks_like_header(records: list[list[str]], known_columns: frozenset[str]) -> bool:
    first, rest = records[0], records[1:]
    names = [value.strip() for value in first]
    width = len(first)
    rows = [record for record in rest if len(record) == width]
    numeric_columns = [
        column
        for column in range(width)
        if rows and sum(_is_number(record[column]) for record in rows) >= MIN_CONSISTENT_SHARE * len(rows)
    ]
    if any(_is_number(first[column]) for column in numeric_columns):
        return False  # a number where the data has numbers: the first row is data
    if numeric_columns:
        return True  # a name where the data has numbers
    if any(name in known_columns for name in names):
        return True
    return len(set(names)) == width and all(_COLUMN_NAME.fullmatch(name) for name in names)


def _inspect_delimited(
    text: str, compression: Compression, encoding: Encoding, complete: bool, known_columns: frozenset[str]
) -> ContentFormat:
    trial = _best_split(text, complete)
    if trial is None:
        raise _undetermined_delimiter(text, complete)
    if len(trial.records[0]) != trial.modal_fields:
        raise CheckFailedError(
            "format",
            f"the first line has {len(trial.records[0])} fields but the lines after it have {trial.modal_fields} "
            f"(delimiter {_describe_delimiter(trial.delimiter)})",
            first_line_fields=len(trial.records[0]),
            fields=trial.modal_fields,
        )
    has_header = _looks_like_header(trial.records, known_columns)
    return ContentFormat(
        format="tsv" if trial.delimiter == "\t" else "csv",
        compression=compression,
        encoding=encoding,
        delimiter=trial.delimiter,
        quoting=trial.quoting,
        has_header=has_header,
        columns=tuple(name.strip() for name in trial.records[0]) if has_header else (),
        column_count=trial.modal_fields,
    )
