"""The embedded metadata backend: one sqlite file (stdlib sqlite3 on one worker thread, WAL).

Each record is a row with the columns its queries need (unique keys, sort keys) plus the whole
record as JSON in ``doc``, so adding a field to a record needs no migration. Keys compare with
sqlite's BINARY collation, i.e. by UTF-8 bytes, the same order as MongoDB and S3.

One connection serves the process, owned by one worker thread: each operation (a read, or a
whole write transaction) is one function handed to that thread, so an operation costs one
thread hop however many statements it runs, and transactions never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..filemodes import data_file_mode, private_file_mode
from ..workqueue import WorkQueue
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

BUSY_TIMEOUT_S = 10.0
R = TypeVar("R")
T = TypeVar("T")

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
CREATE TABLE IF NOT EXISTS manifests (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    subject TEXT,
    doc TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repo, subject);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (repo, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repo_blobs (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_keys (access_key_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sbom_components (
    evidence_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    name TEXT NOT NULL,
    purl TEXT NOT NULL,
    purl_base TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS components_by_purl ON sbom_components (purl);
CREATE INDEX IF NOT EXISTS components_by_purl_base ON sbom_components (purl_base);
CREATE INDEX IF NOT EXISTS components_by_name ON sbom_components (name);
CREATE TABLE IF NOT EXISTS trusted_keys (key_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (
    evidence_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_by_subject ON evidence (subject, kind, created_at);
CREATE TABLE IF NOT EXISTS policies (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gates (scope TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens (token_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    time REAL NOT NULL,
    record_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (time, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_by_principal ON audit (principal, time);
CREATE TABLE IF NOT EXISTS registry_uploads (upload_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    digest TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_sources (source_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbound_events (
    source_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (source_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS builds (
    build_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    run_key TEXT NOT NULL,
    created_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS builds_by_time ON builds (created_at, build_id);
CREATE INDEX IF NOT EXISTS builds_by_source ON builds (source_id, created_at);
CREATE INDEX IF NOT EXISTS builds_by_run ON builds (run_key);
CREATE TABLE IF NOT EXISTS build_links (
    digest TEXT NOT NULL,
    build_id TEXT NOT NULL,
    PRIMARY KEY (digest, build_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_github_run
    ON objects (json_extract(doc, '$.labels."github.run_id"'));
CREATE TABLE IF NOT EXISTS webhooks (webhook_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    status TEXT NOT NULL,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_by_webhook
    ON webhook_deliveries (webhook_id, created_at, delivery_id);
CREATE INDEX IF NOT EXISTS objects_by_digest ON objects (json_extract(doc, '$.digest'));
CREATE INDEX IF NOT EXISTS objects_by_expiry ON objects (json_extract(doc, '$.expires_at'))
    WHERE json_extract(doc, '$.expires_at') IS NOT NULL;
CREATE INDEX IF NOT EXISTS multipart_by_time ON multipart_uploads (initiated_at, upload_id);
CREATE INDEX IF NOT EXISTS registry_uploads_by_time
    ON registry_uploads (json_extract(doc, '$.created_at'));
CREATE TABLE IF NOT EXISTS object_versions (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    updated_at REAL NOT NULL,
    noncurrent_since REAL,
    blobs TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (bucket, key, version_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS object_versions_in_order
    ON object_versions (bucket, key, updated_at DESC, version_id DESC);
CREATE INDEX IF NOT EXISTS object_versions_by_age
    ON object_versions (bucket, noncurrent_since) WHERE noncurrent_since IS NOT NULL;
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


# Failed authentications (issue 19), apart from the main schema.
_AUTH_FAILURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_failures (
    key TEXT NOT NULL,
    slot INTEGER NOT NULL,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS auth_failures_by_expiry ON auth_failures (expires_at);
CREATE TABLE IF NOT EXISTS generations (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

log = logging.getLogger(__name__)


def _dumps(record: Any) -> str:
    return json.dumps(to_doc(record), separators=(",", ":"), ensure_ascii=False)


def _load(cls: type[R], row: Any) -> R | None:
    return from_doc(cls, json.loads(row[0])) if row else None


def _load_all(cls: type[R], rows: list[Any]) -> list[R]:
    return [from_doc(cls, json.loads(r[0])) for r in rows]


_LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9._/\-]{1,63}$")


def _label_path(name: str) -> str:
    """The JSON path of an object's label (inlined, so the expression index applies)."""
    if not _LABEL_NAME_RE.match(name):
        raise ValueError(f"not a label name: {name!r}")
    return f"json_extract(doc, '$.labels.\"{name}\"')"


def _merge_digests(old: list[str], new: list[str]) -> list[str]:
    return [*old, *(d for d in dict.fromkeys(new) if d not in old)]


