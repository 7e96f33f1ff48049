"""Records of delimited text: a broken record costs that record, never the file and never its neighbours.

Two readers, one result. The fast one is Arrow's CSV reader, vectorised and multi-threaded: it is
trusted when it reads every record with the file's number of fields and the quotes pair up. When
they do not — an extra or missing delimiter, a quote opened by mistake — the content is read again
by Python's `csv` module, one record at a time, with resynchronisation: a record with the wrong
number of fields is dropped as `malformed_record`, and when it spanned several lines (a stray quote
ran on into the next lines) only its first line is dropped and reading resumes on the line after
it, so the rows a stray quote would have swallowed come back. A quote still open at the end of the
file is broken too, whatever the number of fields it collected.

Both readers agree on well-formed files (Arrow and `csv` read quotes, doubled quotes, escapes and
quoted newlines alike); the tests compare them on every dialect.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, AnyStr

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .checks import CheckFailedError

# A review is far below this; the csv module's own default (128 KiB) would refuse long quoted fields.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")
STRADDLING = "straddl"  # Arrow's message for a record longer than its read block
# Broken rows and lines reported by number: the first few say where to look.
FIRST_REPORTED = 10
# What Arrow raises for content it cannot parse; its memory and I/O errors are not the file's fault.
ARROW_CONTENT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, pa.ArrowKeyError)


@dataclass(frozen=True)
class Dialect:
    """How fields and records are written in one delimited file."""

    delimiter: str
    quote_char: str | None
    """None: quotes are data (the AWS customer-reviews TSV)."""
    escape_char: str | None = None
    skip_initial_space: bool = False

    def csv_options(self) -> dict[str, Any]:
        """Keyword arguments for `csv.reader` that read this dialect."""
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quote_char or '"',
            "quoting": csv.QUOTE_MINIMAL if self.quote_char else csv.QUOTE_NONE,
            "escapechar": self.escape_char,
            "doublequote": True,
            "skipinitialspace": self.skip_initial_space,
            "strict": False,
        }

    def describe(self) -> str:
        delimiter = {"\t": "TAB", " ": "space"}.get(self.delimiter, repr(self.delimiter))
        if self.skip_initial_space:
            delimiter = repr(self.delimiter + " ")
        quoting = f"quote {self.quote_char}" if self.quote_char else "no quoting"
        escape = f", escape {self.escape_char}" if self.escape_char else ""
        return f"delimiter {delimiter}, {quoting}{escape}"


@dataclass(frozen=True)
class Record:
    """One record as read: where it starts, how many physical lines it took, its fields (None: malformed)."""

    line: int
    lines: int
    fields: list[str] | None
    other_dialect: bool = False
    """Read in another delimiter or quote than the file's (a row pasted from another export)."""


def physical_lines(text: str) -> list[str]:
    """The text's lines with their ends, split at LF, CRLF or CR only (not at the other Unicode line breaks)."""
    return _PHYSICAL_LINE.findall(text)


class _LineCursor:
    """The lines from `position` on, one at a time, as `csv.reader` pulls them; `position` says how far it got."""

    def __init__(self, lines: Sequence[str], position: int, stop: int) -> None:
        self.lines = lines
        self.position = position
        self.stop = stop

    def __iter__(self) -> _LineCursor:
        return self

    def __next__(self) -> str:
        if self.position >= self.stop:
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _is_blank(fields: list[str], width: int | None) -> bool:
    """Empty lines are not records; nor are lines of spaces where a record has several fields."""
    if not fields:
        return True
    return len(fields) == 1 and width != 1 and not fields[0].strip()


def _unescaped_quotes(text: AnyStr, quote: AnyStr, escape: AnyStr | None) -> int:
    """Quotes in `text` that open or close a field: an escaped quote is data, and so is an escaped escape."""
    if escape:
        nothing = text[:0]
        text = text.replace(escape + escape, nothing).replace(escape + quote, nothing)
    return text.count(quote)


def _quote_left_open(lines: Sequence[str], start: int, stop: int, dialect: Dialect) -> bool:
    if dialect.quote_char is None:
        return False
    return _unescaped_quotes("".join(lines[start:stop]), dialect.quote_char, dialect.escape_char) % 2 == 1


# Records looked at to tell a stray quote from a broken multi-line record.
_LINES_JUDGED = 20


