"""The run summary: per file what happened, the model, the predictions, DLQ depths and alerts.

Its field names are a contract users script against (`reviews-pipeline run --json`): add fields,
never rename or remove them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared import layout
from shared.ledger import FileRecord, barrier_counter
from shared.storage import ObjectStore

from .file_arguments import InputSelection
from .reconciliation import Reconciliation, reconcile, rows_dropped_of
from .runtime import UploadedFile, rows_of


def file_summary(
    uploaded: UploadedFile, record: FileRecord | None, reconciliation: Reconciliation | None = None
) -> dict[str, Any]:
    if record is None:
        return unprocessed_file_summary(
            str(uploaded.path), uploaded.dataset, uploaded.file_id, "lost", "the ledger has no record of this file"
        )
    rows_in, rows_out = rows_of(record)
    return {
        "path": str(uploaded.path),
        "dataset": uploaded.dataset,
        "file_id": uploaded.file_id,
        "status": record.status,
        "layout": record.layout,
        "detected": record.detected,
        "parts": record.counters.get(barrier_counter("validation", "expected"), 1),
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_dropped": rows_dropped_of(record),
        "report": record.report_key,
        "reason": record.reason,
        "stages": record.stages,
        "reconciliation": reconciliation.as_dict() if reconciliation else None,
    }


def pipeline_events(store: ObjectStore) -> list[dict[str, Any]]:
    """Every event the monitor kept under monitoring/logs/, oldest first."""
    events = []
    for key in sorted(store.keys(layout.MONITORING_LOGS)):
        for line in store.read_bytes(key).decode("utf-8").splitlines():
            if line.strip():
                events.append(json.loads(line))
    return sorted(events, key=lambda event: str(event.get("time", "")))


def _version_order(version: str) -> tuple[int, ...]:
    """v1.10 after v1.9: versions compare by their numbers, not as text."""
    return tuple(int(part) for part in version.lstrip("v").split(".") if part.isdigit())


def model_summary(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The model the run ended with: the latest version it promoted, or, when it promoted none, the
    latest it trained; `current_version` is what models/current names, the model predictions use.

    ModelTrained may repeat for a version (a finisher that crashed after publishing publishes again):
    each version counts once, as its last event says."""
    by_version = {
        str(event["detail"]["version"]): event["detail"]
        for event in events
        if event.get("detail-type") == "ModelTrained"
    }
    trained = [by_version[version] for version in sorted(by_version, key=_version_order)]
    if not trained:
        return None
    promoted = [detail for detail in trained if detail["promoted"]]
    chosen = promoted[-1] if promoted else trained[-1]
    summary = {
        "version": chosen["version"],
        "promoted": chosen["promoted"],
        "metrics": chosen["metrics"],
        "reason": chosen.get("reason"),
        "current_version": promoted[-1]["version"] if promoted else None,
        "engine": chosen.get("engine", "sagemaker"),
        "training_job": chosen.get("training_job"),
        "trained": [
            {
                "version": detail["version"],
                "status": detail.get("status", "trained"),
                "promoted": detail["promoted"],
                "reason": detail.get("reason"),
                "macro_f1": detail["metrics"].get("macro_f1"),
                "training_job": detail.get("training_job"),
            }
            for detail in trained
        ],
    }
    search = chosen.get("search")
    if search:
        summary["tuning"] = {"strategy": search["strategy"], "trials": search["trials"], "best": search.get("best")}
    return summary


def predictions_summary(events: list[dict[str, Any]], inference_files: list[UploadedFile]) -> list[dict[str, Any]]:
    completed = {
        event["detail"]["root_file_id"]: event["detail"]
        for event in events
        if event.get("detail-type") == "PredictionsCompleted"
    }
    summaries = []
    for uploaded in inference_files:
        detail = completed.get(uploaded.file_id)
        summaries.append(
            {
                "input": str(uploaded.path),
                "predictions": detail["prediction_keys"] if detail else [],
                "rows": detail["rows"] if detail else 0,
                "model_version": detail["model_version"] if detail else None,
            }
        )
    return summaries


def alerts_summary(store: ObjectStore) -> list[dict[str, Any]]:
    return [store.read_json(key) for key in sorted(store.keys(layout.MONITORING_ALERTS))]


