"""Object versions and Object Lock in the artifact service: reading a version, delete
markers, removing versions, listing them, and the lock that keeps them (the rules are in
:mod:`.versioning` and :mod:`.objectlock`). Mixed into
:class:`~zot_artifact_store.services.artifacts.ArtifactService`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..auth.principal import current_principal
from ..errors import StoreError
from ..metadata import Bucket, MetadataStore, ObjectRecord
from .notify import Notifier
from .objectlock import (
    Retention,
    bucket_lock,
    check_delete,
    check_mode,
    check_retention_change,
    lock_of,
    require_lock,
    set_default_retention,
)
from .versioning import (
    ENABLED,
    Deletion,
    bucket_versioning,
    delete_marker_of,
    new_delete_marker,
    set_bucket_versioning,
    stored_version_id,
)


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` rolls up into under ``prefix``/``delimiter``, if any."""
    cut = key.find(delimiter, len(prefix)) if key.startswith(prefix) else -1
    return key[: cut + len(delimiter)] if cut >= 0 else None


def beyond(common: str) -> str:
    """A ``start_after`` that skips every key starting with ``common``: keys are at most 1,024
    UTF-8 bytes, so none can reach ``common`` followed by 256 copies of the largest code point."""
    return common + "\U0010ffff" * 256


@dataclass
class VersionListing:
    versions: list[ObjectRecord]  # objects and delete markers; ``noncurrent_since`` None: latest
    common_prefixes: list[str]
    truncated: bool
    # Where to continue, when truncated: after this key (a common prefix) or version of it.
    next_key_marker: str | None = None
    next_version_id_marker: str | None = None


