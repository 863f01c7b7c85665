"""The sqlite store's operation queue (metadata/sqlite.py): concurrent operations travel to the
connection's thread together, in order, each with its own outcome; one store can serve more
than one event loop (the CLI and tests open and use stores from several)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from zot_artifact_store.metadata import AlreadyExistsError, Bucket
from zot_artifact_store.metadata.sqlite import SqliteMetadataStore


def test_concurrent_operations_keep_their_order_and_their_own_errors(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
        await store.open()
        try:
            creates = [store.create_bucket(Bucket(f"bucket-{i:03d}", 1.0)) for i in range(40)]
            duplicate = store.create_bucket(Bucket("bucket-007", 2.0))
            results = await asyncio.gather(*creates, duplicate, return_exceptions=True)
            assert results[:40] == [None] * 40
            assert isinstance(results[40], AlreadyExistsError)
            names = [b.name for b in await store.list_buckets()]
            assert names == [f"bucket-{i:03d}" for i in range(40)]
            found = await asyncio.gather(*(store.get_bucket(n) for n in names))
            assert [b.created_at for b in found if b is not None] == [1.0] * 40
            # They went in fewer trips than operations.
            queue = store._queue
            assert queue is not None and queue.batches < queue.jobs
        finally:
            await store.close()

    asyncio.run(main())


def test_one_store_serves_two_event_loops(tmp_path: Path) -> None:
    store = SqliteMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    asyncio.run(store.open())
    errors: list[BaseException] = []

    def loop_thread(prefix: str) -> None:
        async def work() -> None:
            for i in range(30):
                await store.create_bucket(Bucket(f"{prefix}-{i:03d}", time.time()))
                assert await store.get_bucket(f"{prefix}-{i:03d}") is not None

        try:
            asyncio.run(asyncio.wait_for(work(), 30))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop_thread, args=(p,)) for p in ("aaa", "bbb")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        assert len(asyncio.run(store.list_buckets())) == 60
    finally:
        asyncio.run(store.close())


def test_a_closed_store_refuses_operations(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
        await store.open()
        await store.close()
        with pytest.raises(Exception, match="not open"):
            await store.get_bucket("anything")

    asyncio.run(main())
