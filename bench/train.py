"""Training benchmark: the service's classifier against TF-IDF + logistic regression and fastText, same rows.

Run from the repository root:  python bench/train.py  [--target sentiment3] [--record]
                               python bench/train.py --scale  [--sizes 100000,300000,1000000]

Prints JSON lines, one per figure: {"bench": "train", "system", "metric", "value", "unit", "target", ...};
the last line is the data: {"bench": "train", "data": {...}}.

Data: every English labelled file of ../shared/data, read the way the pipeline reads it — the
validator's `examine_file` (format detection, layout mapping to the canonical schema), then the
ETL's `transform_table` (cleaning, tokens) — each row tagged with its source (the file's top folder
under ../shared/data, e.g. `amazon-alexa`), then labelled and de-duplicated on their tokens by the
trainer's `prepare_reviews` over all files at once (first seen keeps; about 31,400 distinct reviews),
so a review repeated across sources belongs to the first source it appears in. Every system gets
exactly the same train and test rows (the same token lists; fastText gets them joined by spaces) and
the same labels.

Evaluations, each system trained afresh for each, on the target (`--target`, sentiment3 by default)
and on the 5-class `stars` target (same rows, labels = the star ratings):
- random split: the trainer's `stratified_split` (80/20, stratified on the target, seeded), once.
  Figures: macro_f1, accuracy (target); train_seconds (wall clock of fitting only, vectorising
  included, prediction excluded) and peak_rss_mb (the process's VmHWM right after that fit and its
  prediction: the interpreter, imports and the loaded data included — the whole cost of a training job);
  stars_accuracy and stars_mae (mean |predicted star − true star|) for the stars target.
- leave-one-source-out (LOSO): every source with at least 1,000 distinct labelled reviews is held
  out in turn; the system trains on all the other sources' reviews (the smaller sources included)
  and is scored on the held-out one. Figures per held-out source (with "source"): loso_macro_f1,
  loso_stars_accuracy, loso_stars_mae; per system: loso_macro_f1_mean, loso_stars_accuracy_mean,
  loso_stars_mae_mean (plain means over the held-out sources). Macro-F1 is over all the target's
  classes (a class a source lacks still counts, with F1 0 when it is predicted or never predicted).

Systems, each in fresh Python processes (one for the random split, one for all its LOSO folds), so
that peak memory is the system's own:
- amazon-reviews-nlp: services.trainer with reviews_model, defaults (`train_on_split`, the reviews'
  star ratings passed along with the labels).
- tfidf-logreg: scikit-learn TfidfVectorizer (word 1–2-grams, min_df 2, sublinear tf) +
  LogisticRegression(C=4, class_weight="balanced", lbfgs), a strong, common baseline.
- fasttext: fasttext-wheel's train_supervised(wordNgrams=2, epoch=10, lr=0.5, dim=100, 2 threads),
  the best of the settings tried on the random split (epochs 5/10/25 × lr 0.1–1.0, uni- and bigrams:
  macro-F1 0.53–0.635). fastText trains with hogwild threads, so its figures move between runs: ~0.01
  on the random split, but its leave-one-source-out mean was 0.598, 0.636 and 0.626 in three runs on
  2026-12-01 (one held-out source from 0.44 to 0.60); TF-IDF + LR's was 0.6443 each time.

`--record` writes services/trainer/chosen_on.json after the run: the date, the LOSO figures per source
and their means, the random-split figures and the stars figures per system (rounded to 4 places), for
the trainer's HTML report to show as the note of what the default model was chosen on.

`--scale` measures how the cost of training grows with the corpus, for amazon-reviews-nlp and
tfidf-logreg, at 100k, 300k and 1M distinct reviews (`--sizes`), each size × system in a fresh process.
The rows are the random split's training rows (about 25,100 distinct real reviews; the test rows are
kept out so that they can score the models) repeated: the first copy as is, every later copy of a
review with 3 real words appended, drawn (numpy Generator, seed 0) from the training rows' own token
vocabulary weighted by each token's frequency; token_count and text_length follow, labels and ratings
are kept. A row that would repeat another one's tokens (checked over all rows, by a hash of the whole
token list: equal lists hash equal) has its 3 words drawn again, so every row is distinct, the way
the trainer's de-duplication would see them. The data is written to a parquet file per size; the
process reads it before the clock starts (loading is not train time, but peak_rss_mb includes the
loaded data: token lists, and for amazon-reviews-nlp the joined texts LabelledReviews holds, as a
training job holds them). Figures: train_seconds and peak_rss_mb (VmHWM right after the fit) with
"rows_train": N and "scale": true per size and system, macro_f1 of that model on the real random-split
test rows (unmodified), and per system time_ratio = train_seconds(largest) / train_seconds(smallest).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from corpus import SOURCE, english_etl_table_by_source  # noqa: E402

from shared.etl_schema import CLASSES, LABELS_BY_RATING, TrainableTarget  # noqa: E402

SYSTEMS = ("amazon-reviews-nlp", "tfidf-logreg", "fasttext")
SCALE_SYSTEMS = ("amazon-reviews-nlp", "tfidf-logreg")
LOSO_MIN_REVIEWS = 1000
"""A source is held out when it has at least this many distinct labelled reviews."""
SCALE_SIZES = (100_000, 300_000, 1_000_000)
APPENDED_WORDS = 3
SCALE_SEED = 0
MAX_DRAWS = 100
"""Draws of a repeated row's appended words before made_distinct gives up (real data needs one or two)."""
CHOSEN_ON = ROOT / "services" / "trainer" / "chosen_on.json"
UNITS = {
    "macro_f1": "ratio",
    "accuracy": "ratio",
    "train_seconds": "s",
    "peak_rss_mb": "MB",
    "stars_accuracy": "ratio",
    "stars_mae": "stars",
    "loso_macro_f1": "ratio",
    "loso_stars_accuracy": "ratio",
    "loso_stars_mae": "stars",
    "time_ratio": "ratio",
}
LOSO_MEANS = ("loso_macro_f1", "loso_stars_accuracy", "loso_stars_mae")

