"""The local SageMaker engine's state-change events have the shape AWS documents for SageMaker's own.

The references are the examples of "Events that Amazon SageMaker AI sends to Amazon EventBridge"
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html), pinned
here as published. The engine runs real jobs (a stand-in container) on a moto server; its events are
read as the finisher receives them (through the rule, the queue and Lambda's SQS event, which fills
in the account moto leaves out). Every documented key must be there with the documented JSON type,
except the optional ones these jobs do not set (no VPC, no KMS keys, no content type); and the
models the finisher parses (shared.sagemaker_events) read both the documented examples and the
engine's events.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from reviews_pipeline.emulator import MotoServer
from reviews_pipeline.worker import sqs_event
from shared.sagemaker_events import (
    SAGEMAKER_SOURCE,
    TRAINING_JOB_STATE_CHANGE,
    TUNING_JOB_STATE_CHANGE,
    TrainingJobStateChange,
    TuningJobStateChange,
)
from tests.sagemaker_jobs import engine_bench

DOCUMENTATION = "https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html"

# "Training job state change", as documented.
DOCUMENTED_TRAINING_JOB_STATE_CHANGE: dict[str, Any] = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "SageMaker Training Job State Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2018-10-06T12:26:13Z",
    "region": "us-east-1",
    "resources": ["arn:aws:sagemaker:us-east-1:123456789012:training-job/kmeans-1"],
    "detail": {
        "TrainingJobName": "89c96cc8-dded-4739-afcc-6f1dc936701d",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/kmeans-1",
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "HyperParameters": {"Hyper": "Parameters"},
        "AlgorithmSpecification": {"TrainingImage": "TrainingImage", "TrainingInputMode": "TrainingInputMode"},
        "RoleArn": "arn:aws:iam::123456789012:role/SMRole",
        "InputDataConfig": [
            {
                "ChannelName": "Train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3DataType",
                        "S3Uri": "S3Uri",
                        "S3DataDistributionType": "S3DataDistributionType",
                    }
                },
                "ContentType": "ContentType",
                "CompressionType": "CompressionType",
                "RecordWrapperType": "RecordWrapperType",
            }
        ],
        "OutputDataConfig": {"KmsKeyId": "KmsKeyId", "S3OutputPath": "S3OutputPath"},
        "ResourceConfig": {
            "InstanceType": "InstanceType",
            "InstanceCount": 3,
            "VolumeSizeInGB": 20,
            "VolumeKmsKeyId": "VolumeKmsKeyId",
        },
        "VpcConfig": {},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "CreationTime": "1583831889050",
        "TrainingStartTime": "1583831889050",
        "TrainingEndTime": "1583831889050",
        "LastModifiedTime": "1583831889050",
        "SecondaryStatusTransitions": [],
        "Tags": {},
    },
}

# "Hyperparameter tuning job state change", as documented.
DOCUMENTED_TUNING_JOB_STATE_CHANGE: dict[str, Any] = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "SageMaker HyperParameter Tuning Job State Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2018-10-06T12:26:13Z",
    "region": "us-east-1",
    "resources": ["arn:aws:sagemaker:us-east-1:123456789012:tuningJob/x"],
    "detail": {
        "HyperParameterTuningJobName": "016bffd3-6d71-4d3a-9710-0a332b2759fc",
        "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:tuningJob/x",
        "TrainingJobDefinition": {
            "StaticHyperParameters": {},
            "AlgorithmSpecification": {
                "TrainingImage": "trainingImageName",
                "TrainingInputMode": "inputModeFile",
                "MetricDefinitions": [{"Name": "metricName", "Regex": "regex"}],
            },
            "RoleArn": "roleArn",
            "InputDataConfig": [
                {
                    "ChannelName": "channelName",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "s3DataType",
                            "S3Uri": "s3Uri",
                            "S3DataDistributionType": "s3DistributionType",
                        }
                    },
                    "ContentType": "contentType",
                    "CompressionType": "gz",
                    "RecordWrapperType": "RecordWrapper",
                }
            ],
            "VpcConfig": {"SecurityGroupIds": ["securityGroupIds"], "Subnets": ["subnets"]},
            "OutputDataConfig": {"KmsKeyId": "kmsKeyId", "S3OutputPath": "s3OutputPath"},
            "ResourceConfig": {
                "InstanceType": "instanceType",
                "InstanceCount": 10,
                "VolumeSizeInGB": 500,
                "VolumeKmsKeyId": "volumeKeyId",
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
        "HyperParameterTuningJobStatus": "status",
        "CreationTime": "1583831889050",
        "LastModifiedTime": "1583831889050",
        "TrainingJobStatusCounters": {
            "Completed": 1,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": 0,
            "Stopped": 0,
        },
        "ObjectiveStatusCounters": {"Succeeded": 1, "Pending": 0, "Failed": 0},
        "Tags": {},
    },
}

# Documented keys that are optional in the API and that the pipeline's jobs do not set.
UNSET_OPTIONAL_KEYS = frozenset(
    {"VpcConfig", "KmsKeyId", "VolumeKmsKeyId", "ContentType", "CompressionType", "RecordWrapperType"}
)
# Maps whose keys are the job's own (a hyperparameter's name): only their values' type is documented.
FREE_MAPS = frozenset({"HyperParameters", "StaticHyperParameters", "Tags"})
ENVELOPE_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:finisher"


def shape_differences(documented: Any, actual: Any, where: str = "detail") -> list[str]:
    """Where `actual` lacks a documented key or holds another JSON type than the documentation shows."""
    if type(documented) is not type(actual):
        return [f"{where}: {type(actual).__name__}, documented {type(documented).__name__}"]
    if isinstance(documented, dict) and where.rpartition(".")[2] in FREE_MAPS:
        types = {type(value) for value in documented.values()} or {str}  # the API's maps are of strings
        return [f"{where}.{key}: {type(value).__name__}" for key, value in actual.items() if type(value) not in types]
    if isinstance(documented, dict):
        differences = []
        for key, value in documented.items():
            if key in actual:
                differences += shape_differences(value, actual[key], f"{where}.{key}")
            elif key not in UNSET_OPTIONAL_KEYS:
                differences.append(f"{where}.{key}: missing")
        return differences
    if isinstance(documented, list) and documented and actual:
        return shape_differences(documented[0], actual[0], f"{where}[0]")
    return []


@pytest.fixture(scope="module")
def engine_events(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The events of a completed and a failed training job and of a 1x2 grid, as the finisher receives them."""
    with MotoServer() as server, engine_bench(server.endpoint_url, tmp_path_factory.mktemp("logs")) as bench:
        completed = bench.create_training_job("v1-0-aaaaaa", {"model.max_depth": "6"})
        failed = bench.create_training_job("v1-1-bbbbbb", {"behaviour": "fail", "failure": "bad hyperparameter"})
        tuning = bench.create_tuning_job("v2-0-cccccc", {"x": ["1", "2"]}, static={"version": "v2.0"})
        bench.finished()
        messages = [
            {"MessageId": str(index), "ReceiptHandle": "r", "Body": json.dumps(event)}
            for index, event in enumerate(bench.events())
        ]
    received = [json.loads(record["body"]) for record in sqs_event(messages, QUEUE_ARN, "us-east-1")["Records"]]

    def of(name: str) -> list[dict[str, Any]]:
        return [
            event
            for event in received
            if name in (event["detail"].get("TrainingJobName"), event["detail"].get("HyperParameterTuningJobName"))
        ]

    trials = [event for event in received if "TuningJobArn" in event["detail"]]
    yield {"completed": of(completed), "failed": of(failed), "tuning": of(tuning), "trials": trials}


