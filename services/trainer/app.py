"""Lambda entry point of the trainer: EtlCompleted{train, root_complete} → models/vX.Y/ → ModelTrained.

STAND-IN (issue 2): training comes with the trainer issue. Until then the trigger is recorded in
the ledger (`stages.training = not_built`) and no model, and so no ModelTrained, is produced.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_detail
from shared.events import EtlCompleted
from shared.observability import observability_for
from shared.resources import current_resources

observability = observability_for("trainer")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()

    def note_trigger(detail: EtlCompleted) -> None:
        logger.warning("training requested but the trainer is not built yet", root_file_id=detail.root_file_id)
        resources.ledger.set_stage_status(detail.root_file_id, "training", "not_built")

    routes = {EtlCompleted.detail_type: route_detail(EtlCompleted, note_trigger)}
    return dict(consume_events(event, context, routes, logger))
