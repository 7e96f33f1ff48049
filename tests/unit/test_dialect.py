"""Dialects: a real review table written the ways other tools write it is recognised, header and preamble included."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from services.validator.checks import CheckFailedError
from services.validator.dialect import table_shape
from services.validator.records import Dialect
from tests.data_paths import SHARED_DATA

NANNYML = SHARED_DATA / "marc-en-nannyml-reference/amazon_reviews_reference.csv"
# The real MARC reference rows (quoted where a review holds a comma), their review columns only.
ROWS = [[row[0], row[3], row[4], row[5]] for row in csv.reader(io.StringIO(NANNYML.read_text("utf-8"), newline=""))][
    :300
]
HEADER, DATA = ROWS[0], ROWS[1:]


def written(**options: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=options.pop("lineterminator", "\n"), **options).writerows(ROWS)
    return out.getvalue()


@pytest.mark.parametrize(
    ("options", "dialect"),
    [
        ({}, Dialect(",", '"')),
        ({"delimiter": ";"}, Dialect(";", '"')),
        ({"delimiter": "\t"}, Dialect("\t", '"')),
        ({"delimiter": "|"}, Dialect("|", '"')),
        ({"delimiter": " "}, Dialect(" ", '"')),
        ({"quotechar": "'"}, Dialect(",", "'")),
        ({"escapechar": "\\", "doublequote": False}, Dialect(",", '"', "\\")),
        ({"quoting": csv.QUOTE_ALL}, Dialect(",", '"')),
        ({"lineterminator": "\r\n"}, Dialect(",", '"')),
        ({"lineterminator": "\r"}, Dialect(",", '"')),
    ],
)
def test_each_dialect_of_a_real_table_is_recognised_with_its_header(options: dict[str, Any], dialect: Dialect) -> None:
    text = written(**options)
    if "escapechar" in options:
        text = text.replace("don't", 'say \\"don\'t\\"')  # make sure escaped quotes occur

    shape = table_shape(text)

    assert shape.dialect == dialect
    assert (shape.width, shape.header_rows, shape.preamble_lines, shape.columns) == (4, 1, 0, tuple(HEADER))


def test_comma_space_delimited_files_skip_the_space_after_each_comma() -> None:
    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(mark in value for mark in ',"\n') else value

    text = "".join(", ".join(quoted(value) for value in row) + "\n" for row in ROWS)

    shape = table_shape(text)

    assert shape.dialect == Dialect(",", '"', skip_initial_space=True) and shape.columns == tuple(HEADER)


def test_the_aws_tsv_with_bare_quotes_is_read_without_quoting() -> None:
    text = (SHARED_DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv").read_text("utf-8")

    assert table_shape(text).dialect == Dialect("\t", None)


def test_one_stray_quote_does_not_turn_quoting_off_for_a_file_full_of_quoted_fields() -> None:
    # CleverCSV alone reads this sample best without quoting; the resynchronising reader outvotes it.
    lines = written().split("\n")
    lines[40] = lines[40].replace(",", ',"', 1)

    assert table_shape("\n".join(lines)).dialect == Dialect(",", '"')


def test_preamble_lines_above_the_header_are_counted_and_skipped() -> None:
    text = "Exported from ReviewHub on 2024-03-01, all products\nFilter: none\n\n" + written()

    shape = table_shape(text)

    assert (shape.preamble_lines, shape.header_rows, shape.data_line, shape.columns) == (3, 1, 4, tuple(HEADER))


def test_a_header_split_over_two_rows_is_joined() -> None:
    upper = ["review", "", "", "review"]
    lower = ["id", "stars", "text", "title"]
    text = written().split("\n", 1)[1]

    shape = table_shape(",".join(upper) + "\n" + ",".join(lower) + "\n" + text)

    assert (shape.header_rows, shape.data_line) == (2, 2)
    assert shape.columns == ("review id", "stars", "text", "review title")


def test_a_units_row_under_the_header_is_part_of_the_header() -> None:
    text = written().split("\n", 1)[1]

    shape = table_shape("review_id,stars,text,review_title\nid,(1-5),free text,short\n" + text)

    assert (shape.header_rows, shape.data_line, shape.columns[1]) == (2, 2, "stars")


def test_a_trailing_delimiter_on_every_data_row_is_not_a_column() -> None:
    body = "".join(line + ",\n" for line in written().split("\n")[1:] if line)

    shape = table_shape(",".join(HEADER) + "\n" + body)

    assert (shape.width, shape.header_rows, shape.columns) == (5, 1, (*HEADER, ""))


def test_headerless_data_under_a_comment_line_has_a_preamble_and_no_header() -> None:
    text = "# MARC rows, exported 2024\n" + written().split("\n", 1)[1]

    shape = table_shape(text)

    assert (shape.preamble_lines, shape.header_rows, shape.columns) == (1, 0, ())
    assert shape.sample_rows[0] == tuple(DATA[0])


def test_prose_that_no_delimiter_splits_consistently_is_refused() -> None:
    text = "\n".join(row[2] for row in DATA)

    with pytest.raises(CheckFailedError) as raised:
        table_shape(text)

    assert raised.value.check == "format" and "delimiter cannot be determined" in raised.value.reason


def test_apostrophes_in_a_sample_without_quoted_fields_leave_standard_quoting_on() -> None:
    # The first rows need no quotes, but their texts hold apostrophes: later rows may well be quoted.
    plain = [row for row in DATA if not any(mark in value for value in row for mark in ',"\n')]
    assert any("'" in row[2] for row in plain)
    text = ",".join(HEADER) + "\n" + "".join(",".join(row) + "\n" for row in plain)

    assert table_shape(text).dialect == Dialect(",", '"')


def test_a_banner_row_above_a_two_row_header_is_preamble() -> None:
    # Cells repeated across a group row ("review", "review") name no column on their own.
    upper = ["review", "", "", "review"]
    lower = ["id", "stars", "text", "title"]
    text = "Reviews export,,,\n" + ",".join(upper) + "\n" + ",".join(lower) + "\n" + written().split("\n", 1)[1]

    shape = table_shape(text)

    assert (shape.preamble_lines, shape.header_rows, shape.data_line) == (1, 2, 3)
    assert shape.columns == ("review id", "stars", "text", "review title")


def test_a_header_written_with_another_delimiter_than_the_data_is_still_the_header() -> None:
    text = ";".join(HEADER) + "\n" + written().split("\n", 1)[1]

    shape = table_shape(text)

    assert (shape.dialect.delimiter, shape.header_rows, shape.columns) == (",", 1, tuple(HEADER))
