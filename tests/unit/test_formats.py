"""Checks 1 and 2 on the head of a file: the format is recognised from content, and unreadable bytes are refused."""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.validator.checks import CheckFailedError
from services.validator.decoding import TextEncoding, content_as_utf8
from services.validator.formats import (
    ContentFormat,
    inflate,
    inspect_head,
    parquet_footer_length,
    parquet_schema,
    read_head,
)
from services.validator.layouts import LayoutSettings, known_column_names
from tests.data_paths import SHARED_DATA

DATA = SHARED_DATA
SAMPLE_BYTES = 1024 * 1024
KNOWN_COLUMNS = known_column_names(LayoutSettings().in_order())

GIFT_CARD = DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv"
NANNYML = DATA / "marc-en-nannyml-reference/amazon_reviews_reference.csv"
MARC_EN = DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
BEAUTY = DATA / "mcauley2018-all-beauty-5core/All_Beauty_5.json"
UCI = DATA / "uci-sentiment-amazon-cells/amazon_cells_labelled.txt"
README = DATA / "uci-sentiment-amazon-cells/ORIGINAL_readme.txt"


def inspect_bytes(data: bytes, sample_bytes: int = SAMPLE_BYTES) -> ContentFormat | None:
    """What the validator sees on the head of an object holding `data`."""
    head = data[: sample_bytes + 64 * 1024]
    return inspect_head(
        read_head(head, whole=len(head) == len(data), sample_bytes=sample_bytes), known_columns=KNOWN_COLUMNS
    )


def failure(data: bytes, sample_bytes: int = SAMPLE_BYTES) -> CheckFailedError:
    with pytest.raises(CheckFailedError) as raised:
        inspect_bytes(data, sample_bytes)
    return raised.value


# Every review file in ../shared/data as published: (format, delimiter, quoting, header, encoding, columns).
REAL_FORMATS = {
    "amazon-alexa/amazon_alexa.tsv": ("tsv", "\t", True, True, "utf-8-sig", 5),
    "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv": ("tsv", "\t", False, True, "utf-8", 15),
    "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv": (
        "csv",
        ",",
        True,
        True,
        "utf-8-sig",
        12,
    ),
    "fine-food-reviews-first1000/Reviews.csv": ("csv", ",", True, True, "utf-8-sig", 10),
    "marc-en-nannyml-reference/amazon_reviews_reference.csv": ("csv", ",", True, True, "utf-8", 14),
    "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv": ("csv", ",", True, False, "utf-8", 3),
    "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv": ("csv", ",", True, False, "utf-8", 3),
    "mcauley-category-samples-keithgalli/category__Books_small.json": ("jsonl", None, True, True, "utf-8", 9),
    "mcauley-category-samples-keithgalli/category__Clothing_small.json": ("jsonl", None, True, True, "utf-8", 9),
    "mcauley-category-samples-keithgalli/category__Electronics_small.json": ("jsonl", None, True, True, "utf-8", 9),
    "mcauley-category-samples-keithgalli/category__Grocery_small.json": ("jsonl", None, True, True, "utf-8", 9),
    "mcauley-category-samples-keithgalli/category__Patio_small.json": ("jsonl", None, True, True, "utf-8", 9),
    "mcauley-category-samples-keithgalli/sentiment__Books_small_10000.json": ("jsonl", None, True, True, "utf-8", 9),
    "mcauley2018-all-beauty-5core/All_Beauty_5.json": ("jsonl", None, True, True, "utf-8", 12),
    "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json": ("jsonl", None, True, True, "utf-8", 12),
    "uci-sentiment-amazon-cells/amazon_cells_labelled.txt": ("tsv", "\t", False, False, "utf-8", 2),
}


@pytest.mark.parametrize("name", sorted(REAL_FORMATS))
def test_every_real_review_file_is_recognised_from_its_content(name: str) -> None:
    # Given a real file as published, When its head is inspected
    found = inspect_bytes((DATA / name).read_bytes())

    # Then its format, delimiter, quoting, header and encoding are what its PROVENANCE.md describes
    assert found is not None
    expected = REAL_FORMATS[name]
    assert (
        found.format,
        found.delimiter,
        found.quoting,
        found.has_header,
        found.encoding_name,
        found.column_count,
    ) == (expected)
    assert found.compression == "none"


def test_the_aws_tsv_is_read_with_quoting_off_because_its_fields_hold_bare_quotes() -> None:
    found = inspect_bytes(GIFT_CARD.read_bytes())

    assert found is not None and not found.quoting
    assert found.columns[:3] == ("marketplace", "customer_id", "review_id")


def test_the_malformed_polarity_csv_is_refused_because_no_delimiter_fits_it() -> None:
    # Its header has no line end and each label sits on the line of the next review (see its PROVENANCE.md).
    problem = failure((DATA / "amazon-polarity-train-first5000/amazon_reviews.csv").read_bytes())

    assert problem.check == "format"
    assert "delimiter cannot be determined" in problem.reason
    assert problem.details["first_inconsistent_lines"]


