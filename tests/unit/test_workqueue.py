"""The batched work queue (workqueue.py) that blob commits and the sqlite connection share:
each job gets its own result or error on the loop that asked, several workers really run at
once, and a queue whose threads are gone fails its jobs instead of leaving them waiting."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from zot_artifact_store.workqueue import WorkQueue


def test_parallel_workers_run_jobs_at_once_each_with_its_own_outcome() -> None:
    async def main() -> None:
        executor = ThreadPoolExecutor(4)
        queue = WorkQueue(executor, workers=4)
        barrier = threading.Barrier(4, timeout=10)  # passes only if 4 jobs run together

        def job(i: int) -> int:
            if i == 5:
                raise ValueError("job 5 fails")
            if i < 4:
                barrier.wait()
            return i * i

        try:
            results = await asyncio.gather(
                *(queue.submit(job, (i,)) for i in range(40)), return_exceptions=True
            )
        finally:
            executor.shutdown()
        assert isinstance(results[5], ValueError)
        assert [r for i, r in enumerate(results) if i != 5] == [i * i for i in range(40) if i != 5]
        assert queue.jobs == 40

    asyncio.run(main())


def test_one_worker_keeps_the_order_and_takes_jobs_in_batches() -> None:
    async def main() -> None:
        executor = ThreadPoolExecutor(1)
        queue = WorkQueue(executor)
        seen: list[int] = []
        try:
            await asyncio.gather(*(queue.submit(seen.append, (i,)) for i in range(100)))
        finally:
            executor.shutdown()
        assert seen == list(range(100))
        assert queue.batches < queue.jobs

    asyncio.run(main())


def test_jobs_of_a_shut_down_executor_fail_with_the_queue_error() -> None:
    async def main() -> None:
        executor = ThreadPoolExecutor(2)
        executor.shutdown()
        queue = WorkQueue(executor, workers=2, closed=lambda: RuntimeError("store is closed"))
        with pytest.raises(RuntimeError, match="store is closed"):
            await asyncio.wait_for(queue.submit(lambda: 1), 5)

    asyncio.run(main())
