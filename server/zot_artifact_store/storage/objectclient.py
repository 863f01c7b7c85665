"""What every object-store wire (S3, Azure Blob, GCS) shares: a sync client library run on a
bounded thread pool, its errors as :class:`ObjectStoreError` (an ``OSError``, like a failing
disk), a circuit breaker, metrics per request, and :class:`PartUploader` — streaming writes with
bounded memory, hashed in order as they go. Each backend subclasses :class:`ObjectClient` with
the few requests its store needs (``storage/objectstore.py``).

Why sync libraries in threads: docs/adr/0006.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import ctypes
import functools
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .base import StorageBackendError, StorageObserver

T = TypeVar("T")

MiB = 1 << 20
# The part size doubles every this many parts, so an upload of unknown length reaches the
# store's object limit within its part count (8 MiB parts: 8 GiB before the first doubling).
PARTS_PER_SIZE = 1000

RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "CircuitOpen",
        "ServerBusy",
        "OperationTimedOut",
    }
)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters

# Downloads sent straight from a backend body to a client's socket (send_body): threads of
# their own, the buffer each reuses, and how long a client may leave its socket full before
# the rest goes back to the event loop's stream.
SEND_THREADS = 4
SEND_BUFFER = 1 << 20
SEND_STALL_MS = 250


# glibc serves allocations above this with an mmap of their own: every part (8 MiB and up),
# but not Azure's 4 MiB download blocks nor the 1 MiB reads cut from them.
MMAP_THRESHOLD = 4 * MiB + 64 * 1024
TRIM_THRESHOLD = 16 * MiB


@functools.cache
def map_large_buffers() -> bool:
    """Have glibc serve every allocation above ``MMAP_THRESHOLD`` (parts) with its own mmap,
    returned to the system when freed, and keep up to 16 MiB free at the top of the heap. By
    default the thresholds are dynamic: after the first large buffer is freed the mmap
    threshold rises past that size, and parts then come from the heap arenas of whichever
    threads allocate and free them, memory the process keeps and fragments
    (benchmarks/RESULTS.md, issue 17: peak RSS of a 1 GiB PUT 212-228 MiB without, 131-143
    with). Fixing the mmap threshold also fixes the trim threshold at glibc's 128 KiB, and the
    heap would then be given back and faulted in again for every few request-body pieces
    (``BODY_CHUNK``, 512 KiB): 16 MiB keeps them in the heap. Buffers below the threshold
    that were each an mmap, faulted in page by page and unmapped again (a 1 MiB threshold:
    request pieces, Azure's download blocks) cost 0.6-4 s of CPU per GiB. Sent S3 parts are
    reused (:class:`PartBuffers`). False where it does not apply (not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):
        return False


class PartBuffers:
    """Part buffers that uploads hand back when a part is sent, for the next part of any
    upload to fill: each new one would cost a fresh mmap, a page fault per 4 KiB touched and
    an munmap (glibc maps every buffer above ``MMAP_THRESHOLD`` on its own,
    :func:`map_large_buffers`) — 0.7 s of CPU per GiB stored on this machine
    (benchmarks/RESULTS.md, issue 17). At most
    ``keep`` buffers wait here, and they are let go after ``idle`` seconds without use, so a
    quiet store holds none."""

    def __init__(self, keep: int, idle: float = 30.0) -> None:
        self.keep, self.idle = keep, idle
        self._free: list[bytearray] = []
        self._used = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def take(self, size: int) -> bytearray | None:
        """A free buffer of exactly ``size`` bytes (its content is stale), or None."""
        for i, buf in enumerate(self._free):
            if len(buf) == size:
                self._used = time.monotonic()
                return self._free.pop(i)
        return None

    def give(self, buf: bytearray) -> None:
        """``buf`` is no longer read by anyone: keep it for another part, or let it go."""
        if len(self._free) >= self.keep:
            return
        self._free.append(buf)
        self._used = time.monotonic()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.idle, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if not self._free:
            return
        left = self._used + self.idle - time.monotonic()
        if left <= 0:
            self._free.clear()
        else:
            self._timer = asyncio.get_running_loop().call_later(left, self._expire)

    def clear(self) -> None:
        self._free.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def held(self) -> int:
        return sum(len(b) for b in self._free)


class ObjectStoreError(StorageBackendError):
    """The object store failed or refused a request (after the client's retries)."""

    def __init__(self, operation: str, code: str, status: int, message: str) -> None:
        self.operation, self.code, self.status = operation, code, status
        # status 0: no answer (connection refused or cut, timeout)
        self.retryable = status == 0 or status >= 500 or status == 429 or code in RETRYABLE_CODES
        super().__init__(f"object store {operation}: {code or 'error'} ({status}): {message}")


class CircuitBreaker:
    """After ``threshold`` consecutive retryable failures the backend counts as down for
    ``cooldown`` seconds: calls fail at once (503 to clients) instead of each waiting out
    timeouts and retries. Then one call is let through; its success closes the circuit."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self.open_until = 0.0

    def check(self, operation: str) -> None:
        now = time.monotonic()
        if self.failures >= self.threshold and now < self.open_until:
            raise ObjectStoreError(
                operation,
                "CircuitOpen",
                503,
                f"backend failed {self.failures} times in a row; not tried again for "
                f"{self.open_until - now:.1f} s",
            )
        if self.failures >= self.threshold:  # half-open: this call probes, the next wait
            self.open_until = now + self.cooldown

    def record(self, error: BaseException | None) -> None:
        if error is None or not getattr(error, "retryable", False):
            self.failures = 0  # an answer, even a refusal, means the backend is up
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = time.monotonic() + self.cooldown


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: full key, size, last modification (seconds since the epoch)."""

    key: str
    size: int
    mtime: float


@dataclass(frozen=True)
class PendingUpload:
    """An unfinished upload the store can abort (S3 multipart upload, Azure uncommitted
    blocks): its object key, the backend's handle, when it began."""

    key: str
    handle: str
    started: float


class ObjectBody(Protocol):
    """A download in progress: sync ``read`` (run on the pool) and ``close``."""

    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


def readinto_response(raw: Any, view: memoryview, read: Callable[[int], bytes]) -> int:
    """Read a download straight into ``view`` from the ``http.client`` response under urllib3's
    ``raw`` (its ``readinto``: no new bytes per piece, no copy) — botocore's and requests'
    own ``read`` return new bytes each time. urllib3 does not see these reads, so it closes the
    connection when the body is closed instead of pooling it (one new connection per large
    download). A body with a Content-Encoding (never one this store wrote) is read with
    ``read`` and copied in. 0 at the end."""
    fp = getattr(raw, "_fp", None)
    if fp is None or not hasattr(fp, "readinto") or raw.headers.get("Content-Encoding"):
        data = read(len(view))
        view[: len(data)] = data
        return len(data)
    n: int = fp.readinto(view)
    return n


@dataclass(frozen=True, kw_only=True)
class ClientSettings:
    """What every backend's options share (``S3Options``, ``AzureOptions``, ``GcsOptions``
    extend it): the key prefix, streaming, the breaker, and the store's clocks."""

    prefix: str = ""  # key prefix ("rootdirectory"); "" or ends with "/"
    part_size: int = 8 * MiB
    concurrency: int = 4  # parts in flight per upload
    breaker_threshold: int = 5  # consecutive failed calls that open the circuit
    breaker_cooldown: float = 10.0  # seconds before one call may probe again
    # A dedupe hit re-dates a blob only when it is older than this: far inside any GC grace
    # period (storage.gcDelay), and no copy storm for hot content.
    touch_after: float = 60.0
    # An unfinished upload under blobs/ (a commit's composition) this old is orphaned.
    orphan_copy_age: float = 86_400.0
    # How a blob written in parts reaches its digest's key (docs/adr/0006): "pointer" — the
    # parts make a data object under data/ and the digest's key gets a small record naming it;
    # "copy" — the parts make a temporary object that the store copies onto the digest's key.
    commit: str = "pointer"


class ObjectClient(abc.ABC):
    """One backend's client library; every call runs on this client's own thread pool."""

    backend = "object"
    namespace = "bucket"  # what holds the objects: "bucket", "container"
    max_part = 5 << 30  # largest part (block) one request may carry
    max_parts = 10_000  # most parts (blocks) in one object
    # Error codes that mean "these credentials may not", besides 401 and 403.
    refusal_codes: frozenset[str] = frozenset()

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        map_large_buffers()
        self.workers = max(8, 4 * settings.concurrency)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self.backend)
        self._senders = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix=self.backend + "-send")
        self.sending = 0
        # Bytes of parts in flight, store-wide: bounded memory under many uploads.
        self.part_slots = asyncio.Semaphore(2 * settings.concurrency)
        self.part_buffers = PartBuffers(keep=settings.concurrency + 1)
        self._closed = threading.Event()
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown)
        # (backend, operation, outcome, seconds, bytes sent, bytes received) → metrics
        self.observer: StorageObserver | None = None
        # Where a request may put intermediate objects of its own (the store sets its
        # instance's tmp/ prefix when it opens, so they are swept if this process dies).
        self.scratch = self.key("tmp/scratch/")

    def key(self, name: str) -> str:
        return self.settings.prefix + name

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the pool (not tied to the calling task: a cancel does not stop it)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    @abc.abstractmethod
    def translate(self, operation: str, exc: Exception) -> ObjectStoreError | None:
        """The library's exception as an :class:`ObjectStoreError` (None: not the backend's)."""

    def _guarded(self, operation: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ObjectStoreError:
            raise
        except Exception as exc:
            err = self.translate(operation, exc)
            if err is None:
                raise
            raise err from None

    async def invoke(self, operation: str, fn: Callable[[], T], sent: int = 0) -> T:
        """``fn()`` on the pool as one backend request: breaker, errors translated, observed."""
        started = time.monotonic()
        try:
            self.breaker.check(operation)
            result = await self.run(self._guarded, operation, fn)
        except ObjectStoreError as exc:
            self.breaker.record(exc)
            self.observe(operation, exc.code or "error", time.monotonic() - started, sent, 0)
            raise
        self.breaker.record(None)
        self.observe(operation, "ok", time.monotonic() - started, sent, 0)
        return result

    def observe(self, operation: str, outcome: str, seconds: float, sent: int, got: int) -> None:
        if self.observer is not None:
            self.observer(self.backend, operation, outcome, seconds, sent, got)

    async def read_body(self, body: ObjectBody, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when -1) of a download, read on the pool; a failure is a
        retryable error (no answer), so a reader asks again from where it stopped."""
        started = time.monotonic()
        try:
            data: bytes = await self.run(body.read, *([size] if size >= 0 else []))
        except Exception as exc:
            self.observe("get_object_body", "error", time.monotonic() - started, 0, 0)
            raise ObjectStoreError("get_object", type(exc).__name__, 0, str(exc)) from None
        self.observe("get_object_body", "ok", time.monotonic() - started, 0, len(data))
        return data

    # Whether downloads can go straight to a client's socket on a sender thread (send_body):
    # S3 and GCS read into a buffer of ours (readinto, readinto_response), no new bytes per
    # piece; Azure sends its library's download blocks, the next fetched while one is sent
    # (body_pieces).
    fills_buffers = False

    def readinto(self, body: ObjectBody, view: memoryview) -> int:
        """Read up to ``len(view)`` bytes of a download into ``view`` (on a thread); 0 at its
        end. Only where :attr:`fills_buffers`."""
        raise NotImplementedError

    async def send_body(self, body: ObjectBody, sock_fd: int, size: int) -> int | None:
        """Send up to ``size`` bytes of a download straight to the connected non-blocking
        socket ``sock_fd`` on a sender thread: the body is read into one reused buffer and
        written from it, with no hop to the event loop and no new bytes per piece. Stops when
        the body ends or fails (the caller resumes from what was sent) or the client leaves its
        socket full for ``SEND_STALL_MS``; returns the bytes sent, None when every sender is
        busy (nothing sent). A client gone raises its ``ConnectionError``. Closes ``body``."""
        if self.sending >= SEND_THREADS:
            body.close()
            return None
        self.sending += 1
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(self._senders, self._send_body, body, sock_fd, size)
            # Not cancelled with the request: the thread still writes to the socket.
            await asyncio.wait([fut])
            sent: int = fut.result()
        finally:
            self.sending -= 1
        self.observe("get_object_body", "ok", time.monotonic() - started, 0, sent)
        return sent

    def body_pieces(self, body: ObjectBody, size: int) -> Iterator[memoryview]:
        """Up to ``size`` bytes of a download in pieces, for :meth:`send_body` (on its thread):
        read into one reused buffer (a piece is valid until the next is asked for). Ends early
        when the backend fails or the body ends."""
        view = memoryview(bytearray(min(size, SEND_BUFFER)))
        left = size
        while left > 0:
            try:
                n = self.readinto(body, view[: min(len(view), left)])
            except Exception:  # the backend failed: the caller asks again from what was sent
                return
            if n == 0:
                return
            left -= n
            yield view[:n]

    def _send_body(self, body: ObjectBody, sock_fd: int, size: int) -> int:
        poller = select.poll()
        poller.register(sock_fd, select.POLLOUT)
        pieces = self.body_pieces(body, size)
        sent = 0
        try:
            for piece in pieces:
                off = 0
                while off < len(piece):
                    try:
                        off += os.write(sock_fd, piece[off:])
                    except BlockingIOError:
                        if not poller.poll(SEND_STALL_MS):
                            return sent + off  # a slow client: the loop's stream goes on
                sent += off
            return sent
        finally:
            pieces.close()
            body.close()

    async def close(self) -> None:
        self.part_buffers.clear()
        self._closed.set()
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        await asyncio.to_thread(self._senders.shutdown, wait=True)
        self.close_library()

    def close_library(self) -> None:
        """Release the library's connections (after the pool drained)."""
        return None

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the objects are, for readiness and logs (never a secret)."""

    @abc.abstractmethod
    def where(self) -> str:
        """The service's address, for start-up errors."""

    @abc.abstractmethod
    def credentials_name(self) -> str:
        """Which credentials the client uses, for start-up errors (never a secret)."""

    @abc.abstractmethod
    def namespace_name(self) -> str:
        """The bucket's / container's name."""

    @abc.abstractmethod
    async def probe(self) -> None:
        """List the prefix once (start-up check); raises ObjectStoreError."""

    # ---- the requests a store makes -----------------------------------------------------------
    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    async def put(self, key: str, body: bytes, *, if_absent: bool = False) -> bool:
        """Create or replace ``key``; with ``if_absent`` False (nothing written) when it
        existed."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; an absent key is not an error."""

    @abc.abstractmethod
    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object under ``prefix`` (full keys), all pages."""

    @abc.abstractmethod
    async def get(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody:
        """Start reading bytes ``[start, end)`` of ``key``: ObjectStoreError 404 when absent,
        416 when ``start`` is at or past its end."""

    @property
    def signs_urls(self) -> bool:
        """Whether :meth:`presign_get` can sign with these credentials (no request)."""
        return False

    async def presign_get(self, key: str, expires: int) -> str | None:
        """A URL anyone may GET ``key`` from for ``expires`` seconds, signed here (no request
        to the backend); None when these credentials cannot sign one."""
        return None

    @abc.abstractmethod
    async def compose(self, sources: list[tuple[str, int]], dest: str, *, if_absent: bool) -> bool:
        """Make ``dest`` the concatenation of ``sources`` ((key, size), in order) inside the
        store; with ``if_absent`` False (nothing written) when ``dest`` exists. ``dest``
        appears whole or not at all."""

    @abc.abstractmethod
    async def touch(self, key: str, size: int) -> None:
        """Restart ``key``'s last-modified time (GC's grace clock); absent is no error."""

    @abc.abstractmethod
    def uploader(self, key: str, on_part: Callable[[bytes], Any] | None = None) -> PartUploader:
        """A streaming write of ``key``."""

    async def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        """Unfinished uploads under ``prefix`` that hold storage (none by default)."""
        return []

    async def abort_pending(self, upload: PendingUpload) -> None:
        return None

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` and abort its unfinished uploads."""
        items = await self.list(prefix)
        await asyncio.gather(*(self.delete(o.key) for o in items))
        for up in await self.pending_uploads(prefix):
            await self.abort_pending(up)
        return len(items)


