"""Probes: ``/health/live``, ``/health/ready``, ``/health``. They never need authentication."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .. import __version__
from ..errors import StoreError
from .base import BaseHandler, Route, route

CHECK_TIMEOUT = 5.0


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


async def run_checks(handler: BaseHandler) -> dict[str, dict[str, Any]]:
    """Readiness checks: the metadata store answers and the blob store accepts writes."""
    ctx = handler.ctx
    checks = {
        "metadata": ctx.metadata.ping,
        "storage": ctx.blobs.check_writable,
    }
    results: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        started = time.monotonic()
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
            results[name] = {"status": "ok"}
        except Exception as exc:
            results[name] = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:500]}
        results[name]["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
    results["storage"].update(ctx.blobs.describe())  # which backend, and where
    return results


class ReadyHandler(ProbeHandler):
    async def get(self) -> None:
        if self.ctx.shutting_down:
            raise StoreError("ServiceUnavailable", "the server is shutting down")
        results = await run_checks(self)
        failing = [name for name, r in results.items() if r["status"] != "ok"]
        if failing:
            error = StoreError(
                "ServiceUnavailable",
                "not ready: "
                + ", ".join(f"{n} check failed ({results[n]['error']})" for n in failing),
                detail={"checks": results},
            )
            raise error
        self.write_json({"status": "ok", "checks": results})

    head = get


class HealthHandler(ProbeHandler):
    async def get(self) -> None:
        results = await run_checks(self)
        ok = all(r["status"] == "ok" for r in results.values()) and not self.ctx.shutting_down
        self.write_json(
            {
                "status": "ok" if ok else "fail",
                "version": __version__,
                "uptime_seconds": round(time.time() - self.ctx.started_at, 3),
                "auth": "enabled" if self.ctx.authentication.enabled else "disabled",
                "metadata_backend": self.ctx.metadata_backend,
                "checks": results,
            },
            200 if ok else 503,
        )


class MetricsHandler(ProbeHandler):
    async def get(self) -> None:
        metrics_cfg = self.ctx.config.extensions.metrics
        if not metrics_cfg.enable:
            raise StoreError("NotFound", "metrics are disabled")
        if metrics_cfg.protected:
            await self.authenticate()
            await self.authorize("admin:metrics", "metrics")
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.ctx.metrics.render())


def routes(ctx: Any) -> list[Route]:
    return [
        route(ctx, r"/health/live/?", LiveHandler, "/health/live"),
        route(ctx, r"/health/ready/?", ReadyHandler, "/health/ready"),
        route(ctx, r"/health/?", HealthHandler, "/health"),
        route(ctx, r"/metrics/?", MetricsHandler, "/metrics"),
        # Other paths under the reserved names stay ours, never S3 buckets.
        route(ctx, r"/(?:health|metrics)/.*", ReservedPathHandler, "unmatched"),
    ]
