"""Faults injected into the whole local runtime (moto's server over HTTP, one worker process per service).

Each test runs one scenario of `reviews_pipeline.reliability` — the same ones `make reliability`
reports on — and asserts on its evidence: every file final, the ledger, the bucket and the summary
agreeing, every row accounted for, and what the fault itself must have caused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reviews_pipeline.reliability.checks import ScenarioResult
from reviews_pipeline.reliability.scenarios import run_scenario
from tests.data_paths import SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def scenario(name: str, work_dir: Path) -> ScenarioResult:
    result = run_scenario(name, SHARED_DATA, work_dir)
    assert result.problems == []
    assert result.rows_lost == 0
    return result


def injected(result: ScenarioResult) -> dict[str, int]:
    return {fault["name"]: fault["injected"] for fault in result.faults}


def test_workers_killed_mid_batch_redeliver_without_duplicating_output(tmp_path: Path) -> None:
    result = scenario("worker_crash", tmp_path)

    assert injected(result) == {"validator-crash": 1, "etl-crash": 1, "trainer-crash": 1, "predictor-crash": 1}
    restarts = result.evidence["restarts"]
    assert all(restarts[service] >= 1 for service in ("validator", "etl", "trainer", "predictor"))
    assert result.evidence["statuses"] == {"validated": 2, "chunked": 2}
    assert result.rows_in > 10_000


def test_the_same_s3_notification_three_times_gives_one_set_of_outputs(tmp_path: Path) -> None:
    result = scenario("duplicate_delivery", tmp_path)

    assert injected(result) == {"duplicate-notification": 4}
    versions = result.evidence["output_versions"]
    assert any(key.startswith("predictions/") for key in versions)
    assert set(versions.values()) == {1}


def test_entries_refused_by_put_events_are_retried_in_every_service(tmp_path: Path) -> None:
    result = scenario("refused_events", tmp_path)

    assert set(injected(result).values()) == {2}
    assert len(result.faults) == 5


def test_s3_throttling_is_ridden_out_and_persistent_errors_go_to_the_dlq_until_fixed(tmp_path: Path) -> None:
    result = scenario("storage_errors", tmp_path)

    faults = injected(result)
    assert faults["raw-reads-throttled"] == 3
    # Four attempts per call, three receives before the DLQ: at least twelve failed reads.
    assert faults["processed-reads-failing"] >= 12
    assert result.evidence["dead_letters_before_fix"]["etl"] == 1
    assert result.evidence["redriven"] == 1


def test_poison_messages_are_parked_alerted_and_redriven_while_the_workers_carry_on(tmp_path: Path) -> None:
    result = scenario("poison_message", tmp_path)

    assert result.evidence["dead_letters"]["validator"] == 1
    assert result.evidence["dead_letters"]["etl"] == 1
    assert result.evidence["redriven"] == {"validator": 1, "etl": 1}
    assert result.evidence["statuses"] == {"validated": 1}


def test_replaying_the_bus_archive_changes_nothing(tmp_path: Path) -> None:
    result = scenario("archive_replay", tmp_path)

    assert result.evidence["events_replayed"] > 0
    assert result.evidence["replayed_events_consumed_by_monitor"] > 0


def test_two_hundred_mixed_files_at_once_all_reach_a_final_state_that_ledger_bucket_and_summary_agree_on(
    tmp_path: Path,
) -> None:
    result = scenario("load", tmp_path)

    assert result.files_tried == 200
    assert result.evidence["statuses"] == {"validated": 120, "chunked": 30, "rejected": 50}
    assert len(result.bad_inputs) == 50


def test_forged_events_hostile_keys_and_a_pickled_model_are_refused(tmp_path: Path) -> None:
    result = scenario("hostile_inputs", tmp_path)

    refused = result.evidence["refused"]
    assert "not the pipeline's bucket" in refused["another bucket"]
    assert all("refused key" in reason for what, reason in refused.items() if what != "another bucket")
    assert len(result.bad_inputs) == 10


def test_a_failed_training_job_is_alerted_promotes_nothing_and_the_next_training_file_trains_again(
    tmp_path: Path,
) -> None:
    result = scenario("training_job_fails", tmp_path)

    assert injected(result) == {"stray-etl-file": 1, "bad-hyperparameter": 1}
    stray = result.evidence["stray_etl_file"]
    assert "etl/train/stray/part-00000.parquet is not a readable etl parquet file" in stray["reason"]
    assert stray["version"] in stray["alert"]
    assert result.evidence["stray_etl_file_models"]["versions"] == {"v1.0": "failed", "v1.1": "promoted"}
    assert result.evidence["stray_etl_file_models"]["current"] == "v1.1"
    bad = result.evidence["bad_hyperparameter"]
    assert "min_df" in bad["reason"]
    assert result.evidence["bad_hyperparameter_models"]["versions"] == {"v1.0": "failed"}
    assert result.evidence["bad_hyperparameter_models"]["current"] is None


def test_repeated_state_changes_promote_once_and_a_lost_one_is_recovered_by_the_sweeper(tmp_path: Path) -> None:
    result = scenario("state_change_events", tmp_path)

    faults = injected(result)
    assert faults["repeated-state-changes"] >= 2
    assert faults["lost-state-change"] == 1
    repeated = result.evidence["repeated"]
    assert repeated["status"] == "promoted"
    assert (repeated["manifest_writes"], repeated["pointer_writes"], repeated["model_trained_events"]) == (1, 1, 1)
    lost = result.evidence["lost"]
    assert lost["status"] == "promoted"
    assert lost["swept"] >= 1


def test_the_finisher_killed_mid_promotion_promotes_the_version_once_and_whole(tmp_path: Path) -> None:
    result = scenario("finisher_crash", tmp_path)

    assert injected(result) == {"finisher-crash": 1}
    finisher = result.evidence["finisher"]
    assert finisher["restarts"] >= 1
    assert finisher["model_trained_events"] == 1
    assert result.evidence["models"]["versions"] == {finisher["version"]: "promoted"}
    assert result.evidence["models"]["current"] == finisher["version"]
    assert "models/current/manifest.json" in finisher["current_files"]


def test_a_corrupt_etl_file_fails_the_training_with_an_alert_and_once_removed_the_next_file_promotes(
    tmp_path: Path,
) -> None:
    result = scenario("corrupt_etl_file", tmp_path)

    assert injected(result) == {"corrupt-etl-file": 1}
    corrupt = result.evidence["corrupt_etl_file"]
    assert "etl/train/stray/part-00000.parquet is not a readable etl parquet file" in corrupt["reason"]
    assert result.evidence["corrupt_etl_file_models"]["versions"] == {"v1.0": "failed", "v1.1": "promoted"}
