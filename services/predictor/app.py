"""Lambda entry point of the predictor: EtlCompleted{inference} → predictions/ → PredictionsCompleted.

STAND-IN (issue 2): prediction comes with the predictor issue. Until then no model is ever promoted,
so every inference part is recorded as `waiting_for_model` in the ledger, which is what the real
predictor does when no model exists yet.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import layout
from shared.consumer import consume_events, route_detail
from shared.events import EtlCompleted, ModelTrained
from shared.observability import observability_for
from shared.resources import current_resources

observability = observability_for("predictor")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()

    def predict_part(detail: EtlCompleted) -> None:
        if not any(resources.store.keys(layout.CURRENT_MODEL_PREFIX)):
            resources.ledger.set_stage_status(detail.root_file_id, "predictions", "waiting_for_model")
            return
        raise NotImplementedError("prediction is not built yet")

    def note_model(detail: ModelTrained) -> None:
        logger.info("model promoted", version=detail.version)

    routes = {
        EtlCompleted.detail_type: route_detail(EtlCompleted, predict_part),
        ModelTrained.detail_type: route_detail(ModelTrained, note_model),
    }
    return dict(consume_events(event, context, routes, logger))
