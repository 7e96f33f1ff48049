"""Variants of the real review files, as users bring them from other tools, each with the outcome it must have.

The first `ROWS_PER_SOURCE` records of each real file with star ratings are read with an independent
reader (the csv and json modules) and the file's true dialect: that is the source's truth. Each
source is then re-written in every way below; a variant holds its bytes, the settings it needs, its
true dialect (for delimited text) and what the validator must make of it, computed here from the
truth by the validator's contract (never by running the validator):

- a data row is a record: header rows, preamble lines and blank lines are not rows;
- a row is dropped under its first reason, in this order: `malformed_record` (the wrong number of
  fields, a stray-quote line, a JSON line that is not a JSON object), `empty_text`, and for training
  files `missing_rating`, `unparseable_rating`, `rating_not_whole`, `rating_out_of_range`;
- ratings are read from `4`, `4.0`, `"4"`, `4 stars`, `4 out of 5` and `four`;
- texts are compared with CRLF and CR turned into LF and surrounding whitespace stripped;
- rows_in = rows_out + the rows dropped.

Everything is built in memory and is the same on every run (the random choices are seeded).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from services.validator.reading import DropReason
from shared.events import Dataset

from .inputs import DEFAULT_DATA_DIR

ROWS_PER_SOURCE = 300
SEED = 20240301


# -- the sources and their truth ----------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """How a delimited file is truly written: csv.reader's arguments, and what surrounds the records."""

    delimiter: str = ","
    quotechar: str = '"'
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL
    """csv.QUOTE_MINIMAL, QUOTE_ALL, QUOTE_NONNUMERIC or QUOTE_NONE."""
    escapechar: str | None = None
    doublequote: bool = True
    skipinitialspace: bool = False
    lineterminator: str = "\n"
    encoding: str = "utf-8"
    preamble_lines: int = 0
    """Lines before the header (banner lines and the blank line after them)."""
    header_rows: int = 1
    """Records that make up the header."""

    def reader_arguments(self) -> dict[str, Any]:
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            "quoting": self.quoting,
            "escapechar": self.escapechar,
            "doublequote": self.doublequote,
            "skipinitialspace": self.skipinitialspace,
        }


@dataclass(frozen=True)
class Source:
    """A real review file, its true dialect and its text, rating and title columns."""

    name: str
    path: str
    """Relative to the data folder."""
    text: str
    rating: str
    title: str | None
    dialect: Dialect | None = None
    """None for JSON lines."""
    column_names: tuple[str, ...] = ()
    """Names of a headerless file's columns."""


SOURCES = (
    Source(
        "aws-gift-card",
        "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv",
        text="review_body",
        rating="star_rating",
        title="review_headline",
        dialect=Dialect(delimiter="\t", quoting=csv.QUOTE_NONE),
    ),
    Source(
        "marc-en",
        "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv",
        text="review_body",
        rating="stars",
        title=None,
        dialect=Dialect(header_rows=0),
        column_names=("index", "review_body", "stars"),
    ),
    Source(
        "marc-es",
        "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv",
        text="review_body",
        rating="stars",
        title=None,
        dialect=Dialect(header_rows=0),
        column_names=("index", "review_body", "stars"),
    ),
    Source(
        "marc-nannyml",
        "marc-en-nannyml-reference/amazon_reviews_reference.csv",
        text="text",
        rating="stars",
        title="review_title",
        dialect=Dialect(),
    ),
    Source(
        "mcauley2014-books",
        "mcauley-category-samples-keithgalli/category__Books_small.json",
        text="reviewText",
        rating="overall",
        title="summary",
    ),
    Source(
        "mcauley2014-electronics",
        "mcauley-category-samples-keithgalli/category__Electronics_small.json",
        text="reviewText",
        rating="overall",
        title="summary",
    ),
    Source(
        "mcauley2018-beauty",
        "mcauley2018-all-beauty-5core/All_Beauty_5.json",
        text="reviewText",
        rating="overall",
        title="summary",
    ),
    Source(
        "mcauley2018-fashion",
        "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json",
        text="reviewText",
        rating="overall",
        title="summary",
    ),
    Source(
        "amazon-alexa",
        "amazon-alexa/amazon_alexa.tsv",
        text="verified_reviews",
        rating="rating",
        title=None,
        dialect=Dialect(delimiter="\t", encoding="utf-8-sig"),
    ),
    Source(
        "datafiniti",
        "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv",
        text="reviews.text",
        rating="reviews.rating",
        title="reviews.title",
        dialect=Dialect(encoding="utf-8-sig"),
    ),
    Source(
        "fine-food",
        "fine-food-reviews-first1000/Reviews.csv",
        text="Text",
        rating="Score",
        title="Summary",
        dialect=Dialect(encoding="utf-8-sig"),
    ),
)
"""Every real file with star ratings 1–5 but two: the malformed amazon-polarity CSV and the UCI 0/1 sentences."""


