"""The pipeline's typed events: one pydantic model per `detail`, wrapped in Powertools' EventBridge model.

This module is the single source for event shapes. JSON Schemas under `events/schemas/` and the
sample payloads under `events/` are generated from it (`python -m shared.export_events`), and a
contract test fails when those files drift from these models.

Consumers ignore unknown fields, so adding an optional field is not a breaking change; removing or
retyping one bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

SCHEMA_VERSION = "1.0"
SOURCE_PREFIX = "amazon-reviews-nlp."

Dataset = Literal["train", "inference"]
Origin = Literal["s3", "external", "chunk"]
Stage = Literal["receiver", "validator", "chunker", "etl", "trainer", "predictor"]


def source_of(service: str) -> str:
    """The EventBridge `source` a pipeline service publishes under."""
    return f"{SOURCE_PREFIX}{service}"


class PipelineDetail(BaseModel):
    """Fields every pipeline event carries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    detail_type: ClassVar[str]
    """The EventBridge `detail-type` of this event (the class name)."""

    schema_version: str = Field(
        default=SCHEMA_VERSION, description="Version of this event's schema; a breaking change bumps it."
    )
    correlation_id: str = Field(description="One id per root file, carried through every event and log line about it.")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.detail_type = cls.__name__


class FileDetail(PipelineDetail):
    """Fields of every event about one file (or one part of a chunked file)."""

    file_id: str = Field(description="Id of this object version: stable across redeliveries of the same version.")
    root_file_id: str = Field(
        description="Id of the file as first received; equals file_id unless this is a chunk of a larger file."
    )
    dataset: Dataset = Field(description="Whether the file feeds training or inference.")


class PartInfo(BaseModel):
    """Where a chunk sits in the file it was split from."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    parent_file_id: str = Field(description="The oversize file this part was cut from.")
    root_file_id: str = Field(description="The file as first received (the parent, for one level of chunking).")
    part_index: NonNegativeInt = Field(description="0-based position of this part in the parent.")
    first_row_number: NonNegativeInt = Field(
        default=0, description="0-based row number, in the parent file, of this part's first data row."
    )


class FileReceived(PipelineDetail):
    """An object is ready to be validated. Published by the receiver or by external systems."""

    bucket: str = Field(description="Bucket holding the object; must be the pipeline's bucket.")
    key: str = Field(description="Object key, under raw/{dataset}/ or chunks/{dataset}/.")
    version_id: str | None = Field(default=None, description="S3 version id of the object, when versioned.")
    size: NonNegativeInt = Field(description="Object size in bytes.")
    etag: str = Field(default="", description="Object ETag, without quotes.")
    dataset: Dataset = Field(description="train or inference; must match the key's prefix.")
    origin: Origin = Field(default="external", description="Who announced the object.")
    part: PartInfo | None = Field(default=None, description="Set when the object is a chunk of a larger file.")
    correlation_id: str = Field(
        default="",
        description="Correlation id to carry; external producers may leave it empty and the file id is used.",
    )


class DetectedFormat(BaseModel):
    """What the validator recognised in a file's content: enough for the chunker to cut it on record boundaries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: Literal["csv", "tsv", "jsonl", "json", "parquet"] = Field(
        description="Container format, from content: delimited text (csv, tsv), JSON lines, a JSON document "
        "holding an array of records (json), or Parquet."
    )
    compression: Literal["none", "gzip"] = Field(default="none", description="Compression, from magic bytes.")
    encoding: str = Field(
        default="utf-8",
        description="Text encoding of the content: utf-8, utf-8-sig (with a BOM), utf-16-le/-be or utf-32-le/-be "
        "(from a BOM, or from the pattern of NUL bytes), or the configured fallback encoding (e.g. cp1252).",
    )
    delimiter: str | None = Field(
        default=None, description="Field delimiter for delimited text (one character; see skip_initial_space)."
    )
    quoting: bool = Field(
        default=True,
        description="Whether fields may be enclosed in quote_char; false for layouts such as the AWS "
        "customer-reviews TSV, whose fields contain bare quotes.",
    )
    quote_char: str = Field(default='"', description="The quote character when quoting is on: \" or '.")
    escape_char: str | None = Field(
        default=None, description="A character that escapes the next one (a backslash), when the file uses escapes."
    )
    skip_initial_space: bool = Field(
        default=False, description="Whitespace after each delimiter is not part of the field (', '-delimited files)."
    )
    line_terminator: Literal["lf", "crlf", "cr"] = Field(
        default="lf", description="How the content's lines end: LF, CRLF or CR alone."
    )
    preamble_lines: NonNegativeInt = Field(
        default=0,
        description="Lines before the header (or the first record) that are not part of the table, e.g. an "
        "export banner: skipped and reported.",
    )
    header_rows: NonNegativeInt = Field(
        default=1, description="Records that make up the header: 0 headerless, 1 usually, 2 for a two-row header."
    )
    has_header: bool = Field(default=True, description="Whether a delimited file starts with a header row.")
    layout: str = Field(description="Known source layout the columns were mapped from, or 'configured'.")