Figure = dict[str, Any]
Labels = npt.NDArray[np.int64]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def labels_of(ratings: npt.NDArray[Any], target: TrainableTarget) -> Labels:
    """Each star rating's class index in CLASSES[target] (the ratings must all have a label in the target)."""
    classes = CLASSES[target]
    lookup = np.array(
        [-1 if label is None else classes.index(label) for label in LABELS_BY_RATING[target]], dtype=np.int64
    )
    labels = lookup[np.asarray(ratings, dtype=np.int64)]
    if (labels < 0).any():
        raise ValueError(f"ratings without a {target} label")
    return labels


# -- the data, through the pipeline's own reading ----------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """The distinct labelled reviews (prepare_reviews' rows, in its order) with each one's source."""

    table: pa.Table
    """tokens, rating, token_count, text_length, source; one row per distinct review."""
    texts: list[str]
    labels: Labels
    details: dict[str, Any]


def distinct_reviews(target: TrainableTarget, limit: int | None = None) -> Corpus:
    """prepare_reviews over every English file at once, each kept review tagged with its file's source.

    `limit` (development only): keep at most that many reviews per source, drawn at random (seeded).
    """
    from services.trainer.training import prepare_reviews

    table, refused = english_etl_table_by_source()
    reviews, preparation = prepare_reviews(table, target)
    # prepare_reviews keeps the labelled rows whose joined tokens were not seen before; the same
    # selection over the table with its source column, checked against what it kept.
    labelled = table.filter(pc.is_valid(pc.index_in(table.column("rating"), pa.array(_rated(target), pa.int8()))))
    texts = pc.binary_join(labelled.column("tokens"), " ").to_pandas()
    kept = labelled.filter(pa.array(~texts.duplicated(keep="first").to_numpy()))
    kept = kept.select(["tokens", "rating", "token_count", "text_length", SOURCE])
    if kept.num_rows != len(reviews) or pc.binary_join(kept.column("tokens"), " ").to_pylist() != reviews.texts:
        raise RuntimeError("the sources do not line up with prepare_reviews' rows")
    labels = labels_of(kept.column("rating").to_numpy(), target)
    if not np.array_equal(labels, reviews.labels):
        raise RuntimeError("labels from the ratings differ from prepare_reviews' labels")
    texts_kept = reviews.texts
    if limit is not None:
        sources = kept.column(SOURCE).to_numpy(zero_copy_only=False)
        generator = np.random.default_rng(0)
        rows = np.sort(
            np.concatenate(
                [
                    generator.permutation(np.flatnonzero(sources == source))[:limit]
                    for source in dict.fromkeys(sources.tolist())
                ]
            )
        )
        kept, labels, texts_kept = kept.take(pa.array(rows)), labels[rows], [texts_kept[row] for row in rows]
    details = {
        "rows_etl": preparation.rows_in,
        "rows_distinct": preparation.rows_out,
        "refused_files": refused,
        "rows_by_source": {
            str(source): int(rows)
            for source, rows in pd.Series(kept.column(SOURCE).to_pylist()).value_counts(sort=False).items()
        },
    }
    if limit is not None:
        details["limit_per_source"] = limit
    return Corpus(table=kept, texts=texts_kept, labels=labels, details=details)


