"""One sample of every pipeline event, plus the S3 notification: the source of the payloads under events/."""

from __future__ import annotations

from typing import Any

from .events import (
    ChunkPart,
    DetectedFormat,
    EtlCompleted,
    FileChunked,
    FileOversized,
    FileReceived,
    FileRejected,
    FileValidated,
    ModelTrained,
    PipelineDetail,
    PredictionsCompleted,
    TrainingSkipped,
    source_of,
)

SAMPLE_BUCKET = "amazon-reviews-nlp-123456789012-pipeline"
SAMPLE_ACCOUNT = "123456789012"
SAMPLE_REGION = "us-east-1"
SAMPLE_TIME = "2026-11-27T10:00:00Z"
_FILE_ID = "5f1c0e2a9b7d4c3e8a6f1b2d3c4e5f60"
_PART_FILE_ID = "a7c3d9e1f2b4a6c8e0d2f4a6b8c0d2e4"
_INFERENCE_FILE_ID = "0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"
_KEY = "raw/train/amazon_reviews_us_Gift_Card_v1_00.tsv"
_TRAINING_JOB = "reviews-v1-0-k2x9fq"
_TUNING_JOB = "reviews-v1-1-k2xa0c"

SAMPLE_DETAILS: dict[str, tuple[str, PipelineDetail]] = {
    "FileReceived": (
        "receiver",
        FileReceived(
            correlation_id=_FILE_ID,
            bucket=SAMPLE_BUCKET,
            key=_KEY,
            version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
            size=301983,
            etag="b7c6a3f2c0e1d4f5a6b7c8d9e0f1a2b3",
            dataset="train",
            origin="s3",
        ),
    ),
    "FileOversized": (
        "validator",
        FileOversized(
            correlation_id=_FILE_ID,
            file_id=_FILE_ID,
            root_file_id=_FILE_ID,
            dataset="train",
            bucket=SAMPLE_BUCKET,
            key="raw/train/amazon_reviews_us_Books_v1_02.tsv",
            version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
            size=1_243_517_952,
            max_size_bytes=268_435_456,
            detected=DetectedFormat(format="tsv", delimiter="\t", layout="aws_customer_reviews_tsv"),
        ),
    ),
    "FileChunked": (
        "chunker",
        FileChunked(
            correlation_id=_FILE_ID,
            file_id=_FILE_ID,
            root_file_id=_FILE_ID,
            dataset="train",
            source_key="raw/train/amazon_reviews_us_Books_v1_02.tsv",
            parts=[
                ChunkPart(key=f"chunks/train/{_FILE_ID}/part-00000.tsv", part_index=0, rows=412_004, size=67_108_512),
                ChunkPart(key=f"chunks/train/{_FILE_ID}/part-00001.tsv", part_index=1, rows=409_871, size=67_108_201),
            ],
            rows_total=821_875,
        ),
    ),
    "FileValidated": (
        "validator",
        FileValidated(
            correlation_id=_FILE_ID,
            file_id=_FILE_ID,
            root_file_id=_FILE_ID,
            dataset="train",
            source_key=_KEY,
            processed_key=f"processed/train/{_FILE_ID}/part-00000.parquet",
            layout="aws_customer_reviews_tsv",
            rows_in=1452,
            rows_out=1450,
            rows_dropped={"empty_text": 2},
            kept_columns=["review_id", "review_headline", "review_body", "star_rating"],
            dropped_columns=["marketplace", "customer_id", "product_id", "product_parent", "product_title"],
        ),
    ),
    "FileRejected": (
        "validator",
        FileRejected(
            correlation_id=_PART_FILE_ID,
            file_id=_PART_FILE_ID,
            root_file_id=_PART_FILE_ID,
            dataset="train",
            stage="validator",
            check="columns",
            reason="no column holds a star rating (looked for star_rating, overall, rating, stars, Score)",
            source_key="raw/train/comments.csv",
            error_key="errors/train/raw/comments.csv",
            report_key="errors/train/raw/comments.csv.report.json",
        ),
    ),
    "EtlCompleted": (
        "etl",
        EtlCompleted(
            correlation_id=_FILE_ID,
            file_id=_FILE_ID,
            root_file_id=_FILE_ID,
            dataset="train",
            processed_key=f"processed/train/{_FILE_ID}/part-00000.parquet",
            etl_key=f"etl/train/{_FILE_ID}/part-00000.parquet",
            rows_in=1450,
            rows_out=1447,
            rows_dropped={"empty_after_cleaning": 3},
            root_complete=True,
        ),
    ),
    "ModelTrained": (
        "trainer",
        ModelTrained(
            correlation_id=_FILE_ID,
            version="v1.0",
            model_prefix="models/v1.0/",
            promoted=True,
            metrics={"accuracy": 0.81, "macro_f1": 0.66},
            trigger_root_file_id=_FILE_ID,
            training_job=_TRAINING_JOB,
        ),
    ),
    "PredictionsCompleted": (
        "predictor",
        PredictionsCompleted(
            correlation_id=_INFERENCE_FILE_ID,
            file_id=_INFERENCE_FILE_ID,
            root_file_id=_INFERENCE_FILE_ID,
            dataset="inference",
            prediction_keys=[f"predictions/{_INFERENCE_FILE_ID}/part-00000.parquet"],
            manifest_key=f"predictions/{_INFERENCE_FILE_ID}/manifest.json",
            rows=1000,
            model_version="v1.0",
        ),
    ),
    "TrainingSkipped": (
        "trainer",
        TrainingSkipped(
            correlation_id=_FILE_ID,
            reason="no model trained: too few labelled reviews, need 10 per class, have negative 2, neutral 0, "
            "positive 18 (sentiment3 labels, over every training file so far); add more training files: the next "
            "one trains on them all",
            class_counts={"negative": 2, "neutral": 0, "positive": 18},
            min_reviews_per_class=10,
            label_target="sentiment3",
            etl_files=1,
            trigger_root_file_id=_FILE_ID,
        ),
    ),
}


