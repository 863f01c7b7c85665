"""A full disk, for real: the server's data directory is a small tmpfs, filled up by a file
beside it. Uploads that cannot fit are refused before their body is read; uploads that run
out of space mid-body are answered (S3: 503 ServiceUnavailable, /v1 and OCI: 507) with
``Retry-After``, leave no temporary file and nothing in the metadata; reads keep working; the
readiness probe reports the reserve; once space is freed, writes work again."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions
import httpx
import pytest

from tests.fixtures.rawhttp import RawResponse, read_response, send_until_answered, start_request
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

MiB = 1 << 20
DISK = 16 * MiB
RESERVE = 1 * MiB


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted at the end (also when a test fails)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path_factory.mktemp("disk-full") / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK // MiB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture(scope="module")
def server(disk: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(disk / "data", config={"storage": {"minFreeBytes": RESERVE}})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def filled(disk: Path, leave: int) -> Iterator[None]:
    """Fill the disk with a file until only ``leave`` bytes are free; remove it after."""
    filler = disk / f"filler-{uuid.uuid4().hex[:8]}"
    size = free_bytes(disk) - leave
    assert size > 0, f"the disk has only {free_bytes(disk)} bytes free"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        filler.unlink()


def temp_files(server: ServerProcess) -> list[Path]:
    """In-progress writes of every instance (``tmp/<instance>/``)."""
    tmp = server.data_dir / "tmp"
    return [f for d in tmp.iterdir() if d.is_dir() for f in d.iterdir()]


def upload_sessions(server: ServerProcess) -> dict[str, int]:
    return {f.name: f.stat().st_size for f in (server.data_dir / "uploads").iterdir()}


def assert_full(r: RawResponse, dialect: str) -> str:
    """The answer to a write refused for want of space, in ``dialect``; → its message."""
    assert r.headers.get("retry-after", "").isdigit(), r.headers
    if dialect == "s3":
        assert r.status == 503, r
        text = r.body.decode()
        assert "<Code>ServiceUnavailable</Code>" in text, text
        message = re.search(r"<Message>(.*)</Message>", text, re.S)
        assert message is not None
        return message.group(1)
    assert r.status == 507, r
    body = json.loads(r.body)
    if dialect == "oci":
        error = body["errors"][0]
        assert error["code"] == "InsufficientStorage"
        return str(error["message"])
    assert r.headers["content-type"] == "application/problem+json"
    assert body["code"] == "InsufficientStorage" and body["retryable"] is True
    return str(body["message"])


def put_mid_body_full(
    server: ServerProcess, disk: Path, method: str, path: str, total: int = 4 * MiB
) -> RawResponse:
    """A write of ``total`` bytes (which fits when it starts); after its first MiB the disk
    fills up (another process took the space). Returns the server's answer."""
    data = os.urandom(total)
    free_before = free_bytes(disk)
    sock = start_request(
        server.port,
        method,
        path,
        {"Content-Length": str(total), "Content-Type": "application/octet-stream"},
        data[:MiB],
    )
    try:
        # Once the server has written some of it (the check before the body has passed) ...
        deadline = time.monotonic() + 10
        while free_bytes(disk) > free_before - MiB // 2:
            assert time.monotonic() < deadline, "the server did not start writing"
            time.sleep(0.01)
        with filled(disk, leave=256 << 10):
            send_until_answered(sock, data[MiB:])
            return read_response(sock)
    finally:
        sock.close()


def put_refused_up_front(server: ServerProcess, method: str, path: str, length: int) -> RawResponse:
    """Send only the request head announcing ``length`` bytes: the answer comes without the
    body."""
    sock = start_request(
        server.port,
        method,
        path,
        {"Content-Length": str(length), "Content-Type": "application/octet-stream"},
    )
    try:
        return read_response(sock, timeout=10)
    finally:
        sock.close()


@pytest.fixture
def stored(client: httpx.Client) -> tuple[str, bytes]:
    """A bucket with one object written while there was space: ``(bucket, bytes)``."""
    bucket = f"full-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/buckets/{bucket}").status_code == 201
    data = os.urandom(64 << 10)
    assert client.put(f"/v1/buckets/{bucket}/objects/kept", content=data).status_code == 201
    return bucket, data


