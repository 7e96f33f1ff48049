"""Lambda entry point of the ETL service: FileValidated → etl/ parquet → EtlCompleted.

STAND-IN (issue 2): the processed file is carried to etl/ unchanged; cleaning and tokenising come
with the ETL issue. The part barrier that sets `root_complete` is real.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import layout
from shared.consumer import consume_events, route_detail
from shared.events import EtlCompleted, FileValidated
from shared.observability import observability_for
from shared.resources import current_resources

observability = observability_for("etl")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resources = current_resources()
    ledger, store = resources.ledger, resources.store

    @ledger.once_per_version("etl", "file_id", context)
    def transform_once(detail: FileValidated) -> dict[str, Any]:
        etl_key = layout.etl_key(detail.dataset, detail.root_file_id, detail.part_index)
        store.write_bytes(etl_key, store.read_bytes(detail.processed_key))
        ledger.set_parts_expected(detail.root_file_id, "etl", detail.part_count)
        barrier = ledger.record_part_done(detail.root_file_id, "etl", detail.part_index or 0)
        ledger.set_stage_status(detail.file_id, "etl", "completed")
        resources.publisher("etl").publish(
            EtlCompleted(
                correlation_id=detail.correlation_id,
                file_id=detail.file_id,
                root_file_id=detail.root_file_id,
                dataset=detail.dataset,
                processed_key=detail.processed_key,
                etl_key=etl_key,
                rows_in=detail.rows_out,
                rows_out=detail.rows_out,
                part_index=detail.part_index,
                part_count=detail.part_count,
                root_complete=barrier.completed_now,
            )
        )
        return {"etl_key": etl_key, "root_complete": barrier.completed_now}

    routes = {FileValidated.detail_type: route_detail(FileValidated, lambda detail: transform_once(detail=detail))}
    return dict(consume_events(event, context, routes, logger))
