"""Blocking jobs for worker threads, handed over and answered in batches (issue 23).

``loop.run_in_executor`` costs, per job, an executor submit (a lock, a queue put, a thread
wake-up) and a loop wake-up to deliver the result. Under concurrent load most of that is
waste: many jobs become ready in one pass of the event loop and finish close together. A
:class:`WorkQueue` keeps the jobs in one list; at most ``workers`` drain passes take them from
it, each running jobs until the list is empty, and finished results go back to their event
loop together, one loop wake-up for whatever finished while the previous delivery was pending.
The threads are woken once per event-loop iteration at most.

With ``workers=1`` jobs run one at a time in submission order, each drain pass taking the
whole list (the sqlite connection's thread, metadata/sqlite.py); with more, they run in
parallel, one job per take (blob commits, whose fsyncs the filesystem groups into one journal
commit when they are concurrent: storage/filesystem.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")

Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]
Outcome = tuple[bool, Any]


class WorkQueue:
    """Run ``fn(*args)`` jobs on ``executor``'s threads (at most ``workers`` at once), in
    batches; ``closed`` makes the error for jobs that can no longer run (executor shut down)."""

    def __init__(
        self, executor: Executor, *, workers: int = 1, closed: Callable[[], Exception] | None = None
    ) -> None:
        self.executor = executor
        self.workers = workers
        self._closed = closed or (lambda: RuntimeError("work queue is closed"))
        self._lock = threading.Lock()
        self._pending: list[Job] = []
        self._running = 0  # drain passes queued or running on the executor
        # The loop whose current iteration ends with a wake-up of the threads (None: none is).
        self._waking: asyncio.AbstractEventLoop | None = None
        # Finished jobs per loop, waiting for the delivery already scheduled on that loop.
        self._outbox: dict[asyncio.AbstractEventLoop, list[tuple[Job, Outcome]]] = {}
        self.batches = 0  # takes from the list, and the jobs they ran (for measurements)
        self.jobs = 0

    def submit(self, fn: Callable[..., T], args: tuple[Any, ...] = ()) -> asyncio.Future[T]:
        """Queue ``fn(*args)``; the future is resolved on the calling loop. Cancelling it does
        not stop the job (it may be running)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._pending.append((fn, args, fut))
            if self._running >= self.workers or self._waking is loop:
                return fut
            # Another loop's wake-up is pending (a queue shared across loops): do not wait on
            # that loop, which may be busy or closed.
            now = self._waking is not None
            if not now:
                self._waking = loop
        if now:
            self._wake()
        else:
            loop.call_soon(self._wake)
        return fut

    def _wake(self) -> None:
        with self._lock:
            self._waking = None
            start = min(self.workers - self._running, len(self._pending))
            if start <= 0:
                return
            self._running += start
        for started in range(start):
            try:
                self.executor.submit(self._drain)
            except BaseException:  # shut down: nothing will run these
                with self._lock:
                    self._running -= start - started
                    waiting, self._pending = self._pending, []
                for _, _, f in waiting:
                    if not f.done():
                        f.get_loop().call_soon(_settle, f, (False, self._closed()))
                return

    def _drain(self) -> None:
        """On a worker thread: run jobs until the list is empty (the whole list per take with
        one worker, in order; one job per take with several, so they share the work)."""
        while True:
            with self._lock:
                if not self._pending:
                    self._running -= 1
                    return
                if self.workers == 1:
                    batch, self._pending = self._pending, []
                else:
                    batch = [self._pending.pop(0)]
                self.batches += 1
                self.jobs += len(batch)
            done: list[tuple[Job, Outcome]] = []
            for job in batch:
                fn, args, _ = job
                try:
                    done.append((job, (True, fn(*args))))
                except BaseException as exc:
                    done.append((job, (False, exc)))
            self._send(done)

    def _send(self, done: list[tuple[Job, Outcome]]) -> None:
        """Hand finished jobs to their loops: appended to a delivery already scheduled there,
        or one is scheduled."""
        schedule: list[asyncio.AbstractEventLoop] = []
        with self._lock:
            for item in done:
                loop = item[0][2].get_loop()
                box = self._outbox.get(loop)
                if box is None:
                    self._outbox[loop] = [item]
                    schedule.append(loop)
                else:
                    box.append(item)
        for loop in schedule:
            try:
                loop.call_soon_threadsafe(self._deliver, loop)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                with self._lock:
                    self._outbox.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            items = self._outbox.pop(loop, [])
        for (_, _, fut), outcome in items:
            _settle(fut, outcome)


def _settle(fut: asyncio.Future[Any], outcome: Outcome) -> None:
    if fut.done():  # cancelled by its waiter
        return
    ok, value = outcome
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


__all__ = ["WorkQueue"]
