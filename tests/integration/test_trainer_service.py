"""The trainer handler, called with SQS-wrapped EtlCompleted events, against moto in-process.

The etl/train/ corpus is real MARC English reviews, read by the validator and cleaned by the ETL,
written as two root files' parquet; what the handler publishes is read back from the stack's queue.
"""

from __future__ import annotations

import io
import pickle
import threading
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reviews_model.artifacts import UnsafeModelError, load_model, read_current_pointer
from reviews_model.versions import Version
from services.etl.transform import EtlSettings, transform_table
from services.trainer.app import lambda_handler
from services.trainer.service import TrainingRequest, train_version
from services.trainer.training import TrainerSettings
from services.trainer.versions import ModelRegistry
from services.validator.validation import Accepted, InMemoryBytes, ValidatorSettings, examine_file
from shared import layout
from shared.events import ModelTrained, TrainingSkipped
from shared.ledger import FileRecord
from shared.samples import sample_event, sqs_wrapped
from shared.storage import ObjectStore
from tests.data_paths import SAMPLES
from tests.integration.conftest import BUCKET, MotoStack, lambda_context
from tests.unit.test_trainer_core import real_etl_rows

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

FAST = {"MODEL__FOLDS": "3", "MODEL__MAX_ROUNDS": "200", "MODEL__EARLY_STOPPING_ROUNDS": "20"}


@pytest.fixture
def stack(pipeline: MotoStack, monkeypatch: pytest.MonkeyPatch) -> MotoStack:
    for name, value in FAST.items():
        monkeypatch.setenv(f"REVIEWS_TRAINER_{name}", value)
    monkeypatch.delenv("REVIEWS_TRAINER_MIN_MACRO_F1", raising=False)
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
    result: dict[str, Any] = lambda_handler(wrapped, lambda_context("trainer", 4096, 900_000))
    return result


def halves() -> tuple[pa.Table, pa.Table]:
    table = real_etl_rows()
    return table.take(np.arange(0, table.num_rows, 2)), table.take(np.arange(1, table.num_rows, 2))


def test_a_complete_training_root_trains_writes_promotes_and_publishes(stack: MotoStack) -> None:
    # Given one root file's reviews in etl/train/
    first, _ = halves()
    root = put_etl_root(stack, first)

    # When its last part's EtlCompleted arrives (twice: a redelivery)
    assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}
    assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}

    # Then one ModelTrained: v1.0, promoted, with test metrics
    (trained,) = stack.details("ModelTrained")
    ModelTrained.model_validate(trained)
    assert (trained["version"], trained["promoted"], trained["reason"]) == ("v1.0", True, None)
    assert trained["model_prefix"] == "models/v1.0/"
    assert trained["trigger_root_file_id"] == root
    assert trained["metrics"]["macro_f1"] > 0.45
    # And the version, current and index are written, current.json naming v1.0
    keys = set(store(stack).keys("models/"))
    assert {"models/v1.0/manifest.json", "models/v1.0/booster.ubj", "models/current/manifest.json"} <= keys
    assert {"models/current.json", "models/index.json"} <= keys
    assert not any(key.endswith((".pkl", ".pickle", ".joblib")) for key in keys)
    assert read_current_pointer(store(stack).read_bytes(layout.current_model_pointer_key())) == "v1.0"
    assert load_model(store(stack), layout.model_prefix("v1.0")).classes == ("negative", "neutral", "positive")
    assert load_model(store(stack), layout.CURRENT_MODEL_PREFIX).classes == ("negative", "neutral", "positive")
    index = store(stack).read_json(layout.model_index_key())
    assert [(entry["version"], entry["status"]) for entry in index["versions"]] == [("v1.0", "promoted")]
    # And the report
    report = set(store(stack).keys(layout.metrics_prefix("v1.0")))
    assert {
        f"monitoring/metrics/v1.0/{name}"
        for name in ("metrics.json", "report.html", "confusion_matrix.png", "f1_per_class.png", "top_ngrams.png")
    } <= report
    assert store(stack).read_bytes("monitoring/metrics/v1.0/confusion_matrix.png").startswith(b"\x89PNG")
    # And the ledger records the training stage for the trigger root
    assert stack.record(root).stages["training"] == "completed"


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


