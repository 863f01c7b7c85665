"""Contract tests of the blob store (DESIGN.md §4): every backend must pass them — the
filesystem, and S3 against two real servers on loopback (moto's server mode, and a second Zot
Artifact Store through its own S3 API).

Tests talk to the store through the :class:`BlobStore` interface. What only a backend can do
(plant a crash leftover, age a blob, make the storage refuse writes, count what is stored) goes
through a small per-backend :class:`Harness`; a new backend adds one and joins ``BACKENDS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.objectstores import AzureEndpoint, GcsEndpoint, S3Endpoint
from tests.fixtures.s3client import s3_client
from tests.fixtures.sockets import send_to_socketpair
from tests.fixtures.tcpswitch import TcpSwitch
from zot_artifact_store.storage import (
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    DigestMismatchError,
    FilesystemBlobStore,
    UploadNotFoundError,
    create_blob_store,
)
from zot_artifact_store.storage.azure import AzureBlobStore, AzureOptions
from zot_artifact_store.storage.gcs import GcsBlobStore, GcsOptions
from zot_artifact_store.storage.objectstore import (
    ObjectBlobStore,
    parse_pointer,
    pointer_record,
    pointer_size,
)
from zot_artifact_store.storage.s3 import S3BlobStore, S3Options

MiB = 1 << 20
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes (so offsets matter)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


async def agen(chunks: Iterable[bytes], pause: bool = False) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if pause:
            await asyncio.sleep(0)
        yield chunk


# ---- per-backend harness ----------------------------------------------------------------------
class Harness:
    """Backend-specific operations the contract needs; one subclass per backend."""

    store: BlobStore
    # Whether the storage refuses a create-only write of an existing object; without it, the
    # "exactly one writer creates it" and "appends never interleave" guarantees cannot hold.
    preconditions = True
    # Whether the store gives signed GET URLs of its blobs (presign): S3, and Azure with an
    # account key; not the filesystem, nor the GCS emulator (no credentials that can sign).
    signs_urls = False

    def require_preconditions(self) -> None:
        if not self.preconditions:
            pytest.skip(f"{type(self).__name__}: {self.no_preconditions}")

    no_preconditions = ""

    async def another_instance(self) -> BlobStore:
        """A second, opened store on the same storage (another replica: no shared memory)."""
        raise NotImplementedError

    def plant_orphans(self) -> None:
        """Leave what a crashed writer would leave behind."""
        raise NotImplementedError

    def temp_leftovers(self) -> list[str]:
        """Temporary (in-progress) content currently stored."""
        raise NotImplementedError

    def stored_blob_objects(self) -> int:
        """How many committed blob objects physically exist."""
        raise NotImplementedError

    def data_objects(self) -> list[str]:
        """Objects holding the bytes of blobs written in parts, apart from the blobs' own
        keys (an object store's ``data/``; the filesystem stores every blob whole)."""
        raise NotImplementedError

    def age(self, digest: str, seconds: float) -> float:
        """Make a blob look up to ``seconds`` older; returns by how much it really aged (an
        object store cannot backdate: its harness waits past the clock's 1 s resolution)."""
        raise NotImplementedError

    def break_writes(self) -> None:
        raise NotImplementedError

    def repair_writes(self) -> None:
        raise NotImplementedError


class FilesystemHarness(Harness):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = create_blob_store(root, fsync=True)
        assert isinstance(self.store, FilesystemBlobStore)
        self.others: list[BlobStore] = []

    async def another_instance(self) -> BlobStore:
        other = FilesystemBlobStore(self.root)
        await other.open()
        self.others.append(other)
        return other

    def plant_orphans(self) -> None:
        tmp = self.root / "tmp"
        (tmp / "leftover-from-old-layout").write_bytes(b"x" * 100)
        dead = tmp / "0123456789abcdef"  # an instance directory whose owner is gone
        dead.mkdir()
        (dead / "half-written").write_bytes(b"y" * 100)
        (tmp / "fedcba9876543210.lock").write_bytes(b"")

    def temp_leftovers(self) -> list[str]:
        tmp = self.root / "tmp"
        return sorted(
            str(p.relative_to(tmp))
            for p in tmp.rglob("*")
            if p.is_file() and not p.name.endswith(".lock")
        )

    def stored_blob_objects(self) -> int:
        return sum(1 for p in (self.root / "blobs").rglob("*") if p.is_file())

    def age(self, digest: str, seconds: float) -> float:
        algo, hexpart = digest.split(":")
        path = self.root / "blobs" / algo / hexpart[:2] / hexpart
        st = path.stat()
        os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))
        return seconds

    def break_writes(self) -> None:
        # We run as root, so chmod cannot stop writes: replace tmp/ by a plain file instead.
        tmp = self.root / "tmp"
        shutil.rmtree(tmp)
        tmp.write_text("not a directory")

    def repair_writes(self) -> None:
        tmp = self.root / "tmp"
        tmp.unlink()
        tmp.mkdir()

    async def aclose(self) -> None:
        for other in self.others:
            await other.close()
        await self.store.close()


