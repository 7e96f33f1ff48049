"""One training, end to end against the bucket: corpus → version → report → maybe promotion → index.

`TrainerService.train_for` is the trigger's way in: it asks the ledger whether a later training
already read the trigger's root file (coalescing.py holds the policy), trains, publishes
ModelTrained or TrainingSkipped, and records each root's training status.

Storage layout written here (keys from shared.layout):

    models/vX.Y/...           the version's files (artifacts.py), manifest last; never rewritten
    models/current/...        a copy of the promoted version's files, manifest last
    models/current.json       {"version", "model_prefix", "macro_f1", "promoted_at"}: written LAST;
                              readers resolve it and read the immutable models/vX.Y/ it names
    models/index.json         every version: status, metrics, promotion decision (from the registry)
    monitoring/metrics/vX.Y/  metrics.json, confusion_matrix.png, f1_per_class.png, top_ngrams.png,
                              report.html
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reviews_model.artifacts import MANIFEST, UnsafeModelError, load_model, model_files, write_model
from reviews_model.versions import Version
from shared import layout
from shared.events import EtlCompleted, ModelTrained, TrainingSkipped
from shared.ledger import barrier_counter
from shared.observability import Observability
from shared.resources import PipelineResources
from shared.storage import ObjectStore

from .coalescing import covered_status, is_covered, roots_covered_by, skipped_status
from .report import report_files
from .training import (
    NotEnoughDataError,
    TrainerSettings,
    TrainingOutcome,
    evaluate_model,
    read_etl_parquet,
    shortage,
    train_and_evaluate,
)
from .version_rules import PromotionDecision, configuration_identity, decide_promotion
from .versions import ModelRegistry

_PROMOTION_ATTEMPTS = 5
_POINTER_ATTEMPTS = 3


@dataclass(frozen=True)
class TrainingRequest:
    trigger_root_file_id: str | None
    correlation_id: str


@dataclass(frozen=True)
class TrainerService:
    """One invocation's trainings over the pipeline's bucket, ledger, model registry and bus."""

    resources: PipelineResources
    registry: ModelRegistry
    settings: TrainerSettings
    observability: Observability

    def train_for(self, trigger: EtlCompleted) -> dict[str, Any]:
        """Train on the whole corpus for a training root file whose ETL completed, unless a training already read it.

        A corpus with too few reviews in some class is an expected state, not a fault: TrainingSkipped
        is published, the root's stage reads `skipped: too few labelled reviews, …`, and the next
        training file's trigger trains on the whole corpus (marking the skipped roots covered).
        """
        ledger = self.resources.ledger
        logger = self.observability.logger
        root = trigger.root_file_id
        if is_covered(status := self.training_status(root)):
            logger.info("training skipped: a later training already read this file", root_file_id=root)
            return {"skipped": status}
        # Listed before the corpus is read: only files complete by then are surely inside this training.
        ready = self.roots_with_complete_etl()
        ledger.set_stage_status(root, "training", "running")
        outcome = train_version(
            self.resources.store,
            self.registry,
            self.settings,
            TrainingRequest(trigger_root_file_id=root, correlation_id=trigger.correlation_id),
        )
        self.resources.publisher("trainer").publish(outcome)
        if isinstance(outcome, TrainingSkipped):
            status = skipped_status(shortage(outcome.class_counts, outcome.min_reviews_per_class))
            ledger.set_stage_status(root, "training", status)
            logger.info("no model trained", reason=outcome.reason, class_counts=outcome.class_counts)
            return {"skipped": outcome.reason}
        ledger.set_stage_status(root, "training", "completed")
        statuses = {other: self.training_status(other) for other in ready if other != root}
        for covered in roots_covered_by(root, ready, statuses):
            ledger.set_stage_status(covered, "training", covered_status(outcome.version))
        logger.info(
            "model trained",
            version=outcome.version,
            promoted=outcome.promoted,
            reason=outcome.reason,
            macro_f1=outcome.metrics["macro_f1"],
        )
        return {"version": outcome.version, "promoted": outcome.promoted}

    def training_status(self, root_file_id: str) -> str:
        record = self.resources.ledger.get(root_file_id)
        return record.stages.get("training", "") if record else ""

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


def read_training_corpus(store: ObjectStore) -> Any:
    keys = sorted(key for key in store.keys(layout.etl_prefix("train")) if key.endswith(".parquet"))
    return read_etl_parquet(store.read_bytes(key) for key in keys), len(keys)


def train_version(
    store: ObjectStore, registry: ModelRegistry, settings: TrainerSettings, request: TrainingRequest
) -> ModelTrained | TrainingSkipped:
    """Train on the whole etl/train/ corpus, write the version and its report, promote it if it is good enough.

    A corpus with too few reviews in some class trains nothing and says so (TrainingSkipped).
    """
    table, files_read = read_training_corpus(store)
    try:
        outcome = train_and_evaluate(table, settings)
    except NotEnoughDataError as error:
        # Before the version is claimed: a corpus too small to train takes no number and writes nothing.
        return training_skipped(error, settings, files_read, request)
    fingerprint, configuration = configuration_identity(settings.label_target, settings.features)
    version = registry.claim_version(fingerprint, configuration, claimed_by=request.trigger_root_file_id or "manual")
    prefix = layout.model_prefix(str(version))
    details = training_details(outcome, settings, files_read, request)
    write_model(store, prefix, model_files(outcome.model, str(version), extra={"training": details}))
    metrics = outcome.evaluation.headline()
    registry.record(version, status="written", details={"metrics": metrics, "model_prefix": prefix, **details})
    for name, body in report_files(outcome.evaluation, outcome.model, str(version), details).items():
        store.write_bytes(layout.metrics_report_key(str(version), name), body, _content_type(name))

    previous, decision = promote_if_good_enough(store, registry, settings, version, outcome)
    registry.record(
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
        publish_current(store, registry)
    store.write_json(layout.model_index_key(), {"versions": registry.versions()})
    return ModelTrained(
        correlation_id=request.correlation_id,
        version=str(version),
        model_prefix=prefix,
        promoted=decision.promote,
        reason=None if decision.promote else decision.reason,
        metrics=metrics,
        previous_version=str(previous) if previous else None,
        trigger_root_file_id=request.trigger_root_file_id,
    )


def training_skipped(
    error: NotEnoughDataError, settings: TrainerSettings, files_read: int, request: TrainingRequest
) -> TrainingSkipped:
    return TrainingSkipped(
        correlation_id=request.correlation_id,
        reason=f"no model trained: {error} ({settings.label_target} labels, over every training file so far); "
        "add more training files: the next one trains on them all",
        class_counts=error.class_counts,
        min_reviews_per_class=error.minimum,
        label_target=settings.label_target,
        etl_files=files_read,
        trigger_root_file_id=request.trigger_root_file_id,
    )


def training_details(
    outcome: TrainingOutcome, settings: TrainerSettings, files_read: int, request: TrainingRequest
) -> dict[str, Any]:
    return {
        "label_target": settings.label_target,
        "etl_files": files_read,
        "rows_in": outcome.preparation.rows_in,
        "rows_unlabelled": outcome.preparation.rows_unlabelled,
        "rows_duplicate": outcome.preparation.rows_duplicate,
        "rows_train": outcome.train_rows,
        "rows_test": len(outcome.test),
        "boosting_rounds": outcome.fit.best_rounds,
        "vocabulary_size": outcome.fit.vocabulary_size,
        "train_seconds": round(outcome.seconds, 2),
        "trigger_root_file_id": request.trigger_root_file_id,
    }


def score_current(store: ObjectStore, current: Version, outcome: TrainingOutcome) -> tuple[float | None, str | None]:
    """The current model's macro-F1 on this training's test split, or why it cannot be scored there."""
    try:
        model = load_model(store, layout.model_prefix(str(current)))
    except UnsafeModelError as error:
        return None, f"the current model {current} could not be loaded ({error}); compared with the floor only"
    if model.classes != outcome.model.classes:
        return None, f"the current model {current} predicts other classes {list(model.classes)}; floor only"
    return evaluate_model(model, outcome.test).macro_f1, None


def promote_if_good_enough(
    store: ObjectStore, registry: ModelRegistry, settings: TrainerSettings, version: Version, outcome: TrainingOutcome
) -> tuple[Version | None, PromotionDecision]:
    """(the current version it was compared with, the decision); on promotion the registry names `version`."""
    for _ in range(_PROMOTION_ATTEMPTS):
        current = registry.current()
        current_f1, note = score_current(store, current, outcome) if current is not None else (None, None)
        decision = decide_promotion(outcome.evaluation.macro_f1, settings.min_macro_f1, current, current_f1, note)
        if not decision.promote or registry.swap_current(current, version):
            return current, decision
        # Another version was promoted meanwhile: compare with that one.
    raise RuntimeError(f"the current model kept changing; {version} was not promoted")


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
