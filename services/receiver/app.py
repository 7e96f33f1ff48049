"""Lambda entry point of the receiver: S3 "Object Created" (through its queue) → ledger entry + FileReceived."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import Route, consume_events
from shared.observability import observability_for
from shared.resources import current_resources

from .service import ObjectAnnouncement, receive_object

observability = observability_for("receiver")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """S3 "Object Created" (through the receiver's queue) → ledger entry + FileReceived, once per version."""
    resources = current_resources()
    publisher = resources.publisher("receiver")

    # One object version is one file, whether S3 says so once or twice.
    version_key = "[bucket.name, object.key, object.version_id || object.etag]"

    @resources.ledger.once_per_version("receiver", version_key, context)
    def receive_once(detail: dict[str, Any]) -> dict[str, Any]:
        s3_object = detail["object"]
        received = receive_object(
            ObjectAnnouncement(
                bucket=detail["bucket"]["name"],
                key=s3_object["key"],
                size=int(s3_object["size"] or 0),
                etag=s3_object.get("etag", ""),
                version_id=s3_object.get("version_id"),
            ),
            store=resources.store,
            ledger=resources.ledger,
            publisher=publisher,
        )
        return {"received": received is not None}

    def handle(notification: S3EventNotificationEventBridgeModel) -> None:
        receive_once(detail=notification.detail.model_dump())

    routes = {"Object Created": Route(model=S3EventNotificationEventBridgeModel, handle=handle)}
    return dict(consume_events(event, context, routes, logger))
