"""The files a `run` was given: repeated flags merged, directories expanded, each file taken once per dataset.

People pass several files by repeating a flag (`--train a --train b`), by listing them after one
flag (`--train a b`), by a shell glob, or by naming the folder they keep them in. All of these
mean the same set of files. A file named twice for the same dataset is uploaded once, and the run
says so; a folder contributes its review files (by name suffix, in every subfolder) and the run
lists what it left out, so nothing is dropped without a word.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.events import Dataset

# What a review file is called, by the formats the validator reads (it reads by content, so this
# only decides what a folder contributes; a file named on its own is always taken).
REVIEW_FILE_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".json", ".jsonl", ".ndjson")
COMPRESSED_SUFFIXES = (".gz",)


class InputError(ValueError):
    """A path given on the command line cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    """As the user spelt it (or as found under the folder they named): what the summary shows."""
    dataset: Dataset


@dataclass(frozen=True)
class SkippedPath:
    path: Path
    dataset: Dataset
    reason: str


@dataclass
class InputSelection:
    files: list[InputFile] = field(default_factory=list)
    repeated: list[InputFile] = field(default_factory=list)
    """Files named more than once for the same dataset: uploaded once."""
    skipped: list[SkippedPath] = field(default_factory=list)
    """Files inside a named folder that are not review files by their name (README.md, PROVENANCE.md…)."""

    def of(self, dataset: Dataset) -> list[InputFile]:
        return [file for file in self.files if file.dataset == dataset]

    def as_dict(self) -> dict[str, object]:
        return {
            "files": len(self.files),
            "repeated": [{"path": str(file.path), "dataset": file.dataset} for file in self.repeated],
            "skipped": [
                {"path": str(skipped.path), "dataset": skipped.dataset, "reason": skipped.reason}
                for skipped in self.skipped
            ],
        }


def is_review_file_name(name: str) -> bool:
    lowered = name.lower()
    for compressed in COMPRESSED_SUFFIXES:
        lowered = lowered.removesuffix(compressed)
    return lowered.endswith(REVIEW_FILE_SUFFIXES)


def _files_under(folder: Path, exclude: Path | None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Review files under a folder, sorted, and the other files with why each was left out."""
    taken: list[Path] = []
    left_out: list[tuple[Path, str]] = []
    for directory, subdirectories, names in os.walk(folder):
        # Hidden folders (.git, .venv, .reviews-pipeline) hold no one's review files, and the run's
        # own output folder holds the last run's results, not reviews.
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if not name.startswith(".") and (exclude is None or (Path(directory) / name).resolve() != exclude)
        )
        for name in sorted(names):
            path = Path(directory) / name
            if name.startswith("."):
                continue
            if not path.is_file():
                left_out.append((path, "not a regular file"))
            elif is_review_file_name(name):
                taken.append(path)
            else:
                left_out.append((path, f"not a review file by its name (taken: {', '.join(REVIEW_FILE_SUFFIXES)})"))
    return taken, left_out


def select_inputs(arguments: list[tuple[Path, Dataset]], output_folder: Path | None = None) -> InputSelection:
    """The files to upload, in the order given; raises InputError naming every path that cannot be used.

    `output_folder` (the run's --out) is never searched for review files.
    """
    exclude = output_folder.resolve() if output_folder is not None else None
    selection = InputSelection()
    seen: set[tuple[Path, Dataset]] = set()
    problems: list[str] = []
    for path, dataset in arguments:
        if path.is_dir():
            found, left_out = _files_under(path, exclude)
            selection.skipped += [SkippedPath(skipped, dataset, reason) for skipped, reason in left_out]
            if not found:
                problems.append(f"{path}: a folder with no review files in it")
            candidates = found
        elif path.is_file():
            candidates = [path]
        elif path.exists():
            problems.append(f"{path}: not a regular file or folder")
            continue
        else:
            problems.append(f"{path}: no such file or folder")
            continue
        for candidate in candidates:
            if not os.access(candidate, os.R_OK):
                problems.append(f"{candidate}: not readable")
                continue
            identity = (candidate.resolve(), dataset)
            if identity in seen:
                selection.repeated.append(InputFile(candidate, dataset))
                continue
            seen.add(identity)
            selection.files.append(InputFile(candidate, dataset))
    if problems:
        raise InputError("; ".join(problems))
    return selection
