"""`reviews-pipeline`: run the whole pipeline locally, keep a stack up, show the ledger, redrive a DLQ.

Exit codes: 0 settled (rejected files included); 1 a stage failed (a message is in a dead-letter
queue); 2 a usage or configuration error (one line naming the problem; `--debug` adds the
traceback); 3 did not settle in time; 4 the CLI itself failed (a bug: the traceback is printed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from shared.ledger import FileLedger

from .config import ConfigError, RuntimeConfig
from .file_arguments import REVIEW_FILE_SUFFIXES, InputError, InputSelection, select_inputs
from .runtime import LocalPipeline, Progress, SettleResult, UploadedFile, redrive_dead_letters, rows_of
from .stack import LOCAL_CREDENTIALS, StackInfo, client
from .summary import build_summary, render_text
from .watch import StackWatcher, current_stage, recent_alerts

DEFAULT_STATE = Path(".reviews-pipeline/stack.json")
EXIT_SETTLED, EXIT_STAGE_FAILED, EXIT_USAGE, EXIT_NOT_SETTLED, EXIT_INTERNAL = 0, 1, 2, 3, 4


class UsageError(Exception):
    """Something the user gave cannot be used; the message names it and how to fix it."""


def _version() -> str:
    return importlib.metadata.version("amazon-reviews-nlp")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback behind an error"
    )
    parser = argparse.ArgumentParser(
        prog="reviews-pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback behind an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run the pipeline on files and print a summary",
        description="Start a local stack, train on the --train files, then classify the --infer files "
        "with the model the training promoted, and print a summary.",
    )
    files_help = (
        "a file, several files, or a folder (its review files, by suffix: "
        f"{' '.join(REVIEW_FILE_SUFFIXES)}, optionally .gz, in every subfolder); repeat the flag for more"
    )
    run.add_argument(
        "--train",
        nargs="+",
        action="extend",
        type=Path,
        default=[],
        metavar="PATH",
        help=f"labelled reviews: {files_help}",
    )
    run.add_argument(
        "--infer",
        nargs="+",
        action="extend",
        type=Path,
        default=[],
        metavar="PATH",
        help=f"reviews to classify: {files_help}",
    )
    run.add_argument(
        "--out", type=Path, default=Path("pipeline-output"), metavar="DIR", help="where results are copied (a folder)"
    )
    run.add_argument("--config", type=Path, metavar="FILE", help="runtime and service settings (YAML or JSON)")
    run.add_argument(
        "--endpoint-url", metavar="URL", help="use this AWS-compatible endpoint instead of the embedded emulator"
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON document")

    up = commands.add_parser(
        "up",
        parents=[common],
        help="keep a local stack running until Ctrl-C",
        description="Start a local stack, print the lines to paste into another shell, then one line per "
        "file state change and per alert until Ctrl-C.",
    )
    up.add_argument("--config", type=Path, metavar="FILE", help="runtime and service settings (YAML or JSON)")
    up.add_argument(
        "--endpoint-url", metavar="URL", help="use this AWS-compatible endpoint instead of the embedded emulator"
    )
    up.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        metavar="FILE",
        help=f"where the stack's names are saved for `status` and `redrive`; one per stack (default {DEFAULT_STATE})",
    )

    status = commands.add_parser(
        "status",
        parents=[common],
        help="show a running stack: every file's stage, the dead-letter queues, recent alerts",
    )
    status.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        metavar="FILE",
        help=f"the stack's state file (default {DEFAULT_STATE})",
    )
    status.add_argument("--json", action="store_true", help="print one JSON document")

    redrive = commands.add_parser(
        "redrive",
        parents=[common],
        help="move a service's dead-letter queue back to its queue",
        description="Move every message of a service's dead-letter queue back to its queue, once the "
        "cause of the failure is fixed.",
    )
    redrive.add_argument("service", help="the service whose DLQ to redrive (e.g. validator, etl, trainer)")
    redrive.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        metavar="FILE",
        help=f"the stack's state file (default {DEFAULT_STATE})",
    )
    return parser


# -- checking what was given, before anything starts ------------------------------------------


def _load_config(path: Path | None) -> RuntimeConfig:
    try:
        return RuntimeConfig.from_file(path)
    except ConfigError as error:
        raise UsageError("\n".join(f"--config {line}" for line in str(error).splitlines())) from error


def _check_endpoint_url(url: str | None) -> None:
    if url is None:
        return
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"--endpoint-url {url!r} is not an http(s) URL; give one like http://127.0.0.1:5000")
    try:
        parsed.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as error:
        raise UsageError(f"--endpoint-url {url!r}: {error}") from error
    reason = _no_answer_from(url)
    if reason is not None:
        raise UsageError(f"--endpoint-url {url} does not answer ({reason}); start the endpoint or leave the flag out")


def _no_answer_from(url: str) -> str | None:
    """Why an endpoint does not answer, or None when it does. One quick look before anything is
    created or asked: the SDK would retry a dead endpoint for many seconds before saying so."""
    try:
        with urllib.request.urlopen(url, timeout=5):
            return None
    except urllib.error.HTTPError:
        return None  # it answered, if only to refuse an anonymous GET: an endpoint is there
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; give a folder (it is created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out_dir}: cannot create it ({error.strerror})") from error
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"--out {out_dir}: not writable; give a folder you can write to")


def _start(pipeline: LocalPipeline, endpoint_url: str | None) -> LocalPipeline:
    """Start the stack; an endpoint that does not answer is the user's to fix, not a crash."""
    try:
        return pipeline.__enter__()
    except EndpointConnectionError as error:
        raise UsageError(
            f"--endpoint-url {endpoint_url} does not answer ({error}); start the endpoint or leave the flag out"
        ) from error
    except (BotoCoreError, ClientError) as error:
        if endpoint_url is None:
            raise
        raise UsageError(f"--endpoint-url {endpoint_url} refused to create the stack: {error}") from error


