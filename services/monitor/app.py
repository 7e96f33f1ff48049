"""Lambda entry point of the monitor: every pipeline event → monitoring/logs/; alerts → monitoring/alerts/ + SNS."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import layout
from shared.consumer import Route, consume_events
from shared.events import PIPELINE_DETAILS, envelope_for
from shared.observability import observability_for
from shared.resources import current_resources

from .alerts import Alert, AlertSink, alert_for_event, now

observability = observability_for("monitor")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    sink = AlertSink(resources.store, resources.clients.sns, resources.settings.alert_topic_arn)
    moment = now()
    log_lines: list[str] = []

    # An event delivered twice, or replayed from the archive, raises its alert once.
    @resources.ledger.once_per_version("monitor-alert", "alert_id", context)
    def raise_once(detail: dict[str, Any]) -> dict[str, Any]:
        return {"key": sink.raise_alert(Alert.model_validate(detail))}

    def keep(envelope: EventBridgeModel) -> None:
        log_lines.append(envelope.model_dump_json(by_alias=True))
        alert = alert_for_event(envelope.detail, moment)  # type: ignore[arg-type]
        if alert is not None:
            raise_once(detail=alert.model_dump(mode="json"))

    routes = {model.detail_type: Route(model=envelope_for(model), handle=keep) for model in PIPELINE_DETAILS}
    response = consume_events(event, context, routes, logger)
    if log_lines:
        # One object per batch: S3 has no append, and a batch is the unit SQS redelivers.
        batch_id = context.aws_request_id
        resources.store.write_bytes(
            layout.monitoring_log_key(moment, batch_id),
            ("\n".join(log_lines) + "\n").encode(),
            content_type="application/x-ndjson",
        )
    logger.debug("events kept", count=len(log_lines), response=json.dumps(response))
    return dict(response)
