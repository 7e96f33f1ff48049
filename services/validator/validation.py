"""The validator's checks on an admitted file, and how each outcome is recorded.

STAND-IN (issue 2): size limits and a UTF-8 readability check are real; format and column
recognition and the canonical parquet come with the ingestion issue. Until then a readable file is
passed through to processed/ as it is and its rows are its non-empty lines (less a header line for
delimited text).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import layout
from shared.events import DetectedFormat, FileOversized, FileValidated
from shared.ledger import FileLedger
from shared.publisher import EventPublisher
from shared.rejection import RejectedFile, Rejection, reject_file
from shared.storage import ObjectStore

from .intake import AdmittedFile

GZIP_MAGIC = b"\x1f\x8b"


class ValidatorSettings(BaseSettings):
    """Limits on what the validator accepts."""

    model_config = SettingsConfigDict(env_prefix="REVIEWS_VALIDATOR_", frozen=True, extra="ignore")

    min_size_bytes: int = Field(default=1, ge=0, description="Smaller files are rejected.")
    max_size_bytes: int = Field(default=256 * 1024 * 1024, ge=1, description="Larger files are split by the chunker.")


@dataclass(frozen=True)
class Outcome:
    status: Literal["validated", "oversized", "rejected"]
    rows_in: int = 0
    rows_out: int = 0


def _decode(body: bytes) -> str | Rejection:
    if body[:2] == GZIP_MAGIC:
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as error:
            return Rejection(check="readability", reason=f"the gzip stream is broken: {error}")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = body[: error.start].count(b"\n") + 1
        return Rejection(
            check="readability",
            reason=f"not UTF-8: undecodable byte 0x{body[error.start]:02x} at offset {error.start}",
            details={"offset": error.start, "line": line},
        )


def _count_rows(text: str) -> int:
    lines = [line for line in text.splitlines() if line.strip()]
    looks_like_json_lines = bool(lines) and lines[0].lstrip().startswith("{")
    return len(lines) if looks_like_json_lines else max(len(lines) - 1, 0)


def validate_file(
    admitted: AdmittedFile,
    limits: ValidatorSettings,
    *,
    store: ObjectStore,
    ledger: FileLedger,
    publisher: EventPublisher,
) -> Outcome:
    part_count = 1
    if admitted.part is not None:
        expected = ledger.parts_expected(admitted.root_file_id)
        if expected is None:
            # The chunker records the count before any part becomes visible; without it, retry later.
            raise LookupError(f"root file {admitted.root_file_id} has no part count in the ledger yet")
        part_count = expected
    rejected = RejectedFile(
        file_id=admitted.file_id,
        root_file_id=admitted.root_file_id,
        correlation_id=admitted.correlation_id,
        dataset=admitted.dataset,
        source_key=admitted.key,
        source_version_id=admitted.version_id,
        part_index=admitted.part.part_index if admitted.part else None,
        part_count=part_count,
    )

    def reject(rejection: Rejection) -> Outcome:
        reject_file(rejected, rejection, "validator", store=store, ledger=ledger, publisher=publisher)
        return Outcome(status="rejected")

    # The size announced by an external producer is not trusted: the object itself is asked.
    info = store.head(admitted.key, admitted.version_id)
    if info is None:
        reject_file(
            rejected,
            Rejection(check="key", reason="no object at that key and version"),
            "validator",
            store=None,
            ledger=ledger,
            publisher=publisher,
        )
        return Outcome(status="rejected")
    size = info.size
    if size < limits.min_size_bytes:
        return reject(Rejection(check="size", reason=f"{size} bytes is below the minimum of {limits.min_size_bytes}"))
    if size > limits.max_size_bytes:
        if admitted.part is not None:
            return reject(Rejection(check="size", reason="a chunk is itself above the size limit"))
        ledger.update(admitted.file_id, status="chunking", stage="chunker")
        publisher.publish(
            FileOversized(
                correlation_id=admitted.correlation_id,
                file_id=admitted.file_id,
                root_file_id=admitted.root_file_id,
                dataset=admitted.dataset,
                bucket=store.bucket,
                key=admitted.key,
                version_id=admitted.version_id,
                size=size,
                max_size_bytes=limits.max_size_bytes,
                detected=DetectedFormat(format="csv", layout="unrecognised (stand-in)"),
            )
        )
        return Outcome(status="oversized")
    body = store.read_bytes(admitted.key, admitted.version_id)
    decoded = _decode(body)
    if isinstance(decoded, Rejection):
        return reject(decoded)
    rows = _count_rows(decoded)
    if rows == 0:
        return reject(Rejection(check="columns", reason="the file has no data rows"))
    part_index = admitted.part.part_index if admitted.part else None
    processed_key = layout.processed_key(admitted.dataset, admitted.root_file_id, part_index)
    store.write_bytes(processed_key, body)
    ledger.update(
        admitted.file_id,
        status="validated",
        stage="validator",
        processed_key=processed_key,
        layout="unrecognised (stand-in)",
        rows_in=rows,
        rows_out=rows,
    )
    publisher.publish(
        FileValidated(
            correlation_id=admitted.correlation_id,
            file_id=admitted.file_id,
            root_file_id=admitted.root_file_id,
            dataset=admitted.dataset,
            source_key=admitted.key,
            processed_key=processed_key,
            layout="unrecognised (stand-in)",
            rows_in=rows,
            rows_out=rows,
            part_index=part_index,
            part_count=part_count,
            first_row_number=admitted.part.first_row_number if admitted.part else 0,
        )
    )
    return Outcome(status="validated", rows_in=rows, rows_out=rows)


def account_for_part(admitted: AdmittedFile, outcome: Outcome, ledger: FileLedger) -> None:
    """Count a finished part towards its root file; the last one marks the root `chunked`."""
    if admitted.part is None or outcome.status == "oversized":
        return
    barrier = ledger.record_part_done(
        admitted.root_file_id,
        "validation",
        admitted.part.part_index,
        adds={
            "rows_in": outcome.rows_in,
            "rows_out": outcome.rows_out,
            f"parts_{outcome.status}": 1,
        },
    )
    if barrier.completed_now:
        ledger.update(admitted.root_file_id, status="chunked", stage="validator")
