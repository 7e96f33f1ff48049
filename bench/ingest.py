"""Ingestion benchmark: how fast the chunker splits a large CSV of real reviews, and in how much memory.

Run from the repository root:  python bench/ingest.py  [--input-mib 1024] [--small-mib 200] [--no-peers]
                                                     [--only-robustness]

Prints JSON lines, one per figure. Sizes are in MiB (2**20 bytes); "MB/s" is MiB per second.

The input is built in a temporary folder (deleted afterwards) from real reviews: the MARC English CSV
(12,465 rows, quoted where a review holds a comma, CRLF) and the McAuley 2014 Books sample written
as multi-line quoted fields (summary, blank line, text), repeated with fresh ids under a header, so
the splitter meets doubled quotes, quoted newlines and quoted blank lines in every block.

Figures:
- chunker_mb_per_s: the chunker's own work on one core (the same block reading, record splitting and
  multipart buffering as in the Lambda, with the upload calls discarded) over a local file.
- chunker_peak_rss_mb / chunker_tracemalloc_peak_mb: the same run in a fresh process, for the small
  and the large input: peak RSS (VmHWM, reset just before the split; interpreter included) and, in a separate
  run, the peak of Python allocations seen by tracemalloc; flat means the same at both sizes.
- chunker_moto_mb_per_s: split_file end to end against moto's in-process S3, DynamoDB and
  EventBridge on the small input. moto answers every ranged GET by copying the whole object, so
  this measures the emulator as much as the chunker; AWS serves ranges directly.
- peers, doing the same job (split a CSV with quoted newlines into ~64 MiB CSV parts, each with the
  header): DuckDB's COPY … TO … (FILE_SIZE_BYTES) on one thread and on every core, and Python's
  csv module (reader → writer, rotating files), each in a fresh process for its peak RSS.

- validator_mb_per_s: the validator's four checks, canonical table and parquet on one part-sized CSV
  (the chunker's part size), in memory, one core; ingest_mb_per_s: validator + chunker per core.
- read_mb_per_s: the readers the validator could be built on, turning the same part into rows on one
  core: the validator itself (and on the part with one stray quote, its record-by-record path),
  DuckDB's read_csv, pandas (C engine; and sep=None with the python engine), Python's csv module and
  CleverCSV's reader (the last three, which parse in Python, on the part's first 16 MiB).

- robustness on the variant corpus (reviews_pipeline/reliability/variants.py: 300 real rows of each
  source re-written as other tools write them; the variants that must be refused are left out), for
  the validator (examine_file, train, the variant's settings) and the peers, each reading the
  variant's bytes from a file with their defaults: DuckDB's read_csv auto-detection (and with
  ignore_errors), pandas read_csv(sep=None, engine="python") (and on_bad_lines="skip"), CleverCSV's
  read_dataframe, and Python's csv.Sniffer on the first 64 KiB + csv.reader (text opened as UTF-8).
  variants_rows_recovered: share of the rows the contract keeps whose text (CRLF/CR as LF, stripped)
  is in some cell of what the system returned; variants_files_loaded: files that gave a table with
  at least 90 % of them; variants_files_failed: files the system refused or raised on. Alone, and
  quickly (no large input is built): --only-robustness.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow

from reviews_pipeline.reliability.variants import Expected, Variant, build_corpus, normalise_text
from services.chunker.boundaries import count_records
from services.chunker.parts import PartUploads
from services.chunker.splitting import ChunkerSettings, record_rules, write_record_parts
from services.validator.validation import Accepted, InMemoryBytes, ValidatorSettings, examine_file, parquet_bytes
from shared.events import DetectedFormat

# The reference collection of real review files sits beside the repository (../shared/data).
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MARC_EN = DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
BOOKS = DATA / "mcauley-category-samples-keithgalli/category__Books_small.json"
MiB = 1 << 20
SYSTEM = "amazon-reviews-nlp"
# Columns named as the canonical schema, a layout the validator recognises.
HEADER = b"review_id,text,rating\r\n"
DETECTED = DetectedFormat(format="csv", delimiter=",", layout="marc_csv")
SETTINGS = ChunkerSettings()

Figure = dict[str, Any]


@dataclass(frozen=True)
class BenchInputs:
    large: Path
    small: Path
    rows_large: int
    rows_small: int
    workdir: Path
    peers: bool


# -- the input ------------------------------------------------------------------------------------


def review_rows() -> list[bytes]:
    """Real review rows without their id column: '<review_body>,<stars>\\r\\n', CSV-quoted as needed."""
    rows = [line.split(b",", 1)[1] + b"\r\n" for line in MARC_EN.read_bytes().split(b"\r\n") if line]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    with BOOKS.open(encoding="utf-8") as lines:
        for line in lines:
            review = json.loads(line)
            writer.writerow([f"{review['summary']}\n\n{review['reviewText']}", int(review["overall"])])
    rows.extend(csv_records(out.getvalue().encode("utf-8")))
    return rows


def csv_records(data: bytes) -> Iterator[bytes]:
    """Whole CSV records (quoted newlines included) of `data`, one by one."""
    start = 0
    while start < len(data):
        end = data.index(b"\r\n", start) + 2
        while data.count(b'"', start, end) % 2:
            end = data.index(b"\r\n", end) + 2
        yield data[start:end]
        start = end


def build_input(path: Path, target_bytes: int, rows: list[bytes]) -> int:
    """Write a CSV of at least `target_bytes`: the header, then the rows again and again with fresh ids."""
    written = 0
    next_id = 0
    with path.open("wb") as out:
        out.write(HEADER)
        while out.tell() < target_bytes:
            out.write(b"".join(b"%d,%s" % (next_id + offset, row) for offset, row in enumerate(rows)))
            next_id += len(rows)
            written += len(rows)
    return written


# -- the chunker's own work, without S3 -----------------------------------------------------------


class DiscardingTarget:
    """Multipart calls that keep nothing: the chunker's buffering is measured, not a storage service."""

    def __init__(self) -> None:
        self.bytes = 0

    def open_multipart(self, key: str, metadata: dict[str, str], content_type: str = "") -> str:
        return key

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        self.bytes += len(body)
        return f"{part_number}"

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> str | None:
        return None

    def abort_multipart(self, key: str, upload_id: str) -> None:
        return None