class ObjectStoreHarness(Harness):
    """A prefix of its own in a real object store on loopback; the store under test reaches it
    through a switchable TCP relay (``break_writes`` takes the backend down), other instances
    (replicas) directly. A backend adds how to build its store and how to look into it."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        parts = urlsplit(url)
        self.switch = TcpSwitch((parts.hostname or "127.0.0.1", parts.port or 80)).start()
        relayed = self.switch.url + parts.path  # the same service, through the relay
        self.store = self.make(relayed, fast_failing=True)
        self.others: list[BlobStore] = []

    def make(self, url: str, fast_failing: bool = False, commit: str = "pointer") -> BlobStore:
        raise NotImplementedError

    def listing(self, under: str) -> list[tuple[str, int]]:
        """Committed objects under ``prefix + under``: (key without the prefix, size)."""
        raise NotImplementedError

    def keys(self, under: str) -> list[str]:
        return [k for k, _ in self.listing(under)]

    def read_raw(self, key: str) -> bytes:
        """An object's bytes as stored (``key`` without the prefix)."""
        raise NotImplementedError

    def put_raw(self, key: str, body: bytes) -> None:
        raise NotImplementedError

    def named_data(self) -> set[str]:
        """The data objects the blobs' pointer records name."""
        named = set()
        for key, size in self.listing("blobs/"):
            _, algo, hexpart = key.split("/")
            if size == pointer_size(algo):
                ptr = parse_pointer(self.read_raw(key), f"{algo}:{hexpart}")
                if ptr is not None:
                    named.add(ptr[0])
        return named

    def data_objects(self) -> list[str]:
        return sorted(self.keys("data/"))

    def unfinished(self) -> list[str]:
        """Uploads begun and neither finished nor aborted (they hold storage)."""
        return []

    async def another_instance(self, commit: str = "pointer") -> BlobStore:
        other = self.make(self.url, commit=commit)
        await other.open()
        self.others.append(other)
        return other

    def temp_leftovers(self) -> list[str]:
        """Temporaries, unfinished uploads, and data objects no pointer names."""
        named = self.named_data()
        return (
            sorted(k for k in self.keys("tmp/") if not k.endswith(".lease"))
            + sorted(k for k in self.keys("data/") if k not in named)
            + self.unfinished()
        )

    def stored_blob_objects(self) -> int:
        return len(self.keys("blobs/"))

    def age(self, digest: str, seconds: float) -> float:
        time.sleep(1.1)  # a modification time cannot be set; it has 1 s resolution
        return 1.0

    def break_writes(self) -> None:
        self.switch.off()

    def repair_writes(self) -> None:
        self.switch.on()

    async def aclose(self) -> None:
        for other in self.others:
            await other.close()
        await self.store.close()
        self.switch.stop()


class S3Harness(ObjectStoreHarness):
    signs_urls = True

    def __init__(self, endpoint: S3Endpoint, prefix: str) -> None:
        self.endpoint = endpoint
        self.raw = s3_client(endpoint.url, endpoint.access_key, endpoint.secret_key)
        super().__init__(endpoint.url, prefix)

    def make(self, url: str, fast_failing: bool = False, commit: str = "pointer") -> BlobStore:
        return S3BlobStore(
            S3Options(
                bucket=self.endpoint.bucket,
                endpoint=url,
                prefix=self.prefix,
                access_key=self.endpoint.access_key,
                secret_key=self.endpoint.secret_key,
                force_path_style=True,
                secure=False,
                part_size=5 * MiB,  # S3's minimum: small bodies still take the multipart path
                touch_after=1.0,  # see age()
                max_attempts=2 if fast_failing else None,
                commit=commit,
            )
        )

    def listing(self, under: str) -> list[tuple[str, int]]:
        pages = self.raw.get_paginator("list_objects_v2").paginate(
            Bucket=self.endpoint.bucket, Prefix=self.prefix + under
        )
        return [
            (o["Key"][len(self.prefix) :], o["Size"])
            for page in pages
            for o in page.get("Contents", [])
        ]

    def read_raw(self, key: str) -> bytes:
        got = self.raw.get_object(Bucket=self.endpoint.bucket, Key=self.prefix + key)
        return bytes(got["Body"].read())

    def put_raw(self, key: str, body: bytes) -> None:
        self.raw.put_object(Bucket=self.endpoint.bucket, Key=self.prefix + key, Body=body)

    def unfinished(self) -> list[str]:
        uploads = self.raw.list_multipart_uploads(Bucket=self.endpoint.bucket, Prefix=self.prefix)
        return [f"multipart:{u['Key']}" for u in uploads.get("Uploads", [])]

    def plant_orphans(self) -> None:
        bucket = self.endpoint.bucket
        dead = f"{self.prefix}tmp/0123456789abcdef/"  # an instance with no lease: gone
        self.raw.put_object(Bucket=bucket, Key=dead + "half-written", Body=b"y" * 100)
        self.raw.create_multipart_upload(Bucket=bucket, Key=dead + "multipart")
        self.raw.put_object(Bucket=bucket, Key=f"{self.prefix}tmp/stray", Body=b"x")


class AzureHarness(ObjectStoreHarness):
    signs_urls = True

    def __init__(self, endpoint: AzureEndpoint, prefix: str) -> None:
        from azure.storage.blob import BlobServiceClient

        self.endpoint = endpoint
        service = BlobServiceClient.from_connection_string(endpoint.connection_string())
        self.raw = service.get_container_client(endpoint.container)
        super().__init__(endpoint.url, prefix)

    def make(self, url: str, fast_failing: bool = False, commit: str = "pointer") -> BlobStore:
        return AzureBlobStore(
            AzureOptions(
                container=self.endpoint.container,
                account_name=self.endpoint.account_name,
                account_key=self.endpoint.account_key,
                endpoint=url,
                prefix=self.prefix,
                part_size=MiB,  # small test bodies still take the block path
                copy_block=MiB + 1,  # commits copy several ranges of one source
                touch_after=1.0,  # see age()
                retry_backoff=0.1,
                max_attempts=2 if fast_failing else 3,
                commit=commit,
            )
        )

    def listing(self, under: str, uncommitted: bool = False) -> list[tuple[str, int]]:
        include = ["uncommittedblobs"] if uncommitted else None
        blobs = self.raw.list_blobs(name_starts_with=self.prefix + under, include=include)
        return [(b.name[len(self.prefix) :], b.size) for b in blobs]

    def read_raw(self, key: str) -> bytes:
        return bytes(self.raw.download_blob(self.prefix + key).readall())

    def put_raw(self, key: str, body: bytes) -> None:
        self.raw.upload_blob(self.prefix + key, body)

    def unfinished(self) -> list[str]:
        committed = self.keys("")
        return [f"uncommitted:{k}" for k, _ in self.listing("", True) if k not in committed]

    def plant_orphans(self) -> None:
        dead = f"{self.prefix}tmp/0123456789abcdef/"  # an instance with no lease: gone
        self.raw.upload_blob(dead + "half-written", b"y" * 100)
        self.raw.get_blob_client(dead + "blocks").stage_block("YmxvY2s=", b"z" * 100)
        self.raw.upload_blob(f"{self.prefix}tmp/stray", b"x")

    async def aclose(self) -> None:
        await super().aclose()
        self.raw.close()