# -- run --------------------------------------------------------------------------------------


def _print_progress(phase: str, progress: Progress, started: float) -> None:
    states = " ".join(f"{status}={count}" for status, count in sorted(progress.files_by_status.items()))
    elapsed = time.monotonic() - started
    line = f"\r[{elapsed:6.1f}s] {phase}: {states}  rows: {progress.rows_in}  busy: {progress.current_stage}"
    sys.stderr.write(line[:160].ljust(160))
    sys.stderr.flush()


def command_run(arguments: argparse.Namespace) -> int:
    if not arguments.train and not arguments.infer:
        raise UsageError("give at least one --train or --infer file or folder")
    try:
        selection = select_inputs(
            [(path, "train") for path in arguments.train] + [(path, "inference") for path in arguments.infer],
            output_folder=arguments.out,
        )
    except InputError as error:
        raise UsageError(str(error)) from error
    config = _load_config(arguments.config)
    _check_endpoint_url(arguments.endpoint_url)
    out_dir: Path = arguments.out
    _check_out_dir(out_dir)
    interactive = sys.stderr.isatty() and not arguments.json
    for repeated in selection.repeated:
        print(
            f"reviews-pipeline: {repeated.path} is given twice for {repeated.dataset}; uploaded once", file=sys.stderr
        )
    with tempfile.TemporaryDirectory(prefix="reviews-pipeline-") as scratch:
        work_dir = Path(scratch)
        pipeline = _start(
            LocalPipeline(work_dir, config=config, endpoint_url=arguments.endpoint_url), arguments.endpoint_url
        )
        try:
            summary, exit_code = _run_phases(pipeline, selection, config.settle_timeout_seconds, interactive)
            pipeline.copy_outputs(out_dir)
        finally:
            pipeline.stop()
        _copy_logs(work_dir / "logs", out_dir / "logs")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps(summary, indent=2) if arguments.json else render_text(summary, out_dir))
    return exit_code


def _run_phases(
    pipeline: LocalPipeline, selection: InputSelection, timeout_seconds: float, interactive: bool
) -> tuple[dict[str, Any], int]:
    """Train first, then classify: the inference files go in only once training has settled, so every
    prediction of the run is made by the model the run trained (or, when none was promoted, by the
    version that was current, as the summary says)."""
    started = time.monotonic()
    deadline = started + timeout_seconds
    taken: set[str] = set()

    def settle(phase: str, files: list[UploadedFile]) -> SettleResult:
        on_progress: Callable[[Progress], None] | None = None
        if interactive:
            on_progress = lambda progress: _print_progress(phase, progress, started)  # noqa: E731
        result = pipeline.wait_until_settled(files, max(0.0, deadline - time.monotonic()), on_progress=on_progress)
        if interactive:
            sys.stderr.write("\n")
        return result

    trained = [pipeline.upload(file.path, "train", taken) for file in selection.of("train")]
    training = settle("training", trained) if trained else None
    held_back: dict[str, str] = {}
    inference_files = selection.of("inference")
    if training is not None and training.timed_out:
        # A model still training would be replaced under the predictions: keep the files out.
        reason = f"not uploaded: training did not settle within {timeout_seconds:g} s"
        held_back = {str(file.path): reason for file in inference_files}
        classified: list[UploadedFile] = []
        inferring = None
    else:
        classified = [pipeline.upload(file.path, "inference", taken) for file in inference_files]
        inferring = settle("classifying", classified) if classified else None
    results = [result for result in (training, inferring) if result is not None]
    dead_letters = pipeline.raise_dead_letter_alerts({})
    records = {record.file_id: record for record in pipeline.ledger.files(roots_only=True)}
    summary = build_summary(
        [*trained, *classified],
        records,
        pipeline.store,
        dead_letters,
        settled=all(result.settled for result in results) and not held_back,
        stuck=[line for result in results for line in result.stuck],
        inputs=selection,
        held_back=held_back,
    )
    if any(dead_letters.values()):
        return summary, EXIT_STAGE_FAILED
    if not summary["settled"]:
        return summary, EXIT_NOT_SETTLED
    return summary, EXIT_SETTLED


