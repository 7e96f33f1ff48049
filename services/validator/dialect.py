"""How a delimited file is written — delimiter, quote, escape — and where its table starts.

The dialect: every plausible combination of the delimiters review files use (`,` `;` TAB `|`
space; `, ` is `,` with initial spaces skipped), quote (`"`, `'`, none) and escape is read on the
sample by Python's `csv` module with the resynchronising record reader, which costs a broken record
one row, and the dialects that read the most records with one consistent number of fields are kept.
When several of them read the sample differently but about equally well, CleverCSV's
data-consistency detector, which also weighs the patterns and types of the cells, chooses among
them. (CleverCSV alone judges the sample as a whole, so one stray quote can tip it into "no quoting"
for a file full of quoted fields; the record counts do not fall for that.) When they read it alike,
a quote character found inside fields is not the file's quote (a writer quoting with it would have
quoted those fields), and otherwise the standard dialect is taken.

The table: the header is the row, or pair of rows joined cell by cell, whose cells name the most
columns' roles (or, failing names, a row of names above data of another kind); lines above it that
are not part of the table (an export banner) are the preamble; files without one are headerless.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import clevercsv

from .checks import CheckFailedError
from .records import (
    Dialect,
    Record,
    fields_of_line,
    other_dialects_of,
    physical_lines,
    read_in_another_dialect,
    read_records,
)
from .roles import role_candidates

LineTerminator = Literal["lf", "crlf", "cr"]

CANDIDATE_DELIMITERS = (",", ";", "\t", "|", " ")
# Characters of the sample judged by the detectors: a few hundred records, in a few tens of milliseconds.
DETECTION_SAMPLE_CHARS = 64 * 1024
# Dialects that read this much less of the sample consistently than the best are out of the running.
CONSISTENCY_MARGIN = 0.01
# Below this share of records with one number of fields, no dialect describes the file.
MIN_CONSISTENT_SHARE = 0.6
# The header (and any preamble above it) is looked for in the first records only.
HEADER_SEARCH_RECORDS = 20
# Data records kept from the sample, for telling what the columns of a headerless file hold.
SAMPLE_ROWS_KEPT = 200

_NUMBER = re.compile(r"\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*")
# Column names are short identifiers ("review_body", "reviews.text", "Score"), never sentences.
_COLUMN_NAME = re.compile(r"[^\W\d][\w .\-/()#:]{0,63}")


@dataclass(frozen=True)
class TableShape:
    """A delimited file's dialect and the rows around its data."""

    dialect: Dialect
    line_terminator: LineTerminator
    width: int
    """Fields per record."""
    preamble_lines: int
    """Physical lines above the header (or the first record) that are not part of the table."""
    header_rows: int
    columns: tuple[str, ...]
    """Header names (cells of a two-row header joined by a space); empty when headerless."""
    data_line: int
    """0-based physical line on which the data records start."""
    data_offset: int
    """Where they start in the content as UTF-8 (the lines above them, as the sample reads them)."""
    sample_rows: tuple[tuple[str, ...], ...] = ()
    """The first well-formed data records: what a headerless file's columns hold."""


@dataclass(frozen=True)
class _Reading:
    dialect: Dialect
    width: int
    share: float
    records: list[Record]
    lines: Sequence[str]
    """The sample's whole lines, which `records` index."""


def line_terminator_of(text: str) -> LineTerminator:
    crlf = text.count("\r\n")
    lone_cr = text.count("\r") - crlf
    lone_lf = text.count("\n") - crlf
    if lone_cr > max(crlf, lone_lf):
        return "cr"
    return "crlf" if crlf > lone_lf else "lf"


def _modal_width(records: Sequence[Record]) -> int:
    widths = Counter(len(record.fields) for record in records if record.fields is not None)
    return widths.most_common(1)[0][0] if widths else 0


def _sample_lines(sample: str) -> list[str]:
    """The whole lines of the sample's first DETECTION_SAMPLE_CHARS."""
    lines = physical_lines(sample[:DETECTION_SAMPLE_CHARS])
    if len(sample) > DETECTION_SAMPLE_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the cut may fall inside a line
    return lines


