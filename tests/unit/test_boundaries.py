"""Record boundaries in streams of bytes (services/chunker/boundaries.py, sources.py), on real review text.

Every split here is checked the strong way: each part is parsed on its own, and the parts' rows,
in order, are exactly the rows of the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from services.chunker.boundaries import (
    PartBytes,
    PartOpened,
    RecordRules,
    RecordTooLongError,
    count_records,
    group_row_groups,
    is_blank,
    last_record_end,
    record_end_at_or_after,
    split_records,
)
from services.chunker.sources import ShortReadError, ranged_blocks
from services.chunker.text import UTF8_BOM, UndecodableError
from tests.data_paths import SHARED_DATA

DATA = SHARED_DATA
BOOKS = DATA / "mcauley-category-samples-keithgalli/category__Books_small.json"
GIFT_CARD = DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv"
MARC_EN = DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
MARC_ES = DATA / "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv"
DATAFINITI = DATA / "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv"
BEAUTY = DATA / "mcauley2018-all-beauty-5core/All_Beauty_5.json"

CSV_QUOTED = RecordRules(quoting=True, header_rows=1)
HEADERLESS_CSV = RecordRules(quoting=True, header_rows=0)
LINES = RecordRules(quoting=False, header_rows=0)
TSV_UNQUOTED = RecordRules(quoting=False, header_rows=1)
HEADER = ["reviewer_id", "review", "rating"]


def multiline_review_rows() -> list[list[str]]:
    """Real reviews as a review site shows them: summary, a blank line, then the text (quotes and all)."""
    rows = []
    with BOOKS.open(encoding="utf-8") as lines:
        for line in lines:
            review = json.loads(line)
            rows.append(
                [review["reviewerID"], f"{review['summary']}\n\n{review['reviewText']}", str(review["overall"])]
            )
    return rows


def as_csv(header: list[str] | None, rows: list[list[str]], line_end: str = "\n", **dialect: Any) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end, **dialect)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@dataclass
class Part:
    first_row_number: int
    data: bytearray = field(default_factory=bytearray)
    rows: int = 0


def split(
    data: bytes,
    rules: RecordRules,
    part_size: int,
    block_bytes: int,
    max_record: int = 8 << 20,
    max_quoted: int | None = None,
) -> list[Part]:
    return split_blocks(blocks_of(data, block_bytes), rules, part_size, max_record, max_quoted)


def split_blocks(
    blocks: Iterable[bytes],
    rules: RecordRules,
    part_size: int,
    max_record: int = 8 << 20,
    max_quoted: int | None = None,
) -> list[Part]:
    parts: list[Part] = []
    events = split_records(
        blocks, rules, part_size=part_size, max_record_bytes=max_record, max_quoted_record_bytes=max_quoted
    )
    for event in events:
        if isinstance(event, PartOpened):
            assert event.index == len(parts)
            parts.append(Part(event.first_row_number))
        else:
            assert isinstance(event, PartBytes)
            parts[-1].data += event.data
            parts[-1].rows += event.rows
    return parts


def parsed_csv(data: bytes, **dialect: Any) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), **dialect) if row]


def assert_csv_parts_rebuild(original: bytes, parts: list[Part], header: list[list[str]], **dialect: Any) -> None:
    """`header` is the header's rows; `dialect` what csv.reader needs to read the original and the parts."""
    expected = parsed_csv(original, **dialect)[len(header) :]
    rebuilt: list[list[str]] = []
    for part in parts:
        rows = parsed_csv(bytes(part.data), **dialect)
        assert rows[: len(header)] == header, "every part starts with the header"
        rows = rows[len(header) :]
        assert rows, "no part is empty"
        assert part.rows == len(rows), "the row count of a part is what a CSV reader finds in it"
        assert part.first_row_number == len(rebuilt)
        rebuilt.extend(rows)
    assert rebuilt == expected


@pytest.fixture(scope="module")
def multiline_csv() -> bytes:
    return as_csv(HEADER, multiline_review_rows())


