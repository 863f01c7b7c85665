"""S3 Object Lock: Put/GetObjectLockConfiguration on a bucket, Put/GetObjectRetention and
Put/GetObjectLegalHold on an object version, the ``x-amz-object-lock-*`` headers of a write,
and ``x-amz-bypass-governance-retention`` (services/objectlock.py has the rules)."""

from __future__ import annotations

from typing import Any

from ...errors import StoreError
from ...metadata import ObjectRecord
from ...services.objectlock import Retention, bucket_lock, require_lock
from ...timefmt import parse_time
from . import xml
from .base import S3Handler

LEGAL_HOLD = {"ON": True, "OFF": False}


def parse_lock_time(text: str | None, what: str) -> float:
    try:
        return parse_time((text or "").strip())
    except (ValueError, OverflowError):
        raise StoreError("InvalidArgument", f"{what} is not an ISO 8601 time") from None


def parse_legal_hold(text: str | None, what: str) -> bool:
    status = (text or "").strip().upper()
    if status not in LEGAL_HOLD:
        raise StoreError("MalformedXML", f"{what} must be ON or OFF")
    return LEGAL_HOLD[status]


class ObjectLockRequests(S3Handler):
    """What object writes and deletes share: the lock a write asks for, the bypass a delete
    asks for, and the lock headers of a read."""

    async def lock_request(self, bucket: str, key: str) -> tuple[Retention, bool | None]:
        """The ``x-amz-object-lock-*`` headers of PutObject, CopyObject or
        CreateMultipartUpload; setting them needs s3:PutObjectRetention /
        s3:PutObjectLegalHold besides the write's own action, as on AWS."""
        headers = self.request.headers
        retention = Retention(headers.get("x-amz-object-lock-mode", "").strip())
        if "x-amz-object-lock-retain-until-date" in headers:
            retention.until = parse_lock_time(
                headers["x-amz-object-lock-retain-until-date"],
                "x-amz-object-lock-retain-until-date",
            )
        if retention.mode or retention.until is not None:
            await self.authorize("s3:PutObjectRetention", f"{bucket}/{key}")
        legal_hold: bool | None = None
        if "x-amz-object-lock-legal-hold" in headers:
            legal_hold = parse_legal_hold(
                headers["x-amz-object-lock-legal-hold"], "x-amz-object-lock-legal-hold"
            )
            await self.authorize("s3:PutObjectLegalHold", f"{bucket}/{key}")
        return retention, legal_hold

    async def bypass_governance(self, resource: str) -> bool:
        """``x-amz-bypass-governance-retention: true``, for a principal allowed
        s3:BypassGovernanceRetention (AccessDenied otherwise, as on AWS)."""
        if self.request.headers.get("x-amz-bypass-governance-retention", "").lower() != "true":
            return False
        await self.authorize("s3:BypassGovernanceRetention", resource)
        return True

    def set_lock_headers(self, record: ObjectRecord) -> None:
        if record.retention_mode and record.retain_until is not None:
            self.set_header("x-amz-object-lock-mode", record.retention_mode)
            self.set_header("x-amz-object-lock-retain-until-date", xml.s3_time(record.retain_until))
        if record.legal_hold is not None:  # as set: ON, or OFF once released
            self.set_header("x-amz-object-lock-legal-hold", "ON" if record.legal_hold else "OFF")


