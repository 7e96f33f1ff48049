"""Every real file of ../shared/data, as it is, through the whole local runtime at once.

Each file must settle: accepted with its layout and the rows the validator's own table expects
(summed over parts when it was big enough to be chunked), or rejected with a report. Nothing is
lost: rows in = rows out + rows dropped, for every file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data_paths import ACCEPT, REAL_FILES, REPO, SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REVIEW_FILES = {name: expected for name, expected in REAL_FILES.items() if not name.endswith((".md", ".txt"))}
# Small enough that the larger real files (MARC, Datafiniti, McAuley 2018) are split into parts.
MAX_SIZE_BYTES = 1_000_000
PART_SIZE_BYTES = 400_000


def test_every_real_file_settles_with_its_rows_accounted_for(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "visibility_timeout_seconds": 5,
                "services": {
                    "validator": {"max_size_bytes": MAX_SIZE_BYTES},
                    "chunker": {"part_size_bytes": PART_SIZE_BYTES},
                },
            }
        )
    )
    paths = [SHARED_DATA / name for name in sorted(REVIEW_FILES)]

    command = [sys.executable, "-m", "reviews_pipeline.cli", "run", "--train", *map(str, paths)]
    command += ["--out", str(tmp_path / "out"), "--config", str(config), "--json"]
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    by_name = {str(Path(file["path"]).relative_to(SHARED_DATA)): file for file in summary["files"]}
    assert set(by_name) == set(REVIEW_FILES)
    for name, expected in REVIEW_FILES.items():
        file = by_name[name]
        assert file["rows_in"] == file["rows_out"] + sum(file["rows_dropped"].values()), file
        if expected[0] == ACCEPT:
            _, layout, rows_in, rows_out, rows_dropped = expected
            big = (SHARED_DATA / name).stat().st_size > MAX_SIZE_BYTES
            assert file["status"] == ("chunked" if big else "validated"), file
            assert (file["rows_in"], file["rows_out"], file["rows_dropped"]) == (rows_in, rows_out, rows_dropped)
            assert file["parts"] > 1 if big else file["parts"] == 1
            if not big:
                assert file["layout"] == layout
        else:
            _, check, words = expected
            assert file["status"] == "rejected", file
            report = json.loads((tmp_path / "out" / file["report"]).read_text())
            assert report["check"] == check
            assert str(words) in report["reason"]
    assert not any(summary["dlq"].values())
    # Training triggers are coalesced: each training reads the whole corpus, so files it read need no
    # training of their own.
    accepted = sum(1 for expected in REVIEW_FILES.values() if expected[0] == ACCEPT)
    versions = json.loads((tmp_path / "out" / "models" / "index.json").read_text())["versions"]
    assert 1 <= len(versions) < accepted
    assert summary["model"]["metrics"]["macro_f1"] > 0.5