def _rated(target: TrainableTarget) -> list[int]:
    return [rating for rating, label in enumerate(LABELS_BY_RATING[target]) if label is not None]


def loso_sources(rows_by_source: dict[str, int], minimum: int) -> dict[str, int]:
    """The sources held out in turn: those with at least `minimum` distinct labelled reviews, largest first."""
    held = {source: rows for source, rows in rows_by_source.items() if rows >= minimum}
    return dict(sorted(held.items(), key=lambda item: (-item[1], item[0])))


def random_split(corpus: Corpus) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    from services.trainer.training import TrainerSettings, stratified_split

    settings = TrainerSettings()
    return stratified_split(corpus.texts, corpus.labels, settings.test_fraction, settings.split_seed)


def write_data(folder: Path, target: TrainableTarget, limit: int | None) -> dict[str, Any]:
    """reviews.parquet (every distinct review, its source and its side of the random split) and meta.json."""
    corpus = distinct_reviews(target, limit)
    train, test = random_split(corpus)
    side = np.full(corpus.table.num_rows, "train", dtype=object)
    side[test] = "test"
    pq.write_table(corpus.table.append_column("split", pa.array(side, pa.string())), folder / "reviews.parquet")
    held = loso_sources(corpus.details["rows_by_source"], min(LOSO_MIN_REVIEWS, limit or LOSO_MIN_REVIEWS))
    (folder / "meta.json").write_text(json.dumps({"target": target, "loso_sources": list(held)}))
    return {**corpus.details, "rows_train": len(train), "rows_test": len(test), "loso_sources": held}


# -- made-distinct copies for --scale ------------------------------------------------------------------


_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser, elementwise (uint64 arithmetic wraps)."""
    x = values.copy()
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _token_hash(ids: npt.NDArray[np.int64], positions: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """The hash of token id `ids` at `positions` in its row; a row's hash is the sum over its tokens."""
    return _mix(ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + positions.astype(np.uint64) + np.uint64(1))


