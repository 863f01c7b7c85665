"""Object expiry, bucket lifecycle rules and abandoned uploads.

Three things end on a clock:

- an **object's expiry** (``X-Expires-At`` / ``expires_in`` at upload): ``expires_at`` on its
  record, found through an index;
- a bucket's **lifecycle rules** (S3 ``PutBucketLifecycleConfiguration``): Expiration after
  ``Days`` (counted from the object's last write, rounded up to the next midnight UTC, as S3
  does) or on a ``Date``, for the keys a rule's filter (prefix, tags, size) selects, and
  ``AbortIncompleteMultipartUpload`` after ``DaysAfterInitiation``;
- **abandoned uploads**: a multipart upload (S3 or ``/v1``) or an OCI upload session not
  finished ``storage.uploadRetention`` after it started (a bucket's AbortIncompleteMultipartUpload
  rule decides instead for the keys it covers).

:meth:`Lifecycle.run` removes what is due, once across all replicas at a time: it holds the
``lifecycle`` lease in the metadata store while it works. Each removal is audited as the
principal ``system:lifecycle``. What an expired object leaves — its blobs, the evidence about
its digest — follows the garbage-collection rules like any deleted object's. ``now`` may be
given (``POST /v1/admin/lifecycle/run``, ``zot-artifact-store lifecycle run --now``) to apply
the rules as of another time; the server's own runs use the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..auth.audit import AuditLog
from ..errors import StoreError
from ..metadata import Bucket, MetadataStore, MultipartUpload, ObjectRecord
from ..storage import BlobStore
from ..timefmt import iso_time, parse_time
from .notify import NULL_NOTIFIER, Notifier
from .objectlock import lock_of, refuse_locked
from .versioning import bucket_versioning, new_delete_marker

log = logging.getLogger(__name__)

DAY = 86400.0
PRINCIPAL = "system:lifecycle"
LEASE = "lifecycle"
# A run that crashes holds the lease this long at most; a live run renews it per batch.
LEASE_TTL = 300.0
BATCH = 500
# The most rules S3 allows in one configuration.
MAX_RULES = 1000
# The header a per-object expiry is given with; also the rule id x-amz-expiration names for it.
EXPIRES_HEADER = "X-Expires-At"
MAX_EXPIRES_IN = 100 * 365 * 86400


def next_midnight(ts: float) -> float:
    """The first midnight UTC at or after ``ts`` (S3 rounds lifecycle times up to one)."""
    return math.ceil(ts / DAY) * DAY


# ---- per-object expiry ----------------------------------------------------------------------


def parse_expires_at(value: str, now: float | None = None) -> float:
    """``X-Expires-At``: an RFC 3339 time (or Unix seconds) in the future."""
    try:
        when = parse_time(value.strip())
    except (ValueError, OverflowError):
        raise StoreError(
            "InvalidArgument",
            f"{EXPIRES_HEADER} must be an RFC 3339 time such as 2030-01-31T00:00:00Z",
        ) from None
    current = time.time() if now is None else now
    if not math.isfinite(when) or when <= current:
        raise StoreError(
            "InvalidArgument", f"{EXPIRES_HEADER} {value.strip()!r} is not in the future"
        )
    if when > current + MAX_EXPIRES_IN:
        raise StoreError("InvalidArgument", f"{EXPIRES_HEADER} is more than 100 years away")
    return when


def parse_expires_in(value: object, now: float | None = None) -> float:
    """``expires_in``: whole seconds from now (1 to 100 years), given as a number or a string."""
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value.strip()):
        seconds = int(value.strip())
    if seconds is None or not 1 <= seconds <= MAX_EXPIRES_IN:
        raise StoreError(
            "InvalidArgument", f"expires_in must be whole seconds from 1 to {MAX_EXPIRES_IN}"
        )
    return (time.time() if now is None else now) + seconds


# ---- bucket lifecycle rules -----------------------------------------------------------------


@dataclass
class LifecycleRule:
    """One rule of a bucket's lifecycle configuration (JSON in the bucket's settings)."""

    id: str
    enabled: bool = True
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    size_greater_than: int | None = None
    size_less_than: int | None = None
    expiration_days: int | None = None
    expiration_date: float | None = None  # a midnight UTC
    abort_days: int | None = None  # AbortIncompleteMultipartUpload DaysAfterInitiation
    # NoncurrentVersionExpiration NoncurrentDays (versioned buckets), and how many of a key's
    # newest noncurrent versions it keeps whatever their age (NewerNoncurrentVersions).
    noncurrent_days: int | None = None
    newer_noncurrent: int | None = None
    # Expiration ExpiredObjectDeleteMarker: a delete marker that is a key's only version goes.
    expired_marker: bool = False

    def selects(self, key: str, tags: dict[str, str], size: int) -> bool:
        if not key.startswith(self.prefix):
            return False
        if any(tags.get(k) != v for k, v in self.tags.items()):
            return False
        if self.size_greater_than is not None and not size > self.size_greater_than:
            return False
        return self.size_less_than is None or size < self.size_less_than

    def expiry_of(self, obj: ObjectRecord) -> float | None:
        """When this rule expires ``obj`` (None: it does not)."""
        if not self.enabled or not self.selects(obj.key, obj.tags, obj.size):
            return None
        if self.expiration_days is not None:
            return next_midnight(obj.updated_at + self.expiration_days * DAY)
        return self.expiration_date

    def noncurrent_expiry_of(self, version: ObjectRecord) -> float | None:
        """When this rule removes a noncurrent version (or delete marker): ``NoncurrentDays``
        after it became noncurrent, rounded up to the next midnight UTC (None: it does not)."""
        if (
            not self.enabled
            or self.noncurrent_days is None
            or version.noncurrent_since is None
            or not self.selects(version.key, version.tags, version.size)
        ):
            return None
        return next_midnight(version.noncurrent_since + self.noncurrent_days * DAY)

    def abort_time_of(self, upload: MultipartUpload) -> float | None:
        if not self.enabled or self.abort_days is None or not upload.key.startswith(self.prefix):
            return None
        return next_midnight(upload.initiated_at + self.abort_days * DAY)


def check_rules(rules: list[LifecycleRule]) -> list[LifecycleRule]:
    """What S3 refuses in a configuration, whatever dialect it came in."""
    if not rules:
        raise StoreError("MalformedXML", "a lifecycle configuration needs at least one Rule")
    if len(rules) > MAX_RULES:
        raise StoreError("MalformedXML", f"a lifecycle configuration has at most {MAX_RULES} rules")
    seen: set[str] = set()
    for rule in rules:
        if len(rule.id) > 255:
            raise StoreError("InvalidArgument", "a rule ID is at most 255 characters")
        if rule.id in seen:
            raise StoreError("InvalidArgument", f"rule ID {rule.id!r} is used twice")
        seen.add(rule.id)
        if (
            rule.expiration_days is None
            and rule.expiration_date is None
            and rule.abort_days is None
            and rule.noncurrent_days is None
            and not rule.expired_marker
        ):
            raise StoreError(
                "InvalidRequest",
                f"rule {rule.id!r} has no action: give Expiration, NoncurrentVersionExpiration "
                "or AbortIncompleteMultipartUpload",
            )
        if rule.newer_noncurrent is not None and not 1 <= rule.newer_noncurrent <= 100:
            raise StoreError(
                "InvalidArgument",
                f"rule {rule.id!r}: NewerNoncurrentVersions must be from 1 to 100",
            )
        if rule.expired_marker and (
            rule.tags or rule.size_greater_than is not None or rule.size_less_than is not None
        ):
            raise StoreError(
                "InvalidRequest",
                f"rule {rule.id!r}: ExpiredObjectDeleteMarker cannot be combined with a tag or "
                "object size filter",
            )
        for what, days in (
            ("Expiration Days", rule.expiration_days),
            ("DaysAfterInitiation", rule.abort_days),
            ("NoncurrentDays", rule.noncurrent_days),
        ):
            if days is not None and days < 1:
                raise StoreError(
                    "InvalidArgument", f"rule {rule.id!r}: {what} must be a positive integer"
                )
        if rule.abort_days is not None and (
            rule.tags or rule.size_greater_than is not None or rule.size_less_than is not None
        ):
            raise StoreError(
                "InvalidRequest",
                f"rule {rule.id!r}: AbortIncompleteMultipartUpload cannot be combined with a "
                "tag or object size filter",
            )
        low, high = rule.size_greater_than, rule.size_less_than
        if low is not None and high is not None and high <= low:
            raise StoreError(
                "InvalidArgument",
                f"rule {rule.id!r}: ObjectSizeLessThan must be greater than ObjectSizeGreaterThan",
            )
    return rules


def new_rule_id() -> str:
    """S3 gives a rule without an ID a generated one."""
    return uuid.uuid4().hex


def bucket_rules(bucket: Bucket) -> list[LifecycleRule]:
    return [LifecycleRule(**r) for r in bucket.settings.get("lifecycle", [])]


def set_bucket_rules(bucket: Bucket, rules: list[LifecycleRule] | None) -> None:
    """Replace a bucket's lifecycle rules (None: delete the configuration)."""
    if rules:
        bucket.settings["lifecycle"] = [asdict(r) for r in rules]
    else:
        bucket.settings.pop("lifecycle", None)


