"""Contract tests of the metadata store (DESIGN.md §4): sqlite and MongoDB pass the same suite.

The MongoDB backend runs through the real pymongo driver over the wire against nx-27017 (or a
real ``mongod`` when ``ZAS_TEST_MONGODB_URI`` is set).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.mongo import database_uri
from zot_artifact_store.metadata import (
    SCHEMA_VERSION,
    AccessKey,
    AlreadyExistsError,
    ApiToken,
    AuditQuery,
    AuditRecord,
    Bucket,
    BuildQuery,
    BuildRecord,
    ComponentQuery,
    EventSource,
    Evidence,
    InboundEvent,
    Manifest,
    MetadataError,
    MetadataStore,
    MultipartUpload,
    NotFoundError,
    ObjectRecord,
    Part,
    Policy,
    RegistryUpload,
    SbomComponent,
    Tag,
    TrustedKey,
    VerificationGate,
    WebhookDelivery,
    WebhookSubscription,
    create_metadata_store,
)
from zot_artifact_store.metadata.base import prefix_upper_bound

BACKENDS = ["sqlite", "mongodb"]


@pytest.fixture(params=BACKENDS)
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"
    base: str = request.getfixturevalue("mongodb_base_uri")
    return database_uri(base, f"zas_ct_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def store(store_uri: str) -> AsyncIterator[MetadataStore]:
    s = create_metadata_store(store_uri)
    await s.open()
    yield s
    await s.close()


def obj(bucket: str, key: str, digest: str = "sha256:" + "a" * 64, **kw: object) -> ObjectRecord:
    now = time.time()
    fields: dict[str, object] = {
        "bucket": bucket,
        "key": key,
        "digest": digest,
        "size": 3,
        "etag": digest[-32:],
        "content_type": "application/octet-stream",
        "created_at": now,
        "updated_at": now,
    }
    fields.update(kw)
    return ObjectRecord(**fields)  # type: ignore[arg-type]


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


# ---- lifecycle ------------------------------------------------------------------------------
async def test_open_records_schema_version_and_reopens(store_uri: str) -> None:
    s = create_metadata_store(store_uri)
    await s.open()
    await s.ping()
    assert await s.schema_version() == SCHEMA_VERSION
    await s.create_bucket(Bucket("persisted", time.time()))
    await s.close()
    again = create_metadata_store(store_uri)
    await again.open()
    try:
        assert (await again.get_bucket("persisted")) is not None
    finally:
        await again.close()


async def test_closed_store_refuses_calls(store_uri: str) -> None:
    s = create_metadata_store(store_uri)
    await s.open()
    await s.close()
    with pytest.raises(MetadataError):
        await s.get_bucket("x")


def test_unknown_uri_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported metadata URI"):
        create_metadata_store("postgres://localhost/x")


# ---- buckets --------------------------------------------------------------------------------
async def test_bucket_roundtrip_and_unique_name(store: MetadataStore) -> None:
    labels = {"app.kubernetes.io/name": "zas", "$team": "build"}
    b = Bucket("alpha", 1700000000.5, owner="alice", public_read=True, labels=labels)
    b.settings = {"policy": {"Statement": [{"Effect": "Allow"}]}, "a.b": 1}
    await store.create_bucket(b)
    got = await store.get_bucket("alpha")
    assert got == b
    with pytest.raises(AlreadyExistsError):
        await store.create_bucket(Bucket("alpha", time.time()))
    assert (await store.get_bucket("alpha")) == b  # the loser changed nothing
    assert await store.get_bucket("missing") is None


async def test_buckets_list_in_name_order(store: MetadataStore) -> None:
    for name in ["zeta", "alpha", "mid-1", "mid-0"]:
        await store.create_bucket(Bucket(name, time.time()))
    assert [b.name for b in await store.list_buckets()] == ["alpha", "mid-0", "mid-1", "zeta"]


async def test_update_and_delete_bucket(store: MetadataStore) -> None:
    await store.create_bucket(Bucket("b1", 1.0))
    await store.update_bucket(Bucket("b1", 1.0, public_read=True, labels={"k": "v"}))
    got = await store.get_bucket("b1")
    assert got is not None and got.public_read and got.labels == {"k": "v"}
    with pytest.raises(NotFoundError):
        await store.update_bucket(Bucket("nope", 1.0))
    assert await store.delete_bucket("b1") is True
    assert await store.delete_bucket("b1") is False
    assert await store.get_bucket("b1") is None


async def test_concurrent_create_bucket_has_one_winner(store: MetadataStore) -> None:
    async def attempt(i: int) -> bool:
        try:
            await store.create_bucket(Bucket("contended", time.time(), owner=f"u{i}"))
            return True
        except AlreadyExistsError:
            return False

    results = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert results.count(True) == 1
    assert len(await store.list_buckets()) == 1


# ---- objects --------------------------------------------------------------------------------
async def test_object_roundtrip_keeps_every_field(store: MetadataStore) -> None:
    record = obj(
        "b",
        "dir/file.tar.gz",
        labels={"ci.run": "42"},
        user_metadata={"x-amz-meta-a.b": "1"},
        headers={"Content-Encoding": "gzip", "Cache-Control": "no-cache"},
        checksums={"crc32": "AAAAAA=="},
        parts=[{"digest": digest(1), "size": 5}, {"digest": digest(2), "size": 7}],
    )
    assert await store.put_object(record) is None
    assert await store.get_object("b", "dir/file.tar.gz") == record
    assert await store.get_object("b", "dir/file.tar") is None
    assert await store.get_object("other", "dir/file.tar.gz") is None


async def test_replace_returns_previous_and_keeps_created_at(store: MetadataStore) -> None:
    first = obj("b", "k", digest(1), created_at=100.0, updated_at=100.0)
    await store.put_object(first)
    second = obj("b", "k", digest(2), created_at=200.0, updated_at=200.0, size=9)
    previous = await store.put_object(second)
    assert previous == first
    stored = await store.get_object("b", "k")
    assert stored is not None
    assert (stored.digest, stored.size, stored.updated_at) == (digest(2), 9, 200.0)
    assert stored.created_at == 100.0


async def test_create_only_put_never_replaces(store: MetadataStore) -> None:
    first = obj("b", "once", digest(1))
    assert await store.put_object(first, if_absent=True) is None
    with pytest.raises(AlreadyExistsError):
        await store.put_object(obj("b", "once", digest(2)), if_absent=True)
    assert await store.get_object("b", "once") == first
    # Racing creators: exactly one wins.
    results = await asyncio.gather(
        *(store.put_object(obj("b", "race", digest(i)), if_absent=True) for i in range(1, 9)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, AlreadyExistsError) for r in results) == 7


async def test_put_requiring_the_bucket_writes_nothing_without_it(store: MetadataStore) -> None:
    # What a publish does: the bucket may have been deleted while the body streamed in.
    with pytest.raises(NotFoundError):
        await store.put_object(obj("nobucket", "k"), require_bucket=True)
    assert await store.get_object("nobucket", "k") is None
    await store.create_bucket(Bucket(name="hasbucket", created_at=1.0))
    record = obj("hasbucket", "k")
    assert await store.put_object(record, require_bucket=True) is None
    assert await store.get_object("hasbucket", "k") == record
    await store.delete_bucket("hasbucket")
    with pytest.raises(NotFoundError):
        await store.put_object(obj("hasbucket", "k", digest(2)), require_bucket=True)
    assert await store.get_object("hasbucket", "k") == record


async def test_delete_object_returns_removed(store: MetadataStore) -> None:
    record = obj("b", "gone")
    await store.put_object(record)
    assert await store.delete_object("b", "gone") == record
    assert await store.delete_object("b", "gone") is None
    assert await store.get_object("b", "gone") is None


async def test_concurrent_puts_of_one_key_leave_one_record(store: MetadataStore) -> None:
    results = await asyncio.gather(
        *(store.put_object(obj("b", "hot", digest(i))) for i in range(10))
    )
    assert results.count(None) == 1  # exactly one writer saw no previous record
    page = await store.list_objects("b")
    assert [o.key for o in page.objects] == ["hot"]


KEYS = [
    "a",
    "a/b",
    "a/b/c",
    "a/c",
    "a0",
    "b",
    "b/\u00e9t\u00e9",  # 2-byte UTF-8
    "b/\U0001f600",  # 4-byte UTF-8 sorts after every BMP character
    "b/\uffff",
    "b/z",
]


async def _fill(store: MetadataStore, bucket: str, keys: list[str]) -> None:
    for i, key in enumerate(keys):
        await store.put_object(obj(bucket, key, digest(i)))


async def test_list_orders_by_utf8_bytes(store: MetadataStore) -> None:
    await _fill(store, "b", list(reversed(KEYS)))
    page = await store.list_objects("b")
    expected = sorted(KEYS, key=lambda k: k.encode())
    assert [o.key for o in page.objects] == expected
    assert page.truncated is False


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "b/", "b/\U0001f600", "zz", "b/\uffff"])
async def test_list_prefix_matches_startswith(store: MetadataStore, prefix: str) -> None:
    await _fill(store, "b", KEYS)
    await store.put_object(obj("other-bucket", "a/b", digest(99)))
    page = await store.list_objects("b", prefix=prefix)
    expected = sorted((k for k in KEYS if k.startswith(prefix)), key=lambda k: k.encode())
    assert [o.key for o in page.objects] == expected


async def test_list_pages_with_start_after_and_limit(store: MetadataStore) -> None:
    await _fill(store, "b", KEYS)
    expected = sorted(KEYS, key=lambda k: k.encode())
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await store.list_objects("b", start_after=after, limit=3)
        pages += 1
        seen += [o.key for o in page.objects]
        if not page.truncated:
            break
        after = page.objects[-1].key
    assert seen == expected
    assert pages == 4  # 3 + 3 + 3 + 1: truncated is exact, no empty last page
    # start_after need not be an existing key
    page = await store.list_objects("b", prefix="a", start_after="a/b/zzz")
    assert [o.key for o in page.objects] == ["a/c", "a0"]


async def test_list_start_after_outside_the_prefix(store: MetadataStore) -> None:
    """The prefix and start_after bound the listing together, whichever is the tighter."""
    await _fill(store, "b", [*KEYS, "a."])  # "a" < "a." < "a/": after "a", outside "a/"
    page = await store.list_objects("b", prefix="a/", start_after="")
    assert [o.key for o in page.objects] == ["a/b", "a/b/c", "a/c"]
    page = await store.list_objects("b", prefix="a/", start_after="a")  # before the prefix
    assert [o.key for o in page.objects] == ["a/b", "a/b/c", "a/c"]
    page = await store.list_objects("b", prefix="a/", start_after="a/b")  # inside it
    assert [o.key for o in page.objects] == ["a/b/c", "a/c"]
    page = await store.list_objects("b", prefix="a/", start_after="a0")  # past it
    assert page.objects == []
    assert not page.truncated


async def test_count_and_delete_all_objects(store: MetadataStore) -> None:
    await _fill(store, "b", KEYS)
    await _fill(store, "keep", ["x"])
    assert await store.count_objects("b") == len(KEYS)
    assert await store.count_objects("b", limit=1) == 1
    assert await store.count_objects("empty") == 0
    assert await store.delete_objects_in_bucket("b") == len(KEYS)
    assert await store.count_objects("b") == 0
    assert await store.count_objects("keep") == 1


async def test_object_digests_cover_blobs_and_parts(store: MetadataStore) -> None:
    await store.put_object(obj("b", "single", digest(1)))
    await store.put_object(
        obj(
            "b",
            "multi",
            digest(2),
            parts=[{"digest": digest(3), "size": 1}, {"digest": digest(4), "size": 2}],
        )
    )
    await store.put_object(obj("b", "replaced", digest(5)))
    await store.put_object(obj("b", "replaced", digest(6)))
    await store.put_object(obj("b", "deleted", digest(7)))
    await store.delete_object("b", "deleted")
    assert await store.object_digests() == {digest(1), digest(3), digest(4), digest(6)}


# ---- object versions (S3 versioning) ---------------------------------------------------------
def version(key: str, n: int, at: float, vid: str | None = None, **kw: object) -> ObjectRecord:
    return obj("v", key, digest(n), updated_at=at, version_id=f"v{n}" if vid is None else vid, **kw)


def marker(key: str, vid: str, at: float) -> ObjectRecord:
    return obj("v", key, "", size=0, updated_at=at, version_id=vid, delete_marker=True)


def listed(page_versions: list[ObjectRecord]) -> list[tuple[str, str, bool, bool]]:
    return [
        (r.key, r.version_id, r.delete_marker, r.noncurrent_since is None) for r in page_versions
    ]


async def test_versions_keep_every_write_and_list_newest_first(store: MetadataStore) -> None:
    assert await store.put_object_version(version("k", 1, 10.0)) is None
    replaced = await store.put_object_version(version("k", 2, 20.0))
    assert replaced is not None and replaced.version_id == "v1"
    await store.put_object_version(marker("k", "m3", 30.0))
    assert await store.get_object("v", "k") is None  # the key reads as deleted
    await store.put_object_version(version("a", 4, 5.0))
    page = await store.list_object_versions("v")
    assert listed(page.objects) == [
        ("a", "v4", False, True),
        ("k", "m3", True, True),
        ("k", "v2", False, False),
        ("k", "v1", False, False),
    ]
    assert not page.truncated
    old = await store.get_object_version("v", "k", "v1")
    assert old is not None and old.digest == digest(1) and old.noncurrent_since == 20.0
    assert await store.get_object_version("v", "k", "nope") is None
    assert await store.object_digests() == {digest(1), digest(2), digest(4)}
    assert await store.has_object_versions("v") and not await store.has_object_versions("x")
    # A new write after the marker: the marker is noncurrent from then on.
    await store.put_object_version(version("k", 5, 40.0))
    current = await store.get_object("v", "k")
    assert current is not None and current.version_id == "v5"
    assert listed((await store.list_object_versions("v", "k")).objects)[1] == (
        "k",
        "m3",
        True,
        False,
    )


async def test_versions_page_by_key_and_version_markers(store: MetadataStore) -> None:
    for n, key in enumerate(["a", "a", "a", "b", "b", "c"], start=1):
        await store.put_object_version(version(key, n, float(n)))
    seen: list[tuple[str, str]] = []
    after: ObjectRecord | None = None
    while True:
        page = await store.list_object_versions("v", after=after, limit=2)
        seen += [(r.key, r.version_id) for r in page.objects]
        if not page.truncated:
            break
        after = page.objects[-1]
    assert seen == [("a", "v3"), ("a", "v2"), ("a", "v1"), ("b", "v5"), ("b", "v4"), ("c", "v6")]
    by_key = await store.list_object_versions("v", key_marker="a")
    assert [r.version_id for r in by_key.objects] == ["v5", "v4", "v6"]
    assert [r.key for r in (await store.list_object_versions("v", "b")).objects] == ["b", "b"]


async def test_deleting_the_latest_version_restores_the_one_before(store: MetadataStore) -> None:
    await store.put_object_version(version("k", 1, 1.0))
    await store.put_object_version(version("k", 2, 2.0))
    await store.put_object_version(marker("k", "m3", 3.0))
    removed = await store.delete_object_version("v", "k", "m3")
    assert removed is not None and removed.delete_marker
    current = await store.get_object("v", "k")
    assert current is not None and current.version_id == "v2"
    removed = await store.delete_object_version("v", "k", "v2")
    assert removed is not None and removed.digest == digest(2)
    current = await store.get_object("v", "k")
    assert current is not None and current.version_id == "v1" and current.noncurrent_since is None
    assert await store.delete_object_version("v", "k", "v2") is None
    assert await store.object_digests() == {digest(1)}
    # A noncurrent version goes without touching the current one.
    await store.put_object_version(version("k", 4, 4.0))
    await store.delete_object_version("v", "k", "v1")
    assert [r.version_id for r in (await store.list_object_versions("v")).objects] == ["v4"]
    assert await store.object_digests() == {digest(4)}


class Refused(Exception):
    pass


async def test_a_guard_sees_the_version_as_it_is_removed_and_may_keep_it(
    store: MetadataStore,
) -> None:
    """Object Lock's check is the removal's guard: it sees the stored version (a legal hold
    set after the caller read it included) and, when it refuses, nothing changes."""
    await store.put_object_version(version("k", 1, 1.0))
    await store.put_object_version(version("k", 2, 2.0))
    for vid in ("v1", "v2"):  # a noncurrent version, then the current one
        held = await store.get_object_version("v", "k", vid)
        assert held is not None
        held.legal_hold = True  # set after a caller's own read, before its delete
        assert await store.update_object_version(held)
    seen: list[tuple[str, bool]] = []

    def guard(record: ObjectRecord) -> None:
        seen.append((record.version_id, record.legal_hold))
        if record.legal_hold:
            raise Refused(record.version_id)

    for vid in ("v1", "v2"):
        with pytest.raises(Refused):
            await store.delete_object_version("v", "k", vid, guard)
    assert seen == [("v1", True), ("v2", True)]
    assert [r.version_id for r in (await store.list_object_versions("v")).objects] == ["v2", "v1"]
    current = await store.get_object("v", "k")
    assert current is not None and current.version_id == "v2"
    for vid in ("v1", "v2"):  # released: the same guard lets them go
        free = await store.get_object_version("v", "k", vid)
        assert free is not None
        free.legal_hold = False
        assert await store.update_object_version(free)
        removed = await store.delete_object_version("v", "k", vid, guard)
        assert removed is not None and removed.version_id == vid
    assert (await store.list_object_versions("v")).objects == []
    assert await store.delete_object_version("v", "k", "v1", guard) is None


async def test_null_version_is_replaced_in_place(store: MetadataStore) -> None:
    await store.put_object(obj("v", "k", digest(1)))  # written before versioning
    await store.put_object_version(version("k", 2, 2.0))
    await store.put_object_version(version("k", 3, 3.0, vid=""))  # suspended: a new null
    versions = (await store.list_object_versions("v")).objects
    assert [(r.version_id, r.digest) for r in versions] == [("", digest(3)), ("v2", digest(2))]
    await store.put_object_version(marker("k", "", 4.0))  # suspended delete: a null marker
    versions = (await store.list_object_versions("v")).objects
    assert [(r.version_id, r.delete_marker) for r in versions] == [("", True), ("v2", False)]
    assert await store.object_digests() == {digest(2)}


async def test_noncurrent_versions_by_age_and_bucket_delete(store: MetadataStore) -> None:
    await store.put_object_version(version("p/k", 1, 1.0))
    await store.put_object_version(version("p/k", 2, 2.0))
    await store.put_object_version(version("p/k", 3, 5.0))
    await store.put_object_version(version("q", 4, 1.0))
    await store.put_object_version(version("q", 5, 9.0))
    old = await store.noncurrent_versions("v", "", 5.0)
    assert [(r.key, r.version_id) for r in old] == [("p/k", "v1"), ("p/k", "v2")]
    assert [r.version_id for r in await store.noncurrent_versions("v", "q", 100.0)] == ["v4"]
    await store.delete_objects_in_bucket("v")
    assert not await store.has_object_versions("v")
    assert await store.object_digests() == set()


async def test_update_object_version_in_place(store: MetadataStore) -> None:
    await store.put_object_version(version("k", 1, 1.0))
    await store.put_object_version(version("k", 2, 2.0))
    old = await store.get_object_version("v", "k", "v1")
    assert old is not None
    old.legal_hold, old.retention_mode, old.retain_until = True, "GOVERNANCE", 99.0
    assert await store.update_object_version(old)
    again = await store.get_object_version("v", "k", "v1")
    assert again is not None and again.legal_hold and again.retain_until == 99.0
    current = await store.get_object("v", "k")
    assert current is not None and not current.legal_hold
    current.tags = {"a": "b"}
    assert await store.update_object_version(current)
    stored = await store.get_object("v", "k")
    assert stored is not None and stored.tags == {"a": "b"} and stored.digest == digest(2)
    assert not await store.update_object_version(version("k", 9, 9.0))
    assert [r.version_id for r in (await store.list_object_versions("v")).objects] == ["v2", "v1"]


async def test_paging_resumes_after_a_latest_delete_marker(store: MetadataStore) -> None:
    await store.put_object_version(version("a", 1, 1.0))
    await store.put_object_version(marker("a", "m2", 2.0))
    await store.put_object_version(version("b", 3, 3.0))
    first = await store.list_object_versions("v", limit=1)
    assert [r.version_id for r in first.objects] == ["m2"] and first.truncated
    rest = await store.list_object_versions("v", after=first.objects[-1])
    assert [r.version_id for r in rest.objects] == ["v1", "v3"]


async def test_create_only_version_put_refuses_an_existing_key(store: MetadataStore) -> None:
    await store.put_object_version(version("k", 1, 1.0), if_absent=True)
    with pytest.raises(AlreadyExistsError):
        await store.put_object_version(version("k", 2, 2.0), if_absent=True)
    assert [r.version_id for r in (await store.list_object_versions("v")).objects] == ["v1"]


# ---- multipart ------------------------------------------------------------------------------
def upload(bucket: str, key: str, at: float, upload_id: str | None = None) -> MultipartUpload:
    return MultipartUpload(
        upload_id=upload_id or uuid.uuid4().hex,
        bucket=bucket,
        key=key,
        initiated_at=at,
        user_metadata={"x-amz-meta-a.b": "c"},
        labels={"k.v": "1"},
    )


async def test_multipart_roundtrip_and_unique_id(store: MetadataStore) -> None:
    up = upload("b", "big.bin", 10.0, "u1")
    up.checksum_algorithm = "CRC32"
    await store.create_multipart(up)
    assert await store.get_multipart("u1") == up
    with pytest.raises(AlreadyExistsError):
        await store.create_multipart(upload("b", "other", 11.0, "u1"))
    assert await store.get_multipart("nope") is None


async def test_list_multipart_order_and_markers(store: MetadataStore) -> None:
    ups = [
        upload("b", "k1", 5.0, "z"),
        upload("b", "k1", 5.0, "a"),
        upload("b", "k1", 1.0, "m"),
        upload("b", "k2", 0.5, "q"),
        upload("b", "j/x", 9.0, "r"),
        upload("other", "k1", 1.0, "o"),
    ]
    for up in ups:
        await store.create_multipart(up)
    page, truncated = await store.list_multipart("b")
    assert [u.upload_id for u in page] == ["r", "m", "a", "z", "q"]
    assert truncated is False
    page, truncated = await store.list_multipart("b", limit=2)
    assert [u.upload_id for u in page] == ["r", "m"] and truncated is True
    page, _ = await store.list_multipart("b", key_marker="k1", upload_id_marker="m")
    assert [u.upload_id for u in page] == ["a", "z", "q"]
    page, _ = await store.list_multipart("b", key_marker="k1")
    assert [u.upload_id for u in page] == ["q"]
    page, _ = await store.list_multipart("b", prefix="k")
    assert [u.upload_id for u in page] == ["m", "a", "z", "q"]


async def test_parts_replace_list_and_delete(store: MetadataStore) -> None:
    await store.create_multipart(upload("b", "k", 1.0, "up"))
    for n in [3, 1, 2]:
        part = Part("up", n, digest(n), n * 10, f"etag{n}", 1.0, checksums={"crc32": "x"})
        assert await store.put_part(part) is None
    replaced = await store.put_part(Part("up", 2, digest(20), 200, "etag2b", 2.0))
    assert replaced is not None and replaced.digest == digest(2)
    parts, truncated = await store.list_parts("up")
    assert [(p.part_number, p.digest) for p in parts] == [
        (1, digest(1)),
        (2, digest(20)),
        (3, digest(3)),
    ]
    assert parts[0].checksums == {"crc32": "x"} and not truncated
    parts, truncated = await store.list_parts("up", after_part=1, limit=1)
    assert [p.part_number for p in parts] == [2] and truncated is True
    assert await store.part_digests() == {digest(1), digest(20), digest(3)}
    assert await store.delete_multipart("up") is True
    assert await store.delete_multipart("up") is False
    assert await store.list_parts("up") == ([], False)
    assert await store.part_digests() == set()


# ---- helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "upper"),
    [
        ("", None),
        ("a", "b"),
        ("a/", "a0"),
        ("\U0010ffff", None),
        ("a\U0010ffff", "b"),
        ("\ud7ff", "\ue000"),
    ],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert prefix_upper_bound(prefix) == upper


# ---- OCI registry ---------------------------------------------------------------------------
def manifest(repo: str, n: int, subject: str | None = None, **kw: object) -> Manifest:
    fields: dict[str, object] = {
        "repo": repo,
        "digest": digest(n),
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "size": 500 + n,
        "created_at": 1000.0 + n,
        "subject": subject,
        "references": [digest(10_000 + n), digest(20_000 + n)],
    }
    fields.update(kw)
    return Manifest(**fields)  # type: ignore[arg-type]


async def test_manifest_roundtrip_replace_delete(store: MetadataStore) -> None:
    m = manifest(
        "team/app",
        1,
        artifact_type="application/vnd.example.sbom",
        annotations={"org.opencontainers.image.created": "2026", "a.b": "c"},
    )
    await store.put_manifest(m)
    assert await store.get_manifest("team/app", digest(1)) == m
    assert await store.get_manifest("other", digest(1)) is None
    m2 = manifest("team/app", 1, size=999)
    await store.put_manifest(m2)  # same (repo, digest): replaced, not duplicated
    assert (await store.get_manifest("team/app", digest(1))) == m2
    assert await store.delete_manifest("team/app", digest(1)) is True
    assert await store.delete_manifest("team/app", digest(1)) is False
    assert await store.get_manifest("team/app", digest(1)) is None


async def test_referrers_by_subject(store: MetadataStore) -> None:
    await store.put_manifest(manifest("r", 1))
    await store.put_manifest(manifest("r", 3, subject=digest(1), artifact_type="sig"))
    await store.put_manifest(manifest("r", 2, subject=digest(1), artifact_type="sbom"))
    await store.put_manifest(manifest("r", 4, subject=digest(2)))
    await store.put_manifest(manifest("elsewhere", 5, subject=digest(1)))
    refs = await store.list_referrers("r", digest(1))
    assert [m.digest for m in refs] == [digest(2), digest(3)]
    assert {m.artifact_type for m in refs} == {"sig", "sbom"}
    assert await store.list_referrers("r", digest(99)) == []


async def test_repositories_and_tags(store: MetadataStore) -> None:
    for repo in ["b/two", "a", "b/one", "c"]:
        await store.put_manifest(manifest(repo, 1))
    await store.put_manifest(manifest("a", 2))  # two manifests, still one repository
    assert await store.list_repositories() == (["a", "b/one", "b/two", "c"], False)
    assert await store.list_repositories(limit=2) == (["a", "b/one"], True)
    assert await store.list_repositories(after="b/one", limit=2) == (["b/two", "c"], False)

    assert await store.put_tag(Tag("a", "v1", digest(1), 1.0)) is None
    previous = await store.put_tag(Tag("a", "v1", digest(2), 2.0))
    assert previous is not None and previous.digest == digest(1)
    for name in ["latest", "v2", "v10"]:
        await store.put_tag(Tag("a", name, digest(1), 3.0))
    await store.put_tag(Tag("c", "v1", digest(1), 3.0))
    got = await store.get_tag("a", "v1")
    assert got is not None and got.digest == digest(2)
    tags, more = await store.list_tags("a")
    assert [t.name for t in tags] == ["latest", "v1", "v10", "v2"] and more is False
    tags, more = await store.list_tags("a", limit=2)
    assert [t.name for t in tags] == ["latest", "v1"] and more is True
    tags, more = await store.list_tags("a", after="v1", limit=2)
    assert [t.name for t in tags] == ["v10", "v2"] and more is False
    assert await store.delete_tag("a", "v1") is True
    assert await store.delete_tag("a", "v1") is False
    assert await store.get_tag("a", "v1") is None


async def test_manifest_digests_for_gc(store: MetadataStore) -> None:
    await store.put_manifest(manifest("r", 1))
    await store.put_manifest(manifest("s", 2))
    await store.put_manifest(manifest("s", 3))
    await store.delete_manifest("s", digest(3))
    expected = {
        digest(1),
        digest(10_001),
        digest(20_001),
        digest(2),
        digest(10_002),
        digest(20_002),
    }
    assert await store.manifest_digests() == expected


async def test_registry_uploads(store: MetadataStore) -> None:
    up = RegistryUpload("u-1", "team/app", "session-1", 5.0)
    await store.create_registry_upload(up)
    assert await store.get_registry_upload("u-1") == up
    with pytest.raises(AlreadyExistsError):
        await store.create_registry_upload(RegistryUpload("u-1", "x", "s", 1.0))
    assert await store.delete_registry_upload("u-1") is True
    assert await store.delete_registry_upload("u-1") is False
    assert await store.get_registry_upload("u-1") is None


async def test_a_registry_upload_gets_its_session_once(store: MetadataStore) -> None:
    """An upload starts without a blob-store session; the first chunk's replica sets one and
    a replica that races it gets the winner's back (its own session is then dropped)."""
    await store.create_registry_upload(RegistryUpload("u-2", "team/app", "", 5.0))
    assert await store.set_registry_upload_session("u-2", "s-first") == "s-first"
    assert await store.set_registry_upload_session("u-2", "s-second") == "s-first"
    assert await store.get_registry_upload("u-2") == RegistryUpload(
        "u-2", "team/app", "s-first", 5.0
    )
    assert await store.set_registry_upload_session("missing", "s") is None


