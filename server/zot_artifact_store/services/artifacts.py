"""Buckets and objects: the domain behind ``/v1`` and the S3 API.

No Tornado here: handlers parse and render, this module decides. Bytes go to the blob store
(content-addressed), records to the metadata store; an object's record is replaced only after
its blob is committed and verified, so a failed or interrupted upload never changes what
readers see.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import ipaddress
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import jsonbody
from ..auth.principal import current_principal
from ..auth.public_access import blocked, effective_block
from ..errors import StoreError
from ..metadata import AlreadyExistsError, Bucket, MetadataStore, NotFoundError, ObjectRecord
from ..storage import BlobInfo, BlobStore, BlobWriter, DigestMismatchError
from ..timefmt import iso_time
from .lifecycle import Expiration, LifecycleRule, bucket_rules, expiration_of, set_bucket_rules
from .notify import NULL_NOTIFIER, Notifier
from .object_versions import VersionedObjects, beyond, common_prefix
from .objectlock import (
    Retention,
    bucket_lock,
    check_lock_request,
    check_retention,
    default_retention,
    enable_bucket_lock,
    lock_json,
    require_lock,
    set_lock,
)
from .space import StorageSpace
from .versioning import (
    ENABLED,
    Deletion,
    bucket_versioning,
    delete_marker_of,
    new_version_id,
    set_bucket_versioning,
    stored_version_id,
)

log = logging.getLogger(__name__)

RESERVED_BUCKET_NAMES = frozenset({"health", "metrics", "ui"})
MAX_KEY_BYTES = 1024
MAX_LABELS = 64
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,62}$")
_SHA256_HEX_RE = re.compile(r"^[a-f0-9]{64}$")
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# How long a bucket seen to exist is taken to exist before a write's body is read (the write
# itself checks again, atomically, when it is published: ``put_object(require_bucket=True)``).
BUCKET_SEEN_S = 1.0


def validate_bucket_name(name: str) -> None:
    """S3's bucket naming rules, plus our reserved names."""
    if name in RESERVED_BUCKET_NAMES:
        raise StoreError(
            "ReservedName",
            f"bucket name {name!r} is reserved (it would shadow /{name}); choose another name",
            resource=name,
        )
    problem = _bucket_name_problem(name) if len(name) <= 63 else "must be 3 to 63 characters long"
    if problem:
        raise StoreError("InvalidBucketName", f"bucket name {name!r} {problem}", resource=name)


@functools.lru_cache(maxsize=4096)
def _bucket_name_problem(name: str) -> str | None:
    """What is wrong with a bucket name (None: nothing); remembered, as every request that
    names a bucket checks it (the IP-address test alone raises and catches an exception)."""
    problem = None
    if not 3 <= len(name) <= 63:
        problem = "must be 3 to 63 characters long"
    elif not _BUCKET_RE.match(name):
        problem = (
            "may contain only lowercase letters, digits, '.' and '-', "
            "and must begin and end with a letter or digit"
        )
    elif ".." in name or ".-" in name or "-." in name:
        problem = "must not contain '..', '.-' or '-.'"
    elif name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        problem = "must not use the prefixes xn--/sthree- or the suffixes -s3alias/--ol-s3"
    else:
        try:
            ipaddress.IPv4Address(name)
            problem = "must not be formatted as an IP address"
        except ValueError:
            pass
    return problem


def validate_key(key: str) -> None:
    if not key:
        raise StoreError("InvalidKey", "object key must not be empty")
    if "\x00" in key:
        raise StoreError("InvalidKey", "object key must not contain NUL characters")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise StoreError("InvalidKey", "object key must be valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise StoreError(
            "InvalidKey", f"object key is {size} bytes long; at most {MAX_KEY_BYTES} are allowed"
        )


