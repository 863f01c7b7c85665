"""The free-space policy: which writes are refused, with what, and what counts as a full
disk. (A real full disk, through every API: tests/integration/test_disk_full.py.)"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from zot_artifact_store.config import StorageConfig
from zot_artifact_store.errors import StoreError
from zot_artifact_store.services.space import (
    MEASURED_S,
    StorageSpace,
    out_of_space,
    reserve_bytes,
)

GiB = 1 << 30


class Disk:
    """A blob store's ``disk_usage``, counting how often it is measured."""

    def __init__(self, free: int, total: int = 100 * GiB) -> None:
        self.free, self.total, self.measured = free, total, 0

    async def disk_usage(self) -> tuple[int, int]:
        self.measured += 1
        return self.free, self.total


def space(disk: object, **storage: float) -> tuple[StorageSpace, list[float]]:
    now = [0.0]
    return StorageSpace(disk, StorageConfig(**storage), clock=lambda: now[0]), now  # type: ignore[arg-type]


def test_the_reserve_is_the_larger_of_bytes_and_percent() -> None:
    assert reserve_bytes(StorageConfig(minFreeBytes=100, minFreePercent=0), 10_000) == 100
    assert reserve_bytes(StorageConfig(minFreeBytes=100, minFreePercent=5), 10_000) == 500


async def test_writes_that_do_not_fit_or_eat_the_reserve_are_refused() -> None:
    guard, _ = space(Disk(free=10 * GiB), minFreeBytes=GiB)
    await guard.check_write(9 * GiB)  # leaves exactly the reserve
    await guard.check_write(None)
    with pytest.raises(StoreError) as refused:
        await guard.check_write(9 * GiB + 1)
    assert refused.value.code == "InsufficientStorage" and refused.value.status == 507
    assert refused.value.headers["Retry-After"] == "60"
    assert "nearly full" in refused.value.message
    with pytest.raises(StoreError) as refused:
        await guard.check_write(11 * GiB)
    assert "is larger than the storage's free space" in refused.value.message


async def test_below_the_reserve_even_an_undeclared_length_is_refused() -> None:
    guard, _ = space(Disk(free=GiB // 2), minFreeBytes=GiB)
    with pytest.raises(StoreError):
        await guard.check_write(None)


async def test_a_recent_measurement_serves_roomy_writes_only() -> None:
    disk = Disk(free=50 * GiB)
    guard, now = space(disk, minFreeBytes=GiB)
    await guard.check_write(1000)
    await guard.check_write(1000)
    assert disk.measured == 1  # far from the reserve: measured once
    await guard.check_write(48 * GiB + 1)  # within 1 GiB of the reserve: measured afresh
    assert disk.measured == 2
    disk.free = GiB  # another process filled the disk
    now[0] += MEASURED_S
    with pytest.raises(StoreError):
        await guard.check_write(1000)


async def test_an_object_store_has_no_disk_to_check() -> None:
    guard, _ = space(object(), minFreeBytes=GiB)
    await guard.check_write(10**15)
    assert await guard.usage() is None


def test_what_counts_as_a_full_disk(tmp_path: Path) -> None:
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not out_of_space(OSError(errno.EIO, "I/O error"))
    assert not out_of_space(ValueError("x"))
    assert not out_of_space(None)
    wrapped = RuntimeError("publishing failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert out_of_space(wrapped)
    # SQLite's own "database or disk is full", raised by the real library.
    db = sqlite3.connect(tmp_path / "m.db")
    db.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.Error) as full:
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)
        db.commit()
    assert out_of_space(full.value)
    db.close()