def made_distinct(table: pa.Table, size: int, seed: int = SCALE_SEED) -> pa.Table:
    """`size` distinct rows from `table`'s distinct reviews (tokens, rating, token_count, text_length).

    Row i is review i % n; copy i // n > 0 of it has APPENDED_WORDS tokens appended, drawn from the
    reviews' own tokens weighted by frequency. A row whose whole token list hashes like an earlier row's
    (same list, or, very rarely, a hash collision) has its words drawn again until every hash is unique,
    which guarantees distinct token lists.
    """
    tokens = table.column("tokens").combine_chunks()
    count = len(tokens)
    encoded = pc.dictionary_encode(pc.list_flatten(tokens))
    vocabulary: pa.Array = encoded.dictionary
    base_ids = encoded.indices.to_numpy().astype(np.int64)
    lengths = pc.list_value_length(tokens).to_numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    frequency = np.bincount(base_ids, minlength=len(vocabulary)).astype(np.float64)
    frequency /= frequency.sum()
    word_chars = pc.utf8_length(vocabulary).to_numpy().astype(np.int64)
    row_of_token = np.repeat(np.arange(count), lengths)
    position = np.arange(len(base_ids)) - starts[row_of_token]
    base_hash = np.zeros(count, dtype=np.uint64)
    np.add.at(base_hash, row_of_token, _token_hash(base_ids, position))

    rows = np.arange(size)
    review, copy = rows % count, rows // count
    appended = np.flatnonzero(copy > 0)
    generator = np.random.default_rng(seed)
    words = generator.choice(len(vocabulary), size=(len(appended), APPENDED_WORDS), p=frequency)
    for _ in range(MAX_DRAWS):
        hashes = base_hash[review].copy()
        extra = np.zeros(len(appended), dtype=np.uint64)
        for k in range(APPENDED_WORDS):
            extra += _token_hash(words[:, k], lengths[review[appended]] + k)
        hashes[appended] += extra
        repeated = pd.Series(hashes).duplicated(keep="first").to_numpy()
        if not repeated.any():
            break
        redraw = np.flatnonzero(repeated[appended])
        if len(redraw) != repeated.sum():
            raise RuntimeError("two original reviews hash alike")  # 2^-64 per pair; never expected
        words[redraw] = generator.choice(len(vocabulary), size=(len(redraw), APPENDED_WORDS), p=frequency)
    else:
        raise RuntimeError(f"rows still repeat others after {MAX_DRAWS} draws: too small a vocabulary")

    out_lengths = lengths[review] + np.where(copy > 0, APPENDED_WORDS, 0)
    offsets = np.concatenate([[0], np.cumsum(out_lengths)])
    ids = np.empty(offsets[-1], dtype=np.int64)
    row_rep = np.repeat(rows, lengths[review])
    within = np.arange(len(row_rep)) - np.repeat(np.cumsum(lengths[review]) - lengths[review], lengths[review])
    ids[offsets[row_rep] + within] = base_ids[starts[review[row_rep]] + within]
    del row_rep, within
    for k in range(APPENDED_WORDS):
        ids[offsets[appended] + lengths[review[appended]] + k] = words[:, k]
    values = vocabulary.take(pa.array(ids))
    del ids
    new_chars = np.zeros(size, dtype=np.int64)
    new_chars[appended] = (word_chars[words] + 1).sum(axis=1)
    take = pa.array(review)
    return pa.table(
        {
            "tokens": pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values),
            "rating": table.column("rating").take(take),
            "token_count": pa.array(out_lengths.astype(np.int32)),
            "text_length": pa.array(
                (table.column("text_length").to_numpy().astype(np.int64)[review] + new_chars).astype(np.int32)
            ),
        }
    )


# -- one system, in its own process ------------------------------------------------------------------


Data = dict[str, Any]
Predictor = Callable[[Data], Labels]


def _columns(table: pa.Table) -> Data:
    return {
        # As the trainer holds them (an Arrow list array); the peers, which need Python lists, convert.
        "tokens": table.column("tokens").combine_chunks(),
        "ratings": table.column("rating").to_numpy().astype(np.int8),
        "token_count": table.column("token_count").to_numpy().astype(np.int32),
        "text_length": table.column("text_length").to_numpy().astype(np.int32),
    }