def assert_reads_work(client: httpx.Client, bucket: str, data: bytes) -> None:
    r = client.get(f"/v1/buckets/{bucket}/objects/kept")
    assert r.status_code == 200 and r.content == data
    r = client.get(f"/{bucket}/kept")  # S3 GetObject
    assert r.status_code == 200 and r.content == data


# ---- cut off mid-body -------------------------------------------------------------------------


def test_s3_put_object_mid_body(
    server: ServerProcess, disk: Path, client: httpx.Client, stored: tuple[str, bytes]
) -> None:
    bucket, data = stored
    r = put_mid_body_full(server, disk, "PUT", f"/{bucket}/big")
    message = assert_full(r, "s3")
    assert "ran out of space" in message and "nothing was stored" in message
    assert temp_files(server) == []
    assert client.head(f"/{bucket}/big").status_code == 404
    assert_reads_work(client, bucket, data)
    listed = client.get(f"/v1/buckets/{bucket}/objects").json()["objects"]
    assert [o["key"] for o in listed] == ["kept"]
    # Space is back: the same upload works.
    body = os.urandom(2 * MiB)
    assert client.put(f"/{bucket}/big", content=body).status_code == 200
    assert client.get(f"/{bucket}/big").content == body


def test_s3_upload_part_mid_body(
    server: ServerProcess, disk: Path, client: httpx.Client, stored: tuple[str, bytes]
) -> None:
    bucket, data = stored
    r = client.post(f"/{bucket}/multi?uploads")
    assert r.status_code == 200, r.text
    upload_id = re.search(r"<UploadId>(.*)</UploadId>", r.text).group(1)  # type: ignore[union-attr]
    part = f"/{bucket}/multi?partNumber=1&uploadId={upload_id}"
    assert "ran out of space" in assert_full(put_mid_body_full(server, disk, "PUT", part), "s3")
    assert temp_files(server) == []
    parts = client.get(f"/{bucket}/multi?uploadId={upload_id}")
    assert parts.status_code == 200 and "<Part>" not in parts.text  # no part recorded
    assert_reads_work(client, bucket, data)
    assert client.put(part, content=b"x" * 1000).status_code == 200  # space is back


def test_v1_put_mid_body(
    server: ServerProcess, disk: Path, client: httpx.Client, stored: tuple[str, bytes]
) -> None:
    bucket, data = stored
    r = put_mid_body_full(server, disk, "PUT", f"/v1/buckets/{bucket}/objects/big")
    assert "ran out of space" in assert_full(r, "v1")
    assert temp_files(server) == []
    assert client.get(f"/v1/buckets/{bucket}/objects/big").status_code == 404
    assert_reads_work(client, bucket, data)


