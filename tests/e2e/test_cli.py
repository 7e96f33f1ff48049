"""The CLI as people use it: through the real `reviews-pipeline` process, its exit codes and its messages.

Usage errors are found before any stack starts, so those tests are quick; the rest run the real
local runtime (moto's server, one worker process per service) on real review files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from reviews_pipeline.cli import COMMANDS, _parser
from reviews_pipeline.stack import StackInfo, client
from tests.data_paths import REPO, SHARED_DATA
from tests.e2e.test_local_runtime import BEAUTY, CLI, GIFT_CARD, MARC_REFERENCE, run_cli, write_config

pytestmark = pytest.mark.e2e

MCAULEY = SHARED_DATA / "mcauley-category-samples-keithgalli"
FASHION = SHARED_DATA / "mcauley2018-amazon-fashion-5core" / "AMAZON_FASHION_5.json"


def assert_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# -- usage and configuration errors: exit 2, one line, before anything starts -------------------


def test_a_missing_input_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.tsv"
    assert_usage_error(run_cli("run", "--train", GIFT_CARD, "--train", missing), str(missing), "no such file")


def test_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("not reviews")
    assert_usage_error(run_cli("run", "--infer", tmp_path), str(tmp_path), "no review files")


def test_no_input_at_all_is_a_usage_error() -> None:
    assert_usage_error(run_cli("run"), "--train", "--infer")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["no such file"]),
        ("services: [unclosed\n", ["not valid YAML"]),
        ("visibilty_timeout_seconds: 3\n", ["visibilty_timeout_seconds"]),
        ("settle_timeout_seconds: soon\n", ["settle_timeout_seconds"]),
        ("services:\n  validatr: {max_size_bytes: 10}\n", ["validatr", "validator"]),
        ("services:\n  validator: {max_size_bytez: 10}\n", ["max_size_bytez", "max_size_bytes"]),
        ("services:\n  validator: {max_size_bytes: big}\n", ["services.validator.max_size_bytes"]),
    ],
    ids=["missing", "bad-yaml", "unknown-key", "wrong-type", "unknown-service", "unknown-setting", "setting-type"],
)
def test_a_bad_config_is_a_usage_error_naming_the_key(tmp_path: Path, content: str | None, words: list[str]) -> None:
    config = tmp_path / "settings.yaml"
    if content is not None:
        config.write_text(content)
    result = run_cli("run", "--train", GIFT_CARD, "--config", config, "--out", tmp_path / "out")
    assert_usage_error(result, "settings.yaml", *words)
    assert not (tmp_path / "out").exists(), "nothing is started or written for a configuration error"


def test_an_out_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "results.txt"
    out.write_text("keep me")
    assert_usage_error(run_cli("run", "--train", GIFT_CARD, "--out", out), str(out), "is a file")
    assert out.read_text() == "keep me"


def test_an_endpoint_that_does_not_answer_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = run_cli("run", "--train", GIFT_CARD, "--endpoint-url", f"http://127.0.0.1:{port}", "--out", tmp_path)
    assert_usage_error(result, f"http://127.0.0.1:{port}", "does not answer")
    assert time.monotonic() - started < 30
    assert_usage_error(run_cli("run", "--train", GIFT_CARD, "--endpoint-url", "localhost:4566"), "http(s) URL")


def test_debug_shows_the_traceback_behind_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("run", "--train", tmp_path / "nowhere.tsv", "--debug")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("reviews-pipeline run: ")


def test_status_and_redrive_without_a_stack_say_how_to_start_one(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    assert_usage_error(run_cli("status", "--state", state), str(state), "reviews-pipeline up")
    assert_usage_error(run_cli("redrive", "validator", "--state", state), "reviews-pipeline up")
    # A state file left by an `up` that was killed: its endpoint is gone.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    StackInfo(f"http://127.0.0.1:{port}", "us-east-1", "b", "e", "t", "a").save(state, owner_pid=None)
    started = time.monotonic()
    assert_usage_error(run_cli("status", "--state", state), str(state), "does not answer", "still running")
    assert time.monotonic() - started < 20


def test_version_and_help_for_every_option() -> None:
    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("reviews-pipeline 0.")
    for command in COMMANDS:
        shown = run_cli(command, "--help")
        assert shown.returncode == 0, shown.stderr
        assert "--debug" in shown.stdout
    # Every option of every command explains itself.
    commands = next(action for action in _parser()._actions if action.dest == "command")
    for name, subparser in commands.choices.items():  # type: ignore[union-attr]
        for action in subparser._actions:
            assert action.help, f"`{name} {'/'.join(action.option_strings) or action.dest}` has no help"


# -- runs: every file once, the run's own model, exits that say what happened ------------------


def prediction_versions(out: Path, prediction_keys: list[str]) -> set[str]:
    versions: set[str] = set()
    for key in prediction_keys:
        table = pq.read_table(io.BytesIO((out / key).read_bytes()), columns=["model_version"])
        versions.update(table.column(0).to_pylist())
    return versions


def test_a_run_takes_every_file_given_and_predicts_with_the_model_it_trained(tmp_path: Path) -> None:
    folder = tmp_path / "category-samples"
    shutil.copytree(MCAULEY, folder)  # six JSON-lines files and a PROVENANCE.md, which is not reviews
    fashion = tmp_path / "fashion.json"
    fashion.write_text("".join(FASHION.open(encoding="utf-8").readlines()[:800]), encoding="utf-8")
    out = tmp_path / "out"

    result = run_cli(
        "run",
        "--train", GIFT_CARD,
        "--train", folder,
        "--train", MARC_REFERENCE, GIFT_CARD,  # the Gift Card file a second time
        "--infer", BEAUTY,
        "--infer", fashion,
        "--out", out, "--json",
        timeout=900,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    train = [file for file in summary["files"] if file["dataset"] == "train"]
    inference = [file for file in summary["files"] if file["dataset"] == "inference"]
    assert len(train) == 8 and len(inference) == 2
    assert [Path(file["path"]).name for file in inference] == [BEAUTY.name, fashion.name]
    assert all(file["status"] == "validated" for file in summary["files"]), summary["files"]
    assert summary["inputs"]["repeated"] == [{"path": str(GIFT_CARD), "dataset": "train"}]
    assert [Path(skipped["path"]).name for skipped in summary["inputs"]["skipped"]] == ["PROVENANCE.md"]
    assert "given twice" in result.stderr
    # Training settled before the inference files went in: every prediction row carries the model
    # the summary reports, the last one this run promoted.
    model = summary["model"]
    assert model["promoted"] is True
    assert model["current_version"] == model["version"]
    assert model["version"] == [entry for entry in model["trained"] if entry["promoted"]][-1]["version"]
    for prediction, file in zip(summary["predictions"], inference, strict=True):
        assert prediction["model_version"] == model["version"]
        assert prediction["rows"] == file["reconciliation"]["rows_final_bucket"] > 0
        assert prediction_versions(out, prediction["predictions"]) == {model["version"]}
    assert summary["rows_lost"] == 0


def test_a_file_whose_message_is_parked_in_a_dlq_ends_the_wait_and_exits_1(tmp_path: Path) -> None:
    # Every read of the raw file fails: the validator's message goes to its DLQ after three receives.
    config = write_config(
        tmp_path / "config.json",
        visibility_timeout_seconds=1,
        aws_max_attempts=1,
        settle_timeout_seconds=600,
        faults=[{"name": "broken", "service": "validator", "action": "error", "status": 500,
                 "operation": "s3:GetObject", "key_prefix": "raw/", "times": None}],
    )  # fmt: skip
    started = time.monotonic()

    result = run_cli("run", "--train", GIFT_CARD, "--config", config, "--out", tmp_path / "out", "--json", timeout=400)

    assert result.returncode == 1, result.stderr[-3000:]
    assert time.monotonic() - started < 180, "the wait ends once the message is parked, not at the timeout"
    summary = json.loads(result.stdout)
    assert summary["settled"] is False
    assert summary["dlq"]["validator"] >= 1
    (stuck,) = summary["stuck"]
    assert str(GIFT_CARD) in stuck and "validator dead-letter queue" in stuck


def test_a_run_that_does_not_settle_in_time_exits_3_and_holds_back_inference(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json", settle_timeout_seconds=1)

    result = run_cli("run", "--train", GIFT_CARD, "--infer", BEAUTY, "--config", config, "--out", tmp_path / "out",
                     "--json")  # fmt: skip

    assert result.returncode == 3, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["settled"] is False and summary["stuck"]
    (held,) = [file for file in summary["files"] if file["dataset"] == "inference"]
    assert held["status"] == "not_uploaded"
    assert "training did not settle" in held["reason"]


# -- up and status: one state file per stack, live lines, DLQ depths and alerts ------------------


def start_up(state: Path, config: Path, cwd: Path = REPO) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "up", "--state", str(state), "--config", str(config)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], done: Any, timeout: float = 120) -> list[str]:
    """Lines of `up`'s output until `done(lines so far)` holds (the reading blocks per line)."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if done(lines):
            return lines
    raise AssertionError("not seen in `up`'s output:\n" + "\n".join(lines[-50:]))


