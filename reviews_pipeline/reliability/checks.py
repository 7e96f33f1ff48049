"""After a scenario: is every file final, do ledger, bucket and summary agree, is every row accounted for?"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from reviews_model.artifacts import MANIFEST
from reviews_model.versions import Version
from services.trainer.versions import ModelRegistry
from shared import layout
from shared.ledger import FileRecord, barrier_counter

from ..runtime import LocalPipeline, UploadedFile
from ..summary import build_summary, pipeline_events
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


# -- the models ---------------------------------------------------------------------------------

FINISHED_VERSION_STATUSES = ("promoted", "not_promoted", "failed")


def registry(pipeline: LocalPipeline) -> ModelRegistry:
    return ModelRegistry(pipeline.client("dynamodb"), pipeline.stack.ledger_table)


def key_versions(pipeline: LocalPipeline, prefix: str) -> Counter[str]:
    """How many S3 versions each key under `prefix` has: a key written twice has two."""
    s3 = pipeline.client("s3")
    versions: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=pipeline.stack.bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            versions[version["Key"]] += 1
    return versions


def model_trained_events(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    """The ModelTrained events the monitor logged, one per event id (a redelivery of one event is not two)."""
    unique = {
        event["id"]: event["detail"]
        for event in pipeline_events(pipeline.store)
        if event.get("detail-type") == "ModelTrained" and not event.get("replay-name")
    }
    return list(unique.values())


def model_problems(pipeline: LocalPipeline) -> tuple[list[str], dict[str, Any]]:
    """Do the registry, the bucket and the events agree on the models? (problems, evidence)

    No version number skipped (each major's minors run 0, 1, 2, …), every version finished (promoted,
    not promoted or failed) and no run left running, none promoted twice (one ModelTrained{promoted}
    each, its models/vX.Y/manifest.json written once), and models/current.json naming the registry's
    current version, with models/current/ holding that version's files whole (absent when there is none).
    """
    models = registry(pipeline)
    versions = models.versions()
    current = models.current()
    problems: list[str] = []
    minors: dict[int, list[int]] = {}
    for entry in versions:
        version = Version.parse(entry["version"])
        minors.setdefault(version.major, []).append(version.minor)
        if entry["status"] not in FINISHED_VERSION_STATUSES:
            problems.append(f"model {entry['version']} was left {entry['status']}")
    for major, taken in minors.items():
        if taken != list(range(len(taken))):
            problems.append(f"model versions of major {major} skip numbers: {taken}")
    running = [run["job_name"] for run in models.runs(running_only=True)]
    if running:
        problems.append(f"training runs left running: {running}")
    events = model_trained_events(pipeline)
    promotions = Counter(str(detail["version"]) for detail in events if detail.get("promoted"))
    problems += [f"{version} promoted {count} times" for version, count in promotions.items() if count > 1]
    manifests = key_versions(pipeline, layout.MODELS)
    problems += [
        f"{key} written {count} times"
        for key, count in manifests.items()
        if key.endswith("/" + MANIFEST) and not key.startswith(layout.CURRENT_MODEL_PREFIX) and count > 1
    ]
    problems += current_model_problems(pipeline, current)
    evidence = {
        "versions": {entry["version"]: entry["status"] for entry in versions},
        "current": str(current) if current else None,
        "promotions": dict(promotions),
        "model_trained_events": Counter(str(detail["version"]) for detail in events),
        "runs": {run["job_name"]: run["status"] for run in models.runs()},
    }
    return problems, evidence


def current_model_problems(pipeline: LocalPipeline, current: Version | None) -> list[str]:
    """models/current.json names `current`, and models/current/ holds its files, each as its manifest hashes it."""
    store = pipeline.store
    pointer_key = layout.current_model_pointer_key()
    if current is None:
        return [f"no model is current, yet {pointer_key} exists"] if store.head(pointer_key) else []
    if store.head(pointer_key) is None:
        return [f"{current} is current but {pointer_key} is missing"]
    problems = []
    named = store.read_json(pointer_key).get("version")
    if named != str(current):
        problems.append(f"{pointer_key} names {named}, the registry {current}")
    copy = layout.CURRENT_MODEL_PREFIX
    if store.head(copy + MANIFEST) is None:
        return [*problems, f"{copy}{MANIFEST} is missing"]
    manifest = store.read_json(copy + MANIFEST)
    if manifest.get("version") != str(current):
        problems.append(f"{copy}{MANIFEST} is of {manifest.get('version')}, not {current}")
    for name, digest in manifest["files"].items():
        if store.head(copy + name) is None:
            problems.append(f"{copy}{name} is missing")
        elif hashlib.sha256(store.read_bytes(copy + name)).hexdigest() != digest:
            problems.append(f"{copy}{name} does not match its manifest's hash")
    return problems


def alerts_of_kind(pipeline: LocalPipeline, kind: str) -> list[dict[str, Any]]:
    store = pipeline.store
    alerts = [store.read_json(key) for key in store.keys(layout.MONITORING_ALERTS)]
    return [alert for alert in alerts if alert.get("kind") == kind]
