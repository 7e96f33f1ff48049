"""Every S3 prefix of the pipeline bucket, in one place (DESIGN §3).

No other module builds a key by hand: services ask this module, so moving a prefix is one change,
and the checks on keys that arrive from outside (`parse_inbound_key`) live beside the layout they
protect.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from .events import Dataset, PartInfo

RAW = "raw/"
ERRORS = "errors/"
CHUNKS = "chunks/"
PROCESSED = "processed/"
ETL = "etl/"
MODELS = "models/"
PREDICTIONS = "predictions/"
MONITORING = "monitoring/"
MONITORING_LOGS = MONITORING + "logs/"
MONITORING_METRICS = MONITORING + "metrics/"
MONITORING_ALERTS = MONITORING + "alerts/"

DATASETS: tuple[Dataset, ...] = ("train", "inference")
INBOUND_AREAS = (RAW, CHUNKS)
CURRENT_MODEL_PREFIX = MODELS + "current/"
TRAINING_JOBS = MODELS + "training-jobs/"
"""Where SageMaker training jobs write: `<TRAINING_JOBS><job name>/output/model.tar.gz` (SageMaker's own naming)."""
REPORT_SUFFIX = ".report.json"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
"""The media type every Parquet object of the pipeline is written with (processed/, etl/, predictions/, chunks)."""

# Control characters (C0, DEL, C1) in a key are refused: they break logs, terminals and shells downstream.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_KEY_BYTES = 1024


class UnsafeKeyError(ValueError):
    """A key that must not be read from or written to."""


InboundArea = Literal["raw", "chunks"]


@dataclass(frozen=True)
class InboundKey:
    """A key under raw/{dataset}/ or chunks/{dataset}/, checked for traversal and junk."""

    key: str
    area: InboundArea
    dataset: Dataset

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.key)


def parse_inbound_key(key: str) -> InboundKey:
    """Check a key announced by S3 or an external system and say where it belongs.

    Refuses keys with `..` segments, absolute paths, backslashes, control characters, and anything
    outside raw/{train,inference}/ and chunks/{train,inference}/.
    """
    if not key:
        raise UnsafeKeyError("the key is empty")
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise UnsafeKeyError("the key is longer than S3's 1024-byte limit")
    if _CONTROL_CHARACTERS.search(key):
        raise UnsafeKeyError("the key contains control characters")
    if key.startswith("/"):
        raise UnsafeKeyError("the key is an absolute path")
    if "\\" in key:
        raise UnsafeKeyError("the key contains a backslash")
    segments = key.split("/")
    if any(segment in ("..", ".") for segment in segments):
        raise UnsafeKeyError("the key contains a '.' or '..' path segment")
    if len(segments) < 3 or not segments[-1]:
        raise UnsafeKeyError("the key does not name a file under raw/{dataset}/ or chunks/{dataset}/")
    area, dataset = segments[0], segments[1]
    if area + "/" not in INBOUND_AREAS:
        raise UnsafeKeyError(f"the key is outside the pipeline's inbound prefixes {list(INBOUND_AREAS)}")
    if dataset not in DATASETS:
        raise UnsafeKeyError(f"the key's dataset folder {dataset!r} is not one of {list(DATASETS)}")
    return InboundKey(key=key, area=cast(InboundArea, area), dataset=dataset)


def raw_key(dataset: Dataset, file_name: str) -> str:
    return f"{RAW}{dataset}/{file_name}"


def error_key(dataset: Dataset, source_key: str) -> str:
    """Where a rejected file is moved: errors/{dataset}/ followed by its path below its inbound prefix.

    A processed/ file refused by a later stage (the ETL) goes to errors/{dataset}/processed/….
    """
    if source_key.startswith(PROCESSED):
        return processed_error_key(dataset, source_key)
    inbound = parse_inbound_key(source_key)
    below_dataset = inbound.key.split("/", 2)[2]
    return f"{ERRORS}{dataset}/{inbound.area}/{below_dataset}"


def processed_error_key(dataset: Dataset, processed_key: str) -> str:
    """Where a processed/{dataset}/ file is moved when a later stage refuses it: errors/{dataset}/processed/…"""
    prefix = f"{PROCESSED}{dataset}/"
    below_dataset = processed_key[len(prefix) :]
    if (
        not processed_key.startswith(prefix)
        or _CONTROL_CHARACTERS.search(processed_key)
        or "\\" in processed_key
        or any(segment in ("", ".", "..") for segment in below_dataset.split("/"))
    ):
        raise UnsafeKeyError(f"{processed_key!r} is not a file under {prefix}")
    return f"{ERRORS}{dataset}/processed/{below_dataset}"


