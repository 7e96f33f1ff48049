"""The scenarios: each starts the whole local runtime, drops real files in, injects its fault and checks the outcome."""

from __future__ import annotations

import io
import json
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shared import layout
from shared.etl_schema import TOKENS, etl_arrow_schema
from shared.ledger import barrier_counter, file_id_for
from shared.samples import sample_s3_object_created

from ..runtime import LocalPipeline, RuntimeConfig, UploadedFile
from ..summary import pipeline_events
from .checks import (
    FINISHED_VERSION_STATUSES,
    ScenarioResult,
    account_for,
    alerts_of_kind,
    key_versions,
    model_problems,
    registry,
)
from .inputs import (
    ALEXA,
    BEAUTY,
    DATAFINITI,
    ELECTRONICS,
    GIFT_CARD,
    InputFile,
    bad_inputs,
    json_lines_slices,
    oversize_slices,
    real_file,
    real_inputs,
)

# Short visibility: a failed message comes back in seconds. Four attempts per AWS call keep a
# persistent storage fault from holding a message for minutes before it is handed back.
FAST_RETRIES: dict[str, Any] = {"visibility_timeout_seconds": 3, "aws_max_attempts": 4}
# Small enough that the bigger real files (All Beauty, Datafiniti) are split into parts.
CHUNKING: dict[str, dict[str, Any]] = {
    "validator": {"max_size_bytes": 1_000_000},
    "chunker": {"part_size_bytes": 400_000},
}
SETTLE_SECONDS = 600
FINE_FOOD = "fine-food-reviews-first1000/Reviews.csv"
"""A second small training file: 1,000 rated reviews."""
# A training whose final state change is lost is swept a little over a minute after its launch (the
# shortest max runtime SageMaker takes, plus a grace), the sweeper firing every few seconds.
QUICK_SWEEP: dict[str, Any] = {"schedule_interval_seconds": 5}
SHORT_DEADLINE: dict[str, Any] = {"max_runtime_seconds": 60, "sweep_grace_seconds": 5}
TRAINING_SECONDS = 300
OUTPUT_AREAS = (layout.PROCESSED, layout.CHUNKS, layout.ETL, layout.ERRORS, layout.MODELS, layout.PREDICTIONS)


class ScenarioAbortedError(Exception):
    """The scenario cannot go on (what it waits for will not come); the message is its problem."""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    run: Callable[[Path, Path, ScenarioResult], None]
    """(data_dir, work_dir, result): runs the scenario and fills in the result."""


@contextmanager
def running(work_dir: Path, **config: Any) -> Iterator[LocalPipeline]:
    with LocalPipeline(work_dir, config=RuntimeConfig.model_validate(config)) as pipeline:
        yield pipeline


def upload_all(pipeline: LocalPipeline, inputs: list[InputFile]) -> list[UploadedFile]:
    taken: set[str] = set()
    return [pipeline.upload(given.path, given.dataset, taken) for given in inputs]


def settle_and_account(
    pipeline: LocalPipeline,
    uploaded: list[UploadedFile],
    inputs: list[InputFile],
    result: ScenarioResult,
    *,
    dead_letters_allowed: bool = False,
    again: bool = False,
) -> dict[str, Any]:
    """Wait for every file to settle, then check all of them; the run summary.

    `again`: the same files checked a second time (after a replay), so not counted twice.
    """
    settled = pipeline.wait_until_settled(uploaded, SETTLE_SECONDS)
    accounting = account_for(
        pipeline,
        uploaded,
        inputs,
        settled=settled.settled,
        stuck=settled.stuck,
        dead_letters_allowed=dead_letters_allowed,
    )
    result.problems += accounting.problems
    result.rows_lost += accounting.rows_lost
    if again:
        return accounting.summary
    result.files_tried += len(uploaded)
    result.bad_inputs += [f"{given.path.name}: {given.bad_because}" for given in inputs if given.bad_because]
    result.rows_in += accounting.rows_in
    result.evidence["statuses"] = dict(Counter(file["status"] for file in accounting.summary["files"]))
    return accounting.summary


def object_versions(pipeline: LocalPipeline, prefixes: tuple[str, ...] = OUTPUT_AREAS) -> dict[str, int]:
    """How many versions each output key has: a rewritten output shows up as a second version."""
    s3 = pipeline.client("s3")
    versions: Counter[str] = Counter()
    for prefix in prefixes:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=pipeline.stack.bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                versions[version["Key"]] += 1
    return dict(versions)