class BucketObjectLockOperations(S3Handler):
    """Mixed into the bucket handler."""

    async def op_PutObjectLockConfiguration(self, name: str) -> None:
        await self.authorize("s3:PutBucketObjectLockConfiguration", name)
        config = xml.parse(self.request.body, "ObjectLockConfiguration")
        if (xml.child_text(config, "ObjectLockEnabled") or "").strip() != "Enabled":
            raise StoreError("MalformedXML", "ObjectLockEnabled must be Enabled")
        mode, days, years = "", None, None
        for rule in xml.children(config, "Rule"):
            for default in xml.children(rule, "DefaultRetention"):
                mode = (xml.child_text(default, "Mode") or "").strip()
                days, years = _count(default, "Days"), _count(default, "Years")
                if not mode:
                    raise StoreError("MalformedXML", "DefaultRetention needs a Mode")
        await self.ctx.artifacts.set_object_lock(name, mode, days, years)
        self.audit("s3:PutBucketObjectLockConfiguration", name, True, "object lock configured")
        self.finish()

    async def op_GetObjectLockConfiguration(self, name: str) -> None:
        await self.authorize("s3:GetBucketObjectLockConfiguration", name)
        config = bucket_lock(await self.ctx.artifacts.get_bucket(name))
        if config is None:
            raise StoreError(
                "ObjectLockConfigurationNotFoundError",
                "Object Lock configuration does not exist for this bucket",
                resource=name,
            )
        answer: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
        if config.get("mode"):
            default: dict[str, Any] = {"Mode": config["mode"]}
            default.update({"Days": config["days"]} if "days" in config else {})
            default.update({"Years": config["years"]} if "years" in config else {})
            answer["Rule"] = {"DefaultRetention": default}
        self.write_xml("ObjectLockConfiguration", answer)


def _count(element: Any, name: str) -> int | None:
    text = xml.child_text(element, name)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise StoreError("MalformedXML", f"DefaultRetention {name} must be an integer") from None


class ObjectLockOperations(ObjectLockRequests):
    """Mixed into the object handler (its small XML body is ``self.body``)."""

    body: bytes

    async def op_PutObjectRetention(self, bucket: str, key: str) -> None:
        await self.authorize("s3:PutObjectRetention", f"{bucket}/{key}")
        bypass = await self.bypass_governance(f"{bucket}/{key}")
        root = xml.parse(self.body, "Retention")
        mode = (xml.child_text(root, "Mode") or "").strip()
        until_text = xml.child_text(root, "RetainUntilDate")
        retention = Retention(mode)
        if until_text is not None:
            retention.until = parse_lock_time(until_text, "RetainUntilDate")
        if bool(mode) != (retention.until is not None):
            raise StoreError("MalformedXML", "Retention needs both Mode and RetainUntilDate")
        record = await self.ctx.artifacts.set_retention(
            bucket, key, self.arg("versionId"), retention, bypass_governance=bypass
        )
        await self.set_version_header(record)
        self.finish()

    async def op_GetObjectRetention(self, bucket: str, key: str) -> None:
        await self.authorize("s3:GetObjectRetention", f"{bucket}/{key}")
        record = await self._locked_version(bucket, key)
        if not record.retention_mode or record.retain_until is None:
            raise StoreError(
                "NoSuchObjectLockConfiguration",
                "The specified object does not have a ObjectLock configuration",
                resource=f"{bucket}/{key}",
            )
        self.write_xml(
            "Retention",
            {"Mode": record.retention_mode, "RetainUntilDate": xml.s3_time(record.retain_until)},
        )

    async def op_PutObjectLegalHold(self, bucket: str, key: str) -> None:
        await self.authorize("s3:PutObjectLegalHold", f"{bucket}/{key}")
        root = xml.parse(self.body, "LegalHold")
        on = parse_legal_hold(xml.child_text(root, "Status"), "LegalHold Status")
        record = await self.ctx.artifacts.set_legal_hold(bucket, key, self.arg("versionId"), on)
        await self.set_version_header(record)
        self.finish()

    async def op_GetObjectLegalHold(self, bucket: str, key: str) -> None:
        await self.authorize("s3:GetObjectLegalHold", f"{bucket}/{key}")
        record = await self._locked_version(bucket, key)
        if record.legal_hold is None:  # never set on this version (OFF once set OFF)
            raise StoreError(
                "NoSuchObjectLockConfiguration",
                "The specified object does not have a ObjectLock configuration",
                resource=f"{bucket}/{key}",
            )
        self.write_xml("LegalHold", {"Status": "ON" if record.legal_hold else "OFF"})

    async def _locked_version(self, bucket: str, key: str) -> ObjectRecord:
        """The version asked about, in a bucket with Object Lock (else InvalidRequest)."""
        require_lock(await self.ctx.artifacts.get_bucket(bucket))
        return await self.ctx.artifacts.head_object(bucket, key, self.arg("versionId"))
