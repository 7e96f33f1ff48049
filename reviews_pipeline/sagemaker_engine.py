"""The local SageMaker engine: runs the training and tuning jobs the trainer creates in the emulator.

moto records CreateTrainingJob and CreateHyperParameterTuningJob and answers Describe* at once with
`Completed`, whatever happens; it runs nothing and sends no event. The engine plays the part of
SageMaker for this stack: it polls moto for jobs it has not taken on yet and, for each,

- lays out a temporary `/opt/ml` tree as SageMaker's container contract has it (hyperparameters.json
  with every value a string, inputdataconfig.json, resourceconfig.json, every channel's S3 prefix
  downloaded from the emulated S3 into input/data/<channel>/, empty model/ and output/);
- runs the training image's entry point as a subprocess with `REVIEWS_SAGEMAKER_ROOT` pointing at
  that tree, its output going to logs/sagemaker/<job name>.log (what CloudWatch would hold), killed
  after StoppingCondition.MaxRuntimeInSeconds (Stopped, MaxRuntimeExceeded);
- on exit code 0 tars model/ and puts it at `<S3OutputPath><job name>/output/model.tar.gz`
  (Completed); otherwise the job Failed, with output/failure as its FailureReason;
- reads the MetricDefinitions' regexes over the log into FinalMetricDataList (the last match wins);
- puts "SageMaker Training Job State Change" events on the default bus, source aws.sagemaker, whose
  detail is DescribeTrainingJob's answer in the shape AWS documents for the event (timestamps as
  epoch milliseconds written as strings, as in the documented example): one when the job starts
  (InProgress) and one when it ends.

A tuning job (Strategy Grid, categorical ranges) runs the cartesian product of its ranges, in the
order given, as trial training jobs named as SageMaker names them (`<tuning job>-<NNN>-<8 hex>`), at
most MaxParallelTrainingJobs (and `max_parallel_trials`) at once. Each trial sends its own training
job events, carrying TuningJobArn; then the tuning job's "SageMaker HyperParameter Tuning Job State
Change" names the best trial by the objective. moto would not list the trials (it never creates
them), so they exist only in the engine and in their events.

What moto loses, and so the engine cannot honour:
- A training job's MetricDefinitions: moto replaces them by a placeholder of its own (`test:dcg`),
  so a standalone job's FinalMetricDataList is empty locally and its event's AlgorithmSpecification
  has no MetricDefinitions. The tuning job's definitions survive, so trials' metrics and the
  objective are real. Nothing should read a standalone job's metrics from the event.
- Tags, and job status: nothing may trust moto's status (always Completed); state is in the events.

Faults for the reliability scenarios (LocalSageMakerConfig): the first `lost_state_changes` final
events of standalone training jobs and tuning jobs are not put (trials' events always are, as the
tuning job's outcome depends on them); every event is put `repeated_state_changes` times.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from shared.sagemaker_events import SAGEMAKER_SOURCE, TRAINING_JOB_STATE_CHANGE, TUNING_JOB_STATE_CHANGE

from .config import LocalSageMakerConfig
from .stack import StackInfo, client
from .templates import REPO_ROOT

ENTRY_POINT: tuple[str, ...] = (sys.executable, "-m", "services.trainer.sagemaker_entry", "train")
"""The training image's entry point (its Dockerfile ENTRYPOINT, to which SageMaker appends `train`)."""
FAILURE_REASON_LIMIT = 1024
"""SageMaker's FailureReason holds at most 1024 characters."""
DEFAULT_MAX_RUNTIME_SECONDS = 86400
# moto's stand-in for a training job's MetricDefinitions (it drops the ones the job was created with).
_MOTO_PLACEHOLDER_METRIC = "test:dcg"
# The fields of DescribeTrainingJob that repeat what the job was created with.
_REQUEST_FIELDS = (
    "HyperParameters",
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "VpcConfig",
    "StoppingCondition",
)
_STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded MaxRuntimeInSeconds",
    "Stopped": "Training job stopped",
}

logger = logging.getLogger(__name__)


