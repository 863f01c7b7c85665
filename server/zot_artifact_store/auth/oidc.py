"""OpenID Connect bearer tokens (Keycloak and any other conformant issuer), DESIGN.md §5.

A Bearer JWT whose ``iss`` is a configured issuer is verified against that issuer's JWKS
(found through its discovery document, cached for ``jwksMaxAge``, refetched on an unknown
``kid`` at most once per ``jwksMinRefresh``): signature with an asymmetric algorithm only
(never ``none``, never HMAC, so a token "signed" with the public key as an HMAC secret
fails), ``iss`` exactly,
``aud`` containing the configured audience or ``azp`` equal to it, ``exp`` / ``nbf`` with a
small leeway. Roles come from Keycloak's ``realm_access.roles``,
``resource_access.<clientId>.roles`` and ``groups``, mapped to store roles by configuration.

The same token works as the password of HTTP Basic (any user name), which is how registry
clients (``docker login``) present it to the OCI token endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import tornado.httpclient

from .. import jsonbody
from ..config import BUILTIN_ROLES, OIDCIssuerConfig
from ..errors import StoreError
from ..lazy import lazy_module
from .authn import AuthRequest
from .principal import Principal

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

# joserfc (and the cryptography it loads) on the first JWT checked or issued (issue 23).
jwt = lazy_module("joserfc.jwt")
jose_errors = lazy_module("joserfc.errors")
jwk = lazy_module("joserfc.jwk")

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]


def unverified_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(header, claims) of a compact JWS, without checking anything; None if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (
            jsonbody.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


class Issuer:
    """One configured issuer: its discovery document and JWKS, cached."""

    def __init__(self, config: OIDCIssuerConfig, roles: Collection[str] = BUILTIN_ROLES) -> None:
        self.config = config
        self.roles = roles
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str) -> Any:
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(url, request_timeout=10, connect_timeout=5)
        return jsonbody.loads(response.body)

    async def keys(self, kid: str | None) -> KeySet:
        """The issuer's keys, refetched when ``kid`` is unknown (rate limited)."""
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            known = self._keys is not None and (kid is None or kid in self._kids)
            stale = age >= self.config.jwksMaxAge  # keys the issuer dropped stop working
            if self._keys is None or stale or (not known and age >= self.config.jwksMinRefresh):
                try:
                    discovery = await self._get_json(
                        self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                    )
                    if discovery.get("issuer") != self.config.issuer:
                        raise ValueError(
                            f"discovery names issuer {discovery.get('issuer')!r}, "
                            f"not {self.config.issuer!r}"
                        )
                    jwks = await self._get_json(discovery["jwks_uri"])
                    self._keys = jwk.KeySet.import_key_set(jwks)
                    self._kids = {k.get("kid") for k in jwks.get("keys", []) if k.get("kid")}
                    self._fetched_at = time.monotonic()
                    log.info(
                        "fetched OIDC keys",
                        extra={"issuer": self.config.issuer, "kids": sorted(self._kids)},
                    )
                except (OSError, ValueError, KeyError, tornado.httpclient.HTTPError) as exc:
                    log.warning("cannot fetch the keys of %s: %s", self.config.issuer, exc)
                    if self._keys is None:
                        raise StoreError(
                            "ServiceUnavailable", "the identity provider cannot be reached"
                        ) from None
            assert self._keys is not None
            return self._keys

    async def verify(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        if header.get("alg") not in ALGORITHMS:
            raise StoreError("Unauthenticated", f"token algorithm {header.get('alg')!r} refused")
        keys = await self.keys(header.get("kid"))
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
        except (jose_errors.JoseError, ValueError) as exc:
            raise StoreError("Unauthenticated", f"invalid token: {exc}") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=int(self.config.leeway),
            iss={"essential": True, "value": self.config.issuer},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except jose_errors.JoseError as exc:
            raise StoreError("Unauthenticated", f"token rejected: {exc}") from None
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        wanted = self.config.audience
        if wanted not in audiences and claims.get("azp") != wanted:
            raise StoreError("Unauthenticated", f"token is not for audience {wanted!r}")
        return claims

    def principal(self, claims: dict[str, Any]) -> Principal:
        cfg = self.config
        names: set[str] = set()
        realm = claims.get("realm_access")
        if isinstance(realm, dict) and isinstance(realm.get("roles"), list):
            names.update(str(r) for r in realm["roles"])
        resource = claims.get("resource_access")
        client = resource.get(cfg.clientId) if isinstance(resource, dict) else None
        if isinstance(client, dict) and isinstance(client.get("roles"), list):
            names.update(str(r) for r in client["roles"])
        groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
        roles = set()
        for name in names:
            mapped = cfg.roleMap.get(name, name if name in self.roles else None)
            if mapped:
                roles.add(mapped)
        for group in groups:
            if str(group) in cfg.groupMap:
                roles.add(cfg.groupMap[str(group)])
        sub = str(claims.get("sub", ""))
        return Principal(
            id=f"oidc:{cfg.issuer}#{sub}",
            name=str(claims.get("preferred_username") or sub),
            roles=frozenset(roles),
            groups=frozenset(str(g).lstrip("/") for g in groups),
            source="oidc",
        )


class OIDCAuthenticator:
    def __init__(
        self, issuers: list[OIDCIssuerConfig], roles: Collection[str] = BUILTIN_ROLES
    ) -> None:
        self._issuers = {cfg.issuer: Issuer(cfg, roles) for cfg in issuers}

    async def verify(self, token: str) -> Principal | None:
        """The principal of a token from a configured issuer; None when the token is not a
        JWT or names another issuer (another authenticator may claim it)."""
        parsed = unverified_claims(token)
        if parsed is None:
            return None
        header, claims = parsed
        issuer = self._issuers.get(claims.get("iss"))  # type: ignore[arg-type]
        if issuer is None:
            return None
        return issuer.principal(await issuer.verify(token, header))

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return await self.verify(value.strip())
