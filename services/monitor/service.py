"""The monitor against the bucket and the alert topic: every batch of pipeline events → one object under
monitoring/logs/; the alerts they call for → monitoring/alerts/ and the stack's SNS topic."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from shared import layout
from shared.storage import ObjectStore

from .alerts import Alert, alert_for_event

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
    from mypy_boto3_sns import SNSClient

    from shared.resources import PipelineResources


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


class EventMonitor:
    """One batch of pipeline events: each kept for the log, and checked for the alert it calls for."""

    def __init__(self, store: ObjectStore, sink: AlertSink, moment: datetime) -> None:
        self._store = store
        self._sink = sink
        self._moment = moment
        self._lines: list[str] = []

    @classmethod
    def for_resources(cls, resources: PipelineResources, moment: datetime) -> EventMonitor:
        sink = AlertSink(resources.store, resources.clients.sns, resources.settings.alert_topic_arn)
        return cls(resources.store, sink, moment)

    def keep(self, envelope: EventBridgeModel) -> Alert | None:
        """Keep the event for the batch's log; the alert it calls for, if any, is the caller's to raise once."""
        self._lines.append(envelope.model_dump_json(by_alias=True))
        return alert_for_event(envelope.detail, self._moment)  # type: ignore[arg-type]

    def raise_alert(self, alert: Alert) -> str:
        return self._sink.raise_alert(alert)

    def write_log(self, batch_id: str) -> int:
        """Write the events kept so far as one object; the number written."""
        if self._lines:
            # One object per batch: S3 has no append, and a batch is the unit SQS redelivers.
            self._store.write_bytes(
                layout.monitoring_log_key(self._moment, batch_id),
                ("\n".join(self._lines) + "\n").encode(),
                content_type="application/x-ndjson",
            )
        return len(self._lines)
