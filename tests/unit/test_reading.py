"""Whole files through the four checks into canonical rows: every real file, and the bad inputs of issue 3.

`examine_file` runs format → readability → size → columns on a head sample, then reads a file within
the limits whole; rows in = rows out + rows dropped, always.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from services.validator.layouts import LayoutSettings
from services.validator.validation import (
    Accepted,
    InMemoryBytes,
    Oversized,
    Rejected,
    ValidatorSettings,
    Verdict,
    examine_file,
)
from shared.canonical import canonical_arrow_schema
from shared.events import Dataset
from tests.data_paths import ACCEPT, GIFT_CARD_DETECTED, REAL_FILES, SHARED_DATA

DATA = SHARED_DATA
GIFT_CARD = DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv"
NANNYML = DATA / "marc-en-nannyml-reference/amazon_reviews_reference.csv"
MARC_EN = DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
BEAUTY = DATA / "mcauley2018-all-beauty-5core/All_Beauty_5.json"
UCI = DATA / "uci-sentiment-amazon-cells/amazon_cells_labelled.txt"
POLARITY = DATA / "amazon-polarity-train-first5000/amazon_reviews.csv"


@pytest.fixture(autouse=True)
def default_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAYOUTS", "LAYOUTS_FILE", "MIN_SIZE_BYTES", "MAX_SIZE_BYTES", "SAMPLE_BYTES"):
        monkeypatch.delenv(f"REVIEWS_VALIDATOR_{name}", raising=False)


def limits(**overrides: int) -> ValidatorSettings:
    return ValidatorSettings(**overrides)  # type: ignore[arg-type]


def examine(data: bytes, dataset: Dataset = "train", first_row_number: int = 0, **overrides: int) -> Verdict:
    return examine_file(
        InMemoryBytes(data), dataset=dataset, limits=limits(**overrides), first_row_number=first_row_number
    )


def accepted(data: bytes, dataset: Dataset = "train", first_row_number: int = 0, **overrides: int) -> Accepted:
    verdict = examine(data, dataset, first_row_number, **overrides)
    assert isinstance(verdict, Accepted), verdict
    rows = verdict.rows
    assert rows.rows_in == rows.rows_out + sum(rows.rows_dropped.values())
    assert rows.table.schema == canonical_arrow_schema()
    return verdict


def rejected(data: bytes, dataset: Dataset = "train", **overrides: int) -> Rejected:
    verdict = examine(data, dataset, **overrides)
    assert isinstance(verdict, Rejected), verdict
    return verdict


# -- every real file ----------------------------------------------------------------------------


def test_the_table_covers_every_file_in_the_shared_data() -> None:
    on_disk = {str(path.relative_to(DATA)) for path in DATA.rglob("*") if path.is_file()}

    assert on_disk == set(REAL_FILES)


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_every_real_file_is_accepted_with_its_layout_or_rejected_with_a_clear_reason(name: str) -> None:
    verdict = examine((DATA / name).read_bytes())

    expected = REAL_FILES[name]
    if expected[0] == ACCEPT:
        _, layout, rows_in, rows_out, rows_dropped = expected
        assert isinstance(verdict, Accepted), verdict
        rows = verdict.rows
        assert (verdict.detected.layout, rows.rows_in, rows.rows_out, rows.rows_dropped) == (
            layout,
            rows_in,
            rows_out,
            rows_dropped,
        )
        assert rows.rows_in == rows.rows_out + sum(rows.rows_dropped.values())
        assert rows.table.column("row_number").to_pylist() == sorted(rows.table.column("row_number").to_pylist())
        assert pc.min(rows.table.column("rating")).as_py() >= 1 and pc.max(rows.table.column("rating")).as_py() <= 5
    else:
        _, check, words = expected
        assert isinstance(verdict, Rejected), verdict
        assert verdict.rejection.check == check and str(words) in verdict.rejection.reason


def _stated_rows(name: str) -> int | None:
    """The row count a PROVENANCE.md states for one of its files, if it states one."""
    provenance = (DATA / name).parent / "PROVENANCE.md"
    text = provenance.read_text(encoding="utf-8")
    section = text.split(f"`{name}`", 1)[-1] if f"`{name}`" in text else text
    found = re.search(r"^- rows[^:]*: ([\d,]+)", section, re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else None


@pytest.mark.parametrize("name", sorted(name for name, expected in REAL_FILES.items() if expected[0] == ACCEPT))
def test_rows_in_agree_with_the_row_counts_the_provenance_states(name: str) -> None:
    stated = _stated_rows(name)

    assert stated is not None, f"{name}: no row count in its PROVENANCE.md"
    assert REAL_FILES[name][2] == stated


def _stars(verdict: Accepted) -> dict[int, int]:
    counts = pc.value_counts(verdict.rows.table.column("rating")).to_pylist()
    return {item["values"]: item["counts"] for item in counts}


def test_star_ratings_come_through_as_published() -> None:
    # Distributions from the PROVENANCE files: the rating column is mapped, not guessed.
    assert _stars(accepted(GIFT_CARD.read_bytes())) == {5: 1266, 4: 85, 3: 33, 2: 14, 1: 54}
    assert _stars(accepted(NANNYML.read_bytes())) == {1: 293, 2: 303, 3: 263, 4: 273, 5: 249}
    assert _stars(accepted(UCI.read_bytes())) == {1: 500, 5: 500}  # 0/1 labels mapped by layouts.json


def test_the_canonical_columns_are_filled_from_the_source_columns() -> None:
    table = accepted(NANNYML.read_bytes()).rows.table
    first = table.slice(0, 1).to_pylist()[0]

    assert first == {
        "row_number": 0,
        "review_id": "en_0174200",
        "title": "bad fitting",
        "text": "the holes to not line up properly at all, looks very cheap..would be afraid the lock would break "
        "if was actually able to insert it properly",
        "rating": 2,
        "language": "en",
    }


def test_the_aws_tsv_keeps_its_bare_quotes_as_written() -> None:
    table = accepted(GIFT_CARD.read_bytes()).rows.table
    quoted = [title for title in table.column("title").to_pylist() if title and '"' in title]

    # Read with quoting on, a headline opening with a quote would swallow the fields after it.
    assert len(quoted) == 5 and len(table) == 1452


def test_the_detected_format_is_reported_with_the_layout() -> None:
    detected = accepted(GIFT_CARD.read_bytes()).detected

    assert detected.model_dump() == GIFT_CARD_DETECTED


# -- parts of a chunked file --------------------------------------------------------------------


def test_a_part_numbers_its_rows_from_the_row_it_starts_at_in_its_root_file() -> None:
    # Given the real Gift Card file cut in two, the header repeated in the second part (as the chunker does)
    header, *rows = GIFT_CARD.read_bytes().rstrip(b"\n").split(b"\n")
    first = b"\n".join([header, *rows[:700]]) + b"\n"
    second = b"\n".join([header, *rows[700:]]) + b"\n"

    numbers = [
        accepted(part, first_row_number=start).rows.table.column("row_number").to_pylist()
        for part, start in ((first, 0), (second, 700))
    ]

    # Then the parts number their rows as the whole file would
    assert numbers[0] + numbers[1] == list(range(1452))


def test_a_part_in_another_layout_than_its_root_is_refused() -> None:
    verdict = examine_file(
        InMemoryBytes(NANNYML.read_bytes()), dataset="train", limits=limits(), expected_layout="aws-customer-reviews"
    )

    assert isinstance(verdict, Rejected)
    assert verdict.rejection.check == "columns" and "the file it was cut from" in verdict.rejection.reason


# -- size ---------------------------------------------------------------------------------------


def test_an_empty_file_is_refused_by_the_size_check() -> None:
    rejection = rejected(b"").rejection

    assert (rejection.check, rejection.reason) == ("size", "0 bytes is below the minimum of 1")


def test_a_small_valid_file_below_the_minimum_is_refused_by_the_size_check() -> None:
    rejection = rejected(UCI.read_bytes(), min_size_bytes=100_000).rejection

    assert rejection.check == "size" and "below the minimum of 100000" in rejection.reason


def test_an_oversize_file_that_passes_the_head_checks_goes_to_the_chunker_with_its_format() -> None:
    verdict = examine(GIFT_CARD.read_bytes(), max_size_bytes=100_000)

    assert isinstance(verdict, Oversized)
    assert (verdict.detected.layout, verdict.detected.quoting, verdict.detected.has_header) == (
        "aws-customer-reviews",
        False,
        True,
    )


def test_an_oversize_file_of_junk_is_refused_not_chunked() -> None:
    rejection = rejected(POLARITY.read_bytes(), max_size_bytes=100_000).rejection

    assert rejection.check == "format"


def test_an_oversize_file_in_no_known_layout_is_refused_not_chunked() -> None:
    data = b"remark\tvalue\n" + b"Great birthday gift for a young adult.\t5\n" * 5000

    assert rejected(data, max_size_bytes=100_000).rejection.check == "columns"


def test_gzip_content_above_the_size_limit_goes_to_the_chunker_though_the_object_is_small() -> None:
    data = MARC_EN.read_bytes()
    compressed = gzip.compress(data)

    verdict = examine(compressed, max_size_bytes=len(data) // 2)

    assert len(compressed) < len(data) // 2
    assert isinstance(verdict, Oversized) and verdict.detected.compression == "gzip"


def test_a_gzip_bomb_is_refused_by_the_size_check() -> None:
    # ~2 GiB of one real row repeated, in a few MB (one gzip member repeated), capped at 64 MiB.
    header, row = GIFT_CARD.read_bytes().split(b"\n")[:2]
    block = (row + b"\n") * (16 * 1024 * 1024 // (len(row) + 1))
    bomb = gzip.compress(header + b"\n" + block) + gzip.compress(block) * 127

    rejection = rejected(bomb, max_size_bytes=32 * 1024 * 1024, max_decompressed_bytes=64 * 1024 * 1024).rejection

    assert rejection.check == "size" and "max_decompressed_bytes" in rejection.reason


def test_a_gzip_compressed_real_file_is_read_like_the_file() -> None:
    plain = accepted(BEAUTY.read_bytes())
    compressed = accepted(gzip.compress(BEAUTY.read_bytes()))

    assert compressed.detected.compression == "gzip"
    assert compressed.rows.table.equals(plain.rows.table)


def test_a_truncated_gzip_file_is_refused_as_unreadable() -> None:
    compressed = gzip.compress(MARC_EN.read_bytes())

    rejection = rejected(compressed[:-1000], sample_bytes=64 * 1024).rejection

    assert rejection.check == "readability" and "truncated" in rejection.reason


# -- columns and rows ---------------------------------------------------------------------------


def test_a_header_only_file_is_refused() -> None:
    header = GIFT_CARD.read_bytes().split(b"\n")[0] + b"\n"

    rejection = rejected(header).rejection

    assert rejection.check == "columns" and "no data rows" in rejection.reason


def test_a_whitespace_only_file_is_refused() -> None:
    assert rejected(b"\n \n\t\n").rejection.check == "columns"


def _gift_card_with_ratings(ratings: dict[int, bytes]) -> bytes:
    """The real Gift Card file with the star_rating of some data rows (0-based) replaced."""
    header, *rows = GIFT_CARD.read_bytes().rstrip(b"\n").split(b"\n")
    star = header.split(b"\t").index(b"star_rating")
    for index, rating in ratings.items():
        fields = rows[index].split(b"\t")
        fields[star] = rating
        rows[index] = b"\t".join(fields)
    return b"\n".join([header, *rows]) + b"\n"


def test_ratings_are_read_as_people_write_them_and_each_bad_one_dropped_for_its_own_reason() -> None:
    data = _gift_card_with_ratings(
        {
            3: b"0",
            10: b"6",
            20: b"4.5",
            30: b"five",
            40: b"",
            50: b"5.0",
            60: b" 4 ",
            70: b"4 stars",
            80: b"4 out of 5",
            90: b"excellent",
            100: b"3/5",
        }
    )

    rows = accepted(data).rows

    assert rows.rows_dropped == {
        "rating_out_of_range": 2,
        "rating_not_whole": 1,
        "missing_rating": 1,
        "unparseable_rating": 1,
    }
    assert rows.first_dropped_rows == {
        "rating_out_of_range": [3, 10],
        "rating_not_whole": [20],
        "missing_rating": [40],
        "unparseable_rating": [90],
    }
    assert (rows.rows_in, rows.rows_out) == (1452, 1447)
    ratings = dict(
        zip(rows.table.column("row_number").to_pylist(), rows.table.column("rating").to_pylist(), strict=True)
    )
    assert [ratings[row] for row in (30, 50, 60, 70, 80, 100)] == [5, 5, 4, 4, 4, 3]


def test_ratings_that_are_not_whole_are_rounded_half_up_when_the_setting_asks() -> None:
    rows = accepted(_gift_card_with_ratings({20: b"4.5", 21: b"3.4"}), round_ratings=True).rows

    ratings = dict(
        zip(rows.table.column("row_number").to_pylist(), rows.table.column("rating").to_pylist(), strict=True)
    )
    assert rows.rows_dropped == {} and (ratings[20], ratings[21]) == (5, 3)


def test_ratings_out_of_range_are_kept_as_unknown_in_inference_data() -> None:
    data = _gift_card_with_ratings({3: b"0", 40: b""})

    rows = accepted(data, "inference").rows

    assert (rows.rows_in, rows.rows_out, rows.rows_dropped) == (1452, 1452, {})
    assert rows.table.column("rating").null_count == 2


def test_a_training_file_where_every_row_is_dropped_is_refused_with_the_counts() -> None:
    data = _gift_card_with_ratings({index: b"" for index in range(1452)})

    rejection = rejected(data).rejection

    assert rejection.check == "columns"
    assert rejection.details["rows_dropped"] == {"missing_rating": 1452}
    assert rejection.details["first_dropped_rows"]["missing_rating"][:3] == [0, 1, 2]


def test_a_row_with_the_wrong_field_count_is_dropped_and_the_numbering_goes_on() -> None:
    header, *rows = GIFT_CARD.read_bytes().rstrip(b"\n").split(b"\n")
    rows[100] = b"\t".join(rows[100].split(b"\t")[:9])  # a row cut short
    rows[200] = rows[200] + b"\textra"

    rows_read = accepted(b"\n".join([header, *rows]) + b"\n", first_row_number=5000).rows

    assert rows_read.rows_dropped == {"malformed_record": 2}
    assert rows_read.first_dropped_rows == {"malformed_record": [5100, 5200]}
    assert rows_read.malformed_lines == [102, 202]
    numbers = rows_read.table.column("row_number").to_pylist()
    assert 5100 not in numbers and numbers[100] == 5101 and numbers[-1] == 5000 + 1451


def test_a_quote_that_is_never_closed_costs_its_own_row_and_no_other() -> None:
    # Given the real MARC reference CSV with a stray quote opened at the start of a field of row 499
    lines = NANNYML.read_bytes().split(b"\n")
    lines[500] = lines[500].replace(b",", b',"', 1)

    rows = accepted(b"\n".join(lines)).rows

    # Then only that row is dropped, with its line, and every row after it is read as before
    assert (rows.rows_in, rows.rows_out, rows.rows_dropped) == (1381, 1380, {"malformed_record": 1})
    assert rows.first_dropped_rows == {"malformed_record": [499]} and rows.malformed_lines == [501]
    original = accepted(NANNYML.read_bytes()).rows.table
    kept = rows.table.column("text").to_pylist()
    assert kept == original.column("text").to_pylist()[:499] + original.column("text").to_pylist()[500:]


def test_malformed_records_above_the_allowed_share_reject_the_file_with_the_share() -> None:
    header, *rows = GIFT_CARD.read_bytes().rstrip(b"\n").split(b"\n")
    broken = [row + b"\textra" if index % 8 == 0 else row for index, row in enumerate(rows)]

    rejection = rejected(b"\n".join([header, *broken]) + b"\n").rejection

    assert rejection.check == "format" and "12.5%" in rejection.reason and "max_malformed_share" in rejection.reason
    assert rejection.details["malformed_records"] == 182 and rejection.details["records"] == 1452


@pytest.mark.parametrize("delimiter", [";", "|"])
def test_semicolon_and_pipe_delimited_real_rows_are_read_like_the_original(delimiter: str) -> None:
    rows = list(csv.reader(io.StringIO(NANNYML.read_text(encoding="utf-8"), newline="")))
    rewritten = io.StringIO()
    csv.writer(rewritten, delimiter=delimiter, lineterminator="\n").writerows(rows)

    verdict = accepted(rewritten.getvalue().encode())

    assert verdict.detected.delimiter == delimiter
    assert verdict.rows.table.equals(accepted(NANNYML.read_bytes()).rows.table)


def test_json_lines_with_one_bad_line_in_the_middle_lose_only_that_line() -> None:
    lines = BEAUTY.read_bytes().split(b"\n")
    lines[2000] = lines[2000][: len(lines[2000]) // 2]  # a line cut in half
    lines[3000] = b'["not", "an", "object"]'

    rows = accepted(b"\n".join(lines)).rows

    assert rows.rows_in == 5269
    assert rows.rows_dropped == {"malformed_record": 2, "empty_text": 5}
    assert rows.first_dropped_rows["malformed_record"] == [2000, 3000]
    assert rows.rows_out == 5269 - 7


def test_json_lines_whose_rating_changes_type_are_still_read() -> None:
    lines = BEAUTY.read_bytes().split(b"\n")
    lines[10] = lines[10].replace(b'"overall": 5.0', b'"overall": "5"')

    rows = accepted(b"\n".join(lines)).rows

    assert (rows.rows_in, rows.rows_out) == (5269, 5264)


def test_a_50_mb_record_is_refused_as_longer_than_the_record_limit() -> None:
    header = GIFT_CARD.read_bytes().split(b"\n")[0]
    long_row = b"\t".join([b"US", b"1", b"R1", b"P", b"1", b"T", b"Gift Card", b"5", b"0", b"0", b"N", b"Y", b"h"])
    data = header + b"\n" + long_row + b"\t" + b"a" * 50_000_000 + b"\t2015-08-31\n"

    rejection = rejected(data).rejection

    assert rejection.check == "readability" and "longer than" in rejection.reason


def test_cp1252_bytes_after_the_head_are_refused_with_offset_and_line() -> None:
    data = NANNYML.read_bytes() + "en_9,p,r,1,Très déçu,bof,en,x,negative,0.9,0.1,0.0,negative,2020\n".encode("cp1252")

    rejection = rejected(data, sample_bytes=64 * 1024).rejection

    assert rejection.check == "readability"
    assert rejection.details == {"offset": data.index(b"\xe8"), "line": 1383}


# -- Parquet ------------------------------------------------------------------------------------


def _real_rows(count: int) -> dict[str, list[object]]:
    table = accepted(NANNYML.read_bytes()).rows.table.slice(0, count)
    return {
        "review_id": table["review_id"].to_pylist(),
        "text": table["text"].to_pylist(),
        "rating": table["rating"].to_pylist(),
    }


def _parquet(columns: Mapping[str, object]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def test_a_parquet_file_in_the_canonical_layout_is_read() -> None:
    rows = accepted(_parquet(_real_rows(100))).rows

    assert (rows.rows_in, rows.rows_out) == (100, 100)
    assert rows.table.column("text").to_pylist() == _real_rows(100)["text"]


def test_parquet_ratings_written_as_strings_are_coerced_and_the_unreadable_ones_dropped() -> None:
    real = _real_rows(100)
    ratings = [str(value) for value in real["rating"]]
    ratings[7], ratings[9], ratings[11] = "five", "4.0", "great"

    rows = accepted(_parquet({**real, "rating": ratings})).rows

    assert rows.rows_dropped == {"unparseable_rating": 1}
    assert rows.first_dropped_rows == {"unparseable_rating": [11]}
    assert rows.table.column("rating").to_pylist()[7] == 5 and rows.table.column("rating").to_pylist()[8] == 4


def test_a_parquet_file_whose_text_is_a_number_is_refused() -> None:
    real = _real_rows(10)

    rejection = rejected(_parquet({**real, "text": list(range(10))})).rejection

    assert rejection.check == "columns" and "int64" in rejection.reason


def test_a_parquet_file_above_the_size_limit_is_checked_from_its_footer_and_chunked() -> None:
    data = _parquet(_real_rows(1000))

    verdict = examine(data, max_size_bytes=len(data) // 2)

    assert isinstance(verdict, Oversized) and verdict.detected.format == "parquet"


def test_configured_layouts_reach_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    # The polarity example of layouts.json, configured, reads a Zhang et al. style file with its 1/2 labels.
    monkeypatch.setenv(
        "REVIEWS_VALIDATOR_LAYOUTS",
        json.dumps(
            [
                {
                    "name": "amazon-polarity-csv",
                    "match": {"headerless_column_count": 3, "formats": ["csv"]},
                    "column_names": ["label", "title", "text"],
                    "mapping": {"title": "title", "text": "text", "rating": "label"},
                    "rating_map": {"1": 1, "2": 5},
                }
            ]
        ),
    )
    data = b'"2","Stuning even for the non-gamer","This sound track was beautiful!"\n"1","Meh","Not for me."\n'
    verdict = examine_file(
        InMemoryBytes(data), dataset="train", limits=ValidatorSettings(layout_settings=LayoutSettings())
    )

    assert isinstance(verdict, Accepted)
    assert verdict.rows.table.column("rating").to_pylist() == [5, 1]


def test_a_part_is_read_in_the_dialect_of_the_file_it_was_cut_from() -> None:
    # Given a part of a semicolon export holding no quoted field, but one quote opened by mistake
    from services.validator.records import Dialect

    rows = list(csv.reader(io.StringIO(NANNYML.read_text(encoding="utf-8"), newline="")))[:200]
    plain = [[value.replace(";", ",").replace('"', "") for value in row] for row in rows]
    lines = [";".join(row) for row in plain]
    lines[100] = lines[100].replace(";", ';"', 1)
    part = ("\n".join(lines) + "\n").encode()

    # When it is read in the dialect found in the whole file (quoted with ")
    verdict = examine_file(InMemoryBytes(part), dataset="train", limits=limits(), root_dialect=Dialect(";", '"'))

    # Then that dialect is used, and the line with the stray quote is the one malformed record
    assert isinstance(verdict, Accepted), verdict
    assert (verdict.detected.delimiter, verdict.detected.quoting) == (";", True)
    assert verdict.rows.rows_dropped == {"malformed_record": 1} and verdict.rows.malformed_lines == [101]


def _beauty_records(count: int) -> list[dict[str, object]]:
    import json

    return [json.loads(line) for line in BEAUTY.read_text(encoding="utf-8").splitlines()[:count]]


@pytest.mark.parametrize("shape", ["array", "object-holding-an-array", "pretty-printed-objects", "array-lines"])
def test_json_documents_and_array_lines_are_read_like_json_lines(shape: str) -> None:
    import json

    records = _beauty_records(60)
    keys = ["reviewText", "overall", "summary"]
    if shape == "array":
        data = json.dumps(records, indent=1)
    elif shape == "object-holding-an-array":
        data = json.dumps({"source": "export", "reviews": records})
    elif shape == "pretty-printed-objects":
        data = "\n".join(json.dumps(record, indent=2) for record in records)
    else:
        data = "\n".join(json.dumps(row) for row in [keys, *([record.get(key) for key in keys] for record in records)])

    rows = accepted(data.encode()).rows

    expected = [record["reviewText"] for record in records if str(record.get("reviewText") or "").strip()]
    assert rows.table.column("text").to_pylist() == expected
    assert rows.rows_in == 60
    assert rows.table.column("rating").to_pylist()[:3] == [int(str(record["overall"])[0]) for record in records[:3]]


def test_json_lines_whose_lines_are_arrays_without_names_are_refused_saying_so() -> None:
    import json

    data = "\n".join(json.dumps([record.get("reviewText"), record.get("overall")]) for record in _beauty_records(20))

    rejection = rejected(data.encode()).rejection

    assert rejection.check == "format" and "lines are arrays" in rejection.reason and "column names" in rejection.reason
