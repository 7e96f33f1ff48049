"""Lambda entry point of the trainer: EtlCompleted{train, root_complete} → models/vX.Y/ → ModelTrained.

Training runs once per trigger root file (Powertools idempotency on `root_file_id`): a redelivered
event returns the first result. Events for inference files, or for parts before the last, are
acknowledged and ignored.

Triggers are coalesced: every training reads the whole etl/train/ corpus, so a root file whose ETL
was complete when a training read the corpus is marked `covered by vX.Y` once that training
succeeds, and its own trigger, still queued behind it, trains nothing more. Twenty files dropped
at once train a handful of times, not twenty.

A corpus with too few reviews in some class is an expected state, not a fault: the trigger is
acknowledged with TrainingSkipped, its root's stage reads `skipped: too few labelled reviews, …`,
and the next training file's trigger trains on the whole corpus (marking the skipped roots covered).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import layout
from shared.consumer import consume_events, route_detail
from shared.events import EtlCompleted, TrainingSkipped
from shared.ledger import barrier_counter
from shared.observability import observability_for
from shared.resources import PipelineResources, current_resources

from .service import TrainingRequest, train_version
from .training import TrainerSettings, shortage
from .versions import ModelRegistry

observability = observability_for("trainer")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    settings = TrainerSettings()
    registry = ModelRegistry(resources.clients.dynamodb, resources.settings.ledger_table)
    publisher = resources.publisher("trainer")

    @resources.ledger.once_per_version("trainer", "root_file_id", context)
    def train_once(detail: EtlCompleted) -> dict[str, Any]:
        covered = _training_status(resources, detail.root_file_id)
        if covered.startswith(COVERED_BY):
            logger.info("training skipped: a later training already read this file", root_file_id=detail.root_file_id)
            return {"skipped": covered}
        # Listed before the corpus is read: only files complete by then are surely inside this training.
        ready = _roots_with_complete_etl(resources)
        resources.ledger.set_stage_status(detail.root_file_id, "training", "running")
        outcome = train_version(
            resources.store,
            registry,
            settings,
            TrainingRequest(trigger_root_file_id=detail.root_file_id, correlation_id=detail.correlation_id),
        )
        publisher.publish(outcome)
        if isinstance(outcome, TrainingSkipped):
            status = f"{SKIPPED}{shortage(outcome.class_counts, outcome.min_reviews_per_class)}"
            resources.ledger.set_stage_status(detail.root_file_id, "training", status)
            logger.info("no model trained", reason=outcome.reason, class_counts=outcome.class_counts)
            return {"skipped": outcome.reason}
        resources.ledger.set_stage_status(detail.root_file_id, "training", "completed")
        for root in ready:
            if root != detail.root_file_id and _may_be_covered(_training_status(resources, root)):
                resources.ledger.set_stage_status(root, "training", f"{COVERED_BY}{outcome.version}")
        logger.info(
            "model trained",
            version=outcome.version,
            promoted=outcome.promoted,
            reason=outcome.reason,
            macro_f1=outcome.metrics["macro_f1"],
        )
        return {"version": outcome.version, "promoted": outcome.promoted}

    def on_etl_completed(detail: EtlCompleted) -> None:
        if detail.dataset != "train" or not detail.root_complete:
            return
        train_once(detail=detail)

    routes = {EtlCompleted.detail_type: route_detail(EtlCompleted, on_etl_completed)}
    return dict(consume_events(event, context, routes, logger))


COVERED_BY = "covered by "
SKIPPED = "skipped: "


def _may_be_covered(status: str) -> bool:
    """A root no training has taken up, or one whose own trigger found too little data to train."""
    return not status or status.startswith(SKIPPED)


def _training_status(resources: PipelineResources, root_file_id: str) -> str:
    record = resources.ledger.get(root_file_id)
    return record.stages.get("training", "") if record else ""


def _roots_with_complete_etl(resources: PipelineResources) -> list[str]:
    """Training root files whose every part is in etl/train/ (the ETL barrier completed for them)."""
    prefix = layout.etl_prefix("train")
    roots = {key[len(prefix) :].split("/", 1)[0] for key in resources.store.keys(prefix)}
    complete = []
    for root in sorted(roots):
        record = resources.ledger.get(root)
        if record is not None and record.counters.get(barrier_counter("etl", "complete")):
            complete.append(root)
    return complete
