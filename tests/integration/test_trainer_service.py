"""The trainer handler, called with SQS-wrapped EtlCompleted events, against moto in-process.

The etl/train/ corpus is real MARC English reviews, read by the validator and cleaned by the ETL,
written as two root files' parquet; what the handler publishes is read back from the stack's queue.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
import uuid
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reviews_model.artifacts import UnsafeModelError, load_model, read_current_pointer
from reviews_model.versions import Version
from services.etl.transform import EtlSettings, transform_table
from services.trainer import sagemaker_entry
from services.trainer.app import finisher_handler, lambda_handler
from services.trainer.hyperparameters import grid, setting_names
from services.trainer.service import trainer_service
from services.trainer.versions import ModelRegistry
from services.validator.validation import Accepted, InMemoryBytes, ValidatorSettings, examine_file
from shared import layout
from shared.events import ModelTrained, TrainingSkipped
from shared.ledger import FileRecord
from shared.observability import observability_for
from shared.sagemaker_events import SCHEDULED_EVENT, TRAINING_JOB_STATE_CHANGE, TUNING_JOB_STATE_CHANGE
from shared.samples import sample_event, sqs_wrapped
from shared.storage import ObjectStore
from tests.data_paths import SAMPLES
from tests.integration.conftest import ACCOUNT_ID, BUCKET, REGION, MotoStack, lambda_context
from tests.unit.test_trainer_core import real_etl_rows

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

FAST = {"MODEL__FOLDS": "3", "MODEL__MAX_ROUNDS": "200", "MODEL__EARLY_STOPPING_ROUNDS": "20"}
JOBS = {
    "JOB_PREFIX": "reviews-test",
    "TRAINING_IMAGE": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/amazon-reviews-nlp-training:test",
    "SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/reviews-test-sagemaker-training",
    "INSTANCE_TYPE": "ml.m5.xlarge",
    "MAX_RUNTIME_SECONDS": "3600",
}


@pytest.fixture
def stack(pipeline: MotoStack, monkeypatch: pytest.MonkeyPatch) -> MotoStack:
    for name, value in {**FAST, **JOBS}.items():
        monkeypatch.setenv(f"REVIEWS_TRAINER_{name}", value)
    for name in ("MIN_MACRO_F1", "SEARCH"):
        monkeypatch.delenv(f"REVIEWS_TRAINER_{name}", raising=False)
    return pipeline


def store(stack: MotoStack) -> ObjectStore:
    return ObjectStore(stack.aws.s3, BUCKET)


def registry(stack: MotoStack) -> ModelRegistry:
    return ModelRegistry(stack.aws.dynamodb, stack.table)


def put_etl_root(stack: MotoStack, table: pa.Table) -> str:
    """An etl/train/ parquet for a new root file, registered in the ledger as the ETL leaves it."""
    root = uuid.uuid4().hex
    stack.ledger.register(
        FileRecord(
            file_id=root,
            root_file_id=root,
            correlation_id=root,
            bucket=BUCKET,
            key="raw/train/marc_en_train_kshot_union.csv",
            dataset="train",
            origin="s3",
            status="validated",
            stage="etl",
        )
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    stack.aws.s3.put_object(Bucket=BUCKET, Key=layout.etl_key("train", root, None), Body=sink.getvalue())
    return root


def etl_completed(root: str, *, dataset: str = "train", root_complete: bool = True) -> dict[str, Any]:
    event = sample_event("EtlCompleted")
    event["id"] = str(uuid.uuid4())
    event["detail"].update(
        correlation_id=root,
        file_id=root,
        root_file_id=root,
        dataset=dataset,
        etl_key=layout.etl_key("train", root, None),
        root_complete=root_complete,
        part_index=None,
        part_count=1,
    )
    return event


def run_trainer(event: dict[str, Any]) -> dict[str, Any]:
    wrapped = sqs_wrapped(event, "trainer-queue", str(uuid.uuid4()))
    result: dict[str, Any] = lambda_handler(wrapped, lambda_context("trainer", 1024, 300_000))
    return result


def run_finisher(event: dict[str, Any]) -> dict[str, Any]:
    wrapped = sqs_wrapped(event, "training-finisher-queue", str(uuid.uuid4()))
    result: dict[str, Any] = finisher_handler(wrapped, lambda_context("trainingfinisher", 4096, 900_000))
    return result


def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def state_change(detail: dict[str, Any], detail_type: str = TRAINING_JOB_STATE_CHANGE) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.sagemaker",
        "account": ACCOUNT_ID,
        "time": "2026-12-01T12:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def run_container(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch, root: Path, hyperparameters: dict[str, str], channels: Any
) -> int:
    """Lay out /opt/ml under `root` (hyperparameters, every channel's objects) and run the training image's
    entry point on it, as SageMaker would; its exit code."""
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    for channel in channels:
        prefix = channel["DataSource"]["S3DataSource"]["S3Uri"].removeprefix(f"s3://{BUCKET}/")
        for key in store(stack).keys(prefix):
            target = root / "input" / "data" / channel["ChannelName"] / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(store(stack).read_bytes(key))
    monkeypatch.setenv("REVIEWS_SAGEMAKER_ROOT", str(root))
    return sagemaker_entry.main(["train"])


def upload_model(stack: MotoStack, root: Path, name: str) -> str:
    """/opt/ml/model/ under `root` as SageMaker uploads it: model.tar.gz at the job's artifact key; the key."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted((root / "model").rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(root / "model").as_posix())
    key = layout.training_artifact_key(name)
    stack.aws.s3.put_object(Bucket=BUCKET, Key=key, Body=archive.getvalue())
    return key


def play_training_job(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, **overrides: str
) -> dict[str, Any]:
    """Do what SageMaker does with the job the trainer created: lay out /opt/ml from its channels, run the
    training image's entry point, upload /opt/ml/model/ as model.tar.gz; the state-change event it would send."""
    job = sagemaker().describe_training_job(TrainingJobName=name)
    root = tmp_path / name
    exit_code = run_container(stack, monkeypatch, root, {**job["HyperParameters"], **overrides}, job["InputDataConfig"])
    detail: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": job["TrainingJobArn"],
        "HyperParameters": job["HyperParameters"],
    }
    if exit_code != 0:
        failure = (root / "output" / "failure").read_text()
        return state_change({**detail, "TrainingJobStatus": "Failed", "FailureReason": failure})
    key = upload_model(stack, root, name)
    return state_change(
        {**detail, "TrainingJobStatus": "Completed", "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{key}"}}
    )