def test_oci_blob_upload_mid_body(
    server: ServerProcess, disk: Path, client: httpx.Client, stored: tuple[str, bytes]
) -> None:
    bucket, data = stored
    r = client.post("/v2/full/app/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    first = os.urandom(100 << 10)
    r = client.patch(location, content=first, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202
    before = upload_sessions(server)
    assert sorted(before.values()) == [len(first)]
    r = put_mid_body_full(server, disk, "PATCH", location)
    assert "ran out of space" in assert_full(r, "oci")
    # The chunk that did not fit was taken back: the session is as it was before it.
    assert upload_sessions(server) == before
    assert temp_files(server) == []
    r = client.get(location)
    assert r.status_code == 204 and r.headers["Range"] == f"0-{len(first) - 1}"
    assert_reads_work(client, bucket, data)
    # The client resumes once there is space again.
    rest = os.urandom(200 << 10)
    digest = "sha256:" + hashlib.sha256(first + rest).hexdigest()
    r = client.put(f"{location}?digest={digest}", content=rest)
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/full/app/blobs/{digest}").content == first + rest


def test_oci_whole_blob_put_mid_body(
    server: ServerProcess, disk: Path, client: httpx.Client, stored: tuple[str, bytes]
) -> None:
    """A blob sent whole to an upload that has no chunk (``PUT ?digest=`` with the body) is a
    plain blob write: cut short by the full disk, it leaves nothing and the upload empty."""
    bucket, data = stored
    location = client.post("/v2/full/whole/blobs/uploads/").headers["Location"]
    digest = "sha256:" + "0" * 64  # never reached: the disk fills before the body ends
    r = put_mid_body_full(server, disk, "PUT", f"{location}?digest={digest}")
    assert "ran out of space" in assert_full(r, "oci")
    assert temp_files(server) == [] and upload_sessions(server) == {}
    r = client.get(location)
    assert r.status_code == 204 and r.headers["Range"] == "0-0"
    assert_reads_work(client, bucket, data)
    blob = os.urandom(300 << 10)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    r = client.put(f"{location}?digest={digest}", content=blob)
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/full/whole/blobs/{digest}").content == blob


# ---- refused before the body --------------------------------------------------------------


def test_a_body_larger_than_the_free_space_is_refused_up_front(
    server: ServerProcess, client: httpx.Client, stored: tuple[str, bytes]
) -> None:
    bucket, data = stored
    too_big = free_bytes(server.data_dir) + MiB
    r = client.post(f"/{bucket}/multi?uploads")
    upload_id = re.search(r"<UploadId>(.*)</UploadId>", r.text).group(1)  # type: ignore[union-attr]
    r = client.post("/v2/full/up/blobs/uploads/")
    location = r.headers["Location"]
    for method, path, dialect in (
        ("PUT", f"/{bucket}/huge", "s3"),
        ("PUT", f"/{bucket}/multi?partNumber=1&uploadId={upload_id}", "s3"),
        ("PUT", f"/v1/buckets/{bucket}/objects/huge", "v1"),
        ("PATCH", location, "oci"),
    ):
        message = assert_full(put_refused_up_front(server, method, path, too_big), dialect)
        assert f"({too_big} bytes) is larger than the storage's free space" in message
    assert temp_files(server) == []
    assert client.head(f"/{bucket}/huge").status_code == 404
    assert_reads_work(client, bucket, data)


def test_boto3_sees_a_retryable_service_unavailable_with_the_reason(
    server: ServerProcess, disk: Path, stored: tuple[str, bytes]
) -> None:
    bucket, data = stored
    s3 = s3_client(server.url, retries={"max_attempts": 2, "mode": "standard"})
    with filled(disk, leave=RESERVE // 2):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            s3.put_object(Bucket=bucket, Key="from-boto3", Body=b"x" * 1000)
        error = refused.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert error["Error"]["Code"] == "ServiceUnavailable"
        assert "nearly full" in error["Error"]["Message"]
        assert error["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "60"
        # botocore classifies it as transient and retries it with backoff.
        assert error["ResponseMetadata"]["RetryAttempts"] == 2  # every retry it was allowed
        assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == data
    s3.put_object(Bucket=bucket, Key="from-boto3", Body=b"x" * 1000)


def test_below_the_reserve_blob_writes_are_refused_and_readiness_fails(
    server: ServerProcess, disk: Path, client: httpx.Client, stored: tuple[str, bytes]
) -> None:
    bucket, data = stored
    assert client.get("/health/ready").status_code == 200
    with filled(disk, leave=RESERVE // 2):
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert "storage check failed" in r.json()["message"]
        assert "below the reserve" in r.json()["message"]
        # Even a small object: it would eat into the reserve.
        r = put_refused_up_front(server, "PUT", f"/v1/buckets/{bucket}/objects/small", 10)
        assert "nearly full" in assert_full(r, "v1")
        r = put_refused_up_front(server, "PUT", f"/{bucket}/small", 10)
        assert_full(r, "s3")
        # Small metadata writes may use the reserve: the store stays manageable.
        labels = {"X-Artifact-Labels": "team=ops"}
        assert client.put(f"/v1/buckets/{bucket}-2", headers=labels).status_code == 201
        assert client.delete(f"/v1/buckets/{bucket}-2").status_code == 204
        assert_reads_work(client, bucket, data)
    assert client.get("/health/ready").status_code == 200
    assert (
        client.put(f"/v1/buckets/{bucket}/objects/small", content=b"0123456789").status_code == 201
    )
