"""The files a run is given: folders expanded, repeats merged, what was left out said."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviews_pipeline.file_arguments import InputError, is_review_file_name, select_inputs


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_folder_gives_its_review_files_in_every_subfolder_and_lists_the_rest(tmp_path: Path) -> None:
    a = touch(tmp_path / "data" / "a.tsv")
    b = touch(tmp_path / "data" / "more" / "b.json.gz")
    touch(tmp_path / "data" / "more" / "PROVENANCE.md")
    touch(tmp_path / "data" / ".DS_Store")
    touch(tmp_path / "data" / ".git" / "c.csv")

    selection = select_inputs([(tmp_path / "data", "train")])

    assert [file.path for file in selection.files] == [a, b]
    assert [skipped.path.name for skipped in selection.skipped] == ["PROVENANCE.md"]


def test_a_file_given_twice_for_a_dataset_is_taken_once_and_said(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.csv")
    link = tmp_path / "link.csv"
    link.symlink_to(a)

    selection = select_inputs([(a, "train"), (tmp_path, "train"), (a, "inference")])

    assert [(file.path, file.dataset) for file in selection.files] == [(a, "train"), (a, "inference")]
    assert [file.path for file in selection.repeated] == [a, link]


def test_the_runs_output_folder_is_not_searched(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.csv")
    touch(tmp_path / "pipeline-output" / "summary.json")

    selection = select_inputs([(tmp_path, "train")], output_folder=tmp_path / "pipeline-output")

    assert [file.path for file in selection.files] == [a]


def test_every_unusable_path_is_named_at_once(tmp_path: Path) -> None:
    touch(tmp_path / "empty" / "notes.md")
    with pytest.raises(InputError) as raised:
        select_inputs([(tmp_path / "missing.csv", "train"), (tmp_path / "empty", "inference")])
    assert "missing.csv: no such file or folder" in str(raised.value)
    assert "empty: a folder with no review files in it" in str(raised.value)


def test_a_file_named_on_its_own_is_taken_whatever_its_name(tmp_path: Path) -> None:
    odd = touch(tmp_path / "reviews.export")
    assert [file.path for file in select_inputs([(odd, "train")]).files] == [odd]


@pytest.mark.parametrize(
    ("name", "taken"),
    [("a.CSV", True), ("a.tsv.gz", True), ("a.jsonl", True), ("a.txt", True), ("README.md", False), ("a.gz", False)],
)
def test_review_file_names(name: str, taken: bool) -> None:
    assert is_review_file_name(name) is taken
