"""Consuming a batch of EventBridge events delivered through SQS, the same way in every service.

Each record is parsed into its typed event and routed by `detail-type`. A record that is not JSON,
not a known event, or fails schema validation becomes a batch item failure with a log line naming
the offending fields; SQS redelivers it and, past the redrive count, parks it in the DLQ. The worker
itself never crashes on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError, create_model

from .events import PipelineDetail, envelope_for

ModelT = TypeVar("ModelT", bound=BaseModel)


class UnroutableEventError(ValueError):
    """A message whose detail-type this service does not consume."""


class InvalidEventError(ValueError):
    """A message that failed schema validation."""


@dataclass(frozen=True)
class Route(Generic[ModelT]):
    """How one detail-type is parsed (`model` validates the whole EventBridge event) and handled."""

    model: type[ModelT]
    handle: Callable[[ModelT], object]


def route_detail(detail_model: type[PipelineDetail], handle: Callable[[Any], object]) -> Route[Any]:
    """A route for one of the pipeline's own events; `handle` receives the typed detail."""
    envelope = envelope_for(detail_model)
    return Route(model=envelope, handle=lambda event: handle(event.detail))


@cache
def aws_envelope(detail_model: type[BaseModel]) -> type[EventBridgeModel]:
    """The EventBridge envelope whose `detail` is an AWS service's detail model (as `envelope_for` is for ours)."""
    return create_model(f"{detail_model.__name__}Event", __base__=EventBridgeModel, detail=(detail_model, ...))


def route_aws_detail(detail_model: type[BaseModel], handle: Callable[[Any], object]) -> Route[Any]:
    """A route for an AWS service's event (SageMaker's state changes, a schedule); `handle` gets the typed detail."""
    envelope = aws_envelope(detail_model)
    return Route(model=envelope, handle=lambda event: handle(event.detail))


def consume_events(
    event: Mapping[str, Any],
    context: LambdaContext,
    routes: Mapping[str, Route[Any]],
    logger: Logger,
) -> PartialItemFailureResponse:
    """Handle every SQS record of `event`; return the ids of the records that failed."""

    def handle_record(record: SQSRecord) -> None:
        logger.remove_keys(["correlation_id", "detail_type"])
        try:
            payload = json.loads(record.body)
        except json.JSONDecodeError as error:
            logger.error("message body is not JSON", message_id=record.message_id, error=str(error))
            raise InvalidEventError(f"message {record.message_id} is not JSON") from error
        detail_type = payload.get("detail-type") if isinstance(payload, dict) else None
        route = routes.get(str(detail_type))
        if route is None:
            logger.error("message is not an event this service consumes", detail_type=detail_type)
            raise UnroutableEventError(f"unexpected detail-type {detail_type!r}")
        try:
            parsed = route.model.model_validate(payload)
        except ValidationError as error:
            fields = [".".join(str(part) for part in problem["loc"]) for problem in error.errors()]
            logger.error(
                "event failed schema validation",
                detail_type=detail_type,
                fields=fields,
                problems=[problem["msg"] for problem in error.errors()],
            )
            raise InvalidEventError(f"{detail_type} invalid in {fields}") from error
        detail = getattr(parsed, "detail", None)
        correlation_id = getattr(detail, "correlation_id", None) or getattr(detail, "file_id", None)
        logger.append_keys(correlation_id=correlation_id, detail_type=detail_type)
        try:
            route.handle(parsed)
        except Exception:
            # The batch processor turns this into an item failure without a word: say here what failed,
            # with its traceback, or the message would reach the DLQ with nothing in the log about why.
            logger.exception("message failed; SQS will deliver it again", message_id=record.message_id)
            raise

    # Bad records are reported as item failures even when the whole batch is bad: raising would make a
    # one-message batch of junk look like a crashed function instead of a rejected message.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=dict(event), record_handler=handle_record, processor=processor, context=context
    )
