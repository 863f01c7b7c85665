"""The web UI's session: a sealed, expiring cookie that carries the credential a person logged
in with (docs/adr/0009-web-ui.md).

The cookie is sealed with the server's secrets key (AES-256-GCM, :class:`SecretBox`, bound to
this purpose), so it is opaque to the browser and to anyone who reads it in transit, cannot be
forged or edited, and needs no server-side state: every replica that shares the secrets key
opens it. Each request presents the credential again to the same authenticator chain as the
APIs, so a revoked or expired API token ends its sessions on the next click.

A session also holds a random CSRF nonce that every state-changing form of the session must
send back; the login form, before any session exists, uses a separate double-submit cookie.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ...auth.access_keys import SecretBox
from ...errors import StoreError

SESSION_COOKIE = "zas_ui_session"
LOGIN_CSRF_COOKIE = "zas_ui_csrf"
COOKIE_PATH = "/ui"
SESSION_TTL_S = 8 * 3600
# An OIDC login under way (state, nonce, PKCE verifier): sent back to the callback only.
OIDC_COOKIE = "zas_ui_oidc"
OIDC_COOKIE_PATH = "/ui/login"
OIDC_LOGIN_TTL_S = 600
# Browsers keep cookies up to 4096 bytes, name and attributes included.
MAX_COOKIE_VALUE = 3900
# The associated data every session is sealed under: nothing else sealed by the secrets key
# (access key secrets, event source secrets: bound to their record ids) opens as a session;
# a login under way has a purpose of its own.
_PURPOSE = "zas web ui session v1"
_OIDC_PURPOSE = "zas web ui oidc login v1"


def _seal(box: SecretBox, data: dict[str, object], purpose: str) -> str:
    payload = json.dumps(data, separators=(",", ":"))
    # Cookie-safe: base64url without padding (SecretBox answers standard base64).
    raw = base64.b64decode(box.seal(payload, purpose))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _open(box: SecretBox, sealed: str | None, purpose: str) -> dict[str, Any] | None:
    """What :func:`_seal` sealed for ``purpose``; None when absent, forged, damaged (or sealed
    by another secrets key), of another version or expired (its ``e``)."""
    if not sealed:
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        data = json.loads(box.open(base64.b64encode(raw).decode(), purpose))
        expires_at = float(data["e"])
    except (StoreError, ValueError, KeyError, TypeError, binascii.Error):
        return None
    if not isinstance(data, dict) or data.get("v") != 1 or time.time() >= expires_at:
        return None
    return data


@dataclass(frozen=True)
class Session:
    """Who is logged in: ``authorization`` is the ``Authorization`` header value the browser's
    requests are authenticated with, ``csrf`` the nonce its forms carry. A login at the OIDC
    issuer also keeps the ``issuer`` and its ``refresh`` token, to renew the access token."""

    authorization: str
    expires_at: float
    csrf: str
    issuer: str | None = None
    refresh: str | None = None

    @classmethod
    def new(
        cls,
        authorization: str,
        ttl_s: float = SESSION_TTL_S,
        issuer: str | None = None,
        refresh: str | None = None,
    ) -> Session:
        return cls(authorization, time.time() + ttl_s, secrets.token_urlsafe(24), issuer, refresh)

    def seal(self, box: SecretBox) -> str:
        data: dict[str, object] = {
            "v": 1, "a": self.authorization, "e": self.expires_at, "c": self.csrf
        }  # fmt: skip
        if self.issuer:
            data.update(i=self.issuer, r=self.refresh)
        return _seal(box, data, _PURPOSE)

    @classmethod
    def open(cls, box: SecretBox, sealed: str | None) -> Session | None:
        """The session in a cookie value; None when it is absent, forged, damaged (or sealed
        by another secrets key) or expired."""
        data = _open(box, sealed, _PURPOSE)
        if data is None:
            return None
        try:
            issuer, refresh = data.get("i"), data.get("r")
            return cls(
                str(data["a"]), float(data["e"]), str(data["c"]),
                str(issuer) if issuer else None, str(refresh) if refresh else None,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None


def sealed_to_fit(session: Session, box: SecretBox) -> tuple[Session, str]:
    """The session sealed for its cookie, within what browsers keep (``MAX_COOKIE_VALUE``):
    a session whose tokens are too large keeps its access token without the refresh token
    (it then ends when the access token expires); one too large even so is refused."""
    sealed = session.seal(box)
    if len(sealed) > MAX_COOKIE_VALUE and session.refresh is not None:
        session = dataclasses.replace(session, refresh=None)
        sealed = session.seal(box)
    if len(sealed) > MAX_COOKIE_VALUE:
        raise StoreError(
            "InvalidRequest",
            f"the credential is too large for a session cookie ({len(sealed)} bytes sealed; "
            f"browsers keep {MAX_COOKIE_VALUE}): use a smaller token",
        )
    return session, sealed


@dataclass(frozen=True)
class OIDCLogin:
    """A login at the OIDC issuer under way, between ``/ui/login/oidc`` and the callback:
    the ``state`` and ``nonce`` sent to the issuer, the PKCE ``verifier`` and where to go
    afterwards."""

    state: str
    nonce: str
    verifier: str
    next: str
    expires_at: float

    @classmethod
    def new(cls, target: str) -> OIDCLogin:
        return cls(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48),
            target, time.time() + OIDC_LOGIN_TTL_S,
        )  # fmt: skip

    def seal(self, box: SecretBox) -> str:
        return _seal(box, {
            "v": 1, "s": self.state, "n": self.nonce, "k": self.verifier, "x": self.next,
            "e": self.expires_at,
        }, _OIDC_PURPOSE)  # fmt: skip

    @classmethod
    def open(cls, box: SecretBox, sealed: str | None) -> OIDCLogin | None:
        data = _open(box, sealed, _OIDC_PURPOSE)
        if data is None:
            return None
        try:
            return cls(
                str(data["s"]), str(data["n"]), str(data["k"]), str(data["x"]), float(data["e"])
            )
        except (KeyError, TypeError, ValueError):
            return None


def same_token(expected: str | None, presented: str | None) -> bool:
    """A CSRF token check in constant time; nothing expected or presented never matches."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
