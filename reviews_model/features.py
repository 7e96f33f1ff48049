"""Features from the ETL's tokens: word n-gram TF-IDF and a few dense per-review figures.

Fitting uses scikit-learn's TfidfVectorizer (with a pre-tokenised analyzer: the ETL already
tokenised); what is kept of the fit is plain data — the vocabulary (terms in column order) and the
idf weights — and every matrix, at training and at prediction time, is built from that data by
`tfidf_matrix`, so the model and the predictor compute the same features by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

TokenLists = Sequence[Sequence[str]]
FloatArray = npt.NDArray[np.float32]

DENSE_FEATURES = ("log_token_count", "log_text_length")


class FeatureConfig(BaseModel):
    """How text becomes features; a change here changes the model's major version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ngram_max: int = Field(default=2, ge=1, le=3, description="Word n-grams from 1 to this length.")
    min_df: int = Field(default=2, ge=1, description="An n-gram must occur in this many training reviews.")
    max_features: int = Field(default=200_000, ge=1, description="At most this many n-grams, the most frequent.")
    sublinear_tf: bool = Field(default=True, description="Term frequency as 1 + log(tf).")


def ngrams_of(ngram_max: int) -> Any:
    """The analyzer: a review's tokens and its n-grams up to `ngram_max`, joined by single spaces."""

    def ngrams(tokens: Sequence[str]) -> list[str]:
        terms = list(tokens)
        for size in range(2, ngram_max + 1):
            terms.extend(" ".join(tokens[start : start + size]) for start in range(len(tokens) - size + 1))
        return terms

    return ngrams


@dataclass(frozen=True)
class Vocabulary:
    """The fitted TF-IDF: terms in column order and their idf weights (plain data)."""

    config: FeatureConfig
    terms: list[str]
    idf: FloatArray
    """One float32 weight per term."""


def fit_vocabulary(tokens: TokenLists, config: FeatureConfig) -> Vocabulary:
    vectorizer = TfidfVectorizer(
        analyzer=ngrams_of(config.ngram_max),
        min_df=config.min_df,
        max_features=config.max_features,
        sublinear_tf=config.sublinear_tf,
        dtype=np.float32,
    )
    vectorizer.fit(tokens)
    terms = [""] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[column] = term
    return Vocabulary(config=config, terms=terms, idf=np.asarray(vectorizer.idf_, dtype=np.float32))


def tfidf_matrix(tokens: TokenLists, vocabulary: Vocabulary) -> Any:
    """L2-normalised TF-IDF rows over the vocabulary's terms (unknown n-grams are ignored)."""
    counter = CountVectorizer(
        analyzer=ngrams_of(vocabulary.config.ngram_max),
        vocabulary={term: column for column, term in enumerate(vocabulary.terms)},
        dtype=np.float32,
    )
    counts = counter.transform(tokens).tocsr()
    if vocabulary.config.sublinear_tf:
        np.log(counts.data, out=counts.data)
        counts.data += 1.0
    counts.data *= vocabulary.idf[counts.indices]
    return normalize(counts, norm="l2", copy=False)


def dense_features(token_count: Any, text_length: Any) -> FloatArray:
    """Per-review figures the linear scores do not carry: how long the review is."""
    return np.column_stack(
        [np.log1p(np.asarray(token_count, dtype=np.float32)), np.log1p(np.asarray(text_length, dtype=np.float32))]
    ).astype(np.float32)
