"""Which pipeline events call for an alert, and what the alert says: plain values in, an Alert out.

Writing the alert (monitoring/alerts/ and the stack's SNS topic) is services/monitor/service.py's.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.events import FileRejected, ModelTrained, PipelineDetail, TrainingSkipped

AlertKind = Literal[
    "file_rejected", "stage_failed", "dlq_message", "model_not_promoted", "training_skipped", "training_failed"
]


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
    if isinstance(detail, ModelTrained) and detail.status == "failed":
        return Alert(
            alert_id=_alert_id("training_failed", detail.version),
            kind="training_failed",
            message=f"training of model {detail.version} failed ({detail.training_job}): {detail.failure_reason}; "
            "nothing was promoted, the next training file trains again",
            raised_at=moment,
            correlation_id=detail.correlation_id,
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


def now() -> datetime:
    return datetime.now(UTC)
