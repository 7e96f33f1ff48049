"""Reading a whole (size-checked) file into the canonical schema, dropping and counting bad rows.

Parsing is Arrow's (pyarrow.csv, pyarrow.json, pyarrow.parquet) and every row-level decision is a
vectorised compute over whole columns. The one per-row Python loop is the fallback for JSON lines
that Arrow refuses as a whole (a line that is not an object, or a column whose JSON type changes):
it finds the bad lines, which Arrow cannot skip.

Rows are numbered `first_row_number` + their 0-based position among the file's data rows (blank
lines are not rows; a CSV header is not a row), so the parts of a chunked file keep the numbering
of the file they were cut from, and dropped rows keep their numbers.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from shared import canonical
from shared.events import Dataset

from .formats import ARROW_CONTENT_ERRORS, CheckFailedError, ContentFormat
from .layouts import MappedField, ResolvedLayout

DropReason = Literal["unparseable_row", "empty_text", "missing_rating", "rating_out_of_range"]
"""Why a row is dropped, in precedence order: a row is counted under its first reason only."""
FIRST_ROWS_REPORTED = 10

_NUMBER_PATTERN = r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"
_STRADDLING = "straddl"  # Arrow's message for a record longer than its read block


@dataclass(frozen=True)
class CanonicalRows:
    """A file's rows in the canonical schema, and an account of the rows that were dropped."""

    table: pa.Table
    rows_in: int
    rows_dropped: dict[str, int]
    """Rows dropped, by reason (only reasons that dropped rows)."""
    first_dropped_rows: dict[str, list[int]]
    """Per reason, the row numbers (as in `row_number`) of the first rows dropped for it."""

    @property
    def rows_out(self) -> int:
        return int(self.table.num_rows)


@dataclass(frozen=True)
class _ParsedRows:
    """Rows as parsed from the source, before any is judged."""

    rows_in: int
    positions: pa.Array
    """0-based data-row position of each parsed row."""
    columns: dict[MappedField, pa.Array | pa.ChunkedArray]
    """Source values by canonical name, aligned with `positions`."""
    unparseable: pa.Array
    """Positions of the rows that could not be parsed at all."""


def _arange(count: int) -> pa.Array:
    ones = pa.nulls(count, pa.int64()).fill_null(1)
    return pc.subtract(pc.cumulative_sum(ones), 1) if count else pa.array([], pa.int64())


def _every_row_parsed(table: pa.Table, resolved: ResolvedLayout) -> _ParsedRows:
    """A table read whole, with no row left unparsed (JSON lines read in one go, Parquet)."""
    rows_in = int(table.num_rows)
    return _ParsedRows(
        rows_in=rows_in,
        positions=_arange(rows_in),
        columns={name: table.column(column) for name, column in resolved.source_columns.items()},
        unparseable=pa.array([], pa.int64()),
    )


def _positions_without(rows_in: int, unparseable: pa.Array) -> pa.Array:
    every = _arange(rows_in)
    if len(unparseable) == 0:
        return every
    return every.filter(pc.invert(pc.is_in(every, value_set=unparseable)))


def _arrow_failure(error: Exception, block_size: int) -> CheckFailedError:
    if _STRADDLING in str(error):
        return CheckFailedError(
            "readability",
            f"a record is longer than the {block_size}-byte limit on one record (max_record_bytes)",
            max_record_bytes=block_size,
        )
    return CheckFailedError("readability", f"the file cannot be parsed: {error}")


# -- delimited text -----------------------------------------------------------------------------