async def test_blob_links_are_per_repository(store: MetadataStore) -> None:
    d = digest(7)
    assert await store.is_blob_linked("team/app", d) is False
    await store.link_blob("team/app", d)
    await asyncio.gather(*(store.link_blob("team/app", d) for _ in range(5)))  # idempotent
    assert await store.is_blob_linked("team/app", d) is True
    assert await store.is_blob_linked("team/other", d) is False
    assert await store.unlink_blob("team/app", d) is True
    assert await store.unlink_blob("team/app", d) is False
    assert await store.is_blob_linked("team/app", d) is False


async def test_all_manifests_and_tagged_manifests(store: MetadataStore) -> None:
    kind = "application/vnd.oci.image.manifest.v1+json"
    a = Manifest("r1", digest(1), kind, 1, 1.0, references=[digest(9)])
    b = Manifest("r2", digest(2), kind, 2, 2.0, subject=digest(1))
    await store.put_manifest(b)
    await store.put_manifest(a)
    assert await store.all_manifests() == [a, b]
    await store.put_tag(Tag("r1", "v1", digest(1), 1.0))
    await store.put_tag(Tag("r1", "v2", digest(1), 1.0))
    await store.put_tag(Tag("r2", "x", digest(3), 1.0))
    assert await store.tagged_manifests() == {("r1", digest(1)), ("r2", digest(3))}


