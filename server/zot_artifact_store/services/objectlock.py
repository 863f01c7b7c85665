"""S3 Object Lock (WORM), as AWS documents it.

A bucket has Object Lock when it was created with ``x-amz-bucket-object-lock-enabled: true``
(which enables versioning for good) or when a PutObjectLockConfiguration was applied to a
versioning-enabled bucket. Its configuration is ``settings["object_lock"]`` on the bucket:
``{"enabled": True}`` and optionally a default retention ``{"mode", "days" | "years"}`` that
every new version gets unless its write names its own.

A *version* is locked while it has a legal hold or a retention date in the future:

- **COMPLIANCE**: nobody can delete the version or shorten or remove the retention; it may
  only be extended.
- **GOVERNANCE**: the same, except for a principal allowed ``s3:BypassGovernanceRetention``
  who sends ``x-amz-bypass-governance-retention: true``.
- **legal hold**: no deletion until the hold is turned off (``s3:PutObjectLegalHold``).

A locked version is never removed: not by S3 (DELETE ``?versionId=``, DeleteObjects), not by
``/v1`` (which adds delete markers in versioned buckets and cannot delete a bucket that holds
locked versions), not by lifecycle rules, and not by garbage collection (it only removes
blobs no version references). A DELETE without a version id adds a delete marker, and an
overwrite adds a version, as on AWS: the locked version stays.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError
from ..metadata import Bucket, ObjectRecord
from ..timefmt import iso_time

GOVERNANCE, COMPLIANCE = "GOVERNANCE", "COMPLIANCE"
MODES = (GOVERNANCE, COMPLIANCE)
DAY = 86400.0
YEAR = 365 * DAY
MAX_RETENTION_DAYS = 36500  # AWS: at most 100 years


@dataclass
class Retention:
    mode: str = ""  # "" with ``until`` None: none
    until: float | None = None


def bucket_lock(bucket: Bucket) -> dict[str, Any] | None:
    """The bucket's Object Lock configuration, or None when it has no Object Lock."""
    config = bucket.settings.get("object_lock")
    return dict(config) if isinstance(config, dict) and config.get("enabled") else None


def enable_bucket_lock(bucket: Bucket) -> None:
    bucket.settings["object_lock"] = {"enabled": True}


def set_default_retention(bucket: Bucket, mode: str, days: int | None, years: int | None) -> None:
    """Replace the default retention (``mode`` "": none)."""
    config: dict[str, Any] = {"enabled": True}
    if mode:
        check_mode(mode)
        if (days is None) == (years is None):
            raise StoreError("MalformedXML", "DefaultRetention takes Days or Years, not both")
        count = days if days is not None else years
        assert count is not None
        limit = MAX_RETENTION_DAYS if days is not None else MAX_RETENTION_DAYS // 365
        if not 0 < count <= limit:
            raise StoreError(
                "InvalidArgument",
                "Default retention period must be a positive integer value "
                f"(at most {limit} {'days' if days is not None else 'years'})",
            )
        config["mode"] = mode
        config["days" if days is not None else "years"] = count
    bucket.settings["object_lock"] = config


def default_retention(bucket: Bucket, now: float) -> Retention:
    """What a new version of ``bucket`` gets when its write names no retention."""
    config = bucket_lock(bucket) or {}
    mode = str(config.get("mode", ""))
    if not mode:
        return Retention()
    span = int(config["days"]) * DAY if "days" in config else int(config["years"]) * YEAR
    return Retention(mode, now + span)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise StoreError(
            "MalformedXML", f"the retention mode must be GOVERNANCE or COMPLIANCE, not {mode!r}"
        )
    return mode


def require_lock(bucket: Bucket) -> dict[str, Any]:
    """The bucket's Object Lock configuration; ``InvalidRequest`` when it has none."""
    config = bucket_lock(bucket)
    if config is None:
        raise StoreError(
            "InvalidRequest", "Bucket is missing Object Lock Configuration", resource=bucket.name
        )
    return config