def test_a_corpus_too_small_to_train_is_skipped_and_a_later_file_trains_on_everything(stack: MotoStack) -> None:
    # Given only a 20-review file in etl/train/: 2 negative, no neutral, 17 positive once de-duplicated
    small = put_etl_root(stack, gift_card_head(20))
    mark_etl_complete(stack, small)

    # When its EtlCompleted arrives (twice: a redelivery)
    assert run_trainer(etl_completed(small)) == {"batchItemFailures": []}
    assert run_trainer(etl_completed(small)) == {"batchItemFailures": []}

    # Then the message is acknowledged with one TrainingSkipped that says why, with the counts
    (skipped,) = stack.details("TrainingSkipped")
    TrainingSkipped.model_validate(skipped)
    assert skipped["class_counts"] == {"negative": 2, "neutral": 0, "positive": 17}
    assert (skipped["min_reviews_per_class"], skipped["label_target"]) == (10, "sentiment3")
    assert (skipped["trigger_root_file_id"], skipped["correlation_id"], skipped["etl_files"]) == (small, small, 1)
    assert skipped["reason"].startswith(
        "no model trained: too few labelled reviews, need 10 per class, have negative 2, neutral 0, positive 17"
    )
    # And nothing was trained, written or numbered
    assert stack.details("ModelTrained") == []
    assert list(store(stack).keys("models/")) == []
    assert list(store(stack).keys(layout.metrics_prefix("v1.0"))) == []
    assert registry(stack).versions() == []
    assert stack.record(small).stages["training"] == (
        "skipped: too few labelled reviews, need 10 per class, have negative 2, neutral 0, positive 17"
    )

    # When a file with enough reviews completes its ETL later
    first, _ = halves()
    root = put_etl_root(stack, first)
    mark_etl_complete(stack, root)
    assert run_trainer(etl_completed(root)) == {"batchItemFailures": []}

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
    assert run_trainer(etl_completed(root, root_complete=False)) == {"batchItemFailures": []}
    assert run_trainer(etl_completed(root, dataset="inference")) == {"batchItemFailures": []}
    assert stack.details("ModelTrained") == []
    assert list(store(stack).keys("models/")) == []


def test_a_trigger_whose_file_a_later_training_already_read_trains_nothing_more(stack: MotoStack) -> None:
    # Given two root files whose ETL completed before any training ran (their triggers queued)
    first, second = halves()
    roots = [put_etl_root(stack, table) for table in (first, second)]
    for root in roots:
        mark_etl_complete(stack, root)

    # When both triggers are handled one after the other
    assert run_trainer(etl_completed(roots[0])) == {"batchItemFailures": []}
    assert run_trainer(etl_completed(roots[1])) == {"batchItemFailures": []}

    # Then one training covered both files
    (trained,) = stack.details("ModelTrained")
    assert trained["trigger_root_file_id"] == roots[0]
    assert stack.record(roots[0]).stages["training"] == "completed"
    assert stack.record(roots[1]).stages["training"] == f"covered by {trained['version']}"


def test_a_retraining_below_the_floor_is_kept_but_not_promoted(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = halves()
    run_trainer(etl_completed(put_etl_root(stack, first)))
    # Given a floor no model reaches
    monkeypatch.setenv("REVIEWS_TRAINER_MIN_MACRO_F1", "0.99")
    # When a second root file triggers training on the whole corpus
    run_trainer(etl_completed(put_etl_root(stack, second)))
    # Then v1.1 is written and indexed, not promoted, and current still names v1.0
    _, retrained = stack.details("ModelTrained")
    assert (retrained["version"], retrained["promoted"], retrained["previous_version"]) == ("v1.1", False, "v1.0")
    assert "floor" in retrained["reason"]
    assert store(stack).read_json(layout.current_model_pointer_key())["version"] == "v1.0"
    index = store(stack).read_json(layout.model_index_key())
    assert [entry["status"] for entry in index["versions"]] == ["promoted", "not_promoted"]
    assert "models/v1.1/manifest.json" in set(store(stack).keys("models/v1.1/"))


def test_two_trainings_at_once_take_two_consecutive_versions_and_agree_on_current(stack: MotoStack) -> None:
    first, second = halves()
    put_etl_root(stack, first)
    put_etl_root(stack, second)
    settings = TrainerSettings()
    results: list[ModelTrained] = []
    start = threading.Barrier(2)

    def train(name: str) -> None:
        start.wait()
        result = train_version(store(stack), registry(stack), settings, TrainingRequest(name, name))
        assert isinstance(result, ModelTrained)
        results.append(result)

    threads = [threading.Thread(target=train, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(result.version for result in results) == ["v1.0", "v1.1"]
    current = registry(stack).current()
    assert current is not None and str(current) in {result.version for result in results if result.promoted}
    assert store(stack).read_json(layout.current_model_pointer_key())["version"] == str(current)
    assert load_model(store(stack), layout.CURRENT_MODEL_PREFIX) is not None
    assert [entry["version"] for entry in store(stack).read_json(layout.model_index_key())["versions"]] == [
        "v1.0",
        "v1.1",
    ]
    assert registry(stack).current() in (Version(1, 0), Version(1, 1))


def test_a_pickle_under_models_current_is_refused(stack: MotoStack) -> None:
    first, _ = halves()
    run_trainer(etl_completed(put_etl_root(stack, first)))
    stack.aws.s3.put_object(Bucket=BUCKET, Key="models/current/model.pkl", Body=pickle.dumps({"x": 1}))
    with pytest.raises(UnsafeModelError, match="not plain data"):
        load_model(store(stack), layout.CURRENT_MODEL_PREFIX)