class GcsHarness(ObjectStoreHarness):
    """A bucket of its own in gcp-storage-emulator."""

    preconditions = False
    no_preconditions = (
        "gcp-storage-emulator ignores ifGenerationMatch (every create-only write succeeds), so "
        "exactly-one-creator and non-interleaving appends cannot be checked on it; the backend "
        "sends ifGenerationMatch=0, which real GCS enforces"
    )

    def __init__(self, endpoint: GcsEndpoint, prefix: str) -> None:
        self.raw = endpoint.client()
        self.bucket = self.raw.create_bucket(f"zas-{uuid.uuid4().hex[:12]}")
        super().__init__(endpoint.url, prefix)

    def make(self, url: str, fast_failing: bool = False, commit: str = "pointer") -> BlobStore:
        return GcsBlobStore(
            GcsOptions(
                bucket=self.bucket.name,
                endpoint=url,
                anonymous=True,
                prefix=self.prefix,
                part_size=MiB,  # small test bodies still take the resumable path
                touch_after=1.0,  # see age()
                retry_deadline=1.0 if fast_failing else 5.0,
                commit=commit,
            )
        )

    def listing(self, under: str) -> list[tuple[str, int]]:
        blobs = self.raw.list_blobs(self.bucket, prefix=self.prefix + under)
        return [(b.name[len(self.prefix) :], int(b.size or 0)) for b in blobs]

    def read_raw(self, key: str) -> bytes:
        return bytes(self.bucket.blob(self.prefix + key).download_as_bytes())

    def put_raw(self, key: str, body: bytes) -> None:
        self.bucket.blob(self.prefix + key).upload_from_string(body)

    def plant_orphans(self) -> None:
        dead = f"{self.prefix}tmp/0123456789abcdef/"  # an instance with no lease: gone
        self.bucket.blob(dead + "half-written").upload_from_string(b"y" * 100)
        self.bucket.blob(dead + "compose-0123456789abcdef").upload_from_string(b"z" * 100)
        self.bucket.blob(f"{self.prefix}tmp/stray").upload_from_string(b"x")

    async def aclose(self) -> None:
        await super().aclose()
        self.raw.close()


BACKENDS = ["filesystem", "s3-moto", "s3-zas", "azure-azurite", "gcs-emulator"]


# Backends that keep a blob written in parts as a data object and a pointer (object stores).
OBJECT_BACKENDS = [b for b in BACKENDS if b != "filesystem"]


@pytest.fixture(params=BACKENDS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in _opened(request, tmp_path):
        yield h


@pytest.fixture(params=OBJECT_BACKENDS)
async def object_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ObjectStoreHarness]:
    async for h in _opened(request, tmp_path):
        assert isinstance(h, ObjectStoreHarness)
        yield h


async def _opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    h: FilesystemHarness | ObjectStoreHarness
    if request.param == "filesystem":
        h = FilesystemHarness(tmp_path / "store")
    elif request.param == "azure-azurite":
        h = AzureHarness(request.getfixturevalue("azurite"), f"t-{uuid.uuid4().hex[:12]}/")
    elif request.param == "gcs-emulator":
        h = GcsHarness(request.getfixturevalue("gcs_emulator"), f"t-{uuid.uuid4().hex[:12]}/")
    else:
        endpoint = request.getfixturevalue(
            {"s3-moto": "moto_s3", "s3-zas": "zas_s3"}[request.param]
        )
        h = S3Harness(endpoint, f"t-{uuid.uuid4().hex[:12]}/")
    await h.store.open()
    try:
        yield h
    finally:
        await h.aclose()


@pytest.fixture
def blob_store(harness: Harness) -> BlobStore:
    return harness.store


async def write_chunks(
    store: BlobStore,
    chunks: Iterable[bytes | memoryview],
    expected: str | None = None,
    extra: tuple[str, ...] = (),
) -> BlobInfo:
    w = await store.writer(extra_hashes=extra)
    try:
        for chunk in chunks:
            await w.write(chunk)
        return await w.commit(expected)
    except BaseException:
        await w.abort()
        raise


async def all_blobs(store: BlobStore) -> dict[str, int]:
    return {b.digest: b.size async for b in store.iter_blobs()}


# ---- writes and reads -------------------------------------------------------------------------
async def test_write_commit_digest_size_and_extra_hashes(blob_store: BlobStore) -> None:
    data = payload(300_000)
    w = await blob_store.writer(extra_hashes=("md5", "sha1"))
    for i in range(0, len(data), 65_536):
        await w.write(data[i : i + 65_536])
    assert w.size == len(data)
    info = await w.commit()
    assert info.digest == sha256(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert info.hashes["md5"] == hashlib.md5(data).hexdigest()
    assert info.hashes["sha1"] == hashlib.sha1(data).hexdigest()
    assert info.existed is False
    st = await blob_store.stat(info.digest)
    assert st is not None and st.size == len(data) and st.digest == info.digest


async def test_read_back_is_byte_identical(blob_store: BlobStore) -> None:
    data = payload(3 * MiB + 12_345, seed=1)
    info = await blob_store.put_bytes(data)
    assert await blob_store.read_all(info.digest) == data
    chunks = [c async for c in blob_store.read(info.digest, chunk_size=100_000)]
    assert b"".join(chunks) == data
    assert all(len(c) <= 100_000 for c in chunks)
    assert len(chunks) == -(-len(data) // 100_000)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, slice(0, None)),
        (10, 20, slice(10, 20)),
        (0, 1, slice(0, 1)),
        (999, None, slice(999, None)),
        (1000, None, slice(0, 0)),  # start at the end → nothing
        (1000, 1000, slice(0, 0)),
        (1500, None, slice(0, 0)),  # start beyond the end → nothing
        (500, 5000, slice(500, 1000)),  # end beyond the size is clipped
        (20, 10, slice(0, 0)),
    ],
)
async def test_range_reads(
    blob_store: BlobStore, start: int, end: int | None, expected: slice
) -> None:
    data = payload(1000, seed=2)
    info = await blob_store.put_bytes(data)
    got = b"".join([c async for c in blob_store.read(info.digest, start, end, chunk_size=64)])
    assert got == data[expected]


