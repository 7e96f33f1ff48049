"""bench/train.py's own parts: the made-distinct rows of --scale, the held-out sources, labels from ratings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_train", BENCH / "train.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_train"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def reviews(token_lists: list[list[str]]) -> pa.Table:
    return pa.table(
        {
            "tokens": pa.array(token_lists, pa.list_(pa.string())),
            "rating": pa.array([1 + index % 5 for index in range(len(token_lists))], pa.int8()),
            "token_count": pa.array([len(tokens) for tokens in token_lists], pa.int32()),
            "text_length": pa.array([len(" ".join(tokens)) for tokens in token_lists], pa.int32()),
        }
    )


def test_made_distinct_gives_n_distinct_rows_of_real_words(bench: ModuleType) -> None:
    base = reviews([["great", "product"], ["bad"], ["great"], ["not", "bad", "at", "all"], ["ok", "ok"]])
    scaled = bench.made_distinct(base, 53)
    tokens = scaled.column("tokens").to_pylist()
    assert len(tokens) == 53
    assert len({tuple(row) for row in tokens}) == 53
    originals = base.column("tokens").to_pylist()
    vocabulary = {token for row in originals for token in row}
    for index, row in enumerate(tokens):
        original = originals[index % 5]
        appended = 0 if index < 5 else 3
        assert row[: len(original)] == original
        assert len(row) == len(original) + appended
        assert set(row) <= vocabulary
    assert scaled.column("token_count").to_pylist() == [len(row) for row in tokens]
    assert scaled.column("text_length").to_pylist() == [len(" ".join(row)) for row in tokens]
    assert scaled.column("rating").to_pylist() == [base.column("rating")[index % 5].as_py() for index in range(53)]


def test_made_distinct_draws_again_rather_than_repeat_a_review(bench: ModuleType) -> None:
    # With a two-word vocabulary most draws repeat: a copy of ["a"] with "a a a" appended is the
    # second review itself, and copies of the same review often draw the same words.
    base = reviews([["a"], ["a", "a", "a", "a"], ["b", "b", "b"]])
    tokens = bench.made_distinct(base, 12).column("tokens").to_pylist()
    assert len({tuple(row) for row in tokens}) == 12


def test_made_distinct_gives_up_when_rows_cannot_be_distinct(bench: ModuleType) -> None:
    # One word, one review: every copy is "a a a a".
    with pytest.raises(RuntimeError, match="still repeat"):
        bench.made_distinct(reviews([["a"]]), 3)


def test_held_out_sources_have_at_least_the_minimum(bench: ModuleType) -> None:
    counts = {"small": 997, "exact": 1000, "large": 5000, "tiny": 3}
    assert bench.loso_sources(counts, 1000) == {"large": 5000, "exact": 1000}


def test_labels_from_ratings(bench: ModuleType) -> None:
    ratings = np.array([1, 2, 3, 4, 5], dtype=np.int8)
    assert bench.labels_of(ratings, "sentiment3").tolist() == [0, 0, 1, 2, 2]
    assert bench.labels_of(ratings, "stars").tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="binary"):
        bench.labels_of(ratings, "binary")


def test_record_writes_the_chosen_on_note(bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "CHOSEN_ON", tmp_path / "chosen_on.json")
    systems = ["amazon-reviews-nlp", "tfidf-logreg"]
    collected = []
    for offset, system in enumerate(systems):
        for metric in ("macro_f1", "accuracy", "stars_accuracy", "stars_mae", "loso_macro_f1_mean"):
            collected.append({"system": system, "metric": metric, "value": 0.5 + offset / 10 + 1e-6})
        for metric in ("loso_stars_accuracy_mean", "loso_stars_mae_mean"):
            collected.append({"system": system, "metric": metric, "value": 0.25})
        collected.append({"system": system, "metric": "loso_macro_f1", "source": "alexa", "value": 0.123456})
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    bench.record(collected, {"loso_sources": {"alexa": 3000}}, "sentiment3", systems)
    written = json.loads((tmp_path / "chosen_on.json").read_text())
    assert written["command"] == "python bench/train.py --record"
    assert written["systems"] == systems
    assert written["loso"]["sources"] == {"alexa": {"rows_test": 3000, "macro_f1": dict.fromkeys(systems, 0.1235)}}
    assert written["loso"]["mean"] == {"amazon-reviews-nlp": 0.5, "tfidf-logreg": 0.6}
    assert written["random_split"]["tfidf-logreg"] == {"macro_f1": 0.6, "accuracy": 0.6}
    assert written["stars"]["amazon-reviews-nlp"] == {
        "accuracy": 0.5,
        "mae": 0.5,
        "loso_accuracy_mean": 0.25,
        "loso_mae_mean": 0.25,
    }
    (tmp_path / "chosen_on.json").unlink()
    with pytest.raises(SystemExit, match="no loso_macro_f1 for fasttext"):
        bench.record(collected, {"loso_sources": {"alexa": 3000}}, "sentiment3", [*systems, "fasttext"])
    assert not (tmp_path / "chosen_on.json").exists()