def test_the_envelope_is_eventbridges(engine_events: dict[str, list[dict[str, Any]]]) -> None:
    for documented, events in (
        (DOCUMENTED_TRAINING_JOB_STATE_CHANGE, engine_events["completed"] + engine_events["trials"]),
        (DOCUMENTED_TUNING_JOB_STATE_CHANGE, engine_events["tuning"]),
    ):
        assert sorted(documented) == sorted(ENVELOPE_KEYS)
        for event in events:
            assert sorted(event) == sorted(ENVELOPE_KEYS)
            assert {key: type(event[key]) for key in ENVELOPE_KEYS} == {
                key: type(documented[key]) for key in ENVELOPE_KEYS
            }
            assert (event["version"], event["source"], event["detail-type"]) == (
                "0",
                SAGEMAKER_SOURCE,
                documented["detail-type"],
            )
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
            arn = event["detail"].get("TrainingJobArn") or event["detail"]["HyperParameterTuningJobArn"]
            assert event["resources"] == [arn]


def test_a_training_job_state_change_has_every_documented_field(engine_events: dict[str, list[dict[str, Any]]]) -> None:
    documented = DOCUMENTED_TRAINING_JOB_STATE_CHANGE["detail"]
    events = engine_events["completed"] + engine_events["failed"] + engine_events["trials"]
    final = [event for event in events if event["detail"]["TrainingJobStatus"] != "InProgress"]
    assert len(final) == 4
    for event in final:
        assert shape_differences(documented, event["detail"]) == [], event["detail"]["TrainingJobName"]
        # epoch milliseconds, written as the documentation writes them
        assert re.fullmatch(r"\d{13}", event["detail"]["TrainingEndTime"])


