"""Lambda entry point of the trainer: EtlCompleted{train, root_complete} → models/vX.Y/ → ModelTrained.

Training runs once per trigger root file (Powertools idempotency on `root_file_id`): a redelivered
event returns the first result. Events for inference files, or for parts before the last, are
acknowledged and ignored.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_detail
from shared.events import EtlCompleted
from shared.observability import observability_for
from shared.resources import current_resources

from .service import TrainingRequest, train_version
from .training import TrainerSettings
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
        resources.ledger.set_stage_status(detail.root_file_id, "training", "running")
        trained = train_version(
            resources.store,
            registry,
            settings,
            TrainingRequest(trigger_root_file_id=detail.root_file_id, correlation_id=detail.correlation_id),
        )
        publisher.publish(trained)
        resources.ledger.set_stage_status(detail.root_file_id, "training", "completed")
        logger.info(
            "model trained",
            version=trained.version,
            promoted=trained.promoted,
            reason=trained.reason,
            macro_f1=trained.metrics["macro_f1"],
        )
        return {"version": trained.version, "promoted": trained.promoted}

    def on_etl_completed(detail: EtlCompleted) -> None:
        if detail.dataset != "train" or not detail.root_complete:
            return
        train_once(detail=detail)

    routes = {EtlCompleted.detail_type: route_detail(EtlCompleted, on_etl_completed)}
    return dict(consume_events(event, context, routes, logger))
