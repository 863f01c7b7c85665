"""Mark-and-sweep garbage collection of blobs (DESIGN.md §4).

Mark: every digest the metadata references. Sweep: every blob not marked whose last write
(or dedupe touch) is older than ``storage.gcDelay``, so a blob written by an upload still in
flight — not yet referenced — is never collected. Abandoned upload sessions older than the
delay go too, and first the multipart uploads and OCI uploads past ``storage.uploadRetention``
(or their bucket's AbortIncompleteMultipartUpload rule; services/lifecycle.py), so their part
blobs are collected in the same run. OCI manifests (and every blob they reference) are marked
too; later issues add their references (attachments) the same way. With
``storage.untaggedRetention`` set, untagged manifests nothing refers to are removed first, so
their blobs can go in the same run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..config import StorageConfig
from ..metadata import SUPPLYCHAIN_GENERATION, MetadataStore
from ..observability.metrics import Metrics
from ..storage import BlobStore
from .lifecycle import Lifecycle

log = logging.getLogger(__name__)

# A source of referenced digests; services register theirs.
ReferenceSource = Callable[[], Awaitable[set[str]]]


@dataclass
class GCReport:
    blobs_seen: int = 0
    blobs_referenced: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    blobs_too_young: int = 0
    uploads_deleted: int = 0
    manifests_deleted: int = 0
    multipart_uploads_aborted: int = 0  # past storage.uploadRetention (or a bucket's rule)
    registry_uploads_aborted: int = 0
    leftovers_removed: int = 0  # backend temporaries crashed writers left (object stores)


class GarbageCollector:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        delay: float,
        untagged_retention: float = 0.0,
        metrics: Metrics | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.metrics = metrics
        # Aborts abandoned uploads before marking (None: they are left alone).
        self.lifecycle = lifecycle
        self.metadata = metadata
        self.blobs = blobs
        self.delay = delay
        # Untagged manifests older than this go (0: keep them forever).
        self.untagged_retention = untagged_retention
        self.sources: list[ReferenceSource] = [
            metadata.object_digests,
            metadata.part_digests,
            metadata.manifest_digests,
            metadata.evidence_digests,
        ]

    @classmethod
    def for_config(
        cls,
        metadata: MetadataStore,
        blobs: BlobStore,
        storage: StorageConfig,
        metrics: Metrics | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> GarbageCollector:
        if lifecycle is None:
            lifecycle = Lifecycle(metadata, blobs, None, storage.uploadRetention)
        return cls(metadata, blobs, storage.gcDelay, storage.untaggedRetention, metrics, lifecycle)

    def add_source(self, source: ReferenceSource) -> None:
        self.sources.append(source)

    async def run(self, *, dry_run: bool = False) -> GCReport:
        """One collection, counted in ``zas_gc_*`` (runs, removed blobs, bytes reclaimed)."""
        started = time.monotonic()
        try:
            report = await self._collect(dry_run)
        except BaseException:
            if self.metrics is not None:
                self.metrics.gc_runs.labels("error").inc()
            raise
        if self.metrics is not None:
            m = self.metrics
            m.gc_runs.labels("dry_run" if dry_run else "ok").inc()
            m.gc_latency.observe(time.monotonic() - started)
            if not dry_run:
                m.gc_removed_blobs.inc(report.blobs_deleted)
                m.gc_reclaimed_bytes.inc(report.bytes_freed)
                m.gc_last_success.set(time.time())
        return report

    async def _collect(self, dry_run: bool) -> GCReport:
        report = GCReport()
        if self.lifecycle is not None and not dry_run:
            now = time.time()
            report.multipart_uploads_aborted = await self.lifecycle.abort_abandoned_uploads(now)
            report.registry_uploads_aborted = await self.lifecycle.abort_abandoned_registry_uploads(
                now
            )
        if self.untagged_retention > 0:
            report.manifests_deleted = await self._untagged_manifests(dry_run)
        # Take the cut-off before marking: anything written after it is young by definition.
        cutoff = time.time() - self.delay
        marked: set[str] = set()
        for source in self.sources:
            marked |= await source()
        async for blob in self.blobs.iter_blobs():
            report.blobs_seen += 1
            if blob.digest in marked:
                report.blobs_referenced += 1
                continue
            if blob.mtime > cutoff:
                report.blobs_too_young += 1
                continue
            if not dry_run and await self.blobs.delete(blob.digest):
                report.blobs_deleted += 1
                report.bytes_freed += blob.size
        async for upload_id, mtime in self.blobs.iter_uploads():
            if mtime <= cutoff and (dry_run or await self.blobs.upload_abort(upload_id)):
                report.uploads_deleted += 1
        if not dry_run:
            report.leftovers_removed = await self.blobs.collect_leftovers(cutoff)
        log.info("garbage collection finished", extra={"report": vars(report), "dry_run": dry_run})
        return report

    async def _untagged_manifests(self, dry_run: bool) -> int:
        """Delete manifests no tag names, older than the retention, that nothing refers to:
        no index of their repository lists them, and they are not a referrer (signature,
        SBOM, attestation) of a manifest that still exists. Removing an index can free its
        children, so this repeats until nothing more goes."""
        cutoff = time.time() - self.untagged_retention
        tagged = await self.metadata.tagged_manifests()
        manifests = await self.metadata.all_manifests()
        deleted: set[tuple[str, str]] = set()
        while True:
            alive = [m for m in manifests if (m.repo, m.digest) not in deleted]
            present = {(m.repo, m.digest) for m in alive}
            referenced = {(m.repo, ref) for m in alive for ref in m.references}
            doomed = [
                m
                for m in alive
                if (m.repo, m.digest) not in tagged
                and (m.repo, m.digest) not in referenced
                and m.created_at <= cutoff
                and not (m.subject and (m.repo, m.subject) in present)
            ]
            if not doomed:
                break
            for m in doomed:
                if dry_run or await self.metadata.delete_manifest(m.repo, m.digest):
                    deleted.add((m.repo, m.digest))
            if not dry_run:  # some may have been evidence: gate verdicts are recomputed
                await self.metadata.bump_generation(SUPPLYCHAIN_GENERATION)
        return len(deleted)

    async def run_periodically(self, interval: float) -> None:
        """Collect every ``interval`` seconds until cancelled (the server's ``storage.gc``).
        The first run comes after at most ten minutes, so a server restarted more often than
        ``interval`` still collects."""
        delay = min(interval, 600.0)
        while True:
            await asyncio.sleep(delay)
            delay = interval
            try:
                await self.run()
            except Exception:
                log.exception("garbage collection failed; next try in %ss", interval)