def training_skipped_summary(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trainings that trained nothing (too few labelled reviews), each with why and the counts."""
    return [
        {
            "trigger_root_file_id": detail.get("trigger_root_file_id"),
            "reason": detail["reason"],
            "class_counts": detail["class_counts"],
            "min_reviews_per_class": detail["min_reviews_per_class"],
        }
        for event in events
        if event.get("detail-type") == "TrainingSkipped"
        for detail in [event["detail"]]
    ]


def unprocessed_file_summary(path: str, dataset: str, file_id: str | None, status: str, reason: str) -> dict[str, Any]:
    """A file with nothing to report but why (never uploaded, or lost): every field a processed file has."""
    return {
        "path": path,
        "dataset": dataset,
        "file_id": file_id,
        "status": status,
        "layout": None,
        "detected": None,
        "parts": 0,
        "rows_in": 0,
        "rows_out": 0,
        "rows_dropped": {},
        "report": None,
        "reason": reason,
        "reconciliation": None,
    }


def build_summary(
    uploaded: list[UploadedFile],
    records: dict[str, FileRecord],
    store: ObjectStore,
    dead_letter_depths: dict[str, int],
    *,
    settled: bool,
    stuck: list[str],
    inputs: InputSelection | None = None,
    held_back: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`held_back`: inference files not uploaded (path → why), when training did not settle in time."""
    events = pipeline_events(store)
    files = []
    for file in uploaded:
        record = records.get(file.file_id)
        files.append(file_summary(file, record, reconcile(record, store) if record else None))
    files += [
        unprocessed_file_summary(path, "inference", None, "not_uploaded", reason)
        for path, reason in (held_back or {}).items()
    ]
    predictions = predictions_summary(events, [file for file in uploaded if file.dataset == "inference"])
    predictions += [{"input": path, "predictions": [], "rows": 0, "model_version": None} for path in (held_back or {})]
    return {
        "settled": settled,
        "stuck": stuck,
        "rows_lost": sum(file["reconciliation"]["rows_lost"] for file in files if file["reconciliation"]),
        "inputs": (inputs or InputSelection()).as_dict() if inputs is not None else None,
        "files": files,
        "model": model_summary(events),
        "training_skipped": training_skipped_summary(events),
        "predictions": predictions,
        "dlq": dead_letter_depths,
        "alerts": alerts_summary(store),
    }


def render_text(summary: dict[str, Any], out_dir: Path) -> str:
    """The summary for a person at a terminal."""
    lines = [f"{'file':<48} {'dataset':<9} {'status':<9} {'parts':>5} {'rows in':>9} {'rows out':>9}  note"]
    for file in summary["files"]:
        note = file["reason"] or ", ".join(f"{reason}: {count}" for reason, count in file["rows_dropped"].items())
        lines.append(
            f"{Path(file['path']).name[:48]:<48} {file['dataset']:<9} {file['status']:<9} {file['parts']:>5} "
            f"{file['rows_in']:>9} {file['rows_out']:>9}  {note or ''}"
        )
    inputs = summary.get("inputs") or {}
    for repeated in inputs.get("repeated", []):
        lines.append(f"note: {repeated['path']} was given more than once for {repeated['dataset']}; uploaded once")
    if inputs.get("skipped"):
        names = ", ".join(Path(skipped["path"]).name for skipped in inputs["skipped"][:5])
        more = len(inputs["skipped"]) - 5
        lines.append(
            f"note: {len(inputs['skipped'])} file(s) in the folders given are not review files by name and were "
            f"left out: {names}{f' and {more} more' if more > 0 else ''} (see summary.json, inputs.skipped)"
        )
    model = summary["model"]
    lines.append("")
    if model:
        metrics = model["metrics"]
        verdict = "promoted" if model["promoted"] else f"not promoted: {model['reason']}"
        lines.append(
            f"model: {model['version']} ({verdict}), accuracy {metrics.get('accuracy', float('nan')):.3f}, "
            f"macro-F1 {metrics.get('macro_f1', float('nan')):.3f}; report under monitoring/metrics/{model['version']}/"
        )
        if model.get("training_job"):
            lines.append(f"  trained by SageMaker job {model['training_job']}")
        if model.get("tuning"):
            tuning = model["tuning"]
            best = tuning.get("best") or {}
            lines.append(
                f"  grid search: {tuning['trials']} trials, best {best.get('parameters')} "
                f"(validation macro-F1 {best.get('objective') or float('nan'):.3f})"
            )
        if len(model["trained"]) > 1:
            lines.append(f"  trained in this run: {', '.join(entry['version'] for entry in model['trained'])}")
        if not model["promoted"]:
            current = model["current_version"]
            lines.append(
                f"  predictions use {current}, the version that was current"
                if current
                else "  no version is current: inference files wait for a promoted model"
            )
    elif summary.get("training_skipped"):
        lines.append(f"model: none trained: {summary['training_skipped'][-1]['reason']}")
    else:
        lines.append("model: none trained")
    for prediction in summary["predictions"]:
        lines.append(
            f"predictions for {Path(prediction['input']).name}: {prediction['rows']} rows "
            f"({prediction['model_version'] or 'no model yet'})"
        )
    dead = {service: depth for service, depth in summary["dlq"].items() if depth}
    lines.append(f"dead-letter queues: {dead or 'all empty'}")
    lines.append(f"alerts: {len(summary['alerts'])}")
    for alert in summary["alerts"]:
        lines.append(f"  [{alert['kind']}] {alert['message']}")
    if not summary["settled"]:
        lines.append("NOT SETTLED:")
        lines.extend(f"  {problem}" for problem in summary["stuck"])
    lines.append(f"outputs in {out_dir}")
    return "\n".join(lines)
