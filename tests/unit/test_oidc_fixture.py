"""The OIDC test fixture itself (``tests/fixtures/oidc.py`` + ``provider.js``): a real
oidc-provider process serving discovery and JWKS, issuing Keycloak-shaped RS256 JWT access
tokens for the client_credentials and password grants, refusing bad credentials, and rotating
its signing key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet

from tests.fixtures.oidc import DEFAULT_AUDIENCE, DEFAULT_SECRET, OIDCProvider

SECRET = DEFAULT_SECRET
CONFIG: dict[str, Any] = {
    "audience": DEFAULT_AUDIENCE,
    "clients": [
        {
            "client_id": "ci-robot",
            "client_secret": SECRET,
            "roles": ["zas-writer", "offline_access"],
            "client_roles": {DEFAULT_AUDIENCE: ["writer"], "other": ["x"]},
            "groups": ["/ci", "/ci/robots"],
        },
        {
            "client_id": "zas-cli",
            "client_secret": SECRET,
            "grant_types": ["password"],
        },
    ],
    "users": [
        {
            "username": "alice",
            "password": "alice-pw",
            "sub": "alice-0001",
            "roles": ["zas-reader"],
            "client_roles": {DEFAULT_AUDIENCE: ["reader"]},
            "groups": ["/viewers"],
        },
    ],
}


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    provider = OIDCProvider(CONFIG).start()
    try:
        yield provider
    finally:
        provider.stop()


def header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def verify(idp: OIDCProvider, token: str) -> dict[str, Any]:
    claims = jwt.decode(token, KeySet.import_key_set(idp.jwks())).claims  # type: ignore[arg-type]
    assert claims["iss"] == idp.issuer
    now = time.time()
    assert claims["iat"] <= now + 5 < claims["exp"] + 5
    assert claims["exp"] > now
    return dict(claims)


def test_discovery_and_jwks(idp: OIDCProvider) -> None:
    assert idp.url == idp.issuer == f"http://127.0.0.1:{idp.port}"
    meta = idp.discovery()
    assert meta["issuer"] == idp.issuer
    assert meta["token_endpoint"] == f"{idp.issuer}/token"
    assert {"client_credentials", "password"} <= set(meta["grant_types_supported"])
    assert meta["jwks_uri"].startswith(idp.issuer)
    keys = idp.jwks()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]
    assert "d" not in keys[0]  # public keys only


def test_client_credentials_token(idp: OIDCProvider) -> None:
    token = idp.client_credentials_token("ci-robot", SECRET)
    assert header(token)["alg"] == "RS256"
    claims = verify(idp, token)
    assert claims["aud"] == DEFAULT_AUDIENCE
    assert claims["azp"] == "ci-robot"
    assert claims["sub"] == "ci-robot"
    assert claims["typ"] == "Bearer"
    assert claims["preferred_username"] == "service-account-ci-robot"
    assert claims["realm_access"] == {"roles": ["zas-writer", "offline_access"]}
    assert claims["resource_access"] == {
        DEFAULT_AUDIENCE: {"roles": ["writer"]},
        "other": {"roles": ["x"]},
    }
    assert claims["groups"] == ["/ci", "/ci/robots"]
    # Another audience on request (RFC 8707 resource indicator mapped to aud).
    other = verify(idp, idp.client_credentials_token("ci-robot", SECRET, audience="billing"))
    assert other["aud"] == "billing"


def test_password_token(idp: OIDCProvider) -> None:
    claims = verify(idp, idp.password_token("zas-cli", SECRET, "alice", "alice-pw"))
    assert claims["aud"] == DEFAULT_AUDIENCE
    assert claims["azp"] == "zas-cli"
    assert claims["sub"] == "alice-0001"
    assert claims["preferred_username"] == "alice"
    assert claims["typ"] == "Bearer"
    assert claims["realm_access"] == {"roles": ["zas-reader"]}
    assert claims["resource_access"] == {DEFAULT_AUDIENCE: {"roles": ["reader"]}}
    assert claims["groups"] == ["/viewers"]


def test_bad_credentials_are_refused(idp: OIDCProvider) -> None:
    r = idp.token_response("ci-robot", "wrong", grant_type="client_credentials")
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == "invalid_client"
    r = idp.token_response("nobody", SECRET, grant_type="client_credentials")
    assert r.status_code in (400, 401), r.text
    r = idp.token_response(
        "zas-cli", SECRET, grant_type="password", username="alice", password="nope"
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = idp.token_response(
        "zas-cli", SECRET, grant_type="password", username="mallory", password="alice-pw"
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    # A client limited to the password grant gets no service-account token.
    r = idp.token_response("zas-cli", SECRET, grant_type="client_credentials")
    assert r.status_code == 400, r.text
    with pytest.raises(httpx.HTTPStatusError):
        idp.password_token("zas-cli", "wrong", "alice", "alice-pw")


def test_key_rotation(idp: OIDCProvider) -> None:
    old = idp.client_credentials_token("ci-robot", SECRET)
    old_kid = header(old)["kid"]
    port = idp.port

    new_kid = idp.rotate_keys()
    new = idp.password_token("zas-cli", SECRET, "alice", "alice-pw")
    assert header(new)["kid"] == new_kid != old_kid
    assert idp.port == port  # same socket, same issuer
    kids = [k["kid"] for k in idp.jwks()["keys"]]
    assert set(kids) == {old_kid, new_kid}
    verify(idp, old)  # the old key is still published
    verify(idp, new)
    assert header(idp.client_credentials_token("ci-robot", SECRET))["kid"] == new_kid

    newest_kid = idp.rotate_keys(drop_old=True)
    assert [k["kid"] for k in idp.jwks()["keys"]] == [newest_kid]
    newest = idp.client_credentials_token("ci-robot", SECRET)
    assert header(newest)["kid"] == newest_kid
    verify(idp, newest)
    with pytest.raises(InvalidKeyIdError):
        verify(idp, old)  # its kid is gone from the JWKS
