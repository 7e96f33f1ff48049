"""What the trainer asks SageMaker for: job names, the CreateTrainingJob and CreateHyperParameterTuningJob requests.

Plain data from settings: nothing here calls AWS (service.py does). The container they start is the
training image's entry point (`sagemaker_entry.py`), and what it reads and writes is SageMaker's
contract: hyperparameters.json, the `train` and `current` channels, /opt/ml/model/.
"""

from __future__ import annotations

import string
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .hyperparameters import DEFAULT_GRID, check_search_space

TRAIN_CHANNEL = "train"
CURRENT_CHANNEL = "current"
OBJECTIVE_METRIC = "validation:macro_f1"
METRIC_DEFINITIONS = [
    {"Name": OBJECTIVE_METRIC, "Regex": r"validation:macro_f1=([0-9.]+)"},
    {"Name": "test:macro_f1", "Regex": r"test:macro_f1=([0-9.]+)"},
    {"Name": "test:accuracy", "Regex": r"test:accuracy=([0-9.]+)"},
]
"""SageMaker reads these from the job's log (the entry point prints one `name=value` line each)."""
TUNING_JOB_NAME_LIMIT = 32
TRAINING_JOB_NAME_LIMIT = 63
_BASE36 = string.digits + string.ascii_lowercase


class TrainingJobSettings(BaseSettings):
    """Where and how the trainer's SageMaker jobs run (env prefix REVIEWS_TRAINER_, like TrainerSettings).

    These are not training settings (they do not change the model), so they are not hyperparameters.
    """

    model_config = SettingsConfigDict(env_prefix="REVIEWS_TRAINER_", frozen=True, extra="ignore")

    job_prefix: str = Field(
        default="reviews",
        max_length=16,
        pattern=r"^[a-z0-9](-*[a-z0-9])*$",
        description="Every job of this stack is named <job_prefix>-vX-Y-…; the finisher's rules match <job_prefix>-v. "
        "Lower case: IAM matches the jobs' ARNs, which SageMaker writes in lower case.",
    )
    training_image: str = Field(
        default="", description="ECR URI of the training image (services/trainer/Dockerfile.training)."
    )
    sagemaker_role_arn: str = Field(default="", description="The execution role SageMaker runs the jobs with.")
    instance_type: str = Field(default="ml.m5.2xlarge", description="One instance per job: 8 vCPU, 32 GiB.")
    volume_size_gb: int = Field(default=30, ge=1, description="The job's disk: the corpus and the model are on it.")
    max_runtime_seconds: int = Field(default=14_400, ge=60, description="SageMaker stops a job running longer.")
    search: Literal["none", "grid"] = Field(
        default="none", description="grid: a SageMaker tuning job (Strategy Grid) over search_space; none: one job."
    )
    search_space: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_GRID),
        description="Training setting (dotted, e.g. model.max_depth) → the values the grid tries.",
    )
    search_max_trials: int = Field(default=12, ge=1, le=100, description="The grid's combinations may not exceed this.")
    max_parallel_trials: int = Field(default=2, ge=1, description="Trials of one grid run at the same time.")
    sweep_grace_seconds: int = Field(
        default=900,
        ge=0,
        description="A job still unfinished this long after its max runtime lost its state-change event: the sweeper "
        "asks SageMaker for its state and finishes it.",
    )
    max_artifact_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="model.tar.gz larger than this (packed or unpacked) is refused."
    )

    @field_validator("search_space")
    @classmethod
    def _valid_space(cls, space: dict[str, list[str]]) -> dict[str, list[str]]:
        check_search_space(space, max_trials=100)
        return space

    def check_search(self) -> None:
        """The grid fits search_max_trials (checked at launch: the two fields are set independently)."""
        check_search_space(self.search_space, self.search_max_trials)


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if number == 0:
            return digits


def job_name(prefix: str, version: str, claimed_at: float) -> str:
    """`reviews-v1-3-k2x9fq`: the stack's prefix, the version, and the claim's time (unique across redeployments).

    Derived from the claim alone, so a retried launch names the same job and SageMaker refuses a second one.
    """
    name = f"{prefix}-{version.replace('.', '-')}-{_base36(int(claimed_at * 1000))[-6:]}"
    if len(name) > TUNING_JOB_NAME_LIMIT:
        raise ValueError(f"job name {name!r} is longer than SageMaker's {TUNING_JOB_NAME_LIMIT} for a tuning job")
    return name


def _channel(name: str, bucket: str, prefix: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{bucket}/{prefix}",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def input_channels(bucket: str, train_prefix: str, current_model_prefix: str | None) -> list[dict[str, Any]]:
    """The corpus, and the current model (so the job scores both on the same new test split)."""
    channels = [_channel(TRAIN_CHANNEL, bucket, train_prefix)]
    if current_model_prefix is not None:
        channels.append(_channel(CURRENT_CHANNEL, bucket, current_model_prefix))
    return channels


def _definition(
    settings: TrainingJobSettings, bucket: str, output_prefix: str, channels: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {
            "TrainingImage": settings.training_image,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "RoleArn": settings.sagemaker_role_arn,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{output_prefix}"},
        "ResourceConfig": {
            "InstanceType": settings.instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": settings.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_seconds},
    }


def training_job_request(
    name: str,
    settings: TrainingJobSettings,
    hyperparameters: dict[str, str],
    *,
    bucket: str,
    output_prefix: str,
    channels: list[dict[str, Any]],
) -> dict[str, Any]:
    """The CreateTrainingJob arguments of one training."""
    return {
        "TrainingJobName": name,
        "HyperParameters": hyperparameters,
        **_definition(settings, bucket, output_prefix, channels),
    }


def tuning_job_request(
    name: str,
    settings: TrainingJobSettings,
    hyperparameters: dict[str, str],
    *,
    bucket: str,
    output_prefix: str,
    channels: list[dict[str, Any]],
) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob arguments of a grid search: the searched settings are categorical
    ranges, every other setting is static."""
    static = {name: value for name, value in hyperparameters.items() if name not in settings.search_space}
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": OBJECTIVE_METRIC},
            "ResourceLimits": {"MaxParallelTrainingJobs": settings.max_parallel_trials},
            "ParameterRanges": {
                "CategoricalParameterRanges": [
                    {"Name": setting, "Values": list(values)} for setting, values in settings.search_space.items()
                ]
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": static,
            **_definition(settings, bucket, output_prefix, channels),
        },
    }