async def test_range_read_of_large_blob_crosses_chunks(blob_store: BlobStore) -> None:
    data = payload(5 * MiB, seed=3)
    info = await blob_store.put_bytes(data)
    start, end = MiB - 7, 4 * MiB + 3
    got = b"".join([c async for c in blob_store.read(info.digest, start, end)])
    assert got == data[start:end]


async def test_send_to_socket_sends_exactly_the_range_it_reports(blob_store: BlobStore) -> None:
    """The large-download path (sendfile from a file; an object store's body read into one
    buffer and written from it on a thread): what it says it sent is the range's first bytes;
    the caller streams the rest. A blob written in parts (an object store's pointer)."""
    data = payload(6 * MiB + 5, seed=11)
    info = await write_chunks(blob_store, [data[i : i + MiB] for i in range(0, len(data), MiB)])
    start, end = 3, len(data) - 2
    sent, received = await send_to_socketpair(blob_store, info.digest, start, end)
    assert 0 < sent <= end - start
    assert received == data[start : start + sent]


async def test_a_presigned_url_serves_the_blob_bytes(
    blob_store: BlobStore, harness: Harness
) -> None:
    """``storageDriver.redirect`` sends clients to this URL: the bytes of a blob written in
    parts (the data object, never the pointer record) and of a small one."""
    assert blob_store.signs_urls is harness.signs_urls  # what the store says before any URL
    for data in (payload(6 * MiB + 5, seed=12), payload(1000, seed=13)):
        info = await write_chunks(blob_store, [data[i : i + MiB] for i in range(0, len(data), MiB)])
        url = await blob_store.presign(info.digest, 60)
        if not harness.signs_urls:
            assert url is None
            return
        assert url is not None
        r = await asyncio.to_thread(httpx.get, url, timeout=30)
        assert r.status_code == 200 and r.content == data
    with pytest.raises(BlobNotFoundError):
        await blob_store.presign(sha256(b"never stored"), 60)


async def test_identical_content_is_stored_once_and_touched(
    blob_store: BlobStore, harness: Harness
) -> None:
    data = payload(10_000, seed=4)
    first = await blob_store.put_bytes(data)
    aged = harness.age(first.digest, 3600)
    old = await blob_store.stat(first.digest)
    assert old is not None
    second = await write_chunks(blob_store, [data[:10], data[10:]], extra=("md5",))
    # A small blob is one create-only write: a storage without preconditions (see
    # Harness.preconditions) replaces it instead of reporting it present.
    assert first.existed is False and second.existed is harness.preconditions
    assert second.digest == first.digest and second.size == len(data)
    assert second.hashes["md5"] == hashlib.md5(data).hexdigest()
    new = await blob_store.stat(first.digest)
    assert new is not None and new.mtime > old.mtime + 0.8 * aged  # GC's grace clock restarts
    assert await all_blobs(blob_store) == {first.digest: len(data)}
    assert harness.stored_blob_objects() == 1
    assert harness.temp_leftovers() == []


async def test_expected_digest_mismatch_stores_nothing(
    blob_store: BlobStore, harness: Harness
) -> None:
    data = payload(2 * MiB + 1, seed=5)
    wrong = sha256(b"something else")
    w = await blob_store.writer()
    await w.write(data)
    with pytest.raises(DigestMismatchError) as exc:
        await w.commit(wrong)
    assert exc.value.expected == wrong and exc.value.actual == sha256(data)
    assert await blob_store.stat(sha256(data)) is None
    assert await blob_store.stat(wrong) is None
    assert await all_blobs(blob_store) == {}
    assert harness.temp_leftovers() == []
    await w.abort()  # harmless after a failed commit


async def test_matching_expected_digest_commits(blob_store: BlobStore) -> None:
    data = b"hello, world\n"
    info = await blob_store.put_bytes(data, expected_digest=sha256(data))
    assert info.digest == sha256(data)


@pytest.mark.parametrize("extra", [(), ("sha512",)])
async def test_sha512_expected_digest(blob_store: BlobStore, extra: tuple[str, ...]) -> None:
    data = payload(MiB + 99, seed=6)
    info = await write_chunks(blob_store, [data[:5], data[5:]], sha512(data), extra)
    assert info.digest == sha512(data)
    assert info.hashes["sha512"] == hashlib.sha512(data).hexdigest()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert await blob_store.read_all(sha512(data)) == data
    st = await blob_store.stat(sha512(data))
    assert st is not None and st.size == len(data)
    assert sha512(data) in await all_blobs(blob_store)
    with pytest.raises(DigestMismatchError):
        await write_chunks(blob_store, [b"other"], sha512(data), extra)


async def test_sha512_as_extra_hash_keeps_sha256_name(blob_store: BlobStore) -> None:
    data = b"abc" * 1000
    info = await write_chunks(blob_store, [data], extra=("sha512",))
    assert info.digest == sha256(data)
    assert info.hashes["sha512"] == hashlib.sha512(data).hexdigest()


