"""Docker-style token auth for OCI clients (the distribution "token authentication" flow).

A client that gets ``401 WWW-Authenticate: Bearer realm=…,service=…,scope=…`` from ``/v2``
asks the realm (``GET /v2/token?service=…&scope=repository:<name>:pull,push``) with HTTP
Basic (or nothing, for anonymous pulls), and gets a short-lived JWT granting the subset of the
requested actions the Authorizer allows. The JWT then authenticates ``/v2`` requests as a
principal limited to exactly those grants.

Tokens are HS256 JWTs (joserfc) signed with a key every worker and replica shares: a file
under ``storage.rootDirectory`` generated on first start, or ``auth.token.keyFile``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from .authn import AuthRequest
from .oidc import jose_errors, jwk, jwt, unverified_claims
from .principal import Principal

if TYPE_CHECKING:
    from joserfc.jwk import OctKey

ISSUER = "zot-artifact-store"
KEY_FILENAME = "registry-token.key"
# Registry scope actions → the Authorizer's actions.
ACTIONS = {"pull": "oci:pull", "push": "oci:push", "delete": "oci:delete"}


@dataclass(frozen=True)
class Scope:
    """``repository:<name>:<actions>`` or ``registry:catalog:*``."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not kind or not name:
            raise StoreError("InvalidArgument", f"malformed scope {text!r}")
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def wanted(self) -> list[tuple[str, str, str]]:
        """(scope action, Authorizer action, resource) for each action asked for."""
        if self.type == "registry" and self.name == "catalog":
            return [("*", "oci:catalog", "")]
        if self.type != "repository":
            return []
        actions = list(ACTIONS) if "*" in self.actions else self.actions
        return [(a, ACTIONS[a], f"repo:{self.name}") for a in actions if a in ACTIONS]


Decide = Callable[[Principal, str, str], Awaitable[bool]]


class RegistryTokens:
    def __init__(self, key: bytes, *, service: str, expiry: float) -> None:
        self._secret = key
        self.service = service
        self.expiry = expiry

    @cached_property
    def _key(self) -> OctKey:
        return jwk.OctKey.import_key(self._secret)

    async def issue(
        self, principal: Principal, scopes: Iterable[Scope], decide: Decide
    ) -> dict[str, Any]:
        """The token response for ``principal``: each requested action it may perform."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            granted = [
                scope_action
                for scope_action, action, resource in scope.wanted()
                if await decide(principal, action, resource)
            ]
            if granted:
                access.append({"type": scope.type, "name": scope.name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": self.service,
            "sub": principal.id,
            "name": principal.name,
            "anon": principal.is_anonymous,
            "iat": now,
            "nbf": now - 5,
            "exp": now + int(self.expiry),
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, self._key)
        return {
            "token": token,
            "access_token": token,
            "expires_in": int(self.expiry),
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }

    def issue_session(self, principal: Principal, ttl: float) -> dict[str, Any]:
        """A short-lived store token standing for ``principal`` with its roles (the answer of
        the workload identity exchange); a Bearer credential anywhere, and a registry login
        password."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": self.service,
            "kind": "session",
            "sub": principal.id,
            "name": principal.name,
            "roles": sorted(principal.roles),
            "groups": sorted(principal.groups),
            "src": principal.source,
            "iat": now,
            "nbf": now - 5,
            "exp": now + int(ttl),
            "jti": uuid.uuid4().hex,
        }
        if principal.claims:  # the platform's verified claims, carried for provenance
            claims["wl"] = dict(principal.claims)
        token = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, self._key)
        return {
            "token": token,
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(ttl),
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }

    async def verify_password(self, token: str) -> Principal | None:
        """A session token presented as a Basic password (registry login)."""
        principal = self.verify(token)
        return principal if principal is not None and principal.scopes is None else None

    def verify(self, token: str) -> Principal | None:
        """The principal a token stands for; None when it is not one of ours."""
        if unverified_claims(token) is None:  # not a JWT, or JSON nested too deep to parse
            return None
        try:
            decoded = jwt.decode(token, self._key, algorithms=["HS256"])
        except (jose_errors.JoseError, ValueError):
            return None
        claims = decoded.claims
        if claims.get("iss") != ISSUER:
            return None
        registry = jwt.JWTClaimsRegistry(
            aud={"essential": True, "value": self.service},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except jose_errors.JoseError:
            raise StoreError("Unauthenticated", "the token has expired") from None
        if claims.get("kind") == "session":
            workload = claims.get("wl") if isinstance(claims.get("wl"), dict) else {}
            return Principal(
                id=str(claims.get("sub")),
                name=str(claims.get("name")),
                roles=frozenset(str(r) for r in claims.get("roles") or ()),
                groups=frozenset(str(g) for g in claims.get("groups") or ()),
                source=str(claims.get("src") or "session"),
                claims=tuple(sorted((str(k), str(v)) for k, v in workload.items())),
                session=str(claims.get("jti") or ""),
            )
        grants: set[str] = set()
        for entry in claims.get("access") or []:
            scope = Scope(
                str(entry.get("type")), str(entry.get("name")), tuple(entry.get("actions") or ())
            )
            grants.update(f"{action} {resource}" for _, action, resource in scope.wanted())
        anonymous = bool(claims.get("anon"))
        return Principal(
            id=str(claims.get("sub")),
            name=str(claims.get("name")),
            source="anonymous" if anonymous else "registry-token",
            scopes=frozenset(grants),
        )


class RegistryTokenAuthenticator:
    """``Authorization: Bearer <registry token>`` → the token's limited principal."""

    def __init__(self, tokens: RegistryTokens) -> None:
        self._tokens = tokens

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        header = request.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        # Not one of ours: another authenticator (OIDC, API tokens) may claim it.
        return self._tokens.verify(value.strip())
