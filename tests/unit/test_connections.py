"""The connection guard's bookkeeping on a controlled clock: which phase a connection is in,
when each limit cuts it, and that the server's own time on a body is not the client's. (The
real server with real sockets: tests/integration/test_slow_clients.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.httputil

from zot_artifact_store.connections import ConnectionGuard, ConnectionLimits, Phase


class FakeStream:
    """What the guard uses of an IOStream: reads go through ``read_from_fd``."""

    def __init__(self) -> None:
        self.incoming = b""
        self.written = b""
        self.is_closed = False

    def read_from_fd(self, buf: bytearray | memoryview) -> int | None:
        n = min(len(buf), len(self.incoming))
        buf[:n] = self.incoming[:n]
        self.incoming = self.incoming[n:]
        return n or None

    def receive(self, data: bytes) -> None:
        """The peer sends ``data`` and the stream reads it."""
        self.incoming += data
        self.read_from_fd(bytearray(len(data)))

    def closed(self) -> bool:
        return self.is_closed

    def close(self) -> None:
        self.is_closed = True

    def write(self, data: bytes) -> asyncio.Future[None]:
        self.written += data
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class RequestConn:
    """Stands for Tornado's HTTP1Connection (the key of a request's watch)."""


class Inner(tornado.httputil.HTTPMessageDelegate):
    """A request delegate whose body chunks take ``delay`` of (fake) server time."""

    def __init__(self, clock: list[float], delay: float = 0.0) -> None:
        self.clock, self.delay = clock, delay

    def data_received(self, chunk: bytes) -> Any:
        async def store() -> None:
            self.clock[0] += self.delay

        return store()


def guard_for(limits: ConnectionLimits) -> tuple[ConnectionGuard, list[float]]:
    now = [1000.0]
    guard = ConnectionGuard(limits, clock=lambda: now[0])
    return guard, now


LIMITS = ConnectionLimits(
    idle_timeout=10, header_timeout=2, min_body_rate=100, body_rate_window=5, max_per_address=2
)


async def test_phases_and_the_head_deadline() -> None:
    guard, now = guard_for(LIMITS)
    stream = FakeStream()
    watch = guard.admit(stream, "10.0.0.1")  # type: ignore[arg-type]
    assert watch is not None
    try:
        guard.wrap(stream, RequestConn(), Inner(now))  # type: ignore[arg-type]
        assert watch.phase is Phase.IDLE
        now[0] += 8  # idle, under idleTimeout, far over headerTimeout
        guard.sweep()
        assert not stream.closed()
        stream.receive(b"GET / HTTP/1.1\r\n")  # the first byte starts the head
        assert watch.phase is Phase.HEAD
        now[0] += 1.5
        guard.sweep()
        assert not stream.closed()
        now[0] += 1
        guard.sweep()
        await asyncio.sleep(0)
        assert stream.closed()
        assert stream.written.startswith(b"HTTP/1.1 408 Request Timeout")
    finally:
        guard.stop()


async def test_idle_connections_are_closed_without_an_answer() -> None:
    guard, now = guard_for(LIMITS)
    stream = FakeStream()
    guard.admit(stream, "10.0.0.1")  # type: ignore[arg-type]
    try:
        guard.wrap(stream, RequestConn(), Inner(now))  # type: ignore[arg-type]
        now[0] += 10.5
        guard.sweep()
        assert stream.closed() and stream.written == b""
    finally:
        guard.stop()


async def test_the_body_rate_excuses_the_servers_own_time() -> None:
    guard, now = guard_for(LIMITS)
    stream = FakeStream()
    watch = guard.admit(stream, "10.0.0.1")  # type: ignore[arg-type]
    assert watch is not None
    timed_out: list[str] = []
    try:
        request_conn = RequestConn()
        # Every chunk takes the server 4 s to store (a slow disk).
        delegate = guard.wrap(stream, request_conn, Inner(now, delay=4.0))  # type: ignore[arg-type]
        watch.on_body_timeout = timed_out.append
        stream.receive(b"PUT /b/k HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
        delegate.headers_received(
            tornado.httputil.RequestStartLine("PUT", "/b/k", "HTTP/1.1"),
            tornado.httputil.HTTPHeaders(),
        )
        assert watch.phase is Phase.BODY
        for _ in range(3):
            # The client sends 300 bytes in 1 s, then waits 4 s for the server: 300 bytes in
            # 5 s of wall time (60 B/s, under the minimum), but in 1 s of its own time.
            now[0] += 1
            stream.receive(b"x" * 300)
            done = delegate.data_received(b"x" * 300)
            assert done is not None
            await done
            guard.sweep()
        assert timed_out == [] and not stream.closed()
        # Now the client stalls for 10 s: 950 bytes in 13 s of its own time.
        now[0] += 10
        stream.receive(b"x" * 50)
        guard.sweep()
        assert len(timed_out) == 1
        assert "950 bytes in the last 13 s" in timed_out[0]
        assert "http.minBodyRate" in timed_out[0]
        assert watch.phase is Phase.SERVER  # answered once
    finally:
        guard.stop()


async def test_the_per_address_cap_counts_open_connections() -> None:
    guard, _now = guard_for(LIMITS)
    try:
        a, b, c, other = FakeStream(), FakeStream(), FakeStream(), FakeStream()
        assert guard.admit(a, "10.0.0.1") is not None  # type: ignore[arg-type]
        assert guard.admit(b, "10.0.0.1") is not None  # type: ignore[arg-type]
        assert guard.admit(other, "10.0.0.2") is not None  # type: ignore[arg-type]
        assert guard.admit(c, "10.0.0.1") is None  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert c.closed() and c.written.startswith(b"HTTP/1.1 429 Too Many Requests")
        guard.release(a)  # type: ignore[arg-type]
        guard.release(a)  # type: ignore[arg-type]  # twice: counted once
        assert guard.open_connections("10.0.0.1") == 1
        assert guard.admit(FakeStream(), "10.0.0.1") is not None  # type: ignore[arg-type]
        # A closed connection the server did not report is released by the next sweep.
        b.close()
        guard.sweep()
        guard.release(b)  # type: ignore[arg-type]  # the server's own report: no double count
        assert guard.open_connections("10.0.0.1") == 1
    finally:
        guard.stop()
