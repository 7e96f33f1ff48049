"""FileReceived published by other systems, as README shows, through the real local runtime on a real file.

The announcements name no version: the validator pins each to the object version under its key, so
an object the S3 notification already brought in is not processed again however often it is
announced, and an announcement whose dataset does not match its folder is answered with FileRejected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from reviews_pipeline.runtime import LocalPipeline, RuntimeConfig
from reviews_pipeline.summary import pipeline_events
from shared import layout
from tests.data_paths import SAMPLES

pytestmark = pytest.mark.e2e

BEAUTY = SAMPLES / "inference" / "All_Beauty_5.first1000.json"
MISMATCHED_KEY = "raw/inference/from_the_crawler.json"


def announce(pipeline: LocalPipeline, *details: dict[str, Any]) -> None:
    """Publish FileReceived events on the stack's bus the way an external system does."""
    entries = [
        {
            "Source": "com.example.crawler",
            "DetailType": "FileReceived",
            "Detail": json.dumps(detail),
            "EventBusName": pipeline.stack.event_bus,
        }
        for detail in details
    ]
    assert pipeline.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0


def logged(pipeline: LocalPipeline, detail_type: str) -> list[dict[str, Any]]:
    """The details of the events of one type the monitor kept under monitoring/logs/."""
    return [event["detail"] for event in pipeline_events(pipeline.store) if event["detail-type"] == detail_type]


def versions_under(pipeline: LocalPipeline, prefix: str) -> list[str]:
    listing = pipeline.client("s3").list_object_versions(Bucket=pipeline.stack.bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Versions", [])]


def test_versionless_announcements_of_a_received_file_do_nothing_and_a_wrong_dataset_is_refused(
    tmp_path: Path,
) -> None:
    with LocalPipeline(tmp_path, config=RuntimeConfig(visibility_timeout_seconds=2)) as pipeline:
        # Given a real review file uploaded for inference and settled from S3's notification
        uploaded = pipeline.upload(BEAUTY, "inference")
        assert pipeline.wait_until_settled([uploaded], timeout_seconds=60).settled
        settled = pipeline.ledger.get(uploaded.file_id)
        assert settled is not None and settled.status == "validated"

        # When an external system announces it twice as README shows (no version, no ETag), and
        # announces another key of the inference folder as training data
        readme_style = {"bucket": pipeline.stack.bucket, "key": uploaded.key, "size": 1, "dataset": "inference"}
        mismatched = {"bucket": pipeline.stack.bucket, "key": MISMATCHED_KEY, "size": 1, "dataset": "train"}
        announce(pipeline, readme_style, readme_style, mismatched)
        deadline = time.monotonic() + 30
        while not logged(pipeline, "FileRejected"):
            assert time.monotonic() < deadline, "the mismatched announcement was never answered"
            time.sleep(0.5)
        assert pipeline.wait_until_settled([uploaded], timeout_seconds=30).settled

        # Then the file is still one record, exactly as it settled, validated and transformed once
        assert [record for record in pipeline.ledger.files() if record.key == uploaded.key] == [settled]
        assert len(logged(pipeline, "FileValidated")) == 1
        assert len(logged(pipeline, "EtlCompleted")) == 1
        assert len(versions_under(pipeline, layout.PROCESSED)) == 1
        assert len(versions_under(pipeline, layout.ETL)) == 1
        assert [received["origin"] for received in logged(pipeline, "FileReceived")].count("external") == 3
        # And the wrong dataset was answered with FileRejected(check=key), touching nothing
        (rejected,) = logged(pipeline, "FileRejected")
        assert (rejected["source_key"], rejected["stage"], rejected["check"]) == (MISMATCHED_KEY, "validator", "key")
        assert "does not match the key's folder" in rejected["reason"]
        assert versions_under(pipeline, layout.ERRORS) == []
