"""``storage.storageDriver.redirect``: an OCI blob GET answered ``307`` to a URL the S3 backend
signed, so the bytes go from the backend to the client (docker distribution's ``redirect``).

The backend is a second Zot Artifact Store with authentication on (it checks every presigned
signature, as S3 does), reached through a recording proxy at ``localhost:<port>`` — another
host than the ``127.0.0.1`` the clients use for the store, as a bucket's endpoint is in real
life — so the tests see exactly what each client sent the backend: never the store's
``Authorization``. Parts are 5 MiB, so a 6 MiB blob written by a ``/v1`` PUT is a pointer
commit whose bytes live at a ``data/`` key: the redirect names that key."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from tests.e2e.conftest import run, tool
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.google_oauth import GoogleTokenEndpoint
from tests.fixtures.objectstores import BUCKET, AzureEndpoint, GcsEndpoint
from tests.fixtures.oci_layout import Layout, blob_files
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.slow

BACKEND = ("backend-admin", "backend-secret-123")
ROOT = ("redirect-root", "redirect-root-password")
MiB = 1 << 20


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("redirect-backend") / "data",
        env={
            "ZAS_ROOT_USER": BACKEND[0],
            "ZAS_ROOT_PASSWORD": BACKEND[1],
            "ZAS_STORAGE_FSYNC": "false",
        },
    ).start()
    s3_client(server.url, *BACKEND).create_bucket(Bucket=BUCKET)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy(backend: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(backend.url) as p:
        yield p


def start_store(proxy: FaultProxy, work: Path, *, redirect: bool) -> ServerProcess:
    secret = work / "s3-secret"
    secret.write_text(BACKEND[1] + "\n")
    env = {
        "ZAS_ROOT_USER": ROOT[0],
        "ZAS_ROOT_PASSWORD": ROOT[1],
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "s3",
        "ZAS_STORAGE_STORAGEDRIVER_BUCKET": BUCKET,
        "ZAS_STORAGE_STORAGEDRIVER_REGIONENDPOINT": f"localhost:{proxy.port}",
        "ZAS_STORAGE_STORAGEDRIVER_SECURE": "false",
        "ZAS_STORAGE_STORAGEDRIVER_FORCEPATHSTYLE": "true",
        "ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY": f"/redirect-{uuid.uuid4().hex[:8]}",
        "ZAS_STORAGE_STORAGEDRIVER_ACCESSKEY": BACKEND[0],
        "ZAS_STORAGE_STORAGEDRIVER_SECRETKEY_FILE": str(secret),
        "ZAS_STORAGE_STORAGEDRIVER_CHUNKSIZE": str(5 * MiB),
        "ZAS_STORAGE_STORAGEDRIVER_REDIRECT": "true" if redirect else "false",
    }
    return ServerProcess(work / "data", env=env).start()


@pytest.fixture(scope="module")
def store(proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_store(proxy, tmp_path_factory.mktemp("redirect-store"), redirect=True)
    try:
        yield server
    finally:
        server.stop()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(c: httpx.Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def backend_gets(proxy: FaultProxy, key_part: str) -> list[dict[str, str]]:
    """Headers of the GETs that reached the backend for a key containing ``key_part``."""
    return [s.headers for s in proxy.seen("GET", key_part)]


@pytest.mark.parametrize("size", [4096, 6 * MiB], ids=["whole", "pointer"])
def test_a_blob_get_redirects_to_the_backend_and_the_bytes_are_the_blob(
    store: ServerProcess, proxy: FaultProxy, size: int
) -> None:
    data = os.urandom(size)
    with httpx.Client(base_url=store.url, auth=ROOT, timeout=60) as c:
        if size > 5 * MiB:
            # A streamed write in parts commits a pointer (an OCI push composes its session
            # instead); the push then finds the blob stored.
            c.put("/v1/buckets/redirect-src")
            c.put("/v1/buckets/redirect-src/objects/big", content=data).raise_for_status()
        digest = push(c, "redirect/app", data)
        r = c.get(f"/v2/redirect/app/blobs/{digest}")
        assert r.status_code == 307, r.text
        assert r.content == b""
        assert r.headers["docker-content-digest"] == digest
        location = urlsplit(r.headers["location"])
        assert location.netloc == f"localhost:{proxy.port}"
        query = parse_qs(location.query)
        assert query["X-Amz-Expires"] == ["1200"]  # 20 minutes, the default
        # A blob written in parts is a pointer: the URL names the data object, not the record.
        kind = "/data/" if size > 5 * MiB else f"/blobs/sha256/{digest[7:]}"
        assert kind in location.path

        proxy.reset()
        followed = c.get(f"/v2/redirect/app/blobs/{digest}", follow_redirects=True)
        assert followed.status_code == 200
        assert digest_of(followed.content) == digest
        (sent,) = backend_gets(proxy, location.path)
        assert "authorization" not in sent  # the store's credentials stay with the store
        assert "X-Amz-Signature" in urlsplit(followed.url.raw_path.decode()).query

        # HEAD and ranges stay with the store.
        head = c.head(f"/v2/redirect/app/blobs/{digest}")
        assert head.status_code == 200 and "location" not in head.headers
        assert head.headers["content-length"] == str(size)
        part = c.get(f"/v2/redirect/app/blobs/{digest}", headers={"Range": "bytes=100-4195"})
        assert part.status_code == 206 and "location" not in part.headers
        assert part.content == data[100:4196]


def test_curl_follows_the_redirect_without_sending_the_store_credentials(
    store: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    data = os.urandom(6 * MiB + 17)
    with httpx.Client(base_url=store.url, auth=ROOT, timeout=60) as c:
        digest = push(c, "redirect/curl", data)
        # Where the bytes are: a blob pushed whole and written in parts is a pointer commit.
        key = urlsplit(c.get(f"/v2/redirect/curl/blobs/{digest}").headers["location"]).path
    proxy.reset()
    out = tmp_path / "blob"
    run([tool("curl"), "-sS", "-f", "-L", "-u", f"{ROOT[0]}:{ROOT[1]}", "-o", str(out),
         f"{store.url}/v2/redirect/curl/blobs/{digest}"], env={})  # fmt: skip
    assert digest_of(out.read_bytes()) == digest
    (sent,) = backend_gets(proxy, key)
    assert "authorization" not in sent


def test_refused_pulls_get_no_location(store: ServerProcess) -> None:
    with httpx.Client(base_url=store.url, auth=ROOT, timeout=60) as c:
        digest = push(c, "redirect/private", os.urandom(2048))
        push(c, "redirect/other", b"other repository")
    with httpx.Client(base_url=store.url, timeout=60) as c:
        anonymous = c.get(f"/v2/redirect/private/blobs/{digest}")
        assert anonymous.status_code == 401
        assert "location" not in anonymous.headers
        r = c.get(
            "/v2/token",
            params={"scope": "repository:redirect/other:pull", "service": "zot-artifact-store"},
            auth=ROOT,
        )
        other = {"Authorization": f"Bearer {r.json()['token']}"}
        denied = c.get(f"/v2/redirect/private/blobs/{digest}", headers=other)
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["code"] == "DENIED"
        assert "location" not in denied.headers
        # A repository that does not hold the blob does not hand out its URL either.
        unknown = c.get(f"/v2/redirect/other/blobs/{digest}", headers=other)
        assert unknown.status_code == 404
        assert "location" not in unknown.headers
        records = c.get(
            "/v1/audit", params={"resource": "repo:redirect/private"}, auth=ROOT
        ).json()["records"]
        assert "deny" in {x["decision"] for x in records if x["action"] == "oci:pull"}


def test_skopeo_pulls_an_image_through_redirects(
    store: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    src = Layout(tmp_path / "src")
    image = src.image(layers=2, layer_size=6 * MiB)
    src.tag(image, "v1")
    home = tmp_path / "home"
    home.mkdir()
    creds = f"{ROOT[0]}:{ROOT[1]}"
    ref = f"docker://127.0.0.1:{store.port}/redirect/skopeo:v1"
    env = {"HOME": str(home)}
    run([tool("skopeo"), "copy", "--dest-creds", creds, "--dest-tls-verify=false",
         f"oci:{src.root}:v1", ref], env=env)  # fmt: skip
    proxy.reset()
    out = tmp_path / "out"
    run([tool("skopeo"), "copy", "--src-creds", creds, "--src-tls-verify=false",
         ref, f"oci:{out}:v1"], env=env)  # fmt: skip
    assert blob_files(out) == blob_files(src.root)
    presigned = [s for s in proxy.seen("GET") if "X-Amz-Signature" in s.path]
    assert len(presigned) >= 3  # two layers and the config, straight from the backend
    assert all("authorization" not in s.headers for s in presigned)


def test_with_redirect_off_the_store_streams_the_blob(proxy: FaultProxy, tmp_path: Path) -> None:
    server = start_store(proxy, tmp_path, redirect=False)
    try:
        data = os.urandom(6 * MiB)
        with httpx.Client(base_url=server.url, auth=ROOT, timeout=60) as c:
            digest = push(c, "redirect/off", data)
            r = c.get(f"/v2/redirect/off/blobs/{digest}")
            assert r.status_code == 200 and "location" not in r.headers
            assert r.content == data
    finally:
        server.stop()


def test_azure_redirects_to_a_read_only_sas_and_gcs_without_signing_keys_proxies(
    azurite: AzureEndpoint, gcs_emulator: GcsEndpoint, tmp_path: Path
) -> None:
    """Azure with its account key signs a SAS; the GCS emulator has no credentials that can
    sign (Application Default Credentials may not either), so the store streams the blob."""
    bucket = f"redirect-{uuid.uuid4().hex[:8]}"
    gcs_emulator.client().create_bucket(bucket)
    envs = {
        "azure": azurite.driver_env(tmp_path / "azure-key", f"/redirect-{uuid.uuid4().hex[:8]}"),
        "gcs": gcs_emulator.driver_env(bucket, f"/redirect-{uuid.uuid4().hex[:8]}"),
    }
    data = os.urandom(300_000)
    for name, env in envs.items():
        env |= {
            "ZAS_ROOT_USER": ROOT[0],
            "ZAS_ROOT_PASSWORD": ROOT[1],
            "ZAS_STORAGE_STORAGEDRIVER_REDIRECT": "true",
            "ZAS_STORAGE_STORAGEDRIVER_REDIRECTEXPIRY": "300",
        }
        server = ServerProcess(tmp_path / name, env=env).start()
        try:
            with httpx.Client(base_url=server.url, auth=ROOT, timeout=60) as c:
                digest = push(c, f"redirect/{name}", data)
                r = c.get(f"/v2/redirect/{name}/blobs/{digest}")
                if name == "azure":
                    assert r.status_code == 307
                    location = r.headers["location"]
                    assert location.startswith(f"{azurite.url}/{azurite.container}/")
                    query = parse_qs(urlsplit(location).query)
                    assert query["sp"] == ["r"] and "sig" in query  # read only, signed
                    r = c.get(f"/v2/redirect/{name}/blobs/{digest}", follow_redirects=True)
                assert r.status_code == 200 and "location" not in r.headers
                assert r.content == data
            # Proxying despite redirect is said at start, once: not by the store that signs.
            said = server.log_path.read_text().count("cannot sign URLs")
            assert said == (0 if name == "azure" else 1), name
        finally:
            server.stop()


def verify_gcs_v4_signature(location: str, public_key: Any) -> dict[str, str]:
    """Check a V4 signed URL (``GOOG4-RSA-SHA256``) as GCS does: the canonical request rebuilt
    from the URL, the string to sign from it, the signature against the account's public key
    (the emulator checks none). Returns the signed query parameters."""
    url = urlsplit(location)
    query, _, signature = url.query.rpartition("&X-Goog-Signature=")
    params = dict(parse_qsl(query))
    assert params["X-Goog-SignedHeaders"] == "host"
    canonical = "\n".join(
        ["GET", url.path, query, f"host:{url.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            params["X-Goog-Date"],
            params["X-Goog-Credential"].split("/", 1)[1],
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    public_key.verify(bytes.fromhex(signature), to_sign.encode(), padding.PKCS1v15(), SHA256())
    return params


def test_gcs_with_a_service_account_key_redirects_to_a_v4_signed_url_google_token_endpoint_stood_in(
    gcs_emulator: GcsEndpoint, tmp_path: Path
) -> None:
    """With a service account's JSON key the store signs a V4 URL itself (no request to
    Google); the emulator serves the signed path. Google's token endpoint is unreachable here:
    a stand-in checks the store's signed assertions and hands out tokens."""
    bucket = f"redirect-{uuid.uuid4().hex[:8]}"
    gcs_emulator.client().create_bucket(bucket)
    data = os.urandom(300_000)
    with GoogleTokenEndpoint() as google:
        env = gcs_emulator.driver_env(bucket, f"/redirect-{uuid.uuid4().hex[:8]}") | {
            "ZAS_STORAGE_STORAGEDRIVER_KEYFILE": str(google.write_key(tmp_path / "sa.json")),
            "ZAS_ROOT_USER": ROOT[0],
            "ZAS_ROOT_PASSWORD": ROOT[1],
            "ZAS_STORAGE_STORAGEDRIVER_REDIRECT": "true",
            "ZAS_STORAGE_STORAGEDRIVER_REDIRECTEXPIRY": "300",
        }
        server = ServerProcess(tmp_path / "store", env=env).start()
        try:
            with httpx.Client(base_url=server.url, auth=ROOT, timeout=60) as c:
                digest = push(c, "redirect/gcs-key", data)
                r = c.get(f"/v2/redirect/gcs-key/blobs/{digest}")
                assert r.status_code == 307, r.text
                location = r.headers["location"]
                assert location.startswith(f"{gcs_emulator.url}/{bucket}/redirect-")
                params = verify_gcs_v4_signature(location, google.public_key)
                assert params["X-Goog-Expires"] == "300"
                assert params["X-Goog-Credential"].startswith(f"{google.email}/")
                assert params["X-Goog-Credential"].endswith("/auto/storage/goog4_request")
                # A signature by another key is refused by the same check.
                other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                with pytest.raises(InvalidSignature):
                    verify_gcs_v4_signature(location, other.public_key())
                followed = c.get(f"/v2/redirect/gcs-key/blobs/{digest}", follow_redirects=True)
                assert followed.status_code == 200 and followed.content == data
                assert "authorization" not in followed.request.headers  # not sent to GCS
                # HEAD and ranges stay with the store.
                assert c.head(f"/v2/redirect/gcs-key/blobs/{digest}").status_code == 200
                part = c.get(f"/v2/redirect/gcs-key/blobs/{digest}", headers={"Range": "bytes=5-9"})
                assert part.status_code == 206 and part.content == data[5:10]
            assert "cannot sign URLs" not in server.log_path.read_text()
        finally:
            server.stop()
    assert google.issued >= 1 and not google.refused  # the store authenticated with the key


def test_oras_pulls_an_artifact_through_redirects(
    store: ServerProcess, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oras.client

    monkeypatch.chdir(tmp_path)
    hostname = f"127.0.0.1:{store.port}"
    client = oras.client.OrasClient(hostname=hostname, insecure=True, auth_backend="token")
    client.auth.set_basic_auth(*ROOT)
    payload = os.urandom(2 * MiB + 3)
    Path("report.bin").write_bytes(payload)
    target = f"{hostname}/redirect/oras/report:1.0"
    r = client.push(target=target, files=["report.bin:application/octet-stream"], quiet=True)
    assert r.status_code == 201, r.text
    proxy.reset()
    files = client.pull(target=target, outdir=str(tmp_path / "pulled"))
    assert [Path(f).read_bytes() for f in files] == [payload]
    presigned = [s for s in proxy.seen("GET") if "X-Amz-Signature" in s.path]
    assert presigned, "oras fetched the layer through the store, not from the backend"
    assert all("authorization" not in s.headers for s in presigned)
