"""OpenTelemetry: spans reach an OTLP/HTTP endpoint, with URL secrets redacted."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

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
