"""Slow and greedy clients: timeouts for each phase of a connection, a minimum body rate and a
cap on connections per source address (``http.idleTimeout``, ``headerTimeout``,
``minBodyRate``/``bodyRateWindow``, ``maxConnectionsPerAddress``; docs/operations.md).

Tornado has one timeout for the wait for a request head (``idle_connection_timeout``: from
the end of the previous response, so it is both the keep-alive idle time and the head's
deadline) and a total ``body_timeout`` (wrong for uploads of any size). It has no minimum body
rate and no per-address cap. :class:`ConnectionGuard` adds them, from three public hooks:

- each connection's stream counts the bytes it reads (``read_from_fd``, the one method every
  read goes through), so the guard knows when a request's first byte arrives;
- each request's delegate is wrapped (:class:`WatchedRequest`), so it knows when the head is
  complete, when the body is done, and how long the server itself spends on body chunks (a
  slow disk is not the client's fault: that time is excused from the rate);
- one periodic sweep closes connections that overstay: idle beyond ``idleTimeout``; a head
  not complete ``headerTimeout`` after its first byte (answered ``408`` as plain text: no API
  is known yet); a body arriving slower than ``minBodyRate`` over a window of
  ``bodyRateWindow`` (the handler answers ``RequestTimeout`` in its API's dialect and aborts
  the upload, see :func:`on_body_timeout`).
"""

from __future__ import annotations

import enum
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tornado.httputil
import tornado.ioloop
import tornado.iostream

if TYPE_CHECKING:
    from .config import HTTPConfig

log = logging.getLogger("zot_artifact_store.connections")

Clock = Callable[[], float]
# Why the guard closed a connection (``zas_connections_cut_total{reason}``).
CUT_REASONS = ("idle", "header_timeout", "body_rate", "per_address")


@dataclass(frozen=True)
class ConnectionLimits:
    """0 turns a limit off."""

    idle_timeout: float = 120.0
    header_timeout: float = 20.0
    min_body_rate: int = 1024  # bytes per second
    body_rate_window: float = 60.0
    max_per_address: int = 256

    @classmethod
    def from_config(cls, http: HTTPConfig) -> ConnectionLimits:
        return cls(
            idle_timeout=http.idleTimeout,
            header_timeout=http.headerTimeout,
            min_body_rate=http.minBodyRate,
            body_rate_window=http.bodyRateWindow,
            max_per_address=http.maxConnectionsPerAddress,
        )

    @property
    def sweep_interval(self) -> float:
        """How often the guard looks: a quarter of the shortest limit, 50 ms to 1 s."""
        spans = [
            t
            for t in (
                self.idle_timeout,
                self.header_timeout,
                self.body_rate_window if self.min_body_rate else 0,
            )
            if t > 0
        ]
        return min(max(min(spans, default=4.0) / 4, 0.05), 1.0)

    @property
    def tornado_header_timeout(self) -> float | None:
        """Tornado's own deadline for a request head, a backstop behind the guard's."""
        if not self.idle_timeout or not self.header_timeout:
            return None
        return self.idle_timeout + self.header_timeout


class Phase(enum.Enum):
    IDLE = "idle"  # waiting for a request's first byte
    HEAD = "head"  # the request head is arriving
    BODY = "body"  # the request body is arriving
    SERVER = "server"  # the server's turn: preparing, handling, answering


_TIMED_OUT_HEAD = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)
_TOO_MANY = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s"
)


def _reply(template: bytes, text: str) -> bytes:
    body = text.encode() + b"\n"
    return template % (len(body), body)


class ConnectionWatch:
    """One connection, as the guard sees it."""

    def __init__(self, stream: tornado.iostream.IOStream, address: str, now: float) -> None:
        self.stream = stream
        self.address = address
        self.received = 0
        self.phase = Phase.SERVER  # until the TLS sniff has seen the first byte
        self.since = now
        self.window_start = now
        self.window_bytes = 0
        self.excused = 0.0  # seconds the server spent on body chunks in this window
        self.busy_since: float | None = None
        self.on_body_timeout: Callable[[str], None] | None = None

    def enter(self, phase: Phase, now: float) -> None:
        self.phase, self.since = phase, now
        if phase is Phase.BODY:
            self.window_start, self.window_bytes, self.excused = now, self.received, 0.0