def eventbridge_event(detail_type: str, source: str, detail: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": SAMPLE_ACCOUNT,
        "time": SAMPLE_TIME,
        "region": SAMPLE_REGION,
        "resources": [],
        "detail": detail,
    }


def sample_event(detail_type: str) -> dict[str, Any]:
    """The sample EventBridge event for one of the pipeline's events."""
    service, detail = SAMPLE_DETAILS[detail_type]
    index = list(SAMPLE_DETAILS).index(detail_type)
    return eventbridge_event(
        detail_type, source_of(service), detail.model_dump(mode="json"), f"00000000-0000-4000-8000-{index:012d}"
    )


def sample_s3_object_created(key: str = _KEY) -> dict[str, Any]:
    """An S3 "Object Created" event as S3 sends it to EventBridge."""
    event = eventbridge_event(
        "Object Created",
        "aws.s3",
        {
            "version": "0",
            "bucket": {"name": SAMPLE_BUCKET},
            "object": {
                "key": key,
                "size": 301983,
                "etag": "b7c6a3f2c0e1d4f5a6b7c8d9e0f1a2b3",
                "version-id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
                "sequencer": "00617F08299329D189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": SAMPLE_ACCOUNT,
            "source-ip-address": "203.0.113.15",
            "reason": "PutObject",
        },
        "17793124-05d4-b198-2fde-7ededc63b103",
    )
    event["resources"] = [f"arn:aws:s3:::{SAMPLE_BUCKET}"]
    return event


def _epoch_ms(seconds_after_sample_time: int) -> int:
    return 1_764_237_600_000 + seconds_after_sample_time * 1000  # SAMPLE_TIME, in SageMaker's epoch milliseconds


def sample_training_job_state_change(
    name: str = _TRAINING_JOB, status: str = "Completed", tuning_job: str | None = None
) -> dict[str, Any]:
    """A "SageMaker Training Job State Change" as SageMaker puts it on the default bus (its detail is
    DescribeTrainingJob's answer), for a job the trainer launched."""
    arn = f"arn:aws:sagemaker:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:training-job/{name}"
    detail: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": arn,
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "HyperParameters": {"label_target": "sentiment3", "model.max_depth": "4", "version": "v1.0"},
        "AlgorithmSpecification": {
            "TrainingImage": f"{SAMPLE_ACCOUNT}.dkr.ecr.{SAMPLE_REGION}.amazonaws.com/amazon-reviews-nlp-training:v1",
            "TrainingInputMode": "File",
        },
        "RoleArn": f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/reviews-sagemaker-training",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{SAMPLE_BUCKET}/etl/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"KmsKeyId": "", "S3OutputPath": f"s3://{SAMPLE_BUCKET}/models/training-jobs/"},
        "ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 14400},
        "CreationTime": _epoch_ms(0),
        "TrainingStartTime": _epoch_ms(60),
        "TrainingEndTime": _epoch_ms(600),
        "LastModifiedTime": _epoch_ms(620),
        "SecondaryStatusTransitions": [],
        "FinalMetricDataList": [
            {"MetricName": "validation:macro_f1", "Value": 0.64, "Timestamp": _epoch_ms(590)},
            {"MetricName": "test:macro_f1", "Value": 0.66, "Timestamp": _epoch_ms(590)},
        ],
        "Tags": {},
    }
    if status == "Completed":
        detail["ModelArtifacts"] = {
            "S3ModelArtifacts": f"s3://{SAMPLE_BUCKET}/models/training-jobs/{name}/output/model.tar.gz"
        }
    else:
        detail["FailureReason"] = "AlgorithmError: ValueError: After pruning, no terms remain."
    if tuning_job:
        detail["TuningJobArn"] = (
            f"arn:aws:sagemaker:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:hyper-parameter-tuning-job/{tuning_job}"
        )
    event = eventbridge_event(
        "SageMaker Training Job State Change", "aws.sagemaker", detail, "844e2571-85d4-695f-b930-0153b71dcb42"
    )
    event["resources"] = [arn]
    return event


