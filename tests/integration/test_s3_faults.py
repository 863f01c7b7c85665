"""The S3 blob backend when its backend misbehaves, through the fault proxy in front of a real
S3 server (moto's server mode): throttling and 5xx are retried, a response cut mid-body is
resumed from the byte reached, part uploads that never get through fail the write cleanly —
nothing partial becomes visible and nothing committed is lost."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.objectstores import S3Endpoint, put_in_parts
from tests.fixtures.s3client import s3_client
from tests.fixtures.sockets import send_cut_after
from zot_artifact_store.storage.s3 import S3BlobStore, S3Options

MiB = 1 << 20
DATA = hashlib.sha512(b"seed").digest() * (12 * MiB // 64 + 1)  # 12 MiB and a bit
DATA = DATA[: 12 * MiB + 333]


@pytest.fixture
def proxy(moto_s3: S3Endpoint) -> Iterator[FaultProxy]:
    with FaultProxy(moto_s3.url) as p:
        yield p


@pytest.fixture
async def store(moto_s3: S3Endpoint, proxy: FaultProxy) -> AsyncIterator[S3BlobStore]:
    s = S3BlobStore(
        S3Options(
            bucket=moto_s3.bucket,
            endpoint=proxy.url,
            prefix=f"faults-{uuid.uuid4().hex[:8]}/",
            access_key=moto_s3.access_key,
            secret_key=moto_s3.secret_key,
            force_path_style=True,
            part_size=5 * MiB,
            max_attempts=3,
        )
    )
    await s.open()
    try:
        yield s
    finally:
        proxy.reset()
        await s.close()


def leftovers(moto_s3: S3Endpoint, store: S3BlobStore) -> list[str]:
    raw = s3_client(moto_s3.url, moto_s3.access_key, moto_s3.secret_key)
    prefix = store.options.prefix
    ups = raw.list_multipart_uploads(Bucket=moto_s3.bucket, Prefix=prefix).get("Uploads", [])
    objs = raw.list_objects_v2(Bucket=moto_s3.bucket, Prefix=prefix).get("Contents", [])
    return [u["Key"] for u in ups] + [o["Key"] for o in objs if not o["Key"].endswith(".lease")]


async def test_throttling_and_5xx_are_retried(store: S3BlobStore, proxy: FaultProxy) -> None:
    proxy.fail_next(1, 503, match="partNumber=")  # SlowDown's status, on a part
    proxy.fail_next(1, 500, match="uploads")  # the first CreateMultipartUpload
    info = await store.put_bytes(DATA)
    assert [r.status for r in proxy.seen() if r.status >= 500] == [500, 503]
    assert await store.read_all(info.digest) == DATA


async def test_a_response_cut_mid_body_is_resumed(store: S3BlobStore, proxy: FaultProxy) -> None:
    digest, name = await put_in_parts(store, DATA)
    proxy.drop_after(3 * MiB + 17, count=2, match=name)
    assert await store.read_all(digest) == DATA
    gets = [r for r in proxy.seen("GET", name)]
    assert [r.dropped for r in gets] == [True, True, False]
    assert gets[1].headers["range"] == f"bytes={3 * MiB + 17}-"


async def test_a_download_sent_to_a_socket_stops_where_the_body_was_cut(
    store: S3BlobStore, proxy: FaultProxy
) -> None:
    """The large-download path (the backend body straight to the client's socket) reports
    the bytes that reached the socket; the caller streams the rest with ``read``, which
    asks again from there."""
    await send_cut_after(store, proxy, DATA, 3 * MiB + 17)


async def test_parts_that_never_get_through_fail_the_write_cleanly(
    store: S3BlobStore, proxy: FaultProxy, moto_s3: S3Endpoint
) -> None:
    committed = await store.put_bytes(b"committed before the trouble")
    proxy.stop_parts_after(1, match="partNumber=")  # then every part upload is cut off
    w = await store.writer()
    with pytest.raises(OSError):
        await w.write(DATA)
        await w.commit()
    await w.abort()
    proxy.reset()
    assert await store.stat("sha256:" + hashlib.sha256(DATA).hexdigest()) is None
    assert [b.digest async for b in store.iter_blobs()] == [committed.digest]
    assert await store.read_all(committed.digest) == b"committed before the trouble"
    assert leftovers(moto_s3, store) == [store.blob_key(committed.digest)]
