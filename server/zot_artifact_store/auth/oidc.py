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
import urllib.parse
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
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = 0.0
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str) -> Any:
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(url, request_timeout=10, connect_timeout=5)
        return jsonbody.loads(response.body)

    async def _discover(self) -> dict[str, Any]:
        discovery = await self._get_json(
            self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        if not isinstance(discovery, dict) or discovery.get("issuer") != self.config.issuer:
            found = discovery.get("issuer") if isinstance(discovery, dict) else None
            raise ValueError(f"discovery names issuer {found!r}, not {self.config.issuer!r}")
        self._discovery, self._discovered_at = discovery, time.monotonic()
        return discovery

    async def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document (endpoints), cached for ``jwksMaxAge``."""
        async with self._lock:
            age = time.monotonic() - self._discovered_at
            if self._discovery is not None and age < self.config.jwksMaxAge:
                return self._discovery
            try:
                return await self._discover()
            except (OSError, ValueError, tornado.httpclient.HTTPError) as exc:
                log.warning("cannot fetch the discovery of %s: %s", self.config.issuer, exc)
                if self._discovery is None:
                    raise StoreError(
                        "ServiceUnavailable", "the identity provider cannot be reached"
                    ) from None
                return self._discovery

    async def endpoint(self, name: str) -> str | None:
        """An http(s) endpoint the discovery document names (``authorization_endpoint``,
        ``token_endpoint``, ``end_session_endpoint``, ...); None when it names none."""
        url = (await self.discovery()).get(name)
        return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None

    async def token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST ``form`` to the issuer's token endpoint as a public client (the web UI's login:
        an authorization code with its PKCE verifier, or a refresh token); its JSON answer.
        A refusal (``invalid_grant``, ...) is ``Unauthenticated`` with the issuer's reason; an
        issuer that cannot be reached or answers nonsense, ``ServiceUnavailable``."""
        endpoint = await self.endpoint("token_endpoint")
        if endpoint is None:
            raise StoreError("ServiceUnavailable", "the identity provider names no token endpoint")
        request = tornado.httpclient.HTTPRequest(
            endpoint, method="POST", body=urllib.parse.urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json"},
            request_timeout=10, connect_timeout=5, follow_redirects=False,
        )  # fmt: skip
        try:
            response = await tornado.httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as exc:
            log.warning("cannot reach the token endpoint of %s: %s", self.config.issuer, exc)
            raise StoreError(
                "ServiceUnavailable", "the identity provider cannot be reached"
            ) from None
        try:
            answer = jsonbody.loads(response.body or b"")
        except (ValueError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict):
            raise StoreError(
                "ServiceUnavailable",
                f"the identity provider's token endpoint answered {response.code} without JSON",
            )
        if response.code != 200 or "error" in answer:
            reason = str(answer.get("error", response.code))
            if answer.get("error_description"):
                reason += f": {answer['error_description']}"
            raise StoreError("Unauthenticated", f"the identity provider refused: {reason}"[:500])
        if not isinstance(answer.get("access_token"), str):
            raise StoreError("ServiceUnavailable", "the identity provider returned no access token")
        return answer

    async def keys(self, kid: str | None) -> KeySet:
        """The issuer's keys, refetched when ``kid`` is unknown (rate limited)."""
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            known = self._keys is not None and (kid is None or kid in self._kids)
            stale = age >= self.config.jwksMaxAge  # keys the issuer dropped stop working
            if self._keys is None or stale or (not known and age >= self.config.jwksMinRefresh):
                try:
                    discovery = await self._discover()
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

    async def verify(
        self, token: str, header: dict[str, Any], audience: str | None = None
    ) -> dict[str, Any]:
        """The claims of a JWT this issuer signed, checked as above; ``audience`` instead of
        the configured one (the UI's client id, for its ID tokens)."""
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
        wanted = audience or self.config.audience
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

    def issuer(self, issuer: str) -> Issuer | None:
        return self._issuers.get(issuer)

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
