"""The variant corpus: real review files as other tools write them, and what the validator must make of each.

Three kinds of test:
- the generator's own checks: Python's csv, given a variant's true dialect, reads back exactly the
  records the variant claims to hold (nothing here runs the validator);
- the validator's verdict on every variant, against the outcome computed from the truth;
- a differential check: whatever Python's csv reads cleanly from a delimited variant, the validator keeps.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter

import pytest

from reviews_pipeline.reliability.variants import (
    SOURCES,
    Expected,
    Refused,
    Variant,
    build_corpus,
    decoded_text,
    line_of,
    normalise_text,
    python_csv_records,
    split_column_name,
)
from services.validator.validation import Accepted, InMemoryBytes, Rejected, ValidatorSettings, Verdict, examine_file
from shared.events import Dataset

CORPUS = build_corpus()
DELIMITED = [variant for variant in CORPUS if variant.delimited]


def by_name(variants: list[Variant]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("variant", variants, ids=[variant.name for variant in variants])


@pytest.fixture(autouse=True)
def only_the_variants_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdict depends on the variant's own settings, never on the environment running the tests."""
    for name in list(os.environ):
        if name.startswith("REVIEWS_VALIDATOR_"):
            monkeypatch.delenv(name)


def examine(variant: Variant, dataset: Dataset | None = None) -> Verdict:
    return examine_file(
        InMemoryBytes(variant.content), dataset=dataset or variant.dataset, limits=ValidatorSettings(**variant.settings)
    )


def kept_texts(verdict: Accepted) -> list[str]:
    return [normalise_text(text) for text in verdict.rows.table.column("text").to_pylist()]


# -- the generator ------------------------------------------------------------------------------


def test_every_source_has_at_least_15_variants_with_unique_names() -> None:
    per_source = Counter(variant.source for variant in CORPUS)
    assert set(per_source) == {source.name for source in SOURCES}
    assert min(per_source.values()) >= 15, per_source
    assert len({variant.name for variant in CORPUS}) == len(CORPUS)


def test_the_corpus_is_the_same_on_every_build() -> None:
    # Given a second build, bypassing the cache
    again = build_corpus.__wrapped__()
    # Then every variant has the same bytes and expectations
    assert [(variant.name, variant.content, variant.expected) for variant in again] == [
        (variant.name, variant.content, variant.expected) for variant in CORPUS
    ]


@by_name([variant for variant in DELIMITED if variant.stray_quote_offset is None])
def test_python_csv_with_the_true_dialect_reads_back_every_record(variant: Variant) -> None:
    assert variant.dialect is not None
    # When the decoded content is read with the true dialect, preamble and header rows skipped
    records = [tuple(record) for _, record in python_csv_records(decoded_text(variant), variant.dialect)]
    # Then it holds exactly the truth rows (and any injected corrupt records)
    assert records == list(variant.records)
    header = [
        tuple(record) for _, record in python_csv_records(decoded_text(variant), variant.dialect, skip_header=False)
    ]
    assert header[: len(variant.header)] == list(variant.header)


@by_name([variant for variant in DELIMITED if variant.stray_quote_offset is not None])
def test_a_stray_quote_is_the_only_thing_wrong_and_it_misleads_python_csv(variant: Variant) -> None:
    assert variant.dialect is not None and variant.stray_quote_offset is not None
    text = decoded_text(variant)
    offset = variant.stray_quote_offset
    assert text[offset] == '"'
    # Given the quote taken out again, the file reads back exactly
    mended = text[:offset] + text[offset + 1 :]
    assert [tuple(record) for _, record in python_csv_records(mended, variant.dialect)] == list(variant.records)
    # With it, the record on its line gets the wrong number of fields
    line = line_of(text, offset)
    misread = dict(python_csv_records(text, variant.dialect))
    assert len(misread[line]) != variant.field_count