# -- delimited text with quoting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part_size", "block_bytes"),
    [(1024, 1024), (4096, 777), (50_000, 4096), (200_000, 65_536), (10**9, 1 << 20), (3000, 1 << 20)],
)
def test_quoted_multiline_csv_parts_parse_to_the_original_rows(
    multiline_csv: bytes, part_size: int, block_bytes: int
) -> None:
    # Given real reviews whose quoted fields hold newlines, blank lines and doubled quotes
    assert b'""' in multiline_csv and b"\n\n" in multiline_csv

    # When split with parts smaller and larger than blocks
    parts = split(multiline_csv, CSV_QUOTED, part_size, block_bytes)

    # Then every part parses on its own, and together they are the file's rows, in order
    assert_csv_parts_rebuild(multiline_csv, parts, [HEADER])
    assert sum(part.rows for part in parts) == len(multiline_review_rows())


def quoted_newline_in_a_field_with_quotes(data: bytes) -> tuple[int, int]:
    """(offset of a newline inside a quoted field that also holds doubled quotes, that record's end)."""
    position = 0
    while True:
        end = record_end_at_or_after(data, position, position + 1, quoting=True)
        record = data[position:end]
        inner = record.find(b"\n")
        if inner < len(record) - 1 and b'""' in record[:inner]:
            return position + inner, end
        position = end


def test_a_cut_that_would_land_on_a_quoted_newline_moves_to_the_end_of_that_record(multiline_csv: bytes) -> None:
    # Given a newline inside a quoted field, after doubled quotes in the same field
    inner_newline, record_end = quoted_newline_in_a_field_with_quotes(multiline_csv)
    header_bytes = multiline_csv.index(b"\n") + 1

    # When the target part size ends exactly on that newline, and a block boundary falls just after it too
    part_size = inner_newline + 1
    parts = split(multiline_csv, CSV_QUOTED, part_size=part_size, block_bytes=inner_newline + 1)

    # Then the first part ends at the end of that record, not at the newline inside it
    assert len(parts[0].data) == record_end
    assert bytes(parts[0].data) == multiline_csv[:record_end]
    assert header_bytes < inner_newline
    assert_csv_parts_rebuild(multiline_csv, parts, [HEADER])


def test_the_last_record_end_in_a_block_skips_newlines_inside_quotes(multiline_csv: bytes) -> None:
    inner_newline, record_end = quoted_newline_in_a_field_with_quotes(multiline_csv)

    # A block ending just after the quoted newline: its last record end is before that record
    block = multiline_csv[: inner_newline + 1]
    end = last_record_end(block, quoted_at_start=False, quoting=True)

    assert end < inner_newline
    assert multiline_csv[:end].endswith(b"\n")
    assert record_end_at_or_after(multiline_csv, end, end + 1, quoting=True) == record_end
    # And a block starting inside the quoted field carries the parity in
    rest = multiline_csv[inner_newline + 1 : record_end]
    assert last_record_end(rest, quoted_at_start=True, quoting=True) == len(rest)


def test_count_records_agrees_with_the_csv_module_on_real_files(multiline_csv: bytes) -> None:
    for data, has_header in ((multiline_csv, True), (MARC_EN.read_bytes(), False), (DATAFINITI.read_bytes(), True)):
        expected = len(parsed_csv(data)) - (1 if has_header else 0)
        header_end = data.index(b"\n") + 1 if has_header else 0
        assert count_records(data[header_end:], quoting=True) == expected


def test_count_records_skips_runs_of_blank_lines_but_not_blank_lines_inside_fields(multiline_csv: bytes) -> None:
    # Given real records with runs of 1 to 40 blank lines (LF and CRLF) between some of them
    records = [multiline_csv[start:end] for start, end in record_spans(multiline_csv)][1:400]
    padded = b"".join(
        record + (b"\n" if index % 2 else b"\r\n") * (index % 41) if index % 3 == 0 else record
        for index, record in enumerate(records)
    )

    # Then they count as the records a CSV reader finds, in both quoting modes' fast and slow paths
    assert count_records(padded, quoting=True) == len(parsed_csv(padded)) == len(records)
    assert count_records(b"\r\n" * 10_000 + padded, quoting=True) == len(records)


