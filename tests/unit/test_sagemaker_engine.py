"""The local SageMaker engine's pure parts: the grid a tuning job trains, metrics read from a log, the best trial."""

from __future__ import annotations

import pytest

from reviews_pipeline.sagemaker_engine import (
    JobRefusedError,
    TrainingRun,
    TuningRun,
    epoch_millis,
    grid_of,
    metrics_from_log,
    split_s3_uri,
)

DEFINITIONS = [
    {"Name": "validation:macro_f1", "Regex": "validation:macro_f1=([0-9.]+)"},
    {"Name": "test:accuracy", "Regex": "test:accuracy=([0-9.]+)"},
]


def _grid(*ranges: tuple[str, list[str]]) -> dict[str, object]:
    return {
        "Strategy": "Grid",
        "ParameterRanges": {
            "CategoricalParameterRanges": [{"Name": name, "Values": values} for name, values in ranges]
        },
    }


def test_a_grid_is_the_cartesian_product_of_its_ranges_in_the_order_given() -> None:
    grid = grid_of(_grid(("features.ngram_max", ["1", "2"]), ("model.max_depth", ["4", "6", "8"])))

    assert grid == [
        {"features.ngram_max": "1", "model.max_depth": "4"},
        {"features.ngram_max": "1", "model.max_depth": "6"},
        {"features.ngram_max": "1", "model.max_depth": "8"},
        {"features.ngram_max": "2", "model.max_depth": "4"},
        {"features.ngram_max": "2", "model.max_depth": "6"},
        {"features.ngram_max": "2", "model.max_depth": "8"},
    ]


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({**_grid(("a", ["1"])), "Strategy": "Bayesian"}, "Strategy Grid only"),
        (
            {"Strategy": "Grid", "ParameterRanges": {"IntegerParameterRanges": [{"Name": "a", "MinValue": "1"}]}},
            "categorical parameter ranges only",
        ),
        (_grid(), "at least one categorical"),
    ],
)
def test_a_search_the_engine_cannot_run_is_refused_with_the_reason(config: dict[str, object], reason: str) -> None:
    with pytest.raises(JobRefusedError, match=reason):
        grid_of(config)


def test_metrics_take_each_definitions_last_match_and_skip_what_is_not_a_number() -> None:
    log = "epoch 1\nvalidation:macro_f1=0.51\nvalidation:macro_f1=0.693100\nvalidation:macro_f1=.\nother line\n"

    metrics = metrics_from_log(log, DEFINITIONS)

    assert [(metric["MetricName"], metric["Value"]) for metric in metrics] == [("validation:macro_f1", 0.6931)]


def test_s3_uris_split_into_bucket_and_key_prefix() -> None:
    assert split_s3_uri("s3://bucket/etl/train/") == ("bucket", "etl/train/")
    assert split_s3_uri("s3://bucket") == ("bucket", "")
    with pytest.raises(JobRefusedError):
        split_s3_uri("https://bucket/etl/")


def test_sagemaker_times_are_epoch_milliseconds_as_strings() -> None:
    assert epoch_millis(1583831889.0501) == "1583831889050"


def _trial(name: str, status: str, f1: float | None) -> TrainingRun:
    trial = TrainingRun(name=name, arn=f"arn:{name}", request={"HyperParameters": {"x": name}}, created=0.0)
    trial.status = status
    if f1 is not None:
        trial.metrics = [{"MetricName": "validation:macro_f1", "Value": f1, "Timestamp": "0"}]
    return trial


def _tuning(objective_type: str, trials: list[TrainingRun]) -> TuningRun:
    config = {
        **_grid(("x", [trial.name for trial in trials])),
        "HyperParameterTuningJobObjective": {"Type": objective_type, "MetricName": "validation:macro_f1"},
    }
    return TuningRun(name="t", arn="arn:t", config=config, definition={}, created=0.0, trials=trials)


def test_the_best_trial_is_chosen_by_the_objective_among_completed_trials_first_of_equals() -> None:
    trials = [
        _trial("a", "Completed", 0.6),
        _trial("b", "Completed", 0.7),
        _trial("c", "Completed", 0.7),
        _trial("d", "Failed", 0.9),  # a failed trial's metric does not count
        _trial("e", "Completed", None),  # nor a trial that printed no objective
    ]

    assert _tuning("Maximize", trials).best() is trials[1]
    assert _tuning("Minimize", trials).best() is trials[0]


def test_a_tuning_job_without_a_scored_trial_fails_naming_the_first_failure() -> None:
    failed = _trial("a", "Failed", None)
    failed.failure_reason = "corrupt corpus"
    tuning = _tuning("Maximize", [failed, _trial("b", "Completed", None)])

    tuning.finish()

    assert tuning.status == "Failed"
    assert tuning.failure_reason is not None and "corrupt corpus" in tuning.failure_reason
    detail = tuning.detail()
    assert "BestTrainingJob" not in detail
    assert detail["TrainingJobStatusCounters"]["NonRetryableError"] == 1
    assert detail["ObjectiveStatusCounters"] == {"Succeeded": 0, "Pending": 0, "Failed": 2}


def test_a_training_jobs_detail_has_its_failure_only_when_failed_and_its_artifact_only_when_completed() -> None:
    run = TrainingRun(name="j", arn="arn:j", request={"HyperParameters": {}}, created=0.0)
    run.enter("Starting")
    run.finish("Failed", "Failed", "x" * 2000)

    detail = run.detail()
    assert len(detail["FailureReason"]) == 1024
    assert "ModelArtifacts" not in detail
    assert [transition["Status"] for transition in detail["SecondaryStatusTransitions"]] == ["Starting", "Failed"]
