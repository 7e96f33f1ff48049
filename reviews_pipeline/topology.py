"""The pipeline's consumers as the SAM templates declare them: rule patterns, queues, DLQs, handlers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .templates import ROOT_TEMPLATE, load_template, substitute_refs

SQS_EVENT = "SQS"


@dataclass(frozen=True)
class RuleSpec:
    """A rule targeting a consumer's queue: an event pattern, or a schedule (a rule has one of the two)."""

    logical_id: str
    on_default_bus: bool
    pattern: dict[str, Any] | None
    """The EventPattern with `!Ref` parameters still unresolved (see `resolved_pattern`); None for a schedule."""
    schedule: str | None = None
    """The ScheduleExpression (`rate(15 minutes)`) of a scheduled rule; None for a pattern."""

    def resolved_pattern(self, parameters: dict[str, str]) -> dict[str, Any]:
        if self.pattern is None:
            raise ValueError(f"rule {self.logical_id} is scheduled ({self.schedule}): it has no event pattern")
        resolved: dict[str, Any] = substitute_refs(self.pattern, parameters)
        return resolved


@dataclass(frozen=True)
class ConsumerSpec:
    """One function and the queue it consumes, with everything the local runtime needs to emulate them."""

    service: str
    function_id: str
    handler: str
    timeout_seconds: int
    batch_size: int
    reports_batch_item_failures: bool
    queue_id: str
    dead_letter_queue_id: str
    visibility_timeout_seconds: int
    max_receive_count: int
    rules: tuple[RuleSpec, ...]
    template: Path


@dataclass(frozen=True)
class Topology:
    consumers: tuple[ConsumerSpec, ...]

    def consumer(self, service: str) -> ConsumerSpec:
        for consumer in self.consumers:
            if consumer.service == service:
                return consumer
        raise KeyError(f"no service {service!r}; known: {[c.service for c in self.consumers]}")

    @property
    def services(self) -> list[str]:
        return [consumer.service for consumer in self.consumers]


def _logical_id_of(reference: Any) -> str:
    """`{"Fn::GetAtt": ["Queue", "Arn"]}` or `{"Ref": "Queue"}` → "Queue"."""
    if isinstance(reference, dict):
        if "Fn::GetAtt" in reference:
            return str(reference["Fn::GetAtt"][0])
        if "Ref" in reference:
            return str(reference["Ref"])
    raise ValueError(f"expected a reference to a resource, got {reference!r}")


def _service_name(function_id: str) -> str:
    return function_id.removesuffix("Function").lower()


def consumers_in(template_path: Path) -> list[ConsumerSpec]:
    template = load_template(template_path)
    resources: dict[str, Any] = template.get("Resources", {})
    function_defaults: dict[str, Any] = template.get("Globals", {}).get("Function", {})
    rules_by_queue: dict[str, list[RuleSpec]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        properties = resource["Properties"]
        for target in properties.get("Targets", []):
            rules_by_queue.setdefault(_logical_id_of(target["Arn"]), []).append(
                RuleSpec(
                    logical_id=logical_id,
                    on_default_bus="EventBusName" not in properties,
                    pattern=properties.get("EventPattern"),
                    schedule=properties.get("ScheduleExpression"),
                )
            )
    consumers = []
    for function_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = {**function_defaults, **resource.get("Properties", {})}
        handler = properties.get("Handler") or properties.get("ImageConfig", {}).get("Command", [None])[0]
        for event in properties.get("Events", {}).values():
            if event.get("Type") != SQS_EVENT:
                continue
            queue_id = _logical_id_of(event["Properties"]["Queue"])
            queue = resources[queue_id]["Properties"]
            redrive = queue["RedrivePolicy"]
            consumers.append(
                ConsumerSpec(
                    service=_service_name(function_id),
                    function_id=function_id,
                    handler=str(handler),
                    timeout_seconds=int(properties.get("Timeout", 3)),
                    batch_size=int(event["Properties"].get("BatchSize", 10)),
                    reports_batch_item_failures="ReportBatchItemFailures"
                    in event["Properties"].get("FunctionResponseTypes", []),
                    queue_id=queue_id,
                    dead_letter_queue_id=_logical_id_of(redrive["deadLetterTargetArn"]),
                    visibility_timeout_seconds=int(queue.get("VisibilityTimeout", 30)),
                    max_receive_count=int(redrive["maxReceiveCount"]),
                    rules=tuple(rules_by_queue.get(queue_id, [])),
                    template=template_path,
                )
            )
    return consumers


def service_templates(root_template: Path = ROOT_TEMPLATE) -> list[Path]:
    """The nested applications' templates, in the order the root template lists them."""
    root = load_template(root_template)
    return [
        (root_template.parent / resource["Properties"]["Location"]).resolve()
        for resource in root.get("Resources", {}).values()
        if resource.get("Type") == "AWS::Serverless::Application"
    ]


def load_topology(root_template: Path = ROOT_TEMPLATE) -> Topology:
    consumers = [consumer for path in service_templates(root_template) for consumer in consumers_in(path)]
    return Topology(consumers=tuple(consumers))