def fit(system: str, target: TrainableTarget, train: Data) -> tuple[Predictor, float]:
    """The system fitted on `train` for `target`, as a predictor of class indices; and the seconds fitting took."""
    labels = labels_of(train["ratings"], target)
    if system == "amazon-reviews-nlp":
        from reviews_model.model import predict_proba
        from services.trainer.training import LabelledReviews, TrainerSettings, train_on_split

        reviews = LabelledReviews(
            classes=CLASSES[target],
            tokens=train["tokens"],
            labels=labels,
            token_count=train["token_count"],
            text_length=train["text_length"],
            texts=pc.binary_join(train["tokens"], " ").to_pylist(),
            ratings=train["ratings"],
        )
        started = time.perf_counter()
        model, _ = train_on_split(reviews, TrainerSettings(label_target=target))
        seconds = time.perf_counter() - started

        def predict_model(test: Data) -> Labels:
            probabilities = predict_proba(model, test["tokens"], test["token_count"], test["text_length"])
            return np.asarray(probabilities.argmax(axis=1), dtype=np.int64)

        return predict_model, seconds
    if system == "tfidf-logreg":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        from reviews_model.features import ngrams_of

        token_lists = train["tokens"].to_pylist()
        started = time.perf_counter()
        vectorizer = TfidfVectorizer(analyzer=ngrams_of(2), min_df=2, sublinear_tf=True, dtype=np.float32)
        classifier = LogisticRegression(C=4.0, class_weight="balanced", max_iter=1000)
        classifier.fit(vectorizer.fit_transform(token_lists), labels)
        seconds = time.perf_counter() - started

        def predict_logreg(test: Data) -> Labels:
            return np.asarray(classifier.predict(vectorizer.transform(test["tokens"].to_pylist())), dtype=np.int64)

        return predict_logreg, seconds
    if system == "fasttext":
        import fasttext

        token_lists = train["tokens"].to_pylist()
        started = time.perf_counter()
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as lines:
            for tokens, label in zip(token_lists, labels, strict=True):
                lines.write(f"__label__{label} {' '.join(tokens)}\n")
            lines.flush()
            model = fasttext.train_supervised(
                lines.name, wordNgrams=2, epoch=10, lr=0.5, dim=100, thread=2, seed=0, verbose=0
            )
        seconds = time.perf_counter() - started

        def predict_fasttext(test: Data) -> Labels:
            # model.f.predict, not model.predict: fasttext-wheel 0.9.2's wrapper breaks under NumPy 2.
            return np.array(
                [
                    int(model.f.predict(" ".join(tokens) + "\n", 1, 0.0, "strict")[0][1][9:])
                    for tokens in test["tokens"].to_pylist()
                ],
                dtype=np.int64,
            )

        return predict_fasttext, seconds
    raise ValueError(f"unknown system {system}")


def scores(target: TrainableTarget, test: Data, predicted: Labels) -> dict[str, float]:
    """macro_f1 (over all the target's classes) and accuracy; for stars, mae in stars too."""
    from sklearn.metrics import accuracy_score, f1_score

    truth = labels_of(test["ratings"], target)
    classes = list(range(len(CLASSES[target])))
    figures = {
        "macro_f1": float(f1_score(truth, predicted, labels=classes, average="macro", zero_division=0.0)),
        "accuracy": float(accuracy_score(truth, predicted)),
    }
    if target == "stars":
        # CLASSES["stars"] is ("1", …, "5"): class index + 1 is the star.
        figures["mae"] = float(np.abs((predicted + 1) - test["ratings"].astype(np.int64)).mean())
    return figures


def _emit(metric: str, value: float, **context: Any) -> None:
    print(json.dumps({"metric": metric, "value": value, **context}), flush=True)


def _stars_figures(prefix: str, figures: dict[str, float], **context: Any) -> None:
    _emit(f"{prefix}stars_accuracy", figures["accuracy"], target="stars", **context)
    _emit(f"{prefix}stars_mae", figures["mae"], target="stars", **context)


def run_random(system: str, folder: Path) -> None:
    """The random split: the target's figures with train time and peak memory, then the stars figures."""
    target: TrainableTarget = json.loads((folder / "meta.json").read_text())["target"]
    table = pq.read_table(folder / "reviews.parquet")
    is_train = pc.equal(table.column("split"), "train")
    train, test = _columns(table.filter(is_train)), _columns(table.filter(pc.invert(is_train)))
    del table
    context = {"rows_train": len(train["tokens"]), "rows_test": len(test["tokens"])}
    predictor, seconds = fit(system, target, train)
    figures = scores(target, test, predictor(test))
    rss = peak_rss_mb()
    _emit("macro_f1", figures["macro_f1"], target=target, **context)
    _emit("accuracy", figures["accuracy"], target=target, **context)
    _emit("train_seconds", seconds, target=target, **context)
    _emit("peak_rss_mb", rss, target=target, **context)
    if target != "stars":
        del predictor
        predictor, _ = fit(system, "stars", train)
        figures = scores("stars", test, predictor(test))
    _stars_figures("", figures, **context)


