"""Records: a broken record costs that record only, and both readers read well-formed files alike."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow as pa
import pytest

from services.validator.records import Dialect, physical_lines, read_delimited, read_records
from tests.data_paths import SHARED_DATA

NANNYML = SHARED_DATA / "marc-en-nannyml-reference/amazon_reviews_reference.csv"
ROWS = [[row[0], row[3], row[4], row[5]] for row in csv.reader(io.StringIO(NANNYML.read_text("utf-8"), newline=""))][
    1:301
]
COMMA = Dialect(",", '"')


def body(**options: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=options.pop("lineterminator", "\n"), **options).writerows(ROWS)
    return out.getvalue()


def texts(text: str, dialect: Dialect = COMMA) -> tuple[list[str | None], list[int]]:
    """(text column of the kept records, 1-based lines of the malformed ones) as the validator reads `text`."""
    rows = read_delimited(
        pa.py_buffer(text.encode()),
        dialect,
        ["id", "stars", "text", "title"],
        ["text"],
        block_size=1 << 20,
        first_line_number=1,
    )
    assert rows.records == len(rows.positions) + len(rows.malformed)
    return rows.columns["text"].to_pylist(), rows.malformed_lines


ORIGINAL = [row[2] for row in ROWS]


def _plain_lines(lines: list[str]) -> list[int]:
    """Indexes of lines without any quote: a quote put into one of them is the only quote on its line."""
    return [index for index, line in enumerate(lines) if '"' not in line and "'" not in line]


def test_a_quote_opened_by_mistake_costs_its_line_and_the_rows_after_it_come_back() -> None:
    lines = physical_lines(body())
    stray = _plain_lines(lines)[5]
    head, title = lines[stray].rsplit(",", 1)
    lines[stray] = f'{head},"{title}'  # the title now opens a quote that pairs with one on a later line

    kept, malformed = texts("".join(lines))

    assert malformed == [stray + 1]
    assert kept == ORIGINAL[:stray] + ORIGINAL[stray + 1 :]


def test_a_quote_still_open_at_the_end_of_the_file_is_broken_whatever_it_swallowed() -> None:
    lines = physical_lines(body())
    plain = [index for index in _plain_lines(lines) if index > len(lines) - 60]
    stray = plain[0]
    head, title = lines[stray].rsplit(",", 1)
    # The title opens a quote; no quote follows it on the plain lines kept after it.
    kept_after = [lines[index] for index in plain[1:]]
    text = "".join([*lines[:stray], f'{head},"{title}', *kept_after])

    kept, malformed = texts(text)

    assert malformed == [stray + 1]
    assert kept == ORIGINAL[:stray] + [ORIGINAL[index] for index in plain[1:]]


def test_a_quote_inside_a_field_is_data_as_in_pythons_csv() -> None:
    lines = physical_lines(body())
    lines[5] = lines[5].replace("e", 'e "', 1) if not lines[5].startswith('"') else lines[5]

    kept, malformed = texts("".join(lines))

    assert malformed == [] and kept[5] == next(csv.reader([lines[5]]))[2]


@pytest.mark.parametrize("broken", ["extra", "missing"])
def test_a_record_with_an_extra_or_a_missing_delimiter_is_dropped_alone(broken: str) -> None:
    lines = physical_lines(body())
    lines[0] = lines[0].rstrip("\n") + ",extra\n" if broken == "extra" else lines[0].split(",", 1)[1]
    lines[150] = lines[150].rstrip("\n") + ",extra\n"
    lines[-1] = lines[-1].rstrip("\n") + ",x,y\n"

    kept, malformed = texts("".join(lines))

    assert malformed == [1, 151, len(lines)]
    assert kept == ORIGINAL[1:150] + ORIGINAL[151:-1]


def test_blank_lines_and_lines_of_spaces_are_not_records() -> None:
    lines = physical_lines(body())
    text = "".join(lines[:3]) + "\n   \n\r\n" + "".join(lines[3:])

    rows = read_records(physical_lines(text), COMMA, 4)

    assert sum(1 for _ in rows) == len(ROWS)


@pytest.mark.parametrize(
    ("options", "dialect"),
    [
        ({}, COMMA),
        ({"delimiter": ";"}, Dialect(";", '"')),
        ({"delimiter": "\t", "quoting": csv.QUOTE_NONE, "escapechar": None}, Dialect("\t", None)),
        ({"quotechar": "'"}, Dialect(",", "'")),
        ({"escapechar": "\\", "doublequote": False}, Dialect(",", '"', "\\")),
        ({"lineterminator": "\r\n"}, COMMA),
        ({"lineterminator": "\r"}, COMMA),
    ],
)
def test_arrow_and_the_record_by_record_reader_read_well_formed_files_alike(
    options: dict[str, Any], dialect: Dialect
) -> None:
    if options.get("quoting") == csv.QUOTE_NONE:
        rows = [[value.replace("\t", " ").replace("\n", " ").replace('"', "") for value in row] for row in ROWS]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n", quotechar=None, **options).writerows(rows)
        text, expected = out.getvalue(), [row[2] for row in rows]
    else:
        text, expected = body(**options), ORIGINAL
    fast, _ = texts(text, dialect)
    # A stray quote at the very end forces the record-by-record reader over the same records.
    slow, malformed = texts(text + (f"{dialect.quote_char}x,y\n" if dialect.quote_char else "x y\n"), dialect)

    def normalised(values: list[str | None]) -> list[str]:
        return [(value or "").replace("\r\n", "\n").replace("\r", "\n") for value in values]

    assert normalised(fast) == normalised(slow) == normalised(list(expected))
    assert len(malformed) == 1


def test_a_multi_line_record_with_a_field_too_few_is_dropped_whole_not_line_by_line() -> None:
    # Given a review whose quoted text spans three lines, in a record that lost its title field
    lines = physical_lines(body())
    plain = _plain_lines(lines)[8]
    record_id, stars = lines[plain].split(",")[:2]
    broken = f'{record_id},{stars},"first line of the review,\nsecond line,\nthird line."\n'
    text = "".join([*lines[:plain], broken, *lines[plain + 1 :]])

    kept, malformed = texts(text)

    # Then that one record is malformed (counted once, at its first line) and no piece of it is kept
    assert malformed == [plain + 1]
    assert kept == ORIGINAL[:plain] + ORIGINAL[plain + 1 :]


def test_a_row_pasted_in_another_delimiter_or_quote_is_read_in_its_own_and_kept() -> None:
    # Given the real rows, one written with semicolons and one whose comma-holding text is quoted with '
    lines = physical_lines(body())
    semicolon, apostrophe = (
        _plain_lines(lines)[3],
        next(index for index, line in enumerate(lines) if line.count('"') == 2 and "'" not in line and index > 50),
    )
    lines[semicolon] = lines[semicolon].replace(",", ";")
    lines[apostrophe] = lines[apostrophe].replace('"', "'")

    rows = read_delimited(
        pa.py_buffer("".join(lines).encode()),
        COMMA,
        ["id", "stars", "text", "title"],
        ["text"],
        block_size=1 << 20,
        first_line_number=1,
    )

    # Then both are kept with their text, and counted as written in another dialect
    assert rows.malformed == [] and rows.other_dialect == 2
    assert rows.columns["text"].to_pylist() == ORIGINAL
