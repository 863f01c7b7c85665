"""The blob store on an object store (S3, Azure Blob, GCS): all state in the bucket/container,
reached through an :class:`~.objectclient.ObjectClient`; each backend adds its client and its
start-up check (``s3.py``, ``azure.py``, ``gcs.py``).

Layout under the key prefix (``storage.storageDriver.rootdirectory``)::

    blobs/<algo>/<hex>                  committed blobs, named by digest
    tmp/<instance>.lease                a running store instance (rewritten every LEASE_REFRESH)
    tmp/<instance>/<random>             that instance's in-progress writes
    tmp/<instance>/composing/<algo>-<hex>.<random>  a composition onto that blob's key
    data/<instance>/<random>            the bytes of a blob written in parts ("pointer" commits)
    uploads/<id>/log/<seq:08d>          an upload session: 0 opens it, then one entry per
                                        append ({"segment", "size"}), last maybe {"final"}
    uploads/<id>/data/<random>          the bytes of one append (a segment)
    uploads/<id>/busy/<instance>        an append or finalize of that instance in progress

**Writes** stream through the client's :class:`~.objectclient.PartUploader`: a blob smaller
than one part is one conditional put straight to its digest's key (the digest is known when the
body ends). A larger one goes in parts to a data object under ``data/`` while it is hashed; once
that object is complete, the digest's key gets a *pointer* — a small record naming it — with a
create-only condition, so of concurrent writers of the same content exactly one creates it (the
others delete their data object). With ``commit: copy`` the parts go to a temporary key instead
and are composed inside the store onto the digest's key (the backend's own copy: a second pass
over the bytes inside the store; docs/adr/0006 says why pointers are the default). Objects
become visible only when complete, so a reader never sees part of a blob. A dedupe hit restarts
GC's grace clock (``touch``, of the pointer when there is one).

A pointer is told apart from a blob's own bytes by its exact size (fixed per algorithm) and its
content, which names the digest it stands for: a blob whose bytes look like a pointer record
would have to hash to the digest written inside itself, so no upload can forge one. A data
object no pointer names is garbage once older than GC's cut-off and its writer's lease lapsed
or it is older than LEASE_TTL (``collect_leftovers``); a pointer's data object is removed with
the blob (``delete``), never by the sweep.

**Upload sessions** (OCI chunked uploads) live wholly in the store, so a session survives a
restart and moves between replicas: each append streams to its own segment object, then claims
the next log sequence number with a create-only put; concurrent appends (other replicas)
therefore never interleave, and a lost race just retries at the next number. Finalize claims the
next number with a ``final`` entry (no append can follow), then composes the segments into the
blob inside the store. The sha256 of a session is kept in process memory as it is appended; a
replica that did not see every append re-reads the segments it missed once, at finalize.

**Leftovers**: a store that opens removes the ``tmp/`` objects and unfinished uploads of
instances whose lease is missing or older than LEASE_TTL; abandoned sessions are GC's
(``iter_uploads``). A session is in flight, never abandoned, while an instance with a live
lease appends to it or finalizes it (its ``busy/`` marker): the bytes of a long append stream
into an unfinished multipart upload, which no listing shows, so without the marker the
session would look idle since its last complete append and GC (``storage.gcDelay``) could
remove it under the request.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from .base import (
    EXTRA_HASHES,
    HEX_RE,
    UPLOAD_ID_RE,
    BlobInfo,
    BlobNotFoundError,
    BlobStat,
    BlobStore,
    BlobWriter,
    DigestMismatchError,
    SessionLocks,
    StorageObserver,
    StorageUnavailableError,
    UploadNotFoundError,
    check_read_args,
    split_digest,
)
from .objectclient import (
    SEND_THREADS,
    ClientSettings,
    ObjectBody,
    ObjectClient,
    ObjectInfo,
    ObjectStoreError,
)

__all__ = ["ObjectBlobStore"]

LEASE_REFRESH = 60.0
LEASE_TTL = 600.0  # an instance whose lease is older is dead: its tmp/ content is swept
INSTANCE_RE = re.compile(r"^[0-9a-f]{16}$")
SEQ_WIDTH = 8
# Entries of session logs kept in memory (they never change once written).
MAX_CACHED_ENTRIES = 65_536
APPEND_COMMIT_TRIES = 100
READ_CHUNK = 1 << 20  # bytes a read asks the backend's body for at a time
READ_RESUMES = 3  # a body cut short is asked for again from where it stopped, this often
Hasher = Any


POINTER_MAGIC = b"zas-pointer/1\n"
DATA_NAME_RE = re.compile(r"^data/[0-9a-f]{16}/[0-9a-f]{32}$")
MAX_CACHED_POINTERS = 65_536
SWEEP_READS = 8  # pointer records read at once when GC enumerates them


def pointer_record(digest: str, size: int, data_name: str) -> bytes:
    """The record on a digest's key naming the object (``data/…``, without the store's key
    prefix) that holds its ``size`` bytes. Fixed length per algorithm."""
    return POINTER_MAGIC + f"{digest}\n{size:020d}\n{data_name}\n".encode()


@functools.cache
def pointer_size(algo: str) -> int:
    hex_len = 2 * hashlib.new(algo).digest_size
    return len(pointer_record(f"{algo}:{'0' * hex_len}", 0, f"data/{'0' * 16}/{'0' * 32}"))


def parse_pointer(raw: bytes, digest: str) -> tuple[str, int] | None:
    """(data object name, size) when ``raw`` is the pointer record of ``digest``, else None
    (the blob's own bytes)."""
    if len(raw) != pointer_size(split_digest(digest)[0]) or not raw.startswith(POINTER_MAGIC):
        return None
    try:
        named, size, name, rest = raw[len(POINTER_MAGIC) :].decode("ascii").split("\n")
    except (UnicodeDecodeError, ValueError):
        return None
    if named != digest or rest or not size.isdigit() or not DATA_NAME_RE.fullmatch(name):
        return None
    return name, int(size)


class ObjectBlobStore(BlobStore):
    """The store's logic over any :class:`ObjectClient`."""

    def __init__(self, options: ClientSettings) -> None:
        self.options = options
        self.client = self.new_client()
        self.touch_after = options.touch_after
        self.orphan_copy_age = options.orphan_copy_age
        self._instance: str | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._entries: dict[tuple[str, int], dict[str, Any]] = {}
        # upload id → (sha256 of its first `offset` bytes, the log sequence it covers, offset)
        self._session_hashes: dict[str, tuple[Hasher, int, int]] = {}
        self._session_lock = SessionLocks()
        # digest → (data object key, size) of pointers seen; a pointer never changes, but a blob
        # deleted and written again names another data object (a 404 there drops the entry).
        self._pointers: dict[str, tuple[str, int]] = {}

    def describe(self) -> dict[str, str]:
        return {"backend": self.client.backend, "location": self.client.describe()}

    def set_observer(self, observer: StorageObserver) -> None:
        self.client.observer = observer

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def instance(self) -> str:
        if self._instance is None:
            raise RuntimeError("blob store is not open")
        return self._instance

    async def open(self) -> None:
        if self._instance is not None:
            return
        await self._check_reachable()
        self._instance = secrets.token_hex(8)
        self.client.scratch = self.client.key(f"tmp/{self._instance}/")
        await self._write_lease()
        self._lease_task = asyncio.create_task(self._keep_lease())
        await self._sweep_tmp()

    @abc.abstractmethod
    def new_client(self) -> ObjectClient:
        """This backend's client for ``self.options``."""

    async def _check_reachable(self) -> None:
        """List the prefix once; raise StorageUnavailableError saying why it cannot be
        (bucket/container missing, credentials refused)."""
        c = self.client
        try:
            await c.probe()
        except ObjectStoreError as exc:
            what = f"{c.namespace} {c.namespace_name()!r}"
            if exc.status == 404 or exc.code in ("NoSuchBucket", "ContainerNotFound"):
                why = f"{what} does not exist"
            elif exc.status in (401, 403) or exc.code in c.refusal_codes:
                why = f"{c.credentials_name()} cannot list {what} ({exc.code})"
            else:
                why = f"cannot list {what}: {exc}"
            where = c.where()
            await c.close()
            self.client = self.new_client()  # usable again (closed clients are not)
            raise StorageUnavailableError(
                f"storage.storageDriver ({c.backend}): {why} at {where}"
            ) from None

    def _lease_key(self, instance: str) -> str:
        return self.client.key(f"tmp/{instance}.lease")

    async def _write_lease(self) -> None:
        await self.client.put(self._lease_key(self.instance), b"")

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_REFRESH)
            with contextlib.suppress(OSError):
                await self._write_lease()

    async def _sweep_tmp(self) -> int:
        """Remove what dead instances (no fresh lease) left under ``tmp/``. An instance writes
        its lease before anything else, and a lease is checked again just before its owner's
        leftovers go, so an instance starting meanwhile keeps its writes."""
        tmp = self.client.key("tmp/")
        verdicts: dict[str, bool] = {}  # owner → alive

        def owner_of(key: str) -> str:
            return key[len(tmp) :].split("/", 1)[0].removesuffix(".lease")

        async def alive(owner: str) -> bool:
            if owner not in verdicts:
                verdicts[owner] = await self._instance_alive(owner)
            return verdicts[owner]

        doomed = [o.key for o in await self.client.list(tmp) if not await alive(owner_of(o.key))]
        await asyncio.gather(*(self.client.delete(k) for k in doomed))
        for up in await self.client.pending_uploads(tmp):
            verdicts.pop(owner := owner_of(up.key), None)
            if not await alive(owner):
                await self.client.abort_pending(up)
                doomed.append(up.key)
        data = self.client.key("data/")
        for up in await self.client.pending_uploads(data):
            owner = up.key[len(data) :].split("/", 1)[0]
            verdicts.pop(owner, None)
            if not await alive(owner):
                await self.client.abort_pending(up)
                doomed.append(up.key)
        return len(doomed)

    async def _instance_alive(self, instance: str) -> bool:
        """Whether ``instance`` (a store instance id) holds a fresh lease."""
        if instance == self._instance:
            return True
        if not INSTANCE_RE.fullmatch(instance):
            return False
        head = await self.client.head(self._lease_key(instance))
        return head is not None and time.time() - head.mtime < LEASE_TTL

    async def collect_leftovers(self, cutoff: float) -> int:
        """Temporaries of instances that died since this one opened, data objects no pointer
        names (``_sweep_data``), and unfinished uploads under ``blobs/`` (a crash in the middle
        of a commit's composition) begun before ``cutoff`` and at least ``orphan_copy_age`` ago
        — a copy of a very large blob may take hours."""
        removed = await self._sweep_tmp() + await self._sweep_data(cutoff)
        cutoff = min(cutoff, time.time() - self.orphan_copy_age)
        composing = await self._composing()
        for up in await self.client.pending_uploads(self.client.key("blobs/")):
            # A live instance's composition is no leftover, whatever start time the store
            # reports (moto's server reports a fixed date in 2010 for every upload).
            if up.started < cutoff and up.key not in composing:
                await self.client.abort_pending(up)
                removed += 1
        return removed

    async def _sweep_data(self, cutoff: float) -> int:
        """Delete data objects no pointer names (a writer died between completing one and
        writing its pointer, or its delete failed), modified before ``cutoff`` and either
        older than LEASE_TTL or left by an instance whose lease lapsed — a live writer
        points at its data object seconds after completing it. Data objects are listed before
        the pointers are read, so a pointer written meanwhile is seen."""
        base = self.client.key("data/")
        now = time.time()
        candidates = [o for o in await self.client.list(base) if o.mtime < cutoff]
        if not candidates:
            return 0
        named = {key async for key, _ in self._pointed_data()}
        removed = 0
        for o in candidates:
            owner = o.key[len(base) :].split("/", 1)[0]
            if o.key in named:
                continue
            if o.mtime < now - LEASE_TTL or not await self._instance_alive(owner):
                await self.client.delete(o.key)
                removed += 1
        return removed

    async def _pointed_data(self) -> AsyncIterator[tuple[str, BlobStat]]:
        """Every blob as (the key holding its bytes, its stat): pointers read afresh, a few
        at a time."""
        base = self.client.key("blobs/")
        gate = asyncio.Semaphore(SWEEP_READS)

        async def resolve(o: ObjectInfo, digest: str) -> tuple[str, BlobStat] | None:
            if o.size != pointer_size(split_digest(digest)[0]):
                return o.key, BlobStat(digest, o.size, o.mtime)
            async with gate:
                found = await self._resolve(digest, fresh=True)
            return None if found is None else (found[0], BlobStat(digest, found[1], o.mtime))

        jobs = []
        for o in await self.client.list(base):
            algo, _, hexpart = o.key[len(base) :].partition("/")
            hex_re = HEX_RE.get(algo)
            if hex_re is not None and hex_re.fullmatch(hexpart):
                jobs.append(resolve(o, f"{algo}:{hexpart}"))
        for found in await asyncio.gather(*jobs):
            if found is not None:
                yield found

    async def _composing(self) -> set[str]:
        """The blob keys live instances are composing onto now (their markers)."""
        tmp = self.client.key("tmp/")
        keys: set[str] = set()
        verdicts: dict[str, bool] = {}
        for o in await self.client.list(tmp):
            owner, _, rest = o.key[len(tmp) :].partition("/")
            name = rest.removeprefix("composing/")
            algo, _, hexpart = name.partition(".")[0].partition("-")
            if name == rest or algo not in HEX_RE or not HEX_RE[algo].fullmatch(hexpart):
                continue
            if owner not in verdicts:
                verdicts[owner] = await self._instance_alive(owner)
            if verdicts[owner]:
                keys.add(self.blob_key(f"{algo}:{hexpart}"))
        return keys

    async def _compose(self, sources: list[tuple[str, int]], digest: str) -> bool:
        """Compose ``sources`` onto ``digest``'s key if absent (True when this created it),
        marked in progress under ``tmp/`` so GC leaves the backend's unfinished upload be."""
        algo, hexpart = split_digest(digest)
        name = f"{algo}-{hexpart}.{secrets.token_hex(4)}"
        marker = self.client.key(f"tmp/{self.instance}/composing/{name}")
        await self.client.put(marker, b"")
        try:
            return await self.client.compose(sources, self.blob_key(digest), if_absent=True)
        finally:
            with contextlib.suppress(OSError):
                await self.client.delete(marker)

    async def close(self) -> None:
        if self._instance is None:
            return
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        with contextlib.suppress(OSError):
            await self.client.delete_prefix(self.client.key(f"tmp/{self._instance}/"))
            await self.client.delete(self._lease_key(self._instance))
        self._instance = None
        self._entries.clear()
        self._session_hashes.clear()
        await self.client.close()

    async def check_writable(self) -> None:
        key = self.client.key(f"tmp/{self.instance}/probe-{secrets.token_hex(8)}")
        await self.client.put(key, b"probe")
        await self.client.delete(key)

    # ---- keys -----------------------------------------------------------------------------
    def blob_key(self, digest: str) -> str:
        algo, hexpart = split_digest(digest)
        return self.client.key(f"blobs/{algo}/{hexpart}")

    def _tmp_key(self) -> str:
        return self.client.key(f"tmp/{self.instance}/{secrets.token_hex(16)}")

    def _data_key(self) -> str:
        return self.client.key(f"data/{self.instance}/{secrets.token_hex(16)}")

    def _is_data_key(self, key: str) -> bool:
        return DATA_NAME_RE.fullmatch(key.removeprefix(self.client.settings.prefix)) is not None

    async def _resolve(self, digest: str, *, fresh: bool = False) -> tuple[str, int, float] | None:
        """(the key holding ``digest``'s bytes, its size, its key's mtime), None when absent.
        One HEAD; a pointer-sized object is read (unless a pointer of it is cached)."""
        key = self.blob_key(digest)
        head = await self.client.head(key)
        if head is None:
            self._pointers.pop(digest, None)
            return None
        if head.size != pointer_size(split_digest(digest)[0]):
            return key, head.size, head.mtime
        cached = None if fresh else self._pointers.get(digest)
        if cached is not None:
            return cached[0], cached[1], head.mtime
        try:
            raw = await self._read_object(key)
        except ObjectStoreError as exc:
            if exc.status == 404:  # deleted meanwhile
                return None
            raise
        ptr = parse_pointer(raw, digest)
        if ptr is None:
            return key, head.size, head.mtime
        data = self._remember_pointer(digest, ptr)
        return data, ptr[1], head.mtime

    def _remember_pointer(self, digest: str, ptr: tuple[str, int]) -> str:
        data = self.client.key(ptr[0])
        self._pointers[digest] = (data, ptr[1])
        while len(self._pointers) > MAX_CACHED_POINTERS:
            del self._pointers[next(iter(self._pointers))]
        return data

    # ---- writes ---------------------------------------------------------------------------
    async def writer(self, extra_hashes: tuple[str, ...] = ()) -> BlobWriter:
        unknown = set(extra_hashes) - set(EXTRA_HASHES)
        if unknown:
            raise ValueError(f"unsupported hash algorithm(s): {', '.join(sorted(unknown))}")
        return _ObjectWriter(self, extra_hashes)

    async def _publish(self, src: str, size: int, digest: str) -> bool:
        """Compose the complete object ``src`` onto ``digest``'s key (if absent; else touch
        it) and delete ``src``; True when the blob already existed. A data object ``src``
        (``data/``) gets a pointer instead."""
        if self._is_data_key(src):
            return await self._point(src, size, digest)
        dest = self.blob_key(digest)
        try:
            if await self.client.head(dest) is None and await self._compose([(src, size)], digest):
                return False
            await self._touch(dest, size)
            return True
        finally:
            with contextlib.suppress(OSError):
                await self.client.delete(src)

    async def _point(self, data: str, size: int, digest: str) -> bool:
        """Write ``digest``'s pointer to the complete object ``data`` if the blob is absent
        (True: it existed — touched, and ``data`` deleted). A create whose answer was lost and
        retried finds its own pointer and counts as created."""
        dest = self.blob_key(digest)
        name = data.removeprefix(self.client.settings.prefix)
        record = pointer_record(digest, size, name)
        for _ in range(3):
            if await self.client.head(dest) is None and await self.client.put(
                dest, record, if_absent=True
            ):
                self._remember_pointer(digest, (name, size))
                return False
            found = await self._resolve(digest, fresh=True)
            if found is None:  # deleted between the HEAD and now: try again
                continue
            if found[0] == data:
                return False
            await self._touch(dest, size)
            with contextlib.suppress(OSError):
                await self.client.delete(data)
            return True
        raise ObjectStoreError("put_pointer", "Conflict", 409, f"{digest} keeps changing")

    async def _touch(self, key: str, size: int) -> None:
        """Restart GC's grace clock of an existing blob (or its pointer) older than
        ``touch_after``."""
        head = await self.client.head(key)
        if head is None:  # collected meanwhile: nothing to keep
            return
        if time.time() - head.mtime < self.touch_after:
            return
        await self.client.touch(key, head.size)

    # ---- reads ----------------------------------------------------------------------------
    async def location(self, digest: str) -> str | None:
        """The key holding ``digest``'s bytes — its own, or the data object its pointer
        names — or None when the blob is absent (operators' tools and fault tests)."""
        found = await self._resolve(digest, fresh=True)
        return None if found is None else found[0]

    async def stat(self, digest: str) -> BlobStat | None:
        found = await self._resolve(digest)
        if found is None:
            return None
        return BlobStat(digest, found[1], found[2])

    @property
    def signs_urls(self) -> bool:
        return self.client.signs_urls

    async def presign(self, digest: str, expires: int) -> str | None:
        """The backend's own signed GET URL of the object holding ``digest``'s bytes: its key,
        or the data object a pointer names (never the pointer record itself)."""
        found = await self._resolve(digest)
        if found is None:
            raise BlobNotFoundError(digest)
        return await self.client.presign_get(found[0], expires)

    async def read(
        self, digest: str, start: int = 0, end: int | None = None, chunk_size: int = READ_CHUNK
    ) -> AsyncIterator[bytes]:
        key = self.blob_key(digest)
        check_read_args(start, end, chunk_size)
        if end is not None and end <= start:
            if await self.stat(digest) is None:
                raise BlobNotFoundError(digest)
            return
        # The digest's key may hold a pointer: a read from the start finds out from its first
        # bytes (no extra request for a blob stored whole); another range resolves it first.
        peek = True
        cached = self._pointers.get(digest)
        if cached is not None:
            key, peek = cached[0], False
        elif start or (end is not None and end <= pointer_size(split_digest(digest)[0])):
            found = await self._resolve(digest)
            if found is None:
                raise BlobNotFoundError(digest)
            key, peek = found[0], False
        pos, resumes, stale = start, 0, cached is not None
        while True:
            try:
                body = await self.client.get(key, pos, end)
            except ObjectStoreError as exc:
                if exc.status == 404 and pos == start and stale:
                    # A cached pointer's data object is gone: the blob was deleted (and maybe
                    # written again, naming another one); look again.
                    self._pointers.pop(digest, None)
                    found = await self._resolve(digest)
                    if found is None:
                        raise BlobNotFoundError(digest) from None
                    key, peek, stale = found[0], False, False
                    continue
                if exc.status == 404 and pos == start:
                    raise BlobNotFoundError(digest) from None
                if exc.status == 416:  # starts at or past the end
                    return
                raise
            try:
                if peek:
                    head = await self._peek(body, digest, chunk_size)
                    peek = False
                    if isinstance(head, str):  # a pointer: read its data object instead
                        key = head
                        continue
                    for i in range(0, len(head), chunk_size):
                        pos += len(piece := head[i : i + chunk_size])
                        yield piece
                while chunk := await self.client.read_body(body, chunk_size):
                    pos += len(chunk)
                    yield chunk
                return
            except ObjectStoreError as exc:
                # A body cut short: ask again from the byte reached (the blob cannot change).
                if not exc.retryable or resumes >= READ_RESUMES:
                    raise
                resumes += 1
            finally:
                body.close()

    async def send_to_socket(self, digest: str, sock_fd: int, start: int, end: int) -> int:
        """Bytes ``[start, end)`` from the backend straight to the client's socket on a
        sender thread (``ObjectClient.send_body``), as far as that goes quickly; the caller
        streams the rest with :meth:`read` (which also sorts out a blob gone meanwhile)."""
        if start >= end or not self.client.fills_buffers or self.client.sending >= SEND_THREADS:
            return 0
        cached = self._pointers.get(digest)
        if cached is not None:
            key = cached[0]
        else:
            found = await self._resolve(digest)
            if found is None:
                raise BlobNotFoundError(digest)
            key = found[0]
        try:
            body = await self.client.get(key, start, end)
        except ObjectStoreError as exc:
            if exc.status in (404, 416) or exc.retryable:
                return 0  # read() looks again, resumes, or says what is wrong
            raise
        return await self.client.send_body(body, sock_fd, end - start) or 0

    async def _peek(self, body: ObjectBody, digest: str, chunk_size: int) -> str | bytes:
        """The first bytes of a whole read of ``digest``'s key: the data object's key when
        they are its pointer record, else the bytes (to be passed on)."""
        limit = pointer_size(split_digest(digest)[0])
        raw = b""
        while len(raw) <= limit:
            more = await self.client.read_body(body, max(chunk_size, limit + 1) - len(raw))
            if not more:
                break
            raw += more
        ptr = parse_pointer(raw, digest)
        return raw if ptr is None else self._remember_pointer(digest, ptr)

    async def delete(self, digest: str) -> bool:
        key = self.blob_key(digest)
        found = await self._resolve(digest, fresh=True)
        if found is None:
            return False
        await self.client.delete(key)
        self._pointers.pop(digest, None)
        if found[0] != key:  # the pointer is gone: its data object goes too
            await self.client.delete(found[0])
        return True

    async def iter_blobs(self) -> AsyncIterator[BlobStat]:
        async for _, stat in self._pointed_data():
            yield stat

    # ---- upload sessions ------------------------------------------------------------------
    def _session_prefix(self, upload_id: str) -> str:
        if not isinstance(upload_id, str) or not UPLOAD_ID_RE.fullmatch(upload_id):
            raise UploadNotFoundError(str(upload_id))
        return self.client.key(f"uploads/{upload_id}/")

    def _log_key(self, upload_id: str, seq: int) -> str:
        return f"{self._session_prefix(upload_id)}log/{seq:0{SEQ_WIDTH}d}"

    async def _claim(self, upload_id: str, seq: int, entry: dict[str, Any]) -> bool:
        body = json.dumps(entry).encode()
        if not await self.client.put(self._log_key(upload_id, seq), body, if_absent=True):
            return False
        self._remember(upload_id, seq, entry)
        return True

    def _remember(self, upload_id: str, seq: int, entry: dict[str, Any]) -> None:
        self._entries[(upload_id, seq)] = entry
        while len(self._entries) > MAX_CACHED_ENTRIES:
            del self._entries[next(iter(self._entries))]

    async def _read_object(self, key: str) -> bytes:
        body = await self.client.get(key)
        try:
            return await self.client.read_body(body)
        finally:
            body.close()

    async def _log(self, upload_id: str) -> list[dict[str, Any]]:
        """The session's entries in order; raises UploadNotFoundError when it is gone or
        finalized (its ``final`` entry is left out otherwise never)."""
        prefix = self._session_prefix(upload_id) + "log/"
        seqs = sorted(
            int(name)
            for o in await self.client.list(prefix)
            if (name := o.key[len(prefix) :]).isdigit()
        )
        if not seqs or seqs[0] != 0:
            raise UploadNotFoundError(upload_id)
        seqs = seqs[: next((i for i, s in enumerate(seqs) if s != i), len(seqs))]
        missing = [s for s in seqs if (upload_id, s) not in self._entries]

        async def fetch(seq: int) -> None:
            raw = await self._read_object(self._log_key(upload_id, seq))
            self._remember(upload_id, seq, json.loads(raw))

        try:
            await asyncio.gather(*(fetch(s) for s in missing))
        except ObjectStoreError as exc:
            if exc.status == 404:  # aborted or finalized meanwhile
                raise UploadNotFoundError(upload_id) from None
            raise
        entries = [self._entries[(upload_id, s)] for s in seqs]
        if any("final" in e for e in entries):
            raise UploadNotFoundError(upload_id)
        return entries

    def _segment_key(self, upload_id: str, name: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{32}", name):
            raise ValueError(f"malformed segment name in session {upload_id}")
        return f"{self._session_prefix(upload_id)}data/{name}"

    @contextlib.asynccontextmanager
    async def _busy(self, upload_id: str) -> AsyncIterator[None]:
        """Mark the session in flight for this instance while the block runs."""
        key = f"{self._session_prefix(upload_id)}busy/{self.instance}"
        await self.client.put(key, b"")
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                await self.client.delete(key)

    async def upload_create(self) -> str:
        upload_id = secrets.token_hex(16)
        if not await self._claim(upload_id, 0, {"created": time.time()}):
            raise ObjectStoreError("upload_create", "Conflict", 412, "session id taken")
        self._session_hashes[upload_id] = (hashlib.sha256(), 0, 0)
        return upload_id

    async def upload_size(self, upload_id: str) -> int:
        return sum(e.get("size", 0) for e in await self._log(upload_id))

    async def upload_append(self, upload_id: str, chunks: AsyncIterator[bytes]) -> int:
        async with self._session_lock(upload_id), self._busy(upload_id):
            entries = await self._log(upload_id)
            start_seq, start_size = len(entries) - 1, sum(e.get("size", 0) for e in entries)
            cached = self._session_hashes.get(upload_id)
            hasher: Hasher | None = None
            if cached is not None and cached[1:] == (start_seq, start_size):
                hasher = cached[0].copy()
            name = secrets.token_hex(16)
            segment = self.client.uploader(
                self._segment_key(upload_id, name),
                hasher.update if hasher is not None else None,
            )
            failure: BaseException | None = None
            try:
                async for chunk in chunks:
                    await segment.write(chunk)
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                failure = exc  # the client went away: keep what arrived, then re-raise
            except BaseException:
                await segment.abort()
                raise
            try:
                if not segment.size:
                    await segment.abort()
                    if failure is not None:
                        raise failure
                    return start_size
                await segment.hashed()
                await segment.finish()
                entry = {"segment": name, "size": segment.size}
                seq = start_seq + 1
                for _ in range(APPEND_COMMIT_TRIES):
                    if await self._claim(upload_id, seq, entry):
                        break
                    entries = await self._log(upload_id)  # another replica appended
                    seq = len(entries)
                else:
                    raise ObjectStoreError("upload_append", "Conflict", 409, "log contended")
            except BaseException:
                await segment.abort()
                with contextlib.suppress(OSError):
                    await self.client.delete(segment.key)
                self._session_hashes.pop(upload_id, None)
                raise
            new_size = sum(e.get("size", 0) for e in await self._log(upload_id))
            if hasher is not None and seq == start_seq + 1:
                self._session_hashes[upload_id] = (hasher, seq, new_size)
            else:
                self._session_hashes.pop(upload_id, None)
            if failure is not None:
                raise failure
            return new_size

    async def _session_sha256(
        self, upload_id: str, entries: list[dict[str, Any]]
    ) -> tuple[Hasher, int]:
        """sha256 over the session's segments: from the cache, reading what it lacks."""
        cached = self._session_hashes.get(upload_id)
        hasher, seq, size = hashlib.sha256(), 0, 0
        covered = sum(e.get("size", 0) for e in entries[1 : (cached[1] + 1 if cached else 0)])
        if cached is not None and cached[1] < len(entries) and cached[2] == covered:
            hasher, seq, size = cached[0].copy(), cached[1], cached[2]
        for entry in entries[seq + 1 :]:
            await self._hash_object(self._segment_key(upload_id, entry["segment"]), [hasher])
            size += entry["size"]
        self._session_hashes[upload_id] = (hasher.copy(), len(entries) - 1, size)
        return hasher, size

    async def _hash_object(self, key: str, hashers: list[Hasher]) -> None:
        body = await self.client.get(key)
        try:
            while chunk := await self.client.read_body(body, 1 << 20):
                for h in hashers:
                    await self.client.run(h.update, chunk)
        finally:
            body.close()

    async def upload_finalize(self, upload_id: str, expected_digest: str | None = None) -> BlobInfo:
        algo = split_digest(expected_digest)[0] if expected_digest is not None else "sha256"
        self._session_prefix(upload_id)
        async with self._session_lock(upload_id), self._busy(upload_id):
            while True:
                entries = await self._log(upload_id)
                h256, size = await self._session_sha256(upload_id, entries)
                hashes = {"sha256": h256.hexdigest()}
                segments = [
                    (self._segment_key(upload_id, e["segment"]), e["size"]) for e in entries[1:]
                ]
                if algo == "sha512":
                    h512 = hashlib.sha512()
                    for key, _ in segments:
                        await self._hash_object(key, [h512])
                    hashes["sha512"] = h512.hexdigest()
                digest = f"{algo}:{hashes[algo]}"
                if expected_digest is not None and digest != expected_digest:
                    raise DigestMismatchError(expected_digest, digest)
                if await self._claim(upload_id, len(entries), {"final": digest}):
                    break
            dest = self.blob_key(digest)
            existed = await self.client.head(dest) is not None
            if not existed:
                existed = not await self._compose(segments, digest)
            if existed:
                await self._touch(dest, size)
            await self._drop_session(upload_id)
            return BlobInfo(digest=digest, size=size, hashes=hashes, existed=existed)

    async def _drop_session(self, upload_id: str) -> bool:
        prefix = self._session_prefix(upload_id)
        self._session_hashes.pop(upload_id, None)
        for key in [k for k in self._entries if k[0] == upload_id]:
            del self._entries[key]
        opened = await self.client.head(self._log_key(upload_id, 0)) is not None
        if opened:  # the session ends here, whatever remains below is only garbage
            await self.client.delete(self._log_key(upload_id, 0))
        removed = await self.client.delete_prefix(prefix)
        return opened or removed > 0

    async def upload_abort(self, upload_id: str) -> bool:
        try:
            self._session_prefix(upload_id)
        except UploadNotFoundError:
            return False
        async with self._session_lock(upload_id):
            return await self._drop_session(upload_id)

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        """Every session with its last write; one that a live instance is appending to or
        finalizing (its ``busy/`` marker) counts as written now."""
        base = self.client.key("uploads/")
        latest: dict[str, float] = {}
        busy: dict[str, list[str]] = {}
        for o in await self.client.list(base):
            upload_id, _, rest = o.key[len(base) :].partition("/")
            if UPLOAD_ID_RE.fullmatch(upload_id):
                latest[upload_id] = max(latest.get(upload_id, 0.0), o.mtime)
                if rest.startswith("busy/"):
                    busy.setdefault(upload_id, []).append(rest[len("busy/") :])
        verdicts: dict[str, bool] = {}
        for upload_id, mtime in latest.items():
            for instance in busy.get(upload_id, ()):
                if instance not in verdicts:
                    verdicts[instance] = await self._instance_alive(instance)
                if verdicts[instance]:
                    mtime = time.time()
                    break
            yield upload_id, mtime


class _ObjectWriter(BlobWriter):
    """A streaming write: a temporary object hashed on the way, composed onto its digest's key
    at commit (or, under one part, one conditional put to that key)."""

    def __init__(self, store: ObjectBlobStore, extra: tuple[str, ...]) -> None:
        self._store = store
        self._hashers: dict[str, Hasher] = {"sha256": hashlib.sha256()}
        for name in extra:
            self._hashers.setdefault(name, hashlib.new(name))
        pointer = store.options.commit == "pointer"
        key = store._data_key() if pointer else store._tmp_key()
        self._up = store.client.uploader(key, self._update)
        self._done = False
        self._pointing = False  # a pointer to the data object may exist: never delete it here

    def _update(self, block: bytes) -> None:
        for h in self._hashers.values():
            h.update(block)

    @property
    def size(self) -> int:
        return self._up.size

    async def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise RuntimeError("write after commit or abort")
        await self._up.write(data)

    async def commit(self, expected_digest: str | None = None) -> BlobInfo:
        if self._done:
            raise RuntimeError("commit after commit or abort")
        algo = split_digest(expected_digest)[0] if expected_digest is not None else "sha256"
        self._done = True
        store = self._store
        try:
            await self._up.hashed()
            sent = completed = self._up.multipart
            if algo not in self._hashers:  # sha512 expected but not computed on the way
                h = hashlib.new(algo)
                if sent:
                    await self._up.finish()
                    completed = False
                    await store._hash_object(self._up.key, [h])
                else:
                    h.update(self._up.buffered())
                self._hashers[algo] = h
            hashes = {name: h.hexdigest() for name, h in self._hashers.items()}
            digest = f"{algo}:{hashes[algo]}"
            if expected_digest is not None and digest != expected_digest:
                raise DigestMismatchError(expected_digest, digest)
            size = self._up.size
            if sent:
                if completed:
                    await self._up.finish()
                self._pointing = store._is_data_key(self._up.key)
                existed = await store._publish(self._up.key, size, digest)
            else:  # one request, straight to the digest's key
                self._up.key = store.blob_key(digest)
                existed = not await self._up.finish(if_absent=True)
                if existed:
                    await store._touch(self._up.key, size)
            return BlobInfo(digest=digest, size=size, hashes=hashes, existed=existed)
        except BaseException:
            await self._discard()
            raise

    async def abort(self) -> None:
        self._done = True
        await self._discard()

    async def _discard(self) -> None:
        up = self._up
        await up.abort()
        store = self._store
        if up.key.startswith(store.client.key("tmp/")) or (
            store._is_data_key(up.key) and not self._pointing
        ):
            with contextlib.suppress(OSError):
                await store.client.delete(up.key)
