"""What a person watching a stack wants to see: where each file stands, what changed, which alerts came."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shared import layout
from shared.ledger import FileRecord
from shared.storage import ObjectStore

from .runtime import rows_of

# The stages after the validator, in the order a file goes through them; each writes its own
# status under `stages` in the ledger, while `stage` keeps naming the validator's side.
LATER_STAGES = ("etl", "training", "predictions")


def current_stage(record: FileRecord) -> tuple[str, str]:
    """The furthest stage a file has reached and its state there, e.g. ("training", "covered by v1.0")."""
    if record.status == "rejected":
        return record.stage, "rejected"
    for stage in reversed(LATER_STAGES):
        if stage in record.stages:
            return stage, record.stages[stage]
    return record.stage, record.status


def file_line(record: FileRecord) -> str:
    stage, state = current_stage(record)
    rows_in, rows_out = rows_of(record)
    line = f"{record.key}: {record.status}, {stage} {state}"
    if rows_in or rows_out:
        line += f" ({rows_in} rows in, {rows_out} out)"
    if record.reason:
        line += f" — {record.reason}"
    return line


@dataclass
class StackWatcher:
    """Remembers what it last saw of the ledger and the alerts, and tells what is new since."""

    seen_files: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    seen_alerts: set[str] = field(default_factory=set)

    def file_changes(self, records: list[FileRecord]) -> list[str]:
        lines = []
        for record in sorted(records, key=lambda record: record.received_at):
            if not record.is_root:
                continue  # a chunk's parts are counted on their root file
            state = (record.status, current_stage(record), rows_of(record), record.reason)
            if self.seen_files.get(record.file_id) != state:
                self.seen_files[record.file_id] = state
                lines.append(f"{time.strftime('%H:%M:%S')} file  {file_line(record)}")
        return lines

    def new_alerts(self, store: ObjectStore) -> list[str]:
        lines = []
        for key in sorted(store.keys(layout.MONITORING_ALERTS)):
            if key in self.seen_alerts:
                continue
            self.seen_alerts.add(key)
            alert = store.read_json(key)
            lines.append(f"{time.strftime('%H:%M:%S')} ALERT [{alert.get('kind')}] {alert.get('message')}")
        return lines


def recent_alerts(store: ObjectStore, limit: int = 10) -> list[dict[str, Any]]:
    """The latest alerts, oldest first (their keys sort by day, then by id: the time is inside)."""
    alerts = [store.read_json(key) for key in store.keys(layout.MONITORING_ALERTS)]
    alerts.sort(key=lambda alert: str(alert.get("raised_at", "")))
    return alerts[-limit:]
