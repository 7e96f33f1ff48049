"""Test metrics of a classifier: accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


class ClassMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    precision: float
    recall: float
    f1: float
    support: int


class Evaluation(BaseModel):
    """Metrics on one test set; `confusion[i][j]` counts reviews of class i predicted as class j."""

    model_config = ConfigDict(frozen=True)

    classes: list[str]
    rows: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]] = Field(description="Rows: true class; columns: predicted class; in `classes` order.")

    def headline(self) -> dict[str, float]:
        """The figures carried by ModelTrained: accuracy, macro_f1, weighted_f1 and f1_<class>."""
        figures = {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "weighted_f1": self.weighted_f1}
        figures.update({f"f1_{label}": metrics.f1 for label, metrics in self.per_class.items()})
        return figures


def evaluate_labels(true: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> Evaluation:
    labels = list(classes)
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0.0)
    return Evaluation(
        classes=labels,
        rows=len(true),
        accuracy=float(accuracy_score(true, predicted)),
        macro_f1=float(f1_score(true, predicted, labels=labels, average="macro", zero_division=0.0)),
        weighted_f1=float(f1_score(true, predicted, labels=labels, average="weighted", zero_division=0.0)),
        per_class={
            label: ClassMetrics(
                precision=float(precision[index]),
                recall=float(recall[index]),
                f1=float(f1[index]),
                support=int(support[index]),
            )
            for index, label in enumerate(labels)
        },
        confusion=confusion_matrix(true, predicted, labels=labels).tolist(),
    )
