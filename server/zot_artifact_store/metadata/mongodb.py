"""The production metadata backend: MongoDB through pymongo's asyncio API.

Many stateless server replicas may share one database: every write that depends on what is
stored is one atomic server-side operation (``find_one_and_update`` with upsert,
``find_one_and_delete``), unique indexes guard names, and no replica caches a record.

Records are stored as documents with their fields at the top level; a map-valued field
(labels, user metadata, headers, settings, ...) is stored as a list of ``{"k": ..., "v": ...}``
pairs, because user-supplied map keys may hold ``.`` or start with ``$`` (label names like
``app.kubernetes.io/name``), which MongoDB field names handle badly. A pair list can still be
queried with ``$elemMatch``.

The client is created in :meth:`MongoMetadataStore.open`, i.e. after any fork (DESIGN.md §10).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .base import (
    SCHEMA_VERSION,
    AccessKey,
    AlreadyExistsError,
    ApiToken,
    AuditQuery,
    AuditRecord,
    Bucket,
    BuildQuery,
    BuildRecord,
    ComponentQuery,
    EventSource,
    Evidence,
    InboundEvent,
    Manifest,
    MetadataError,
    MetadataStore,
    MultipartUpload,
    NotFoundError,
    ObjectPage,
    ObjectRecord,
    Part,
    Policy,
    RegistryUpload,
    SbomComponent,
    Tag,
    TrustedKey,
    VerificationGate,
    WebhookDelivery,
    WebhookSubscription,
    blob_digests,
    from_doc,
    merge_versions,
    prefix_upper_bound,
    to_doc,
)

DEFAULT_DATABASE = "zot_artifact_store"
R = TypeVar("R")


def _map_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.default_factory is dict)


_MAPS = {
    cls: _map_fields(cls)
    for cls in (
        Bucket,
        ObjectRecord,
        MultipartUpload,
        Part,
        Manifest,
        Tag,
        RegistryUpload,
        ApiToken,
        AuditRecord,
        Policy,
        AccessKey,
        Evidence,
        TrustedKey,
        SbomComponent,
        VerificationGate,
        EventSource,
        InboundEvent,
        BuildRecord,
        WebhookSubscription,
        WebhookDelivery,
    )
}


# Compare-and-delete rounds before a guarded version delete gives up (delete_object_version).
GUARD_ATTEMPTS = 8


def _encode(record: Any, **extra: Any) -> dict[str, Any]:
    maps = _MAPS[type(record)]
    doc = to_doc(record)
    for name in maps:
        doc[name] = [{"k": k, "v": v} for k, v in doc[name].items()]
    doc.update(extra)
    return doc


def _decode(cls: type[R], doc: dict[str, Any] | None) -> R | None:
    if doc is None:
        return None
    for name in _MAPS[cls]:
        if name in doc:
            doc[name] = {pair["k"]: pair["v"] for pair in doc[name]}
    return from_doc(cls, doc)


def _key_range(prefix: str) -> dict[str, str]:
    cond = {"$gte": prefix}
    upper = prefix_upper_bound(prefix)
    if prefix and upper is not None:
        cond["$lt"] = upper
    return cond


class MongoMetadataStore(MetadataStore):
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._db: AsyncDatabase[dict[str, Any]] | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        if self._db is None:
            raise MetadataError("metadata store is not open")
        return self._db

    def _c(self, name: str) -> AsyncCollection[dict[str, Any]]:
        return self.db[name]

    async def open(self) -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self.uri, serverSelectionTimeoutMS=10_000, appname="zot-artifact-store"
        )
        try:
            db = client.get_default_database(default=DEFAULT_DATABASE)
            await db.command("ping")
            await db["objects"].create_index(
                [("bucket", ASCENDING), ("key", ASCENDING)], unique=True, name="bucket_key"
            )
            await db["objects"].create_index([("blobs", ASCENDING)], name="blobs")
            await db["objects"].create_index([("digest", ASCENDING)], name="digest")
            # S3 versioning: noncurrent versions and delete markers.
            await db["object_versions"].create_index(
                [("bucket", ASCENDING), ("key", ASCENDING), ("version_id", ASCENDING)],
                unique=True,
                name="bucket_key_version",
            )
            await db["object_versions"].create_index(
                [
                    ("bucket", ASCENDING),
                    ("key", ASCENDING),
                    ("updated_at", DESCENDING),
                    ("version_id", DESCENDING),
                ],
                name="in_order",
            )
            await db["object_versions"].create_index(
                [("bucket", ASCENDING), ("noncurrent_since", ASCENDING)],
                name="by_age",
                partialFilterExpression={"noncurrent_since": {"$type": "number"}},
            )
            await db["object_versions"].create_index([("blobs", ASCENDING)], name="blobs")
            await db["multipart_uploads"].create_index(
                [
                    ("bucket", ASCENDING),
                    ("key", ASCENDING),
                    ("initiated_at", ASCENDING),
                    ("upload_id", ASCENDING),
                ],
                name="bucket_key_initiated",
            )
            await db["parts"].create_index(
                [("upload_id", ASCENDING), ("part_number", ASCENDING)],
                unique=True,
                name="upload_part",
            )
            await db["manifests"].create_index(
                [("repo", ASCENDING), ("digest", ASCENDING)], unique=True, name="repo_digest"
            )
            await db["manifests"].create_index(
                [("repo", ASCENDING), ("subject", ASCENDING)], name="repo_subject"
            )
            await db["tags"].create_index(
                [("repo", ASCENDING), ("name", ASCENDING)], unique=True, name="repo_name"
            )
            await db["repo_blobs"].create_index(
                [("repo", ASCENDING), ("digest", ASCENDING)], unique=True, name="repo_digest"
            )
            await db["audit"].create_index(
                [("time", DESCENDING), ("record_id", DESCENDING)], name="time_id"
            )
            await db["audit"].create_index(
                [("principal", ASCENDING), ("time", DESCENDING)], name="principal_time"
            )
            await db["evidence"].create_index(
                [("subject", ASCENDING), ("kind", ASCENDING), ("created_at", ASCENDING)],
                name="subject_kind",
            )
            for field_name in ("purl", "purl_base", "name"):
                await db["sbom_components"].create_index([(field_name, ASCENDING)], name=field_name)
            await db["objects"].create_index(
                [("labels.k", ASCENDING), ("labels.v", ASCENDING)], name="labels"
            )
            await db["inbound_events"].create_index(
                [("source_id", ASCENDING), ("event_id", ASCENDING)],
                unique=True,
                name="source_event",
            )
            await db["builds"].create_index(
                [("created_at", DESCENDING), ("build_id", DESCENDING)], name="time_id"
            )
            await db["builds"].create_index(
                [("source_id", ASCENDING), ("created_at", DESCENDING)], name="source_time"
            )
            await db["builds"].create_index([("run_key", ASCENDING)], name="run_key")
            await db["builds"].create_index([("digests", ASCENDING)], name="digests")
            await db["webhook_deliveries"].create_index(
                [("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"
            )
            await db["webhook_deliveries"].create_index(
                [
                    ("webhook_id", ASCENDING),
                    ("created_at", DESCENDING),
                    ("delivery_id", DESCENDING),
                ],
                name="webhook_time",
            )
            # Lifecycle: expiring objects, abandoned uploads (services/lifecycle.py).
            await db["objects"].create_index(
                [("expires_at", ASCENDING)],
                name="expires_at",
                partialFilterExpression={"expires_at": {"$type": "number"}},
            )
            await db["multipart_uploads"].create_index(
                [("initiated_at", ASCENDING), ("upload_id", ASCENDING)], name="initiated"
            )
            await db["registry_uploads"].create_index([("created_at", ASCENDING)], name="created")
            await db["auth_failures"].create_index(
                [("key", ASCENDING), ("slot", ASCENDING)], name="key_slot"
            )
            await db["auth_failures"].create_index([("expires_at", ASCENDING)], name="expiry")
            meta = await db["meta"].find_one({"_id": "schema"})
            version = int(meta["version"]) if meta else 0
            if version > SCHEMA_VERSION:
                raise MetadataError(
                    f"metadata schema version {version} is newer than this server supports "
                    f"({SCHEMA_VERSION}); upgrade the server"
                )
            if version < SCHEMA_VERSION:
                await db["meta"].update_one(
                    {"_id": "schema"}, {"$set": {"version": SCHEMA_VERSION}}, upsert=True
                )
        except BaseException:
            await client.close()
            raise
        self._client, self._db = client, db

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._db = self._client, None, None
            await client.close()

    async def ping(self) -> None:
        await self.db.command("ping")

    async def schema_version(self) -> int:
        meta = await self._c("meta").find_one({"_id": "schema"})
        return int(meta["version"]) if meta else 0

    # ---- buckets ----------------------------------------------------------------------------
    async def create_bucket(self, bucket: Bucket) -> None:
        try:
            await self._c("buckets").insert_one(_encode(bucket, _id=bucket.name))
        except DuplicateKeyError as exc:
            raise AlreadyExistsError(f"bucket {bucket.name!r} exists") from exc

    async def get_bucket(self, name: str) -> Bucket | None:
        return _decode(Bucket, await self._c("buckets").find_one({"_id": name}))

    async def list_buckets(self) -> list[Bucket]:
        cursor = self._c("buckets").find({}).sort("_id", ASCENDING)
        return [b for b in [_decode(Bucket, d) async for d in cursor] if b is not None]

    async def update_bucket(self, bucket: Bucket) -> None:
        result = await self._c("buckets").replace_one(
            {"_id": bucket.name}, _encode(bucket, _id=bucket.name)
        )
        if result.matched_count == 0:
            raise NotFoundError(f"bucket {bucket.name!r} does not exist")

    async def delete_bucket(self, name: str) -> bool:
        result = await self._c("buckets").delete_one({"_id": name})
        return result.deleted_count > 0

    # ---- objects ----------------------------------------------------------------------------
    async def put_object(
        self, obj: ObjectRecord, *, if_absent: bool = False, require_bucket: bool = False
    ) -> ObjectRecord | None:
        if require_bucket and await self._c("buckets").find_one({"_id": obj.bucket}) is None:
            raise NotFoundError(f"bucket {obj.bucket!r} does not exist")
        doc = _encode(obj, blobs=sorted(blob_digests(obj)))
        replace = {k: v for k, v in doc.items() if k != "created_at"}
        where = {"bucket": obj.bucket, "key": obj.key}
        objects = self._c("objects")
        if if_absent:  # the unique (bucket, key) index decides between racing creators
            try:
                await objects.insert_one(doc)
            except DuplicateKeyError:
                raise AlreadyExistsError(f"object {obj.bucket}/{obj.key} exists") from None
            return None
        # Update-or-insert in two atomic steps rather than one upsert, so created_at is kept
        # without $setOnInsert (which some wire-compatible servers ignore on upsert). When two
        # writers race to create a key, the unique index picks one; the other updates it.
        for _ in range(5):
            before = await objects.find_one_and_update(
                where, {"$set": replace}, return_document=ReturnDocument.BEFORE
            )
            if before is not None:
                return _decode(ObjectRecord, before)
            try:
                await objects.insert_one(doc)
                return None
            except DuplicateKeyError:
                continue
        raise MetadataError(f"could not write object {obj.bucket}/{obj.key}: too much contention")

    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        doc = await self._c("objects").find_one({"bucket": bucket, "key": key})
        return _decode(ObjectRecord, doc)

    # ---- object versions ----------------------------------------------------------------------
    # Without multi-document transactions each step is atomic on its own. They are ordered so
    # that a crash (or a lost connection) between any two loses no version: a write keeps the
    # current version among the kept ones *before* it replaces it, and replaces it only while
    # it is still the version kept (compare-and-swap, so two racing writers each keep the one
    # they replace). What an interrupted step can leave is a kept copy of the current version;
    # readers never show it (``_without_copies``) and the next write of the key overwrites it.
    # A crash may leave a delete undone; it never undoes a write.
    async def _keep_version(self, record: ObjectRecord) -> None:
        where = {"bucket": record.bucket, "key": record.key, "version_id": record.version_id}
        doc = _encode(record, blobs=sorted(blob_digests(record)))
        await self._c("object_versions").replace_one(where, doc, upsert=True)

    @staticmethod
    def _as_it_was(record: ObjectRecord) -> dict[str, Any]:
        """Matches the current object only while it is still ``record`` (same version, same
        write), for a compare-and-swap."""
        return {
            "bucket": record.bucket,
            "key": record.key,
            "version_id": record.version_id,
            "updated_at": record.updated_at,
            "digest": record.digest,
        }

    async def put_object_version(
        self, obj: ObjectRecord, *, if_absent: bool = False
    ) -> ObjectRecord | None:
        objects, versions = self._c("objects"), self._c("object_versions")
        where = {"bucket": obj.bucket, "key": obj.key}
        doc = _encode(obj, blobs=sorted(blob_digests(obj)))
        replace = {k: v for k, v in doc.items() if k != "created_at"}
        for _ in range(GUARD_ATTEMPTS):
            current = _decode(ObjectRecord, await objects.find_one(where))
            if current is not None and if_absent and not obj.delete_marker:
                raise AlreadyExistsError(f"object {obj.bucket}/{obj.key} exists")
            if current is not None and current.version_id != obj.version_id:
                # 1. Kept before it is replaced (a crash after this leaves a copy, not a loss).
                await self._keep_version(
                    dataclasses.replace(current, noncurrent_since=obj.updated_at)
                )
            # 2. A delete marker that was the latest version is not any more.
            await versions.update_many(
                {**where, "noncurrent_since": None}, {"$set": {"noncurrent_since": obj.updated_at}}
            )
            # 3. The swap, only while the current object is still the one kept.
            previous: ObjectRecord | None = None
            if current is None and not obj.delete_marker:
                try:
                    await objects.insert_one(doc)
                except DuplicateKeyError:
                    if if_absent:
                        raise AlreadyExistsError(f"object {obj.bucket}/{obj.key} exists") from None
                    continue  # another writer created the key meanwhile: keep it first
            elif current is not None:
                match = self._as_it_was(current)
                if obj.delete_marker:
                    previous = _decode(ObjectRecord, await objects.find_one_and_delete(match))
                else:
                    before = await objects.find_one_and_update(
                        match, {"$set": replace}, return_document=ReturnDocument.BEFORE
                    )
                    previous = _decode(ObjectRecord, before)
                if previous is None:
                    continue  # replaced or removed meanwhile: keep that one instead
            # 4. Kept once more as it was when swapped (a tag, hold or retention set between
            # steps 1 and 3 stays with it); a null version replaced in place goes.
            if previous is not None and previous.version_id != obj.version_id:
                previous.noncurrent_since = obj.updated_at
                await self._keep_version(previous)
            if obj.delete_marker:
                await self._keep_version(dataclasses.replace(obj, noncurrent_since=None))
            elif obj.version_id == "":
                await versions.delete_one(
                    {**where, "version_id": "", "noncurrent_since": {"$ne": None}}
                )
            return previous
        raise MetadataError(f"could not write object {obj.bucket}/{obj.key}: too much contention")

    async def _without_copies(self, kept: list[ObjectRecord]) -> list[ObjectRecord]:
        """The kept versions without copies of a current version (left by an interrupted
        write, or a null version replaced in place)."""
        if not kept:
            return kept
        current: set[tuple[str, str, str]] = set()
        for bucket in {r.bucket for r in kept}:  # one bucket, in every caller
            keys = sorted({r.key for r in kept if r.bucket == bucket})
            cursor = self._c("objects").find(
                {"bucket": bucket, "key": {"$in": keys}}, {"key": 1, "version_id": 1}
            )
            current |= {(bucket, d["key"], d.get("version_id", "")) async for d in cursor}
        return [r for r in kept if (r.bucket, r.key, r.version_id) not in current]

    async def get_object_version(
        self, bucket: str, key: str, version_id: str
    ) -> ObjectRecord | None:
        current = await self.get_object(bucket, key)
        if current is not None and current.version_id == version_id:
            return current
        doc = await self._c("object_versions").find_one(
            {"bucket": bucket, "key": key, "version_id": version_id}
        )
        return _decode(ObjectRecord, doc)

    async def _take_version(
        self, where: dict[str, Any], version_id: str, guard: Callable[[ObjectRecord], None]
    ) -> ObjectRecord | None:
        """Remove the version (current or kept) if ``guard`` lets it go, compare-and-delete:
        the delete matches only the lock state the guard saw, so a retention or legal hold
        set in between makes it look again (no transactions here)."""
        for _ in range(GUARD_ATTEMPTS):
            for collection in (self._c("objects"), self._c("object_versions")):
                doc = await collection.find_one({**where, "version_id": version_id})
                if doc is not None:
                    break
            else:
                return None
            guard(_decode(ObjectRecord, dict(doc)))  # type: ignore[arg-type]
            # Exactly as seen (null matches a field never set).
            seen = {n: doc.get(n) for n in ("retention_mode", "retain_until", "legal_hold")}
            taken = await collection.find_one_and_delete(
                {**where, "version_id": version_id, **seen}
            )
            if taken is not None:
                return _decode(ObjectRecord, taken)
        raise MetadataError(f"version {version_id or 'null'} kept changing while being deleted")

    async def delete_object_version(
        self,
        bucket: str,
        key: str,
        version_id: str,
        guard: Callable[[ObjectRecord], None] | None = None,
    ) -> ObjectRecord | None:
        where = {"bucket": bucket, "key": key}
        versions = self._c("object_versions")
        removed = None
        if guard is not None:
            removed = await self._take_version(where, version_id, guard)
        else:
            removed = _decode(
                ObjectRecord,
                await self._c("objects").find_one_and_delete({**where, "version_id": version_id}),
            )
        if removed is None and version_id == "":  # a record written before versions existed
            current = await self.get_object(bucket, key)
            if current is not None and current.version_id == "":
                if guard is not None:
                    guard(current)
                removed = await self.delete_object(bucket, key)
        if removed is None and guard is None:
            removed = _decode(
                ObjectRecord,
                await versions.find_one_and_delete({**where, "version_id": version_id}),
            )
        if removed is None:
            await self._promote_newest(where, markers=False)  # finishes an interrupted delete
            return None
        if removed.noncurrent_since is None:
            # The latest version went: a kept copy of it (an interrupted write's) goes too,
            # then the newest kept version becomes the latest.
            await versions.delete_one({**where, "version_id": version_id})
            await self._promote_newest(where)
        return removed

    async def _promote_newest(self, where: dict[str, Any], *, markers: bool = True) -> None:
        """When a key has kept versions but no latest one (its latest was deleted), the newest
        kept version becomes the latest; idempotent, so an interrupted promotion is finished
        by the next delete of a version of the key. Without ``markers`` a delete marker is
        left as it is (a write marks the latest marker noncurrent just before it creates the
        key's object: that marker must not come back meanwhile)."""
        versions = self._c("object_versions")
        if await versions.find_one({**where, "noncurrent_since": None}) is not None:
            return  # the latest version is a delete marker
        if await self._c("objects").find_one(where, {"_id": 1}) is not None:
            return
        cursor = versions.find(where).sort([("updated_at", DESCENDING), ("version_id", DESCENDING)])
        newest = next(iter([_decode(ObjectRecord, d) async for d in cursor.limit(1)]), None)
        if newest is None:
            return
        newest.noncurrent_since = None
        if newest.delete_marker:
            if markers:
                await self._keep_version(newest)
            return
        try:
            await self.put_object(newest, if_absent=True)
        except AlreadyExistsError:
            return  # a new current version was written meanwhile: it stays
        await versions.delete_one({**where, "version_id": newest.version_id})

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        after: ObjectRecord | None = None,
        limit: int = 1000,
    ) -> ObjectPage:
        marker = after.key if after is not None else key_marker
        key: dict[str, str] = _key_range(prefix)
        if marker is not None:
            key["$gt"] = marker
        cursor = (
            self._c("objects")
            .find({"bucket": bucket, "key": key})
            .sort("key", ASCENDING)
            .limit(limit + 1)
        )
        current = [o for o in [_decode(ObjectRecord, d) async for d in cursor] if o is not None]
        where: dict[str, Any] = {"bucket": bucket, "key": _key_range(prefix)}
        if after is not None and (after.noncurrent_since is not None or after.delete_marker):
            where["$or"] = [
                {"key": {"$gt": marker}},
                {"key": marker, "updated_at": {"$lt": after.updated_at}},
                {
                    "key": marker,
                    "updated_at": after.updated_at,
                    "version_id": {"$lt": after.version_id},
                },
            ]
        elif marker is not None:
            where["key"] = {**where["key"], ("$gte" if after is not None else "$gt"): marker}
            if after is not None and prefix > marker:
                where["key"]["$gte"] = prefix
        order = [("key", ASCENDING), ("updated_at", DESCENDING), ("version_id", DESCENDING)]
        wanted = limit + 1
        while True:  # copies of a current version are not listed, and do not shorten a page
            cursor = self._c("object_versions").find(where).sort(order).limit(wanted)
            rows = [o for o in [_decode(ObjectRecord, d) async for d in cursor] if o is not None]
            kept = await self._without_copies(rows)
            if len(rows) < wanted or len(kept) > limit:
                return merge_versions(current, kept, limit)
            wanted += len(rows) - len(kept)

    async def update_object_version(self, record: ObjectRecord) -> bool:
        where = {"bucket": record.bucket, "key": record.key}
        doc = _encode(record, blobs=sorted(blob_digests(record)))
        current = await self.get_object(record.bucket, record.key)
        if current is not None and current.version_id == record.version_id:
            # Only while it is still that version (a write in between replaced it).
            match = {**where, "updated_at": current.updated_at, "digest": current.digest}
            result = await self._c("objects").replace_one(match, doc)
            if result.matched_count:
                return True
        result = await self._c("object_versions").replace_one(
            {**where, "version_id": record.version_id}, doc
        )
        return result.matched_count > 0

    async def has_object_versions(self, bucket: str) -> bool:
        return await self._c("object_versions").find_one({"bucket": bucket}) is not None

    async def noncurrent_versions(
        self, bucket: str, prefix: str, before: float, limit: int = 1000
    ) -> list[ObjectRecord]:
        where = {
            "bucket": bucket,
            "key": _key_range(prefix),
            "noncurrent_since": {"$type": "number", "$lte": before},
        }
        order = ["noncurrent_since", "key", "version_id"]
        kept = await self._oldest("object_versions", ObjectRecord, where, order, limit)
        return await self._without_copies(kept)

    async def delete_object(self, bucket: str, key: str) -> ObjectRecord | None:
        doc = await self._c("objects").find_one_and_delete({"bucket": bucket, "key": key})
        return _decode(ObjectRecord, doc)

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = 1000,
    ) -> ObjectPage:
        key: dict[str, str] = _key_range(prefix)
        if start_after is not None:
            key["$gt"] = start_after
        cursor = (
            self._c("objects")
            .find({"bucket": bucket, "key": key})
            .sort("key", ASCENDING)
            .limit(limit + 1)
        )
        docs = [d async for d in cursor]
        objects = [o for o in (_decode(ObjectRecord, d) for d in docs[:limit]) if o is not None]
        return ObjectPage(objects, truncated=len(docs) > limit)

    async def count_objects(self, bucket: str, limit: int | None = None) -> int:
        kwargs = {"limit": limit} if limit else {}
        return await self._c("objects").count_documents({"bucket": bucket}, **kwargs)

    async def delete_objects_in_bucket(self, bucket: str) -> int:
        result = await self._c("objects").delete_many({"bucket": bucket})
        await self._c("object_versions").delete_many({"bucket": bucket})
        return result.deleted_count

    async def object_digests(self) -> set[str]:
        current = await self._c("objects").distinct("blobs")
        kept = await self._c("object_versions").distinct("blobs")
        return {str(d) for d in [*current, *kept]}

    # ---- multipart uploads ------------------------------------------------------------------
    async def create_multipart(self, upload: MultipartUpload) -> None:
        try:
            await self._c("multipart_uploads").insert_one(_encode(upload, _id=upload.upload_id))
        except DuplicateKeyError as exc:
            raise AlreadyExistsError(f"upload {upload.upload_id!r} exists") from exc

    async def get_multipart(self, upload_id: str) -> MultipartUpload | None:
        doc = await self._c("multipart_uploads").find_one({"_id": upload_id})
        return _decode(MultipartUpload, doc)

    async def list_multipart(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[MultipartUpload], bool]:
        where: dict[str, Any] = {"bucket": bucket, "key": _key_range(prefix)}
        if key_marker is not None:
            marker = await self.get_multipart(upload_id_marker) if upload_id_marker else None
            if marker is not None and marker.key == key_marker:
                at = marker.initiated_at
                where["$or"] = [
                    {"key": {"$gt": key_marker}},
                    {"key": key_marker, "initiated_at": {"$gt": at}},
                    {"key": key_marker, "initiated_at": at, "upload_id": {"$gt": marker.upload_id}},
                ]
            else:
                where["key"]["$gt"] = key_marker
        cursor = (
            self._c("multipart_uploads")
            .find(where)
            .sort([("key", ASCENDING), ("initiated_at", ASCENDING), ("upload_id", ASCENDING)])
            .limit(limit + 1)
        )
        docs = [d async for d in cursor]
        uploads = [u for u in (_decode(MultipartUpload, d) for d in docs[:limit]) if u]
        return uploads, len(docs) > limit

    async def delete_multipart(self, upload_id: str) -> bool:
        result = await self._c("multipart_uploads").delete_one({"_id": upload_id})
        await self._c("parts").delete_many({"upload_id": upload_id})
        return result.deleted_count > 0

    async def put_part(self, part: Part) -> Part | None:
        before = await self._c("parts").find_one_and_replace(
            {"upload_id": part.upload_id, "part_number": part.part_number},
            _encode(part),
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return _decode(Part, before)

    async def list_parts(
        self, upload_id: str, after_part: int = 0, limit: int = 10000
    ) -> tuple[list[Part], bool]:
        cursor = (
            self._c("parts")
            .find({"upload_id": upload_id, "part_number": {"$gt": after_part}})
            .sort("part_number", ASCENDING)
            .limit(limit + 1)
        )
        docs = [d async for d in cursor]
        return [p for p in (_decode(Part, d) for d in docs[:limit]) if p], len(docs) > limit

    async def part_digests(self) -> set[str]:
        return {str(d) for d in await self._c("parts").distinct("digest")}

    # ---- OCI registry -----------------------------------------------------------------------
    async def put_manifest(self, manifest: Manifest) -> None:
        where = {"repo": manifest.repo, "digest": manifest.digest}
        try:
            await self._c("manifests").replace_one(where, _encode(manifest), upsert=True)
        except DuplicateKeyError:  # two writers of one new manifest: the same document
            await self._c("manifests").replace_one(where, _encode(manifest), upsert=True)

    async def get_manifest(self, repo: str, digest: str) -> Manifest | None:
        doc = await self._c("manifests").find_one({"repo": repo, "digest": digest})
        return _decode(Manifest, doc)

    async def delete_manifest(self, repo: str, digest: str) -> bool:
        result = await self._c("manifests").delete_one({"repo": repo, "digest": digest})
        return result.deleted_count > 0

    async def list_referrers(self, repo: str, subject: str) -> list[Manifest]:
        cursor = self._c("manifests").find({"repo": repo, "subject": subject}).sort("digest")
        return [m for m in [_decode(Manifest, d) async for d in cursor] if m is not None]

    async def list_repositories(
        self, after: str | None = None, limit: int = 1000
    ) -> tuple[list[str], bool]:
        names = sorted(
            str(n)
            for n in await self._c("manifests").distinct("repo")
            if after is None or str(n) > after
        )
        return names[:limit], len(names) > limit

    async def put_tag(self, tag: Tag) -> Tag | None:
        before = await self._c("tags").find_one_and_replace(
            {"repo": tag.repo, "name": tag.name},
            _encode(tag),
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return _decode(Tag, before)

    async def get_tag(self, repo: str, name: str) -> Tag | None:
        return _decode(Tag, await self._c("tags").find_one({"repo": repo, "name": name}))

    async def delete_tag(self, repo: str, name: str) -> bool:
        result = await self._c("tags").delete_one({"repo": repo, "name": name})
        return result.deleted_count > 0

    async def list_tags(
        self, repo: str, after: str | None = None, limit: int = 1000
    ) -> tuple[list[Tag], bool]:
        where: dict[str, Any] = {"repo": repo}
        if after is not None:
            where["name"] = {"$gt": after}
        cursor = self._c("tags").find(where).sort("name", ASCENDING).limit(limit + 1)
        tags = [t for t in [_decode(Tag, d) async for d in cursor] if t is not None]
        return tags[:limit], len(tags) > limit

    async def all_manifests(self) -> list[Manifest]:
        cursor = self._c("manifests").find({}).sort([("repo", ASCENDING), ("digest", ASCENDING)])
        return [m for m in [_decode(Manifest, d) async for d in cursor] if m is not None]

    async def tagged_manifests(self) -> set[tuple[str, str]]:
        cursor = self._c("tags").find({}, {"repo": 1, "digest": 1})
        return {(str(d["repo"]), str(d["digest"])) async for d in cursor}

    async def manifest_digests(self) -> set[str]:
        cursor = self._c("manifests").find({}, {"digest": 1, "references": 1})
        out: set[str] = set()
        async for doc in cursor:
            out.add(str(doc["digest"]))
            out.update(str(r) for r in doc.get("references", []))
        return out

    async def link_blob(self, repo: str, digest: str) -> None:
        link = {"repo": repo, "digest": digest}
        try:
            await self._c("repo_blobs").update_one(link, {"$set": link}, upsert=True)
        except DuplicateKeyError:  # a concurrent link of the same blob: already there
            pass

    async def is_blob_linked(self, repo: str, digest: str) -> bool:
        return await self._c("repo_blobs").find_one({"repo": repo, "digest": digest}) is not None

    async def unlink_blob(self, repo: str, digest: str) -> bool:
        result = await self._c("repo_blobs").delete_one({"repo": repo, "digest": digest})
        return result.deleted_count > 0

    async def create_registry_upload(self, upload: RegistryUpload) -> None:
        try:
            await self._c("registry_uploads").insert_one(_encode(upload, _id=upload.upload_id))
        except DuplicateKeyError as exc:
            raise AlreadyExistsError(f"upload {upload.upload_id!r} exists") from exc

    async def get_registry_upload(self, upload_id: str) -> RegistryUpload | None:
        doc = await self._c("registry_uploads").find_one({"_id": upload_id})
        return _decode(RegistryUpload, doc)

    async def delete_registry_upload(self, upload_id: str) -> bool:
        result = await self._c("registry_uploads").delete_one({"_id": upload_id})
        return result.deleted_count > 0

    async def set_registry_upload_session(self, upload_id: str, session_id: str) -> str | None:
        result = await self._c("registry_uploads").update_one(
            {"_id": upload_id, "session_id": ""}, {"$set": {"session_id": session_id}}
        )
        if result.matched_count:
            return session_id
        upload = await self.get_registry_upload(upload_id)
        return upload.session_id if upload is not None else None

    # ---- identity ---------------------------------------------------------------------------
    # API tokens and access keys: one collection each keyed by id, created once, then replaced.
    async def _create_doc(self, collection: str, ident: str, record: Any, what: str) -> None:
        try:
            await self._c(collection).insert_one(_encode(record, _id=ident))
        except DuplicateKeyError as exc:
            raise AlreadyExistsError(f"{what} {ident!r} exists") from exc

    async def _update_doc(self, collection: str, ident: str, record: Any, what: str) -> None:
        result = await self._c(collection).replace_one({"_id": ident}, _encode(record, _id=ident))
        if result.matched_count == 0:
            raise NotFoundError(f"{what} {ident!r} does not exist")

    async def _list_docs(self, collection: str, cls: type[R]) -> list[R]:
        cursor = self._c(collection).find({}).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return [r for r in [_decode(cls, d) async for d in cursor] if r is not None]

    async def create_api_token(self, token: ApiToken) -> None:
        await self._create_doc("api_tokens", token.token_id, token, "token")

    async def get_api_token(self, token_id: str) -> ApiToken | None:
        return _decode(ApiToken, await self._c("api_tokens").find_one({"_id": token_id}))

    async def update_api_token(self, token: ApiToken) -> None:
        await self._update_doc("api_tokens", token.token_id, token, "token")

    async def list_api_tokens(self) -> list[ApiToken]:
        return await self._list_docs("api_tokens", ApiToken)

    async def create_access_key(self, key: AccessKey) -> None:
        await self._create_doc("access_keys", key.access_key_id, key, "access key")

    async def get_access_key(self, access_key_id: str) -> AccessKey | None:
        return _decode(AccessKey, await self._c("access_keys").find_one({"_id": access_key_id}))

    async def update_access_key(self, key: AccessKey) -> None:
        await self._update_doc("access_keys", key.access_key_id, key, "access key")

    async def list_access_keys(self) -> list[AccessKey]:
        return await self._list_docs("access_keys", AccessKey)

    # ---- supply chain -----------------------------------------------------------------------
    async def create_trusted_key(self, key: TrustedKey) -> None:
        await self._create_doc("trusted_keys", key.key_id, key, "key")

    async def get_trusted_key(self, key_id: str) -> TrustedKey | None:
        return _decode(TrustedKey, await self._c("trusted_keys").find_one({"_id": key_id}))

    async def update_trusted_key(self, key: TrustedKey) -> None:
        await self._update_doc("trusted_keys", key.key_id, key, "key")

    async def list_trusted_keys(self) -> list[TrustedKey]:
        return await self._list_docs("trusted_keys", TrustedKey)

    async def add_evidence(self, evidence: Evidence) -> None:
        await self._create_doc("evidence", evidence.evidence_id, evidence, "evidence")

    async def get_evidence(self, evidence_id: str) -> Evidence | None:
        return _decode(Evidence, await self._c("evidence").find_one({"_id": evidence_id}))

    async def list_evidence(self, subject: str, kind: str | None = None) -> list[Evidence]:
        where: dict[str, Any] = {"subject": subject}
        if kind is not None:
            where["kind"] = kind
        cursor = (
            self._c("evidence").find(where).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        )
        return [e for e in [_decode(Evidence, d) async for d in cursor] if e is not None]

    async def delete_evidence(self, evidence_id: str) -> bool:
        await self._c("sbom_components").delete_many({"evidence_id": evidence_id})
        return (await self._c("evidence").delete_one({"_id": evidence_id})).deleted_count > 0

    async def add_components(self, components: list[SbomComponent]) -> None:
        if components:
            await self._c("sbom_components").insert_many([_encode(c) for c in components])

    async def search_components(
        self, query: ComponentQuery, limit: int = 1000
    ) -> list[SbomComponent]:
        where = {
            k: getattr(query, k)
            for k in ("purl", "purl_base", "name")
            if getattr(query, k) is not None
        }
        order = [("subject", ASCENDING), ("name", ASCENDING), ("evidence_id", ASCENDING)]
        cursor = self._c("sbom_components").find(where).sort(order).limit(limit)
        return [c for c in [_decode(SbomComponent, d) async for d in cursor] if c is not None]

    async def all_evidence(self) -> list[Evidence]:
        order = [("created_at", ASCENDING), ("_id", ASCENDING)]
        cursor = self._c("evidence").find({}).sort(order)
        return [e for e in [_decode(Evidence, d) async for d in cursor] if e is not None]

    async def evidence_digests(self) -> set[str]:
        return {str(d) for d in await self._c("evidence").distinct("digest")}

    async def put_policy(self, policy: Policy) -> Policy | None:
        before = await self._c("policies").find_one_and_replace(
            {"_id": policy.name},
            _encode(policy, _id=policy.name),
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return _decode(Policy, before)

    async def get_policy(self, name: str) -> Policy | None:
        return _decode(Policy, await self._c("policies").find_one({"_id": name}))

    async def list_policies(self) -> list[Policy]:
        cursor = self._c("policies").find({}).sort("_id", ASCENDING)
        return [p for p in [_decode(Policy, d) async for d in cursor] if p is not None]

    async def delete_policy(self, name: str) -> bool:
        return (await self._c("policies").delete_one({"_id": name})).deleted_count > 0

    async def put_gate(self, gate: VerificationGate) -> None:
        await self._c("gates").replace_one(
            {"_id": gate.scope}, _encode(gate, _id=gate.scope), upsert=True
        )

    async def list_gates(self) -> list[VerificationGate]:
        cursor = self._c("gates").find({}).sort("_id", ASCENDING)
        return [g for g in [_decode(VerificationGate, d) async for d in cursor] if g is not None]

    async def delete_gate(self, scope: str) -> bool:
        return (await self._c("gates").delete_one({"_id": scope})).deleted_count > 0

    # ---- inbound CI events ------------------------------------------------------------------
    async def create_event_source(self, source: EventSource) -> None:
        await self._create_doc("event_sources", source.source_id, source, "event source")

    async def get_event_source(self, source_id: str) -> EventSource | None:
        return _decode(EventSource, await self._c("event_sources").find_one({"_id": source_id}))

    async def list_event_sources(self) -> list[EventSource]:
        return await self._list_docs("event_sources", EventSource)

    async def delete_event_source(self, source_id: str) -> bool:
        return (await self._c("event_sources").delete_one({"_id": source_id})).deleted_count > 0

    async def add_inbound_event(self, event: InboundEvent) -> bool:
        try:
            await self._c("inbound_events").insert_one(_encode(event))
        except DuplicateKeyError:
            return False
        return True

    async def delete_inbound_event(self, source_id: str, event_id: str) -> bool:
        where = {"source_id": source_id, "event_id": event_id}
        return (await self._c("inbound_events").delete_one(where)).deleted_count > 0

    async def put_build(self, build: BuildRecord) -> None:
        doc = _encode(build, _id=build.build_id)
        keep = ("_id", "created_at", "digests")
        update = {
            "$set": {k: v for k, v in doc.items() if k not in keep},
            "$addToSet": {"digests": {"$each": build.digests}},
        }
        builds = self._c("builds")
        # As put_object: update, else insert; a racing insert of the same build updates.
        for _ in range(5):
            if await builds.find_one_and_update({"_id": build.build_id}, update) is not None:
                return
            try:
                await builds.insert_one(doc)
                return
            except DuplicateKeyError:
                continue
        raise MetadataError(f"could not write build {build.build_id}: too much contention")

    async def get_build(self, build_id: str) -> BuildRecord | None:
        return _decode(BuildRecord, await self._c("builds").find_one({"_id": build_id}))

    async def link_build(self, build_id: str, digests: list[str]) -> bool:
        result = await self._c("builds").update_one(
            {"_id": build_id}, {"$addToSet": {"digests": {"$each": digests}}}
        )
        return result.matched_count > 0

    async def list_builds(
        self, query: BuildQuery, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[BuildRecord], bool]:
        where: dict[str, Any] = {}
        if query.source_id is not None:
            where["source_id"] = query.source_id
        if query.run_key is not None:
            where["run_key"] = query.run_key
        if query.digest is not None:
            # $in rather than equality: nx-27017 matches an array's elements only with $in.
            where["digests"] = {"$in": [query.digest]}
        page = ("builds", "created_at", "build_id")
        return await self._newest_first(BuildRecord, page, where, before, limit)

    async def find_objects_by_digest(self, digest: str, limit: int = 100) -> list[ObjectRecord]:
        cursor = (
            self._c("objects")
            .find({"digest": digest})
            .sort([("bucket", ASCENDING), ("key", ASCENDING)])
            .limit(limit)
        )
        return [o for o in [_decode(ObjectRecord, d) async for d in cursor] if o is not None]

    async def find_objects_by_labels(
        self, labels: dict[str, str], limit: int = 1000
    ) -> list[ObjectRecord]:
        where: dict[str, Any] = {
            "$and": [{"labels": {"$elemMatch": {"k": k, "v": v}}} for k, v in labels.items()]
        }
        cursor = (
            self._c("objects")
            .find(where if labels else {})
            .sort([("bucket", ASCENDING), ("key", ASCENDING)])
            .limit(limit)
        )
        return [o for o in [_decode(ObjectRecord, d) async for d in cursor] if o is not None]

    # ---- outbound webhooks ----------------------------------------------------------------
    async def create_webhook(self, webhook: WebhookSubscription) -> None:
        await self._create_doc("webhooks", webhook.webhook_id, webhook, "webhook")

    async def get_webhook(self, webhook_id: str) -> WebhookSubscription | None:
        return _decode(WebhookSubscription, await self._c("webhooks").find_one({"_id": webhook_id}))

    async def list_webhooks(self) -> list[WebhookSubscription]:
        return await self._list_docs("webhooks", WebhookSubscription)

    async def update_webhook(self, webhook: WebhookSubscription) -> bool:
        doc = _encode(webhook, _id=webhook.webhook_id)
        result = await self._c("webhooks").replace_one({"_id": webhook.webhook_id}, doc)
        return result.matched_count > 0

    async def delete_webhook(self, webhook_id: str) -> bool:
        await self._c("webhook_deliveries").delete_many({"webhook_id": webhook_id})
        return (await self._c("webhooks").delete_one({"_id": webhook_id})).deleted_count > 0

    async def add_deliveries(self, deliveries: list[WebhookDelivery]) -> None:
        if deliveries:
            docs = [_encode(d, _id=d.delivery_id) for d in deliveries]
            await self._c("webhook_deliveries").insert_many(docs)

    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        doc = await self._c("webhook_deliveries").find_one({"_id": delivery_id})
        return _decode(WebhookDelivery, doc)

    async def update_delivery(self, delivery: WebhookDelivery) -> None:
        doc = _encode(delivery, _id=delivery.delivery_id)
        await self._c("webhook_deliveries").replace_one({"_id": delivery.delivery_id}, doc)

    async def list_deliveries(
        self, webhook_id: str, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[WebhookDelivery], bool]:
        page = ("webhook_deliveries", "created_at", "delivery_id")
        where: dict[str, Any] = {"webhook_id": webhook_id}
        return await self._newest_first(WebhookDelivery, page, where, before, limit)

    async def due_deliveries(self, now: float, limit: int) -> list[WebhookDelivery]:
        cursor = (
            self._c("webhook_deliveries")
            .find({"status": "pending", "next_attempt_at": {"$lte": now}})
            .sort("next_attempt_at", ASCENDING)
            .limit(limit)
        )
        return [d for d in [_decode(WebhookDelivery, x) async for x in cursor] if d is not None]

    async def expire_deliveries(self, older_than: float) -> int:
        where = {"status": {"$ne": "pending"}, "created_at": {"$lt": older_than}}
        return (await self._c("webhook_deliveries").delete_many(where)).deleted_count

    # ---- audit ------------------------------------------------------------------------------
    async def add_audit_records(self, records: list[AuditRecord]) -> None:
        if records:
            await self._c("audit").insert_many([_encode(r) for r in records], ordered=False)

    async def query_audit(
        self, query: AuditQuery, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[AuditRecord], bool]:
        where: dict[str, Any] = {}
        for name in ("principal", "action", "decision"):
            value = getattr(query, name)
            if value is not None:
                where[name] = value
        if query.resource_prefix:
            where["resource"] = _key_range(query.resource_prefix)
        time_cond: dict[str, float] = {}
        if query.since is not None:
            time_cond["$gte"] = query.since
        if query.until is not None:
            time_cond["$lt"] = query.until
        if time_cond:
            where["time"] = time_cond
        page = ("audit", "time", "record_id")
        return await self._newest_first(AuditRecord, page, where, before, limit)

    async def _newest_first(
        self,
        cls: type[R],
        page: tuple[str, str, str],
        where: dict[str, Any],
        before: tuple[float, str] | None,
        limit: int,
    ) -> tuple[list[R], bool]:
        """A page of documents matching ``where``, newest first by (time, id), strictly
        before the ``before`` cursor; (page, more). ``page`` is (collection, time, id field)."""
        collection, when, ident = page
        if before is not None:
            where["$or"] = [
                {when: {"$lt": before[0]}},
                {when: before[0], ident: {"$lt": before[1]}},
            ]
        cursor = (
            self._c(collection)
            .find(where)
            .sort([(when, DESCENDING), (ident, DESCENDING)])
            .limit(limit + 1)
        )
        rows = [r for r in [_decode(cls, d) async for d in cursor] if r is not None]
        return rows[:limit], len(rows) > limit

    async def expire_audit(self, older_than: float) -> int:
        result = await self._c("audit").delete_many({"time": {"$lt": older_than}})
        return result.deleted_count

    # ---- lifecycle: expiring objects, abandoned uploads, the one-runner lease ---------------
    async def _oldest(
        self, collection: str, cls: type[R], where: dict[str, Any], order: list[str], limit: int
    ) -> list[R]:
        cursor = self._c(collection).find(where).sort([(f, ASCENDING) for f in order]).limit(limit)
        return [r for r in [_decode(cls, d) async for d in cursor] if r is not None]

    async def expired_objects(self, now: float, limit: int = 1000) -> list[ObjectRecord]:
        where = {"expires_at": {"$type": "number", "$lte": now}}
        order = ["expires_at", "bucket", "key"]
        return await self._oldest("objects", ObjectRecord, where, order, limit)

    async def expire_object(
        self, bucket: str, key: str, digest: str, updated_at: float
    ) -> ObjectRecord | None:
        doc = await self._c("objects").find_one_and_delete(
            {"bucket": bucket, "key": key, "digest": digest, "updated_at": updated_at}
        )
        return _decode(ObjectRecord, doc)

    async def stale_multipart(
        self, initiated_before: float, limit: int = 1000
    ) -> list[MultipartUpload]:
        where = {"initiated_at": {"$lt": initiated_before}}
        order = ["initiated_at", "upload_id"]
        return await self._oldest("multipart_uploads", MultipartUpload, where, order, limit)

    async def stale_registry_uploads(
        self, created_before: float, limit: int = 1000
    ) -> list[RegistryUpload]:
        where = {"created_at": {"$lt": created_before}}
        return await self._oldest("registry_uploads", RegistryUpload, where, ["created_at"], limit)

    async def acquire_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        # A new lease is an insert (the unique _id lets one replica win); an existing one is
        # taken over only by a conditional update that matches while it is free to take.
        try:
            await self._c("leases").insert_one(
                {"_id": name, "holder": holder, "expires_at": now + ttl}
            )
            return True
        except DuplicateKeyError:
            pass
        # Renew our own, or take over an expired one: each one atomic conditional update.
        for condition in ({"holder": holder}, {"expires_at": {"$lte": now}}):
            taken = await self._c("leases").find_one_and_update(
                {"_id": name, **condition},
                {"$set": {"holder": holder, "expires_at": now + ttl}},
            )
            if taken is not None:
                return True
        return False

    async def release_lease(self, name: str, holder: str) -> bool:
        result = await self._c("leases").delete_one({"_id": name, "holder": holder})
        return result.deleted_count > 0

    # ---- failed authentications (issue 19) ---------------------------------------------------
    async def add_auth_failure(self, keys: Sequence[str], slot: int, expires_at: float) -> None:
        failures = self._c("auth_failures")
        for key in dict.fromkeys(keys):
            update = {
                "$inc": {"count": 1},
                "$max": {"expires_at": expires_at},
                "$setOnInsert": {"key": key, "slot": slot},
            }
            try:
                await failures.update_one({"_id": f"{slot}/{key}"}, update, upsert=True)
            except DuplicateKeyError:  # a concurrent first failure inserted it: count again
                await failures.update_one({"_id": f"{slot}/{key}"}, update)

    async def auth_failures(
        self, keys: Sequence[str], since_slot: int
    ) -> dict[str, dict[int, int]]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        out: dict[str, dict[int, int]] = {}
        cursor = self._c("auth_failures").find(
            {"key": {"$in": wanted}, "slot": {"$gte": since_slot}}
        )
        async for doc in cursor:
            out.setdefault(doc["key"], {})[int(doc["slot"])] = int(doc["count"])
        return out

    async def expire_auth_failures(self, now: float) -> int:
        result = await self._c("auth_failures").delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count

    # ---- generations (issue 23) ---------------------------------------------------------------
    async def bump_generation(self, name: str) -> int:
        doc = await self._c("generations").find_one_and_update(
            {"_id": name},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["value"])

    async def generation(self, name: str) -> int:
        doc = await self._c("generations").find_one({"_id": name})
        return int(doc["value"]) if doc else 0
