"""A stand-in training container for the local SageMaker engine's tests: SageMaker's /opt/ml contract, nothing else.

Run as `python tests/sagemaker_standin.py train` with REVIEWS_SAGEMAKER_ROOT set, as the engine runs
the training image. What it does is chosen by its hyperparameters (all strings, as SageMaker passes them):

- `behaviour`: "succeed" (the default) writes model/model.json (the hyperparameters, the files of
  every channel, the job's name) and model/parts/part-0.txt, prints the metric lines and exits 0;
  "fail" writes `failure` to output/failure and exits 2; "exit" exits with `exit_code` and writes no
  failure; "sleep" sleeps `seconds` before succeeding.
- `score`: the validation macro-F1 printed; without it, `x` / 10 + `y` / 1000 (a grid's best is
  the largest x, then y).
- `trace`: a file to which it appends "<job name> <start> <end>" (how trials overlapped in time).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    started = time.time()
    root = Path(os.environ.get("REVIEWS_SAGEMAKER_ROOT", "/opt/ml"))
    hyperparameters: dict[str, str] = json.loads((root / "input/config/hyperparameters.json").read_text())
    behaviour = hyperparameters.get("behaviour", "succeed")
    print(f"stand-in container: {behaviour}", flush=True)
    if behaviour == "fail":
        (root / "output/failure").write_text(hyperparameters.get("failure", "AlgorithmError: failed"))
        return 2
    if behaviour == "exit":
        return int(hyperparameters.get("exit_code", "1"))
    if behaviour == "sleep":
        time.sleep(float(hyperparameters.get("seconds", "1")))
    data = root / "input/data"
    channels = {
        channel.name: sorted(str(path.relative_to(channel)) for path in channel.rglob("*") if path.is_file())
        for channel in sorted(data.iterdir())
    }
    model = {
        "hyperparameters": hyperparameters,
        "channels": channels,
        "job": os.environ.get("TRAINING_JOB_NAME"),
        "input_config": json.loads((root / "input/config/inputdataconfig.json").read_text()),
        "resource_config": json.loads((root / "input/config/resourceconfig.json").read_text()),
    }
    (root / "model/model.json").write_text(json.dumps(model))
    (root / "model/parts").mkdir()
    (root / "model/parts/part-0.txt").write_text("weights")
    score = hyperparameters.get("score")
    if score is None:
        score = str(float(hyperparameters.get("x", "0")) / 10 + float(hyperparameters.get("y", "0")) / 1000)
    print("validation:macro_f1=0.000001", flush=True)  # an early value: the last match wins
    print(f"validation:macro_f1={float(score):.6f}", flush=True)
    print("test:macro_f1=0.500000", flush=True)
    if "trace" in hyperparameters:
        with open(hyperparameters["trace"], "a", encoding="utf-8") as trace:
            trace.write(f"{os.environ.get('TRAINING_JOB_NAME')} {started} {time.time()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