def _unique_names(names: tuple[str, ...]) -> list[str]:
    """Arrow needs distinct column names; repeated names the layout does not use get a suffix."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


def _count_quotes(content: pa.Buffer) -> int:
    view = memoryview(content)
    step = 16 * 1024 * 1024  # bounded copies: a slice of a buffer must become bytes to be counted
    return sum(bytes(view[start : start + step]).count(b'"') for start in range(0, len(view), step))


def _refuse_unclosed_quote(content: pa.Buffer, content_format: ContentFormat) -> None:
    """An opening quote that is never closed would swallow every row after it into one field.

    Arrow reads such a file without complaint, so the quotes are counted first: in well-formed CSV
    every quote is paired. Only an odd count costs a closer look, with the csv module in strict mode.
    """
    if _count_quotes(content) % 2 == 0:
        return
    # Streamed through a text wrapper, so the check holds no decoded copy of the content.
    reader = csv.reader(
        io.TextIOWrapper(pa.BufferReader(content), encoding="utf-8", newline=""),
        delimiter=content_format.delimiter or ",",
        strict=True,
    )
    last_good_line = 0
    try:
        for _ in reader:
            last_good_line = reader.line_num
    except csv.Error as error:
        raise CheckFailedError(
            "readability",
            f"broken quoting after line {last_good_line}: {error} (a quote opened and never closed "
            "would swallow the rows after it)",
            line=last_good_line + 1,
        ) from error


def _read_delimited(
    content: pa.Buffer, content_format: ContentFormat, resolved: ResolvedLayout, block_size: int
) -> tuple[pa.Table, list[int]]:
    """The kept columns as strings, and the 0-based data-row positions of rows with the wrong field count."""
    if content_format.quoting:
        _refuse_unclosed_quote(content, content_format)
    header_rows = 1 if content_format.has_header else 0
    names = _unique_names(resolved.column_names)
    kept = list(dict.fromkeys(resolved.source_columns.values()))
    record_numbers: list[int | None] = []

    def skip_invalid(row: Any) -> str:
        # Arrow numbers records from 1, header included, blank lines not; None when reading in parallel.
        record_numbers.append(row.number)
        return "skip"

    def read(use_threads: bool) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(content),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=header_rows, block_size=block_size, use_threads=use_threads
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=content_format.delimiter,
                quote_char='"' if content_format.quoting else False,
                double_quote=True,
                escape_char=False,
                newlines_in_values=content_format.quoting,
                ignore_empty_lines=True,
                invalid_row_handler=skip_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=kept,
                column_types=dict.fromkeys(kept, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # the whole content was checked once already
            ),
        )

    try:
        table = read(use_threads=True)
        if any(number is None for number in record_numbers):
            # Only a serial read knows where the bad rows are; rare enough to pay for it.
            record_numbers.clear()
            table = read(use_threads=False)
    except ARROW_CONTENT_ERRORS as error:
        raise _arrow_failure(error, block_size) from error
    unparseable = sorted(int(number) - 1 - header_rows for number in record_numbers if number is not None)
    return table, unparseable


def _parse_delimited(
    content: pa.Buffer, content_format: ContentFormat, resolved: ResolvedLayout, block_size: int
) -> _ParsedRows:
    table, unparseable = _read_delimited(content, content_format, resolved, block_size)
    rows_in = int(table.num_rows) + len(unparseable)
    skipped = pa.array(unparseable, pa.int64())
    return _ParsedRows(
        rows_in=rows_in,
        positions=_positions_without(rows_in, skipped),
        columns={name: table.column(column) for name, column in resolved.source_columns.items()},
        unparseable=skipped,
    )


# -- JSON lines ---------------------------------------------------------------------------------


def _arrow_json_type(json_types: frozenset[str]) -> pa.DataType | None:
    """The Arrow type for a key whose sample values had these JSON types; None when Arrow cannot take it."""
    types = json_types - {"null"}
    if types <= {"string"}:
        return pa.string()
    if types == {"number"}:
        return pa.float64()
    return None


def _parse_json_lines_with_arrow(
    content: pa.Buffer, content_format: ContentFormat, resolved: ResolvedLayout, block_size: int
) -> _ParsedRows | None:
    fields = []
    for column in dict.fromkeys(resolved.source_columns.values()):
        data_type = _arrow_json_type(content_format.json_types.get(column, frozenset()))
        if data_type is None:
            return None
        fields.append(pa.field(column, data_type))
    try:
        table = pajson.read_json(
            pa.BufferReader(content),
            read_options=pajson.ReadOptions(block_size=block_size, use_threads=True),
            parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore", newlines_in_values=False
            ),
        )
    except ARROW_CONTENT_ERRORS as error:
        if _STRADDLING in str(error):
            raise _arrow_failure(error, block_size) from error
        return None  # a bad line or a changing type: find it line by line
    return _every_row_parsed(table, resolved)


def _json_scalar_as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    raise TypeError(f"a {type(value).__name__} where a text or a number belongs")


def _parse_json_lines_line_by_line(content: pa.Buffer, resolved: ResolvedLayout) -> _ParsedRows:
    wanted = resolved.source_columns
    values: dict[MappedField, list[str | None]] = {name: [] for name in wanted}
    positions: list[int] = []
    unparseable: list[int] = []
    position = -1
    for line in content.to_pybytes().split(b"\n"):
        if not line.strip():
            continue
        position += 1
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError("not a JSON object")
            row = {name: _json_scalar_as_text(record.get(column)) for name, column in wanted.items()}
        except (ValueError, TypeError, RecursionError):
            unparseable.append(position)
            continue
        positions.append(position)
        for name, value in row.items():
            values[name].append(value)
    return _ParsedRows(
        rows_in=position + 1,
        positions=pa.array(positions, pa.int64()),
        columns={name: pa.array(column_values, pa.string()) for name, column_values in values.items()},
        unparseable=pa.array(unparseable, pa.int64()),
    )


def _parse_json_lines(
    content: pa.Buffer, content_format: ContentFormat, resolved: ResolvedLayout, block_size: int
) -> _ParsedRows:
    parsed = _parse_json_lines_with_arrow(content, content_format, resolved, block_size)
    return parsed if parsed is not None else _parse_json_lines_line_by_line(content, resolved)


# -- Parquet ------------------------------------------------------------------------------------


def _parse_parquet(content: pa.Buffer, resolved: ResolvedLayout) -> _ParsedRows:
    columns = list(dict.fromkeys(resolved.source_columns.values()))
    try:
        table = pq.read_table(pa.BufferReader(content), columns=columns)
    except (*ARROW_CONTENT_ERRORS, OSError) as error:
        raise CheckFailedError("readability", f"the Parquet file cannot be read: {error}") from error
    return _every_row_parsed(table, resolved)


# -- from source values to canonical rows -------------------------------------------------------


def _as_text(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values.cast(pa.string())


def _blank_as_null(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    text = _as_text(values)
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(text), ""), pa.scalar(None, pa.string()), text)


def _whole_number_text(numbers: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Whole numbers as text, 5.0 as "5"; null for other numbers and for numbers too large to be a label."""
    whole = pc.and_(pc.equal(pc.floor(numbers), numbers), pc.less(pc.abs(numbers), 1e15))
    return pc.if_else(whole, numbers, pa.scalar(None, pa.float64())).cast(pa.int64()).cast(pa.string())