class PartUploader(abc.ABC):
    """Streams bytes into one object: held in memory up to one part, then sent as a part
    (S3 multipart part, Azure block) while the next one fills (at most ``concurrency`` parts of
    this upload in flight, and the store-wide ``part_slots``). An object smaller than one part
    is a single put at :meth:`finish`. ``on_part`` sees each part's bytes in order (hashing).

    Memory: the pieces written are kept as they came (a caller's ``bytes`` is not copied; a
    mutable buffer is) and joined once into a part of exactly the part size — one allocation
    per part, no slicing of a growing buffer — so an upload holds at most the part it fills,
    the part being joined, and ``concurrency`` parts in flight."""

    # A part's type: bytes, or a bytearray for a library that would copy a ``bytes`` body
    # again (botocore joins a bytes body to the request head before sending it).
    part_type: type[bytes] | type[bytearray] = bytes

    def __init__(
        self,
        client: ObjectClient,
        key: str,
        on_part: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.size = 0
        self._on_part = on_part
        self._pieces: collections.deque[bytes | memoryview] = collections.deque()  # not sent
        self._filled = 0  # their total size
        self._handle: str | None = None
        self._number = 0
        self._inflight: list[asyncio.Future[Any]] = []
        self._parts: list[Any] = []
        self._hashing: asyncio.Future[Any] | None = None
        self._creating: asyncio.Future[str] | None = None

    # ---- what a backend provides ----------------------------------------------------------
    @abc.abstractmethod
    async def _begin(self) -> str:
        """Start the upload; its handle."""

    @abc.abstractmethod
    async def _upload(self, handle: str, number: int, body: bytes) -> Any:
        """Send part ``number`` (from 1); what :meth:`_complete` needs of it."""

    @abc.abstractmethod
    async def _complete(self, handle: str, parts: list[Any]) -> None:
        """Make the object out of ``parts`` (in order)."""

    @abc.abstractmethod
    async def _abort_upload(self, handle: str) -> None:
        """Drop what was sent; never raises for the store."""

    # ---- the stream -------------------------------------------------------------------------
    @property
    def multipart(self) -> bool:
        return self._handle is not None

    def buffered(self) -> bytes:
        """What :meth:`write` holds that no part carries yet."""
        return b"".join(self._pieces)

    def part_size(self) -> int:
        base = self.client.settings.part_size
        return min(self.client.max_part, base << (self._number // PARTS_PER_SIZE))

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        piece = data if type(data) is bytes else bytes(data)  # the caller may reuse a buffer
        if not piece:
            return
        self.size += len(piece)
        self._pieces.append(piece)
        self._filled += len(piece)
        while self._filled >= (n := self.part_size()):
            await self._send(self._take(n))

    def _take(self, n: int) -> bytes:
        """The first ``n`` bytes written and not yet sent, as one part."""
        taken: list[bytes | memoryview] = []
        size = 0
        while size < n:
            piece = self._pieces.popleft()
            if size + len(piece) > n:  # split (no copy): the rest stays first in line
                cut = n - size
                view = memoryview(piece)
                self._pieces.appendleft(view[cut:])
                piece = view[:cut]
            taken.append(piece)
            size += len(piece)
        self._filled -= n
        if self.part_type is bytearray and (buf := self.client.part_buffers.take(n)) is not None:
            at = 0
            for piece in taken:
                buf[at : at + len(piece)] = piece
                at += len(piece)
            return buf  # type: ignore[return-value]
        return self.part_type().join(taken)

    async def _hash(self, block: bytes) -> None:
        """Feed ``block`` to ``on_part`` after the previous block (in a worker thread)."""
        if self._on_part is None:
            return
        if self._hashing is not None:
            await wait_future(self._hashing)
        self._hashing = asyncio.ensure_future(self.client.run(self._on_part, block))

    async def _send(self, part: bytes) -> None:
        await self._hash(part)
        if self._handle is None:
            # Shielded and remembered: a writer cancelled here must still find the upload to
            # abort it, or it stays in the store, invisible and billed.
            self._creating = asyncio.ensure_future(self._begin())
            self._handle = await asyncio.shield(self._creating)
        while len(self._inflight) >= self.client.settings.concurrency:
            await self._reap(asyncio.FIRST_COMPLETED)
        await self.client.part_slots.acquire()
        self._number += 1
        if self._number > self.client.max_parts:
            self.client.part_slots.release()
            raise ObjectStoreError("upload_part", "TooManyParts", 400, "too many parts")
        fut = asyncio.ensure_future(self._upload(self._handle, self._number, part))
        fut.add_done_callback(lambda _f: self.client.part_slots.release())
        if isinstance(part, bytearray):
            fut.add_done_callback(functools.partial(self._recycle, part, self._hashing))
        self._inflight.append(fut)

    def _recycle(
        self, part: bytearray, hashing: asyncio.Future[Any] | None, sent: asyncio.Future[Any]
    ) -> None:
        """Hand ``part`` back for another part once nothing reads it: its request is over (a
        cancelled one may still be on its thread: that buffer is left to the collector) and
        ``on_part`` has hashed it."""
        if sent.cancelled():
            return
        if hashing is not None and not hashing.done():
            hashing.add_done_callback(
                lambda h: None if h.cancelled() else self._recycle(part, None, sent)
            )
            return
        self.client.part_buffers.give(part)

    async def _reap(self, when: str = asyncio.ALL_COMPLETED) -> None:
        done, pending = await asyncio.wait(self._inflight, return_when=when)
        self._inflight = list(pending)
        errors = [exc for f in done if (exc := f.exception()) is not None]  # all retrieved
        self._parts += [f.result() for f in done if f.exception() is None]
        if errors:
            raise errors[0]

    async def hashed(self) -> None:
        """Wait until ``on_part`` has seen every byte written (the tail is hashed here)."""
        if self._pieces:
            await self._hash(self.buffered())
        if self._hashing is not None:
            await wait_future(self._hashing)
            self._hashing = None

    async def finish(self, *, if_absent: bool = False) -> bool:
        """Make the object whole (call :meth:`hashed` first if needed); False when
        ``if_absent`` and a single-request object already existed."""
        tail = self.buffered()
        self._pieces, self._filled = collections.deque(), 0
        if self._handle is None:
            return await self.client.put(self.key, tail, if_absent=if_absent)
        await self._finish_parts(self._handle, tail)
        self._handle = None
        return True

    async def _finish_parts(self, handle: str, tail: bytes) -> None:
        """Send ``tail`` as the last part, wait for every part, make the object."""
        if tail or not self._number:
            self._number += 1
            self._inflight.append(asyncio.ensure_future(self._upload(handle, self._number, tail)))
        if self._inflight:
            await self._reap()
        await self._complete(handle, sorted(self._parts, key=part_order))

    async def abort(self) -> None:
        """Drop what was sent (waits for parts in flight; never raises for the store)."""
        self._pieces, self._filled = collections.deque(), 0
        pending = [f for f in self._inflight if not f.done()]
        if pending:
            await asyncio.wait(pending)
        for f in self._inflight:
            if not f.cancelled():
                f.exception()
        self._inflight = []
        if self._hashing is not None:
            await asyncio.wait([self._hashing])
            self._hashing = None
        creating, self._creating = self._creating, None
        if creating is not None and self._handle is None:
            await asyncio.wait([creating])
            if not creating.cancelled() and creating.exception() is None:
                self._handle = creating.result()
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await self._abort_upload(handle)


def part_order(part: Any) -> int:
    """A part record's number: parts are ``(number, …)`` tuples or S3's ``{"PartNumber"}``."""
    if isinstance(part, dict):
        return int(part["PartNumber"])
    return int(part[0])


async def wait_future(fut: asyncio.Future[Any]) -> Any:
    """Wait for a worker job without cancelling it when we are cancelled; re-raise its error."""
    await asyncio.wait([fut])
    return fut.result()
