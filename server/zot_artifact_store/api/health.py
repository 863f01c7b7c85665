"""Probes: ``/health/live``, ``/health/ready``, ``/health``. They never need authentication.

Readiness checks the dependencies a request needs: the metadata store answers; the blob store
accepts a write and (filesystem) keeps its free-space reserve (``storage.minFreeBytes`` /
``minFreePercent``). An OIDC issuer whose discovery document cannot be fetched makes the server
*degraded* (still ready: every other credential works), never unready.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import tornado
import tornado.httpclient
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .. import __version__
from ..errors import StoreError
from .base import BaseHandler, Route, route

CHECK_TIMEOUT = 5.0
OIDC_TIMEOUT = 3.0
OIDC_CACHE_S = 10.0  # a probe every second does not fetch every issuer every second
_oidc_cache: dict[str, tuple[float, dict[str, Any]]] = {}


class ProbeHandler(BaseHandler):
    """Base of the probe endpoints. ``/health`` and ``/metrics`` also look like S3 buckets to a
    path-style client: creating or writing them is refused as a reserved name."""

    async def put(self, *args: str) -> None:
        raise StoreError(
            "ReservedName",
            f"{self.request.path.strip('/').split('/')[0]!r} is a reserved name (a server "
            "endpoint), not a bucket; choose another bucket name",
        )

    post = delete = put


class ReservedPathHandler(ProbeHandler):
    """Any other path under ``/health`` or ``/metrics``: not found, and never an S3 object."""

    async def get(self, *args: str) -> None:
        raise StoreError("NotFound", f"no such endpoint: {self.request.path}")

    head = get


class LiveHandler(ProbeHandler):
    def get(self) -> None:
        self.write_json({"status": "ok"})

    head = get


class Reserve(Exception):
    """The blob store's filesystem is below its free-space reserve."""


async def storage_check(handler: BaseHandler, details: dict[str, Any]) -> None:
    """The blob store accepts a write and keeps its free-space reserve."""
    ctx = handler.ctx
    await ctx.blobs.check_writable()
    usage = await ctx.space.usage()  # None: an object store, no disk
    if usage is None:
        return
    details.update(free_bytes=usage.free, total_bytes=usage.total, reserve_bytes=usage.reserve)
    if usage.free < usage.reserve:
        raise Reserve(
            f"{usage.free} bytes free, below the reserve of {usage.reserve} "
            "(storage.minFreeBytes / storage.minFreePercent)"
        )


async def oidc_check(issuer: str) -> dict[str, Any]:
    """Whether ``issuer``'s discovery document can be fetched (cached ``OIDC_CACHE_S``)."""
    now = time.monotonic()
    cached = _oidc_cache.get(issuer)
    if cached is not None and cached[0] > now:
        return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    started = time.monotonic()
    result: dict[str, Any] = {"issuer": issuer}
    try:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            url, request_timeout=OIDC_TIMEOUT, connect_timeout=OIDC_TIMEOUT
        )
        if b"jwks_uri" not in response.body:
            raise ValueError("the discovery document names no jwks_uri")
        result["status"] = "ok"
    except Exception as exc:
        result.update(status="fail", error=f"{type(exc).__name__}: {exc}"[:500])
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
    _oidc_cache[issuer] = (now + OIDC_CACHE_S, result)
    return result