@dataclass(frozen=True)
class Truth:
    """A source's first records: its column names and every value as a string, and the objects of JSON lines."""

    source: Source
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    objects: tuple[dict[str, Any], ...]
    """The records as JSON objects: the originals for JSON lines, the string values for delimited files."""


def as_string(value: Any) -> str:
    """A JSON value as the string a delimited file holds for it."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def read_truth(source: Source, data_dir: Path = DEFAULT_DATA_DIR, rows: int = ROWS_PER_SOURCE) -> Truth:
    path = data_dir / source.path
    if source.dialect is None:
        objects = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:rows]
        columns = tuple(dict.fromkeys(key for record in objects for key in record))
        values = tuple(tuple(as_string(record.get(column)) for column in columns) for record in objects)
        return Truth(source, columns, values, tuple(objects))
    dialect = source.dialect
    text = path.read_text(encoding=dialect.encoding)
    records = [record for record in csv.reader(io.StringIO(text, newline=""), **dialect.reader_arguments()) if record]
    if dialect.header_rows == 0:
        header, data = source.column_names, records[:rows]
    else:
        header, data = tuple(records[0]), records[1 : rows + 1]
    assert all(len(record) == len(header) for record in data), f"{source.name}: a record of another width"
    values = tuple(tuple(record) for record in data)
    return Truth(source, header, values, tuple(dict(zip(header, row, strict=True)) for row in values))


# -- the contract: what must become of each row -------------------------------------------------


_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_RATING = re.compile(r"(?P<number>[-+]?(\d+(\.\d*)?|\.\d+))\s*(stars?|out\s+of\s+5)?")


def normalise_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def rating_value(written: str) -> float | None:
    """The number a rating is written as (`4`, `4.0`, `4 stars`, `4 out of 5`, `four`); None when it is none."""
    value = written.strip().lower()
    if value in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[value])
    match = _RATING.fullmatch(value)
    return float(match.group("number")) if match else None


def drop_reason(text: str | None, rating: str | None, dataset: Dataset) -> DropReason | None:
    """Why a well-formed row is dropped (None: it is kept)."""
    if text is None or not text.strip():
        return "empty_text"
    if dataset != "train":
        return None
    if rating is None or not rating.strip():
        return "missing_rating"
    value = rating_value(rating)
    if value is None:
        return "unparseable_rating"
    if value != int(value):
        return "rating_not_whole"
    if not 1 <= value <= 5:
        return "rating_out_of_range"
    return None


@dataclass(frozen=True)
class Expected:
    """An accepted file: its row account and the texts it keeps, normalised, in order."""

    rows_in: int
    rows_out: int
    rows_dropped: dict[str, int]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    """A file that must be rejected by `check`, with a reason holding `words`."""

    check: str
    words: tuple[str, ...]


Row = tuple[str | None, str | None] | None
"""A data row's (text, rating), or None for a malformed record."""


