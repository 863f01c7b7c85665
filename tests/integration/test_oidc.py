"""OpenID Connect against two real providers (panva's oidc-provider, Keycloak-shaped tokens
from their own token endpoints) and the running server: roles from realm roles, client roles
and groups; the token as Bearer on /v1 and as the password of the registry login; key
rotation; and the negative cases, each proven to write nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fixtures.oidc import OIDCProvider
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)
AUDIENCE = "zot-artifact-store"
SECRET = "client-secret-123"


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[OIDCProvider]]:
    base = tmp_path_factory.mktemp("oidc")
    realm = OIDCProvider(
        {
            "audience": AUDIENCE,
            "clients": [
                # A CI robot: realm role "zas-writer", mapped to writer.
                {"client_id": "ci-robot", "client_secret": SECRET, "roles": ["zas-writer"]},
                # Reader through a client role of the store's own client.
                {
                    "client_id": "dashboard",
                    "client_secret": SECRET,
                    "client_roles": {AUDIENCE: ["reader"]},
                },
                # CI platform tokens (GitHub Actions- and Kubernetes-shaped claims).
                {
                    "client_id": "gh-release",
                    "client_secret": SECRET,
                    "claims": {
                        "repository": "acme/app",
                        "ref": "refs/heads/main",
                        "workflow": "release",
                    },
                },
                {
                    "client_id": "gh-fork",
                    "client_secret": SECRET,
                    "claims": {"repository": "evil/app", "ref": "refs/heads/main"},
                },
                {
                    "client_id": "k8s-builder",
                    "client_secret": SECRET,
                    "claims": {
                        "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "b"}}
                    },
                },
                # Tokens for someone else's API.
                {
                    "client_id": "other-app",
                    "client_secret": SECRET,
                    "roles": ["zas-writer"],
                    "audience": "another-service",
                },
            ],
            "users": [
                {
                    "username": "alice",
                    "password": "alice-pw",
                    "sub": "alice-0001",
                    "groups": ["/viewers"],
                },
                {"username": "bob", "password": "bob-pw", "sub": "bob-0002"},
            ],
        },
        base / "realm",
    ).start()
    # A second issuer whose tokens live 2 seconds.
    short = OIDCProvider(
        {
            "audience": AUDIENCE,
            "access_token_ttl": 2,
            "clients": [{"client_id": "nightly", "client_secret": SECRET, "roles": ["writer"]}],
        },
        base / "short",
    ).start()
    yield [realm, short]
    realm.stop()
    short.stop()


@pytest.fixture(scope="module")
def server(
    providers: list[OIDCProvider], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    realm, short = providers
    base = tmp_path_factory.mktemp("oidc-server")
    config = {
        "auth": {
            "oidc": [
                {
                    "issuer": realm.issuer,
                    "audience": AUDIENCE,
                    "roleMap": {"zas-writer": "writer"},
                    "groupMap": {"/viewers": "reader"},
                    "jwksMinRefresh": "1s",
                    "jwksMaxAge": "3s",
                },
                {"issuer": short.issuer, "audience": AUDIENCE, "leeway": "0s"},
            ],
            "trust": [
                {
                    "name": "acme-releases",
                    "issuer": realm.issuer,
                    "audience": AUDIENCE,
                    "claims": {"repository": "acme/*", "ref": "refs/heads/main"},
                    "roles": ["writer"],
                    "expiry": "10m",
                },
                {
                    "name": "ci-namespace",
                    "issuer": realm.issuer,
                    "audience": AUDIENCE,
                    "claims": {"kubernetes.io/namespace": "ci"},
                    "roles": ["reader"],
                },
            ],
        }
    }
    proc = ServerProcess(
        base / "data",
        config=config,
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    ).start()
    yield proc
    proc.stop()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict]:
    header, claims, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(claims))),
    )


def writes(server: ServerProcess, token: str) -> int:
    """Try to create a bucket and an object with ``token``; the status, after checking that
    a refusal left nothing behind."""
    bucket = f"oidc-{uuid.uuid4().hex[:10]}"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url) as c:
        r = c.put(f"/v1/buckets/{bucket}", headers=headers)
        if r.status_code == 201:
            r = c.put(f"/v1/buckets/{bucket}/objects/a.txt", content=b"x", headers=headers)
        else:
            assert c.get(f"/v1/buckets/{bucket}", auth=ROOT).status_code == 404
        return r.status_code


def test_roles_from_realm_roles_client_roles_and_groups(
    server: ServerProcess, providers: list[OIDCProvider]
) -> None:
    realm = providers[0]
    robot = realm.client_credentials_token("ci-robot", SECRET)
    header, claims = parts(robot)
    assert header["alg"] == "RS256" and claims["realm_access"] == {"roles": ["zas-writer"]}
    assert writes(server, robot) == 201
    dashboard = realm.client_credentials_token("dashboard", SECRET)
    alice = realm.password_token("ci-robot", SECRET, "alice", "alice-pw")
    bob = realm.password_token("ci-robot", SECRET, "bob", "bob-pw")
    with httpx.Client(base_url=server.url) as c:
        for reader in (dashboard, alice):
            r = c.get("/v1/buckets", headers={"Authorization": f"Bearer {reader}"})
            assert r.status_code == 200, r.text
            assert writes(server, reader) == 403
        # Bob has no role: authenticated, but allowed nothing.
        r = c.get("/v1/buckets", headers={"Authorization": f"Bearer {bob}"})
        assert r.status_code == 403
        # Whose requests they were, in the audit trail.
        principal = f"oidc:{realm.issuer}#alice-0001"
        deadline = time.monotonic() + 10
        decisions: set[str] = set()
        while time.monotonic() < deadline and decisions != {"allow", "deny"}:
            records = c.get("/v1/audit", params={"principal": principal}, auth=ROOT).json()
            decisions = {r["decision"] for r in records["records"]}
            time.sleep(0.1)
        assert decisions == {"allow", "deny"}


def test_the_token_logs_registry_clients_in(
    server: ServerProcess, providers: list[OIDCProvider]
) -> None:
    robot = providers[0].client_credentials_token("ci-robot", SECRET)
    with httpx.Client(base_url=server.url) as c:
        r = c.get("/v2/token", params={"scope": "repository:ci/app:pull,push"},
                  auth=("oauth2accesstoken", robot))  # fmt: skip
        assert r.status_code == 200, r.text
        registry = {"Authorization": f"Bearer {r.json()['token']}"}
        data = b"pushed with an OIDC login"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = c.post("/v2/ci/app/blobs/uploads/", params={"digest": digest}, content=data,
                   headers=registry)  # fmt: skip
        assert r.status_code == 201, r.text


def test_a_second_issuer_and_expiry(server: ServerProcess, providers: list[OIDCProvider]) -> None:
    short = providers[1]
    token = short.client_credentials_token("nightly", SECRET)
    assert writes(server, token) == 201
    time.sleep(3)  # the token lived 2 s; this issuer allows no leeway
    assert writes(server, token) == 401


def test_forged_and_foreign_tokens_are_refused(
    server: ServerProcess, providers: list[OIDCProvider]
) -> None:
    realm = providers[0]
    good = realm.client_credentials_token("ci-robot", SECRET)
    header, claims = parts(good)
    signing_input_sig = good.rsplit(".", 1)

    # Tampered payload: claim admin, keep the signature.
    tampered = dict(claims, realm_access={"roles": ["admin"]})
    forged = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(tampered).encode())}."
    forged += signing_input_sig[1]
    # alg "none".
    none = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
    none += f"{b64(json.dumps(claims).encode())}."
    # HS256 "signed" with the provider's RSA public key as the HMAC secret.
    jwks = realm.jwks()
    public = RSAKey.import_key(jwks["keys"][0]).public_key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = b64(json.dumps({"alg": "HS256", "kid": header["kid"]}).encode())
    hs_input = f"{hs_header}.{b64(json.dumps(claims).encode())}"
    hs256 = f"{hs_input}.{b64(hmac.new(pem, hs_input.encode(), hashlib.sha256).digest())}"
    # A well-formed token signed by a key the issuer never published (unknown kid).
    rogue_key = RSAKey.generate_key(2048, parameters={"kid": "rogue"})
    rogue = jwt.encode({"alg": "RS256", "kid": "rogue"}, claims, rogue_key)
    # The wrong audience: a genuine token of the same issuer, for another service.
    other = realm.client_credentials_token("other-app", SECRET)
    assert parts(other)[1]["aud"] == "another-service"
    # An issuer this server does not trust.
    unknown_iss = jwt.encode(
        {"alg": "RS256", "kid": "rogue"}, dict(claims, iss="https://evil.example"), rogue_key
    )
    for bad in (forged, none, hs256, rogue, other, unknown_iss):
        assert writes(server, bad) == 401, parts(bad)
        with httpx.Client(base_url=server.url) as c:
            r = c.get("/v2/token", params={"scope": "repository:ci/x:push"},
                      auth=("oauth2accesstoken", bad))  # fmt: skip
            assert r.status_code == 401
    assert writes(server, good) == 201  # and the genuine one still works
    # Each refusal is in the audit trail, with why.
    whys = (
        "algorithm 'none' refused",
        "algorithm 'HS256' refused",
        "not for audience",
        "invalid token",
        "the bearer token is not valid here",
    )
    with httpx.Client(base_url=server.url) as c:
        deadline, reasons = time.monotonic() + 10, ""
        while time.monotonic() < deadline and not all(w in reasons for w in whys):
            params = {"action": "authenticate", "decision": "deny", "limit": "1000"}
            records = c.get("/v1/audit", params=params, auth=ROOT).json()["records"]
            reasons = " | ".join(r["reason"] for r in records)
            time.sleep(0.1)
    for why in whys:
        assert why in reasons, (why, reasons)


def test_key_rotation(server: ServerProcess, providers: list[OIDCProvider]) -> None:
    realm = providers[0]
    old = realm.client_credentials_token("ci-robot", SECRET)
    assert writes(server, old) == 201
    new_kid = realm.rotate_keys()
    new = realm.client_credentials_token("ci-robot", SECRET)
    assert parts(new)[0]["kid"] == new_kid != parts(old)[0]["kid"]
    time.sleep(1.1)  # the server refetches on an unknown kid at most once a second here
    assert writes(server, new) == 201  # the unknown kid made the server refetch the JWKS
    assert writes(server, old) == 201  # the old key is still published
    realm.rotate_keys(drop_old=True)
    time.sleep(3.2)  # jwksMaxAge: the cached key set expires
    assert writes(server, old) == 401  # its key is gone from the issuer
    newest = realm.client_credentials_token("ci-robot", SECRET)
    assert writes(server, newest) == 201


def test_provider_refuses_bad_client_and_user_credentials(providers: list[OIDCProvider]) -> None:
    realm = providers[0]
    r = realm.token_response("ci-robot", "wrong", grant_type="client_credentials")
    assert r.status_code in (400, 401)
    r = realm.token_response(
        "ci-robot", SECRET, grant_type="password", username="alice", password="nope"
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_ci_workload_identity_exchange(
    server: ServerProcess, providers: list[OIDCProvider]
) -> None:
    realm = providers[0]
    with httpx.Client(base_url=server.url) as c:
        platform = realm.client_credentials_token("gh-release", SECRET)
        r = c.post("/v1/auth/exchange", json={"token": platform})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["rule"] == "acme-releases" and answer["roles"] == ["writer"]
        assert answer["principal"] == "workload:acme-releases:gh-release"
        assert 0 < answer["expires_in"] <= 600
        assert r.headers["cache-control"] == "no-store"
        store_token = answer["token"]
        assert writes(server, store_token) == 201
        # RFC 8693's form works too, and the store token logs registry clients in.
        r = c.post("/v1/auth/exchange", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": platform,
        })  # fmt: skip
        assert r.status_code == 200, r.text
        r = c.get("/v2/token", params={"scope": "repository:acme/app:push"},
                  auth=("ci", store_token))  # fmt: skip
        assert r.status_code == 200
        assert r.json()["token"]

        # Kubernetes-shaped nested claims, another rule, other roles.
        k8s = realm.client_credentials_token("k8s-builder", SECRET)
        r = c.post("/v1/auth/exchange", json={"token": k8s})
        assert r.status_code == 200 and r.json()["roles"] == ["reader"]
        assert writes(server, r.json()["token"]) == 403

        # A fork's token: genuine, but its repository claim matches no rule.
        fork = realm.client_credentials_token("gh-fork", SECRET)
        r = c.post("/v1/auth/exchange", json={"token": fork})
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "AccessDenied"
        # Not a token, a forged one, a token of an issuer no rule trusts.
        _, claims = parts(platform)
        tampered = platform.split(".")
        tampered[1] = b64(json.dumps(dict(claims, repository="acme/app2")).encode())
        for bad, status in (
            ("not-a-jwt", 401),
            (".".join(tampered), 401),
            (providers[1].client_credentials_token("nightly", SECRET), 401),
        ):
            r = c.post("/v1/auth/exchange", json={"token": bad})
            assert r.status_code == status, (bad, r.text)
        assert c.post("/v1/auth/exchange", json={}).status_code == 400
        assert c.post("/v1/auth/exchange", json={"token": platform, "x": 1}).status_code == 400
        # The refusals are in the audit trail.
        deadline = time.monotonic() + 10
        reasons: list[str] = []
        while time.monotonic() < deadline and not any("no trust rule" in x for x in reasons):
            records = c.get(
                "/v1/audit", params={"action": "authenticate", "decision": "deny"}, auth=ROOT
            ).json()["records"]
            reasons = [x["reason"] for x in records]
            time.sleep(0.1)
        assert any("match no trust rule" in x for x in reasons), reasons
