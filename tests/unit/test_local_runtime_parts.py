"""The local runtime's own pieces: how it reads the templates, builds Lambda's SQS event and reads the reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reviews_pipeline.stack import StackInfo
from reviews_pipeline.templates import load_template, substitute_refs
from reviews_pipeline.topology import load_topology
from reviews_pipeline.worker import failed_message_ids, sqs_event
from reviews_pipeline.workers import WorkerPool

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reviews-validator"


def test_topology_takes_each_consumer_from_its_template() -> None:
    topology = load_topology()

    validator = topology.consumer("validator")
    assert validator.handler == "services.validator.app.lambda_handler"
    assert validator.reports_batch_item_failures
    assert validator.visibility_timeout_seconds >= 6 * validator.timeout_seconds
    assert validator.max_receive_count >= 1
    assert [rule.pattern for rule in validator.rules] == [{"detail-type": ["FileReceived"]}]
    receiver = topology.consumer("receiver")
    assert [rule.on_default_bus for rule in receiver.rules] == [True]
    assert len(topology.consumer("predictor").rules) == 2


def test_unknown_service_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="known"):
        load_topology().consumer("nonexistent")


def test_short_tags_read_as_their_long_form(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("A: !Ref Bucket\nB: !GetAtt Queue.Arn\nC: !Sub 'arn:${X}'\n", encoding="utf-8")

    loaded = load_template(template)

    assert loaded == {"A": {"Ref": "Bucket"}, "B": {"Fn::GetAtt": ["Queue", "Arn"]}, "C": {"Fn::Sub": "arn:${X}"}}
    assert substitute_refs(loaded, {"Bucket": "my-bucket"})["A"] == "my-bucket"
    assert substitute_refs(loaded, {})["A"] == {"Ref": "Bucket"}


def test_sqs_event_has_lambdas_shape_and_fills_in_the_account_moto_leaves_out() -> None:
    event_without_account = {"version": "0", "id": "1", "detail-type": "FileReceived", "detail": {}}
    messages: list[dict[str, Any]] = [
        {"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps(event_without_account), "Attributes": {}},
        {"MessageId": "m2", "ReceiptHandle": "r2", "Body": "not json"},
    ]

    event = sqs_event(messages, QUEUE_ARN, "us-east-1")

    first, second = event["Records"]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == QUEUE_ARN
    assert json.loads(first["body"])["account"] == "123456789012"
    assert second["body"] == "not json"


def test_failed_message_ids_read_the_partial_batch_response() -> None:
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "m2"}]}) == {"m2"}
    assert failed_message_ids({"batchItemFailures": []}) == set()
    assert failed_message_ids(None) == set()


def test_a_function_never_outlives_its_shortened_queue_visibility(tmp_path: Path) -> None:
    # With visibility shorter than a function's timeout, a crashed invocation's "in progress" claims
    # (idempotency, leases) would outlast the message's return and block every retry.
    topology = load_topology()
    stack = StackInfo(endpoint_url=None, region="us-east-1", bucket="b", event_bus="e", ledger_table="t",
                      alert_topic_arn="a")  # fmt: skip
    shortened = WorkerPool(topology, stack, tmp_path, visibility_timeout_seconds=20)
    as_templated = WorkerPool(topology, stack, tmp_path)

    trainer = topology.consumer("trainer")
    assert trainer.timeout_seconds == 900
    assert shortened.function_timeout(trainer) == 20
    assert as_templated.function_timeout(trainer) == 900
