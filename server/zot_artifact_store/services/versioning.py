"""S3 versioning, as AWS documents it.

A bucket is unversioned (as created), versioning-enabled or versioning-suspended; once enabled
it never becomes unversioned again. Its state is ``settings["versioning"]`` on the bucket.

- **Enabled**: every write (PUT, copy, multipart completion) makes a new version with its own
  id; the version it replaces is kept, noncurrent. A DELETE without a version id keeps
  everything and adds a *delete marker*: while it is the latest version the key reads as
  deleted (404 with ``x-amz-delete-marker: true``). A DELETE with a version id removes that
  version for good (deleting the marker brings the object back).
- **Suspended**: writes make the *null* version (id ``null``), replacing any null version the
  key had (current or not); versions with ids stay. A DELETE without a version id replaces
  the null version with a null delete marker.
- **Unversioned** buckets behave as they always did: objects have the null version and a
  DELETE removes the object. Objects written before versioning was enabled are null
  versions.

Every version's blob stays referenced (garbage collection keeps it) until the version is
deleted; evidence binds to digests, so a signed old version stays verifiable.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ..errors import StoreError
from ..ids import random_chars
from ..metadata import Bucket, ObjectRecord

ENABLED = "Enabled"
SUSPENDED = "Suspended"
STATES = (ENABLED, SUSPENDED)
NULL = "null"  # how S3 names the null version (stored as "")
# The ids this store makes: 32 URL-safe characters.
_VERSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")


def bucket_versioning(bucket: Bucket) -> str:
    """``Enabled``, ``Suspended`` or "" (never enabled)."""
    return str(bucket.settings.get("versioning", ""))


def set_bucket_versioning(bucket: Bucket, status: str) -> None:
    if status not in STATES:
        raise StoreError(
            "MalformedXML", f"versioning Status must be Enabled or Suspended, not {status!r}"
        )
    bucket.settings["versioning"] = status


def new_version_id() -> str:
    """An opaque version id (never ``null``) of 32 letters and digits: no ``-`` or ``_``, so
    a command line never takes one for an option (``aws s3api get-object --version-id -d8Y…``
    is an argument error in awscli) and no shell or URL needs it quoted. Ids made before,
    URL-safe base64 that may hold ``-`` and ``_``, stay valid."""
    return random_chars(32)


def stored_version_id(s3_id: str) -> str:
    """A version id as a client sends it (``null`` is the null version) as stored. One that
    this store cannot have made is ``InvalidArgument``, as on AWS."""
    if s3_id == NULL:
        return ""
    if not _VERSION_ID_RE.match(s3_id):
        raise StoreError("InvalidArgument", "Invalid version id specified")
    return s3_id


def s3_version_id(record: ObjectRecord) -> str:
    return record.version_id or NULL


@dataclass
class Deletion:
    """What a delete did: the version removed for good (or, when a delete marker was added,
    the current object it now hides), and the marker it added."""

    removed: ObjectRecord | None
    marker: ObjectRecord | None = None

    @property
    def version_id(self) -> str | None:
        """``x-amz-version-id`` of the answer: the marker's, or the removed version's."""
        if self.marker is not None:
            return s3_version_id(self.marker)
        return s3_version_id(self.removed) if self.removed is not None else None

    @property
    def delete_marker(self) -> bool:
        """``x-amz-delete-marker`` of the answer: a marker was added or removed."""
        if self.marker is not None:
            return True
        return self.removed is not None and self.removed.delete_marker


def delete_marker_of(record: ObjectRecord) -> dict[str, str]:
    """The headers S3 answers about a delete marker."""
    return {"x-amz-delete-marker": "true", "x-amz-version-id": s3_version_id(record)}


def new_delete_marker(bucket: str, key: str, versioning: str, writer: str = "") -> ObjectRecord:
    """The delete marker a DELETE without a version id (or an expiry) adds to a versioned
    bucket: with a new id while versioning is enabled, the null one while suspended."""
    now = time.time()
    return ObjectRecord(
        bucket=bucket,
        key=key,
        digest="",
        size=0,
        etag="",
        content_type="",
        created_at=now,
        updated_at=now,
        version_id=new_version_id() if versioning == ENABLED else "",
        delete_marker=True,
        writer=writer,
    )
