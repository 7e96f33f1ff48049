"""`reviews-pipeline`: run the whole pipeline locally, keep a stack up, show the ledger, redrive a DLQ."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from shared.events import Dataset
from shared.ledger import FileLedger

from .runtime import LocalPipeline, Progress, RuntimeConfig, UploadedFile, redrive_dead_letters, rows_of
from .stack import StackInfo, client
from .summary import build_summary, render_text

DEFAULT_STATE = Path(".reviews-pipeline/stack.json")
EXIT_SETTLED, EXIT_STAGE_FAILED, EXIT_NOT_SETTLED = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reviews-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the pipeline on files and print a summary")
    run.add_argument("--train", nargs="+", type=Path, default=[], metavar="FILE", help="labelled review files")
    run.add_argument("--infer", nargs="+", type=Path, default=[], metavar="FILE", help="files to classify")
    run.add_argument("--out", type=Path, default=Path("pipeline-output"), help="where results are copied")
    run.add_argument("--config", type=Path, help="runtime and service settings (YAML or JSON)")
    run.add_argument("--endpoint-url", help="use this AWS-compatible endpoint instead of the embedded emulator")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON document")

    up = commands.add_parser("up", help="keep a local stack running until Ctrl-C")
    up.add_argument("--config", type=Path)
    up.add_argument("--endpoint-url")
    up.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where the stack's names are saved")

    status = commands.add_parser("status", help="show the ledger of a running stack")
    status.add_argument("--state", type=Path, default=DEFAULT_STATE)
    status.add_argument("--json", action="store_true")

    redrive = commands.add_parser("redrive", help="move a service's dead-letter queue back to its queue")
    redrive.add_argument("service")
    redrive.add_argument("--state", type=Path, default=DEFAULT_STATE)
    return parser


def _print_progress(progress: Progress, started: float) -> None:
    states = " ".join(f"{status}={count}" for status, count in sorted(progress.files_by_status.items()))
    elapsed = time.monotonic() - started
    line = f"\r[{elapsed:6.1f}s] files: {states}  rows: {progress.rows_in}  busy: {progress.current_stage}"
    sys.stderr.write(line[:160].ljust(160))
    sys.stderr.flush()


def command_run(arguments: argparse.Namespace) -> int:
    missing = [str(path) for path in [*arguments.train, *arguments.infer] if not path.is_file()]
    if missing:
        print(f"reviews-pipeline: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_NOT_SETTLED
    if not arguments.train and not arguments.infer:
        print("reviews-pipeline: give at least one --train or --infer file", file=sys.stderr)
        return EXIT_NOT_SETTLED
    config = RuntimeConfig.from_file(arguments.config)
    out_dir: Path = arguments.out
    out_dir.mkdir(parents=True, exist_ok=True)
    interactive = sys.stderr.isatty() and not arguments.json
    with tempfile.TemporaryDirectory(prefix="reviews-pipeline-") as scratch:
        work_dir = Path(scratch)
        with LocalPipeline(work_dir, config=config, endpoint_url=arguments.endpoint_url) as pipeline:
            taken: set[str] = set()
            datasets: list[tuple[Path, Dataset]] = [(p, "train") for p in arguments.train]
            datasets += [(p, "inference") for p in arguments.infer]
            uploaded: list[UploadedFile] = [pipeline.upload(path, dataset, taken) for path, dataset in datasets]
            started = time.monotonic()
            result = pipeline.wait_until_settled(
                uploaded,
                config.settle_timeout_seconds,
                on_progress=(lambda progress: _print_progress(progress, started)) if interactive else None,
            )
            if interactive:
                sys.stderr.write("\n")
            dead_letters = pipeline.raise_dead_letter_alerts({})
            pipeline.copy_outputs(out_dir)
            records = {record.file_id: record for record in pipeline.ledger.files(roots_only=True)}
            summary = build_summary(
                uploaded, records, pipeline.store, dead_letters, settled=result.settled, stuck=result.stuck
            )
            _copy_logs(work_dir / "logs", out_dir / "logs")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps(summary, indent=2) if arguments.json else render_text(summary, out_dir))
    if not result.settled:
        return EXIT_NOT_SETTLED
    return EXIT_STAGE_FAILED if any(dead_letters.values()) else EXIT_SETTLED


def _copy_logs(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in source.glob("*.log"):
        (target / log.name).write_bytes(log.read_bytes())


def command_up(arguments: argparse.Namespace) -> int:
    config = RuntimeConfig.from_file(arguments.config)
    work_dir = arguments.state.parent
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with LocalPipeline(work_dir, config=config, endpoint_url=arguments.endpoint_url) as pipeline:
        stack = pipeline.stack
        stack.save(arguments.state)
        print(f"endpoint:  {stack.endpoint_url}")
        print(f"bucket:    {stack.bucket}")
        print(f"event bus: {stack.event_bus}")
        print(f"ledger:    {stack.ledger_table}")
        print(f"alerts:    {stack.alert_topic_arn}")
        print(f"logs:      {work_dir / 'logs'}")
        print(f"try:       aws --endpoint-url {stack.endpoint_url} s3 cp FILE s3://{stack.bucket}/raw/train/")
        print("Ctrl-C stops the stack.", flush=True)
        alerted: dict[str, int] = {}
        while not stopping:
            for service in pipeline.pool.revive_crashed():
                print(f"worker for {service} exited; restarted", flush=True)
            alerted = pipeline.raise_dead_letter_alerts(alerted)
            time.sleep(1)
    arguments.state.unlink(missing_ok=True)
    return 0


def _load_state(path: Path) -> StackInfo:
    if not path.is_file():
        raise SystemExit(f"reviews-pipeline: no running stack recorded at {path}; start one with `reviews-pipeline up`")
    return StackInfo.load(path)


def command_status(arguments: argparse.Namespace) -> int:
    stack = _load_state(arguments.state)
    ledger = FileLedger(client(stack, "dynamodb"), stack.ledger_table)
    records = sorted(ledger.files(), key=lambda record: record.received_at)
    if arguments.json:
        print(json.dumps([record.model_dump() for record in records], indent=2, default=str))
        return 0
    print(f"{'file_id':<34} {'status':<10} {'stage':<10} {'rows in':>8} {'rows out':>8}  key / reason")
    for record in records:
        rows_in, rows_out = rows_of(record)
        note = record.reason or ", ".join(f"{stage}={status}" for stage, status in record.stages.items())
        print(
            f"{record.file_id:<34} {record.status:<10} {record.stage:<10} {rows_in:>8} {rows_out:>8}  "
            f"{record.key}{'  — ' + note if note else ''}"
        )
    return 0


def command_redrive(arguments: argparse.Namespace) -> int:
    stack = _load_state(arguments.state)
    try:
        moved = redrive_dead_letters(stack, arguments.service)
    except KeyError as error:
        print(f"reviews-pipeline: {error.args[0]}", file=sys.stderr)
        return 2
    print(f"moved {moved} message(s) from the {arguments.service} dead-letter queue back to its queue")
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    commands: dict[str, Any] = {
        "run": command_run,
        "up": command_up,
        "status": command_status,
        "redrive": command_redrive,
    }
    return int(commands[arguments.command](arguments))


if __name__ == "__main__":
    sys.exit(main())
