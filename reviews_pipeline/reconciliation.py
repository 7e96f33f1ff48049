"""Per file, where every row went: from the raw file to its last output, counted in the ledger and in the bucket.

rows in (read by the validator) = rows at the last stage + rows dropped on the way, by stage and
reason. The last stage is `predictions/` for inference files and `etl/` for training files (the
trainer reads the whole etl/train/ corpus). Rows at the last stage are counted twice, independently:
from the ledger's counters and from the Parquet objects in the bucket; the two must agree, and no
row number may appear twice among a file's predictions.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pyarrow.parquet as pq

from shared import layout
from shared.ledger import FileRecord, barrier_counter
from shared.storage import ObjectStore

from .runtime import rows_of

FinalStage = Literal["predictions", "etl"]
VALIDATOR_DROPPED_PREFIX = "dropped:"
ETL_DROPPED_PREFIX = "etl_dropped:"


@dataclass(frozen=True)
class Reconciliation:
    """One root file's account of its rows (all zeros for a file rejected whole: it has a report instead)."""

    final_stage: FinalStage
    complete: bool
    """The final stage finished for every part (a file waiting for a model is not complete yet)."""
    rows_in: int
    rows_dropped: dict[str, dict[str, int]]
    """By stage (`validator`, `etl`), then by reason."""
    rows_final_ledger: int
    rows_final_bucket: int
    duplicate_rows: int
    """Row numbers that appear more than once among the file's predictions (inference files only)."""
    parts_rejected: int
    rows_lost: int
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prefixed(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {name.removeprefix(prefix): count for name, count in counters.items() if name.startswith(prefix) and count}


def rows_dropped_of(record: FileRecord) -> dict[str, int]:
    """Rows the validator dropped, by reason, summed over parts when the file was chunked."""
    dropped = dict(record.rows_dropped)
    for name, count in record.counters.items():
        if name.startswith(VALIDATOR_DROPPED_PREFIX):
            reason = name.removeprefix(VALIDATOR_DROPPED_PREFIX)
            dropped[reason] = dropped.get(reason, 0) + count
    return dropped


def _parquet_rows(store: ObjectStore, prefix: str) -> tuple[int, list[int]]:
    """Rows of every `part-*.parquet` under a prefix, and their `row_number`s when the files have them."""
    total = 0
    row_numbers: list[int] = []
    for key in store.keys(prefix):
        if not key.rsplit("/", 1)[-1].startswith("part-") or not key.endswith(".parquet"):
            continue
        parquet = pq.ParquetFile(io.BytesIO(store.read_bytes(key)))
        total += parquet.metadata.num_rows
        if "row_number" in parquet.schema_arrow.names:
            row_numbers.extend(parquet.read(columns=["row_number"]).column(0).to_pylist())
    return total, row_numbers


def reconcile(record: FileRecord, store: ObjectStore) -> Reconciliation:
    """Where the rows of one root file went, from the ledger and the bucket."""
    final_stage: FinalStage = "predictions" if record.dataset == "inference" else "etl"
    counters = record.counters
    rows_in, validator_out = rows_of(record)
    validator_dropped = rows_dropped_of(record)
    etl_dropped = _prefixed(counters, ETL_DROPPED_PREFIX)
    problems = []
    if record.status == "rejected":
        return Reconciliation(
            final_stage=final_stage,
            complete=True,
            rows_in=0,
            rows_dropped={},
            rows_final_ledger=0,
            rows_final_bucket=0,
            duplicate_rows=0,
            parts_rejected=0,
            rows_lost=0,
        )
    etl_rows_in = counters.get("etl_rows_in", 0)
    complete = bool(counters.get(barrier_counter("etl", "complete")))
    if complete and etl_rows_in != validator_out:
        problems.append(f"the validator kept {validator_out} rows but the ETL read {etl_rows_in}")
    if final_stage == "predictions":
        complete = complete and bool(counters.get(barrier_counter("predictions", "complete")))
        rows_final_ledger = counters.get("predicted_rows", 0)
        rows_final_bucket, row_numbers = _parquet_rows(store, f"{layout.PREDICTIONS}{record.root_file_id}/")
        duplicates = sum(count - 1 for count in Counter(row_numbers).values() if count > 1)
        if complete and rows_final_ledger != counters.get("etl_rows_out", 0):
            problems.append(
                f"the ETL kept {counters.get('etl_rows_out', 0)} rows but {rows_final_ledger} were predicted"
            )
    else:
        rows_final_ledger = counters.get("etl_rows_out", 0)
        rows_final_bucket, _ = _parquet_rows(store, f"{layout.etl_prefix('train')}{record.root_file_id}/")
        duplicates = 0
    if rows_final_bucket != rows_final_ledger:
        problems.append(
            f"the ledger counts {rows_final_ledger} rows at {final_stage}/ but the bucket holds {rows_final_bucket}"
        )
    if duplicates:
        problems.append(f"{duplicates} row numbers appear more than once in predictions/")
    dropped = {stage: counts for stage, counts in (("validator", validator_dropped), ("etl", etl_dropped)) if counts}
    accounted = rows_final_bucket + sum(validator_dropped.values()) + sum(etl_dropped.values())
    rows_lost = rows_in - accounted if complete else 0
    if rows_lost:
        problems.append(f"{rows_lost} of {rows_in} rows are neither at {final_stage}/ nor dropped with a reason")
    if not complete:
        problems.append(f"{final_stage} not complete for every part")
    return Reconciliation(
        final_stage=final_stage,
        complete=complete,
        rows_in=rows_in,
        rows_dropped=dropped,
        rows_final_ledger=rows_final_ledger,
        rows_final_bucket=rows_final_bucket,
        duplicate_rows=duplicates,
        parts_rejected=counters.get("parts_rejected", 0),
        rows_lost=rows_lost,
        problems=problems,
    )
