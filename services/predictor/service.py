"""Predicting a root file part by part against the bucket and the ledger, and finishing it once.

- A part (EtlCompleted{inference}) is predicted by the model version pinned for its root file; the
  first part to be predicted pins the version that is current then.
- Before any model is promoted, a part waits in the ledger (`PENDING#predictions#<index>`) and its
  root is `waiting_for_model`; after parking it the pointer is checked once more, so a promotion that
  landed in between (whose ModelTrained handler may already have looked for waiting parts) is not
  missed. ModelTrained{promoted} predicts every waiting part.
- Each part is counted once with the ledger's barrier; the part that completes it writes the
  manifest, marks the root `completed` and publishes PredictionsCompleted. A retry after a failure
  between completing the barrier and marking the root finishes it again (at-least-once on a crash,
  exactly once otherwise).

Models (`ModelCache`): a warm Lambda container predicts many parts, so loading a model (reading its
files, checking their hashes, building the booster) is done once per version. `models/current.json`
is re-checked with one HEAD per invocation and re-read only when its ETag changes, so a promotion is
picked up by the next message without reloading anything on the others. Every model is read through
the model package's loader (`reviews_model.artifacts.load_model`), which refuses anything that is not
plain data (UnsafeModelError: logged as such, and the message fails); a pointer that is not a JSON
document naming a version's own prefix is refused before anything under it is read. Nothing is ever
unpickled.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from reviews_model.artifacts import UnsafeModelError, load_model, read_current_pointer
from reviews_model.prediction import Classifier
from shared import layout
from shared.events import EtlCompleted, ModelTrained, PredictionsCompleted
from shared.ledger import FileLedger
from shared.publisher import EventPublisher
from shared.storage import ObjectStore

from .prediction import Lineage, PredictorSettings, predict_parquet
from .prediction_ledger import PartOutput, PredictionLedger

if TYPE_CHECKING:
    from shared.resources import PipelineResources

logger = Logger(service="predictor")

STAGE: Final = "predictions"
WAITING = "waiting_for_model"
COMPLETED = "completed"


# Without s3:ListBucket on the key, S3 answers 403 where the object is missing: both mean "no model yet".
_ABSENT = frozenset({"403", "404", "AccessDenied", "Forbidden", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class CurrentPointer:
    etag: str
    version: str


class ModelCache:
    """The current version's pointer (by ETag) and up to `capacity` loaded versions, most recent kept."""

    def __init__(self, capacity: int = 3) -> None:
        self._capacity = capacity
        self._pointer: CurrentPointer | None = None
        self._classifiers: OrderedDict[str, Classifier] = OrderedDict()

    def current_version(self, store: ObjectStore) -> str | None:
        """The version models/current.json names, or None before any promotion."""
        key = layout.current_model_pointer_key()
        try:
            head = store.head(key)
        except ClientError as error:
            if error.response["Error"]["Code"] not in _ABSENT:
                raise
            head = None
        if head is None:
            return None
        if self._pointer is None or self._pointer.etag != head.etag:
            self._pointer = CurrentPointer(etag=head.etag, version=read_current_pointer(store.read_bytes(key)))
        return self._pointer.version

    def classifier(self, store: ObjectStore, version: str, threads: int | None = None) -> Classifier:
        """The model of `version`, from models/vX.Y/ (immutable), loaded once; raises UnsafeModelError."""
        cached = self._classifiers.get(version)
        if cached is not None:
            self._classifiers.move_to_end(version)
            return cached
        classifier = Classifier.of(version, load_model(store, layout.model_prefix(version)), threads)
        self._classifiers[version] = classifier
        while len(self._classifiers) > self._capacity:
            self._classifiers.popitem(last=False)
        return classifier


class PartsClaimedElsewhereError(RuntimeError):
    """Waiting parts another invocation has claimed: this message is retried until they are done."""


