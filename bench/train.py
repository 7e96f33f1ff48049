"""Training benchmark: the service's classifier against TF-IDF + logistic regression and fastText, same split.

Run from the repository root:  python bench/train.py  [--target sentiment3]

Prints JSON lines, one per figure: {"bench": "train", "system", "metric", "value", "unit", ...}.

Data: every English labelled file of ../shared/data, read the way the pipeline reads it — the
validator's `examine_file` (format detection, layout mapping to the canonical schema), then the
ETL's `transform_table` (cleaning, tokens) — then labelled and de-duplicated on their tokens by the
trainer's `prepare_reviews` (about 31,400 distinct reviews) and split once by the trainer's
`stratified_split` (80/20, stratified, seeded). Every system gets exactly those train and test rows
(the same token lists; fastText gets them joined by spaces).

Systems, each in a fresh Python process, so that peak memory is the system's own:
- amazon-reviews-nlp: services.trainer with reviews_model (TF-IDF → out-of-fold linear heads → XGBoost hist), defaults.
- tfidf-logreg: scikit-learn TfidfVectorizer (word 1–2-grams, min_df 2, sublinear tf) +
  LogisticRegression(C=4, class_weight="balanced", lbfgs), a strong, common baseline.
- fasttext: fasttext-wheel's train_supervised(wordNgrams=2, epoch=10, lr=0.5, dim=100, 2 threads),
  the best of the settings tried on this split (epochs 5/10/25 × lr 0.1–1.0, uni- and bigrams:
  macro-F1 0.53–0.635). fastText trains with hogwild threads, so its figures move by ~0.01 between
  runs.

Figures per system: macro_f1 and accuracy on the test rows; train_seconds (wall clock of fitting
only, vectorising included, prediction excluded); peak_rss_mb (the process's VmHWM at the end: the
interpreter, imports and the loaded data included — the whole cost of a training job).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from corpus import english_etl_table  # noqa: E402

SYSTEMS = ("amazon-reviews-nlp", "tfidf-logreg", "fasttext")

Figure = dict[str, Any]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# -- the data, through the pipeline's own reading ----------------------------------------------------


def write_split(folder: Path, target: str) -> dict[str, Any]:
    from services.trainer.training import TrainerSettings, prepare_reviews, stratified_split

    table, refused = english_etl_table()
    settings = TrainerSettings(label_target=target)
    reviews, preparation = prepare_reviews(table, settings.label_target)
    train, test = stratified_split(reviews.texts, reviews.labels, settings.test_fraction, settings.split_seed)
    for name, rows in (("train", train), ("test", test)):
        pq.write_table(
            pa.table(
                {
                    "tokens": pa.array([reviews.tokens[row] for row in rows], pa.list_(pa.string())),
                    "label": pa.array(reviews.labels[rows]),
                    "token_count": pa.array(reviews.token_count[rows]),
                    "text_length": pa.array(reviews.text_length[rows]),
                }
            ),
            folder / f"{name}.parquet",
        )
    (folder / "classes.json").write_text(json.dumps(list(reviews.classes)))
    return {
        "rows_etl": preparation.rows_in,
        "rows_distinct": preparation.rows_out,
        "rows_train": len(train),
        "rows_test": len(test),
        "refused_files": refused,
    }


# -- one system, in its own process ------------------------------------------------------------------


def _load(folder: Path, name: str) -> dict[str, Any]:
    table = pq.read_table(folder / f"{name}.parquet")
    return {
        "tokens": table.column("tokens").to_pylist(),
        "labels": table.column("label").to_numpy(),
        "token_count": table.column("token_count").to_numpy(),
        "text_length": table.column("text_length").to_numpy(),
    }


def run_system(system: str, folder: Path, target: str) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    classes = json.loads((folder / "classes.json").read_text())
    train, test = _load(folder, "train"), _load(folder, "test")
    started = time.perf_counter()
    if system == "amazon-reviews-nlp":
        from reviews_model.model import predict_proba
        from services.trainer.training import LabelledReviews, TrainerSettings, train_on_split

        reviews = LabelledReviews(
            classes=tuple(classes),
            tokens=train["tokens"],
            labels=train["labels"].astype(np.int64),
            token_count=train["token_count"],
            text_length=train["text_length"],
            texts=[],
        )
        model, _ = train_on_split(reviews, TrainerSettings(label_target=target))
        seconds = time.perf_counter() - started
        predicted = predict_proba(model, test["tokens"], test["token_count"], test["text_length"]).argmax(axis=1)
    elif system == "tfidf-logreg":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        from reviews_model.features import ngrams_of

        vectorizer = TfidfVectorizer(analyzer=ngrams_of(2), min_df=2, sublinear_tf=True, dtype=np.float32)
        classifier = LogisticRegression(C=4.0, class_weight="balanced", max_iter=1000)
        classifier.fit(vectorizer.fit_transform(train["tokens"]), train["labels"])
        seconds = time.perf_counter() - started
        predicted = classifier.predict(vectorizer.transform(test["tokens"]))
    elif system == "fasttext":
        import fasttext

        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as lines:
            for tokens, label in zip(train["tokens"], train["labels"], strict=True):
                lines.write(f"__label__{label} {' '.join(tokens)}\n")
            lines.flush()
            model = fasttext.train_supervised(
                lines.name, wordNgrams=2, epoch=10, lr=0.5, dim=100, thread=2, seed=0, verbose=0
            )
        seconds = time.perf_counter() - started
        # model.f.predict, not model.predict: fasttext-wheel 0.9.2's wrapper breaks under NumPy 2.
        predicted = np.array(
            [int(model.f.predict(" ".join(tokens) + "\n", 1, 0.0, "strict")[0][1][9:]) for tokens in test["tokens"]]
        )
    else:
        raise ValueError(f"unknown system {system}")
    return {
        "macro_f1": float(f1_score(test["labels"], predicted, average="macro")),
        "accuracy": float(accuracy_score(test["labels"], predicted)),
        "train_seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="sentiment3", choices=("sentiment3", "stars", "binary"))
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.system:
        print(json.dumps(run_system(arguments.system, Path(arguments.folder), arguments.target)))
        return
    units = {"macro_f1": "ratio", "accuracy": "ratio", "train_seconds": "s", "peak_rss_mb": "MB"}
    with tempfile.TemporaryDirectory() as folder:
        data = write_split(Path(folder), arguments.target)
        for system in SYSTEMS:
            command = [sys.executable, __file__, "--system", system, "--folder", folder, "--target", arguments.target]
            finished = subprocess.run(command, capture_output=True, text=True, check=False)
            if finished.returncode != 0:
                reason = finished.stderr.strip().splitlines()[-1:] or ["no output"]
                print(json.dumps({"bench": "train", "system": system, "error": reason[0]}))
                continue
            figures = json.loads(finished.stdout.strip().splitlines()[-1])
            for metric, value in figures.items():
                figure: Figure = {
                    "bench": "train",
                    "system": system,
                    "metric": metric,
                    "value": round(value, 4),
                    "unit": units[metric],
                    "target": arguments.target,
                    "rows_train": data["rows_train"],
                    "rows_test": data["rows_test"],
                }
                print(json.dumps(figure), flush=True)
    print(json.dumps({"bench": "train", "data": data}), flush=True)


if __name__ == "__main__":
    main()
