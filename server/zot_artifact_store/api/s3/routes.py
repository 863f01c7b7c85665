"""The S3 API's routes, path-style at ``/`` and ``/s3`` (DESIGN.md §3)."""

from __future__ import annotations

from typing import Any

import tornado.routing

from ..base import BaseHandler, Route, route
from .buckets import BucketHandler
from .objects import ObjectHandler
from .post_object import PostObjectHandler, PostObjectMatches
from .service import ServiceHandler


def routes(ctx: Any) -> list[Route | tornado.routing.Rule]:
    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    return [
        r(r"/", ServiceHandler, "s3:/"),
        r(r"/s3/?", ServiceHandler, "s3:/"),
        # POST Object (a browser form): not an operation of the S3 model, routed on its own.
        tornado.routing.Rule(
            PostObjectMatches(r"/(?:s3/)?([^/]+)/?$"),
            PostObjectHandler,
            {"ctx": ctx, "route": "s3:POST /{bucket}"},
        ),
        r(r"/(?:s3/)?([^/]+)/?", BucketHandler, "s3:/{bucket}"),
        r(r"/(?:s3/)?([^/]+)/(.+)", ObjectHandler, "s3:/{bucket}/{key}"),
    ]
