"""The run summary: per file what happened, the model, the predictions, DLQ depths and alerts.

Its field names are a contract users script against (`reviews-pipeline run --json`): add fields,
never rename or remove them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared import layout
from shared.ledger import FileRecord
from shared.storage import ObjectStore

from .reconciliation import Reconciliation, reconcile, rows_dropped_of
from .runtime import UploadedFile, rows_of


def file_summary(
    uploaded: UploadedFile, record: FileRecord | None, reconciliation: Reconciliation | None = None
) -> dict[str, Any]:
    if record is None:
        return {
            "path": str(uploaded.path),
            "dataset": uploaded.dataset,
            "file_id": uploaded.file_id,
            "status": "lost",
            "layout": None,
            "detected": None,
            "parts": 0,
            "rows_in": 0,
            "rows_out": 0,
            "rows_dropped": {},
            "report": None,
            "reason": "the ledger has no record of this file",
            "reconciliation": None,
        }
    rows_in, rows_out = rows_of(record)
    return {
        "path": str(uploaded.path),
        "dataset": uploaded.dataset,
        "file_id": uploaded.file_id,
        "status": record.status,
        "layout": record.layout,
        "detected": record.detected,
        "parts": record.counters.get("validation_expected", 1),
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


def model_summary(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    trained = [event["detail"] for event in events if event.get("detail-type") == "ModelTrained"]
    if not trained:
        return None
    latest = trained[-1]
    return {
        "version": latest["version"],
        "promoted": latest["promoted"],
        "metrics": latest["metrics"],
        "reason": latest.get("reason"),
    }


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


def build_summary(
    uploaded: list[UploadedFile],
    records: dict[str, FileRecord],
    store: ObjectStore,
    dead_letter_depths: dict[str, int],
    *,
    settled: bool,
    stuck: list[str],
) -> dict[str, Any]:
    events = pipeline_events(store)
    files = []
    for file in uploaded:
        record = records.get(file.file_id)
        files.append(file_summary(file, record, reconcile(record, store) if record else None))
    return {
        "settled": settled,
        "stuck": stuck,
        "rows_lost": sum(file["reconciliation"]["rows_lost"] for file in files if file["reconciliation"]),
        "files": files,
        "model": model_summary(events),
        "predictions": predictions_summary(events, [file for file in uploaded if file.dataset == "inference"]),
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
    model = summary["model"]
    lines.append("")
    if model:
        metrics = model["metrics"]
        verdict = "promoted" if model["promoted"] else f"not promoted: {model['reason']}"
        lines.append(
            f"model: {model['version']} ({verdict}), accuracy {metrics.get('accuracy', float('nan')):.3f}, "
            f"macro-F1 {metrics.get('macro_f1', float('nan')):.3f}; report under monitoring/metrics/{model['version']}/"
        )
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
