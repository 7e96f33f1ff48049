"""The linear heads the booster stacks: what each one's stored weights mean."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.svm import LinearSVC

from reviews_model.model import HEADS, ModelConfig, fit_heads, head_scores, nb_svm_head, svm_sample


def corpus() -> tuple[sp.csr_matrix, np.ndarray]:
    """Three classes over six terms: term 0 only in class 0, term 1 only in class 2, the rest everywhere."""
    rng = np.random.default_rng(3)
    rows, labels = [], []
    for index in range(300):
        label = index % 3
        row = rng.random(6) * (rng.random(6) < 0.5)
        row[0] = 1.0 if label == 0 and rng.random() < 0.8 else 0.0
        row[1] = 1.0 if label == 2 and rng.random() < 0.8 else 0.0
        rows.append(row)
        labels.append(label)
    matrix = sp.csr_matrix(np.array(rows, dtype=np.float32))
    return matrix, np.array(labels, dtype=np.int64)


def test_the_nb_svm_head_scores_as_its_svm_does_on_the_ratio_scaled_features() -> None:
    matrix, labels = corpus()
    config = ModelConfig(nb_svm_c=0.5)
    head = nb_svm_head(matrix, labels, 3, config)

    presence = (matrix > 0).astype(np.float64).toarray()
    for grade in range(3):
        inside = config.nb_svm_alpha + presence[labels == grade].sum(axis=0)
        outside = config.nb_svm_alpha + presence[labels != grade].sum(axis=0)
        ratio = np.log((inside / inside.sum()) / (outside / outside.sum()))
        svm = LinearSVC(C=0.5, class_weight="balanced", random_state=config.seed)
        svm.fit(matrix.multiply(ratio.reshape(1, -1)).tocsr(), (labels == grade).astype(np.int64))
        expected = svm.decision_function(matrix.multiply(ratio.reshape(1, -1)).tocsr())
        np.testing.assert_allclose(head_scores(matrix, head)[:, grade], expected, rtol=1e-3, atol=1e-3)


def test_a_term_only_one_class_uses_weighs_for_that_class_and_against_the_others() -> None:
    matrix, labels = corpus()
    head = nb_svm_head(matrix, labels, 3, ModelConfig())
    assert head.weights.shape == (3, 6) and head.weights.dtype == np.float32
    assert head.weights[0, 0] > 0 > head.weights[2, 0]
    assert head.weights[2, 1] > 0 > head.weights[0, 1]


def test_the_heads_are_fitted_in_the_order_they_are_stacked() -> None:
    matrix, labels = corpus()
    heads = fit_heads(matrix, labels, 3, ModelConfig(), epochs=5)
    assert tuple(head.name for head in heads) == HEADS
    assert all(head.weights.shape == (3, 6) and head.bias.shape == (3,) for head in heads)


def test_the_svm_heads_learn_on_a_stratified_sample_of_a_corpus_past_their_row_cap() -> None:
    labels = np.repeat(np.arange(3, dtype=np.int64), [600, 300, 100])
    config = ModelConfig(max_svm_rows=1_000)
    assert svm_sample(labels, config) is None

    sample = svm_sample(np.concatenate([labels, labels]), ModelConfig(max_svm_rows=1_000))
    assert sample is not None and len(sample) == 1_000 and len(np.unique(sample)) == 1_000
    assert np.bincount(np.concatenate([labels, labels])[sample]).tolist() == [600, 300, 100]
