"""Instrumentation of the stores and of authentication, wired in once by ``app.py``.

:func:`instrument_store` puts a thin proxy in front of the metadata store or the blob store:
every call of their interface becomes a span inside the request (``metadata.get_object``,
``storage.read``) carrying the bucket, repository and digest it names, and a sample of
``zas_metadata_operation*`` or, for the filesystem, ``zas_storage_operation*`` (an object store
backend reports its own requests there). :func:`instrument_auth` does the same for the
authenticator chain and the authorizer (``zas_authentications``,
``zas_authorization_denials``). The services' own domain metrics (signing, verification,
gates, GC, events) are recorded where they happen.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from ..errors import StoreError
from .metrics import Metrics
from .tracing import ATTRIBUTES, span, tracing_active

# (operation, outcome, seconds) of one store call.
Recorder = Callable[[str, str, float], None]
# An exception as an outcome label (a small fixed set per store).
Classifier = Callable[[BaseException], str]


def _attributes(target: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict:
    """Span attributes from a call's arguments: parameters named bucket, key, repo, digest…,
    or records (ObjectRecord, Manifest, Evidence) carrying such fields."""
    try:
        bound = _signature(type(target), name).bind(target, *args, **kwargs)
    except (TypeError, ValueError):
        return {}
    found: dict[str, Any] = {}
    for param, value in bound.arguments.items():
        if isinstance(value, str) and param in ATTRIBUTES:
            found[ATTRIBUTES[param]] = value
        elif hasattr(value, "__dataclass_fields__"):
            for field, attribute in ATTRIBUTES.items():
                inner = getattr(value, field, None)
                if isinstance(inner, str) and inner:
                    found.setdefault(attribute, inner)
    return found


@functools.cache
def _signature(cls: type, name: str) -> inspect.Signature:
    return inspect.signature(getattr(cls, name))


class InstrumentedStore:
    """Forwards everything to ``target``; its public methods are timed, traced and recorded.
    A method returning an async iterator (``read``, ``iter_blobs``) is measured over the
    iteration; ``writer()``'s writer is wrapped too (its ``commit`` and ``abort``)."""

    # Per-chunk calls: too frequent to trace one by one.
    UNTRACED = frozenset({"write", "describe", "set_observer", "blob_path", "disk_usage"})

    def __init__(
        self,
        target: Any,
        component: str,
        record: Recorder | None,
        classify: Classifier,
        prefix: str = "",
    ) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_component", component)
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_classify", classify)
        object.__setattr__(self, "_prefix", prefix)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or name in self.UNTRACED or not callable(value):
            return value
        if inspect.iscoroutinefunction(value):
            wrapped: Any = self._coroutine(name, value)
        else:
            wrapped = self._call(name, value)
        object.__setattr__(self, name, wrapped)  # found directly from now on
        return wrapped

    def _done(self, operation: str, outcome: str, started: float) -> None:
        if self._record is not None:
            self._record(operation, outcome, time.monotonic() - started)

    def _span_attributes(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict:
        return _attributes(self._target, name, args, kwargs) if tracing_active() else {}

    def _coroutine(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        operation = self._prefix + name

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            attrs = self._span_attributes(name, args, kwargs)
            with span(f"{self._component}.{operation}", attrs):
                try:
                    result = await method(*args, **kwargs)
                except BaseException as exc:
                    self._done(operation, self._classify(exc), started)
                    raise
            self._done(operation, "ok", started)
            if name == "writer":
                return InstrumentedStore(
                    result, self._component, self._record, self._classify, "writer_"
                )
            return result

        return call

    def _call(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if hasattr(result, "__anext__"):
                attrs = self._span_attributes(name, args, kwargs)
                return self._iterate(self._prefix + name, result, attrs)
            return result

        return call

    async def _iterate(
        self, operation: str, inner: AsyncIterator[Any], attrs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        started = time.monotonic()
        outcome = "ok"
        try:
            with span(f"{self._component}.{operation}", attrs):
                async for item in inner:
                    yield item
        except BaseException as exc:
            outcome = self._classify(exc)
            raise
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()
            self._done(operation, outcome, started)


def _outcome(exc: BaseException) -> str:
    """not_found, conflict, digest_mismatch or error: what went wrong, in a few words."""
    name = type(exc).__name__
    if name in ("NotFoundError", "BlobNotFoundError", "UploadNotFoundError"):
        return "not_found"
    if name == "AlreadyExistsError":
        return "conflict"
    if name == "DigestMismatchError":
        return "digest_mismatch"
    if isinstance(exc, StoreError):
        return "rejected"
    return "error"


def instrument_store(store: Any, component: str, backend: str, metrics: Metrics) -> Any:
    """The proxy of a metadata store (``component`` "metadata") or a blob store ("storage")."""
    record: Recorder | None
    if component == "metadata":

        def record(operation: str, outcome: str, seconds: float) -> None:
            metrics.metadata_operation(backend, operation, outcome, seconds)

    elif backend == "filesystem":

        def record(operation: str, outcome: str, seconds: float) -> None:
            metrics.storage_operation(backend, operation, outcome, seconds, 0, 0)

    else:
        record = None  # the object store client reports each of its requests itself
    return InstrumentedStore(store, component, record, _outcome)


# ---- authentication and authorization ---------------------------------------------------------
def credential_method(headers: Mapping[str, str], query: Mapping[str, Sequence[Any]]) -> str:
    """How a request presents credentials: basic, bearer, sigv4, sigv2, presigned or none."""
    scheme = (headers.get("Authorization") or "").partition(" ")[0].lower()
    if scheme in ("basic", "bearer"):
        return scheme
    if scheme == "aws4-hmac-sha256" or "X-Amz-Credential" in query:
        return "sigv4"
    if scheme == "aws" or "AWSAccessKeyId" in query:
        return "sigv2"
    if scheme:
        return "other"
    return "presigned" if any(k.lower().endswith("signature") for k in query) else "none"


def instrument_auth(authentication: Any, authorizer: Any, metrics: Metrics) -> None:
    """Count and trace every authentication (the chain, and the S3 API's direct SigV4 check)
    and every refusing authorization decision."""
    chain = authentication.authenticate

    async def authenticate(request: Any) -> Any:
        if not authentication.enabled:
            return await chain(request)
        method = credential_method(request.headers, request.query)
        started = time.monotonic()
        with span("auth.authenticate", {"zas.auth.method": method}) as current:
            try:
                principal = await chain(request)
            except StoreError:
                metrics.authentications.labels(method, "failed").inc()
                raise
            finally:
                metrics.authentication_latency.labels(method).observe(time.monotonic() - started)
            if current is not None:
                current.set_attribute("zas.auth.principal_source", principal.source)
        result = "anonymous" if principal.is_anonymous else "ok"
        metrics.authentications.labels(method, result).inc()
        return principal

    authentication.authenticate = authenticate
    authentication.sigv4 = _SigV4(authentication.sigv4, metrics)

    decide = authorizer.decide

    async def decide_counted(principal: Any, action: str, resource: str, *args: Any) -> Any:
        decision = await decide(principal, action, resource, *args)
        if not decision.allowed:
            metrics.authorization_denials.labels(action).inc()
        return decision

    authorizer.decide = decide_counted


class _SigV4:
    """The SigV4 authenticator the S3 API calls directly, counted like the chain."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def authenticate(self, request: Any) -> Any:
        return await self.inner.authenticate(request)

    async def verify(self, request: Any) -> Any:
        started = time.monotonic()
        with span("auth.authenticate", {"zas.auth.method": "sigv4"}):
            try:
                result = await self.inner.verify(request)
            except StoreError:
                self.metrics.authentications.labels("sigv4", "failed").inc()
                raise
        if result is not None:  # None: no SigV4 credentials; the chain looks next
            self.metrics.authentications.labels("sigv4", "ok").inc()
            self.metrics.authentication_latency.labels("sigv4").observe(time.monotonic() - started)
        return result
