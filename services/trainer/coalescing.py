"""Which training triggers still need a training: the coalescing policy, over plain ledger statuses.

Every training reads the whole etl/train/ corpus, so the root files whose ETL was complete when a
training job was launched are inside it: they are marked `in training for vX.Y` at launch and
`covered by vX.Y` once the job's version is written, and their own triggers, queued behind the first,
launch nothing more. Twenty files dropped at once train a handful of times, not twenty.

One training job runs at a time: a trigger arriving while one runs launches nothing and its root
reads `waiting for vX.Y to finish`; the ModelTrained of that job makes the launcher train once on
every root still waiting (or skipped, or failed), so files dropped over a few minutes cost two
trainings, not one per file.

A root whose own trigger found too little data (`skipped: …`), or whose training job failed
(`failed: …`), is taken up by the next training: that training reads its reviews again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

COVERED_BY = "covered by "
IN_TRAINING = "in training for "
RUNNING = "running "
SKIPPED = "skipped: "
WAITING = "waiting for "
FAILED = "failed: "
COMPLETED = "completed"


def covered_status(version: str) -> str:
    """The training status of a root file a training of `version` read without it being the trigger."""
    return f"{COVERED_BY}{version}"


def in_training_status(version: str) -> str:
    """A root whose reviews a launched, unfinished training of `version` is reading."""
    return f"{IN_TRAINING}{version}"


def running_status(version: str, job_name: str) -> str:
    """The trigger's own status while its training job runs."""
    return f"{RUNNING}{version} (SageMaker job {job_name})"


def waiting_status(running_version: str) -> str:
    """A root whose trigger came while a training ran: the next training, launched when that one ends, takes it."""
    return f"{WAITING}{running_version} to finish"


def is_waiting(status: str) -> bool:
    return status.startswith(WAITING)


def skipped_status(shortage: str) -> str:
    """The training status of a trigger whose corpus had too few reviews to train (`shortage` says what)."""
    return f"{SKIPPED}{shortage}"


def failed_status(version: str, reason: str) -> str:
    """A root whose training job failed: the next training file's trigger trains on it again."""
    return f"{FAILED}{version}: {reason}"


def is_covered(status: str) -> bool:
    """A training read, or is reading, this root file: its own trigger launches nothing more."""
    return status.startswith((COVERED_BY, IN_TRAINING, RUNNING)) or status == COMPLETED


def may_be_covered(status: str) -> bool:
    """A root no training has taken up, one waiting for the running one, one whose trigger found too little
    data, or one whose training failed."""
    return not status or status.startswith((SKIPPED, FAILED, WAITING))


def roots_covered_by(trigger: str, ready: Iterable[str], statuses: Mapping[str, str]) -> list[str]:
    """The roots, of those `ready` (ETL complete when the training was launched), that it takes up.

    The trigger has a status of its own; a root already trained, in training or covered keeps its status.
    """
    return [root for root in ready if root != trigger and may_be_covered(statuses.get(root, ""))]
