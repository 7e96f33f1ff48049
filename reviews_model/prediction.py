"""The prediction core: a loaded model and rows of an etl/ table in, class probabilities and labels out.

Plain functions over Arrow data, nothing Lambda-specific, so the same code runs in the predictor's
handler, in an AWS Batch array job (one part per index) or in the bench; the predictions/ file
format around it is the predictor's (`services/predictor/prediction.py`).

Speed: the features are built from the Arrow token lists with vectorised kernels
(`reviews_model.features`, shared with the trainer): no Python loop per review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shared.etl_schema import TEXT_LENGTH, TOKEN_COUNT, TOKENS

from .features import review_features
from .model import StackedModel, stacked_features


@dataclass(frozen=True)
class Classifier:
    """A loaded model version, ready to predict."""

    version: str
    model: StackedModel

    @classmethod
    def of(cls, version: str, model: StackedModel, threads: int | None = None) -> Classifier:
        if threads is not None:
            model.booster.set_param({"nthread": threads})
        return cls(version=version, model=model)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes


def class_probabilities(classifier: Classifier, etl: pa.Table | pa.RecordBatch) -> np.ndarray[Any, Any]:
    """(rows, classes) float32 probabilities, one column per `classifier.classes`."""
    model = classifier.model
    if etl.num_rows == 0:
        return np.zeros((0, len(model.classes)), dtype=np.float32)
    features = review_features(
        etl.column(TOKENS), etl.column(TOKEN_COUNT).to_numpy(), etl.column(TEXT_LENGTH).to_numpy(), model.vocabulary
    )
    stacked = stacked_features(features, model.heads)
    probabilities = model.booster.inplace_predict(stacked)
    return np.asarray(probabilities, dtype=np.float32).reshape(etl.num_rows, len(model.classes))


def predicted_labels(classes: tuple[str, ...], probabilities: np.ndarray[Any, Any]) -> pa.Array:
    """The most probable class of each row of `probabilities` (one column per class), as strings."""
    return pa.array(classes, pa.string()).take(pa.array(probabilities.argmax(axis=1)))
