"""One service's worker: polls its queue and calls the real handler with an SQS event, as Lambda would.

Run as `python -m reviews_pipeline.worker --handler services.validator.app.lambda_handler …`, one
process per service, with the stack's environment. Messages the handler reports in
`batchItemFailures` are left on the queue (they come back after the visibility timeout, and after
`maxReceiveCount` receives SQS moves them to the DLQ); the rest of the batch is deleted. A handler
that raises fails its whole batch, exactly as on Lambda; the worker itself carries on.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import boto3

_log = logging.getLogger("reviews_pipeline.worker")
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalLambdaContext:
    """The parts of Lambda's context object the handlers and Powertools use."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    aws_request_id: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    started_at: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started_at + self.timeout_seconds - time.monotonic()) * 1000))


def load_handler(dotted: str) -> Handler:
    module_name, _, function_name = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def _with_account(body: str, account: str) -> str:
    """Fill in `account` on an EventBridge event that lacks it.

    EventBridge always sets `account`; moto (5.2) leaves it out of events its rules deliver to SQS,
    and Powertools' EventBridge model rightly requires it. Anything that is not such an event is
    passed through untouched, so bad messages still reach the handler as they are.
    """
    try:
        event = json.loads(body)
    except json.JSONDecodeError:
        return body
    if not isinstance(event, dict) or "detail-type" not in event or "account" in event:
        return body
    return json.dumps({**event, "account": account})


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping would pass for these messages."""
    account = queue_arn.split(":")[4]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": _with_account(message["Body"], account),
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def failed_message_ids(response: Any) -> set[str]:
    if not isinstance(response, dict):
        return set()
    return {str(failure["itemIdentifier"]) for failure in response.get("batchItemFailures", [])}


class Worker:
    def __init__(
        self,
        handler: Handler,
        *,
        function_name: str,
        queue_url: str,
        queue_arn: str,
        timeout_seconds: int,
        batch_size: int,
        sqs: Any,
        region: str,
    ) -> None:
        self._handler = handler
        self._function_name = function_name
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._timeout_seconds = timeout_seconds
        self._batch_size = batch_size
        self._sqs = sqs
        self._region = region
        self._stopping = False

    def stop(self, *_: object) -> None:
        self._stopping = True

    def run(self) -> None:
        while not self._stopping:
            self.poll_once()

    def poll_once(self, wait_seconds: int = 1) -> int:
        """Receive one batch and handle it; the number of messages received."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=min(self._batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            self._invoke(messages)
        return len(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        context = LocalLambdaContext(
            function_name=self._function_name,
            timeout_seconds=self._timeout_seconds,
            invoked_function_arn=f"arn:aws:lambda:{self._region}:000000000000:function:{self._function_name}",
            aws_request_id=str(uuid.uuid4()),
            started_at=time.monotonic(),
        )
        try:
            response = self._handler(sqs_event(messages, self._queue_arn, self._region), context)
        except Exception:  # noqa: BLE001 - a failing handler fails its batch, as on Lambda; the worker goes on
            _log.error("%s failed its batch of %d:\n%s", self._function_name, len(messages), traceback.format_exc())
            return
        failed = failed_message_ids(response)
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[start : start + 10])
                ],
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--queue-arn", required=True)
    parser.add_argument("--timeout", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--region", default="us-east-1")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sqs = boto3.session.Session(region_name=arguments.region).client("sqs", endpoint_url=arguments.endpoint_url)
    worker = Worker(
        load_handler(arguments.handler),
        function_name=arguments.function_name,
        queue_url=arguments.queue_url,
        queue_arn=arguments.queue_arn,
        timeout_seconds=arguments.timeout,
        batch_size=arguments.batch_size,
        sqs=sqs,
        region=arguments.region,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
