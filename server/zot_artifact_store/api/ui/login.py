"""Logging in and out of the web UI, and sending browsers from ``/`` to it."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse

from ...auth.oidc import Issuer, unverified_claims
from ...config import OIDCLoginConfig
from ...errors import StoreError
from ..health import ProbeHandler
from ..s3.service import ServiceHandler
from .base import UIHandler, safe_next
from .session import OIDC_COOKIE, OIDC_COOKIE_PATH, OIDCLogin, basic, same_token


def with_query(endpoint: str, params: dict[str, str]) -> str:
    """An issuer's endpoint with ``params`` added to whatever query it already has."""
    return endpoint + ("&" if "?" in endpoint else "?") + urllib.parse.urlencode(params)


class LoginHandler(UIHandler):
    """``/ui/login``: an API token (or an OIDC access token), or the root user and password;
    checked by the same authenticators, throttling and lockout as every API request."""

    async def get(self) -> None:
        if self.session is not None:
            self.redirect(safe_next(self.get_query_argument("next", None)))
            return
        self.page(
            "login.html", next=safe_next(self.get_query_argument("next", None)), error=None,
            idp_logout=await self.idp_logout() if self.get_query_argument("logged_out", None)
            else None,
        )  # fmt: skip

    async def idp_logout(self) -> str | None:
        """After logging out of an OIDC session: the issuer's end-session URL (RP-initiated
        logout, back to this login page), for a link — a person may also want to end their
        session at the identity provider. None without one."""
        issuer = self.oidc_issuer()
        if issuer is None or issuer.config.ui is None:
            return None
        try:
            endpoint = await issuer.endpoint("end_session_endpoint")
        except StoreError:
            return None
        if endpoint is None:
            return None
        back = urllib.parse.urlsplit(self.redirect_uri(issuer.config.ui))
        return with_query(endpoint, {
            "client_id": issuer.config.ui.clientId,
            "post_logout_redirect_uri": f"{back.scheme}://{back.netloc}/ui/login",
        })  # fmt: skip

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
        if await self.log_in(authorization) is None:
            self.page("login.html", 401, next=target, error=self.login_error)
            return
        self.start_session(authorization)
        self.redirect(target)


class OIDCLoginHandler(UIHandler):
    """``/ui/login/oidc?next=``: off to the issuer (``auth.oidc[].ui``) to log in, with an
    authorization code request (PKCE S256); its state, nonce and verifier wait in a sealed
    cookie for the callback."""

    async def get(self) -> None:
        target = safe_next(self.get_query_argument("next", None))
        if self.session is not None:
            self.redirect(target)
            return
        issuer, login = self.oidc_login()
        endpoint = await issuer.endpoint("authorization_endpoint")
        if endpoint is None:
            raise StoreError(
                "ServiceUnavailable", "the identity provider names no authorization endpoint"
            )
        started = OIDCLogin.new(target)
        self.set_cookie(
            OIDC_COOKIE, started.seal(self.ctx.access_keys.box), path=OIDC_COOKIE_PATH,
            httponly=True, secure=self.secure_cookies, samesite="Lax",
            expires=started.expires_at,
        )  # fmt: skip
        challenge = base64.urlsafe_b64encode(hashlib.sha256(started.verifier.encode()).digest())
        self.redirect(with_query(endpoint, {
            "response_type": "code", "client_id": login.clientId,
            "redirect_uri": self.redirect_uri(login), "scope": " ".join(login.scopes),
            "state": started.state, "nonce": started.nonce,
            "code_challenge": challenge.decode().rstrip("="), "code_challenge_method": "S256",
        }))  # fmt: skip


class OIDCCallbackHandler(UIHandler):
    """``/ui/login/callback?code=&state=`` (or ``?error=``): the issuer sends the browser back.
    The state must be this browser's login's; the code is exchanged at the token endpoint
    with the PKCE verifier; the ID token is checked (signature, issuer, audience = the UI's
    client, nonce) and the access token goes through the authenticator chain as any bearer
    token. Only then is the session made; any failure shows the login page with the reason."""

    async def get(self) -> None:
        issuer, login = self.oidc_login()
        started = OIDCLogin.open(self.ctx.access_keys.box, self.get_cookie(OIDC_COOKIE))
        self.clear_cookie(
            OIDC_COOKIE, path=OIDC_COOKIE_PATH, httponly=True, secure=self.secure_cookies,
            samesite="Lax",
        )  # fmt: skip
        target = started.next if started is not None else "/ui/"
        try:
            authorization, refresh = await self.complete(issuer, login, started)
        except StoreError as exc:
            if exc.status not in (400, 401, 403, 503):
                raise
            self.audit("ui:login", "", False, exc.message)
            self.page("login.html", exc.status, next=target, error=f"Login failed: {exc.message}")
            return
        if await self.log_in(authorization) is None:
            self.page("login.html", 401, next=target, error=self.login_error)
            return
        self.start_session(authorization, issuer=issuer.config.issuer, refresh=refresh)
        self.redirect(target)

    async def complete(
        self, issuer: Issuer, login: OIDCLoginConfig, started: OIDCLogin | None
    ) -> tuple[str, str | None]:
        """The access token (as an ``Authorization`` value) and refresh token the issuer
        gives for this callback's code; StoreError when anything does not match."""
        arg = self.get_query_argument
        if started is None:
            raise StoreError(
                "InvalidRequest",
                "this login expired or was not started in this browser: log in again",
            )
        if not same_token(started.state, arg("state", None)):
            raise StoreError(
                "InvalidRequest",
                "the identity provider's answer is not for the login this browser started "
                "(state mismatch): log in again",
            )
        error = arg("error", None)
        if error is not None:
            description = arg("error_description", "")
            reason = f"{error}: {description}" if description else error
            raise StoreError("Unauthenticated", f"the identity provider refused: {reason}"[:500])
        code = arg("code", "")
        if not code:
            raise StoreError("InvalidRequest", "the identity provider sent no code")
        tokens = await issuer.token_request({
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": self.redirect_uri(login), "client_id": login.clientId,
            "code_verifier": started.verifier,
        })  # fmt: skip
        id_token = tokens.get("id_token")
        parsed = unverified_claims(id_token) if isinstance(id_token, str) else None
        if parsed is None or parsed[1].get("iss") != issuer.config.issuer:
            raise StoreError("Unauthenticated", "the identity provider sent no valid ID token")
        claims = await issuer.verify(str(id_token), parsed[0], audience=login.clientId)
        if not same_token(started.nonce, str(claims.get("nonce", ""))):
            raise StoreError("Unauthenticated", "the ID token's nonce is not this login's")
        access = unverified_claims(tokens["access_token"])
        if access is not None and access[1].get("sub") != claims.get("sub"):
            raise StoreError("Unauthenticated", "the access token is not for the ID token's user")
        refresh = tokens.get("refresh_token")
        return f"Bearer {tokens['access_token']}", refresh if isinstance(refresh, str) else None


class LogoutHandler(UIHandler):
    def post(self) -> None:
        oidc = self.session is not None and self.session.issuer is not None
        if self.session is not None:
            self.audit("ui:logout", "", True)
        self.clear_session()
        # After an OIDC session, the login page offers to log out at the issuer too (a link:
        # CSP's form-action keeps this form's answer from redirecting to another origin).
        self.redirect("/ui/login?logged_out=oidc" if oidc else "/ui/login")


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