def record_faults(pipeline: LocalPipeline, result: ScenarioResult) -> None:
    for fault in pipeline.fault_report():
        result.faults.append(
            {
                "name": fault["name"],
                "what": f"{fault['action']} on {fault['service']}'s {fault['operation']} {fault['key_prefix']}".strip(),
                "injected": fault["injected"],
            }
        )
        if fault["injected"] == 0:
            result.problems.append(f"fault {fault['name']} never fired: the scenario did not test it")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout:.0f} s")
        time.sleep(0.5)


def small_run(data_dir: Path) -> list[InputFile]:
    """One real file to train on and one to classify: the whole pipeline, quickly."""
    return [real_file(data_dir, GIFT_CARD, "train"), real_file(data_dir, ELECTRONICS, "inference")]


# -- the scenarios ------------------------------------------------------------------------------


def real_files(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """The whole reference collection at once: train on most of it, classify three files, reject the rest."""
    inputs = real_inputs(data_dir)
    with running(work_dir, visibility_timeout_seconds=5, services=CHUNKING) as pipeline:
        uploaded = upload_all(pipeline, inputs)
        summary = settle_and_account(pipeline, uploaded, inputs, result)
        records = {record.file_id: record for record in pipeline.ledger.files(roots_only=True)}
        result.evidence["files"] = {
            str(file.path.relative_to(data_dir)): {
                **{name: summarised[name] for name in ("dataset", "status", "layout", "parts", "rows_in", "rows_out")},
                "rows_dropped": summarised["rows_dropped"],
                "check": records[file.file_id].check if file.file_id in records else None,
                "reason": summarised["reason"],
                "reconciliation": summarised["reconciliation"],
            }
            for file, summarised in zip(uploaded, summary["files"], strict=True)
        }
        result.evidence["model"] = summary["model"]
        result.evidence["predictions"] = {
            str(Path(prediction["input"]).relative_to(data_dir)): prediction for prediction in summary["predictions"]
        }
        index = layout.model_index_key()
        versions = pipeline.store.read_json(index)["versions"] if pipeline.store.head(index) else []
        result.evidence["model_versions"] = [entry["version"] for entry in versions]
        result.problems += duplicate_output_problems(pipeline)


def worker_crash(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """Kill workers in the middle of a batch, after they wrote some outputs; redelivery must duplicate nothing."""
    inputs = [real_file(data_dir, name, "train") for name in (GIFT_CARD, ALEXA)]
    inputs += [real_file(data_dir, name, "inference") for name in (BEAUTY, DATAFINITI)]
    faults = [
        {"name": "validator-crash", "service": "validator", "action": "crash", "operation": "s3:PutObject",
         "key_prefix": layout.PROCESSED},
        {"name": "etl-crash", "service": "etl", "action": "crash", "operation": "events:PutEvents", "skip": 1},
        # The launcher, between claiming the version and creating the SageMaker job.
        {"name": "trainer-crash", "service": "trainer", "action": "crash", "operation": "sagemaker:CreateTrainingJob"},
        {"name": "predictor-crash", "service": "predictor", "action": "crash", "operation": "s3:PutObject",
         "key_prefix": layout.PREDICTIONS, "skip": 1},
    ]  # fmt: skip
    # A short deadline: a run the crash left without its job is swept (and shows up) within the scenario.
    services = {**CHUNKING, "trainer": SHORT_DEADLINE}
    with running(work_dir, **FAST_RETRIES, **QUICK_SWEEP, faults=faults, services=services) as pipeline:
        uploaded = upload_all(pipeline, inputs)
        settle_and_account(pipeline, uploaded, inputs, result)
        wait_for(models_finished(pipeline), TRAINING_SECONDS, "every training finished")
        record_faults(pipeline, result)
        restarts = {service: worker.restarts for service, worker in pipeline.pool.workers.items()}
        result.evidence["restarts"] = restarts
        for service in ("validator", "etl", "trainer", "predictor"):
            if restarts.get(service, 0) < 1:
                result.problems.append(f"the {service} worker was never restarted: it did not crash")
        result.problems += duplicate_output_problems(pipeline)
        check_models(pipeline, result)
        failed = [version for version, status in result.evidence["models"]["versions"].items() if status == "failed"]
        if failed:
            result.problems.append(f"a crashed launch left failed versions behind: {failed}")


def duplicate_output_problems(pipeline: LocalPipeline) -> list[str]:
    """Outputs that exist twice: a part transformed or predicted under two keys, a model version skipped or doubled."""
    problems = []
    store = pipeline.store
    for record in pipeline.ledger.files(roots_only=True):
        if record.status == "rejected" or record.dataset is None:
            continue
        parts = record.counters.get(barrier_counter("validation", "expected"), 1)
        etl_parts = list(store.keys(f"{layout.etl_prefix(record.dataset)}{record.root_file_id}/"))
        if len(etl_parts) > parts:
            problems.append(f"{record.key}: {len(etl_parts)} ETL outputs for {parts} parts")
        predicted = [
            key for key in store.keys(f"{layout.PREDICTIONS}{record.root_file_id}/") if key.endswith(".parquet")
        ]
        if len(predicted) > parts:
            problems.append(f"{record.key}: {len(predicted)} prediction outputs for {parts} parts")
    index_key = layout.model_index_key()
    if store.head(index_key) is not None:
        versions = [entry["version"] for entry in store.read_json(index_key)["versions"]]
        if len(versions) != len(set(versions)):
            problems.append(f"model versions listed twice: {versions}")
        minors = sorted(int(version.split(".")[1]) for version in versions)
        if minors != list(range(minors[0], minors[0] + len(minors))):
            problems.append(f"model versions skip numbers: {versions}")
    return problems


def duplicate_delivery(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """The same S3 notification arrives three times (S3 and EventBridge deliver at least once)."""
    inputs = small_run(data_dir)
    with running(work_dir, **FAST_RETRIES) as pipeline:
        s3 = pipeline.client("s3")
        sqs = pipeline.client("sqs")
        uploaded = upload_all(pipeline, inputs)
        for file in uploaded:
            head = s3.head_object(Bucket=pipeline.stack.bucket, Key=file.key)
            notification = sample_s3_object_created(file.key)
            notification["detail"]["bucket"]["name"] = pipeline.stack.bucket
            notification["detail"]["object"].update(
                {"size": head["ContentLength"], "etag": head["ETag"].strip('"'), "version-id": head["VersionId"]}
            )
            notification["resources"] = [f"arn:aws:s3:::{pipeline.stack.bucket}"]
            for _ in range(2):
                sqs.send_message(
                    QueueUrl=pipeline.stack.queues["receiver"].queue_url, MessageBody=json.dumps(notification)
                )
        result.faults.append({"name": "duplicate-notification", "what": "each S3 notification delivered 3 times",
                              "injected": 2 * len(uploaded)})  # fmt: skip
        settle_and_account(pipeline, uploaded, inputs, result)
        roots = list(pipeline.ledger.files(roots_only=True))
        if len(roots) != len(uploaded):
            result.problems.append(f"{len(uploaded)} files became {len(roots)} ledger records")
        rewritten = {key: count for key, count in object_versions(pipeline).items() if count > 1}
        if rewritten:
            result.problems.append(f"outputs written more than once: {rewritten}")
        result.evidence["output_versions"] = object_versions(pipeline)


def refused_events(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """EventBridge refuses some entries of PutEvents; every service's publisher must retry them."""
    inputs = small_run(data_dir)
    # The trainer publishes through its finisher (ModelTrained); its launcher only ever says TrainingSkipped.
    faults = [
        {"name": f"{service}-events-refused", "service": service, "action": "refuse_events",
         "operation": "events:PutEvents", "times": 2}
        for service in ("receiver", "validator", "etl", "trainingfinisher", "predictor")
    ]  # fmt: skip
    with running(work_dir, **FAST_RETRIES, faults=faults) as pipeline:
        uploaded = upload_all(pipeline, inputs)
        summary = settle_and_account(pipeline, uploaded, inputs, result)
        record_faults(pipeline, result)
        if not summary["predictions"] or not summary["predictions"][0]["predictions"]:
            result.problems.append("the inference file was never predicted: an event was lost")


def storage_errors(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """S3 throttles (retried with backoff and survived), then fails one file's reads until fixed (DLQ, redrive)."""
    inputs = small_run(data_dir)
    broken_read = f"{layout.PROCESSED}inference/"
    faults = [
        {"name": "raw-reads-throttled", "service": "validator", "action": "error", "operation": "s3:GetObject",
         "key_prefix": layout.RAW, "times": 3, "status": 503},
        {"name": "processed-reads-failing", "service": "etl", "action": "error", "operation": "s3:GetObject",
         "key_prefix": broken_read, "times": None, "status": 500},
    ]  # fmt: skip
    with running(work_dir, **FAST_RETRIES, faults=faults) as pipeline:
        uploaded = upload_all(pipeline, inputs)
        wait_for(lambda: pipeline.queue_depths(dead_letter=True)["etl"] > 0, 180, "the failing ETL message in the DLQ")
        alerted = pipeline.raise_dead_letter_alerts({})
        alerts = list(pipeline.store.keys(layout.MONITORING_ALERTS))
        if not alerts:
            result.problems.append("no alert was raised for the message in the ETL's DLQ")
        result.evidence["dead_letters_before_fix"] = alerted
        pipeline.clear_fault("processed-reads-failing")
        result.evidence["redriven"] = pipeline.redrive("etl")
        settle_and_account(pipeline, uploaded, inputs, result)
        record_faults(pipeline, result)


def poison_message(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """Messages no handler can take go to the DLQ after their receives; the workers carry on; redrive replays them."""
    inputs = [real_file(data_dir, GIFT_CARD, "train")]
    poison = {
        "validator": "this is not JSON",
        "etl": json.dumps({"detail-type": "FileValidated", "detail": {"file_id": 42}}),
    }
    with running(work_dir, **FAST_RETRIES) as pipeline:
        sqs = pipeline.client("sqs")
        for service, body in poison.items():
            sqs.send_message(QueueUrl=pipeline.stack.queues[service].queue_url, MessageBody=body)
        result.bad_inputs += [f"on the {service} queue, {body[:60]}" for service, body in poison.items()]
        uploaded = upload_all(pipeline, inputs)
        wait_for(
            lambda: all(pipeline.queue_depths(dead_letter=True)[service] for service in poison),
            120,
            "poison in the DLQs",
        )
        settle_and_account(pipeline, uploaded, inputs, result, dead_letters_allowed=True)
        result.faults.append(
            {"name": "poison", "what": "undeliverable messages on two queues", "injected": len(poison)}
        )
        depths = pipeline.queue_depths(dead_letter=True)
        result.evidence["dead_letters"] = depths
        pipeline.raise_dead_letter_alerts({})
        kinds = [pipeline.store.read_json(key)["kind"] for key in pipeline.store.keys(layout.MONITORING_ALERTS)]
        if kinds.count("dlq_message") != len(poison):
            result.problems.append(f"expected one DLQ alert per poisoned queue, got {kinds}")
        result.evidence["redriven"] = {service: pipeline.redrive(service) for service in poison}
        # Still poison: replayed, refused again, back in the DLQ; and the workers never died.
        wait_for(
            lambda: all(pipeline.queue_depths(dead_letter=True)[service] for service in poison), 120, "poison back"
        )
        restarts = {service: worker.restarts for service, worker in pipeline.pool.workers.items() if worker.restarts}
        if restarts:
            result.problems.append(f"workers died on bad messages: {restarts}")


def archive_replay(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """Replay every event from the bus archive after a run: consumers are idempotent, nothing changes."""
    inputs = small_run(data_dir)
    inputs += bad_inputs(data_dir, work_dir / "bad", 1)
    with running(work_dir, **FAST_RETRIES) as pipeline:
        uploaded = upload_all(pipeline, inputs)
        settle_and_account(pipeline, uploaded, inputs, result)
        before = ledger_snapshot(pipeline), object_versions(pipeline), alert_count(pipeline)
        events = pipeline.client("events")
        archive = events.describe_archive(ArchiveName=pipeline.stack.archive_name)
        bus_arn = events.describe_event_bus(Name=pipeline.stack.event_bus)["Arn"]
        events.start_replay(
            ReplayName=f"replay-{int(time.time())}",
            EventSourceArn=archive["ArchiveArn"],
            EventStartTime=datetime.now(UTC) - timedelta(hours=1),
            EventEndTime=datetime.now(UTC),
            Destination={"Arn": bus_arn},
        )
        result.faults.append({"name": "archive-replay", "what": "every archived event replayed onto the bus",
                              "injected": archive["EventCount"]})  # fmt: skip
        wait_for(lambda: replayed_events_seen(pipeline) > 0, 60, "replayed events reaching the consumers")
        settle_and_account(pipeline, uploaded, inputs, result, again=True)
        after = ledger_snapshot(pipeline), object_versions(pipeline), alert_count(pipeline)
        for label, was, now in zip(("ledger", "bucket outputs", "alerts"), before, after, strict=True):
            if was != now:
                result.problems.append(f"the replay changed the {label}")
        result.evidence["events_replayed"] = archive["EventCount"]
        result.evidence["replayed_events_consumed_by_monitor"] = replayed_events_seen(pipeline)


def replayed_events_seen(pipeline: LocalPipeline) -> int:
    """Replayed events the monitor logged (EventBridge marks them with `replay-name`)."""
    return sum(1 for event in pipeline_events(pipeline.store) if event.get("replay-name"))


def ledger_snapshot(pipeline: LocalPipeline) -> dict[str, Any]:
    return {
        record.file_id: (record.status, record.counters, record.stages, record.outputs)
        for record in pipeline.ledger.files()
    }


def alert_count(pipeline: LocalPipeline) -> int:
    return len(list(pipeline.store.keys(layout.MONITORING_ALERTS)))


def load(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """200 files at once: valid, invalid and oversize, for training and for inference."""
    inputs = json_lines_slices(data_dir, work_dir / "valid", 120, 30, "valid")
    inputs += oversize_slices(data_dir, work_dir / "oversize", 30, 300)
    inputs += bad_inputs(data_dir, work_dir / "bad", 50)
    services = {"validator": {"max_size_bytes": 100_000}, "chunker": {"part_size_bytes": 40_000}}
    with running(work_dir, visibility_timeout_seconds=30, services=services) as pipeline:
        started = time.monotonic()
        uploaded = upload_all(pipeline, inputs)
        settle_and_account(pipeline, uploaded, inputs, result)
        result.evidence["settled_seconds"] = round(time.monotonic() - started, 1)
        result.problems += duplicate_output_problems(pipeline)


def hostile_inputs(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """Forged announcements, hostile keys and a pickle as the current model: refused, nothing touched, nothing run."""
    marker = work_dir / "pickle-ran"
    with running(work_dir, **FAST_RETRIES) as pipeline:
        stack = pipeline.stack
        s3 = pipeline.client("s3")
        source = (data_dir / GIFT_CARD).read_bytes()
        genuine_version = s3.put_object(Bucket=stack.bucket, Key="uploads/gift.tsv", Body=source)["VersionId"]
        forged = {
            "another bucket": ("someone-elses-bucket", "raw/train/gift.tsv"),
            "outside the inbound prefixes": (stack.bucket, "uploads/gift.tsv"),
            "a pipeline-owned prefix": (stack.bucket, "models/current.json"),
            "a .. segment": (stack.bucket, "raw/train/../../models/current.json"),
            "an absolute path": (stack.bucket, "/etc/passwd"),
            "a NUL byte": (stack.bucket, "raw/train/gift\x00.tsv"),
            "an escape sequence": (stack.bucket, "raw/train/\x1b[2Jgift.tsv"),
            "a newline": (stack.bucket, "raw/train/gift\n.tsv"),
        }
        entries = [
            {
                "Source": "com.example.crawler",
                "DetailType": "FileReceived",
                "Detail": json.dumps(
                    {
                        "bucket": bucket,
                        "key": key,
                        "version_id": genuine_version,
                        "size": len(source),
                        "dataset": "train",
                        "origin": "external",
                    }
                ),
                "EventBusName": stack.event_bus,
            }
            for bucket, key in forged.values()
        ]
        refused = pipeline.client("events").put_events(Entries=entries)["FailedEntryCount"]
        if refused:
            result.problems.append(f"the bus refused {refused} forged events: they were not delivered to be tested")
        # A key that S3 accepts but the pipeline must not: it would read as a path outside raw/.
        escaping_key = "raw/train/../../models/escape.tsv"
        escaping_version = s3.put_object(Bucket=stack.bucket, Key=escaping_key, Body=source)["VersionId"]
        # A pickle as the current model: unpickling it would create the marker file.
        s3.put_object(Bucket=stack.bucket, Key=layout.current_model_pointer_key(), Body=pickle.dumps(_Tripwire(marker)))
        upload_all(pipeline, [real_file(data_dir, ELECTRONICS, "inference")])
        result.bad_inputs += [f"forged FileReceived naming {what}" for what in forged]
        result.bad_inputs += [f"an upload under the key {escaping_key!r}", "a pickle as models/current.json"]
        result.files_tried += len(forged) + 2

        forged_ids = {what: file_id_for(bucket, key, genuine_version) for what, (bucket, key) in forged.items()}
        escaping_id = file_id_for(stack.bucket, escaping_key, escaping_version)

        def refusals_recorded() -> bool:
            records = {record.file_id: record for record in pipeline.ledger.files()}
            return all(
                records.get(file_id) and records[file_id].is_final for file_id in [*forged_ids.values(), escaping_id]
            )

        wait_for(refusals_recorded, 120, "every forged event and hostile key refused")
        wait_for(lambda: pipeline.queue_depths(dead_letter=True)["predictor"] > 0, 120, "the pickled model refused")
        records = {record.file_id: record for record in pipeline.ledger.files()}
        for what, file_id in [*forged_ids.items(), ("the escaping upload", escaping_id)]:
            record = records[file_id]
            if (record.status, record.check) != ("rejected", "key"):
                result.problems.append(f"{what}: {record.status} ({record.check}), not refused by the key check")
        if s3.head_object(Bucket=stack.bucket, Key="uploads/gift.tsv")["VersionId"] != genuine_version:
            result.problems.append("a forged event changed uploads/gift.tsv")
        if list(pipeline.store.keys(layout.ERRORS)):
            result.problems.append("a refused announcement moved something to errors/")
        if marker.exists():
            result.problems.append("the pickled model was unpickled: code from storage ran")
        if list(pipeline.store.keys(layout.PREDICTIONS)):
            result.problems.append("predictions were written with a pickled model")
        result.evidence["refused"] = {what: records[file_id].reason for what, file_id in forged_ids.items()}


# -- training on SageMaker ----------------------------------------------------------------------


def models_finished(pipeline: LocalPipeline, at_least: int = 1) -> Callable[[], bool]:
    """A wait condition: `at_least` versions claimed, every one finished, no training run still running."""

    def finished() -> bool:
        models = registry(pipeline)
        versions = models.versions()
        return (
            len(versions) >= at_least
            and all(entry["status"] in FINISHED_VERSION_STATUSES for entry in versions)
            and not models.runs(running_only=True)
        )

    return finished


def check_models(pipeline: LocalPipeline, result: ScenarioResult, label: str = "models") -> dict[str, Any]:
    """The registry, bucket and events agree on the models (checks.model_problems); the evidence, kept as `label`."""
    problems, evidence = model_problems(pipeline)
    result.problems += [f"{label}: {problem}" for problem in problems]
    result.evidence[label] = evidence
    return evidence


def train_once(pipeline: LocalPipeline, data_dir: Path, result: ScenarioResult, name: str = GIFT_CARD) -> str:
    """Upload one real training file, wait until it is settled and its training finished; the version trained."""
    inputs = [real_file(data_dir, name, "train")]
    claimed = len(registry(pipeline).versions())
    uploaded = upload_all(pipeline, inputs)
    settle_and_account(pipeline, uploaded, inputs, result)
    if pipeline.queue_depths(dead_letter=True)["trainer"] and len(registry(pipeline).versions()) == claimed:
        raise ScenarioAbortedError(f"no training launched for {Path(name).name}: its trigger is in the trainer's DLQ")
    wait_for(models_finished(pipeline, claimed + 1), TRAINING_SECONDS, f"the training on {Path(name).name}")
    return str(registry(pipeline).versions()[-1]["version"])


def training_failure(pipeline: LocalPipeline, version: str, result: ScenarioResult, words: str) -> dict[str, Any]:
    """A failed training: `version` failed for a reason holding `words`, alerted, nothing promoted or written."""
    store = pipeline.store
    entry = next(entry for entry in registry(pipeline).versions() if entry["version"] == version)
    if entry["status"] != "failed":
        result.problems.append(f"{version} is {entry['status']}, not failed")
    reason = str(entry.get("reason", ""))
    if words not in reason:
        result.problems.append(f"{version} failed for {reason!r}, not {words!r}")

    def alerted() -> list[dict[str, Any]]:
        return [a for a in alerts_of_kind(pipeline, "training_failed") if a["details"].get("version") == version]

    wait_for(lambda: bool(alerted()), 60, f"the training_failed alert of {version}")
    if registry(pipeline).current() is not None:
        result.problems.append(f"a model is current after {version} failed")
    if store.head(layout.current_model_pointer_key()) is not None:
        result.problems.append(f"{layout.current_model_pointer_key()} exists though nothing was promoted")
    written = list(store.keys(layout.model_prefix(version)))
    if written:
        result.problems.append(f"the failed {version} has files: {written}")
    return {"version": version, "reason": reason, "alert": alerted()[0]["message"]}


STRAY_ETL_KEY = f"{layout.etl_prefix('train')}stray/part-00000.parquet"


def stray_etl_file() -> bytes:
    """An etl/train/ parquet file of another schema (an older ETL's, without the tokens column).

    The launcher reads only the ratings of the corpus and counts it in; the training job reads every
    column it trains on and fails on it, as on any etl file it cannot read.
    """
    schema = etl_arrow_schema()
    older = pa.schema([column for column in schema if column.name != TOKENS])
    buffer = io.BytesIO()
    pq.write_table(older.empty_table(), buffer)
    return buffer.getvalue()


def cut_off_etl_file() -> bytes:
    """An etl parquet file cut off halfway, as an interrupted copy leaves one: no footer, not readable at all."""
    schema = etl_arrow_schema()
    rows = {"row_number": [0, 1], "rating": [1, 5], "tokens": [["broken"], ["card"]], "token_count": [1, 1],
            "text_length": [6, 4]}  # fmt: skip
    table = pa.table({name: rows.get(name, [None, None]) for name in schema.names}, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    whole = buffer.getvalue()
    return whole[: len(whole) // 2]


def unreadable_etl_file_then_removed(
    pipeline: LocalPipeline, data_dir: Path, result: ScenarioResult, body: bytes, label: str
) -> None:
    """`body` in etl/train/ before a training file lands: its training fails, alerted; the object deleted, the
    next training file's trigger trains the next version and promotes it. The evidence, kept as `label`."""
    pipeline.store.write_bytes(STRAY_ETL_KEY, body, "application/octet-stream")
    failed = train_once(pipeline, data_dir, result)
    evidence = training_failure(pipeline, failed, result, STRAY_ETL_KEY)
    pipeline.client("s3").delete_object(Bucket=pipeline.stack.bucket, Key=STRAY_ETL_KEY)
    fixed = train_once(pipeline, data_dir, result, FINE_FOOD)
    models = check_models(pipeline, result, f"{label}_models")
    if models["versions"] != {failed: "failed", fixed: "promoted"} or models["current"] != fixed:
        result.problems.append(f"after the fix, expected {failed} failed and {fixed} promoted: {models}")
    result.evidence[label] = {**evidence, "fixed_by": fixed}


def training_job_fails(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """Training jobs that fail (an etl file the job cannot read; settings under which nothing can be fitted): the
    version is marked failed and alerted, nothing is promoted; with the cause removed, the next file promotes."""
    with running(work_dir / "stray-etl-file", **FAST_RETRIES) as pipeline:
        result.faults.append({"name": "stray-etl-file", "what": f"{STRAY_ETL_KEY}, without tokens, in the corpus",
                              "injected": 1})  # fmt: skip
        unreadable_etl_file_then_removed(pipeline, data_dir, result, stray_etl_file(), "stray_etl_file")

    # An n-gram must occur in a million reviews, more than the corpus holds: scikit-learn refuses to fit.
    settings = {"trainer": {"features": {"min_df": 1_000_000}}}
    with running(work_dir / "bad-hyperparameter", **FAST_RETRIES, services=settings) as pipeline:
        result.faults.append({"name": "bad-hyperparameter", "what": "features.min_df 1000000", "injected": 1})
        failed = train_once(pipeline, data_dir, result)
        result.evidence["bad_hyperparameter"] = training_failure(pipeline, failed, result, "min_df")
        check_models(pipeline, result, "bad_hyperparameter_models")


def corrupt_etl_file(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """A corrupt etl/train/ parquet file (cut off halfway): the training fails, alerted; removed, the next promotes."""
    with running(work_dir, **FAST_RETRIES) as pipeline:
        result.faults.append({"name": "corrupt-etl-file", "what": f"{STRAY_ETL_KEY}, cut off halfway, in the corpus",
                              "injected": 1})  # fmt: skip
        unreadable_etl_file_then_removed(pipeline, data_dir, result, cut_off_etl_file(), "corrupt_etl_file")


def state_change_events(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """SageMaker's state changes each delivered three times, then the final one lost: one version, promoted once."""
    with running(work_dir / "repeated", **FAST_RETRIES, sagemaker={"repeated_state_changes": 3}) as pipeline:
        version = train_once(pipeline, data_dir, result)
        engine = pipeline.sagemaker_report()
        result.faults.append({"name": "repeated-state-changes", "what": "each state-change event put 3 times",
                              "injected": engine["events_repeated"]})  # fmt: skip
        if engine["events_repeated"] < 2:
            result.problems.append(f"no state change was repeated: {engine}")
        models = check_models(pipeline, result, "repeated_models")
        written = key_versions(pipeline, layout.MODELS)
        result.evidence["repeated"] = {
            "version": version,
            "status": models["versions"].get(version),
            "manifest_writes": written[f"{layout.model_prefix(version)}manifest.json"],
            "pointer_writes": written[layout.current_model_pointer_key()],
            "model_trained_events": models["model_trained_events"].get(version, 0),
        }
        if models["versions"] != {version: "promoted"}:
            result.problems.append(f"repeated state changes: expected {version} promoted alone, got {models}")
        if result.evidence["repeated"]["model_trained_events"] != 1:
            result.problems.append(f"ModelTrained for {version} published {models['model_trained_events']} times")

    lost = {"sagemaker": {"lost_state_changes": 1}, "services": {"trainer": SHORT_DEADLINE}}
    with running(work_dir / "lost", **FAST_RETRIES, **QUICK_SWEEP, **lost) as pipeline:
        version = train_once(pipeline, data_dir, result)
        engine = pipeline.sagemaker_report()
        result.faults.append({"name": "lost-state-change", "what": "the job's final state change never put",
                              "injected": len(engine["events_lost"])})  # fmt: skip
        models = check_models(pipeline, result, "lost_models")
        log = (work_dir / "lost" / "logs" / "trainingfinisher.log").read_text(encoding="utf-8", errors="replace")
        swept = log.count("no state change came for a job past its deadline")
        result.evidence["lost"] = {"version": version, "status": models["versions"].get(version), "swept": swept}
        if models["versions"] != {version: "promoted"}:
            result.problems.append(f"lost state change: expected {version} promoted by the sweeper, got {models}")
        if swept < 1:
            result.problems.append("the sweeper never finished the run whose state change was lost")


def finisher_crash(data_dir: Path, work_dir: Path, result: ScenarioResult) -> None:
    """The finisher killed mid-promotion (its first write to models/current/): redelivered, promoted once, whole."""
    faults = [
        {"name": "finisher-crash", "service": "trainingfinisher", "action": "crash", "operation": "s3:PutObject",
         "key_prefix": "models/current"},
    ]  # fmt: skip
    with running(work_dir, **FAST_RETRIES, faults=faults) as pipeline:
        version = train_once(pipeline, data_dir, result)
        record_faults(pipeline, result)
        restarts = pipeline.pool.workers["trainingfinisher"].restarts
        if restarts < 1:
            result.problems.append("the finisher's worker was never restarted: it did not crash")
        models = check_models(pipeline, result)
        if models["versions"] != {version: "promoted"} or models["current"] != version:
            result.problems.append(f"expected {version} promoted and current, got {models}")
        written = key_versions(pipeline, layout.CURRENT_MODEL_PREFIX) + key_versions(
            pipeline, layout.current_model_pointer_key()
        )
        rewritten = {key: count for key, count in written.items() if count > 1}
        if rewritten:
            result.problems.append(f"the current model's files written more than once: {rewritten}")
        result.evidence["finisher"] = {
            "version": version,
            "restarts": restarts,
            "model_trained_events": models["model_trained_events"].get(version, 0),
            "current_files": sorted(written),
        }


class _Tripwire:
    """Unpickling this creates a file: proof, if the file appears, that a pickle from storage was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("real_files", "Every real file at once: train on 14, classify 3 (2 chunked), reject the rest", real_files),
    Scenario("worker_crash", "Workers killed mid-batch (validator, ETL, trainer, predictor)", worker_crash),
    Scenario("duplicate_delivery", "Each S3 notification delivered three times", duplicate_delivery),
    Scenario("refused_events", "PutEvents refuses entries in every publishing service", refused_events),
    Scenario("storage_errors", "S3 throttling survived; persistent S3 500s → DLQ → fix → redrive", storage_errors),
    Scenario("poison_message", "Poison messages → DLQ after 3 receives, alert, redrive", poison_message),
    Scenario("archive_replay", "Every event replayed from the bus archive", archive_replay),
    Scenario("load", "200 files at once: valid, invalid and oversize", load),
    Scenario("hostile_inputs", "Forged events, hostile keys, a pickled model", hostile_inputs),
    Scenario("training_job_fails", "Failed training jobs: alerted, nothing promoted; fixed, the next promotes",
             training_job_fails),
    Scenario("corrupt_etl_file", "A corrupt etl/train/ file: the training fails, alerted; removed, the next promotes",
             corrupt_etl_file),
    Scenario("state_change_events", "SageMaker state changes repeated 3 times, then lost (swept)",
             state_change_events),
    Scenario("finisher_crash", "The finisher killed mid-promotion: redelivered, promoted once", finisher_crash),
)  # fmt: skip


def run_scenario(name: str, data_dir: Path, work_dir: Path) -> ScenarioResult:
    (scenario,) = [scenario for scenario in SCENARIOS if scenario.name == name]
    result = ScenarioResult(name=scenario.name, title=scenario.title)
    started = time.monotonic()
    try:
        scenario.run(data_dir, work_dir, result)
    except (TimeoutError, ScenarioAbortedError) as error:
        result.problems.append(str(error))
    result.seconds = time.monotonic() - started
    return result