def file_blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    with path.open("rb", buffering=0) as source:
        while block := source.read(block_bytes):
            yield block


def split_local(path: Path) -> tuple[int, int, float]:
    """(parts, rows, seconds) of the chunker's splitting of a local file."""
    target = DiscardingTarget()
    uploads = PartUploads(target, upload_part_bytes=SETTINGS.upload_part_bytes, content_type="text/csv")
    started = time.perf_counter()
    write_record_parts(
        file_blocks(path, SETTINGS.read_block_bytes),
        record_rules(DETECTED),
        SETTINGS,
        uploads,
        lambda index, first_row: (f"part-{index:05d}.csv", {"first-row-number": str(first_row)}),
    )
    uploads.finish_writing()
    seconds = time.perf_counter() - started
    assert target.bytes == sum(part.size for part in uploads.parts)
    return len(uploads.parts), sum(part.rows for part in uploads.parts), seconds


def probe_memory(path: Path, traced: bool) -> dict[str, float]:
    """Run in a fresh process: the splitting's peak memory."""
    baseline_rss = reset_peak_rss()
    if traced:
        tracemalloc.start()
    parts, rows, seconds = split_local(path)
    result = {"parts": parts, "rows": rows, "seconds": seconds, "baseline_rss_mb": baseline_rss}
    if traced:
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / MiB
    result["peak_rss_mb"] = peak_rss_mib()
    return result


