"""The content-addressed blob store interface (DESIGN.md §4).

Every byte the server keeps is a blob named by its digest (``sha256:<hex>``; ``sha512:<hex>``
is accepted where OCI needs it). Writes stream: bytes are hashed while written to a temporary
location and only become visible, atomically, under their digest once complete. Readers never
see partial blobs; identical content is stored once.

Every backend (filesystem now; S3, Azure, GCS later) must pass ``tests/contract/test_blobstore.py``.
"""

from __future__ import annotations

import abc
import asyncio
import re
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
HEX_RE = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "sha512": re.compile(r"^[0-9a-f]{128}$")}
# Upload session ids the stores issue: 32 lowercase hex characters; nothing else is accepted.
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
SUPPORTED_ALGORITHMS = ("sha256", "sha512")
# Extra hashes a writer can compute on the way (S3 ETag needs md5).
EXTRA_HASHES = ("md5", "sha1", "sha512")


def is_digest(value: str) -> bool:
    return bool(DIGEST_RE.fullmatch(value))


def split_digest(digest: str) -> tuple[str, str]:
    """``sha256:abc…`` → (``sha256``, ``abc…``); raises ValueError on a malformed digest."""
    if not is_digest(digest):
        raise ValueError(f"malformed digest {digest!r}")
    algo, _, hexpart = digest.partition(":")
    return algo, hexpart


# Called after each backend request: (backend, operation, outcome "ok" or an error code,
# seconds, bytes sent, bytes received).
StorageObserver = Callable[[str, str, str, float, int, int], None]


def check_read_args(start: int, end: int | None, chunk_size: int) -> None:
    """What every :meth:`BlobStore.read` refuses before touching storage."""
    if start < 0 or (end is not None and end < 0):
        raise ValueError("negative range bound")
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")


class SessionLocks:
    """One asyncio lock per upload session id, serialising a process's operations on it;
    forgotten when no one holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[upload_id] = lock
        return lock


class DigestMismatchError(Exception):
    """The written content's digest differs from the one the caller expected."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"digest mismatch: expected {expected}, got {actual}")


class BlobNotFoundError(Exception):
    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__(f"blob not found: {digest}")


class StorageUnavailableError(Exception):
    """The configured storage cannot be used (bucket missing, credentials refused, endpoint
    unreachable); the message says which, for the operator."""


class StorageBackendError(OSError):
    """The storage backend failed a request. ``retryable`` when the same request may succeed
    later (backend unreachable, 5xx, throttled, circuit open): the APIs answer 503."""

    retryable: bool = False


class UploadNotFoundError(Exception):
    def __init__(self, upload_id: str) -> None:
        self.upload_id = upload_id
        super().__init__(f"upload session not found: {upload_id}")


@dataclass(frozen=True)
class BlobInfo:
    """What is known of a committed blob."""

    digest: str  # the canonical digest, "sha256:<hex>" unless a sha512 was requested
    size: int
    # Every digest computed while writing, keyed by algorithm ("sha256", "md5", ...) → hex.
    hashes: dict[str, str] = field(default_factory=dict)
    # True when the content was already present (dedupe): nothing new was written.
    existed: bool = False

    @property
    def sha256(self) -> str:
        return self.hashes["sha256"]


@dataclass(frozen=True)
class BlobStat:
    digest: str
    size: int
    mtime: float  # seconds since the epoch: last write or dedupe touch; GC's grace clock