def check_lock_request(bucket: Bucket, retention: Retention, legal_hold: bool | None) -> None:
    """A write that names a retention or legal hold needs a bucket with Object Lock, and a
    retention names both its mode and a date in the future."""
    if retention.mode or retention.until is not None or legal_hold is not None:
        require_lock(bucket)
    check_retention(retention)


def check_retention(retention: Retention) -> None:
    """A retention a write asks for names both its mode and a date in the future."""
    if bool(retention.mode) != (retention.until is not None):
        raise StoreError(
            "InvalidArgument",
            "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied",
        )
    if retention.until is not None:
        check_mode(retention.mode)
        if not math.isfinite(retention.until) or retention.until <= time.time():
            raise StoreError("InvalidArgument", "The retain until date must be in the future!")


def set_lock(record: ObjectRecord, retention: Retention, legal_hold: bool | None) -> None:
    """Give a new version the lock its write asked for (checked by :func:`check_lock_request`)."""
    if retention.mode:
        record.retention_mode, record.retain_until = retention.mode, retention.until
    if legal_hold is not None:
        record.legal_hold = legal_hold


def lock_of(record: ObjectRecord, now: float | None = None) -> str | None:
    """What keeps ``record`` from being deleted (None: nothing)."""
    if record.delete_marker:
        return None
    if record.legal_hold:
        return "a legal hold"
    current = time.time() if now is None else now
    if record.retention_mode and record.retain_until is not None and record.retain_until > current:
        return f"{record.retention_mode} retention until {iso_time(record.retain_until)}"
    return None


def check_delete(record: ObjectRecord, bypass_governance: bool) -> None:
    """Refuse (``AccessDenied``, naming the lock) to delete a locked version; GOVERNANCE
    retention gives way to ``bypass_governance`` (already authorized), nothing else does."""
    lock = lock_of(record)
    if lock is None:
        return
    if bypass_governance and not record.legal_hold and record.retention_mode == GOVERNANCE:
        return
    raise StoreError(
        "AccessDenied",
        f"Access Denied because object protected by object lock: version "
        f"{record.version_id or 'null'} of {record.key!r} is under {lock}",
        resource=f"{record.bucket}/{record.key}",
    )


def refuse_locked(record: ObjectRecord) -> None:
    """:func:`check_delete` without the bypass: a guard for removals no one asked for
    (lifecycle expiry), given to ``MetadataStore.delete_object_version``."""
    check_delete(record, False)


def check_retention_change(record: ObjectRecord, new: Retention, bypass_governance: bool) -> None:
    """May ``record``'s retention become ``new``? COMPLIANCE only grows (same mode, a later
    date); GOVERNANCE may grow or become COMPLIANCE, and be shortened or removed only with
    the bypass."""
    old_until = record.retain_until
    active = record.retention_mode and old_until is not None and old_until > time.time()
    if not active:
        return
    assert old_until is not None
    grows = new.until is not None and new.until >= old_until
    if record.retention_mode == COMPLIANCE:
        if new.mode == COMPLIANCE and grows:
            return
        raise StoreError(
            "AccessDenied",
            "Access Denied because object protected by object lock: COMPLIANCE retention "
            f"until {iso_time(old_until)} can only be extended",
            resource=f"{record.bucket}/{record.key}",
        )
    if grows or bypass_governance:
        return
    raise StoreError(
        "AccessDenied",
        "Access Denied because object protected by object lock: shortening or removing "
        f"GOVERNANCE retention until {iso_time(old_until)} needs "
        "x-amz-bypass-governance-retention and s3:BypassGovernanceRetention",
        resource=f"{record.bucket}/{record.key}",
    )


def lock_json(record: ObjectRecord) -> dict[str, Any]:
    """An object's lock as ``/v1`` shows it."""
    return {
        "retention": (
            {"mode": record.retention_mode, "retain_until": iso_time(record.retain_until)}
            if record.retention_mode and record.retain_until is not None
            else None
        ),
        "legal_hold": bool(record.legal_hold),
    }