def expected_outcome(rows: Sequence[Row], dataset: Dataset = "train") -> Expected:
    dropped: Counter[str] = Counter()
    kept = []
    for row in rows:
        reason: DropReason | None = "malformed_record" if row is None else drop_reason(*row, dataset)
        if reason is not None:
            dropped[reason] += 1
        elif row is not None and row[0] is not None:
            kept.append(normalise_text(row[0]))
    return Expected(rows_in=len(rows), rows_out=len(kept), rows_dropped=dict(dropped), texts=tuple(kept))


# -- variants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One re-written source file and what must become of it."""

    name: str
    """`<source>/<kind>`, unique."""
    source: str
    kind: str
    content: bytes
    expected: Expected | Refused
    dataset: Dataset = "train"
    settings: Mapping[str, Any] = field(default_factory=dict)
    """ValidatorSettings fields the file needs (e.g. a fallback encoding)."""
    file_name: str = "reviews.csv"
    """What a user would call it; the validator goes by content only."""
    compression: Literal["none", "gzip"] = "none"
    dialect: Dialect | None = None
    """The true dialect of delimited text; None for JSON."""
    header: tuple[tuple[str, ...], ...] = ()
    records: tuple[tuple[str, ...], ...] = ()
    """Delimited text: every data record as written, injected corrupt records included."""
    text_field: int = 0
    """Position of the text among a record's fields."""
    stray_quote_offset: int | None = None
    """Where, in the decoded text, the stray quote in front of a text field is."""

    @property
    def delimited(self) -> bool:
        return self.dialect is not None

    @property
    def field_count(self) -> int:
        return len(self.header[-1]) if self.header else 0


@dataclass(frozen=True)
class Table:
    """Delimited content before it is written: header rows, records, and where the text and rating are."""

    header: tuple[tuple[str, ...], ...]
    records: tuple[tuple[str, ...], ...]
    text: int
    rating: int
    malformed: frozenset[int] = frozenset()
    """Positions of records that must be dropped as malformed."""

    def rows(self) -> list[Row]:
        width = len(self.header[-1])
        return [
            None if position in self.malformed or len(record) != width else (record[self.text], record[self.rating])
            for position, record in enumerate(self.records)
        ]


def _table(truth: Truth) -> Table:
    source = truth.source
    return Table(
        header=(truth.columns,),
        records=truth.rows,
        text=truth.columns.index(source.text),
        rating=truth.columns.index(source.rating),
    )


# Writing delimited text.