def epoch_millis(moment: float) -> str:
    """A time as SageMaker's event details write it: epoch milliseconds, as a string of digits."""
    return str(int(moment * 1000))


class JobRefusedError(Exception):
    """The job asks for something this engine cannot do (or SageMaker would refuse): it fails with this reason."""


@dataclass
class _Transition:
    status: str
    started: float
    ended: float | None = None

    def as_detail(self) -> dict[str, Any]:
        detail = {"Status": self.status, "StartTime": epoch_millis(self.started)}
        if self.ended is not None:
            detail["EndTime"] = epoch_millis(self.ended)
        detail["StatusMessage"] = _STATUS_MESSAGES.get(self.status, self.status)
        return detail


@dataclass
class TrainingRun:
    """One training job as the engine runs it: what it was created with, and how far it has gone."""

    name: str
    arn: str
    request: dict[str, Any]
    """The job's fields as DescribeTrainingJob repeats them (HyperParameters, AlgorithmSpecification, …)."""
    created: float
    tuning_job_arn: str | None = None
    status: str = "InProgress"
    transitions: list[_Transition] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    failure_reason: str | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    artifact_uri: str | None = None

    @property
    def is_trial(self) -> bool:
        return self.tuning_job_arn is not None

    @property
    def secondary_status(self) -> str:
        return self.transitions[-1].status if self.transitions else "Starting"

    def enter(self, status: str) -> None:
        now = time.time()
        if self.transitions:
            self.transitions[-1].ended = now
        self.transitions.append(_Transition(status, now))

    def finish(self, status: str, secondary_status: str, failure_reason: str | None = None) -> None:
        self.enter(secondary_status)
        self.ended = self.transitions[-1].ended = time.time()
        self.status = status
        self.failure_reason = failure_reason[:FAILURE_REASON_LIMIT] if failure_reason else None

    def metric(self, name: str) -> float | None:
        return next((m["Value"] for m in self.metrics if m["MetricName"] == name), None)

    def detail(self) -> dict[str, Any]:
        """The event's detail: DescribeTrainingJob's answer at this moment."""
        detail: dict[str, Any] = {"TrainingJobName": self.name, "TrainingJobArn": self.arn}
        if self.tuning_job_arn:
            detail["TuningJobArn"] = self.tuning_job_arn
        detail |= {"TrainingJobStatus": self.status, "SecondaryStatus": self.secondary_status}
        if self.status == "Failed":
            detail["FailureReason"] = self.failure_reason or "AlgorithmError"
        detail |= {name: self.request[name] for name in _REQUEST_FIELDS if name in self.request}
        detail["CreationTime"] = epoch_millis(self.created)
        if self.started is not None:
            detail["TrainingStartTime"] = epoch_millis(self.started)
        if self.ended is not None:
            detail["TrainingEndTime"] = epoch_millis(self.ended)
        detail["LastModifiedTime"] = epoch_millis(self.ended or self.started or self.created)
        detail["SecondaryStatusTransitions"] = [transition.as_detail() for transition in self.transitions]
        detail["FinalMetricDataList"] = self.metrics
        if self.status == "Completed" and self.artifact_uri:
            detail["ModelArtifacts"] = {"S3ModelArtifacts": self.artifact_uri}
        detail["Tags"] = {}
        return detail


@dataclass
class _Counts:
    training_jobs: int = 0
    tuning_jobs: int = 0
    trials: int = 0
    state_changes: int = 0
    events_put: int = 0
    lost: list[dict[str, str]] = field(default_factory=list)
    finished: list[dict[str, str]] = field(default_factory=list)


