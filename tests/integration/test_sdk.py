"""The Python SDK (sdk/python, ``zot_artifacts``) against the real server on both metadata
backends, with faults injected by a real proxy (tests/fixtures/faultproxy.py): transfers
(streamed PUT, parallel multipart resumed after an interruption, downloads resumed after a
dropped connection, sha256 checks), listings across pages, retries (503 retried, 403 not),
copy and presigned URLs, typed errors."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.server import ServerProcess
from zot_artifacts import (
    AccessDeniedError,
    ArtifactStoreError,
    Client,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RetryPolicy,
    UploadProgress,
)

MIB = 1 << 20
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def random_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))
        f.write(os.urandom(size % MIB))
    return path


@pytest.fixture
def sdk(server: ServerProcess) -> Iterator[Client]:
    with Client(server.url, retry=FAST) as c:
        yield c


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(server.url) as p:
        yield p


@pytest.fixture
def via_proxy(proxy: FaultProxy) -> Iterator[Client]:
    with Client(proxy.url, retry=FAST) as c:
        yield c


@pytest.fixture
def bucket(sdk: Client) -> str:
    return sdk.create_bucket(f"sdk-{uuid.uuid4().hex[:12]}").name


def test_buckets(sdk: Client) -> None:
    name = f"sdk-b-{uuid.uuid4().hex[:8]}"
    created = sdk.create_bucket(name, labels={"team": "ci"})
    assert created.name == name and created.labels == {"team": "ci"}
    assert name in [b.name for b in sdk.list_buckets()]
    with pytest.raises(ConflictError) as err:
        sdk.create_bucket(name)
    assert err.value.code == "BucketAlreadyExists"
    assert sdk.get_bucket(name).labels == {"team": "ci"}  # the refused call changed nothing
    assert sdk.create_bucket(name, exist_ok=True).name == name
    sdk.upload(name, "x", b"x")
    with pytest.raises(ConflictError) as err:
        sdk.delete_bucket(name)
    assert err.value.code == "BucketNotEmpty" and err.value.http_status == 409
    sdk.delete_bucket(name, recursive=True)
    with pytest.raises(NotFoundError) as nf:
        sdk.get_bucket(name)
    assert nf.value.code == "NoSuchBucket" and nf.value.request_id
    with pytest.raises(ArtifactStoreError) as bad:
        sdk.create_bucket("X")
    assert bad.value.code == "InvalidBucketName" and bad.value.http_status == 400


def test_small_uploads_from_bytes_paths_and_streams(
    sdk: Client, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    digest = hashlib.sha256(data).hexdigest()
    path = tmp_path / "a.bin"
    path.write_bytes(data)

    class OneWay(io.RawIOBase):  # a pipe-like stream: no seek, no size
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self.inner.read(min(len(b), 7000))
            b[: len(chunk)] = chunk
            return len(chunk)

    seen: list[UploadProgress] = []
    sources = {"bytes": data, "path": path, "str": str(path), "seekable": io.BytesIO(data)}
    sources["pipe"] = OneWay()  # type: ignore[assignment]
    for name, source in sources.items():
        info = sdk.upload(
            bucket, f"dir/{name} file", source, content_type="application/x-test",
            labels={"src": name}, progress=seen.append,
        )  # fmt: skip
        assert (info.sha256, info.size, info.key) == (digest, len(data), f"dir/{name} file")
        head = sdk.head(bucket, f"dir/{name} file")
        assert head.content_type == "application/x-test" and head.labels == {"src": name}
        assert sdk.exists(bucket, f"dir/{name} file")
    assert seen[-1].bytes_done == len(data) and seen[-1].key == "dir/pipe file"
    assert not sdk.exists(bucket, "dir/none")
    # Nothing but paths, bytes and streams.
    with pytest.raises(TypeError):
        sdk.upload(bucket, "bad", 42)  # type: ignore[arg-type]
    assert [o.key for o in sdk.list(bucket)] == sorted(f"dir/{n} file" for n in sources)


def test_list_follows_continuation_tokens(sdk: Client, bucket: str, proxy: FaultProxy) -> None:
    keys = [f"logs/{i:03d}.txt" for i in range(23)] + ["top.txt", "other/a"]
    for k in keys:
        sdk.upload(bucket, k, k.encode())
    with Client(proxy.url) as c:
        listing = c.list(bucket, prefix="logs/", page_size=5)
        assert proxy.seen("GET", "/objects") == []  # lazy: nothing asked yet
        first = next(listing)
        assert first.key == "logs/000.txt" and first.size == len(b"logs/000.txt")
        assert len(proxy.seen("GET", "/objects")) == 1
        rest = list(listing)
    assert [first.key] + [o.key for o in rest] == keys[:23]
    pages = proxy.seen("GET", "/objects")
    assert len(pages) == 5  # 23 keys, 5 a page
    assert all("continuation_token=" in p.path for p in pages[1:])
    assert [o.key for o in sdk.list(bucket, recursive=False)] == ["top.txt"]
    assert sdk.list_prefixes(bucket) == ["logs/", "other/"]
    assert [o.key for o in sdk.list(bucket, "logs/01", page_size=2)] == keys[10:20]
    with pytest.raises(NotFoundError):
        list(sdk.list("no-such-bucket-sdk"))


def test_retry_on_503_then_success_and_never_on_403(
    via_proxy: Client, proxy: FaultProxy, bucket: str, sdk: Client
) -> None:
    sdk.upload(bucket, "r.txt", b"retry me")
    proxy.fail_next(2, 503)
    assert via_proxy.head(bucket, "r.txt").size == 8
    assert [r.status for r in proxy.requests] == [503, 503, 200]
    # Retry-After is honoured.
    proxy.reset()
    proxy.fail_next(1, 503, retry_after="1")
    started = time.monotonic()
    assert via_proxy.head(bucket, "r.txt").size == 8
    assert time.monotonic() - started >= 0.95
    # Exhausted: the last error is raised, typed and marked retryable.
    proxy.reset()
    proxy.fail_next(10, 503)
    with pytest.raises(ArtifactStoreError) as err:
        via_proxy.head(bucket, "r.txt")
    assert err.value.http_status == 503 and err.value.retryable
    assert len(proxy.requests) == FAST.max_attempts
    # A 403 is final: exactly one request.
    proxy.reset()
    proxy.fail_next(1, 403)
    with pytest.raises(AccessDeniedError) as denied:
        via_proxy.upload(bucket, "r.txt", b"changed")
    assert denied.value.code == "AccessDenied" and not denied.value.retryable
    assert len(proxy.requests) == 1
    assert sdk.head(bucket, "r.txt").size == 8  # nothing written
    # A refused connection is an ArtifactStoreError too, after the retries.
    with Client("http://127.0.0.1:9", retry=FAST) as dead:
        with pytest.raises(ArtifactStoreError) as conn:
            dead.list_buckets()
    assert conn.value.http_status == 0 and conn.value.code == "ConnectError"


def test_download_resumes_after_a_dropped_connection(
    via_proxy: Client, proxy: FaultProxy, sdk: Client, bucket: str, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "src.bin", 12 * MIB + 123)
    sdk.upload(bucket, "d.bin", src)
    proxy.drop_after(5 * MIB, count=2, match="/objects/d.bin")
    out = tmp_path / "out.bin"
    info = via_proxy.download(bucket, "d.bin", out)
    assert info.sha256 == sha256_file(src) == sha256_file(out)
    assert info.size == out.stat().st_size == src.stat().st_size
    gets = proxy.seen("GET", "/objects/d.bin")
    assert [g.dropped for g in gets] == [True, True, False]
    assert "range" not in gets[0].headers
    assert gets[1].headers["range"] == f"bytes={5 * MIB}-"
    assert gets[2].headers["range"] == f"bytes={10 * MIB}-"
    assert gets[1].headers["if-range"] == f'"{info.etag}"'
    assert not Path(f"{out}.part").exists()

    # Across calls: the first gives up (no retries), the second continues its .part file.
    proxy.reset()
    proxy.drop_after(3 * MIB, match="/objects/d.bin")
    again = tmp_path / "again.bin"
    with Client(proxy.url, retry=RetryPolicy(max_attempts=1)) as once:
        with pytest.raises(ArtifactStoreError) as err:
            once.download(bucket, "d.bin", again)
    assert err.value.http_status == 0 and err.value.retryable
    assert Path(f"{again}.part").stat().st_size == 3 * MIB and not again.exists()
    proxy.reset()
    via_proxy.download(bucket, "d.bin", again)
    assert sha256_file(again) == sha256_file(src)
    assert [g.headers.get("range") for g in proxy.seen("GET")] == [f"bytes={3 * MIB}-"]

    # A stale .part of other content: If-Range no longer matches, the whole object comes.
    Path(f"{again}.part").write_bytes(b"stale")
    Path(f"{again}.part.etag").write_text("0" * 64)
    via_proxy.download(bucket, "d.bin", again)
    assert sha256_file(again) == sha256_file(src)

    # To a stream.
    buf = io.BytesIO()
    proxy.reset()
    proxy.drop_after(MIB, match="/objects/d.bin")
    assert via_proxy.download(bucket, "d.bin", buf).sha256 == sha256_file(src)
    assert hashlib.sha256(buf.getvalue()).hexdigest() == sha256_file(src)


def test_download_checksum_mismatch_is_detected(
    via_proxy: Client, proxy: FaultProxy, sdk: Client, bucket: str, tmp_path: Path
) -> None:
    sdk.upload(bucket, "c.bin", os.urandom(MIB))
    proxy.corrupt_next(match="/objects/c.bin")
    out = tmp_path / "c.bin"
    with pytest.raises(ArtifactStoreError) as err:
        via_proxy.download(bucket, "c.bin", out)
    assert err.value.code == "ChecksumMismatch"
    assert not out.exists() and not Path(f"{out}.part").exists()
    with pytest.raises(NotFoundError) as nf:
        via_proxy.download(bucket, "missing.bin", out)
    assert nf.value.code == "NoSuchKey" and not out.exists()
    assert not Path(f"{out}.part").exists() and not Path(f"{out}.part.etag").exists()


def test_large_upload_interrupted_then_resumed_without_resending_parts(
    via_proxy: Client, proxy: FaultProxy, sdk: Client, bucket: str, tmp_path: Path
) -> None:
    size = 200 * MIB + 4567
    src = random_file(tmp_path / "big.bin", size)
    part = 16 * MIB
    total_parts = -(-size // part)  # 13
    proxy.stop_parts_after(5)
    with pytest.raises(ArtifactStoreError) as err:
        via_proxy.upload(bucket, "big.bin", src, part_size=part, parallel=4)
    assert err.value.http_status == 0
    assert not sdk.exists(bucket, "big.bin")
    stored = {
        int(r.path.rsplit("/", 1)[1])
        for r in proxy.seen("PUT", "/parts/")
        if r.forwarded and r.status == 200
    }
    assert len(stored) == 5
    (upload,) = sdk.list_uploads(bucket, "big.bin")
    assert {p.part_number for p in sdk.get_upload(bucket, upload.upload_id).parts} == stored

    proxy.reset()
    progress: list[UploadProgress] = []
    info = via_proxy.upload(
        bucket, "big.bin", src, part_size=part, parallel=4, progress=progress.append
    )
    resent = {int(r.path.rsplit("/", 1)[1]) for r in proxy.seen("PUT", "/parts/")}
    assert resent == set(range(1, total_parts + 1)) - stored
    assert info.sha256 == sha256_file(src) and info.size == size
    assert progress[-1].bytes_done == size and progress[-1].total == size
    assert all(r.headers.get("x-checksum-sha256") for r in proxy.seen("PUT", "/parts/"))
    assert sdk.list_uploads(bucket) == []
    assert sdk.head(bucket, "big.bin").sha256 == info.sha256


def test_multipart_details(sdk: Client, bucket: str, tmp_path: Path) -> None:
    # A seekable stream goes in parts too; the last part may be short.
    data = os.urandom(11 * MIB + 5)
    info = sdk.upload(
        bucket, "m.bin", io.BytesIO(data), multipart_threshold=6 * MIB, part_size=5 * MIB
    )
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    # resume=False starts afresh even when an upload of the key is pending.
    pending = httpx.post(
        f"{sdk.base_url}/v1/buckets/{bucket}/uploads", json={"key": "n.bin"}
    ).json()["upload_id"]
    sdk.upload(bucket, "n.bin", data, multipart_threshold=6 * MIB, part_size=5 * MIB, resume=False)
    assert [u.upload_id for u in sdk.list_uploads(bucket, "n.bin")] == [pending]
    sdk.abort_upload(bucket, pending)
    assert sdk.list_uploads(bucket) == []
    with pytest.raises(NotFoundError) as err:
        sdk.abort_upload(bucket, pending)
    assert err.value.code == "NoSuchUpload"


def test_create_only_uploads_never_replace(sdk: Client, bucket: str) -> None:
    first = sdk.upload(bucket, "once.bin", b"first", overwrite=False)
    with pytest.raises(PreconditionFailedError) as small:
        sdk.upload(bucket, "once.bin", b"second", overwrite=False)
    assert small.value.http_status == 412 and small.value.code == "PreconditionFailed"
    # In parts: refused before any part is sent; and at completion if the object appeared
    # while the parts were going up (another writer won).
    big = os.urandom(6 * MIB + 1)
    with pytest.raises(PreconditionFailedError):
        sdk.upload(bucket, "once.bin", big, multipart_threshold=5 * MIB, part_size=5 * MIB,
                   overwrite=False)  # fmt: skip
    assert sdk.list_uploads(bucket, "once.bin") == []
    upload = httpx.post(
        f"{sdk.base_url}/v1/buckets/{bucket}/uploads", json={"key": "race.bin"}
    ).json()["upload_id"]
    etag = httpx.put(
        f"{sdk.base_url}/v1/buckets/{bucket}/uploads/{upload}/parts/1", content=big
    ).json()["etag"]
    sdk.upload(bucket, "race.bin", b"the other writer")
    r = httpx.post(
        f"{sdk.base_url}/v1/buckets/{bucket}/uploads/{upload}/complete",
        json={"parts": [{"part_number": 1, "etag": etag}]},
        headers={"If-None-Match": "*"},
    )
    assert r.status_code == 412
    assert sdk.head(bucket, "once.bin").sha256 == first.sha256
    assert sdk.download(bucket, "race.bin", io.BytesIO()).size == len(b"the other writer")
    # overwrite=True (the default) replaces.
    assert sdk.upload(bucket, "once.bin", b"second").sha256 != first.sha256


def test_copy_and_presign(sdk: Client, bucket: str) -> None:
    sdk.upload(bucket, "src dir/a.txt", b"copy me", content_type="text/plain", labels={"a": "1"})
    copied = sdk.copy(bucket, "src dir/a.txt", bucket, "dst/b.txt")
    assert copied.sha256 == hashlib.sha256(b"copy me").hexdigest()
    assert (copied.content_type, copied.labels) == ("text/plain", {"a": "1"})
    relabelled = sdk.copy(bucket, "src dir/a.txt", bucket, "dst/c.txt", labels={"b": "2"})
    assert relabelled.labels == {"b": "2"}
    with pytest.raises(NotFoundError) as err:
        sdk.copy(bucket, "nope", bucket, "dst/d.txt")
    assert err.value.code == "NoSuchKey" and not sdk.exists(bucket, "dst/d.txt")

    url = sdk.presign(bucket, "dst/b.txt", expires_in=60)
    assert httpx.get(url).content == b"copy me"
    put_url = sdk.presign(bucket, "up.txt", method="PUT")
    assert httpx.put(put_url, content=b"via url").status_code in (200, 201)
    assert sdk.head(bucket, "up.txt").size == 7
    with pytest.raises(ArtifactStoreError) as bad:
        sdk.presign(bucket, "up.txt", expires_in=0)
    assert bad.value.http_status == 400


def test_delete(sdk: Client, bucket: str) -> None:
    sdk.upload(bucket, "gone.txt", b"bye")
    sdk.delete(bucket, "gone.txt")
    with pytest.raises(NotFoundError) as err:
        sdk.delete(bucket, "gone.txt")
    assert err.value.code == "NoSuchKey" and err.value.http_status == 404
