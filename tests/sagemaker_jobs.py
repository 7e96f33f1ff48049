"""Driving the local SageMaker engine in tests: a stack on a moto server, jobs created as the trainer creates
them (through moto's SageMaker API), and the state-change events caught as the finisher's rule catches them.

The rules here match the trainer template's: the default bus, source aws.sagemaker, the detail type,
and a `prefix` filter on the job name with the stack's job prefix.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviews_pipeline.config import LocalSageMakerConfig
from reviews_pipeline.sagemaker_engine import LocalSageMakerEngine
from reviews_pipeline.stack import StackInfo, client, create_stack
from reviews_pipeline.topology import Topology
from shared import layout
from shared.sagemaker_events import SAGEMAKER_SOURCE, TRAINING_JOB_STATE_CHANGE, TUNING_JOB_STATE_CHANGE

STANDIN_COMMAND = (sys.executable, str(Path(__file__).with_name("sagemaker_standin.py")), "train")
METRIC_DEFINITIONS = [
    {"Name": "validation:macro_f1", "Regex": "validation:macro_f1=([0-9.]+)"},
    {"Name": "test:macro_f1", "Regex": "test:macro_f1=([0-9.]+)"},
]


@dataclass
class EngineBench:
    stack: StackInfo
    engine: LocalSageMakerEngine
    queue_url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    """Every event body the rules delivered so far, in the order received."""

    def __post_init__(self) -> None:
        self.sagemaker = client(self.stack, "sagemaker")
        self.s3 = client(self.stack, "s3")
        self.sqs = client(self.stack, "sqs")

    def channel(self, name: str = "train") -> dict[str, Any]:
        return {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"s3://{self.stack.bucket}/{layout.ETL}{name}/",  # etl/train/ for "train"
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }

    def definition(self, max_runtime_seconds: int, channels: tuple[str, ...] = ("train",)) -> dict[str, Any]:
        """What CreateTrainingJob and a tuning job's TrainingJobDefinition share."""
        return {
            "AlgorithmSpecification": {
                "TrainingImage": self.stack.training_image,
                "TrainingInputMode": "File",
                "MetricDefinitions": METRIC_DEFINITIONS,
            },
            "RoleArn": self.stack.sagemaker_role_arn,
            "InputDataConfig": [self.channel(name) for name in channels],
            "OutputDataConfig": {"S3OutputPath": f"s3://{self.stack.bucket}/{layout.training_output_prefix()}"},
            "ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        }

    def create_training_job(
        self,
        suffix: str,
        hyperparameters: dict[str, str],
        max_runtime_seconds: int = 60,
        channels: tuple[str, ...] = ("train",),
    ) -> str:
        name = f"{self.stack.job_prefix}-{suffix}"
        self.sagemaker.create_training_job(
            TrainingJobName=name, HyperParameters=hyperparameters, **self.definition(max_runtime_seconds, channels)
        )
        return name

    def create_tuning_job(
        self, suffix: str, ranges: dict[str, list[str]], static: dict[str, str], max_parallel: int = 2
    ) -> str:
        name = f"{self.stack.job_prefix}-{suffix}"
        definition = self.definition(60)
        self.sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name,
            HyperParameterTuningJobConfig={
                "Strategy": "Grid",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:macro_f1"},
                "ResourceLimits": {"MaxParallelTrainingJobs": max_parallel},
                "ParameterRanges": {
                    "CategoricalParameterRanges": [{"Name": key, "Values": values} for key, values in ranges.items()]
                },
            },
            TrainingJobDefinition={"StaticHyperParameters": static, **definition},
        )
        return name

    def put_training_data(self, files: dict[str, bytes]) -> None:
        for key, body in files.items():
            self.s3.put_object(Bucket=self.stack.bucket, Key=f"{layout.ETL}train/{key}", Body=body)

    def read_object(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read()
        return body

    def finished(self, timeout_seconds: float = 30) -> None:
        """Wait until the engine has finished every job moto knows of this stack."""
        deadline = time.monotonic() + timeout_seconds
        while self.engine.pending_jobs():
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still running: {self.engine.pending_jobs()}")
            time.sleep(0.1)

    def events(self) -> list[dict[str, Any]]:
        """Every event delivered so far (the queue drained into `received`)."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return self.received
            for message in messages:
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def final_events(self, job: str) -> list[dict[str, Any]]:
        return [event for event in self.events() if _job_of(event) == job and _status_of(event) != "InProgress"]


def _job_of(event: dict[str, Any]) -> str | None:
    detail = event["detail"]
    name = detail.get("TrainingJobName") or detail.get("HyperParameterTuningJobName")
    return str(name) if name else None


def _status_of(event: dict[str, Any]) -> str:
    detail = event["detail"]
    return str(detail.get("TrainingJobStatus") or detail.get("HyperParameterTuningJobStatus"))


@contextmanager
def engine_bench(endpoint_url: str, log_dir: Path, config: LocalSageMakerConfig | None = None) -> Iterator[EngineBench]:
    """A fresh stack (its own job prefix) with the finisher's two rules into one queue, and an engine on it."""
    stack = create_stack(Topology(consumers=()), endpoint_url)
    events, sqs = client(stack, "events"), client(stack, "sqs")
    queue_url = sqs.create_queue(QueueName=f"{stack.job_prefix}-sagemaker-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for rule, detail_type, name_field in (
        ("training", TRAINING_JOB_STATE_CHANGE, "TrainingJobName"),
        ("tuning", TUNING_JOB_STATE_CHANGE, "HyperParameterTuningJobName"),
    ):
        pattern = {
            "source": [SAGEMAKER_SOURCE],
            "detail-type": [detail_type],
            "detail": {name_field: [{"prefix": f"{stack.job_prefix}-"}]},
        }
        events.put_rule(Name=f"{stack.job_prefix}-{rule}", EventPattern=json.dumps(pattern))
        events.put_targets(Rule=f"{stack.job_prefix}-{rule}", Targets=[{"Id": "queue", "Arn": queue_arn}])
    engine = LocalSageMakerEngine(stack, log_dir, config=config, command=STANDIN_COMMAND, poll_seconds=0.1)
    bench = EngineBench(stack, engine, queue_url)
    bench.put_training_data({"part-00000.parquet": b"rows"})  # SageMaker fails a job whose channel is empty
    engine.start()
    try:
        yield bench
    finally:
        engine.stop()
