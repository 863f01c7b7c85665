"""Slow and greedy clients against a real server with small limits (``http.idleTimeout``,
``headerTimeout``, ``minBodyRate``/``bodyRateWindow``, ``maxConnectionsPerAddress``), over raw
sockets: trickled request heads get 408 and are closed, idle keep-alive connections are
closed, a body slower than the minimum rate is refused in the API's dialect (nothing stored,
no temporary file), a slow-but-steady body is not, and one address cannot hold more than its
share of connections."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.rawhttp import answered, closed_by_server, read_response, start_request
from tests.fixtures.server import ServerProcess

IDLE = 3.0
HEADER = 1.0
RATE = 20_000  # bytes/s
WINDOW = 1.0
CAP = 12


def _start(tmp_path_factory: pytest.TempPathFactory, http: dict[str, object]) -> ServerProcess:
    data_dir = tmp_path_factory.mktemp("slow-clients") / "data"
    return ServerProcess(data_dir, config={"http": http}).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = _start(
        tmp_path_factory,
        {
            "idleTimeout": f"{IDLE}s",
            "headerTimeout": f"{HEADER}s",
            "minBodyRate": RATE,
            "bodyRateWindow": f"{WINDOW}s",
        },
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Its own server: no connection of another test counts against the cap."""
    proc = _start(tmp_path_factory, {"maxConnectionsPerAddress": CAP})
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def bucket(server: ServerProcess) -> str:
    name = f"slow-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=server.url) as c:
        assert c.put(f"/v1/buckets/{name}").status_code == 201
    return name


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def cut(server: ServerProcess, reason: str) -> float:
    """``zas_connections_cut_total{reason=…}`` as /metrics tells it."""
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf'^zas_connections_cut_total\{{reason="{reason}"\}} (\S+)$', text, re.M)
    assert match is not None, f"no zas_connections_cut_total for {reason}"
    return float(match.group(1))


def temp_files(server: ServerProcess) -> list[Path]:
    tmp = server.data_dir / "tmp"
    return [f for d in tmp.iterdir() if d.is_dir() for f in d.iterdir()]


def test_trickled_request_heads_get_408_and_are_closed(server: ServerProcess) -> None:
    before = cut(server, "header_timeout")
    socks = [connect(server) for _ in range(100)]
    head = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    started = time.monotonic()
    try:
        # One byte per connection every 0.1 s: never a complete head.
        answers: dict[int, bytes] = {}
        for i in range(60):
            for n, sock in enumerate(socks):
                if n in answers:
                    continue
                if answered(sock):
                    answers[n] = sock.recv(65536)
                    continue
                try:
                    sock.sendall(head[i % len(head) : i % len(head) + 1])
                except (BrokenPipeError, ConnectionResetError):
                    answers[n] = b""
            if len(answers) == len(socks):
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert len(answers) == len(socks), "every trickling connection is cut off"
        assert elapsed < HEADER + 2.5, elapsed
        for answer in answers.values():
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
            assert b"http.headerTimeout" in answer
        assert all(closed_by_server(s, 2) for s in socks)
    finally:
        for sock in socks:
            sock.close()
    # The server serves as before, and counted the cuts.
    assert httpx.get(f"{server.url}/health/live").status_code == 200
    assert cut(server, "header_timeout") - before == len(socks)


def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(
    server: ServerProcess,
) -> None:
    sock = connect(server)
    try:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).status == 200
        idle_from = time.monotonic()
        # Idle is not a slow head: still open well past headerTimeout ...
        assert not closed_by_server(sock, HEADER + 0.75)
        # ... and a request sent then is served on the same connection.
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).status == 200
        idle_from = time.monotonic()
        assert closed_by_server(sock, IDLE + 2.0)
        assert time.monotonic() - idle_from > IDLE - 0.5
    finally:
        sock.close()


def test_a_connection_that_never_sends_a_byte_is_closed(server: ServerProcess) -> None:
    before = cut(server, "idle")
    sock = connect(server)
    try:
        started = time.monotonic()
        assert closed_by_server(sock, IDLE + 2.0)
        assert time.monotonic() - started > IDLE - 0.5
    finally:
        sock.close()
    assert cut(server, "idle") >= before + 1


