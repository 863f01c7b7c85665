"""Prometheus metrics. Each application has its own registry (several apps may live in one
process in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

from .. import __version__

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
            "Requests being served now.",
            registry=self.registry,
        )
        info = Info("zas_build", "Build information.", registry=self.registry)
        info.info({"version": __version__})

    def observe(
        self, route: str, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if bytes_in:
            self.bytes_in.labels(route, method).inc(bytes_in)
        if bytes_out:
            self.bytes_out.labels(route, method).inc(bytes_out)

    def render(self) -> bytes:
        return generate_latest(self.registry)
