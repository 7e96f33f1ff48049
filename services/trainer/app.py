"""Lambda entry points of the trainer: the launcher (EtlCompleted → a SageMaker job; ModelTrained → the
job for the files that waited for the last one) and the finisher (SageMaker's state changes, and the
sweeper's schedule → models/vX.Y/ → ModelTrained).

The launcher runs once per trigger root file and per finished version, the finisher once per (job,
status) (Powertools idempotency): a redelivered event returns the first result. Events for inference files, or for parts
before the last, are acknowledged and ignored. The work is `service.TrainerService`'s.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.consumer import consume_events, route_aws_detail, route_detail
from shared.events import EtlCompleted, ModelTrained
from shared.observability import observability_for
from shared.sagemaker_events import (
    SCHEDULED_EVENT,
    TRAINING_JOB_STATE_CHANGE,
    TUNING_JOB_STATE_CHANGE,
    ScheduledDetail,
    TrainingJobStateChange,
    TuningJobStateChange,
)

from .service import trainer_service

observability = observability_for("trainer")
logger = observability.logger


@logger.inject_lambda_context
@observability.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trainer = trainer_service(observability)

    @trainer.resources.ledger.once_per_version("trainer", "root_file_id", context)
    def launch_once(detail: EtlCompleted) -> dict[str, Any]:
        return trainer.launch_for(detail)

    @trainer.resources.ledger.once_per_version("trainer-follow-up", "[version, status]", context)
    def follow_up_once(detail: ModelTrained) -> dict[str, Any]:
        return trainer.launch_waiting(detail)

    def on_etl_completed(detail: EtlCompleted) -> None:
        if detail.dataset != "train" or not detail.root_complete:
            return
        launch_once(detail=detail)

    routes = {
        EtlCompleted.detail_type: route_detail(EtlCompleted, on_etl_completed),
        ModelTrained.detail_type: route_detail(ModelTrained, lambda detail: follow_up_once(detail=detail)),
    }
    return dict(consume_events(event, context, routes, logger))


@logger.inject_lambda_context
@observability.metrics.log_metrics
def finisher_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trainer = trainer_service(observability)
    ledger = trainer.resources.ledger

    @ledger.once_per_version("training-finisher", "[TrainingJobName, TrainingJobStatus]", context)
    def finish_training_once(detail: TrainingJobStateChange) -> dict[str, Any]:
        return trainer.finish_training_job(detail)

    @ledger.once_per_version("tuning-finisher", "[HyperParameterTuningJobName, HyperParameterTuningJobStatus]", context)
    def finish_tuning_once(detail: TuningJobStateChange) -> dict[str, Any]:
        return trainer.finish_tuning_job(detail)

    def on_training_change(detail: TrainingJobStateChange) -> None:
        if detail.is_final:
            finish_training_once(detail=detail)

    def on_tuning_change(detail: TuningJobStateChange) -> None:
        if detail.is_final:
            finish_tuning_once(detail=detail)

    routes = {
        TRAINING_JOB_STATE_CHANGE: route_aws_detail(TrainingJobStateChange, on_training_change),
        TUNING_JOB_STATE_CHANGE: route_aws_detail(TuningJobStateChange, on_tuning_change),
        SCHEDULED_EVENT: route_aws_detail(ScheduledDetail, lambda _: trainer.sweep()),
    }
    return dict(consume_events(event, context, routes, logger))