def record_spans(data: bytes) -> Iterator[tuple[int, int]]:
    start = 0
    while start < len(data):
        end = record_end_at_or_after(data, start, start + 1, quoting=True)
        yield start, end
        start = end


def test_crlf_headerless_marc_splits_with_its_row_numbers() -> None:
    # Given MARC English: CSV without header, CRLF line ends, quoted reviews
    data = MARC_EN.read_bytes()

    parts = split(data, HEADERLESS_CSV, part_size=100_000, block_bytes=65_536)

    assert_csv_parts_rebuild(data, parts, [])
    assert sum(part.rows for part in parts) == 12_465
    assert all(part.data.endswith(b"\r\n") for part in parts)


def test_a_bom_is_dropped_and_every_part_gets_the_same_header() -> None:
    # Given the Datafiniti CSV, which starts with a UTF-8 BOM
    data = DATAFINITI.read_bytes()
    assert data.startswith(UTF8_BOM)
    header_line = data[len(UTF8_BOM) : data.index(b"\n") + 1]

    parts = split(data, CSV_QUOTED, part_size=400_000, block_bytes=100_000)

    # Then no part has a BOM, each starts with the header's bytes, and the rows are all there
    assert len(parts) > 3
    assert all(part.data.startswith(header_line) for part in parts)
    header = parsed_csv(header_line)[0]
    assert_csv_parts_rebuild(data, parts, [header])


def test_blank_lines_never_make_a_part_of_their_own(multiline_csv: bytes) -> None:
    # Given a file whose last records are followed by blank lines, with a cut just before them
    data = multiline_csv + b"\n\r\n\n"
    part_size = len(multiline_csv)

    parts = split(data, CSV_QUOTED, part_size=part_size, block_bytes=1 << 20)

    # Then the blank lines are not a part: there is one part, with every row
    assert len(parts) == 1
    assert parts[0].rows == len(multiline_review_rows())


# -- encodings, line ends, preamble ---------------------------------------------------------------


def blocks_cut_at(data: bytes, offsets: Iterable[int], then: int = 4096) -> Iterator[bytes]:
    """`data` cut at each of `offsets` (ascending), and in blocks of `then` after the last."""
    start = 0
    for offset in offsets:
        yield data[start:offset]
        start = offset
    yield from blocks_of(data[start:], then)


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
        ("utf-16-le", b""),
    ],
)
def test_utf16_and_utf32_text_is_split_into_utf8_parts_without_a_bom(
    multiline_csv: bytes, encoding: str, bom: bytes
) -> None:
    # Given real multi-line reviews in UTF-16 or UTF-32, read in blocks of an odd size, so that blocks
    # cut characters (and the BOM) in two
    data = bom + multiline_csv.decode("utf-8").encode(encoding)
    header_line = multiline_csv[: multiline_csv.index(b"\n") + 1]

    parts = split(data, replace(CSV_QUOTED, encoding=encoding), part_size=50_000, block_bytes=4097)

    # Then the parts are the UTF-8 text, each starting with the header itself (no BOM), and cut as the UTF-8 file is
    assert all(part.data.startswith(header_line) for part in parts)
    assert header_line + b"".join(part.data[len(header_line) :] for part in parts) == multiline_csv
    assert parts == split(multiline_csv, CSV_QUOTED, part_size=50_000, block_bytes=4096)


def cp1252_reviews() -> bytes:
    """MARC Spanish (accents, ñ, ¿) as UTF-8, less the few lines cp1252 cannot hold (emoji)."""
    lines = MARC_ES.read_bytes().splitlines(keepends=True)
    return b"".join(line for line in lines if _encodable(line.decode("utf-8"), "cp1252"))


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def test_cp1252_text_is_split_as_it_is_for_the_validator_to_decode_with_its_fallback() -> None:
    # Given Spanish reviews in cp1252 (the validator's fallback encoding), with a UTF-8 review pasted in
    utf8 = cp1252_reviews()
    data = utf8.decode("utf-8").encode("cp1252") + "1,Un café excelente ☕,5\n".encode()

    parts = split(data, replace(HEADERLESS_CSV, encoding="cp1252"), part_size=100_000, block_bytes=65_536)

    # Then the parts are the file's own bytes cut on record boundaries: transcoding it all as cp1252
    # would garble the UTF-8 review, which the validator's per-sequence fallback keeps
    assert len(parts) > 1 and b"".join(part.data for part in parts) == data
    assert sum(part.rows for part in parts) == data.count(b"\n")


