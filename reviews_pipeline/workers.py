"""Starting, watching and stopping one worker process per service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .stack import StackInfo
from .topology import ConsumerSpec, Topology


@dataclass
class WorkerProcess:
    consumer: ConsumerSpec
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    restarts: int = 0


@dataclass
class WorkerPool:
    topology: Topology
    stack: StackInfo
    log_dir: Path
    environment: dict[str, str] = field(default_factory=dict)
    endpoint_overrides: dict[str, str] = field(default_factory=dict)
    """Per service, the endpoint its function talks to instead of the stack's (a fault proxy)."""
    visibility_timeout_seconds: int | None = None
    """The queues' visibility when the runtime shortened it (None: the templates' own values)."""
    workers: dict[str, WorkerProcess] = field(default_factory=dict)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for consumer in self.topology.consumers:
            self.workers[consumer.service] = self._spawn(consumer)

    def _spawn(self, consumer: ConsumerSpec, restarts: int = 0) -> WorkerProcess:
        queues = self.stack.queues[consumer.service]
        log = (self.log_dir / f"{consumer.service}.log").open("ab")
        environment = {
            **os.environ,
            **self.stack.environment(),
            **self.environment,
            "POWERTOOLS_SERVICE_NAME": consumer.service,
            "POWERTOOLS_METRICS_NAMESPACE": "AmazonReviewsNLP",
            # Log lines reach the log file as they are written, as CloudWatch shows them: someone
            # watching `up` reads a failure while it happens, not when the worker exits.
            "PYTHONUNBUFFERED": "1",
        }
        if consumer.service in self.endpoint_overrides:
            endpoint = self.endpoint_overrides[consumer.service]
            environment |= {"REVIEWS_AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL": endpoint}
        command = [
            sys.executable,
            "-m",
            "reviews_pipeline.worker",
            "--handler",
            consumer.handler,
            "--function-name",
            consumer.function_id,
            "--queue-url",
            queues.queue_url,
            "--queue-arn",
            queues.queue_arn,
            "--timeout",
            str(self.function_timeout(consumer)),
            "--batch-size",
            str(consumer.batch_size),
            "--region",
            self.stack.region,
        ]
        if self.stack.endpoint_url:
            command += ["--endpoint-url", self.stack.endpoint_url]
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        return WorkerProcess(consumer=consumer, process=process, log=log, restarts=restarts)

    def function_timeout(self, consumer: ConsumerSpec) -> int:
        """The function's timeout, never longer than its queue's visibility.

        On AWS the visibility timeout is at least the function's timeout, so a message comes back only
        once its first invocation is over, and an idempotency record left "in progress" by a crashed
        invocation (it expires with the invocation's remaining time) has expired by then. Shortened
        local visibility keeps that order only if the timeout shrinks with it.
        """
        if self.visibility_timeout_seconds is None:
            return consumer.timeout_seconds
        return min(consumer.timeout_seconds, self.visibility_timeout_seconds)

    def kill(self, service: str) -> None:
        """Kill a service's worker outright (SIGKILL: no cleanup, as when Lambda's environment dies)."""
        worker = self.workers.get(service)
        if worker is not None and worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)

    def revive_crashed(self) -> list[str]:
        """Restart workers that died (as Lambda would start a fresh environment); the services restarted."""
        revived = []
        for service, worker in list(self.workers.items()):
            if worker.process.poll() is not None:
                worker.log.close()
                self.workers[service] = self._spawn(worker.consumer, worker.restarts + 1)
                revived.append(service)
        return revived

    def stop(self) -> None:
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.terminate()
        deadline = time.monotonic() + 15
        for worker in self.workers.values():
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
            worker.log.close()
        self.workers.clear()