class LocalSageMakerEngine:
    """SageMaker for one local stack: `start()` polls moto in a background thread, `stop()` ends it.

    `command` is the training image's entry point (tests give a stand-in container script).
    """

    def __init__(
        self,
        stack: StackInfo,
        log_dir: Path,
        *,
        config: LocalSageMakerConfig | None = None,
        command: Sequence[str] = ENTRY_POINT,
        poll_seconds: float = 0.5,
        working_directory: Path = REPO_ROOT,
    ) -> None:
        self.stack = stack
        self.config = config or LocalSageMakerConfig()
        self.log_dir = log_dir
        self.command = tuple(command)
        self.poll_seconds = poll_seconds
        self.working_directory = working_directory
        self._sagemaker = client(stack, "sagemaker")
        self._s3 = client(stack, "s3")
        self._events = client(stack, "events")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._taken: set[str] = set()
        self._finished: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._losses_left = self.config.lost_state_changes
        self._counts = _Counts()
        self._poller: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalSageMakerEngine:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._poller = threading.Thread(target=self._poll_until_stopped, name="sagemaker-engine", daemon=True)
        self._poller.start()
        return self

    def stop(self, timeout_seconds: float = 15) -> None:
        """Stop polling and kill the jobs still running (they send no final event, as when a host dies)."""
        self._stopping.set()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            _kill_group(process)
        deadline = time.monotonic() + timeout_seconds
        for thread in [self._poller, *self._threads]:
            if thread is not None:
                thread.join(max(0.1, deadline - time.monotonic()))

    # -- what the runtime asks ------------------------------------------------------------------

    def pending_jobs(self) -> list[str]:
        """The jobs moto knows (this stack's) that the engine has not finished, created since the last poll too."""
        with self._lock:
            finished = set(self._finished)
        return [name for name in self._jobs_in_moto() if name not in finished]

    def report(self) -> dict[str, Any]:
        """What the engine did, for the reliability report."""
        with self._lock:
            counts = self._counts
            return {
                "training_jobs": counts.training_jobs,
                "tuning_jobs": counts.tuning_jobs,
                "trials": counts.trials,
                "state_changes": counts.state_changes,
                "events_put": counts.events_put,
                "events_repeated": counts.events_put - (counts.state_changes - len(counts.lost)),
                "events_lost": list(counts.lost),
                "jobs": list(counts.finished),
            }

    # -- polling --------------------------------------------------------------------------------

    def _poll_until_stopped(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception:  # the emulator may be busy or going away; the next poll tries again
                logger.exception("polling SageMaker in the emulator failed")
            self._stopping.wait(self.poll_seconds)

    def poll(self) -> None:
        """Take on every job moto lists that the engine has not taken on yet."""
        for name, kind in self._jobs_in_moto().items():
            with self._lock:
                if name in self._taken or self._stopping.is_set():
                    continue
                self._taken.add(name)
            target = self._run_training_job if kind == "training" else self._run_tuning_job
            thread = threading.Thread(target=target, args=(name,), name=f"sagemaker-{name}", daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _jobs_in_moto(self) -> dict[str, str]:
        jobs: dict[str, str] = {}
        for page in self._sagemaker.get_paginator("list_training_jobs").paginate():
            jobs |= {job["TrainingJobName"]: "training" for job in page["TrainingJobSummaries"]}
        for page in self._sagemaker.get_paginator("list_hyper_parameter_tuning_jobs").paginate():
            jobs |= {job["HyperParameterTuningJobName"]: "tuning" for job in page["HyperParameterTuningJobSummaries"]}
        prefix = f"{self.stack.job_prefix}-" if self.stack.job_prefix else ""
        return {name: kind for name, kind in jobs.items() if name.startswith(prefix)}

    def _mark_finished(self, name: str, kind: str, status: str) -> None:
        with self._lock:
            self._finished.add(name)
            self._counts.finished.append({"name": name, "kind": kind, "status": status})

    # -- training jobs --------------------------------------------------------------------------

    def _run_training_job(self, name: str) -> None:
        try:
            description = self._sagemaker.describe_training_job(TrainingJobName=name)
        except Exception:  # the emulator busy or going away: the next poll takes the job on again
            logger.exception("describing training job %s failed", name)
            with self._lock:
                self._taken.discard(name)
            return
        request = {key: _plain(description[key]) for key in _REQUEST_FIELDS if key in description}
        specification = request.get("AlgorithmSpecification", {})
        if any(m.get("Name") == _MOTO_PLACEHOLDER_METRIC for m in specification.get("MetricDefinitions", [])):
            specification.pop("MetricDefinitions")
        run = TrainingRun(
            name=name,
            arn=description["TrainingJobArn"],
            request=request,
            created=description["CreationTime"].timestamp(),
        )
        with self._lock:
            self._counts.training_jobs += 1
        self.train(run)
        if run.status != "InProgress":  # not abandoned by stop()
            self._mark_finished(name, "training", run.status)

    def train(self, run: TrainingRun) -> TrainingRun:
        """Run one training job to its end, sending its state changes; the run, finished (or abandoned on stop)."""
        run.started = time.time()
        run.enter("Starting")
        self._put_training_state_change(run)
        try:
            with tempfile.TemporaryDirectory(prefix=f"{run.name}-opt-ml-") as root:
                self._execute(run, Path(root))
        except JobRefusedError as rejection:
            run.finish("Failed", "Failed", str(rejection))
        except Exception as error:  # the engine's own fault: SageMaker reports those as failed jobs too
            logger.exception("training job %s failed in the engine", run.name)
            run.finish("Failed", "Failed", f"InternalServerError: {type(error).__name__}: {error}")
        if run.status != "InProgress":
            self._put_training_state_change(run)
        return run

    def _execute(self, run: TrainingRun, root: Path) -> None:
        run.enter("Downloading")
        self._lay_out(run, root)
        run.enter("Training")
        log_path = self.log_dir / f"{run.name}.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        max_runtime = float(
            run.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_SECONDS)
        )
        outcome = self._run_container(run, root, log_path, max_runtime)
        if outcome == "abandoned":
            return
        with log_path.open("rb") as log:
            log.seek(log_start)
            run.metrics = metrics_from_log(log.read().decode("utf-8", "replace"), _metric_definitions(run.request))
        if outcome == "timed out":
            run.finish("Stopped", "MaxRuntimeExceeded")
        elif outcome == 0:
            run.enter("Uploading")
            run.artifact_uri = self._upload_model(run, root)
            run.finish("Completed", "Completed")
        else:
            failure = root / "output" / "failure"
            reason = failure.read_text(encoding="utf-8", errors="replace").strip() if failure.exists() else ""
            run.finish("Failed", "Failed", reason or f"AlgorithmError: exit code {outcome}")

    def _lay_out(self, run: TrainingRun, root: Path) -> None:
        config_dir = root / "input" / "config"
        config_dir.mkdir(parents=True)
        (root / "model").mkdir()
        (root / "output").mkdir()
        hyperparameters = {name: str(value) for name, value in run.request.get("HyperParameters", {}).items()}
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
        (config_dir / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}), encoding="utf-8"
        )
        channels: dict[str, dict[str, str]] = {}
        mode = run.request.get("AlgorithmSpecification", {}).get("TrainingInputMode", "File")
        for channel in run.request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            source = channel.get("DataSource", {}).get("S3DataSource", {})
            if source.get("S3DataType", "S3Prefix") != "S3Prefix" or channel.get("InputMode", mode) != "File":
                raise JobRefusedError(
                    f"ClientError: channel {name}: the local engine reads S3Prefix channels in File mode"
                )
            channels[name] = {
                "TrainingInputMode": "File",
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if "ContentType" in channel:
                channels[name]["ContentType"] = channel["ContentType"]
            self._download_channel(name, source["S3Uri"], root / "input" / "data" / name)
        (config_dir / "inputdataconfig.json").write_text(json.dumps(channels), encoding="utf-8")

    def _download_channel(self, channel: str, uri: str, target: Path) -> None:
        bucket, prefix = split_s3_uri(uri)
        target.mkdir(parents=True)
        found = False
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                found = True
                relative = PurePosixPath(entry["Key"][len(prefix) :].lstrip("/"))
                if entry["Key"].endswith("/") or not relative.parts:
                    continue  # a "folder" marker
                if relative.is_absolute() or ".." in relative.parts:
                    raise JobRefusedError(f"ClientError: channel {channel}: key {entry['Key']!r} leaves the channel")
                path = target.joinpath(*relative.parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._s3.download_file(bucket, entry["Key"], str(path))
        if not found:  # as SageMaker refuses an empty channel, before the container starts
            raise JobRefusedError(f'ClientError: Data download failed:No S3 objects found under S3 URL "{uri}"')

    def _run_container(self, run: TrainingRun, root: Path, log_path: Path, max_runtime: float) -> int | str:
        """The container's exit code, "timed out" or "abandoned" (the engine stopped)."""
        environment = {
            **os.environ,
            "REVIEWS_SAGEMAKER_ROOT": str(root),
            "PYTHONUNBUFFERED": "1",
            # As SageMaker sets them in every training container.
            "TRAINING_JOB_NAME": run.name,
            "TRAINING_JOB_ARN": run.arn,
        }
        with log_path.open("ab") as log:
            # Its own process group: a kill reaches whatever the entry point started, as a container's end does.
            process = subprocess.Popen(
                self.command,
                cwd=self.working_directory,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            with self._lock:
                self._processes.add(process)
            try:
                deadline = time.monotonic() + max_runtime
                while process.poll() is None:
                    if self._stopping.is_set():
                        _kill_group(process)
                        return "abandoned"
                    if time.monotonic() >= deadline:
                        _kill_group(process)
                        log.write(f"\nkilled after MaxRuntimeInSeconds ({max_runtime:g} s)\n".encode())
                        return "timed out"
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=min(0.2, max(0.01, deadline - time.monotonic())))
                return process.returncode
            finally:
                with self._lock:
                    self._processes.discard(process)

    def _upload_model(self, run: TrainingRun, root: Path) -> str:
        archive = root / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for entry in sorted((root / "model").iterdir()):
                tar.add(entry, arcname=entry.name)  # members relative to model/, as SageMaker's are
        output_path = run.request["OutputDataConfig"]["S3OutputPath"]
        uri = f"{output_path.rstrip('/')}/{run.name}/output/model.tar.gz"
        bucket, key = split_s3_uri(uri)
        self._s3.upload_file(str(archive), bucket, key)
        return uri

    # -- tuning jobs ----------------------------------------------------------------------------

    def _run_tuning_job(self, name: str) -> None:
        try:
            answer = self._sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        except Exception:  # as for a training job: taken on again at the next poll
            logger.exception("describing tuning job %s failed", name)
            with self._lock:
                self._taken.discard(name)
            return
        description = _plain(answer)
        tuning = TuningRun(
            name=name,
            arn=description["HyperParameterTuningJobArn"],
            config=description["HyperParameterTuningJobConfig"],
            definition=description.get("TrainingJobDefinition", {}),
            created=float(description.get("CreationTime") or time.time()),
        )
        with self._lock:
            self._counts.tuning_jobs += 1
        self._put_tuning_state_change(tuning)
        try:
            combinations = grid_of(tuning.config)
        except JobRefusedError as rejection:
            tuning.finish(failure_reason=str(rejection))
        else:
            tuning.trials = [self._trial(tuning, index, values) for index, values in enumerate(combinations, start=1)]
            limit = int(tuning.config.get("ResourceLimits", {}).get("MaxParallelTrainingJobs", 1))
            with ThreadPoolExecutor(max_workers=max(1, min(limit, self.config.max_parallel_trials))) as pool:
                list(pool.map(self._run_trial, tuning.trials))
            if self._stopping.is_set():
                return
            tuning.finish()
        self._put_tuning_state_change(tuning)
        self._mark_finished(name, "tuning", tuning.status)

    def _trial(self, tuning: TuningRun, index: int, tuned: dict[str, str]) -> TrainingRun:
        definition = tuning.definition
        request = {key: definition[key] for key in _REQUEST_FIELDS if key in definition}
        request["HyperParameters"] = {**definition.get("StaticHyperParameters", {}), **tuned}
        name = f"{tuning.name}-{index:03d}-{secrets.token_hex(4)}"
        arn = f"arn:aws:sagemaker:{self.stack.region}:{self.stack.account or '123456789012'}:training-job/{name}"
        return TrainingRun(name=name, arn=arn, request=request, created=time.time(), tuning_job_arn=tuning.arn)

    def _run_trial(self, trial: TrainingRun) -> None:
        if self._stopping.is_set():
            return
        with self._lock:
            self._counts.trials += 1
        self.train(trial)

    # -- events ---------------------------------------------------------------------------------

    def _put_training_state_change(self, run: TrainingRun) -> None:
        final = run.status != "InProgress"
        losable = final and not run.is_trial
        self._put_state_change(TRAINING_JOB_STATE_CHANGE, run.arn, run.detail(), run.name, run.status, losable)

    def _put_tuning_state_change(self, tuning: TuningRun) -> None:
        losable = tuning.status != "InProgress"
        self._put_state_change(
            TUNING_JOB_STATE_CHANGE, tuning.arn, tuning.detail(), tuning.name, tuning.status, losable
        )

    def _put_state_change(
        self, detail_type: str, arn: str, detail: dict[str, Any], name: str, status: str, losable: bool
    ) -> None:
        with self._lock:
            self._counts.state_changes += 1
            if losable and self._losses_left > 0:
                self._losses_left -= 1
                self._counts.lost.append({"detail_type": detail_type, "job": name, "status": status})
                logger.info("lost (on purpose) the %s event of %s (%s)", detail_type, name, status)
                return
        entry = {
            "Source": SAGEMAKER_SOURCE,
            "DetailType": detail_type,
            "Resources": [arn],
            "Detail": json.dumps(detail),
        }
        for _ in range(self.config.repeated_state_changes):
            response = self._events.put_events(Entries=[entry])  # no EventBusName: the default bus
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"the {detail_type} event of {name} was refused: {response['Entries']}")
            with self._lock:
                self._counts.events_put += 1


@dataclass
class TuningRun:
    """One hyperparameter tuning job as the engine runs it."""

    name: str
    arn: str
    config: dict[str, Any]
    definition: dict[str, Any]
    created: float
    status: str = "InProgress"
    trials: list[TrainingRun] = field(default_factory=list)
    ended: float | None = None
    failure_reason: str | None = None

    @property
    def objective(self) -> dict[str, str]:
        objective: dict[str, str] = self.config.get("HyperParameterTuningJobObjective", {})
        return objective

    @property
    def tuned_names(self) -> list[str]:
        ranges = self.config.get("ParameterRanges", {}).get("CategoricalParameterRanges", [])
        return [str(entry["Name"]) for entry in ranges]

    def objective_value(self, trial: TrainingRun) -> float | None:
        return trial.metric(self.objective.get("MetricName", "")) if trial.status == "Completed" else None

    def best(self) -> TrainingRun | None:
        """The completed trial with the best objective (the first of equals, in grid order)."""
        scored = [(value, trial) for trial in self.trials if (value := self.objective_value(trial)) is not None]
        if not scored:
            return None
        pick = min if self.objective.get("Type") == "Minimize" else max  # both keep the first of equals
        return pick(scored, key=lambda pair: pair[0])[1]

    def finish(self, failure_reason: str | None = None) -> None:
        self.ended = time.time()
        if failure_reason is None and self.best() is None:
            reasons = [trial.failure_reason for trial in self.trials if trial.failure_reason]
            failure_reason = "No training job completed with the objective metric " + (
                f"{self.objective.get('MetricName')}" + (f"; first failure: {reasons[0]}" if reasons else "")
            )
        self.status = "Failed" if failure_reason else "Completed"
        self.failure_reason = failure_reason[:FAILURE_REASON_LIMIT] if failure_reason else None

    def detail(self) -> dict[str, Any]:
        """The event's detail: DescribeHyperParameterTuningJob's answer at this moment."""
        statuses = [trial.status for trial in self.trials]
        objectives = [self.objective_value(trial) for trial in self.trials]
        detail: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobConfig": self.config,
            "TrainingJobDefinition": self.definition,
            "HyperParameterTuningJobStatus": self.status,
        }
        if self.failure_reason:
            detail["FailureReason"] = self.failure_reason
        detail["CreationTime"] = epoch_millis(self.created)
        if self.ended is not None:
            detail["HyperParameterTuningEndTime"] = epoch_millis(self.ended)
        detail["LastModifiedTime"] = epoch_millis(self.ended or self.created)
        detail["TrainingJobStatusCounters"] = {
            "Completed": statuses.count("Completed"),
            "InProgress": statuses.count("InProgress"),
            "RetryableError": 0,
            "NonRetryableError": statuses.count("Failed"),
            "Stopped": statuses.count("Stopped"),
        }
        done = [trial.status != "InProgress" for trial in self.trials]
        detail["ObjectiveStatusCounters"] = {
            "Succeeded": sum(value is not None for value in objectives),
            "Pending": done.count(False),
            "Failed": sum(finished and value is None for finished, value in zip(done, objectives, strict=True)),
        }
        best = self.best()
        if best is not None:
            detail["BestTrainingJob"] = self._summary(best)
        detail["Tags"] = {}
        return detail

    def _summary(self, trial: TrainingRun) -> dict[str, Any]:
        value = self.objective_value(trial)
        hyperparameters = trial.request.get("HyperParameters", {})
        summary: dict[str, Any] = {
            "TrainingJobName": trial.name,
            "TrainingJobArn": trial.arn,
            "TuningJobName": self.name,
            "CreationTime": epoch_millis(trial.created),
            "TrainingJobStatus": trial.status,
            "TunedHyperParameters": {name: hyperparameters[name] for name in self.tuned_names},
            "FinalHyperParameterTuningJobObjectiveMetric": {
                "Type": self.objective.get("Type", "Maximize"),
                "MetricName": self.objective.get("MetricName"),
                "Value": value,
            },
            "ObjectiveStatus": "Succeeded",
        }
        if trial.started is not None:
            summary["TrainingStartTime"] = epoch_millis(trial.started)
        if trial.ended is not None:
            summary["TrainingEndTime"] = epoch_millis(trial.ended)
        return summary