class _RecordWriter:
    """csv.writer, one record at a time, with any line terminator.

    Python's writer quotes a field holding a line break only when the break is in its own
    lineterminator, so records are written with CRLF (quoting fields with either) and joined here.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(
            self._buffer,
            delimiter=dialect.delimiter,
            quotechar=dialect.quotechar,
            quoting=dialect.quoting,
            escapechar=dialect.escapechar,
            doublequote=dialect.doublequote,
            lineterminator="\r\n",
        )

    def line(self, record: Sequence[str]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(record)
        return self._buffer.getvalue()[:-2]


def _comma_space_line(record: Sequence[str]) -> str:
    """Fields joined by ", ", quoted when a reader skipping initial spaces would misread them."""

    def written(value: str) -> str:
        if any(char in value for char in ',"\r\n') or value.startswith(" "):
            return '"' + value.replace('"', '""') + '"'
        return value

    return ", ".join(written(value) for value in record)


def _lines(table: Table, dialect: Dialect) -> list[str]:
    if dialect.skipinitialspace:
        return [_comma_space_line(record) for record in (*table.header, *table.records)]
    writer = _RecordWriter(dialect)
    return [writer.line(record) for record in (*table.header, *table.records)]


def _encoded(lines: Sequence[str], dialect: Dialect) -> bytes:
    return "".join(line + dialect.lineterminator for line in lines).encode(dialect.encoding)


def _delimited(
    truth: Truth,
    kind: str,
    table: Table,
    dialect: Dialect,
    *,
    preamble: Sequence[str] = (),
    file_name: str = "reviews.csv",
    settings: Mapping[str, Any] | None = None,
    expected: Expected | Refused | None = None,
) -> Variant:
    dialect = replace(dialect, preamble_lines=len(preamble), header_rows=len(table.header))
    content = _encoded([*preamble, *_lines(table, dialect)], dialect)
    return Variant(
        name=f"{truth.source.name}/{kind}",
        source=truth.source.name,
        kind=kind,
        content=content,
        expected=expected if expected is not None else expected_outcome(table.rows()),
        settings=settings or {},
        file_name=file_name,
        dialect=dialect,
        header=table.header,
        records=table.records,
        text_field=table.text,
    )


# What is done to a table.

_BANNERS = (
    "Exported from ReviewHub on 2024-03-01",
    "Generated by SellerBoard Reviews Export v2.3",
    "Source: Amazon customer reviews, all marketplaces",
    "Filter: all ratings; all dates",
    "Report owner: marketing analytics",
)
_TEXT_NAMES = ("review_body", "content", "Review Text", "reviewText", "review_text", "body", "comment")
_RATING_NAMES = ("stars", "Score", "overall", "star_rating", "Rating", "review_rating")
_TITLE_NAMES = ("review_title", "Summary", "headline", "review_headline", "summary", "Title")
_EXTRA_COLUMNS = ("helpful_votes", "product_id", "review_date", "export_batch", "country", "source_url")
_CASE_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _rng(truth: Truth, kind: str) -> random.Random:
    return random.Random(f"{SEED}:{truth.source.name}:{kind}")


def split_column_name(name: str) -> tuple[str, str]:
    """A column name as two header cells: split at its first `_`, `.` or case boundary ("" above when it has none)."""
    separator = re.search(r"[_.]", name)
    boundary = _CASE_BOUNDARY.search(name)
    cuts = [(match.start(), match.end()) for match in (separator, boundary) if match is not None]
    if not cuts:
        return "", name
    start, end = min(cuts)
    return name[:start], name[end:]


def _two_row_header(table: Table) -> Table:
    halves = [split_column_name(name) for name in table.header[0]]
    return replace(table, header=(tuple(top for top, _ in halves), tuple(bottom for _, bottom in halves)))


def _subset(truth: Truth, table: Table) -> Table:
    source = truth.source
    wanted = {source.text, source.rating, source.title} - {None}
    keep = [position for position, name in enumerate(truth.columns) if name in wanted]
    names = tuple(truth.columns[position] for position in keep)
    return Table(
        header=(names,),
        records=tuple(tuple(record[position] for position in keep) for record in table.records),
        text=names.index(source.text),
        rating=names.index(source.rating),
    )


def renamed_columns(truth: Truth) -> dict[str, str]:
    """The text, rating and title columns under names other datasets use: one mapping per source."""
    rng = _rng(truth, "renamed")
    taken = {name.lower() for name in truth.columns}
    source = truth.source
    renames = {}
    for column, pool in ((source.text, _TEXT_NAMES), (source.rating, _RATING_NAMES), (source.title, _TITLE_NAMES)):
        if column is None:
            continue
        choice = rng.choice([name for name in pool if name.lower() not in taken])
        taken.add(choice.lower())
        renames[column] = choice
    return renames


def _renamed(truth: Truth, table: Table) -> Table:
    renames = renamed_columns(truth)
    return replace(table, header=(tuple(renames.get(name, name) for name in table.header[0]),))


def _extra_columns(truth: Truth, table: Table) -> Table:
    """Three columns other tools add: one first, one in the middle, one last."""
    rng = _rng(truth, "extra-columns")
    first, middle, last = [name for name in _EXTRA_COLUMNS if name not in truth.columns][:3]
    columns = list(table.header[0])
    at_middle = len(columns) // 2 + 1

    def extended(record: Sequence[str], values: tuple[str, str, str]) -> tuple[str, ...]:
        fields = [values[0], *record]
        fields.insert(at_middle, values[1])
        return (*fields, values[2])

    def values_for(name: str) -> str:
        if name in ("helpful_votes", "export_batch"):
            return str(rng.randint(0, 40))
        if name == "product_id":
            return "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
        if name == "review_date":
            return f"20{rng.randint(15, 23)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if name == "country":
            return rng.choice(("US", "GB", "DE", "ES", "CA"))
        return f"https://www.amazon.com/review/R{rng.randint(10**9, 10**10 - 1)}"

    header = extended(columns, (first, middle, last))
    records = tuple(
        extended(record, (values_for(first), values_for(middle), values_for(last))) for record in table.records
    )
    return Table(
        header=(header,),
        records=records,
        text=header.index(truth.source.text),
        rating=header.index(truth.source.rating),
    )


def _corrupt_records(table: Table) -> Table:
    """Three injected records of the wrong width: before the first row, in the middle and after the last."""
    records = list(table.records)
    middle = len(records) // 2
    last = (*records[-1], "unexpected field")
    records.insert(middle, records[middle][:-1])
    records.insert(0, (*records[0], "unexpected field"))
    records.append(last)
    malformed = frozenset({0, middle + 1, len(records) - 1})
    return replace(table, records=tuple(records), malformed=malformed)


def _needing_quotes(truth: Truth, table: Table) -> Table:
    """About 5 % of the texts given what makes a field need quotes: a comma, a quote, a line break."""
    rng = _rng(truth, "needs-quotes")
    candidates = [position for position, record in enumerate(table.records) if record[table.text].strip()]
    chosen = sorted(rng.sample(candidates, max(3, len(candidates) // 20)))
    endings = (", really", ' like "this"', "\nsecond line")
    records = [list(record) for record in table.records]
    for turn, position in enumerate(chosen):
        records[position][table.text] += endings[turn % len(endings)]
    return replace(table, records=tuple(tuple(record) for record in records))


def _rating_spellings(truth: Truth, table: Table) -> Table:
    """Ratings as other tools write them (`4.0`, `4 stars`, `4 out of 5`, `four`), and a few that are not ratings."""
    rng = _rng(truth, "rating-spellings")
    words = {value: word for word, value in _NUMBER_WORDS.items()}

    def spelled(written: str, turn: int) -> str:
        value = rating_value(written)
        if value is None or value != int(value) or not 1 <= value <= 5:
            return written
        stars = int(value)
        spellings = (
            str(stars),
            f"{stars}.0",
            f"{stars} star" if stars == 1 else f"{stars} stars",
            f"{stars} out of 5",
            words[stars],
        )
        return spellings[turn % len(spellings)]

    records = [list(record) for record in table.records]
    for turn, record in enumerate(records):
        record[table.rating] = spelled(record[table.rating], turn)
    candidates = [position for position, record in enumerate(records) if record[table.text].strip()]
    for position, bad in zip(sorted(rng.sample(candidates, 5)), ("", "4.5", "0", "6", "good"), strict=True):
        records[position][table.rating] = bad
    return replace(table, records=tuple(tuple(record) for record in records))


def _stray_quote(truth: Truth, table: Table, dialect: Dialect) -> Variant:
    """A `"` before an unquoted text in a middle row, where it makes Python's csv misread the record.

    Rows are tried from the middle outwards until one is found whose record, read whole with the true
    dialect, gets the wrong number of fields: otherwise the quote would not be a stray quote at all.
    """
    lines = _lines(table, dialect)
    headed = len(table.header)
    width = len(table.header[-1])
    middle = len(table.records) // 2
    writer = _RecordWriter(dialect)
    marker = "STRAYQUOTEMARKER"
    for position in sorted(range(1, len(table.records) - 1), key=lambda at: (abs(at - middle), at)):
        record = table.records[position]
        text = record[table.text]
        if not text.strip() or writer.line([text]) != text:
            continue  # empty, or written quoted: a quote in front of it would not be stray
        marked = list(record)
        marked[table.text] = marker
        line = writer.line(marked)
        before = "".join(written + dialect.lineterminator for written in lines[: headed + position])
        offset = len(before) + line.index(marker)
        content = before + line.replace(marker, '"' + text, 1) + dialect.lineterminator
        content += "".join(written + dialect.lineterminator for written in lines[headed + position + 1 :])
        if _misread_at(content, dialect, offset, width):
            variant = _delimited(truth, "stray-quote", replace(table, malformed=frozenset({position})), dialect)
            return replace(variant, content=content.encode(dialect.encoding), stray_quote_offset=offset)
    raise LookupError(f"{truth.source.name}: no row where a stray quote misleads Python's csv")


def line_of(text: str, offset: int) -> int:
    """The line (from 1) holding `offset`, counting CRLF, CR and LF as line ends as the csv module does."""
    return len(_LINE_BREAK.findall(text, 0, offset)) + 1


def _misread_at(text: str, dialect: Dialect, offset: int, width: int) -> bool:
    """Whether Python's csv, reading all of `text`, gives the record on the line of `offset` another width."""
    line = line_of(text, offset)
    try:
        for start, record in python_csv_records(text, dialect, skip_header=False):
            if start == line:
                return len(record) != width
    except csv.Error:
        return False  # unreadable rather than misread: try another row
    return False