async def test_api_tokens_roundtrip_update_and_list(store: MetadataStore) -> None:
    a = ApiToken("t1", "ci robot", "ab" * 32, ["writer"], "root:admin", 10.0, expires_at=99.0)
    b = ApiToken("t0", "reader", "cd" * 32, ["reader"], "root:admin", 20.0)
    await store.create_api_token(b)
    await store.create_api_token(a)
    with pytest.raises(AlreadyExistsError):
        await store.create_api_token(a)
    assert await store.get_api_token("t1") == a
    assert await store.get_api_token("nope") is None
    assert [t.token_id for t in await store.list_api_tokens()] == ["t1", "t0"]
    a.revoked_at, a.last_used_at = 50.0, 40.0
    await store.update_api_token(a)
    assert await store.get_api_token("t1") == a
    with pytest.raises(NotFoundError):
        await store.update_api_token(ApiToken("ghost", "g", "00", [], "x", 1.0))


async def test_audit_query_filters_pages_and_expires(store: MetadataStore) -> None:
    records = [
        AuditRecord(
            f"r{i:03d}",
            1000.0 + i // 2,  # pairs share a time: the id orders them
            "alice" if i % 3 else "bob",
            "10.0.0.1",
            "s3:PutObject" if i % 2 else "s3:GetObject",
            f"builds/app/{i}" if i < 10 else f"other/{i}",
            "deny" if i % 5 == 0 else "allow",
            detail={"k": str(i)},
        )
        for i in range(20)
    ]
    await store.add_audit_records(records)
    newest_first = sorted(records, key=lambda r: (r.time, r.record_id), reverse=True)
    page, more = await store.query_audit(AuditQuery(), limit=7)
    assert page == newest_first[:7] and more
    seen, cursor = [], None
    while True:
        page, more = await store.query_audit(AuditQuery(), before=cursor, limit=6)
        seen += page
        if not more:
            break
        cursor = (page[-1].time, page[-1].record_id)
    assert seen == newest_first
    q = AuditQuery(principal="bob", decision="deny")
    assert [r.record_id for r in (await store.query_audit(q))[0]] == ["r015", "r000"]
    q = AuditQuery(resource_prefix="builds/", action="s3:PutObject", since=1002.0, until=1004.0)
    assert [r.record_id for r in (await store.query_audit(q))[0]] == ["r007", "r005"]
    assert await store.expire_audit(1005.0) == 10
    assert len((await store.query_audit(AuditQuery(), limit=100))[0]) == 10