def report_key(moved_key: str) -> str:
    """The JSON report that sits beside a rejected file."""
    return moved_key + REPORT_SUFFIX


def chunks_prefix(dataset: Dataset, root_file_id: str) -> str:
    """The folder holding every part of one root file."""
    return f"{CHUNKS}{dataset}/{root_file_id}/"


def chunk_key(dataset: Dataset, root_file_id: str, part_index: int, suffix: str) -> str:
    return f"{chunks_prefix(dataset, root_file_id)}part-{part_index:05d}{suffix}"


# S3 user metadata (x-amz-meta-*) on every chunk part: written by the chunker, read back by the
# receiver, which trusts a part's position only from its own object, never from its key.
PARENT_FILE_ID_METADATA = "parent-file-id"
ROOT_FILE_ID_METADATA = "root-file-id"
PART_INDEX_METADATA = "part-index"
FIRST_ROW_NUMBER_METADATA = "first-row-number"
CORRELATION_METADATA = "correlation-id"
PART_METADATA_FIELDS = (PARENT_FILE_ID_METADATA, ROOT_FILE_ID_METADATA, PART_INDEX_METADATA, FIRST_ROW_NUMBER_METADATA)


def chunk_metadata(part: PartInfo, correlation_id: str) -> dict[str, str]:
    """The metadata a chunk part is written with."""
    return {
        PARENT_FILE_ID_METADATA: part.parent_file_id,
        ROOT_FILE_ID_METADATA: part.root_file_id,
        PART_INDEX_METADATA: str(part.part_index),
        FIRST_ROW_NUMBER_METADATA: str(part.first_row_number),
        CORRELATION_METADATA: correlation_id,
    }


def part_from_metadata(metadata: Mapping[str, str]) -> PartInfo | None:
    """Where a chunk part sits in its root file, from its metadata; None when any of it is missing."""
    if not all(name in metadata for name in PART_METADATA_FIELDS):
        return None
    return PartInfo(
        parent_file_id=metadata[PARENT_FILE_ID_METADATA],
        root_file_id=metadata[ROOT_FILE_ID_METADATA],
        part_index=int(metadata[PART_INDEX_METADATA]),
        first_row_number=int(metadata[FIRST_ROW_NUMBER_METADATA]),
    )


def processed_key(dataset: Dataset, root_file_id: str, part_index: int | None) -> str:
    return f"{PROCESSED}{dataset}/{root_file_id}/part-{part_index or 0:05d}.parquet"


def etl_prefix(dataset: Dataset) -> str:
    return f"{ETL}{dataset}/"


def etl_key(dataset: Dataset, root_file_id: str, part_index: int | None) -> str:
    return f"{etl_prefix(dataset)}{root_file_id}/part-{part_index or 0:05d}.parquet"


def model_prefix(version: str) -> str:
    return f"{MODELS}{version}/"


def training_output_prefix() -> str:
    """The `S3OutputPath` of every training job: SageMaker adds `<job name>/output/model.tar.gz` under it."""
    return TRAINING_JOBS


def training_artifact_key(job_name: str) -> str:
    """Where SageMaker puts a finished job's /opt/ml/model/ as a gzipped tar."""
    return f"{TRAINING_JOBS}{job_name}/output/model.tar.gz"


def predictions_key(root_file_id: str, part_index: int | None, suffix: str = ".parquet") -> str:
    return f"{PREDICTIONS}{root_file_id}/part-{part_index or 0:05d}{suffix}"


def predictions_manifest_key(root_file_id: str) -> str:
    return f"{PREDICTIONS}{root_file_id}/manifest.json"


def monitoring_log_key(moment: datetime, batch_id: str) -> str:
    """One JSON-lines object per consumed batch, partitioned by day."""
    return f"{MONITORING_LOGS}{moment:%Y-%m-%d}/{moment:%H%M%S}-{batch_id}.jsonl"


def alert_key(moment: datetime, alert_id: str) -> str:
    return f"{MONITORING_ALERTS}{moment:%Y-%m-%d}/{alert_id}.json"


def metrics_prefix(version: str) -> str:
    return f"{MONITORING_METRICS}{version}/"


def current_model_pointer_key() -> str:
    """models/current.json: names the promoted version; written last on promotion, the one source of truth."""
    return f"{MODELS}current.json"


def model_index_key() -> str:
    """models/index.json: every version with its metrics and promotion decision."""
    return f"{MODELS}index.json"


def metrics_report_key(version: str, name: str) -> str:
    """A file of a version's evaluation report (metrics.json, report.html, the PNG plots)."""
    return f"{metrics_prefix(version)}{name}"