# -- pure helpers --------------------------------------------------------------------------------


def grid_of(config: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination a Grid tuning job trains: the cartesian product of its categorical ranges, in order."""
    if config.get("Strategy") != "Grid":
        raise JobRefusedError(f"ClientError: the local engine runs Strategy Grid only, not {config.get('Strategy')}")
    ranges = config.get("ParameterRanges", {})
    if ranges.get("IntegerParameterRanges") or ranges.get("ContinuousParameterRanges"):
        raise JobRefusedError("ClientError: a Grid search takes categorical parameter ranges only")
    categorical = ranges.get("CategoricalParameterRanges", [])
    if not categorical:
        raise JobRefusedError("ClientError: a Grid search needs at least one categorical parameter range")
    names = [entry["Name"] for entry in categorical]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(e["Values"] for e in categorical))]


def metrics_from_log(log: str, definitions: list[dict[str, str]]) -> list[dict[str, Any]]:
    """FinalMetricDataList: per MetricDefinition, the last value its regex's first group matched in the log."""
    metrics = []
    for definition in definitions:
        values = [match.group(1) for match in re.finditer(definition["Regex"], log)]
        for value in reversed(values):
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            metrics.append({"MetricName": definition["Name"], "Value": number, "Timestamp": epoch_millis(time.time())})
            break
    return metrics


def split_s3_uri(uri: str) -> tuple[str, str]:
    """ "s3://bucket/a/b/" → ("bucket", "a/b/")."""
    if not uri.startswith("s3://"):
        raise JobRefusedError(f"ClientError: not an S3 URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _metric_definitions(request: dict[str, Any]) -> list[dict[str, str]]:
    definitions: list[dict[str, str]] = request.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
    return definitions


def _plain(value: Any) -> Any:
    """An answer of boto3 with its datetimes as epoch seconds (and without its ResponseMetadata)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
