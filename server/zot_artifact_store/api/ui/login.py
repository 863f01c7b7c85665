"""Logging in and out of the web UI, and sending browsers from ``/`` to it."""

from __future__ import annotations

from ...errors import StoreError
from ..health import ProbeHandler
from ..s3.service import ServiceHandler
from .base import UIHandler, safe_next
from .session import basic


class LoginHandler(UIHandler):
    """``/ui/login``: an API token (or an OIDC access token), or the root user and password;
    checked by the same authenticators, throttling and lockout as every API request."""

    def get(self) -> None:
        if self.session is not None:
            self.redirect(safe_next(self.get_query_argument("next", None)))
            return
        self.page("login.html", next=safe_next(self.get_query_argument("next", None)), error=None)

    async def post(self) -> None:
        target = safe_next(self.get_body_argument("next", None))
        token = self.get_body_argument("token", "").strip()
        user = self.get_body_argument("user", "").strip()
        password = self.get_body_argument("password", "")
        if token:
            authorization = f"Bearer {token}"
        elif user and password:
            authorization = basic(user, password)
        else:
            self.page(
                "login.html", 400, next=target,
                error="Paste an API token, or give the user name and password.",
            )  # fmt: skip
            return
        if not self.ctx.authentication.enabled:
            self.redirect(target)  # nothing to log in to: everyone may do everything
            return
        self.login_authorization = authorization
        self._screened = False  # prepare() screened the request without this credential
        try:
            principal = await self.authenticate()
        except StoreError as exc:
            if exc.status not in (401, 403):
                raise
            self.audit("ui:login", "", False, exc.message)
            self.page("login.html", 401, next=target, error=f"Login failed: {exc.message}")
            return
        self.audit("ui:login", "", True, f"{principal.source} {principal.name}")
        self.start_session(authorization)
        self.redirect(target)


class LogoutHandler(UIHandler):
    def post(self) -> None:
        if self.session is not None:
            self.audit("ui:logout", "", True)
        self.clear_session()
        self.redirect("/ui/login")


class RootHandler(ServiceHandler):
    """``/``: a browser (it asks for HTML and presents no S3 credential) is sent to the UI;
    everything else is S3's ListBuckets, as before."""

    async def prepare(self) -> None:
        req = self.request
        if (
            req.method in ("GET", "HEAD")
            and not req.query
            and "Authorization" not in req.headers
            and "text/html" in req.headers.get("Accept", "")
        ):
            self.redirect("/ui/", status=302)
            return
        await super().prepare()


class UIRootRedirect(ProbeHandler):
    """``/ui``: the UI lives at ``/ui/``. To a path-style S3 client it would be a bucket named
    ``ui``: creating or writing it is refused as a reserved name, as ``/health`` is."""

    def get(self) -> None:
        self.redirect("/ui/", status=301)