async def test_policies_put_replace_list_delete(store: MetadataStore) -> None:
    doc = '{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]}'
    assert await store.put_policy(Policy("zeta", doc, 1.0, 1.0)) is None
    assert await store.put_policy(Policy("alpha", "{}", 2.0, 2.0)) is None
    previous = await store.put_policy(Policy("zeta", "[]", 1.0, 3.0))
    assert previous == Policy("zeta", doc, 1.0, 1.0)
    assert await store.get_policy("zeta") == Policy("zeta", "[]", 1.0, 3.0)
    assert [p.name for p in await store.list_policies()] == ["alpha", "zeta"]
    assert await store.delete_policy("alpha") is True
    assert await store.delete_policy("alpha") is False
    assert await store.get_policy("alpha") is None


async def test_verification_gates_put_replace_list_delete(store: MetadataStore) -> None:
    await store.put_gate(VerificationGate("repo:team/*", "signed", "audit", '{"sbom": true}', 1.0))
    await store.put_gate(VerificationGate("repo:prod/app", "strict", "enforce", "{}", 2.0))
    await store.put_gate(VerificationGate("repo:team/*", "signed", "enforce", "{}", 3.0))
    gates = await store.list_gates()
    assert [(g.scope, g.mode) for g in gates] == [
        ("repo:prod/app", "enforce"),
        ("repo:team/*", "enforce"),
    ]
    assert gates[1] == VerificationGate("repo:team/*", "signed", "enforce", "{}", 3.0)
    assert await store.delete_gate("repo:prod/app") is True
    assert await store.delete_gate("repo:prod/app") is False
    assert [g.scope for g in await store.list_gates()] == ["repo:team/*"]


async def test_access_keys_roundtrip_update_and_list(store: MetadataStore) -> None:
    a = AccessKey("ZAKA", "ci", "enc-a", ["writer"], "root:admin", 10.0, expires_at=99.0)
    b = AccessKey("ZAKB", "backup", "enc-b", ["reader"], "root:admin", 5.0)
    await store.create_access_key(a)
    await store.create_access_key(b)
    with pytest.raises(AlreadyExistsError):
        await store.create_access_key(a)
    assert await store.get_access_key("ZAKA") == a
    assert await store.get_access_key("ZAKX") is None
    assert [k.access_key_id for k in await store.list_access_keys()] == ["ZAKB", "ZAKA"]
    a.revoked_at = 11.0
    await store.update_access_key(a)
    assert (await store.get_access_key("ZAKA")) == a
    with pytest.raises(NotFoundError):
        await store.update_access_key(AccessKey("ZAKZ", "z", "e", [], "x", 1.0))


async def test_evidence_by_subject_and_kind(store: MetadataStore) -> None:
    def ev(i: int, subject: str, kind: str) -> Evidence:
        return Evidence(f"e{i}", subject, kind, "sigstore", "application/json", digest(100 + i),
                        10, float(i), "root:admin", details={"k": str(i)})  # fmt: skip

    records = [ev(3, digest(1), "signature"), ev(1, digest(1), "sbom"),
               ev(2, digest(1), "signature"), ev(4, digest(2), "signature")]  # fmt: skip
    for r in records:
        await store.add_evidence(r)
    assert [e.evidence_id for e in await store.list_evidence(digest(1))] == ["e1", "e2", "e3"]
    assert [e.evidence_id for e in await store.list_evidence(digest(1), "signature")] == [
        "e2",
        "e3",
    ]
    assert await store.get_evidence("e4") == records[3]
    assert await store.evidence_digests() == {digest(101), digest(102), digest(103), digest(104)}
    assert await store.delete_evidence("e4") is True
    assert await store.delete_evidence("e4") is False
    assert await store.list_evidence(digest(2)) == []