def sqlite_path(uri: str) -> str:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` or ``sqlite:///:memory:``."""
    if not uri.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URI: {uri!r} (expected sqlite:///path)")
    return uri[len("sqlite:///") :]


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _key_range(
    sql: str, params: list[Any], prefix: str, after: str | None = None, inclusive: bool = False
) -> str:
    """Append ``key`` bounds selecting keys that start with ``prefix`` and, when ``after`` is
    given, come after it (or are it, ``inclusive``): an index range.

    One lower bound only, the tighter of the two: given ``key >= ? AND key > ?`` sqlite seeks
    to the first and filters the second row by row, so a page deep into a bucket scanned every
    key before it (issue 23: 170 ms of CPU a page at a million keys, 0.4 ms with one bound)."""
    if after is not None and after >= prefix:
        sql += " AND key >= ?" if inclusive else " AND key > ?"
        params.append(after)
    else:
        sql += " AND key >= ?"
        params.append(prefix)
    upper = prefix_upper_bound(prefix)
    if prefix and upper is not None:
        sql += " AND key < ?"
        params.append(upper)
    return sql


class SqliteMetadataStore(MetadataStore):
    def __init__(self, uri: str) -> None:
        self.path = sqlite_path(uri)
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        # The connection's one thread: operations queued while it is busy run together, in
        # order, each in its own transaction, and come back in one loop wake-up (issue 23).
        self._queue: WorkQueue | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the connection's thread (queued behind the operations
        already waiting, and run in the same trip as them)."""
        queue = self._queue
        if queue is None:
            raise MetadataError("metadata store is not open")
        return await queue.submit(fn, (self._conn, *args))

    # ---- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(1, thread_name_prefix="zas-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._conn = await loop.run_in_executor(thread, self._connect)
        except BaseException:
            thread.shutdown()
            raise
        self._thread = thread
        self._queue = WorkQueue(thread, closed=lambda: MetadataError("metadata store is closed"))

    def _connect(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            return self._connect_locked()
        # Switching a new file to WAL takes an exclusive lock that sqlite's busy timeout does
        # not wait for, so processes opening the same file (worker processes) take turns.
        fd = os.open(
            self.path + ".open-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, private_file_mode()
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # SQLite creates the file 0644 whatever is asked, and its -wal/-shm files take the
            # database file's mode: create it ourselves, with the data file mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, data_file_mode()))
            return self._connect_locked()
        finally:
            os.close(fd)

    def _connect_locked(self) -> sqlite3.Connection:
        # The busy timeout applies from the first statement: several worker processes may
        # open (and create) the same file at once.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash; an OS crash may lose the
            # last transactions but never corrupts the file (blobs are fsynced before this).
            conn.execute("PRAGMA synchronous=NORMAL")
            with _transaction(conn):  # one process creates or migrates; others wait
                for statement in (_SCHEMA + _AUTH_FAILURES_SCHEMA).split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version = self._schema_version(conn)
                if version > SCHEMA_VERSION:
                    raise MetadataError(
                        f"metadata schema version {version} is newer than this server supports "
                        f"({SCHEMA_VERSION}); upgrade the server"
                    )
                if version < SCHEMA_VERSION:
                    conn.execute(
                        "INSERT INTO meta (name, value) VALUES ('schema_version', ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        (str(SCHEMA_VERSION),),
                    )
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        if self._queue is not None:
            log.debug(
                "sqlite operations run in batches",
                extra={"operations": self._queue.jobs, "batches": self._queue.batches},
            )
        if self._conn is not None and self._thread is not None:
            await self._run(sqlite3.Connection.close)
            self._thread.shutdown()
        self._conn = self._thread = self._queue = None

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        return int(row[0]) if row else 0

    async def schema_version(self) -> int:
        return await self._run(self._schema_version)

    async def _one(self, cls: type[R], sql: str, *params: Any) -> R | None:
        return await self._run(lambda c: _load(cls, c.execute(sql, params).fetchone()))

    async def _all(self, cls: type[R], sql: str, params: list[Any] | tuple[Any, ...]) -> list[R]:
        return await self._run(lambda c: _load_all(cls, c.execute(sql, params).fetchall()))

    async def _write(self, sql: str, *params: Any) -> int:
        """One statement; returns the number of rows it changed."""
        return await self._run(lambda c: c.execute(sql, params).rowcount)

    # ---- buckets ----------------------------------------------------------------------------
    async def create_bucket(self, bucket: Bucket) -> None:
        try:
            await self._write("INSERT INTO buckets VALUES (?, ?)", bucket.name, _dumps(bucket))
        except sqlite3.IntegrityError as exc:
            raise AlreadyExistsError(f"bucket {bucket.name!r} exists") from exc

    async def get_bucket(self, name: str) -> Bucket | None:
        return await self._one(Bucket, "SELECT doc FROM buckets WHERE name = ?", name)

    async def list_buckets(self) -> list[Bucket]:
        return await self._all(Bucket, "SELECT doc FROM buckets ORDER BY name", ())

    async def update_bucket(self, bucket: Bucket) -> None:
        sql = "UPDATE buckets SET doc = ? WHERE name = ?"
        if not await self._write(sql, _dumps(bucket), bucket.name):
            raise NotFoundError(f"bucket {bucket.name!r} does not exist")

    async def delete_bucket(self, name: str) -> bool:
        return await self._write("DELETE FROM buckets WHERE name = ?", name) > 0

    # ---- objects ----------------------------------------------------------------------------
    @staticmethod
    def _put_object(
        conn: sqlite3.Connection, obj: ObjectRecord, if_absent: bool, require_bucket: bool = False
    ) -> ObjectRecord | None:
        with _transaction(conn):
            if (
                require_bucket
                and not conn.execute(
                    "SELECT 1 FROM buckets WHERE name = ?", (obj.bucket,)
                ).fetchone()
            ):
                raise NotFoundError(f"bucket {obj.bucket!r} does not exist")
            row = conn.execute(
                "SELECT doc FROM objects WHERE bucket = ? AND key = ?", (obj.bucket, obj.key)
            ).fetchone()
            previous = _load(ObjectRecord, row)
            if if_absent and previous is not None:
                raise AlreadyExistsError(f"object {obj.bucket}/{obj.key} exists")
            SqliteMetadataStore._write_current(conn, obj, previous)
        return previous

    @staticmethod
    def _write_current(
        conn: sqlite3.Connection, obj: ObjectRecord, previous: ObjectRecord | None
    ) -> None:
        """Make ``obj`` the current object of its key (inside the caller's transaction)."""
        stored = obj
        if previous is not None:
            stored = ObjectRecord(**{**to_doc(obj), "created_at": previous.created_at})
        conn.execute(
            "INSERT INTO objects (bucket, key, doc) VALUES (?, ?, ?) "
            "ON CONFLICT (bucket, key) DO UPDATE SET doc = excluded.doc",
            (obj.bucket, obj.key, _dumps(stored)),
        )
        conn.execute("DELETE FROM object_blobs WHERE bucket = ? AND key = ?", (obj.bucket, obj.key))
        conn.executemany(
            "INSERT INTO object_blobs VALUES (?, ?, ?)",
            [(obj.bucket, obj.key, d) for d in sorted(blob_digests(obj))],
        )

    async def put_object(
        self, obj: ObjectRecord, *, if_absent: bool = False, require_bucket: bool = False
    ) -> ObjectRecord | None:
        return await self._run(self._put_object, obj, if_absent, require_bucket)

    # ---- object versions ----------------------------------------------------------------------
    @staticmethod
    def _keep_version(conn: sqlite3.Connection, record: ObjectRecord) -> None:
        conn.execute(
            "INSERT INTO object_versions VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (bucket, key, version_id) DO UPDATE SET updated_at = "
            "excluded.updated_at, noncurrent_since = excluded.noncurrent_since, "
            "blobs = excluded.blobs, doc = excluded.doc",
            (
                record.bucket,
                record.key,
                record.version_id,
                record.updated_at,
                record.noncurrent_since,
                json.dumps(sorted(blob_digests(record))),
                _dumps(record),
            ),
        )

    @classmethod
    def _put_object_version(
        cls, conn: sqlite3.Connection, obj: ObjectRecord, if_absent: bool
    ) -> ObjectRecord | None:
        with _transaction(conn):
            where = (obj.bucket, obj.key)
            previous = _load(
                ObjectRecord,
                conn.execute(
                    "SELECT doc FROM objects WHERE bucket = ? AND key = ?", where
                ).fetchone(),
            )
            if if_absent and previous is not None:
                raise AlreadyExistsError(f"object {obj.bucket}/{obj.key} exists")
            now = obj.updated_at
            # The latest delete marker, if the key has one, is noncurrent from now on.
            for (doc,) in conn.execute(
                "SELECT doc FROM object_versions WHERE bucket = ? AND key = ? "
                "AND noncurrent_since IS NULL",
                where,
            ).fetchall():
                marker = from_doc(ObjectRecord, json.loads(doc))
                marker.noncurrent_since = now
                cls._keep_version(conn, marker)
            conn.execute(
                "DELETE FROM object_versions WHERE bucket = ? AND key = ? AND version_id = ?",
                (*where, obj.version_id),
            )
            if previous is not None and previous.version_id != obj.version_id:
                previous.noncurrent_since = now
                cls._keep_version(conn, previous)
            if obj.delete_marker:
                conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", where)
                conn.execute("DELETE FROM object_blobs WHERE bucket = ? AND key = ?", where)
                cls._keep_version(conn, dataclasses.replace(obj, noncurrent_since=None))
            else:
                cls._write_current(conn, obj, previous)
        return previous

    async def put_object_version(
        self, obj: ObjectRecord, *, if_absent: bool = False
    ) -> ObjectRecord | None:
        return await self._run(self._put_object_version, obj, if_absent)

    async def get_object_version(
        self, bucket: str, key: str, version_id: str
    ) -> ObjectRecord | None:
        current = await self.get_object(bucket, key)
        if current is not None and current.version_id == version_id:
            return current
        sql = "SELECT doc FROM object_versions WHERE bucket = ? AND key = ? AND version_id = ?"
        return await self._one(ObjectRecord, sql, bucket, key, version_id)

    @classmethod
    def _delete_object_version(
        cls,
        conn: sqlite3.Connection,
        bucket: str,
        key: str,
        version_id: str,
        guard: Callable[[ObjectRecord], None] | None = None,
    ) -> ObjectRecord | None:
        where = (bucket, key)
        with _transaction(conn):  # the guard's refusal rolls back: nothing removed
            current = _load(
                ObjectRecord,
                conn.execute(
                    "SELECT doc FROM objects WHERE bucket = ? AND key = ?", where
                ).fetchone(),
            )
            if current is not None and current.version_id == version_id:
                removed: ObjectRecord | None = current
                if guard is not None:
                    guard(current)
                conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", where)
                conn.execute("DELETE FROM object_blobs WHERE bucket = ? AND key = ?", where)
            else:
                removed = _load(
                    ObjectRecord,
                    conn.execute(
                        "DELETE FROM object_versions WHERE bucket = ? AND key = ? "
                        "AND version_id = ? RETURNING doc",
                        (*where, version_id),
                    ).fetchone(),
                )
                if removed is not None and guard is not None:
                    guard(removed)
            if removed is None or removed.noncurrent_since is not None:
                return removed  # not the latest: nothing else changes
            newest = _load(
                ObjectRecord,
                conn.execute(
                    "SELECT doc FROM object_versions WHERE bucket = ? AND key = ? "
                    "ORDER BY updated_at DESC, version_id DESC LIMIT 1",
                    where,
                ).fetchone(),
            )
            if newest is None:
                return removed
            newest.noncurrent_since = None
            if newest.delete_marker:
                cls._keep_version(conn, newest)
                return removed
            conn.execute(
                "DELETE FROM object_versions WHERE bucket = ? AND key = ? AND version_id = ?",
                (*where, newest.version_id),
            )
            cls._write_current(conn, newest, None)
        return removed

    async def delete_object_version(
        self,
        bucket: str,
        key: str,
        version_id: str,
        guard: Callable[[ObjectRecord], None] | None = None,
    ) -> ObjectRecord | None:
        return await self._run(self._delete_object_version, bucket, key, version_id, guard)

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        after: ObjectRecord | None = None,
        limit: int = 1000,
    ) -> ObjectPage:
        params: list[Any] = [bucket]
        marker = after.key if after is not None else key_marker
        sql = _key_range("SELECT doc FROM objects WHERE bucket = ?", params, prefix, marker)
        current = await self._all(ObjectRecord, sql + " ORDER BY key LIMIT ?", [*params, limit + 1])
        params = [bucket]
        table = "SELECT doc FROM object_versions WHERE bucket = ?"
        if after is not None and (after.noncurrent_since is not None or after.delete_marker):
            sql = _key_range(table, params, prefix, marker, inclusive=True)
            sql += (
                " AND (key > ? OR (key = ? AND (updated_at < ? OR "
                "(updated_at = ? AND version_id < ?))))"
            )
            params += [marker, marker, after.updated_at, after.updated_at, after.version_id]
        else:  # after the current version (``after``): all the key's kept ones follow
            sql = _key_range(table, params, prefix, marker, inclusive=after is not None)
        sql += " ORDER BY key, updated_at DESC, version_id DESC LIMIT ?"
        kept = await self._all(ObjectRecord, sql, [*params, limit + 1])
        return merge_versions(current, kept, limit)

    @classmethod
    def _update_object_version(cls, conn: sqlite3.Connection, record: ObjectRecord) -> bool:
        where = (record.bucket, record.key)
        with _transaction(conn):
            current = _load(
                ObjectRecord,
                conn.execute(
                    "SELECT doc FROM objects WHERE bucket = ? AND key = ?", where
                ).fetchone(),
            )
            if current is not None and current.version_id == record.version_id:
                conn.execute(
                    "UPDATE objects SET doc = ? WHERE bucket = ? AND key = ?",
                    (_dumps(record), *where),
                )
                return True
            return (
                conn.execute(
                    "UPDATE object_versions SET doc = ? WHERE bucket = ? AND key = ? "
                    "AND version_id = ?",
                    (_dumps(record), *where, record.version_id),
                ).rowcount
                > 0
            )

    async def update_object_version(self, record: ObjectRecord) -> bool:
        return await self._run(self._update_object_version, record)

    async def has_object_versions(self, bucket: str) -> bool:
        sql = "SELECT 1 FROM object_versions WHERE bucket = ? LIMIT 1"
        return await self._run(lambda c: c.execute(sql, (bucket,)).fetchone() is not None)

    async def noncurrent_versions(
        self, bucket: str, prefix: str, before: float, limit: int = 1000
    ) -> list[ObjectRecord]:
        params: list[Any] = [bucket, before]
        sql = _key_range(
            "SELECT doc FROM object_versions WHERE bucket = ? AND noncurrent_since <= ?",
            params,
            prefix,
        )
        sql += " ORDER BY noncurrent_since, key, version_id LIMIT ?"
        return await self._all(ObjectRecord, sql, [*params, limit])

    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        sql = "SELECT doc FROM objects WHERE bucket = ? AND key = ?"
        return await self._one(ObjectRecord, sql, bucket, key)

    @staticmethod
    def _delete_object(conn: sqlite3.Connection, bucket: str, key: str) -> ObjectRecord | None:
        with _transaction(conn):
            row = conn.execute(
                "DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING doc", (bucket, key)
            ).fetchone()
            conn.execute("DELETE FROM object_blobs WHERE bucket = ? AND key = ?", (bucket, key))
        return _load(ObjectRecord, row)

    async def delete_object(self, bucket: str, key: str) -> ObjectRecord | None:
        return await self._run(self._delete_object, bucket, key)

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = 1000,
    ) -> ObjectPage:
        params: list[Any] = [bucket]
        sql = _key_range("SELECT doc FROM objects WHERE bucket = ?", params, prefix, start_after)
        sql += " ORDER BY key LIMIT ?"
        params.append(limit + 1)
        objects = await self._all(ObjectRecord, sql, params)
        return ObjectPage(objects[:limit], truncated=len(objects) > limit)

    async def count_objects(self, bucket: str, limit: int | None = None) -> int:
        sql = "SELECT count(*) FROM (SELECT 1 FROM objects WHERE bucket = ? LIMIT ?)"
        return await self._run(lambda c: c.execute(sql, (bucket, limit or -1)).fetchone()[0])

    @staticmethod
    def _delete_objects_in_bucket(conn: sqlite3.Connection, bucket: str) -> int:
        with _transaction(conn):
            count = conn.execute("DELETE FROM objects WHERE bucket = ?", (bucket,)).rowcount
            conn.execute("DELETE FROM object_blobs WHERE bucket = ?", (bucket,))
            conn.execute("DELETE FROM object_versions WHERE bucket = ?", (bucket,))
        return count

    async def delete_objects_in_bucket(self, bucket: str) -> int:
        return await self._run(self._delete_objects_in_bucket, bucket)

    async def _digests(self, sql: str) -> set[str]:
        return await self._run(lambda c: {r[0] for r in c.execute(sql)})

    async def object_digests(self) -> set[str]:
        return await self._digests(
            "SELECT digest FROM object_blobs UNION "
            "SELECT j.value FROM object_versions, json_each(object_versions.blobs) AS j"
        )

    # ---- multipart uploads ------------------------------------------------------------------
    async def create_multipart(self, upload: MultipartUpload) -> None:
        try:
            await self._write(
                "INSERT INTO multipart_uploads VALUES (?, ?, ?, ?, ?)",
                upload.upload_id,
                upload.bucket,
                upload.key,
                upload.initiated_at,
                _dumps(upload),
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExistsError(f"upload {upload.upload_id!r} exists") from exc

    async def get_multipart(self, upload_id: str) -> MultipartUpload | None:
        sql = "SELECT doc FROM multipart_uploads WHERE upload_id = ?"
        return await self._one(MultipartUpload, sql, upload_id)

    async def list_multipart(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[MultipartUpload], bool]:
        params: list[Any] = [bucket]
        table = "SELECT doc FROM multipart_uploads WHERE bucket = ?"
        marker = None
        if key_marker is not None and upload_id_marker:
            marker = await self.get_multipart(upload_id_marker)
        if key_marker is not None and marker is not None and marker.key == key_marker:
            # After the marker upload: same key and a later (initiated_at, upload_id).
            sql = _key_range(table, params, prefix, key_marker, inclusive=True)
            sql += " AND (key, initiated_at, upload_id) > (?, ?, ?)"
            params += [key_marker, marker.initiated_at, marker.upload_id]
        else:
            sql = _key_range(table, params, prefix, key_marker)
        sql += " ORDER BY key, initiated_at, upload_id LIMIT ?"
        params.append(limit + 1)
        uploads = await self._all(MultipartUpload, sql, params)
        return uploads[:limit], len(uploads) > limit

    @staticmethod
    def _delete_multipart(conn: sqlite3.Connection, upload_id: str) -> bool:
        with _transaction(conn):
            sql = "DELETE FROM multipart_uploads WHERE upload_id = ?"
            existed = conn.execute(sql, (upload_id,)).rowcount > 0
            conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        return existed

    async def delete_multipart(self, upload_id: str) -> bool:
        return await self._run(self._delete_multipart, upload_id)

    @staticmethod
    def _put_part(conn: sqlite3.Connection, part: Part) -> Part | None:
        with _transaction(conn):
            row = conn.execute(
                "SELECT doc FROM parts WHERE upload_id = ? AND part_number = ?",
                (part.upload_id, part.part_number),
            ).fetchone()
            conn.execute(
                "INSERT INTO parts VALUES (?, ?, ?, ?) ON CONFLICT (upload_id, part_number) "
                "DO UPDATE SET digest = excluded.digest, doc = excluded.doc",
                (part.upload_id, part.part_number, part.digest, _dumps(part)),
            )
        return _load(Part, row)

    async def put_part(self, part: Part) -> Part | None:
        return await self._run(self._put_part, part)

    async def list_parts(
        self, upload_id: str, after_part: int = 0, limit: int = 10000
    ) -> tuple[list[Part], bool]:
        sql = (
            "SELECT doc FROM parts WHERE upload_id = ? AND part_number > ? "
            "ORDER BY part_number LIMIT ?"
        )
        parts = await self._all(Part, sql, (upload_id, after_part, limit + 1))
        return parts[:limit], len(parts) > limit

    async def part_digests(self) -> set[str]:
        return await self._digests("SELECT DISTINCT digest FROM parts")

    # ---- OCI registry -----------------------------------------------------------------------
    async def put_manifest(self, manifest: Manifest) -> None:
        await self._write(
            "INSERT INTO manifests VALUES (?, ?, ?, ?) ON CONFLICT (repo, digest) "
            "DO UPDATE SET subject = excluded.subject, doc = excluded.doc",
            manifest.repo,
            manifest.digest,
            manifest.subject,
            _dumps(manifest),
        )

    async def get_manifest(self, repo: str, digest: str) -> Manifest | None:
        sql = "SELECT doc FROM manifests WHERE repo = ? AND digest = ?"
        return await self._one(Manifest, sql, repo, digest)

    async def delete_manifest(self, repo: str, digest: str) -> bool:
        sql = "DELETE FROM manifests WHERE repo = ? AND digest = ?"
        return await self._write(sql, repo, digest) > 0

    async def list_referrers(self, repo: str, subject: str) -> list[Manifest]:
        sql = "SELECT doc FROM manifests WHERE repo = ? AND subject = ? ORDER BY digest"
        return await self._all(Manifest, sql, (repo, subject))

    async def list_repositories(
        self, after: str | None = None, limit: int = 1000
    ) -> tuple[list[str], bool]:
        sql = "SELECT DISTINCT repo FROM manifests WHERE repo > ? ORDER BY repo LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, (after or "", limit + 1)).fetchall())
        names = [r[0] for r in rows]
        return names[:limit], len(names) > limit

    @staticmethod
    def _put_tag(conn: sqlite3.Connection, tag: Tag) -> Tag | None:
        with _transaction(conn):
            row = conn.execute(
                "SELECT doc FROM tags WHERE repo = ? AND name = ?", (tag.repo, tag.name)
            ).fetchone()
            conn.execute(
                "INSERT INTO tags VALUES (?, ?, ?) ON CONFLICT (repo, name) "
                "DO UPDATE SET doc = excluded.doc",
                (tag.repo, tag.name, _dumps(tag)),
            )
        return _load(Tag, row)

    async def put_tag(self, tag: Tag) -> Tag | None:
        return await self._run(self._put_tag, tag)

    async def get_tag(self, repo: str, name: str) -> Tag | None:
        return await self._one(Tag, "SELECT doc FROM tags WHERE repo = ? AND name = ?", repo, name)

    async def delete_tag(self, repo: str, name: str) -> bool:
        return await self._write("DELETE FROM tags WHERE repo = ? AND name = ?", repo, name) > 0

    async def list_tags(
        self, repo: str, after: str | None = None, limit: int = 1000
    ) -> tuple[list[Tag], bool]:
        sql = "SELECT doc FROM tags WHERE repo = ? AND name > ? ORDER BY name LIMIT ?"
        tags = await self._all(Tag, sql, (repo, after or "", limit + 1))
        return tags[:limit], len(tags) > limit

    async def all_manifests(self) -> list[Manifest]:
        return await self._all(Manifest, "SELECT doc FROM manifests ORDER BY repo, digest", ())

    async def tagged_manifests(self) -> set[tuple[str, str]]:
        return {(t.repo, t.digest) for t in await self._all(Tag, "SELECT doc FROM tags", ())}

    async def manifest_digests(self) -> set[str]:
        manifests = await self._all(Manifest, "SELECT doc FROM manifests", ())
        return {d for m in manifests for d in (m.digest, *m.references)}

    async def link_blob(self, repo: str, digest: str) -> None:
        await self._write("INSERT OR IGNORE INTO repo_blobs VALUES (?, ?)", repo, digest)

    async def is_blob_linked(self, repo: str, digest: str) -> bool:
        sql = "SELECT 1 FROM repo_blobs WHERE repo = ? AND digest = ?"
        return bool(await self._run(lambda c: c.execute(sql, (repo, digest)).fetchone()))

    async def unlink_blob(self, repo: str, digest: str) -> bool:
        sql = "DELETE FROM repo_blobs WHERE repo = ? AND digest = ?"
        return await self._write(sql, repo, digest) > 0

    async def create_registry_upload(self, upload: RegistryUpload) -> None:
        try:
            await self._write(
                "INSERT INTO registry_uploads VALUES (?, ?)", upload.upload_id, _dumps(upload)
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExistsError(f"upload {upload.upload_id!r} exists") from exc

    async def get_registry_upload(self, upload_id: str) -> RegistryUpload | None:
        sql = "SELECT doc FROM registry_uploads WHERE upload_id = ?"
        return await self._one(RegistryUpload, sql, upload_id)

    async def delete_registry_upload(self, upload_id: str) -> bool:
        return await self._write("DELETE FROM registry_uploads WHERE upload_id = ?", upload_id) > 0

    async def set_registry_upload_session(self, upload_id: str, session_id: str) -> str | None:
        sql = (
            "UPDATE registry_uploads SET doc = json_set(doc, '$.session_id', ?)"
            " WHERE upload_id = ? AND json_extract(doc, '$.session_id') = ''"
        )
        if await self._write(sql, session_id, upload_id):
            return session_id
        upload = await self.get_registry_upload(upload_id)
        return upload.session_id if upload is not None else None

    # ---- identity ---------------------------------------------------------------------------
    # API tokens and access keys: one (id, doc) table each, created once, then replaced.
    async def _create_doc(self, table: str, ident: str, record: Any, what: str) -> None:
        try:
            await self._write(f"INSERT INTO {table} VALUES (?, ?)", ident, _dumps(record))
        except sqlite3.IntegrityError as exc:
            raise AlreadyExistsError(f"{what} {ident!r} exists") from exc

    async def _update_doc(
        self, table: str, column: str, ident: str, record: Any, what: str
    ) -> None:
        sql = f"UPDATE {table} SET doc = ? WHERE {column} = ?"
        if await self._write(sql, _dumps(record), ident) == 0:
            raise NotFoundError(f"{what} {ident!r} does not exist")

    async def create_api_token(self, token: ApiToken) -> None:
        await self._create_doc("api_tokens", token.token_id, token, "token")

    async def get_api_token(self, token_id: str) -> ApiToken | None:
        sql = "SELECT doc FROM api_tokens WHERE token_id = ?"
        return await self._one(ApiToken, sql, token_id)

    async def update_api_token(self, token: ApiToken) -> None:
        await self._update_doc("api_tokens", "token_id", token.token_id, token, "token")

    async def list_api_tokens(self) -> list[ApiToken]:
        tokens = await self._all(ApiToken, "SELECT doc FROM api_tokens", ())
        return sorted(tokens, key=lambda t: (t.created_at, t.token_id))

    async def create_access_key(self, key: AccessKey) -> None:
        await self._create_doc("access_keys", key.access_key_id, key, "access key")

    async def get_access_key(self, access_key_id: str) -> AccessKey | None:
        sql = "SELECT doc FROM access_keys WHERE access_key_id = ?"
        return await self._one(AccessKey, sql, access_key_id)

    async def update_access_key(self, key: AccessKey) -> None:
        ident = key.access_key_id
        await self._update_doc("access_keys", "access_key_id", ident, key, "access key")

    async def list_access_keys(self) -> list[AccessKey]:
        keys = await self._all(AccessKey, "SELECT doc FROM access_keys", ())
        return sorted(keys, key=lambda k: (k.created_at, k.access_key_id))

    # ---- supply chain -----------------------------------------------------------------------
    async def create_trusted_key(self, key: TrustedKey) -> None:
        await self._create_doc("trusted_keys", key.key_id, key, "key")

    async def get_trusted_key(self, key_id: str) -> TrustedKey | None:
        return await self._one(TrustedKey, "SELECT doc FROM trusted_keys WHERE key_id = ?", key_id)

    async def update_trusted_key(self, key: TrustedKey) -> None:
        await self._update_doc("trusted_keys", "key_id", key.key_id, key, "key")

    async def list_trusted_keys(self) -> list[TrustedKey]:
        keys = await self._all(TrustedKey, "SELECT doc FROM trusted_keys", ())
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    async def add_evidence(self, evidence: Evidence) -> None:
        await self._write(
            "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?)",
            evidence.evidence_id,
            evidence.subject,
            evidence.kind,
            evidence.digest,
            evidence.created_at,
            _dumps(evidence),
        )

    async def get_evidence(self, evidence_id: str) -> Evidence | None:
        sql = "SELECT doc FROM evidence WHERE evidence_id = ?"
        return await self._one(Evidence, sql, evidence_id)

    async def list_evidence(self, subject: str, kind: str | None = None) -> list[Evidence]:
        sql = "SELECT doc FROM evidence WHERE subject = ?"
        params: list[Any] = [subject]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return await self._all(Evidence, sql + " ORDER BY created_at, evidence_id", params)

    async def delete_evidence(self, evidence_id: str) -> bool:
        await self._write("DELETE FROM sbom_components WHERE evidence_id = ?", evidence_id)
        return await self._write("DELETE FROM evidence WHERE evidence_id = ?", evidence_id) > 0

    async def add_components(self, components: list[SbomComponent]) -> None:
        rows = [
            (c.evidence_id, c.subject, c.name, c.purl, c.purl_base, _dumps(c)) for c in components
        ]

        def insert(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany("INSERT INTO sbom_components VALUES (?, ?, ?, ?, ?, ?)", rows)

        await self._run(insert)

    async def search_components(
        self, query: ComponentQuery, limit: int = 1000
    ) -> list[SbomComponent]:
        where, params = [], []
        for column in ("purl", "purl_base", "name"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT doc FROM sbom_components"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY subject, name, evidence_id LIMIT ?"
        return await self._all(SbomComponent, sql, (*params, limit))

    async def all_evidence(self) -> list[Evidence]:
        sql = "SELECT doc FROM evidence ORDER BY created_at, evidence_id"
        return await self._all(Evidence, sql, ())

    async def evidence_digests(self) -> set[str]:
        return await self._digests("SELECT DISTINCT digest FROM evidence")

    @staticmethod
    def _put_policy(conn: sqlite3.Connection, policy: Policy) -> Policy | None:
        with _transaction(conn):
            sql = "SELECT doc FROM policies WHERE name = ?"
            row = conn.execute(sql, (policy.name,)).fetchone()
            conn.execute(
                "INSERT INTO policies VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                (policy.name, _dumps(policy)),
            )
        return _load(Policy, row)

    async def put_policy(self, policy: Policy) -> Policy | None:
        return await self._run(self._put_policy, policy)

    async def get_policy(self, name: str) -> Policy | None:
        return await self._one(Policy, "SELECT doc FROM policies WHERE name = ?", name)

    async def list_policies(self) -> list[Policy]:
        return await self._all(Policy, "SELECT doc FROM policies ORDER BY name", ())

    async def delete_policy(self, name: str) -> bool:
        return await self._write("DELETE FROM policies WHERE name = ?", name) > 0

    async def put_gate(self, gate: VerificationGate) -> None:
        sql = "INSERT INTO gates VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET doc = excluded.doc"
        await self._write(sql, gate.scope, _dumps(gate))

    async def list_gates(self) -> list[VerificationGate]:
        return await self._all(VerificationGate, "SELECT doc FROM gates ORDER BY scope", ())

    async def delete_gate(self, scope: str) -> bool:
        return await self._write("DELETE FROM gates WHERE scope = ?", scope) > 0

    # ---- inbound CI events ------------------------------------------------------------------
    async def create_event_source(self, source: EventSource) -> None:
        await self._create_doc("event_sources", source.source_id, source, "event source")

    async def get_event_source(self, source_id: str) -> EventSource | None:
        sql = "SELECT doc FROM event_sources WHERE source_id = ?"
        return await self._one(EventSource, sql, source_id)

    async def list_event_sources(self) -> list[EventSource]:
        sources = await self._all(EventSource, "SELECT doc FROM event_sources", ())
        return sorted(sources, key=lambda s: (s.created_at, s.source_id))

    async def delete_event_source(self, source_id: str) -> bool:
        return await self._write("DELETE FROM event_sources WHERE source_id = ?", source_id) > 0

    async def add_inbound_event(self, event: InboundEvent) -> bool:
        sql = "INSERT OR IGNORE INTO inbound_events VALUES (?, ?, ?)"
        return await self._write(sql, event.source_id, event.event_id, _dumps(event)) > 0

    async def delete_inbound_event(self, source_id: str, event_id: str) -> bool:
        sql = "DELETE FROM inbound_events WHERE source_id = ? AND event_id = ?"
        return await self._write(sql, source_id, event_id) > 0

    # ---- outbound webhooks ----------------------------------------------------------------
    async def create_webhook(self, webhook: WebhookSubscription) -> None:
        await self._create_doc("webhooks", webhook.webhook_id, webhook, "webhook")

    async def get_webhook(self, webhook_id: str) -> WebhookSubscription | None:
        sql = "SELECT doc FROM webhooks WHERE webhook_id = ?"
        return await self._one(WebhookSubscription, sql, webhook_id)

    async def list_webhooks(self) -> list[WebhookSubscription]:
        found = await self._all(WebhookSubscription, "SELECT doc FROM webhooks", ())
        return sorted(found, key=lambda w: (w.created_at, w.webhook_id))

    async def update_webhook(self, webhook: WebhookSubscription) -> bool:
        sql = "UPDATE webhooks SET doc = ? WHERE webhook_id = ?"
        return await self._write(sql, _dumps(webhook), webhook.webhook_id) > 0

    async def delete_webhook(self, webhook_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                conn.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
                sql = "DELETE FROM webhooks WHERE webhook_id = ?"
                return conn.execute(sql, (webhook_id,)).rowcount > 0

        return await self._run(run)

    @staticmethod
    def _delivery_row(d: WebhookDelivery) -> tuple[Any, ...]:
        return (d.delivery_id, d.webhook_id, d.status, d.next_attempt_at, d.created_at, _dumps(d))

    async def add_deliveries(self, deliveries: list[WebhookDelivery]) -> None:
        rows = [self._delivery_row(d) for d in deliveries]

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany("INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, ?, ?)", rows)

        if rows:
            await self._run(run)

    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        sql = "SELECT doc FROM webhook_deliveries WHERE delivery_id = ?"
        return await self._one(WebhookDelivery, sql, delivery_id)

    async def update_delivery(self, delivery: WebhookDelivery) -> None:
        sql = (
            "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, doc = ? "
            "WHERE delivery_id = ?"
        )
        await self._write(
            sql, delivery.status, delivery.next_attempt_at, _dumps(delivery), delivery.delivery_id
        )

    async def list_deliveries(
        self, webhook_id: str, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[WebhookDelivery], bool]:
        sql = "SELECT doc FROM webhook_deliveries WHERE webhook_id = ?"
        params: list[Any] = [webhook_id]
        if before is not None:
            sql += " AND (created_at < ? OR (created_at = ? AND delivery_id < ?))"
            params += [before[0], before[0], before[1]]
        sql += " ORDER BY created_at DESC, delivery_id DESC LIMIT ?"
        found = await self._all(WebhookDelivery, sql, [*params, limit + 1])
        return found[:limit], len(found) > limit

    async def due_deliveries(self, now: float, limit: int) -> list[WebhookDelivery]:
        sql = (
            "SELECT doc FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at LIMIT ?"
        )
        return await self._all(WebhookDelivery, sql, (now, limit))

    async def expire_deliveries(self, older_than: float) -> int:
        sql = "DELETE FROM webhook_deliveries WHERE status != 'pending' AND created_at < ?"
        return await self._write(sql, older_than)

    @staticmethod
    def _store_build(
        conn: sqlite3.Connection, build: BuildRecord | None, build_id: str, digests: list[str]
    ) -> bool:
        """Write ``build`` (None: the stored one) with ``digests`` added to its links."""
        with _transaction(conn):
            row = conn.execute("SELECT doc FROM builds WHERE build_id = ?", (build_id,)).fetchone()
            previous = _load(BuildRecord, row)
            stored = build or previous
            if stored is None:
                return False
            if previous is not None:
                stored = BuildRecord(
                    **{
                        **to_doc(stored),
                        "created_at": previous.created_at,
                        "digests": _merge_digests(previous.digests, digests),
                    }
                )
            conn.execute(
                "INSERT INTO builds VALUES (?, ?, ?, ?, ?) ON CONFLICT (build_id) "
                "DO UPDATE SET doc = excluded.doc",
                (build_id, stored.source_id, stored.run_key, stored.created_at, _dumps(stored)),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO build_links VALUES (?, ?)",
                [(d, build_id) for d in stored.digests],
            )
        return True

    async def put_build(self, build: BuildRecord) -> None:
        await self._run(self._store_build, build, build.build_id, build.digests)

    async def get_build(self, build_id: str) -> BuildRecord | None:
        return await self._one(BuildRecord, "SELECT doc FROM builds WHERE build_id = ?", build_id)

    async def link_build(self, build_id: str, digests: list[str]) -> bool:
        return await self._run(self._store_build, None, build_id, digests)

    async def list_builds(
        self, query: BuildQuery, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[BuildRecord], bool]:
        where, params = ["1 = 1"], []
        for column, value in (("source_id", query.source_id), ("run_key", query.run_key)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.digest is not None:
            where.append("build_id IN (SELECT build_id FROM build_links WHERE digest = ?)")
            params.append(query.digest)
        page = ("builds", "created_at", "build_id")
        return await self._newest_first(BuildRecord, page, where, params, before, limit)

    async def find_objects_by_digest(self, digest: str, limit: int = 100) -> list[ObjectRecord]:
        sql = "SELECT doc FROM objects WHERE json_extract(doc, '$.digest') = ? "
        sql += "ORDER BY bucket, key LIMIT ?"
        return await self._all(ObjectRecord, sql, (digest, limit))

    async def find_objects_by_labels(
        self, labels: dict[str, str], limit: int = 1000
    ) -> list[ObjectRecord]:
        conditions = [f"{_label_path(name)} = ?" for name in labels]
        sql = f"SELECT doc FROM objects WHERE {' AND '.join(conditions) or '1 = 1'} "
        sql += "ORDER BY bucket, key LIMIT ?"
        return await self._all(ObjectRecord, sql, (*labels.values(), limit))

    # ---- audit ------------------------------------------------------------------------------
    async def add_audit_records(self, records: list[AuditRecord]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            # Serialised here, on the metadata thread, not on the event loop.
            rows = [
                (r.time, r.record_id, r.principal, r.action, r.resource, r.decision, _dumps(r))
                for r in records
            ]
            with _transaction(conn):
                conn.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

        await self._run(insert)

    async def query_audit(
        self, query: AuditQuery, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[AuditRecord], bool]:
        where, params = ["1 = 1"], []
        for column, value in (
            ("principal", query.principal),
            ("action", query.action),
            ("decision", query.decision),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.resource_prefix:
            where.append("resource >= ?")
            params.append(query.resource_prefix)
            upper = prefix_upper_bound(query.resource_prefix)
            if upper is not None:
                where.append("resource < ?")
                params.append(upper)
        if query.since is not None:
            where.append("time >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("time < ?")
            params.append(query.until)
        page = ("audit", "time", "record_id")
        return await self._newest_first(AuditRecord, page, where, params, before, limit)

    async def _newest_first(
        self,
        cls: type[R],
        page: tuple[str, str, str],
        where: list[str],
        params: list[Any],
        before: tuple[float, str] | None,
        limit: int,
    ) -> tuple[list[R], bool]:
        """A page of ``table`` rows matching ``where``, newest first by (time, id), strictly
        before the ``before`` cursor; (page, more). ``page`` is (table, time, id column)."""
        table, when, ident = page
        if before is not None:
            where.append(f"({when} < ? OR ({when} = ? AND {ident} < ?))")
            params += [before[0], before[0], before[1]]
        sql = (
            f"SELECT doc FROM {table} WHERE {' AND '.join(where)} "
            f"ORDER BY {when} DESC, {ident} DESC LIMIT ?"
        )
        rows = await self._all(cls, sql, (*params, limit + 1))
        return rows[:limit], len(rows) > limit

    async def expire_audit(self, older_than: float) -> int:
        return await self._write("DELETE FROM audit WHERE time < ?", older_than)

    # ---- lifecycle: expiring objects, abandoned uploads, the one-runner lease ---------------
    async def expired_objects(self, now: float, limit: int = 1000) -> list[ObjectRecord]:
        expiry = "json_extract(doc, '$.expires_at')"
        sql = (
            f"SELECT doc FROM objects WHERE {expiry} IS NOT NULL AND {expiry} <= ? "
            f"ORDER BY {expiry}, bucket, key LIMIT ?"
        )
        return await self._all(ObjectRecord, sql, (now, limit))

    @staticmethod
    def _expire_object(
        conn: sqlite3.Connection, bucket: str, key: str, digest: str, updated_at: float
    ) -> ObjectRecord | None:
        with _transaction(conn):
            row = conn.execute(
                "SELECT doc FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
            current = _load(ObjectRecord, row)
            if current is None or (current.digest, current.updated_at) != (digest, updated_at):
                return None
            conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            conn.execute("DELETE FROM object_blobs WHERE bucket = ? AND key = ?", (bucket, key))
        return current

    async def expire_object(
        self, bucket: str, key: str, digest: str, updated_at: float
    ) -> ObjectRecord | None:
        return await self._run(self._expire_object, bucket, key, digest, updated_at)

    async def stale_multipart(
        self, initiated_before: float, limit: int = 1000
    ) -> list[MultipartUpload]:
        sql = (
            "SELECT doc FROM multipart_uploads WHERE initiated_at < ? "
            "ORDER BY initiated_at, upload_id LIMIT ?"
        )
        return await self._all(MultipartUpload, sql, (initiated_before, limit))

    async def stale_registry_uploads(
        self, created_before: float, limit: int = 1000
    ) -> list[RegistryUpload]:
        created = "json_extract(doc, '$.created_at')"
        sql = f"SELECT doc FROM registry_uploads WHERE {created} < ? ORDER BY {created} LIMIT ?"
        return await self._all(RegistryUpload, sql, (created_before, limit))

    async def acquire_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        sql = (
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at WHERE leases.expires_at <= ? OR leases.holder = ?"
        )
        return await self._write(sql, name, holder, now + ttl, now, holder) > 0

    async def release_lease(self, name: str, holder: str) -> bool:
        sql = "DELETE FROM leases WHERE name = ? AND holder = ?"
        return await self._write(sql, name, holder) > 0

    # ---- failed authentications (issue 19) ---------------------------------------------------
    async def add_auth_failure(self, keys: Sequence[str], slot: int, expires_at: float) -> None:
        rows = [(key, slot, expires_at) for key in dict.fromkeys(keys)]

        def add(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    "INSERT INTO auth_failures VALUES (?, ?, 1, ?) ON CONFLICT (key, slot) "
                    "DO UPDATE SET count = count + 1, "
                    "expires_at = max(expires_at, excluded.expires_at)",
                    rows,
                )

        await self._run(add)

    async def auth_failures(
        self, keys: Sequence[str], since_slot: int
    ) -> dict[str, dict[int, int]]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        sql = f"SELECT key, slot, count FROM auth_failures WHERE key IN ({marks}) AND slot >= ?"

        def read(conn: sqlite3.Connection) -> dict[str, dict[int, int]]:
            out: dict[str, dict[int, int]] = {}
            for key, slot, count in conn.execute(sql, (*wanted, since_slot)):
                out.setdefault(key, {})[slot] = count
            return out

        return await self._run(read)

    async def expire_auth_failures(self, now: float) -> int:
        return await self._write("DELETE FROM auth_failures WHERE expires_at < ?", now)

    # ---- generations (issue 23) ---------------------------------------------------------------
    async def bump_generation(self, name: str) -> int:
        def bump(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                row = conn.execute(
                    "INSERT INTO generations VALUES (?, 1) ON CONFLICT (name) "
                    "DO UPDATE SET value = value + 1 RETURNING value",
                    (name,),
                ).fetchone()
            return int(row[0])

        return await self._run(bump)

    async def generation(self, name: str) -> int:
        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM generations WHERE name = ?", (name,)).fetchone()
            return int(row[0]) if row else 0

        return await self._run(read)
