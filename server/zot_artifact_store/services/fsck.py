"""``zot-artifact-store fsck``: does the metadata agree with the blobs?

Every blob a metadata record points at (an object's blob or part blobs, an OCI manifest and
everything it references, an evidence document) must exist, have the size the record says
(objects) and hash to its digest. Every evidence subject should still resolve to an object or
a manifest; one that does not is reported as a warning only, since evidence outlives an
overwrite of its object by design (DESIGN.md §4).

``repair`` quarantines what is broken instead of leaving a record that serves wrong or
missing bytes: a corrupt blob is moved (copied, then deleted from the store) to
``<rootDirectory>/quarantine/<time>/blobs/<algorithm>/<hex>``, and every record that needs a
missing or corrupt blob is written to ``…/records.jsonl`` and removed from the metadata. An
operator can inspect both and restore by uploading again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..metadata import SUPPLYCHAIN_GENERATION, MetadataStore, ObjectRecord
from ..metadata.base import blob_digests
from ..storage import BlobNotFoundError, BlobStore, split_digest
from .objectlock import lock_of
from .versioning import bucket_versioning

log = logging.getLogger(__name__)


@dataclass
class Problem:
    kind: str  # missing_blob, corrupt_blob, size_mismatch, unresolved_subject
    record: str  # "object bkt/key", "manifest repo@sha256:…", "evidence <id>"
    digest: str
    detail: str
    severity: str = "error"  # "warning": reported, never repaired
    repaired: bool = False


@dataclass
class FsckReport:
    objects: int = 0
    manifests: int = 0
    evidence: int = 0
    blobs_checked: int = 0
    bytes_hashed: int = 0
    problems: list[Problem] = field(default_factory=list)
    quarantine: str | None = None

    @property
    def errors(self) -> int:
        return sum(p.severity == "error" for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "problems"},
            "errors": self.errors,
            "warnings": len(self.problems) - self.errors,
            "problems": [asdict(p) for p in self.problems],
        }


class Fsck:
    def __init__(
        self, metadata: MetadataStore, blobs: BlobStore, root: str | Path, *, quick: bool = False
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.root = Path(root)
        self.quick = quick  # existence and size only, no hashing
        self._verdicts: dict[str, tuple[str, str, int] | None] = {}

    async def _blob(self, digest: str, report: FsckReport) -> tuple[str, str, int] | None:
        """None when the blob is sound; else (problem kind, detail, size on store)."""
        if digest in self._verdicts:
            return self._verdicts[digest]
        report.blobs_checked += 1
        verdict: tuple[str, str, int] | None = None
        stat = await self.blobs.stat(digest)
        if stat is None:
            verdict = ("missing_blob", "the blob does not exist in the blob store", 0)
        elif not self.quick:
            algo, expected = split_digest(digest)
            hasher = hashlib.new(algo)
            try:
                async for chunk in self.blobs.read(digest):
                    hasher.update(chunk)
                    report.bytes_hashed += len(chunk)
            except BlobNotFoundError:
                verdict = ("missing_blob", "the blob vanished while it was read", 0)
            else:
                actual = hasher.hexdigest()
                if actual != expected:
                    detail = f"the blob's content hashes to {algo}:{actual}"
                    verdict = ("corrupt_blob", detail, stat.size)
        self._verdicts[digest] = verdict
        return verdict

    async def run(self, *, repair: bool = False) -> FsckReport:
        report = FsckReport()
        # (record label, its JSON, how to delete it) of every record with a broken blob.
        broken: dict[str, tuple[dict[str, Any], Any]] = {}
        subjects: set[str] = set()

        async def check(label: str, digests: list[str], doc: Any, delete: Any) -> None:
            for digest in digests:
                verdict = await self._blob(digest, report)
                if verdict is not None:
                    report.problems.append(Problem(verdict[0], label, digest, verdict[1]))
                    broken[label] = (asdict(doc), delete)

        for bucket in await self.metadata.list_buckets():
            after: str | None = None
            while True:
                page = await self.metadata.list_objects(bucket.name, start_after=after)
                for obj in page.objects:
                    report.objects += 1
                    subjects.add(obj.digest)
                    label = f"object {obj.bucket}/{obj.key}"
                    delete = (self.metadata.delete_object, obj.bucket, obj.key)
                    await check(label, sorted(blob_digests(obj)), obj, delete)
                    if not obj.parts and label not in broken:
                        stat = await self.blobs.stat(obj.digest)
                        if stat is not None and stat.size != obj.size:
                            detail = f"the record says {obj.size} bytes, the blob has {stat.size}"
                            report.problems.append(
                                Problem("size_mismatch", label, obj.digest, detail)
                            )
                            broken[label] = (asdict(obj), delete)
                if not page.truncated or not page.objects:
                    break
                after = page.objects[-1].key
            if bucket_versioning(bucket):
                await self._check_versions(bucket.name, report, subjects, check, broken)
        for manifest in await self.metadata.all_manifests():
            report.manifests += 1
            subjects.add(manifest.digest)
            label = f"manifest {manifest.repo}@{manifest.digest}"
            digests = [manifest.digest, *dict.fromkeys(manifest.references)]
            delete = (self.metadata.delete_manifest, manifest.repo, manifest.digest)
            await check(label, digests, manifest, delete)
        for evidence in await self.metadata.all_evidence():
            report.evidence += 1
            label = f"evidence {evidence.evidence_id}"
            delete = (self.metadata.delete_evidence, evidence.evidence_id)
            await check(label, [evidence.digest], evidence, delete)
            if evidence.subject not in subjects:
                report.problems.append(
                    Problem(
                        "unresolved_subject",
                        label,
                        evidence.subject,
                        f"no object or manifest has the subject digest (attached to "
                        f"{evidence.subject_ref or evidence.subject}; the object may have been "
                        "overwritten or deleted since)",
                        severity="warning",
                    )
                )
        if repair and broken:
            await self._quarantine(report, broken)
            # Evidence or manifests may have gone: gate verdicts are recomputed.
            await self.metadata.bump_generation(SUPPLYCHAIN_GENERATION)
        log.info(
            "fsck finished",
            extra={"errors": report.errors, "repair": repair, "blobs": report.blobs_checked},
        )
        return report

    async def _check_versions(
        self,
        bucket: str,
        report: FsckReport,
        subjects: set[str],
        check: Any,
        broken: dict[str, tuple[dict[str, Any], Any]],
    ) -> None:
        """Noncurrent versions (S3 versioning): their blobs, and their digests as subjects
        evidence may be about. Repair never removes a version Object Lock protects."""
        after: ObjectRecord | None = None
        while True:
            page = await self.metadata.list_object_versions(bucket, after=after)
            for version in page.objects:
                if version.noncurrent_since is None or version.delete_marker:
                    continue  # the current object (checked above) or a marker (no bytes)
                report.objects += 1
                subjects.add(version.digest)
                vid = version.version_id or "null"
                label = f"object {bucket}/{version.key}?versionId={vid}"
                delete = (
                    self.metadata.delete_object_version,
                    bucket,
                    version.key,
                    version.version_id,
                )
                await check(label, sorted(blob_digests(version)), version, delete)
                lock = lock_of(version)
                if label in broken and lock is not None:
                    del broken[label]
                    for problem in report.problems:
                        if problem.record == label:
                            problem.detail += f"; kept: the version is under {lock}"
            if not page.truncated or not page.objects:
                return
            after = page.objects[-1]

    async def _quarantine(
        self, report: FsckReport, broken: dict[str, tuple[dict[str, Any], Any]]
    ) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        where = self.root / "quarantine" / stamp
        await asyncio.to_thread(where.mkdir, parents=True, exist_ok=True)
        report.quarantine = str(where)
        moved: set[str] = set()
        for problem in report.problems:
            if problem.kind == "corrupt_blob" and problem.digest not in moved:
                await self._move_blob(problem.digest, where)
                moved.add(problem.digest)
        lines = []
        for label, (doc, (delete, *args)) in broken.items():
            await delete(*args)
            lines.append(json.dumps({"record": label, "doc": doc}, sort_keys=True) + "\n")
        with (where / "records.jsonl").open("a") as out:
            out.writelines(lines)
        for problem in report.problems:
            if problem.severity == "error" and (
                problem.record in broken or problem.kind == "corrupt_blob"
            ):
                problem.repaired = True

    async def _move_blob(self, digest: str, where: Path) -> None:
        algo, hexpart = split_digest(digest)
        target = where / "blobs" / algo / hexpart
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        with target.open("wb") as out:
            async for chunk in self.blobs.read(digest):
                await asyncio.to_thread(out.write, chunk)
        await self.blobs.delete(digest)