def _stars(
    values: pa.Array | pa.ChunkedArray, rating_map: dict[str, int] | None
) -> tuple[pa.Array | pa.ChunkedArray, pa.Array | pa.ChunkedArray]:
    """(star rating 1-5 or null, whether the source had no rating at all), from source values."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = values.cast(pa.float64())
        missing = pc.is_null(values)
        labels = _whole_number_text(numbers)
    else:
        text = pc.utf8_trim_whitespace(values.cast(pa.string()))
        missing = pc.fill_null(pc.equal(text, ""), True)
        numeric = pc.fill_null(pc.match_substring_regex(text, _NUMBER_PATTERN), False)
        numbers = pc.if_else(numeric, text, pa.scalar(None, pa.string())).cast(pa.float64())
        # A whole number is matched in one spelling ("1.0" as "1"); anything else as written.
        labels = pc.coalesce(_whole_number_text(numbers), text)
    if rating_map is not None:
        found = pc.index_in(labels, value_set=pa.array(list(rating_map), pa.string()))
        stars = pa.array(list(rating_map.values()), pa.int8()).take(found)
    else:
        in_range = pc.and_(pc.is_in(labels, value_set=pa.array(["1", "2", "3", "4", "5"])), pc.invert(missing))
        stars = pc.if_else(in_range, labels, pa.scalar(None, pa.string())).cast(pa.int8())
    return stars, missing


def _first_numbers(positions: pa.Array, mask: Any, first_row_number: int) -> list[int]:
    chosen = positions.filter(mask).slice(0, FIRST_ROWS_REPORTED)
    return [first_row_number + int(position) for position in chosen.to_pylist()]


def _to_canonical(
    parsed: _ParsedRows, resolved: ResolvedLayout, dataset: Dataset, first_row_number: int
) -> CanonicalRows:
    count = len(parsed.positions)
    columns = parsed.columns

    def optional_text(name: MappedField) -> pa.Array | pa.ChunkedArray:
        return _blank_as_null(columns[name]) if name in columns else pa.nulls(count, pa.string())

    text = _as_text(columns["text"])
    empty_text = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True)
    if "rating" in columns:
        stars, missing = _stars(columns["rating"], resolved.layout.rating_map)
    else:
        stars, missing = pa.nulls(count, pa.int8()), pa.nulls(count, pa.bool_()).fill_null(True)
    masks: dict[DropReason, Any] = {"empty_text": empty_text}
    if dataset == "train":
        masks["missing_rating"] = pc.and_not(missing, empty_text)
        masks["rating_out_of_range"] = pc.and_not(pc.and_not(pc.is_null(stars), missing), empty_text)
    drop = empty_text
    for mask in masks.values():
        drop = pc.or_(drop, mask)

    rows_dropped: dict[str, int] = {}
    first_dropped_rows: dict[str, list[int]] = {}
    if len(parsed.unparseable):
        rows_dropped["unparseable_row"] = len(parsed.unparseable)
        first_dropped_rows["unparseable_row"] = [
            first_row_number + int(position)
            for position in parsed.unparseable.slice(0, FIRST_ROWS_REPORTED).to_pylist()
        ]
    for reason, mask in masks.items():
        dropped = int(pc.sum(mask).as_py() or 0)
        if dropped:
            rows_dropped[reason] = dropped
            first_dropped_rows[reason] = _first_numbers(parsed.positions, mask, first_row_number)

    table = pa.table(
        {
            canonical.ROW_NUMBER: pc.add(parsed.positions, first_row_number),
            canonical.REVIEW_ID: optional_text("review_id"),
            canonical.TITLE: optional_text("title"),
            canonical.TEXT: text,
            canonical.RATING: stars,
            canonical.LANGUAGE: optional_text("language"),
        }
    )
    if any(rows_dropped.get(reason) for reason in masks):
        table = table.filter(pc.invert(drop))  # copies every kept string: only when something is dropped
    table = table.cast(canonical.canonical_arrow_schema())
    rows = CanonicalRows(
        table=table, rows_in=parsed.rows_in, rows_dropped=rows_dropped, first_dropped_rows=first_dropped_rows
    )
    assert rows.rows_in == rows.rows_out + sum(rows.rows_dropped.values()), "rows in must equal rows out + dropped"
    return rows


def read_canonical(
    content: pa.Buffer,
    content_format: ContentFormat,
    resolved: ResolvedLayout,
    *,
    dataset: Dataset,
    first_row_number: int = 0,
    block_size: int = 16 * 1024 * 1024,
) -> CanonicalRows:
    """The whole content (decompressed, BOM removed, UTF-8 checked) as canonical rows.

    `block_size` bounds one record: Arrow reads in blocks and refuses a record longer than one.
    """
    if content_format.format == "parquet":
        parsed = _parse_parquet(content, resolved)
    elif content_format.format == "jsonl":
        parsed = _parse_json_lines(content, content_format, resolved, block_size)
    else:
        parsed = _parse_delimited(content, content_format, resolved, block_size)
    return _to_canonical(parsed, resolved, dataset, first_row_number)
