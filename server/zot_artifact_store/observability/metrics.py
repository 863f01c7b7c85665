"""Prometheus metrics.

Each application has its own registry (several apps may live in one process in tests). With
several worker processes (``http.workers``) the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before it forks: every worker then writes its samples to files there, and ``/metrics`` on any
worker reports the sum over all of them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .. import __version__
from ..supervisor import MULTIPROC_ENV

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self.requests = Counter(
            "zas_http_requests",
            "HTTP requests served, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zas_http_request_duration_seconds",
            "Time from request start to response end, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "zas_http_request_bytes",
            "Request body bytes received, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.bytes_out = Counter(
            "zas_http_response_bytes",
            "Response body bytes sent, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "zas_http_requests_in_flight",
            "Requests being served now (summed over live worker processes).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.storage_ops = Counter(
            "zas_storage_operations",
            "Requests to the blob storage backend (object stores), by operation and outcome "
            "(ok, or the backend's error code).",
            ["backend", "operation", "outcome"],
            registry=self.registry,
        )
        self.storage_latency = Histogram(
            "zas_storage_operation_duration_seconds",
            "Time of each blob storage backend request, retries included.",
            ["backend", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.storage_bytes = Counter(
            "zas_storage_bytes",
            "Body bytes exchanged with the blob storage backend, by direction (sent, received).",
            ["backend", "direction"],
            registry=self.registry,
        )
        build = Gauge(
            "zas_build_info",
            "Build information (always 1).",
            ["version"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        build.labels(__version__).set(1)

    def observe(
        self, route: str, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if bytes_in:
            self.bytes_in.labels(route, method).inc(bytes_in)
        if bytes_out:
            self.bytes_out.labels(route, method).inc(bytes_out)

    def storage_operation(
        self, backend: str, operation: str, outcome: str, seconds: float, sent: int, got: int
    ) -> None:
        self.storage_ops.labels(backend, operation, outcome).inc()
        self.storage_latency.labels(backend, operation).observe(seconds)
        if sent:
            self.storage_bytes.labels(backend, "sent").inc(sent)
        if got:
            self.storage_bytes.labels(backend, "received").inc(got)

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)
