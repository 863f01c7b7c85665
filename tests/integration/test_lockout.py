"""Failed authentications are rate limited per (claimed identity, source) and per source, in
every API's dialect, and the block lifts when the window has passed. Guesses never lock the
owner of a credential out: from another source the right secret gets in, and the
per-identity ceiling only slows attempts down. Counts live in the metadata store, so replicas
share them. (Sources other than 127.0.0.1 are set with X-Forwarded-For: the tests' address
is the server's trusted proxy.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

WINDOW_S = 3
IDENTITY_ATTEMPTS = 6
IDENTITY_DELAY_S = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("lockout") / "data",
        env={
            "ZAS_ROOT_USER": ROOT_USER,
            "ZAS_ROOT_PASSWORD": ROOT_PASSWORD,
            "ZAS_AUTH_LOCKOUT_ATTEMPTS": "3",
            "ZAS_AUTH_LOCKOUT_ADDRESSATTEMPTS": "8",
            "ZAS_AUTH_LOCKOUT_WINDOW": f"{WINDOW_S}s",
            "ZAS_AUTH_LOCKOUT_IDENTITYATTEMPTS": str(IDENTITY_ATTEMPTS),
            "ZAS_AUTH_LOCKOUT_IDENTITYDELAY": f"{IDENTITY_DELAY_S}s",
            "ZAS_HTTP_TRUSTEDPROXIES": "127.0.0.1/32",
        },
    ).start()
    yield proc
    proc.stop()


def source(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


# Where the tests' own administration comes from: a source no test guesses from.
ADMIN = source("192.0.2.1")


def admin_s3(server: ServerProcess) -> BaseClient:
    s3 = s3_client(server.url, ROOT_USER, ROOT_PASSWORD, signature_version="s3v4")

    def from_admin(request: Any, **_: Any) -> None:
        for name, value in ADMIN.items():
            request.headers[name] = value

    s3.meta.events.register("before-sign.s3", from_admin)
    return s3


def test_identity_then_address_lockout_and_release(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as c:
        for _ in range(3):
            assert c.get("/v1/buckets", auth=("mallory", "guess")).status_code == 401
        r = c.get("/v1/buckets", auth=("mallory", "guess"))
        assert r.status_code == 429
        assert r.json()["code"] == "TooManyRequests" and r.json()["retryable"] is True
        assert 1 <= int(r.headers["retry-after"]) <= WINDOW_S
        # Another identity from the same address is not blocked yet ...
        assert c.get("/v1/buckets", auth=(ROOT_USER, ROOT_PASSWORD)).status_code == 200
        # ... nor are requests without credentials (public reads stay possible).
        assert c.get("/v1/buckets").status_code == 401
        # The registry speaks its own dialect.
        r = c.get("/v2/token", auth=("mallory", "guess"))
        assert r.status_code == 429 and r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        # Five more failures under other names: the address is over its limit of 8.
        for i in range(5):
            assert c.get("/v1/buckets", auth=(f"user{i}", "guess")).status_code == 401
        assert c.get("/v1/buckets", auth=(ROOT_USER, ROOT_PASSWORD)).status_code == 429
        time.sleep(WINDOW_S + 0.5)
        assert c.get("/v1/buckets", auth=(ROOT_USER, ROOT_PASSWORD)).status_code == 200
        assert c.get("/v1/buckets", auth=("mallory", "guess")).status_code == 401
        records = c.get(
            "/v1/audit",
            params={"action": "authenticate", "limit": "100"},
            auth=(ROOT_USER, ROOT_PASSWORD),
        ).json()["records"]
        assert any(r["reason"] == "too many failed authentications" for r in records)


def test_s3_signatures_count_too(server: ServerProcess) -> None:
    s3 = s3_client(server.url, ROOT_USER, "not-the-secret")
    time.sleep(WINDOW_S + 0.5)  # a fresh window for this address
    codes = []
    for _ in range(4):
        with pytest.raises(ClientError) as exc:
            s3.list_buckets()
        codes.append(exc.value.response["Error"]["Code"])
    assert codes == ["SignatureDoesNotMatch"] * 3 + ["SlowDown"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert int(exc.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1


def new_token(c: httpx.Client, name: str) -> tuple[str, str]:
    r = c.post(
        "/v1/tokens",
        json={"name": name, "roles": ["reader"]},
        auth=(ROOT_USER, ROOT_PASSWORD),
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


def test_guesses_from_one_source_never_lock_the_owner_out(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as c:
        token_id, secret = new_token(c, "ci-owner")
        guess = {"Authorization": f"Bearer zat_{token_id}_{'x' * 43}"}
        attacker, owner = source("198.51.100.7"), source("192.0.2.10")
        for _ in range(3):
            assert c.get("/v1/buckets", headers={**guess, **attacker}).status_code == 401
        r = c.get("/v1/buckets", headers={**guess, **attacker})
        assert r.status_code == 429 and r.json()["code"] == "TooManyRequests"
        # The attacker's source is throttled for this token, even with the right secret ...
        right = {"Authorization": f"Bearer {secret}"}
        assert c.get("/v1/buckets", headers={**right, **attacker}).status_code == 429
        # ... but its owner, elsewhere, is not: the right secret gets in at once.
        started = time.monotonic()
        assert c.get("/v1/buckets", headers={**right, **owner}).status_code == 200
        assert time.monotonic() - started < IDENTITY_DELAY_S
        # Presented as a registry login (Basic, any user name) it is the same identity.
        r = c.get("/v2/token", auth=("whoever", secret), headers=owner)
        assert r.status_code == 200


def test_the_identity_ceiling_slows_attempts_but_never_refuses(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        token_id, secret = new_token(c, "ci-hot")
        guess = {"Authorization": f"Bearer zat_{token_id}_{'y' * 43}"}
        # A distributed guesser: two tries from each of three sources (under the per-source
        # limit), six failures against the token in all: the ceiling.
        for i in range(IDENTITY_ATTEMPTS):
            r = c.get("/v1/buckets", headers={**guess, **source(f"203.0.113.{i // 2 + 1}")})
            assert r.status_code == 401
        started = time.monotonic()
        r = c.get(
            "/v1/buckets", headers={"Authorization": f"Bearer {secret}", **source("192.0.2.99")}
        )
        assert r.status_code == 200  # slowed down, not refused
        assert time.monotonic() - started >= IDENTITY_DELAY_S * 0.9
        # Another credential is not slowed.
        started = time.monotonic()
        assert (
            c.get(
                "/v1/buckets", auth=(ROOT_USER, ROOT_PASSWORD), headers=source("192.0.2.99")
            ).status_code
            == 200
        )
        assert time.monotonic() - started < IDENTITY_DELAY_S


def test_presigned_urls_count_as_guesses(server: ServerProcess) -> None:
    s3 = admin_s3(server)
    s3.create_bucket(Bucket="presigned-guesses")
    s3.put_object(Bucket="presigned-guesses", Key="k", Body=b"v")
    presigner = s3_client(server.url, ROOT_USER, ROOT_PASSWORD, signature_version="s3v4")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": "presigned-guesses", "Key": "k"}
    )
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    with httpx.Client() as c:
        guesser = source("198.51.100.77")
        for _ in range(3):
            assert c.get(forged, headers=guesser).status_code == 403
        r = c.get(forged, headers=guesser)
        assert r.status_code == 429 and "<Code>SlowDown</Code>" in r.text
        assert c.get(url, headers=source("192.0.2.77")).content == b"v"  # the owner's URL works
    # /v1 presigned URLs: a changed signature is a guess against the principal that signed.
    with httpx.Client(base_url=server.url) as c:
        made = c.post(
            "/v1/presign",
            json={"bucket": "presigned-guesses", "key": "k"},
            auth=(ROOT_USER, ROOT_PASSWORD),
            headers=ADMIN,
        ).json()["url"]
        forged = made[:-4] + ("0000" if not made.endswith("0000") else "1111")
        guesser = source("198.51.100.78")
        for _ in range(3):
            assert c.get(forged, headers=guesser).status_code == 403
        assert c.get(forged, headers=guesser).status_code == 429
        assert c.get(made, headers=guesser).status_code == 429  # this source, this principal
        assert c.get(made, headers=source("192.0.2.78")).content == b"v"


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    base = tmp_path_factory.mktemp("lockout-replicas")
    shared = base / "shared-storage"
    env = {
        "ZAS_STORAGE_ROOTDIRECTORY": str(shared),
        "ZAS_METADATA_URI": metadata_uri_for("mongodb", shared),
        "ZAS_ROOT_USER": ROOT_USER,
        "ZAS_ROOT_PASSWORD": ROOT_PASSWORD,
        "ZAS_AUTH_LOCKOUT_ATTEMPTS": "4",
        "ZAS_AUTH_LOCKOUT_WINDOW": "60s",
    }
    a = ServerProcess(base / "a", env=env, data_dir_flag=False).start()
    b = ServerProcess(base / "b", env=env, data_dir_flag=False).start()
    yield a, b
    a.stop()
    b.stop()


def test_replicas_share_the_counts(replicas: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = replicas
    with httpx.Client(base_url=a.url) as ca, httpx.Client(base_url=b.url) as cb:
        for c in (ca, cb, ca, cb):  # four failures, two on each replica
            assert c.get("/v1/buckets", auth=("mallory", "guess")).status_code == 401
        for c in (ca, cb):
            r = c.get("/v1/buckets", auth=("mallory", "guess"))
            assert r.status_code == 429, r.text


def test_event_source_secrets_count_as_guesses(server: ServerProcess) -> None:
    """A CI event source's URL token is a secret too: guessing it is throttled like a password,
    and only from where the guesses came."""
    with httpx.Client(base_url=server.url) as c:
        r = c.post(
            "/v1/event-sources",
            json={"name": "ci", "type": "tekton"},
            auth=(ROOT_USER, ROOT_PASSWORD),
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        made = r.json()
        wrong = f"/v1/events?source={made['id']}&token={'z' * 43}"
        guesser = source("198.51.100.90")
        for _ in range(3):
            r = c.post(wrong, content=b"{}", headers=guesser)
            assert r.status_code == 401 and r.json()["code"] == "Unauthenticated"
        r = c.post(wrong, content=b"{}", headers=guesser)
        assert r.status_code == 429 and r.json()["code"] == "TooManyRequests"
        right = f"/v1/events?source={made['id']}&token={made['secret']}"
        assert c.post(right, content=b"{}", headers=guesser).status_code == 429
        # From elsewhere the right token is checked (and the empty event then refused).
        r = c.post(right, content=b"{}", headers=source("192.0.2.90"))
        assert r.status_code == 400, r.text
