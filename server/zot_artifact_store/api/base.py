"""What every HTTP handler shares: request ids, authentication, error rendering, metrics.

Handlers parse the request, ask the Authorizer, call a service and render the result. They
never touch a store directly (DESIGN.md §2). Each API family subclasses :class:`BaseHandler`
and overrides :meth:`BaseHandler.render_error` with its own dialect.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import tornado.ioloop
import tornado.iostream
import tornado.web
from tornado.iostream import StreamClosedError

from .. import jsonbody
from ..auth.authn import AuthRequest
from ..auth.authz import denial
from ..auth.conditions import EXISTING_TAG_ACTIONS, EvalContext
from ..auth.principal import ANONYMOUS, Principal, RequestContext, current_principal
from ..auth.ratelimit import Presented
from ..connections import on_body_timeout
from ..errors import StoreError
from ..observability.logging import log_fields, request_id_var
from ..observability.tracing import redact_url
from ..services.artifacts import bucket_is_web
from ..services.space import insufficient_storage, out_of_space
from ..storage import StorageBackendError
from .content_safety import DOWNLOAD_CSP, WEB_CSP, attachment, is_active
from .forwarded import apply_trusted_proxies
from .httputil import ByteRange, check_preconditions

if TYPE_CHECKING:
    from ..app import AppContext
    from ..metadata import ObjectRecord
    from ..services.artifacts import PutSession

log = logging.getLogger("zot_artifact_store.api")
access_log = logging.getLogger("zot_artifact_store.access")
T = TypeVar("T")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Bodies from this size go out with os.sendfile where they can (send_object); a smaller one
# is read in one thread hop, which costs less than the headers' flush and the sendfile hop.
SENDFILE_MIN_BYTES = 1 << 20


class BaseHandler(tornado.web.RequestHandler):
    """Base for every handler. ``route`` is the route template used in metrics and logs."""

    ctx: AppContext
    route: str

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The methods this handler answers (HEAD wherever GET is)."""
        base = tornado.web.RequestHandler
        methods = [
            m for m in ("GET", "PUT", "POST", "PATCH", "DELETE")
            if getattr(cls, m.lower()) is not getattr(base, m.lower())
        ]  # fmt: skip
        if "GET" in methods or cls.head is not BaseHandler.head:
            methods.insert(1 if "GET" in methods else 0, "HEAD")
        return methods

    async def head(self, *args: str, **kwargs: str) -> None:
        """HEAD answers what GET would, without the body (Tornado drops it)."""
        if type(self).get is tornado.web.RequestHandler.get:
            raise tornado.web.HTTPError(405)
        result = self.get(*args, **kwargs)
        if result is not None:
            await result

    def initialize(self, ctx: AppContext, route: str) -> None:  # type: ignore[override]
        self.ctx = ctx
        self.route = route
        apply_trusted_proxies(self.request, ctx.config.http.trustedProxies)
        self.principal: Principal = ANONYMOUS
        self.bytes_in = 0
        self.bytes_out = 0
        self.verification: str | None = None  # a gate's verdict, for the access line
        self._started = time.monotonic()
        incoming = self.request.headers.get("X-Request-Id", "")
        self.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        self._rid_token = request_id_var.set(self.request_id)
        # Tornado sets default headers before initialize(); send_error() sets them again.
        self.set_header("X-Request-Id", self.request_id)
        ctx.in_flight_started()
        self._counted = True
        on_body_timeout(self.request.connection, self.body_too_slow)

    def set_default_headers(self) -> None:
        self.set_header("Server", "zot-artifact-store")
        # No browser guesses an active type (HTML, script) for what is declared otherwise.
        self.set_header("X-Content-Type-Options", "nosniff")
        rid = getattr(self, "request_id", None)
        if rid:
            self.set_header("X-Request-Id", rid)

    # ---- authentication and authorization ------------------------------------------------
    def auth_request(self) -> AuthRequest:
        req = self.request
        return AuthRequest(
            method=req.method or "GET",
            path=req.path,
            headers=req.headers,
            query={
                k: [v.decode("utf-8", "replace") for v in vs]
                for k, vs in req.query_arguments.items()
            },
            remote_ip=req.remote_ip or "",
        )

    async def authenticate(self) -> Principal:
        await self.screen_credentials()
        try:
            self.principal = await self.ctx.authentication.authenticate(self.auth_request())
        except StoreError as exc:
            await self.credentials_failed(exc)
            raise
        current_principal.set(self.principal)  # this request's task only
        return self.principal

    @property
    def presented(self) -> Presented:
        """The credentials this request presents (header, query or both)."""
        return Presented.of(self.request.headers, self.auth_request().query)

    async def screen_credentials(self) -> None:
        """Before any secret is checked (once a request): one credential per request; 429 while
        this source failed too often (with this identity, or at all); a delay while the
        identity is under attack from everywhere (auth/ratelimit.py)."""
        if getattr(self, "_screened", False) or not self.ctx.authentication.enabled:
            return
        self._screened = True
        presented = self.presented
        if not presented.any:
            return
        if presented.both:
            raise StoreError(
                "InvalidArgument",
                "Only one auth mechanism allowed: a signed URL's query parameters or the "
                "Authorization header, not both",
            )
        await self._throttle(presented)

    async def _throttle(self, presented: Presented) -> None:
        verdict = await self.ctx.lockout.check(presented, self.request.remote_ip or "")
        if verdict.retry_after:
            self._audited = True  # not a new failure: the attempt was not even made
            self.audit("authenticate", "", False, "too many failed authentications")
            raise StoreError(
                "TooManyRequests",
                f"too many failed authentications from here; retry in {verdict.retry_after} s",
                headers={"Retry-After": str(verdict.retry_after)},
            )
        if verdict.delay:
            await asyncio.sleep(verdict.delay)

    async def check_secret(self, identity: str, verify: Callable[[], Awaitable[T]]) -> T:
        """Run ``verify`` for a secret checked outside the authenticator chain (an event
        source's URL token or webhook signature) under the same throttling: 429 or a delay
        first, and a refusal (401/403) counted as a failed attempt against ``identity``."""
        presented = Presented(None, identity)
        await self._throttle(presented)
        try:
            return await verify()
        except StoreError as exc:
            if exc.status in (401, 403):
                await self.ctx.lockout.failed(presented, self.request.remote_ip or "")
            raise

    async def credentials_failed(self, error: StoreError) -> None:
        """Count a refusal of the presented credentials (401/403) as a failed attempt."""
        if error.status not in (401, 403) or getattr(self, "_failure_counted", False):
            return
        presented = self.presented
        if presented.any and self.ctx.authentication.enabled:
            self._failure_counted = True
            await self.ctx.lockout.failed(presented, self.request.remote_ip or "")

    async def authorize(self, action: str, resource: str) -> None:
        """Ask the one Authorizer; audit its answer; raise 401/403 when it says no."""
        refusal = await self.refusal(action, resource)
        if refusal is not None:
            raise refusal

    async def refusal(self, action: str, resource: str) -> StoreError | None:
        """Ask the one Authorizer and audit its answer, as :meth:`authorize`; the 401/403 it
        would raise, or None when allowed (for requests that decide item by item)."""
        decision = await self.ctx.authorizer.decide(
            self.principal, action, resource, self.eval_context(action)
        )
        self.audit(action, resource, decision.allowed, decision.reason)
        return None if decision.allowed else denial(self.principal, action, resource)

    def eval_context(self, action: str) -> EvalContext:
        """What policy conditions may test about this request, for ``action``: the source
        address, the transport (``aws:SecureTransport``), the request's own condition keys
        (:meth:`condition_values`) and, for the actions AWS gives them to, the tags of the
        object acted on (``s3:ExistingObjectTag/<key>``, read only when a statement asks)."""
        return EvalContext(
            source_ip=self.request.remote_ip or "",
            secure_transport=self.request.protocol == "https",
            values=self.condition_values(action),
            existing_tags=self._existing_tags if action in EXISTING_TAG_ACTIONS else None,
            version_id=self.acted_version(),
        )

    def acted_version(self) -> str | None:
        """The version of the object this request acts on (None: the current one)."""
        return None

    def condition_values(self, action: str) -> dict[str, str]:
        """The request's own condition keys (``s3:prefix`` …) for ``action``; none by default."""
        return {}

    async def _existing_tags(self, resource: str) -> dict[str, str] | None:
        bucket, _, key = resource.partition("/")
        try:
            return (await self.ctx.artifacts.head_object(bucket, key, self.acted_version())).tags
        except StoreError:
            return None  # no such object: the key is absent

    def audit(
        self,
        action: str,
        resource: str,
        allowed: bool,
        reason: str = "",
        *,
        served: bool | None = None,
        **detail: str,
    ) -> None:
        """An audit record of this request; ``served`` as for :meth:`AuditLog.record`."""
        self._audited = True
        self.ctx.audit.record(
            self.principal,
            action,
            resource,
            "allow" if allowed else "deny",
            reason=reason,
            request_id=self.request_id,
            source_ip=self.request.remote_ip or "",
            detail=detail or None,
            served=served,
        )

    def base_url(self) -> str:
        """``scheme://host[:port]`` clients reach this server at (``http.externalUrl`` behind a
        proxy, else the request's)."""
        external = self.ctx.config.http.externalUrl
        return (
            external.rstrip("/") if external else f"{self.request.protocol}://{self.request.host}"
        )

    @property
    def request_context(self) -> RequestContext:
        return RequestContext(self.principal, self.request_id, self.request.remote_ip or "")

    # ---- errors ---------------------------------------------------------------------------
    def render_error(self, error: StoreError) -> None:
        """Write ``error`` in this API's dialect. Default: RFC 9457 problem JSON."""
        self.set_header("Content-Type", "application/problem+json")
        self.finish(json.dumps(error.problem(self.request_id)))

    def challenge_headers(self, error: StoreError) -> dict[str, str]:
        """Headers that accompany a 401 (``WWW-Authenticate``)."""
        return {"WWW-Authenticate": f'Basic realm="{self.ctx.config.auth.realm}", charset="UTF-8"'}

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        exc = exc_info[1] if exc_info else None
        error = self._as_store_error(status_code, exc)
        if error.status in (401, 403) and not getattr(self, "_audited", False):
            # Refused before any authorization decision: the credentials themselves failed.
            self.audit("authenticate", "", False, f"{error.code}: {error.message}")
        self.set_status(error.status)
        if error.status == 405 and "Allow" not in error.headers:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        for name, value in error.headers.items():
            self.set_header(name, value)
        if error.status == 401:
            for name, value in self.challenge_headers(error).items():
                self.set_header(name, value)
        # HEAD too: the error's headers (its dialect's Content-Type, Content-Length) as GET
        # would answer; Tornado sends no body for HEAD.
        self.render_error(error)

    def _as_store_error(self, status_code: int, exc: BaseException | None) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, tornado.web.HTTPError):
            code = {
                400: "InvalidRequest",
                401: "Unauthenticated",
                403: "AccessDenied",
                404: "NotFound",
                405: "MethodNotAllowed",
                413: "EntityTooLarge",
                429: "TooManyRequests",
                503: "ServiceUnavailable",
            }.get(exc.status_code, "InternalError" if exc.status_code >= 500 else "InvalidRequest")
            return StoreError(code, exc.log_message or None)
        if status_code == 405:
            return StoreError("MethodNotAllowed", f"{self.request.method} is not allowed here")
        if out_of_space(exc):
            return insufficient_storage("the storage ran out of space while writing")
        if isinstance(exc, StorageBackendError) and exc.retryable:
            return StoreError(
                "ServiceUnavailable",
                "the blob storage backend is unavailable; try again shortly",
                headers={"Retry-After": "1"},
            )
        return StoreError("InternalError", "internal error; see the server log for the request id")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Expected refusals (NotImplemented, NoSuchKey, AccessDenied, ...) are the client's
        answer, logged at info without a traceback; only real faults log as errors."""
        if isinstance(value, StoreError) and value.code != "InternalError":
            log.info(
                "refused %s %s: %s %s: %s",
                self.request.method,
                self.route,
                value.status,
                value.code,
                value.message,
            )
            return
        if out_of_space(value):
            log.warning(
                "storage full serving %s %s: %s (answered InsufficientStorage)",
                self.request.method,
                self.route,
                value,
            )
            return
        if isinstance(value, StorageBackendError) and value.retryable:
            log.warning(
                "storage unavailable serving %s %s: %s", self.request.method, self.route, value
            )
            return
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            log.info("refused %s %s: %s", self.request.method, self.route, value)
            return
        log.error(
            "unhandled error serving %s %s",
            self.request.method,
            self.route,
            exc_info=(typ, value, tb),
        )

    # ---- bodies ---------------------------------------------------------------------------
    def json_body(self, *, required: bool = False) -> Any:
        body = self.request.body
        if not body:
            if required:
                raise StoreError("MalformedJSON", "a JSON request body is required")
            return None
        try:
            return jsonbody.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError("MalformedJSON", f"request body is not valid JSON: {exc}") from None

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write(self, chunk: str | bytes | dict[str, Any]) -> None:
        if isinstance(chunk, bytes | memoryview):
            self.bytes_out += len(chunk)
        elif isinstance(chunk, str):
            self.bytes_out += len(chunk.encode("utf-8"))
        super().write(chunk)

    async def send_object(
        self, record: ObjectRecord, rng: ByteRange | None, *, send_body: bool
    ) -> None:
        """Send an object's bytes (all, or ``rng`` as a 206) with Content-Length, streaming;
        for HEAD only the headers. A bucket's verification gate runs first: in audit mode the
        result is a header, in enforce mode a failing object is refused (403)."""
        await self.check_gate(record)
        await self.protect_download(record)
        start, end = (rng.start, rng.end) if rng is not None else (0, record.size)
        if rng is not None:
            self.set_status(206)
            self.set_header("Content-Range", rng.content_range(record.size))
        self.set_header("Content-Length", str(end - start))
        if not send_body:
            self.finish()
            return
        if end - start >= SENDFILE_MIN_BYTES:
            send = functools.partial(self.ctx.artifacts.send_object_to_socket, record)
            start += await self.send_from_file(send, start, end)
        if start < end:
            await self.stream_out(self.ctx.artifacts.read_object(record, start, end))
        if not self._finished:
            self.finish()

    async def send_from_file(
        self, send: Callable[[int, int, int], Awaitable[int]], start: int, end: int
    ) -> int:
        """A large body on a plain-HTTP connection: the headers, then as much of bytes
        ``[start, end)`` as goes quickly straight from the blob's file to the socket
        (``send(socket_fd, start, end)``: ``os.sendfile``, no copy through the process; issue
        23). Returns the bytes sent; the caller streams the rest. Nothing is sent this way over
        TLS (the bytes must pass through the SSL layer), or when the storage backend has no
        files (``send`` returns 0)."""
        conn = self.request.connection
        stream = getattr(conn, "stream", None)
        if (
            not isinstance(stream, tornado.iostream.IOStream)
            or isinstance(stream, tornado.iostream.SSLIOStream)
            or stream.socket is None
            or not hasattr(conn, "_expected_content_remaining")
        ):
            return 0
        try:
            await self.flush()  # the headers are in the socket, nothing of ours is buffered
            # Tornado counts the body against Content-Length (set by the headers just sent).
            if not isinstance(conn._expected_content_remaining, int):  # type: ignore[attr-defined]
                return 0
            sent = await send(stream.socket.fileno(), start, end)
        except (StreamClosedError, ConnectionError):
            stream.close()  # the client went away: nothing more to send
            return end - start
        # Bytes that bypassed Tornado: its Content-Length bookkeeping must count them.
        conn._expected_content_remaining -= sent  # type: ignore[attr-defined]
        self.bytes_out += sent
        return sent

    async def protect_download(self, record: ObjectRecord) -> None:
        """A browser never runs an object as a page of the store's origin (content_safety.py):
        a sandbox always; an active type as an attachment unless its bucket is ``web``."""
        content_type = self._headers.get("Content-Type", "")
        policy = DOWNLOAD_CSP
        if is_active(content_type):
            bucket = await self.ctx.artifacts.get_bucket(record.bucket)
            if bucket_is_web(bucket):
                policy = WEB_CSP
            else:
                disposition = self._headers.get("Content-Disposition")
                self.set_header("Content-Disposition", attachment(disposition))
        self.set_header("Content-Security-Policy", policy)

    async def check_gate(self, record: ObjectRecord) -> None:
        outcome = await self.ctx.supplychain.gate(record.bucket, record.digest)
        await self.apply_gate(outcome, f"{record.bucket}/{record.key}", record.digest)

    async def apply_gate(
        self, outcome: tuple[dict[str, Any], bool, str] | None, resource: str, digest: str
    ) -> None:
        """A verification gate's outcome for a download: audited (a ``supplychain:gate``
        record), told in ``X-Verification`` headers and the request's access line, and refused
        (VerificationFailed) in enforce mode. A verdict that lets the download through (passed,
        or failed in audit mode) is a read: its record goes to the store and the access line
        carries it, as for every allowed read; a refusal is also an audit log line (issue 23:
        the second JSON line per download was most of a gate's cost)."""
        if outcome is None:
            return
        gate, passed, reasons = outcome
        served = passed or gate["mode"] != "enforce"
        self.audit(
            "supplychain:gate", resource, passed, reasons or "verified", served=served,
            policy=gate["name"], mode=gate["mode"], subject_digest=digest,
        )  # fmt: skip
        policy = f"{gate['name']} ({gate['mode']})"
        self.verification = f"{'passed' if passed else 'failed'}: {policy}"
        self.set_header("X-Verification", "passed" if passed else "failed")
        self.set_header("X-Verification-Policy", policy)
        await self.ctx.supplychain.enforce_gate(outcome, resource, digest)

    # The code for ``If-Match`` on a missing object: HTTP says 412; S3 says NoSuchKey.
    missing_object_code = "PreconditionFailed"

    def create_only(self) -> bool:
        """``If-None-Match: *``: the write must not replace an object. Checked before the body
        (:meth:`check_write_preconditions`) and again, atomically, when it is published."""
        return self.request.headers.get("If-None-Match", "").strip() == "*"

    async def check_write_preconditions(self, bucket: str, key: str) -> None:
        headers = self.request.headers
        if "If-Match" not in headers and "If-None-Match" not in headers:
            return
        try:
            current = await self.ctx.artifacts.head_object(bucket, key)
        except StoreError as exc:
            if exc.code != "NoSuchKey":
                raise
            if "If-Match" in headers:
                raise StoreError(self.missing_object_code, "the object does not exist") from None
            return
        check_preconditions(headers, current.etag, current.updated_at, is_read=False)

    async def stream_out(self, chunks: Any) -> None:
        """Send an async iterator of byte chunks with back-pressure; stop quietly if the
        client goes away."""
        try:
            async for chunk in chunks:
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            return
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Any:
        # Answering before the request body has arrived (an error found from the headers):
        # Tornado then closes the connection rather than read the rest, so say so, or a client
        # would send its next request on a connection that is about to close.
        if not self._headers_written and not getattr(
            self.request.connection, "_read_finished", True
        ):
            self.set_header("Connection", "close")
        return super().finish(chunk)

    async def refuse_body(self, exc: Exception) -> None:
        """Answer an error raised while a streamed body comes in (a limit broken,
        api/limits.py; a refusal; the disk filling up) at once, in the API's dialect; the
        connection then closes (Tornado would otherwise drop it without a response). Anything
        else is re-raised."""
        if not isinstance(exc, StoreError) and not out_of_space(exc):
            raise exc
        if not isinstance(exc, StoreError):
            self.log_exception(type(exc), exc, exc.__traceback__)
        if self._finished:  # answered meanwhile (the guard's timeout and an error at once)
            return
        status = exc.status if isinstance(exc, StoreError) else 507
        self.send_error(status, exc_info=(type(exc), exc, exc.__traceback__))

    def body_too_slow(self, message: str) -> None:
        """The connection guard's verdict (``http.minBodyRate``): answer ``RequestTimeout``
        in this API's dialect, aborting the upload; the connection then closes."""
        if not self._finished:
            error = StoreError("RequestTimeout", message)
            tornado.ioloop.IOLoop.current().add_callback(self.refuse_body, error)

    # ---- bookkeeping ----------------------------------------------------------------------
    def on_finish(self) -> None:
        self._done()

    def on_connection_close(self) -> None:
        self._done()

    def _done(self) -> None:
        if not getattr(self, "_counted", False):
            return
        self._counted = False
        self.ctx.in_flight_finished()
        elapsed = time.monotonic() - self._started
        status = self.get_status()
        if self.request.connection is not None and not self._finished:
            status = 499  # client closed the connection before the response was complete
        self.ctx.metrics.observe(
            self.route, self.request.method or "", status, elapsed, self.bytes_in, self.bytes_out
        )
        fields = {
            "method": self.request.method,
            "path": redact_url(self.request.uri or ""),
            "route": self.route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "remote_ip": self.request.remote_ip,
            "principal": self.principal.id,
            "request_id": self.request_id,
        }
        if self.verification is not None:
            fields["verification"] = self.verification
        log_fields(access_log, logging.INFO, "request", fields)
        try:
            request_id_var.reset(self._rid_token)
        except ValueError:  # reset from another context: harmless
            request_id_var.set(None)


Route = tuple[str, type[BaseHandler], dict[str, Any]]


def route(ctx: Any, pattern: str, handler: type[BaseHandler], template: str) -> Route:
    """A Tornado route; ``template`` names it in metrics and logs (``/v1/buckets/{bucket}``)."""
    return (pattern, handler, {"ctx": ctx, "route": template})


class NotFoundHandler(BaseHandler):
    """Anything no route claims: a problem JSON 404."""

    async def prepare(self) -> None:
        raise StoreError("NotFound", f"no such endpoint: {self.request.path}")


class UploadHandler(BaseHandler):
    """A handler whose PUT body streams into ``self.session`` (a :class:`PutSession`): a
    client that goes away mid-body aborts it, and conditional writes are checked before the
    body is read."""

    session: PutSession | None = None

    def on_connection_close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            tornado.ioloop.IOLoop.current().add_callback(session.abort)
        super().on_connection_close()

    async def receive(self, chunk: bytes) -> None:
        """Handle one piece of the request body (subclasses)."""
        raise NotImplementedError

    async def data_received(self, chunk: bytes) -> None:
        """Feed :meth:`receive`; an error in the body (a bad chunk signature, too many bytes,
        a full disk) aborts the upload and is answered at once (:meth:`refuse_body`)."""
        if self._finished:
            return
        self.bytes_in += len(chunk)
        try:
            await self.receive(chunk)
        except Exception as exc:
            await self.refuse_body(exc)

    async def refuse_body(self, exc: Exception) -> None:
        if not isinstance(exc, StoreError) and not out_of_space(exc):
            raise exc
        if self.session is not None:
            session, self.session = self.session, None
            await session.abort()
        await super().refuse_body(exc)
