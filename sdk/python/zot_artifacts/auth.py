"""Credentials. Each kind produces the headers of a request through a small sans-IO flow
(a generator that may yield HTTP calls, e.g. to fetch a token), so the sync and the async
client share it.

* :class:`TokenAuth` - an API token (``zat_…``) or any bearer token.
* :class:`BasicAuth` - HTTP Basic (the root user).
* :class:`OIDCClientCredentials` - OAuth 2 client credentials against an OpenID provider
  (a Keycloak realm: ``issuer="https://kc/realms/ci"``); the access token is cached and
  fetched again shortly before it expires, or when the store answers 401.
* :class:`GitHubActionsAuth` - CI workload identity: the runner's OIDC token exchanged for a
  short-lived store token at ``POST /v1/auth/exchange`` (no secret stored in CI).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Generator
from typing import Any

from ._protocol import Call, Instruction, Reply
from .errors import ArtifactStoreError

__all__ = ["Auth", "BasicAuth", "GitHubActionsAuth", "OIDCClientCredentials", "TokenAuth"]

AuthFlow = Generator[Instruction, Any, "dict[str, str]"]


class Auth:
    """Base class: :meth:`flow` returns the headers to add to a request."""

    def flow(self) -> AuthFlow:
        return {}
        yield  # pragma: no cover - makes this a generator

    def invalidate(self) -> bool:
        """Forget a cached credential after a 401; True when trying again may help."""
        return False


class TokenAuth(Auth):
    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("TokenAuth needs a token")
        self.token = token

    def flow(self) -> AuthFlow:
        return {"Authorization": f"Bearer {self.token}"}
        yield  # pragma: no cover

    def __repr__(self) -> str:
        return "TokenAuth(token=***)"


class BasicAuth(Auth):
    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def flow(self) -> AuthFlow:
        raw = f"{self.username}:{self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        yield  # pragma: no cover

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class _CachedBearer(Auth):
    """A bearer token fetched by :meth:`fetch` and reused until ``refresh_margin`` seconds
    before it expires."""

    def __init__(self, refresh_margin: float) -> None:
        self.refresh_margin = refresh_margin
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0  # how many tokens were fetched (observability, tests)

    def fetch(self) -> Generator[Instruction, Any, tuple[str, float]]:
        raise NotImplementedError

    def flow(self) -> AuthFlow:
        with self._lock:
            token, expires_at = self._token, self._expires_at
        if token is None or time.time() >= expires_at - self.refresh_margin:
            token, lifetime = yield from self.fetch()
            with self._lock:
                self._token, self._expires_at = token, time.time() + lifetime
                self.fetches += 1
        return {"Authorization": f"Bearer {token}"}

    def invalidate(self) -> bool:
        with self._lock:
            had = self._token is not None
            self._token = None
        return had


def _token_answer(reply: Reply, what: str) -> dict[str, Any]:
    body = reply.json()
    if not isinstance(body, dict):
        raise ArtifactStoreError(f"{what} answered no JSON object", code="InvalidTokenResponse")
    return body


class OIDCClientCredentials(_CachedBearer):
    """OAuth 2 client credentials (RFC 6749 §4.4) against an OpenID provider.

    Give ``issuer`` (the token endpoint is read from its discovery document; for Keycloak
    the realm URL ``https://keycloak/realms/<realm>``) or ``token_url`` directly. ``scope``
    and ``audience`` are sent when given. The token is cached and refreshed
    ``refresh_margin`` seconds before ``expires_in`` runs out."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        issuer: str | None = None,
        token_url: str | None = None,
        scope: str | None = None,
        audience: str | None = None,
        refresh_margin: float = 30.0,
    ) -> None:
        if not issuer and not token_url:
            raise ValueError("OIDCClientCredentials needs issuer or token_url")
        super().__init__(refresh_margin)
        self.client_id = client_id
        self.client_secret = client_secret
        self.issuer = issuer.rstrip("/") if issuer else None
        self.token_url = token_url
        self.scope = scope
        self.audience = audience

    def fetch(self) -> Generator[Instruction, Any, tuple[str, float]]:
        if self.token_url is None:
            discovery: Reply = yield Call(
                "GET", f"{self.issuer}/.well-known/openid-configuration", auth=False
            )
            endpoint = _token_answer(discovery, "the OIDC discovery document").get("token_endpoint")
            if not isinstance(endpoint, str):
                raise ArtifactStoreError(
                    "the OIDC discovery document names no token_endpoint", code="InvalidIssuer"
                )
            self.token_url = endpoint
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        raw = f"{self.client_id}:{self.client_secret}".encode()
        reply: Reply = yield Call(
            "POST",
            self.token_url,
            form=form,
            headers={"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")},
            auth=False,
            idempotent=False,
        )
        body = _token_answer(reply, "the token endpoint")
        token = body.get("access_token")
        if not isinstance(token, str):
            raise ArtifactStoreError("the token endpoint sent no access_token", code="NoToken")
        return token, float(body.get("expires_in") or 300)

    def __repr__(self) -> str:
        return f"OIDCClientCredentials(client_id={self.client_id!r}, client_secret=***)"


class GitHubActionsAuth(_CachedBearer):
    """Inside a GitHub Actions job with ``permissions: id-token: write``: fetch the runner's
    OIDC token (``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…`` with
    ``Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` -> ``{"value": jwt}``) and
    exchange it at the store (``POST /v1/auth/exchange {"token": jwt}``) for a short-lived
    store token, fetched again before it expires. The store must have a trust rule matching
    the token's claims."""

    def __init__(
        self,
        audience: str | None = None,
        *,
        request_url: str | None = None,
        request_token: str | None = None,
        refresh_margin: float = 60.0,
    ) -> None:
        super().__init__(refresh_margin)
        url = request_url or os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
        token = request_token or os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        if not url or not token:
            raise ArtifactStoreError(
                "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: "
                "run inside GitHub Actions with `permissions: id-token: write`",
                code="NoWorkloadIdentity",
            )
        self.request_url = url
        self.request_token = token
        self.audience = audience

    def fetch(self) -> Generator[Instruction, Any, tuple[str, float]]:
        url = self.request_url
        if self.audience:
            from urllib.parse import quote

            url += ("&" if "?" in url else "?") + "audience=" + quote(self.audience, safe="")
        reply: Reply = yield Call(
            "GET", url, headers={"Authorization": f"Bearer {self.request_token}"}, auth=False
        )
        jwt = _token_answer(reply, "the Actions OIDC token endpoint").get("value")
        if not isinstance(jwt, str):
            raise ArtifactStoreError("the runner sent no OIDC token", code="NoToken")
        reply = yield Call(
            "POST", "/v1/auth/exchange", json={"token": jwt}, auth=False, idempotent=False
        )
        body = _token_answer(reply, "the token exchange")
        return str(body["token"]), float(body.get("expires_in") or 300)

    def __repr__(self) -> str:
        return f"GitHubActionsAuth(audience={self.audience!r})"