def _whole_record_is_broken(lines: Sequence[str], dialect: Dialect, width: int, first: int, end: int) -> bool:
    """Whether a multi-line record with the wrong number of fields is one broken record, not a stray quote.

    Read on their own, the lines a stray quote swallowed are records like any other; the inner lines
    of a real quoted field are pieces of prose that rarely have the file's number of fields.
    """
    inner = list(islice(read_records(lines, dialect, width, start=first + 1, stop=end), _LINES_JUDGED))
    return sum(1 for record in inner if record.fields is not None) * 2 < len(inner)


# Delimiters and quotes a line written by another tool may use; a space is left out, as prose is full of them.
_OTHER_DELIMITERS = (",", ";", "\t", "|")
_OTHER_QUOTES = ('"', "'")


def other_dialects_of(dialect: Dialect) -> list[Dialect]:
    """The file's delimiter with the other quote, then the other delimiters with either quote."""
    others = [Dialect(dialect.delimiter, quote, dialect.escape_char) for quote in _OTHER_QUOTES]
    others += [Dialect(delimiter, quote) for delimiter in _OTHER_DELIMITERS for quote in _OTHER_QUOTES]
    return [
        other
        for other in dict.fromkeys(others)
        if (other.delimiter, other.quote_char) != (dialect.delimiter, dialect.quote_char)
    ]


def fields_of_line(line: str, dialect: Dialect) -> list[str]:
    """One line's fields, read on its own."""
    return next(csv.reader([line], **dialect.csv_options()), [])


def read_in_another_dialect(line: str, dialect: Dialect, others: Sequence[Dialect], width: int) -> list[str] | None:
    """The line's fields in the first other dialect that gives it exactly the file's number of fields.

    Another quote counts only when it encloses a delimiter: a line that has the right number of fields
    with quotes taken as data is one whose quote was opened by mistake, and that is a broken record.
    """
    quotes_as_data = len(fields_of_line(line, Dialect(dialect.delimiter, None))) == width
    for other in others:
        if other.delimiter == dialect.delimiter and quotes_as_data:
            continue
        fields = fields_of_line(line, other)
        if len(fields) == width:
            return fields
    return None


def read_records(
    lines: Sequence[str],
    dialect: Dialect,
    width: int | None,
    *,
    start: int = 0,
    stop: int | None = None,
    other_dialects: bool = False,
) -> Iterator[Record]:
    """Every non-blank record of `lines[start:stop]`; with `width`, resynchronising on broken records.

    With `other_dialects`, a one-line record with the wrong number of fields that another delimiter or
    quote reads with exactly the file's number (a row pasted from an export in another dialect) is
    kept, read in that dialect: it is not broken, only written differently.
    """
    stop = len(lines) if stop is None else stop
    others = other_dialects_of(dialect) if other_dialects and width is not None else []
    options = dialect.csv_options()
    position = start
    while position < stop:
        cursor = _LineCursor(lines, position, stop)
        reader = csv.reader(cursor, **options)
        restart_at = None
        while True:
            first = cursor.position
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error:
                yield Record(first, 1, None)
                restart_at = first + 1
                break
            spanned = cursor.position - first
            if _is_blank(fields, width):
                continue
            if width is None:
                yield Record(first, spanned, fields)
                continue
            broken = len(fields) != width or (
                spanned > 1 and cursor.position >= stop and _quote_left_open(lines, first, cursor.position, dialect)
            )
            if not broken:
                yield Record(first, spanned, fields)
                continue
            if spanned > 1 and _whole_record_is_broken(lines, dialect, width, first, cursor.position):
                yield Record(first, spanned, None)  # a real multi-line record with a field too many or too few
                continue
            recovered = read_in_another_dialect(lines[first], dialect, others, width) if others else None
            yield Record(first, 1, recovered, other_dialect=recovered is not None)
            if spanned > 1:
                restart_at = first + 1  # a stray quote ran on: the lines after its line are read again
                break
        if restart_at is None:
            return
        position = restart_at


@dataclass(frozen=True)
class DelimitedRows:
    """The data records of a delimited file: kept columns as strings, and the records that were broken."""

    columns: dict[str, pa.Array | pa.ChunkedArray]
    positions: pa.Array
    """0-based record position of each row in `columns`, among all data records (broken ones included)."""
    records: int
    malformed: list[int]
    """Record positions of the broken records."""
    malformed_lines: list[int]
    """1-based line numbers (in the whole file) where the first broken records start."""
    other_dialect: int = 0
    """Records kept that were written in another delimiter or quote than the file's."""