class VersionedObjects:
    """The version-aware half of the artifact service."""

    metadata: MetadataStore
    notify: Notifier
    _rules: dict[str, Any]  # the answers' cache of bucket settings (ArtifactService)

    if TYPE_CHECKING:

        async def get_bucket(self, name: str) -> Bucket: ...

        async def head_object(
            self, bucket: str, key: str, version_id: str | None = None
        ) -> ObjectRecord: ...

    async def _refuse_if_locked(self, name: str) -> None:
        """A bucket that holds a locked version cannot be deleted with its objects."""
        after: ObjectRecord | None = None
        while True:
            page = await self.metadata.list_object_versions(name, after=after)
            for record in page.objects:
                lock = lock_of(record)
                if lock is not None:
                    raise StoreError(
                        "AccessDenied",
                        f"Access Denied because object protected by object lock: bucket "
                        f"{name!r} holds {record.key!r} under {lock}",
                        resource=name,
                    )
            if not page.truncated or not page.objects:
                return
            after = page.objects[-1]

    async def _version(self, bucket: str, key: str, version_id: str) -> ObjectRecord:
        record = await self.metadata.get_object_version(bucket, key, version_id)
        if record is None:
            await self.get_bucket(bucket)
            raise StoreError(
                "NoSuchVersion",
                f"object {key!r} of bucket {bucket!r} has no version {version_id or 'null'!r}",
                resource=f"{bucket}/{key}",
            )
        if record.delete_marker:
            raise StoreError(
                "MethodNotAllowed",
                "the specified method is not allowed against this resource: "
                "the version is a delete marker",
                resource=f"{bucket}/{key}",
                headers={**delete_marker_of(record), "Allow": "DELETE"},
            )
        return record

    async def latest_version(self, bucket: str, key: str) -> ObjectRecord | None:
        """The latest version of ``key``, delete marker or object (None: it has none)."""
        page = await self.metadata.list_object_versions(bucket, prefix=key, limit=1)
        first = page.objects[0] if page.objects else None
        return first if first is not None and first.key == key else None

    async def set_versioning(self, name: str, status: str) -> None:
        """Enable or suspend versioning (S3 PutBucketVersioning)."""
        bucket = await self.get_bucket(name)
        if bucket_lock(bucket) is not None and status != ENABLED:
            raise StoreError(
                "InvalidBucketState",
                "An Object Lock configuration is present on this bucket, so the versioning "
                "state cannot be changed.",
                resource=name,
            )
        set_bucket_versioning(bucket, status)
        await self.metadata.update_bucket(bucket)
        self._rules.pop(name, None)

    async def set_object_lock(
        self, name: str, mode: str, days: int | None, years: int | None
    ) -> None:
        """PutObjectLockConfiguration: Object Lock on (for good) with this default retention
        (``mode`` "": none). The bucket must have versioning enabled."""
        bucket = await self.get_bucket(name)
        if bucket_versioning(bucket) != ENABLED:
            raise StoreError(
                "InvalidBucketState",
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
                resource=name,
            )
        set_default_retention(bucket, mode, days, years)
        await self.metadata.update_bucket(bucket)

    async def set_retention(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        retention: Retention,
        *,
        bypass_governance: bool = False,
    ) -> ObjectRecord:
        """PutObjectRetention on the version (or the current object): COMPLIANCE only grows,
        GOVERNANCE shrinks only with the bypass (services/objectlock.py)."""
        require_lock(await self.get_bucket(bucket))
        record = await self.head_object(bucket, key, version_id)
        if retention.until is not None:
            check_mode(retention.mode)
        check_retention_change(record, retention, bypass_governance)
        record.retention_mode, record.retain_until = retention.mode, retention.until
        await self.update_version(record)
        return record

    async def set_legal_hold(
        self, bucket: str, key: str, version_id: str | None, on: bool
    ) -> ObjectRecord:
        """PutObjectLegalHold on the version (or the current object)."""
        require_lock(await self.get_bucket(bucket))
        record = await self.head_object(bucket, key, version_id)
        record.legal_hold = on
        await self.update_version(record)
        return record

    async def update_version(self, record: ObjectRecord) -> None:
        """Store a change to a version's tags, ACL or lock in place (``NoSuchVersion`` when
        it went meanwhile); its bytes and metadata stay."""
        if not await self.metadata.update_object_version(record):
            raise StoreError(
                "NoSuchVersion",
                f"version {record.version_id or 'null'} of {record.key!r} is gone",
                resource=f"{record.bucket}/{record.key}",
            )

    async def _delete(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        existing: bool,
        bypass_governance: bool,
    ) -> Deletion:
        """:meth:`ArtifactService.delete_object` once the key is checked."""
        found = await self.get_bucket(bucket)
        versioning = bucket_versioning(found)
        if version_id is not None and (versioning or version_id != "null"):
            vid = stored_version_id(version_id)
            # Object Lock: checked atomically with the removal, not before it.
            guard = (
                functools.partial(check_delete, bypass_governance=bypass_governance)
                if bucket_lock(found) is not None
                else None
            )
            deletion = Deletion(await self.metadata.delete_object_version(bucket, key, vid, guard))
        elif versioning:
            deletion = await self._add_delete_marker(bucket, key, versioning, existing)
        else:
            deletion = Deletion(await self.metadata.delete_object(bucket, key))
        removed = deletion.removed
        if deletion.marker is not None or (removed is not None and not removed.delete_marker):
            digest = removed.digest if removed is not None else ""
            subject = {"bucket": bucket, "key": key, "digest": digest}
            detail: dict[str, Any] = {"size": removed.size if removed is not None else 0}
            if versioning:
                detail["version_id"] = deletion.version_id
                detail["delete_marker"] = deletion.marker is not None
            await self.notify.emit("object.deleted", subject, detail)
        return deletion

    async def _add_delete_marker(
        self, bucket: str, key: str, versioning: str, existing: bool
    ) -> Deletion:
        if existing and await self.metadata.get_object(bucket, key) is None:
            return Deletion(None)
        writer = current_principal.get()
        marker = new_delete_marker(bucket, key, versioning, writer.id if writer else "")
        previous = await self.metadata.put_object_version(marker)
        return Deletion(previous, marker)

    async def list_object_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str | None = None,
        version_id_marker: str | None = None,
        limit: int = 1000,
    ) -> VersionListing:
        """S3 ListObjectVersions: every version and delete marker by key, newest first,
        keys that share ``prefix…delimiter`` rolled into common prefixes; resumes after
        ``key_marker`` or, with ``version_id_marker``, after that version of it."""
        await self.get_bucket(bucket)
        after: ObjectRecord | None = None
        key_after = key_marker or None
        if version_id_marker:
            if key_after is None:
                raise StoreError(
                    "InvalidArgument",
                    "A version-id marker cannot be specified without a key marker.",
                )
            vid = stored_version_id(version_id_marker)
            after = await self.metadata.get_object_version(bucket, key_after, vid)
            if after is None:
                raise StoreError("InvalidArgument", "Invalid version id specified")
        elif (
            key_after is not None
            and delimiter
            and common_prefix(key_after, prefix, delimiter) == key_after
        ):
            key_after = beyond(key_after)
        out = VersionListing([], [], False)
        while True:
            room = limit - len(out.versions) - len(out.common_prefixes)
            page = await self.metadata.list_object_versions(
                bucket, prefix, key_after, after, limit=max(1, room) + 1
            )
            jumped = False
            for record in page.objects:
                if len(out.versions) + len(out.common_prefixes) >= limit:
                    out.truncated = True
                    return out
                common = common_prefix(record.key, prefix, delimiter) if delimiter else None
                if common is not None:
                    out.common_prefixes.append(common)
                    out.next_key_marker, out.next_version_id_marker = common, None
                    key_after, after, jumped = beyond(common), None, True
                    break
                out.versions.append(record)
                out.next_key_marker = record.key
                out.next_version_id_marker = record.version_id or "null"
                after = record
            if not jumped and not page.truncated:
                return out
