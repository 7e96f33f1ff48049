"""Lambda entry point of the chunker: FileOversized → parts under chunks/ → FileChunked."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_detail
from shared.events import FileOversized
from shared.observability import observability_for
from shared.resources import current_resources

from .service import split_file
from .splitting import ChunkerSettings

observability = observability_for("chunker")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    settings = ChunkerSettings()

    @resources.ledger.once_per_version("chunker", "file_id", context)
    def split_once(detail: FileOversized) -> dict[str, Any]:
        chunked = split_file(
            detail, settings, store=resources.store, ledger=resources.ledger, publisher=resources.publisher("chunker")
        )
        return {"parts": len(chunked.parts) if chunked else 0}

    routes = {FileOversized.detail_type: route_detail(FileOversized, lambda detail: split_once(detail=detail))}
    return dict(consume_events(event, context, routes, logger))
