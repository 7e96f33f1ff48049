"""The chunker against moto (in-process): real review files split into parts under chunks/, S3 multipart
uploads held back until the ledger knows the part count, rejections, failures and redelivery.

Events the chunker publishes are read back from an SQS queue subscribed to the bus by a catch-all
rule, as a downstream consumer sees them.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from services.chunker.app import lambda_handler
from services.chunker.service import SourceUnavailableError, split_file
from services.chunker.splitting import ChunkerSettings
from shared import layout
from shared.events import DetectedFormat, FileChunked, FileOversized
from shared.ledger import BarrierState, FileLedger, FileRecord, file_id_for
from shared.publisher import EventPublisher
from shared.samples import sample_event, sqs_wrapped
from shared.storage import ObjectStore
from tests.data_paths import SHARED_DATA
from tests.integration.conftest import BUCKET, MotoStack, lambda_context

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

MiB = 1024 * 1024

DATA = SHARED_DATA
BOOKS = DATA / "mcauley-category-samples-keithgalli/category__Books_small.json"
GIFT_CARD = DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv"
MARC_EN = DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
MARC_ES = DATA / "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv"
BEAUTY = DATA / "mcauley2018-all-beauty-5core/All_Beauty_5.json"

CSV = DetectedFormat(format="csv", delimiter=",", layout="configured")
HEADER = ["reviewer_id", "review", "rating"]
# Small reads, so records straddle ranged reads; the rest as deployed.
SMALL_READS = ChunkerSettings(part_size_bytes=100_000, read_block_bytes=64 * 1024)


class Stack(MotoStack):
    """The stack, with the chunker's store, ledger and publisher, and files made oversized for it."""

    @property
    def store(self) -> ObjectStore:
        return ObjectStore(self.aws.s3, self.bucket)

    @property
    def publisher(self) -> EventPublisher:
        return EventPublisher(self.aws.events, self.bus, "chunker")

    def oversized(self, key: str, body: bytes, detected: DetectedFormat = CSV) -> FileOversized:
        """Upload `body` under raw/, record it in the ledger as the validator would, and say it is too big."""
        version_id = self.aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]
        file_id = file_id_for(BUCKET, key, version_id)
        self.ledger.register(
            FileRecord(
                file_id=file_id,
                root_file_id=file_id,
                correlation_id=file_id,
                bucket=BUCKET,
                key=key,
                version_id=version_id,
                size=len(body),
                dataset="train",
                origin="s3",
                status="chunking",
                stage="chunker",
            )
        )
        return FileOversized(
            correlation_id=file_id,
            file_id=file_id,
            root_file_id=file_id,
            dataset="train",
            bucket=BUCKET,
            key=key,
            version_id=version_id,
            size=len(body),
            max_size_bytes=1000,
            detected=detected,
        )

    def split(self, oversized: FileOversized, settings: ChunkerSettings = SMALL_READS) -> FileChunked | None:
        return split_file(oversized, settings, store=self.store, ledger=self.ledger, publisher=self.publisher)

    def chunk_keys(self) -> list[str]:
        return sorted(self.store.keys(layout.CHUNKS))

    def chunk_versions(self) -> list[str]:
        listing = self.aws.s3.list_object_versions(Bucket=BUCKET, Prefix=layout.CHUNKS)
        return sorted(item["Key"] for item in listing.get("Versions", []))

    def open_uploads(self) -> list[tuple[str, str]]:
        return self.store.open_multipart_uploads("")

    def read(self, key: str) -> bytes:
        return self.store.read_bytes(key)


@pytest.fixture(scope="module")
def stack_type() -> type[MotoStack]:
    return Stack


@pytest.fixture
def stack(pipeline: Stack) -> Stack:
    """The module's stack with an empty bucket (no open uploads either), a new ledger and a drained queue."""
    return pipeline


# -- real review files ----------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def multiline_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(multiline_review_rows())
    return out.getvalue().encode("utf-8")


def parsed_csv(data: bytes) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")) if row]


