"""Lambda entry point of the trainer: EtlCompleted{train, root_complete} → models/vX.Y/ → ModelTrained.

Training runs once per trigger root file (Powertools idempotency on `root_file_id`): a redelivered
event returns the first result. Events for inference files, or for parts before the last, are
acknowledged and ignored. The work, and the coalescing of triggers a training already read, is
`service.TrainerService`'s.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_detail
from shared.events import EtlCompleted
from shared.observability import observability_for
from shared.resources import current_resources

from .service import TrainerService
from .training import TrainerSettings
from .versions import ModelRegistry

observability = observability_for("trainer")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    trainer = TrainerService(
        resources=resources,
        registry=ModelRegistry(resources.clients.dynamodb, resources.settings.ledger_table),
        settings=TrainerSettings(),
        observability=observability,
    )

    @resources.ledger.once_per_version("trainer", "root_file_id", context)
    def train_once(detail: EtlCompleted) -> dict[str, Any]:
        return trainer.train_for(detail)

    def on_etl_completed(detail: EtlCompleted) -> None:
        if detail.dataset != "train" or not detail.root_complete:
            return
        train_once(detail=detail)

    routes = {EtlCompleted.detail_type: route_detail(EtlCompleted, on_etl_completed)}
    return dict(consume_events(event, context, routes, logger))