def test_the_head_deadline_counts_from_its_first_byte(server: ServerProcess) -> None:
    sock = connect(server)
    try:
        time.sleep(IDLE / 2)  # idle, but within idleTimeout
        sock.sendall(b"GET /health/live HTTP/1.1\r\n")
        first_byte = time.monotonic()
        r = read_response(sock, timeout=HEADER + 3)
        assert r.status == 408
        assert HEADER - 0.3 < time.monotonic() - first_byte < HEADER + 1.5
    finally:
        sock.close()


def _trickle_body(
    server: ServerProcess, method: str, path: str, total: int, piece: int, every: float
) -> tuple[dict[str, str], bytes, int]:
    """Send ``total`` bytes, ``piece`` bytes every ``every`` s, until the server answers;
    returns (headers, body, status)."""
    data = os.urandom(total)
    sock = start_request(
        server.port,
        method,
        path,
        {"Content-Length": str(total), "Content-Type": "application/octet-stream"},
    )
    try:
        sent = 0
        while sent < total and not answered(sock, every):
            try:
                sock.sendall(data[sent : sent + piece])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += piece
        r = read_response(sock, timeout=10)
        return r.headers, r.body, r.status
    finally:
        sock.close()


def test_a_body_slower_than_the_minimum_rate_is_refused_in_each_dialect(
    server: ServerProcess, bucket: str
) -> None:
    slow = RATE // 10  # bytes per second
    headers, body, status = _trickle_body(
        server, "PUT", f"/v1/buckets/{bucket}/objects/slow", 1 << 20, slow // 10, 0.1
    )
    assert status == 408
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["code"] == "RequestTimeout" and problem["retryable"] is True
    assert "http.minBodyRate" in problem["message"]

    headers, body, status = _trickle_body(
        server, "PUT", f"/{bucket}/slow", 1 << 20, slow // 10, 0.1
    )
    assert status == 400  # as S3 answers it
    assert b"<Code>RequestTimeout</Code>" in body

    r = httpx.post(f"{server.url}/v2/slow/app/blobs/uploads/")
    location = r.headers["Location"]
    headers, body, status = _trickle_body(server, "PATCH", location, 1 << 20, slow // 10, 0.1)
    assert status == 408
    assert json.loads(body)["errors"][0]["code"] == "RequestTimeout"

    time.sleep(0.3)  # aborts run as the connections close
    assert temp_files(server) == []
    with httpx.Client(base_url=server.url) as c:
        assert c.get(f"/v1/buckets/{bucket}/objects/slow").status_code == 404
        assert c.head(f"/{bucket}/slow").status_code == 404


def test_a_slow_but_steady_body_is_stored(server: ServerProcess, bucket: str) -> None:
    # Three times the minimum rate, for several windows.
    total = 4 * RATE * 3
    _, body, status = _trickle_body(
        server, "PUT", f"/v1/buckets/{bucket}/objects/steady", total, 3 * RATE // 10, 0.1
    )
    assert status == 201, body
    assert json.loads(body)["size"] == total


def test_connections_per_address_are_capped(capped_server: ServerProcess) -> None:
    server = capped_server
    held = [connect(server) for _ in range(CAP)]
    try:
        for sock in held:  # each is admitted and served
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_response(sock).status == 200
        extra = connect(server)
        try:
            r = read_response(extra, timeout=5)
            assert r.status == 429
            assert r.headers["retry-after"] == "1"
            assert b"http.maxConnectionsPerAddress" in r.body
            assert closed_by_server(extra, 2)
        finally:
            extra.close()
        held[1].close()  # room for the scrape's connection
        time.sleep(0.3)
        assert cut(server, "per_address") == 1
        # The held connections still work; when one goes, there is room for one more.
        held[0].sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(held[0]).status == 200
        sock = connect(server)
        try:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_response(sock).status == 200
        finally:
            sock.close()
    finally:
        for sock in held:
            sock.close()
