"""OpenTelemetry: spans reach an OTLP/HTTP endpoint, with URL secrets redacted."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.server import ServerProcess


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/traces"
    httpd.shutdown()
    httpd.server_close()


def test_spans_exported_and_redacted(tmp_path: Path, collector: str) -> None:
    proc = ServerProcess(
        tmp_path / "data",
        env={"ZAS_EXTENSIONS_TRACING_ENABLE": "true", "ZAS_EXTENSIONS_TRACING_ENDPOINT": collector},
    ).start()
    try:
        with proc.client() as c:
            assert c.put("/v1/buckets/traced").status_code == 201
            r = c.get("/v1/buckets/traced", params={"X-Amz-Signature": "topsecretsig"})
            assert r.status_code == 200
    finally:
        assert proc.stop() == 0  # shutdown flushes the span batch
    assert _Collector.received, "no spans were exported"
    paths = {path for path, _ in _Collector.received}
    assert paths == {"/v1/traces"}
    payload = b"".join(body for _, body in _Collector.received)
    assert b"/v1/buckets/traced" in payload
    assert b"topsecretsig" not in payload
    assert b"REDACTED" in payload


def _spans(payloads: list[bytes]) -> list[dict[str, Any]]:
    """The spans of OTLP/HTTP protobuf export requests, flattened."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans = []
    for body in payloads:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for s in scope.spans:
                    spans.append(
                        {
                            "name": s.name,
                            "id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(),
                            "trace": s.trace_id.hex(),
                            "attributes": {
                                a.key: getattr(a.value, a.value.WhichOneof("value"))
                                for a in s.attributes
                            },
                        }
                    )
    return spans


def _tree(spans: list[dict[str, Any]], root: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each span of ``root``'s trace below it, by name."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_parent.setdefault(s["parent"], []).append(s)
    below: dict[str, list[dict[str, Any]]] = {}
    todo = [root["id"]]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            below.setdefault(child["name"], []).append(child)
            todo.append(child["id"])
    return below


def test_span_tree_of_an_upload_and_a_verify(tmp_path: Path, collector: str) -> None:
    proc = ServerProcess(
        tmp_path / "data",
        env={
            "ZAS_EXTENSIONS_TRACING_ENABLE": "true",
            "ZAS_EXTENSIONS_TRACING_ENDPOINT": collector,
            "ZAS_ROOT_USER": "tracer",
            "ZAS_ROOT_PASSWORD": "tracer-password",
        },
    ).start()
    body = b"traced content"
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        with proc.client(auth=("tracer", "tracer-password")) as c:
            assert c.put("/v1/buckets/traced-bucket").status_code == 201
            put = c.put("/v1/buckets/traced-bucket/objects/a.bin", content=body)
            assert put.status_code in (200, 201), put.text
            subject = {"bucket": "traced-bucket", "key": "a.bin"}
            assert c.post("/v1/sign", json={"subject": subject}).status_code == 201
            key_id = c.get("/v1/keys").json()["keys"][0]["id"]
            policy = {"signatures": [{"key": key_id}]}
            verified = c.post("/v1/verify", json={"subject": subject, "policy": policy})
            assert verified.json()["verified"] is True, verified.text
    finally:
        assert proc.stop() == 0
    spans = _spans([b for _, b in _Collector.received])
    servers = {s["name"]: s for s in spans if not s["parent"]}

    upload = next(s for n, s in servers.items() if n.startswith("PUT") and "objects" in n)
    below = _tree(spans, upload)
    assert below["auth.authenticate"][0]["attributes"]["zas.auth.method"] == "basic"
    committed = below["storage.writer_commit"]
    assert committed, below.keys()
    put_object = below["metadata.put_object"][0]["attributes"]
    assert put_object["zas.bucket"] == "traced-bucket"
    assert put_object["zas.digest"] == digest
    assert all("tracer-password" not in str(s["attributes"]) for s in spans)

    verify = next(s for n, s in servers.items() if n.startswith("POST") and "verify" in n)
    below = _tree(spans, verify)
    (verification,) = below["supplychain.verify"]
    assert verification["attributes"]["zas.subject_digest"] == digest
    assert verification["attributes"]["zas.verify.passed"] is True
    inner = _tree(spans, verification)
    assert inner["metadata.list_evidence"][0]["attributes"]["zas.subject_digest"] == digest
    assert "storage.read_all" in inner  # the signature's bytes

    sign = next(s for n, s in servers.items() if n.startswith("POST") and "sign" in n)
    assert "supplychain.sign" in _tree(spans, sign)