@dataclass
class Expiration:
    """When an object expires and why: its own expiry (``rule_id`` is ``X-Expires-At``) or the
    bucket rule that expires it first."""

    at: float
    rule_id: str

    def s3_header(self) -> str:
        """``x-amz-expiration`` as S3 sends it."""
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(self.at))
        rule = self.rule_id.replace("\\", "\\\\").replace('"', '\\"')
        return f'expiry-date="{date}", rule-id="{rule}"'


def expiration_of(obj: ObjectRecord, rules: list[LifecycleRule]) -> Expiration | None:
    """The earliest of the object's own expiry and its bucket's expiration rules."""
    found: Expiration | None = None
    if obj.expires_at is not None:
        found = Expiration(obj.expires_at, EXPIRES_HEADER)
    for rule in rules:
        at = rule.expiry_of(obj)
        if at is not None and (found is None or at < found.at):
            found = Expiration(at, rule.id)
    return found


# ---- enforcement ----------------------------------------------------------------------------


@dataclass
class LifecycleReport:
    now: str = ""
    ran: bool = True  # False: another replica held the lease
    objects_expired: int = 0
    versions_expired: int = 0  # noncurrent versions and delete markers removed
    uploads_aborted: int = 0
    registry_uploads_aborted: int = 0
    expired: list[str] = field(default_factory=list)  # bucket/key of each expired object


