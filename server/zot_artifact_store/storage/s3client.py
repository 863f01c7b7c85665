"""The S3 wire for the S3 blob store: botocore's client on a bounded thread pool, its errors
as :class:`ObjectStoreError` (an ``OSError``, like a failing disk), streaming multipart writes
with bounded memory, and server-side composition of objects (UploadPartCopy).

Why botocore (sync, in threads) and not obstore or aiobotocore: docs/adr/0006.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .base import StorageBackendError, StorageObserver

T = TypeVar("T")

MiB = 1 << 20
MIN_PART = 5 * MiB  # S3: every part but the last
MAX_PART = 5 << 30  # S3: largest part, and largest single CopyObject
MAX_PARTS = 10_000
# The part size doubles every this many parts, so an upload of unknown length reaches S3's
# 5 TiB object limit within 10,000 parts (8 MiB parts: 8 GiB before the first doubling).
PARTS_PER_SIZE = 1000


RETRYABLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "CircuitOpen"}
)


class ObjectStoreError(StorageBackendError):
    """The object store failed or refused a request (after the client's retries)."""

    def __init__(self, operation: str, code: str, status: int, message: str) -> None:
        self.operation, self.code, self.status = operation, code, status
        # status 0: no answer (connection refused or cut, timeout)
        self.retryable = status == 0 or status >= 500 or status == 429 or code in RETRYABLE_CODES
        super().__init__(f"object store {operation}: {code or 'error'} ({status}): {message}")


class CircuitBreaker:
    """After ``threshold`` consecutive retryable failures the backend counts as down for
    ``cooldown`` seconds: calls fail at once (503 to clients) instead of each waiting out
    timeouts and retries. Then one call is let through; its success closes the circuit."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self.open_until = 0.0

    def check(self, operation: str) -> None:
        now = time.monotonic()
        if self.failures >= self.threshold and now < self.open_until:
            raise ObjectStoreError(
                operation,
                "CircuitOpen",
                503,
                f"backend failed {self.failures} times in a row; not tried again for "
                f"{self.open_until - now:.1f} s",
            )
        if self.failures >= self.threshold:  # half-open: this call probes, the next wait
            self.open_until = now + self.cooldown

    def record(self, error: BaseException | None) -> None:
        if error is None or not getattr(error, "retryable", False):
            self.failures = 0  # an answer, even a refusal, means the backend is up
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = time.monotonic() + self.cooldown


@dataclass(frozen=True)
class S3Options:
    bucket: str
    region: str = "us-east-1"
    endpoint: str | None = None  # URL, or host[:port] completed by ``secure``
    prefix: str = ""  # key prefix ("rootdirectory"); "" or ends with "/"
    access_key: str | None = None
    secret_key: str | None = None  # None: botocore's default credential chain
    force_path_style: bool = False
    secure: bool = True
    skip_verify: bool = False
    storage_class: str | None = None
    sse: str | None = None  # "AES256" or "aws:kms"
    sse_kms_key_id: str | None = None
    part_size: int = 8 * MiB
    concurrency: int = 4  # parts in flight per upload
    # Attempts per request, botocore's "standard" retries (jittered exponential backoff on
    # 5xx, throttling and connection errors). None: AWS_MAX_ATTEMPTS, else botocore's 3.
    max_attempts: int | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    breaker_threshold: int = 5  # consecutive failed calls that open the circuit
    breaker_cooldown: float = 10.0  # seconds before one call may probe again
    # A dedupe hit re-dates (copies onto itself) a blob only when it is older than this: far
    # inside any GC grace period (storage.gcDelay), and no copy storm for hot content.
    touch_after: float = 60.0
    # An unfinished multipart upload under blobs/ (a commit's copy) this old is orphaned.
    orphan_copy_age: float = 86_400.0

    @property
    def endpoint_url(self) -> str | None:
        if not self.endpoint or "://" in self.endpoint:
            return self.endpoint
        return ("https://" if self.secure else "http://") + self.endpoint

    def describe(self) -> str:
        where = self.endpoint_url or f"AWS {self.region}"
        return f"s3://{self.bucket}/{self.prefix} at {where}"


class S3Client:
    """botocore's S3 client; every call runs on this client's own thread pool."""

    def __init__(self, options: S3Options) -> None:
        self.options = options
        workers = max(8, 4 * options.concurrency)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="s3")
        self._client = _session().create_client(
            "s3",
            region_name=options.region,
            endpoint_url=options.endpoint_url,
            use_ssl=options.secure,
            verify=not options.skip_verify,
            aws_access_key_id=options.access_key,
            aws_secret_access_key=options.secret_key,
            config=BotoConfig(
                s3={"addressing_style": "path" if options.force_path_style else "auto"},
                max_pool_connections=workers,
                retries={"mode": "standard"}
                | ({"max_attempts": options.max_attempts} if options.max_attempts else {}),
                connect_timeout=options.connect_timeout,
                read_timeout=options.read_timeout,
                # Integrity is ours (sha256 of every blob); no extra CRC pass per request.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        # Bytes of parts in flight, store-wide: bounded memory under many uploads.
        self.part_slots = asyncio.Semaphore(2 * options.concurrency)
        self._closed = threading.Event()
        self.breaker = CircuitBreaker(options.breaker_threshold, options.breaker_cooldown)
        # (backend, operation, outcome, seconds, bytes sent, bytes received) → metrics
        self.observer: StorageObserver | None = None

    def key(self, name: str) -> str:
        return self.options.prefix + name

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the pool (not tied to the calling task: a cancel does not stop it)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One S3 operation (botocore's snake_case name); Bucket is filled in."""
        fn = getattr(self._client, operation)
        params.setdefault("Bucket", self.options.bucket)
        body = params.get("Body")
        sent = len(body) if isinstance(body, bytes | bytearray) else 0
        started = time.monotonic()
        try:
            self.breaker.check(operation)
            result = await self.run(functools.partial(_call, fn, operation), params)
        except ObjectStoreError as exc:
            self.breaker.record(exc)
            self._observe(operation, exc.code or "error", time.monotonic() - started, sent, 0)
            raise
        self.breaker.record(None)
        self._observe(operation, "ok", time.monotonic() - started, sent, 0)
        return result

    def _observe(self, operation: str, outcome: str, seconds: float, sent: int, got: int) -> None:
        if self.observer is not None:
            self.observer("s3", operation, outcome, seconds, sent, got)

    async def read_body(self, body: Any, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when -1) of a GetObject body, read on the pool."""
        started = time.monotonic()
        try:
            data: bytes = await self.run(body.read, *([size] if size >= 0 else []))
        except (OSError, BotoCoreError) as exc:
            self._observe("get_object_body", "error", time.monotonic() - started, 0, 0)
            raise ObjectStoreError("get_object", type(exc).__name__, 0, str(exc)) from None
        self._observe("get_object_body", "ok", time.monotonic() - started, 0, len(data))
        return data

    async def close(self) -> None:
        self._closed.set()
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        self._client.close()

    # ---- conveniences -----------------------------------------------------------------------
    async def head(self, key: str) -> dict[str, Any] | None:
        try:
            return await self.call("head_object", Key=key)
        except ObjectStoreError as exc:
            if exc.status == 404:
                return None
            raise

    async def put(self, key: str, body: bytes, *, if_absent: bool = False) -> bool:
        """PutObject; with ``if_absent`` (``If-None-Match: *``) False when the key existed."""
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            await self.call("put_object", Key=key, Body=body, **self.write_args(), **extra)
        except ObjectStoreError as exc:
            if if_absent and exc.status in (409, 412):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await self.call("delete_object", Key=key)

    def write_args(self) -> dict[str, Any]:
        """Settings of every object this store creates (PutObject, CreateMultipartUpload,
        CopyObject): storage class and server-side encryption."""
        o = self.options
        args: dict[str, Any] = {"StorageClass": o.storage_class} if o.storage_class else {}
        if o.sse:
            args["ServerSideEncryption"] = o.sse
        if o.sse_kms_key_id:
            args["SSEKMSKeyId"] = o.sse_kms_key_id
        return args

    async def list(self, prefix: str) -> list[dict[str, Any]]:
        """Every object under ``prefix`` (full keys), all pages."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self.call("list_objects_v2", Prefix=prefix, **extra)
            out.extend(page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return out

    async def multipart_uploads(self, prefix: str) -> list[dict[str, Any]]:
        """Open multipart uploads under ``prefix`` (Key, UploadId, Initiated)."""
        out: list[dict[str, Any]] = []
        markers: dict[str, str] = {}
        while True:
            page = await self.call("list_multipart_uploads", Prefix=prefix, **markers)
            out.extend(page.get("Uploads", []))
            if not page.get("IsTruncated"):
                return out
            markers = {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

    async def abort_uploads(self, prefix: str) -> None:
        for up in await self.multipart_uploads(prefix):
            with contextlib.suppress(ObjectStoreError):
                await self.call("abort_multipart_upload", Key=up["Key"], UploadId=up["UploadId"])

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` and abort its multipart uploads."""
        items = await self.list(prefix)
        await asyncio.gather(*(self.delete(o["Key"]) for o in items))
        await self.abort_uploads(prefix)
        return len(items)

    # ---- composition: objects → one object, inside the store --------------------------------
    async def compose(self, sources: list[tuple[str, int]], dest: str, *, if_absent: bool) -> bool:
        """Make ``dest`` the concatenation of ``sources`` ((key, size), in order) with the
        store's own copy (UploadPartCopy): bytes pass through this server only for sources
        under 5 MiB that cannot be parts of their own. With ``if_absent``, False (and nothing
        written) when ``dest`` exists; ``dest`` appears whole or not at all."""
        total = sum(size for _, size in sources)
        if total == 0:
            return await self.put(dest, b"", if_absent=if_absent)
        if not if_absent and len(sources) == 1 and total <= MAX_PART:
            src = sources[0][0]
            await self.call(
                "copy_object",
                Key=dest,
                CopySource={"Bucket": self.options.bucket, "Key": src},
                MetadataDirective="REPLACE",  # also allowed onto itself: a touch
                **self.write_args(),
            )
            return True
        upload = await self.call("create_multipart_upload", Key=dest, **self.write_args())
        uid = upload["UploadId"]
        try:
            parts = await self._copy_parts(dest, uid, sources)
            extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
            try:
                await self.call(
                    "complete_multipart_upload",
                    Key=dest,
                    UploadId=uid,
                    MultipartUpload={"Parts": parts},
                    **extra,
                )
            except ObjectStoreError as exc:
                if if_absent and exc.status in (409, 412):
                    await self._abort(dest, uid)
                    return False
                raise
        except BaseException:
            await asyncio.shield(self._abort(dest, uid))
            raise
        return True

    async def _abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(ObjectStoreError):
            await self.call("abort_multipart_upload", Key=key, UploadId=upload_id)

    async def _copy_parts(
        self, dest: str, upload_id: str, sources: list[tuple[str, int]]
    ) -> list[dict[str, Any]]:
        jobs: list[asyncio.Future[dict[str, Any]]] = []
        number = 0
        buf = bytearray()

        def start(coro: Any) -> None:
            jobs.append(asyncio.ensure_future(coro))

        for key, size in sources:
            pos = 0
            while pos < size:
                left = size - pos
                if not buf and left >= MIN_PART:
                    length = min(left, MAX_PART)
                    number += 1
                    start(self._copy_part(dest, upload_id, number, key, pos, pos + length))
                    pos += length
                    continue
                # A small piece: through this server, joined to the next until a part is big
                # enough (at most MIN_PART bytes held).
                take = min(left, MIN_PART - len(buf))
                got = await self.call("get_object", Key=key, Range=f"bytes={pos}-{pos + take - 1}")
                buf += await self.read_body(got["Body"])
                pos += take
                if len(buf) >= MIN_PART:
                    number += 1
                    start(self._upload_part(dest, upload_id, number, bytes(buf)))
                    buf = bytearray()
            if len(jobs) >= self.options.concurrency:
                await asyncio.wait(jobs)
        if buf:
            number += 1
            start(self._upload_part(dest, upload_id, number, bytes(buf)))
        if number > MAX_PARTS:
            raise ObjectStoreError("compose", "TooManyParts", 400, f"{number} parts")
        return list(await asyncio.gather(*jobs))

    async def _copy_part(
        self, dest: str, upload_id: str, number: int, src: str, start: int, end: int
    ) -> dict[str, Any]:
        r = await self.call(
            "upload_part_copy",
            Key=dest,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.options.bucket, "Key": src},
            CopySourceRange=f"bytes={start}-{end - 1}",
        )
        return {"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]}

    async def _upload_part(
        self, key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        r = await self.call(
            "upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": r["ETag"]}


@functools.cache
def _session() -> botocore.session.Session:
    """One botocore session per process: it loads the S3 model once (~70 ms a load)."""
    return botocore.session.get_session()


def _call(fn: Callable[..., dict[str, Any]], operation: str, params: dict[str, Any]) -> Any:
    try:
        return fn(**params)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        code = str(err.get("Code", ""))
        if not status and code.isdigit():
            status = int(code)
        raise ObjectStoreError(operation, code, status, str(err.get("Message", exc))) from None
    except BotoCoreError as exc:  # connection refused, timeouts, bad credentials config
        raise ObjectStoreError(operation, type(exc).__name__, 0, str(exc)) from None


class PartUploader:
    """Streams bytes into one object: held in memory up to one part, then sent as a multipart
    part while the next one fills (at most ``concurrency`` parts of this upload in flight, and
    the store-wide ``part_slots``). An object smaller than one part is a single PutObject at
    :meth:`finish`. ``on_part`` sees each part's bytes in order (hashing)."""

    def __init__(
        self,
        client: S3Client,
        key: str,
        on_part: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.size = 0
        self._on_part = on_part
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._number = 0
        self._inflight: list[asyncio.Future[dict[str, Any]]] = []
        self._parts: list[dict[str, Any]] = []
        self._hashing: asyncio.Future[Any] | None = None
        self._creating: asyncio.Future[dict[str, Any]] | None = None

    @property
    def multipart(self) -> bool:
        return self._upload_id is not None

    def buffered(self) -> bytes:
        """What :meth:`write` holds that no part carries yet."""
        return bytes(self._buf)

    def part_size(self) -> int:
        base = self.client.options.part_size
        return min(MAX_PART, base << (self._number // PARTS_PER_SIZE))

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data  # a copy: the caller may reuse its buffer
        self.size += len(data) if not isinstance(data, memoryview) else data.nbytes
        while len(self._buf) >= self.part_size():
            n = self.part_size()
            part = bytes(self._buf[:n])
            del self._buf[:n]
            await self._send(part)

    async def _hash(self, block: bytes) -> None:
        """Feed ``block`` to ``on_part`` after the previous block (in a worker thread)."""
        if self._on_part is None:
            return
        if self._hashing is not None:
            await _wait_future(self._hashing)
        self._hashing = asyncio.ensure_future(self.client.run(self._on_part, block))

    async def _send(self, part: bytes) -> None:
        await self._hash(part)
        if self._upload_id is None:
            # Shielded and remembered: a writer cancelled here must still find the upload to
            # abort it, or it stays in the bucket, invisible and billed.
            self._creating = asyncio.ensure_future(
                self.client.call(
                    "create_multipart_upload", Key=self.key, **self.client.write_args()
                )
            )
            r = await asyncio.shield(self._creating)
            self._upload_id = r["UploadId"]
        while len(self._inflight) >= self.client.options.concurrency:
            await self._reap(asyncio.FIRST_COMPLETED)
        await self.client.part_slots.acquire()
        self._number += 1
        if self._number > MAX_PARTS:
            self.client.part_slots.release()
            raise ObjectStoreError("upload_part", "TooManyParts", 400, "over 10,000 parts")
        fut = asyncio.ensure_future(
            self.client._upload_part(self.key, self._upload_id, self._number, part)
        )
        fut.add_done_callback(lambda _f: self.client.part_slots.release())
        self._inflight.append(fut)

    async def _reap(self, when: str = asyncio.ALL_COMPLETED) -> None:
        done, pending = await asyncio.wait(self._inflight, return_when=when)
        self._inflight = list(pending)
        errors = [exc for f in done if (exc := f.exception()) is not None]  # all retrieved
        self._parts += [f.result() for f in done if f.exception() is None]
        if errors:
            raise errors[0]

    async def hashed(self) -> None:
        """Wait until ``on_part`` has seen every byte written (the tail is hashed here)."""
        if self._buf:
            await self._hash(bytes(self._buf))
        if self._hashing is not None:
            await _wait_future(self._hashing)
            self._hashing = None

    async def finish(self, *, if_absent: bool = False) -> bool:
        """Make the object whole (call :meth:`hashed` first if needed); False when
        ``if_absent`` and a single-request object already existed."""
        tail, self._buf = bytes(self._buf), bytearray()
        if self._upload_id is None:
            return await self.client.put(self.key, tail, if_absent=if_absent)
        if tail or not self._number:
            self._number += 1
            self._inflight.append(
                asyncio.ensure_future(
                    self.client._upload_part(self.key, self._upload_id, self._number, tail)
                )
            )
        if self._inflight:
            await self._reap()
        parts = sorted(self._parts, key=lambda p: p["PartNumber"])
        await self.client.call(
            "complete_multipart_upload",
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._upload_id = None
        return True

    async def abort(self) -> None:
        """Drop what was sent (waits for parts in flight; never raises for the store)."""
        self._buf = bytearray()
        pending = [f for f in self._inflight if not f.done()]
        if pending:
            await asyncio.wait(pending)
        for f in self._inflight:
            if not f.cancelled():
                f.exception()
        self._inflight = []
        if self._hashing is not None:
            await asyncio.wait([self._hashing])
            self._hashing = None
        creating, self._creating = self._creating, None
        if creating is not None and self._upload_id is None:
            await asyncio.wait([creating])
            if not creating.cancelled() and creating.exception() is None:
                self._upload_id = creating.result()["UploadId"]
        if self._upload_id is not None:
            uid, self._upload_id = self._upload_id, None
            await self.client._abort(self.key, uid)


async def _wait_future(fut: asyncio.Future[Any]) -> Any:
    """Wait for a worker job without cancelling it when we are cancelled; re-raise its error."""
    await asyncio.wait([fut])
    return fut.result()
