"""Powertools logger and metrics, configured once for every service."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger, Metrics

METRICS_NAMESPACE = "AmazonReviewsNLP"


@dataclass(frozen=True)
class Observability:
    logger: Logger
    metrics: Metrics


def observability_for(service: str) -> Observability:
    """The service's logger (JSON, with correlation id) and metrics (EMF)."""
    return Observability(logger=Logger(service=service), metrics=Metrics(namespace=METRICS_NAMESPACE, service=service))