def assert_parts_rebuild_csv(stack: Stack, chunked: FileChunked, original: bytes) -> None:
    """Each part parses alone, with the header; together, in order, they are the original's rows."""
    expected = parsed_csv(original)[1:]
    rebuilt: list[list[str]] = []
    for index, part in enumerate(chunked.parts):
        assert part.part_index == index
        body = stack.read(part.key)
        assert len(body) == part.size
        rows = parsed_csv(body)
        assert rows[0] == HEADER
        assert part.rows == len(rows) - 1 > 0
        rebuilt.extend(rows[1:])
    assert rebuilt == expected
    assert chunked.rows_total == len(expected)


def quoted_newline_after(data: bytes, at_least: int) -> int:
    """Offset of a newline inside a quoted field holding doubled quotes, past `at_least`."""
    position = at_least
    while True:
        newline = data.index(b"\n", position)
        quotes_before = data.count(b'"', 0, newline)
        record_start = data.rindex(b'"', 0, newline)
        if quotes_before % 2 and b'""' in data[data.rindex(b"\n", 0, record_start) : newline]:
            return newline
        position = newline + 1


# -- splitting ------------------------------------------------------------------------------------


def test_a_quoted_multiline_csv_is_split_where_a_cut_would_have_fallen_inside_a_field(
    stack: Stack, multiline_csv: bytes
) -> None:
    # Given real reviews with quoted newlines and doubled quotes, and a part size (and a ranged-read
    # size) that ends exactly on a newline inside a quoted field
    inner_newline = quoted_newline_after(multiline_csv, 60_000)
    settings = ChunkerSettings(part_size_bytes=inner_newline + 1, read_block_bytes=inner_newline + 1)
    oversized = stack.oversized("raw/train/books_reviews.csv", multiline_csv)

    # When the chunker splits it
    chunked = stack.split(oversized, settings)

    # Then the first part runs past the target to the end of that record, and every part parses alone
    assert chunked is not None
    first = stack.read(chunked.parts[0].key)
    assert len(first) > inner_newline + 1
    assert multiline_csv.startswith(first)
    assert_parts_rebuild_csv(stack, chunked, multiline_csv)
    # And the parts are exactly the objects under the file's folder, named by layout, with no upload left open
    assert stack.chunk_keys() == [
        layout.chunk_key("train", oversized.root_file_id, index, ".csv") for index in range(len(chunked.parts))
    ]
    assert stack.open_uploads() == []


def test_parts_carry_the_part_information_the_receiver_reads(stack: Stack, multiline_csv: bytes) -> None:
    oversized = stack.oversized("raw/train/books_reviews.csv", multiline_csv)

    chunked = stack.split(oversized)

    assert chunked is not None
    rows_before = 0
    for part in chunked.parts:
        info = stack.store.head(part.key)
        assert info is not None
        assert info.metadata == {
            "parent-file-id": oversized.file_id,
            "root-file-id": oversized.root_file_id,
            "part-index": str(part.part_index),
            "first-row-number": str(rows_before),
            "correlation-id": oversized.correlation_id,
        }
        rows_before += part.rows
    # And FileChunked went out, the ledger knows the part count and where the parts are
    (published,) = stack.details("FileChunked")
    assert FileChunked.model_validate(published) == chunked
    record = stack.record(oversized.file_id)
    assert record.counters["validation_expected"] == len(chunked.parts)
    assert record.outputs["parts"] == str(len(chunked.parts))
    assert record.outputs["rows"] == str(chunked.rows_total)