def reset_peak_rss() -> float:
    """Restart the kernel's peak-RSS mark (Linux: clear_refs 5) so imports do not count; the RSS now, in MiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak resident memory since the last reset, in MiB (VmHWM)."""
    return _proc_status_mib("VmHWM")


def _proc_status_mib(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise LookupError(field_name)


def in_fresh_process(*arguments: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *arguments], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def size_mib(path: Path) -> float:
    return round(path.stat().st_size / MiB, 1)


def figure(metric: str, value: float, unit: str, input_path: Path, **extra: Any) -> Figure:
    return {
        "bench": "ingest",
        "system": extra.pop("system", SYSTEM),
        "metric": metric,
        "value": round(value, 1),
        "unit": unit,
        "input_mb": size_mib(input_path),
        **extra,
    }


def chunker_throughput(inputs: BenchInputs) -> list[Figure]:
    parts, rows, seconds = split_local(inputs.large)
    assert rows == inputs.rows_large, (rows, inputs.rows_large)
    return [
        figure(
            "chunker_mb_per_s",
            size_mib(inputs.large) / seconds,
            "MB/s",
            inputs.large,
            parts=parts,
            rows=rows,
            seconds=round(seconds, 2),
            cores=1,
            how="local file in 8 MiB blocks through the chunker's record splitting and 8 MiB upload buffering; "
            "upload calls discarded",
        )
    ]


def chunker_memory(inputs: BenchInputs) -> list[Figure]:
    figures = []
    for path in (inputs.small, inputs.large):
        plain = in_fresh_process("--probe-memory", str(path))
        traced = in_fresh_process("--probe-memory", str(path), "--traced")
        figures.append(
            figure(
                "chunker_peak_rss_mb",
                plain["peak_rss_mb"],
                "MB",
                path,
                baseline_rss_mb=round(plain["baseline_rss_mb"], 1),
                how="fresh process splitting a local file; peak RSS (VmHWM) counted from just before the split, "
                "interpreter and imports included (baseline_rss_mb: resident then)",
            )
        )
        figures.append(
            figure(
                "chunker_tracemalloc_peak_mb",
                traced["tracemalloc_peak_mb"],
                "MB",
                path,
                how="fresh process; peak of Python allocations during the split (tracemalloc)",
            )
        )
    return figures


def chunker_against_moto(inputs: BenchInputs) -> list[Figure]:
    """split_file end to end, against moto in-process (S3 versioned bucket, DynamoDB ledger, EventBridge)."""
    import boto3
    from moto import mock_aws

    from services.chunker.service import split_file
    from shared.events import FileOversized
    from shared.ledger import FileLedger, FileRecord, create_ledger_table, file_id_for
    from shared.publisher import EventPublisher
    from shared.storage import ObjectStore

    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    bucket, table, key = "bench-pipeline", "bench-ledger", "raw/train/reviews.csv"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        create_ledger_table(dynamodb, table)
        events.create_event_bus(Name="bench-bus")
        with inputs.small.open("rb") as body:
            version_id = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
        size = inputs.small.stat().st_size
        file_id = file_id_for(bucket, key, version_id)
        ledger = FileLedger(dynamodb, table)
        ledger.register(
            FileRecord(
                file_id=file_id,
                root_file_id=file_id,
                correlation_id=file_id,
                bucket=bucket,
                key=key,
                version_id=version_id,
                size=size,
                dataset="train",
                origin="s3",
            )
        )
        oversized = FileOversized(
            correlation_id=file_id,
            file_id=file_id,
            root_file_id=file_id,
            dataset="train",
            bucket=bucket,
            key=key,
            version_id=version_id,
            size=size,
            max_size_bytes=SETTINGS.part_size_bytes,
            detected=DETECTED,
        )
        started = time.perf_counter()
        chunked = split_file(
            oversized,
            SETTINGS,
            store=ObjectStore(s3, bucket),
            ledger=ledger,
            publisher=EventPublisher(events, "bench-bus", "chunker"),
        )
        seconds = time.perf_counter() - started
    assert chunked is not None and chunked.rows_total == inputs.rows_small
    return [
        figure(
            "chunker_moto_mb_per_s",
            size_mib(inputs.small) / seconds,
            "MB/s",
            inputs.small,
            parts=len(chunked.parts),
            rows=chunked.rows_total,
            seconds=round(seconds, 2),
            how="split_file against moto in-process; moto copies the whole object for every ranged GET",
        )
    ]


# -- peers ----------------------------------------------------------------------------------------


def duckdb_split(source: str, target: str, threads: int) -> dict[str, Any]:
    """Run in a fresh process: DuckDB splitting the CSV into ~64 MiB CSV files, each with the header."""
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET threads = {threads}")
    baseline_rss = reset_peak_rss()
    started = time.perf_counter()
    connection.execute(
        f"""COPY (SELECT * FROM read_csv('{source}', header = true, quote = '"', escape = '"',
                 all_varchar = true, strict_mode = true))
            TO '{target}' (FORMAT csv, HEADER true, FILE_SIZE_BYTES '{SETTINGS.part_size_bytes}b')"""
    )
    seconds = time.perf_counter() - started
    parts = sorted(Path(target).iterdir())
    peak_rss = peak_rss_mib()
    rows = sum(count_records(part.read_bytes(), quoting=True) - 1 for part in parts)
    return {
        "seconds": seconds,
        "parts": len(parts),
        "rows": rows,
        "peak_rss_mb": peak_rss,
        "baseline_rss_mb": baseline_rss,
        "version": duckdb.__version__,
    }


def python_csv_split(source: str, target: str) -> dict[str, Any]:
    """Run in a fresh process: Python's csv module reading rows and writing them to rotating ~64 MiB files."""
    baseline_rss = reset_peak_rss()
    started = time.perf_counter()
    parts = rows = 0
    with open(source, newline="", encoding="utf-8") as infile:
        reader = csv.reader(infile)
        header = next(reader)
        out = None
        writer: Any = None
        for row in reader:
            if out is None or out.tell() >= SETTINGS.part_size_bytes:
                if out is not None:
                    out.close()
                out = open(Path(target) / f"part-{parts:05d}.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
                writer = csv.writer(out)
                writer.writerow(header)
                parts += 1
            writer.writerow(row)
            rows += 1
        if out is not None:
            out.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "parts": parts,
        "rows": rows,
        "peak_rss_mb": peak_rss_mib(),
        "baseline_rss_mb": baseline_rss,
    }


def peers(inputs: BenchInputs) -> list[Figure]:
    if not inputs.peers:
        return []
    figures = []
    runs: list[tuple[str, Path, list[str], int]] = [
        ("duckdb", inputs.large, ["--duckdb-threads", "1"], inputs.rows_large),
        ("duckdb", inputs.large, ["--duckdb-threads", str(os.cpu_count() or 1)], inputs.rows_large),
        ("python-csv", inputs.small, ["--python-csv"], inputs.rows_small),
    ]
    for system, source, arguments, expected_rows in runs:
        target = inputs.workdir / f"{system}-out"
        target.mkdir()
        result = in_fresh_process("--peer", str(source), str(target), *arguments)
        shutil.rmtree(target)
        assert result["rows"] == expected_rows, (system, result["rows"], expected_rows)
        cores = int(arguments[1]) if system == "duckdb" else 1
        extra = {"version": result["version"]} if "version" in result else {}
        how = "fresh process; reads every field and writes ~64 MiB CSV files with the header, to local disk"
        figures.append(
            figure(
                "split_mb_per_s",
                size_mib(source) / result["seconds"],
                "MB/s",
                source,
                system=system,
                cores=cores,
                parts=result["parts"],
                rows=result["rows"],
                seconds=round(result["seconds"], 2),
                how=how,
                **extra,
            )
        )
        figures.append(
            figure(
                "split_peak_rss_mb",
                result["peak_rss_mb"],
                "MB",
                source,
                system=system,
                cores=cores,
                baseline_rss_mb=round(result["baseline_rss_mb"], 1),
                how=how + "; peak RSS counted from just before the split (baseline_rss_mb: resident then)",
            )
        )
    return figures


def validator_throughput(inputs: BenchInputs) -> list[Figure]:
    """The validator on one part-sized file, and validator + chunker together over the large input.

    Every byte of an oversize file passes the chunker once and the validator once (as part of some
    part), so on one core the pipeline's ingest rate is 1 / (1/chunker + 1/validator).
    """
    # One core, as the target is per core: pyarrow would otherwise read with every core.
    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)
    part = inputs.workdir / "reviews-part.csv"
    rows = build_input(part, SETTINGS.part_size_bytes, review_rows())
    data = part.read_bytes()
    limits = ValidatorSettings()

    def validate_once() -> tuple[Accepted, bytes, float]:
        started = time.perf_counter()
        verdict = examine_file(InMemoryBytes(data), dataset="train", limits=limits)
        assert isinstance(verdict, Accepted), verdict
        return verdict, parquet_bytes(verdict.rows.table), time.perf_counter() - started

    # The first call pays for imports (pandas, pyarrow's CSV reader) that a warm Lambda has already paid.
    validate_once()
    verdict, parquet, validator_seconds = min((validate_once() for _ in range(3)), key=lambda run: run[2])
    assert verdict.rows.rows_in == rows, (verdict.rows.rows_in, rows)
    validator_rate = size_mib(part) / validator_seconds
    _, _, chunker_seconds = split_local(inputs.large)
    chunker_rate = size_mib(inputs.large) / chunker_seconds
    return [
        figure(
            "validator_mb_per_s",
            validator_rate,
            "MB/s",
            part,
            rows=rows,
            seconds=round(validator_seconds, 2),
            parquet_mb=round(len(parquet) / MiB, 1),
            cores=1,
            how="all four checks, the canonical table and its parquet, from a part-sized CSV in memory; "
            "best of 3 after a warm-up",
        ),
        figure(
            "ingest_mb_per_s",
            1 / (1 / chunker_rate + 1 / validator_rate),
            "MB/s",
            inputs.large,
            cores=1,
            how="validator + chunker per core: 1 / (1/chunker_mb_per_s + 1/validator_mb_per_s)",
        ),
    ]


