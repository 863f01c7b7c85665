"""Large downloads (issue 23): on a plain-HTTP connection the body goes from the blob's file
straight to the socket (``os.sendfile``; on an object store from the backend's body, on a
sender thread — issue 17), a slow reader gets the rest through the event loop,
and over TLS the bytes pass through the SSL layer. Whichever way, a client gets exactly the
object's bytes, ranges stay exact, and the keep-alive connection serves the next request."""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.objectstores import AzureEndpoint, GcsEndpoint, S3Endpoint
from tests.fixtures.server import ServerProcess

BODY = os.urandom(5 * 1024 * 1024 + 17)  # above the sendfile threshold, not block-aligned
END = len(BODY) - 1
# More than loopback's socket buffers hold, so a reader that pauses leaves the socket full.
SLOW_BODY = os.urandom(48 * 1024 * 1024 + 5)


@pytest.fixture(scope="module", params=["filesystem", "s3", "azure", "gcs"])
def plain_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """On the filesystem the body goes by ``sendfile``; on an object store (moto, Azurite, the
    GCS emulator) from the backend's body to the socket on a sender thread — the same hook, the
    same guarantees (Azure: its download blocks, the next fetched while one is sent)."""
    base = tmp_path_factory.mktemp("downloads")
    env: dict[str, str] = {}
    if request.param == "s3":
        moto: S3Endpoint = request.getfixturevalue("moto_s3")
        env = moto.driver_env(base / "s3-secret", f"/downloads-{uuid.uuid4().hex[:8]}")
    elif request.param == "azure":
        azurite: AzureEndpoint = request.getfixturevalue("azurite")
        env = azurite.driver_env(base / "azure-key", f"downloads-{uuid.uuid4().hex[:8]}")
    elif request.param == "gcs":
        gcs: GcsEndpoint = request.getfixturevalue("gcs_emulator")
        bucket = f"downloads-{uuid.uuid4().hex[:8]}"
        gcs.client().create_bucket(bucket)
        env = gcs.driver_env(bucket, f"downloads-{uuid.uuid4().hex[:8]}")
    proc = ServerProcess(base / "data", env=env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("downloads-tls")
    cert, key = base / "cert.pem", base / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {"ZAS_HTTP_TLS_CERT": str(cert), "ZAS_HTTP_TLS_KEY": str(key)}
    proc = ServerProcess(base / "data", env=env).start()
    proc.cert = cert  # type: ignore[attr-defined]
    yield proc
    proc.stop()


def upload(c: httpx.Client, body: bytes = BODY) -> str:
    bucket = f"dl-{uuid.uuid4().hex[:10]}"
    assert c.put(f"/v1/buckets/{bucket}").status_code == 201
    r = c.put(f"/v1/buckets/{bucket}/objects/big.bin", content=body)
    assert r.status_code == 201, r.text
    return f"/v1/buckets/{bucket}/objects/big.bin"


def check_downloads(c: httpx.Client, path: str) -> None:
    r = c.get(path)
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(BODY))
    assert r.content == BODY
    # Ranges: a middle slice, a suffix, an open end: each exactly those bytes.
    for header, want, content_range in (
        ("bytes=1000-4000000", BODY[1000:4000001], f"bytes 1000-4000000/{len(BODY)}"),
        ("bytes=-3000000", BODY[-3000000:], f"bytes {len(BODY) - 3000000}-{END}/{len(BODY)}"),
        ("bytes=7-", BODY[7:], f"bytes 7-{END}/{len(BODY)}"),
    ):  # fmt: skip
        r = c.get(path, headers={"Range": header})
        assert r.status_code == 206, (header, r.status_code)
        assert r.headers["content-range"] == content_range
        assert r.content == want, header
    # The same keep-alive connection answers the next request (Content-Length was honoured).
    assert c.head(path).headers["content-length"] == str(len(BODY))


def test_plain_http_downloads_are_exact_and_the_connection_stays_usable(
    plain_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=plain_server.url, timeout=60) as c:
        path = upload(c)
        check_downloads(c, path)
        # The S3 API serves the same bytes the same way.
        bucket, key = path.split("/")[3], "big.bin"
        assert c.get(f"/{bucket}/{key}").content == BODY


def test_a_slow_reader_gets_every_byte(plain_server: ServerProcess) -> None:
    """A reader that leaves the socket full gets the rest through the event loop."""
    with httpx.Client(base_url=plain_server.url, timeout=60) as c:
        path = upload(c, SLOW_BODY)
        got = bytearray()
        with c.stream("GET", path) as r:
            assert r.status_code == 200
            for i, chunk in enumerate(r.iter_raw(64 * 1024)):
                got += chunk
                if i < 3:
                    time.sleep(0.6)  # longer than the sender waits for a full socket
        assert bytes(got) == SLOW_BODY
        assert c.get(path, headers={"Range": "bytes=5-9"}).content == SLOW_BODY[5:10]


def test_tls_downloads_are_exact(tls_server: ServerProcess) -> None:
    ctx = ssl.create_default_context(cafile=str(Path(tls_server.cert)))  # type: ignore[attr-defined]
    with httpx.Client(base_url=f"https://127.0.0.1:{tls_server.port}", verify=ctx, timeout=60) as c:
        check_downloads(c, upload(c))


def test_oci_blob_pulls_are_exact(plain_server: ServerProcess) -> None:
    """A layer pulled through the registry API goes the same way, whole or by range."""
    digest = "sha256:" + hashlib.sha256(BODY).hexdigest()
    with httpx.Client(base_url=plain_server.url, timeout=60) as c:
        r = c.post(f"/v2/dl/layers/blobs/uploads/?digest={digest}", content=BODY)
        assert r.status_code == 201, r.text
        r = c.get(f"/v2/dl/layers/blobs/{digest}")
        assert r.status_code == 200
        assert r.headers["docker-content-digest"] == digest
        assert r.content == BODY
        r = c.get(f"/v2/dl/layers/blobs/{digest}", headers={"Range": "bytes=3-2000002"})
        assert r.status_code == 206
        assert r.content == BODY[3:2000003]
        assert c.head(f"/v2/dl/layers/blobs/{digest}").headers["content-length"] == str(len(BODY))
