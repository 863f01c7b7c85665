"""Deeply nested JSON is a 400 in each API's dialect, never a 500 (issue 19, finding 2).

``json.loads`` recurses per level: tens of thousands of ``[`` used to raise RecursionError
(a 500 and a traceback in the log) on every JSON endpoint, unauthenticated ones included.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

DEEP = b"[" * 100_000 + b"]" * 100_000
AT_LIMIT = b"[" * 64 + b"]" * 64
ROOT = (ROOT_USER, ROOT_PASSWORD)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("json-depth") / "data"
    proc = ServerProcess(
        data_dir, env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD}
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_no_traceback(server: ServerProcess) -> None:
    log = server.log_path.read_text()
    assert "RecursionError" not in log and "Traceback" not in log


def malformed(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "MalformedJSON"
    assert "nested deeper than 64 levels" in problem["message"]


@pytest.mark.parametrize("path", ["/v1/auth/exchange", "/v1/authorize"])
def test_unauthenticated_endpoints(server: ServerProcess, client: httpx.Client, path: str) -> None:
    r = client.post(path, content=DEEP, headers={"Content-Type": "application/json"})
    malformed(r)
    assert_no_traceback(server)


def test_authenticated_v1_body(server: ServerProcess, client: httpx.Client) -> None:
    r = client.put("/v1/policies/deep", content=DEEP, auth=ROOT)
    malformed(r)
    assert client.get("/v1/policies/deep", auth=ROOT).status_code == 404  # nothing stored
    # Nesting up to the limit is parsed and answered on its merits.
    r = client.put("/v1/policies/deep", content=AT_LIMIT, auth=ROOT)
    assert r.status_code == 400 and "nested" not in r.json()["message"]
    assert_no_traceback(server)


def test_deep_jwt_is_refused_as_a_credential(server: ServerProcess, client: httpx.Client) -> None:
    deep = b64url(b"[" * 5_000 + b"]" * 5_000)
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    for token in (f"{deep}.{deep}.c2ln", f"{header}.{deep}.c2ln"):
        r = client.post("/v1/auth/exchange", json={"token": token})
        assert r.status_code == 401 and r.json()["code"] == "Unauthenticated", r.text
        r = client.get("/v2/", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert_no_traceback(server)


def test_oci_manifest(server: ServerProcess, client: httpx.Client) -> None:
    r = client.put(
        "/v2/deep/repo/manifests/v1",
        content=DEEP,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        auth=ROOT,
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["errors"][0]
    assert error["code"] == "MANIFEST_INVALID"
    assert client.get("/v2/deep/repo/tags/list", auth=ROOT).status_code == 404
    assert_no_traceback(server)


def test_s3_bucket_policy(server: ServerProcess, client: httpx.Client) -> None:
    s3 = s3_client(server.url, ROOT_USER, ROOT_PASSWORD)
    s3.create_bucket(Bucket="deep-policy")
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket="deep-policy", Policy=DEEP.decode())
    assert err.value.response["Error"]["Code"] == "MalformedPolicy"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket="deep-policy")
    assert err.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    assert_no_traceback(server)


def test_evidence_documents(server: ServerProcess, client: httpx.Client, tmp_path: Path) -> None:
    assert client.put("/v1/buckets/deep-evidence", auth=ROOT).status_code == 201
    obj = "/v1/buckets/deep-evidence/objects/a.bin"
    assert client.put(obj, content=b"artifact", auth=ROOT).status_code == 201
    cases = [
        ("signatures", "application/vnd.dsse.envelope.v1+json"),
        ("attestations", "application/vnd.dsse.envelope.v1+json"),
        ("sboms", "application/vnd.cyclonedx+json"),
    ]
    for kind, media_type in cases:
        r = client.post(
            f"{obj}/{kind}", content=DEEP, headers={"Content-Type": media_type}, auth=ROOT
        )
        assert r.status_code == 422, (kind, r.text)
        assert r.json()["code"] == "InvalidEvidence"
        assert client.get(f"{obj}/{kind}", auth=ROOT).json()[kind] == []
    assert_no_traceback(server)
