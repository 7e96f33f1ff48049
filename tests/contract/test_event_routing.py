"""Every rule's EventPattern, read from the SAM templates, routes each event to exactly the services that consume it.

The patterns are evaluated by EventBridge's own semantics as moto implements them: the stack is built
from the templates on a moto bus, each event is put on it, and the queues that receive it are read.
SageMaker's state changes arrive on the default bus, and only this stack's ended jobs reach the finisher.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reviews_pipeline.stack import StackInfo, create_stack
from reviews_pipeline.topology import load_topology
from shared.sagemaker_events import SAGEMAKER_SOURCE, TRAINING_JOB_STATE_CHANGE, TUNING_JOB_STATE_CHANGE
from shared.samples import sample_event, sample_s3_object_created

ALL_SERVICES = {"receiver", "validator", "chunker", "etl", "trainer", "trainingfinisher", "predictor", "monitor"}
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012"


def _with_detail(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["detail"].update(changes)
    return changed


def _s3_event(bucket: str, key: str) -> dict[str, Any]:
    event = sample_s3_object_created(key)
    event["detail"]["bucket"]["name"] = bucket
    return event


# (case, event builder given the bucket name, services that must receive it)
ROUTES: list[tuple[str, Any, set[str]]] = [
    ("s3 object created in raw/", lambda bucket: _s3_event(bucket, "raw/train/reviews.tsv"), {"receiver"}),
    ("s3 object created in chunks/", lambda bucket: _s3_event(bucket, "chunks/train/x/part-00000.tsv"), {"receiver"}),
    ("s3 object created in processed/", lambda bucket: _s3_event(bucket, "processed/train/x.parquet"), set()),
    ("s3 object created in another bucket", lambda bucket: _s3_event("someone-else", "raw/train/a.csv"), set()),
    ("FileReceived", lambda bucket: sample_event("FileReceived"), {"validator", "monitor"}),
    (
        "FileReceived from an external system",
        lambda bucket: {**sample_event("FileReceived"), "source": "com.example.crawler"},
        {"validator", "monitor"},
    ),
    ("FileOversized", lambda bucket: sample_event("FileOversized"), {"chunker", "monitor"}),
    (
        "FileOversized forged by another source",
        lambda bucket: {**sample_event("FileOversized"), "source": "com.example.crawler"},
        {"monitor"},
    ),
    ("FileChunked", lambda bucket: sample_event("FileChunked"), {"monitor"}),
    ("FileValidated", lambda bucket: sample_event("FileValidated"), {"etl", "monitor"}),
    ("FileRejected", lambda bucket: sample_event("FileRejected"), {"monitor"}),
    (
        "FileRejected for a part of a chunked file",
        lambda bucket: _with_detail(sample_event("FileRejected"), part_index=3, part_count=8),
        {"etl", "monitor"},
    ),
    (
        "FileRejected for a part, by the ETL itself",
        lambda bucket: _with_detail({**sample_event("FileRejected"), "source": "amazon-reviews-nlp.etl"}, part_index=3),
        {"monitor"},
    ),
    ("EtlCompleted train, root complete", lambda bucket: sample_event("EtlCompleted"), {"trainer", "monitor"}),
    (
        "EtlCompleted train, a part",
        lambda bucket: _with_detail(sample_event("EtlCompleted"), root_complete=False),
        {"monitor"},
    ),
    (
        "EtlCompleted inference",
        lambda bucket: _with_detail(sample_event("EtlCompleted"), dataset="inference", root_complete=False),
        {"predictor", "monitor"},
    ),
    # The trainer hears every ModelTrained: the files that waited for that training are trained on next.
    ("ModelTrained promoted", lambda bucket: sample_event("ModelTrained"), {"predictor", "monitor", "trainer"}),
    (
        "ModelTrained not promoted",
        lambda bucket: _with_detail(sample_event("ModelTrained"), promoted=False, reason="below the floor"),
        {"monitor", "trainer"},
    ),
    (
        "ModelTrained failed",
        lambda bucket: _with_detail(
            sample_event("ModelTrained"), promoted=False, status="failed", metrics={}, failure_reason="AlgorithmError"
        ),
        {"monitor", "trainer"},
    ),
    ("TrainingSkipped", lambda bucket: sample_event("TrainingSkipped"), {"monitor"}),
    ("PredictionsCompleted", lambda bucket: sample_event("PredictionsCompleted"), {"monitor"}),
    ("an unrelated event", lambda bucket: {**sample_event("FileChunked"), "detail-type": "Something Else"}, set()),
]


def _training_job_state_change(name: str, status: str, tuning_job: str | None = None) -> dict[str, Any]:
    """The fields of a "SageMaker Training Job State Change" detail that a rule may read."""
    detail: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"{ARN_PREFIX}:training-job/{name}",
        "TrainingJobStatus": status,
    }
    if tuning_job is not None:
        detail["TuningJobArn"] = f"{ARN_PREFIX}:hyper-parameter-tuning-job/{tuning_job}"
    return {"source": SAGEMAKER_SOURCE, "detail-type": TRAINING_JOB_STATE_CHANGE, "detail": detail}


def _tuning_job_state_change(name: str, status: str) -> dict[str, Any]:
    detail = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"{ARN_PREFIX}:hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobStatus": status,
    }
    return {"source": SAGEMAKER_SOURCE, "detail-type": TUNING_JOB_STATE_CHANGE, "detail": detail}


# (case, event builder given this stack's job-name prefix, services that must receive it)
SAGEMAKER_ROUTES: list[tuple[str, Any, set[str]]] = [
    *(
        (
            f"training job {status}",
            lambda p, s=status: _training_job_state_change(f"{p}-v1-2-0abc12", s),
            {"trainingfinisher"},
        )
        for status in ("Completed", "Failed", "Stopped")
    ),
    ("training job InProgress", lambda p: _training_job_state_change(f"{p}-v1-2-0abc12", "InProgress"), set()),
    ("training job Stopping", lambda p: _training_job_state_change(f"{p}-v1-2-0abc12", "Stopping"), set()),
    # Recorded by the finisher: the search's report lists every trial's objective.
    (
        "trial of a tuning job Completed",
        lambda p: _training_job_state_change(f"{p}-v1-3-0abc13-001-0f1e2d3c", "Completed", f"{p}-v1-3-0abc13"),
        {"trainingfinisher"},
    ),
    ("another stack's training job", lambda p: _training_job_state_change("someone-v1-2-0abc12", "Completed"), set()),
    *(
        (
            f"tuning job {status}",
            lambda p, s=status: _tuning_job_state_change(f"{p}-v1-3-0abc13", s),
            {"trainingfinisher"},
        )
        for status in ("Completed", "Failed", "Stopped")
    ),
    ("tuning job InProgress", lambda p: _tuning_job_state_change(f"{p}-v1-3-0abc13", "InProgress"), set()),
    ("another stack's tuning job", lambda p: _tuning_job_state_change("someone-v1-3-0abc13", "Completed"), set()),
    (
        "a training state change from another source",
        lambda p: {**_training_job_state_change(f"{p}-v1-2-0abc12", "Completed"), "source": "com.example.crawler"},
        set(),
    ),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[StackInfo]:
    with mock_aws():
        yield create_stack(load_topology(), endpoint_url=None, name="contract", visibility_timeout_seconds=1)


def test_the_templates_declare_every_consumer() -> None:
    assert set(load_topology().services) == ALL_SERVICES


@pytest.mark.parametrize(("case", "build", "expected"), ROUTES, ids=[route[0] for route in ROUTES])
def test_event_reaches_exactly_its_consumers(stack: StackInfo, case: str, build: Any, expected: set[str]) -> None:
    event = build(stack.bucket)
    bus = "default" if event["source"] == "aws.s3" else stack.event_bus
    assert _consumers_reached(stack, event, bus) == expected, f"{case}: expected {sorted(expected)}"


@pytest.mark.parametrize(("case", "build", "expected"), SAGEMAKER_ROUTES, ids=[route[0] for route in SAGEMAKER_ROUTES])
def test_sagemaker_state_change_reaches_the_finisher_for_this_stacks_ended_jobs(
    stack: StackInfo, case: str, build: Any, expected: set[str]
) -> None:
    assert stack.job_prefix
    event = build(stack.job_prefix)
    assert _consumers_reached(stack, event, "default") == expected, f"{case}: expected {sorted(expected)}"
    # Never through the pipeline bus: SageMaker does not publish there.
    assert _consumers_reached(stack, event, stack.event_bus) == set(), case


def _consumers_reached(stack: StackInfo, event: dict[str, Any], bus: str) -> set[str]:
    """Put `event` on `bus` and drain every consumer queue: the services that received it."""
    events = boto3.client("events", region_name=stack.region)
    sqs = boto3.client("sqs", region_name=stack.region)
    response = events.put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "EventBusName": bus,
            }
        ]
    )
    assert response["FailedEntryCount"] == 0
    received = set()
    for service, queues in stack.queues.items():
        messages = sqs.receive_message(QueueUrl=queues.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            body = json.loads(message["Body"])
            assert body["detail-type"] == event["detail-type"]
            received.add(service)
            sqs.delete_message(QueueUrl=queues.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received