def test_a_lone_utf16_surrogate_cut_by_a_block_is_refused_with_its_offset(multiline_csv: bytes) -> None:
    # Given UTF-16 reviews with a lone low surrogate whose two bytes sit in two blocks
    data = codecs.BOM_UTF16_LE + multiline_csv.decode("utf-8").encode("utf-16-le")
    block_bytes = 4097
    position = 31 * block_bytes - 1
    broken = data[:position] + "\udc00".encode("utf-16-le", "surrogatepass") + data[position:]

    with pytest.raises(UndecodableError) as raised:
        split(broken, replace(CSV_QUOTED, encoding="utf-16-le"), part_size=50_000, block_bytes=block_bytes)

    assert raised.value.offset == position


def test_utf16_text_cut_short_is_refused_at_its_last_byte(multiline_csv: bytes) -> None:
    data = multiline_csv.decode("utf-8").encode("utf-16-be")[:-1]

    with pytest.raises(UndecodableError, match="truncated") as raised:
        split(data, replace(CSV_QUOTED, encoding="utf-16-be"), part_size=50_000, block_bytes=65_536)

    assert raised.value.offset == len(data) - 1


def test_old_mac_line_ends_become_lf() -> None:
    # Given MARC English with CR alone ending its lines (no LF anywhere)
    data = MARC_EN.read_bytes().replace(b"\r\n", b"\r")
    assert b"\n" not in data

    parts = split(data, replace(HEADERLESS_CSV, cr_line_ends=True), part_size=100_000, block_bytes=65_536)

    assert all(b"\r" not in part.data for part in parts)
    assert_csv_parts_rebuild(MARC_EN.read_bytes(), parts, [])
    assert sum(part.rows for part in parts) == 12_465


def test_quoted_line_breaks_of_an_old_mac_file_stay_inside_their_fields(multiline_csv: bytes) -> None:
    data = multiline_csv.replace(b"\n", b"\r")

    parts = split(data, replace(CSV_QUOTED, cr_line_ends=True), part_size=50_000, block_bytes=4096)

    assert parts == split(multiline_csv, CSV_QUOTED, part_size=50_000, block_bytes=4096)


BANNER = 'Amazon reviews export: "Books" sample, 5" paperbacks\nGenerated 2024-05-01 for the "Q2\r\n\nreviews:\n'
"""Four lines above a table, one blank, with quotes that pair with nothing."""


