"""The ETL's storage, ledger and event work: processed/ parquet → etl/ parquet → EtlCompleted.

The file-level transformation is `transform.transform_parquet` (no AWS in it); this module reads
its input from the bucket, writes its output there, counts each part towards its root file in the
ledger and announces it. A processed file that cannot be read, or is not in the canonical schema,
is moved to errors/ with a report (FileRejected, stage etl). Anything else that fails (S3,
DynamoDB, EventBridge) raises: the message is retried and, past the queue's redrive count, parked
in the DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from aws_lambda_powertools.metrics import MetricUnit

from shared import layout
from shared.events import Dataset, EtlCompleted, FileRejected, FileValidated
from shared.observability import Observability
from shared.rejection import Rejection, reject_file, rejected_file
from shared.resources import PipelineResources
from shared.storage import ObjectStore

from .transform import NOTHING_TRANSFORMED, EtlOutput, EtlSettings, NotCanonicalError, transform_parquet


@dataclass(frozen=True)
class PartIdentity:
    """Which part of which root file an ETL outcome is about."""

    correlation_id: str
    file_id: str
    root_file_id: str
    dataset: Dataset
    part_index: int | None
    part_count: int

    @classmethod
    def of(cls, detail: FileValidated | FileRejected, dataset: Dataset) -> PartIdentity:
        """`dataset` given apart: a FileRejected may lack one, and callers check that first."""
        return cls(
            correlation_id=detail.correlation_id,
            file_id=detail.file_id,
            root_file_id=detail.root_file_id,
            dataset=dataset,
            part_index=detail.part_index,
            part_count=detail.part_count,
        )


@dataclass(frozen=True)
class EtlService:
    """One invocation's ETL over the pipeline's bucket, ledger and bus."""

    resources: PipelineResources
    settings: EtlSettings
    observability: Observability

    def transform_file(self, detail: FileValidated) -> dict[str, Any]:
        """One processed/ file → its etl/ file, the ledger's barrier and EtlCompleted (or FileRejected)."""
        resources = self.resources
        settings = self.settings
        # Labels are the trainer's: an inference file keeps every row, 3-star ones included, whatever the target.
        if detail.dataset == "inference":
            settings = settings.model_copy(update={"label_target": "none"})
        try:
            layout.processed_error_key(detail.dataset, detail.processed_key)
        except layout.UnsafeKeyError as error:
            # Not a processed/{dataset}/ file: refused without touching it.
            return self._reject(detail, Rejection(check="key", reason=str(error)), store=None)
        body = resources.store.read_bytes(detail.processed_key)
        try:
            output = transform_parquet(body, settings)
        # Arrow reports a damaged file as ArrowInvalid, or as a bare OSError for a damaged page; the bytes are
        # in memory by now, so an OSError here cannot be the network.
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError, NotCanonicalError) as error:
            check = "columns" if isinstance(error, NotCanonicalError) else "readability"
            rejection = Rejection(check=check, reason=f"the processed file cannot be transformed: {error}")
            return self._reject(detail, rejection, store=resources.store)

        etl_key = layout.etl_key(detail.dataset, detail.root_file_id, detail.part_index)
        resources.store.write_bytes(etl_key, output.body, layout.PARQUET_CONTENT_TYPE)
        finished = self._finish_part(
            PartIdentity.of(detail, detail.dataset), processed_key=detail.processed_key, etl_key=etl_key, output=output
        )
        resources.ledger.set_stage_status(detail.file_id, "etl", "completed")
        metrics = self.observability.metrics
        metrics.add_metric(name="EtlRowsOut", unit=MetricUnit.Count, value=output.rows_out)
        metrics.add_metric(name="EtlRowsDropped", unit=MetricUnit.Count, value=sum(output.rows_dropped.values()))
        self.observability.logger.info(
            "file transformed",
            etl_key=etl_key,
            rows_in=output.rows_in,
            rows_out=output.rows_out,
            rows_dropped=output.rows_dropped,
            root_complete=finished.root_complete,
        )
        return {"status": "completed", "etl_key": etl_key, "root_complete": finished.root_complete}

    def skip_rejected_part(self, detail: FileRejected) -> dict[str, Any]:
        """A part the validator rejected: nothing to transform, but it still counts towards its root file.

        Without it a root file with one bad part would never complete ETL, so training would never be
        triggered by it and its predictions never finish.
        """
        if detail.part_index is None or detail.dataset is None:
            # The rule only routes parts here; anything else is not this service's to count.
            self.observability.logger.warning("rejection of a whole file ignored", file_id=detail.file_id)
            return {"status": "ignored"}
        finished = self._finish_part(
            PartIdentity.of(detail, detail.dataset),
            processed_key=None,
            etl_key=None,
            output=NOTHING_TRANSFORMED,
            skipped_reason=f"rejected by the {detail.stage} ({detail.check}): {detail.reason}",
        )
        return {"status": "skipped", "root_complete": finished.root_complete}

    def _finish_part(
        self,
        part: PartIdentity,
        *,
        processed_key: str | None,
        etl_key: str | None,
        output: EtlOutput,
        skipped_reason: str | None = None,
    ) -> EtlCompleted:
        """Count a part (transformed, or skipped with nothing to transform) towards its root, and announce it.

        Every part of a root file gets exactly one EtlCompleted, so downstream barriers (the predictor's)
        can count parts the same way; the one that completes the root carries `root_complete`.
        """
        ledger = self.resources.ledger
        part_index = part.part_index or 0
        ledger.set_parts_expected(part.root_file_id, "etl", part.part_count, part_index=part_index)
        barrier = ledger.record_part_done(
            part.root_file_id,
            "etl",
            part_index,
            adds={
                "etl_rows_in": output.rows_in,
                "etl_rows_out": output.rows_out,
                "etl_parts_skipped": int(etl_key is None),
                **{f"etl_dropped:{reason}": count for reason, count in output.rows_dropped.items()},
            },
        )
        completed = EtlCompleted(
            correlation_id=part.correlation_id,
            file_id=part.file_id,
            root_file_id=part.root_file_id,
            dataset=part.dataset,
            processed_key=processed_key,
            etl_key=etl_key,
            skipped_reason=skipped_reason,
            rows_in=output.rows_in,
            rows_out=output.rows_out,
            rows_dropped=output.rows_dropped,
            part_index=part.part_index,
            part_count=part.part_count,
            root_complete=barrier.completed_by_part(part_index),
        )
        self.resources.publisher("etl").publish(completed)
        return completed

    def _reject(self, detail: FileValidated, rejection: Rejection, *, store: ObjectStore | None) -> dict[str, Any]:
        resources = self.resources
        self.observability.logger.warning("processed file rejected", check=rejection.check, reason=rejection.reason)
        reject_file(
            rejected_file(detail, detail.processed_key, part_index=detail.part_index, part_count=detail.part_count),
            rejection,
            "etl",
            store=store,
            ledger=resources.ledger,
            publisher=resources.publisher("etl"),
        )
        resources.ledger.set_stage_status(detail.file_id, "etl", "rejected")
        if store is not None and detail.part_index is not None:
            # A part still counts towards its root file, with nothing in it (see skip_rejected_part); a whole
            # file's rejection is its final state and triggers nothing downstream.
            self._finish_part(
                PartIdentity.of(detail, detail.dataset),
                processed_key=detail.processed_key,
                etl_key=None,
                output=NOTHING_TRANSFORMED,
                skipped_reason=f"rejected by the etl ({rejection.check}): {rejection.reason}",
            )
        return {"status": "rejected"}