class BlobWriter(abc.ABC):
    """A streaming write. Feed chunks with :meth:`write`, then :meth:`commit` or :meth:`abort`.

    Nothing is visible to readers until ``commit`` returns. ``abort`` (or a crash) leaves no
    trace that survives the next start.
    """

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes written so far."""

    @abc.abstractmethod
    async def write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    async def commit(self, expected_digest: str | None = None) -> BlobInfo:
        """Make the blob visible under its digest.

        When ``expected_digest`` is given (sha256 or sha512) and does not match, the temporary
        content is discarded and :class:`DigestMismatchError` raised.
        """

    @abc.abstractmethod
    async def abort(self) -> None: ...


class BlobStore(abc.ABC):
    """Content-addressed blob storage."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Prepare the store (create layout, remove orphaned temporary files)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def writer(self, extra_hashes: tuple[str, ...] = ()) -> BlobWriter:
        """Start a streaming write; ``extra_hashes`` ⊆ :data:`EXTRA_HASHES` are computed too."""

    async def put_bytes(self, data: bytes, expected_digest: str | None = None) -> BlobInfo:
        """Convenience for small blobs (manifests, signatures)."""
        w = await self.writer()
        try:
            await w.write(data)
            return await w.commit(expected_digest)
        except BaseException:
            await w.abort()
            raise

    @abc.abstractmethod
    async def stat(self, digest: str) -> BlobStat | None:
        """Size and mtime of a blob, or None when absent."""

    async def exists(self, digest: str) -> bool:
        return await self.stat(digest) is not None

    @abc.abstractmethod
    def read(
        self, digest: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of a blob (``end`` None = to the end).

        Raises :class:`BlobNotFoundError` on first iteration when the blob is absent.
        """

    async def send_to_socket(self, digest: str, sock_fd: int, start: int, end: int) -> int:
        """Send bytes ``[start, end)`` of a blob straight to a connected, non-blocking socket
        (``os.sendfile``: no copy through the process), as far as it goes quickly; returns how
        many bytes went. The caller streams the rest with :meth:`read`. A backend without
        files sends nothing (0), which is always correct."""
        return 0

    @property
    def signs_urls(self) -> bool:
        """Whether :meth:`presign` gives URLs here (this backend, these credentials)."""
        return False

    async def presign(self, digest: str, expires: int) -> str | None:
        """A URL that lets whoever holds it GET the blob's bytes straight from the backend for
        ``expires`` seconds (the caller has authorized the reader), or None when this backend
        gives none (the filesystem; credentials that cannot sign): then the caller streams
        the bytes itself. Raises :class:`BlobNotFoundError` when the blob is absent."""
        return None

    async def read_all(self, digest: str) -> bytes:
        """Convenience for small blobs."""
        parts = [chunk async for chunk in self.read(digest)]
        return b"".join(parts)

    @abc.abstractmethod
    async def delete(self, digest: str) -> bool:
        """Remove a blob; True when it existed."""

    @abc.abstractmethod
    def iter_blobs(self) -> AsyncIterator[BlobStat]:
        """Every committed blob, for garbage collection (order unspecified)."""

    # ---- resumable upload sessions (S3 multipart parts, OCI chunked uploads) -----------------
    # Sessions live in storage, not in process memory, so any replica can continue one.

    @abc.abstractmethod
    async def upload_create(self) -> str:
        """Start an upload session; returns its id (opaque, URL-safe)."""

    @abc.abstractmethod
    async def upload_size(self, upload_id: str) -> int:
        """Bytes received so far; raises :class:`UploadNotFoundError`."""

    @abc.abstractmethod
    async def upload_append(self, upload_id: str, chunks: AsyncIterator[bytes]) -> int:
        """Append a stream of chunks at the current end; returns the new size."""

    @abc.abstractmethod
    async def upload_finalize(self, upload_id: str, expected_digest: str | None = None) -> BlobInfo:
        """Turn the session's bytes into a committed blob (digest checked), ending the session.

        On mismatch the session is kept (the client may retry or cancel) and
        :class:`DigestMismatchError` raised.
        """

    @abc.abstractmethod
    async def upload_abort(self, upload_id: str) -> bool:
        """Drop a session; True when it existed."""

    @abc.abstractmethod
    def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        """Every open session as (id, mtime), for cleaning abandoned ones."""

    @abc.abstractmethod
    async def check_writable(self) -> None:
        """Raise when the store cannot accept writes (readiness probe)."""

    async def collect_leftovers(self, cutoff: float) -> int:
        """Remove what crashed writers left that :meth:`open` does not (backend temporaries
        begun before ``cutoff``, seconds since the epoch); returns how many. Garbage
        collection calls it. The filesystem has none: its temporaries go at open."""
        return 0

    def set_observer(self, observer: StorageObserver) -> None:
        """Report each backend request to ``observer`` (metrics). Stores that make no remote
        requests ignore it."""
        return None

    def describe(self) -> dict[str, str]:
        """Which backend and where, for readiness and logs (never a secret)."""
        return {"backend": type(self).__name__}
