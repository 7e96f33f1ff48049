"""The review classifier: linear models' out-of-fold class scores over TF-IDF, stacked into a small XGBoost.

Why this design. XGBoost straight on 50k sparse TF-IDF columns is slow (hundreds of seconds here:
every split is searched over every column) and still loses to a logistic regression, because a
tree sees one n-gram at a time while a linear model adds up the evidence of all of them. So the
linear models do what they are good at — weigh ~100k n-grams — and XGBoost does what it is good
at: combining a handful of dense, informative features non-linearly, with the class weighting and
early stopping.

1. TF-IDF over word 1–2-grams of the ETL tokens (`features.py`).
2. Three fast, different linear "heads" on it, each giving one score per class: a logistic
   regression (SGD, log loss), a linear SVM and a complement naive Bayes. Their scores for the
   training rows are out-of-fold (k-fold: each row scored by heads that never saw it), so the
   booster learns how far to trust each head on unseen text; for new text, the heads refitted on
   the whole training split score it.
3. XGBoost (hist, multi:softprob) over the heads' scores and two length features, with balanced
   class weights (tempered by `class_weight_power`) and early stopping on a stratified validation
   part of the training split.

Everything fitted is plain data: the vocabulary and idf, each head's weight matrix and bias, and the
booster (saved in XGBoost's UBJSON format by `artifacts.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from pydantic import BaseModel, ConfigDict, Field
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_sample_weight

from .features import (
    DENSE_FEATURES,
    FeatureConfig,
    FloatArray,
    TokenLists,
    Vocabulary,
    dense_features,
    fit_vocabulary,
    tfidf_matrix,
)

Matrix = Any
"""A scipy CSR matrix of TF-IDF rows."""

HEADS = ("logistic", "linear_svm", "complement_nb")
"""The linear heads, in the order their scores are stacked; part of the feature configuration."""
STACK_DESIGN = "tfidf-linear-heads-xgboost/1"


class ModelConfig(BaseModel):
    """Hyper-parameters: changing them retrains (minor version), it does not change what the features are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folds: int = Field(default=5, ge=2, description="Folds for the heads' out-of-fold scores.")
    logistic_alpha: float = Field(default=3e-5, gt=0, description="L2 strength of the SGD logistic regression.")
    logistic_epochs: int = Field(default=30, ge=1, description="Passes of SGD over the training rows.")
    svm_c: float = Field(default=0.3, gt=0, description="Inverse regularisation of the linear SVM.")
    nb_alpha: float = Field(default=0.3, gt=0, description="Additive smoothing of the complement naive Bayes.")
    class_weight_power: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Sample weight = balanced class weight ** power: 1 fully balanced, 0 unweighted. 0.5 gave "
        "the same macro-F1 as 1 on the bench data with clearly higher accuracy.",
    )
    validation_fraction: float = Field(default=0.15, gt=0, lt=0.5, description="Part of train used to stop early.")
    max_depth: int = Field(default=4, ge=1, le=12)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    max_rounds: int = Field(default=1000, ge=1)
    early_stopping_rounds: int = Field(default=50, ge=1)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    min_child_weight: float = Field(default=5.0, ge=0)
    threads: int = Field(default=2, ge=1, description="Threads for XGBoost and the SGD heads.")
    seed: int = Field(default=42)


@dataclass(frozen=True)
class LinearHead:
    """A linear model's scores: `tfidf @ weights.T + bias`, centred per row when `centred`."""

    name: str
    weights: FloatArray
    """(classes, terms)"""
    bias: FloatArray
    """(classes,)"""
    centred: bool = False


@dataclass(frozen=True)
class StackedModel:
    label_target: str
    classes: tuple[str, ...]
    vocabulary: Vocabulary
    heads: tuple[LinearHead, ...]
    booster: xgb.Booster

    @property
    def feature_names(self) -> list[str]:
        return stack_feature_names(self.heads, self.classes)


def stack_feature_names(heads: Sequence[LinearHead], classes: Sequence[str]) -> list[str]:
    return [f"{head.name}:{label}" for head in heads for label in classes] + list(DENSE_FEATURES)


def head_scores(matrix: Matrix, head: LinearHead) -> FloatArray:
    scores = np.asarray(matrix @ head.weights.T, dtype=np.float32) + head.bias
    if head.centred:
        scores -= scores.mean(axis=1, keepdims=True)
    return scores.astype(np.float32)


def stacked_features(matrix: Matrix, dense: FloatArray, heads: Sequence[LinearHead]) -> FloatArray:
    return np.hstack([*(head_scores(matrix, head) for head in heads), dense]).astype(np.float32)


def _two_sided(coef: Any, intercept: Any, classes: int) -> tuple[FloatArray, FloatArray]:
    """scikit-learn keeps one row for two classes; the stack wants one score per class."""
    weights = np.asarray(coef, dtype=np.float32)
    bias = np.asarray(intercept, dtype=np.float32).reshape(-1)
    if classes == 2 and weights.shape[0] == 1:
        return np.vstack([-weights, weights]), np.concatenate([-bias, bias])
    return weights, bias