class Lifecycle:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        audit: AuditLog | None,
        upload_retention: float,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.audit = audit
        self.upload_retention = upload_retention
        # Outbound webhooks (services/webhooks.py): object.deleted, upload.aborted.
        self.notify: Notifier = NULL_NOTIFIER
        # Each bucket's versioning state during a run (an expiry there adds a delete marker).
        self._versioning: dict[str, str] = {}
        # Who holds the lease: this process, recognisably (host, pid) and uniquely.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _audit(self, action: str, resource: str, reason: str, **detail: str) -> None:
        log.info("lifecycle: %s", reason, extra={"resource": resource})
        if self.audit is not None:
            self.audit.record(PRINCIPAL, action, resource, "allow", reason=reason, detail=detail)

    async def run(self, now: float | None = None) -> LifecycleReport:
        """Remove everything due at ``now`` (default: the wall clock), unless another replica
        is doing it (``ran`` False)."""
        when = time.time() if now is None else now
        report = LifecycleReport(now=iso_time(when))
        if not await self._renew():
            report.ran = False
            return report
        try:
            buckets = {b.name: b for b in await self.metadata.list_buckets()}
            rules = {name: bucket_rules(b) for name, b in buckets.items()}
            self._versioning = {name: bucket_versioning(b) for name, b in buckets.items()}
            await self._expire_objects(when, rules, report)
            await self._expire_noncurrent_versions(when, rules, report)
            await self._remove_expired_markers(rules, report)
            report.uploads_aborted = await self.abort_abandoned_uploads(when, rules)
            report.registry_uploads_aborted = await self.abort_abandoned_registry_uploads(when)
        finally:
            await self.metadata.release_lease(LEASE, self.holder)
        log.info("lifecycle run finished", extra={"report": asdict(report)})
        return report

    async def _renew(self) -> bool:
        # The lease runs on the wall clock whatever ``now`` the rules are applied at.
        return await self.metadata.acquire_lease(LEASE, self.holder, time.time(), LEASE_TTL)

    async def _expire(self, obj: ObjectRecord, why: str, report: LifecycleReport) -> None:
        versioning = self._versioning.get(obj.bucket, "")
        if versioning:
            # As on AWS: in a versioned bucket an expiry adds a delete marker; the object
            # stays a noncurrent version (NoncurrentVersionExpiration removes those).
            current = await self.metadata.get_object(obj.bucket, obj.key)
            if current is None or (current.digest, current.updated_at) != (
                obj.digest,
                obj.updated_at,
            ):
                return  # overwritten or deleted meanwhile
            marker = new_delete_marker(obj.bucket, obj.key, versioning, PRINCIPAL)
            await self.metadata.put_object_version(marker)
        elif (
            await self.metadata.expire_object(obj.bucket, obj.key, obj.digest, obj.updated_at)
            is None
        ):
            return  # overwritten or deleted meanwhile
        report.objects_expired += 1
        report.expired.append(f"{obj.bucket}/{obj.key}")
        self._audit(
            "s3:DeleteObject",
            f"{obj.bucket}/{obj.key}",
            f"expired by lifecycle ({why})",
            subject_digest=obj.digest,
        )
        await self.notify.emit(
            "object.deleted",
            {"bucket": obj.bucket, "key": obj.key, "digest": obj.digest},
            {"size": obj.size, "reason": f"expired ({why})"},
            actor=PRINCIPAL,
        )

    async def _expire_objects(
        self, now: float, rules: dict[str, list[LifecycleRule]], report: LifecycleReport
    ) -> None:
        # Objects with their own expiry, through the index.
        while True:
            due = await self.metadata.expired_objects(now, BATCH)
            before = report.objects_expired
            for obj in due:
                expiry = obj.expires_at or now
                await self._expire(obj, f"{EXPIRES_HEADER} {iso_time(expiry)}", report)
            if len(due) < BATCH or report.objects_expired == before:
                break
            await self._renew()
        # Bucket rules: walk the keys each expiration rule selects.
        for bucket, bucket_rule_list in rules.items():
            for rule in bucket_rule_list:
                if not rule.enabled or (
                    rule.expiration_days is None and rule.expiration_date is None
                ):
                    continue
                if rule.expiration_date is not None and rule.expiration_date > now:
                    continue
                after: str | None = None
                while True:
                    page = await self.metadata.list_objects(bucket, rule.prefix, after, BATCH)
                    for obj in page.objects:
                        at = rule.expiry_of(obj)
                        if at is not None and at <= now:
                            await self._expire(obj, f"rule {rule.id!r}", report)
                    if not page.truncated or not page.objects:
                        break
                    after = page.objects[-1].key
                    await self._renew()

    async def _expire_noncurrent_versions(
        self, now: float, rules: dict[str, list[LifecycleRule]], report: LifecycleReport
    ) -> None:
        """Remove the noncurrent versions and delete markers a NoncurrentVersionExpiration
        rule says are due, through the (bucket, noncurrent_since) index."""
        for bucket, bucket_rule_list in rules.items():
            for rule in bucket_rule_list:
                if not rule.enabled or rule.noncurrent_days is None:
                    continue
                # Due when noncurrent_since + days, rounded up to midnight, is <= now.
                before = now - (rule.noncurrent_days - 1) * DAY
                seen: set[tuple[str, str]] = set()
                while True:
                    page = await self.metadata.noncurrent_versions(
                        bucket, rule.prefix, before, BATCH
                    )
                    fresh = [v for v in page if (v.key, v.version_id) not in seen]
                    for version in fresh:
                        seen.add((version.key, version.version_id))
                        at = rule.noncurrent_expiry_of(version)
                        if at is None or at > now:
                            continue
                        if rule.newer_noncurrent and not await self._has_newer_noncurrent(
                            version, rule.newer_noncurrent
                        ):
                            continue  # one of the newest the rule keeps
                        await self._expire_version(version, rule, report)
                    if len(page) < BATCH or not fresh:
                        break
                    await self._renew()

    async def _has_newer_noncurrent(self, version: ObjectRecord, count: int) -> bool:
        """Whether ``version``'s key has at least ``count`` noncurrent versions newer than it.
        A key's versions list first under a prefix of the key itself, newest first."""
        page = await self.metadata.list_object_versions(
            version.bucket, version.key, limit=count + 2
        )
        newer = 0
        for other in page.objects:
            if other.key != version.key or other.version_id == version.version_id:
                break
            if other.noncurrent_since is not None:
                newer += 1
        return newer >= count

    async def _remove_expired_markers(
        self, rules: dict[str, list[LifecycleRule]], report: LifecycleReport
    ) -> None:
        """Expiration ExpiredObjectDeleteMarker: remove each delete marker that is its key's
        latest and only version (what is left when every older version has gone)."""
        for bucket, bucket_rule_list in rules.items():
            for rule in bucket_rule_list:
                if not rule.enabled or not rule.expired_marker:
                    continue
                after: ObjectRecord | None = None
                while True:
                    page = await self.metadata.list_object_versions(
                        bucket, rule.prefix, after=after, limit=BATCH
                    )
                    rows = page.objects
                    for i, row in enumerate(rows):
                        # A latest version lists first among its key's versions.
                        if not row.delete_marker or row.noncurrent_since is not None:
                            continue
                        if i + 1 < len(rows):
                            alone = rows[i + 1].key != row.key
                        else:  # the page's last row: look at its key alone
                            own = await self.metadata.list_object_versions(bucket, row.key, limit=2)
                            alone = [r.key for r in own.objects].count(row.key) == 1
                        if alone:
                            await self._remove_marker(row, rule, report)
                    if not page.truncated or not rows:
                        break
                    after = rows[-1]
                    await self._renew()

    async def _remove_marker(
        self, marker: ObjectRecord, rule: LifecycleRule, report: LifecycleReport
    ) -> None:
        def still_alone(record: ObjectRecord) -> None:
            if record.noncurrent_since is not None or not record.delete_marker:
                raise StoreError("PreconditionFailed", "no longer the latest version")

        def why(vid: str) -> str:
            return f"expired object delete marker {vid} removed by lifecycle (rule {rule.id!r})"

        await self._remove_version(marker, still_alone, why, report)

    async def _remove_version(
        self,
        version: ObjectRecord,
        guard: Callable[[ObjectRecord], None],
        why: Callable[[str], str],
        report: LifecycleReport,
    ) -> None:
        """Remove ``version`` if ``guard`` lets it go as it is removed; report and audit it
        (``why`` of its version id says why)."""
        try:
            removed = await self.metadata.delete_object_version(
                version.bucket, version.key, version.version_id, guard
            )
        except StoreError:
            return  # changed meanwhile (locked, or no longer what the rule removes): kept
        if removed is None:
            return
        report.versions_expired += 1
        vid = version.version_id or "null"
        report.expired.append(f"{version.bucket}/{version.key}?versionId={vid}")
        self._audit(
            "s3:DeleteObjectVersion",
            f"{version.bucket}/{version.key}",
            why(vid),
            version_id=vid,
            **({"subject_digest": version.digest} if version.digest else {}),
        )

    async def _expire_version(
        self, version: ObjectRecord, rule: LifecycleRule, report: LifecycleReport
    ) -> None:
        current = await self.metadata.get_object_version(
            version.bucket, version.key, version.version_id
        )
        if current is None or current.noncurrent_since is None:
            return  # gone, or current again, meanwhile
        lock = lock_of(current)
        if lock is not None:  # Object Lock: never removed while locked, by anyone
            log.info(
                "lifecycle: %s?versionId=%s kept: under %s",
                version.key,
                version.version_id or "null",
                lock,
                extra={"resource": f"{version.bucket}/{version.key}"},
            )
            return

        # The lock checked again, atomically with the removal (set meanwhile?).
        def why(vid: str) -> str:
            return f"noncurrent version {vid} expired by lifecycle (rule {rule.id!r})"

        await self._remove_version(version, refuse_locked, why, report)

    async def abort_abandoned_uploads(
        self, now: float, rules: dict[str, list[LifecycleRule]] | None = None
    ) -> int:
        """Abort multipart uploads (S3 and ``/v1``) past their bucket's
        AbortIncompleteMultipartUpload rule or ``storage.uploadRetention``; their part
        records go with them and garbage collection removes the part blobs."""
        if rules is None:
            rules = {b.name: bucket_rules(b) for b in await self.metadata.list_buckets()}
        shortest = min(
            [self.upload_retention]
            + [
                r.abort_days * DAY
                for rs in rules.values()
                for r in rs
                if r.abort_days and r.enabled
            ]
        )
        aborted = 0
        while True:
            page = await self.metadata.stale_multipart(now - shortest, BATCH)
            progress = 0
            for upload in page:
                due, why = self._abort_time(upload, rules.get(upload.bucket, []))
                if due > now:
                    continue
                if await self.metadata.delete_multipart(upload.upload_id):
                    progress += 1
                    self._audit(
                        "s3:AbortMultipartUpload",
                        f"{upload.bucket}/{upload.key}",
                        f"upload {upload.upload_id} started {iso_time(upload.initiated_at)} "
                        f"aborted by lifecycle ({why})",
                    )
                    await self.notify.emit(
                        "upload.aborted",
                        {"bucket": upload.bucket, "key": upload.key},
                        {"upload_id": upload.upload_id, "reason": f"abandoned ({why})"},
                        actor=PRINCIPAL,
                    )
            aborted += progress
            if len(page) < BATCH or not progress:
                return aborted

    def _abort_time(self, upload: MultipartUpload, rules: list[LifecycleRule]) -> tuple[float, str]:
        times = [
            (at, f"rule {r.id!r}") for r in rules if (at := r.abort_time_of(upload)) is not None
        ]
        if times:
            return min(times)
        return upload.initiated_at + self.upload_retention, "storage.uploadRetention"

    async def abort_abandoned_registry_uploads(self, now: float) -> int:
        """Cancel OCI upload sessions started more than ``storage.uploadRetention`` ago."""
        aborted = 0
        while True:
            page = await self.metadata.stale_registry_uploads(now - self.upload_retention, BATCH)
            for upload in page:
                if upload.session_id:  # none when no chunk ever arrived
                    await self.blobs.upload_abort(upload.session_id)
                if await self.metadata.delete_registry_upload(upload.upload_id):
                    aborted += 1
                    self._audit(
                        "oci:push",
                        f"repo:{upload.repo}",
                        f"upload {upload.upload_id} started {iso_time(upload.created_at)} "
                        "aborted by lifecycle (storage.uploadRetention)",
                    )
            if len(page) < BATCH:
                return aborted

    async def run_periodically(self, interval: float) -> None:
        """Run every ``interval`` seconds until cancelled; every replica tries, the lease lets
        one at a time work."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run()
            except Exception:
                log.exception("lifecycle run failed; next try in %ss", interval)


def report_json(report: LifecycleReport) -> dict[str, Any]:
    return asdict(report)
