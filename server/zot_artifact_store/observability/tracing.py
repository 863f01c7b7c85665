"""OpenTelemetry tracing through opentelemetry-instrumentation-tornado, off unless configured.

The instrumentation records request URLs; presigned S3 URLs carry ``X-Amz-Signature`` and
credentials in the query, so a request hook redacts them before export (DESIGN.md §10).
"""

from __future__ import annotations

import logging
import re
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
