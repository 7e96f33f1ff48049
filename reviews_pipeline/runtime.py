"""The pipeline on one machine: emulator, stack from the templates, one worker per service, uploads, settling."""

from __future__ import annotations

import json
import posixpath
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import layout
from shared.events import Dataset
from shared.ledger import FileLedger, FileRecord, barrier_counter, file_id_for
from shared.storage import ObjectStore

from .config import RuntimeConfig as RuntimeConfig
from .emulator import MotoServer
from .faults import FaultProxy
from .sagemaker_engine import ENTRY_POINT, LocalSageMakerEngine
from .stack import ScheduledRule, StackInfo, client, create_stack
from .topology import Topology, load_topology
from .workers import WorkerPool

# What `run` copies out of the bucket: everything the pipeline wrote (raw/ is the user's own input).
OUTPUT_PREFIXES = (
    layout.PROCESSED,
    layout.ETL,
    layout.CHUNKS,
    layout.ERRORS,
    layout.MODELS,
    layout.PREDICTIONS,
    layout.MONITORING,
)


@dataclass(frozen=True)
class UploadedFile:
    path: Path
    dataset: Dataset
    key: str
    file_id: str


@dataclass(frozen=True)
class Progress:
    files_by_status: dict[str, int]
    rows_in: int
    current_stage: str
    busy_queues: dict[str, int]


@dataclass(frozen=True)
class SettleResult:
    settled: bool
    """Every file reached a final state."""
    waited_seconds: float
    stuck: list[str] = field(default_factory=list)
    """Per file not settled, where it stands: the dead-letter queue holding its message, or its stage."""
    timed_out: bool = False
    """The wait ended at the timeout, with messages perhaps still moving (not because all were parked)."""


@dataclass(frozen=True)
class ParkedMessage:
    """A message in a dead-letter queue, with what it says about the file it was for."""

    service: str
    detail_type: str | None
    key: str | None
    file_ids: frozenset[str]
    """The file ids the event names (its file, root file, parent file)."""

    @classmethod
    def of(cls, service: str, body: str) -> ParkedMessage:
        try:
            event = json.loads(body)
        except json.JSONDecodeError:
            return cls(service, None, None, frozenset())
        if not isinstance(event, dict):
            return cls(service, None, None, frozenset())
        detail = _mapping(event.get("detail"))
        s3_object = _mapping(detail.get("object"))
        part = _mapping(detail.get("part"))
        names = (detail.get(name) for name in ("file_id", "root_file_id", "parent_file_id"))
        part_names = (part.get(name) for name in ("root_file_id", "parent_file_id"))
        key = detail.get("key") or detail.get("source_key") or s3_object.get("key")
        detail_type = event.get("detail-type")
        return cls(
            service,
            detail_type if isinstance(detail_type, str) else None,
            key if isinstance(key, str) else None,
            frozenset(name for name in (*names, *part_names) if isinstance(name, str)),
        )

    def concerns(self, file: UploadedFile) -> bool:
        return self.key == file.key or file.file_id in self.file_ids


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def unsettled_of(files: list[UploadedFile], records: dict[str, FileRecord]) -> list[UploadedFile]:
    """The files not final in these ledger records (or with no record yet)."""
    return [f for f in files if f.file_id not in records or not records[f.file_id].is_final]


def describe_busy(name: str, count: int) -> str:
    """One entry of `busy_queues` in words."""
    if name == "sagemaker":
        return f"the local SageMaker engine is still running {count} job(s) (see logs/sagemaker/)"
    if name == "training":
        return f"{count} training run(s) still running in the ledger: their end has not been handled yet"
    return f"the {name} queue still holds {count} message(s)"


