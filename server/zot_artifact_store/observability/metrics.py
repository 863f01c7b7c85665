"""Prometheus metrics.

Each application has its own registry (several apps may live in one process in tests). With
several worker processes (``http.workers``) the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before it forks: every worker then writes its samples to files there, and ``/metrics`` on any
worker reports the sum over all of them (prometheus-client's multiprocess mode). Gauges that
describe shared state (open upload sessions, free space) are not kept per process: the worker
answering ``/metrics`` measures them when it is scraped (:meth:`Metrics.render`'s ``extra``).

Every label has a bounded set of values: route templates, API families, operation names of the
store interfaces, action names, outcomes. Never a bucket, key, digest or principal.
docs/operations.md lists every metric.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .. import __version__
from ..connections import CUT_REASONS
from ..supervisor import MULTIPROC_ENV

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)

# Which requests carry content in (uploads) or out (downloads), by route template and method:
# the API family and the direction. Everything else is neither.
TRANSFERS: dict[tuple[str, str], tuple[str, str]] = {
    ("s3:/{bucket}/{key}", "PUT"): ("s3", "upload"),
    ("s3:/{bucket}/{key}", "GET"): ("s3", "download"),
    ("/v2/{name}/blobs/uploads/", "POST"): ("oci", "upload"),
    ("/v2/{name}/blobs/uploads/{id}", "PATCH"): ("oci", "upload"),
    ("/v2/{name}/blobs/uploads/{id}", "PUT"): ("oci", "upload"),
    ("/v2/{name}/manifests/{reference}", "PUT"): ("oci", "upload"),
    ("/v2/{name}/blobs/{digest}", "GET"): ("oci", "download"),
    ("/v2/{name}/manifests/{reference}", "GET"): ("oci", "download"),
    ("/v1/buckets/{bucket}/objects/{key}", "PUT"): ("v1", "upload"),
    ("/v1/buckets/{bucket}/objects/{key}", "POST"): ("v1", "upload"),
    ("/v1/buckets/{bucket}/uploads/{upload_id}/parts/{part_number}", "PUT"): ("v1", "upload"),
    ("/v1/buckets/{bucket}/objects/{key}", "GET"): ("v1", "download"),
}


def result_of(status: int) -> str:
    """A response status as a result label: ok, client_error, server_error, aborted."""
    if status == 499:
        return "aborted"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


class Metrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
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
        self._define_operational()
        self._initialise()
        build = Gauge(
            "zas_build_info",
            "Build information (always 1).",
            ["version"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        build.labels(__version__).set(1)

    def _counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(name, doc, list(labels), registry=self.registry)

    def _histogram(
        self, name: str, doc: str, labels: Iterable[str] = (), buckets: tuple[float, ...] = ()
    ) -> Histogram:
        return Histogram(
            name, doc, list(labels), buckets=buckets or LATENCY_BUCKETS, registry=self.registry
        )

    def _define_operational(self) -> None:
        """What the store does, beyond HTTP (issue 20): transfers, supply chain, identity,
        garbage collection, the metadata store, events."""
        c, h = self._counter, self._histogram
        self.transfers = {
            "upload": c(
                "zas_uploads",
                "Requests that send content (S3 PutObject/UploadPart, OCI blob and manifest "
                "uploads, /v1 object and part uploads), by API (s3, oci, v1) and result.",
                ["api", "result"],
            ),
            "download": c(
                "zas_downloads",
                "Requests that fetch content (S3 GetObject, OCI blob and manifest pulls, /v1 "
                "object downloads), by API and result.",
                ["api", "result"],
            ),
        }
        self.transfer_bytes = {
            "upload": c("zas_upload_bytes", "Content bytes received by uploads, by API.", ["api"]),
            "download": c(
                "zas_download_bytes", "Content bytes sent by downloads, by API.", ["api"]
            ),
        }
        self.signatures = c(
            "zas_signing_operations",
            "Server-side signatures (POST /v1/sign, verification summaries), by kind "
            "(signature, attestation, vsa) and result (ok, error).",
            ["kind", "result"],
        )
        self.signing_latency = h(
            "zas_signing_duration_seconds", "Time to sign and store a signature.", ["kind"]
        )
        self.verifications = c(
            "zas_verifications",
            "Policy verifications of a subject (POST /v1/verify and verification gates), by "
            "result (passed, failed, error).",
            ["result"],
        )
        self.verification_latency = h(
            "zas_verification_duration_seconds", "Time to verify a subject against a policy."
        )
        self.verification_rules = c(
            "zas_verification_rules",
            "Rules evaluated by verifications, by kind (key, identity, threshold, sbom, "
            "attestation) and result (passed, failed).",
            ["kind", "result"],
        )
        self.gate_decisions = c(
            "zas_gate_decisions",
            "Verification gate decisions on downloads and pulls, by target (bucket, "
            "repository), mode (audit, enforce) and decision (pass, fail; a fail in enforce "
            "mode is refused).",
            ["target", "mode", "decision"],
        )
        self.authentications = c(
            "zas_authentications",
            "Authentications, by the credential presented (basic, bearer, sigv4, sigv2, "
            "presigned, none) and result (ok, failed, anonymous).",
            ["method", "result"],
        )
        self.authentication_latency = h(
            "zas_authentication_duration_seconds",
            "Time to authenticate a request (JWKS fetches, key lookups).",
            ["method"],
        )
        self.authorization_denials = c(
            "zas_authorization_denials",
            "Authorization decisions that refused, by action (s3:GetObject, oci:push, ...).",
            ["action"],
        )
        self.audit_write_failures = c(
            "zas_audit_write_failures",
            "Failed attempts to write a batch of audit records to the metadata store (they "
            "are kept and retried).",
        )
        self.gc_runs = c(
            "zas_gc_runs", "Garbage collections, by result (ok, error, dry_run).", ["result"]
        )
        self.gc_removed_blobs = c("zas_gc_removed_blobs", "Blobs garbage collection removed.")
        self.gc_reclaimed_bytes = c(
            "zas_gc_reclaimed_bytes", "Bytes garbage collection freed by removing blobs."
        )
        self.gc_latency = h(
            "zas_gc_duration_seconds",
            "Time of a garbage collection.",
            buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
        )
        self.gc_last_success = Gauge(
            "zas_gc_last_success_timestamp_seconds",
            "When the last garbage collection finished successfully (Unix time).",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.metadata_ops = c(
            "zas_metadata_operations",
            "Metadata store operations, by backend (sqlite, mongodb), operation and outcome "
            "(ok, not_found, conflict, error).",
            ["backend", "operation", "outcome"],
        )
        self.metadata_latency = h(
            "zas_metadata_operation_duration_seconds",
            "Time of each metadata store operation.",
            ["backend", "operation"],
            STORE_BUCKETS,
        )
        self.connections_cut = c(
            "zas_connections_cut",
            "Connections the server closed for its limits, by reason: idle (http.idleTimeout), "
            "header_timeout (http.headerTimeout), body_rate (http.minBodyRate), per_address "
            "(http.maxConnectionsPerAddress, refused).",
            ["reason"],
        )
        self.events = c(
            "zas_events_received",
            "Inbound CI event deliveries, by source kind (tekton, github) and result "
            "(accepted, duplicate, refused).",
            ["source", "result"],
        )

    def _initialise(self) -> None:
        """Create the series of every known label combination at zero, so a rate() over
        them has data before the first event (and a dashboard panel is not empty)."""
        results = ("ok", "client_error", "server_error", "aborted")
        for api in ("s3", "oci", "v1"):
            for direction in ("upload", "download"):
                self.transfer_bytes[direction].labels(api)
                for result in results:
                    self.transfers[direction].labels(api, result)
        for result in ("passed", "failed", "error"):
            self.verifications.labels(result)
        for kind in ("signature", "attestation", "vsa"):
            for result in ("ok", "error"):
                self.signatures.labels(kind, result)
        for target in ("bucket", "repository"):
            for mode in ("audit", "enforce"):
                for decision in ("pass", "fail"):
                    self.gate_decisions.labels(target, mode, decision)
        for method in ("basic", "bearer", "sigv4", "presigned"):
            for result in ("ok", "failed"):
                self.authentications.labels(method, result)
        self.authentications.labels("none", "anonymous")
        for result in ("ok", "error", "dry_run"):
            self.gc_runs.labels(result)
        for source in ("tekton", "github"):
            for result in ("accepted", "duplicate", "refused"):
                self.events.labels(source, result)
        for reason in CUT_REASONS:
            self.connections_cut.labels(reason)

    def observe(
        self, route: str, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        child = self._child
        child(self.requests, route, method, str(status)).inc()
        child(self.latency, route, method).observe(seconds)
        if bytes_in:
            child(self.bytes_in, route, method).inc(bytes_in)
        if bytes_out:
            child(self.bytes_out, route, method).inc(bytes_out)
        transfer = TRANSFERS.get((route, method))
        if transfer is not None:
            api, direction = transfer
            result = result_of(status)
            child(self.transfers[direction], api, result).inc()
            size = bytes_in if direction == "upload" else bytes_out
            if size and result == "ok":  # content, not an error document
                child(self.transfer_bytes[direction], api).inc(size)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: these run around every store call, and
        prometheus-client validates and locks on each ``labels()`` (the label sets are few)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def connection_cut(self, reason: str) -> None:
        self._child(self.connections_cut, reason).inc()

    def metadata_operation(
        self, backend: str, operation: str, outcome: str, seconds: float
    ) -> None:
        self._child(self.metadata_ops, backend, operation, outcome).inc()
        self._child(self.metadata_latency, backend, operation).observe(seconds)
        if operation == "add_audit_records" and outcome != "ok":
            self.audit_write_failures.inc()

    def storage_operation(
        self, backend: str, operation: str, outcome: str, seconds: float, sent: int, got: int
    ) -> None:
        self._child(self.storage_ops, backend, operation, outcome).inc()
        self._child(self.storage_latency, backend, operation).observe(seconds)
        if sent:
            self._child(self.storage_bytes, backend, "sent").inc(sent)
        if got:
            self._child(self.storage_bytes, backend, "received").inc(got)

    def render(self, extra: Iterable[Metric] = ()) -> bytes:
        """The exposition text: this process's metrics (or every worker's), and ``extra``
        metrics measured for this scrape."""
        if self.multiprocess_dir is None:
            text = generate_latest(self.registry)
        else:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
            text = generate_latest(registry)
        measured = list(extra)
        if measured:
            scrape = CollectorRegistry()
            scrape.register(_Fixed(measured))
            text += generate_latest(scrape)
        return text


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics
