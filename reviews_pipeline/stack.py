"""Creating the pipeline's resources on an AWS-compatible endpoint from the SAM templates' topology."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3

from shared.ledger import create_ledger_table

from .topology import ConsumerSpec, Topology

LOCAL_REGION = "us-east-1"
TRAINING_IMAGE_REPOSITORY = "amazon-reviews-nlp-training"
LOCAL_IMAGE_TAG = "local"
SAGEMAKER_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# moto accepts any credentials; setting them keeps boto3 from looking for real ones.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class QueuePair:
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    dead_letter_arn: str


@dataclass(frozen=True)
class ScheduledRule:
    """A rule with a ScheduleExpression: EventBridge sends its target a "Scheduled Event" at that rate.

    moto records the rule but never fires it; the local runtime does (runtime.RuleScheduler)."""

    rule_name: str
    rule_arn: str
    schedule: str
    service: str
    queue_url: str


@dataclass(frozen=True)
class StackInfo:
    """Names of one running stack's resources; saved as JSON so `status` and `redrive` can find them."""

    endpoint_url: str | None
    region: str
    bucket: str
    event_bus: str
    ledger_table: str
    alert_topic_arn: str
    queues: dict[str, QueuePair] = field(default_factory=dict)
    archive_name: str = ""
    """The bus's event archive (every event on the bus, for replay), as template.yaml's EventArchive."""
    account: str = ""
    job_prefix: str = ""
    """What every SageMaker job this stack launches is named from (the templates' JobNamePrefix)."""
    sagemaker_role_arn: str = ""
    """The execution role SageMaker training jobs run with."""
    training_image: str = ""
    """The training image's URI, as ECR would name it (locally the engine runs its entry point instead)."""
    schedules: tuple[ScheduledRule, ...] = ()

    def environment(self) -> dict[str, str]:
        """What the handlers read (the same variables the templates set on the functions)."""
        environment = {
            "REVIEWS_BUCKET": self.bucket,
            "REVIEWS_EVENT_BUS": self.event_bus,
            "REVIEWS_LEDGER_TABLE": self.ledger_table,
            "REVIEWS_ALERT_TOPIC_ARN": self.alert_topic_arn,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        # State files of stacks made before SageMaker training have none of these.
        trainer = {
            "REVIEWS_TRAINER_JOB_PREFIX": self.job_prefix,
            "REVIEWS_TRAINER_TRAINING_IMAGE": self.training_image,
            "REVIEWS_TRAINER_SAGEMAKER_ROLE_ARN": self.sagemaker_role_arn,
        }
        environment |= {name: value for name, value in trainer.items() if value}
        if self.endpoint_url:
            environment["REVIEWS_AWS_ENDPOINT_URL"] = self.endpoint_url
            environment["AWS_ENDPOINT_URL"] = self.endpoint_url
            environment["AWS_ACCESS_KEY_ID"] = LOCAL_CREDENTIALS["aws_access_key_id"]
            environment["AWS_SECRET_ACCESS_KEY"] = LOCAL_CREDENTIALS["aws_secret_access_key"]
        return environment

    def save(self, path: Path, owner_pid: int | None = None) -> None:
        """Write the names as JSON, with the pid of the process that keeps the stack up (if one does)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**asdict(self), "owner_pid": owner_pid}, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> StackInfo:
        document = json.loads(path.read_text(encoding="utf-8"))
        document.pop("owner_pid", None)
        document["queues"] = {name: QueuePair(**pair) for name, pair in document["queues"].items()}
        document["schedules"] = tuple(ScheduledRule(**rule) for rule in document.get("schedules", ()))
        return cls(**document)

    @staticmethod
    def owner_of(path: Path) -> int | None:
        """The pid saved with the stack's names, or None (no file, none saved, or not a state file)."""
        try:
            owner = json.loads(path.read_text(encoding="utf-8")).get("owner_pid")
        except (OSError, ValueError, AttributeError):
            return None
        return owner if isinstance(owner, int) else None


def session_for(endpoint_url: str | None, region: str = LOCAL_REGION) -> boto3.session.Session:
    if endpoint_url:
        return boto3.session.Session(
            region_name=region,
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        )
    return boto3.session.Session(region_name=region)


def client(stack: StackInfo, service: str) -> Any:
    return session_for(stack.endpoint_url, stack.region).client(service, endpoint_url=stack.endpoint_url)  # type: ignore[call-overload]


def create_stack(
    topology: Topology,
    endpoint_url: str | None,
    *,
    name: str | None = None,
    visibility_timeout_seconds: int | None = None,
    region: str = LOCAL_REGION,
) -> StackInfo:
    """Create bucket, bus, rules → queues with DLQs, ledger table and alert topic, as the templates declare.

    `visibility_timeout_seconds` overrides the templates' queue visibility (sized for Lambda's
    timeouts) so that a local retry comes back in seconds rather than minutes.
    """
    prefix = name or f"reviews-{uuid.uuid4().hex[:8]}"
    session = session_for(endpoint_url, region)
    s3 = session.client("s3", endpoint_url=endpoint_url)
    events = session.client("events", endpoint_url=endpoint_url)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    sns = session.client("sns", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    iam = session.client("iam", endpoint_url=endpoint_url)
    account = session.client("sts", endpoint_url=endpoint_url).get_caller_identity()["Account"]

    bucket = f"{prefix}-pipeline"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    event_bus = f"{prefix}-reviews"
    bus_arn = events.create_event_bus(Name=event_bus)["EventBusArn"]
    archive_name = f"{prefix}-archive"
    events.create_archive(ArchiveName=archive_name, EventSourceArn=bus_arn, RetentionDays=30)
    ledger_table = f"{prefix}-ledger"
    create_ledger_table(dynamodb, ledger_table)
    alert_topic_arn = sns.create_topic(Name=f"{prefix}-alerts")["TopicArn"]
    # The templates' SageMaker execution role; moto does not check what it allows, so only its trust is set.
    role_arn = iam.create_role(
        RoleName=f"{prefix}-sagemaker-training",
        AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST_POLICY),
        Description="Runs this stack's SageMaker training jobs.",
    )["Role"]["Arn"]

    parameters = {"BucketName": bucket, "EventBusName": event_bus, "JobNamePrefix": prefix}
    queues: dict[str, QueuePair] = {}
    schedules: list[ScheduledRule] = []
    for consumer in topology.consumers:
        queues[consumer.service] = _create_consumer(
            sqs, events, consumer, prefix, event_bus, parameters, visibility_timeout_seconds
        )
        schedules += _create_schedules(events, consumer, prefix, queues[consumer.service])
    return StackInfo(
        endpoint_url=endpoint_url,
        region=region,
        bucket=bucket,
        event_bus=event_bus,
        ledger_table=ledger_table,
        alert_topic_arn=alert_topic_arn,
        queues=queues,
        archive_name=archive_name,
        account=account,
        job_prefix=prefix,
        sagemaker_role_arn=role_arn,
        training_image=f"{account}.dkr.ecr.{region}.amazonaws.com/{TRAINING_IMAGE_REPOSITORY}:{LOCAL_IMAGE_TAG}",
        schedules=tuple(schedules),
    )


def _create_consumer(
    sqs: Any,
    events: Any,
    consumer: ConsumerSpec,
    prefix: str,
    event_bus: str,
    parameters: dict[str, str],
    visibility_timeout_seconds: int | None,
) -> QueuePair:
    dead_letter_url = sqs.create_queue(
        QueueName=f"{prefix}-{consumer.service}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    visibility = visibility_timeout_seconds or consumer.visibility_timeout_seconds
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-{consumer.service}",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": consumer.max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for rule in consumer.rules:
        if rule.schedule is not None:
            continue  # _create_schedules
        bus = "default" if rule.on_default_bus else event_bus
        rule_name = f"{prefix}-{rule.logical_id}"
        events.put_rule(Name=rule_name, EventBusName=bus, EventPattern=json.dumps(rule.resolved_pattern(parameters)))
        events.put_targets(
            Rule=rule_name,
            EventBusName=bus,
            Targets=[{"Id": consumer.queue_id, "Arn": queue_arn, "DeadLetterConfig": {"Arn": dead_letter_arn}}],
        )
    return QueuePair(queue_url, queue_arn, dead_letter_url, dead_letter_arn)


def _create_schedules(events: Any, consumer: ConsumerSpec, prefix: str, queues: QueuePair) -> list[ScheduledRule]:
    """The consumer's scheduled rules, on the default bus (the only one a schedule can be on).

    The rule is created (it has an ARN, as the scheduled events name it) but given no target in
    moto: moto matches a rule without an EventPattern against every event on the bus, so its target
    would receive every S3 notification and SageMaker event. The runtime fires it instead.
    """
    scheduled = []
    for rule in consumer.rules:
        if rule.schedule is not None:
            rule_name = f"{prefix}-{rule.logical_id}"
            rule_arn = events.put_rule(Name=rule_name, ScheduleExpression=rule.schedule)["RuleArn"]
            scheduled.append(ScheduledRule(rule_name, rule_arn, rule.schedule, consumer.service, queues.queue_url))
    return scheduled
