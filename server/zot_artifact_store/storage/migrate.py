"""Copy every committed blob of one store into another, by digest (``zot-artifact-store
storage migrate --to CONFIG``): how a filesystem store moves to an object store.

- **Streaming**: each blob is read in chunks from the source and written through the target's
  own streaming writer; no blob is held whole in memory (at most ``jobs`` copies at once, each
  holding what the target's writer buffers: on an object store the part it fills, plus the
  store-wide parts in flight).
- **Verified while writing**: the target's writer hashes the bytes it stores and the commit
  names the digest they must have, so a blob whose bytes no longer match their name (a corrupt
  source file) is refused by the target, reported, and nothing is published under its digest.
- **Resumable**: a blob the target already holds with the right size is skipped. The target
  publishes a blob under its digest only after checking that digest, so what is there is
  complete; a run interrupted part-way leaves at most temporaries of the target's writer,
  which the target removes (object stores: when the dead run's lease expires, or at GC).
- Upload sessions in flight (S3 multipart parts not yet completed are blobs and do move; OCI
  chunked and ``/v1`` resumable sessions do not) are not migrated: clients restart them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from .base import BlobNotFoundError, BlobStat, BlobStore, DigestMismatchError, split_digest

__all__ = ["MigrationReport", "migrate_blobs"]

PROGRESS_EVERY = 5.0  # seconds between progress reports
CHUNK = 1 << 20


@dataclass
class MigrationReport:
    blobs_seen: int = 0
    copied: int = 0
    skipped: int = 0  # already at the target with the right size
    failed: int = 0
    vanished: int = 0  # listed, then gone from the source before it was read (GC)
    bytes_copied: int = 0
    bytes_skipped: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))

    def progress(self) -> str:
        return (
            f"{self.blobs_seen} blobs seen: {self.copied} copied "
            f"({_size(self.bytes_copied)}), {self.skipped} skipped, {self.failed} failed"
        )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover


async def _copy(source: BlobStore, target: BlobStore, blob: BlobStat) -> int:
    """Stream one blob into the target, its digest checked at commit; the bytes written."""
    algo = split_digest(blob.digest)[0]
    writer = await target.writer(extra_hashes=("sha512",) if algo == "sha512" else ())
    try:
        async for chunk in source.read(blob.digest, chunk_size=CHUNK):
            await writer.write(chunk)
        info = await writer.commit(blob.digest)
    except BaseException:
        await writer.abort()
        raise
    return info.size


async def migrate_blobs(
    source: BlobStore,
    target: BlobStore,
    *,
    jobs: int = 4,
    report: Callable[[str], None] = lambda line: None,
) -> MigrationReport:
    """Copy what ``target`` lacks of ``source``'s blobs, ``jobs`` at a time. ``report`` gets
    one line per failure and a progress line every few seconds."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    result = MigrationReport()
    started = last = time.monotonic()
    queue: asyncio.Queue[BlobStat | None] = asyncio.Queue(maxsize=jobs * 4)

    def tick() -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            report(f"progress: {result.progress()}")

    def fail(digest: str, error: str) -> None:
        result.failed += 1
        result.failures.append({"digest": digest, "error": error})
        report(f"FAILED {digest}: {error}")

    async def one(blob: BlobStat) -> None:
        there = await target.stat(blob.digest)
        if there is not None and there.size == blob.size:
            result.skipped += 1
            result.bytes_skipped += blob.size
            return
        try:
            size = await _copy(source, target, blob)
        except BlobNotFoundError:
            result.vanished += 1  # deleted by the source's GC since it was listed
            return
        except DigestMismatchError as exc:
            fail(blob.digest, f"the source's bytes hash to {exc.actual}: corrupt, not copied")
            return
        if size != blob.size:  # grew or shrank between listing and reading: not a blob's way
            fail(blob.digest, f"listed with {blob.size} bytes, read {size}")
            return
        result.copied += 1
        result.bytes_copied += size

    async def worker() -> None:
        while (blob := await queue.get()) is not None:
            try:
                await one(blob)
            except Exception as exc:  # a backend error: this blob fails, the run goes on
                fail(blob.digest, f"{type(exc).__name__}: {exc}")
            tick()

    workers = [asyncio.create_task(worker()) for _ in range(jobs)]
    try:
        blobs: AsyncIterator[BlobStat] = source.iter_blobs()
        async for blob in blobs:
            result.blobs_seen += 1
            await queue.put(blob)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*workers, return_exceptions=True)
    result.seconds = round(time.monotonic() - started, 3)
    return result
