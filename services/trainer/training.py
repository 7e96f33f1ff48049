"""The training core: ETL parquet in, a fitted model and its test metrics out.

Plain functions over bytes, Arrow tables and arrays, so that the same code runs in the Lambda
handler, in a SageMaker training job (reading its channel's files from /opt/ml/input/data/, writing
`reviews_model.artifacts.model_files(...)` to /opt/ml/model/) or in the bench.

- Labels come from the star `rating`, through the etl/ schema's `labels_for` (`shared.etl_schema`: one
  mapping for the whole pipeline), for `TrainerSettings.label_target`, whatever target the ETL labelled with.
- Reviews with the same tokens are kept once (first seen): the corpus is every etl/train/ file ever
  received, so a file uploaded twice, or reviews repeated across sources, would otherwise be counted
  twice and land on both sides of the split.
- The split is stratified and seeded, and stable as the corpus grows: within each class, rows are
  ranked by a seeded hash of their text and the lowest `test_fraction` go to test. A review keeps its
  side from one training to the next (up to the moving cut-off), so the current model, trained on an
  earlier split, has rarely seen the new test rows it is compared on.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reviews_model.features import FeatureConfig, Tokens
from reviews_model.lexicon import valences
from reviews_model.model import FitReport, ModelConfig, StackedModel, fit_stacked_model, predict_labels
from shared.etl_schema import (
    CLASSES,
    LABEL,
    RATING,
    TEXT_LENGTH,
    TOKEN_COUNT,
    TOKENS,
    TrainableTarget,
    etl_arrow_schema,
    labels_for,
)

from .evaluation import Evaluation, evaluate_labels

CORPUS_COLUMNS = (TOKENS, RATING, TOKEN_COUNT, TEXT_LENGTH)


class TrainerSettings(BaseSettings):
    """What the trainer trains and when it promotes (env prefix REVIEWS_TRAINER_, nested with __)."""

    model_config = SettingsConfigDict(
        env_prefix="REVIEWS_TRAINER_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    label_target: TrainableTarget = Field(
        default="sentiment3",
        description="sentiment3: 1-2 negative, 3 neutral, 4-5 positive; stars: 5 classes; binary: 3-star dropped.",
    )
    min_macro_f1: float = Field(
        default=0.5, ge=0, le=1, description="A version is promoted only with a test macro-F1 above this floor."
    )
    test_fraction: float = Field(default=0.2, gt=0, lt=0.5, description="Share of each class held out for test.")
    split_seed: int = Field(default=42, description="Seed of the hash that assigns reviews to train or test.")
    drop_duplicate_texts: bool = Field(default=True, description="Keep one review per distinct token sequence.")
    min_reviews_per_class: int = Field(
        default=10, ge=2, description="Training refuses a corpus with fewer reviews than this in any class."
    )
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES[self.label_target]


class NotEnoughDataError(ValueError):
    """The corpus cannot train a model: too few labelled reviews in some class.

    An expected outcome while the corpus is small, not a fault: the trainer reports it and waits for
    more files rather than retrying.
    """

    def __init__(self, class_counts: dict[str, int], minimum: int) -> None:
        self.class_counts = class_counts
        """Labelled reviews in every class, after de-duplication."""
        self.minimum = minimum
        super().__init__(shortage(class_counts, minimum))


def shortage(class_counts: dict[str, int], minimum: int) -> str:
    """`too few labelled reviews, need 10 per class, have negative 2, neutral 0, positive 18`."""
    have = ", ".join(f"{name} {count}" for name, count in class_counts.items())
    return f"too few labelled reviews, need {minimum} per class, have {have}"


# -- the corpus --------------------------------------------------------------------------------------


def read_etl_parquet(sources: Iterable[bytes]) -> pa.Table:
    """The columns training needs, from every etl parquet file given, as one table."""
    tables = [pq.read_table(io.BytesIO(source), columns=list(CORPUS_COLUMNS)) for source in sources]
    if not tables:
        return pa.table({name: pa.array([], type) for name, type in _corpus_types().items()})
    return pa.concat_tables([table.cast(pa.schema(_corpus_types().items())) for table in tables])


def _corpus_types() -> dict[str, pa.DataType]:
    schema = etl_arrow_schema()
    return {name: schema.field(name).type for name in CORPUS_COLUMNS}


@dataclass(frozen=True)
class LabelledReviews:
    """Reviews ready for the model; `labels` index into `classes`."""

    classes: tuple[str, ...]
    tokens: Tokens
    """An Arrow list<string> array as the corpus is read (a million reviews' tokens as Python lists would take
    ~4 GB), or plain lists."""
    labels: npt.NDArray[np.int64]
    token_count: npt.NDArray[np.int32]
    text_length: npt.NDArray[np.int32]
    texts: list[str]
    """Tokens joined by single spaces: the review's identity for de-duplication and the split."""
    ratings: npt.NDArray[np.int8] | None = None
    """Star ratings 1-5 the labels came from: the linear heads learn the five grades even when the target
    has three classes (a 2 or a 4 is milder than a 1 or a 5). None where only labels are known (a test
    split read back to be scored)."""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: npt.NDArray[np.int64]) -> LabelledReviews:
        return LabelledReviews(
            classes=self.classes,
            tokens=self.tokens.take(pa.array(rows))
            if isinstance(self.tokens, pa.Array)
            else [self.tokens[row] for row in rows],
            labels=self.labels[rows],
            token_count=self.token_count[rows],
            text_length=self.text_length[rows],
            texts=[self.texts[row] for row in rows],
            ratings=None if self.ratings is None else self.ratings[rows],
        )

    def token_lists(self) -> list[list[str]]:
        tokens = self.tokens
        return tokens.to_pylist() if isinstance(tokens, pa.Array) else [list(row) for row in tokens]

    def label_names(self) -> list[str]:
        return [self.classes[index] for index in self.labels]