def _read_sample(lines: Sequence[str], dialect: Dialect) -> _Reading:
    plain = list(read_records(lines, dialect, None))
    width = _modal_width(plain)
    if width < 2:
        return _Reading(dialect, width, 0.0, plain, lines)
    records = list(read_records(lines, dialect, width))
    consistent = sum(1 for record in records if record.fields is not None)
    return _Reading(dialect, width, consistent / len(records) if records else 0.0, records, lines)


def _candidates(sample: str) -> list[Dialect]:
    # The standard quote is always a candidate: a sample without quoted fields says nothing against it.
    quotes: list[str | None] = ['"', *(["'"] if "'" in sample else []), None]
    candidates = []
    for delimiter in CANDIDATE_DELIMITERS:
        occurrences = sample.count(delimiter)
        if not occurrences:
            continue
        spaced = delimiter != " " and delimiter + " " in sample
        for quote in quotes:
            escapes: list[str | None] = [None]
            if quote is not None and ("\\" + quote in sample or "\\" + delimiter in sample):
                escapes.append("\\")
            for escape in escapes:
                candidates.append(Dialect(delimiter, quote, escape))
                if spaced:
                    candidates.append(Dialect(delimiter, quote, escape, skip_initial_space=True))
    return candidates


def _clevercsv_choice(sample: str) -> Dialect | None:
    found = clevercsv.Detector().detect(sample, delimiters=list(CANDIDATE_DELIMITERS))
    if found is None or found.delimiter not in CANDIDATE_DELIMITERS:
        return None
    return Dialect(found.delimiter, found.quotechar or None, found.escapechar or None)


def _preference(reading: _Reading) -> tuple[int, ...]:
    """Among equally consistent dialects: standard quoting first, no escape, the usual delimiters first."""
    dialect = reading.dialect
    quote_rank = {'"': 0, "'": 1, None: 2}[dialect.quote_char]
    return (quote_rank, dialect.escape_char is not None, CANDIDATE_DELIMITERS.index(dialect.delimiter))


def _choose(finalists: list[_Reading], sample: str) -> _Reading:
    """Among dialects that read the sample about equally well, CleverCSV's choice, else the usual one."""
    first = finalists[0]
    if all(reading.records == first.records for reading in finalists[1:]):
        # They read the sample alike, so every quote character in it sits inside a field: a writer that
        # quotes with that character would have quoted such a field (the AWS TSV's bare quotes), so it
        # is not this file's quote. Otherwise nothing in the sample tells them apart: the usual one.
        unquoted = [
            reading
            for reading in finalists
            if reading.dialect.quote_char is None or reading.dialect.quote_char not in sample
        ]
        return min(unquoted or finalists, key=_preference)
    by_dialect = {reading.dialect: reading for reading in finalists}
    proposed = _clevercsv_choice(sample)
    if proposed in by_dialect:
        chosen = by_dialect[proposed]
        # CleverCSV cannot express initial spaces: its dialect's spaced twin wins when it reads more.
        twin = by_dialect.get(replace(proposed, skip_initial_space=True))
        return twin if twin is not None and twin.share > chosen.share else chosen
    return min(finalists, key=lambda reading: (-round(reading.share, 3), *_preference(reading)))


def detect_dialect(sample: str) -> _Reading:
    """The dialect of the sample, with the sample read in it."""
    lines = _sample_lines(sample)
    text = "".join(lines)
    readings = [_read_sample(lines, dialect) for dialect in _candidates(text)]
    usable = [reading for reading in readings if reading.width >= 2]
    if not usable:
        raise _single_column(readings)
    best_share = max(reading.share for reading in usable)
    chosen = _choose([reading for reading in usable if reading.share >= best_share - CONSISTENCY_MARGIN], text)
    if chosen.share < MIN_CONSISTENT_SHARE:
        differing = [record.line + 1 for record in chosen.records if record.fields is None][:10]
        raise CheckFailedError(
            "format",
            f"the delimiter cannot be determined: no dialect gives the lines a consistent number of fields "
            f"(closest: {chosen.dialect.describe()} gives {chosen.width} fields on {chosen.share:.0%} of "
            f"{len(chosen.records)} sample records; lines {differing} differ)",
            closest_delimiter=chosen.dialect.delimiter,
            first_inconsistent_lines=differing,
            sample_records=len(chosen.records),
        )
    return chosen


