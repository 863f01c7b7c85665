"""The HTTP client that webhook deliveries go out on (services/webhooks.py): one POST per
delivery (Standard Webhooks: one event per request), on kept-alive HTTP/1.1 connections.

Tornado's ``SimpleAsyncHTTPClient`` opens and closes a connection per request; a burst of
events then costs a TCP handshake and teardown each (issue 23: a webhook cost most of a PUT's
CPU again). Here connections are pooled per (scheme, host, port) and reused when the answer
allows it (HTTP/1.1, no ``Connection: close``, a framed body), using Tornado's own HTTP/1.1
parser (``HTTP1Connection``) and connector (``TCPClient`` with the webhook ``SafeResolver``,
so every new connection is still checked against the allowed networks). Redirects are never
followed; at most ``keep`` bytes of an answer are kept. A pooled connection the receiver
closed meanwhile is retried once on a new connection (at-least-once delivery allows the
repeat, which can only happen if the receiver read the request and dropped the connection).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.parse
from collections.abc import Callable

import tornado.http1connection
import tornado.httputil
import tornado.iostream
import tornado.netutil
import tornado.tcpclient

IDLE_SECONDS = 30.0  # a pooled connection unused this long is closed, not reused
MAX_BODY = 64 * 1024 * 1024


class _Answer(tornado.httputil.HTTPMessageDelegate):
    def __init__(self, keep: Callable[[bytes], None]) -> None:
        self.keep = keep
        self.code = 0
        self.reusable = False
        self.complete = False

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, tornado.httputil.ResponseStartLine)
        self.code = start_line.code
        framed = (
            "Content-Length" in headers
            or "chunked" in headers.get("Transfer-Encoding", "").lower()
            or start_line.code in (204, 304)
        )
        self.reusable = (
            start_line.version == "HTTP/1.1"
            and headers.get("Connection", "").lower() != "close"
            and framed
        )

    def data_received(self, chunk: bytes) -> None:
        self.keep(chunk)

    def finish(self) -> None:
        self.complete = True

    def on_connection_close(self) -> None:
        self.reusable = False


class KeepAliveClient:
    """POSTs on pooled keep-alive connections; ``resolver`` decides where they may go."""

    def __init__(self, resolver: tornado.netutil.Resolver, max_idle_per_target: int) -> None:
        self.connector = tornado.tcpclient.TCPClient(resolver=resolver)
        self.max_idle = max_idle_per_target
        self._idle: dict[tuple[str, str, int], list[tuple[float, tornado.iostream.IOStream]]] = {}
        self._tls: ssl.SSLContext | None = None

    def _take(self, target: tuple[str, str, int]) -> tornado.iostream.IOStream | None:
        pool = self._idle.get(target)
        now = time.monotonic()
        while pool:
            since, stream = pool.pop()
            if not stream.closed() and now - since < IDLE_SECONDS:
                return stream
            stream.close()
        return None

    def _give_back(self, target: tuple[str, str, int], stream: tornado.iostream.IOStream) -> None:
        pool = self._idle.setdefault(target, [])
        if len(pool) >= self.max_idle:
            stream.close()
            return
        pool.append((time.monotonic(), stream))

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        limit_s: float,
        keep: Callable[[bytes], None],
    ) -> int:
        """POST ``body`` to ``url``; the answer's status code (its body goes to ``keep``).
        Raises on a connection that could not be made or broke, and TimeoutError after
        ``limit_s`` seconds."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.scheme, parts.hostname, port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        pooled = self._take(target)
        try:
            return await asyncio.wait_for(
                self._exchange(target, pooled, host, path, headers, body, keep), limit_s
            )
        except (tornado.iostream.StreamClosedError, ConnectionError):
            if pooled is None:
                raise
        # The pooled connection was closed by the receiver meanwhile: once more, on a new one.
        return await asyncio.wait_for(
            self._exchange(target, None, host, path, headers, body, keep), limit_s
        )

    async def _exchange(
        self,
        target: tuple[str, str, int],
        stream: tornado.iostream.IOStream | None,
        host: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        keep: Callable[[bytes], None],
    ) -> int:
        if stream is None:
            scheme, hostname, port = target
            if scheme == "https" and self._tls is None:
                self._tls = ssl.create_default_context()
            stream = await self.connector.connect(
                hostname,
                port,
                ssl_options=self._tls if scheme == "https" else None,
                max_buffer_size=MAX_BODY,
            )
        conn = tornado.http1connection.HTTP1Connection(
            stream,
            True,
            tornado.http1connection.HTTP1ConnectionParameters(
                no_keep_alive=False, max_body_size=MAX_BODY, decompress=False
            ),
        )
        answer = _Answer(keep)
        try:
            start = tornado.httputil.RequestStartLine("POST", path, "HTTP/1.1")
            sent = tornado.httputil.HTTPHeaders(headers)
            sent["Host"] = host
            sent["Content-Length"] = str(len(body))
            sent["Connection"] = "keep-alive"
            await conn.write_headers(start, sent, body)
            conn.finish()
            if not await conn.read_response(answer):
                raise tornado.iostream.StreamClosedError()
        except BaseException:
            conn.close()
            raise
        if answer.complete and answer.reusable and not stream.closed():
            self._give_back(target, conn.detach())
        else:
            conn.close()
        return answer.code

    def close(self) -> None:
        for pool in self._idle.values():
            for _, stream in pool:
                stream.close()
        self._idle.clear()
        self.connector.close()
