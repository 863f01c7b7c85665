"""The S3 API's routes, path-style at ``/`` and ``/s3`` (DESIGN.md §3)."""

from __future__ import annotations

from typing import Any

from ..base import BaseHandler, Route, route
from .buckets import BucketHandler
from .objects import ObjectHandler
from .service import ServiceHandler


def routes(ctx: Any) -> list[Route]:
    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    return [
        r(r"/", ServiceHandler, "s3:/"),
        r(r"/s3/?", ServiceHandler, "s3:/"),
        r(r"/(?:s3/)?([^/]+)/?", BucketHandler, "s3:/{bucket}"),
        r(r"/(?:s3/)?([^/]+)/(.+)", ObjectHandler, "s3:/{bucket}/{key}"),
    ]