def _single_column(readings: Sequence[_Reading]) -> CheckFailedError:
    return CheckFailedError(
        "format",
        "the delimiter cannot be determined: none of , ; TAB | space splits the lines into fields "
        "(a single column, or not delimited text)",
        sample_records=max((len(reading.records) for reading in readings), default=0),
    )


def _is_number(value: str) -> bool:
    return _NUMBER.fullmatch(value) is not None


def _header_score(names: Sequence[str], known_columns: frozenset[str]) -> int:
    """How many cells of a row name a role (or a configured column): a header's names, not data."""
    recognised = role_candidates(names).recognised
    return recognised + sum(1 for name in names if name.strip() in known_columns)


def looks_like_column_names(values: Sequence[object]) -> bool:
    """Values that read as a header: role names, or distinct short identifiers that are not numbers."""
    if not all(isinstance(value, str) for value in values):
        return False
    names = [str(value).strip() for value in values]
    if role_candidates(names).recognised:
        return True
    return len(set(names)) == len(names) and all(
        _COLUMN_NAME.fullmatch(name) and len(name.split()) <= 4 for name in names
    )


def _names_row(cells: Sequence[str]) -> bool:
    """Cells that could be column names: short, never a sentence of review text."""
    return all(len(cell) <= 64 and len(cell.split()) <= 6 for cell in cells)


def _joined(upper: Sequence[str], lower: Sequence[str]) -> list[str]:
    return [" ".join(part.strip() for part in pair if part.strip()) for pair in zip(upper, lower, strict=True)]


def _numeric_columns(rows: Sequence[list[str]], width: int) -> list[int]:
    return [
        column for column in range(width) if rows and sum(_is_number(row[column]) for row in rows) >= 0.9 * len(rows)
    ]


def _names_above_data(first: list[str], rest: Sequence[list[str]], known_columns: frozenset[str]) -> bool:
    """Without role names: a first row of names where the data has numbers, or of identifier-like names."""
    numeric = _numeric_columns(rest, len(first))
    if any(_is_number(first[column]) for column in numeric):
        return False
    if numeric:
        return True
    names = [value.strip() for value in first]
    if any(name in known_columns for name in names):
        return True
    return bool(rest) and len(set(names)) == len(names) and all(_COLUMN_NAME.fullmatch(name) for name in names)


def _continues_header(row: list[str], data: Sequence[list[str]]) -> bool:
    """A second header row (units, a group label): text where the rows below it have numbers."""
    numeric = _numeric_columns([other for other in data if len(other) == len(row)], len(row))
    return bool(numeric) and not any(_is_number(row[column]) for column in numeric)


def _cells(record: Record, lines: Sequence[str], dialect: Dialect) -> list[str]:
    """A record's cells; for a broken one, the cells of its first line read on their own."""
    return record.fields if record.fields is not None else fields_of_line(lines[record.line], dialect)


def _is_banner(cells: list[str], line: str, width: int) -> bool:
    """A line above headerless data that is not a record: a comment, or text without a delimiter."""
    return line.strip().startswith(("#", "//")) or (width > 1 and len(cells) == 1)


def _fit_header(cells: list[str], width: int, data: Sequence[list[str]]) -> list[str] | None:
    """Header cells at the data's width: a trailing delimiter on the header, or on every data row, is not a column."""
    if len(cells) == width:
        return cells
    if len(cells) == width + 1 and not cells[-1].strip():
        return cells[:-1]
    if len(cells) == width - 1 and data and sum(not row[-1].strip() for row in data) >= 0.9 * len(data):
        return [*cells, ""]
    return None