def _copy_logs(source: Path, target: Path) -> None:
    """Every worker's log, and every training job's under sagemaker/ (what CloudWatch would hold)."""
    for log in source.rglob("*.log"):
        copy = target / log.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(log.read_bytes())


# -- up ---------------------------------------------------------------------------------------


def _running_owner(state: Path) -> int | None:
    """The pid of the live `up` that wrote this state file, or None (no file, or its `up` is gone)."""
    owner = StackInfo.owner_of(state)
    if owner is None or owner == os.getpid():
        return None
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return owner  # alive, under another user
    return owner


def paste_lines(stack: StackInfo) -> list[str]:
    """What a user pastes into another shell so the AWS CLI and boto3 reach this stack."""
    variables = {
        "AWS_ENDPOINT_URL": stack.endpoint_url or "",
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": stack.region,
        "REVIEWS_BUCKET": stack.bucket,
        "REVIEWS_EVENT_BUS": stack.event_bus,
    }
    return ["export " + " ".join(f"{name}={value}" for name, value in variables.items())]


def command_up(arguments: argparse.Namespace) -> int:
    config = _load_config(arguments.config)
    _check_endpoint_url(arguments.endpoint_url)
    state: Path = arguments.state
    owner = _running_owner(state)
    if owner is not None:
        raise UsageError(
            f"a stack started by `reviews-pipeline up` (pid {owner}) already uses {state}; "
            "stop it, or give this one its own --state FILE"
        )
    work_dir = state.parent
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    pipeline = _start(
        LocalPipeline(work_dir, config=config, endpoint_url=arguments.endpoint_url), arguments.endpoint_url
    )
    try:
        stack = pipeline.stack
        stack.save(state, owner_pid=os.getpid())
        print(f"endpoint:  {stack.endpoint_url}")
        print(f"bucket:    {stack.bucket}")
        print(f"event bus: {stack.event_bus}")
        print(f"ledger:    {stack.ledger_table}")
        print(f"alerts:    {stack.alert_topic_arn}")
        print(f"logs:      {work_dir / 'logs'}")
        print(f"state:     {state}")
        print("In another shell, paste this line to reach the stack with the AWS CLI or boto3:")
        for line in paste_lines(stack):
            print(f"  {line}")
        print("then, for example:")
        print("  aws s3 cp FILE s3://$REVIEWS_BUCKET/raw/train/")
        print("Ctrl-C stops the stack. Files and alerts as they change:", flush=True)
        watcher = StackWatcher()
        alerted: dict[str, int] = {}
        while not stopping:
            for service in pipeline.pool.revive_crashed():
                print(f"{time.strftime('%H:%M:%S')} worker for {service} exited; restarted", flush=True)
            alerted = pipeline.raise_dead_letter_alerts(alerted)
            for line in [*watcher.file_changes(list(pipeline.ledger.files())), *watcher.new_alerts(pipeline.store)]:
                print(line, flush=True)
            time.sleep(1)
    finally:
        pipeline.stop()
        if StackInfo.owner_of(state) == os.getpid():
            state.unlink(missing_ok=True)
    return EXIT_SETTLED


# -- status, redrive --------------------------------------------------------------------------


def _load_state(path: Path) -> StackInfo:
    if not path.is_file():
        raise UsageError(f"no running stack recorded at {path}; start one with `reviews-pipeline up`")
    try:
        stack = StackInfo.load(path)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise UsageError(f"{path} is not a stack state file written by `reviews-pipeline up` ({error})") from error
    if stack.endpoint_url and _no_answer_from(stack.endpoint_url) is not None:
        raise _unreachable(stack, path)
    return stack


