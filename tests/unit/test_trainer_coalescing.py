"""Coalescing training triggers: which roots a training covers, from their ledger statuses."""

from __future__ import annotations

from services.trainer.coalescing import (
    covered_status,
    is_covered,
    is_waiting,
    may_be_covered,
    roots_covered_by,
    skipped_status,
    waiting_status,
)


def test_a_training_covers_the_ready_roots_nobody_trained_and_those_skipped_for_too_little_data() -> None:
    # Given roots whose ETL was complete when the training of the trigger read the corpus
    statuses = {
        "untouched": "",
        "small": skipped_status("too few labelled reviews, need 10 per class, have negative 2"),
        "own": "completed",
        "busy": "running",
        "earlier": covered_status("v1.0"),
    }
    # When the training succeeds
    covered = roots_covered_by("trigger", ["trigger", *statuses], statuses)
    # Then only the roots no training took up, or that found too little data, are marked covered
    assert covered == ["untouched", "small"]


def test_a_covered_root_trains_nothing_more() -> None:
    assert covered_status("v1.2") == "covered by v1.2"
    assert is_covered(covered_status("v1.2"))
    assert not is_covered(skipped_status("too few labelled reviews"))
    assert not may_be_covered(covered_status("v1.2"))
    assert may_be_covered("")


def test_a_root_waiting_for_the_running_job_is_taken_up_by_the_next_training() -> None:
    waiting = waiting_status("v1.0")
    assert waiting == "waiting for v1.0 to finish"
    assert is_waiting(waiting) and may_be_covered(waiting) and not is_covered(waiting)
    assert roots_covered_by("trigger", ["trigger", "waited"], {"waited": waiting}) == ["waited"]