def _read_in(sample: str, dialect: Dialect) -> _Reading:
    """The sample read in a dialect given beforehand (a part is read in the dialect of the file it was cut from)."""
    reading = _read_sample(_sample_lines(sample), dialect)
    if reading.width < 1:
        raise CheckFailedError("format", f"no records in the sample read with {dialect.describe()}")
    return reading


def table_shape(
    sample: str, *, known_columns: frozenset[str] = frozenset(), dialect: Dialect | None = None
) -> TableShape:
    """The dialect and the header, preamble and data start of a delimited file, from its head sample.

    With `dialect`, the sample is read in it instead of detecting one.
    """
    reading = detect_dialect(sample) if dialect is None else _read_in(sample, dialect)
    width = reading.width
    lines = reading.lines
    records = reading.records[:HEADER_SEARCH_RECORDS]
    data = [record.fields for record in reading.records if record.fields is not None]
    cells = [_cells(record, lines, reading.dialect) for record in records]
    fitted = [_fit_header(row, width, data) for row in cells]
    # A header written in another delimiter or quote than the data (pasted from another export).
    others = other_dialects_of(reading.dialect)
    for index, record in enumerate(records):
        if fitted[index] is None:
            fitted[index] = read_in_another_dialect(lines[record.line], reading.dialect, others, width)

    header_at: int | None = None
    header_rows = 0
    columns: tuple[str, ...] = ()
    # The header is the row, or pair of rows joined cell by cell, whose names recognise the most roles;
    # among equals, the one that starts first (a group row above the names joins them).
    best: tuple[int, int, int] | None = None  # (score, -start, rows)
    for index, names in enumerate(fitted):
        if names is None or not _names_row(names):
            continue
        following = fitted[index + 1] if index + 1 < len(fitted) else None
        options = [(_header_score(names, known_columns), -index, 1)]
        if following is not None and _names_row(following):
            options.append((_header_score(_joined(names, following), known_columns), -index, 2))
        for option in options:
            if option[0] > 0 and (best is None or option[:2] > best[:2]):
                best = option
    if best is not None:
        header_at, header_rows = -best[1], best[2]
        names = fitted[header_at] or []
        if header_rows == 2:
            columns = tuple(_joined(names, fitted[header_at + 1] or []))
        else:
            columns = tuple(value.strip() for value in names)
            following = fitted[header_at + 1] if header_at + 1 < len(fitted) else None
            below_header = [row for row in (record.fields for record in records[header_at + 2 :]) if row]
            if following is not None and _continues_header(following, below_header):
                header_rows = 2
    if header_at is None and cells and len(cells[0]) != width and _header_score(cells[0], known_columns):
        raise CheckFailedError(
            "format",
            f"the first line has {len(cells[0])} fields but the lines after it have {width} "
            f"({reading.dialect.describe()}): the header and the data disagree",
            first_line_fields=len(cells[0]),
            fields=width,
        )
    if header_at is None:
        # No role names: banner lines, then a header only when the first row reads as names above data.
        header_at = 0
        while header_at < min(len(records), 10) and _is_banner(cells[header_at], lines[records[header_at].line], width):
            header_at += 1
        if header_at >= len(records):
            header_at = 0
        first = fitted[header_at] if records else None
        rest = [row for row in data[1:] if len(row) == width]
        if first is not None and _names_above_data(first, rest, known_columns):
            header_rows, columns = 1, tuple(value.strip() for value in first)
    preamble_lines = records[header_at].line if records else 0
    data_line = preamble_lines
    if header_rows:
        last = records[min(header_at + header_rows, len(records)) - 1]
        data_line = last.line + last.lines
    sample_rows = tuple(
        tuple(record.fields)
        for record in reading.records
        if record.fields is not None and len(record.fields) == width and record.line >= data_line
    )[:SAMPLE_ROWS_KEPT]
    return TableShape(
        dialect=reading.dialect,
        line_terminator=line_terminator_of(sample),
        width=width,
        preamble_lines=preamble_lines,
        header_rows=header_rows,
        columns=columns,
        data_line=data_line,
        data_offset=len("".join(lines[:data_line]).encode("utf-8")),
        sample_rows=sample_rows,
    )
