"""The predictor handler, called with SQS-wrapped EtlCompleted and ModelTrained events, against moto in-process.

The inference parts are real MARC English reviews, read by the validator and cleaned by the ETL; the
models are the trainer's, trained on them and written by the trainer's own writer.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import pickle
import time
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reviews_model.artifacts import model_files, write_model
from services.predictor import app
from services.predictor.prediction_ledger import PredictionLedger
from services.predictor.service import ModelCache
from shared import layout
from shared.events import PredictionsCompleted
from shared.ledger import FileRecord, file_key
from shared.samples import sample_event, sqs_wrapped
from shared.storage import ObjectStore
from tests.integration.conftest import BUCKET, MotoStack, lambda_context
from tests.unit.test_trainer_core import real_etl_rows, trained

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SOURCE_KEY = "raw/inference/marc_en_train_kshot_union.csv"


@pytest.fixture
def stack(pipeline: MotoStack, monkeypatch: pytest.MonkeyPatch) -> MotoStack:
    # A cold container for each test: nothing loaded by an earlier test's bucket is reused.
    monkeypatch.setattr(app, "MODELS", ModelCache())
    monkeypatch.delenv("REVIEWS_PREDICTOR_WRITE_CSV", raising=False)
    return pipeline


def store(stack: MotoStack) -> ObjectStore:
    return ObjectStore(stack.aws.s3, BUCKET)


def promote(stack: MotoStack, version: str) -> None:
    """Write a version as the trainer does and make it current (models/current.json last)."""
    prefix = layout.model_prefix(version)
    write_model(store(stack), prefix, model_files(trained().model, version))
    store(stack).write_json(layout.current_model_pointer_key(), {"version": version, "model_prefix": prefix})


def inference_parts(count: int) -> list[pa.Table]:
    """A few hundred real reviews split into `count` consecutive parts, row numbers of the root file kept."""
    table = real_etl_rows()
    table = table.take(np.arange(0, table.num_rows, 10))
    bounds = np.linspace(0, table.num_rows, count + 1).astype(int)
    return [table.slice(start, stop - start) for start, stop in itertools.pairwise(bounds)]


def new_root(stack: MotoStack, parts: list[pa.Table | None]) -> tuple[str, list[dict[str, Any]]]:
    """A root inference file in the ledger, its parts' etl/ parquet, and one EtlCompleted event per part.

    A None part is one that was rejected upstream: its event has no etl_key.
    """
    root = uuid.uuid4().hex
    stack.ledger.register(
        FileRecord(
            file_id=root,
            root_file_id=root,
            correlation_id=root,
            bucket=BUCKET,
            key=SOURCE_KEY,
            dataset="inference",
            origin="s3",
            status="chunked" if len(parts) > 1 else "validated",
            stage="etl",
        )
    )
    events = []
    for index, table in enumerate(parts):
        part_index = index if len(parts) > 1 else None
        etl_key = None
        if table is not None:
            etl_key = layout.etl_key("inference", root, part_index)
            sink = io.BytesIO()
            pq.write_table(table, sink)
            stack.aws.s3.put_object(Bucket=BUCKET, Key=etl_key, Body=sink.getvalue())
        event = sample_event("EtlCompleted")
        event["detail"].update(
            correlation_id=root,
            file_id=uuid.uuid4().hex if len(parts) > 1 else root,
            root_file_id=root,
            dataset="inference",
            processed_key=None if table is None else layout.processed_key("inference", root, part_index),
            etl_key=etl_key,
            skipped_reason=None if table is not None else "rejected by the validator (columns): no text",
            rows_in=0 if table is None else table.num_rows,
            rows_out=0 if table is None else table.num_rows,
            rows_dropped={},
            part_index=part_index,
            part_count=len(parts),
            root_complete=index == len(parts) - 1,
        )
        events.append(event)
    return root, events


def model_trained(version: str) -> dict[str, Any]:
    event = sample_event("ModelTrained")
    event["detail"].update(version=version, model_prefix=layout.model_prefix(version), promoted=True)
    return event


def run_predictor(event: dict[str, Any]) -> dict[str, Any]:
    """One delivery of `event` (a new message id each time, as SQS gives a redelivery)."""
    event = {**event, "id": str(uuid.uuid4())}
    wrapped = sqs_wrapped(event, "predictor-queue", str(uuid.uuid4()))
    result: dict[str, Any] = app.lambda_handler(wrapped, lambda_context("predictor", 2048, 300_000))
    return result


def read_predictions(stack: MotoStack, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store(stack).read_bytes(key)))


def pending_items(stack: MotoStack, root: str) -> list[dict[str, Any]]:
    return stack.aws.dynamodb.query(
        TableName=stack.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :pending)",
        ExpressionAttributeValues={":pk": {"S": file_key(root)}, ":pending": {"S": "PENDING#predictions#"}},
    )["Items"]


def test_a_file_that_arrives_before_any_model_waits_and_is_predicted_when_one_is_promoted(stack: MotoStack) -> None:
    # Given a two-part inference file, one part rejected upstream, and no model yet
    (first,) = inference_parts(1)
    root, events = new_root(stack, [first, None])

    # When its parts arrive
    for event in events:
        assert run_predictor(event) == {"batchItemFailures": []}

    # Then it waits: ledger status, one pending item per part, nothing predicted or announced
    assert stack.record(root).stages["predictions"] == "waiting_for_model"
    assert [item["sk"]["S"] for item in pending_items(stack, root)] == [
        "PENDING#predictions#00000",
        "PENDING#predictions#00001",
    ]
    assert list(store(stack).keys(f"predictions/{root}/")) == []
    assert stack.details("PredictionsCompleted") == []

    # When a model is promoted, and its ModelTrained arrives (twice)
    promote(stack, "v1.0")
    assert run_predictor(model_trained("v1.0")) == {"batchItemFailures": []}
    assert run_predictor(model_trained("v1.0")) == {"batchItemFailures": []}

    # Then the file is predicted with no other step, and announced once
    (completed,) = stack.details("PredictionsCompleted")
    PredictionsCompleted.model_validate(completed)
    assert completed["rows"] == first.num_rows
    assert completed["model_version"] == "v1.0"
    assert completed["prediction_keys"] == [f"predictions/{root}/part-00000.parquet"]
    predictions = read_predictions(stack, completed["prediction_keys"][0])
    assert predictions.column("row_number").equals(first.column("row_number"))
    assert set(predictions.column("source_key").to_pylist()) == {SOURCE_KEY}
    # The skipped part is accounted for with no rows and no file
    manifest = store(stack).read_json(completed["manifest_key"])
    assert [(part["part_index"], part["rows"], part["key"]) for part in manifest["parts"]] == [
        (0, first.num_rows, completed["prediction_keys"][0]),
        (1, 0, None),
    ]
    assert "rejected by the validator" in manifest["parts"][1]["skipped_reason"]
    record = stack.record(root)
    assert record.stages["predictions"] == "completed"
    assert record.counters["predicted_rows"] == first.num_rows
    assert pending_items(stack, root) == []


def test_every_part_of_a_file_is_predicted_by_the_version_pinned_at_its_first_part(stack: MotoStack) -> None:
    # Given v1.0 current when the first part of a file is predicted
    promote(stack, "v1.0")
    root, events = new_root(stack, inference_parts(3))
    assert run_predictor(events[0]) == {"batchItemFailures": []}

    # When v1.1 is promoted before the other parts arrive
    promote(stack, "v1.1")
    for event in events[1:]:
        assert run_predictor(event) == {"batchItemFailures": []}

    # Then every part says v1.0, and so do the manifest and the event
    for index in range(3):
        predictions = read_predictions(stack, layout.predictions_key(root, index))
        assert set(predictions.column("model_version").to_pylist()) == {"v1.0"}
    (completed,) = stack.details("PredictionsCompleted")
    assert completed["model_version"] == "v1.0"
    assert store(stack).read_json(completed["manifest_key"])["model_version"] == "v1.0"
    # And a file arriving now is predicted by v1.1
    other, (single,) = new_root(stack, inference_parts(1))
    run_predictor(single)
    assert set(read_predictions(stack, layout.predictions_key(other, None)).column("model_version").to_pylist()) == {
        "v1.1"
    }


def test_a_file_is_announced_once_whatever_the_order_and_repetition_of_its_parts(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWS_PREDICTOR_WRITE_CSV", "true")
    promote(stack, "v1.0")
    parts = inference_parts(3)
    root, events = new_root(stack, parts)

    # When the parts arrive out of order, each of them more than once
    for index in (2, 0, 2, 1, 0, 1, 2):
        assert run_predictor(events[index]) == {"batchItemFailures": []}

    # Then exactly one PredictionsCompleted, with every part and row
    (completed,) = stack.details("PredictionsCompleted")
    assert completed["rows"] == sum(part.num_rows for part in parts)
    assert completed["prediction_keys"] == [layout.predictions_key(root, index) for index in range(3)]
    # The parts, read in order, give the root file's rows in order
    row_numbers = [read_predictions(stack, key).column("row_number") for key in completed["prediction_keys"]]
    assert pa.chunked_array(row_numbers).to_pylist() == pa.concat_tables(parts).column("row_number").to_pylist()
    # The manifest's checksums are the files' own, CSV included
    manifest = store(stack).read_json(completed["manifest_key"])
    assert (manifest["rows"], manifest["source_key"], manifest["part_count"]) == (completed["rows"], SOURCE_KEY, 3)
    for part in manifest["parts"]:
        assert hashlib.sha256(store(stack).read_bytes(part["key"])).hexdigest() == part["sha256"]
        assert part["csv_key"].endswith(".csv")
        assert hashlib.sha256(store(stack).read_bytes(part["csv_key"])).hexdigest() == part["csv_sha256"]
    assert stack.record(root).stages["predictions"] == "completed"


@pytest.mark.parametrize("planted", ["pointer", "version"])
def test_a_pickle_where_a_model_should_be_is_refused(
    stack: MotoStack, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a pickle as models/current.json, or beside the files of the version it names
    payload = pickle.dumps({"anything": 1})
    if planted == "pointer":
        stack.aws.s3.put_object(Bucket=BUCKET, Key=layout.current_model_pointer_key(), Body=payload)
    else:
        promote(stack, "v1.0")
        stack.aws.s3.put_object(Bucket=BUCKET, Key="models/v1.0/model.pkl", Body=payload)
    _, (event,) = new_root(stack, inference_parts(1))

    # When a part arrives
    wrapped = sqs_wrapped({**event, "id": str(uuid.uuid4())}, "predictor-queue", "message-1")
    result = app.lambda_handler(wrapped, lambda_context("predictor", 2048, 300_000))

    # Then the message fails (retried, then the DLQ), nothing is written, and the log says why
    assert result == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    assert list(store(stack).keys("predictions/")) == []
    assert stack.details("PredictionsCompleted") == []
    (refusal,) = [record for record in caplog.records if "refusing to load the model" in record.getMessage()]
    assert refusal.levelname == "ERROR"
    reason = str(getattr(refusal, "reason", ""))
    assert "not a JSON document" in reason if planted == "pointer" else "not plain data" in reason


def test_a_model_promoted_while_a_part_is_being_parked_still_predicts_it(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a model promoted just after the predictor found none (its ModelTrained saw no waiting file)
    class PromotedMeanwhile(ModelCache):
        def current_version(self, store: ObjectStore) -> str | None:
            if not self.checked:
                self.checked = True
                promote(stack, "v1.0")
                return None
            return super().current_version(store)

        checked = False

    monkeypatch.setattr(app, "MODELS", PromotedMeanwhile())
    (part,) = inference_parts(1)
    root, (event,) = new_root(stack, [part])

    # When the part arrives
    assert run_predictor(event) == {"batchItemFailures": []}

    # Then the second look at the pointer predicts it: nothing is left waiting
    (completed,) = stack.details("PredictionsCompleted")
    assert (completed["root_file_id"], completed["rows"]) == (root, part.num_rows)
    assert pending_items(stack, root) == []
    assert stack.record(root).stages["predictions"] == "completed"


def file_waiting_when_v1_0_is_promoted(stack: MotoStack, parts: list[pa.Table]) -> tuple[str, PredictionLedger]:
    """A file whose parts all arrived before any model, then v1.0 promoted (its ModelTrained not yet handled)."""
    root, events = new_root(stack, list(parts))
    for event in events:
        assert run_predictor(event) == {"batchItemFailures": []}
    promote(stack, "v1.0")
    return root, PredictionLedger(stack.aws.dynamodb, stack.table)


def assert_announced_with_nothing_waiting(stack: MotoStack, root: str, parts: list[pa.Table]) -> None:
    (completed,) = stack.details("PredictionsCompleted")
    assert completed["rows"] == sum(part.num_rows for part in parts)
    assert pending_items(stack, root) == []


def test_a_promotion_retried_after_a_crash_predicts_the_parts_its_first_attempt_claimed(stack: MotoStack) -> None:
    # Given a file waiting for a model, and a first handling of the promotion that claimed part 0 for
    # its own lifetime, moved the file off `waiting_for_model`, and then died (its worker was killed)
    parts = inference_parts(2)
    root, claims = file_waiting_when_v1_0_is_promoted(stack, parts)
    (first_part, _) = claims.parked(root)
    assert claims.take_lease(first_part, seconds=1)
    stack.ledger.set_stage_status(root, "predictions", "predicting")
    time.sleep(2.1)  # the crashed invocation's lifetime is over before SQS delivers the message again

    # When the promotion is delivered again
    assert run_predictor(model_trained("v1.0")) == {"batchItemFailures": []}

    # Then both parts are predicted and the file is announced, nothing left waiting
    assert_announced_with_nothing_waiting(stack, root, parts)


def test_a_promotion_fails_and_comes_back_while_another_invocation_holds_a_waiting_part(stack: MotoStack) -> None:
    # Given a file waiting for a model, one of its parts claimed by an invocation still running
    parts = inference_parts(2)
    root, claims = file_waiting_when_v1_0_is_promoted(stack, parts)
    (_, second_part) = claims.parked(root)
    assert claims.take_lease(second_part, seconds=2)

    # When the promotion arrives, it predicts what it can and fails the message for the rest
    first = run_predictor(model_trained("v1.0"))
    assert len(first["batchItemFailures"]) == 1
    assert [item["sk"]["S"] for item in pending_items(stack, root)] == ["PENDING#predictions#00001"]
    assert stack.details("PredictionsCompleted") == []

    # Then, delivered again once the claim has lapsed (its holder died), it finishes the file
    time.sleep(3.1)
    assert run_predictor(model_trained("v1.0")) == {"batchItemFailures": []}
    assert_announced_with_nothing_waiting(stack, root, parts)
