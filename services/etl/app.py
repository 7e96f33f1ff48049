"""Lambda entry point of the ETL service: FileValidated → etl/ parquet → EtlCompleted.

FileRejected for a part counts that part, with nothing in it, towards its root file. Each file
version is handled once (Powertools idempotency on `file_id`); the work is `service.EtlService`'s,
the transformation `transform.transform_parquet`'s.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_detail
from shared.events import FileRejected, FileValidated
from shared.observability import observability_for
from shared.resources import current_resources

from .service import EtlService
from .transform import EtlSettings

observability = observability_for("etl")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    etl = EtlService(resources=resources, settings=EtlSettings(), observability=observability)

    @resources.ledger.once_per_version("etl", "file_id", context)
    def transform_once(detail: FileValidated) -> dict[str, Any]:
        return etl.transform_file(detail)

    @resources.ledger.once_per_version("etl-skipped", "file_id", context)
    def skip_once(detail: FileRejected) -> dict[str, Any]:
        return etl.skip_rejected_part(detail)

    routes = {
        FileValidated.detail_type: route_detail(FileValidated, lambda detail: transform_once(detail=detail)),
        FileRejected.detail_type: route_detail(FileRejected, lambda detail: skip_once(detail=detail)),
    }
    return dict(consume_events(event, context, routes, logger))
