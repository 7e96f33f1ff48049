"""shared.layout: which inbound keys are accepted, and the shapes of the keys the pipeline writes."""

from __future__ import annotations

import pytest

from shared import layout
from shared.events import PartInfo
from shared.layout import UnsafeKeyError, parse_inbound_key

GIFT_CARD_KEY = "raw/train/amazon_reviews_us_Gift_Card_v1_00.tsv"
ROOT_ID = "5f1c0e2a9b7d4c3e8a6f1b2d3c4e5f60"


@pytest.mark.parametrize(
    ("key", "area", "dataset", "file_name"),
    [
        (GIFT_CARD_KEY, "raw", "train", "amazon_reviews_us_Gift_Card_v1_00.tsv"),
        ("raw/inference/reviews.jsonl.gz", "raw", "inference", "reviews.jsonl.gz"),
        (f"chunks/inference/{ROOT_ID}/part-00001.csv", "chunks", "inference", "part-00001.csv"),
        ("raw/train/2026/11/Kindle Store (ünïcode).csv", "raw", "train", "Kindle Store (ünïcode).csv"),
        ("raw/train/a..b.tsv", "raw", "train", "a..b.tsv"),
    ],
)
def test_real_inbound_keys_are_accepted_with_their_area_and_dataset(
    key: str, area: str, dataset: str, file_name: str
) -> None:
    # Given a key a user or the chunker really writes, When it is parsed, Then its place is named.
    inbound = parse_inbound_key(key)

    assert (inbound.key, inbound.area, inbound.dataset, inbound.file_name) == (key, area, dataset, file_name)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("raw/train/../../etc/passwd", "parent segment"),
        ("raw/train/../inference/x.csv", "parent segment that stays inside raw/"),
        ("raw/train/./x.csv", "dot segment"),
        ("../raw/train/x.csv", "leading parent segment"),
        ("/raw/train/x.csv", "absolute key"),
        ("raw\\train\\x.csv", "backslashes"),
        ("raw/train/sub\\..\\x.csv", "backslash traversal"),
        ("raw/train/x\x00.csv", "NUL"),
        ("raw/train/x\n.csv", "newline"),
        ("raw/train/x\r.csv", "carriage return"),
        ("raw/train/x\t.csv", "tab"),
        ("raw/train/x\x7f.csv", "DEL"),
        ("raw/train/x\x85.csv", "C1 next line"),
        ("processed/train/x.csv", "outside the inbound areas"),
        ("errors/train/raw/x.csv", "outside the inbound areas"),
        ("models/current/model.json", "outside the inbound areas"),
        ("rawx/train/x.csv", "prefix look-alike"),
        ("RAW/train/x.csv", "case variant of the area"),
        ("raw/test/x.csv", "unknown dataset folder"),
        ("raw/Train/x.csv", "case variant of the dataset"),
        ("chunks/validation/x.csv", "unknown dataset folder"),
        ("raw/train/", "no file name"),
        ("raw/train/sub/", "folder, not a file"),
        ("raw/train", "no file name"),
        ("raw/x.csv", "no dataset folder"),
        ("", "empty"),
        ("raw/train/" + "a" * 1015, "longer than 1024 bytes"),
        ("raw/train/" + "é" * 508, "longer than 1024 bytes once UTF-8 encoded"),
    ],
)
def test_unsafe_or_misplaced_keys_are_refused(key: str, why: str) -> None:
    # Given a key announced from outside that must not be read or written, Then it is refused.
    with pytest.raises(UnsafeKeyError):
        parse_inbound_key(key)


def test_a_key_of_exactly_1024_bytes_is_accepted() -> None:
    key = "raw/train/" + "a" * (1024 - len("raw/train/"))

    assert parse_inbound_key(key).dataset == "train"


def test_unsafe_key_error_is_a_value_error_so_callers_can_treat_it_as_bad_input() -> None:
    with pytest.raises(ValueError, match="segment"):
        parse_inbound_key("raw/train/../../etc/passwd")


def test_error_key_keeps_the_path_below_the_inbound_prefix_under_errors() -> None:
    assert layout.error_key("train", GIFT_CARD_KEY) == "errors/train/raw/amazon_reviews_us_Gift_Card_v1_00.tsv"
    assert (
        layout.error_key("inference", f"chunks/inference/{ROOT_ID}/part-00001.csv")
        == f"errors/inference/chunks/{ROOT_ID}/part-00001.csv"
    )


def test_error_key_refuses_an_unsafe_source_key_instead_of_building_a_path_from_it() -> None:
    with pytest.raises(UnsafeKeyError):
        layout.error_key("train", "raw/train/../../etc/passwd")


def test_report_sits_beside_the_moved_file() -> None:
    moved = layout.error_key("train", GIFT_CARD_KEY)

    assert layout.report_key(moved) == "errors/train/raw/amazon_reviews_us_Gift_Card_v1_00.tsv.report.json"


def test_chunk_keys_are_zero_padded_and_parse_back_as_inbound_chunks() -> None:
    key = layout.chunk_key("train", ROOT_ID, 7, ".tsv")

    assert key == f"chunks/train/{ROOT_ID}/part-00007.tsv"
    inbound = parse_inbound_key(key)
    assert (inbound.area, inbound.dataset) == ("chunks", "train")


def test_chunk_keys_sort_in_part_order() -> None:
    keys = [layout.chunk_key("inference", ROOT_ID, index, ".csv") for index in (10, 2, 100, 0)]

    assert sorted(keys) == [layout.chunk_key("inference", ROOT_ID, index, ".csv") for index in (0, 2, 10, 100)]


@pytest.mark.parametrize(
    ("part_index", "expected"),
    [
        (None, f"processed/train/{ROOT_ID}/part-00000.parquet"),
        (0, f"processed/train/{ROOT_ID}/part-00000.parquet"),
        (12, f"processed/train/{ROOT_ID}/part-00012.parquet"),
    ],
)
def test_processed_key_is_one_parquet_per_part_of_the_root_file(part_index: int | None, expected: str) -> None:
    assert layout.processed_key("train", ROOT_ID, part_index) == expected


def test_processed_keys_are_not_inbound_keys() -> None:
    # Output written by the validator must never re-enter validation.
    with pytest.raises(UnsafeKeyError):
        parse_inbound_key(layout.processed_key("inference", ROOT_ID, 3))


def test_a_processed_file_refused_later_moves_under_errors_processed() -> None:
    key = layout.processed_key("train", "abc", 3)

    assert layout.error_key("train", key) == "errors/train/processed/abc/part-00003.parquet"


@pytest.mark.parametrize(
    "key",
    [
        "processed/inference/abc/part-00000.parquet",
        "processed/train/../raw/x",
        "processed/train/a\nb",
        "processed/train/",
    ],
)
def test_processed_error_key_refuses_keys_outside_its_dataset_folder(key: str) -> None:
    with pytest.raises(layout.UnsafeKeyError):
        layout.processed_error_key("train", key)


def test_a_chunk_parts_metadata_reads_back_as_the_part_it_was_written_for() -> None:
    part = PartInfo(parent_file_id="parent", root_file_id="root", part_index=3, first_row_number=1200)

    metadata = layout.chunk_metadata(part, "correlation-1")

    assert layout.part_from_metadata(metadata) == part
    assert metadata[layout.CORRELATION_METADATA] == "correlation-1"
    incomplete = {name: value for name, value in metadata.items() if name != layout.PART_INDEX_METADATA}
    assert layout.part_from_metadata(incomplete) is None
