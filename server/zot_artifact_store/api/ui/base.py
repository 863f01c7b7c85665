"""The web UI's handler base: security headers, the session, CSRF checks, HTML rendering and
HTML error pages (docs/adr/0009-web-ui.md).

A UI request is authenticated by the same authenticator chain and authorized by the same
Authorizer as the APIs: the session's credential stands in for the ``Authorization`` header
(:meth:`UIHandler.auth_request`), so throttling, lockout, revocation and audit all apply.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shlex
import time
import urllib.parse
from importlib import resources
from typing import Any

import tornado.httputil
import tornado.web

from ...auth.authn import AuthRequest
from ...auth.oidc import Issuer, unverified_claims
from ...auth.principal import ANONYMOUS, Principal
from ...auth.ratelimit import Presented
from ...config import OIDCLoginConfig
from ...errors import StoreError
from ...metadata import Evidence
from ...timefmt import iso_time
from ..base import BaseHandler
from ..v1.common import V1Handler
from .session import (
    COOKIE_PATH,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Session,
    new_csrf,
    same_token,
    sealed_to_fit,
)

log = logging.getLogger(__name__)

# No inline script or style, nothing from elsewhere, never framed (issue 24 §4).
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CSRF_FIELD = "_csrf"
EVIDENCE_KINDS = ("signature", "sbom", "attestation")
PAGE_SIZES = (50, 100, 500, 1000)  # offered; any size from 1 to the largest is taken
DEFAULT_PAGE_SIZE = 100
# An OIDC session's access token is renewed when it has less than this left.
REFRESH_MARGIN_S = 15.0


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """The UI's static files: name → (bytes, content type, ETag)."""
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    out = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in types:
            data = entry.read_bytes()
            out[entry.name] = (data, types[suffix], hashlib.sha256(data).hexdigest()[:16])
    return out


STATIC = _static_files()
TEMPLATES = str(resources.files(__package__).joinpath("templates"))


def static_url(name: str) -> str:
    return f"/ui/static/{name}?v={STATIC[name][2]}"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # unreachable


