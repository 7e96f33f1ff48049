"""The README's local sections, verbatim: every shell block runs as written, against a real `up`, with the real AWS CLI.

The blocks run in a fresh folder holding only the repository's `samples/` (as a clone's root
would), in a shell whose environment has no AWS settings but the line `up` prints to paste.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.data_paths import REPO

pytestmark = pytest.mark.e2e

LOCAL_SECTIONS = ("Running it locally", "Publishing files from other systems")
UP_BLOCK = "reviews-pipeline up"


def readme_shell_blocks(sections: tuple[str, ...] = LOCAL_SECTIONS) -> list[str]:
    """The ```sh blocks of the named `## ` sections (their `### ` subsections included), in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = []
    for chunk in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        title, _, body = chunk.partition("\n")
        if title.strip() in sections:
            blocks += re.findall(r"^```sh\n(.*?)^```", body, flags=re.MULTILINE | re.DOTALL)
    return blocks


def user_environment() -> dict[str, str]:
    """A shell with the project's tools on PATH and no AWS settings or credentials of its own."""
    aws = shutil.which("aws") or str(REPO / ".tools" / "aws" / "bin" / "aws")
    path = os.pathsep.join([str(Path(sys.executable).parent), str(Path(aws).parent), os.environ.get("PATH", "")])
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "REVIEWS_"))}
    return environment | {
        "PATH": path,
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }


def run_block(
    block: str, cwd: Path, environment: dict[str, str], prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", f"{prelude}\n{block}"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    blocks = readme_shell_blocks()
    assert blocks.count(f"{UP_BLOCK}\n") == 1
    after_up = blocks[blocks.index(f"{UP_BLOCK}\n") + 1 :]
    assert any("aws s3 cp" in block for block in after_up)
    assert any("aws events put-events" in block for block in after_up)
    assert any(block.startswith("reviews-pipeline run") for block in blocks)


def test_every_shell_block_of_the_local_sections_works_as_written(tmp_path: Path) -> None:
    (tmp_path / "samples").symlink_to(REPO / "samples", target_is_directory=True)
    environment = user_environment()
    blocks = readme_shell_blocks()
    starter = blocks.index(f"{UP_BLOCK}\n")

    for block in blocks[:starter]:
        result = run_block(block, tmp_path, environment)
        assert result.returncode == 0, f"{block}\n→ {result.returncode}\n{result.stderr[-3000:]}"

    up = subprocess.Popen(
        ["bash", "-c", f"exec {UP_BLOCK}"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        export = _paste_line(up)
        for block in blocks[starter + 1 :]:
            result = run_block(block, tmp_path, environment, prelude=export)
            assert result.returncode == 0, f"{block}\n→ {result.returncode}\n{result.stderr[-3000:]}"
        view = _wait_for_final(tmp_path, environment, export, {"amazon_reviews_us_Gift_Card_v1_00.tsv", "new.json"})
        announced = [file for file in view["files"] if file["key"] == "raw/inference/new.json"]
        assert len(announced) == 1, "the announcement of an object already received does the work once"
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    assert up.returncode == 0
    assert not (tmp_path / ".reviews-pipeline" / "stack.json").exists()


def _paste_line(up: subprocess.Popen[str]) -> str:
    assert up.stdout is not None
    seen = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.strip().startswith("export AWS_ENDPOINT_URL="):
            return line.strip()
    raise AssertionError("`up` printed no export line:\n" + "".join(seen))


def _wait_for_final(cwd: Path, environment: dict[str, str], export: str, names: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        result = run_block("reviews-pipeline status --json", cwd, environment, prelude=export)
        assert result.returncode == 0, result.stderr
        view = json.loads(result.stdout)
        files = view["files"]
        assert isinstance(files, list)
        final = {Path(file["key"]).name for file in files if file["status"] in {"validated", "chunked", "rejected"}}
        if names <= final:
            return view
        time.sleep(1)
    raise AssertionError(f"not final in time: {json.dumps(view)[:3000]}")
