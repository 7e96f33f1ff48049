"""Reading a whole (size-checked) file into the canonical schema, dropping and counting bad rows.

Delimited text is read by `records` (Arrow, with a record-by-record reader that resynchronises on
broken records), JSON lines by Arrow's JSON reader (line by line only when Arrow refuses the file as
a whole, to find the bad lines), JSON documents by the json module, Parquet by Arrow. Every
row-level decision after that is a vectorised compute over whole columns.

Rows are numbered `first_row_number` + their 0-based position among the file's data records (blank
lines, a preamble and the header are not rows; broken records are), so the parts of a chunked file
keep the numbering of the file they were cut from, and dropped rows keep their numbers.

Drop reasons, in precedence order (a row is counted under its first reason only):
`malformed_record` (the record cannot be read into the file's columns), `empty_text`, and for
training files `missing_rating`, `unparseable_rating`, `rating_not_whole`, `rating_out_of_range`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from shared import canonical
from shared.events import Dataset

from .checks import CheckFailedError
from .formats import ContentFormat, parse_json_document, records_in_document
from .layouts import MappedField, ResolvedLayout
from .ratings import map_ratings, parse_ratings
from .records import ARROW_CONTENT_ERRORS, FIRST_REPORTED, STRADDLING, arange, arrow_failure, read_delimited

DropReason = Literal[
    "malformed_record",
    "empty_text",
    "missing_rating",
    "unparseable_rating",
    "rating_not_whole",
    "rating_out_of_range",
]
"""Why a row is dropped, in precedence order: a row is counted under its first reason only."""
FIRST_ROWS_REPORTED = FIRST_REPORTED


@dataclass(frozen=True)
class CanonicalRows:
    """A file's rows in the canonical schema, and an account of the rows that were dropped."""

    table: pa.Table
    rows_in: int
    rows_dropped: dict[str, int]
    """Rows dropped, by reason (only reasons that dropped rows)."""
    first_dropped_rows: dict[str, list[int]]
    """Per reason, the row numbers (as in `row_number`) of the first rows dropped for it."""
    malformed_lines: list[int] = field(default_factory=list)
    """1-based line numbers where the first malformed records start (delimited text and JSON lines)."""
    records_in_other_dialect: int = 0
    """Rows kept that were written in another delimiter or quote than the rest of the file."""

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
    malformed: pa.Array
    """Positions of the records that could not be read at all."""
    malformed_lines: list[int] = field(default_factory=list)
    records_in_other_dialect: int = 0


def _every_row_parsed(table: pa.Table, resolved: ResolvedLayout) -> _ParsedRows:
    """A table read whole, with no row left unparsed (JSON lines read in one go, Parquet)."""
    rows_in = int(table.num_rows)
    return _ParsedRows(
        rows_in=rows_in,
        positions=arange(rows_in),
        columns={name: table.column(column) for name, column in resolved.source_columns.items()},
        malformed=pa.array([], pa.int64()),
    )


# -- delimited text -----------------------------------------------------------------------------


def _unique_names(names: tuple[str, ...]) -> list[str]:
    """Arrow needs distinct column names; repeated names the layout does not use get a suffix."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


def _parse_delimited(
    content: pa.Buffer, content_format: ContentFormat, resolved: ResolvedLayout, block_size: int
) -> _ParsedRows:
    shape = content_format.shape
    assert shape is not None, "delimited content has a table shape"
    names = _unique_names(resolved.column_names)
    kept = list(dict.fromkeys(resolved.source_columns.values()))
    rows = read_delimited(
        content.slice(shape.data_offset),
        shape.dialect,
        names,
        kept,
        block_size=block_size,
        first_line_number=shape.data_line + 1,
    )
    return _ParsedRows(
        rows_in=rows.records,
        positions=rows.positions,
        columns={name: rows.columns[column] for name, column in resolved.source_columns.items()},
        malformed=pa.array(rows.malformed, pa.int64()),
        malformed_lines=rows.malformed_lines,
        records_in_other_dialect=rows.other_dialect,
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
        if STRADDLING in str(error):
            raise arrow_failure(error, block_size) from error
        return None  # a bad line or a changing type: find it line by line
    return _every_row_parsed(table, resolved)


def _json_scalar_as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    raise TypeError(f"a {type(value).__name__} where a text or a number belongs")


def _record_values(
    record: Any, resolved: ResolvedLayout, column_index: dict[str, int] | None
) -> dict[MappedField, str | None]:
    """A JSON record's values by canonical name: an object by key, or an array by the header's positions."""
    if column_index is not None:
        if not isinstance(record, list) or len(record) != len(column_index):
            raise TypeError("not an array of the header's length")
        return {
            name: _json_scalar_as_text(record[column_index[column]]) for name, column in resolved.source_columns.items()
        }
    if not isinstance(record, dict):
        raise TypeError("not a JSON object")
    return {name: _json_scalar_as_text(record.get(column)) for name, column in resolved.source_columns.items()}


def _rows_from_records(
    records: list[tuple[int, Any]], resolved: ResolvedLayout, column_index: dict[str, int] | None
) -> _ParsedRows:
    """Parsed JSON records (line number, value; a value of `_BROKEN` could not be parsed) as rows."""
    values: dict[MappedField, list[str | None]] = {name: [] for name in resolved.source_columns}
    positions: list[int] = []
    malformed: list[int] = []
    malformed_lines: list[int] = []
    for position, (line, record) in enumerate(records):
        try:
            if record is _BROKEN:
                raise ValueError("not JSON")
            row = _record_values(record, resolved, column_index)
        except (ValueError, TypeError):
            malformed.append(position)
            if len(malformed_lines) < FIRST_ROWS_REPORTED:
                malformed_lines.append(line)
            continue
        positions.append(position)
        for name, value in row.items():
            values[name].append(value)
    return _ParsedRows(
        rows_in=len(records),
        positions=pa.array(positions, pa.int64()),
        columns={name: pa.array(column_values, pa.string()) for name, column_values in values.items()},
        malformed=pa.array(malformed, pa.int64()),
        malformed_lines=malformed_lines,
    )


_BROKEN = object()


def _parse_json_lines_line_by_line(
    content: pa.Buffer, content_format: ContentFormat, resolved: ResolvedLayout
) -> _ParsedRows:
    records: list[tuple[int, Any]] = []
    for number, line in enumerate(content.to_pybytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            records.append((number, _BROKEN))
    column_index = None
    if content_format.json_arrays:
        records = records[1:]  # the first line names the columns
        column_index = {name: index for index, name in enumerate(resolved.column_names)}
    return _rows_from_records(records, resolved, column_index)


def _parse_json_document(content: pa.Buffer, resolved: ResolvedLayout) -> _ParsedRows:
    document = parse_json_document(content.to_pybytes())
    records = records_in_document(document) or []
    return _rows_from_records(list(enumerate(records, start=1)), resolved, None)


def json_document_columns(content: pa.Buffer) -> tuple[tuple[str, ...], dict[str, frozenset[str]]]:
    """The keys of a JSON document's records (read whole), refusing a document that holds no records."""
    from .formats import keys_and_types

    try:
        document = parse_json_document(content.to_pybytes())
    except (ValueError, RecursionError) as error:
        raise CheckFailedError(
            "format", f"the content is neither JSON lines nor a valid JSON document: {error}"
        ) from None
    records = records_in_document(document)
    if records is None or not any(isinstance(record, dict) for record in records):
        raise CheckFailedError(
            "format",
            "a JSON document that holds no array of review objects: write JSON lines (one object per line) "
            "or an array of objects",
        )
    return keys_and_types(records)