def test_failure_reason_comes_with_failed_jobs_only(engine_events: dict[str, list[dict[str, Any]]]) -> None:
    [failed] = [e for e in engine_events["failed"] if e["detail"]["TrainingJobStatus"] != "InProgress"]
    [completed] = [e for e in engine_events["completed"] if e["detail"]["TrainingJobStatus"] != "InProgress"]

    assert failed["detail"]["FailureReason"] == "bad hyperparameter"
    assert "FailureReason" not in completed["detail"]
    assert completed["detail"]["ModelArtifacts"]["S3ModelArtifacts"].endswith(
        f"/{completed['detail']['TrainingJobName']}/output/model.tar.gz"
    )


def test_a_tuning_job_state_change_has_every_documented_field(engine_events: dict[str, list[dict[str, Any]]]) -> None:
    [final] = [e for e in engine_events["tuning"] if e["detail"]["HyperParameterTuningJobStatus"] != "InProgress"]

    assert shape_differences(DOCUMENTED_TUNING_JOB_STATE_CHANGE["detail"], final["detail"]) == []
    assert final["detail"]["BestTrainingJob"]["TunedHyperParameters"] == {"x": "2"}


def test_the_finishers_models_read_the_documented_examples_and_the_engines_events(
    engine_events: dict[str, list[dict[str, Any]]],
) -> None:
    documented_training = TrainingJobStateChange.model_validate(DOCUMENTED_TRAINING_JOB_STATE_CHANGE["detail"])
    # The documented tuning example's status is a placeholder ("status"); the API's values are the real ones.
    tuning_example = copy.deepcopy(DOCUMENTED_TUNING_JOB_STATE_CHANGE["detail"])
    tuning_example["HyperParameterTuningJobStatus"] = "Completed"
    documented_tuning = TuningJobStateChange.model_validate(tuning_example)

    assert documented_training.is_final and documented_tuning.is_final
    for event in engine_events["completed"] + engine_events["failed"] + engine_events["trials"]:
        assert event["detail-type"] == TRAINING_JOB_STATE_CHANGE
        TrainingJobStateChange.model_validate(event["detail"])
    for event in engine_events["tuning"]:
        assert event["detail-type"] == TUNING_JOB_STATE_CHANGE
        parsed = TuningJobStateChange.model_validate(event["detail"])
        if parsed.is_final:
            assert parsed.BestTrainingJob is not None
            assert parsed.BestTrainingJob.TrainingJobName in {
                e["detail"]["TrainingJobName"] for e in engine_events["trials"]
            }
