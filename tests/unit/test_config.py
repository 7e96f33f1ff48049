"""The `--config` file: one model checks all of it, each service's part by the service's own settings classes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reviews_pipeline.config import ConfigError, RuntimeConfig
from services.chunker.splitting import ChunkerSettings
from services.etl.transform import EtlSettings
from services.trainer.training import TrainerSettings
from services.validator.validation import ValidatorSettings

README = Path(__file__).parents[2] / "README.md"


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """The lines of the ConfigError reading `path` raises, each checked to start with the path."""
    with pytest.raises(ConfigError) as raised:
        RuntimeConfig.from_file(path)
    lines = str(raised.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    return [line.removeprefix(f"{path}: ") for line in lines]


# -- what a valid config becomes ------------------------------------------------------------------


def test_the_readmes_example_config_is_valid(tmp_path: Path) -> None:
    # Given the example under "The `--config` file" in the README
    after_heading = README.read_text(encoding="utf-8").split("The `--config` file", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", after_heading, re.DOTALL)
    assert example is not None

    # When it is read
    config = RuntimeConfig.from_file(config_file(tmp_path, example.group(1)))

    # Then every setting in it reaches its service
    assert config.faults[0].name == "throttled"
    assert config.service_environment() == {
        "REVIEWS_VALIDATOR_MIN_SIZE_BYTES": "1",
        "REVIEWS_VALIDATOR_MAX_SIZE_BYTES": "268435456",
        "REVIEWS_CHUNKER_PART_SIZE_BYTES": "67108864",
        "REVIEWS_AWS_MAX_ATTEMPTS": "10",
    }


def test_flat_settings_become_environment_variables(tmp_path: Path) -> None:
    path = config_file(
        tmp_path, "services:\n  validator:\n    max_size_bytes: 1048576\n  etl:\n    remove_stop_words: true\n"
    )

    config = RuntimeConfig.from_file(path)

    assert config.service_environment() == {
        "REVIEWS_VALIDATOR_MAX_SIZE_BYTES": "1048576",
        "REVIEWS_ETL_REMOVE_STOP_WORDS": "true",
    }


def test_the_attempts_per_aws_call_go_to_every_service() -> None:
    config = RuntimeConfig.model_validate({"aws_max_attempts": 4, "services": {"etl": {"batch_rows": 10}}})

    assert config.service_environment() == {"REVIEWS_AWS_MAX_ATTEMPTS": "4", "REVIEWS_ETL_BATCH_ROWS": "10"}


def test_nested_trainer_settings_use_the_trainers_nested_delimiter() -> None:
    config = RuntimeConfig.model_validate({"services": {"trainer": {"model": {"max_rounds": 50}}}})

    assert config.service_environment() == {"REVIEWS_TRAINER_MODEL__MAX_ROUNDS": "50"}


def test_the_services_read_back_from_their_environment_what_the_config_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given settings of every kind: numbers, booleans, lists read as commas, nested models, a mapping
    path = config_file(
        tmp_path,
        "services:\n"
        "  validator: {max_size_bytes: 2097152, round_ratings: true, column_roles: {title: summary}}\n"
        "  chunker: {part_size_bytes: 1048576}\n"
        "  etl: {stop_word_languages: [en, de], remove_stop_words: true}\n"
        "  trainer: {test_fraction: 0.25, features: {ngram_max: 3}, model: {max_rounds: 50}}\n",
    )

    # When the services build their settings from the environment the config makes
    for name, value in RuntimeConfig.from_file(path).service_environment().items():
        monkeypatch.setenv(name, value)
    validator, chunker, etl, trainer = ValidatorSettings(), ChunkerSettings(), EtlSettings(), TrainerSettings()

    # Then they hold the config's values, and their defaults for the rest
    assert (validator.max_size_bytes, validator.round_ratings) == (2097152, True)
    assert validator.layout_settings.column_roles == {"title": "summary"}
    assert chunker.part_size_bytes == 1048576
    assert (etl.stop_word_languages, etl.remove_stop_words) == (("en", "de"), True)
    assert (trainer.test_fraction, trainer.features.ngram_max, trainer.model.max_rounds) == (0.25, 3, 50)
    assert trainer.model.max_depth == TrainerSettings().model.max_depth == 4


def test_the_users_environment_neither_spoils_nor_mends_a_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shell whose settings would be invalid, or would make an invalid value fit
    monkeypatch.setenv("REVIEWS_VALIDATOR_MAX_SIZE_BYTES", "big")
    monkeypatch.setenv("REVIEWS_VALIDATOR_LAYOUTS", "not json")
    monkeypatch.setenv("REVIEWS_CHUNKER_MAX_RECORD_BYTES", str(64 * 1024 * 1024))

    valid = config_file(tmp_path, "services:\n  validator: {min_size_bytes: 10}\n")
    assert RuntimeConfig.from_file(valid).services == {"validator": {"min_size_bytes": 10}}

    # 32 MiB is more than the chunker's default max_record_bytes, whatever the shell says
    invalid = config_file(tmp_path, "services:\n  chunker: {max_quoted_record_bytes: 33554432}\n")
    [problem] = problems_of(invalid)
    assert problem.startswith("services.chunker: Value error, max_quoted_record_bytes (33554432) must be at most")


# -- what is refused, and how it is said ---------------------------------------------------------


def test_an_unknown_top_level_key_is_refused_with_the_valid_keys(tmp_path: Path) -> None:
    assert problems_of(config_file(tmp_path, "visibilty_timeout_seconds: 3\n")) == [
        "visibilty_timeout_seconds: unknown key; valid keys: aws_max_attempts, faults, sagemaker, "
        "schedule_interval_seconds, services, settle_timeout_seconds, visibility_timeout_seconds"
    ]


def test_an_unknown_key_of_the_sagemaker_engine_is_refused_with_its_valid_keys(tmp_path: Path) -> None:
    assert problems_of(config_file(tmp_path, "sagemaker: {lost_events: 1}\n")) == [
        "sagemaker.lost_events: unknown key; valid keys of sagemaker: lost_state_changes, max_parallel_trials, "
        "repeated_state_changes"
    ]


def test_an_unknown_service_is_refused_with_the_valid_services(tmp_path: Path) -> None:
    assert problems_of(config_file(tmp_path, "services:\n  validatr: {max_size_bytes: 1}\n")) == [
        "services.validatr: unknown service; valid services: chunker, etl, predictor, trainer, validator"
    ]


def test_an_unknown_setting_is_refused_with_the_services_settings(tmp_path: Path) -> None:
    [problem] = problems_of(config_file(tmp_path, "services:\n  validator: {max_size_bytez: 1}\n"))

    prefix = "services.validator.max_size_bytez: unknown setting; valid settings of validator: "
    assert problem.startswith(prefix)
    valid = problem.removeprefix(prefix).split(", ")
    # Both of the validator's settings classes, and not the field that holds the one in the other
    assert {"max_size_bytes", "min_size_bytes", "layouts", "column_roles"} <= set(valid)
    assert "layout_settings" not in valid
    assert valid == sorted(valid)


def test_an_unknown_nested_setting_is_refused_with_the_nested_models_settings(tmp_path: Path) -> None:
    [problem] = problems_of(config_file(tmp_path, "services:\n  trainer: {model: {n_estimators: 50}}\n"))

    assert problem.startswith("services.trainer.model.n_estimators: unknown setting; valid settings of trainer.model: ")
    assert "max_rounds" in problem


def test_a_wrong_type_names_the_key_and_the_value(tmp_path: Path) -> None:
    assert problems_of(config_file(tmp_path, "services:\n  validator: {max_size_bytes: big}\n")) == [
        "services.validator.max_size_bytes: Input should be a valid integer, unable to parse string as an integer, "
        "got 'big'"
    ]


def test_the_services_own_constraints_apply(tmp_path: Path) -> None:
    path = config_file(tmp_path, "services:\n  validator: {min_size_bytes: -1}\n  trainer: {model: {max_depth: 99}}\n")

    assert problems_of(path) == [
        "services.validator.min_size_bytes: Input should be greater than or equal to 0, got -1",
        "services.trainer.model.max_depth: Input should be less than or equal to 12, got 99",
    ]


def test_a_null_the_environment_cannot_carry_is_refused(tmp_path: Path) -> None:
    # The ETL would read its default: a null is no environment variable at all
    assert problems_of(config_file(tmp_path, "services:\n  etl: {default_language: null}\n")) == [
        "services.etl.default_language: null cannot reach the service; leave the setting out for its default ('en')"
    ]


def test_every_problem_is_named_on_its_own_line(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "settle_timeout_seconds: -1\n"
        "faults:\n  - {name: x, service: etl, action: explode, operation: 's3:GetObject'}\n"
        "services:\n  etl: {batch_rows: 0}\n  monitor: {}\n",
    )

    assert problems_of(path) == [
        "settle_timeout_seconds: Input should be greater than 0, got -1",
        "faults.0.action: Input should be 'error', 'refuse_events' or 'crash', got 'explode'",
        "services.etl.batch_rows: Input should be greater than or equal to 1, got 0",
        "services.monitor: unknown service; valid services: chunker, etl, predictor, trainer, validator",
    ]


def test_a_file_that_is_not_yaml_is_refused_with_the_position(tmp_path: Path) -> None:
    path = config_file(tmp_path, "services:\n  validator:\n    max_size_bytes: [1\n")

    [problem] = problems_of(path)

    assert re.fullmatch(r"not valid YAML \(line 4, column 1: .+\)", problem)


def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    [problem] = problems_of(config_file(tmp_path, "- services\n"))

    assert problem.startswith("the top level is a list, not a mapping; valid keys: aws_max_attempts, ")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "settings.yaml") == ["no such file"]


def test_an_empty_file_and_no_file_are_the_defaults(tmp_path: Path) -> None:
    assert RuntimeConfig.from_file(config_file(tmp_path, "# nothing set\n")) == RuntimeConfig()
    assert RuntimeConfig.from_file(None) == RuntimeConfig()
