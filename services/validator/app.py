"""Lambda entry points of the validator service: the receiver and the validator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import Route, consume_events, route_detail
from shared.events import FileReceived
from shared.observability import observability_for
from shared.publisher import EventPublisher
from shared.resources import PipelineResources, current_resources

from .intake import AlreadySettled, ObjectAnnouncement, admit, receive_object, register_admitted

if TYPE_CHECKING:
    from .validation import ValidatorSettings

receiver_observability = observability_for("receiver")
validator_observability = observability_for("validator")
logger = validator_observability.logger


@receiver_observability.logger.inject_lambda_context
@receiver_observability.metrics.log_metrics
def receiver_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
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
    return dict(consume_events(event, context, routes, receiver_observability.logger))


@logger.inject_lambda_context
@validator_observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """FileReceived → admission checks → the four checks → FileValidated | FileOversized | FileRejected."""
    # Imported here, not at the top: the receiver's zip package shares this module but has no pyarrow.
    from .validation import ValidatorSettings

    resources = current_resources()
    limits = ValidatorSettings()
    publisher = resources.publisher("validator")

    @resources.ledger.once_per_version("validator", "[bucket, key, version_id || etag]", context)
    def validate_once(detail: FileReceived) -> dict[str, Any]:
        return _validate(detail, resources, limits, publisher)

    # Admission comes before the idempotency key is read: an announcement without a version is keyed
    # by the version it is pinned to, and a refused one is answered every time it comes.
    def admit_then_validate(received: FileReceived) -> dict[str, Any]:
        pinned = admit(
            received,
            pipeline_bucket=resources.settings.bucket,
            store=resources.store,
            ledger=resources.ledger,
            publisher=publisher,
        )
        return {"status": "rejected"} if pinned is None else validate_once(detail=pinned)

    routes = {FileReceived.detail_type: route_detail(FileReceived, admit_then_validate)}
    return dict(consume_events(event, context, routes, logger))


def _validate(
    received: FileReceived, resources: PipelineResources, limits: ValidatorSettings, publisher: EventPublisher
) -> dict[str, Any]:
    from .validation import account_for_part, validate_file

    admitted = register_admitted(received, resources.ledger)
    if isinstance(admitted, AlreadySettled):
        # Stored as this delivery's idempotency result: say it was a duplicate, and of what outcome.
        return {"status": "duplicate", "settled_as": admitted.status}
    resources.ledger.update(admitted.file_id, status="validating", stage="validator")
    outcome = validate_file(admitted, limits, store=resources.store, ledger=resources.ledger, publisher=publisher)
    account_for_part(admitted, outcome, resources.ledger)
    logger.info("file validated", file_id=admitted.file_id, status=outcome.status, rows=outcome.rows_out)
    return {"status": outcome.status}
