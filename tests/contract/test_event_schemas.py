"""The files under events/ are exactly what the models generate, and every sample validates against its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from shared.events import PIPELINE_DETAILS, envelope_for
from shared.export_events import S3_OBJECT_CREATED, file_stem, render_event_files

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
RENDERED = render_event_files()


@pytest.mark.parametrize("relative", sorted(RENDERED))
def test_event_file_matches_the_models(relative: str) -> None:
    path = EVENTS_DIR / relative
    assert path.is_file(), f"{path} is missing: run `make events`"
    assert path.read_text(encoding="utf-8") == RENDERED[relative], f"{path} drifted: run `make events`"


def test_no_stale_event_files() -> None:
    on_disk = {str(path.relative_to(EVENTS_DIR)) for path in EVENTS_DIR.rglob("*.json")}
    assert on_disk == set(RENDERED), f"files not generated from the models: {sorted(on_disk - set(RENDERED))}"


@pytest.mark.parametrize("model", PIPELINE_DETAILS, ids=lambda model: model.detail_type)
def test_sample_validates_against_its_schema_and_model(model: type) -> None:
    name = model.detail_type  # type: ignore[attr-defined]
    schema = json.loads((EVENTS_DIR / "schemas" / f"{name}.json").read_text())
    sample = json.loads((EVENTS_DIR / f"{file_stem(name)}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(sample, schema)
    parsed = envelope_for(model).model_validate(sample)
    assert parsed.detail_type == name


def test_s3_notification_sample_validates() -> None:
    schema = json.loads((EVENTS_DIR / "schemas" / f"{S3_OBJECT_CREATED}.json").read_text())
    jsonschema.validate(json.loads((EVENTS_DIR / "s3-object-created.json").read_text()), schema)


@pytest.mark.parametrize("model", PIPELINE_DETAILS, ids=lambda model: model.detail_type)
def test_schema_rejects_a_detail_without_correlation_id(model: type) -> None:
    name = model.detail_type  # type: ignore[attr-defined]
    schema = json.loads((EVENTS_DIR / "schemas" / f"{name}.json").read_text())
    sample = json.loads((EVENTS_DIR / f"{file_stem(name)}.json").read_text())
    required = schema["$defs"][name]["required"] if "$defs" in schema and name in schema["$defs"] else []
    if "correlation_id" not in required:
        pytest.skip(f"{name} lets external producers leave correlation_id out")
    del sample["detail"]["correlation_id"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(sample, schema)