def link(path: str, **query: Any) -> str:
    """A UI URL with a query; values are URL-encoded (templates escape the result for HTML)."""
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: only a path of the UI itself (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("/ui//"):
        if "\\" not in target and all(c.isprintable() for c in target):
            return target
    return "/ui/"


class UIHandler(BaseHandler):
    """Base of every page. GET pages render templates; POSTs need the session's (or, before
    login, the login form's) CSRF token and, when the browser sends one, a same-origin
    ``Origin``."""

    session: Session | None = None
    login_authorization: str | None = None  # the credential a login POST presents
    login_error: str | None = None  # why log_in refused

    # Reused from the /v1 handlers, so the UI decides exactly as the API does.
    readable = V1Handler.readable
    authorized_subject = V1Handler.authorized_subject
    int_arg = V1Handler.int_arg

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", UI_CSP)
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cross-Origin-Opener-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    def get_template_path(self) -> str:
        return TEMPLATES

    @property
    def secure_cookies(self) -> bool:
        return self.request.protocol == "https"

    # ---- authentication: the session's credential, through the API's chain --------------
    def _credential(self) -> str | None:
        if self.login_authorization is not None:
            return self.login_authorization
        return self.session.authorization if self.session is not None else None

    def auth_request(self) -> AuthRequest:
        """The request as the authenticators see it: the session's credential as its
        ``Authorization`` (one a browser sends itself is ignored), and no query: a UI URL
        never carries a credential."""
        headers = tornado.httputil.HTTPHeaders()
        for name, value in self.request.headers.get_all():
            if name.lower() != "authorization":
                headers.add(name, value)
        credential = self._credential()
        if credential is not None:
            headers["Authorization"] = credential
        return AuthRequest(
            method=self.request.method or "GET",
            path=self.request.path,
            headers=headers,
            query={},
            remote_ip=self.request.remote_ip or "",
        )

    @property
    def presented(self) -> Presented:
        credential = self._credential()
        return Presented.of({"Authorization": credential} if credential else {}, {})

    def challenge_headers(self, error: StoreError) -> dict[str, str]:
        return {}  # a Basic challenge would make the browser ask in its own dialog

    async def prepare(self) -> None:
        box = self.ctx.access_keys.box
        self.session = Session.open(box, self.get_cookie(SESSION_COOKIE))
        if self.session is None and self.get_cookie(SESSION_COOKIE) is not None:
            self.clear_session()
        if self.request.method == "POST":
            self.check_origin()
            self.check_csrf()
        if self.session is None and not self.get_cookie(LOGIN_CSRF_COOKIE):
            self.login_csrf = new_csrf()
            self.set_cookie(
                LOGIN_CSRF_COOKIE, self.login_csrf, path=COOKIE_PATH, httponly=True,
                secure=self.secure_cookies, samesite="Strict",
            )  # fmt: skip
        else:
            self.login_csrf = self.get_cookie(LOGIN_CSRF_COOKIE) or ""
        if self.session is not None and self.session.refresh is not None:
            await self.refresh_session(self.session)
        if self.session is not None:
            try:
                await self.authenticate()
            except StoreError as exc:
                if exc.status != 401:
                    raise
                # The credential was revoked or expired: the session ends with it.
                self.end_session()
        else:
            await self.authenticate()  # anonymous, or everyone when auth is off

    def check_origin(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin is None:  # not every browser sends it on a same-origin POST
            return
        mine = f"{self.request.protocol}://{self.request.host}"
        external = self.ctx.config.http.externalUrl
        allowed = {mine}
        if external:
            parts = urllib.parse.urlsplit(external)
            allowed.add(f"{parts.scheme}://{parts.netloc}")
        if origin not in allowed:
            raise StoreError("AccessDenied", "a form of the UI was posted from another origin")

    def expected_csrf(self) -> str | None:
        if self.session is not None:
            return self.session.csrf
        return self.get_cookie(LOGIN_CSRF_COOKIE)

    def check_csrf(self) -> None:
        presented = self.get_body_argument(CSRF_FIELD, None)
        if not same_token(self.expected_csrf(), presented):
            raise StoreError(
                "AccessDenied",
                "the form's CSRF token is missing or stale: reload the page and try again",
            )

    @property
    def csrf_token(self) -> str:
        return self.session.csrf if self.session is not None else self.login_csrf

    def oidc_issuer(self) -> Issuer | None:
        """The issuer people log in at (the one ``auth.oidc[]`` entry with ``ui``), if any."""
        for config in self.ctx.config.auth.oidc:
            if config.ui is not None:
                return self.ctx.oidc.issuer(config.issuer)
        return None

    def oidc_login(self) -> tuple[Issuer, OIDCLoginConfig]:
        issuer = self.oidc_issuer()
        if issuer is None or issuer.config.ui is None:
            raise StoreError("NotFound", "logging in with OIDC is not configured (auth.oidc[].ui)")
        return issuer, issuer.config.ui

    def redirect_uri(self, login: OIDCLoginConfig) -> str:
        return login.redirectUri or f"{self.base_url()}/ui/login/callback"

    async def log_in(self, authorization: str) -> Principal | None:
        """Present ``authorization`` to the authenticator chain (throttling and lockout
        included) as a login: the principal, audited as ``ui:login``; None when refused (the
        reason audited, :attr:`login_error` set for the page)."""
        self.login_authorization = authorization
        self._screened = False  # prepare() screened the request without this credential
        try:
            principal = await self.authenticate()
        except StoreError as exc:
            if exc.status not in (401, 403):
                raise
            self.audit("ui:login", "", False, exc.message)
            self.login_error = f"Login failed: {exc.message}"
            return None
        self.audit("ui:login", "", True, f"{principal.source} {principal.name}")
        return principal

    async def refresh_session(self, session: Session) -> None:
        """A session from an OIDC login whose access token expires within
        ``REFRESH_MARGIN_S`` gets a new one with its refresh token (the cookie is resealed);
        if the issuer refuses, the session ends. An issuer that cannot be reached leaves the
        session as it is (its token may still be good)."""
        parsed = unverified_claims(session.authorization.partition(" ")[2])
        expires = parsed[1].get("exp") if parsed else None
        if not isinstance(expires, int | float) or expires - time.time() > REFRESH_MARGIN_S:
            return
        issuer = self.ctx.oidc.issuer(session.issuer or "")
        login = issuer.config.ui if issuer is not None else None
        if issuer is None or login is None or session.refresh is None:
            self.end_session()
            return
        try:
            tokens = await issuer.token_request(
                {"grant_type": "refresh_token", "refresh_token": session.refresh,
                 "client_id": login.clientId}
            )  # fmt: skip
        except StoreError as exc:
            if exc.status == 401:
                # Audited as whom the session was (its token was verified when it was made).
                self.principal = issuer.principal(parsed[1]) if parsed else ANONYMOUS
                self.audit("ui:refresh", "", False, exc.message)
                self.end_session()
            return
        refresh = tokens.get("refresh_token")
        self.session = dataclasses.replace(
            session,
            authorization=f"Bearer {tokens['access_token']}",
            refresh=refresh if isinstance(refresh, str) else session.refresh,
        )
        self.set_session_cookie()

    def end_session(self) -> None:
        self.clear_session()
        self.session = None
        self.principal = ANONYMOUS

    def start_session(
        self, authorization: str, issuer: str | None = None, refresh: str | None = None
    ) -> None:
        self.session = Session.new(authorization, issuer=issuer, refresh=refresh)
        self.set_session_cookie()
        self.clear_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)

    def set_session_cookie(self) -> None:
        assert self.session is not None
        kept, sealed = sealed_to_fit(self.session, self.ctx.access_keys.box)
        if kept.refresh != self.session.refresh:
            log.warning("an OIDC session's tokens are too large to keep its refresh token")
        self.session = kept
        self.set_cookie(
            SESSION_COOKIE, sealed, path=COOKIE_PATH,
            httponly=True, secure=self.secure_cookies, samesite="Lax",
            expires=self.session.expires_at,
        )  # fmt: skip

    def clear_session(self) -> None:
        self.clear_cookie(
            SESSION_COOKIE, path=COOKIE_PATH, httponly=True, secure=self.secure_cookies,
            samesite="Lax",
        )  # fmt: skip

    # ---- rendering ------------------------------------------------------------------------
    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(
            principal=self.principal,
            logged_in=self.session is not None,
            auth_enabled=self.ctx.authentication.enabled,
            oidc_login=self.oidc_issuer() is not None,
            idp_logout=None,  # the login page's link to log out at the issuer too
            csrf_field=CSRF_FIELD,
            csrf_token=self.csrf_token if hasattr(self, "login_csrf") else "",
            static=static_url,
            page_sizes=PAGE_SIZES,
            link=link,
            human_size=human_size,
            iso_time=iso_time,
            quote=shlex.quote,
            base_url=self.base_url(),
            url_quote=lambda s: urllib.parse.quote(s, safe="/"),
        )
        return namespace

    def page(self, template: str, status: int = 200, **kwargs: Any) -> None:
        self.set_status(status)
        self.render(template, **kwargs)

    def render_error(self, error: StoreError) -> None:
        """An HTML error page; a refusal of someone not logged in sends them to log in."""
        if (
            error.status == 401
            and self.request.method in ("GET", "HEAD")
            and self.session is None
            and not self._headers_written
        ):
            self.set_status(302)
            self.set_header("Location", link("/ui/login", next=self.request.uri))
            self.finish()
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.render("error.html", error=error, request_id=self.request_id)

    async def evidence_of(self, digest: str, resource: str) -> dict[str, list[Evidence]] | None:
        """The evidence about ``digest`` by kind (signature, sbom, attestation) that the
        visitor may read, or None when they may not read ``resource``'s evidence at all."""
        if not await self.allowed("supplychain:read", resource):
            return None
        evidence: dict[str, list[Evidence]] = {kind: [] for kind in EVIDENCE_KINDS}
        for item in await self.readable(await self.ctx.supplychain.list(digest)):
            evidence.setdefault(item.kind, []).append(item)
        return evidence

    async def allowed(self, action: str, resource: str) -> bool:
        """Would the Authorizer allow ``action`` (no audit record: a page deciding what to
        show, not an access)."""
        return (await self.ctx.authorizer.decide(self.principal, action, resource)).allowed


class StaticHandler(BaseHandler):
    """The UI's stylesheet and script (immutable under their versioned URLs)."""

    def get(self, name: str) -> None:
        entry = STATIC.get(name)
        if entry is None:
            raise tornado.web.HTTPError(404)
        data, content_type, etag = entry
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "public, max-age=86400")
        self.set_header("ETag", f'"{etag}"')
        if self.request.headers.get("If-None-Match") == f'"{etag}"':
            self.set_status(304)
            self.finish()
            return
        self.finish(data)