def python_csv_records(text: str, dialect: Dialect, *, skip_header: bool = True) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record Python's csv reads in `text` with the true dialect.

    Preamble lines are skipped first, blank lines are not records, and (with `skip_header`) neither
    are the header rows. Lines are counted from 1 in the whole text.
    """
    body = text
    for _ in range(dialect.preamble_lines):
        match = _LINE_BREAK.search(body)
        body = body[match.end() :] if match else ""
    reader = csv.reader(io.StringIO(body, newline=""), **dialect.reader_arguments())
    start = 1
    header_rows = dialect.header_rows if skip_header else 0
    for record in reader:
        if record:
            if header_rows:
                header_rows -= 1
            else:
                yield start + dialect.preamble_lines, record
        start = reader.line_num + 1


def decoded_text(variant: Variant) -> str:
    """A delimited variant's content as text, with its true encoding."""
    assert variant.dialect is not None, f"{variant.name} is not delimited text"
    content = gzip.decompress(variant.content) if variant.compression == "gzip" else variant.content
    return content.decode(variant.dialect.encoding)


# JSON.


def _json_rows(truth: Truth, objects: Sequence[dict[str, Any] | None]) -> list[Row]:
    source = truth.source
    return [
        None
        if record is None
        else (
            None if record.get(source.text) is None else as_string(record.get(source.text)),
            None if record.get(source.rating) is None else as_string(record.get(source.rating)),
        )
        for record in objects
    ]


