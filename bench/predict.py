"""Prediction benchmark: rows/s from an etl/ parquet file to its predictions parquet, on one core, against fastText.

Run from the repository root:  python bench/predict.py  [--rows 100000]

Prints JSON lines: {"bench": "predict", "system", "metric": "rows_per_s", "value", "unit": "rows/s", "rows", ...}.

Data: the English labelled files of ../shared/data, read the way the pipeline reads them (the
validator's `examine_file`, then the ETL's `transform_table`). The trainer's `prepare_reviews` and
`stratified_split` give the training rows; both systems are trained on exactly those rows (fastText on
the same token lists joined by spaces). The rows predicted are every ETL row of those files, repeated
until there are at least `--rows`, written as one etl/ parquet file the way the ETL writes it.

Both systems run on one core: Arrow's CPU pool and XGBoost at one thread, BLAS/OpenMP pools limited to
one (environment, set before numpy loads, and threadpoolctl), fastText trained and predicting on one
thread. What is timed, for each, is parquet bytes in → parquet bytes out, with the same output
columns: read the etl/ parquet, predict every row (the label and every class's probability), write
the predictions parquet (row_number, review_id, predicted_label, proba_<class>, and for the service
model_version, source_key, predicted_at). Loading or training the model is not timed (a warm Lambda
container, or a Batch job, loads it once). Each figure is the median of five runs, the systems
taking turns (a slow spell of a shared machine then slows both alike).

- amazon-reviews-nlp: `services.predictor.prediction.predict_parquet` with the trainer's default model.
- fasttext: fasttext-wheel, `train_supervised(wordNgrams=2, epoch=10, lr=0.5, dim=100)` (bench/train.py's
  settings), predicting through `model.f.predict` (its Python `predict()` wrapper breaks under NumPy 2)
  with k=-1, so it also returns every class's probability.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from corpus import english_etl_table  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

SOURCE_KEY = "raw/inference/bench.csv"


def etl_parquet(table: pa.Table, rows: int) -> tuple[bytes, int]:
    """`table` repeated to at least `rows` rows, row numbers running on, as the ETL writes a part."""
    repeats = -(-rows // table.num_rows)
    repeated = pa.concat_tables([table] * repeats)
    repeated = repeated.set_column(0, "row_number", pa.array(np.arange(repeated.num_rows, dtype=np.int64)))
    sink = io.BytesIO()
    pq.write_table(repeated, sink, compression="zstd")
    return sink.getvalue(), repeated.num_rows


Predict = Callable[[bytes], bytes]


def service_system(train: Any) -> Predict:
    from reviews_model.prediction import Classifier
    from services.predictor.prediction import Lineage, predict_parquet
    from services.trainer.training import TrainerSettings, train_on_split

    model, _ = train_on_split(train, TrainerSettings())
    classifier = Classifier.of("v1.0", model, threads=1)
    lineage = Lineage(source_key=SOURCE_KEY, predicted_at=datetime.now(UTC))
    return lambda body: predict_parquet(classifier, body, lineage).parquet


def fasttext_system(train: Any) -> Predict:
    import fasttext

    classes = train.classes
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as lines:
        for tokens, label in zip(train.token_lists(), train.labels, strict=True):
            lines.write(f"__label__{label} {' '.join(tokens)}\n")
        lines.flush()
        model = fasttext.train_supervised(
            lines.name, wordNgrams=2, epoch=10, lr=0.5, dim=100, thread=1, seed=0, verbose=0
        )
    prefix = len("__label__")

    def predict(body: bytes) -> bytes:
        etl = pq.read_table(io.BytesIO(body), columns=["row_number", "review_id", "tokens"])
        probabilities = np.zeros((etl.num_rows, len(classes)), dtype=np.float32)
        for row, review in enumerate(etl.column("tokens").to_pylist()):
            for probability, label in model.f.predict(" ".join(review) + "\n", -1, 0.0, "strict"):
                probabilities[row, int(label[prefix:])] = probability
        columns = {
            "review_id": etl.column("review_id"),
            "row_number": etl.column("row_number"),
            "predicted_label": pa.array(classes).take(pa.array(probabilities.argmax(axis=1))),
            **{f"proba_{label}": probabilities[:, index] for index, label in enumerate(classes)},
        }
        sink = io.BytesIO()
        pq.write_table(pa.table(columns), sink, compression="zstd")
        return sink.getvalue()

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="At least this many rows are predicted.")
    arguments = parser.parse_args()

    from services.trainer.training import TrainerSettings, prepare_reviews, stratified_split

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    table, _ = english_etl_table()
    settings = TrainerSettings()
    reviews, _ = prepare_reviews(table, settings.label_target)
    train_rows, _ = stratified_split(reviews.texts, reviews.labels, settings.test_fraction, settings.split_seed)
    train = reviews.subset(train_rows)
    body, rows = etl_parquet(table, arguments.rows)

    with threadpool_limits(limits=1):
        systems = {system: build(train) for system, build in SYSTEMS.items()}
        warm_up = etl_parquet(table.slice(0, 1_000), 1_000)[0]
        for predict in systems.values():
            predict(warm_up)  # first-call costs are not throughput
        times: dict[str, list[float]] = {system: [] for system in systems}
        for _ in range(REPEATS):  # interleaved, so a slow spell of the machine slows every system alike
            for system, predict in systems.items():
                started = time.perf_counter()
                predict(body)
                times[system].append(time.perf_counter() - started)
        for system, timed in times.items():
            seconds = statistics.median(timed)
            figure = {
                "bench": "predict",
                "system": system,
                "metric": "rows_per_s",
                "value": round(rows / seconds),
                "unit": "rows/s",
                "rows": rows,
                "seconds": round(seconds, 3),
                "repeats": REPEATS,
                "threads": 1,
                "train_rows": len(train),
            }
            print(json.dumps(figure), flush=True)


SYSTEMS = {"amazon-reviews-nlp": service_system, "fasttext": fasttext_system}
REPEATS = 5

if __name__ == "__main__":
    main()
