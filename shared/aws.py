"""boto3 clients for the pipeline's resources, built from settings (never from globals at import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from .settings import PipelineSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient


def retrying_config(max_attempts: int) -> Config:
    """Standard retry mode: backs off (exponentially, with jitter) on throttling and 5xx answers.

    When the attempts run out the error reaches the handler, the message goes back to SQS and,
    past the redrive count, to the DLQ.
    """
    return Config(retries={"mode": "standard", "max_attempts": max_attempts}, max_pool_connections=32)


@dataclass(frozen=True)
class AwsClients:
    s3: S3Client
    events: EventBridgeClient
    dynamodb: DynamoDBClient
    sns: SNSClient


def clients_for(settings: PipelineSettings) -> AwsClients:
    session = boto3.session.Session()
    endpoint = settings.aws_endpoint_url
    retrying = retrying_config(settings.aws_max_attempts)
    return AwsClients(
        s3=session.client("s3", endpoint_url=endpoint, config=retrying),
        events=session.client("events", endpoint_url=endpoint, config=retrying),
        dynamodb=session.client("dynamodb", endpoint_url=endpoint, config=retrying),
        sns=session.client("sns", endpoint_url=endpoint, config=retrying),
    )