def test_up_shows_files_and_alerts_as_they_change_and_keeps_one_state_file_per_stack(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    config = write_config(tmp_path / "config.json", visibility_timeout_seconds=1)
    up = start_up(state, config)
    try:
        banner = read_until(up, lambda lines: lines[-1].startswith("Ctrl-C"))
        (export,) = [line.strip() for line in banner if line.strip().startswith("export AWS_ENDPOINT_URL=")]
        assert {"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_DEFAULT_REGION=", "REVIEWS_BUCKET="} <= {
            part.split("=")[0] + "=" for part in export.split()[1:]
        }
        # A second `up` on the same state file refuses, and leaves the first one's file alone.
        second = run_cli("up", "--state", state, "--config", config)
        assert_usage_error(second, str(state), "--state")
        assert state.is_file()

        environment = dict(part.split("=", 1) for part in export.split()[1:])
        bucket = environment["REVIEWS_BUCKET"]
        put = run_cli_with_aws(environment, "s3", "cp", str(GIFT_CARD), f"s3://{bucket}/raw/train/gift.tsv")
        assert put.returncode == 0, put.stderr
        bad = tmp_path / "empty.csv"
        bad.write_text("")
        put = run_cli_with_aws(environment, "s3", "cp", str(bad), f"s3://{bucket}/raw/train/empty.csv")
        assert put.returncode == 0, put.stderr
        seen = read_until(
            up,
            lambda lines: (
                any("gift.tsv: validated, training completed" in line for line in lines)
                and any(" ALERT [file_rejected]" in line and "empty.csv" in line for line in lines)
            ),
            timeout=240,
        )
        # One line per change: the file was seen on its way, not only at the end.
        assert len([line for line in seen if " file  raw/train/gift.tsv: " in line]) >= 2, seen

        status = run_cli("status", "--state", state, "--json")
        assert status.returncode == 0, status.stderr
        view = json.loads(status.stdout)
        stages = {Path(file["key"]).name: (file["current_stage"], file["stage_status"]) for file in view["files"]}
        assert stages["gift.tsv"] == ("training", "completed")
        assert stages["empty.csv"][1] == "rejected"
        assert set(view["dlq"]) >= {"validator", "etl", "trainer", "predictor"}
        assert any(alert["kind"] == "file_rejected" for alert in view["alerts"])
        # The training job was seen running (its file's stage names it) and, finished, is no longer listed.
        assert any("gift.tsv: validated, training running v1.0 (SageMaker job " in line for line in seen), seen
        assert view["training_jobs"] == []
        text = run_cli("status", "--state", state)
        assert "dead-letter queues: all empty" in text.stdout and "training" in text.stdout
        assert "training jobs running: none" in text.stdout

        # A message that ends in a DLQ is shown as it happens, and `status` counts it.
        stack = StackInfo.load(state)
        client(stack, "sqs").send_message(QueueUrl=stack.queues["validator"].queue_url, MessageBody="not an event")
        read_until(up, lambda lines: "ALERT [dlq_message]" in lines[-1] and "validator" in lines[-1], timeout=90)
        view = json.loads(run_cli("status", "--state", state, "--json").stdout)
        assert view["dlq"]["validator"] == 1
        assert any(alert["kind"] == "dlq_message" for alert in view["alerts"])
        assert "dead-letter queues: {'validator': 1}" in run_cli("status", "--state", state).stdout
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    assert up.returncode == 0
    assert not state.exists()


def run_cli_with_aws(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """The AWS CLI with only what `up` told the user to export (no --endpoint-url, no credentials file)."""
    aws = shutil.which("aws") or str(REPO / ".tools" / "aws" / "bin" / "aws")
    clean = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return subprocess.run(
        [aws, *arguments],
        env=clean | environment | {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_gitignore_keeps_the_state_folder_out_of_commits() -> None:
    assert ".reviews-pipeline/" in (REPO / ".gitignore").read_text().splitlines()


def test_a_training_with_too_few_reviews_says_so_and_the_run_still_settles(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.tsv"
    tiny.write_text("".join(GIFT_CARD.open(encoding="utf-8").readlines()[:21]), encoding="utf-8")

    result = run_cli("run", "--train", tiny, "--infer", BEAUTY, "--out", tmp_path / "out", "--json")

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["settled"] is True and not any(summary["dlq"].values())
    assert summary["model"] is None
    (skipped,) = summary["training_skipped"]
    assert "too few labelled reviews" in skipped["reason"]
    assert 0 < sum(skipped["class_counts"].values()) <= 20
    (prediction,) = summary["predictions"]
    assert prediction["rows"] == 0 and prediction["model_version"] is None