def launched_jobs() -> list[str]:
    return sorted(job["TrainingJobName"] for job in sagemaker().list_training_jobs()["TrainingJobSummaries"])


def train_through_sagemaker(stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: str) -> str:
    """Trigger for `root`, play the job it launched, finish it; the job's name."""
    before = set(launched_jobs())
    assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}
    (name,) = set(launched_jobs()) - before
    assert run_finisher(play_training_job(stack, tmp_path, monkeypatch, name)) == {"batchItemFailures": []}
    return name


def halves() -> tuple[pa.Table, pa.Table]:
    table = real_etl_rows()
    return table.take(np.arange(0, table.num_rows, 2)), table.take(np.arange(1, table.num_rows, 2))


def gift_card_head(reviews: int) -> pa.Table:
    """The first reviews of the AWS Gift Card sample, read and cleaned as the pipeline does: a user's small file."""
    lines = (SAMPLES / "train" / "amazon_reviews_us_Gift_Card_v1_00.tsv").read_bytes().splitlines(keepends=True)
    verdict = examine_file(InMemoryBytes(b"".join(lines[: reviews + 1])), dataset="train", limits=ValidatorSettings())
    assert isinstance(verdict, Accepted)
    table, _ = transform_table(verdict.rows.table, EtlSettings())
    return table