def run_loso(system: str, folder: Path) -> None:
    """Every held-out source in turn: train on all the others, score on it (target, then stars)."""
    meta = json.loads((folder / "meta.json").read_text())
    target: TrainableTarget = meta["target"]
    table = pq.read_table(folder / "reviews.parquet")
    for source in meta["loso_sources"]:
        is_held = pc.equal(table.column(SOURCE), source)
        train, test = _columns(table.filter(pc.invert(is_held))), _columns(table.filter(is_held))
        context = {"source": source, "rows_train": len(train["tokens"]), "rows_test": len(test["tokens"])}
        predictor, _ = fit(system, target, train)
        figures = scores(target, test, predictor(test))
        _emit("loso_macro_f1", figures["macro_f1"], target=target, **context)
        if target != "stars":
            predictor, _ = fit(system, "stars", train)
            figures = scores("stars", test, predictor(test))
        _stars_figures("loso_", figures, **context)


def run_scale(system: str, folder: Path, rows: int) -> None:
    """Fit on the made-distinct rows of one size; time, peak memory, then macro-F1 on the real test rows."""
    target: TrainableTarget = json.loads((folder / "meta.json").read_text())["target"]
    train = _columns(pq.read_table(folder / f"scale_{rows}.parquet"))
    predictor, seconds = fit(system, target, train)
    rss = peak_rss_mb()
    del train
    test = _columns(pq.read_table(folder / "test.parquet"))
    figures = scores(target, test, predictor(test))
    context = {"target": target, "rows_train": rows, "scale": True}
    _emit("train_seconds", seconds, **context)
    _emit("peak_rss_mb", rss, **context)
    _emit("macro_f1", figures["macro_f1"], rows_test=len(test["tokens"]), **context)


# -- the parent: runs the processes, prints the figures -----------------------------------------------


def run_child(system: str, arguments: Sequence[str]) -> Iterator[Figure]:
    """The figures a child process prints, as they come, each with bench and system and unit; an error figure."""
    command = [sys.executable, __file__, "--system", system, *arguments]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True) as child:
            assert child.stdout is not None
            for line in child.stdout:
                if not line.startswith("{"):
                    continue
                figure = json.loads(line)
                metric = figure.pop("metric")
                yield {
                    "bench": "train",
                    "system": system,
                    "metric": metric,
                    "value": figure.pop("value"),
                    "unit": UNITS[metric],
                    **figure,
                }
        if child.returncode != 0:
            errors.seek(0)
            reason = errors.read().strip().splitlines()[-1:] or [f"exit status {child.returncode}"]
            yield {"bench": "train", "system": system, "task": arguments[0], "error": reason[0]}


def show(figure: Figure) -> Figure:
    if "value" in figure:
        figure = {**figure, "value": round(figure["value"], 4)}
    print(json.dumps(figure), flush=True)
    return figure


def default_run(arguments: argparse.Namespace) -> None:
    target: TrainableTarget = arguments.target
    collected: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        data = write_data(Path(folder), target, arguments.limit)
        for system in arguments.systems:
            for task in arguments.tasks:
                for figure in run_child(system, ["--task", task, "--folder", folder]):
                    collected.append(figure)
                    show(figure)
            for metric in LOSO_MEANS:
                values = [
                    figure["value"]
                    for figure in collected
                    if figure["system"] == system and figure.get("metric") == metric
                ]
                if len(values) == len(data["loso_sources"]) and values:
                    mean = {
                        "bench": "train",
                        "system": system,
                        "metric": f"{metric}_mean",
                        "value": float(np.mean(values)),
                        "unit": UNITS[metric],
                        "target": "stars" if "stars" in metric else target,
                        "sources": len(values),
                    }
                    collected.append(mean)
                    show(mean)
    print(json.dumps({"bench": "train", "data": data}), flush=True)
    if arguments.record:
        record(collected, data, target, arguments.systems)


def _model_design() -> str:
    from reviews_model.model import STACK_DESIGN

    return STACK_DESIGN


