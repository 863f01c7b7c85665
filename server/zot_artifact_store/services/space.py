"""Free space on the blobs' filesystem: the reserve, the refusal of writes that would eat into
it, and what a full disk looks like to a client.

The reserve (``storage.minFreeBytes`` / ``minFreePercent``, the larger of the two) is what
``/health/ready`` guards and what blob writes may not take: an object body, an upload part or
an OCI blob upload is refused before its body is read when its declared length (0 when not
declared) would leave less free space than the reserve, or is larger than the free space
itself. Small writes (metadata, manifests, evidence, deletes) may still use the reserve, so the
store stays manageable while it is full. A write that runs out of space anyway (concurrent
uploads, another process filling the disk) fails with ``ENOSPC``; :func:`out_of_space`
recognises it and :func:`insufficient_storage` is the error every API answers with.
Object stores (``storage.storageDriver``) have no disk: nothing is checked.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import StorageConfig
from ..errors import StoreError
from ..storage import BlobStore

# Seconds a client is asked to wait before retrying a write refused for want of space.
RETRY_AFTER_S = 60
# A measurement this recent answers the check of a write that leaves at least
# ``ROOMY_BYTES`` above the reserve (a statvfs per small PUT costs a thread hop); near the
# reserve every check measures afresh.
MEASURED_S = 0.1
ROOMY_BYTES = 1 << 30
# ``errno`` values of a full filesystem or an exhausted quota.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13


@dataclass(frozen=True)
class SpaceUsage:
    free: int
    total: int
    reserve: int


def reserve_bytes(storage: StorageConfig, total: int) -> int:
    """The free-space reserve of a filesystem of ``total`` bytes."""
    return max(storage.minFreeBytes, int(total * storage.minFreePercent / 100))


def out_of_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk: ``ENOSPC``/``EDQUOT``, or SQLite's
    "database or disk is full"."""
    seen = 0
    while exc is not None and seen < 4:
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == (
            _SQLITE_FULL
        ):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def insufficient_storage(message: str) -> StoreError:
    """The error of a write refused (or cut short) for want of space, with ``Retry-After``."""
    return StoreError(
        "InsufficientStorage",
        f"{message}; nothing was stored. Retry later, once space is freed",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class StorageSpace:
    """The free-space policy of one blob store."""

    def __init__(
        self, blobs: BlobStore, storage: StorageConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.blobs = blobs
        self.storage = storage
        self.clock = clock
        self._measured: tuple[float, SpaceUsage] | None = None
        # The measurement in flight: concurrent writes that find the last one stale share it
        # (one statvfs thread hop, not one per waiting request).
        self._measuring: asyncio.Future[SpaceUsage | None] | None = None

    async def usage(self) -> SpaceUsage | None:
        """Free and total bytes of the blobs' filesystem and its reserve; None for a backend
        without a disk (an object store)."""
        disk_usage = getattr(self.blobs, "disk_usage", None)
        if disk_usage is None:
            return None
        free, total = await disk_usage()
        return SpaceUsage(free, total, reserve_bytes(self.storage, total))

    def _measured_now(self, fut: asyncio.Future[SpaceUsage | None]) -> None:
        self._measuring = None
        if not fut.cancelled():
            fut.exception()  # seen: each waiter re-raises it

    async def check_write(self, size: int | None) -> None:
        """Refuse (``InsufficientStorage``) a blob write of ``size`` bytes (None: not
        declared) that does not fit, or would leave less than the reserve free."""
        needed = size or 0
        now = self.clock()
        if self._measured is not None:
            at, last = self._measured
            if now - at < MEASURED_S and last.free - needed - last.reserve >= ROOMY_BYTES:
                return
        if self._measuring is None:
            self._measuring = asyncio.ensure_future(self.usage())
            self._measuring.add_done_callback(self._measured_now)
        usage = await asyncio.shield(self._measuring)
        if usage is None:
            return
        self._measured = (now, usage)
        if needed > usage.free:
            raise insufficient_storage(
                f"the body ({needed} bytes) is larger than the storage's free space "
                f"({usage.free} bytes)"
            )
        if usage.free - needed < usage.reserve:
            raise insufficient_storage(
                f"the storage is nearly full: {usage.free} bytes free, and writes must leave "
                f"{usage.reserve} bytes (storage.minFreeBytes / minFreePercent)"
            )
