"""The embedded metadata backend: one sqlite file (aiosqlite, WAL).

Each record is a row with the columns its queries need (unique keys, sort keys) plus the whole
record as JSON in ``doc``, so adding a field to a record needs no migration. Keys compare with
sqlite's BINARY collation, i.e. by UTF-8 bytes, the same order as MongoDB and S3.

One connection serves the process. Reads run on it directly; a write that must read before it
writes runs in :meth:`SqliteMetadataStore._transaction`, which holds a lock so no other
coroutine's statements interleave with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from .base import (
    SCHEMA_VERSION,
    AlreadyExistsError,
    Bucket,
    MetadataError,
    MetadataStore,
    MultipartUpload,
    NotFoundError,
    ObjectPage,
    ObjectRecord,
    Part,
    blob_digests,
    from_doc,
    prefix_upper_bound,
    to_doc,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS object_blobs (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (bucket, key, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS multipart_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiated_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS multipart_by_key
    ON multipart_uploads (bucket, key, initiated_at, upload_id);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    digest TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
"""


def _dumps(record: Any) -> str:
    return json.dumps(to_doc(record), separators=(",", ":"), ensure_ascii=False)


def sqlite_path(uri: str) -> str:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` or ``sqlite:///:memory:``."""
    if not uri.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URI: {uri!r} (expected sqlite:///path)")
    return uri[len("sqlite:///") :]


class SqliteMetadataStore(MetadataStore):
    def __init__(self, uri: str) -> None:
        self.path = sqlite_path(uri)
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    # ---- lifecycle --------------------------------------------------------------------------
    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise MetadataError("metadata store is not open")
        return self._db

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash; an OS crash may lose the
            # last transactions but never corrupts the file (blobs are fsynced before this).
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=10000")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.executescript(_SCHEMA)
            row = await self._one(db, "SELECT value FROM meta WHERE name='schema_version'")
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise MetadataError(
                    f"metadata schema version {version} is newer than this server supports "
                    f"({SCHEMA_VERSION}); upgrade the server"
                )
            if version < SCHEMA_VERSION:
                await db.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def ping(self) -> None:
        await self._one(self.db, "SELECT 1")

    async def schema_version(self) -> int:
        row = await self._one(self.db, "SELECT value FROM meta WHERE name='schema_version'")
        return int(row[0]) if row else 0

    @staticmethod
    async def _one(db: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
        async with db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; nothing else writes on the connection meanwhile."""
        async with self._write_lock:
            db = self.db
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        """One statement in its own transaction; returns the number of rows it changed."""
        async with self._transaction() as db:
            cur = await db.execute(sql, params)
            return cur.rowcount

    # ---- buckets ----------------------------------------------------------------------------
    async def create_bucket(self, bucket: Bucket) -> None:
        try:
            await self._write("INSERT INTO buckets VALUES (?, ?)", (bucket.name, _dumps(bucket)))
        except aiosqlite.IntegrityError as exc:
            raise AlreadyExistsError(f"bucket {bucket.name!r} exists") from exc

    async def get_bucket(self, name: str) -> Bucket | None:
        row = await self._one(self.db, "SELECT doc FROM buckets WHERE name = ?", (name,))
        return from_doc(Bucket, json.loads(row[0])) if row else None

    async def list_buckets(self) -> list[Bucket]:
        rows = await self._all("SELECT doc FROM buckets ORDER BY name")
        return [from_doc(Bucket, json.loads(r[0])) for r in rows]

    async def update_bucket(self, bucket: Bucket) -> None:
        changed = await self._write(
            "UPDATE buckets SET doc = ? WHERE name = ?", (_dumps(bucket), bucket.name)
        )
        if not changed:
            raise NotFoundError(f"bucket {bucket.name!r} does not exist")

    async def delete_bucket(self, name: str) -> bool:
        return await self._write("DELETE FROM buckets WHERE name = ?", (name,)) > 0

    # ---- objects ----------------------------------------------------------------------------
    async def put_object(self, obj: ObjectRecord) -> ObjectRecord | None:
        async with self._transaction() as db:
            row = await self._one(
                db,
                "SELECT doc FROM objects WHERE bucket = ? AND key = ?",
                (obj.bucket, obj.key),
            )
            previous = from_doc(ObjectRecord, json.loads(row[0])) if row else None
            stored = obj
            if previous is not None:
                stored = ObjectRecord(**{**to_doc(obj), "created_at": previous.created_at})
            await db.execute(
                "INSERT INTO objects (bucket, key, doc) VALUES (?, ?, ?) "
                "ON CONFLICT (bucket, key) DO UPDATE SET doc = excluded.doc",
                (obj.bucket, obj.key, _dumps(stored)),
            )
            await db.execute(
                "DELETE FROM object_blobs WHERE bucket = ? AND key = ?", (obj.bucket, obj.key)
            )
            await db.executemany(
                "INSERT INTO object_blobs VALUES (?, ?, ?)",
                [(obj.bucket, obj.key, d) for d in sorted(blob_digests(obj))],
            )
        return previous

    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        row = await self._one(
            self.db, "SELECT doc FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
        )
        return from_doc(ObjectRecord, json.loads(row[0])) if row else None

    async def delete_object(self, bucket: str, key: str) -> ObjectRecord | None:
        async with self._transaction() as db:
            row = await self._one(
                db,
                "DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING doc",
                (bucket, key),
            )
            await db.execute("DELETE FROM object_blobs WHERE bucket = ? AND key = ?", (bucket, key))
        return from_doc(ObjectRecord, json.loads(row[0])) if row else None

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = 1000,
    ) -> ObjectPage:
        sql = "SELECT doc FROM objects WHERE bucket = ? AND key >= ?"
        params: list[Any] = [bucket, prefix]
        upper = prefix_upper_bound(prefix)
        if upper is not None and prefix:
            sql += " AND key < ?"
            params.append(upper)
        if start_after is not None:
            sql += " AND key > ?"
            params.append(start_after)
        sql += " ORDER BY key LIMIT ?"
        params.append(limit + 1)
        rows = await self._all(sql, tuple(params))
        objects = [from_doc(ObjectRecord, json.loads(r[0])) for r in rows[:limit]]
        return ObjectPage(objects, truncated=len(rows) > limit)

    async def count_objects(self, bucket: str, limit: int | None = None) -> int:
        if limit is None:
            row = await self._one(
                self.db, "SELECT count(*) FROM objects WHERE bucket = ?", (bucket,)
            )
        else:
            row = await self._one(
                self.db,
                "SELECT count(*) FROM (SELECT 1 FROM objects WHERE bucket = ? LIMIT ?)",
                (bucket, limit),
            )
        return int(row[0])

    async def delete_objects_in_bucket(self, bucket: str) -> int:
        async with self._transaction() as db:
            cur = await db.execute("DELETE FROM objects WHERE bucket = ?", (bucket,))
            count = cur.rowcount
            await db.execute("DELETE FROM object_blobs WHERE bucket = ?", (bucket,))
        return count

    async def object_digests(self) -> set[str]:
        return {r[0] for r in await self._all("SELECT DISTINCT digest FROM object_blobs")}

    # ---- multipart uploads ------------------------------------------------------------------
    async def create_multipart(self, upload: MultipartUpload) -> None:
        try:
            await self._write(
                "INSERT INTO multipart_uploads VALUES (?, ?, ?, ?, ?)",
                (upload.upload_id, upload.bucket, upload.key, upload.initiated_at, _dumps(upload)),
            )
        except aiosqlite.IntegrityError as exc:
            raise AlreadyExistsError(f"upload {upload.upload_id!r} exists") from exc

    async def get_multipart(self, upload_id: str) -> MultipartUpload | None:
        row = await self._one(
            self.db, "SELECT doc FROM multipart_uploads WHERE upload_id = ?", (upload_id,)
        )
        return from_doc(MultipartUpload, json.loads(row[0])) if row else None

    async def list_multipart(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[MultipartUpload], bool]:
        sql = "SELECT doc FROM multipart_uploads WHERE bucket = ? AND key >= ?"
        params: list[Any] = [bucket, prefix]
        upper = prefix_upper_bound(prefix)
        if upper is not None and prefix:
            sql += " AND key < ?"
            params.append(upper)
        if key_marker is not None:
            marker = await self.get_multipart(upload_id_marker) if upload_id_marker else None
            if marker is not None and marker.key == key_marker:
                # After the marker upload: same key and a later (initiated_at, upload_id).
                sql += (
                    " AND (key > ? OR (key = ? AND (initiated_at > ? "
                    "OR (initiated_at = ? AND upload_id > ?))))"
                )
                params += [key_marker, key_marker, marker.initiated_at]
                params += [marker.initiated_at, marker.upload_id]
            else:
                sql += " AND key > ?"
                params.append(key_marker)
        sql += " ORDER BY key, initiated_at, upload_id LIMIT ?"
        params.append(limit + 1)
        rows = await self._all(sql, tuple(params))
        uploads = [from_doc(MultipartUpload, json.loads(r[0])) for r in rows[:limit]]
        return uploads, len(rows) > limit

    async def delete_multipart(self, upload_id: str) -> bool:
        async with self._transaction() as db:
            cur = await db.execute(
                "DELETE FROM multipart_uploads WHERE upload_id = ?", (upload_id,)
            )
            existed = cur.rowcount > 0
            await db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        return existed

    async def put_part(self, part: Part) -> Part | None:
        async with self._transaction() as db:
            row = await self._one(
                db,
                "SELECT doc FROM parts WHERE upload_id = ? AND part_number = ?",
                (part.upload_id, part.part_number),
            )
            await db.execute(
                "INSERT INTO parts VALUES (?, ?, ?, ?) ON CONFLICT (upload_id, part_number) "
                "DO UPDATE SET digest = excluded.digest, doc = excluded.doc",
                (part.upload_id, part.part_number, part.digest, _dumps(part)),
            )
        return from_doc(Part, json.loads(row[0])) if row else None

    async def list_parts(
        self, upload_id: str, after_part: int = 0, limit: int = 10000
    ) -> tuple[list[Part], bool]:
        rows = await self._all(
            "SELECT doc FROM parts WHERE upload_id = ? AND part_number > ? "
            "ORDER BY part_number LIMIT ?",
            (upload_id, after_part, limit + 1),
        )
        return [from_doc(Part, json.loads(r[0])) for r in rows[:limit]], len(rows) > limit

    async def part_digests(self) -> set[str]:
        return {r[0] for r in await self._all("SELECT DISTINCT digest FROM parts")}