class ConnectionGuard:
    """The limits of one HTTP server's connections (see the module docstring)."""

    def __init__(self, limits: ConnectionLimits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._watches: dict[tornado.iostream.IOStream, ConnectionWatch] = {}
        self._per_address: dict[str, int] = {}
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None
        # Told the reason of each connection the guard closes (metrics).
        self.observer: Callable[[str], None] | None = None

    def cut(self, reason: str) -> None:
        """Count a connection closed for ``reason`` (one of :data:`CUT_REASONS`)."""
        if self.observer is not None:
            self.observer(reason)

    # ---- connections ----------------------------------------------------------------------
    def admit(self, stream: tornado.iostream.IOStream, address: str) -> ConnectionWatch | None:
        """Count a new connection from ``address``; None (answered 429 and closed) when that
        address already has ``max_per_address`` open."""
        cap = self.limits.max_per_address
        open_now = self._per_address.get(address, 0)
        if cap and open_now >= cap:
            self.cut("per_address")
            log.warning(
                "refused a connection: too many from one address",
                extra={"remote_ip": address, "open": open_now, "limit": cap},
            )
            self._answer_and_close(
                stream,
                _reply(
                    _TOO_MANY,
                    f"Too many connections from {address} (at most {cap}: "
                    "http.maxConnectionsPerAddress); reuse connections or retry later.",
                ),
            )
            return None
        self._per_address[address] = open_now + 1
        watch = ConnectionWatch(stream, address, self.clock())
        self._watches[stream] = watch
        _count_reads(stream, watch, self.clock)
        self._start()
        return watch

    def release(self, stream: tornado.iostream.IOStream) -> None:
        watch = self._watches.pop(stream, None)
        if watch is None:
            return
        left = self._per_address.get(watch.address, 1) - 1
        if left > 0:
            self._per_address[watch.address] = left
        else:
            self._per_address.pop(watch.address, None)

    def watch(self, stream: tornado.iostream.IOStream) -> ConnectionWatch | None:
        return self._watches.get(stream)

    def open_connections(self, address: str) -> int:
        return self._per_address.get(address, 0)

    def wrap(
        self, stream: tornado.iostream.IOStream, request_conn: Any, delegate: Any
    ) -> tornado.httputil.HTTPMessageDelegate:
        """Watch one request of ``stream`` (called as Tornado starts waiting for it)."""
        watch = self.watch(stream)
        if watch is None:
            return delegate  # type: ignore[no-any-return]
        watch.on_body_timeout = None
        watch.enter(Phase.IDLE, self.clock())  # its first byte read starts its head
        _REQUESTS[request_conn] = watch
        return WatchedRequest(delegate, watch, self.clock)

    # ---- the sweep ------------------------------------------------------------------------
    def _start(self) -> None:
        if self._sweeper is None:
            self._sweeper = tornado.ioloop.PeriodicCallback(
                self.sweep, self.limits.sweep_interval * 1000
            )
            self._sweeper.start()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None

    def sweep(self) -> None:
        """Close the connections that overstay (see the module docstring)."""
        now = self.clock()
        limits = self.limits
        for watch in list(self._watches.values()):
            if watch.stream.closed():
                self.release(watch.stream)  # normally done at once by the server; never twice
                continue
            waited = now - watch.since
            if watch.phase is Phase.IDLE and limits.idle_timeout and waited > limits.idle_timeout:
                self.cut("idle")
                watch.stream.close()  # an idle keep-alive connection: no answer owed
            elif (
                watch.phase is Phase.HEAD
                and limits.header_timeout
                and waited > limits.header_timeout
            ):
                self.cut("header_timeout")
                self._timed_out(
                    watch,
                    f"The request head did not arrive within {limits.header_timeout:g} s "
                    "(http.headerTimeout).",
                )
            elif watch.phase is Phase.BODY and limits.min_body_rate:
                self._check_rate(watch, now)

    def _check_rate(self, watch: ConnectionWatch, now: float) -> None:
        if watch.busy_since is not None:
            return  # the server is busy with a chunk: not the client's time
        window = self.limits.body_rate_window
        client_time = now - watch.window_start - watch.excused
        if client_time < window:
            return
        got = watch.received - watch.window_bytes
        rate = self.limits.min_body_rate
        if got >= rate * client_time:
            watch.window_start, watch.window_bytes, watch.excused = now, watch.received, 0.0
            return
        message = (
            f"the request body arrives too slowly: {got} bytes in the last {client_time:.0f} s, "
            f"below the minimum of {rate} bytes/s (http.minBodyRate over http.bodyRateWindow)"
        )
        self.cut("body_rate")
        watch.enter(Phase.SERVER, now)
        if watch.on_body_timeout is not None:
            watch.on_body_timeout(message)  # answered in the API's dialect
        else:
            self._timed_out(watch, message[0].upper() + message[1:] + ".")

    def _timed_out(self, watch: ConnectionWatch, message: str) -> None:
        log.info(
            "closing a slow connection",
            extra={"remote_ip": watch.address, "phase": watch.phase.value, "reason": message},
        )
        watch.enter(Phase.SERVER, self.clock())
        self._answer_and_close(watch.stream, _reply(_TIMED_OUT_HEAD, message))

    @staticmethod
    def _answer_and_close(stream: tornado.iostream.IOStream, reply: bytes) -> None:
        try:
            written = stream.write(reply)
        except tornado.iostream.StreamClosedError:
            return
        written.add_done_callback(lambda f: (f.exception(), stream.close()))


class WatchedRequest(tornado.httputil.HTTPMessageDelegate):
    """A request's delegate, telling the watch where the request is."""

    def __init__(
        self, inner: tornado.httputil.HTTPMessageDelegate, watch: ConnectionWatch, clock: Clock
    ) -> None:
        self.inner = inner
        self.watch = watch
        self.clock = clock

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.watch.enter(Phase.SERVER, self.clock())  # prepare() runs before the body
        ready = self.inner.headers_received(start_line, headers)
        if ready is None:
            self.watch.enter(Phase.BODY, self.clock())
            return None
        return self._then_body(ready)

    async def _then_body(self, ready: Awaitable[None]) -> None:
        try:
            await ready
        finally:
            if self.watch.phase is Phase.SERVER:
                self.watch.enter(Phase.BODY, self.clock())

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        watch = self.watch
        watch.busy_since = self.clock()
        try:
            done = self.inner.data_received(chunk)
        except BaseException:
            self._idle_again()
            raise
        if done is None:
            self._idle_again()
            return None
        return self._then_idle(done)

    async def _then_idle(self, done: Awaitable[None]) -> None:
        try:
            await done
        finally:
            self._idle_again()

    def _idle_again(self) -> None:
        watch = self.watch
        if watch.busy_since is not None:
            watch.excused += self.clock() - watch.busy_since
            watch.busy_since = None

    def finish(self) -> None:
        self.watch.enter(Phase.SERVER, self.clock())
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


# The watch of each request's connection (HTTP1Connection), for its handler.
_REQUESTS: weakref.WeakKeyDictionary[Any, ConnectionWatch] = weakref.WeakKeyDictionary()


def on_body_timeout(request_conn: Any, callback: Callable[[str], None]) -> None:
    """Have ``callback(message)`` answer this request when its body arrives too slowly (a
    handler renders the error in its API's dialect); without one the connection gets a
    plain-text 408."""
    watch = _REQUESTS.get(request_conn) if request_conn is not None else None
    if watch is not None:
        watch.on_body_timeout = callback


def _count_reads(stream: tornado.iostream.IOStream, watch: ConnectionWatch, clock: Clock) -> None:
    """Count the bytes ``stream`` reads; the first byte of a request starts its head."""
    read = stream.read_from_fd

    def counting(buf: bytearray | memoryview) -> int | None:
        n = read(buf)
        if n:
            watch.received += n
            if watch.phase is Phase.IDLE:
                watch.enter(Phase.HEAD, clock())
        return n

    stream.read_from_fd = counting  # type: ignore[method-assign]