def fit_heads(matrix: Matrix, labels: npt.NDArray[np.int64], classes: int, config: ModelConfig) -> list[LinearHead]:
    """The three linear heads fitted on `matrix` (class-balanced), as plain arrays."""
    logistic = SGDClassifier(
        loss="log_loss",
        alpha=config.logistic_alpha,
        max_iter=config.logistic_epochs,
        tol=None,
        class_weight="balanced",
        random_state=config.seed,
        n_jobs=config.threads,
    ).fit(matrix, labels)
    svm = LinearSVC(C=config.svm_c, class_weight="balanced", random_state=config.seed).fit(matrix, labels)
    bayes = ComplementNB(alpha=config.nb_alpha).fit(matrix, labels)
    return [
        LinearHead("logistic", *_two_sided(logistic.coef_, logistic.intercept_, classes)),
        LinearHead("linear_svm", *_two_sided(svm.coef_, svm.intercept_, classes)),
        LinearHead(
            "complement_nb",
            np.asarray(bayes.feature_log_prob_, dtype=np.float32),
            np.zeros(classes, dtype=np.float32),
            centred=True,
        ),
    ]


def class_weights(labels: npt.NDArray[np.int64], power: float) -> FloatArray:
    return np.asarray(compute_sample_weight("balanced", labels) ** power, dtype=np.float32)


@dataclass(frozen=True)
class FitReport:
    best_rounds: int
    vocabulary_size: int
    train_rows: int
    validation_rows: int
    validation_macro_f1: float
    """Macro-F1 on the validation part of the training split (out-of-fold head scores): the grid search's
    objective. Never the test split, which decides promotion."""


def fit_stacked_model(
    tokens: TokenLists,
    labels: npt.NDArray[np.int64],
    token_count: Any,
    text_length: Any,
    *,
    label_target: str,
    classes: Sequence[str],
    features: FeatureConfig,
    config: ModelConfig,
) -> tuple[StackedModel, FitReport]:
    """Fit the whole model on the training split; `labels` index into `classes`."""
    vocabulary = fit_vocabulary(tokens, features)
    matrix = tfidf_matrix(tokens, vocabulary)
    dense = dense_features(token_count, text_length)
    count = len(classes)

    out_of_fold = np.zeros((matrix.shape[0], len(HEADS) * count), dtype=np.float32)
    folds = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    for fitted_rows, scored_rows in folds.split(np.zeros(len(labels)), labels):
        heads = fit_heads(matrix[fitted_rows], labels[fitted_rows], count, config)
        out_of_fold[scored_rows] = np.hstack([head_scores(matrix[scored_rows], head) for head in heads])
    final_heads = tuple(fit_heads(matrix, labels, count, config))

    stacked = np.hstack([out_of_fold, dense])
    weights = class_weights(labels, config.class_weight_power)
    fit_rows, validation_rows = train_test_split(
        np.arange(len(labels)), test_size=config.validation_fraction, stratify=labels, random_state=config.seed
    )
    names = stack_feature_names(final_heads, classes)
    training = xgb.DMatrix(
        stacked[fit_rows], label=labels[fit_rows], weight=weights[fit_rows], feature_names=names, nthread=config.threads
    )
    validation = xgb.DMatrix(
        stacked[validation_rows],
        label=labels[validation_rows],
        weight=weights[validation_rows],
        feature_names=names,
        nthread=config.threads,
    )
    params: dict[str, Any] = {
        "objective": "multi:softprob",
        "num_class": count,
        "tree_method": "hist",
        "eval_metric": "mlogloss",
        "max_depth": config.max_depth,
        "eta": config.learning_rate,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "nthread": config.threads,
        "seed": config.seed,
    }
    booster = xgb.train(
        params,
        training,
        num_boost_round=config.max_rounds,
        evals=[(validation, "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
    )
    best_rounds = int(booster.best_iteration) + 1
    validation_predicted = booster.predict(validation, iteration_range=(0, best_rounds)).reshape(-1, count).argmax(1)
    validation_macro_f1 = float(
        f1_score(
            labels[validation_rows], validation_predicted, labels=list(range(count)), average="macro", zero_division=0.0
        )
    )
    model = StackedModel(
        label_target=label_target,
        classes=tuple(classes),
        vocabulary=vocabulary,
        heads=final_heads,
        booster=booster[:best_rounds],
    )
    report = FitReport(
        best_rounds=best_rounds,
        vocabulary_size=len(vocabulary.terms),
        train_rows=len(fit_rows),
        validation_rows=len(validation_rows),
        validation_macro_f1=validation_macro_f1,
    )
    return model, report


def predict_proba(model: StackedModel, tokens: TokenLists, token_count: Any, text_length: Any) -> FloatArray:
    """Class probabilities, one column per `model.classes`."""
    matrix = tfidf_matrix(tokens, model.vocabulary)
    stacked = stacked_features(matrix, dense_features(token_count, text_length), model.heads)
    probabilities = model.booster.predict(xgb.DMatrix(stacked, feature_names=model.feature_names))
    return np.asarray(probabilities, dtype=np.float32).reshape(len(tokens), len(model.classes))


def predict_labels(model: StackedModel, tokens: TokenLists, token_count: Any, text_length: Any) -> list[str]:
    best = predict_proba(model, tokens, token_count, text_length).argmax(axis=1)
    return [model.classes[index] for index in best]
