"""The filesystem blob store (DESIGN.md §4, §8).

Layout under ``root``::

    blobs/<algo>/<first 2 hex>/<hex>     committed blobs, named by digest
    tmp/<instance>/<random>              in-progress writes of one running store instance
    tmp/<instance>.lock                  held (flock) by that instance while it runs
    uploads/<id>                         resumable upload sessions (append-only files)

A write streams into a temporary file, hashed on the way: small writes are gathered into 1 MiB
blocks, and each block is written and hashed by worker threads in parallel (hashlib and file
I/O release the GIL), so the event loop never waits for the disk or for hashing. With fsync on,
each block's writeback starts at once (``sync_file_range``), so the disk works while the body
still streams in and the final fsync finds little left. Commit fsyncs the file, links it into
``blobs/`` (create-if-absent: of concurrent writers of the same content exactly one creates the
blob, the others see ``existed=True``) and fsyncs the directory.

Temporary files live in a per-instance directory guarded by a lock file, so a store starting on
a root that other replicas share (RWX volume) removes only the leftovers of dead instances.

Upload sessions are plain append-only files, so any replica can continue one. Appends are
serialized per session by an in-process lock and, across processes, by ``flock``. An
in-process cache of (hash state, offset) lets finalize skip re-reading the file; since session
files only grow, a cache that lags behind the file (another replica appended) is caught up by
hashing just the missing tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import re
import secrets
import select
import shutil
import socket
import stat as stat_mod
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from ..filemodes import data_file_mode, private_file_mode
from ..workqueue import WorkQueue
from .base import (
    EXTRA_HASHES,
    HEX_RE,
    UPLOAD_ID_RE,
    BlobInfo,
    BlobNotFoundError,
    BlobStat,
    BlobStore,
    BlobWriter,
    DigestMismatchError,
    SessionLocks,
    UploadNotFoundError,
    check_read_args,
    split_digest,
)

__all__ = ["FilesystemBlobStore"]

T = TypeVar("T")

# Writes are buffered up to this size, then handed to a worker thread as one block.
WRITE_BUFFER = 1 << 20
# Blocks read per pread when (re-)hashing a file from disk.
HASH_READ_BLOCK = 1 << 20
INSTANCE_RE = re.compile(r"^[0-9a-f]{16}$")
# Upper bound of cached session hash states (abandoned sessions must not grow memory forever).
MAX_CACHED_SESSIONS = 4096
# How often an append waiting for another process's session lock retries.
LOCK_POLL_SECONDS = 0.02
# Downloads sent with os.sendfile at once (each holds a thread while the client keeps up);
# more wait for nothing: they stream through the event loop instead.
SENDFILE_THREADS = 4
# A client that leaves the socket full this long gets the rest through the event loop, so a
# reader that stops never holds a sendfile thread. Long enough for a reader that is only
# descheduled for a while (20 ms fell back in half the runs on a busy 2-core machine).
SENDFILE_STALL_MS = 250
# Threads that commit blobs (last block, fsync, link, directory fsync). Concurrent fsyncs
# share the filesystem's journal commits, so several run at once.
COMMIT_THREADS = 8

Hasher = Any  # hashlib's hash objects have no public type


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):  # not Linux
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", fn)


_sync_file_range = _load_sync_file_range()
SYNC_FILE_RANGE_WRITE = 2


def _write_block(fd: int, data: bytes | bytearray, offset: int, writeback: bool) -> None:
    """Write a block; with ``writeback``, start flushing it to disk right away (Linux), so the
    fsync at commit finds little left to do: the disk works while the body still streams in."""
    _write_all(fd, data)
    if writeback and _sync_file_range is not None:
        _sync_file_range(fd, offset, len(data), SYNC_FILE_RANGE_WRITE)  # best effort


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_fd(fd: int, hashers: Iterable[Hasher], start: int, end: int) -> None:
    """Feed bytes ``[start, end)`` of an open file to every hasher (runs in a thread)."""
    hashers = list(hashers)
    pos = start
    while pos < end:
        block = os.pread(fd, min(HASH_READ_BLOCK, end - pos), pos)
        if not block:
            raise OSError(errno.EIO, f"file shorter than expected ({pos} < {end})")
        for h in hashers:
            h.update(block)
        pos += len(block)


def _flock_nb(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class FilesystemBlobStore(BlobStore):
    """Content-addressed blobs as files under ``root``."""

    def __init__(self, root: str | Path, *, fsync: bool = True) -> None:
        self.root = Path(root).absolute()
        self.fsync = fsync
        self.blobs_dir = self.root / "blobs"
        self.tmp_root = self.root / "tmp"
        self.uploads_dir = self.root / "uploads"
        self._instance: str | None = None
        self._lock_fd: int | None = None
        self._instance_guard = threading.Lock()
        self._session_hashes: dict[str, _SessionHash] = {}
        self._session_lock = SessionLocks()
        # Blob commits: handed to their threads and answered in batches (workqueue.py).
        self._commits: WorkQueue | None = None
        self._senders: ThreadPoolExecutor | None = None  # os.sendfile downloads
        self._sending = 0

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        """This instance's directory for in-progress writes."""
        if self._instance is None:
            raise RuntimeError("blob store is not open")
        return self.tmp_root / self._instance

    async def open(self) -> None:
        if self._instance is not None:
            return
        await asyncio.to_thread(self._open_sync)
        threads = ThreadPoolExecutor(COMMIT_THREADS, thread_name_prefix="zas-commit")
        self._commits = WorkQueue(threads, workers=COMMIT_THREADS, closed=_store_closed)
        self._senders = ThreadPoolExecutor(SENDFILE_THREADS, thread_name_prefix="zas-sendfile")

    def _open_sync(self) -> None:
        for d in (self.blobs_dir, self.tmp_root, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        for algo in HEX_RE:
            (self.blobs_dir / algo).mkdir(exist_ok=True)
        # Claim an instance directory: lock first, then the directory, so a directory whose lock
        # is free is always abandoned.
        while True:
            instance = secrets.token_hex(8)
            fd = self._claim_lock(instance)
            if fd is not None:
                break
        (self.tmp_root / instance).mkdir()
        self._instance, self._lock_fd = instance, fd
        self._sweep_tmp()

    def _claim_lock(self, instance: str) -> int | None:
        lock_path = self.tmp_root / f"{instance}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, private_file_mode())
        # A sweeper may have unlinked the file between our open and flock: check it is ours.
        if _flock_nb(fd) and self._same_file(fd, lock_path):
            return fd
        os.close(fd)
        return None

    def _ensure_instance_sync(self) -> Path:
        """This instance's temp directory, re-created (with its lock) if it was removed."""
        with self._instance_guard:
            instance = self._instance
            if instance is None:
                raise RuntimeError("blob store is not open")
            lock_path = self.tmp_root / f"{instance}.lock"
            if self._lock_fd is None or not self._same_file(self._lock_fd, lock_path):
                self.tmp_root.mkdir(parents=True, exist_ok=True)
                fd = self._claim_lock(instance)
                if fd is None:
                    raise OSError(errno.EAGAIN, f"cannot re-claim temp directory {instance}")
                old, self._lock_fd = self._lock_fd, fd
                if old is not None:
                    os.close(old)
            path = self.tmp_root / instance
            path.mkdir(exist_ok=True)
            return path

    @staticmethod
    def _same_file(fd: int, path: Path) -> bool:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        fst = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)

    def _sweep_tmp(self) -> None:
        """Remove what crashed or stopped instances left in ``tmp/``."""
        for entry in os.scandir(self.tmp_root):
            name = entry.name
            if name == self._instance or name == f"{self._instance}.lock":
                continue
            base = name.removesuffix(".lock")
            if INSTANCE_RE.fullmatch(base) and (
                entry.is_dir(follow_symlinks=False) or name.endswith(".lock")
            ):
                self._sweep_instance(base)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def _sweep_instance(self, instance: str) -> None:
        lock_path = self.tmp_root / f"{instance}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, private_file_mode())
        except OSError:
            return
        try:
            if not _flock_nb(fd):
                return  # a live instance (maybe another replica) owns it
            shutil.rmtree(self.tmp_root / instance, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
        finally:
            os.close(fd)

    async def close(self) -> None:
        if self._instance is None:
            return
        instance, fd = self._instance, self._lock_fd
        self._instance, self._lock_fd = None, None
        self._session_hashes.clear()

        def _close() -> None:
            shutil.rmtree(self.tmp_root / instance, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp_root / f"{instance}.lock")
            if fd is not None:
                os.close(fd)

        await asyncio.to_thread(_close)
        if self._commits is not None:
            commits, self._commits = self._commits, None
            commits.executor.shutdown(wait=False)
        if self._senders is not None:
            senders, self._senders = self._senders, None
            senders.shutdown(wait=False)

    def describe(self) -> dict[str, str]:
        return {"backend": "filesystem", "location": str(self.root)}

    async def disk_usage(self) -> tuple[int, int]:
        """(free bytes an unprivileged writer may use, total bytes) of the blobs' filesystem,
        for readiness (``storage.minFreeBytes``) and metrics."""
        usage = await asyncio.to_thread(shutil.disk_usage, self.root)
        return usage.free, usage.total

    async def check_writable(self) -> None:
        probe = self.tmp_dir / f"probe-{secrets.token_hex(8)}"

        def _probe() -> None:
            self._ensure_instance_sync()
            fd = os.open(
                probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, private_file_mode()
            )
            try:
                _write_all(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.unlink(probe)

        await asyncio.to_thread(_probe)

    # ---- paths ----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        """The file of a digest; raises ValueError on a malformed digest (never a traversal)."""
        algo, hexpart = split_digest(digest)
        return self.blobs_dir / algo / hexpart[:2] / hexpart

    def _upload_path(self, upload_id: str) -> Path:
        if not isinstance(upload_id, str) or not UPLOAD_ID_RE.fullmatch(upload_id):
            raise UploadNotFoundError(str(upload_id))
        return self.uploads_dir / upload_id

    # ---- writes ---------------------------------------------------------------------------
    async def writer(self, extra_hashes: tuple[str, ...] = ()) -> BlobWriter:
        unknown = set(extra_hashes) - set(EXTRA_HASHES)
        if unknown:
            raise ValueError(f"unsupported hash algorithm(s): {', '.join(sorted(unknown))}")
        return _FilesystemWriter(self, self.tmp_dir, extra_hashes)

    def _publish_sync(self, src: Path, digest: str) -> bool:
        """Make ``src`` visible as ``digest``; returns True when the blob already existed.

        ``src`` is consumed either way. Create-if-absent via ``link`` (so concurrent writers of
        the same content agree on who created it); ``replace`` where links are unsupported.
        """
        dest = self.blob_path(digest)
        fan = dest.parent
        if not fan.is_dir():
            fan.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                _fsync_dir(fan.parent)
        existed = False
        while True:
            try:
                os.link(src, dest)
            except FileExistsError:
                try:
                    os.utime(dest)  # dedupe: restart GC's grace period
                except FileNotFoundError:
                    continue  # deleted (GC) meanwhile: publish ours after all
                existed = True
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EOPNOTSUPP):
                    raise
                if dest.exists():
                    os.utime(dest)
                    existed = True
                else:
                    os.replace(src, dest)
                    if self.fsync:
                        _fsync_dir(fan)
                    return False
            break
        with contextlib.suppress(FileNotFoundError):
            os.unlink(src)
        if not existed and self.fsync:
            _fsync_dir(fan)
        return existed

    # ---- reads ----------------------------------------------------------------------------
    async def stat(self, digest: str) -> BlobStat | None:
        path = self.blob_path(digest)
        try:
            st = await asyncio.to_thread(os.stat, path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return BlobStat(digest=digest, size=st.st_size, mtime=st.st_mtime)

    async def read(
        self, digest: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        path = self.blob_path(digest)
        check_read_args(start, end, chunk_size)

        def _open() -> tuple[int, int, bytes]:
            """Open, size, and the first chunk: a small blob is read in this one hop."""
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                size = os.fstat(fd).st_size
                stop = size if end is None else min(end, size)
                first = os.pread(fd, min(chunk_size, stop - start), start) if start < stop else b""
                return fd, stop, first
            except BaseException:
                os.close(fd)
                raise

        try:
            fd, stop, first = await _to_thread(_open)
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFoundError(digest) from None
        pos = start
        pending: asyncio.Future[bytes] | None = None
        try:
            chunk: bytes | None = first if pos < stop else None
            while chunk is not None:
                if not chunk:
                    raise OSError(errno.EIO, f"blob {digest} shorter than expected")
                pos += len(chunk)
                # One read ahead: the next chunk is read while the consumer sends this one.
                if pos < stop:
                    pending = _to_thread(os.pread, fd, min(chunk_size, stop - pos), pos)
                yield chunk
                chunk = None
                if pending is not None:
                    chunk = await asyncio.shield(pending)  # a cancelled read must not free fd
                    pending = None
        finally:
            _close_when_idle(fd, pending)

    async def send_to_socket(self, digest: str, sock_fd: int, start: int, end: int) -> int:
        senders = self._senders
        if senders is None or self._sending >= SENDFILE_THREADS or start >= end:
            return 0  # every sender busy: the caller streams through the loop
        path = self.blob_path(digest)
        self._sending += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(
                senders, _sendfile_sync, path, sock_fd, start, end
            )
            # Not cancelled with the request: the thread still writes to the socket.
            await asyncio.wait([fut])
        finally:
            self._sending -= 1
        try:
            return fut.result()
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFoundError(digest) from None

    async def delete(self, digest: str) -> bool:
        path = self.blob_path(digest)
        try:
            await asyncio.to_thread(os.unlink, path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    async def iter_blobs(self) -> AsyncIterator[BlobStat]:
        for algo, hex_re in HEX_RE.items():
            algo_dir = self.blobs_dir / algo
            fans = await asyncio.to_thread(_list_dirs, algo_dir)
            for fan in fans:
                stats = await asyncio.to_thread(_list_blobs, algo_dir / fan, algo, hex_re)
                for item in stats:
                    yield item

    # ---- upload sessions ------------------------------------------------------------------
    async def upload_create(self) -> str:
        upload_id = secrets.token_hex(16)
        path = self._upload_path(upload_id)

        def _create() -> None:
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, data_file_mode()
            )
            os.close(fd)
            if self.fsync:
                _fsync_dir(self.uploads_dir)

        await asyncio.to_thread(_create)
        self._cache_put(upload_id, _SessionHash())
        return upload_id

    async def upload_size(self, upload_id: str) -> int:
        path = self._upload_path(upload_id)
        try:
            st = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            raise UploadNotFoundError(upload_id) from None
        return st.st_size

    def _cache_put(self, upload_id: str, state: _SessionHash) -> None:
        self._session_hashes.pop(upload_id, None)
        self._session_hashes[upload_id] = state
        while len(self._session_hashes) > MAX_CACHED_SESSIONS:
            del self._session_hashes[next(iter(self._session_hashes))]

    async def _lock_session_file(self, upload_id: str, flags: int) -> int:
        """Open a session file and take its cross-process lock; returns the fd."""
        path = self._upload_path(upload_id)
        fut = _to_thread(os.open, path, flags | os.O_CLOEXEC)
        try:
            fd = await asyncio.shield(fut)
        except FileNotFoundError:
            raise UploadNotFoundError(upload_id) from None
        except BaseException:
            fut.add_done_callback(lambda f: None if f.exception() else os.close(f.result()))
            raise
        try:
            # Held only by another process (in-process appends queue on the asyncio lock).
            while True:
                if _flock_nb(fd):  # LOCK_NB never blocks: no thread needed
                    break
                await asyncio.sleep(LOCK_POLL_SECONDS)
            # Finalized or aborted (the inode maybe now a blob) while we waited for the lock?
            if not await asyncio.to_thread(self._same_file, fd, path):
                raise UploadNotFoundError(upload_id)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _session_state(self, upload_id: str) -> _SessionHash:
        state = self._session_hashes.get(upload_id)
        if state is None:
            state = _SessionHash()
            self._cache_put(upload_id, state)
        return state

    async def upload_append(self, upload_id: str, chunks: AsyncIterator[bytes]) -> int:
        self._upload_path(upload_id)
        async with self._session_lock(upload_id):
            fd = await self._lock_session_file(upload_id, os.O_RDWR | os.O_APPEND)
            jobs: list[asyncio.Future[Any]] = []
            state = self._session_state(upload_id)
            start: int | None = None
            try:
                jobs = [_to_thread(state.catch_up, fd)]
                size: int = await _wait_all(jobs)
                start = size
                buf = bytearray()
                # Like a writer: one block in worker threads (its write and its hash in
                # parallel) while the next one is received.
                async for chunk in chunks:
                    buf += chunk
                    if len(buf) >= WRITE_BUFFER:
                        await _wait_all(jobs)
                        jobs = self._append_jobs(fd, state, buf, size)
                        size += len(buf)
                        buf = bytearray()
                await _wait_all(jobs)
                if buf:
                    jobs = self._append_jobs(fd, state, buf, size)
                    size += len(buf)
                    await _wait_all(jobs)
                if self.fsync:
                    jobs = [_to_thread(os.fsync, fd)]
                    await _wait_all(jobs)
                state.offset = size
                return size
            except BaseException as exc:
                # The cached hash may now cover bytes the file lacks (or the reverse):
                # forget it; finalize re-hashes from disk.
                if self._session_hashes.get(upload_id) is state:
                    del self._session_hashes[upload_id]
                # Return only once the bytes that will land have landed, so a client asking
                # for the size to resume gets the final one.
                pending = [f for f in jobs if not f.done()]
                if pending:
                    await asyncio.wait(pending)
                full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
                if full and start is not None:
                    # The disk is full: give back what this append took, so the session
                    # stays as it was before (the client resumes from there).
                    await asyncio.to_thread(os.ftruncate, fd, start)
                raise
            finally:
                _close_when_idle(fd, jobs)  # closing releases the flock

    def _append_jobs(
        self, fd: int, state: _SessionHash, block: bytearray, offset: int
    ) -> list[asyncio.Future[Any]]:
        # O_APPEND and the session locks put the block at ``offset`` (the file's end).
        return [
            _to_thread(_write_block, fd, block, offset, self.fsync),
            _to_thread(state.sha256.update, block),
        ]

    async def upload_finalize(self, upload_id: str, expected_digest: str | None = None) -> BlobInfo:
        path = self._upload_path(upload_id)
        algo = split_digest(expected_digest)[0] if expected_digest is not None else "sha256"
        async with self._session_lock(upload_id):
            fd = await self._lock_session_file(upload_id, os.O_RDONLY)
            state = self._session_state(upload_id)

            def _finalize() -> BlobInfo:
                size = state.catch_up(fd)
                hashes = {"sha256": state.sha256.copy().hexdigest()}
                if algo == "sha512":
                    h512 = hashlib.sha512()
                    _hash_fd(fd, [h512], 0, size)
                    hashes["sha512"] = h512.hexdigest()
                digest = f"{algo}:{hashes[algo]}"
                if expected_digest is not None and digest != expected_digest:
                    raise DigestMismatchError(expected_digest, digest)
                if self.fsync:
                    os.fsync(fd)
                existed = self._publish_sync(path, digest)
                return BlobInfo(digest=digest, size=size, hashes=hashes, existed=existed)

            fut = _to_thread(_finalize)
            try:
                await asyncio.shield(fut)
            finally:
                _close_when_idle(fd, fut)
            self._session_hashes.pop(upload_id, None)
            return fut.result()

    async def upload_abort(self, upload_id: str) -> bool:
        try:
            path = self._upload_path(upload_id)
        except UploadNotFoundError:
            return False
        self._session_hashes.pop(upload_id, None)
        try:
            await asyncio.to_thread(os.unlink, path)
        except FileNotFoundError:
            return False
        return True

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        def _list() -> list[tuple[str, float]]:
            out = []
            with os.scandir(self.uploads_dir) as it:
                for entry in it:
                    if not UPLOAD_ID_RE.fullmatch(entry.name):
                        continue
                    try:
                        out.append((entry.name, entry.stat(follow_symlinks=False).st_mtime))
                    except FileNotFoundError:
                        continue
            return out

        for item in await asyncio.to_thread(_list):
            yield item


def _sendfile_sync(path: Path, sock_fd: int, start: int, end: int) -> int:
    """Send ``[start, end)`` of the file at ``path`` to the non-blocking socket ``sock_fd``
    until done, or until the client leaves the socket full for ``SENDFILE_STALL_MS``; returns
    the bytes sent (a connection error is raised)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = min(end, os.fstat(fd).st_size)
        poller = select.poll()
        poller.register(sock_fd, select.POLLOUT)
        pos = start
        while pos < end:
            try:
                n = os.sendfile(sock_fd, fd, pos, end - pos)
            except BlockingIOError:
                # A sendfile cut short by a full socket leaves its last segment corked (the
                # kernel was told more follows): push it, or the reader waits for the 200 ms
                # cork timer while we wait for room.
                _push(sock_fd)
                if not poller.poll(SENDFILE_STALL_MS):
                    break
                continue
            if n == 0:  # the file ended early (cannot happen to a blob): the caller sees it
                break
            pos += n
        return pos - start
    finally:
        os.close(fd)


def _push(sock_fd: int) -> None:
    """Send what the socket holds back (setting TCP_NODELAY pushes pending segments)."""
    sock = socket.socket(fileno=sock_fd)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not TCP (a Unix socket): nothing is corked
        pass
    finally:
        sock.detach()  # the connection's socket stays open: it is Tornado's


def _list_dirs(path: Path) -> list[str]:
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


def _list_blobs(fan: Path, algo: str, hex_re: re.Pattern[str]) -> list[BlobStat]:
    out = []
    try:
        with os.scandir(fan) as it:
            for entry in it:
                if not hex_re.fullmatch(entry.name) or entry.name[:2] != fan.name:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted meanwhile
                if stat_mod.S_ISREG(st.st_mode):
                    out.append(BlobStat(f"{algo}:{entry.name}", st.st_size, st.st_mtime))
    except FileNotFoundError:
        pass
    return out


class _SessionHash:
    """sha256 state of a session file's first ``offset`` bytes (files only grow)."""

    __slots__ = ("offset", "sha256")

    def __init__(self) -> None:
        self.sha256: Hasher = hashlib.sha256()
        self.offset = 0

    def catch_up(self, fd: int) -> int:
        """Hash whatever the file has beyond ``offset`` (another replica's appends); → size."""
        size = os.fstat(fd).st_size
        if size < self.offset:  # cannot happen to an append-only file; be safe anyway
            self.sha256, self.offset = hashlib.sha256(), 0
        if size > self.offset:
            _hash_fd(fd, [self.sha256], self.offset, size)
            self.offset = size
        return size


class _FilesystemWriter(BlobWriter):
    """One streaming write into a temporary file (see the module docstring).

    At most one block is in a worker thread at a time (blocks are written and hashed in
    order) while the event loop fills the next buffer. The temporary file is created by the
    first block, so a small blob costs a single thread hop, at commit.
    """

    def __init__(self, store: FilesystemBlobStore, tmp_dir: Path, extra: tuple[str, ...]) -> None:
        self._store = store
        self._tmp_dir = tmp_dir
        self._path: Path | None = None
        self._fd: int | None = None
        self._hashers: dict[str, Hasher] = {"sha256": hashlib.sha256()}
        for name in extra:
            self._hashers.setdefault(name, hashlib.new(name))
        self._buf = bytearray()
        self._size = 0
        self._submitted = 0  # bytes handed to worker threads
        # Worker jobs of the block in flight (its write and one per hash), or of the commit.
        self._inflight: list[asyncio.Future[Any]] = []
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise RuntimeError("write after commit or abort")
        n = data.nbytes if isinstance(data, memoryview) else len(data)
        if not n:
            return
        if not self._buf and n >= WRITE_BUFFER and isinstance(data, bytes):
            await self._submit(data)  # immutable: handed over without a copy
        else:
            self._buf += data
            if len(self._buf) >= WRITE_BUFFER:
                await self._submit(self._buf)
                self._buf = bytearray()
        self._size += n

    async def _wait(self) -> None:
        """Wait for the jobs in flight (never cancelling them); re-raise their error."""
        futs = self._inflight
        if not futs:
            return
        await asyncio.wait(futs)  # being cancelled here does not cancel the jobs
        self._inflight = []
        for f in futs:
            if (exc := f.exception()) is not None:
                raise exc

    async def _submit(self, block: bytes | bytearray) -> None:
        """Hand a block to worker threads: the file write and each hash run in parallel
        (they release the GIL); blocks stay in order since one block is in flight at a time."""
        await self._wait()
        if self._fd is None:
            self._submitted += len(block)
            self._inflight = [_to_thread(self._flush_sync, block, True)]
            return
        fd, offset = self._fd, self._submitted
        self._submitted += len(block)
        self._inflight = [_to_thread(_write_block, fd, block, offset, self._store.fsync)]
        self._inflight += [_to_thread(h.update, block) for h in self._hashers.values()]

    def _flush_sync(self, block: bytes | bytearray, first: bool = False) -> None:
        """Write and hash a block serially (the first block, creating the file; the last)."""
        if self._fd is None:
            path = self._tmp_dir / secrets.token_hex(16)
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            try:
                self._fd = os.open(path, flags, data_file_mode())
            except FileNotFoundError:  # temp directory removed under us (operator, cleanup)
                self._store._ensure_instance_sync()
                self._fd = os.open(path, flags, data_file_mode())
            self._path = path
        _write_block(self._fd, block, 0, first and self._store.fsync)
        for h in self._hashers.values():
            h.update(block)

    async def commit(self, expected_digest: str | None = None) -> BlobInfo:
        if self._done:
            raise RuntimeError("commit after commit or abort")
        algo = split_digest(expected_digest)[0] if expected_digest is not None else "sha256"
        self._done = True
        try:
            await self._wait()
            block, self._buf = self._buf, bytearray()
            commits = self._store._commits
            if commits is None:
                raise RuntimeError("blob store is not open")
            # A small blob's only thread hop: queued with the other commits (workqueue.py).
            fut = commits.submit(self._commit_sync, (block, algo, expected_digest))
            self._inflight = [fut]
            await asyncio.wait([fut])
            self._inflight = []
            return fut.result()
        except BaseException:
            await self._discard()
            raise

    def _commit_sync(self, block: bytearray, algo: str, expected: str | None) -> BlobInfo:
        self._flush_sync(block)  # also creates the file of an empty or small blob
        assert self._fd is not None and self._path is not None
        if algo not in self._hashers:  # sha512 expected but not computed on the way
            h = hashlib.new(algo)
            _hash_fd(self._fd, [h], 0, self._size)
            self._hashers[algo] = h
        hashes = {name: h.hexdigest() for name, h in self._hashers.items()}
        digest = f"{algo}:{hashes[algo]}"
        if expected is not None and digest != expected:
            raise DigestMismatchError(expected, digest)
        if self._store.fsync:
            os.fsync(self._fd)
        fd, self._fd = self._fd, None
        os.close(fd)
        existed = self._store._publish_sync(self._path, digest)
        self._path = None
        return BlobInfo(digest=digest, size=self._size, hashes=hashes, existed=existed)

    async def abort(self) -> None:
        self._done = True
        await self._discard()

    async def _discard(self) -> None:
        self._buf = bytearray()
        futs, self._inflight = self._inflight, []
        if futs:
            try:
                await asyncio.wait(futs)
            except BaseException:
                # Cancelled while workers still use the file: clean up once they are done.
                done = asyncio.gather(*futs, return_exceptions=True)
                done.add_done_callback(lambda _f: self._discard_sync())
                raise
            for f in futs:
                _retrieve(f)
        if self._fd is not None or self._path is not None:
            await asyncio.to_thread(self._discard_sync)

    def _discard_sync(self) -> None:
        fd, path = self._fd, self._path
        self._fd, self._path = None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _store_closed() -> Exception:
    return RuntimeError("blob store is closed")


def _to_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``fn`` in the default executor; the future is not tied to the calling task."""
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a finished future's exception as seen (it was reported another way)."""
    if not fut.cancelled():
        fut.exception()


async def _wait_all(jobs: list[asyncio.Future[Any]]) -> Any:
    """Wait for worker jobs without cancelling them (even when we are cancelled); re-raise
    the first error, else return the first job's result."""
    if not jobs:
        return None
    await asyncio.wait(jobs)
    for f in jobs:
        if (exc := f.exception()) is not None:
            raise exc
    return jobs[0].result()


def _close_when_idle(fd: int, jobs: asyncio.Future[Any] | list[asyncio.Future[Any]] | None) -> None:
    """Close ``fd`` now, or once the workers still using it are done (fds are reused)."""
    pending = [jobs] if isinstance(jobs, asyncio.Future) else list(jobs or ())
    pending = [f for f in pending if not f.done()]
    for f in pending:
        f.add_done_callback(_retrieve)
    if pending:
        asyncio.gather(*pending, return_exceptions=True).add_done_callback(lambda _: os.close(fd))
    else:
        os.close(fd)
