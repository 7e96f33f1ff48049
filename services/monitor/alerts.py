"""Alerts: a JSON document under monitoring/alerts/ and a message on the stack's SNS topic."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from shared import layout
from shared.events import FileRejected, ModelTrained, PipelineDetail, TrainingSkipped
from shared.storage import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

AlertKind = Literal["file_rejected", "stage_failed", "dlq_message", "model_not_promoted", "training_skipped"]


class Alert(BaseModel):
    alert_id: str = Field(description="Stable for the same cause, so a redelivered event rewrites one alert.")
    kind: AlertKind
    message: str
    raised_at: datetime
    correlation_id: str | None = None
    file_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


def alert_for_event(detail: PipelineDetail, moment: datetime) -> Alert | None:
    """The alert a pipeline event calls for, if any."""
    if isinstance(detail, FileRejected):
        kind: AlertKind = "file_rejected" if detail.stage in ("receiver", "validator") else "stage_failed"
        return Alert(
            # One alert per rejection of a file version, however often its event is delivered or replayed.
            alert_id=_alert_id(kind, f"{detail.file_id}:{detail.stage}:{detail.check}"),
            kind=kind,
            message=f"{detail.stage} rejected {detail.source_key} ({detail.check}): {detail.reason}",
            raised_at=moment,
            correlation_id=detail.correlation_id,
            file_id=detail.file_id,
            details=detail.model_dump(),
        )
    if isinstance(detail, ModelTrained) and not detail.promoted:
        return Alert(
            alert_id=_alert_id("model_not_promoted", detail.version),
            kind="model_not_promoted",
            message=f"model {detail.version} was not promoted: {detail.reason}",
            raised_at=moment,
            correlation_id=detail.correlation_id,
            details=detail.model_dump(),
        )
    if isinstance(detail, TrainingSkipped):
        trigger = detail.trigger_root_file_id
        return Alert(
            # One alert per trigger: its skip is final (idempotent), a later file triggers a training of its own.
            alert_id=_alert_id("training_skipped", trigger or detail.correlation_id),
            kind="training_skipped",
            message=detail.reason,
            raised_at=moment,
            correlation_id=detail.correlation_id,
            file_id=trigger,
            details=detail.model_dump(),
        )
    return None


def dlq_alert(service: str, depth: int, moment: datetime) -> Alert:
    """What a DLQ depth alarm says (on AWS a CloudWatch alarm sends it; locally the runtime raises it)."""
    return Alert(
        alert_id=_alert_id("dlq_message", f"{service}:{moment:%Y%m%dT%H%M}"),
        kind="dlq_message",
        message=f"{depth} message(s) in the {service} dead-letter queue",
        raised_at=moment,
        details={"service": service, "depth": depth},
    )


def _alert_id(kind: str, cause: str) -> str:
    return f"{kind}-{hashlib.sha256(cause.encode()).hexdigest()[:16]}"


class AlertSink:
    def __init__(self, store: ObjectStore, sns: SNSClient, topic_arn: str | None) -> None:
        self._store = store
        self._sns = sns
        self._topic_arn = topic_arn

    def raise_alert(self, alert: Alert) -> str:
        key = layout.alert_key(alert.raised_at, alert.alert_id)
        self._store.write_json(key, alert.model_dump(mode="json"))
        if self._topic_arn:
            self._sns.publish(
                TopicArn=self._topic_arn,
                Subject=f"amazon-reviews-nlp: {alert.kind}"[:100],
                Message=json.dumps(alert.model_dump(mode="json"), indent=2),
            )
        return key


def now() -> datetime:
    return datetime.now(UTC)
