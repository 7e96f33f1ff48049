"""shared.events: the typed event models, their EventBridge envelopes and what they refuse."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from shared.events import (
    DETAIL_BY_TYPE,
    PIPELINE_DETAILS,
    FileReceived,
    FileRejected,
    FileValidated,
    PipelineDetail,
    envelope_for,
)
from shared.samples import SAMPLE_DETAILS, sample_event

DETAIL_NAMES = [model.__name__ for model in PIPELINE_DETAILS]
DetailT = TypeVar("DetailT", bound=PipelineDetail)


def parse_detail(model: type[DetailT], event: dict[str, Any]) -> DetailT:
    """The typed detail of `event`, parsed through the EventBridge envelope consumers use."""
    detail = envelope_for(model).model_validate(event).detail
    assert isinstance(detail, model)
    return detail


def _models_reachable_from(model: type[BaseModel]) -> list[type[BaseModel]]:
    """`model` and every pydantic model nested in its fields (PartInfo, DetectedFormat, ChunkPart, …)."""
    found: list[type[BaseModel]] = []
    pending: list[Any] = [model]
    while pending:
        candidate = pending.pop()
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if candidate in found:
                continue
            found.append(candidate)
            pending.extend(field.annotation for field in candidate.model_fields.values())
        else:
            pending.extend(getattr(candidate, "__args__", ()))
    return found


def _error_locations(error: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(problem["loc"]) for problem in error.errors()]


@pytest.mark.parametrize("model", PIPELINE_DETAILS, ids=DETAIL_NAMES)
def test_detail_type_is_the_class_name(model: type[PipelineDetail]) -> None:
    assert model.detail_type == model.__name__
    assert DETAIL_BY_TYPE[model.__name__] is model


@pytest.mark.parametrize("model", PIPELINE_DETAILS, ids=DETAIL_NAMES)
def test_every_field_of_every_event_is_described(model: type[PipelineDetail]) -> None:
    # The JSON Schemas external producers read are generated from these descriptions.
    undescribed = [
        f"{nested.__name__}.{name}"
        for nested in _models_reachable_from(model)
        for name, field in nested.model_fields.items()
        if not (field.description and field.description.strip())
    ]

    assert undescribed == []
    assert model.__doc__


def test_the_walk_over_fields_reaches_nested_models() -> None:
    # Guards the test above: it must look inside PartInfo, not only at FileReceived's own fields.
    names = {model.__name__ for model in _models_reachable_from(FileReceived)}

    assert {"FileReceived", "PartInfo"} <= names


def test_every_event_has_a_sample() -> None:
    assert set(SAMPLE_DETAILS) == set(DETAIL_BY_TYPE)


@pytest.mark.parametrize("model", PIPELINE_DETAILS, ids=DETAIL_NAMES)
def test_the_envelope_accepts_the_sample_and_keeps_every_detail_value(model: type[PipelineDetail]) -> None:
    event = sample_event(model.__name__)

    parsed = envelope_for(model).model_validate(event)

    detail = parsed.detail
    assert isinstance(detail, model)
    assert parsed.detail_type == model.__name__
    assert detail.model_dump(mode="json") == event["detail"]


@pytest.mark.parametrize("model", PIPELINE_DETAILS, ids=DETAIL_NAMES)
def test_unknown_fields_are_ignored_at_every_level(model: type[PipelineDetail]) -> None:
    # Given a producer on a newer minor schema that adds fields
    event = sample_event(model.__name__)
    newer = copy.deepcopy(event)
    newer["detail"]["added_in_a_later_version"] = {"anything": [1, 2]}
    newer["unknown_envelope_field"] = "x"

    # When a consumer on this schema parses it, Then it sees the same detail
    detail = parse_detail(model, newer)

    assert detail.model_dump(mode="json") == event["detail"]


def test_unknown_fields_inside_nested_part_info_are_ignored() -> None:
    event = sample_event("FileReceived")
    event["detail"]["part"] = {
        "parent_file_id": "p",
        "root_file_id": "r",
        "part_index": 1,
        "part_count": 2,
        "checksum": "added later",
    }

    detail = parse_detail(FileReceived, event)

    assert detail.part is not None
    assert detail.part.part_index == 1
    assert "checksum" not in detail.part.model_dump()


@pytest.mark.parametrize(
    ("detail_type", "change", "field"),
    [
        ("FileValidated", lambda detail: detail.pop("correlation_id"), ("detail", "correlation_id")),
        ("FileRejected", lambda detail: detail.pop("correlation_id"), ("detail", "correlation_id")),
        ("FileValidated", lambda detail: detail.update(dataset="test"), ("detail", "dataset")),
        ("FileReceived", lambda detail: detail.update(dataset="test"), ("detail", "dataset")),
        ("FileValidated", lambda detail: detail.update(rows_in=-1), ("detail", "rows_in")),
        ("FileValidated", lambda detail: detail.update(rows_dropped={"empty_text": -2}), ("detail", "rows_dropped")),
        ("EtlCompleted", lambda detail: detail.update(rows_out=-5), ("detail", "rows_out")),
        ("FileChunked", lambda detail: detail.update(rows_total=-1), ("detail", "rows_total")),
        ("FileReceived", lambda detail: detail.update(size=-1), ("detail", "size")),
        ("FileReceived", lambda detail: detail.update(origin="ftp"), ("detail", "origin")),
        ("FileReceived", lambda detail: detail.pop("key"), ("detail", "key")),
        ("FileRejected", lambda detail: detail.update(stage="uploader"), ("detail", "stage")),
        ("FileValidated", lambda detail: detail.update(part_count=0), ("detail", "part_count")),
    ],
)
def test_invalid_payloads_fail_naming_the_field(detail_type: str, change: Any, field: tuple[str, ...]) -> None:
    event = sample_event(detail_type)
    change(event["detail"])

    with pytest.raises(ValidationError) as raised:
        envelope_for(DETAIL_BY_TYPE[detail_type]).model_validate(event)

    assert any(location[: len(field)] == field for location in _error_locations(raised.value))


def test_a_chunk_part_with_negative_index_is_refused() -> None:
    event = sample_event("FileReceived")
    event["detail"]["part"] = {"parent_file_id": "p", "root_file_id": "r", "part_index": -1}

    with pytest.raises(ValidationError) as raised:
        envelope_for(FileReceived).model_validate(event)

    assert ("detail", "part", "part_index") in _error_locations(raised.value)


def test_external_producers_may_omit_correlation_id_on_file_received() -> None:
    event = sample_event("FileReceived")
    del event["detail"]["correlation_id"]

    detail = parse_detail(FileReceived, event)

    assert detail.correlation_id == ""


def test_file_rejected_accepts_an_unknown_dataset_as_null_but_not_a_missing_one() -> None:
    event = sample_event("FileRejected")
    event["detail"]["dataset"] = None
    assert parse_detail(FileRejected, event).dataset is None

    del event["detail"]["dataset"]
    with pytest.raises(ValidationError) as raised:
        envelope_for(FileRejected).model_validate(event)
    assert ("detail", "dataset") in _error_locations(raised.value)


def test_details_are_immutable_once_built() -> None:
    # Handlers pass details around; a consumer must not be able to alter what another one sees.
    _, detail = SAMPLE_DETAILS["FileValidated"]
    assert isinstance(detail, FileValidated)

    with pytest.raises(ValidationError):
        detail.rows_out = 0  # type: ignore[misc]