class FileOversized(FileDetail):
    """The file passed format, readability and column checks on its header and a sample, but is too big."""

    bucket: str = Field(description="Bucket holding the object.")
    key: str = Field(description="Key of the oversize object.")
    version_id: str | None = Field(default=None, description="S3 version id of the object.")
    size: NonNegativeInt = Field(description="Object size in bytes.")
    max_size_bytes: NonNegativeInt = Field(description="The configured upper size limit it exceeded.")
    detected: DetectedFormat = Field(description="Format found in the header and sample.")


class ChunkPart(BaseModel):
    """One part written by the chunker."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str = Field(description="Key of the part under chunks/{dataset}/{root_file_id}/.")
    part_index: NonNegativeInt = Field(description="0-based position of the part.")
    rows: NonNegativeInt = Field(description="Data rows in the part (header excluded).")
    size: NonNegativeInt = Field(description="Part size in bytes.")


class FileChunked(FileDetail):
    """An oversize file was split into parts on record boundaries; each part re-enters validation."""

    source_key: str = Field(description="Key of the oversize file that was split.")
    parts: list[ChunkPart] = Field(description="The parts, in order.")
    rows_total: NonNegativeInt = Field(description="Data rows over all parts.")


class FileValidated(FileDetail):
    """The file passed all checks; its rows were written to processed/ in the canonical schema."""

    source_key: str = Field(description="Key of the validated object.")
    processed_key: str = Field(description="Key of the canonical parquet under processed/{dataset}/.")
    layout: str = Field(description="Recognised source layout.")
    rows_in: NonNegativeInt = Field(description="Data rows read from the file.")
    rows_out: NonNegativeInt = Field(description="Rows written to processed/.")
    rows_dropped: dict[str, NonNegativeInt] = Field(
        default_factory=dict, description="Rows dropped, by reason; rows_in = rows_out + sum(rows_dropped)."
    )
    first_dropped_rows: dict[str, list[int]] = Field(
        default_factory=dict, description="Per drop reason, the first (up to 10) dropped row numbers of the root file."
    )
    kept_columns: list[str] = Field(default_factory=list, description="Source columns mapped into the output.")
    column_roles: dict[str, str] = Field(
        default_factory=dict,
        description="Which source column became which canonical column (review_id, title, text, rating, language).",
    )
    detected: DetectedFormat | None = Field(
        default=None,
        description="How the file was read: format, compression, encoding (the fallback encoding's name when "
        "REVIEWS_VALIDATOR_FALLBACK_ENCODING decoded bytes that were not UTF-8), dialect, the preamble lines "
        "skipped and the header rows.",
    )
    malformed_lines: list[int] = Field(
        default_factory=list,
        description="1-based line numbers of this file where the first (up to 10) malformed records start.",
    )
    records_in_other_dialect: NonNegativeInt = Field(
        default=0,
        description="Rows kept that were written in another delimiter or quote than the rest of the file "
        "(a row pasted from another export), read in theirs.",
    )
    dropped_columns: list[str] = Field(default_factory=list, description="Source columns not kept.")
    part_index: NonNegativeInt | None = Field(default=None, description="Set when the file is a chunk.")
    part_count: int = Field(default=1, ge=1, description="Parts of the root file (1 when it was not chunked).")
    first_row_number: NonNegativeInt = Field(
        default=0, description="0-based row number of this file's first row in its root file."
    )


class FileRejected(FileDetail):
    """A stage refused a file; the file and a report now sit under errors/."""

    dataset: Dataset | None = Field(  # type: ignore[assignment]
        description="train or inference; null when the announcement was refused before the dataset was known."
    )
    stage: Stage = Field(description="The stage that rejected the file.")
    check: str = Field(description="Which check failed (format, readability, size, columns, key, …).")
    reason: str = Field(description="Why, in words a user can act on.")
    source_key: str = Field(description="Where the file was when it was rejected.")
    error_key: str | None = Field(
        default=None, description="Where the file was moved to, under errors/; null when it was never touched."
    )
    report_key: str | None = Field(default=None, description="Key of the JSON report beside the file.")
    part_index: NonNegativeInt | None = Field(default=None, description="Set when the file is a chunk.")
    part_count: int = Field(default=1, ge=1, description="Parts of the root file (1 when it was not chunked).")


class EtlCompleted(FileDetail):
    """A processed file was cleaned and tokenised into etl/."""

    processed_key: str | None = Field(description="The processed parquet that was read; null for a skipped part.")
    etl_key: str | None = Field(
        description="The etl parquet written; null when the part was rejected upstream or by the ETL and there "
        "is nothing to predict, so that every part of a root file is still accounted for downstream."
    )
    skipped_reason: str | None = Field(
        default=None, description="Why the part produced no etl parquet (e.g. rejected by the validator)."
    )
    rows_in: NonNegativeInt = Field(description="Rows read from processed/.")
    rows_out: NonNegativeInt = Field(description="Rows written to etl/.")
    rows_dropped: dict[str, NonNegativeInt] = Field(default_factory=dict, description="Rows dropped, by reason.")
    part_index: NonNegativeInt | None = Field(default=None, description="Set when the file is a chunk.")
    part_count: int = Field(default=1, ge=1, description="Parts of the root file (1 when it was not chunked).")
    root_complete: bool = Field(description="True on the event for the last part of its root file to finish ETL.")


class SearchTrial(BaseModel):
    """One trial of a hyperparameter search: the settings it tried and the objective it reached."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    training_job: str = Field(description="The trial's SageMaker training job.")
    parameters: dict[str, str] = Field(description="The searched settings' values in this trial.")
    objective: float | None = Field(default=None, description="Its validation macro-F1; null if it failed.")
    status: str = Field(description="SageMaker's final status of the trial (Completed, Failed, Stopped).")


