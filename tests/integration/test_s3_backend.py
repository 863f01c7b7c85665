"""The server on the S3 blob backend (``storage.storageDriver``), end to end, against a real S3
server on loopback: a second Zot Artifact Store with authentication on (so wrong credentials
are refused as on AWS). What the backend itself must do is the blob-store contract
(tests/contract/test_blobstore.py); here: configuration, start-up refusal, readiness, and an
OCI chunked upload that outlives the replica that started it."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.objectstores import (
    BUCKET,
    S3Endpoint,
    backend_cut_off_then_back,
    begin_chunked_upload,
    finish_chunked_upload,
)
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.fixtures.tcpswitch import TcpSwitch
from zot_artifact_store.metadata import create_metadata_store
from zot_artifact_store.services.gc import GarbageCollector
from zot_artifact_store.storage.s3 import S3BlobStore, S3Options
from zot_artifact_store.storage.s3client import ObjectStoreError

pytestmark = pytest.mark.slow

USER, PASSWORD = "backend-admin", "backend-secret-123"
MiB = 1 << 20


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("s3-backend") / "data",
        env={"ZAS_ROOT_USER": USER, "ZAS_ROOT_PASSWORD": PASSWORD, "ZAS_STORAGE_FSYNC": "false"},
    ).start()
    s3_client(server.url, USER, PASSWORD).create_bucket(Bucket=BUCKET)
    try:
        yield server
    finally:
        server.stop()


def driver_env(backend: ServerProcess, tmp_path: Path, **over: str) -> dict[str, str]:
    secret = tmp_path / "s3-secret"
    secret.write_text(over.pop("secret", PASSWORD) + "\n")
    env = {
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "s3",
        "ZAS_STORAGE_STORAGEDRIVER_BUCKET": BUCKET,
        "ZAS_STORAGE_STORAGEDRIVER_REGIONENDPOINT": backend.url.removeprefix("http://"),
        "ZAS_STORAGE_STORAGEDRIVER_SECURE": "false",
        "ZAS_STORAGE_STORAGEDRIVER_FORCEPATHSTYLE": "true",
        "ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY": f"/replicas-{uuid.uuid4().hex[:8]}",
        "ZAS_STORAGE_STORAGEDRIVER_ACCESSKEY": USER,
        "ZAS_STORAGE_STORAGEDRIVER_SECRETKEY_FILE": str(secret),
    }
    env.update({f"ZAS_STORAGE_STORAGEDRIVER_{k.upper()}": v for k, v in over.items()})
    return env


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"bucket": "no-such-bucket"}, "bucket 'no-such-bucket' does not exist"),
        ({"secret": "not-the-secret"}, f"access key '{USER}' cannot list bucket '{BUCKET}'"),
    ],
    ids=["missing-bucket", "wrong-credentials"],
)
def test_refuses_to_start_and_says_why(
    backend: ServerProcess, tmp_path: Path, over: dict[str, str], says: str
) -> None:
    server = ServerProcess(tmp_path / "data", env=driver_env(backend, tmp_path, **over))
    with pytest.raises(RuntimeError, match="server exited with") as exc:
        server.start()
    assert says in str(exc.value)
    assert "not-the-secret" not in server.log_path.read_text()  # no secret in the log


def test_objects_and_a_chunked_upload_across_a_restart(
    backend: ServerProcess, tmp_path: Path
) -> None:
    env = driver_env(backend, tmp_path)
    prefix = env["ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY"].strip("/") + "/"
    raw = s3_client(backend.url, USER, PASSWORD)
    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        with server.client() as c:
            ready = c.get("/health/ready").json()["checks"]["storage"]
            assert ready["status"] == "ok" and ready["backend"] == "s3"
            assert ready["location"].startswith(f"s3://{BUCKET}/{prefix} at http://127.0.0.1:")
            assert PASSWORD not in str(ready)
            body = bytes(range(256)) * 4096  # 1 MiB
            assert c.put("/v1/buckets/builds").status_code in (200, 201)
            assert c.put("/v1/buckets/builds/objects/a/b.bin", content=body).status_code in (
                200,
                201,
            )
            assert c.get("/v1/buckets/builds/objects/a/b.bin").content == body
            digest = hashlib.sha256(body).hexdigest()
            stored = raw.get_object(Bucket=BUCKET, Key=f"{prefix}blobs/sha256/{digest}")
            assert stored["Body"].read() == body  # the bytes are in the object store
            metrics = c.get("/metrics").text
            for line in (
                'zas_storage_operations_total{backend="s3",operation="put_object",outcome="ok"}',
                'zas_storage_operation_duration_seconds_count{backend="s3",operation="get_object"}',
                'zas_storage_bytes_total{backend="s3",direction="sent"}',
                'zas_storage_bytes_total{backend="s3",direction="received"}',
            ):
                assert any(
                    m.startswith(line + " ") and float(m.split()[-1]) > 0
                    for m in metrics.splitlines()
                ), line
            # An OCI chunked upload: the first chunk through this replica ...
            first, second = b"a" * (6 * MiB), b"b" * (3 * MiB + 7)
            location = begin_chunked_upload(c, "team/app", first)
        server.stop()
        # ... the rest through a new one (no state in the old process survives).
        server = ServerProcess(tmp_path / "data", env=env).start()
        with server.client() as c:
            blob = finish_chunked_upload(c, location, first, second)
            got = c.get(f"/v2/team/app/blobs/{blob}")
            assert got.status_code == 200 and got.content == first + second
        keys = raw.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}uploads/").get("KeyCount")
        assert keys == 0  # the finished session left nothing behind
    finally:
        server.stop()


def test_filesystem_stays_the_default(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        ready = httpx.get(f"{server.url}/health/ready").json()["checks"]["storage"]
        assert ready["backend"] == "filesystem"
    finally:
        server.stop()


def test_a_dead_backend_is_a_retryable_503(backend: ServerProcess, tmp_path: Path) -> None:
    parts = urlsplit(backend.url)
    with TcpSwitch((parts.hostname or "127.0.0.1", parts.port or 80)) as switch:
        env = driver_env(backend, tmp_path, regionendpoint=switch.url)
        env["AWS_MAX_ATTEMPTS"] = "1"  # botocore's own setting: fail without backing off
        server = ServerProcess(tmp_path / "data", env=env).start()
        try:
            with server.client() as c:
                backend_cut_off_then_back(c, switch)
        finally:
            server.stop()


async def test_circuit_breaker_fails_fast_then_probes(backend: ServerProcess) -> None:
    parts = urlsplit(backend.url)
    with TcpSwitch((parts.hostname or "127.0.0.1", parts.port or 80)) as switch:
        store = S3BlobStore(
            S3Options(
                bucket=BUCKET,
                endpoint=switch.url,
                prefix=f"breaker-{uuid.uuid4().hex[:8]}/",
                access_key=USER,
                secret_key=PASSWORD,
                force_path_style=True,
                max_attempts=1,
                breaker_threshold=2,
                breaker_cooldown=0.5,
            )
        )
        await store.open()
        try:
            info = await store.put_bytes(b"still here")
            switch.off()
            for _ in range(2):
                with pytest.raises(ObjectStoreError) as exc:
                    await store.stat(info.digest)
                assert exc.value.retryable and exc.value.code != "CircuitOpen"
            tried = switch.accepted
            with pytest.raises(ObjectStoreError) as exc:
                await store.stat(info.digest)
            assert exc.value.code == "CircuitOpen" and exc.value.retryable
            assert switch.accepted == tried  # the backend was not even asked
            switch.on()
            await asyncio.sleep(0.6)  # the cooldown: one call may probe, and it succeeds
            assert await store.read_all(info.digest) == b"still here"
        finally:
            await store.close()


async def test_gc_removes_what_crashed_writers_left(backend: ServerProcess, tmp_path: Path) -> None:
    prefix = f"gc-{uuid.uuid4().hex[:8]}/"
    raw = s3_client(backend.url, USER, PASSWORD)

    def store() -> S3BlobStore:
        return S3BlobStore(
            S3Options(
                bucket=BUCKET,
                endpoint=backend.url,
                prefix=prefix,
                access_key=USER,
                secret_key=PASSWORD,
                force_path_style=True,
                part_size=5 * MiB,
                orphan_copy_age=0.0,
            )
        )

    def leftovers() -> list[str]:
        listed = raw.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
        objects = raw.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}tmp/").get("Contents", [])
        return sorted([u["Key"] for u in listed] + [o["Key"] for o in objects])

    survivor, crashed = store(), store()
    await survivor.open()
    await crashed.open()
    try:
        # A writer of `crashed` in flight, then the process dies (its lease stays, stale later).
        w = await crashed.writer()
        await w.write(b"x" * (6 * MiB))
        raw.delete_object(Bucket=BUCKET, Key=f"{prefix}tmp/{crashed.instance}.lease")
        # A commit's copy cut short under blobs/.
        raw.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}blobs/sha256/{'0' * 64}")
        # A live writer of `survivor`: must be kept.
        live = await survivor.writer()
        await live.write(b"y" * (6 * MiB))
        mine = [
            f"{prefix}tmp/{survivor.instance}.lease",
            f"{prefix}tmp/{survivor.instance}/",
            f"{prefix}data/{survivor.instance}/",
        ]
        assert len(leftovers()) == 4  # the two writers' uploads, the blobs/ upload, one lease
        metadata = create_metadata_store(f"sqlite:///{tmp_path / 'metadata.db'}")
        await metadata.open()
        try:
            report = await GarbageCollector(metadata, survivor, delay=0.0).run()
        finally:
            await metadata.close()
        assert report.leftovers_removed == 2
        assert [k for k in leftovers() if not k.startswith(tuple(mine))] == []
        assert len(leftovers()) == 2  # the survivor's lease and its writer's upload
        info = await live.commit()
        assert await survivor.read_all(info.digest) == b"y" * (6 * MiB)
    finally:
        await survivor.close()
        await crashed.client.close()


async def test_storage_class_and_encryption_apply_to_every_blob(moto_s3: S3Endpoint) -> None:
    prefix = f"sse-{uuid.uuid4().hex[:8]}/"
    store = S3BlobStore(
        S3Options(
            bucket=moto_s3.bucket,
            endpoint=moto_s3.url,
            prefix=prefix,
            access_key=moto_s3.access_key,
            secret_key=moto_s3.secret_key,
            force_path_style=True,
            part_size=5 * MiB,
            storage_class="STANDARD_IA",
            sse="AES256",
        )
    )
    await store.open()
    try:
        small = await store.put_bytes(b"one request")
        big = await store.put_bytes(bytes(range(256)) * (24 * 1024))  # 6 MiB: parts, then a copy
        uid = await store.upload_create()
        await store.upload_append(uid, agen([b"s" * (5 * MiB), b"tail"]))
        session = await store.upload_finalize(uid)
        raw = s3_client(moto_s3.url, moto_s3.access_key, moto_s3.secret_key)
        for info in (small, big, session):
            algo, hexpart = info.digest.split(":")
            head = raw.head_object(Bucket=moto_s3.bucket, Key=f"{prefix}blobs/{algo}/{hexpart}")
            assert head["ServerSideEncryption"] == "AES256", info
            assert head["StorageClass"] == "STANDARD_IA", info
    finally:
        await store.close()


async def agen(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