async def test_abort_leaves_nothing(blob_store: BlobStore, harness: Harness) -> None:
    data = payload(3 * MiB, seed=7)
    w = await blob_store.writer()
    await w.write(data[: 2 * MiB])
    await w.write(data[2 * MiB :])
    await w.abort()
    await w.abort()
    assert await blob_store.stat(sha256(data)) is None
    assert await all_blobs(blob_store) == {}
    assert harness.temp_leftovers() == []
    with pytest.raises(RuntimeError):
        await w.write(b"more")


async def test_stat_exists_delete(blob_store: BlobStore) -> None:
    data = b"delete me"
    digest = sha256(data)
    assert await blob_store.stat(digest) is None
    assert await blob_store.exists(digest) is False
    await blob_store.put_bytes(data)
    assert await blob_store.exists(digest) is True
    st = await blob_store.stat(digest)
    assert st is not None and st.size == len(data) and st.mtime > 0
    assert await blob_store.delete(digest) is True
    assert await blob_store.delete(digest) is False
    assert await blob_store.exists(digest) is False
    with pytest.raises(BlobNotFoundError):
        await blob_store.read_all(digest)


async def test_iter_blobs_lists_exactly_committed(blob_store: BlobStore) -> None:
    assert await all_blobs(blob_store) == {}
    contents = [payload(n, seed=n) for n in (0, 1, 100, 70_000)]
    for c in contents:
        await blob_store.put_bytes(c)
    big = payload(2000, seed=99)
    await blob_store.put_bytes(big, expected_digest=sha512(big))
    aborted = await blob_store.writer()
    await aborted.write(b"never committed")
    await aborted.abort()
    expected = {sha256(c): len(c) for c in contents} | {sha512(big): len(big)}
    listed = [b async for b in blob_store.iter_blobs()]
    assert {b.digest: b.size for b in listed} == expected
    assert len(listed) == len(expected)
    await blob_store.delete(sha256(contents[1]))
    del expected[sha256(contents[1])]
    assert await all_blobs(blob_store) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:../../etc/passwd",
        "sha256:" + "0" * 62 + "/..",
        "sha256:" + "A" * 64,
        "sha256:" + "0" * 63,
        "sha512:" + "0" * 64,
        "md5:" + "0" * 32,
        "../" + "0" * 64,
        "",
        "sha256:" + "0" * 64 + "\n",
    ],
)
async def test_malformed_digest_is_rejected(blob_store: BlobStore, bad: str) -> None:
    with pytest.raises(ValueError):
        await blob_store.stat(bad)
    with pytest.raises(ValueError):
        await blob_store.exists(bad)
    with pytest.raises(ValueError):
        await blob_store.delete(bad)
    with pytest.raises(ValueError):
        await blob_store.read_all(bad)
    with pytest.raises(ValueError):
        await blob_store.put_bytes(b"data", expected_digest=bad)
    with pytest.raises(ValueError):
        await blob_store.upload_finalize(await blob_store.upload_create(), bad)


async def test_read_of_absent_blob_raises_not_found(blob_store: BlobStore) -> None:
    digest = sha256(b"absent")
    reader = blob_store.read(digest)
    with pytest.raises(BlobNotFoundError) as exc:
        await reader.__anext__()
    assert exc.value.digest == digest


async def test_partial_read_can_be_abandoned(blob_store: BlobStore) -> None:
    data = payload(4 * MiB, seed=8)
    info = await blob_store.put_bytes(data)
    reader = blob_store.read(info.digest, chunk_size=MiB)
    first = await reader.__anext__()
    assert first == data[:MiB]
    await reader.aclose()
    assert await blob_store.read_all(info.digest) == data


async def test_empty_blob(blob_store: BlobStore, harness: Harness) -> None:
    w = await blob_store.writer(extra_hashes=("md5",))
    await w.write(b"")
    info = await w.commit(EMPTY_SHA256)
    assert info.digest == EMPTY_SHA256 and info.size == 0
    assert info.hashes["md5"] == hashlib.md5(b"").hexdigest()
    assert await blob_store.read_all(EMPTY_SHA256) == b""
    assert [c async for c in blob_store.read(EMPTY_SHA256)] == []
    st = await blob_store.stat(EMPTY_SHA256)
    assert st is not None and st.size == 0
    assert (await blob_store.put_bytes(b"")).existed is harness.preconditions


async def test_odd_sized_chunks_hash_correctly(blob_store: BlobStore) -> None:
    sizes = [1, 7, 3 * MiB, 1, MiB - 1, 65_537, 2, MiB, MiB + 1, 13, 5 * MiB + 3]
    data = payload(sum(sizes), seed=9)
    chunks: list[bytes | memoryview] = []
    pos = 0
    for i, n in enumerate(sizes):
        piece = data[pos : pos + n]
        chunks.append(memoryview(piece) if i % 3 == 1 else piece)
        pos += n
    info = await write_chunks(blob_store, chunks, extra=("md5",))
    assert info.digest == sha256(data) and info.size == len(data)
    assert info.hashes["md5"] == hashlib.md5(data).hexdigest()
    assert await blob_store.read_all(info.digest) == data


async def test_writer_copies_mutable_buffers(blob_store: BlobStore) -> None:
    """A caller may reuse its buffer as soon as write() returns."""
    buf = bytearray(2 * MiB)
    expected = bytearray()
    w = await blob_store.writer()
    for i in range(5):
        buf[:] = bytes([i + 1]) * len(buf)
        expected += buf
        await w.write(memoryview(buf))
    buf[:] = b"\xff" * len(buf)
    info = await w.commit()
    assert info.digest == sha256(bytes(expected))
    assert await blob_store.read_all(info.digest) == expected


async def test_concurrent_writes_of_same_content_yield_one_blob(
    blob_store: BlobStore, harness: Harness
) -> None:
    harness.require_preconditions()
    data = payload(3 * MiB + 5, seed=10)

    async def one(i: int) -> BlobInfo:
        w = await blob_store.writer()
        step = 100_000 + i * 17
        for pos in range(0, len(data), step):
            await w.write(data[pos : pos + step])
            await asyncio.sleep(0)
        return await w.commit(sha256(data))

    infos = await asyncio.gather(*(one(i) for i in range(10)))
    assert {i.digest for i in infos} == {sha256(data)}
    assert sum(not i.existed for i in infos) == 1  # exactly one writer created it
    assert await all_blobs(blob_store) == {sha256(data): len(data)}
    assert harness.stored_blob_objects() == 1
    assert harness.temp_leftovers() == []
    assert await blob_store.read_all(sha256(data)) == data


