"""Powertools logger, metrics and tracer, configured once for every service."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger, Metrics, Tracer

METRICS_NAMESPACE = "AmazonReviewsNLP"


@dataclass(frozen=True)
class Observability:
    logger: Logger
    metrics: Metrics
    tracer: Tracer


def observability_for(service: str) -> Observability:
    """The service's logger (JSON, with correlation id), metrics (EMF) and tracer (X-Ray, off outside Lambda)."""
    return Observability(
        logger=Logger(service=service),
        metrics=Metrics(namespace=METRICS_NAMESPACE, service=service),
        tracer=Tracer(service=service),
    )