async def test_trusted_keys(store: MetadataStore) -> None:
    a = TrustedKey("k2", "release", "PEM-A", "ecdsa-p256", "", 2.0, "root:admin")
    b = TrustedKey("k1", "team", "PEM-B", "ed25519", "bucket:builds", 1.0, "root:admin", 9.0)
    await store.create_trusted_key(a)
    await store.create_trusted_key(b)
    with pytest.raises(AlreadyExistsError):
        await store.create_trusted_key(a)
    assert [k.key_id for k in await store.list_trusted_keys()] == ["k1", "k2"]
    a.revoked_at = 3.0
    await store.update_trusted_key(a)
    assert await store.get_trusted_key("k2") == a
    assert await store.get_trusted_key("nope") is None


async def test_sbom_component_search(store: MetadataStore) -> None:
    def comp(ev: str, subject: str, name: str, version: str) -> SbomComponent:
        return SbomComponent(ev, subject, f"b/{subject[-4:]}", name, version,
                             f"pkg:pypi/{name}@{version}", f"pkg:pypi/{name}", ["MIT"])  # fmt: skip

    await store.add_components(
        [
            comp("e1", digest(1), "requests", "2.31.0"),
            comp("e1", digest(1), "idna", "3.6"),
            comp("e2", digest(2), "requests", "2.32.0"),
        ]
    )
    found = await store.search_components(ComponentQuery(purl="pkg:pypi/requests@2.31.0"))
    assert [(c.subject, c.version) for c in found] == [(digest(1), "2.31.0")]
    found = await store.search_components(ComponentQuery(purl_base="pkg:pypi/requests"))
    assert [c.subject for c in found] == [digest(1), digest(2)]
    assert [c.name for c in await store.search_components(ComponentQuery(name="idna"))] == ["idna"]
    assert found[0].licenses == ["MIT"]
    await store.add_evidence(
        Evidence("e1", digest(1), "sbom", "cyclonedx", "x", digest(9), 1, 1.0, "me")
    )
    await store.delete_evidence("e1")
    assert await store.search_components(ComponentQuery(name="idna")) == []


# ---- inbound CI events ----------------------------------------------------------------------
async def test_event_sources_create_list_delete(store: MetadataStore) -> None:
    a = EventSource("es2", "tekton-prod", "tekton", 2.0, "root:admin", token_sha256="f" * 64)
    b = EventSource("es1", "gh", "github", 1.0, "root:admin", secret_encrypted="sealed")
    await store.create_event_source(a)
    await store.create_event_source(b)
    with pytest.raises(AlreadyExistsError):
        await store.create_event_source(a)
    assert await store.get_event_source("es2") == a
    assert [s.source_id for s in await store.list_event_sources()] == ["es1", "es2"]
    assert await store.delete_event_source("es2") is True
    assert await store.delete_event_source("es2") is False
    assert await store.get_event_source("es2") is None


async def test_inbound_events_are_recorded_once(store: MetadataStore) -> None:
    event = InboundEvent("es1", "ce-1", "dev.tekton.event.taskrun.started.v1", 1.0, "b1")
    assert await store.add_inbound_event(event) is True
    assert await store.add_inbound_event(event) is False
    # The same id from another source is another event.
    assert await store.add_inbound_event(InboundEvent("es2", "ce-1", "t", 1.0)) is True
    results = await asyncio.gather(
        *(store.add_inbound_event(InboundEvent("es1", "race", "t", 2.0)) for _ in range(5))
    )
    assert sorted(results) == [False] * 4 + [True]
    assert await store.delete_inbound_event("es1", "ce-1") is True
    assert await store.add_inbound_event(event) is True


def build(build_id: str, created_at: float, **kw: object) -> BuildRecord:
    fields: dict[str, object] = {
        "build_id": build_id,
        "source_id": "es1",
        "run_key": f"uid-{build_id}",
        "kind": "taskrun",
        "name": f"run-{build_id}",
        "status": "started",
        "created_at": created_at,
        "updated_at": created_at,
    }
    fields.update(kw)
    return BuildRecord(**fields)  # type: ignore[arg-type]


