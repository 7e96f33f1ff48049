"""Lambda entry point of the predictor: EtlCompleted{inference} → predictions/ → PredictionsCompleted.

STAND-IN: prediction comes with the predictor issue. Until then an inference part is recorded in the
ledger as `waiting_for_model` when no model has been promoted, and as `not_built` when one has; no
predictions are written.
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
        promoted = resources.store.head(layout.current_model_pointer_key()) is not None
        status = "not_built" if promoted else "waiting_for_model"
        resources.ledger.set_stage_status(detail.root_file_id, "predictions", status)

    def note_model(detail: ModelTrained) -> None:
        logger.info("model promoted", version=detail.version)

    routes = {
        EtlCompleted.detail_type: route_detail(EtlCompleted, predict_part),
        ModelTrained.detail_type: route_detail(ModelTrained, note_model),
    }
    return dict(consume_events(event, context, routes, logger))