async def test_concurrent_writes_of_different_content(blob_store: BlobStore) -> None:
    datas = [payload(MiB + i, seed=100 + i) for i in range(8)]
    infos = await asyncio.gather(*(write_chunks(blob_store, [d[:1000], d[1000:]]) for d in datas))
    assert [i.digest for i in infos] == [sha256(d) for d in datas]
    for d in datas:
        assert await blob_store.read_all(sha256(d)) == d


# ---- blobs written in parts: a pointer on the digest's key (object stores) ------------------
BIG = 11 * MiB  # more than two parts on every object-store harness (5 MiB S3, 1 MiB others)


async def test_large_blob_points_at_its_data_until_deleted(
    object_harness: ObjectStoreHarness,
) -> None:
    """A blob written in parts is visible under its digest (stat, reads, listing) while its
    bytes stay in one data object; a second upload of it adds nothing; delete removes both."""
    harness, blob_store = object_harness, object_harness.store
    data = payload(BIG + 3, seed=40)
    first = await write_chunks(blob_store, [data[i : i + MiB] for i in range(0, len(data), MiB)])
    assert harness.data_objects() != []
    assert first.existed is False and first.digest == sha256(data)
    st = await blob_store.stat(first.digest)
    assert st is not None and st.size == len(data)
    assert await blob_store.read_all(first.digest) == data
    got = b"".join([c async for c in blob_store.read(first.digest, 6 * MiB - 1, 9 * MiB + 2)])
    assert got == data[6 * MiB - 1 : 9 * MiB + 2]
    again = await write_chunks(blob_store, [data[:100], data[100:]])
    assert again.existed is True and again.size == len(data)
    assert await all_blobs(blob_store) == {first.digest: len(data)}
    assert harness.stored_blob_objects() == 1 and len(harness.data_objects()) == 1
    assert harness.temp_leftovers() == []
    assert await blob_store.delete(first.digest) is True
    assert harness.stored_blob_objects() == 0 and harness.data_objects() == []
    with pytest.raises(BlobNotFoundError):
        await blob_store.read_all(first.digest)


async def test_reused_part_buffers_carry_each_uploads_own_bytes(
    object_harness: ObjectStoreHarness,
) -> None:
    """Parts handed back after they are sent fill the next parts of other uploads (S3): rounds
    of concurrent uploads in odd-sized pieces, each read back byte for byte — a part sent with
    another upload's or a stale part's bytes would fail its digest or its read."""
    store = object_harness.store
    assert isinstance(store, ObjectBlobStore)
    sizes = [MiB - 3, 7, 2 * MiB + 11, 65_537, MiB]
    for rnd in range(3):
        datas = [payload(BIG + 1000 * i + rnd, seed=60 + 10 * rnd + i) for i in range(3)]

        async def one(data: bytes) -> BlobInfo:
            pieces, pos, k = [], 0, 0
            while pos < len(data):
                n = sizes[k % len(sizes)]
                pieces.append(data[pos : pos + n])
                pos, k = pos + n, k + 1
            return await write_chunks(store, pieces)

        infos = await asyncio.gather(*(one(d) for d in datas))
        assert [i.digest for i in infos] == [sha256(d) for d in datas]
        for d in datas:
            assert await store.read_all(sha256(d)) == d
    buffers = store.client.part_buffers
    if store.client.backend == "s3":  # parts are bytearrays there: sent ones are kept
        assert 0 < len(buffers._free) <= buffers.keep


async def test_bytes_that_look_like_a_pointer_are_just_bytes(blob_store: BlobStore) -> None:
    """An upload of a pointer record for another digest is stored and read as its own bytes:
    a record counts only on the key of the digest it names, which its bytes cannot hash to."""
    other = sha256(b"someone else's blob")
    record = pointer_record(other, 19, f"data/{'0' * 16}/{'1' * 32}")
    info = await blob_store.put_bytes(record)
    assert info.size == len(record) == pointer_size("sha256")
    assert await blob_store.read_all(info.digest) == record
    assert b"".join([c async for c in blob_store.read(info.digest, 3, 40)]) == record[3:40]
    st = await blob_store.stat(info.digest)
    assert st is not None and st.size == len(record)
    assert await all_blobs(blob_store) == {info.digest: len(record)}


async def test_gc_removes_data_no_pointer_names_and_keeps_the_rest(
    object_harness: ObjectStoreHarness,
) -> None:
    """A writer that died between completing a data object and pointing at it leaves garbage
    GC removes; a live writer's fresh data object and every named one stay."""
    harness, store = object_harness, object_harness.store
    assert isinstance(store, ObjectBlobStore)
    data = payload(BIG, seed=41)
    info = await store.put_bytes(data)
    named = harness.data_objects()
    dead = f"data/0123456789abcdef/{'a' * 32}"  # an instance with no lease: gone
    live = f"data/{store.instance}/{'b' * 32}"  # this instance, between complete and point
    harness.put_raw(dead, b"orphan")
    harness.put_raw(live, b"about to be named")
    await asyncio.sleep(1.1)  # modification times have 1 s resolution
    assert await store.collect_leftovers(time.time()) >= 1
    assert harness.data_objects() == sorted([*named, live])
    assert await store.read_all(info.digest) == data


