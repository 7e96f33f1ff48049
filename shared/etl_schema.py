"""The etl/ schema contract: the columns of every etl/ parquet file, the label targets and their classes.

The ETL writes these files; the trainer and the predictor (and the model package) read them. The
names, the rating → label mapping and each target's classes live here only, so the three agree by
construction. As in `shared.canonical`, pyarrow is imported only by the functions that need it, so
a service without pyarrow can import the names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from shared.canonical import LANGUAGE, RATING, REVIEW_ID, ROW_NUMBER

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CLASSES",
    "LABEL",
    "LABELS_BY_RATING",
    "LANGUAGE",
    "RATING",
    "REVIEW_ID",
    "ROW_NUMBER",
    "TEXT_LENGTH",
    "TOKENS",
    "TOKEN_COUNT",
    "LabelTarget",
    "TrainableTarget",
    "etl_arrow_schema",
    "labels_for",
]

TOKENS = "tokens"
"""The review's tokens, in order (after stop-word removal when the ETL removes them)."""
TOKEN_COUNT = "token_count"
TEXT_LENGTH = "text_length"
"""Characters of the cleaned text: the tokens before stop-word removal joined by single spaces."""
LABEL = "label"
"""The label of the star rating under the ETL's label target; null where it has none."""

LabelTarget = Literal["sentiment3", "stars", "binary", "none"]
"""How a star rating becomes a label: the ETL labels with one of these ("none": no label)."""
TrainableTarget = Literal["sentiment3", "stars", "binary"]
"""The targets a model can be trained for: every target but "none"."""

LABELS_BY_RATING: dict[LabelTarget, tuple[str | None, ...]] = {
    "sentiment3": (None, "negative", "negative", "neutral", "positive", "positive"),
    "stars": (None, "1", "2", "3", "4", "5"),
    "binary": (None, "negative", "negative", None, "positive", "positive"),
    "none": (None,) * 6,
}
"""The label of each star rating by target, index 0 unused; None where the target has no label for it."""

CLASSES: dict[TrainableTarget, tuple[str, ...]] = {
    target: tuple(dict.fromkeys(label for label in LABELS_BY_RATING[target] if label is not None))
    for target in ("sentiment3", "stars", "binary")
}
"""Each trainable target's classes, in the order a model's class columns follow (worst rating first)."""


def etl_arrow_schema() -> pa.Schema:
    """Columns of every etl/ parquet file."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(ROW_NUMBER, pa.int64(), nullable=False),
            pa.field(REVIEW_ID, pa.string()),
            pa.field(LANGUAGE, pa.string()),
            pa.field(RATING, pa.int8()),
            pa.field(LABEL, pa.string()),
            pa.field(TOKENS, pa.list_(pa.string()), nullable=False),
            pa.field(TOKEN_COUNT, pa.int32(), nullable=False),
            pa.field(TEXT_LENGTH, pa.int32(), nullable=False),
        ]
    )


def labels_for(rating: pa.Array, target: LabelTarget) -> pa.Array:
    """The label of each star rating; null where the rating is null, outside 1–5, or has no label in the target."""
    import pyarrow as pa
    import pyarrow.compute as pc

    in_range = pc.and_(pc.greater_equal(rating, 1), pc.less_equal(rating, 5))
    positions = pc.if_else(in_range, rating.cast(pa.int32()), pa.scalar(None, pa.int32()))
    return pa.array(LABELS_BY_RATING[target], pa.string()).take(positions)
