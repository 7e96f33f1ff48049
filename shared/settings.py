"""Settings as pydantic settings objects, read from the environment once, at the handler's edge.

Logic never reads `os.environ`: handlers build these objects and pass plain values down.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    """Where the pipeline's shared resources are. Set by the SAM templates or the local runtime."""

    model_config = SettingsConfigDict(env_prefix="REVIEWS_", frozen=True, extra="ignore")

    bucket: str = Field(description="The pipeline bucket (raw/, processed/, models/, …).")
    event_bus: str = Field(description="Name of the stack's custom EventBridge bus.")
    ledger_table: str = Field(description="Name of the DynamoDB file ledger.")
    alert_topic_arn: str | None = Field(default=None, description="SNS topic alerts are sent to.")
    aws_endpoint_url: str | None = Field(
        default=None,
        description="AWS-compatible endpoint (the local emulator); unset on AWS itself.",
    )
    aws_max_attempts: int = Field(
        default=10,
        ge=1,
        description="Attempts per AWS call, with the SDK's standard backoff on throttling and 5xx answers; "
        "ten ride out a burst of throttling before the message is handed back to SQS.",
    )