def _unreachable(stack: StackInfo, path: Path) -> UsageError:
    return UsageError(
        f"the stack recorded at {path} does not answer at {stack.endpoint_url}; "
        "is its `reviews-pipeline up` still running?"
    )


def command_status(arguments: argparse.Namespace) -> int:
    stack = _load_state(arguments.state)
    try:
        view = _stack_view(stack)
    except EndpointConnectionError as error:
        raise _unreachable(stack, arguments.state) from error
    if arguments.json:
        print(json.dumps(view, indent=2, default=str))
        return EXIT_SETTLED
    print(f"{'file_id':<34} {'status':<10} {'stage':<12} {'state':<18} {'rows in':>8} {'rows out':>8}  key / reason")
    for file in view["files"]:
        print(
            f"{file['file_id']:<34} {file['status']:<10} {file['current_stage']:<12} {file['stage_status'][:18]:<18} "
            f"{file['rows_in']:>8} {file['rows_out']:>8}  {file['key']}"
            + (f"  — {file['reason']}" if file["reason"] else "")
        )
    dead = {service: depth for service, depth in view["dlq"].items() if depth}
    print(f"dead-letter queues: {dead or 'all empty'}")
    jobs = view["training_jobs"]
    print(f"training jobs running: {len(jobs) or 'none'}")
    for job in jobs:
        started = time.strftime("%H:%M:%S", time.localtime(job["launched_at"]))
        print(f"  {job['job_name']} ({job['kind']}, {job['version']}, launched {started})")
    print(f"recent alerts: {len(view['alerts']) or 'none'}")
    for alert in view["alerts"]:
        print(f"  {alert.get('raised_at')} [{alert.get('kind')}] {alert.get('message')}")
    return EXIT_SETTLED


def _stack_view(stack: StackInfo) -> dict[str, Any]:
    from shared.storage import ObjectStore

    ledger = FileLedger(client(stack, "dynamodb"), stack.ledger_table)
    sqs = client(stack, "sqs")
    files = []
    for record in sorted(ledger.files(roots_only=True), key=lambda record: record.received_at):
        stage, stage_status = current_stage(record)
        rows_in, rows_out = rows_of(record)
        files.append(
            {
                **record.model_dump(),
                "current_stage": stage,
                "stage_status": stage_status,
                "rows_in": rows_in,
                "rows_out": rows_out,
            }
        )
    dlq = {}
    for service, queues in stack.queues.items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=queues.dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        dlq[service] = int(attributes["ApproximateNumberOfMessages"])
    alerts = recent_alerts(ObjectStore(client(stack, "s3"), stack.bucket))
    return {"files": files, "dlq": dlq, "alerts": alerts, "training_jobs": running_training_jobs(stack)}


def running_training_jobs(stack: StackInfo) -> list[dict[str, Any]]:
    """The SageMaker jobs the trainer launched and its finisher has not finished, as the trainer recorded them
    (never as SageMaker's own listing has them: locally that says Completed at once)."""
    from services.trainer.versions import ModelRegistry

    registry = ModelRegistry(client(stack, "dynamodb"), stack.ledger_table)
    return [
        {name: run.get(name) for name in ("job_name", "kind", "version", "launched_at", "trigger_root_file_id")}
        for run in registry.runs(running_only=True)
    ]


def command_redrive(arguments: argparse.Namespace) -> int:
    stack = _load_state(arguments.state)
    if arguments.service not in stack.queues:
        raise UsageError(f"unknown service {arguments.service!r}; known: {', '.join(sorted(stack.queues))}")
    try:
        moved = redrive_dead_letters(stack, arguments.service)
    except EndpointConnectionError as error:
        raise _unreachable(stack, arguments.state) from error
    print(f"moved {moved} message(s) from the {arguments.service} dead-letter queue back to its queue")
    return EXIT_SETTLED


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": command_run,
    "up": command_up,
    "status": command_status,
    "redrive": command_redrive,
}


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    debug = bool(getattr(arguments, "debug", False))
    try:
        return int(COMMANDS[arguments.command](arguments))
    except UsageError as error:
        if debug:
            traceback.print_exc()
        for line in str(error).splitlines():
            print(f"reviews-pipeline {arguments.command}: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"reviews-pipeline {arguments.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - anything else is our bug: say so, with the traceback, under its own code
        traceback.print_exc()
        print(
            f"reviews-pipeline {arguments.command}: internal error (a bug; please report it with the traceback above)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