def arange(count: int) -> pa.Array:
    """Positions 0 … count-1, as Arrow int64."""
    return pa.array(np.arange(count, dtype=np.int64))


def arrow_failure(error: Exception, block_size: int) -> CheckFailedError:
    if STRADDLING in str(error):
        return CheckFailedError(
            "readability",
            f"a record is longer than the {block_size}-byte limit on one record (max_record_bytes)",
            max_record_bytes=block_size,
        )
    return CheckFailedError("readability", f"the file cannot be parsed: {error}")


def _quotes_pair_up(data: pa.Buffer, dialect: Dialect) -> bool:
    if dialect.quote_char is None:
        return True
    quote = dialect.quote_char.encode()
    escape = dialect.escape_char.encode() if dialect.escape_char else None
    view = memoryview(data)
    step = 16 * 1024 * 1024  # bounded copies: a slice of a buffer must become bytes to be counted
    count = sum(
        _unescaped_quotes(bytes(view[offset : offset + step]), quote, escape) for offset in range(0, len(view), step)
    )
    return count % 2 == 0


def _read_with_arrow(
    data: pa.Buffer, dialect: Dialect, names: list[str], kept: list[str], block_size: int
) -> pa.Table | None:
    """All records read by Arrow, or None when any record has the wrong number of fields."""
    invalid = 0

    def count_invalid(row: Any) -> str:
        nonlocal invalid
        invalid += 1
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, block_size=block_size, use_threads=True),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter,
                quote_char=dialect.quote_char or False,
                double_quote=True,
                escape_char=dialect.escape_char or False,
                newlines_in_values=dialect.quote_char is not None,
                ignore_empty_lines=True,
                invalid_row_handler=count_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=kept,
                column_types=dict.fromkeys(kept, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # the content was checked (or transcoded) once already
            ),
        )
    except ARROW_CONTENT_ERRORS as error:
        if STRADDLING in str(error):
            raise arrow_failure(error, block_size) from error
        return None  # let the record-by-record reader say where
    return None if invalid else table


def _read_record_by_record(
    text: str, dialect: Dialect, names: list[str], kept: list[str], first_line_number: int
) -> DelimitedRows:
    lines = physical_lines(text)
    width = len(names)
    indexes = [names.index(name) for name in kept]
    values: list[list[str]] = [[] for _ in kept]
    positions: list[int] = []
    malformed: list[int] = []
    malformed_lines: list[int] = []
    position = -1
    other_dialect = 0
    for record in read_records(lines, dialect, width, other_dialects=True):
        position += 1
        other_dialect += record.other_dialect
        if record.fields is None:
            malformed.append(position)
            if len(malformed_lines) < FIRST_REPORTED:
                malformed_lines.append(first_line_number + record.line)
            continue
        positions.append(position)
        for column, index in zip(values, indexes, strict=True):
            column.append(record.fields[index])
    return DelimitedRows(
        columns={name: pa.array(column, pa.string()) for name, column in zip(kept, values, strict=True)},
        positions=pa.array(positions, pa.int64()),
        records=position + 1,
        malformed=malformed,
        malformed_lines=malformed_lines,
        other_dialect=other_dialect,
    )


def read_delimited(
    data: pa.Buffer,
    dialect: Dialect,
    names: list[str],
    kept: list[str],
    *,
    block_size: int,
    first_line_number: int,
) -> DelimitedRows:
    """The data records in `data` (UTF-8, from the first data line on), `kept` columns only.

    `names` are every column's (unique) name; `first_line_number` is the 1-based line of the file on
    which `data` starts, for reporting where broken records are.
    """
    if not dialect.skip_initial_space and _quotes_pair_up(data, dialect):
        table = _read_with_arrow(data, dialect, names, kept, block_size)
        if table is not None:
            return DelimitedRows(
                columns={name: table.column(name) for name in kept},
                positions=arange(table.num_rows),
                records=table.num_rows,
                malformed=[],
                malformed_lines=[],
            )
    text = data.to_pybytes().decode("utf-8")
    return _read_record_by_record(text, dialect, names, kept, first_line_number)