@dataclass(frozen=True)
class Preparation:
    rows_in: int
    rows_unlabelled: int
    rows_duplicate: int
    rows_out: int


def prepare_reviews(
    table: pa.Table, label_target: TrainableTarget, *, drop_duplicates: bool = True
) -> tuple[LabelledReviews, Preparation]:
    """Label the reviews from their rating and keep one per distinct text."""
    classes = CLASSES[label_target]
    table = table.select(list(CORPUS_COLUMNS))
    labels = labels_for(table.column(RATING).combine_chunks(), label_target)
    labelled = table.append_column(LABEL, labels).filter(pc.is_valid(labels))
    texts = pc.binary_join(labelled.column(TOKENS), " ").to_pandas()
    keep = ~texts.duplicated(keep="first").to_numpy() if drop_duplicates else np.ones(len(texts), dtype=bool)
    kept = labelled.filter(pa.array(keep))
    index = {label: position for position, label in enumerate(classes)}
    reviews = LabelledReviews(
        classes=classes,
        tokens=kept.column(TOKENS).combine_chunks(),
        labels=np.array([index[label] for label in kept.column(LABEL).to_pylist()], dtype=np.int64),
        token_count=kept.column(TOKEN_COUNT).to_numpy().astype(np.int32),
        text_length=kept.column(TEXT_LENGTH).to_numpy().astype(np.int32),
        texts=texts[keep].tolist(),
        ratings=kept.column(RATING).to_numpy().astype(np.int8),
    )
    preparation = Preparation(
        rows_in=table.num_rows,
        rows_unlabelled=table.num_rows - labelled.num_rows,
        rows_duplicate=labelled.num_rows - kept.num_rows,
        rows_out=kept.num_rows,
    )
    return reviews, preparation


def stratified_split(
    texts: Sequence[str], labels: npt.NDArray[np.int64], test_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(train rows, test rows): per class, the `test_fraction` of rows whose seeded text hash ranks lowest."""
    hash_key = hashlib.sha256(str(seed).encode()).hexdigest()[:16]
    hashes = pd.util.hash_pandas_object(pd.Series(list(texts), dtype=object), index=False, hash_key=hash_key)
    ranks = hashes.to_numpy()
    train: list[npt.NDArray[np.int64]] = []
    test: list[npt.NDArray[np.int64]] = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        ordered = rows[np.argsort(ranks[rows], kind="stable")]
        held_out = min(max(1, round(test_fraction * len(rows))), len(rows) - 1)
        test.append(ordered[:held_out])
        train.append(ordered[held_out:])
    return np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(np.int64)


# -- training ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingOutcome:
    model: StackedModel
    evaluation: Evaluation
    test: LabelledReviews
    fit: FitReport
    preparation: Preparation
    train_rows: int
    seconds: float


def check_enough(reviews: LabelledReviews, minimum: int) -> None:
    counts = np.bincount(reviews.labels, minlength=len(reviews.classes))
    if (counts < minimum).any():
        class_counts = {name: int(count) for name, count in zip(reviews.classes, counts, strict=True)}
        raise NotEnoughDataError(class_counts, minimum)


def train_on_split(train: LabelledReviews, settings: TrainerSettings) -> tuple[StackedModel, FitReport]:
    return fit_stacked_model(
        train.tokens,
        train.labels,
        train.token_count,
        train.text_length,
        label_target=settings.label_target,
        classes=train.classes,
        features=settings.features,
        config=settings.model,
        ratings=train.ratings,
        valences=valences() if settings.features.lexicon else None,
    )


def evaluate_model(model: StackedModel, reviews: LabelledReviews) -> Evaluation:
    """The model's metrics on `reviews` (its classes must be the reviews' classes)."""
    predicted = predict_labels(model, reviews.tokens, reviews.token_count, reviews.text_length)
    return evaluate_labels(reviews.label_names(), predicted, reviews.classes)


def outcome_details(outcome: TrainingOutcome, settings: TrainerSettings, files_read: int) -> dict[str, Any]:
    """What a version records about its training: the rows it saw and what the fit found."""
    return {
        "label_target": settings.label_target,
        "etl_files": files_read,
        "rows_in": outcome.preparation.rows_in,
        "rows_unlabelled": outcome.preparation.rows_unlabelled,
        "rows_duplicate": outcome.preparation.rows_duplicate,
        "rows_train": outcome.train_rows,
        "rows_test": len(outcome.test),
        "boosting_rounds": outcome.fit.best_rounds,
        "vocabulary_size": outcome.fit.vocabulary_size,
        "validation_macro_f1": round(outcome.fit.validation_macro_f1, 6),
        "train_seconds": round(outcome.seconds, 2),
    }


def train_and_evaluate(table: pa.Table, settings: TrainerSettings) -> TrainingOutcome:
    """Label, de-duplicate, split, fit on train and measure on test."""
    started = time.perf_counter()
    reviews, preparation = prepare_reviews(table, settings.label_target, drop_duplicates=settings.drop_duplicate_texts)
    check_enough(reviews, settings.min_reviews_per_class)
    train_rows, test_rows = stratified_split(reviews.texts, reviews.labels, settings.test_fraction, settings.split_seed)
    train, test = reviews.subset(train_rows), reviews.subset(test_rows)
    model, fit = train_on_split(train, settings)
    evaluation = evaluate_model(model, test)
    return TrainingOutcome(
        model=model,
        evaluation=evaluation,
        test=test,
        fit=fit,
        preparation=preparation,
        train_rows=len(train),
        seconds=time.perf_counter() - started,
    )
