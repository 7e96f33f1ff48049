"""The fault proxy's decisions: which AWS call a request is, which fault hits it, what PutEvents answers."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reviews_pipeline.faults import Answer, AwsCall, Fault, FaultProxy, FaultState, identify_call, refuse_first_entry


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "expected"),
    [
        ("GET", "/bucket/raw/train/a.csv", {}, b"", AwsCall("s3:GetObject", "raw/train/a.csv")),
        ("HEAD", "/bucket/raw/train/a%20b.csv", {}, b"", AwsCall("s3:HeadObject", "raw/train/a b.csv")),
        ("PUT", "/bucket/etl/x.parquet", {}, b"..", AwsCall("s3:PutObject", "etl/x.parquet")),
        ("PUT", "/bucket/errors/x", {"x-amz-copy-source": "bucket/raw/x"}, b"", AwsCall("s3:CopyObject", "errors/x")),
        ("PUT", "/bucket/chunks/p?partNumber=2&uploadId=u", {}, b"..", AwsCall("s3:UploadPart", "chunks/p")),
        ("POST", "/bucket/chunks/p?uploads", {}, b"", AwsCall("s3:CreateMultipartUpload", "chunks/p")),
        ("GET", "/bucket?list-type=2&prefix=etl/", {}, b"", AwsCall("s3:ListObjectsV2")),
        ("POST", "/", {"x-amz-target": "AWSEvents.PutEvents"}, b"{}", AwsCall("events:PutEvents")),
        ("POST", "/", {"x-amz-target": "DynamoDB_20120810.UpdateItem"}, b"{}", AwsCall("dynamodb:UpdateItem")),
        (
            "POST",
            "/",
            {"content-type": "application/x-www-form-urlencoded"},
            b"Action=Publish&TopicArn=t",
            AwsCall("query:Publish"),
        ),
    ],
)
def test_a_request_is_named_by_its_aws_operation_and_key(
    method: str, path: str, headers: dict[str, str], body: bytes, expected: AwsCall
) -> None:
    assert identify_call(method, path, headers, body) == expected


def test_a_fault_skips_then_hits_as_many_calls_as_it_is_told_and_nothing_once_cleared() -> None:
    state = FaultState(Fault(name="f", service="etl", action="error", operation="s3:GetObject", skip=1, times=2))

    assert [state.should_fire() for _ in range(2)] == [False, True]
    state.injected += 1
    assert state.should_fire() is True
    state.injected += 1
    assert state.should_fire() is False

    persistent = FaultState(Fault(name="p", service="etl", action="error", operation="s3:GetObject", times=None))
    assert all(persistent.should_fire() for _ in range(50))
    persistent.cleared = True
    assert persistent.should_fire() is False


def test_put_events_with_its_first_entry_refused_forwards_the_others_and_merges_the_answer_in_order() -> None:
    forwarded: list[dict[str, object]] = []

    def upstream(body: bytes) -> Answer:
        request = json.loads(body)
        forwarded.append(request)
        entries = [{"EventId": f"id-{entry['Detail']}"} for entry in request["Entries"]]
        return Answer(200, {}, json.dumps({"FailedEntryCount": 0, "Entries": entries}).encode())

    request = {"Entries": [{"Detail": "a"}, {"Detail": "b"}, {"Detail": "c"}]}
    answer = json.loads(refuse_first_entry(upstream, json.dumps(request).encode()).body)

    assert forwarded == [{"Entries": [{"Detail": "b"}, {"Detail": "c"}]}]
    assert answer["FailedEntryCount"] == 1
    assert answer["Entries"][0]["ErrorCode"] == "InternalFailure"
    assert [entry.get("EventId") for entry in answer["Entries"][1:]] == ["id-b", "id-c"]


def test_a_single_refused_entry_is_never_forwarded() -> None:
    def upstream(body: bytes) -> Answer:
        raise AssertionError("nothing may be forwarded")

    answer = json.loads(refuse_first_entry(upstream, json.dumps({"Entries": [{"Detail": "a"}]}).encode()).body)

    assert answer["FailedEntryCount"] == 1


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"object bytes"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_proxy_answers_matching_calls_with_s3_errors_and_forwards_the_rest(upstream_url: str) -> None:
    crashed: list[str] = []
    fault = Fault(name="slow", service="validator", action="error", operation="s3:GetObject", key_prefix="raw/")
    proxy = FaultProxy("validator", upstream_url, [fault], on_crash=crashed.append).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{proxy.endpoint_url}/bucket/raw/a.csv")
        passed = urllib.request.urlopen(f"{proxy.endpoint_url}/bucket/raw/a.csv").read()
        other = urllib.request.urlopen(f"{proxy.endpoint_url}/bucket/etl/a.parquet").read()
    finally:
        proxy.stop()

    assert refused.value.code == 503
    assert b"<Code>SlowDown</Code>" in refused.value.read()
    assert passed == other == b"object bytes"
    (entry,) = proxy.report()
    assert (entry["matching_calls"], entry["injected"]) == (2, 1)
    assert crashed == []
