"""After a scenario: is every file final, do ledger, bucket and summary agree, is every row accounted for?"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from shared import layout
from shared.ledger import FileRecord, barrier_counter

from ..runtime import LocalPipeline, UploadedFile
from ..summary import build_summary
from .inputs import InputFile


@dataclass
class ScenarioResult:
    """What one scenario tried and what it found; `problems` empty means the pipeline came through."""

    name: str
    title: str
    files_tried: int = 0
    bad_inputs: list[str] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    """Each fault injected: name, what it did, how many calls or messages it hit."""
    rows_in: int = 0
    rows_lost: int = 0
    problems: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def survived(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "survived": self.survived,
            "files_tried": self.files_tried,
            "bad_inputs": self.bad_inputs,
            "faults": self.faults,
            "rows_in": self.rows_in,
            "rows_lost": self.rows_lost,
            "problems": self.problems,
            "evidence": self.evidence,
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class Accounting:
    problems: list[str]
    rows_in: int
    rows_lost: int
    summary: dict[str, Any]
    records: dict[str, FileRecord]


def _parquet_rows(pipeline: LocalPipeline, key: str) -> int:
    rows: int = pq.ParquetFile(io.BytesIO(pipeline.store.read_bytes(key))).metadata.num_rows
    return rows


def _bucket_problems(pipeline: LocalPipeline, record: FileRecord, parts: list[FileRecord]) -> list[str]:
    """Does the bucket hold what the ledger says this file became?"""
    store = pipeline.store
    problems = []
    if record.status == "rejected":
        if record.check == "key":
            return []  # refused before anything was read: nothing may have been moved or written
        if not record.report_key or store.head(record.report_key) is None:
            problems.append(f"rejected ({record.check}) but its report {record.report_key} is not in the bucket")
        if not record.error_key or store.head(record.error_key) is None:
            problems.append(f"rejected but the file is not under errors/ ({record.error_key})")
        if store.head(record.key) is not None:
            problems.append(f"rejected but {record.key} is still under raw/")
        return problems
    if store.head(record.key, record.version_id) is None:
        problems.append(f"{record.status} but the raw object {record.key} is gone")
    if record.status == "validated":
        assert record.dataset is not None
        processed = layout.processed_key(record.dataset, record.root_file_id, None)
        if store.head(processed) is None:
            problems.append(f"validated but {processed} is missing")
        elif (rows := _parquet_rows(pipeline, processed)) != record.rows_out:
            problems.append(f"the ledger says {record.rows_out} rows out, {processed} holds {rows}")
    if record.status == "chunked":
        assert record.dataset is not None
        expected = record.counters.get(barrier_counter("validation", "expected"), 0)
        chunk_objects = list(store.keys(layout.chunks_prefix(record.dataset, record.root_file_id)))
        if len(chunk_objects) != expected:
            problems.append(f"chunked into {expected} parts but chunks/ holds {len(chunk_objects)} objects")
        if len(parts) != expected:
            problems.append(f"chunked into {expected} parts but the ledger holds {len(parts)} part records")
        unfinished = [part.key for part in parts if not part.is_final]
        if unfinished:
            problems.append(f"parts not final: {unfinished}")
    return problems


def account_for(
    pipeline: LocalPipeline,
    uploaded: list[UploadedFile],
    inputs: list[InputFile],
    *,
    settled: bool = True,
    stuck: list[str] | None = None,
    dead_letters_allowed: bool = False,
) -> Accounting:
    """Check every uploaded file against its input, the ledger, the bucket and the run summary."""
    every_record = list(pipeline.ledger.files())
    records = {record.file_id: record for record in every_record if record.is_root}
    parts_of: dict[str, list[FileRecord]] = {}
    for record in every_record:
        if not record.is_root:
            parts_of.setdefault(record.root_file_id, []).append(record)
    dead_letters = pipeline.queue_depths(dead_letter=True)
    summary = build_summary(uploaded, records, pipeline.store, dead_letters, settled=settled, stuck=stuck or [])
    problems: list[str] = [] if settled else [f"not settled: {stuck}"]
    rows_in = rows_lost = 0
    for file, given, summarised in zip(uploaded, inputs, summary["files"], strict=True):
        name = file.path.name
        if file.file_id not in records:
            problems.append(f"{name}: no ledger record (lost)")
            continue
        record = records[file.file_id]
        if not record.is_final:
            problems.append(f"{name}: still {record.status} at {record.stage}")
            continue
        if summarised["status"] != record.status:
            problems.append(f"{name}: the summary says {summarised['status']}, the ledger {record.status}")
        if given.bad_because is not None:
            if record.status != "rejected":
                problems.append(f"{name} ({given.bad_because}) was {record.status}, not rejected")
        elif record.status == "rejected":
            problems.append(f"{name} was rejected: {record.reason}")
        problems += [
            f"{name}: {problem}" for problem in _bucket_problems(pipeline, record, parts_of.get(file.file_id, []))
        ]
        # The summary's row account is built from this same ledger and bucket (reconciliation.reconcile).
        account = summarised["reconciliation"]
        if record.status != "rejected":
            if given.rows is not None and account["rows_in"] != given.rows:
                problems.append(f"{name}: holds {given.rows} rows but the pipeline read {account['rows_in']}")
                rows_lost += max(0, given.rows - account["rows_in"])
            problems += [f"{name}: {problem}" for problem in account["problems"]]
            rows_in += account["rows_in"]
            rows_lost += account["rows_lost"]
    if not dead_letters_allowed and any(dead_letters.values()):
        problems.append(f"messages left in dead-letter queues: {dead_letters}")
    return Accounting(problems, rows_in, rows_lost, summary, records)
