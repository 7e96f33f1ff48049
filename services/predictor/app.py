"""Lambda entry point of the predictor: EtlCompleted{inference} → predictions/ → PredictionsCompleted.

ModelTrained{promoted} predicts the files that were waiting for a model. A model location holding
anything but plain data is refused (services/predictor/service.py): the message fails, is retried
and, past the queue's redrive count, parked in the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_detail
from shared.events import EtlCompleted, ModelTrained
from shared.observability import observability_for
from shared.resources import current_resources

from .service import ModelCache, Predictor

observability = observability_for("predictor")
logger = observability.logger
# Loaded models outlive the invocation: a warm container predicts many parts with one load.
MODELS = ModelCache()


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    lease_seconds = max(1, context.get_remaining_time_in_millis() // 1000 + 1)
    predictor = Predictor.for_resources(resources, MODELS, lease_seconds)

    @resources.ledger.once_per_version("predictor", "file_id", context)
    def predict_once(detail: EtlCompleted) -> dict[str, Any]:
        return predictor.on_part(detail)

    @resources.ledger.once_per_version("predictor-promotion", "version", context)
    def predict_waiting_once(detail: ModelTrained) -> dict[str, Any]:
        return predictor.on_promotion(detail)

    def on_etl(detail: EtlCompleted) -> None:
        if detail.dataset != "inference":
            logger.warning("training data is not predicted", file_id=detail.file_id)
            return
        result = predict_once(detail=detail)
        logger.info("part handled", file_id=detail.file_id, part_index=detail.part_index, **result)
        if result.get("status") == "predicted":
            observability.metrics.add_metric(name="PredictedRows", unit=MetricUnit.Count, value=result["rows"])

    def on_model(detail: ModelTrained) -> None:
        if not detail.promoted:
            return
        result = predict_waiting_once(detail=detail)
        logger.info("waiting files predicted", version=detail.version, **result)

    routes = {
        EtlCompleted.detail_type: route_detail(EtlCompleted, on_etl),
        ModelTrained.detail_type: route_detail(ModelTrained, on_model),
    }
    return dict(consume_events(event, context, routes, logger))