@dataclass(frozen=True)
class Predictor:
    store: ObjectStore
    ledger: FileLedger
    items: PredictionLedger
    publisher: EventPublisher
    models: ModelCache
    settings: PredictorSettings
    lease_seconds: int
    """How long this invocation may hold a waiting part: until it would time out, never longer, so
    that a crashed invocation's claim has lapsed by the time its message is delivered again."""

    @classmethod
    def for_resources(cls, resources: PipelineResources, models: ModelCache, lease_seconds: int) -> Predictor:
        return cls(
            store=resources.store,
            ledger=resources.ledger,
            items=PredictionLedger(resources.clients.dynamodb, resources.settings.ledger_table),
            publisher=resources.publisher("predictor"),
            models=models,
            settings=PredictorSettings(),
            lease_seconds=lease_seconds,
        )

    # -- EtlCompleted ---------------------------------------------------------------------------

    def on_part(self, detail: EtlCompleted) -> dict[str, Any]:
        """Predict one part now, or park it until a model is promoted."""
        with _refusing_unsafe_models():
            return self._on_part(detail)

    def _on_part(self, detail: EtlCompleted) -> dict[str, Any]:
        if self.models.current_version(self.store) is not None:
            result = self.predict_part(detail)
            # Parked by an earlier delivery that failed after parking: it waits no more.
            self.items.release(detail)
            return result
        self.items.park(detail)
        self.ledger.set_stage_status(detail.root_file_id, STAGE, WAITING)
        # A model promoted since the check above: its ModelTrained may have looked for waiting parts
        # before this one was parked, so take care of it here (unless that handler got to it first).
        if self.models.current_version(self.store) is None:
            return {"status": WAITING}
        if not self.items.take_lease(detail, self.lease_seconds):
            return {"status": "taken_by_another_worker"}
        result = self.predict_part(detail)
        self.items.release(detail)
        return result

    # -- ModelTrained{promoted} -----------------------------------------------------------------

    def on_promotion(self, trained: ModelTrained) -> dict[str, Any]:
        """Predict every part that was waiting for a model; raise at the end if any root failed."""
        with _refusing_unsafe_models():
            return self._on_promotion(trained)

    def _on_promotion(self, trained: ModelTrained) -> dict[str, Any]:
        predicted: dict[str, int] = {}
        failures: list[tuple[str, Exception]] = []
        # Parked parts, not the roots' `waiting_for_model` status, say what is left: an attempt that
        # crashed half way may have moved a root on while some of its parts still wait.
        for root_file_id in self.items.roots_with_parked_parts():
            try:
                predicted[root_file_id] = self._predict_waiting(root_file_id)
            except UnsafeModelError:
                raise  # the model itself is refused: no waiting file can be predicted with it
            # One root's bad part (a damaged etl/ file) must not hold back every other waiting file; the
            # message is still failed below, so the bad one is retried and, past the redrive count, alarmed.
            except Exception as error:  # noqa: BLE001
                failures.append((root_file_id, error))
        if failures:
            root, first = failures[0]
            raise RuntimeError(
                f"{len(failures)} waiting file(s) not predicted after {trained.version} was promoted; "
                f"first: {root}: {first}"
            ) from first
        return {"status": "predicted_waiting", "parts_by_root": predicted}

    def _predict_waiting(self, root_file_id: str) -> int:
        parts = 0
        claimed_elsewhere = []
        for detail in self.items.parked(root_file_id):
            if not self.items.take_lease(detail, self.lease_seconds):
                claimed_elsewhere.append(detail.part_index or 0)
                continue
            self.predict_part(detail)
            self.items.release(detail)
            parts += 1
        if claimed_elsewhere:
            # Another invocation holds them. Should it die, no one else would come for them: fail this
            # message, so that it comes back once that claim has either been released or lapsed.
            raise PartsClaimedElsewhereError(
                f"parts {claimed_elsewhere} of {root_file_id} are being predicted by another invocation"
            )
        self.items.mark_predicting_if_waiting(root_file_id)
        return parts

    # -- one part -------------------------------------------------------------------------------

    def predict_part(self, detail: EtlCompleted) -> dict[str, Any]:
        """Predict (or, for a part skipped upstream, just count) one part with its root's pinned version."""
        root = self.ledger.get(detail.root_file_id)
        if root is None:
            raise LookupError(f"root file {detail.root_file_id} is not in the ledger")
        current = self.models.current_version(self.store)
        if current is None:
            raise LookupError("no model is promoted: models/current.json is missing")
        version = self.items.pin_model_version(detail.root_file_id, current)
        part_index = detail.part_index or 0
        if detail.etl_key is None:
            output = PartOutput(
                part_index=part_index,
                key=None,
                sha256=None,
                rows=0,
                model_version=version,
                skipped_reason=detail.skipped_reason or "no etl output",
            )
        else:
            output = self._write_predictions(detail, detail.etl_key, version, root.key)
        self.items.record_output(detail.root_file_id, output)

        self.ledger.set_parts_expected(detail.root_file_id, STAGE, detail.part_count, part_index=part_index)
        barrier = self.ledger.record_part_done(
            detail.root_file_id, STAGE, part_index, adds={"predicted_rows": output.rows}
        )
        # The part that completed the barrier finishes the file: again when it is retried after an
        # attempt that completed the barrier but failed before finishing.
        finished = barrier.completed_by_part(part_index) and self._stage_status(detail.root_file_id) != COMPLETED
        if finished:
            self._finish(detail, root.key)
        return {"status": "predicted", "rows": output.rows, "model_version": version, "root_complete": finished}

    def _write_predictions(self, detail: EtlCompleted, etl_key: str, version: str, source_key: str) -> PartOutput:
        classifier = self.models.classifier(self.store, version, self.settings.threads)
        predicted = predict_parquet(
            classifier,
            self.store.read_bytes(etl_key),
            Lineage(source_key=source_key, predicted_at=datetime.now(UTC)),
            batch_rows=self.settings.batch_rows,
            with_csv=self.settings.write_csv,
        )
        key = layout.predictions_key(detail.root_file_id, detail.part_index)
        digest = hashlib.sha256(predicted.parquet).hexdigest()
        metadata = {"model-version": version, "rows": str(predicted.rows), "sha256": digest}
        self.store.write_bytes(key, predicted.parquet, layout.PARQUET_CONTENT_TYPE, metadata)
        csv_key = csv_digest = None
        if predicted.csv is not None:
            csv_key = layout.predictions_key(detail.root_file_id, detail.part_index, ".csv")
            csv_digest = hashlib.sha256(predicted.csv).hexdigest()
            csv_metadata = {**metadata, "sha256": csv_digest}
            self.store.write_bytes(csv_key, predicted.csv, "text/csv; charset=utf-8", csv_metadata)
        return PartOutput(
            part_index=detail.part_index or 0,
            key=key,
            sha256=digest,
            csv_key=csv_key,
            csv_sha256=csv_digest,
            rows=predicted.rows,
            model_version=version,
        )

    def _stage_status(self, root_file_id: str) -> str | None:
        record = self.ledger.get(root_file_id)
        return None if record is None else record.stages.get(STAGE)

    def _finish(self, detail: EtlCompleted, source_key: str) -> None:
        """Manifest, `completed`, PredictionsCompleted: once per root file."""
        outputs = self.items.outputs(detail.root_file_id)
        versions = {output.model_version for output in outputs}
        if len(versions) != 1:
            raise RuntimeError(f"parts of {detail.root_file_id} were predicted by {sorted(versions)}, not one version")
        (version,) = versions
        rows = sum(output.rows for output in outputs)
        manifest_key = layout.predictions_manifest_key(detail.root_file_id)
        self.store.write_json(
            manifest_key,
            {
                "root_file_id": detail.root_file_id,
                "correlation_id": detail.correlation_id,
                "source_key": source_key,
                "model_version": version,
                "part_count": detail.part_count,
                "rows": rows,
                "parts": [output.model_dump(exclude={"model_version"}) for output in outputs],
                "completed_at": time.time(),
            },
        )
        self.publisher.publish(
            PredictionsCompleted(
                correlation_id=detail.correlation_id,
                file_id=detail.root_file_id,
                root_file_id=detail.root_file_id,
                dataset="inference",
                prediction_keys=[output.key for output in outputs if output.key is not None],
                manifest_key=manifest_key,
                rows=rows,
                model_version=version,
            )
        )
        self.ledger.set_stage_status(detail.root_file_id, STAGE, COMPLETED)


@contextmanager
def _refusing_unsafe_models() -> Iterator[None]:
    """A refused model location is logged as such before the message fails (retried, then the DLQ)."""
    try:
        yield
    except UnsafeModelError as error:
        logger.error("refusing to load the model: not plain model data", reason=str(error))
        raise
