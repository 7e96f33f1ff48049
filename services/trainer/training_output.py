"""What a training job leaves in /opt/ml/model/, and reading it back safely from SageMaker's model.tar.gz.

Layout of /opt/ml/model/ (so of model.tar.gz, member names relative):

    model/<file>            the version's plain-data files (reviews_model.artifacts.model_files), manifest included
    evaluation.json         the test metrics, the training details, the validation macro-F1 (the grid's
                            objective) and the current model's macro-F1 on the same test split
    test_split.parquet      the test rows (tokens, counts, label), so the finisher can score another current
                            model on the same split if one was promoted while the job ran

The finisher reads the tar in memory and never extracts it to disk: a member that is not a regular file
(a link, a device, a folder entry is skipped), has an absolute name or `..` in it, is not one of the
names above, or makes the whole exceed the size cap is refused, before any byte of it is used.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reviews_model.artifacts import DATA_SUFFIXES, UnsafeModelError

MODEL_FOLDER = "model/"
EVALUATION = "evaluation.json"
TEST_SPLIT = "test_split.parquet"


@dataclass(frozen=True)
class TrainingOutput:
    model_files: dict[str, bytes]
    """The version's files, by name relative to the version's prefix."""
    evaluation: bytes
    test_split: bytes | None


def write_training_output(
    model_dir: Path, model_files: Mapping[str, bytes], evaluation: bytes, test_split: bytes | None
) -> None:
    """Lay out /opt/ml/model/ (the entry point's side)."""
    for name, body in model_files.items():
        target = model_dir / MODEL_FOLDER / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    (model_dir / EVALUATION).write_bytes(evaluation)
    if test_split is not None:
        (model_dir / TEST_SPLIT).write_bytes(test_split)


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    if not name or name.startswith("/") or "\\" in name:
        raise UnsafeModelError(f"model.tar.gz: refusing the member {member.name!r} (absolute or odd name)")
    if ".." in name.split("/") or posixpath.normpath(name) != name.rstrip("/"):
        raise UnsafeModelError(f"model.tar.gz: refusing the member {member.name!r} (a path out of its folder)")
    return name


def _allowed(name: str) -> bool:
    if name in (EVALUATION, TEST_SPLIT):
        return True
    return name.startswith(MODEL_FOLDER) and name.endswith(DATA_SUFFIXES)


def read_training_output(archive: bytes, max_bytes: int) -> TrainingOutput:
    """The job's outputs from its model.tar.gz; UnsafeModelError for anything but the layout above."""
    if len(archive) > max_bytes:
        raise UnsafeModelError(f"model.tar.gz is {len(archive)} bytes, over the {max_bytes}-byte cap")
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                if member.isdir():
                    _member_name(member)
                    continue
                if not member.isfile():
                    raise UnsafeModelError(f"model.tar.gz: refusing {member.name!r}: not a regular file (a link?)")
                name = _member_name(member)
                if not _allowed(name):
                    raise UnsafeModelError(f"model.tar.gz: refusing {name!r}: not part of a training job's output")
                total += member.size
                if total > max_bytes:
                    raise UnsafeModelError(f"model.tar.gz unpacks to more than the {max_bytes}-byte cap")
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise UnsafeModelError(f"model.tar.gz: {name!r} cannot be read")
                files[name] = extracted.read(max_bytes + 1)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UnsafeModelError(f"model.tar.gz is not a readable gzipped tar: {error}") from error
    if EVALUATION not in files:
        raise UnsafeModelError(f"model.tar.gz holds no {EVALUATION}: not a training job's output")
    model_files = {name[len(MODEL_FOLDER) :]: body for name, body in files.items() if name.startswith(MODEL_FOLDER)}
    return TrainingOutput(model_files=model_files, evaluation=files[EVALUATION], test_split=files.get(TEST_SPLIT))