async def _timed(check: Callable[[], Awaitable[None]], result: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
        result["status"] = "ok"
    except Exception as exc:
        result.update(status="fail", error=f"{type(exc).__name__}: {exc}"[:500])
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
    return result


async def run_checks(handler: BaseHandler) -> dict[str, dict[str, Any]]:
    """Readiness checks, concurrently: metadata, storage, and each configured OIDC issuer
    (``oidc:<issuer>``: only degrades)."""
    ctx = handler.ctx
    storage: dict[str, Any] = {}
    names = ["metadata", "storage"]
    checks: list[Awaitable[dict[str, Any]]] = [
        _timed(ctx.metadata.ping, {}),
        _timed(lambda: storage_check(handler, storage), storage),
    ]
    for issuer in ctx.config.auth.oidc:
        names.append(f"oidc:{issuer.issuer}")
        checks.append(oidc_check(issuer.issuer))
    results = dict(zip(names, await asyncio.gather(*checks), strict=True))
    results["storage"].update(ctx.blobs.describe())  # which backend, and where
    return results


def failing(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(failing checks that make the server unready, failing checks that only degrade it)."""
    bad = [name for name, r in results.items() if r["status"] != "ok"]
    return [n for n in bad if not n.startswith("oidc:")], [n for n in bad if n.startswith("oidc:")]


class ReadyHandler(ProbeHandler):
    async def get(self) -> None:
        if self.ctx.shutting_down:
            raise StoreError("ServiceUnavailable", "the server is shutting down")
        results = await run_checks(self)
        fatal, degraded = failing(results)
        if fatal:
            raise StoreError(
                "ServiceUnavailable",
                "not ready: "
                + ", ".join(f"{n} check failed ({results[n]['error']})" for n in fatal),
                detail={"checks": results, "failing": fatal + degraded},
            )
        self.write_json(
            {
                "status": "degraded" if degraded else "ok",
                "failing": degraded,
                "checks": results,
            }
        )

    head = get


class HealthHandler(ProbeHandler):
    async def get(self) -> None:
        results = await run_checks(self)
        fatal, degraded = failing(results)
        ok = not fatal and not self.ctx.shutting_down
        self.write_json(
            {
                "status": ("degraded" if degraded else "ok") if ok else "fail",
                "failing": fatal + degraded,
                "version": __version__,
                "versions": {
                    "server": __version__,
                    "python": platform.python_version(),
                    "tornado": tornado.version,
                    "metadata_schema": await self._schema_version(),
                },
                "started_at": round(self.ctx.started_at, 3),
                "uptime_seconds": round(time.time() - self.ctx.started_at, 3),
                "auth": "enabled" if self.ctx.authentication.enabled else "disabled",
                "metadata_backend": self.ctx.metadata_backend,
                "checks": results,
            },
            200 if ok else 503,
        )

    async def _schema_version(self) -> int | None:
        try:
            return await asyncio.wait_for(self.ctx.metadata.schema_version(), CHECK_TIMEOUT)
        except Exception:
            return None


class MetricsHandler(ProbeHandler):
    async def get(self) -> None:
        metrics_cfg = self.ctx.config.extensions.metrics
        if not metrics_cfg.enable:
            raise StoreError("NotFound", "metrics are disabled")
        if metrics_cfg.protected:
            await self.authenticate()
            await self.authorize("admin:metrics", "metrics")
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.ctx.metrics.render(await self._measured()))

    async def _measured(self) -> Iterable[Metric]:
        """Gauges of shared state, measured for this scrape (the same on every worker)."""
        blobs = self.ctx.blobs
        found: list[Metric] = []
        try:
            sessions = await asyncio.wait_for(_count(blobs.iter_uploads()), CHECK_TIMEOUT)
            found.append(
                GaugeMetricFamily(
                    "zas_upload_sessions_open",
                    "Resumable upload sessions in storage (S3 multipart uploads, OCI chunked "
                    "uploads) not yet completed or aborted.",
                    value=sessions,
                )
            )
        except Exception:
            pass  # the storage error metrics and readiness tell
        try:
            usage = await self.ctx.space.usage()
        except OSError:
            return found
        if usage is not None:
            for name, doc, value in (
                ("zas_storage_free_bytes", "Free bytes on the blobs' filesystem.", usage.free),
                ("zas_storage_capacity_bytes", "Size of the blobs' filesystem.", usage.total),
                (
                    "zas_storage_reserve_bytes",
                    "Free space below which /health/ready fails and blob writes are refused "
                    "(storage.minFreeBytes / minFreePercent).",
                    usage.reserve,
                ),
            ):
                found.append(GaugeMetricFamily(name, doc, value=value))
        return found


async def _count(items: AsyncIterator[Any]) -> int:
    count = 0
    async for _ in items:
        count += 1
    return count


def routes(ctx: Any) -> list[Route]:
    return [
        route(ctx, r"/health/live/?", LiveHandler, "/health/live"),
        route(ctx, r"/health/ready/?", ReadyHandler, "/health/ready"),
        route(ctx, r"/health/?", HealthHandler, "/health"),
        route(ctx, r"/metrics/?", MetricsHandler, "/metrics"),
        # Other paths under the reserved names stay ours, never S3 buckets.
        route(ctx, r"/(?:health|metrics)/.*", ReservedPathHandler, "unmatched"),
    ]
