"""The in-process AWS (moto) the integration tests run against, and what they use to drive and watch it.

`aws` starts moto once per module (starting it and building clients is the slow part) and gives
boto3 clients for it. `moto_stack` builds on it the pipeline's resources as the templates declare
them: a versioned bucket, the ledger table, the event bus, with a catch-all rule sending everything
published on the bus to an SQS queue, so tests see events the way a downstream consumer would.
`pipeline` is that stack emptied for each test: nothing one test leaves behind is seen by the next.

A module that needs more helpers on its stack subclasses `MotoStack` and overrides `stack_type`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from shared.events import DETAIL_BY_TYPE
from shared.ledger import FileLedger, FileRecord, create_ledger_table
from shared.resources import resources_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
BUCKET = f"amazon-reviews-nlp-{ACCOUNT_ID}-pipeline"
BUS = "amazon-reviews-nlp-bus"
TABLE = "amazon-reviews-nlp-ledger"


# -- Lambda ---------------------------------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    """What Powertools reads from a Lambda context, for the function named."""

    function_name: str = "validator"
    memory_limit_in_mb: int = 512
    remaining_millis: int = 60_000
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = "2026/11/27/[$LATEST]abc"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def lambda_context(
    function_name: str = "validator", memory_limit_in_mb: int = 512, remaining_millis: int = 60_000
) -> LambdaContext:
    return cast(LambdaContext, FakeLambdaContext(function_name, memory_limit_in_mb, remaining_millis))


# -- moto -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsClients:
    s3: S3Client
    events: EventBridgeClient
    dynamodb: DynamoDBClient
    sqs: SQSClient


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsClients]:
    """One in-process AWS for the module, and clients for it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            yield AwsClients(
                s3=boto3.client("s3", region_name=REGION),
                events=boto3.client("events", region_name=REGION),
                dynamodb=boto3.client("dynamodb", region_name=REGION),
                sqs=boto3.client("sqs", region_name=REGION),
            )


@dataclass
class MotoStack:
    """One stack's resources, and helpers to watch its bus and read its ledger and bucket."""

    aws: AwsClients
    bucket: str
    bus: str
    table: str
    queue_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ledger(self) -> FileLedger:
        return FileLedger(self.aws.dynamodb, self.table)

    def published(self) -> list[dict[str, Any]]:
        """Every event published on the bus so far (the queue is drained into `seen`)."""
        while True:
            messages = self.aws.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.seen
            for message in messages:
                event = json.loads(message["Body"])
                # moto (5.2) leaves `account` out of the events its rules deliver; AWS always sends it,
                # and the Powertools envelope requires it.
                event.setdefault("account", ACCOUNT_ID)
                self.seen.append(event)
                self.aws.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def details(self, detail_type: str) -> list[dict[str, Any]]:
        """The details of the events of one type published so far, in order."""
        return [event["detail"] for event in self.published() if event.get("detail-type") == detail_type]

    def record(self, file_id: str) -> FileRecord:
        stored = self.ledger.get(file_id)
        assert stored is not None, f"{file_id} is not in the ledger"
        return stored

    def object_versions(self, bucket: str | None = None) -> list[tuple[str, str, bool]]:
        """(key, version id, is delete marker) of everything ever written to the bucket."""
        listing = self.aws.s3.list_object_versions(Bucket=bucket or self.bucket)
        versions = [(item["Key"], item["VersionId"], False) for item in listing.get("Versions", [])]
        markers = [(item["Key"], item["VersionId"], True) for item in listing.get("DeleteMarkers", [])]
        return sorted(versions + markers)

    def reset(self) -> None:
        """Back to a new stack: other buckets gone, the bucket empty (no upload open either), a new
        ledger table, the queue drained and nothing seen."""
        s3 = self.aws.s3
        for bucket in [item["Name"] for item in s3.list_buckets()["Buckets"]]:
            for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for key, version_id, _ in self.object_versions(bucket):
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
            if bucket != self.bucket:
                s3.delete_bucket(Bucket=bucket)
        if self.table in self.aws.dynamodb.list_tables()["TableNames"]:
            self.aws.dynamodb.delete_table(TableName=self.table)
        create_ledger_table(self.aws.dynamodb, self.table)
        self.published()
        self.seen.clear()


@pytest.fixture(scope="module")
def stack_type() -> type[MotoStack]:
    """The class `moto_stack` is built as: a module overrides this to add its own helpers."""
    return MotoStack


@pytest.fixture(scope="module")
def moto_stack(aws: AwsClients, stack_type: type[MotoStack]) -> Iterator[MotoStack]:
    """The pipeline's resources for the module, and the handlers' settings naming them.

    The handlers build their boto3 clients once (`resources_for` caches them), so the stack keeps its
    names for the module and `pipeline` empties it between tests instead.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"REVIEWS_BUCKET": BUCKET, "REVIEWS_EVENT_BUS": BUS, "REVIEWS_LEDGER_TABLE": TABLE}.items():
            patch.setenv(name, value)
        patch.delenv("REVIEWS_AWS_ENDPOINT_URL", raising=False)
        resources_for.cache_clear()
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        aws.events.create_event_bus(Name=BUS)
        queue_url = aws.sqs.create_queue(QueueName="everything-published")["QueueUrl"]
        queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        aws.events.put_rule(
            Name="everything", EventBusName=BUS, EventPattern=json.dumps({"detail-type": sorted(DETAIL_BY_TYPE)})
        )
        aws.events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "seen", "Arn": queue_arn}])
        yield stack_type(aws=aws, bucket=BUCKET, bus=BUS, table=TABLE, queue_url=queue_url)
        resources_for.cache_clear()


@pytest.fixture
def pipeline(moto_stack: MotoStack) -> MotoStack:
    """The module's stack, emptied: nothing an earlier test wrote or published is left."""
    moto_stack.reset()
    return moto_stack