def record(collected: list[Figure], data: dict[str, Any], target: str, systems: Sequence[str]) -> None:
    """services/trainer/chosen_on.json from the run's figures; refused (exit 1) when any figure is missing."""

    def value(system: str, metric: str, source: str | None = None) -> float:
        for figure in collected:
            if figure["system"] == system and figure.get("metric") == metric and figure.get("source") == source:
                return round(float(figure["value"]), 4)
        raise SystemExit(f"--record: no {metric} for {system}{f' on {source}' if source else ''}; nothing written")

    chosen_on = {
        "date": datetime.now(UTC).date().isoformat(),
        "command": "python bench/train.py --record",
        "model_design": _model_design(),
        "target": target,
        "systems": list(systems),
        "loso": {
            "sources": {
                source: {
                    "rows_test": rows,
                    "macro_f1": {system: value(system, "loso_macro_f1", source) for system in systems},
                }
                for source, rows in data["loso_sources"].items()
            },
            "mean": {system: value(system, "loso_macro_f1_mean") for system in systems},
        },
        "random_split": {
            system: {"macro_f1": value(system, "macro_f1"), "accuracy": value(system, "accuracy")} for system in systems
        },
        "stars": {
            system: {
                "accuracy": value(system, "stars_accuracy"),
                "mae": value(system, "stars_mae"),
                "loso_accuracy_mean": value(system, "loso_stars_accuracy_mean"),
                "loso_mae_mean": value(system, "loso_stars_mae_mean"),
            }
            for system in systems
        },
    }
    CHOSEN_ON.write_text(json.dumps(chosen_on, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"bench": "train", "recorded": str(CHOSEN_ON.relative_to(ROOT))}), flush=True)


def scale_run(arguments: argparse.Namespace) -> None:
    target: TrainableTarget = arguments.target
    sizes = sorted(arguments.sizes)
    systems = [system for system in arguments.systems if system in SCALE_SYSTEMS]
    seconds: dict[str, dict[int, float]] = {system: {} for system in systems}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        corpus = distinct_reviews(target, arguments.limit)
        train, test = random_split(corpus)
        pq.write_table(corpus.table.take(pa.array(test)), folder / "test.parquet")
        (folder / "meta.json").write_text(json.dumps({"target": target}))
        base = corpus.table.take(pa.array(train))
        largest = made_distinct(base, sizes[-1])
        for size in sizes:
            pq.write_table(largest.slice(0, size), folder / f"scale_{size}.parquet")
        del largest
        for size in sizes:
            for system in systems:
                for figure in run_child(system, ["--task", "scale", "--folder", name, "--rows", str(size)]):
                    show(figure)
                    if figure.get("metric") == "train_seconds":
                        seconds[system][size] = figure["value"]
    for system, timed in seconds.items():
        if len(timed) == len(sizes) > 1:
            show(
                {
                    "bench": "train",
                    "system": system,
                    "metric": "time_ratio",
                    "value": timed[sizes[-1]] / timed[sizes[0]],
                    "unit": "ratio",
                    "target": target,
                    "scale": True,
                    "sizes": [sizes[0], sizes[-1]],
                }
            )
    data = {
        **corpus.details,
        "rows_base": len(train),
        "rows_test": len(test),
        "sizes": sizes,
        "appended_words": APPENDED_WORDS,
        "seed": SCALE_SEED,
    }
    print(json.dumps({"bench": "train", "scale": True, "data": data}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="sentiment3", choices=("sentiment3", "stars", "binary"))
    parser.add_argument("--record", action="store_true", help=f"write {CHOSEN_ON.relative_to(ROOT)} after the run")
    parser.add_argument("--scale", action="store_true", help="train time and memory at growing corpus sizes")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=list(SCALE_SIZES),
        help="--scale's sizes, comma-separated (default 100000,300000,1000000)",
    )
    # Development and the processes the bench starts.
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--systems", type=lambda text: text.split(","), default=list(SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument(
        "--tasks", type=lambda text: text.split(","), default=["random", "loso"], help=argparse.SUPPRESS
    )
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=("random", "loso", "scale"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.system:
        folder = Path(arguments.folder)
        if arguments.task == "random":
            run_random(arguments.system, folder)
        elif arguments.task == "loso":
            run_loso(arguments.system, folder)
        else:
            run_scale(arguments.system, folder, arguments.rows)
    elif arguments.scale:
        scale_run(arguments)
    else:
        default_run(arguments)


if __name__ == "__main__":
    main()
