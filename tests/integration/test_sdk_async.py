""":class:`zot_artifacts.AsyncClient` against the real server through the fault proxy: the
same operations as coroutines, parts as asyncio tasks (interrupted and resumed), a download
resumed after a dropped connection, async listing across pages, retries and typed errors."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.server import ServerProcess
from zot_artifacts import (
    AccessDeniedError,
    ArtifactStoreError,
    AsyncClient,
    NotFoundError,
    RetryPolicy,
    Subject,
)

MIB = 1 << 20
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(server.url) as p:
        yield p


async def test_async_transfers_resume_and_retry(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    data = os.urandom(30 * MIB + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    async with AsyncClient(proxy.url, retry=FAST) as c:
        bucket = (await c.create_bucket(f"sdk-async-{uuid.uuid4().hex[:8]}")).name
        options = {"part_size": 5 * MIB, "multipart_threshold": 8 * MIB, "parallel": 3}
        proxy.stop_parts_after(2)
        with pytest.raises(ArtifactStoreError):
            await c.upload(bucket, "a.bin", src, **options)
        stored = {
            int(r.path.rsplit("/", 1)[1])
            for r in proxy.seen("PUT", "/parts/")
            if r.forwarded and r.status == 200
        }
        assert len(stored) == 2
        proxy.reset()
        info = await c.upload(bucket, "a.bin", src, **options)
        resent = {int(r.path.rsplit("/", 1)[1]) for r in proxy.seen("PUT", "/parts/")}
        assert resent == set(range(1, 8)) - stored
        assert info.sha256 == digest and info.size == len(data)

        proxy.reset()
        proxy.drop_after(4 * MIB, match="/objects/a.bin")
        out = tmp_path / "out.bin"
        got = await c.download(bucket, "a.bin", out)
        assert got.sha256 == digest == hashlib.sha256(out.read_bytes()).hexdigest()
        ranges = [r.headers.get("range") for r in proxy.seen("GET", "/objects/a.bin")]
        assert ranges == [None, f"bytes={4 * MIB}-"]

        for i in range(7):
            await c.upload(bucket, f"many/{i}", str(i).encode())
        proxy.reset()
        proxy.fail_next(1, 503)
        keys = [o.key async for o in c.list(bucket, "many/", page_size=3)]
        assert keys == [f"many/{i}" for i in range(7)]
        assert [r.status for r in proxy.seen("GET", "/objects")] == [503, 200, 200, 200]
        assert await c.list_prefixes(bucket) == ["many/"]

        proxy.reset()
        proxy.fail_next(1, 403)
        with pytest.raises(AccessDeniedError):
            await c.delete(bucket, "many/0")
        assert len(proxy.requests) == 1 and (await c.head(bucket, "many/0")).size == 1
        copied = await c.copy(bucket, "a.bin", bucket, "b.bin")
        assert copied.sha256 == digest
        result = await c.verify(Subject.object(bucket, "b.bin"), {"sbom": True})
        assert not result.verified and result.rules[0].reason
        await c.delete(bucket, "b.bin")
        with pytest.raises(NotFoundError):
            await c.head(bucket, "b.bin")