def validate_labels(labels: object) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise StoreError("InvalidArgument", "labels must be an object of string values")
    if len(labels) > MAX_LABELS:
        raise StoreError("InvalidArgument", f"at most {MAX_LABELS} labels are allowed")
    out: dict[str, str] = {}
    for k, v in labels.items():
        if not isinstance(k, str) or not _LABEL_KEY_RE.match(k):
            raise StoreError(
                "InvalidArgument",
                f"label name {k!r} must be 1-63 characters of letters, digits, . _ / -",
            )
        if not isinstance(v, str) or len(v) > 256:
            raise StoreError(
                "InvalidArgument", f"label {k!r} must have a string value of at most 256 chars"
            )
        out[k] = v
    return out


def normalize_sha256(value: str) -> str:
    """Accept ``<hex>`` or ``sha256:<hex>`` (any case) → ``sha256:<hex>``."""
    hexpart = value.strip().lower().removeprefix("sha256:")
    if not _SHA256_HEX_RE.match(hexpart):
        raise StoreError(
            "InvalidDigest", f"declared sha256 {value!r} is not 64 hexadecimal characters"
        )
    return "sha256:" + hexpart


def encode_token(last_key: str) -> str:
    raw = json.dumps({"v": 1, "after": last_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = jsonbody.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["after"]
        if data.get("v") != 1 or not isinstance(after, str):
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise StoreError(
            "InvalidContinuationToken", "the continuation token is not valid"
        ) from None


@dataclass
class Listing:
    objects: list[ObjectRecord]
    common_prefixes: list[str]
    truncated: bool
    # The key or common prefix to continue after, when truncated.
    next_marker: str | None = None

    @property
    def next_token(self) -> str | None:
        return encode_token(self.next_marker) if self.truncated and self.next_marker else None


@dataclass
class PutOptions:
    content_type: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # S3 object tags (``x-amz-tagging``), already within S3's limits.
    tags: dict[str, str] = field(default_factory=dict)
    expected_sha256: str | None = None  # "sha256:<hex>"
    expected_md5: str | None = None  # hex
    expected_size: int | None = None
    # S3 clients expect the MD5 of the body as ETag; /v1 uses the sha256 (no MD5 pass: it
    # would cap upload throughput at MD5's single-core speed).
    md5_etag: bool = False
    # Checksums the API layer computed and verified (S3 ``x-amz-checksum-*``), kept and served.
    checksums: dict[str, str] = field(default_factory=dict)
    # Create-only (``If-None-Match: *``): publishing fails if the key exists by then.
    if_absent: bool = False
    # When the object expires (``X-Expires-At`` / ``expires_in``; services/lifecycle.py).
    expires_at: float | None = None
    # S3 Object Lock asked for by the write (``x-amz-object-lock-*``; services/objectlock.py).
    retention: Retention = field(default_factory=Retention)
    legal_hold: bool | None = None


class PutSession:
    """A streaming object write: ``write`` chunks, then ``finish`` (or ``abort``)."""

    def __init__(
        self,
        service: ArtifactService,
        bucket: str,
        key: str,
        writer: BlobWriter,
        options: PutOptions,
    ) -> None:
        self._service = service
        self.bucket = bucket
        self.key = key
        self._writer = writer
        self.options = options
        self._done = False

    @property
    def size(self) -> int:
        return self._writer.size

    async def write(self, data: bytes | memoryview) -> None:
        if self.options.expected_size is not None and (
            self._writer.size + len(data) > self.options.expected_size
        ):
            await self.abort()
            raise StoreError("InvalidRequest", "body is longer than its declared length")
        await self._writer.write(data)

    async def abort(self) -> None:
        if not self._done:
            self._done = True
            await self._writer.abort()

    async def finish(self) -> tuple[ObjectRecord, ObjectRecord | None]:
        """Commit the blob, verify declared checksums, then publish the record.

        Returns (new record, previous record or None)."""
        info = await self.commit_blob()
        opts = self.options
        now = time.time()
        record = ObjectRecord(
            bucket=self.bucket,
            key=self.key,
            digest=info.digest,
            size=info.size,
            etag=info.hashes.get("md5", "") if opts.md5_etag else info.sha256,
            content_type=opts.content_type or DEFAULT_CONTENT_TYPE,
            created_at=now,
            updated_at=now,
            labels=opts.labels,
            user_metadata=opts.user_metadata,
            headers=opts.headers,
            checksums=opts.checksums,
            tags=opts.tags,
            expires_at=opts.expires_at,
        )
        set_lock(record, opts.retention, opts.legal_hold)
        return await self._service.publish(record, if_absent=opts.if_absent)

    async def commit_blob(self) -> BlobInfo:
        """Commit the body as a blob after checking its length, sha256 and MD5."""
        opts = self.options
        if opts.expected_size is not None and self._writer.size != opts.expected_size:
            await self.abort()
            raise StoreError(
                "IncompleteBody",
                f"received {self._writer.size} bytes, Content-Length said {opts.expected_size}",
            )
        self._done = True
        try:
            info = await self._writer.commit(opts.expected_sha256)
        except DigestMismatchError as exc:
            raise StoreError(
                "ChecksumMismatch",
                f"declared sha256 {exc.expected} does not match the body's {exc.actual}; "
                "nothing was stored",
                resource=f"{self.bucket}/{self.key}",
                detail={"expected": exc.expected, "actual": exc.actual},
            ) from None
        md5 = info.hashes.get("md5", "")
        if opts.expected_md5 is not None and opts.expected_md5 != md5:
            # The blob may be shared (dedupe); GC removes it if nothing references it.
            raise StoreError(
                "ChecksumMismatch",
                "Content-MD5 does not match the body; nothing was stored",
                resource=f"{self.bucket}/{self.key}",
                detail={"algorithm": "md5"},
            )
        return info


# How long a bucket's lifecycle rules are cached for x-amz-expiration (read on every S3 GET
# and HEAD): a change made on another replica or worker shows within this time, as a bucket
# policy's does; one made here at once. Enforcement always reads them afresh.
RULES_TTL = 2.0


class ArtifactService(VersionedObjects):
    def __init__(
        self, metadata: MetadataStore, blobs: BlobStore, space: StorageSpace | None = None
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        # Per bucket, until when its lifecycle rules and versioning state (below) are trusted.
        self._rules: dict[str, tuple[float, list[LifecycleRule], str]] = {}
        # The free-space policy blob writes are checked against (None: no check).
        self.space = space
        # Called with each object record once it is published (e.g. inbound CI events link
        # labelled uploads to their build); a failing hook is logged, never the upload's error.
        self.on_publish: list[Callable[[ObjectRecord], Awaitable[None]]] = []
        # Outbound webhooks (services/webhooks.py): object.* and bucket.* events.
        self.notify: Notifier = NULL_NOTIFIER
        # ``s3.blockPublicAccess``: no bucket or object may be public (auth/public_access).
        self.block_public_access = False
        # Buckets seen to exist, and until when that is trusted (see BUCKET_SEEN_S).
        self._seen_buckets: dict[str, float] = {}

    # ---- buckets ------------------------------------------------------------------------
    async def create_bucket(
        self,
        name: str,
        owner: str,
        *,
        public_read: bool | None = None,
        labels: dict[str, str] | None = None,
        exist_ok: bool = False,
        web: bool | None = None,
        object_lock: bool = False,
    ) -> tuple[Bucket, bool]:
        """Create a bucket; returns (bucket, created). An existing bucket of the same owner is
        updated when ``exist_ok`` with the settings given (None keeps what it has); of another
        owner it is ``BucketAlreadyExists``. ``web``: serve HTML, SVG, scripts… inline
        (api/content_safety.py)."""
        validate_bucket_name(name)
        if public_read:
            await self.check_public_acl(name)
        bucket = Bucket(
            name=name,
            created_at=time.time(),
            owner=owner,
            public_read=bool(public_read),
            labels=labels or {},
            settings={"web": True} if web else {},
        )
        if object_lock:  # as on AWS: Object Lock enables versioning for good
            enable_bucket_lock(bucket)
            set_bucket_versioning(bucket, ENABLED)
        try:
            await self.metadata.create_bucket(bucket)
        except AlreadyExistsError:
            existing = await self.metadata.get_bucket(name)
            if existing is None:  # deleted in between; let the client retry
                raise StoreError("ServiceUnavailable", "bucket changed concurrently") from None
            if existing.owner != owner:
                raise StoreError(
                    "BucketAlreadyExists", f"bucket {name!r} already exists", resource=name
                ) from None
            if not exist_ok:
                raise StoreError(
                    "BucketAlreadyOwnedByYou", f"you already own bucket {name!r}", resource=name
                ) from None
            if public_read is not None:
                existing.public_read = public_read
            if labels is not None:
                existing.labels = labels
            if web is not None:
                set_bucket_web(existing, web)
            await self.metadata.update_bucket(existing)
            return existing, False
        await self.notify.emit("bucket.created", {"bucket": name}, {"owner": owner})
        return bucket, True

    async def get_bucket(self, name: str) -> Bucket:
        validate_bucket_name(name)
        bucket = await self.metadata.get_bucket(name)
        if bucket is None:
            raise self._no_such_bucket(name)
        return bucket

    @staticmethod
    def _no_such_bucket(name: str) -> StoreError:
        return StoreError("NoSuchBucket", f"bucket {name!r} does not exist", resource=name)

    async def list_buckets(self) -> list[Bucket]:
        return await self.metadata.list_buckets()

    async def delete_bucket(self, name: str, *, recursive: bool = False) -> int:
        """Delete a bucket; returns the number of objects removed with it. A bucket that keeps
        noncurrent versions or delete markers is not empty (as on AWS)."""
        bucket = await self.get_bucket(name)
        removed = 0
        if recursive and bucket_lock(bucket) is not None:
            await self._refuse_if_locked(name)
        if recursive:
            removed = await self.metadata.delete_objects_in_bucket(name)
        elif await self.metadata.count_objects(name, limit=1) or (
            bucket_versioning(bucket) and await self.metadata.has_object_versions(name)
        ):
            raise StoreError(
                "BucketNotEmpty",
                f"bucket {name!r} is not empty; delete its objects first or pass recursive=true",
                resource=name,
            )
        self._seen_buckets.pop(name, None)
        await self.metadata.delete_bucket(name)
        self._seen_buckets.pop(name, None)
        await self.notify.emit("bucket.deleted", {"bucket": name}, {"objects_removed": removed})
        return removed

    async def check_public_acl(self, name: str) -> None:
        """Refuse making bucket ``name`` or one of its objects public-read by ACL when public
        access is blocked (``BlockPublicAcls``, or ``s3.blockPublicAccess``)."""
        bucket = await self.metadata.get_bucket(name)
        if effective_block(bucket, self.block_public_access).BlockPublicAcls:
            raise blocked("a public-read ACL", "BlockPublicAcls", self.block_public_access)

    async def is_public(self, resource: str, version_id: str | None = None) -> bool:
        """Public-read resolver for the Authorizer: ``bucket`` or ``bucket/key`` (public when
        the bucket is, or when the object — the version asked for, else the current one —
        carries the public-read ACL), unless its public ACLs are ignored
        (``IgnorePublicAcls``, or ``s3.blockPublicAccess``)."""
        name, _, key = resource.partition("/")
        bucket = await self.metadata.get_bucket(name)
        if bucket is None:
            return False
        if effective_block(bucket, self.block_public_access).IgnorePublicAcls:
            return False
        if bucket.public_read:
            return True
        if key and key != "*":
            if version_id is not None:
                stored = stored_version_id(version_id)
                record = await self.metadata.get_object_version(name, key, stored)
            else:
                record = await self.metadata.get_object(name, key)
            return bool(record and record.public_read)
        return False

    # ---- objects ------------------------------------------------------------------------
    async def require_bucket(self, name: str) -> None:
        """``NoSuchBucket`` unless bucket ``name`` exists: before a write reads its body. A
        bucket seen in the last ``BUCKET_SEEN_S`` is not looked up again (one metadata trip
        less per small write); publishing checks again, atomically."""
        validate_bucket_name(name)
        now = time.monotonic()
        if self._seen_buckets.get(name, 0.0) > now:
            return
        await self.get_bucket(name)
        if len(self._seen_buckets) > 1024:
            self._seen_buckets.clear()
        self._seen_buckets[name] = now + BUCKET_SEEN_S

    async def begin_put(self, bucket: str, key: str, options: PutOptions) -> PutSession:
        validate_key(key)
        retention, hold = options.retention, options.legal_hold
        if retention.mode or retention.until is not None or hold is not None:
            check_lock_request(await self.get_bucket(bucket), retention, hold)
        else:
            await self.require_bucket(bucket)  # usually no lookup: see require_bucket
        await self.check_space(options.expected_size)
        extra = ("md5",) if options.md5_etag or options.expected_md5 else ()
        writer = await self.blobs.writer(extra_hashes=extra)
        return PutSession(self, bucket, key, writer, options)

    async def check_space(self, size: int | None) -> None:
        """Refuse (``InsufficientStorage``) a blob write of ``size`` bytes that would not fit
        or would eat into the free-space reserve (:mod:`.space`)."""
        if self.space is not None:
            await self.space.check_write(size)

    async def publish(
        self, record: ObjectRecord, *, if_absent: bool = False
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        """Point (bucket, key) at a committed blob; ``if_absent``: only if no object has the
        key at this moment (412 PreconditionFailed otherwise; the blob is left to GC)."""
        # The bucket may have been deleted while the body streamed in; its versioning and
        # Object Lock settings decide how the write is kept (never cached: a write just after
        # versioning is enabled must keep the version it replaces).
        bucket = await self.get_bucket(record.bucket)
        writer = current_principal.get()  # a copy is the copier's, not its source's
        record.writer = writer.id if writer is not None else ""
        record.writer_session = writer.session if writer is not None else ""
        record.noncurrent_since = None
        if record.retention_mode or record.legal_hold:
            require_lock(bucket)
        elif bucket_lock(bucket) is not None:
            default = default_retention(bucket, record.updated_at)
            record.retention_mode, record.retain_until = default.mode, default.until
        versioning = bucket_versioning(bucket)
        try:
            if versioning:
                record.version_id = new_version_id() if versioning == ENABLED else ""
                previous = await self.metadata.put_object_version(record, if_absent=if_absent)
            else:
                record.version_id = ""
                # Deleted since the look-up above? Checked in the same operation as the write.
                previous = await self.metadata.put_object(
                    record, if_absent=if_absent, require_bucket=True
                )
        except NotFoundError:
            raise self._no_such_bucket(record.bucket) from None
        except AlreadyExistsError:
            raise StoreError(
                "PreconditionFailed",
                f"{record.bucket}/{record.key} was created meanwhile (If-None-Match: *); "
                "nothing was replaced",
                resource=f"{record.bucket}/{record.key}",
            ) from None
        if previous is not None:
            record.created_at = previous.created_at
        for hook in self.on_publish:
            try:
                await hook(record)
            except Exception:
                log.exception("after publishing %s/%s", record.bucket, record.key)
        await self.notify.emit(
            "object.created",
            {"bucket": record.bucket, "key": record.key, "digest": record.digest},
            {"size": record.size, "content_type": record.content_type, "replaced": bool(previous)},
        )
        return record, previous

    async def head_object(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectRecord:
        """The current object, or with ``version_id`` (as S3 names it: ``null`` is the null
        version) that version. A key whose latest version is a delete marker is
        ``NoSuchKey`` with ``x-amz-delete-marker``; a version that is a delete marker is
        ``MethodNotAllowed``, as on AWS."""
        validate_key(key)
        if version_id is not None:
            return await self._version(bucket, key, stored_version_id(version_id))
        record = await self.metadata.get_object(bucket, key)
        if record is None:
            found = await self.get_bucket(bucket)  # NoSuchBucket wins over NoSuchKey
            headers: dict[str, str] = {}
            if bucket_versioning(found):
                latest = await self.latest_version(bucket, key)
                if latest is not None and latest.delete_marker:
                    headers = delete_marker_of(latest)
            raise StoreError(
                "NoSuchKey",
                f"object {key!r} does not exist in bucket {bucket!r}",
                resource=f"{bucket}/{key}",
                headers=headers,
            )
        return record

    async def read_object(
        self, record: ObjectRecord, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of an object, across its part blobs if it has any."""
        end = record.size if end is None else min(end, record.size)
        if not record.parts:
            async for chunk in self.blobs.read(record.digest, start, end):
                yield chunk
            return
        offset = 0
        for part in record.parts:
            p_start, p_end = offset, offset + int(part["size"])
            offset = p_end
            if p_end <= start or p_start >= end:
                continue
            async for chunk in self.blobs.read(
                part["digest"], max(start, p_start) - p_start, min(end, p_end) - p_start
            ):
                yield chunk

    async def send_object_to_socket(
        self, record: ObjectRecord, sock_fd: int, start: int, end: int
    ) -> int:
        """Send bytes ``[start, end)`` of a single-blob object straight from its blob to a
        plain (not TLS) socket, as far as that goes quickly (``BlobStore.send_to_socket``);
        returns the bytes sent, the caller streams the rest with :meth:`read_object`."""
        if record.parts:
            return 0
        return await self.blobs.send_to_socket(record.digest, sock_fd, start, min(end, record.size))

    async def copy_object(
        self,
        source: ObjectRecord,
        bucket: str,
        key: str,
        replace: PutOptions | None,
        *,
        if_absent: bool = False,
        tags: dict[str, str] | None = None,
        retention: Retention | None = None,
        legal_hold: bool | None = None,
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        """Point ``bucket/key`` at ``source``'s bytes (no byte copy: blobs are shared). With
        ``replace``, its content type, metadata, headers and labels replace the source's; with
        ``tags``, its S3 tags (else the copy keeps the source's). A copy is a new object: it
        expires only when ``replace`` gives it an expiry, never by the source's, and is
        locked only as ``retention`` / ``legal_hold`` (or its bucket's default) say."""
        validate_key(key)
        now = time.time()
        record = dataclasses.replace(
            source,
            bucket=bucket,
            key=key,
            created_at=now,
            updated_at=now,
            public_read=False,
            expires_at=replace.expires_at if replace is not None else None,
            retention_mode="",
            retain_until=None,
            legal_hold=None,
        )
        if retention is not None:
            check_retention(retention)
            set_lock(record, retention, legal_hold)
        elif legal_hold is not None:
            set_lock(record, Retention(), legal_hold)
        if replace is not None:
            record.content_type = replace.content_type or DEFAULT_CONTENT_TYPE
            record.user_metadata = replace.user_metadata
            record.headers = replace.headers
            record.labels = replace.labels
        if tags is not None:
            record.tags = tags
        return await self.publish(record, if_absent=if_absent)

    async def _bucket_view(self, name: str) -> tuple[float, list[LifecycleRule], str]:
        """The bucket's lifecycle rules and versioning state as cached for answers' headers
        (``RULES_TTL``); enforcement always reads the bucket afresh."""
        now = time.monotonic()
        cached = self._rules.get(name)
        if cached is None or cached[0] < now:
            bucket = await self.metadata.get_bucket(name)
            if len(self._rules) > 10_000:
                self._rules.clear()
            rules = bucket_rules(bucket) if bucket is not None else []
            versioning = bucket_versioning(bucket) if bucket is not None else ""
            cached = self._rules[name] = (now + RULES_TTL, rules, versioning)
        return cached

    async def expiration(self, record: ObjectRecord) -> Expiration | None:
        """When ``record`` expires: its own expiry or the first of its bucket's lifecycle
        rules that selects it (None: never)."""
        return expiration_of(record, (await self._bucket_view(record.bucket))[1])

    async def versioning_seen(self, name: str) -> str:
        """The bucket's versioning state ("", Enabled, Suspended) for an answer's headers."""
        return (await self._bucket_view(name))[2]

    async def set_lifecycle(self, name: str, rules: list[LifecycleRule] | None) -> None:
        """Replace the bucket's lifecycle rules (None: remove them)."""
        bucket = await self.get_bucket(name)
        set_bucket_rules(bucket, rules)
        await self.metadata.update_bucket(bucket)
        self._rules.pop(name, None)

    async def delete_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        existing: bool = False,
        bypass_governance: bool = False,
    ) -> Deletion:
        """Delete ``key``: in a bucket without versioning, the object; with versioning, add a
        delete marker (``existing``: only if the key has a current object); with
        ``version_id`` (as S3 names it), remove that version for good, unless Object Lock
        protects it (``bypass_governance``: already authorized)."""
        validate_key(key)
        return await self._delete(bucket, key, version_id, existing, bypass_governance)

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str | None = None,
        limit: int = 1000,
    ) -> Listing:
        """List keys in order, rolling keys that share ``prefix…delimiter`` into common
        prefixes. ``start_after`` is a key or a common prefix already returned.

        ``truncated`` is exact: it is true only when another key or prefix follows."""
        await self.get_bucket(bucket)
        objects: list[ObjectRecord] = []
        prefixes: list[str] = []
        after = start_after
        if after is not None and delimiter and common_prefix(after, prefix, delimiter) == after:
            after = beyond(after)  # resuming after a common prefix: skip what is beneath it
        last: str | None = None
        while True:
            page = await self.metadata.list_objects(
                bucket,
                prefix=prefix,
                start_after=after,
                limit=max(1, limit - len(objects) - len(prefixes)) + 1,
            )
            jumped = False
            for record in page.objects:
                if len(objects) + len(prefixes) >= limit:
                    return Listing(objects, prefixes, True, last)
                common = common_prefix(record.key, prefix, delimiter) if delimiter else None
                if common is not None:
                    prefixes.append(common)
                    last = common
                    after = beyond(common)  # skip the rest of this prefix with a new query
                    jumped = True
                    break
                objects.append(record)
                last = after = record.key
            if not jumped and not page.truncated:
                return Listing(objects, prefixes, False)


def bucket_json(bucket: Bucket) -> dict[str, Any]:
    return {
        "name": bucket.name,
        "created_at": iso_time(bucket.created_at),
        "owner": bucket.owner,
        "public_read": bucket.public_read,
        "labels": bucket.labels,
        "tags": bucket_tags(bucket),
        "web": bucket_is_web(bucket),
        "versioning": bucket_versioning(bucket) or None,
        "object_lock": bucket_lock(bucket),
    }


def bucket_is_web(bucket: Bucket) -> bool:
    """Does the bucket serve active content (HTML, SVG, scripts) inline? Off by default."""
    return bool(bucket.settings.get("web", False))


def set_bucket_web(bucket: Bucket, web: bool) -> None:
    if web:
        bucket.settings["web"] = True
    else:
        bucket.settings.pop("web", None)


def bucket_tags(bucket: Bucket) -> dict[str, str]:
    """A bucket's S3 tags (PutBucketTagging), kept in its settings as ``[{"key", "value"}]``
    pairs (tag keys may hold ``.`` or start with ``$``, which document stores handle badly as
    field names)."""
    return {pair["key"]: pair["value"] for pair in bucket.settings.get("tags", [])}


def set_bucket_tags(bucket: Bucket, tags: dict[str, str]) -> None:
    """Replace a bucket's S3 tags (none: remove them)."""
    if tags:
        bucket.settings["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    else:
        bucket.settings.pop("tags", None)


def object_json(record: ObjectRecord) -> dict[str, Any]:
    return {
        "bucket": record.bucket,
        "key": record.key,
        "size": record.size,
        "content_type": record.content_type,
        "sha256": record.digest.removeprefix("sha256:"),
        "digest": record.digest,
        "etag": record.etag,
        "created_at": iso_time(record.created_at),
        "updated_at": iso_time(record.updated_at),
        "labels": record.labels,
        "tags": record.tags,
        "expires_at": iso_time(record.expires_at) if record.expires_at is not None else None,
        "version_id": record.version_id or None,
        **lock_json(record),
    }
