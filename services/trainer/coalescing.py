"""Which training triggers still need a training: the coalescing policy, over plain ledger statuses.

Every training reads the whole etl/train/ corpus, so a root file whose ETL was complete when a
training read the corpus is marked `covered by vX.Y` once that training succeeds, and its own
trigger, still queued behind it, trains nothing more. Twenty files dropped at once train a handful
of times, not twenty. A root whose own trigger found too little data (`skipped: …`) is covered by
the next training too: that training read its reviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

COVERED_BY = "covered by "
SKIPPED = "skipped: "


def covered_status(version: str) -> str:
    """The training status of a root file a training of `version` read without it being the trigger."""
    return f"{COVERED_BY}{version}"


def skipped_status(shortage: str) -> str:
    """The training status of a trigger whose corpus had too few reviews to train (`shortage` says what)."""
    return f"{SKIPPED}{shortage}"


def is_covered(status: str) -> bool:
    """A training already read this root file: its own trigger trains nothing more."""
    return status.startswith(COVERED_BY)


def may_be_covered(status: str) -> bool:
    """A root no training has taken up, or one whose own trigger found too little data to train."""
    return not status or status.startswith(SKIPPED)


def roots_covered_by(trigger: str, ready: Iterable[str], statuses: Mapping[str, str]) -> list[str]:
    """The roots, of those `ready` (ETL complete when the training read the corpus), to mark covered.

    The trigger has a status of its own (completed); a root already trained, running or covered
    keeps its status.
    """
    return [root for root in ready if root != trigger and may_be_covered(statuses.get(root, ""))]