def mark_etl_complete(stack: MotoStack, root: str) -> None:
    stack.ledger.set_parts_expected(root, "etl", 1)
    assert stack.ledger.record_part_done(root, "etl", 0).completed_now


def test_a_complete_training_root_launches_one_sagemaker_job_carrying_every_setting(
    stack: MotoStack, tmp_path: Path
) -> None:
    # Given one root file's reviews in etl/train/
    first, _ = halves()
    root = put_etl_root(stack, first)
    mark_etl_complete(stack, root)
    before = set(launched_jobs())

    # When its last part's EtlCompleted arrives (twice: a redelivery)
    assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}
    assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}

    # Then one training job was created, for v1.0, and nothing is trained or published yet
    (name,) = set(launched_jobs()) - before
    assert name.startswith("reviews-test-v1-0-") and len(name) <= 32
    job = sagemaker().describe_training_job(TrainingJobName=name)
    hyperparameters = job["HyperParameters"]
    assert hyperparameters["version"] == "v1.0"
    assert (hyperparameters["model.folds"], hyperparameters["label_target"]) == ("3", "sentiment3")
    assert set(hyperparameters) == {*setting_names(), "version"}
    assert [channel["ChannelName"] for channel in job["InputDataConfig"]] == ["train"]  # no current model yet
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/etl/train/"
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/models/training-jobs/"
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert job["RoleArn"] == JOBS["SAGEMAKER_ROLE_ARN"]
    assert job["AlgorithmSpecification"]["TrainingImage"] == JOBS["TRAINING_IMAGE"]
    assert stack.details("ModelTrained") == []
    (run,) = registry(stack).runs()
    assert (run["job_name"], run["status"], run["version"], run["trigger_root_file_id"]) == (
        name,
        "running",
        "v1.0",
        root,
    )
    assert stack.record(root).stages["training"] == f"running v1.0 (SageMaker job {name})"


