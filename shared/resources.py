"""The pipeline's storage, ledger and bus, built once per process from settings and reused across invocations."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .aws import AwsClients, clients_for
from .ledger import FileLedger
from .publisher import EventPublisher
from .settings import PipelineSettings
from .storage import ObjectStore


@dataclass(frozen=True)
class PipelineResources:
    settings: PipelineSettings
    clients: AwsClients
    store: ObjectStore
    ledger: FileLedger

    def publisher(self, service: str) -> EventPublisher:
        return EventPublisher(self.clients.events, self.settings.event_bus, service)


@lru_cache(maxsize=4)
def resources_for(settings: PipelineSettings) -> PipelineResources:
    clients = clients_for(settings)
    return PipelineResources(
        settings=settings,
        clients=clients,
        store=ObjectStore(clients.s3, settings.bucket),
        ledger=FileLedger(clients.dynamodb, settings.ledger_table),
    )


def current_resources() -> PipelineResources:
    """Resources for the settings in this process's environment (the handler's edge)."""
    return resources_for(PipelineSettings())  # fields come from the environment