class SearchSummary(BaseModel):
    """A grid search over training settings (a SageMaker tuning job, Strategy Grid)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    strategy: str = Field(description="grid")
    tuning_job: str = Field(description="The SageMaker hyperparameter tuning job.")
    objective_metric: str = Field(
        description="What the trials were ranked by: validation macro-F1, never the test split."
    )
    trials: NonNegativeInt = Field(description="Trials the tuning job ran.")
    results: list[SearchTrial] = Field(default_factory=list, description="Every trial reported, in the grid's order.")
    best: SearchTrial | None = Field(default=None, description="The winner, whose model this version is.")


class ModelTrained(PipelineDetail):
    """A model version was trained and evaluated; promoted to models/current/ or not. Also published, with
    `status: failed`, `promoted: false` and empty metrics, when the version's training job failed."""

    version: str = Field(description="Model version, vMAJOR.MINOR.")
    model_prefix: str = Field(description="Prefix of the immutable version under models/.")
    promoted: bool = Field(description="Whether the version is now models/current/.")
    reason: str | None = Field(
        default=None, description="Why the version was not promoted (or why its training failed); null when promoted."
    )
    metrics: dict[str, float] = Field(description="Headline test metrics (accuracy, macro_f1, …); empty when failed.")
    previous_version: str | None = Field(default=None, description="The current version before this one.")
    trigger_root_file_id: str | None = Field(default=None, description="Root file whose ETL triggered training.")
    status: Literal["trained", "failed"] = Field(default="trained", description="failed: the training job failed.")
    engine: str = Field(default="sagemaker", description="Where the version was trained.")
    training_job: str | None = Field(
        default=None, description="The SageMaker training job whose model this is (the best trial of a search)."
    )
    failure_reason: str | None = Field(default=None, description="SageMaker's FailureReason, when the job failed.")
    search: SearchSummary | None = Field(default=None, description="The hyperparameter search, when there was one.")


class TrainingSkipped(PipelineDetail):
    """A training was triggered but trained no model: the etl/train/ corpus has too few labelled reviews in
    some class. Nothing was written under models/ and no version number was taken; the next training file
    to complete its ETL triggers a training over the whole corpus again, this one's reviews included."""

    reason: str = Field(description="What happened and what to do, in words a user can act on.")
    class_counts: dict[str, NonNegativeInt] = Field(
        description="Labelled reviews per class of label_target in the whole corpus, after de-duplication."
    )
    min_reviews_per_class: int = Field(ge=1, description="Reviews every class needs before a model is trained.")
    label_target: str = Field(description="The labelling the trainer trains for (sentiment3, stars or binary).")
    etl_files: NonNegativeInt = Field(description="etl/train/ parquet files the corpus was read from.")
    trigger_root_file_id: str | None = Field(default=None, description="Root file whose ETL triggered training.")


class PredictionsCompleted(FileDetail):
    """Every part of a root inference file was predicted."""

    prediction_keys: list[str] = Field(description="Prediction parquet keys, one per part.")
    manifest_key: str = Field(description="Key of the manifest (parts, rows, model version, checksums).")
    rows: NonNegativeInt = Field(description="Rows predicted over all parts.")
    model_version: str = Field(description="The one model version that predicted every part.")


PIPELINE_DETAILS: tuple[type[PipelineDetail], ...] = (
    FileReceived,
    FileOversized,
    FileChunked,
    FileValidated,
    FileRejected,
    EtlCompleted,
    ModelTrained,
    TrainingSkipped,
    PredictionsCompleted,
)
DETAIL_BY_TYPE: dict[str, type[PipelineDetail]] = {model.detail_type: model for model in PIPELINE_DETAILS}


def envelope_for(detail_model: type[PipelineDetail]) -> type[EventBridgeModel]:
    """The EventBridge envelope whose `detail` is `detail_model` (Powertools' specialisation pattern)."""
    return _ENVELOPES[detail_model]


def _make_envelope(detail_model: type[PipelineDetail]) -> type[EventBridgeModel]:
    namespace: dict[str, Any] = {
        "__annotations__": {"detail": detail_model},
        "__doc__": f"EventBridge event carrying a {detail_model.__name__} detail.",
        "detail": Field(description=detail_model.__doc__),
    }
    return type(f"{detail_model.__name__}Event", (EventBridgeModel,), namespace)


_ENVELOPES: dict[type[PipelineDetail], type[EventBridgeModel]] = {
    model: _make_envelope(model) for model in PIPELINE_DETAILS
}