@pytest.mark.parametrize(
    ("encode", "rules"),
    [
        (lambda text: UTF8_BOM + text.encode("utf-8"), CSV_QUOTED),
        (
            lambda text: text.replace("\r\n", "\r").replace("\n", "\r").encode("utf-8"),
            replace(CSV_QUOTED, cr_line_ends=True),
        ),
        (lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"), replace(CSV_QUOTED, encoding="utf-16-be")),
    ],
    ids=["utf-8 with BOM", "CR line ends", "UTF-16"],
)
def test_preamble_lines_reach_no_part(multiline_csv: bytes, encode: Any, rules: RecordRules) -> None:
    # Given real reviews under a four-line banner, the first blocks cutting its lines in pieces
    data = encode(BANNER + multiline_csv.decode("utf-8"))

    parts = split_blocks(blocks_cut_at(data, range(5, 200, 7)), replace(rules, preamble_lines=4), part_size=50_000)

    # Then the parts are those of the reviews alone: the banner is in none, its quotes count for nothing
    assert parts == split(multiline_csv, CSV_QUOTED, part_size=50_000, block_bytes=4096)


# -- header rows ----------------------------------------------------------------------------------


def test_a_two_row_header_heads_every_part_and_is_not_counted() -> None:
    # Given real reviews under two header rows, the second a description with a quoted line break
    description = ["Reviewer", "Summary\n\nthen the review", "Stars, 1 to 5"]
    rows = multiline_review_rows()
    data = as_csv(HEADER, [description, *rows])
    header = as_csv(HEADER, [description])

    parts = split(data, replace(CSV_QUOTED, header_rows=2), part_size=50_000, block_bytes=4096)

    # Then every part starts with both rows, and the rows counted are the reviews
    assert len(parts) > 3
    assert all(part.data.startswith(header) for part in parts)
    assert_csv_parts_rebuild(data, parts, [HEADER, description])
    assert sum(part.rows for part in parts) == len(rows)
    # And blank lines above the header are not part of it
    assert split(b"\n\r\n" + data, replace(CSV_QUOTED, header_rows=2), part_size=50_000, block_bytes=4096) == parts


# -- quote and escape characters ------------------------------------------------------------------


def test_a_csv_quoted_with_apostrophes_is_cut_on_its_own_quote_character() -> None:
    # Given real multi-line reviews written with ' as the quote character: their " are data
    data = as_csv(HEADER, multiline_review_rows(), quotechar="'")
    assert any(line.count(b'"') % 2 for line in data.splitlines())

    parts = split(data, replace(CSV_QUOTED, quote=b"'"), part_size=50_000, block_bytes=4096)

    assert_csv_parts_rebuild(data, parts, [HEADER], quotechar="'")


def escaped_csv() -> bytes:
    """Real multi-line reviews with backslash escapes instead of doubled quotes; every third review ends with
    the emoticon :-\\ , so an escaped backslash comes right before the closing quote."""
    rows = [
        [reviewer, f"{review} :-\\" if index % 3 == 0 else review, rating]
        for index, (reviewer, review, rating) in enumerate(multiline_review_rows())
    ]
    return as_csv(HEADER, rows, escapechar="\\", doublequote=False)


def test_escaped_quotes_and_backslashes_do_not_count_for_quote_parity() -> None:
    # Given escaped quotes (\") and escaped backslashes before a closing quote (\\"), with blocks ending
    # between a backslash and what it escapes, and between the two backslashes of \\
    data = escaped_csv()
    escaped_backslashes = [position for position in range(len(data)) if data.startswith(b'\\\\"', position)]
    escaped_quotes = [position for position in range(len(data)) if data.startswith(b'\\"', position)]
    assert len(escaped_backslashes) > 100
    assert len(escaped_quotes) > 100
    cuts = sorted({*(p + 1 for p in escaped_backslashes), *(p + 2 for p in escaped_backslashes[::2])})
    cuts = sorted({*cuts, *(p + 1 for p in escaped_quotes)})
    rules = replace(CSV_QUOTED, escape=b"\\")

    parts = split_blocks(blocks_cut_at(data, cuts), rules, part_size=50_000)

    # Then every part parses alone, and together they are the file's rows
    assert_csv_parts_rebuild(data, parts, [HEADER], escapechar="\\", doublequote=False)
    assert parts == split(data, rules, part_size=50_000, block_bytes=1 << 20)


# -- stray quotes ---------------------------------------------------------------------------------


def records_by_the_resync_rule(data: bytes, limit: int, quote: bytes = b'"') -> list[bytes]:
    """The records of `data` by the rule, one newline at a time: a record ends at the first newline after
    an even number of quotes since its start, or, when that is more than `limit` bytes in, at its first newline."""
    records = []
    start = 0
    while start < len(data):
        end, quotes, first_line_end = start, 0, 0
        while True:
            newline = data.find(b"\n", end)
            if newline < 0:
                end = len(data)
                break
            quotes += data.count(quote, end, newline)
            end = newline + 1
            first_line_end = first_line_end or end
            if quotes % 2 == 0:
                break
        if end - start > limit and first_line_end:
            end = first_line_end
        records.append(data[start:end])
        start = end
    return records


def assert_parts_follow(parts: list[Part], records: list[bytes], header: bytes = b"") -> None:
    """The parts, less the header at their top, are `records` in order, each whole; rows count the non-blank ones."""
    taken = 0
    rows_before = 0
    for part in parts:
        body = bytes(part.data)
        assert body.startswith(header)
        body = body[len(header) :]
        first = taken
        length = 0
        while length < len(body):
            length += len(records[taken])
            taken += 1
        assert b"".join(records[first:taken]) == body, "a part ends where a record ends"
        assert part.rows == sum(not is_blank(record) for record in records[first:taken])
        assert part.first_row_number == rows_before
        rows_before += part.rows
    assert taken == len(records)


@pytest.mark.parametrize("block_bytes", [4096, 65_536, 1 << 21])
def test_a_stray_quote_costs_one_malformed_line_not_the_rest_of_the_file(block_bytes: int) -> None:
    # Given MARC English, whose quoted fields hold no newline, with two stray quotes 300 KB apart: every
    # newline between them, and after the second, looks quoted (read in blocks smaller than the resync
    # limit, larger, and larger than the file)
    data = MARC_EN.read_bytes()
    broken = data[:200] + b'"' + data[200:300_000] + b'"' + data[300_000:]

    # When split with a resync limit of 50 KB (and 200 KB for a line)
    parts = split(broken, HEADERLESS_CSV, 100_000, block_bytes, max_record=200_000, max_quoted=50_000)

    # Then each line holding a stray quote is one record, and every line after it is a record again
    assert b"".join(bytes(part.data) for part in parts) == broken
    assert sum(part.rows for part in parts) == 12_465
    assert all(part.rows == len(bytes(part.data).splitlines()) for part in parts)
    assert_parts_follow(parts, records_by_the_resync_rule(broken, 50_000))


@pytest.mark.parametrize("block_bytes", [777, 4096, 1 << 20])
def test_a_record_spanning_lines_past_the_resync_limit_ends_at_its_first_newline(
    multiline_csv: bytes, block_bytes: int
) -> None:
    # Given real multi-line records, and a resync limit shorter than the longest of them
    limit = 6000
    header_end = multiline_csv.index(b"\n") + 1
    records = records_by_the_resync_rule(multiline_csv[header_end:], limit)
    parity_records = [multiline_csv[start:end] for start, end in record_spans(multiline_csv)][1:]
    assert records != parity_records, "some records are longer than the limit"

    parts = split(multiline_csv, CSV_QUOTED, 20_000, block_bytes, max_record=100_000, max_quoted=limit)

    # Then the records are those of the rule, whatever the blocks: a record past the limit is its first line
    assert_parts_follow(parts, records, multiline_csv[:header_end])


def test_a_quoted_line_longer_than_the_resync_limit_is_one_record() -> None:
    # Given MARC English with one quoted review made 120 KB long, on one line
    data = MARC_EN.read_bytes()
    field_start = data.index(b',"', 5000) + 2
    review = data[field_start : data.index(b'"', field_start)]
    long_data = data[:field_start] + review * (120_000 // len(review)) + data[field_start:]

    # When the resync limit is 50 KB and a line may be 200 KB
    parts = split(long_data, HEADERLESS_CSV, 100_000, 16_384, max_record=200_000, max_quoted=50_000)

    # Then that line is a record like any other
    assert_csv_parts_rebuild(long_data, parts, [])
    assert sum(part.rows for part in parts) == 12_465


def test_a_line_longer_than_the_record_limit_is_refused_even_after_a_stray_quote() -> None:
    # Given MARC English with a stray quote followed by 300 KB without a newline
    data = MARC_EN.read_bytes()
    line_start = data.index(b"\n", 5000) + 1
    broken = data[:line_start] + b'"' + b"x" * 300_000 + data[line_start:]

    with pytest.raises(RecordTooLongError) as raised:
        split(broken, HEADERLESS_CSV, 100_000, 65_536, max_record=200_000, max_quoted=50_000)

    assert (raised.value.offset, raised.value.limit) == (line_start, 200_000)


# -- records without quoting ----------------------------------------------------------------------


def test_the_aws_tsv_with_bare_quotes_splits_on_every_line() -> None:
    # Given the AWS customer-reviews TSV: no quoting, bare quotes in reviews, blank lines at its end
    data = GIFT_CARD.read_bytes()
    lines = [line for line in data.splitlines(keepends=True) if line.strip()]
    assert any(line.count(b'"') % 2 for line in lines), "a bare quote makes quote parity useless here"

    parts = split(data, TSV_UNQUOTED, part_size=20_000, block_bytes=8192)

    rebuilt: list[bytes] = []
    for part in parts:
        part_lines = [line for line in bytes(part.data).splitlines(keepends=True) if line.strip()]
        assert part_lines[0] == lines[0]
        assert part.rows == len(part_lines) - 1
        assert part.first_row_number == len(rebuilt)
        rebuilt.extend(part_lines[1:])
    assert rebuilt == lines[1:]
    assert len(rebuilt) == 1452


def test_a_json_line_with_a_one_megabyte_string_is_never_cut() -> None:
    # Given McAuley 2018 JSON lines, one of which holds a 1 MB reviewText (real reviews, concatenated)
    lines = BEAUTY.read_bytes().splitlines(keepends=True)[:2000]
    texts = [json.loads(line)["reviewText"] for line in lines if b'"reviewText"' in line]
    long_text = ""
    while len(long_text) < 1 << 20:
        long_text += " ".join(texts)
    long_review = json.loads(lines[700])
    long_review["reviewText"] = long_text[: 1 << 20]
    lines[700] = json.dumps(long_review).encode() + b"\n"
    data = b"".join(lines)

    # When split into parts far smaller than that line, read in blocks smaller than it too
    parts = split(data, LINES, part_size=64 * 1024, block_bytes=100_000)

    # Then every line of every part is whole JSON, and the parts hold all lines in order
    rebuilt = [json.loads(line) for part in parts for line in bytes(part.data).splitlines()]
    assert rebuilt == [json.loads(line) for line in lines]
    assert sum(part.rows for part in parts) == len(lines)
    (long_part,) = [part for part in parts if len(part.data) > 1 << 20]
    assert long_part.data.endswith(b"\n")


def test_a_giant_line_is_refused_at_the_limit() -> None:
    data = b'{"reviewText": "' + b"x" * 300_000

    with pytest.raises(RecordTooLongError):
        split(data, LINES, part_size=4096, block_bytes=65_536, max_record=200_000)


def test_a_last_line_without_newline_is_a_row() -> None:
    data = b"".join(BEAUTY.read_bytes().splitlines(keepends=True)[:50]).rstrip(b"\n")

    parts = split(data, LINES, part_size=4096, block_bytes=1000)

    assert sum(part.rows for part in parts) == 50
    assert b"".join(bytes(part.data) for part in parts) == data


# -- Parquet row groups ---------------------------------------------------------------------------


def test_row_groups_are_gathered_up_to_the_part_size_and_never_divided() -> None:
    sizes = [(40, 10), (40, 10), (30, 5), (500, 100), (10, 0), (20, 4), (20, 4)]

    spans = group_row_groups(sizes, part_size=100)

    assert [span.row_groups for span in spans] == [(0, 1), (2,), (3,), (5, 6)]
    assert [span.rows for span in spans] == [20, 5, 100, 8]


# -- reading and decompressing --------------------------------------------------------------------


def test_ranged_blocks_cover_the_object_in_order() -> None:
    data = MARC_EN.read_bytes()
    asked: list[tuple[int, int]] = []

    def read_range(first: int, last: int) -> bytes:
        asked.append((first, last))
        return data[first : last + 1]

    blocks = list(ranged_blocks(read_range, len(data), 1 << 20))

    assert b"".join(blocks) == data
    assert asked[0] == (0, (1 << 20) - 1)
    assert asked[-1][1] == len(data) - 1


def test_a_short_ranged_read_is_an_error() -> None:
    with pytest.raises(ShortReadError):
        list(ranged_blocks(lambda first, last: b"abc", 10_000, 4096))


def blocks_of(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))
