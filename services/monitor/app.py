"""Lambda entry point of the monitor: every pipeline event → monitoring/logs/; alerts → monitoring/alerts/ + SNS."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import Route, consume_events
from shared.events import PIPELINE_DETAILS, envelope_for
from shared.observability import observability_for
from shared.resources import current_resources

from .alerts import Alert, now
from .service import EventMonitor

observability = observability_for("monitor")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    monitor = EventMonitor.for_resources(resources, now())

    # An event delivered twice, or replayed from the archive, raises its alert once.
    @resources.ledger.once_per_version("monitor-alert", "alert_id", context)
    def raise_once(detail: dict[str, Any]) -> dict[str, Any]:
        return {"key": monitor.raise_alert(Alert.model_validate(detail))}

    def keep(envelope: EventBridgeModel) -> None:
        alert = monitor.keep(envelope)
        if alert is not None:
            raise_once(detail=alert.model_dump(mode="json"))

    routes = {model.detail_type: Route(model=envelope_for(model), handle=keep) for model in PIPELINE_DETAILS}
    response = consume_events(event, context, routes, logger)
    kept = monitor.write_log(batch_id=context.aws_request_id)
    logger.debug("events kept", count=kept, response=json.dumps(response))
    return dict(response)
