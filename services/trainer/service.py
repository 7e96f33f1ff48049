"""Training on SageMaker, against the bucket, the registry and the bus: launch, finish, sweep.

- `TrainerService.launch_for` is the trigger's way in (EtlCompleted{train, root_complete}): it asks the
  ledger whether a launched training already covers the trigger's root file (coalescing.py holds the
  policy), checks the corpus has enough labelled reviews in every class (TrainingSkipped if not, no
  version taken), claims the version, records the run and calls CreateTrainingJob (or, with
  `search=grid`, CreateHyperParameterTuningJob). It returns at once: SageMaker trains.
- `TrainerService.finish_training_job` / `finish_tuning_job` are the finisher's (the state-change
  events SageMaker puts on the default bus): on Completed they read the job's model.tar.gz safely,
  write models/vX.Y/, decide promotion, write the pointer last, the index and the report, and publish
  ModelTrained; on Failed/Stopped they mark the version failed and publish ModelTrained{status: failed}
  (the monitor raises the alert). A state change already finished is a duplicate and does nothing.
- `TrainerService.sweep` recovers a lost event: a run still recorded as running past its deadline
  (launch + max runtime + grace, when SageMaker has certainly ended it) is finished from
  DescribeTrainingJob's answer, which has the event's shape. Only the finisher sweeps, on a schedule:
  the launcher could too, on its next trigger, but then it would need the finisher's write access to
  models/, and a lost event would wait for a new training file. Job state is never taken from SageMaker
  earlier than the deadline: until then the events are the state.

Storage layout written here (keys from shared.layout):

    models/training-jobs/<job>/output/model.tar.gz   SageMaker's output (read, never written here)
    models/vX.Y/...           the version's files (artifacts.py), manifest last; never rewritten
    models/current/...        a copy of the promoted version's files, manifest last
    models/current.json       {"version", "model_prefix", "promoted_at", "manifest"}: written LAST;
                              readers resolve it and read the immutable models/vX.Y/ it names
    models/index.json         every version: status, metrics, promotion decision (from the registry)
    monitoring/metrics/vX.Y/  metrics.json, confusion_matrix.png, f1_per_class.png, top_ngrams.png,
                              report.html
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from reviews_model.artifacts import MANIFEST, UnsafeModelError, load_model, model_from_files, write_model
from reviews_model.versions import Version
from shared import layout
from shared.aws import retrying_config
from shared.etl_schema import RATING, labels_for
from shared.events import EtlCompleted, ModelTrained, SearchSummary, SearchTrial, TrainingSkipped
from shared.ledger import barrier_counter
from shared.observability import Observability
from shared.resources import PipelineResources, current_resources
from shared.sagemaker_events import TrainingJobStateChange, TuningJobStateChange
from shared.settings import PipelineSettings
from shared.storage import ObjectStore

from .coalescing import (
    covered_status,
    failed_status,
    in_training_status,
    is_covered,
    is_waiting,
    roots_covered_by,
    running_status,
    skipped_status,
    waiting_status,
)
from .evaluation import Evaluation
from .hyperparameters import to_hyperparameters
from .jobs import (
    OBJECTIVE_METRIC,
    TrainingJobSettings,
    input_channels,
    job_name,
    training_job_request,
    tuning_job_request,
)
from .report import REPORT_HTML, report_files
from .training import LabelledReviews, NotEnoughDataError, TrainerSettings, evaluate_model, shortage
from .training_output import TrainingOutput, read_training_output
from .version_rules import PromotionDecision, configuration_identity, decide_promotion, superseded
from .versions import RUNNING, ModelRegistry

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

_PROMOTION_ATTEMPTS = 5
_POINTER_ATTEMPTS = 3
TRAINING = "training"
TUNING = "tuning"


@dataclass(frozen=True)
class TrainerService:
    """The trainer's launches and finishes over the pipeline's bucket, ledger, model registry, bus and SageMaker."""

    resources: PipelineResources
    registry: ModelRegistry
    settings: TrainerSettings
    jobs: TrainingJobSettings
    sagemaker: SageMakerClient
    observability: Observability

    # -- launching --------------------------------------------------------------------------------

    def launch_for(self, trigger: EtlCompleted) -> dict[str, Any]:
        """Launch a training over the whole corpus for a training root whose ETL completed, unless one covers it.

        While another training job runs, the root waits for it (one job at a time: files dropped over
        a few minutes train twice, not once each); `launch_waiting` takes it up when that job ends.
        A corpus with too few reviews in some class is an expected state, not a fault: TrainingSkipped
        is published, the root's stage reads `skipped: too few labelled reviews, …`, and the next
        training file's trigger trains on the whole corpus (taking the skipped roots up).
        """
        root = trigger.root_file_id
        logger = self.observability.logger
        if is_covered(status := self.training_status(root)):
            logger.info("no training launched: a training already covers this file", root_file_id=root, status=status)
            return {"skipped": status}
        running = self.running_job()
        if running is not None:
            self.resources.ledger.set_stage_status(root, TRAINING, waiting_status(running["version"]))
            logger.info("training deferred: a job is running", root_file_id=root, running_job=running["job_name"])
            return {"waiting_for": running["job_name"]}
        return self.launch(root, trigger.correlation_id)

    def launch_waiting(self, finished: ModelTrained) -> dict[str, Any]:
        """A training ended: launch one training for the roots that waited for it (their triggers came meanwhile)."""
        running = self.running_job(other_than=finished.version)
        if running is not None:
            return {"waiting_for": running["job_name"]}
        waiting = [root for root in self.roots_with_complete_etl() if is_waiting(self.training_status(root))]
        if not waiting:
            return {"waiting": 0}
        record = self.resources.ledger.get(waiting[0])
        correlation_id = record.correlation_id if record is not None else waiting[0]
        return self.launch(waiting[0], correlation_id)

    def running_job(self, other_than: str | None = None) -> dict[str, Any] | None:
        """A job this stack launched and has not seen end (one past its deadline no longer holds others back:
        its event was lost, and the sweep finishes it)."""
        now = time.time()
        for run in self.registry.runs(running_only=True):
            if run["version"] != other_than and run["deadline"] > now:
                return run
        return None

    def launch(self, root: str, correlation_id: str) -> dict[str, Any]:
        """Claim the version, start the job over etl/train/ as it is now, and record what the job covers."""
        ledger = self.resources.ledger
        logger = self.observability.logger
        # Listed before the job is created: files complete by then are surely in the corpus it reads.
        ready = self.roots_with_complete_etl()
        class_counts, files_read = self.corpus_class_counts()
        if min(class_counts.values(), default=0) < self.settings.min_reviews_per_class:
            skipped = self.training_skipped(class_counts, files_read, root, correlation_id)
            self.resources.publisher("trainer").publish(skipped)
            status = skipped_status(shortage(class_counts, skipped.min_reviews_per_class))
            for untrained in [root, *(other for other in ready if is_waiting(self.training_status(other)))]:
                ledger.set_stage_status(untrained, TRAINING, status)
            logger.info("no model trained", reason=skipped.reason, class_counts=class_counts)
            return {"skipped": skipped.reason}

        searching = self.jobs.search == "grid"
        if searching:
            self.jobs.check_search()
        fingerprint, configuration = configuration_identity(
            self.settings.label_target, self.settings.features, self.jobs.search_space if searching else None
        )
        version = self.registry.claim_version(fingerprint, configuration, claimed_by=root)
        name = job_name(self.jobs.job_prefix, str(version), self.registry.claimed_at(version))
        current = self.registry.current()
        statuses = {other: self.training_status(other) for other in ready if other != root}
        covered = roots_covered_by(root, ready, statuses)
        run_details = {
            "trigger_root_file_id": root,
            "correlation_id": correlation_id,
            "covered_roots": covered,
            "compared_with": str(current) if current else None,
            "search_space": self.jobs.search_space if searching else None,
        }
        # The job first, its records after: a launch that dies in between is retried with the same claimed
        # version, so the same job name, which SageMaker refuses to create twice (start_job keeps it).
        self.start_job(name, version, current, searching)
        deadline = time.time() + self.jobs.max_runtime_seconds + self.jobs.sweep_grace_seconds
        self.registry.record_run(
            name, version, kind=TUNING if searching else TRAINING, deadline=deadline, details=run_details
        )
        self.registry.record(
            version,
            status=TRAINING,
            details={
                "training_job": name,
                "engine": "sagemaker",
                "kind": TUNING if searching else TRAINING,
                **run_details,
            },
        )
        ledger.set_stage_status(root, TRAINING, running_status(str(version), name))
        for other in covered:
            ledger.set_stage_status(other, TRAINING, in_training_status(str(version)))
        logger.info("training launched", version=str(version), training_job=name, search=self.jobs.search)
        return {"version": str(version), "training_job": name}

    def start_job(self, name: str, version: Version, current: Version | None, searching: bool) -> None:
        """CreateTrainingJob (or the tuning job); a job of that name already started by a retried launch is kept."""
        channels = input_channels(
            self.resources.store.bucket,
            layout.etl_prefix("train"),
            layout.model_prefix(str(current)) if current else None,
        )
        arguments: dict[str, Any] = {
            "bucket": self.resources.store.bucket,
            "output_prefix": layout.training_output_prefix(),
            "channels": channels,
        }
        hyperparameters = to_hyperparameters(self.settings, str(version))
        try:
            if searching:
                self.sagemaker.create_hyper_parameter_tuning_job(
                    **tuning_job_request(name, self.jobs, hyperparameters, **arguments)
                )
            else:
                self.sagemaker.create_training_job(
                    **training_job_request(name, self.jobs, hyperparameters, **arguments)
                )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUse":
                raise
            self.observability.logger.info("the job was already created by an earlier attempt", training_job=name)

    def corpus_class_counts(self) -> tuple[dict[str, int], int]:
        """Labelled reviews per class over etl/train/ (ratings only: before de-duplication), and the files read."""
        store = self.resources.store
        keys = [key for key in store.keys(layout.etl_prefix("train")) if key.endswith(".parquet")]
        counts = dict.fromkeys(self.settings.classes, 0)
        for key in keys:
            try:
                ratings = pq.read_table(io.BytesIO(store.read_bytes(key)), columns=[RATING]).column(RATING)
            except (pa.ArrowException, KeyError) as error:
                # Not the launcher's to judge: the job reads the corpus and fails naming the file, so the
                # version is marked failed with an alert, rather than every trigger failing here unseen.
                self.observability.logger.warning("an etl/train/ file is unreadable", key=key, error=str(error))
                continue
            labels = labels_for(ratings.combine_chunks(), self.settings.label_target)
            for entry in pc.value_counts(labels.drop_null()).to_pylist():
                if entry["values"] in counts:
                    counts[entry["values"]] += int(entry["counts"])
        return counts, len(keys)

    def training_skipped(
        self, class_counts: dict[str, int], files_read: int, root: str, correlation_id: str
    ) -> TrainingSkipped:
        error = NotEnoughDataError(class_counts, self.settings.min_reviews_per_class)
        return TrainingSkipped(
            correlation_id=correlation_id,
            reason=f"no model trained: {error} ({self.settings.label_target} labels, over every training file so far); "
            "add more training files: the next one trains on them all",
            class_counts=class_counts,
            min_reviews_per_class=error.minimum,
            label_target=self.settings.label_target,
            etl_files=files_read,
            trigger_root_file_id=root,
        )

    def training_status(self, root_file_id: str) -> str:
        record = self.resources.ledger.get(root_file_id)
        return record.stages.get(TRAINING, "") if record else ""

    def roots_with_complete_etl(self) -> list[str]:
        """Training root files whose every part is in etl/train/ (the ETL barrier completed for them)."""
        prefix = layout.etl_prefix("train")
        roots = {key[len(prefix) :].split("/", 1)[0] for key in self.resources.store.keys(prefix)}
        complete = []
        for root in sorted(roots):
            record = self.resources.ledger.get(root)
            if record is not None and record.counters.get(barrier_counter("etl", "complete")):
                complete.append(root)
        return complete

    # -- finishing --------------------------------------------------------------------------------

    def finish_training_job(self, change: TrainingJobStateChange) -> dict[str, Any]:
        """A training job reached a final state: a run of ours, a trial of one of our searches, or neither."""
        name = change.TrainingJobName
        run = self.registry.run(name)
        if run is None:
            if change.TuningJobArn:
                self.registry.record_trial(_tuning_name(change.TuningJobArn), _trial_of(change))
                return {"trial": name, "status": change.TrainingJobStatus}
            self.observability.logger.warning("a state change for a job this stack has no record of", training_job=name)
            return {"ignored": name}
        if run["status"] != RUNNING:
            return {"status": "duplicate", "settled_as": run["status"]}
        if change.TrainingJobStatus != "Completed":
            return self.fail(run, change.TrainingJobStatus, change.FailureReason or "no reason given")
        artifact = change.ModelArtifacts.S3ModelArtifacts if change.ModelArtifacts else None
        return self.complete(run, self.artifact_key(artifact, name), name, search=None)

    def finish_tuning_job(self, change: TuningJobStateChange) -> dict[str, Any]:
        name = change.HyperParameterTuningJobName
        run = self.registry.run(name)
        if run is None:
            self.observability.logger.warning(
                "a state change for a tuning job this stack has no record of", tuning_job=name
            )
            return {"ignored": name}
        if run["status"] != RUNNING:
            return {"status": "duplicate", "settled_as": run["status"]}
        search = self.search_summary(name, change, run)
        best = change.BestTrainingJob
        if change.HyperParameterTuningJobStatus != "Completed" or best is None:
            reason = change.FailureReason or ("no trial completed" if best is None else "no reason given")
            return self.fail(run, change.HyperParameterTuningJobStatus, reason, search)
        return self.complete(run, layout.training_artifact_key(best.TrainingJobName), best.TrainingJobName, search)

    def search_summary(self, name: str, change: TuningJobStateChange, run: dict[str, Any]) -> SearchSummary:
        space = run.get("search_space") or {}
        results = sorted(self.registry.trials(name), key=lambda trial: trial["training_job"])
        trials = [
            SearchTrial(
                training_job=trial["training_job"],
                parameters={setting: trial["hyperparameters"].get(setting, "") for setting in space},
                objective=trial["objective"],
                status=trial["status"],
            )
            for trial in results
        ]
        best = None
        if change.BestTrainingJob is not None:
            tuned = change.BestTrainingJob.TunedHyperParameters
            metric = change.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric
            best = SearchTrial(
                training_job=change.BestTrainingJob.TrainingJobName,
                parameters={setting: tuned.get(setting, "") for setting in space} if tuned else {},
                objective=metric.Value if metric else None,
                status=change.BestTrainingJob.TrainingJobStatus or "Completed",
            )
        counted = sum(change.TrainingJobStatusCounters.values())
        return SearchSummary(
            strategy="grid",
            tuning_job=name,
            objective_metric=OBJECTIVE_METRIC,
            trials=max(counted, len(trials)),
            results=trials,
            best=best,
        )

    def artifact_key(self, artifact: str | None, name: str) -> str:
        """The key of a job's model.tar.gz, which must be where this stack's jobs write theirs."""
        expected = layout.training_artifact_key(name)
        if artifact is None:
            return expected
        bucket_prefix = f"s3://{self.resources.store.bucket}/"
        key = artifact[len(bucket_prefix) :] if artifact.startswith(bucket_prefix) else None
        if key != expected:
            raise UnsafeModelError(f"job {name}'s model artifact {artifact!r} is not {bucket_prefix}{expected}")
        return key

    def complete(
        self, run: dict[str, Any], artifact_key: str, training_job: str, search: SearchSummary | None
    ) -> dict[str, Any]:
        """Write the job's version, decide promotion, publish ModelTrained, then mark the run finished."""
        store = self.resources.store
        version = Version.parse(run["version"])
        try:
            output = self.read_output(artifact_key, run["version"])
            evaluation_document = json.loads(output.evaluation)
            evaluation = Evaluation.model_validate(evaluation_document["evaluation"])
            model = model_from_files(output.model_files)
        except (UnsafeModelError, ValueError, KeyError) as error:
            # A job that completed with outputs we refuse to load did not produce a usable model.
            return self.fail(run, "Completed", f"its output was refused: {error}", search)
        prefix = layout.model_prefix(str(version))
        details = {
            **evaluation_document["details"],
            "trigger_root_file_id": run["trigger_root_file_id"],
            "engine": "sagemaker",
            "training_job": training_job,
            "search": search.model_dump() if search else None,
        }
        if store.head(prefix + MANIFEST) is None:  # written whole before: a retry after a crash leaves it
            write_model(store, prefix, output.model_files)
        metrics = evaluation.headline()
        self.registry.record(version, status="written", details={"metrics": metrics, "model_prefix": prefix, **details})
        if store.head(layout.metrics_report_key(str(version), REPORT_HTML)) is None:
            files = report_files(evaluation, model, str(version), details)
            for name in sorted(files, key=lambda name: name == REPORT_HTML):  # the page last: its presence means all
                store.write_bytes(layout.metrics_report_key(str(version), name), files[name], _content_type(name))

        previous, decision = self.promote_if_good_enough(version, evaluation.macro_f1, evaluation_document, output)
        self.registry.record(
            version,
            status="promoted" if decision.promote else "not_promoted",
            details={
                "metrics": metrics,
                "model_prefix": prefix,
                "reason": decision.reason,
                "previous_version": str(previous) if previous else None,
                **details,
            },
        )
        if decision.promote:
            publish_current(store, self.registry)
        store.write_json(layout.model_index_key(), {"versions": self.registry.versions()})
        ledger = self.resources.ledger
        ledger.set_stage_status(run["trigger_root_file_id"], TRAINING, "completed")
        for covered in run["covered_roots"]:
            ledger.set_stage_status(covered, TRAINING, covered_status(str(version)))
        self.resources.publisher("trainer").publish(
            ModelTrained(
                correlation_id=run["correlation_id"],
                version=str(version),
                model_prefix=prefix,
                promoted=decision.promote,
                reason=None if decision.promote else decision.reason,
                metrics=metrics,
                previous_version=str(previous) if previous else None,
                trigger_root_file_id=run["trigger_root_file_id"],
                training_job=training_job,
                search=search,
            )
        )
        # Last: a crash before this line finishes the run again on redelivery (the writes above are
        # idempotent, the event may repeat); after it, a redelivery is a duplicate.
        self.registry.finish_run(
            run["job_name"], "Completed", {"promoted": decision.promote, "reason": decision.reason}
        )
        self.observability.logger.info(
            "model trained",
            version=str(version),
            promoted=decision.promote,
            reason=decision.reason,
            macro_f1=metrics["macro_f1"],
        )
        return {"version": str(version), "promoted": decision.promote}

    def read_output(self, key: str, version: str) -> TrainingOutput:
        info = self.resources.store.head(key)
        if info is None:
            raise UnsafeModelError(f"the job wrote no {key}")
        if info.size > self.jobs.max_artifact_bytes:
            raise UnsafeModelError(f"{key} is {info.size} bytes, over the {self.jobs.max_artifact_bytes}-byte cap")
        output = read_training_output(self.resources.store.read_bytes(key), self.jobs.max_artifact_bytes)
        trained = json.loads(output.evaluation).get("version")
        if trained != version:
            raise UnsafeModelError(f"{key} holds version {trained!r}, not the {version} its job was launched for")
        return output

    def fail(
        self, run: dict[str, Any], status: str, reason: str, search: SearchSummary | None = None
    ) -> dict[str, Any]:
        """The job failed or was stopped: the version is marked failed, nothing is promoted, its roots wait for
        the next training, and ModelTrained{status: failed} tells the monitor (which raises the alert)."""
        version = Version.parse(run["version"])
        why = f"training job {run['job_name']} {status.lower()}: {reason}"
        self.registry.record(
            version, status="failed", details={"reason": why, "training_job": run["job_name"], "engine": "sagemaker"}
        )
        self.resources.store.write_json(layout.model_index_key(), {"versions": self.registry.versions()})
        ledger = self.resources.ledger
        for root in [run["trigger_root_file_id"], *run["covered_roots"]]:
            ledger.set_stage_status(root, TRAINING, failed_status(str(version), why))
        current = self.registry.current()
        self.resources.publisher("trainer").publish(
            ModelTrained(
                correlation_id=run["correlation_id"],
                version=str(version),
                model_prefix=layout.model_prefix(str(version)),
                promoted=False,
                reason=why,
                metrics={},
                previous_version=str(current) if current else None,
                trigger_root_file_id=run["trigger_root_file_id"],
                status="failed",
                training_job=run["job_name"],
                failure_reason=reason,
                search=search,
            )
        )
        self.registry.finish_run(run["job_name"], status if status != "Completed" else "Failed", {"reason": why})
        self.observability.logger.warning("training failed", version=str(version), reason=why)
        return {"version": str(version), "failed": why}

    # -- promotion --------------------------------------------------------------------------------

    def promote_if_good_enough(
        self, version: Version, macro_f1: float, evaluation: dict[str, Any], output: TrainingOutput
    ) -> tuple[Version | None, PromotionDecision]:
        """(the current version it was compared with, the decision); on promotion the registry names `version`."""
        for _ in range(_PROMOTION_ATTEMPTS):
            current = self.registry.current()
            decision = superseded(
                version,
                self.registry.claimed_at(version),
                current,
                self.registry.claimed_at(current) if current is not None and current != version else None,
            )
            if decision is None:
                current_f1, note = (None, None)
                if current is not None and current != version:
                    current_f1, note = self.score_current(current, evaluation, output)
                decision = decide_promotion(macro_f1, self.settings.min_macro_f1, current, current_f1, note)
            if not decision.promote or current == version or self.registry.swap_current(current, version):
                return (None if current == version else current), decision
            # Another version was promoted meanwhile: compare with that one.
        raise RuntimeError(f"the current model kept changing; {version} was not promoted")

    def score_current(
        self, current: Version, evaluation: dict[str, Any], output: TrainingOutput
    ) -> tuple[float | None, str | None]:
        """The current model's macro-F1 on the job's test split: as the job measured it when the job compared
        the same version, else measured here on the split the job kept (another version was promoted meanwhile)."""
        measured = evaluation.get("current") or {}
        if measured.get("version") == str(current):
            return measured.get("macro_f1"), measured.get("note")
        if output.test_split is None:
            return None, f"the job kept no test split to score the current model {current} on; floor only"
        try:
            model = load_model(self.resources.store, layout.model_prefix(str(current)))
        except UnsafeModelError as error:
            return None, f"the current model {current} could not be loaded ({error}); compared with the floor only"
        test = _test_split(output.test_split, model.classes)
        if test is None:
            return None, f"the current model {current} predicts other classes {list(model.classes)}; floor only"
        return evaluate_model(model, test).macro_f1, None

    # -- sweeping ---------------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> list[dict[str, Any]]:
        """Finish every run past its deadline from SageMaker's own answer: its state-change event was lost."""
        moment = time.time() if now is None else now
        finished = []
        for run in self.registry.runs(running_only=True):
            if run["deadline"] > moment:
                continue
            self.observability.logger.warning("no state change came for a job past its deadline", job=run["job_name"])
            finished.append(self.finish_from_description(run))
        return finished

    def finish_from_description(self, run: dict[str, Any]) -> dict[str, Any]:
        name = run["job_name"]
        try:
            if run["kind"] == TUNING:
                tuning = TuningJobStateChange.model_validate(
                    self.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
                )
                return self.finish_tuning_job(tuning) if tuning.is_final else {"still": name}
            training = TrainingJobStateChange.model_validate(self.sagemaker.describe_training_job(TrainingJobName=name))
            return self.finish_training_job(training) if training.is_final else {"still": name}
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("ValidationException", "ResourceNotFound"):
                raise
            return self.fail(run, "Failed", f"SageMaker has no job {name} (it was never created)")


