"""The local runtime's own pieces: how it reads the templates, builds Lambda's SQS event and reads the reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from reviews_pipeline.runtime import RuleScheduler
from reviews_pipeline.stack import StackInfo, client, create_stack
from reviews_pipeline.templates import load_template, substitute_refs
from reviews_pipeline.topology import Topology, consumers_in, load_topology
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
    assert trainer.timeout_seconds > 20
    assert shortened.function_timeout(trainer) == 20
    assert as_templated.function_timeout(trainer) == trainer.timeout_seconds


# -- scheduled rules, the SageMaker parameters of the stack ---------------------------------------

SWEEPER_TEMPLATE = """
Parameters:
  JobNamePrefix: {Type: String}
Resources:
  SweeperFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: services.sweeper.app.handler
      Events:
        Queue:
          Type: SQS
          Properties: {Queue: !GetAtt SweeperQueue.Arn}
  SweeperQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt SweeperDLQ.Arn, maxReceiveCount: 3}
  SweeperDLQ:
    Type: AWS::SQS::Queue
  JobEndedRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.sagemaker]
        detail: {TrainingJobName: [{prefix: !Ref JobNamePrefix}]}
      Targets: [{Id: SweeperQueue, Arn: !GetAtt SweeperQueue.Arn}]
  SweepSchedule:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(15 minutes)
      Targets: [{Id: SweeperQueue, Arn: !GetAtt SweeperQueue.Arn}]
"""


def _sweeper_topology(tmp_path: Path) -> Topology:
    template = tmp_path / "template.yaml"
    template.write_text(SWEEPER_TEMPLATE, encoding="utf-8")
    return Topology(consumers=tuple(consumers_in(template)))


def test_a_scheduled_rule_is_read_with_its_schedule_and_no_pattern(tmp_path: Path) -> None:
    [sweeper] = _sweeper_topology(tmp_path).consumers

    pattern_rule, scheduled_rule = sorted(sweeper.rules, key=lambda rule: rule.logical_id)
    assert (scheduled_rule.schedule, scheduled_rule.pattern, scheduled_rule.on_default_bus) == (
        "rate(15 minutes)",
        None,
        True,
    )
    assert pattern_rule.resolved_pattern({"JobNamePrefix": "reviews-1"})["detail"] == {
        "TrainingJobName": [{"prefix": "reviews-1"}]
    }
    with pytest.raises(ValueError, match="scheduled"):
        scheduled_rule.resolved_pattern({})


def test_the_stack_fires_its_schedules_itself_and_routes_only_its_own_jobs(tmp_path: Path) -> None:
    with mock_aws():
        stack = create_stack(_sweeper_topology(tmp_path), None, name="reviews-abcdef12")
        events, sqs = client(stack, "events"), client(stack, "sqs")
        queue_url = stack.queues["sweeper"].queue_url
        for job in ("reviews-abcdef12-v1-0-x", "someone-else-v1-0-x"):
            events.put_events(
                Entries=[{"Source": "aws.sagemaker", "DetailType": "d", "Detail": json.dumps({"TrainingJobName": job})}]
            )
        RuleScheduler(stack, interval_seconds=3600).fire()

        bodies = [
            json.loads(message["Body"])
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        ]
        role = client(stack, "iam").get_role(RoleName="reviews-abcdef12-sagemaker-training")["Role"]

    # The job-name prefix is the stack's; a scheduled rule in moto matches no event (moto would match all).
    jobs = [body["detail"]["TrainingJobName"] for body in bodies if body["source"] == "aws.sagemaker"]
    assert jobs == ["reviews-abcdef12-v1-0-x"]
    [scheduled] = [body for body in bodies if body["source"] == "aws.events"]
    assert scheduled["detail-type"] == "Scheduled Event"
    assert scheduled["detail"] == {}
    assert scheduled["resources"] == [stack.schedules[0].rule_arn]
    assert sorted(scheduled) == ["account", "detail", "detail-type", "id", "region", "resources", "source", "time",
                                 "version"]  # fmt: skip
    assert (scheduled["account"], scheduled["region"], scheduled["version"]) == (stack.account, "us-east-1", "0")
    assert role["Arn"] == stack.sagemaker_role_arn
    assert "sagemaker.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])


def test_the_stack_tells_the_trainer_its_job_prefix_image_and_role_and_saves_them(tmp_path: Path) -> None:
    with mock_aws():
        stack = create_stack(_sweeper_topology(tmp_path), None, name="reviews-abcdef12")
    stack.save(tmp_path / "stack.json")

    loaded = StackInfo.load(tmp_path / "stack.json")

    assert loaded == stack
    environment = loaded.environment()
    assert environment["REVIEWS_TRAINER_JOB_PREFIX"] == "reviews-abcdef12"
    assert environment["REVIEWS_TRAINER_TRAINING_IMAGE"] == (
        f"{stack.account}.dkr.ecr.us-east-1.amazonaws.com/amazon-reviews-nlp-training:local"
    )
    assert environment["REVIEWS_TRAINER_SAGEMAKER_ROLE_ARN"] == stack.sagemaker_role_arn


def test_a_state_file_from_before_sagemaker_still_loads(tmp_path: Path) -> None:
    old = {
        "endpoint_url": "http://127.0.0.1:5000",
        "region": "us-east-1",
        "bucket": "b",
        "event_bus": "e",
        "ledger_table": "t",
        "alert_topic_arn": "a",
        "queues": {},
        "archive_name": "x",
        "owner_pid": 12,
    }
    (tmp_path / "stack.json").write_text(json.dumps(old), encoding="utf-8")

    stack = StackInfo.load(tmp_path / "stack.json")

    assert (stack.job_prefix, stack.schedules) == ("", ())
    assert not [name for name in stack.environment() if name.startswith("REVIEWS_TRAINER_")]


def test_a_sub_of_known_parameters_is_resolved_and_one_with_others_is_kept() -> None:
    assert substitute_refs({"prefix": {"Fn::Sub": "${JobNamePrefix}-v"}}, {"JobNamePrefix": "reviews-1a2b"}) == {
        "prefix": "reviews-1a2b-v"
    }
    unresolved = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}"}
    assert substitute_refs(unresolved, {"BucketName": "b"}) == unresolved
