"""The training image's entry point: SageMaker's container contract around the training core.

SageMaker runs the image as `<entrypoint> train` with:

    /opt/ml/input/config/hyperparameters.json   every training setting, as strings (hyperparameters.py)
    /opt/ml/input/data/train/                   etl/train/ as it was when the job started (File mode)
    /opt/ml/input/data/current/                 the current model's files, when there is one

and takes back /opt/ml/model/ (as model.tar.gz: training_output.py says what is in it), the metric lines
printed here (the job's MetricDefinitions read `validation:macro_f1=…` for the grid search), and, on
failure, /opt/ml/output/failure (its FailureReason) with a non-zero exit code.

REVIEWS_SAGEMAKER_ROOT moves /opt/ml elsewhere (the local SageMaker engine lays out a temporary tree).
No AWS SDK here: the job reads and writes files only.
"""

from __future__ import annotations

import io
import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reviews_model.artifacts import UnsafeModelError, model_files, model_from_files

from .hyperparameters import from_hyperparameters
from .jobs import CURRENT_CHANNEL, TRAIN_CHANNEL
from .training import (
    LabelledReviews,
    TrainingOutcome,
    evaluate_model,
    outcome_details,
    read_etl_parquet,
    train_and_evaluate,
)
from .training_output import write_training_output

DEFAULT_ROOT = "/opt/ml"
_FAILURE_LIMIT = 1024
"""SageMaker keeps the first 1024 characters of /opt/ml/output/failure as the job's FailureReason."""


class CorpusError(ValueError):
    """The train channel holds a file that is not a readable etl parquet file."""


@dataclass(frozen=True)
class ContainerPaths:
    root: Path

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"


def read_corpus(folder: Path) -> tuple[pa.Table, int]:
    """Every etl parquet file of the train channel, as one table; CorpusError names a file that cannot be read."""
    paths = sorted(path for path in folder.rglob("*.parquet") if path.is_file()) if folder.is_dir() else []
    tables = []
    for path in paths:
        try:
            tables.append(read_etl_parquet([path.read_bytes()]))
        except (pa.ArrowException, KeyError, OSError) as error:
            relative = path.relative_to(folder).as_posix()
            raise CorpusError(f"etl/train/{relative} is not a readable etl parquet file: {error}") from error
    return (pa.concat_tables(tables) if tables else read_etl_parquet([])), len(paths)


def score_current_model(folder: Path, outcome: TrainingOutcome) -> dict[str, Any]:
    """The current model's version and macro-F1 on this job's test split, or a note saying why it has none."""
    if not folder.is_dir():
        return {"version": None, "macro_f1": None, "note": None}
    files = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    version = None
    try:
        model = model_from_files(files)
        version = json.loads(files["manifest.json"])["version"]
    except (UnsafeModelError, ValueError, KeyError) as error:
        return {"version": version, "macro_f1": None, "note": f"the current model could not be loaded ({error})"}
    if model.classes != outcome.model.classes:
        note = f"the current model {version} predicts other classes {list(model.classes)}; floor only"
        return {"version": version, "macro_f1": None, "note": note}
    return {"version": version, "macro_f1": evaluate_model(model, outcome.test).macro_f1, "note": None}


def test_split_parquet(test: LabelledReviews) -> bytes:
    table = pa.table(
        {
            "tokens": pa.array(test.token_lists(), pa.list_(pa.string())),
            "token_count": pa.array(test.token_count, pa.int32()),
            "text_length": pa.array(test.text_length, pa.int32()),
            "label": pa.array(test.label_names(), pa.string()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def train(paths: ContainerPaths) -> dict[str, float]:
    """One training as the job's contract asks; the metrics printed for MetricDefinitions."""
    hyperparameters = json.loads(paths.hyperparameters.read_text(encoding="utf-8"))
    settings, version = from_hyperparameters(hyperparameters)
    table, files_read = read_corpus(paths.channel(TRAIN_CHANNEL))
    outcome = train_and_evaluate(table, settings)
    details = outcome_details(outcome, settings, files_read)
    current = score_current_model(paths.channel(CURRENT_CHANNEL), outcome)
    evaluation = {
        "version": version,
        "evaluation": outcome.evaluation.model_dump(),
        "validation_macro_f1": outcome.fit.validation_macro_f1,
        "details": details,
        "current": current,
        "hyperparameters": hyperparameters,
    }
    write_training_output(
        paths.model,
        model_files(outcome.model, version, extra={"training": details}),
        json.dumps(evaluation, indent=2).encode(),
        test_split_parquet(outcome.test),
    )
    return {
        "validation:macro_f1": outcome.fit.validation_macro_f1,
        "test:macro_f1": outcome.evaluation.macro_f1,
        "test:accuracy": outcome.evaluation.accuracy,
    }


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    paths = ContainerPaths(Path(os.environ.get("REVIEWS_SAGEMAKER_ROOT", DEFAULT_ROOT)))
    if arguments[:1] not in (["train"], []):
        print(
            f"usage: {Path(sys.argv[0]).name} train (SageMaker's training contract); got {arguments}", file=sys.stderr
        )
        return 2
    try:
        metrics = train(paths)
    except Exception as error:  # noqa: BLE001 - every failure becomes the job's FailureReason, as SageMaker asks
        traceback.print_exc()
        paths.failure.parent.mkdir(parents=True, exist_ok=True)
        paths.failure.write_text(f"{type(error).__name__}: {error}"[:_FAILURE_LIMIT], encoding="utf-8")
        return 1
    for name, value in metrics.items():
        print(f"{name}={value:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
