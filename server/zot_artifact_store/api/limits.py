"""Size limits of a request, answered in the dialect of the API it was sent to.

Tornado enforces its own limits in the connection: a body over ``max_body_size`` gets a bare
``400`` with no body, a header block over ``max_header_size`` a dropped connection. So the
server lets Tornado accept more (:func:`server_limits`) and this module enforces the real
limits first, from the request's headers and while its body arrives, before any handler code
runs; the refusal is rendered by the handler class the request was routed to (S3 XML, OCI
JSON, problem JSON), with ``Connection: close``:

- header fields (names and values) over ``http.maxHeaderSize``: 431
  ``RequestHeaderSectionTooLarge``. The request line is not counted: an over-long S3 key gets
  ``KeyTooLongError`` from the S3 API as on AWS. A header block beyond
  :data:`REQUEST_LINE_ALLOWANCE` more than the limit is still cut off by Tornado unread.
- a ``Content-Length`` over what the route accepts, or a chunked body that grows past it:
  413 ``EntityTooLarge``, naming the limit. A handler that reads its body whole accepts
  ``http.maxRequestBodySize``; a streaming handler (objects, parts, blob uploads) accepts
  ``http.maxObjectSize``, and checks its own smaller limits for other bodies (CI events, S3
  XML bodies). A streaming handler already running is told through
  ``refuse_body`` (:class:`..base.BaseHandler`), which aborts its upload and answers.

Nothing is buffered beyond the limit: a refused body is discarded as it arrives until the
response is written and the connection closes.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import tornado.httputil
import tornado.web

from ..errors import StoreError
from .base import BaseHandler

if TYPE_CHECKING:
    from ..config import HTTPConfig

# Tornado reads this much more than http.maxHeaderSize, for the request line (long URLs: an
# S3 key is at most 1,024 bytes, percent-encoded up to three times that, plus presigned
# query parameters), so that a request over the limit gets an answer.
REQUEST_LINE_ALLOWANCE = 1024 * 1024
_HEADER_OVERHEAD = 4  # ": " and CRLF of each field


# Tornado's body limit: none (this module enforces them; Tornado's would answer first).
UNLIMITED = 1 << 62


def server_limits(http: HTTPConfig) -> dict[str, int]:
    """Tornado's HTTPServer limits: above every limit this module enforces."""
    return {
        "max_header_size": http.maxHeaderSize + REQUEST_LINE_ALLOWANCE,
        "max_body_size": UNLIMITED,
        # The read buffer: a whole header block, or a chunk of body (bodies are delivered in
        # pieces of the server's chunk_size, never buffered whole by the stream).
        "max_buffer_size": max(http.maxRequestBodySize, http.maxHeaderSize)
        + REQUEST_LINE_ALLOWANCE,
    }


def header_bytes(headers: tornado.httputil.HTTPHeaders) -> int:
    return sum(len(name) + len(value) + _HEADER_OVERHEAD for name, value in headers.get_all())


class Application(tornado.web.Application):
    """Tornado's Application with this module's limits on every request."""

    def __init__(self, http: HTTPConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http_limits = http

    def find_handler(  # type: ignore[override]
        self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any
    ) -> tornado.httputil.HTTPMessageDelegate:
        routed = super().find_handler(request, **kwargs)
        return _Limited(self, request, routed)


class _Limited(tornado.httputil.HTTPMessageDelegate):
    """The routed handler's delegate, behind the limits; a request over one is answered by a
    :func:`_refusing` subclass of the routed handler (its dialect) instead."""

    def __init__(
        self,
        app: Application,
        request: tornado.httputil.HTTPServerRequest,
        routed: Any,  # tornado.web._HandlerDelegate
    ) -> None:
        self.app = app
        self.request = request
        self.routed = routed
        self.refusal: tornado.httputil.HTTPMessageDelegate | None = None
        self.discarding = False  # a streaming handler refused the body: the rest is dropped
        self.received = 0
        limits = app.http_limits
        self.streaming: bool = routed.stream_request_body
        self.body_limit = limits.maxObjectSize if self.streaming else limits.maxRequestBodySize
        self.start_line: tornado.httputil.RequestStartLine | None = None
        self.headers: tornado.httputil.HTTPHeaders | None = None

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        self.start_line, self.headers = start_line, headers
        limit = self.app.http_limits.maxHeaderSize
        size = header_bytes(headers)
        if size > limit:
            return self.refuse(
                StoreError(
                    "RequestHeaderSectionTooLarge",
                    f"the request's header fields take {size} bytes; at most {limit} are "
                    "accepted (http.maxHeaderSize)",
                )
            )
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.body_limit:
            return self.refuse(self.too_large(f"Content-Length is {int(length)} bytes"))
        return self.routed.headers_received(start_line, headers)  # type: ignore[no-any-return]

    def too_large(self, what: str) -> StoreError:
        setting = "http.maxObjectSize" if self.streaming else "http.maxRequestBodySize"
        return StoreError(
            "EntityTooLarge",
            f"{what}; this endpoint accepts at most {self.body_limit} bytes ({setting})",
            detail={"limit": self.body_limit},
        )

    def refuse(self, error: StoreError) -> Awaitable[None] | None:
        """Answer ``error`` in the routed handler's dialect; discard the rest of the body."""
        assert self.start_line is not None and self.headers is not None
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > UNLIMITED:
            # Discarded as it arrives until the answer is out and the connection closes:
            # Tornado must not refuse it again with a bare 400 of its own.
            self.request.connection.set_max_body_size(int(length))  # type: ignore[union-attr]
        refusing = self.app.get_handler_delegate(
            self.request,
            _refusing(self.routed.handler_class),
            {**self.routed.handler_kwargs, "refusal": error},
            self.routed.path_args,
            self.routed.path_kwargs,
        )
        self.refusal = refusing
        return refusing.headers_received(self.start_line, self.headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refusal is not None or self.discarding:
            return None
        self.received += len(chunk)
        if self.received > self.body_limit:
            error = self.too_large("the body is longer")
            if not self.streaming:
                return self.refuse(error)  # no handler has run yet
            self.discarding = True
            return self.routed.handler.refuse_body(error)  # type: ignore[no-any-return]
        return self.routed.data_received(chunk)  # type: ignore[no-any-return]

    def finish(self) -> None:
        (self.refusal or self.routed).finish()

    def on_connection_close(self) -> None:
        (self.refusal or self.routed).on_connection_close()


@functools.cache
def _refusing(handler_class: type[tornado.web.RequestHandler]) -> type[Any]:
    """``handler_class`` answering only its ``refusal`` (from its prepare, before anything
    else runs: no authentication, no body), in its own dialect."""

    def initialize(self: Any, refusal: StoreError, **kwargs: Any) -> None:
        handler_class.initialize(self, **kwargs)
        self.refusal = refusal

    async def prepare(self: Any) -> None:
        raise self.refusal

    def on_connection_close(self: Any) -> None:
        # Only the bookkeeping: the routed handler's own cleanup is of what its prepare set up.
        BaseHandler.on_connection_close(self)

    return tornado.web.stream_request_body(
        type(
            f"Refusing{handler_class.__name__}",
            (handler_class,),
            {
                "initialize": initialize,
                "prepare": prepare,
                "on_connection_close": on_connection_close,
            },
        )
    )