async def test_builds_update_keep_links_and_list_by_digest(store: MetadataStore) -> None:
    first = build("b1", 10.0, digests=[digest(1)], results={"IMAGE": {"uri": "x", "n": [1]}})
    await store.put_build(first)
    assert await store.get_build("b1") == first
    # A later event: new status and results; created_at and earlier links are kept.
    later = build("b1", 20.0, status="succeeded", digests=[digest(2)], finished_at=21.0)
    await store.put_build(later)
    stored = await store.get_build("b1")
    assert stored is not None
    assert (stored.status, stored.created_at, stored.finished_at) == ("succeeded", 10.0, 21.0)
    assert stored.digests == [digest(1), digest(2)]
    assert await store.link_build("b1", [digest(2), digest(3)]) is True
    assert await store.link_build("nope", [digest(3)]) is False
    assert await store.get_build("nope") is None
    stored = await store.get_build("b1")
    assert stored is not None and stored.digests == [digest(1), digest(2), digest(3)]
    await store.put_build(build("b2", 30.0, source_id="es2", digests=[digest(3)]))
    await store.put_build(build("b3", 30.0, run_key="gh#7"))

    async def ids(query: BuildQuery, **kw: object) -> tuple[list[str], bool]:
        page, more = await store.list_builds(query, **kw)  # type: ignore[arg-type]
        return [b.build_id for b in page], more

    assert await ids(BuildQuery()) == (["b3", "b2", "b1"], False)
    assert await ids(BuildQuery(digest=digest(3))) == (["b2", "b1"], False)
    assert await ids(BuildQuery(digest=digest(1))) == (["b1"], False)
    assert await ids(BuildQuery(digest=digest(9))) == ([], False)
    assert await ids(BuildQuery(source_id="es2")) == (["b2"], False)
    assert await ids(BuildQuery(run_key="gh#7")) == (["b3"], False)
    assert await ids(BuildQuery(), limit=2) == (["b3", "b2"], True)
    assert await ids(BuildQuery(), before=(30.0, "b2"), limit=2) == (["b1"], False)


async def test_objects_found_by_labels(store: MetadataStore) -> None:
    await store.create_bucket(Bucket("b", time.time()))
    run = {"github.repository": "acme/app", "github.run_id": "42"}
    await store.put_object(obj("b", "z", labels={**run, "app.kubernetes.io/name": "x"}))
    await store.put_object(obj("b", "a", labels=run))
    await store.put_object(obj("b", "other-run", labels={**run, "github.run_id": "43"}))
    await store.put_object(obj("b", "other-repo", labels={**run, "github.repository": "x/y"}))
    await store.put_object(obj("b", "none"))
    found = await store.find_objects_by_labels(run)
    assert [o.key for o in found] == ["a", "z"]
    assert found[1].labels["app.kubernetes.io/name"] == "x"
    assert [o.key for o in await store.find_objects_by_labels(run, limit=1)] == ["a"]
    assert await store.find_objects_by_labels({"github.run_id": "44"}) == []


async def test_objects_found_by_digest(store: MetadataStore) -> None:
    """What a batch upload links to: every key holding the content, in (bucket, key) order;
    a key's old content is forgotten once it is replaced or deleted."""
    await store.create_bucket(Bucket("b", time.time()))
    await store.create_bucket(Bucket("a", time.time()))
    same, other = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    await store.put_object(obj("b", "y", same))
    await store.put_object(obj("a", "z", same))
    await store.put_object(obj("b", "x", same))
    await store.put_object(obj("b", "w", other))
    found = await store.find_objects_by_digest(same)
    assert [(o.bucket, o.key) for o in found] == [("a", "z"), ("b", "x"), ("b", "y")]
    assert [o.key for o in await store.find_objects_by_digest(same, limit=1)] == ["z"]
    await store.put_object(obj("b", "x", other))
    await store.delete_object("a", "z")
    assert [o.key for o in await store.find_objects_by_digest(same)] == ["y"]
    assert await store.find_objects_by_digest("sha256:" + "3" * 64) == []


# ---- outbound webhooks ----------------------------------------------------------------------


def _webhook(webhook_id: str, created_at: float = 1.0) -> WebhookSubscription:
    return WebhookSubscription(
        webhook_id=webhook_id,
        url="https://ci.example/hook",
        events=["object.*", "image.pushed"],
        format="standard-webhooks",
        created_at=created_at,
        created_by="user:root",
        secrets=[{"sealed": "s1", "expires_at": None}],
        filter={"buckets": ["rel*"], "key_prefix": "app/"},
    )


async def test_webhooks_roundtrip_update_and_delete_with_deliveries(store: MetadataStore) -> None:
    await store.create_webhook(_webhook("w2", 2.0))
    await store.create_webhook(_webhook("w1", 1.0))
    with pytest.raises(AlreadyExistsError):
        await store.create_webhook(_webhook("w1"))
    assert [w.webhook_id for w in await store.list_webhooks()] == ["w1", "w2"]
    got = await store.get_webhook("w1")
    assert got == _webhook("w1", 1.0)
    got.active, got.disabled_reason = False, "410 Gone"
    assert await store.update_webhook(got)
    assert (await store.get_webhook("w1")) == got
    assert not await store.update_webhook(_webhook("nope"))
    await store.add_deliveries(
        [
            WebhookDelivery(f"d{i}", "w1", f"e{i}", "object.created", "{}", float(i))
            for i in range(3)
        ]
    )
    assert await store.delete_webhook("w1")
    assert await store.get_webhook("w1") is None
    assert await store.get_delivery("d1") is None
    assert not await store.delete_webhook("w1")


async def test_deliveries_are_due_in_order_paged_newest_first_and_expire(
    store: MetadataStore,
) -> None:
    await store.create_webhook(_webhook("w"))
    rows = [
        WebhookDelivery(f"d{i}", "w", f"e{i}", "object.created", f'{{"n":{i}}}', 100.0 + i,
                        next_attempt_at=100.0 + (5 - i))
        for i in range(5)
    ]  # fmt: skip
    await store.add_deliveries(rows)
    due = await store.due_deliveries(103.0, 10)
    assert [d.delivery_id for d in due] == ["d4", "d3", "d2"]  # earliest next_attempt_at first
    assert [d.delivery_id for d in await store.due_deliveries(200.0, 2)] == ["d4", "d3"]
    done = await store.get_delivery("d4")
    assert done is not None and done.payload == '{"n":4}'
    done.status = "delivered"
    done.attempts.append({"at": 105.0, "status_code": 200, "latency_ms": 3, "error": ""})
    await store.update_delivery(done)
    assert await store.get_delivery("d4") == done
    assert "d4" not in [d.delivery_id for d in await store.due_deliveries(200.0, 10)]
    page, more = await store.list_deliveries("w", limit=2)
    assert [d.delivery_id for d in page] == ["d4", "d3"] and more
    page, more = await store.list_deliveries("w", before=(page[-1].created_at, "d3"), limit=10)
    assert [d.delivery_id for d in page] == ["d2", "d1", "d0"] and not more
    assert await store.expire_deliveries(1000.0) == 1  # only the delivered one
    assert await store.get_delivery("d4") is None and await store.get_delivery("d3") is not None