def describe_stuck(files: list[UploadedFile], records: dict[str, FileRecord], parked: list[ParkedMessage]) -> list[str]:
    """One line per file held back: by a message of its parked in a dead-letter queue (naming the
    queue), or by not having reached a final state (naming where it stands); then one line per DLQ
    holding messages about none of these files."""
    lines = []
    explained: set[int] = set()
    for file in files:
        holding = [index for index, message in enumerate(parked) if message.concerns(file)]
        explained.update(holding)
        record = records.get(file.file_id)
        if holding:
            message = parked[holding[0]]
            what = f"its {message.detail_type} message" if message.detail_type else "its message"
            lines.append(
                f"{file.path}: {what} is in the {message.service} dead-letter queue "
                f"(the {message.service} failed on it; see logs/{message.service}.log)"
            )
        elif record is None:
            lines.append(f"{file.path}: never received (no ledger record for {file.key})")
        elif not record.is_final:
            lines.append(f"{file.path}: {record.status} at {record.stage}, not final")
    others = Counter(message.service for index, message in enumerate(parked) if index not in explained)
    lines += [
        f"the {service} dead-letter queue holds {count} other message(s) (see logs/{service}.log)"
        for service, count in sorted(others.items())
    ]
    return lines


def scheduled_event(rule: ScheduledRule, account: str, region: str) -> dict[str, Any]:
    """What EventBridge delivers to a scheduled rule's target, as its documentation shows it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [rule.rule_arn],
        "detail": {},
    }


class RuleScheduler:
    """Fires the stack's scheduled rules, which moto records but never fires, every `interval_seconds`.

    Whatever rate a rule declares (the sweeper's is a quarter of an hour), locally it fires at this
    interval: a local run lasts minutes. The first firing is one interval after the start, as a rate
    rule's is after its creation.
    """

    def __init__(self, stack: StackInfo, interval_seconds: float) -> None:
        self.stack = stack
        self.interval_seconds = interval_seconds
        self.fired = 0
        self._sqs = client(stack, "sqs")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._fire_until_stopped, name="rule-scheduler", daemon=True)

    def start(self) -> RuleScheduler:
        if self.stack.schedules:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def fire(self) -> None:
        """Deliver one scheduled event to every scheduled rule's target queue."""
        for rule in self.stack.schedules:
            event = scheduled_event(rule, self.stack.account, self.stack.region)
            self._sqs.send_message(QueueUrl=rule.queue_url, MessageBody=json.dumps(event))
            self.fired += 1

    def _fire_until_stopped(self) -> None:
        while not self._stopping.wait(self.interval_seconds):
            try:
                self.fire()
            except (BotoCoreError, ClientError) as error:  # the emulator busy or stopping: the next interval fires
                print(f"scheduled rules not fired: {error}", file=sys.stderr)


class LocalPipeline:
    """Start with `with LocalPipeline(...) as pipeline:`; everything stops on exit.

    Besides the workers, it runs the engines AWS would: the local SageMaker engine (training and
    tuning jobs created in the emulator, run with `training_command`, by default the training
    image's entry point) and the scheduler of the templates' scheduled rules.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        config: RuntimeConfig | None = None,
        endpoint_url: str | None = None,
        topology: Topology | None = None,
        training_command: Sequence[str] = ENTRY_POINT,
    ) -> None:
        self.config = config or RuntimeConfig()
        self.topology = topology or load_topology()
        self.work_dir = work_dir
        self.training_command = tuple(training_command)
        self._external_endpoint = endpoint_url
        self._emulator: MotoServer | None = None
        self._pool: WorkerPool | None = None
        self._stack: StackInfo | None = None
        self._proxies: dict[str, FaultProxy] = {}
        self._clients: dict[str, Any] = {}
        self._sagemaker: LocalSageMakerEngine | None = None
        self._scheduler: RuleScheduler | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalPipeline:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        endpoint = self._external_endpoint
        if endpoint is None:
            self._emulator = MotoServer(log_path=self.work_dir / "emulator.log").start()
            endpoint = self._emulator.endpoint_url
        self._stack = create_stack(
            self.topology, endpoint, visibility_timeout_seconds=self.config.visibility_timeout_seconds
        )
        self._proxies = self._start_fault_proxies(endpoint)
        self._pool = WorkerPool(
            self.topology,
            self._stack,
            self.work_dir / "logs",
            environment=self.config.service_environment(),
            endpoint_overrides={service: proxy.endpoint_url for service, proxy in self._proxies.items()},
            visibility_timeout_seconds=self.config.visibility_timeout_seconds,
        )
        self._pool.start()
        self._sagemaker = LocalSageMakerEngine(
            self._stack,
            self.work_dir / "logs" / "sagemaker",
            config=self.config.sagemaker,
            command=self.training_command,
        ).start()
        self._scheduler = RuleScheduler(self._stack, self.config.schedule_interval_seconds).start()
        return self

    def _start_fault_proxies(self, endpoint: str | None) -> dict[str, FaultProxy]:
        if not self.config.faults:
            return {}
        if endpoint is None:
            raise ValueError("faults can only be injected against an endpoint (the emulator or --endpoint-url)")
        unknown = {fault.service for fault in self.config.faults} - set(self.topology.services)
        if unknown:
            raise ValueError(f"faults name unknown services {sorted(unknown)}; known: {self.topology.services}")
        proxies = {}
        for service in sorted({fault.service for fault in self.config.faults}):
            faults = [fault for fault in self.config.faults if fault.service == service]
            proxies[service] = FaultProxy(service, endpoint, faults, on_crash=self._crash_worker).start()
        return proxies

    def _crash_worker(self, service: str) -> None:
        self.pool.kill(service)

    def clear_fault(self, name: str) -> None:
        """The fault's cause is fixed: it hits no further calls."""
        for proxy in self._proxies.values():
            proxy.clear(name)

    def fault_report(self) -> list[dict[str, Any]]:
        """Every configured fault with how many calls it matched and how many it hit."""
        return [entry for proxy in self._proxies.values() for entry in proxy.report()]

    def stop(self) -> None:
        # The engines first: nothing new is sent to the workers while they stop.
        if self._scheduler:
            self._scheduler.stop()
        if self._sagemaker:
            self._sagemaker.stop()
        if self._pool:
            self._pool.stop()
        for proxy in self._proxies.values():
            proxy.stop()
        if self._emulator:
            self._emulator.stop()

    def __enter__(self) -> LocalPipeline:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def stack(self) -> StackInfo:
        if self._stack is None:
            raise RuntimeError("the pipeline is not started")
        return self._stack

    @property
    def pool(self) -> WorkerPool:
        if self._pool is None:
            raise RuntimeError("the pipeline is not started")
        return self._pool

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's endpoint, made once (making one costs tens of milliseconds)."""
        if service not in self._clients:
            self._clients[service] = client(self.stack, service)
        return self._clients[service]

    @property
    def sagemaker(self) -> LocalSageMakerEngine:
        if self._sagemaker is None:
            raise RuntimeError("the pipeline is not started")
        return self._sagemaker

    def sagemaker_report(self) -> dict[str, Any]:
        """What the local SageMaker engine did: jobs run, events put, lost and repeated."""
        return self.sagemaker.report()

    @property
    def store(self) -> ObjectStore:
        return ObjectStore(self.client("s3"), self.stack.bucket)

    @property
    def ledger(self) -> FileLedger:
        return FileLedger(self.client("dynamodb"), self.stack.ledger_table)

    # -- using it -------------------------------------------------------------------------------

    def upload(self, path: Path, dataset: Dataset, taken_keys: set[str] | None = None) -> UploadedFile:
        """Put a local file under raw/{dataset}/, as a user's `aws s3 cp` would."""
        taken = taken_keys if taken_keys is not None else set()
        key = layout.raw_key(dataset, path.name)
        stem, suffix = posixpath.splitext(path.name)
        counter = 1
        while key in taken:
            key = layout.raw_key(dataset, f"{stem}-{counter}{suffix}")
            counter += 1
        taken.add(key)
        s3 = self.client("s3")
        with path.open("rb") as body:
            response = s3.put_object(Bucket=self.stack.bucket, Key=key, Body=body)
        version = response.get("VersionId") or response["ETag"].strip('"')
        return UploadedFile(path=path, dataset=dataset, key=key, file_id=file_id_for(self.stack.bucket, key, version))

    def queue_depths(self, *, dead_letter: bool = False) -> dict[str, int]:
        sqs = self.client("sqs")
        depths = {}
        for service, queues in self.stack.queues.items():
            url = queues.dead_letter_url if dead_letter else queues.queue_url
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depths[service] = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
        return depths

    def progress(self, files: list[UploadedFile], busy_queues: dict[str, int] | None = None) -> Progress:
        records = {record.file_id: record for record in self.ledger.files(roots_only=True)}
        statuses = Counter(records[f.file_id].status if f.file_id in records else "uploaded" for f in files)
        rows = sum(rows_of(records[f.file_id])[0] for f in files if f.file_id in records)
        busy = self.busy_queues() if busy_queues is None else busy_queues
        stage = ", ".join(sorted(busy)) if busy else "idle"
        return Progress(files_by_status=dict(statuses), rows_in=rows, current_stage=stage, busy_queues=busy)

    def busy_queues(self) -> dict[str, int]:
        """What is still moving: per queue its messages; "sagemaker", the jobs the engine has not finished;
        "training", the training runs the trainer recorded as running whose deadline has not passed."""
        busy = {service: depth for service, depth in self.queue_depths().items() if depth}
        if self._sagemaker is not None and (jobs := len(self._sagemaker.pending_jobs())):
            busy["sagemaker"] = jobs
        if running := self.running_trainings():
            busy["training"] = running
        return busy

    def running_trainings(self) -> int:
        """Training runs recorded as running and not past their deadline.

        A run whose final event was lost stays "running" until the sweeper (a scheduled rule) or the
        next trigger finishes it; waiting for it is waiting for that recovery. Past its deadline no
        recovery is coming from SageMaker's side, so the wait no longer counts it (it would only burn
        the settle timeout).
        """
        from services.trainer.versions import ModelRegistry

        runs = ModelRegistry(self.client("dynamodb"), self.stack.ledger_table).runs(running_only=True)
        now = time.time()
        return sum(1 for run in runs if run["deadline"] > now)

    def wait_until_settled(
        self,
        files: list[UploadedFile],
        timeout_seconds: float,
        on_progress: Callable[[Progress], None] | None = None,
        poll_seconds: float = 0.5,
    ) -> SettleResult:
        """Wait until nothing more can happen to the files: every queue quiet twice in a row, and every
        file final in the ledger or held back by a message parked in a dead-letter queue.

        A file whose message went to a DLQ waits for a person (`redrive`), so waiting on for it would
        only burn the timeout: the wait ends there and `stuck` names the queue and the file. The queues
        are looked at every `poll_seconds`; the ledger (a scan of every record, heavy for the emulator
        while hundreds of files are in flight) only when they are all quiet, and every two seconds for
        `on_progress`.
        """
        started = time.monotonic()
        quiet_checks = 0
        last_shown = float("-inf")
        busy: dict[str, int] = {}
        while time.monotonic() - started < timeout_seconds:
            for service in self.pool.revive_crashed():
                if on_progress is not None:
                    print(f"worker for {service} exited; restarted", file=sys.stderr)
            busy = self.busy_queues()
            if on_progress and time.monotonic() - last_shown >= 2:
                on_progress(self.progress(files, busy))
                last_shown = time.monotonic()
            if busy:
                quiet_checks = 0
            else:
                records = self._records()
                unsettled = unsettled_of(files, records)
                parked = self.parked_messages() if unsettled else []
                quiet_checks = quiet_checks + 1 if not unsettled or parked else 0
                if quiet_checks >= 2:
                    # A final file can still have a message parked further on (its ETL, its predictions).
                    stuck = describe_stuck(files, records, parked or self.parked_messages())
                    return SettleResult(settled=not unsettled, waited_seconds=time.monotonic() - started, stuck=stuck)
            time.sleep(poll_seconds)
        stuck = describe_stuck(files, self._records(), self.parked_messages())
        stuck += [describe_busy(name, count) for name, count in busy.items()]
        return SettleResult(settled=False, waited_seconds=time.monotonic() - started, stuck=stuck, timed_out=True)

    def _records(self) -> dict[str, FileRecord]:
        return {record.file_id: record for record in self.ledger.files(roots_only=True)}

    def unsettled(self, files: list[UploadedFile]) -> list[str]:
        """The files that have not reached a final state, each with where it stands."""
        return describe_stuck(files, self._records(), [])

    def parked_messages(self, per_queue: int = 10) -> list[ParkedMessage]:
        """A look at the messages in every dead-letter queue (up to `per_queue` each), left where they are."""
        sqs = self.client("sqs")
        parked = []
        for service, depth in self.queue_depths(dead_letter=True).items():
            if not depth:
                continue
            # Visibility 0: the look leaves the messages visible for `redrive` and the next look.
            messages = sqs.receive_message(
                QueueUrl=self.stack.queues[service].dead_letter_url,
                MaxNumberOfMessages=min(per_queue, 10),
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            parked += [ParkedMessage.of(service, message["Body"]) for message in messages]
            parked += [ParkedMessage(service, None, None, frozenset())] * max(0, depth - len(messages))
        return parked

    def copy_outputs(self, out_dir: Path) -> int:
        """Copy what the pipeline wrote to `out_dir`, keeping keys as relative paths; the number of objects."""
        store = self.store
        copied = 0
        for prefix in OUTPUT_PREFIXES:
            for key in store.keys(prefix):
                target = out_dir / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(store.read_bytes(key))
                copied += 1
        return copied

    def redrive(self, service: str) -> int:
        return redrive_dead_letters(self.stack, service)

    def raise_dead_letter_alerts(self, already_alerted: dict[str, int]) -> dict[str, int]:
        """Alert for every DLQ that holds more messages than when it was last alerted on.

        On AWS a CloudWatch alarm on DLQ depth sends this to the alert topic; locally the runtime
        raises the same alert. Returns the depths now, to pass back in next time.
        """
        from services.monitor.alerts import dlq_alert, now
        from services.monitor.service import AlertSink

        depths = self.queue_depths(dead_letter=True)
        sink = AlertSink(self.store, self.client("sns"), self.stack.alert_topic_arn)
        for service, depth in depths.items():
            if depth > already_alerted.get(service, 0):
                sink.raise_alert(dlq_alert(service, depth, now()))
        return depths


def rows_of(record: FileRecord) -> tuple[int, int]:
    """Rows in and out for a root file: its own counts, or its parts' summed counts when it was chunked."""
    if barrier_counter("validation", "expected") in record.counters:
        return record.counters.get("rows_in", 0), record.counters.get("rows_out", 0)
    return record.rows_in, record.rows_out


def redrive_dead_letters(stack: StackInfo, service: str) -> int:
    """Move every message of a service's DLQ back to its queue; how many were moved."""
    if service not in stack.queues:
        raise KeyError(f"unknown service {service!r}; known: {sorted(stack.queues)}")
    queues = stack.queues[service]
    sqs = client(stack, "sqs")
    moved = 0
    while True:
        messages: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=queues.dead_letter_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            # Send first, delete second: a crash between the two duplicates a message, never loses one.
            sqs.send_message(QueueUrl=queues.queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=queues.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