def _tuning_name(tuning_job_arn: str) -> str:
    return tuning_job_arn.rsplit("/", 1)[-1]


def _trial_of(change: TrainingJobStateChange) -> dict[str, Any]:
    return {
        "training_job": change.TrainingJobName,
        "status": change.TrainingJobStatus,
        "hyperparameters": change.HyperParameters,
        "objective": change.metric(OBJECTIVE_METRIC),
    }


def _test_split(body: bytes, classes: tuple[str, ...]) -> LabelledReviews | None:
    """The job's test rows as reviews for a model of `classes`; None when their labels are not those classes."""
    table = pq.read_table(io.BytesIO(body))
    names = table.column("label").to_pylist()
    index = {label: position for position, label in enumerate(classes)}
    if any(name not in index for name in names):
        return None
    tokens = table.column("tokens").to_pylist()
    return LabelledReviews(
        classes=classes,
        tokens=tokens,
        labels=np.array([index[name] for name in names], dtype=np.int64),
        token_count=table.column("token_count").to_numpy().astype(np.int32),
        text_length=table.column("text_length").to_numpy().astype(np.int32),
        texts=[" ".join(row) for row in tokens],
    )


def publish_current(store: ObjectStore, registry: ModelRegistry) -> None:
    """Copy the registry's current version to models/current/ and write models/current.json, last.

    Re-reads the registry afterwards: if another training was promoted while this one was writing,
    the copy is made again for that one, so the last writer always leaves the registry's current.
    """
    for _ in range(_POINTER_ATTEMPTS):
        current = registry.current()
        if current is None:
            return
        source = layout.model_prefix(str(current))
        names = [key[len(source) :] for key in store.keys(source)]
        for name in sorted(names, key=lambda name: name == MANIFEST):
            store.write_bytes(layout.CURRENT_MODEL_PREFIX + name, store.read_bytes(source + name), _content_type(name))
        manifest = store.read_json(source + MANIFEST)
        store.write_json(
            layout.current_model_pointer_key(),
            {"version": str(current), "model_prefix": source, "promoted_at": time.time(), "manifest": manifest},
        )
        if registry.current() == current:
            return


def _content_type(name: str) -> str:
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".png"):
        return "image/png"
    if name.endswith(".html"):
        return "text/html; charset=utf-8"
    return "application/octet-stream"


def trainer_service(observability: Observability) -> TrainerService:
    """The service for this process's environment (the handlers' edge): settings and clients made once."""
    resources = current_resources()
    return TrainerService(
        resources=resources,
        registry=ModelRegistry(resources.clients.dynamodb, resources.settings.ledger_table),
        settings=TrainerSettings(),
        jobs=TrainingJobSettings(),
        sagemaker=_sagemaker_client(resources.settings),
        observability=observability,
    )


@cache
def _sagemaker_client(settings: PipelineSettings) -> SageMakerClient:
    client: SageMakerClient = boto3.session.Session().client(
        "sagemaker", endpoint_url=settings.aws_endpoint_url, config=retrying_config(settings.aws_max_attempts)
    )
    return client
