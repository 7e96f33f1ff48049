"""The local SageMaker engine against a moto server: jobs created through moto's API are run with a stand-in
container (tests/sagemaker_standin.py) and finish as SageMaker's would, seen only through their events."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reviews_model.versions import Version
from reviews_pipeline.config import LocalSageMakerConfig
from reviews_pipeline.emulator import MotoServer
from reviews_pipeline.runtime import LocalPipeline
from reviews_pipeline.topology import Topology
from services.trainer.versions import ModelRegistry
from shared import layout
from shared.sagemaker_events import TrainingJobStateChange, TuningJobStateChange
from tests.sagemaker_jobs import STANDIN_COMMAND, EngineBench, engine_bench


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def bench(moto_server: MotoServer, tmp_path: Path) -> Iterator[EngineBench]:
    with engine_bench(moto_server.endpoint_url, tmp_path / "logs") as bench:
        yield bench


def test_a_completed_job_leaves_its_model_at_the_output_path_and_says_so_in_its_event(bench: EngineBench) -> None:
    # Given training data under etl/train/ (part-00000.parquet), one object in a nested "folder"
    bench.put_training_data({"nested/part-00001.parquet": b"more rows"})

    # When a training job is created and runs to its end
    job = bench.create_training_job("v1-0-abc123", {"label_target": "sentiment", "model.max_depth": "6"})
    bench.finished()

    # Then its model is where SageMaker puts it, the tar's members relative to /opt/ml/model/
    with tarfile.open(fileobj=io.BytesIO(bench.read_object(layout.training_artifact_key(job))), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["model.json", "parts", "parts/part-0.txt"]
        model = json.loads(tar.extractfile("model.json").read())  # type: ignore[union-attr]
    assert model["hyperparameters"] == {"label_target": "sentiment", "model.max_depth": "6"}
    assert model["channels"] == {"train": ["nested/part-00001.parquet", "part-00000.parquet"]}
    assert model["job"] == job
    assert model["input_config"]["train"]["TrainingInputMode"] == "File"
    assert model["resource_config"] == {"current_host": "algo-1", "hosts": ["algo-1"]}
    # and one event when it started, one when it completed, both routed by the job-name prefix rule
    started, completed = [TrainingJobStateChange.model_validate(e["detail"]) for e in bench.events()]
    assert (started.TrainingJobStatus, completed.TrainingJobStatus) == ("InProgress", "Completed")
    assert completed.ModelArtifacts is not None
    assert completed.ModelArtifacts.S3ModelArtifacts == f"s3://{bench.stack.bucket}/{layout.training_artifact_key(job)}"
    assert completed.FailureReason is None
    # and its log holds what the container printed, as CloudWatch would
    assert "validation:macro_f1=" in (bench.engine.log_dir / f"{job}.log").read_text()


def test_a_failing_job_fails_with_the_reason_it_wrote_or_its_exit_code(bench: EngineBench) -> None:
    reasoned = bench.create_training_job("v1-1-abc123", {"behaviour": "fail", "failure": "bad hyperparameter x"})
    coded = bench.create_training_job("v1-2-abc123", {"behaviour": "exit", "exit_code": "3"})
    bench.finished()

    [reasoned_event] = bench.final_events(reasoned)
    [coded_event] = bench.final_events(coded)
    assert reasoned_event["detail"]["TrainingJobStatus"] == "Failed"
    assert reasoned_event["detail"]["FailureReason"] == "bad hyperparameter x"
    assert coded_event["detail"]["FailureReason"] == "AlgorithmError: exit code 3"
    assert "ModelArtifacts" not in reasoned_event["detail"]
    assert not bench.s3.list_objects_v2(Bucket=bench.stack.bucket, Prefix=layout.TRAINING_JOBS).get("Contents")


def test_a_job_with_an_empty_channel_fails_before_its_container_starts(bench: EngineBench) -> None:
    job = bench.create_training_job("v1-4-abc123", {}, channels=("train", "missing"))
    bench.finished()

    [failed] = bench.final_events(job)
    assert failed["detail"]["TrainingJobStatus"] == "Failed"
    assert "No S3 objects found" in failed["detail"]["FailureReason"]
    assert f"{layout.ETL}missing/" in failed["detail"]["FailureReason"]
    assert not (bench.engine.log_dir / f"{job}.log").exists()


def test_a_job_past_its_max_runtime_is_stopped_and_counted_pending_until_then(bench: EngineBench) -> None:
    job = bench.create_training_job("v1-3-abc123", {"behaviour": "sleep", "seconds": "30"}, max_runtime_seconds=1)

    # A job created a moment ago is pending even before the engine's next poll has seen it.
    assert bench.engine.pending_jobs() == [job]
    started = time.monotonic()
    bench.finished(timeout_seconds=20)

    assert time.monotonic() - started < 10
    [stopped] = bench.final_events(job)
    assert stopped["detail"]["TrainingJobStatus"] == "Stopped"
    assert stopped["detail"]["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "ModelArtifacts" not in stopped["detail"]


def test_a_grid_runs_every_combination_two_at_a_time_and_names_the_best(bench: EngineBench, tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    tuning = bench.create_tuning_job(
        "v2-0-abc123",
        {"x": ["1", "2"], "y": ["10", "20"]},
        static={"behaviour": "sleep", "seconds": "0.5", "trace": str(trace)},
        max_parallel=3,  # more than the engine's max_parallel_trials (2)
    )
    bench.finished()

    trials = [
        e for e in bench.events() if "TuningJobArn" in e["detail"] and e["detail"]["TrainingJobStatus"] != "InProgress"
    ]
    names = sorted(e["detail"]["TrainingJobName"] for e in trials)
    assert all(re.fullmatch(rf"{tuning}-00[1-4]-[0-9a-f]{{8}}", name) for name in names)
    assert [name.split("-")[-2] for name in names] == ["001", "002", "003", "004"]
    # the cartesian product, in the order the ranges are given
    by_index = {e["detail"]["TrainingJobName"].split("-")[-2]: e["detail"]["HyperParameters"] for e in trials}
    assert [(by_index[i]["x"], by_index[i]["y"]) for i in ("001", "002", "003", "004")] == [
        ("1", "10"), ("1", "20"), ("2", "10"), ("2", "20")
    ]  # fmt: skip
    assert all(by_index[i]["behaviour"] == "sleep" for i in by_index)
    # never more than two at once, and two at once at some point
    spans = [tuple(map(float, line.split()[1:])) for line in trace.read_text().splitlines()]
    overlaps = [sum(start <= moment < end for start, end in spans) for moment, _ in spans]
    assert max(overlaps) == 2
    # the tuning job's event names the best trial by the objective
    [final] = bench.final_events(tuning)
    detail = TuningJobStateChange.model_validate(final["detail"])
    assert detail.HyperParameterTuningJobStatus == "Completed"
    assert detail.BestTrainingJob is not None
    assert detail.BestTrainingJob.TrainingJobName == next(n for n in names if n.split("-")[-2] == "004")
    assert detail.BestTrainingJob.TunedHyperParameters == {"x": "2", "y": "20"}
    assert detail.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric is not None
    assert detail.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value == pytest.approx(0.22)
    assert detail.TrainingJobStatusCounters["Completed"] == 4
    assert final["detail"]["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    # trials are the engine's own: moto lists none of them
    listed = bench.sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert not [job for job in listed if job["TrainingJobName"].startswith(tuning)]


def test_a_grid_with_no_completed_trial_fails(bench: EngineBench) -> None:
    tuning = bench.create_tuning_job("v2-1-abc123", {"x": ["1"]}, static={"behaviour": "fail", "failure": "corrupt"})
    bench.finished()

    [final] = bench.final_events(tuning)
    assert final["detail"]["HyperParameterTuningJobStatus"] == "Failed"
    assert "corrupt" in final["detail"]["FailureReason"]
    assert "BestTrainingJob" not in final["detail"]


def test_lost_and_repeated_state_changes(moto_server: MotoServer, tmp_path: Path) -> None:
    config = LocalSageMakerConfig(lost_state_changes=1, repeated_state_changes=2)
    with engine_bench(moto_server.endpoint_url, tmp_path, config) as bench:
        first = bench.create_training_job("v1-0-aaaaaa", {})
        bench.finished()
        second = bench.create_training_job("v1-1-bbbbbb", {})
        bench.finished()

        assert bench.final_events(first) == []  # lost
        assert len(bench.final_events(second)) == 2  # repeated
        assert [e["detail"]["TrainingJobStatus"] for e in bench.events()].count("InProgress") == 4
        report = bench.engine.report()
    assert report["events_lost"] == [
        {"detail_type": "SageMaker Training Job State Change", "job": first, "status": "Completed"}
    ]
    assert report["training_jobs"] == 2
    assert report["state_changes"] == 4
    assert report["events_put"] == 6
    assert report["events_repeated"] == 3
    assert {job["name"]: job["status"] for job in report["jobs"]} == {first: "Completed", second: "Completed"}


def test_the_local_pipeline_counts_running_jobs_and_runs_as_busy(tmp_path: Path) -> None:
    no_workers = Topology(consumers=())
    with LocalPipeline(tmp_path, topology=no_workers, training_command=STANDIN_COMMAND) as pipeline:
        bench = EngineBench(pipeline.stack, pipeline.sagemaker, queue_url="")
        bench.put_training_data({"part-00000.parquet": b"rows"})
        job = bench.create_training_job("v1-0-abc123", {"behaviour": "sleep", "seconds": "2"})
        registry = ModelRegistry(pipeline.client("dynamodb"), pipeline.stack.ledger_table)
        registry.record_run(job, Version(1, 0), kind="training", deadline=time.time() + 600, details={})
        registry.record_run("long-gone", Version(1, 1), kind="training", deadline=time.time() - 1, details={})

        assert pipeline.busy_queues() == {"sagemaker": 1, "training": 1}
        bench.finished()
        assert pipeline.busy_queues() == {"training": 1}  # until the finisher finishes the run
        registry.finish_run(job, "Completed", {})
        assert pipeline.busy_queues() == {}
        assert pipeline.sagemaker_report()["jobs"] == [{"name": job, "kind": "training", "status": "Completed"}]
