"""Every real file of ../shared/data, as it is, through the whole local runtime at once.

Most are training data; three are held out and classified (two of them big enough to be chunked).
Each file must settle: accepted with its layout and the rows the reference table expects (counted
independently: each PROVENANCE.md states them), or rejected with a report. For every file the rows
reconcile from raw/ to its last stage — predictions/ for the classified ones, etl/ for the rest:
rows in = rows there + rows dropped with reasons, counted in the ledger and again in the bucket.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reviews_pipeline.reliability.inputs import INFERENCE_FILES
from reviews_pipeline.reliability.scenarios import CHUNKING, run_scenario
from tests.data_paths import ACCEPT, REAL_FILES, SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_SIZE_BYTES = int(CHUNKING["validator"]["max_size_bytes"])


def test_every_real_file_settles_and_every_row_is_accounted_for_from_raw_to_its_last_stage(tmp_path: Path) -> None:
    result = run_scenario("real_files", SHARED_DATA, tmp_path)

    assert result.problems == []
    assert result.rows_lost == 0
    files = result.evidence["files"]
    assert set(files) == set(REAL_FILES)
    for name, expected in REAL_FILES.items():
        file = files[name]
        if expected[0] != ACCEPT:
            _, check, words = expected
            assert (file["status"], file["check"]) == ("rejected", check), file
            assert str(words) in file["reason"]
            continue
        _, layout, rows_in, rows_out, rows_dropped = expected
        big = (SHARED_DATA / name).stat().st_size > MAX_SIZE_BYTES
        assert file["status"] == ("chunked" if big else "validated"), file
        assert file["parts"] > 1 if big else file["parts"] == 1
        if not big:
            assert file["layout"] == layout
        assert (file["rows_in"], file["rows_out"], file["rows_dropped"]) == (rows_in, rows_out, rows_dropped)
        account = file["reconciliation"]
        assert account["complete"] and account["rows_lost"] == 0 and account["duplicate_rows"] == 0, account
        assert account["rows_in"] == rows_in
        dropped_later = sum(account["rows_dropped"].get("etl", {}).values())
        assert account["rows_final_bucket"] == rows_out - dropped_later
        assert account["final_stage"] == ("predictions" if name in INFERENCE_FILES else "etl")

    # The held-out files were classified, each by one model version.
    predictions = result.evidence["predictions"]
    assert set(predictions) == set(INFERENCE_FILES)
    for name, prediction in predictions.items():
        assert prediction["rows"] == files[name]["reconciliation"]["rows_final_bucket"] > 0
        assert prediction["model_version"] in result.evidence["model_versions"]
    # Training triggers are coalesced: each training reads the whole corpus, so files it read need no
    # training of their own.
    trained_on = [name for name, expected in REAL_FILES.items() if expected[0] == ACCEPT]
    trained_on = [name for name in trained_on if name not in INFERENCE_FILES]
    assert 1 <= len(result.evidence["model_versions"]) < len(trained_on)
    assert result.evidence["model"]["metrics"]["macro_f1"] > 0.5