# -- the readers the validator could have been built on -------------------------------------------

# The readers that parse in Python are timed on the head of the part (whole records), not all of it.
SLOW_READER_BYTES = 16 * MiB


def _head_of(data: bytes, limit: int) -> bytes:
    cut = data.rfind(b"\n", 0, limit)
    return data[: cut + 1] if cut >= 0 else data


def _timed_read(read: Callable[[bytes], int], data: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    rows = read(data)
    return rows, time.perf_counter() - started


def _stray_quote_in(data: bytes) -> bytes:
    """The part with one quote opened by mistake near its middle: the validator's record-by-record path."""
    middle = data.index(b"\n", len(data) // 2) + 1
    return data[:middle] + b'"' + data[middle:]


def reader_peers(inputs: BenchInputs) -> list[Figure]:
    """How fast each candidate reader turns the part-sized CSV into rows, on one core (why Arrow reads first)."""
    import clevercsv
    import duckdb
    import pandas

    pyarrow.set_cpu_count(1)
    part = inputs.workdir / "reviews-part.csv"
    if not part.exists():
        build_input(part, SETTINGS.part_size_bytes, review_rows())
    data = part.read_bytes()
    head = _head_of(data, SLOW_READER_BYTES)
    head_path = inputs.workdir / "reviews-part-head.csv"
    head_path.write_bytes(head)
    limits = ValidatorSettings()

    def ours(content: bytes) -> int:
        verdict = examine_file(InMemoryBytes(content), dataset="train", limits=limits)
        assert isinstance(verdict, Accepted), verdict
        return verdict.rows.rows_in

    def duckdb_auto(content: bytes) -> int:
        connection = duckdb.connect()
        connection.execute("SET threads = 1")
        source = part if content is data else head_path
        table = connection.sql(f"SELECT * FROM read_csv('{source}')").to_arrow_table()
        return int(table.num_rows)

    def pandas_c(content: bytes) -> int:
        return len(pandas.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False))

    def pandas_sniffing(content: bytes) -> int:
        return len(pandas.read_csv(io.BytesIO(content), sep=None, engine="python", dtype=str, keep_default_na=False))

    def python_csv(content: bytes) -> int:
        return sum(1 for _ in csv.reader(io.StringIO(content.decode("utf-8"), newline=""))) - 1

    def clevercsv_reader(content: bytes) -> int:
        text = content.decode("utf-8")
        dialect = clevercsv.Detector().detect(text[:SNIFF_SAMPLE_CHARS])
        assert dialect is not None, "CleverCSV found no dialect"
        rows: int = sum(1 for _ in clevercsv.reader(io.StringIO(text, newline=""), dialect))
        return rows - 1

    readers: list[tuple[str, Callable[[bytes], int], bytes, str]] = [
        ("amazon-reviews-nlp", ours, data, "the whole validator (checks, dialect, Arrow read, canonical rows)"),
        (
            "amazon-reviews-nlp-record-by-record",
            ours,
            _stray_quote_in(data),
            "the whole validator on the part with one stray quote: its csv-module resynchronising path",
        ),
        ("duckdb", duckdb_auto, data, "read_csv with auto-detection, threads=1, every column into an Arrow table"),
        ("pandas-c", pandas_c, data, "read_csv, C engine, delimiter given"),
        ("pandas-sniffing", pandas_sniffing, head, "read_csv(sep=None, engine='python')"),
        ("python-csv", python_csv, head, "csv.reader with the dialect given"),
        ("clevercsv", clevercsv_reader, head, "Detector().detect on 64 KiB, then clevercsv.reader"),
    ]
    figures = []
    for system, read, content, how in readers:
        rows, seconds = _timed_read(read, content)
        figures.append(
            {
                "bench": "ingest",
                "system": system,
                "metric": "read_mb_per_s",
                "value": round(len(content) / MiB / seconds, 1),
                "unit": "MB/s",
                "input_mb": round(len(content) / MiB, 1),
                "rows": rows,
                "seconds": round(seconds, 2),
                "cores": 1,
                "how": f"{how}; one run",
            }
        )
    return figures


# -- robustness on the variant corpus -------------------------------------------------------------

# A file counts as loaded when the table a system returned holds at least this share of its texts.
LOADED_SHARE = 0.9
SNIFF_SAMPLE_CHARS = 64 * 1024


def cells(rows: Iterable[Sequence[Any]]) -> set[str]:
    """Every value of a returned table, as normalised text."""
    return {normalise_text(str(value)) for row in rows for value in row if value is not None}


def validator_cells(variant: Variant) -> tuple[set[str] | None, bool]:
    """The canonical table's values (None when the file is refused), and whether it is exactly the contract's."""
    verdict = examine_file(
        InMemoryBytes(variant.content), dataset="train", limits=ValidatorSettings(**variant.settings)
    )
    if not isinstance(verdict, Accepted):
        return None, False
    expected, rows = variant.expected, verdict.rows
    assert isinstance(expected, Expected)
    table = rows.table
    texts = [normalise_text(text) for text in table.column("text").to_pylist()]
    as_expected = (rows.rows_in, rows.rows_out, rows.rows_dropped, texts) == (
        expected.rows_in,
        expected.rows_out,
        expected.rows_dropped,
        list(expected.texts),
    )
    return cells(zip(*(table.column(name).to_pylist() for name in table.column_names), strict=True)), as_expected


def duckdb_cells(path: Path, *, ignore_errors: bool) -> set[str]:
    import duckdb

    options = ", ignore_errors = true" if ignore_errors else ""
    with duckdb.connect() as connection:
        return cells(connection.sql(f"SELECT * FROM read_csv('{path}'{options})").fetchall())


def pandas_cells(path: Path, *, skip_bad_lines: bool) -> set[str]:
    import pandas

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the python engine warns about what it skips
        frame = pandas.read_csv(path, sep=None, engine="python", on_bad_lines="skip" if skip_bad_lines else "error")
    return cells(frame.itertuples(index=False))


def clevercsv_cells(path: Path) -> set[str]:
    import clevercsv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = clevercsv.read_dataframe(str(path))
    return cells(frame.itertuples(index=False))


def sniffer_cells(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8") as text:
        dialect = csv.Sniffer().sniff(text.read(SNIFF_SAMPLE_CHARS))
        text.seek(0)
        return cells(csv.reader(text, dialect))


ROBUSTNESS_PEERS: dict[str, Callable[[Path], set[str]]] = {
    "duckdb": lambda path: duckdb_cells(path, ignore_errors=False),
    "duckdb-ignore-errors": lambda path: duckdb_cells(path, ignore_errors=True),
    "pandas": lambda path: pandas_cells(path, skip_bad_lines=False),
    "pandas-skip-bad-lines": lambda path: pandas_cells(path, skip_bad_lines=True),
    "clevercsv": clevercsv_cells,
    "python-csv-sniffer": sniffer_cells,
}


@dataclass
class Robustness:
    """One system's account over the corpus."""

    files: int = 0
    loaded: int = 0
    delimited_files: int = 0
    delimited_loaded: int = 0
    failed: int = 0
    truth_rows: int = 0
    recovered_rows: int = 0
    as_expected: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    not_loaded: Counter[str] = field(default_factory=Counter)

    def count(self, variant: Variant, returned: set[str] | None, error: str | None = None) -> None:
        assert isinstance(variant.expected, Expected)
        truth = variant.expected.texts
        recovered = 0 if returned is None else sum(text in returned for text in truth)
        loaded = returned is not None and recovered >= LOADED_SHARE * len(truth)
        self.files += 1
        self.loaded += loaded
        self.delimited_files += variant.delimited
        self.delimited_loaded += variant.delimited and loaded
        self.failed += returned is None
        self.truth_rows += len(truth)
        self.recovered_rows += recovered
        if error is not None:
            self.errors[error] += 1
        if not loaded:
            self.not_loaded[variant.kind] += 1

    def figures(self, system: str, input_mb: float, how: str) -> list[Figure]:
        def robustness(metric: str, value: float, unit: str, *, measured: str = how, **extra: Any) -> Figure:
            return {
                "bench": "ingest",
                "system": system,
                "metric": metric,
                "value": value,
                "unit": unit,
                "files": self.files,
                "input_mb": input_mb,
                **extra,
                "how": measured,
            }

        figures = [
            robustness(
                "variants_files_loaded",
                self.loaded,
                "files",
                delimited_files_loaded=self.delimited_loaded,
                delimited_files=self.delimited_files,
                not_loaded_by_kind=dict(sorted(self.not_loaded.items())),
            ),
            robustness(
                "variants_rows_recovered",
                round(100 * self.recovered_rows / max(self.truth_rows, 1), 1),
                "%",
                rows=self.truth_rows,
            ),
            robustness("variants_files_failed", self.failed, "files", errors=dict(self.errors.most_common())),
        ]
        if system == SYSTEM:
            figures.append(
                robustness(
                    "variants_files_as_expected",
                    self.as_expected,
                    "files",
                    measured="rows_in, rows_out, rows_dropped and kept texts exactly as the contract computes them "
                    "from the truth (tests/unit/test_variant_corpus.py)",
                )
            )
        return figures


def read_by_peer(read: Callable[[Path], set[str]], path: Path) -> tuple[set[str] | None, str | None]:
    """What a peer returned, or None and the name of what it raised."""
    try:
        return read(path), None
    except Exception as problem:  # noqa: BLE001 — a peer may fail in any way; that is what is counted
        return None, type(problem).__name__


def robustness_figures(workdir: Path, with_peers: bool) -> list[Figure]:
    """Each system on every variant that must be accepted (refusing the others is the right outcome)."""
    corpus = [variant for variant in build_corpus() if isinstance(variant.expected, Expected)]
    peers = ROBUSTNESS_PEERS if with_peers else {}
    ours = Robustness()
    theirs = {name: Robustness() for name in peers}
    folder = workdir / "variants"
    for index, variant in enumerate(corpus):
        try:
            (returned, as_expected), error = validator_cells(variant), None
        except Exception as problem:  # noqa: BLE001 — counted: the validator must refuse bad content, never raise
            (returned, as_expected), error = (None, False), type(problem).__name__
        ours.count(variant, returned, error)
        ours.as_expected += as_expected
        path = folder / str(index) / variant.file_name
        path.parent.mkdir(parents=True)
        path.write_bytes(variant.content)
        for name, read in peers.items():
            theirs[name].count(variant, *read_by_peer(read, path))
    shutil.rmtree(folder, ignore_errors=True)
    input_mb = round(sum(len(variant.content) for variant in corpus) / MiB, 1)
    how = (
        f"{len(corpus)} variants of the first 300 rows of {len({variant.source for variant in corpus})} real files; "
        "recovered: a text the contract keeps, found (CRLF/CR as LF, stripped) in some returned cell; loaded: a "
        f"table with at least {LOADED_SHARE:.0%} of them; {SYSTEM} reads the bytes with each variant's settings, "
        "the peers read them from a file with their defaults"
    )
    figures = ours.figures(SYSTEM, input_mb, how)
    for name, account in theirs.items():
        figures += account.figures(name, input_mb, how)
    return figures


def variant_robustness(inputs: BenchInputs) -> list[Figure]:
    return robustness_figures(inputs.workdir, inputs.peers)


# The figures, in order.
MEASUREMENTS: list[Callable[[BenchInputs], list[Figure]]] = [
    chunker_throughput,
    validator_throughput,
    reader_peers,
    chunker_memory,
    chunker_against_moto,
    peers,
    variant_robustness,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input-mib", type=int, default=1024, help="size of the large input")
    parser.add_argument("--small-mib", type=int, default=200, help="size of the small input")
    parser.add_argument("--no-peers", action="store_true", help="skip DuckDB, pandas, CleverCSV and Python csv")
    parser.add_argument(
        "--only-robustness", action="store_true", help="only the robustness figures on the variant corpus"
    )
    parser.add_argument("--probe-memory", metavar="CSV", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peer", nargs=2, metavar=("CSV", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--duckdb-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--python-csv", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.probe_memory:
        print(json.dumps(probe_memory(Path(options.probe_memory), options.traced)))
        return
    if options.peer:
        source, target = options.peer
        result = (
            python_csv_split(source, target)
            if options.python_csv
            else duckdb_split(source, target, options.duckdb_threads)
        )
        print(json.dumps(result))
        return

    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        if options.only_robustness:
            for result in robustness_figures(workdir, with_peers=not options.no_peers):
                print(json.dumps(result), flush=True)
            return
        rows = review_rows()
        large, small = workdir / "reviews-large.csv", workdir / "reviews-small.csv"
        inputs = BenchInputs(
            large=large,
            small=small,
            rows_large=build_input(large, options.input_mib * MiB, rows),
            rows_small=build_input(small, options.small_mib * MiB, rows),
            workdir=workdir,
            peers=not options.no_peers,
        )
        for measure in MEASUREMENTS:
            for result in measure(inputs):
                print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
