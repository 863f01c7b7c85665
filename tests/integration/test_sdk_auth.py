"""The SDK's credentials against the real server: HTTP Basic (root), API tokens (created,
listed, revoked through the SDK), ``Client.from_env``, OAuth client credentials against a real
OpenID provider (token cached, refreshed before expiry), the GitHub Actions exchange (a
runner-shaped token endpoint serving the provider's tokens), presigned URLs with
authentication on, and the audit trail's iterator."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.oidc import OIDCProvider, RunnerTokenEndpoint
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from zot_artifacts import (
    AccessDeniedError,
    ArtifactStoreError,
    AuthenticationError,
    BasicAuth,
    Client,
    OIDCClientCredentials,
    TokenAuth,
)

AUDIENCE = "zot-artifact-store"
SECRET = "client-secret-123"


def test_basic_tokens_env_presign_and_audit(
    auth_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"sdk-auth-{uuid.uuid4().hex[:8]}"
    with Client(auth_server.url, auth=BasicAuth(ROOT_USER, ROOT_PASSWORD)) as root:
        root.create_bucket(bucket)
        writer = root.create_token("sdk-writer", ["writer"])
        reader = root.create_token("sdk-reader", ["reader"], expires_in=600)
        assert writer.secret and writer.secret.startswith("zat_") and writer.roles == ["writer"]
        listed = {t.id: t for t in root.list_tokens()}
        assert listed[reader.id].expires_at and listed[reader.id].secret is None

    with Client(auth_server.url) as anonymous:
        with pytest.raises(AuthenticationError) as unauth:
            anonymous.upload(bucket, "a.txt", b"x")
    assert unauth.value.http_status == 401 and unauth.value.code == "Unauthenticated"
    with Client(auth_server.url, auth=BasicAuth(ROOT_USER, "wrong")) as wrong:
        with pytest.raises(AuthenticationError):
            wrong.list_buckets()

    assert writer.secret and reader.secret
    with Client(auth_server.url, auth=TokenAuth(writer.secret)) as w:
        assert w.upload(bucket, "a.txt", b"written").size == 7
        assert w.whoami() == f"token:{writer.id}"
        answer = w.authorize("admin:ManageKeys", "admin:keys")
        assert answer["allowed"] is False and answer["principal"] == f"token:{writer.id}"
        assert w.authorize("s3:PutObject", f"{bucket}/b.txt")["allowed"] is True
        url = w.presign(bucket, "a.txt", expires_in=120)
        put_url = w.presign(bucket, "b.txt", method="PUT", expires_in=120)
    # Presigned: no credentials needed, exactly that method on exactly that object.
    assert httpx.get(url).content == b"written"
    assert httpx.put(url, content=b"nope").status_code == 403
    assert httpx.get(url.replace("a.txt", "b.txt")).status_code == 403
    assert httpx.put(put_url, content=b"by url").status_code in (200, 201)

    monkeypatch.setenv("ZOT_ARTIFACTS_URL", auth_server.url)
    monkeypatch.setenv("ZOT_ARTIFACTS_TOKEN", reader.secret)
    with Client.from_env() as r:
        assert r.head(bucket, "b.txt").size == 6
        with pytest.raises(AccessDeniedError) as denied:
            r.upload(bucket, "c.txt", b"x")
        assert denied.value.http_status == 403 and not denied.value.retryable
        with pytest.raises(AccessDeniedError):
            r.presign(bucket, "c.txt", method="PUT")  # may not PUT, so may not presign it
    monkeypatch.delenv("ZOT_ARTIFACTS_TOKEN")
    monkeypatch.setenv("ZOT_ARTIFACTS_USERNAME", ROOT_USER)
    monkeypatch.setenv("ZOT_ARTIFACTS_PASSWORD", ROOT_PASSWORD)
    with Client.from_env() as root:
        root.revoke_token(reader.id)

        # The audit trail, newest first, across pages of 2.
        # Audit records are written in batches: wait for the denied upload's record itself.
        def denied_upload_recorded(records: list[dict]) -> bool:
            return any(r["decision"] == "deny" and r["action"] == "s3:PutObject" for r in records)

        deadline = time.monotonic() + 10
        records: list[dict] = []
        while time.monotonic() < deadline and not denied_upload_recorded(records):
            records = list(root.audit(principal=f"token:{reader.id}", page_size=2))
            time.sleep(0.2)
        assert denied_upload_recorded(records)
        assert records == sorted(records, key=lambda r: r["time"], reverse=True)
    with Client(auth_server.url, auth=TokenAuth(reader.secret)) as revoked:
        with pytest.raises(AuthenticationError):
            revoked.head(bucket, "b.txt")
    monkeypatch.delenv("ZOT_ARTIFACTS_URL")
    with pytest.raises(ArtifactStoreError) as err:
        Client.from_env()
    assert err.value.code == "NoConfiguration"


# ---- OpenID Connect -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    provider = OIDCProvider(
        {
            "audience": AUDIENCE,
            "access_token_ttl": 3,
            "clients": [
                {"client_id": "ci-robot", "client_secret": SECRET, "roles": ["zas-writer"]},
                {
                    "client_id": "gh-release",
                    "client_secret": SECRET,
                    "claims": {"repository": "acme/app", "ref": "refs/heads/main"},
                },
            ],
        },
        tmp_path_factory.mktemp("sdk-oidc"),
    ).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def oidc_server(
    idp: OIDCProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("sdk-oidc-server")
    config = {
        "auth": {
            "oidc": [
                {"issuer": idp.issuer, "audience": AUDIENCE, "roleMap": {"zas-writer": "writer"}}
            ],
            "trust": [
                {
                    "name": "acme-releases",
                    "issuer": idp.issuer,
                    "audience": AUDIENCE,
                    "claims": {"repository": "acme/*", "ref": "refs/heads/main"},
                    "roles": ["writer"],
                    "expiry": "10m",
                }
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


def test_oidc_client_credentials_cached_and_refreshed(
    oidc_server: ServerProcess, idp: OIDCProvider
) -> None:
    auth = OIDCClientCredentials("ci-robot", SECRET, issuer=idp.issuer, refresh_margin=1.5)
    bucket = f"sdk-oidc-{uuid.uuid4().hex[:8]}"
    with Client(oidc_server.url, auth=auth) as c:
        assert c.create_bucket(bucket).owner == f"oidc:{idp.issuer}#ci-robot"
        c.upload(bucket, "a.txt", b"one")
        c.upload(bucket, "b.txt", b"two")
        assert auth.fetches == 1  # cached
        time.sleep(1.7)  # within refresh_margin of the 3 s expiry
        assert c.head(bucket, "a.txt").size == 3
        assert auth.fetches == 2
    bad = OIDCClientCredentials("ci-robot", "wrong-secret", issuer=idp.issuer)
    with Client(oidc_server.url, auth=bad) as c:
        with pytest.raises(ArtifactStoreError) as err:
            c.list_buckets()
    assert err.value.http_status in (400, 401)  # the provider's refusal, not the store's


def test_github_actions_exchange(
    oidc_server: ServerProcess, idp: OIDCProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = RunnerTokenEndpoint(idp, "runner-secret")
    try:
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", runner.url)
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-secret")
        bucket = f"sdk-gha-{uuid.uuid4().hex[:8]}"
        with Client.from_github_actions(oidc_server.url, audience=AUDIENCE) as c:
            created = c.create_bucket(bucket)
            assert created.owner == "workload:acme-releases:gh-release"
            assert c.upload(bucket, "release.tar", b"artifact").size == 8
        assert runner.audiences == [AUDIENCE]
        # A token for another audience is refused by the store (no rule trusts it).
        with Client.from_github_actions(oidc_server.url, audience="someone-else") as c:
            with pytest.raises(AuthenticationError):
                c.list_buckets()
        # The wrong runner secret: the runner's refusal.
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "stolen")
        with Client.from_github_actions(oidc_server.url) as c:
            with pytest.raises(AuthenticationError):
                c.list_buckets()
        monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL")
        with pytest.raises(ArtifactStoreError) as err:
            Client.from_github_actions(oidc_server.url)
        assert err.value.code == "NoWorkloadIdentity"
    finally:
        runner.close()
