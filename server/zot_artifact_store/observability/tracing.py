"""OpenTelemetry tracing through opentelemetry-instrumentation-tornado, off unless configured.

The instrumentation records request URLs; presigned S3 URLs carry ``X-Amz-Signature`` and
credentials in the query, so a request hook redacts them before export (DESIGN.md §10).

Inside a request, :func:`span` opens child spans (storage, metadata, authentication,
verification, signing). Outside one (background garbage collection, the audit writer) and with
tracing off it costs one flag test and opens nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from ..config import TracingExtension

log = logging.getLogger(__name__)
_SECRET_QUERY_RE = re.compile(
    r"(?i)((?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|token|access_token)"
    r"=)[^&]*"
)
_URL_ATTRIBUTES = ("http.target", "http.url", "url.query", "url.full")
_instrumented = False


def redact_url(value: str) -> str:
    return _SECRET_QUERY_RE.sub(r"\1REDACTED", value)


def _request_hook(span: Any, handler: Any) -> None:
    if span is None or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, redact_url(value))


# Span attribute names (OpenTelemetry's own where one exists). Values are names and digests,
# never credentials.
ATTRIBUTES = {
    "bucket": "zas.bucket",
    "key": "zas.key",
    "repo": "zas.repository",
    "repository": "zas.repository",
    "digest": "zas.digest",
    "subject": "zas.subject_digest",
}


# What span() gives when nothing records: one shared, reusable no-op context.
_NO_SPAN = contextlib.nullcontext()


def span(
    name: str, attributes: dict[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current request's span; yields it (None when nothing records).
    An exception marks the span failed and propagates. With tracing off this costs one check
    (it runs around every store call)."""
    if not _instrumented:
        return _NO_SPAN
    return _recording_span(name, attributes)


@contextlib.contextmanager
def _recording_span(name: str, attributes: dict[str, Any] | None) -> Iterator[Any]:
    from opentelemetry import trace

    if not trace.get_current_span().is_recording():
        yield None
        return
    tracer = trace.get_tracer("zot_artifact_store")
    with tracer.start_as_current_span(name, attributes=attributes or None) as current:
        yield current


def tracing_active() -> bool:
    """True inside a request whose span records (so attributes are worth computing)."""
    if not _instrumented:
        return False
    from opentelemetry import trace

    return bool(trace.get_current_span().is_recording())


def setup_tracing(config: TracingExtension) -> bool:
    """Install the tracer provider and instrument Tornado; True when tracing is on."""
    global _instrumented
    if not config.enable or _instrumented:
        return _instrumented
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.tornado import TornadoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    provider = TracerProvider(
        resource=Resource.create({"service.name": config.serviceName}),
        sampler=ParentBasedTraceIdRatio(config.sampleRatio),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint)))
    trace.set_tracer_provider(provider)
    TornadoInstrumentor().instrument(tracer_provider=provider, server_request_hook=_request_hook)
    _instrumented = True
    log.info("tracing enabled", extra={"endpoint": config.endpoint})
    return True


def shutdown_tracing() -> None:
    if not _instrumented:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()
