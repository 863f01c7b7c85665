"""Failed authentications are rate limited per claimed identity and per source address, in
every API's dialect, and the block lifts when the window has passed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

WINDOW_S = 3


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
        },
    ).start()
    yield proc
    proc.stop()


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