def _parse_json_lines(
    content: pa.Buffer, content_format: ContentFormat, resolved: ResolvedLayout, block_size: int
) -> _ParsedRows:
    if not content_format.json_arrays:
        parsed = _parse_json_lines_with_arrow(content, content_format, resolved, block_size)
        if parsed is not None:
            return parsed
    return _parse_json_lines_line_by_line(content, content_format, resolved)


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


def _first_numbers(positions: pa.Array, mask: Any, first_row_number: int) -> list[int]:
    chosen = positions.filter(mask).slice(0, FIRST_ROWS_REPORTED)
    return [first_row_number + int(position) for position in chosen.to_pylist()]


def _to_canonical(
    parsed: _ParsedRows, resolved: ResolvedLayout, dataset: Dataset, first_row_number: int, round_ratings: bool
) -> CanonicalRows:
    count = len(parsed.positions)
    columns = parsed.columns

    def optional_text(name: MappedField) -> pa.Array | pa.ChunkedArray:
        return _blank_as_null(columns[name]) if name in columns else pa.nulls(count, pa.string())

    text = _as_text(columns["text"])
    empty_text = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True)
    if "rating" in columns:
        rating_map = resolved.layout.rating_map
        ratings = (
            map_ratings(columns["rating"], rating_map)
            if rating_map is not None
            else parse_ratings(columns["rating"], round_half_up=round_ratings)
        )
        stars = ratings.stars
    else:
        stars = pa.nulls(count, pa.int8())
        ratings = None
    masks: dict[DropReason, Any] = {"empty_text": empty_text}
    if dataset == "train":
        if ratings is None:
            masks["missing_rating"] = pc.invert(empty_text)
        else:
            taken = empty_text
            for reason, mask in (
                ("missing_rating", ratings.missing),
                ("unparseable_rating", ratings.unparseable),
                ("rating_not_whole", ratings.not_whole),
                ("rating_out_of_range", ratings.out_of_range),
            ):
                masks[reason] = pc.and_not(mask, taken)  # type: ignore[index]
                taken = pc.or_(taken, mask)
    drop = empty_text
    for mask in masks.values():
        drop = pc.or_(drop, mask)

    rows_dropped: dict[str, int] = {}
    first_dropped_rows: dict[str, list[int]] = {}
    if len(parsed.malformed):
        rows_dropped["malformed_record"] = len(parsed.malformed)
        first_dropped_rows["malformed_record"] = [
            first_row_number + int(position) for position in parsed.malformed.slice(0, FIRST_ROWS_REPORTED).to_pylist()
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
        table=table,
        rows_in=parsed.rows_in,
        rows_dropped=rows_dropped,
        first_dropped_rows=first_dropped_rows,
        malformed_lines=parsed.malformed_lines,
        records_in_other_dialect=parsed.records_in_other_dialect,
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
    round_ratings: bool = False,
) -> CanonicalRows:
    """The whole content (decompressed; text as UTF-8 without a BOM) as canonical rows.

    `block_size` bounds one record: Arrow reads in blocks and refuses a record longer than one.
    """
    if content_format.format == "parquet":
        parsed = _parse_parquet(content, resolved)
    elif content_format.format == "jsonl":
        parsed = _parse_json_lines(content, content_format, resolved, block_size)
    elif content_format.format == "json":
        parsed = _parse_json_document(content, resolved)
    else:
        parsed = _parse_delimited(content, content_format, resolved, block_size)
    return _to_canonical(parsed, resolved, dataset, first_row_number, round_ratings)