@by_name([variant for variant in CORPUS if variant.kind.startswith("json")])
def test_json_variants_hold_one_object_per_row_and_the_broken_line_is_not_json(variant: Variant) -> None:
    assert isinstance(variant.expected, Expected)
    text = variant.content.decode("utf-8")
    if variant.kind == "json-array":
        objects = json.loads(text)
        assert isinstance(objects, list) and all(isinstance(item, dict) for item in objects)
        assert len(objects) == variant.expected.rows_in
        return
    parsed = []
    for line in text.splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            parsed.append(None)
    assert len(parsed) == variant.expected.rows_in
    assert parsed.count(None) == variant.expected.rows_dropped.get("malformed_record", 0)


def test_expected_outcomes_add_up_and_follow_the_truth() -> None:
    for variant in CORPUS:
        if isinstance(variant.expected, Expected):
            expected = variant.expected
            assert expected.rows_in == expected.rows_out + sum(expected.rows_dropped.values()), variant.name
            assert expected.rows_out == len(expected.texts), variant.name
    # Re-encoding, re-delimiting or compressing a source changes nothing in what must be kept.
    for source in SOURCES:
        variants = {variant.kind: variant.expected for variant in CORPUS if variant.source == source.name}
        for kind in ("semicolon", "tab", "utf16-bom", "preamble", "two-row-header", "gzip-named-txt", "json-array"):
            assert variants[kind] == variants["comma"], (source.name, kind)


def test_the_gzip_variant_is_the_comma_variant_compressed() -> None:
    variants = {variant.name: variant for variant in CORPUS}
    for source in SOURCES:
        compressed = variants[f"{source.name}/gzip-named-txt"]
        assert compressed.content[:2] == b"\x1f\x8b" and compressed.file_name.endswith(".txt")
        assert gzip.decompress(compressed.content) == variants[f"{source.name}/comma"].content


@pytest.mark.parametrize(
    ("name", "halves"),
    [
        ("review_body", ("review", "body")),
        ("reviews.text", ("reviews", "text")),
        ("reviewText", ("review", "Text")),
        ("HelpfulnessNumerator", ("Helpfulness", "Numerator")),
        ("Score", ("", "Score")),
        ("asin", ("", "asin")),
    ],
)
def test_a_two_row_header_splits_each_name_at_its_first_boundary(name: str, halves: tuple[str, str]) -> None:
    assert split_column_name(name) == halves


# -- the validator on every variant -------------------------------------------------------------


@by_name(list(CORPUS))
def test_the_validator_gives_each_variant_its_expected_outcome(variant: Variant) -> None:
    verdict = examine(variant)
    if isinstance(variant.expected, Refused):
        assert isinstance(verdict, Rejected), verdict
        assert verdict.rejection.check == variant.expected.check, verdict.rejection
        for words in variant.expected.words:
            assert words in verdict.rejection.reason, verdict.rejection
        return
    assert isinstance(verdict, Accepted), verdict
    expected = variant.expected
    rows = verdict.rows
    assert (rows.rows_in, rows.rows_out, rows.rows_dropped) == (
        expected.rows_in,
        expected.rows_out,
        expected.rows_dropped,
    )
    assert kept_texts(verdict) == list(expected.texts)


# Every delimited variant but those that must be refused (they keep nothing by design). The stray-quote
# variants are in: Python's csv misreads the row with the stray quote (that is how it was chosen), and
# whatever else it reads with the right number of fields the validator must keep too.
DIFFERENTIAL = [variant for variant in DELIMITED if isinstance(variant.expected, Expected)]


@by_name(DIFFERENTIAL)
def test_the_validator_keeps_every_record_python_csv_reads_cleanly(variant: Variant) -> None:
    assert variant.dialect is not None
    # Given the records Python's csv reads with the right number of fields and a text
    clean = Counter(
        normalise_text(record[variant.text_field])
        for _, record in python_csv_records(decoded_text(variant), variant.dialect)
        if len(record) == variant.field_count and record[variant.text_field].strip()
    )
    # When the validator reads the file as inference data (no rating needed)
    verdict = examine(variant, dataset="inference")
    # Then it keeps every one of them, with the same text
    assert isinstance(verdict, Accepted), verdict
    missing = clean - Counter(kept_texts(verdict))
    assert not missing, f"{sum(missing.values())} records lost, e.g. {next(iter(missing))[:200]!r}"
