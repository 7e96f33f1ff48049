"""The SageMaker state-change events the trainer's finisher consumes, as SageMaker documents them.

SageMaker puts them on the account's default bus (source `aws.sagemaker`); the `detail` of each is,
field for field, what DescribeTrainingJob / DescribeHyperParameterTuningJob answer at that moment
(timestamps as epoch milliseconds). Only the fields the pipeline reads are modelled; the rest are
ignored, as for the pipeline's own events. The local SageMaker engine (reviews_pipeline) puts the
same shape on the emulator's bus, and tests/contract pins both against AWS's documented examples.

A DescribeTrainingJob answer parses as a `TrainingJobStateChange` too: the sweeper that recovers a
lost event feeds the finisher exactly what the event would have carried.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SAGEMAKER_SOURCE = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
TUNING_JOB_STATE_CHANGE = "SageMaker HyperParameter Tuning Job State Change"

TrainingStatus = Literal["InProgress", "Completed", "Failed", "Stopping", "Stopped"]
TuningStatus = Literal["InProgress", "Completed", "Failed", "Stopping", "Stopped", "Deleting", "DeleteFailed"]
FINAL_TRAINING_STATUSES = frozenset({"Completed", "Failed", "Stopped"})


class _AwsDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ModelArtifactsDetail(_AwsDetail):
    S3ModelArtifacts: str = Field(description="s3://bucket/<output path>/<job name>/output/model.tar.gz")


class MetricData(_AwsDetail):
    MetricName: str
    Value: float


class TrainingJobStateChange(_AwsDetail):
    """`detail` of "SageMaker Training Job State Change" (and a DescribeTrainingJob answer)."""

    TrainingJobName: str
    TrainingJobArn: str
    TrainingJobStatus: TrainingStatus
    SecondaryStatus: str | None = None
    FailureReason: str | None = None
    ModelArtifacts: ModelArtifactsDetail | None = None
    HyperParameters: dict[str, str] = Field(default_factory=dict)
    TuningJobArn: str | None = Field(default=None, description="Set on the trial jobs a tuning job starts.")
    FinalMetricDataList: list[MetricData] = Field(
        default_factory=list, description="The last value of each MetricDefinitions metric the job's log showed."
    )

    @property
    def is_final(self) -> bool:
        return self.TrainingJobStatus in FINAL_TRAINING_STATUSES

    def metric(self, name: str) -> float | None:
        values = [metric.Value for metric in self.FinalMetricDataList if metric.MetricName == name]
        return values[-1] if values else None


class ObjectiveMetric(_AwsDetail):
    MetricName: str
    Value: float


class BestTrainingJobDetail(_AwsDetail):
    TrainingJobName: str
    TrainingJobArn: str | None = None
    TrainingJobStatus: TrainingStatus | None = None
    TunedHyperParameters: dict[str, str] = Field(default_factory=dict)
    FinalHyperParameterTuningJobObjectiveMetric: ObjectiveMetric | None = None


class TuningJobStateChange(_AwsDetail):
    """`detail` of "SageMaker HyperParameter Tuning Job State Change" (and a DescribeHyperParameterTuningJob answer)."""

    HyperParameterTuningJobName: str
    HyperParameterTuningJobArn: str | None = None
    HyperParameterTuningJobStatus: TuningStatus
    FailureReason: str | None = None
    BestTrainingJob: BestTrainingJobDetail | None = None
    TrainingJobStatusCounters: dict[str, int] = Field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.HyperParameterTuningJobStatus in {"Completed", "Failed", "Stopped"}


SCHEDULED_EVENT = "Scheduled Event"
"""The detail-type of an EventBridge schedule's events (source aws.events): the finisher's sweep."""


class ScheduledDetail(_AwsDetail):
    """A schedule's `detail` is an empty object."""