def test_a_completed_job_is_written_promoted_and_published_once(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a training job launched for one root file, which SageMaker ran to completion
    first, _ = halves()
    root = put_etl_root(stack, first)
    mark_etl_complete(stack, root)
    run_trainer(etl_completed(root))
    name = registry(stack).runs()[0]["job_name"]
    completed = play_training_job(stack, tmp_path, monkeypatch, name)

    # When its state change arrives, three times (SageMaker may send several)
    for _ in range(3):
        assert run_finisher(completed) == {"batchItemFailures": []}

    # Then one ModelTrained: v1.0, promoted, with test metrics and the job named
    (trained,) = stack.details("ModelTrained")
    ModelTrained.model_validate(trained)
    assert (trained["version"], trained["promoted"], trained["reason"], trained["status"]) == (
        "v1.0",
        True,
        None,
        "trained",
    )
    assert (trained["engine"], trained["training_job"], trained["trigger_root_file_id"]) == ("sagemaker", name, root)
    assert trained["metrics"]["macro_f1"] > 0.45
    # And the version, current and index are written once, current.json naming v1.0
    keys = set(store(stack).keys("models/"))
    assert {"models/v1.0/manifest.json", "models/v1.0/booster.ubj", "models/current/manifest.json"} <= keys
    assert {"models/current.json", "models/index.json"} <= keys
    assert not any(key.endswith((".pkl", ".pickle", ".joblib")) for key in keys)
    assert read_current_pointer(store(stack).read_bytes(layout.current_model_pointer_key())) == "v1.0"
    assert load_model(store(stack), layout.CURRENT_MODEL_PREFIX).classes == ("negative", "neutral", "positive")
    written = [key for key, _, _ in stack.object_versions() if key.startswith("models/v1.0/")]
    assert len(written) == len(set(written)), "a duplicate state change rewrote the version"
    index = store(stack).read_json(layout.model_index_key())
    assert [(entry["version"], entry["status"]) for entry in index["versions"]] == [("v1.0", "promoted")]
    assert index["versions"][0]["validation_macro_f1"] > 0.3
    # And the report
    report = set(store(stack).keys(layout.metrics_prefix("v1.0")))
    assert {
        f"monitoring/metrics/v1.0/{name}"
        for name in ("metrics.json", "report.html", "confusion_matrix.png", "f1_per_class.png", "top_ngrams.png")
    } <= report
    # And the ledger: the trigger's training completed, the run finished
    assert stack.record(root).stages["training"] == "completed"
    assert registry(stack).run(name)["status"] == "Completed"  # type: ignore[index]


def test_a_failed_job_marks_the_version_failed_and_the_next_trigger_trains_again(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a training job whose container fails: no n-gram is in a million reviews
    first, second = halves()
    failing_root = put_etl_root(stack, first)
    mark_etl_complete(stack, failing_root)
    run_trainer(etl_completed(failing_root))
    name = registry(stack).runs()[0]["job_name"]
    failed = play_training_job(stack, tmp_path, monkeypatch, name, **{"features.min_df": "1000000"})
    assert failed["detail"]["TrainingJobStatus"] == "Failed"

    # When its Failed state change arrives (twice)
    assert run_finisher(failed) == {"batchItemFailures": []}
    assert run_finisher(failed) == {"batchItemFailures": []}

    # Then v1.0 is failed, ModelTrained says so once, nothing is promoted
    (trained,) = stack.details("ModelTrained")
    assert (trained["version"], trained["status"], trained["promoted"], trained["metrics"]) == (
        "v1.0",
        "failed",
        False,
        {},
    )
    assert "min_df" in trained["failure_reason"] or "no terms remain" in trained["failure_reason"]
    assert [(entry["version"], entry["status"]) for entry in registry(stack).versions()] == [("v1.0", "failed")]
    assert registry(stack).current() is None
    assert "models/current.json" not in set(store(stack).keys("models/"))
    assert stack.record(failing_root).stages["training"].startswith("failed: v1.0: training job")

    # When the next training file completes its ETL
    root = put_etl_root(stack, second)
    mark_etl_complete(stack, root)
    name = train_through_sagemaker(stack, tmp_path, monkeypatch, root)

    # Then it trains v1.1 on both files and promotes it; the failed root is covered by it
    _, retrained = stack.details("ModelTrained")
    assert (retrained["version"], retrained["promoted"], retrained["training_job"]) == ("v1.1", True, name)
    assert stack.record(failing_root).stages["training"] == "covered by v1.1"
    assert registry(stack).current() == Version(1, 1)


def test_a_corpus_too_small_to_train_is_skipped_and_a_later_file_trains_on_everything(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given only a 20-review file in etl/train/: 2 negative, no neutral, 18 positive
    small = put_etl_root(stack, gift_card_head(20))
    mark_etl_complete(stack, small)
    before = set(launched_jobs())

    # When its EtlCompleted arrives (twice: a redelivery)
    assert run_trainer(etl_completed(small)) == {"batchItemFailures": []}
    assert run_trainer(etl_completed(small)) == {"batchItemFailures": []}

    # Then the message is acknowledged with one TrainingSkipped that says why, with the counts
    (skipped,) = stack.details("TrainingSkipped")
    TrainingSkipped.model_validate(skipped)
    assert skipped["class_counts"] == {"negative": 2, "neutral": 0, "positive": 18}
    assert (skipped["min_reviews_per_class"], skipped["label_target"]) == (10, "sentiment3")
    assert (skipped["trigger_root_file_id"], skipped["correlation_id"], skipped["etl_files"]) == (small, small, 1)
    assert skipped["reason"].startswith(
        "no model trained: too few labelled reviews, need 10 per class, have negative 2, neutral 0, positive 18"
    )
    # And no job was launched, nothing written or numbered
    assert set(launched_jobs()) == before
    assert list(store(stack).keys("models/")) == []
    assert registry(stack).versions() == []
    assert stack.record(small).stages["training"].startswith("skipped: too few labelled reviews")

    # When a file with enough reviews completes its ETL later
    first, _ = halves()
    root = put_etl_root(stack, first)
    mark_etl_complete(stack, root)
    train_through_sagemaker(stack, tmp_path, monkeypatch, root)

    # Then it trains the first version on the whole corpus, the small file's reviews included
    (trained,) = stack.details("ModelTrained")
    assert (trained["version"], trained["promoted"], trained["trigger_root_file_id"]) == ("v1.0", True, root)
    details = store(stack).read_json(layout.model_index_key())["versions"]
    assert [(entry["version"], entry["etl_files"]) for entry in details] == [("v1.0", 2)]
    assert stack.record(root).stages["training"] == "completed"
    assert stack.record(small).stages["training"] == "covered by v1.0"
    assert len(stack.details("TrainingSkipped")) == 1


def test_other_etl_events_do_not_train(stack: MotoStack) -> None:
    first, _ = halves()
    root = put_etl_root(stack, first)
    before = set(launched_jobs())
    assert run_trainer(etl_completed(root, root_complete=False)) == {"batchItemFailures": []}
    assert run_trainer(etl_completed(root, dataset="inference")) == {"batchItemFailures": []}
    assert set(launched_jobs()) == before
    assert registry(stack).runs() == []


def test_a_trigger_whose_file_a_launched_training_covers_launches_nothing_more(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two root files whose ETL completed before any training was launched (their triggers queued)
    first, second = halves()
    roots = [put_etl_root(stack, table) for table in (first, second)]
    for root in roots:
        mark_etl_complete(stack, root)

    # When both triggers are handled one after the other, the first job still running
    assert run_trainer(etl_completed(roots[0])) == {"batchItemFailures": []}
    assert stack.record(roots[1]).stages["training"] == "in training for v1.0"
    assert run_trainer(etl_completed(roots[1])) == {"batchItemFailures": []}

    # Then one job covers both files
    (run,) = registry(stack).runs()
    assert run["covered_roots"] == [roots[1]]
    run_finisher(play_training_job(stack, tmp_path, monkeypatch, run["job_name"]))
    (trained,) = stack.details("ModelTrained")
    assert trained["trigger_root_file_id"] == roots[0]
    assert stack.record(roots[0]).stages["training"] == "completed"
    assert stack.record(roots[1]).stages["training"] == "covered by v1.0"


def test_a_retraining_below_the_floor_is_kept_but_not_promoted(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = halves()
    train_through_sagemaker(stack, tmp_path, monkeypatch, put_etl_root(stack, first))
    # Given a floor no model reaches
    monkeypatch.setenv("REVIEWS_TRAINER_MIN_MACRO_F1", "0.99")
    # When a second root file triggers training on the whole corpus
    root = put_etl_root(stack, second)
    train_through_sagemaker(stack, tmp_path, monkeypatch, root)
    # Then v1.1 is written and indexed, not promoted, and current still names v1.0
    _, retrained = stack.details("ModelTrained")
    assert (retrained["version"], retrained["promoted"], retrained["previous_version"]) == ("v1.1", False, "v1.0")
    assert "floor" in retrained["reason"]
    assert store(stack).read_json(layout.current_model_pointer_key())["version"] == "v1.0"
    index = store(stack).read_json(layout.model_index_key())
    assert [entry["status"] for entry in index["versions"]] == ["promoted", "not_promoted"]
    assert "models/v1.1/manifest.json" in set(store(stack).keys("models/v1.1/"))
    # And the second job read the current model as its `current` channel, to score it on the same split
    job = sagemaker().describe_training_job(TrainingJobName=registry(stack).runs()[1]["job_name"])
    assert [channel["ChannelName"] for channel in job["InputDataConfig"]] == ["train", "current"]


def two_jobs_at_once(stack: MotoStack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two running jobs, as two launchers racing (at most two run at once) can leave them."""
    first, second = halves()
    early = put_etl_root(stack, first)
    mark_etl_complete(stack, early)
    run_trainer(etl_completed(early))
    late = put_etl_root(stack, second)
    mark_etl_complete(stack, late)
    trainer_service(observability_for("trainer")).launch(late, late)
    early_run, late_run = registry(stack).runs()
    assert (early_run["version"], late_run["version"]) == ("v1.0", "v1.1")
    return early_run, late_run


def model_trained_event(detail: dict[str, Any]) -> dict[str, Any]:
    event = sample_event("ModelTrained")
    return {**event, "id": str(uuid.uuid4()), "detail": detail}


def test_a_trigger_while_a_job_runs_waits_and_the_jobs_end_trains_once_on_every_file_that_waited(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job running for one file, and two more files whose ETL completes meanwhile
    first, second = halves()
    running_root = put_etl_root(stack, first)
    mark_etl_complete(stack, running_root)
    run_trainer(etl_completed(running_root))
    waiting_roots = [put_etl_root(stack, half) for half in halves_of(second)]
    for root in waiting_roots:
        mark_etl_complete(stack, root)
        assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}

    # Then they launch nothing and wait for it
    (run,) = registry(stack).runs()
    for root in waiting_roots:
        assert stack.record(root).stages["training"] == "waiting for v1.0 to finish"

    # When the running job ends and its ModelTrained reaches the launcher (twice: a redelivery)
    run_finisher(play_training_job(stack, tmp_path, monkeypatch, run["job_name"]))
    (trained,) = stack.details("ModelTrained")
    assert run_trainer(model_trained_event(trained)) == {"batchItemFailures": []}
    assert run_trainer(model_trained_event(trained)) == {"batchItemFailures": []}

    # Then one more job trains on everything, covering both files that waited
    _, follow_up = registry(stack).runs()
    trigger, covered = sorted(waiting_roots)  # the first waiting root (by id) triggers, the rest are covered
    assert (follow_up["version"], follow_up["trigger_root_file_id"]) == ("v1.1", trigger)
    assert follow_up["covered_roots"] == [covered]
    assert len(registry(stack).runs()) == 2
    run_finisher(play_training_job(stack, tmp_path, monkeypatch, follow_up["job_name"]))
    assert stack.record(trigger).stages["training"] == "completed"
    assert stack.record(covered).stages["training"] == "covered by v1.1"
    # And its own ModelTrained finds nobody waiting: no third job
    _, last = stack.details("ModelTrained")
    run_trainer(model_trained_event(last))
    assert len(registry(stack).runs()) == 2


def halves_of(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    return table.take(np.arange(0, table.num_rows, 2)), table.take(np.arange(1, table.num_rows, 2))


def test_a_version_promoted_while_a_job_ran_is_compared_on_that_jobs_test_split(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two jobs running at once, the later launched before any model was current
    early_run, late_run = two_jobs_at_once(stack)

    # When the earlier one finishes first (promoted), then the later one
    run_finisher(play_training_job(stack, tmp_path, monkeypatch, early_run["job_name"]))
    run_finisher(play_training_job(stack, tmp_path, monkeypatch, late_run["job_name"]))

    # Then the later one was compared with v1.0, scored here on the later job's own test split
    earlier, later = stack.details("ModelTrained")
    assert (earlier["version"], earlier["promoted"], earlier["previous_version"]) == ("v1.0", True, None)
    assert (later["version"], later["previous_version"]) == ("v1.1", "v1.0")
    assert later["promoted"] or "below the current model v1.0" in later["reason"]
    current = registry(stack).current()
    assert str(current) == ("v1.1" if later["promoted"] else "v1.0")
    assert store(stack).read_json(layout.current_model_pointer_key())["version"] == str(current)


def test_an_earlier_launch_finishing_last_never_replaces_a_later_current(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two jobs running at once
    early_run, late_run = two_jobs_at_once(stack)

    # When the later one finishes first, then the earlier one
    run_finisher(play_training_job(stack, tmp_path, monkeypatch, late_run["job_name"]))
    run_finisher(play_training_job(stack, tmp_path, monkeypatch, early_run["job_name"]))

    # Then v1.1 stays current: v1.0 read fewer files, whatever it scores on its own older split
    later, earlier = stack.details("ModelTrained")
    assert (later["version"], later["promoted"]) == ("v1.1", True)
    assert (earlier["version"], earlier["promoted"], earlier["previous_version"]) == ("v1.0", False, "v1.1")
    assert earlier["reason"] == "v1.1, launched after v1.0 on a corpus that holds all of its files, is already current"
    assert registry(stack).current() == Version(1, 1)
    assert store(stack).read_json(layout.current_model_pointer_key())["version"] == "v1.1"


def test_a_job_whose_event_never_came_is_finished_by_the_sweeper_past_its_deadline(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job that ran to completion, whose state-change event was lost
    first, _ = halves()
    root = put_etl_root(stack, first)
    mark_etl_complete(stack, root)
    run_trainer(etl_completed(root))
    (run,) = registry(stack).runs()
    play_training_job(stack, tmp_path, monkeypatch, run["job_name"])
    schedule = {**state_change({}, SCHEDULED_EVENT), "source": "aws.events"}

    # When the sweeper runs before the deadline, nothing is finished: SageMaker may still be training
    assert run_finisher(schedule) == {"batchItemFailures": []}
    assert stack.details("ModelTrained") == []

    # When it runs after the deadline (max runtime + grace), SageMaker's own answer finishes the job
    monkeypatch.setenv("REVIEWS_TRAINER_SWEEP_GRACE_SECONDS", "0")
    monkeypatch.setenv("REVIEWS_TRAINER_MAX_RUNTIME_SECONDS", "60")
    runs = registry(stack)
    runs.record_run(run["job_name"], Version(1, 0), kind="training", deadline=0.0, details=_run_details(run))
    assert run_finisher(schedule) == {"batchItemFailures": []}
    (trained,) = stack.details("ModelTrained")
    assert (trained["version"], trained["promoted"]) == ("v1.0", True)
    assert registry(stack).run(run["job_name"])["status"] == "Completed"  # type: ignore[index]


def _run_details(run: dict[str, Any]) -> dict[str, Any]:
    return {
        name: run[name]
        for name in ("trigger_root_file_id", "correlation_id", "covered_roots", "compared_with", "search_space")
    }


def test_a_pickle_under_models_current_is_refused(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = halves()
    train_through_sagemaker(stack, tmp_path, monkeypatch, put_etl_root(stack, first))
    stack.aws.s3.put_object(Bucket=BUCKET, Key="models/current/model.pkl", Body=pickle.dumps({"x": 1}))
    with pytest.raises(UnsafeModelError, match="not plain data"):
        load_model(store(stack), layout.CURRENT_MODEL_PREFIX)


def play_tuning_job(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> list[dict[str, Any]]:
    """Do what SageMaker's Grid strategy does: one trial per combination, each with its own state change,
    then the tuning job's, naming the trial with the best objective."""
    tuning = sagemaker().describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    definition = tuning["TrainingJobDefinition"]
    ranges = tuning["HyperParameterTuningJobConfig"]["ParameterRanges"]["CategoricalParameterRanges"]
    events, objectives = [], {}
    for number, combination in enumerate(grid({entry["Name"]: entry["Values"] for entry in ranges}), start=1):
        trial = f"{name}-{number:03d}-{uuid.uuid4().hex[:8]}"
        hyperparameters = {**definition["StaticHyperParameters"], **combination}
        root = tmp_path / trial
        assert run_container(stack, monkeypatch, root, hyperparameters, definition["InputDataConfig"]) == 0
        objectives[trial] = json.loads((root / "model" / "evaluation.json").read_text())["validation_macro_f1"]
        key = upload_model(stack, root, trial)
        events.append(
            state_change(
                {
                    "TrainingJobName": trial,
                    "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:training-job/{trial}",
                    "TrainingJobStatus": "Completed",
                    "HyperParameters": hyperparameters,
                    "TuningJobArn": tuning["HyperParameterTuningJobArn"],
                    "FinalMetricDataList": [{"MetricName": "validation:macro_f1", "Value": objectives[trial]}],
                    "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{key}"},
                }
            )
        )
    best = max(objectives, key=lambda trial: objectives[trial])
    best_parameters = next(
        event["detail"]["HyperParameters"] for event in events if event["detail"]["TrainingJobName"] == best
    )
    events.append(
        state_change(
            {
                "HyperParameterTuningJobName": name,
                "HyperParameterTuningJobArn": tuning["HyperParameterTuningJobArn"],
                "HyperParameterTuningJobStatus": "Completed",
                "TrainingJobStatusCounters": {"Completed": len(objectives), "InProgress": 0, "Stopped": 0},
                "BestTrainingJob": {
                    "TrainingJobName": best,
                    "TrainingJobStatus": "Completed",
                    "TunedHyperParameters": {name: best_parameters[name] for name in combination},
                    "FinalHyperParameterTuningJobObjectiveMetric": {
                        "MetricName": "validation:macro_f1",
                        "Value": objectives[best],
                    },
                },
            },
            TUNING_JOB_STATE_CHANGE,
        )
    )
    return events


def test_a_grid_search_tunes_on_validation_and_promotes_the_best_trial(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the trainer set to search a two-point grid
    monkeypatch.setenv("REVIEWS_TRAINER_SEARCH", "grid")
    monkeypatch.setenv("REVIEWS_TRAINER_SEARCH_SPACE", json.dumps({"model.max_depth": ["3", "5"]}))
    first, _ = halves()
    root = put_etl_root(stack, first)
    mark_etl_complete(stack, root)

    # When a training file completes its ETL
    assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}

    # Then a Grid tuning job is created whose objective is the validation macro-F1, never the test split
    (run,) = registry(stack).runs()
    assert run["kind"] == "tuning"
    tuning = sagemaker().describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=run["job_name"])
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Grid"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:macro_f1"}
    assert config["ParameterRanges"]["CategoricalParameterRanges"] == [
        {"Name": "model.max_depth", "Values": ["3", "5"]}
    ]
    assert "model.max_depth" not in tuning["TrainingJobDefinition"]["StaticHyperParameters"]

    # When its trials and then the tuning job finish
    events = play_tuning_job(stack, tmp_path, monkeypatch, run["job_name"])
    for event in events:
        assert run_finisher(event) == {"batchItemFailures": []}

    # Then the best trial's model is the version, promoted, with the search in ModelTrained and the index
    (trained,) = stack.details("ModelTrained")
    search = trained["search"]
    assert (search["strategy"], search["trials"], search["objective_metric"]) == ("grid", 2, "validation:macro_f1")
    assert [result["parameters"] for result in search["results"]] == [
        {"model.max_depth": "3"},
        {"model.max_depth": "5"},
    ]
    best = max(search["results"], key=lambda result: result["objective"])
    assert search["best"]["training_job"] == best["training_job"] == trained["training_job"]
    assert (trained["version"], trained["promoted"]) == ("v1.0", True)
    (entry,) = store(stack).read_json(layout.model_index_key())["versions"]
    assert entry["search"]["best"]["parameters"] == best["parameters"]
    # And the report lists every trial
    page = store(stack).read_bytes(layout.metrics_report_key("v1.0", "report.html")).decode()
    assert "Grid search: 2 trials" in page
    # with the note of the benchmark run the defaults were chosen on
    assert "how the default configuration was chosen" in page
    assert all(result["training_job"] in page for result in search["results"])