@pytest.mark.parametrize("path", [README, MARC_EN.with_name("PROVENANCE.md")])
def test_documents_beside_the_data_are_not_mistaken_for_delimited_text(path: Path) -> None:
    problem = failure(path.read_bytes())

    assert (problem.check, "delimiter cannot be determined" in problem.reason) == ("format", True)


def test_a_listing_separated_by_spaces_is_a_table_under_a_comment_line() -> None:
    # SOURCE_FILES.txt: a "# …" line, then "<sha1>  <path>" lines — a real two-column space-separated table.
    found = inspect_bytes(MARC_EN.with_name("SOURCE_FILES.txt").read_bytes())

    assert found is not None and found.delimiter == " " and found.shape is not None
    assert (found.shape.preamble_lines, found.shape.header_rows) == (1, 0)


@pytest.mark.parametrize("delimiter", [";", "|"])
def test_semicolon_and_pipe_delimited_versions_of_a_real_file_are_detected(delimiter: str) -> None:
    # Given the real MARC reference CSV rewritten with another delimiter (quoted where a field needs it)
    rows = list(csv.reader(io.StringIO(NANNYML.read_text(encoding="utf-8"), newline="")))
    rewritten = io.StringIO()
    csv.writer(rewritten, delimiter=delimiter, lineterminator="\n").writerows(rows)

    found = inspect_bytes(rewritten.getvalue().encode())

    assert found is not None
    assert (found.format, found.delimiter, found.has_header, found.column_count) == ("csv", delimiter, True, 14)
    assert found.columns[:4] == ("review_id", "product_id", "reviewer_id", "stars")


def test_a_single_column_of_text_has_no_delimiter_to_find() -> None:
    lines = [row[1] for row in csv.reader(io.StringIO(MARC_EN.read_text(encoding="utf-8"), newline=""))][:200]
    problem = failure("\n".join(line.replace(",", " ").replace("\t", " ") for line in lines).encode())

    assert problem.check == "format"
    assert "the delimiter cannot be determined" in problem.reason


def test_a_header_whose_field_count_differs_from_the_rows_is_named() -> None:
    data = GIFT_CARD.read_bytes()
    header, _, rows = data.partition(b"\n")

    problem = failure(header.rsplit(b"\t", 1)[0] + b"\n" + rows)

    assert problem.check == "format"
    assert "first line has 14 fields but the lines after it have 15" in problem.reason


@pytest.mark.parametrize(("path", "has_header"), [(MARC_EN, False), (UCI, False), (NANNYML, True), (GIFT_CARD, True)])
def test_a_header_is_told_from_a_first_row_of_data(path: Path, has_header: bool) -> None:
    found = inspect_bytes(path.read_bytes())

    assert found is not None and found.has_header is has_header


def test_json_lines_report_their_keys_and_the_json_types_seen() -> None:
    found = inspect_bytes(BEAUTY.read_bytes())

    assert found is not None and found.format == "jsonl"
    assert {"overall", "reviewText", "summary", "verified"} <= set(found.columns)
    assert found.json_types["overall"] == {"number"}
    assert found.json_types["reviewText"] <= {"string", "null"}


def test_a_json_array_document_is_recognised_as_a_document_read_whole() -> None:
    lines = BEAUTY.read_text(encoding="utf-8").splitlines()[:50]

    found = inspect_bytes(("[" + ",\n".join(lines) + "]").encode())

    assert found is not None and found.format == "json" and not found.columns_known


def test_pretty_printed_json_objects_are_a_document_not_json_lines() -> None:
    import json

    records = [json.loads(line) for line in BEAUTY.read_text(encoding="utf-8").splitlines()[:20]]
    pretty = "\n".join(json.dumps(record, indent=2) for record in records)

    found = inspect_bytes(pretty.encode())

    assert found is not None and found.format == "json"


# -- gzip ---------------------------------------------------------------------------------------


def test_a_gzip_compressed_real_file_is_recognised_inside_its_compression() -> None:
    found = inspect_bytes(gzip.compress(GIFT_CARD.read_bytes()))

    assert found is not None
    assert (found.compression, found.format, found.delimiter, found.quoting) == ("gzip", "tsv", "\t", False)


def test_a_multi_member_gzip_file_is_read_across_its_members() -> None:
    data = BEAUTY.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    members = gzip.compress(data[:half]) + gzip.compress(data[half:])

    content = inflate(members, keep_at_most=len(data), give_up_after=len(data))

    assert content is not None and content.to_pybytes() == data


