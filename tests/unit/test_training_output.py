"""A training job's model.tar.gz is read in memory and refused unless it is exactly a job's plain-data output."""

from __future__ import annotations

import io
import tarfile

import pytest

from reviews_model.artifacts import UnsafeModelError
from services.trainer.hyperparameters import (
    DEFAULT_GRID,
    HyperparameterError,
    check_search_space,
    from_hyperparameters,
    grid,
    to_hyperparameters,
)
from services.trainer.jobs import job_name
from services.trainer.training import TrainerSettings
from services.trainer.training_output import EVALUATION, read_training_output

CAP = 1_000_000


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, body in members:
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buffer.getvalue()


def regular(name: str, body: bytes = b"{}") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), body


def test_a_jobs_output_is_read_with_its_model_files_relative_to_the_version() -> None:
    output = read_training_output(
        archive(regular(EVALUATION), regular("model/manifest.json"), regular("model/heads/logistic.weights.npy")), CAP
    )
    assert set(output.model_files) == {"manifest.json", "heads/logistic.weights.npy"}
    assert output.test_split is None


def test_members_named_from_the_folder_itself_are_read_as_relative() -> None:
    # `tar -C /opt/ml/model -czf model.tar.gz .` names its members ./evaluation.json, ./model/…
    output = read_training_output(archive(regular("./evaluation.json"), regular("./model/manifest.json")), CAP)
    assert set(output.model_files) == {"manifest.json"}


@pytest.mark.parametrize(
    ("member", "refusal"),
    [
        (regular("/etc/evaluation.json"), "absolute"),
        (regular("model/../../evaluation.json"), "out of its folder"),
        (regular("model/booster.pkl"), "not part of a training job's output"),
        (regular("run.sh"), "not part of a training job's output"),
    ],
)
def test_absolute_escaping_and_foreign_members_are_refused(member: tuple[tarfile.TarInfo, bytes], refusal: str) -> None:
    with pytest.raises(UnsafeModelError, match=refusal):
        read_training_output(archive(regular(EVALUATION), member), CAP)


def test_links_are_refused() -> None:
    link = tarfile.TarInfo("model/manifest.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(UnsafeModelError, match="not a regular file"):
        read_training_output(archive(regular(EVALUATION), (link, None)), CAP)


def test_an_output_over_the_cap_unpacked_is_refused() -> None:
    # Zeros compress to almost nothing: the cap is on what the tar unpacks to, not its size.
    bomb = archive(regular(EVALUATION), regular("model/idf.npy", bytes(2 * CAP)))
    assert len(bomb) < CAP
    with pytest.raises(UnsafeModelError, match="cap"):
        read_training_output(bomb, CAP)


def test_not_a_tar_and_no_evaluation_are_refused() -> None:
    with pytest.raises(UnsafeModelError, match="not a readable gzipped tar"):
        read_training_output(b"not a tar", CAP)
    with pytest.raises(UnsafeModelError, match=r"no evaluation\.json"):
        read_training_output(archive(regular("model/manifest.json")), CAP)


def test_every_training_setting_travels_as_a_string_and_comes_back_the_same() -> None:
    settings = TrainerSettings.model_validate({"label_target": "stars", "model": {"max_depth": 6}})
    hyperparameters = to_hyperparameters(settings, "v2.3")
    assert all(isinstance(value, str) for value in hyperparameters.values())
    assert (hyperparameters["model.max_depth"], hyperparameters["drop_duplicate_texts"]) == ("6", "true")
    assert from_hyperparameters(hyperparameters) == (settings, "v2.3")


def test_bad_hyperparameters_are_named_one_by_one() -> None:
    good = to_hyperparameters(TrainerSettings(), "v1.0")
    with pytest.raises(HyperparameterError) as refused:
        from_hyperparameters({**good, "model.max_depth": "40", "model.depht": "3"})
    assert str(refused.value) == (
        "unknown hyperparameter 'model.depht'; hyperparameter model.max_depth='40': "
        "Input should be less than or equal to 12"
    )


def test_the_default_grid_has_twelve_valid_combinations_and_a_bigger_one_is_refused() -> None:
    check_search_space(DEFAULT_GRID, max_trials=12)
    assert len(grid(DEFAULT_GRID)) == 12
    with pytest.raises(HyperparameterError, match="more than the 4 allowed"):
        check_search_space(DEFAULT_GRID, max_trials=4)
    with pytest.raises(HyperparameterError, match=r"'model\.depth' is not a training setting"):
        check_search_space({"model.depth": ["3"]}, max_trials=12)


def test_job_names_fit_a_tuning_job_and_differ_between_claims() -> None:
    first, second = (
        job_name("reviews-1a2b3c4d", "v12-34".replace("-", "."), 1_764_590_000.0),
        job_name("reviews-1a2b3c4d", "v12.34", 1_764_590_000.001),
    )
    assert first != second
    assert len(first) <= 32 and first.startswith("reviews-1a2b3c4d-v12-34-")
