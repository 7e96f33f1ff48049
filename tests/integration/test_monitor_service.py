"""The monitor handler, called with SQS-wrapped pipeline events, against moto in-process."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from services.monitor.app import lambda_handler
from shared import layout
from shared.samples import sample_event, sqs_wrapped
from tests.integration.conftest import MotoStack, lambda_context

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    """One delivery of `event` with a fresh event id, as a replay from the archive gives it."""
    replayed = {**event, "id": str(uuid.uuid4()), "replay-name": "replay-1"}
    result: dict[str, Any] = lambda_handler(
        sqs_wrapped(replayed, "monitor-queue", str(uuid.uuid4())), lambda_context("monitor", 256, 60_000)
    )
    return result


def keys(stack: MotoStack, prefix: str) -> list[str]:
    listing = stack.aws.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_a_rejection_delivered_again_or_replayed_is_logged_each_time_and_alerted_once(pipeline: MotoStack) -> None:
    rejected = sample_event("FileRejected")

    for _ in range(3):
        assert deliver(rejected) == {"batchItemFailures": []}

    (alert_key,) = keys(pipeline, layout.MONITORING_ALERTS)
    alert = json.loads(pipeline.aws.s3.get_object(Bucket=pipeline.bucket, Key=alert_key)["Body"].read())
    assert alert["kind"] == "file_rejected"
    assert alert["file_id"] == rejected["detail"]["file_id"]
    logged = [
        json.loads(line)
        for key in keys(pipeline, layout.MONITORING_LOGS)
        for line in pipeline.aws.s3.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read().splitlines()
    ]
    assert [event["detail-type"] for event in logged] == ["FileRejected"] * 3
    assert all(event["replay-name"] == "replay-1" for event in logged)


def test_rejections_of_two_files_raise_two_alerts(pipeline: MotoStack) -> None:
    first = sample_event("FileRejected")
    second = json.loads(json.dumps(first))
    second["detail"]["file_id"] = "f" * 32

    assert deliver(first) == deliver(second) == {"batchItemFailures": []}

    assert len(keys(pipeline, layout.MONITORING_ALERTS)) == 2


def test_a_skipped_training_raises_one_alert_per_trigger_naming_the_reason(pipeline: MotoStack) -> None:
    skipped = sample_event("TrainingSkipped")
    other_trigger = json.loads(json.dumps(skipped))
    other_trigger["detail"]["trigger_root_file_id"] = "e" * 32

    # When the skip is delivered twice, and another trigger's skip once
    assert deliver(skipped) == deliver(skipped) == deliver(other_trigger) == {"batchItemFailures": []}

    # Then one alert per trigger root, saying why no model was trained
    alerts = [
        json.loads(pipeline.aws.s3.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read())
        for key in keys(pipeline, layout.MONITORING_ALERTS)
    ]
    assert sorted(alert["file_id"] for alert in alerts) == sorted([skipped["detail"]["trigger_root_file_id"], "e" * 32])
    assert {alert["kind"] for alert in alerts} == {"training_skipped"}
    assert all(alert["message"] == skipped["detail"]["reason"] for alert in alerts)
    assert alerts[0]["message"].startswith("no model trained: too few labelled reviews, need 10 per class")
    assert alerts[0]["details"]["class_counts"] == {"negative": 2, "neutral": 0, "positive": 18}
