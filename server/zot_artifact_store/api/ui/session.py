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
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from ...auth.access_keys import SecretBox
from ...errors import StoreError

SESSION_COOKIE = "zas_ui_session"
LOGIN_CSRF_COOKIE = "zas_ui_csrf"
COOKIE_PATH = "/ui"
SESSION_TTL_S = 8 * 3600
# The associated data every session is sealed under: nothing else sealed by the secrets key
# (access key secrets, event source secrets: bound to their record ids) opens as a session.
_PURPOSE = "zas web ui session v1"


@dataclass(frozen=True)
class Session:
    """Who is logged in: ``authorization`` is the ``Authorization`` header value the browser's
    requests are authenticated with, ``csrf`` the nonce its forms carry."""

    authorization: str
    expires_at: float
    csrf: str

    @classmethod
    def new(cls, authorization: str, ttl_s: float = SESSION_TTL_S) -> Session:
        return cls(authorization, time.time() + ttl_s, secrets.token_urlsafe(24))

    def seal(self, box: SecretBox) -> str:
        payload = json.dumps(
            {"v": 1, "a": self.authorization, "e": self.expires_at, "c": self.csrf},
            separators=(",", ":"),
        )
        # Cookie-safe: base64url without padding (SecretBox answers standard base64).
        raw = base64.b64decode(box.seal(payload, _PURPOSE))
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def open(cls, box: SecretBox, sealed: str | None) -> Session | None:
        """The session in a cookie value; None when it is absent, forged, damaged (or sealed
        by another secrets key) or expired."""
        if not sealed:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            data = json.loads(box.open(base64.b64encode(raw).decode(), _PURPOSE))
            session = cls(str(data["a"]), float(data["e"]), str(data["c"]))
        except (StoreError, ValueError, KeyError, TypeError, binascii.Error):
            return None
        if data.get("v") != 1 or time.time() >= session.expires_at:
            return None
        return session


def same_token(expected: str | None, presented: str | None) -> bool:
    """A CSRF token check in constant time; nothing expected or presented never matches."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