def sample_tuning_job_state_change(name: str = _TUNING_JOB) -> dict[str, Any]:
    """A "SageMaker HyperParameter Tuning Job State Change" of a completed grid search."""
    arn = f"arn:aws:sagemaker:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:hyper-parameter-tuning-job/{name}"
    best = f"{name}-007-3f1e2d4c"
    detail = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": arn,
        "HyperParameterTuningJobStatus": "Completed",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:macro_f1"},
            "ResourceLimits": {"MaxParallelTrainingJobs": 2},
        },
        "CreationTime": _epoch_ms(0),
        "HyperParameterTuningEndTime": _epoch_ms(3600),
        "LastModifiedTime": _epoch_ms(3600),
        "TrainingJobStatusCounters": {
            "Completed": 12,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": 0,
            "Stopped": 0,
        },
        "ObjectiveStatusCounters": {"Succeeded": 12, "Pending": 0, "Failed": 0},
        "BestTrainingJob": {
            "TrainingJobName": best,
            "TrainingJobArn": f"arn:aws:sagemaker:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:training-job/{best}",
            "CreationTime": _epoch_ms(1800),
            "TrainingStartTime": _epoch_ms(1860),
            "TrainingEndTime": _epoch_ms(2400),
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": {"features.min_df": "3", "model.svm_c": "0.3", "model.max_depth": "4"},
            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:macro_f1", "Value": 0.651},
            "ObjectiveStatus": "Succeeded",
        },
        "Tags": {},
    }
    event = eventbridge_event(
        "SageMaker HyperParameter Tuning Job State Change",
        "aws.sagemaker",
        detail,
        "9a2b6e41-7c1f-4f2e-a1d2-0e4c1b7f9d10",
    )
    event["resources"] = [arn]
    return event


def sample_scheduled_event(
    rule_arn: str = f"arn:aws:events:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:rule/training-sweep",
) -> dict[str, Any]:
    """An EventBridge schedule's event: the finisher's sweep of jobs whose state change never came."""
    event = eventbridge_event("Scheduled Event", "aws.events", {}, "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa")
    event["resources"] = [rule_arn]
    return event


def sqs_wrapped(event: dict[str, Any], queue_name: str, message_id: str) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it, one record carrying `event`."""
    import json

    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"AQEB{message_id.replace('-', '')}",
                "body": json.dumps(event),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795773600000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795773600001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:{queue_name}",
                "awsRegion": SAMPLE_REGION,
            }
        ]
    }
