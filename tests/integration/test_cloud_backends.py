"""The server on the Azure Blob and GCS backends (``storage.storageDriver.name: azure | gcs``),
end to end, against Azurite and gcp-storage-emulator on loopback: start-up refusals that say
why, readiness naming the backend, and artifacts pushed and pulled through the S3 API and the
OCI API — an OCI chunked upload finished by the next server process. What the backends
themselves must do is the blob-store contract (tests/contract/test_blobstore.py)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import BlobServiceClient

from tests.fixtures.objectstores import (
    CONTAINER,
    AzureEndpoint,
    GcsEndpoint,
    backend_cut_off_then_back,
    begin_chunked_upload,
    finish_chunked_upload,
)
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.fixtures.tcpswitch import TcpSwitch
from zot_artifact_store.storage.objectstore import parse_pointer

pytestmark = pytest.mark.slow

MiB = 1 << 20


def driver_env(azurite: AzureEndpoint, tmp_path: Path, **over: str) -> dict[str, str]:
    key = tmp_path / "account-key"
    key.write_text(over.pop("key", azurite.account_key) + "\n")
    env = {
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "azure",
        "ZAS_STORAGE_STORAGEDRIVER_ACCOUNTNAME": azurite.account_name,
        "ZAS_STORAGE_STORAGEDRIVER_CONTAINER": CONTAINER,
        "ZAS_STORAGE_STORAGEDRIVER_ENDPOINT": azurite.url,
        "ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY": f"/replicas-{uuid.uuid4().hex[:8]}",
        "ZAS_STORAGE_STORAGEDRIVER_ACCOUNTKEY_FILE": str(key),
    }
    env.update({f"ZAS_STORAGE_STORAGEDRIVER_{k.upper()}": v for k, v in over.items()})
    return env


WRONG_KEY = "bm90LXRoZS1hY2NvdW50LWtleQ=="


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"container": "no-such-container"}, "container 'no-such-container' does not exist"),
        (
            {"key": WRONG_KEY},
            f"the account key of 'devstoreaccount1' cannot list container '{CONTAINER}'",
        ),
    ],
    ids=["missing-container", "wrong-key"],
)
def test_azure_refuses_to_start_and_says_why(
    azurite: AzureEndpoint, tmp_path: Path, over: dict[str, str], says: str
) -> None:
    server = ServerProcess(tmp_path / "data", env=driver_env(azurite, tmp_path, **over))
    with pytest.raises(RuntimeError, match="server exited with") as exc:
        server.start()
    assert says in str(exc.value)
    assert WRONG_KEY not in server.log_path.read_text()  # no secret in the log


def gcs_env(gcs: GcsEndpoint, bucket: str) -> dict[str, str]:
    return {
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "gcs",
        "ZAS_STORAGE_STORAGEDRIVER_BUCKET": bucket,
        "ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY": f"/replicas-{uuid.uuid4().hex[:8]}",
        "STORAGE_EMULATOR_HOST": gcs.url,  # Google's convention: an emulator, no credentials
    }


def test_gcs_refuses_a_missing_bucket_and_a_broken_key(
    gcs_emulator: GcsEndpoint, tmp_path: Path
) -> None:
    """Credentials the service refuses cannot be shown here: gcp-storage-emulator checks none."""
    server = ServerProcess(tmp_path / "data", env=gcs_env(gcs_emulator, "no-such-bucket"))
    with pytest.raises(RuntimeError, match="server exited with") as exc:
        server.start()
    assert "storage.storageDriver (gcs): bucket 'no-such-bucket' does not exist" in str(exc.value)
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    env = gcs_env(gcs_emulator, "zas-any") | {"ZAS_STORAGE_STORAGEDRIVER_KEYFILE": str(key)}
    server = ServerProcess(tmp_path / "data", env=env)
    with pytest.raises(RuntimeError, match="server exited with") as exc:
        server.start()
    assert f"storage.storageDriver (gcs): keyfile '{key}' is not a service account key" in str(
        exc.value
    )


@dataclass
class Backend:
    """A cloud backend as the test sees it: the server's environment, where readiness says the
    blobs are, and the store read directly (bytes of a blob, names under a prefix)."""

    name: str
    env: dict[str, str]
    location: str
    read: Callable[[str], bytes]
    names: Callable[[str], list[str]]
    url: str  # the service, http://127.0.0.1:<port>
    # The environment that points the server at the same service at another address (a relay).
    reached_at: Callable[[str], dict[str, str]]

    @property
    def prefix(self) -> str:
        return self.env["ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY"].strip("/") + "/"


@pytest.fixture(params=["azure", "gcs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "azure":
        azurite: AzureEndpoint = request.getfixturevalue("azurite")
        env = driver_env(azurite, tmp_path)
        raw = BlobServiceClient.from_connection_string(azurite.connection_string())
        container = raw.get_container_client(CONTAINER)
        prefix = env["ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY"].strip("/") + "/"
        parts = urlsplit(azurite.url)  # http://127.0.0.1:<port>/<account>
        yield Backend(
            "azure",
            env,
            f"azure://{CONTAINER}/{prefix} at {azurite.url}",
            lambda name: container.download_blob(name).readall(),
            lambda under: [b.name for b in container.list_blobs(name_starts_with=under)],
            f"{parts.scheme}://{parts.netloc}",
            lambda url: env | {"ZAS_STORAGE_STORAGEDRIVER_ENDPOINT": url + parts.path},
        )
        raw.close()
        return
    gcs: GcsEndpoint = request.getfixturevalue("gcs_emulator")
    client = gcs.client()
    bucket = client.create_bucket(f"zas-{uuid.uuid4().hex[:12]}")
    env = gcs_env(gcs, bucket.name)
    prefix = env["ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY"].strip("/") + "/"
    yield Backend(
        "gcs",
        env,
        f"gs://{bucket.name}/{prefix} at {gcs.url}",
        lambda name: bucket.blob(name).download_as_bytes(),
        lambda under: [b.name for b in client.list_blobs(bucket, prefix=under)],
        gcs.url,
        lambda url: env | {"STORAGE_EMULATOR_HOST": url},
    )
    client.close()


def test_push_and_pull_through_s3_and_oci_across_a_restart(
    backend: Backend, tmp_path: Path
) -> None:
    env, prefix = backend.env, backend.prefix

    def stored(digest: str) -> bytes:
        """The blob's bytes as the object store holds them (through its pointer, if it was
        written in parts)."""
        algo, hexpart = digest.split(":")
        raw = backend.read(f"{prefix}blobs/{algo}/{hexpart}")
        pointer = parse_pointer(raw, digest)
        return raw if pointer is None else backend.read(prefix + pointer[0])

    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        with server.client() as c:
            ready = c.get("/health/ready").json()["checks"]["storage"]
            assert ready["status"] == "ok" and ready["backend"] == backend.name
            assert ready["location"] == backend.location
        # S3: a small object, and a multipart upload (parts are blobs too).
        s3 = s3_client(server.url)
        s3.create_bucket(Bucket="builds")
        small = b"hello from azure\n"
        s3.put_object(Bucket="builds", Key="a/small.txt", Body=small)
        big = bytes(range(256)) * (40 * 1024)  # 10 MiB: more than one 8 MiB block
        up = s3.create_multipart_upload(Bucket="builds", Key="a/big.bin")
        parts = []
        for n, pos in enumerate(range(0, len(big), 6 * MiB), start=1):
            r = s3.upload_part(
                Bucket="builds",
                Key="a/big.bin",
                UploadId=up["UploadId"],
                PartNumber=n,
                Body=big[pos : pos + 6 * MiB],
            )
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        s3.complete_multipart_upload(
            Bucket="builds",
            Key="a/big.bin",
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": parts},
        )
        assert s3.get_object(Bucket="builds", Key="a/small.txt")["Body"].read() == small
        got = s3.get_object(Bucket="builds", Key="a/big.bin", Range="bytes=100-8388707")
        assert got["Body"].read() == big[100:8388708]
        assert stored("sha256:" + hashlib.sha256(small).hexdigest()) == small  # in the store
        # OCI: the first chunk of a chunked upload through this process ...
        with server.client() as c:
            first, second = b"a" * (9 * MiB), b"b" * (MiB + 7)
            location = begin_chunked_upload(c, "team/app", first)
        server.stop()
        # ... the rest, the config and the manifest through a new one.
        server = ServerProcess(tmp_path / "data", env=env).start()
        with server.client() as c:
            layer = finish_chunked_upload(c, location, first, second)
            config = b"{}"
            cfg = "sha256:" + hashlib.sha256(config).hexdigest()
            r = c.post(f"/v2/team/app/blobs/uploads/?digest={cfg}", content=config)
            assert r.status_code == 201
            # A small blob sent whole to an upload (POST, then PUT with the body): a direct
            # write committed on its digest, no upload session in the bucket.
            whole = b"a small layer, pushed whole"
            whole_digest = "sha256:" + hashlib.sha256(whole).hexdigest()
            at = c.post("/v2/team/app/blobs/uploads/").headers["location"]
            r = c.put(at, params={"digest": whole_digest}, content=whole)
            assert r.status_code == 201, r.text
            assert c.get(f"/v2/team/app/blobs/{whole_digest}").content == whole
            assert stored(whole_digest) == whole
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": cfg,
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": layer,
                            "size": len(first) + len(second),
                        }
                    ],
                }
            ).encode()
            r = c.put(
                "/v2/team/app/manifests/v1",
                content=manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert r.status_code == 201, r.text
            pulled = c.get(
                "/v2/team/app/manifests/v1",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert pulled.status_code == 200 and pulled.content == manifest
            blob = c.get(f"/v2/team/app/blobs/{layer}")
            assert blob.status_code == 200 and blob.content == first + second
            ranged = c.get(
                f"/v2/team/app/blobs/{layer}", headers={"Range": "bytes=9437180-9437189"}
            )
            assert ranged.status_code == 206 and ranged.content == b"aaaabbbbbb"
        assert stored(layer) == first + second
        assert backend.names(f"{prefix}uploads/") == []  # the finished session left nothing
    finally:
        server.stop()


def test_a_dead_backend_is_a_retryable_503(backend: Backend, tmp_path: Path) -> None:
    """The backend cut off: its library's errors are the store's retryable errors, so clients
    get 503 with Retry-After and readiness fails; then it comes back."""
    parts = urlsplit(backend.url)
    with TcpSwitch((parts.hostname or "127.0.0.1", parts.port or 80)) as switch:
        server = ServerProcess(tmp_path / "data", env=backend.reached_at(switch.url)).start()
        try:
            with server.client() as c:
                backend_cut_off_then_back(c, switch)
        finally:
            server.stop()
