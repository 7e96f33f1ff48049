"""Lambda entry point of the validator: FileReceived → admission → the four checks → the outcome's event."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_detail
from shared.events import FileReceived
from shared.ledger import file_id_for
from shared.observability import observability_for
from shared.resources import current_resources

from .service import AlreadySettled, admit, validate_received
from .validation import ValidatorSettings

observability = observability_for("validator")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """FileReceived → admission checks → the four checks → FileValidated | FileOversized | FileRejected."""
    resources = current_resources()
    limits = ValidatorSettings()
    publisher = resources.publisher("validator")

    @resources.ledger.once_per_version("validator", "[bucket, key, version_id || etag]", context)
    def validate_once(detail: FileReceived) -> dict[str, Any]:
        outcome = validate_received(detail, limits, store=resources.store, ledger=resources.ledger, publisher=publisher)
        if isinstance(outcome, AlreadySettled):
            # Stored as this delivery's idempotency result: say it was a duplicate, and of what outcome.
            return {"status": "duplicate", "settled_as": outcome.status}
        file_id = file_id_for(detail.bucket, detail.key, detail.version_id or detail.etag)
        logger.info("file validated", file_id=file_id, status=outcome.status, rows=outcome.rows_out)
        return {"status": outcome.status}

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