def _json_variants(truth: Truth) -> list[Variant]:
    lines = [json.dumps(record, ensure_ascii=False) for record in truth.objects]
    broken_at = len(lines) // 2
    broken = [*lines]
    broken[broken_at] = lines[broken_at][: len(lines[broken_at]) // 2]
    assert not _is_json(broken[broken_at])
    objects: list[dict[str, Any] | None] = list(truth.objects)
    name = truth.source.name
    return [
        Variant(
            name=f"{name}/jsonl",
            source=name,
            kind="jsonl",
            content="".join(line + "\n" for line in lines).encode("utf-8"),
            expected=expected_outcome(_json_rows(truth, objects)),
            file_name="reviews.jsonl",
        ),
        Variant(
            name=f"{name}/jsonl-broken-line",
            source=name,
            kind="jsonl-broken-line",
            content="".join(line + "\n" for line in broken).encode("utf-8"),
            expected=expected_outcome(_json_rows(truth, [*objects[:broken_at], None, *objects[broken_at + 1 :]])),
            file_name="reviews.jsonl",
        ),
        Variant(
            name=f"{name}/json-array",
            source=name,
            kind="json-array",
            content=json.dumps(list(truth.objects), ensure_ascii=False, indent=2).encode("utf-8"),
            expected=expected_outcome(_json_rows(truth, objects)),
            file_name="reviews.json",
        ),
    ]


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


# The whole corpus.

COMMA = Dialect()


def _encodes(values: Sequence[str], encoding: str) -> bool:
    try:
        "".join(values).encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _cp1252_variants(truth: Truth, table: Table) -> list[Variant]:
    """cp1252, as Excel on Windows saves "CSV": the rows whose every character it encodes, none replaced.

    None when those rows would be valid UTF-8 all the same (ASCII, or cp1252 bytes that happen to
    spell UTF-8, as the mojibake "ÃŽ" does): such a file tests no fallback.
    """
    records = tuple(record for record in table.records if _encodes(record, "cp1252"))
    encodable = replace(table, records=records)
    cp1252 = replace(COMMA, encoding="cp1252")
    content = _encoded(_lines(encodable, cp1252), cp1252)
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        refused = Refused("readability", ("not UTF-8",))
        return [
            _delimited(truth, "cp1252", encodable, cp1252, settings={"fallback_encoding": "cp1252"}),
            _delimited(truth, "cp1252-no-fallback", encodable, cp1252, expected=refused),
        ]
    return []


def source_variants(truth: Truth) -> list[Variant]:
    """Every variant of one source."""
    table = _table(truth)
    plain: list[tuple[str, Dialect, str]] = [
        ("comma", COMMA, "reviews.csv"),
        ("semicolon", replace(COMMA, delimiter=";"), "reviews.csv"),
        ("tab", replace(COMMA, delimiter="\t"), "reviews.tsv"),
        ("pipe", replace(COMMA, delimiter="|"), "reviews.txt"),
        ("space", replace(COMMA, delimiter=" "), "reviews.txt"),
        ("comma-space", replace(COMMA, skipinitialspace=True), "reviews.csv"),
        ("single-quote", replace(COMMA, quotechar="'"), "reviews.csv"),
        ("backslash-escape", replace(COMMA, escapechar="\\", doublequote=False), "reviews.csv"),
        ("quote-all", replace(COMMA, quoting=csv.QUOTE_ALL), "reviews.csv"),
        ("crlf", replace(COMMA, lineterminator="\r\n"), "reviews.csv"),
        ("cr", replace(COMMA, lineterminator="\r"), "reviews.csv"),
        ("utf8-bom", replace(COMMA, encoding="utf-8-sig"), "reviews.csv"),
        ("utf16-bom", replace(COMMA, encoding="utf-16"), "reviews.csv"),
    ]
    variants = [_delimited(truth, kind, table, dialect, file_name=name) for kind, dialect, name in plain]
    variants += _cp1252_variants(truth, table)
    rng = _rng(truth, "preamble")
    banners = rng.sample(_BANNERS, rng.choice((2, 3)))
    changed: list[tuple[str, Callable[[], Table]]] = [
        ("two-row-header", lambda: _two_row_header(table)),
        ("column-subset", lambda: _subset(truth, table)),
        ("renamed-columns", lambda: _renamed(truth, table)),
        ("extra-columns", lambda: _extra_columns(truth, table)),
        ("corrupt-records", lambda: _corrupt_records(table)),
        ("needs-quotes", lambda: _needing_quotes(truth, table)),
        ("rating-spellings", lambda: _rating_spellings(truth, table)),
    ]
    variants.append(_delimited(truth, "preamble", table, COMMA, preamble=[*banners, ""]))
    variants += [_delimited(truth, kind, build(), COMMA) for kind, build in changed]
    variants.append(_stray_quote(truth, table, COMMA))
    variants += _json_variants(truth)
    comma = variants[0]
    variants.append(
        replace(
            comma,
            name=f"{truth.source.name}/gzip-named-txt",
            kind="gzip-named-txt",
            content=gzip.compress(comma.content, mtime=0),
            compression="gzip",
            file_name="reviews.txt",
        )
    )
    return variants


@cache
def build_corpus(data_dir: Path = DEFAULT_DATA_DIR, rows: int = ROWS_PER_SOURCE) -> tuple[Variant, ...]:
    """Every variant of every source (built once per process)."""
    return tuple(variant for source in SOURCES for variant in source_variants(read_truth(source, data_dir, rows)))
