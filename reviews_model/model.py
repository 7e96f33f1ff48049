"""The review classifier: linear models' out-of-fold scores over TF-IDF windows, stacked into a small XGBoost.

Why this design. XGBoost straight on 200k sparse TF-IDF columns is slow (every split is searched
over every column) and still loses to a logistic regression, because a tree sees one n-gram at a
time while a linear model adds up the evidence of all of them. So the linear models do what they are
good at — weigh ~200k n-grams — and XGBoost does what it is good at: combining a few dozen dense,
informative features non-linearly, with the class weighting and early stopping.

1. Features (`features.py`): TF-IDF of word 1–2-grams over three windows of each review (all of it,
   its first tokens, its last tokens), sentiment-lexicon sums per window, two length figures.
2. Four fast, different linear "heads" on the whole-review TF-IDF — a logistic regression (SGD, log
   loss), a linear SVM, a complement naive Bayes and an NB-SVM (a linear SVM over the TF-IDF scaled by
   naive Bayes log-count ratios) — each giving one score per *star grade* (1–5)
   when the ratings are known, whatever the target: a 2 or a 4 reads differently from a 1 or a 5, and
   the grades are what tells a 3-star review from its neighbours. Each head also scores the first and
   the last tokens' TF-IDF with the same weights. The training rows' scores are out-of-fold (each row
   scored by heads that never saw it), so the booster learns how far to trust each head on unseen
   text; for new text, the heads refitted on the whole training split score it.
3. XGBoost (hist, multi:softprob) over the heads' scores, the lexicon sums and the lengths, with
   balanced class weights (tempered by `class_weight_power`) and early stopping on a stratified
   validation part of the training split.

Chosen on sources the model never saw: `bench/train.py`'s leave-one-source-out evaluation (train on
every source of ../shared/data but one, test on that one); its figures are in
`services/trainer/chosen_on.json`.

Cost that grows with the corpus, not faster: the vocabulary is chosen on a sample
(`FeatureConfig.vocabulary_sample_rows`), the number of out-of-fold folds and of SGD passes shrink as
the corpus grows (`out_of_fold_row_budget`, `logistic_row_passes`: a million reviews need neither five
folds nor thirty passes to fit 200k weights), the two SVM heads learn on at most `max_svm_rows` (liblinear's
time grows faster than its rows), and the booster learns on at most `max_booster_rows` of the out-of-fold
rows.

Everything fitted is plain data: the vocabulary, idf and lexicon weights, each head's weight matrix and
bias, and the booster (saved in XGBoost's UBJSON format by `artifacts.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import xgboost as xgb
from pydantic import BaseModel, ConfigDict, Field
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_sample_weight

from .features import (
    FeatureConfig,
    FloatArray,
    ReviewFeatures,
    Tokens,
    Vocabulary,
    dense_names,
    fit_features,
    review_features,
)

Matrix = Any
"""A scipy CSR matrix of TF-IDF rows."""

HEADS = ("logistic", "linear_svm", "complement_nb", "nb_svm")
"""The linear heads, in the order their scores are stacked; part of the feature configuration."""
STACK_DESIGN = "tfidf-windows-grade-heads-nbsvm-lexicon-xgboost/3"


class ModelConfig(BaseModel):
    """Hyper-parameters: changing them retrains (minor version), it does not change what the features are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folds: int = Field(default=5, ge=2, description="Folds for the heads' out-of-fold scores (at most).")
    out_of_fold_row_budget: int = Field(
        default=1_000_000,
        ge=1,
        description="Fewer folds as the corpus grows: folds = budget // rows, between 2 and `folds` (200k "
        "reviews: 5 folds; 300k: 3; a million: 2 folds of 500k, which the heads fit as well as 4/5 of them).",
    )
    logistic_alpha: float = Field(default=3e-5, gt=0, description="L2 strength of the SGD logistic regression.")
    logistic_epochs: int = Field(default=30, ge=1, description="Passes of SGD over the training rows (at most).")
    logistic_row_passes: int = Field(
        default=6_000_000,
        ge=1,
        description="Fewer SGD passes as the corpus grows: passes = this // rows, between 5 and `logistic_epochs`.",
    )
    svm_c: float = Field(default=0.3, gt=0, description="Inverse regularisation of the linear SVM.")
    nb_alpha: float = Field(default=0.3, gt=0, description="Additive smoothing of the complement naive Bayes.")
    nb_svm_c: float = Field(
        default=0.3,
        gt=0,
        description="Inverse regularisation of the NB-SVM's per-grade SVMs. On the unseen sources C = 0.1, 0.3 and 1 "
        "gave macro-F1 0.675, 0.678 and 0.675 (without the NB-SVM head: 0.671).",
    )
    nb_svm_alpha: float = Field(default=1.0, gt=0, description="Additive smoothing of the NB-SVM's log-count ratios.")
    max_svm_rows: int = Field(
        default=100_000,
        ge=1_000,
        description="The two SVM heads learn on at most this many rows (stratified; the NB-SVM's ratios still count "
        "every row). liblinear's time grows faster than its rows (300k reviews: 59 s for the linear SVM, 95 s for "
        "the NB-SVM, against 1.9 s and 2.2 s at 31k), and they are fitted once per fold and once more.",
    )
    class_weight_power: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Sample weight = balanced class weight ** power: 1 fully balanced, 0 unweighted. 0.5 beat "
        "both 0.25 and 0.75 on the unseen sources (macro-F1 0.674 against 0.670 and 0.664).",
    )
    validation_fraction: float = Field(default=0.15, gt=0, lt=0.5, description="Part of train used to stop early.")
    max_booster_rows: int = Field(
        default=250_000, ge=1_000, description="The booster learns on at most this many out-of-fold rows (stratified)."
    )
    max_depth: int = Field(default=4, ge=1, le=12)
    learning_rate: float = Field(
        default=0.07,
        gt=0,
        le=1,
        description="Shrinkage per boosting round. On the unseen sources 0.05, 0.07 and 0.1 score alike (macro-F1 "
        "0.669, 0.671, 0.669); 0.07 needs ~70% of 0.05's trees, and the trees are a third of prediction time.",
    )
    max_rounds: int = Field(default=1000, ge=1)
    early_stopping_rounds: int = Field(default=50, ge=1)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    min_child_weight: float = Field(default=5.0, ge=0)
    threads: int = Field(default=2, ge=1, description="Threads for XGBoost and the SGD heads.")
    seed: int = Field(default=42)

    def folds_for(self, rows: int) -> int:
        return max(2, min(self.folds, self.out_of_fold_row_budget // max(rows, 1)))

    def logistic_epochs_for(self, rows: int) -> int:
        return max(min(5, self.logistic_epochs), min(self.logistic_epochs, self.logistic_row_passes // max(rows, 1)))


@dataclass(frozen=True)
class LinearHead:
    """A linear model's scores: `tfidf @ weights.T + bias`, centred per row when `centred`."""

    name: str
    weights: FloatArray
    """(head classes, terms)"""
    bias: FloatArray
    """(head classes,)"""
    centred: bool = False


@dataclass(frozen=True)
class StackedModel:
    label_target: str
    classes: tuple[str, ...]
    vocabulary: Vocabulary
    heads: tuple[LinearHead, ...]
    booster: xgb.Booster
    head_classes: tuple[str, ...] | None = None
    """What the heads score: the star grades ("1" … "5") they were fitted on; None: the model's classes."""

    @property
    def scored_classes(self) -> tuple[str, ...]:
        return self.head_classes if self.head_classes is not None else self.classes

    @property
    def feature_names(self) -> list[str]:
        return stack_feature_names(self.heads, self.scored_classes, self.vocabulary.config)


def stack_feature_names(heads: Sequence[LinearHead], classes: Sequence[str], config: FeatureConfig) -> list[str]:
    """`logistic:negative` (whole review), `logistic@head:negative` (its first tokens), …, then the dense names."""
    names: list[str] = []
    for window in config.windows:
        where = "" if window == "all" else f"@{window}"
        names.extend(f"{head.name}{where}:{label}" for head in heads for label in classes)
    return names + dense_names(config)


def head_scores(matrix: Matrix, head: LinearHead) -> FloatArray:
    scores = np.asarray(matrix @ head.weights.T, dtype=np.float32) + head.bias
    if head.centred:
        scores -= scores.mean(axis=1, keepdims=True)
    return scores.astype(np.float32)


def stacked_features(features: ReviewFeatures, heads: Sequence[LinearHead]) -> FloatArray:
    """The booster's input: every head's scores of every window, then the dense figures."""
    scores = [head_scores(matrix, head) for matrix in features.tfidf.values() for head in heads]
    return np.hstack([*scores, features.dense]).astype(np.float32)


def _two_sided(coef: Any, intercept: Any, classes: int) -> tuple[FloatArray, FloatArray]:
    """scikit-learn keeps one row for two classes; the stack wants one score per class."""
    weights = np.asarray(coef, dtype=np.float32)
    bias = np.asarray(intercept, dtype=np.float32).reshape(-1)
    if classes == 2 and weights.shape[0] == 1:
        return np.vstack([-weights, weights]), np.concatenate([-bias, bias])
    return weights, bias


def svm_sample(labels: npt.NDArray[np.int64], config: ModelConfig) -> npt.NDArray[np.int64] | None:
    """The rows the SVM heads learn on: all of them up to `max_svm_rows`, else a stratified sample (None: all)."""
    if len(labels) <= config.max_svm_rows:
        return None
    rows, _ = train_test_split(
        np.arange(len(labels)), train_size=config.max_svm_rows, stratify=labels, random_state=config.seed
    )
    return np.sort(rows)


def nb_svm_head(
    matrix: Matrix,
    labels: npt.NDArray[np.int64],
    classes: int,
    config: ModelConfig,
    fit_on: tuple[Matrix, npt.NDArray[np.int64]] | None = None,
) -> LinearHead:
    """NB-SVM (Wang and Manning, 2012): per class, a binary linear SVM on the TF-IDF scaled by the naive Bayes
    log-count ratio of each n-gram (how much more often reviews of the class contain it than the others do).

    The scaling lets a few strongly partisan n-grams speak loudly while the SVM's margin keeps the common,
    ambiguous ones quiet; it is the head that reads reviews from unseen sources best. Scaling the features
    by r and then weighting them by w is the linear model r * w on the plain TF-IDF, so the head stores
    just that product: the same (classes, terms) matrix as every other head. The ratios count every row of
    `matrix`; the SVMs learn on `fit_on`, (rows, their labels) of it (None: all of it).
    """
    rows = matrix.shape[0]
    # Which reviews contain each n-gram, per class: a one-hot (classes, rows) times the presence pattern.
    presence = sp.csr_matrix((np.ones(matrix.nnz, dtype=np.float32), matrix.indices, matrix.indptr), shape=matrix.shape)
    one_hot = sp.csr_matrix((np.ones(rows, dtype=np.float32), (labels, np.arange(rows))), shape=(classes, rows))
    containing = np.asarray((one_hot @ presence).todense(), dtype=np.float64)
    everywhere = containing.sum(axis=0)
    fitted, fitted_labels = fit_on if fit_on is not None else (matrix, labels)
    weights = np.zeros((classes, matrix.shape[1]), dtype=np.float32)
    bias = np.zeros(classes, dtype=np.float32)
    for grade in range(classes):
        inside = config.nb_svm_alpha + containing[grade]
        outside = config.nb_svm_alpha + everywhere - containing[grade]
        ratio = np.log((inside / inside.sum()) / (outside / outside.sum())).astype(np.float32)
        scaled = sp.csr_matrix((fitted.data * ratio[fitted.indices], fitted.indices, fitted.indptr), shape=fitted.shape)
        svm = LinearSVC(C=config.nb_svm_c, class_weight="balanced", random_state=config.seed)
        svm.fit(scaled, (fitted_labels == grade).astype(np.int64))
        weights[grade] = ratio * svm.coef_.ravel()
        bias[grade] = float(svm.intercept_[0])
    return LinearHead("nb_svm", weights, bias)


def fit_heads(
    matrix: Matrix, labels: npt.NDArray[np.int64], classes: int, config: ModelConfig, epochs: int
) -> list[LinearHead]:
    """The four linear heads fitted on `matrix` (class-balanced), as plain arrays."""
    logistic = SGDClassifier(
        loss="log_loss",
        alpha=config.logistic_alpha,
        max_iter=epochs,
        tol=None,
        class_weight="balanced",
        random_state=config.seed,
        n_jobs=config.threads,
    ).fit(matrix, labels)
    svm_rows = svm_sample(labels, config)
    # Both SVM heads learn on the same rows, taken out of the matrix once.
    svm_matrix, svm_labels = (matrix, labels) if svm_rows is None else (matrix[svm_rows], labels[svm_rows])
    svm = LinearSVC(C=config.svm_c, class_weight="balanced", random_state=config.seed).fit(svm_matrix, svm_labels)
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
        nb_svm_head(matrix, labels, classes, config, fit_on=(svm_matrix, svm_labels)),
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
    folds: int = 5
    logistic_epochs: int = 30


def _grades(ratings: Any, labels: npt.NDArray[np.int64], classes: Sequence[str]) -> tuple[Any, tuple[str, ...] | None]:
    """What the heads learn: the star grades present when the ratings are known, else the labels."""
    if ratings is None:
        return labels, None
    stars = np.asarray(ratings, dtype=np.int64)
    grades = np.unique(stars)
    if len(grades) < 2 or len(grades) < len(classes):
        return labels, None
    return np.searchsorted(grades, stars).astype(np.int64), tuple(str(grade) for grade in grades)


def fit_stacked_model(
    tokens: Tokens,
    labels: npt.NDArray[np.int64],
    token_count: Any,
    text_length: Any,
    *,
    label_target: str,
    classes: Sequence[str],
    features: FeatureConfig,
    config: ModelConfig,
    ratings: Any = None,
    valences: Mapping[str, float] | None = None,
) -> tuple[StackedModel, FitReport]:
    """Fit the whole model on the training split; `labels` index into `classes`, `ratings` are their stars,
    `valences` the sentiment lexicon (`reviews_model.lexicon.valences()`, when `features.lexicon`)."""
    vocabulary, reviews = fit_features(tokens, token_count, text_length, features, seed=config.seed, valences=valences)
    head_labels, head_classes = _grades(ratings, labels, classes)
    scored = len(head_classes) if head_classes is not None else len(classes)
    rows = len(labels)
    folds, epochs = config.folds_for(rows), config.logistic_epochs_for(rows)
    whole = reviews.tfidf["all"]

    out_of_fold: FloatArray | None = None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    for fitted_rows, scored_rows in splitter.split(np.zeros(rows), head_labels):
        heads = fit_heads(whole[fitted_rows], head_labels[fitted_rows], scored, config, epochs)
        scores = stacked_features(reviews.rows(scored_rows), heads)
        if out_of_fold is None:
            out_of_fold = np.zeros((rows, scores.shape[1]), dtype=np.float32)
        out_of_fold[scored_rows] = scores
    assert out_of_fold is not None
    final_heads = tuple(fit_heads(whole, head_labels, scored, config, epochs))

    weights = class_weights(labels, config.class_weight_power)
    booster_rows = np.arange(rows)
    if rows > config.max_booster_rows:
        booster_rows, _ = train_test_split(
            booster_rows, train_size=config.max_booster_rows, stratify=labels, random_state=config.seed
        )
    fit_rows, validation_rows = train_test_split(
        booster_rows, test_size=config.validation_fraction, stratify=labels[booster_rows], random_state=config.seed
    )
    names = stack_feature_names(final_heads, head_classes or tuple(classes), features)
    count = len(classes)
    training = xgb.DMatrix(
        out_of_fold[fit_rows],
        label=labels[fit_rows],
        weight=weights[fit_rows],
        feature_names=names,
        nthread=config.threads,
    )
    validation = xgb.DMatrix(
        out_of_fold[validation_rows],
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
        head_classes=head_classes,
    )
    report = FitReport(
        best_rounds=best_rounds,
        vocabulary_size=len(vocabulary.terms),
        train_rows=len(fit_rows),
        validation_rows=len(validation_rows),
        validation_macro_f1=validation_macro_f1,
        folds=folds,
        logistic_epochs=epochs,
    )
    return model, report


def predict_proba(model: StackedModel, tokens: Tokens, token_count: Any, text_length: Any) -> FloatArray:
    """Class probabilities, one column per `model.classes`."""
    stacked = stacked_features(review_features(tokens, token_count, text_length, model.vocabulary), model.heads)
    probabilities = model.booster.inplace_predict(stacked)
    return np.asarray(probabilities, dtype=np.float32).reshape(len(stacked), len(model.classes))


def predict_labels(model: StackedModel, tokens: Tokens, token_count: Any, text_length: Any) -> list[str]:
    best = predict_proba(model, tokens, token_count, text_length).argmax(axis=1)
    return [model.classes[index] for index in best]
