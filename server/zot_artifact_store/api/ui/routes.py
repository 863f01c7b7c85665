"""The web UI's routes, under ``/ui/`` (DESIGN.md §3), and the browser redirect of ``/``."""

from __future__ import annotations

from typing import Any

from ...errors import StoreError
from ..base import BaseHandler, Route, route
from . import admin, browse, evidence, images, login, supplychain
from .base import StaticHandler, UIHandler


def routes(ctx: Any) -> list[Route]:
    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    return [
        r(r"/", login.RootHandler, "s3:/"),  # S3's ListBuckets, unless a browser asks
        r(r"/ui", login.UIRootRedirect, "/ui"),
        r(r"/ui/", browse.HomeHandler, "/ui/"),
        r(r"/ui/login", login.LoginHandler, "/ui/login"),
        r(r"/ui/login/oidc", login.OIDCLoginHandler, "/ui/login/oidc"),
        r(r"/ui/login/callback", login.OIDCCallbackHandler, "/ui/login/callback"),
        r(r"/ui/logout", login.LogoutHandler, "/ui/logout"),
        r(r"/ui/static/([A-Za-z0-9._-]+)", StaticHandler, "/ui/static/{name}"),
        r(r"/ui/buckets/([^/]+)/?", browse.BucketHandler, "/ui/buckets/{bucket}"),
        r(r"/ui/buckets/([^/]+)/object", browse.ObjectHandler, "/ui/buckets/{bucket}/object"),
        r(
            r"/ui/buckets/([^/]+)/download",
            browse.DownloadHandler,
            "/ui/buckets/{bucket}/download",
        ),
        r(r"/ui/evidence/([^/]+)", evidence.EvidenceHandler, "/ui/evidence/{id}"),
        r(
            r"/ui/evidence/([^/]+)/download",
            evidence.EvidenceDownloadHandler,
            "/ui/evidence/{id}/download",
        ),
        r(r"/ui/repositories/?", images.RepositoriesHandler, "/ui/repositories"),
        r(r"/ui/repositories/tags", images.TagsHandler, "/ui/repositories/tags"),
        r(r"/ui/repositories/manifest", images.ManifestHandler, "/ui/repositories/manifest"),
        r(r"/ui/search", supplychain.SearchHandler, "/ui/search"),
        r(r"/ui/verify", supplychain.VerifyHandler, "/ui/verify"),
        r(r"/ui/admin/tokens", admin.TokensHandler, "/ui/admin/tokens"),
        r(r"/ui/admin/access-keys", admin.AccessKeysHandler, "/ui/admin/access-keys"),
        r(r"/ui/admin/webhooks", admin.WebhooksHandler, "/ui/admin/webhooks"),
        r(r"/ui/admin/webhooks/([^/]+)", admin.WebhookHandler, "/ui/admin/webhooks/{id}"),
        r(r"/ui/admin/audit", admin.AuditHandler, "/ui/admin/audit"),
        # Anything else under /ui is the UI's (an HTML 404), never an S3 path.
        r(r"/ui/.*", NotFoundPage, "unmatched"),
    ]


class NotFoundPage(UIHandler):
    """Any other path under ``/ui/``: an HTML 404. Writing there (an S3 client taking ``ui``
    for a bucket) is refused as a reserved name, in problem JSON as ``/health`` answers."""

    async def get(self) -> None:
        raise StoreError("NotFound", f"no such page: {self.request.path}")

    post = get

    async def put(self) -> None:
        raise StoreError(
            "ReservedName", "'ui' is a reserved name (the web UI), not a bucket; choose another"
        )

    delete = put

    async def prepare(self) -> None:
        if self.request.method not in ("PUT", "DELETE"):
            await super().prepare()

    def render_error(self, error: StoreError) -> None:
        if self.request.method in ("PUT", "DELETE"):
            BaseHandler.render_error(self, error)
        else:
            super().render_error(error)
