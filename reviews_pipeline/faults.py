"""Fault injection for the local runtime: an HTTP proxy between one service's function and the emulator.

Each service named in a fault plan gets its own proxy on a loopback port; the service's handler
talks to AWS through it (the worker's own SQS polling does not: that is Lambda's part, not the
function's). The proxy forwards every call untouched except the ones a fault matches, which it
answers the way AWS does when things go wrong:

- `error`: an S3 error answer (503 SlowDown by default, or 500 InternalError), so the SDK's own
  retries and backoff are what is exercised;
- `refuse_events`: a PutEvents answer with the request's first entry refused (the rest forwarded),
  as EventBridge does under partial failure;
- `crash`: the worker process is killed (SIGKILL) while its call is in flight, mid-batch, before
  it can delete its messages; the runtime starts a fresh one, as Lambda would.

Nothing of the services is patched: they see only what a real endpoint can answer.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

FaultAction = Literal["error", "refuse_events", "crash"]
# Hop-by-hop headers are the proxy's own business, never forwarded (RFC 9110 §7.6.1).
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"})
_S3_ERRORS = {503: "SlowDown", 500: "InternalError"}


class Fault(BaseModel):
    """One fault: which calls of which service it hits, what it does to them, and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="How the fault is named in reports.")
    service: str = Field(description="The service whose calls are hit (validator, etl, …).")
    action: FaultAction
    operation: str = Field(description="`s3:GetObject`, `s3:PutObject`, `events:PutEvents`, … (AWS API names).")
    key_prefix: str = Field(default="", description="S3 calls only: hit only keys under this prefix.")
    skip: int = Field(default=0, ge=0, description="Let this many matching calls through first.")
    times: int | None = Field(default=1, ge=1, description="How many matching calls to hit; null: until cleared.")
    status: Literal[500, 503] = Field(default=503, description="`error` only: the HTTP status answered.")


@dataclass
class FaultState:
    fault: Fault
    seen: int = 0
    injected: int = 0
    cleared: bool = False

    def should_fire(self) -> bool:
        """Count one matching call; whether the fault hits it."""
        self.seen += 1
        if self.cleared or self.seen <= self.fault.skip:
            return False
        return self.fault.times is None or self.injected < self.fault.times


@dataclass(frozen=True)
class AwsCall:
    """What an AWS SDK request is: the API operation and, for S3, the object key."""

    operation: str
    key: str = ""


def identify_call(method: str, path: str, headers: dict[str, str], body: bytes) -> AwsCall:
    """Name the AWS operation of a request, from the protocol details every SDK call carries."""
    target = headers.get("x-amz-target", "")
    if target:
        # JSON protocols: "AWSEvents.PutEvents", "DynamoDB_20120810.UpdateItem", "AmazonSQS.SendMessage".
        prefix, _, operation = target.partition(".")
        service = {"AWSEvents": "events", "AmazonSQS": "sqs"}.get(prefix, prefix.split("_")[0].lower())
        return AwsCall(f"{service}:{operation}")
    content_type = headers.get("content-type", "")
    if method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        return AwsCall(f"query:{action}")
    return _identify_s3_call(method, path, headers)


def _identify_s3_call(method: str, path: str, headers: dict[str, str]) -> AwsCall:
    parts = urlsplit(path)
    query = parse_qs(parts.query, keep_blank_values=True)
    _, _, key = unquote(parts.path).lstrip("/").partition("/")  # path-style: /bucket/key
    if not key:
        return AwsCall("s3:ListObjectsV2" if method == "GET" else f"s3:{method}Bucket")
    if method == "PUT":
        if "partNumber" in query:
            return AwsCall("s3:UploadPart", key)
        return AwsCall("s3:CopyObject" if "x-amz-copy-source" in headers else "s3:PutObject", key)
    if method == "POST":
        return AwsCall("s3:CreateMultipartUpload" if "uploads" in query else "s3:CompleteMultipartUpload", key)
    return AwsCall({"GET": "s3:GetObject", "HEAD": "s3:HeadObject", "DELETE": "s3:DeleteObject"}[method], key)


def matches(fault: Fault, call: AwsCall) -> bool:
    return fault.operation == call.operation and call.key.startswith(fault.key_prefix)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def s3_error(status: int) -> Answer:
    code = _S3_ERRORS[status]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>injected by the local runtime</Message>"
        "<RequestId>injected</RequestId></Error>"
    ).encode()
    return Answer(status, {"Content-Type": "application/xml"}, body)


def refuse_first_entry(forward: Callable[[bytes], Answer], body: bytes) -> Answer:
    """PutEvents with its first entry refused: the others are forwarded, the answer merged in order."""
    request = json.loads(body)
    entries = request.get("Entries", [])
    refused = {"ErrorCode": "InternalFailure", "ErrorMessage": "injected by the local runtime"}
    accepted: list[dict[str, Any]] = []
    failed = 1
    if len(entries) > 1:
        upstream = forward(json.dumps({**request, "Entries": entries[1:]}).encode())
        if upstream.status != 200:
            return upstream
        answered = json.loads(upstream.body)
        accepted = answered.get("Entries", [])
        failed += int(answered.get("FailedEntryCount", 0))
    merged = json.dumps({"FailedEntryCount": failed, "Entries": [refused, *accepted]}).encode()
    return Answer(200, {"Content-Type": "application/x-amz-json-1.1"}, merged)


@dataclass
class FaultProxy:
    """A proxy for one service's calls; `on_crash` kills that service's worker process."""

    service: str
    upstream: str
    faults: list[Fault]
    on_crash: Callable[[str], None]
    _states: list[FaultState] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self._states = [FaultState(fault) for fault in self.faults]

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"fault-proxy-{self.service}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def clear(self, name: str) -> None:
        """The cause is fixed: the named fault hits nothing from now on."""
        with self._lock:
            for state in self._states:
                if state.fault.name == name:
                    state.cleared = True

    def report(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**state.fault.model_dump(), "matching_calls": state.seen, "injected": state.injected}
                for state in self._states
            ]

    def firing_fault(self, call: AwsCall) -> Fault | None:
        """The fault that hits this call, if any (counted as injected)."""
        with self._lock:
            for state in self._states:
                if matches(state.fault, call) and state.should_fire():
                    state.injected += 1
                    return state.fault
        return None

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=300)
        try:
            forwarded = {
                name: value
                for name, value in headers.items()
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
            }
            forwarded["Content-Length"] = str(len(body))
            connection.request(
                method, path, body=body if body or method in ("PUT", "POST") else None, headers=forwarded
            )
            response = connection.getresponse()
            payload = response.read()
            answer_headers = {name: value for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP}
            if method != "HEAD":
                answer_headers = {k: v for k, v in answer_headers.items() if k.lower() != "content-length"}
                answer_headers["Content-Length"] = str(len(payload))
            return Answer(response.status, answer_headers, payload)
        finally:
            connection.close()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class ProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the workers' logs say what the services did."""

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            call = identify_call(self.command, self.path, headers, body)
            fault = proxy.firing_fault(call)
            raw_headers = dict(self.headers.items())
            if fault is None:
                answer = proxy.forward(self.command, self.path, raw_headers, body)
            elif fault.action == "crash":
                proxy.on_crash(proxy.service)
                self.close_connection = True
                return
            elif fault.action == "refuse_events":
                answer = refuse_first_entry(
                    lambda changed: proxy.forward(self.command, self.path, raw_headers, changed), body
                )
            else:
                answer = s3_error(fault.status)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if "Content-Length" not in answer.headers:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 - http.server's naming

    return ProxyHandler
