"""The whole pipeline through the real local runtime and moto's server over HTTP, on real review files.

Nothing of the project is mocked here: the CLI starts the emulator, builds the stack from the SAM
templates and runs one worker process per service; files go in the way a user puts them in.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reviews_pipeline.stack import StackInfo, client
from tests.data_paths import REPO, SAMPLES

pytestmark = pytest.mark.e2e

GIFT_CARD = SAMPLES / "train" / "amazon_reviews_us_Gift_Card_v1_00.tsv"
MARC_REFERENCE = SAMPLES / "train" / "amazon_reviews_reference.csv"
BEAUTY = SAMPLES / "inference" / "All_Beauty_5.first1000.json"
CLI = [sys.executable, "-m", "reviews_pipeline.cli"]
SUMMARY_FILE_FIELDS = {
    "path",
    "dataset",
    "file_id",
    "status",
    "layout",
    "detected",
    "parts",
    "rows_in",
    "rows_out",
    "rows_dropped",
    "report",
    "reason",
}
SERVICES = {"validator", "chunker", "etl", "trainer", "predictor"}


def run_cli(*arguments: str | Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, arguments)], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def write_config(path: Path, **settings: Any) -> Path:
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def assert_rows_reconcile(file: dict[str, Any]) -> None:
    assert file["rows_in"] == file["rows_out"] + sum(file["rows_dropped"].values()), file


def test_run_settles_real_files_and_prints_the_summary_contract(tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = run_cli("run", "--train", GIFT_CARD, "--train", MARC_REFERENCE, "--infer", BEAUTY, "--out", out, "--json")

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["settled"] is True
    assert [Path(file["path"]).name for file in summary["files"]] == [GIFT_CARD.name, MARC_REFERENCE.name, BEAUTY.name]
    for file in summary["files"]:
        assert set(file) >= SUMMARY_FILE_FIELDS
        assert file["status"] == "validated", file
        assert file["parts"] == 1
        assert file["rows_in"] > 0
        assert_rows_reconcile(file)
    assert {file["dataset"] for file in summary["files"]} == {"train", "inference"}
    assert set(summary["dlq"]) >= SERVICES
    assert not any(summary["dlq"].values())
    assert summary["model"]["promoted"] is True
    assert summary["model"]["metrics"]["macro_f1"] > 0.4
    (prediction,) = summary["predictions"]
    assert prediction["input"] == str(BEAUTY)
    inference = summary["files"][2]
    assert 0 < prediction["rows"] <= inference["rows_out"]
    # Inference went in once training had settled: predicted by the model the summary reports.
    assert prediction["model_version"] == summary["model"]["version"] == summary["model"]["current_version"]
    for key in prediction["predictions"]:
        assert (out / key).is_file()
    assert (out / "monitoring" / "metrics" / summary["model"]["version"] / "report.html").is_file()
    # Results are copied out under the same keys they have in the bucket.
    processed = sorted((out / "processed").rglob("part-*"))
    assert len(processed) == 3
    assert (out / "monitoring" / "logs").is_dir()
    kept = [json.loads(line) for log in (out / "monitoring" / "logs").rglob("*.jsonl") for line in log.open()]
    assert {event["detail-type"] for event in kept} >= {"FileReceived", "FileValidated", "EtlCompleted"}


def test_an_oversize_file_is_chunked_and_its_parts_add_up(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.json",
        visibility_timeout_seconds=5,
        services={"validator": {"max_size_bytes": 150_000}, "chunker": {"part_size_bytes": 64 * 1024}},
    )

    result = run_cli("run", "--train", GIFT_CARD, "--out", tmp_path / "out", "--config", config, "--json")

    assert result.returncode == 0, result.stderr[-3000:]
    (file,) = json.loads(result.stdout)["files"]
    assert file["status"] == "chunked"
    assert file["parts"] >= 4
    assert_rows_reconcile(file)
    parts = sorted((tmp_path / "out" / "chunks" / "train").rglob("part-*"))
    assert len(parts) == file["parts"]


def _exported_by_another_tool(path: Path) -> Path:
    """The real MARC reference CSV as a spreadsheet might export it: UTF-16 with a BOM, semicolons,
    CRLF, a banner above the header, and one quote opened by mistake at the start of a field."""
    rows = list(csv.reader(io.StringIO(MARC_REFERENCE.read_text(encoding="utf-8"), newline="")))
    out = io.StringIO()
    out.write("Exported from ReviewHub on 2024-03-01\r\nAll products\r\n\r\n")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    lines = out.getvalue().split("\r\n")
    lines[300] = lines[300].replace(";", ';"', 1)
    path.write_text("\r\n".join(lines), encoding="utf-16", newline="")
    return path


def test_a_file_exported_by_another_tool_reads_the_same_whole_and_chunked(tmp_path: Path) -> None:
    exported = _exported_by_another_tool(tmp_path / "reviews_export.csv")
    chunked = write_config(
        tmp_path / "config.json",
        visibility_timeout_seconds=5,
        services={
            "validator": {"max_size_bytes": 300_000},
            "chunker": {"part_size_bytes": 100_000, "max_quoted_record_bytes": 20_000},
        },
    )
    summaries = []
    for name, config in (("whole", None), ("chunked", chunked)):
        arguments: list[str | Path] = ["run", "--train", exported, GIFT_CARD, "--out", tmp_path / name, "--json"]
        if config is not None:
            arguments += ["--config", config]
        result = run_cli(*arguments)
        assert result.returncode == 0, result.stderr[-3000:]
        summaries.append(json.loads(result.stdout))

    # Then read whole or in parts (each part in the dialect found in the whole file), the export gives
    # the same rows: every review but the one whose line holds the stray quote, none of them lost
    whole, parts = (summary["files"][0] for summary in summaries)
    assert (whole["status"], whole["parts"], parts["status"], parts["parts"] > 1) == ("validated", 1, "chunked", True)
    for file in (whole, parts):
        assert file["layout"] == "marc-text"
        assert (file["detected"]["encoding"], file["detected"]["delimiter"]) == ("utf-16-le", ";")
        assert (file["rows_in"], file["rows_out"], file["rows_dropped"]) == (1381, 1380, {"malformed_record": 1})
        assert file["reconciliation"]["rows_lost"] == 0 and file["reconciliation"]["problems"] == []


def test_a_rejected_file_settles_with_a_report_and_an_alert(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    out = tmp_path / "out"

    result = run_cli("run", "--train", empty, "--out", out, "--json")

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    (file,) = summary["files"]
    assert file["status"] == "rejected"
    assert file["reason"]
    report = json.loads((out / file["report"]).read_text())
    assert report["check"] == "size"
    assert [alert["kind"] for alert in summary["alerts"]] == ["file_rejected"]


@dataclass
class RunningStack:
    info: StackInfo
    state: Path
    process: subprocess.Popen[str]

    def client(self, service: str) -> Any:
        return client(self.info, service)

    def status(self) -> list[dict[str, Any]]:
        result = run_cli("status", "--state", self.state, "--json", timeout=60)
        assert result.returncode == 0, result.stderr
        records: list[dict[str, Any]] = json.loads(result.stdout)["files"]
        return records

    def wait_for(self, predicate: Any, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.status()
            if predicate(records):
                return records
            time.sleep(0.5)
        raise AssertionError(f"not reached in {timeout} s; ledger: {json.dumps(self.status(), indent=1)[:3000]}")

    def aws(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        aws = shutil.which("aws") or str(REPO / ".tools" / "aws" / "bin" / "aws")
        environment = os.environ | {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.info.region,
        }
        return subprocess.run(
            [aws, "--endpoint-url", str(self.info.endpoint_url), *arguments],
            capture_output=True,
            text=True,
            env=environment,
            timeout=60,
            check=False,
        )


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[RunningStack]:
    state = tmp_path / "state" / "stack.json"
    config = write_config(tmp_path / "config.json", visibility_timeout_seconds=1)
    process = subprocess.Popen(
        [*CLI, "up", "--state", str(state), "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not state.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"`up` did not start: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.2)
    try:
        yield RunningStack(StackInfo.load(state), state, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    assert process.returncode == 0
    assert not state.exists(), "`up` removes its state file when it stops"


def test_a_file_copied_with_the_aws_cli_into_a_running_stack_reaches_a_final_state(
    running_stack: RunningStack,
) -> None:
    if not shutil.which("aws") and not (REPO / ".tools" / "aws" / "bin" / "aws").is_file():
        pytest.fail("the AWS CLI is not installed: `make tools` installs it")
    copied = running_stack.aws("s3", "cp", str(GIFT_CARD), f"s3://{running_stack.info.bucket}/raw/train/gift.tsv")
    assert copied.returncode == 0, copied.stderr

    records = running_stack.wait_for(lambda records: any(r["status"] == "validated" for r in records))

    (record,) = records
    assert record["key"] == "raw/train/gift.tsv"
    assert record["rows_in"] > 0


def test_external_systems_publish_file_received_and_forgeries_touch_nothing(running_stack: RunningStack) -> None:
    bucket = running_stack.info.bucket
    s3 = running_stack.client("s3")
    version = s3.put_object(Bucket=bucket, Key="uploads/gift.tsv", Body=GIFT_CARD.read_bytes())["VersionId"]
    s3.copy_object(
        Bucket=bucket, Key="raw/inference/gift.tsv", CopySource={"Bucket": bucket, "Key": "uploads/gift.tsv"}
    )
    # The copy above also fires an S3 notification; the announcement below names the same version, so
    # the pair must still end as one validated file.
    head = s3.head_object(Bucket=bucket, Key="raw/inference/gift.tsv")
    genuine = {
        "bucket": bucket,
        "key": "raw/inference/gift.tsv",
        "version_id": head["VersionId"],
        "size": head["ContentLength"],
        "dataset": "inference",
        "origin": "external",
    }
    forged = {**genuine, "key": "uploads/gift.tsv", "version_id": version}
    entries = [
        {
            "Source": "com.example.crawler",
            "DetailType": "FileReceived",
            "Detail": json.dumps(detail),
            "EventBusName": running_stack.info.event_bus,
        }
        for detail in (genuine, forged)
    ]
    put = running_stack.aws("events", "put-events", "--entries", json.dumps(entries))
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["FailedEntryCount"] == 0

    records = running_stack.wait_for(
        lambda records: (
            {r["status"] for r in records} >= {"validated", "rejected"}
            and all(r["status"] in ("validated", "rejected") for r in records)
        )
    )

    by_key = {record["key"]: record for record in records}
    assert by_key["raw/inference/gift.tsv"]["status"] == "validated"
    assert by_key["uploads/gift.tsv"]["status"] == "rejected"
    assert by_key["uploads/gift.tsv"]["check"] == "key"
    # The forged announcement touched nothing: the object is where it was, and nothing went to errors/.
    assert s3.head_object(Bucket=bucket, Key="uploads/gift.tsv")["VersionId"] == version
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="errors/")


def test_a_poison_message_lands_in_the_dlq_and_redrive_replays_it(running_stack: RunningStack) -> None:
    sqs = running_stack.client("sqs")
    queues = running_stack.info.queues["validator"]
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody='{"detail-type": "FileReceived", "detail": {"size": -1}}')

    def dead_letters() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queues.dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    deadline = time.monotonic() + 60
    while dead_letters() == 0:
        assert time.monotonic() < deadline, "the poison message never reached the DLQ"
        time.sleep(0.5)
    s3 = running_stack.client("s3")
    deadline = time.monotonic() + 15
    while "Contents" not in s3.list_objects_v2(Bucket=running_stack.info.bucket, Prefix="monitoring/alerts/"):
        assert time.monotonic() < deadline, "no alert was raised for the message in the DLQ"
        time.sleep(0.5)
    (alert_object,) = s3.list_objects_v2(Bucket=running_stack.info.bucket, Prefix="monitoring/alerts/")["Contents"]
    alert = json.loads(s3.get_object(Bucket=running_stack.info.bucket, Key=alert_object["Key"])["Body"].read())
    assert alert["kind"] == "dlq_message"
    assert alert["details"] == {"service": "validator", "depth": 1}

    redriven = run_cli("redrive", "validator", "--state", running_stack.state, timeout=60)

    assert redriven.returncode == 0, redriven.stderr
    assert "moved 1 message" in redriven.stdout
    assert dead_letters() == 0
    # Still poison: after its receives it is back in the DLQ, and the workers are still alive.
    deadline = time.monotonic() + 60
    while dead_letters() == 0:
        assert time.monotonic() < deadline, "the redriven message was lost"
        time.sleep(0.5)
    assert running_stack.process.poll() is None