def test_the_aws_tsv_without_quoting_is_split_on_lines(stack: Stack) -> None:
    # Given the AWS customer-reviews TSV, whose reviews hold bare quotes (quoting off)
    data = GIFT_CARD.read_bytes()
    detected = DetectedFormat(format="tsv", delimiter="\t", quoting=False, layout="aws_customer_reviews_tsv")
    oversized = stack.oversized("raw/train/amazon_reviews_us_Gift_Card_v1_00.tsv", data, detected)

    chunked = stack.split(oversized, ChunkerSettings(part_size_bytes=50_000, read_block_bytes=16_384))

    assert chunked is not None
    lines = [line for line in data.splitlines(keepends=True) if line.strip()]
    rebuilt: list[bytes] = []
    for part in chunked.parts:
        assert part.key.endswith(".tsv")
        part_lines = [line for line in stack.read(part.key).splitlines(keepends=True) if line.strip()]
        assert part_lines[0] == lines[0]
        assert part.rows == len(part_lines) - 1
        rebuilt.extend(part_lines[1:])
    assert rebuilt == lines[1:]
    assert chunked.rows_total == 1452
    assert len(chunked.parts) == 7


def test_json_lines_with_a_one_megabyte_review_keep_every_line_whole(stack: Stack) -> None:
    # Given McAuley 2018 JSON lines where one review's text is 1 MB of real review text
    lines = BEAUTY.read_bytes().splitlines(keepends=True)[:3000]
    texts = " ".join(json.loads(line)["reviewText"] for line in lines if b'"reviewText"' in line)
    long_review = json.loads(lines[1500])
    long_review["reviewText"] = (texts * (1 + (1 << 20) // len(texts)))[: 1 << 20]
    lines[1500] = json.dumps(long_review).encode() + b"\n"
    data = b"".join(lines)
    detected = DetectedFormat(format="jsonl", layout="mcauley_2018")
    oversized = stack.oversized("raw/train/All_Beauty_5.json", data, detected)

    # When split into parts smaller than that one line
    chunked = stack.split(oversized, ChunkerSettings(part_size_bytes=256 * 1024, read_block_bytes=128 * 1024))

    # Then every part is whole JSON lines, in order, and the long review is in one part, uncut
    assert chunked is not None
    parsed = [json.loads(line) for part in chunked.parts for line in stack.read(part.key).splitlines()]
    assert parsed == [json.loads(line) for line in lines]
    assert [part.key.rsplit(".", 1)[1] for part in chunked.parts] == ["json"] * len(chunked.parts)
    assert sum(1 for part in chunked.parts if part.size > 1 << 20) == 1
    assert chunked.rows_total == 3000


def test_gzip_input_is_split_into_uncompressed_parts(stack: Stack, multiline_csv: bytes) -> None:
    detected = CSV.model_copy(update={"compression": "gzip"})
    oversized = stack.oversized("raw/train/books_reviews.csv.gz", gzip.compress(multiline_csv), detected)

    chunked = stack.split(oversized)

    assert chunked is not None
    assert len(chunked.parts) > 3
    assert all(part.key.endswith(f"/part-{part.part_index:05d}.csv") for part in chunked.parts)
    assert_parts_rebuild_csv(stack, chunked, multiline_csv)


def test_a_large_part_is_uploaded_in_several_pieces(stack: Stack) -> None:
    # Given 14 MB of real MARC reviews (headerless, CRLF) and parts of 12 MiB, pieces of 5 MiB
    data = MARC_EN.read_bytes() * 6
    detected = DetectedFormat(format="csv", delimiter=",", has_header=False, layout="marc_csv")
    oversized = stack.oversized("raw/train/marc_en.csv", data, detected)
    settings = ChunkerSettings(part_size_bytes=12 * MiB, upload_part_bytes=5 * MiB, read_block_bytes=2 * MiB)

    chunked = stack.split(oversized, settings)

    # Then the first part is a multipart object of several pieces, and the two parts are the file
    assert chunked is not None
    assert len(chunked.parts) == 2
    head = stack.aws.s3.head_object(Bucket=BUCKET, Key=chunked.parts[0].key)
    assert head["ETag"].strip('"').endswith("-3")
    assert b"".join(stack.read(part.key) for part in chunked.parts) == data
    assert chunked.rows_total == 6 * 12_465


def reviews_table() -> pa.Table:
    rows = [json.loads(line) for line in BOOKS.read_text(encoding="utf-8").splitlines()]
    return pa.table(
        {
            "reviewerID": [row["reviewerID"] for row in rows],
            "summary": [row["summary"] for row in rows],
            "reviewText": [row["reviewText"] for row in rows],
            "overall": [row["overall"] for row in rows],
        }
    )


def test_parquet_row_groups_are_gathered_into_parts_and_never_divided(stack: Stack) -> None:
    # Given real reviews as Parquet in 10 row groups of 100 rows
    table = reviews_table()
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=100)
    source = pq.ParquetFile(io.BytesIO(sink.getvalue()))
    group_bytes = [
        sum(source.metadata.row_group(i).column(c).total_compressed_size for c in range(4)) for i in range(10)
    ]
    detected = DetectedFormat(format="parquet", layout="mcauley_2014")
    oversized = stack.oversized("raw/train/books.parquet", sink.getvalue(), detected)

    # When the part size holds about three row groups
    chunked = stack.split(oversized, ChunkerSettings(part_size_bytes=3 * max(group_bytes) + 1))

    # Then each part is a Parquet file of whole row groups, and together they are the table, in order
    assert chunked is not None
    assert 2 < len(chunked.parts) < 10
    parts = [pq.read_table(io.BytesIO(stack.read(part.key))) for part in chunked.parts]
    assert [part.num_rows for part in parts] == [part.rows for part in chunked.parts]
    assert all(part.rows % 100 == 0 for part in chunked.parts)
    assert pa.concat_tables(parts).equals(table)
    first_rows = [stack.store.head(part.key) for part in chunked.parts]
    assert [info.metadata["first-row-number"] if info else None for info in first_rows] == [
        str(sum(part.rows for part in chunked.parts[:index])) for index in range(len(chunked.parts))
    ]


def test_gzip_utf16_text_is_split_into_utf8_parts_without_a_bom(stack: Stack, multiline_csv: bytes) -> None:
    # Given real reviews in UTF-16 with its byte order mark, gzip-compressed
    body = gzip.compress(codecs.BOM_UTF16_LE + multiline_csv.decode("utf-8").encode("utf-16-le"))
    detected = CSV.model_copy(update={"compression": "gzip", "encoding": "utf-16-le"})
    oversized = stack.oversized("raw/train/books_reviews_utf16.csv.gz", body, detected)

    chunked = stack.split(oversized)

    # Then the parts are UTF-8, each starting with the header itself, and hold the UTF-8 file's bytes
    assert chunked is not None
    assert len(chunked.parts) > 3
    header_line = multiline_csv[: multiline_csv.index(b"\n") + 1]
    bodies = [stack.read(part.key) for part in chunked.parts]
    assert all(body.startswith(header_line) for body in bodies)
    assert header_line + b"".join(body[len(header_line) :] for body in bodies) == multiline_csv
    assert_parts_rebuild_csv(stack, chunked, multiline_csv)


def test_a_banner_a_two_row_header_and_cr_line_ends(stack: Stack) -> None:
    # Given real reviews under a two-line export banner and two header rows, with old Mac line ends
    description = ["Reviewer", "Summary\n\nthen the review", "Stars, 1 to 5"]
    rows = multiline_review_rows()
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([HEADER, description, *rows])
    text = 'Amazon reviews export: "Books"\nGenerated 2024-05-01\n' + out.getvalue()
    body = text.replace("\n", "\r").encode()
    detected = CSV.model_copy(update={"line_terminator": "cr", "preamble_lines": 2, "header_rows": 2})
    oversized = stack.oversized("raw/train/books_reviews_mac.csv", body, detected)

    chunked = stack.split(oversized)

    # Then every part starts with both header rows, with LF line ends, and no banner; the rows are the reviews
    assert chunked is not None
    assert len(chunked.parts) > 3
    rebuilt: list[list[str]] = []
    for part in chunked.parts:
        data = stack.read(part.key)
        assert b"\r" not in data
        assert b"export" not in data
        part_rows = parsed_csv(data)
        assert part_rows[:2] == [HEADER, description]
        assert part.rows == len(part_rows) - 2
        info = stack.store.head(part.key)
        assert info is not None
        assert info.metadata["first-row-number"] == str(len(rebuilt))
        rebuilt.extend(part_rows[2:])
    assert rebuilt == rows
    assert chunked.rows_total == len(rows)


def test_a_stray_quote_is_one_malformed_row_not_a_rejected_file(stack: Stack) -> None:
    # Given MARC English (headerless, quoted fields on one line) with a stray quote near its start
    data = MARC_EN.read_bytes()
    broken = data[:200] + b'"' + data[200:]
    detected = DetectedFormat(format="csv", delimiter=",", has_header=False, layout="marc_csv")
    oversized = stack.oversized("raw/train/marc_en.csv", broken, detected)

    # When records may span lines over at most 64 KiB
    settings = ChunkerSettings(part_size_bytes=100_000, read_block_bytes=16_384, max_quoted_record_bytes=65_536)
    chunked = stack.split(oversized, settings)

    # Then the file is split, the broken line one row of its part, every other line a row of its own
    assert chunked is not None
    assert stack.details("FileRejected") == []
    assert b"".join(stack.read(part.key) for part in chunked.parts) == broken
    assert [part.rows for part in chunked.parts] == [len(stack.read(part.key).splitlines()) for part in chunked.parts]
    assert chunked.rows_total == 12_465


def test_the_resync_limit_is_a_setting_no_larger_than_the_record_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ChunkerSettings().max_quoted_record_bytes == MiB

    monkeypatch.setenv("REVIEWS_CHUNKER_MAX_QUOTED_RECORD_BYTES", "65536")
    assert ChunkerSettings().max_quoted_record_bytes == 65_536

    with pytest.raises(ValidationError, match="at most max_record_bytes"):
        ChunkerSettings(max_record_bytes=2 * MiB, max_quoted_record_bytes=4 * MiB)


# -- rejections -----------------------------------------------------------------------------------


def assert_rejected(stack: Stack, oversized: FileOversized, check: str) -> dict[str, Any]:
    (rejected,) = stack.details("FileRejected")
    assert (rejected["stage"], rejected["check"], rejected["file_id"]) == ("chunker", check, oversized.file_id)
    assert rejected["error_key"] == layout.error_key("train", oversized.key)
    report = json.loads(stack.read(rejected["report_key"]))
    assert report["reason"] == rejected["reason"]
    assert stack.store.head(oversized.key) is None, "the file was moved to errors/"
    record = stack.record(oversized.file_id)
    assert (record.status, record.check) == ("rejected", check)
    assert "validation_expected" not in record.counters
    assert stack.chunk_versions() == []
    assert stack.open_uploads() == []
    assert stack.details("FileChunked") == []
    return rejected


def test_a_truncated_gzip_is_rejected_and_its_open_parts_dropped(stack: Stack, multiline_csv: bytes) -> None:
    # Given a gzip cut short: its first 500 KB of CSV are readable, then it stops
    truncated = gzip.compress(multiline_csv)[:-2000]
    detected = CSV.model_copy(update={"compression": "gzip"})
    oversized = stack.oversized("raw/train/books_reviews.csv.gz", truncated, detected)

    assert stack.split(oversized) is None

    rejected = assert_rejected(stack, oversized, "readability")
    assert "truncated" in rejected["reason"]


def test_a_gzip_bomb_is_rejected_at_the_decompressed_limit(stack: Stack, multiline_csv: bytes) -> None:
    # Given real reviews followed by 100 MB of blank lines: 0.3 MB of gzip
    compressor = zlib_gzip()
    bomb = compressor.compress(multiline_csv)
    bomb += b"".join(compressor.compress(b"\n" * MiB) for _ in range(100)) + compressor.flush()
    assert len(bomb) < MiB
    detected = CSV.model_copy(update={"compression": "gzip"})
    oversized = stack.oversized("raw/train/books_reviews.csv.gz", bomb, detected)

    # When the decompressed limit is 32 MiB
    settings = ChunkerSettings(part_size_bytes=100_000, read_block_bytes=MiB, max_decompressed_bytes=32 * MiB)
    assert stack.split(oversized, settings) is None

    # Then it is rejected by the size check, naming the limit; the parts already begun are aborted
    rejected = assert_rejected(stack, oversized, "size")
    assert str(32 * MiB) in rejected["reason"]


def zlib_gzip() -> Any:
    import zlib

    return zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def test_a_corrupt_parquet_file_is_rejected_as_unreadable(stack: Stack) -> None:
    # Given real reviews as Parquet with bytes in the middle of its column data overwritten
    sink = io.BytesIO()
    pq.write_table(reviews_table(), sink, row_group_size=100)
    data = sink.getvalue()
    middle = len(data) // 2
    corrupt = data[:middle] + bytes(4096) + data[middle + 4096 :]
    oversized = stack.oversized("raw/train/books.parquet", corrupt, DetectedFormat(format="parquet", layout="x"))

    assert stack.split(oversized) is None

    rejected = assert_rejected(stack, oversized, "readability")
    assert rejected["reason"].startswith("not a readable Parquet file")


def test_a_file_with_no_data_rows_is_rejected_and_no_part_is_written(stack: Stack, multiline_csv: bytes) -> None:
    # Given the header of a real CSV followed only by blank lines
    header = multiline_csv[: multiline_csv.index(b"\n") + 1]
    oversized = stack.oversized("raw/train/books_reviews.csv", header + b"\r\n" * 200_000)

    assert stack.split(oversized) is None

    rejected = assert_rejected(stack, oversized, "columns")
    assert rejected["reason"] == "the file has no data rows"


def test_a_lone_utf16_surrogate_rejects_the_file_naming_its_offset(stack: Stack) -> None:
    # Given Spanish reviews in UTF-16 with, 150 KB in, half of a surrogate pair alone
    data = MARC_ES.read_text(encoding="utf-8").encode("utf-16-le")
    broken = data[:150_000] + "\udc00".encode("utf-16-le", "surrogatepass") + data[150_000:]
    detected = DetectedFormat(format="csv", delimiter=",", has_header=False, encoding="utf-16-le", layout="marc_csv")
    oversized = stack.oversized("raw/train/marc_es.csv", broken, detected)

    assert stack.split(oversized) is None

    # Then it is rejected as unreadable, the report naming the byte and the encoding; begun parts are aborted
    rejected = assert_rejected(stack, oversized, "readability")
    assert "byte 150000 (0x00dc) is not valid utf-16-le" in rejected["reason"]
    report = json.loads(stack.read(rejected["report_key"]))
    assert report["details"] == {"byte_offset": 150_000, "encoding": "utf-16-le"}


def test_an_encoding_python_does_not_know_is_rejected_before_anything_is_read(stack: Stack) -> None:
    detected = DetectedFormat(format="csv", delimiter=",", has_header=False, encoding="ebcdic-x", layout="marc_csv")
    oversized = stack.oversized("raw/train/marc_en.csv", MARC_EN.read_bytes(), detected)

    assert stack.split(oversized) is None

    rejected = assert_rejected(stack, oversized, "readability")
    assert rejected["reason"] == "the text encoding 'ebcdic-x' is unknown"


def test_a_json_document_is_rejected_as_unsplittable(stack: Stack) -> None:
    # Given real reviews as one JSON array
    body = json.dumps([json.loads(line) for line in BOOKS.read_text(encoding="utf-8").splitlines()]).encode()
    oversized = stack.oversized("raw/train/books.json", body, DetectedFormat(format="json", layout="mcauley_2014"))

    assert stack.split(oversized) is None

    rejected = assert_rejected(stack, oversized, "format")
    assert rejected["reason"].startswith("a JSON document (one array of records) cannot be split")


def test_gzip_parquet_is_rejected_as_unsplittable(stack: Stack) -> None:
    sink = io.BytesIO()
    pq.write_table(reviews_table(), sink, row_group_size=100)
    detected = DetectedFormat(format="parquet", compression="gzip", layout="mcauley_2014")
    oversized = stack.oversized("raw/train/books.parquet.gz", gzip.compress(sink.getvalue()), detected)

    assert stack.split(oversized) is None

    rejected = assert_rejected(stack, oversized, "format")
    assert rejected["reason"].startswith("gzip-compressed Parquet cannot be split")


# -- ordering, failures, retries ------------------------------------------------------------------


class WatchedLedger(FileLedger):
    """The real ledger, noting what the bucket held when the part count was set."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack.aws.dynamodb, stack.table)
        self.stack = stack
        self.visible_when_counted: list[str] | None = None
        self.uploads_when_counted: int | None = None

    def set_parts_expected(
        self, root_file_id: str, stage: Any, expected: int, *, part_index: int | None = None
    ) -> BarrierState:
        self.visible_when_counted = self.stack.chunk_versions()
        self.uploads_when_counted = len(self.stack.open_uploads())
        return super().set_parts_expected(root_file_id, stage, expected, part_index=part_index)


class WatchedStore(ObjectStore):
    """The real store, noting what the ledger said at each part's completion, and failing on demand."""

    def __init__(
        self,
        stack: Stack,
        fail_upload_at: int | None = None,
        fail_complete_at: int | None = None,
        fail_read_at: int | None = None,
    ) -> None:
        super().__init__(stack.aws.s3, BUCKET)
        self.reads = 0
        self.fail_read_at = fail_read_at
        self.ledger = stack.ledger
        self.expected_at_completion: list[int | None] = []
        self.uploads = 0
        self.completions = 0
        self.fail_upload_at = fail_upload_at
        self.fail_complete_at = fail_complete_at
        self.root_file_id = ""

    def read_bytes(self, key: str, version_id: str | None = None, byte_range: tuple[int, int] | None = None) -> bytes:
        self.reads += 1
        if self.reads == self.fail_read_at:
            raise TimeoutError("simulated socket timeout during a ranged read")
        return super().read_bytes(key, version_id, byte_range)

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        self.uploads += 1
        if self.uploads == self.fail_upload_at:
            raise ConnectionError("simulated network failure during an upload")
        return super().upload_part(key, upload_id, part_number, body)

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> str | None:
        self.completions += 1
        if self.completions == self.fail_complete_at:
            raise ConnectionError("simulated network failure during a completion")
        self.expected_at_completion.append(self.ledger.parts_expected(self.root_file_id))
        return super().complete_multipart(key, upload_id, etags)


def test_the_part_count_is_in_the_ledger_before_any_part_is_visible(stack: Stack, multiline_csv: bytes) -> None:
    oversized = stack.oversized("raw/train/books_reviews.csv", multiline_csv)
    ledger, store = WatchedLedger(stack), WatchedStore(stack)
    store.root_file_id = oversized.root_file_id

    chunked = split_file(oversized, SMALL_READS, store=store, ledger=ledger, publisher=stack.publisher)

    # Then when the count was set, every part was written but none visible; and at every completion
    # the ledger already held the count
    assert chunked is not None
    parts = len(chunked.parts)
    assert parts > 3
    assert ledger.visible_when_counted == []
    assert ledger.uploads_when_counted == parts
    assert store.expected_at_completion == [parts] * parts


def test_a_failure_while_writing_aborts_every_open_upload(stack: Stack, multiline_csv: bytes) -> None:
    oversized = stack.oversized("raw/train/books_reviews.csv", multiline_csv)
    store = WatchedStore(stack, fail_upload_at=4)

    with pytest.raises(ConnectionError):
        split_file(oversized, SMALL_READS, store=store, ledger=stack.ledger, publisher=stack.publisher)

    # Then nothing of the attempt remains: no upload open, no part visible, no count, no event
    assert stack.open_uploads() == []
    assert stack.chunk_versions() == []
    assert stack.ledger.parts_expected(oversized.root_file_id) is None
    assert stack.details("FileChunked") == []


def test_a_failed_read_of_parquet_is_retried_not_taken_for_a_corrupt_file(stack: Stack) -> None:
    # Given a Parquet file of real reviews, and a read that times out (an OSError, as pyarrow's own errors are)
    sink = io.BytesIO()
    pq.write_table(reviews_table(), sink, row_group_size=100)
    oversized = stack.oversized(
        "raw/train/books.parquet", sink.getvalue(), DetectedFormat(format="parquet", layout="x")
    )
    store = WatchedStore(stack, fail_read_at=4)

    with pytest.raises(SourceUnavailableError):
        split_file(
            oversized,
            ChunkerSettings(part_size_bytes=100_000, read_block_bytes=64 * 1024),
            store=store,
            ledger=stack.ledger,
            publisher=stack.publisher,
        )

    # Then the file is not rejected: the message goes back to the queue, and nothing of the attempt remains
    assert stack.details("FileRejected") == []
    assert stack.record(oversized.file_id).status == "chunking"
    assert stack.open_uploads() == []
    assert stack.chunk_versions() == []


def test_a_retry_after_a_failed_completion_finishes_the_same_parts(stack: Stack, multiline_csv: bytes) -> None:
    # Given an attempt that failed while completing its second part: the first part is already visible
    oversized = stack.oversized("raw/train/books_reviews.csv", multiline_csv)
    store = WatchedStore(stack, fail_complete_at=2)
    store.root_file_id = oversized.root_file_id
    with pytest.raises(ConnectionError):
        split_file(oversized, SMALL_READS, store=store, ledger=stack.ledger, publisher=stack.publisher)
    assert stack.open_uploads() == []
    assert len(stack.chunk_versions()) == 1

    # When the message is retried
    chunked = stack.split(oversized)

    # Then the parts are the same keys with the same content, all visible, and announced once
    assert chunked is not None
    assert stack.chunk_keys() == [part.key for part in chunked.parts]
    assert stack.chunk_versions().count(chunked.parts[0].key) == 2
    assert_parts_rebuild_csv(stack, chunked, multiline_csv)
    assert len(stack.details("FileChunked")) == 1


def test_uploads_left_open_by_a_crashed_attempt_are_aborted(stack: Stack, multiline_csv: bytes) -> None:
    # Given an upload a crashed (timed-out) attempt left open under the file's parts folder
    oversized = stack.oversized("raw/train/books_reviews.csv", multiline_csv)
    stale_key = layout.chunk_key("train", oversized.root_file_id, 7, ".csv")
    stack.aws.s3.create_multipart_upload(Bucket=BUCKET, Key=stale_key)

    chunked = stack.split(oversized)

    assert chunked is not None
    assert stack.open_uploads() == []
    assert stale_key not in stack.chunk_keys()


def test_a_redelivered_file_oversized_gives_one_set_of_parts(
    stack: Stack, multiline_csv: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the FileOversized event for a real file, as the chunker's queue delivers it
    monkeypatch.setenv("REVIEWS_CHUNKER_PART_SIZE_BYTES", "100000")
    oversized = stack.oversized("raw/train/books_reviews.csv", multiline_csv)
    event = sample_event("FileOversized")
    event["detail"] = oversized.model_dump(mode="json")

    # When it arrives twice
    context = lambda_context("chunker", 1024, 600_000)
    first = lambda_handler(sqs_wrapped(event, "chunker-queue", str(uuid.uuid4())), context)
    second = lambda_handler(sqs_wrapped(event, "chunker-queue", str(uuid.uuid4())), context)

    # Then one set of parts exists (one version of each), and one FileChunked was published
    assert first == second == {"batchItemFailures": []}
    (chunked,) = stack.details("FileChunked")
    keys = [part["key"] for part in chunked["parts"]]
    assert len(keys) == 6
    assert stack.chunk_versions() == keys
    assert stack.record(oversized.file_id).counters["validation_expected"] == 6