async def test_pointer_and_copy_commits_share_a_store(object_harness: ObjectStoreHarness) -> None:
    """Replicas configured with either commit mode read, dedupe and delete each other's
    blobs (a change of ``storageDriver.commit`` needs no migration)."""
    harness, pointing = object_harness, object_harness.store
    copying = await harness.another_instance(commit="copy")
    a, b = payload(BIG, seed=42), payload(BIG + 1, seed=43)
    info_a = await copying.put_bytes(a)
    assert harness.data_objects() == []  # copied whole onto its digest's key
    info_b = await pointing.put_bytes(b)
    assert len(harness.data_objects()) == 1
    assert await pointing.read_all(info_a.digest) == a
    assert await copying.read_all(info_b.digest) == b
    assert (await pointing.put_bytes(a)).existed and (await copying.put_bytes(b)).existed
    assert await all_blobs(copying) == {info_a.digest: len(a), info_b.digest: len(b)}
    assert harness.temp_leftovers() == []
    assert await copying.delete(info_b.digest)
    assert harness.data_objects() == []


# ---- lifecycle and health ---------------------------------------------------------------------
async def test_open_removes_orphaned_temp_files(harness: Harness) -> None:
    harness.plant_orphans()
    assert harness.temp_leftovers() != []
    await harness.another_instance()  # a (re)starting store sweeps what dead writers left
    assert harness.temp_leftovers() == []


async def test_open_keeps_writes_of_a_live_instance(harness: Harness) -> None:
    """Replicas may share the storage: one starting must not break another's writes."""
    data = payload(3 * MiB, seed=11)
    w = await harness.store.writer()
    await w.write(data[: 2 * MiB])
    await w.write(data[2 * MiB : 2 * MiB + 1])
    await asyncio.sleep(0.05)  # let the first block reach the temporary file
    other = await harness.another_instance()
    await w.write(data[2 * MiB + 1 :])
    info = await w.commit(sha256(data))
    assert await other.read_all(info.digest) == data


async def test_check_writable(harness: Harness) -> None:
    await harness.store.check_writable()
    harness.break_writes()
    with pytest.raises(OSError):
        await harness.store.check_writable()
    with pytest.raises(OSError):
        await harness.store.put_bytes(b"cannot be written")
    harness.repair_writes()
    await harness.store.check_writable()
    info = await harness.store.put_bytes(b"written again")
    assert await harness.store.read_all(info.digest) == b"written again"
    assert harness.temp_leftovers() == []


# ---- resumable upload sessions ----------------------------------------------------------------
async def test_upload_create_append_finalize(blob_store: BlobStore) -> None:
    part1, part2 = payload(MiB + 3, seed=12), payload(2 * MiB - 1, seed=13)
    uid = await blob_store.upload_create()
    assert uid and all(c.isalnum() or c in "-_" for c in uid)
    assert await blob_store.upload_size(uid) == 0
    size = await blob_store.upload_append(uid, agen([part1[:1], part1[1:100], part1[100:]]))
    assert size == len(part1) == await blob_store.upload_size(uid)
    size = await blob_store.upload_append(uid, agen([part2]))
    assert size == len(part1) + len(part2) == await blob_store.upload_size(uid)
    assert uid in {i async for i, _ in blob_store.iter_uploads()}
    data = part1 + part2
    info = await blob_store.upload_finalize(uid, sha256(data))
    assert info.digest == sha256(data) and info.size == len(data) and info.existed is False
    assert await blob_store.read_all(info.digest) == data
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_size(uid)
    assert uid not in {i async for i, _ in blob_store.iter_uploads()}


async def test_upload_digest_mismatch_keeps_session(blob_store: BlobStore) -> None:
    data = payload(500_000, seed=14)
    uid = await blob_store.upload_create()
    await blob_store.upload_append(uid, agen([data]))
    with pytest.raises(DigestMismatchError) as exc:
        await blob_store.upload_finalize(uid, sha256(b"not it"))
    assert exc.value.actual == sha256(data)
    assert await blob_store.upload_size(uid) == len(data)
    assert await blob_store.stat(sha256(data)) is None
    more = b"tail"
    await blob_store.upload_append(uid, agen([more]))
    info = await blob_store.upload_finalize(uid, sha256(data + more))
    assert await blob_store.read_all(info.digest) == data + more


async def test_upload_finalize_without_expected_digest_and_empty(blob_store: BlobStore) -> None:
    uid = await blob_store.upload_create()
    info = await blob_store.upload_finalize(uid)
    assert info.digest == EMPTY_SHA256 and info.size == 0
    uid = await blob_store.upload_create()
    await blob_store.upload_append(uid, agen([b"", b"abc", b""]))
    info = await blob_store.upload_finalize(uid)
    assert info.digest == sha256(b"abc")


