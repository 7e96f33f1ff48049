"""Write the JSON Schemas and sample payloads under events/ from the models: `python -m shared.export_events`.

`render_event_files()` is also what the contract test compares the files against, so the files
cannot drift from the models unnoticed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from .consumer import aws_envelope
from .events import PIPELINE_DETAILS, envelope_for
from .sagemaker_events import (
    TRAINING_JOB_STATE_CHANGE,
    TUNING_JOB_STATE_CHANGE,
    TrainingJobStateChange,
    TuningJobStateChange,
)
from .samples import (
    sample_event,
    sample_s3_object_created,
    sample_scheduled_event,
    sample_training_job_state_change,
    sample_tuning_job_state_change,
    sqs_wrapped,
)

S3_OBJECT_CREATED = "S3ObjectCreated"


def file_stem(event_name: str) -> str:
    """`FileReceived` → `file-received`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", event_name).lower()


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _consumer_samples() -> dict[str, dict[str, Any]]:
    """One SQS-wrapped event per function, as `sam local invoke <Function> -e` takes it."""
    inference_part = sample_event("EtlCompleted")
    inference_part["detail"] = {**inference_part["detail"], "dataset": "inference", "root_complete": False}
    return {
        "receiver": sample_s3_object_created(),
        "validator": sample_event("FileReceived"),
        "chunker": sample_event("FileOversized"),
        "etl": sample_event("FileValidated"),
        "trainer": sample_event("EtlCompleted"),
        "predictor": inference_part,
        "predictor-model-promoted": sample_event("ModelTrained"),
        "monitor": sample_event("FileRejected"),
        "trainingfinisher": sample_training_job_state_change(),
        "trainingfinisher-failed": sample_training_job_state_change(status="Failed"),
        "trainingfinisher-tuning": sample_tuning_job_state_change(),
        "trainingfinisher-sweep": sample_scheduled_event(),
    }


def render_event_files() -> dict[str, str]:
    """Relative path under events/ → file content."""
    files: dict[str, str] = {}
    for model in PIPELINE_DETAILS:
        name = model.detail_type
        schema = envelope_for(model).model_json_schema(by_alias=True)
        schema["$id"] = f"https://amazon-reviews-nlp/events/schemas/{name}.json"
        schema["title"] = name
        files[f"schemas/{name}.json"] = _dump(schema)
        files[f"{file_stem(name)}.json"] = _dump(sample_event(name))
    s3_schema = S3EventNotificationEventBridgeModel.model_json_schema(by_alias=True)
    s3_schema["title"] = S3_OBJECT_CREATED
    files[f"schemas/{S3_OBJECT_CREATED}.json"] = _dump(s3_schema)
    files["s3-object-created.json"] = _dump(sample_s3_object_created())
    for name, stem, detail_model, sample in (
        (
            TRAINING_JOB_STATE_CHANGE,
            "sagemaker-training-job-state-change",
            TrainingJobStateChange,
            sample_training_job_state_change(),
        ),
        (
            TUNING_JOB_STATE_CHANGE,
            "sagemaker-tuning-job-state-change",
            TuningJobStateChange,
            sample_tuning_job_state_change(),
        ),
    ):
        # What the finisher reads of SageMaker's events (they carry more; unknown fields are ignored).
        aws_schema = aws_envelope(detail_model).model_json_schema(by_alias=True)
        aws_schema["title"] = name
        files[f"schemas/{name.replace(' ', '')}.json"] = _dump(aws_schema)
        files[f"{stem}.json"] = _dump(sample)
    for index, (function, event) in enumerate(_consumer_samples().items()):
        queue = f"amazon-reviews-nlp-{function.split('-')[0]}"
        files[f"sqs/{function}.json"] = _dump(sqs_wrapped(event, queue, f"059f36b4-87a3-44ab-83d2-{index:012d}"))
    return files


def write_event_files(events_dir: Path) -> list[Path]:
    written = []
    for relative, content in render_event_files().items():
        path = events_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    events_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "events"
    for path in write_event_files(events_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