def test_a_truncated_gzip_file_is_refused_as_unreadable() -> None:
    compressed = gzip.compress(GIFT_CARD.read_bytes())

    problem = failure(compressed[: len(compressed) * 2 // 3])

    assert problem.check == "readability" and "truncated" in problem.reason


def test_a_truncated_gzip_file_larger_than_the_head_is_refused_when_read_whole() -> None:
    compressed = gzip.compress(GIFT_CARD.read_bytes())
    cut = compressed[: len(compressed) - 100]
    assert inspect_bytes(cut, sample_bytes=16 * 1024) is not None  # the head alone looks fine

    with pytest.raises(CheckFailedError) as raised:
        inflate(cut, keep_at_most=10**9, give_up_after=10**9)

    assert raised.value.check == "readability" and "truncated" in raised.value.reason


def test_a_corrupt_gzip_stream_is_refused_as_unreadable() -> None:
    compressed = bytearray(gzip.compress(GIFT_CARD.read_bytes()))
    compressed[200:260] = os.urandom(60)

    problem = failure(bytes(compressed))

    assert problem.check == "readability" and "gzip" in problem.reason


def _repeated_members(block: bytes, copies: int) -> bytes:
    """A gzip file whose content is `block` `copies` times: one member, repeated (cheap to build)."""
    return gzip.compress(block, compresslevel=9) * copies


def test_a_gzip_bomb_stops_at_the_decompressed_size_cap() -> None:
    # Given ~2 GiB of real rows compressed into a few MB (a row repeated; 128 gzip members of 16 MiB each)
    header, row = GIFT_CARD.read_bytes().split(b"\n")[:2]
    block = (row + b"\n") * (16 * 1024 * 1024 // (len(row) + 1))
    bomb = gzip.compress(header + b"\n" + block) + _repeated_members(block, 127)
    assert len(bomb) < 8 * 1024 * 1024

    # Then its head is a valid TSV sample (the bomb is only found by decompressing), and
    assert inspect_bytes(bomb) is not None
    # When it is inflated with a 64 MiB cap, it is refused by the size check after 64 MiB, not after 2 GiB
    with pytest.raises(CheckFailedError) as raised:
        inflate(bomb, keep_at_most=16 * 1024 * 1024, give_up_after=64 * 1024 * 1024)

    assert raised.value.check == "size"
    assert "max_decompressed_bytes" in raised.value.reason


def test_a_gzip_bomb_of_zeros_is_binary_content_in_its_head() -> None:
    zeros = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = zeros.compress(bytes(64 * 1024 * 1024)) + zeros.flush()

    problem = failure(block * 32)  # 2 GiB of NUL bytes in ~2 MB

    assert problem.check == "readability" and "binary content" in problem.reason


def test_gzip_content_above_what_is_kept_is_measured_but_not_kept() -> None:
    data = GIFT_CARD.read_bytes()

    assert inflate(gzip.compress(data), keep_at_most=len(data) - 1, give_up_after=len(data)) is None


# -- readability of text ------------------------------------------------------------------------


def test_cp1252_bytes_inside_utf8_are_refused_with_their_offset_and_line() -> None:
    # Given the real MARC file with one review re-encoded in cp1252 (a mixed-encoding file)
    lines = MARC_EN.read_bytes().split(b"\n")
    lines[40] = "41,Café crème: très déçu,1\r".encode("cp1252")
    data = b"\n".join(lines)

    problem = failure(data)

    assert problem.check == "readability"
    assert problem.details["line"] == 41
    assert problem.details["offset"] == data.index(b"Caf\xe9") + 3
    assert "not UTF-8" in problem.reason and "0xe9" in problem.reason


def test_undecodable_bytes_beyond_the_head_are_found_in_the_whole_content() -> None:
    data = MARC_EN.read_bytes() + "99,Prix trop élevé,2\r\n".encode("latin-1")
    assert inspect_bytes(data) is not None

    with pytest.raises(CheckFailedError) as raised:
        content_as_utf8(pa.py_buffer(data), TextEncoding(name="utf-8", codec="utf-8"))

    assert raised.value.details == {"offset": data.index(b"\xe9"), "line": 12466}


def test_a_utf8_byte_order_mark_is_recognised() -> None:
    found = inspect_bytes((DATA / "amazon-alexa/amazon_alexa.tsv").read_bytes())

    assert found is not None and found.encoding_name == "utf-8-sig" and found.columns[0] == "rating"


def test_binary_garbage_is_refused() -> None:
    problem = failure(os.urandom(200_000))

    assert problem.check == "readability" and "binary content" in problem.reason


def test_a_line_longer_than_the_sample_is_refused() -> None:
    # A 50 MB single line: no record end within the sample.
    problem = failure(b"x" * 50_000_000, sample_bytes=SAMPLE_BYTES)

    assert problem.check == "readability" and "no complete line" in problem.reason


@pytest.mark.parametrize("data", [b"", b" \n\r\n\t\n"])
def test_nothing_to_recognise_is_left_to_the_size_and_columns_checks(data: bytes) -> None:
    assert inspect_bytes(data) is None


# -- Parquet ------------------------------------------------------------------------------------


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_parquet_is_recognised_by_its_magic_and_its_schema_read_from_the_footer_alone() -> None:
    data = _parquet(pa.table({"text": ["Great product and price!"], "rating": [5]}))
    found = inspect_bytes(data)
    assert found is not None and found.format == "parquet"

    tail = data[-parquet_footer_length(data[-8:]) :]
    schema = parquet_schema(tail, len(data))

    assert schema.names == ["text", "rating"]


def test_a_truncated_parquet_file_is_refused() -> None:
    data = _parquet(pa.table({"text": ["Great product and price!"], "rating": [5]}))

    problem = failure(data[:-10])

    assert problem.check == "readability" and "PAR1" in problem.reason