async def test_upload_finalize_sha512(blob_store: BlobStore) -> None:
    data = payload(MiB + 1, seed=15)
    uid = await blob_store.upload_create()
    await blob_store.upload_append(uid, agen([data]))
    info = await blob_store.upload_finalize(uid, sha512(data))
    assert info.digest == sha512(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    assert await blob_store.read_all(sha512(data)) == data


async def test_upload_finalize_of_existing_content_dedupes(
    blob_store: BlobStore, harness: Harness
) -> None:
    data = payload(200_000, seed=16)
    await blob_store.put_bytes(data)
    uid = await blob_store.upload_create()
    await blob_store.upload_append(uid, agen([data]))
    info = await blob_store.upload_finalize(uid, sha256(data))
    assert info.existed is True
    assert harness.stored_blob_objects() == 1
    assert [i async for i, _ in blob_store.iter_uploads()] == []


async def test_upload_resumed_by_another_replica(harness: Harness) -> None:
    a = harness.store
    b = await harness.another_instance()
    parts = [payload(MiB + 11, seed=17), payload(700_001, seed=18), payload(MiB, seed=19)]
    uid = await a.upload_create()
    await a.upload_append(uid, agen([parts[0]]))
    assert await b.upload_size(uid) == len(parts[0])
    await b.upload_append(uid, agen([parts[1]]))  # b has no cached hash state
    await a.upload_append(uid, agen([parts[2]]))  # a's cached state is now behind the file
    data = b"".join(parts)
    assert await a.upload_size(uid) == len(data)
    with pytest.raises(DigestMismatchError):
        await b.upload_finalize(uid, sha256(data[:-1]))
    info = await a.upload_finalize(uid, sha256(data))
    assert info.size == len(data)
    assert await b.read_all(info.digest) == data
    with pytest.raises(UploadNotFoundError):
        await b.upload_finalize(uid, sha256(data))


async def test_upload_finalized_by_another_replica(harness: Harness) -> None:
    a = harness.store
    b = await harness.another_instance()
    data = payload(3 * MiB + 1, seed=20)
    uid = await a.upload_create()
    await a.upload_append(uid, agen([data[:MiB], data[MiB:]]))
    info = await b.upload_finalize(uid, sha256(data))
    assert await a.read_all(info.digest) == data


async def test_concurrent_appends_do_not_interleave(harness: Harness) -> None:
    harness.require_preconditions()
    a = harness.store
    b = await harness.another_instance()
    uid = await a.upload_create()
    streams = {
        "a1": (a, [b"A" * 10_000] * 300),
        "a2": (a, [b"B" * 7_000] * 300),
        "b1": (b, [b"C" * 333_333] * 6),
    }
    await asyncio.gather(
        *(store.upload_append(uid, agen(chunks, pause=True)) for store, chunks in streams.values())
    )
    blocks = {b"".join(chunks) for _, chunks in streams.values()}
    total = sum(len(x) for x in blocks)
    assert await a.upload_size(uid) == total
    uploaded_digest = (await a.upload_finalize(uid)).digest
    data = await a.read_all(uploaded_digest)
    assert len(data) == total
    pos = 0
    seen = set()
    while pos < total:  # the file must be the three streams one after another, each whole
        block = next(x for x in blocks if data[pos : pos + len(x)] == x)
        seen.add(block)
        pos += len(block)
    assert seen == blocks


async def test_upload_of_many_small_appends(blob_store: BlobStore, harness: Harness) -> None:
    """More appends than one request may compose (GCS: 32 sources), each small (S3: under a
    part, joined as it is copied)."""
    pieces = [payload(1000 + 97 * i, seed=300 + i) for i in range(40)]
    uid = await blob_store.upload_create()
    for piece in pieces:
        await blob_store.upload_append(uid, agen([piece]))
    data = b"".join(pieces)
    assert await blob_store.upload_size(uid) == len(data)
    info = await blob_store.upload_finalize(uid, sha256(data))
    assert info.size == len(data)
    assert await blob_store.read_all(info.digest) == data
    assert harness.temp_leftovers() == []  # no intermediate composite stays behind


async def test_upload_abort(blob_store: BlobStore) -> None:
    uid = await blob_store.upload_create()
    await blob_store.upload_append(uid, agen([b"some bytes"]))
    assert await blob_store.upload_abort(uid) is True
    assert await blob_store.upload_abort(uid) is False
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_size(uid)
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_finalize(uid)
    assert [i async for i, _ in blob_store.iter_uploads()] == []
    assert await all_blobs(blob_store) == {}


async def test_unknown_upload_id(blob_store: BlobStore) -> None:
    real = await blob_store.upload_create()
    unknown = "0" * len(real) if real != "0" * len(real) else "1" * len(real)
    with pytest.raises(UploadNotFoundError) as exc:
        await blob_store.upload_size(unknown)
    assert exc.value.upload_id == unknown
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_append(unknown, agen([b"x"]))
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_finalize(unknown)
    assert await blob_store.upload_abort(unknown) is False


@pytest.mark.parametrize(
    "bad",
    ["", ".", "..", "../blobs", "../../etc/passwd", "/etc/passwd", "a/b", "x" * 5000, "ab\x00cd"],
)
async def test_bad_upload_id_is_rejected(blob_store: BlobStore, bad: str) -> None:
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_size(bad)
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_append(bad, agen([b"x"]))
    with pytest.raises(UploadNotFoundError):
        await blob_store.upload_finalize(bad)
    assert await blob_store.upload_abort(bad) is False


async def test_iter_uploads_reports_mtime(blob_store: BlobStore) -> None:
    ids = {await blob_store.upload_create() for _ in range(3)}
    listed = {i: m async for i, m in blob_store.iter_uploads()}
    assert set(listed) == ids
    loop_now = asyncio.get_running_loop().time  # monotonic: only check plausibility
    assert loop_now() > 0
    assert all(m > 1_000_000_000 for m in listed.values())


async def test_interrupted_append_can_resume_from_reported_size(blob_store: BlobStore) -> None:
    """A client that lost its connection asks for the size and sends the rest."""
    data = payload(5 * MiB + 77, seed=21)

    sent = 0

    async def broken() -> AsyncIterator[bytes]:
        nonlocal sent
        for pos in range(0, 3 * MiB + 500, 100_000):
            sent += len(data[pos : pos + 100_000])
            yield data[pos : pos + 100_000]
        raise ConnectionResetError("client went away")

    uid = await blob_store.upload_create()
    with pytest.raises(ConnectionResetError):
        await blob_store.upload_append(uid, broken())
    landed = await blob_store.upload_size(uid)
    assert 0 <= landed <= sent  # a prefix of what was sent; the backend may keep it all
    await blob_store.upload_append(uid, agen([data[landed:]]))
    info = await blob_store.upload_finalize(uid, sha256(data))
    assert await blob_store.read_all(info.digest) == data


async def test_cancelled_write_leaves_nothing_after_abort(
    blob_store: BlobStore, harness: Harness
) -> None:
    started = asyncio.Event()
    w = await blob_store.writer(extra_hashes=("md5",))

    async def produce() -> None:
        block = payload(MiB, seed=22)
        while True:
            await w.write(block)
            started.set()

    task = asyncio.create_task(produce())
    await started.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.abort()
    assert harness.temp_leftovers() == []
    assert await all_blobs(blob_store) == {}