# ---- lifecycle: expiring objects, abandoned uploads, the one-runner lease ---------------------


async def test_expired_objects_soonest_first_and_only_those_due(store: MetadataStore) -> None:
    await store.create_bucket(Bucket("life", 1.0))
    await store.put_object(obj("life", "later", expires_at=2000.0))
    await store.put_object(obj("life", "soon", expires_at=1000.0))
    await store.put_object(obj("life", "forever"))
    await store.put_object(obj("life", "due-now", expires_at=1500.0))
    assert [o.key for o in await store.expired_objects(999.0)] == []
    due = await store.expired_objects(1500.0)
    assert [o.key for o in due] == ["soon", "due-now"]
    assert due[0].expires_at == 1000.0
    assert [o.key for o in await store.expired_objects(5000.0, limit=2)] == ["soon", "due-now"]
    # An overwrite without an expiry keeps the object forever.
    await store.put_object(obj("life", "soon"))
    assert [o.key for o in await store.expired_objects(5000.0)] == ["due-now", "later"]


async def test_stale_uploads_across_buckets_oldest_first(store: MetadataStore) -> None:
    for name in ("b1", "b2"):
        await store.create_bucket(Bucket(name, 1.0))
    await store.create_multipart(MultipartUpload("u-new", "b1", "k", 300.0))
    await store.create_multipart(MultipartUpload("u-old", "b2", "k", 100.0))
    await store.create_multipart(MultipartUpload("u-mid", "b1", "z", 200.0))
    assert [u.upload_id for u in await store.stale_multipart(250.0)] == ["u-old", "u-mid"]
    assert [u.upload_id for u in await store.stale_multipart(1000.0, limit=1)] == ["u-old"]
    assert await store.stale_multipart(100.0) == []
    await store.create_registry_upload(RegistryUpload("r-new", "repo", "s1", 300.0))
    await store.create_registry_upload(RegistryUpload("r-old", "repo", "s2", 100.0))
    stale = await store.stale_registry_uploads(250.0)
    assert [(u.upload_id, u.session_id) for u in stale] == [("r-old", "s2")]


async def test_a_lease_has_one_holder_until_it_expires(store: MetadataStore) -> None:
    assert await store.acquire_lease("lifecycle", "replica-a", now=1000.0, ttl=60.0)
    assert not await store.acquire_lease("lifecycle", "replica-b", now=1030.0, ttl=60.0)
    # The holder renews; another name is another lease.
    assert await store.acquire_lease("lifecycle", "replica-a", now=1050.0, ttl=60.0)
    assert await store.acquire_lease("other", "replica-b", now=1050.0, ttl=60.0)
    assert not await store.acquire_lease("lifecycle", "replica-b", now=1100.0, ttl=60.0)
    # Expired (renewed until 1110): anyone may take it.
    assert await store.acquire_lease("lifecycle", "replica-b", now=1110.0, ttl=60.0)
    assert not await store.release_lease("lifecycle", "replica-a")
    assert await store.release_lease("lifecycle", "replica-b")
    assert await store.acquire_lease("lifecycle", "replica-a", now=1111.0, ttl=60.0)


async def test_a_lease_taken_concurrently_has_one_winner(store: MetadataStore) -> None:
    results = await asyncio.gather(
        *(store.acquire_lease("race", f"replica-{i}", now=1000.0, ttl=60.0) for i in range(8))
    )
    assert results.count(True) == 1


async def test_expire_object_removes_only_the_version_that_expired(store: MetadataStore) -> None:
    await store.create_bucket(Bucket("life", 1.0))
    first = obj("life", "k", updated_at=100.0, expires_at=150.0)
    await store.put_object(first)
    # Overwritten before the expiry ran: the new version stays.
    await store.put_object(obj("life", "k", "sha256:" + "b" * 64, updated_at=200.0))
    assert await store.expire_object("life", "k", first.digest, 100.0) is None
    assert (await store.get_object("life", "k")) is not None
    gone = await store.expire_object("life", "k", "sha256:" + "b" * 64, 200.0)
    assert gone is not None and gone.key == "k"
    assert await store.get_object("life", "k") is None
    assert "sha256:" + "b" * 64 not in await store.object_digests()


# ---- failed authentications (issue 19) ---------------------------------------------------------
async def test_auth_failures_count_per_key_and_slot(store: MetadataStore) -> None:
    assert await store.auth_failures(["a", "b"], 0) == {}
    await store.add_auth_failure(["a", "b"], 100, expires_at=1000.0)
    await store.add_auth_failure(["a"], 100, expires_at=1000.0)
    await store.add_auth_failure(["a", "a"], 101, expires_at=1010.0)  # a key counts once
    assert await store.auth_failures(["a", "b", "c"], 100) == {"a": {100: 2, 101: 1}, "b": {100: 1}}
    assert await store.auth_failures(["a", "b"], 101) == {"a": {101: 1}}
    assert await store.auth_failures([], 0) == {}
    # Counters whose expiry passed go; the others stay.
    assert await store.expire_auth_failures(1005.0) == 2
    assert await store.auth_failures(["a", "b"], 0) == {"a": {101: 1}}


async def test_concurrent_auth_failures_are_all_counted(store_uri: str) -> None:
    """Two stores on one database (two workers or replicas): no failure is lost."""
    stores = [create_metadata_store(store_uri) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        await asyncio.gather(
            *(stores[i % 2].add_auth_failure(["k", "src"], 7, 99.0) for i in range(40))
        )
        assert await stores[0].auth_failures(["k", "src"], 7) == {"k": {7: 40}, "src": {7: 40}}
    finally:
        for s in stores:
            await s.close()


# ---- generations (issue 23) ------------------------------------------------------------------
async def test_generations_count_up_from_zero_per_name(store: MetadataStore) -> None:
    assert await store.generation("evidence") == 0
    assert await store.bump_generation("evidence") == 1
    assert await store.bump_generation("evidence") == 2
    assert await store.generation("evidence") == 2
    assert await store.generation("other") == 0


async def test_concurrent_generation_bumps_are_all_counted(store_uri: str) -> None:
    """Two stores on one database (two workers or replicas): every bump is seen by both."""
    stores = [create_metadata_store(store_uri) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        values = await asyncio.gather(*(stores[i % 2].bump_generation("g") for i in range(30)))
        assert sorted(values) == list(range(1, 31))
        assert [await s.generation("g") for s in stores] == [30, 30]
    finally:
        for s in stores:
            await s.close()
