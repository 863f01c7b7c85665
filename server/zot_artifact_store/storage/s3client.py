"""The S3 wire for the S3 blob store: botocore's client on a bounded thread pool, its errors
as :class:`ObjectStoreError` (an ``OSError``, like a failing disk), streaming multipart writes
with bounded memory, and server-side composition of objects (UploadPartCopy).

Why botocore (sync, in threads) and not obstore or aiobotocore: docs/adr/0006.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.auth
import botocore.handlers
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .objectclient import (
    ClientSettings,
    MiB,
    ObjectBody,
    ObjectClient,
    ObjectInfo,
    ObjectStoreError,
    PartUploader,
    PendingUpload,
    readinto_response,
)

__all__ = ["ObjectStoreError", "S3Client", "S3Options", "S3PartUploader"]

MIN_PART = 5 * MiB  # S3: every part but the last
MAX_PART = 5 << 30  # S3: largest part, and largest single CopyObject
MAX_PARTS = 10_000

# botocore signs with awscrt's SigV4 whenever awscrt is installed (the store needs it for
# CRC checksums), and over plain HTTP the CRT hashes each part by reading it back through
# Python callbacks. The store's clients sign with botocore's own S3 SigV4 classes instead
# (one hashlib.sha256 over the part): the same signatures, 10-14 % more PUT throughput
# through the store (benchmarks/RESULTS.md, issue 17). Other botocore clients in the
# process keep botocore's choice.
PURE_SIGV4 = "s3v4-botocore"
botocore.auth.AUTH_TYPE_MAPS.setdefault(PURE_SIGV4, botocore.auth.S3SigV4Auth)
botocore.auth.AUTH_TYPE_MAPS.setdefault(PURE_SIGV4 + "-query", botocore.auth.S3SigV4QueryAuth)


def choose_pure_sigv4(signature_version: Any, **kwargs: Any) -> Any:
    """``choose-signer`` for the store's clients: what botocore would choose, with its
    pure-Python S3 SigV4 where that choice is the CRT-backed ``s3v4`` (or its query form)."""
    chosen = botocore.handlers.set_operation_specific_signer(**kwargs)
    version = signature_version if chosen is None else chosen
    if isinstance(version, str) and version in ("s3v4", "s3v4-query"):
        return PURE_SIGV4 + version.removeprefix("s3v4")
    return chosen


@dataclass(frozen=True)
class S3Options(ClientSettings):
    bucket: str
    region: str = "us-east-1"
    endpoint: str | None = None  # URL, or host[:port] completed by ``secure``
    access_key: str | None = None
    secret_key: str | None = None  # None: botocore's default credential chain
    force_path_style: bool = False
    secure: bool = True
    skip_verify: bool = False
    storage_class: str | None = None
    sse: str | None = None  # "AES256" or "aws:kms"
    sse_kms_key_id: str | None = None
    # Attempts per request, botocore's "standard" retries (jittered exponential backoff on
    # 5xx, throttling and connection errors). None: AWS_MAX_ATTEMPTS, else botocore's 3.
    max_attempts: int | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @property
    def endpoint_url(self) -> str | None:
        if not self.endpoint or "://" in self.endpoint:
            return self.endpoint
        return ("https://" if self.secure else "http://") + self.endpoint

    def describe(self) -> str:
        where = self.endpoint_url or f"AWS {self.region}"
        return f"s3://{self.bucket}/{self.prefix} at {where}"


class S3Client(ObjectClient):
    """botocore's S3 client; every call runs on this client's own thread pool."""

    backend = "s3"
    max_part = MAX_PART
    max_parts = MAX_PARTS
    refusal_codes = frozenset(
        {
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "NoCredentialsError",
            "PartialCredentialsError",
        }
    )

    def __init__(self, options: S3Options) -> None:
        self.options = options
        super().__init__(options)
        self._client = self._new_client(
            BotoConfig(
                s3={"addressing_style": self._addressing()},
                max_pool_connections=self.workers,
                retries={"mode": "standard"}
                | ({"max_attempts": options.max_attempts} if options.max_attempts else {}),
                connect_timeout=options.connect_timeout,
                read_timeout=options.read_timeout,
                # Integrity is ours (sha256 of every blob); no extra CRC pass per request.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
        )
        self._presigner: Any = None

    def _addressing(self) -> str:
        return "path" if self.options.force_path_style else "auto"

    def _new_client(self, config: BotoConfig) -> Any:
        o = self.options
        client = _session().create_client(
            "s3",
            region_name=o.region,
            endpoint_url=o.endpoint_url,
            use_ssl=o.secure,
            verify=not o.skip_verify,
            aws_access_key_id=o.access_key,
            aws_secret_access_key=o.secret_key,
            config=config,
        )
        client.meta.events.register("choose-signer.s3", choose_pure_sigv4)
        return client

    def describe(self) -> str:
        return self.options.describe()

    def where(self) -> str:
        return self.options.endpoint_url or f"AWS {self.options.region}"

    def credentials_name(self) -> str:
        key = self.options.access_key
        return f"access key {key!r}" if key else "the default AWS credentials"

    def namespace_name(self) -> str:
        return self.options.bucket

    async def probe(self) -> None:
        await self.call("list_objects_v2", Prefix=self.options.prefix, MaxKeys=1)

    def translate(self, operation: str, exc: Exception) -> ObjectStoreError | None:
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            meta = exc.response.get("ResponseMetadata", {})
            status = int(meta.get("HTTPStatusCode", 0) or 0)
            code = str(err.get("Code", ""))
            if not status and code.isdigit():
                status = int(code)
            return ObjectStoreError(operation, code, status, str(err.get("Message", exc)))
        if isinstance(exc, BotoCoreError):  # connection refused, timeouts, bad credentials
            return ObjectStoreError(operation, type(exc).__name__, 0, str(exc))
        return None

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One S3 operation (botocore's snake_case name); Bucket is filled in."""
        fn = getattr(self._client, operation)
        params.setdefault("Bucket", self.options.bucket)
        body = params.get("Body")
        sent = len(body) if isinstance(body, bytes | bytearray) else 0
        result: dict[str, Any] = await self.invoke(operation, functools.partial(fn, **params), sent)
        return result

    def close_library(self) -> None:
        self._client.close()
        if self._presigner is not None:
            self._presigner.close()

    # ---- the requests a store makes -----------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo | None:
        try:
            r = await self.call("head_object", Key=key)
        except ObjectStoreError as exc:
            if exc.status == 404:
                return None
            raise
        return ObjectInfo(key, int(r["ContentLength"]), r["LastModified"].timestamp())

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

    async def get(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody:
        extra: dict[str, Any] = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        got = await self.call("get_object", Key=key, **extra)
        body: ObjectBody = got["Body"]
        return body

    fills_buffers = True

    def readinto(self, body: ObjectBody, view: memoryview) -> int:
        """Straight into ``view`` from the urllib3 response under botocore's body."""
        return readinto_response(getattr(body, "_raw_stream", None), view, body.read)

    @property
    def signs_urls(self) -> bool:
        return True

    async def presign_get(self, key: str, expires: int) -> str | None:
        """A SigV4 query-signed GET URL (botocore presigns with SigV2 unless told; AWS
        regions opened since 2014 and most S3-compatible stores accept only SigV4). Signed
        here, on the pool: the default credential chain may ask a metadata service."""

        def sign() -> str:
            if self._presigner is None:
                self._presigner = self._new_client(
                    BotoConfig(
                        signature_version="s3v4", s3={"addressing_style": self._addressing()}
                    )
                )
            params = {"Bucket": self.options.bucket, "Key": key}
            url: str = self._presigner.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires
            )
            return url

        return await self.run(self._guarded, "presign_get_object", sign)

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

    async def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self.call("list_objects_v2", Prefix=prefix, **extra)
            out += [
                ObjectInfo(o["Key"], int(o["Size"]), o["LastModified"].timestamp())
                for o in page.get("Contents", [])
            ]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return out

    async def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        """Open multipart uploads under ``prefix``."""
        out: list[PendingUpload] = []
        markers: dict[str, str] = {}
        while True:
            page = await self.call("list_multipart_uploads", Prefix=prefix, **markers)
            out += [
                PendingUpload(u["Key"], u["UploadId"], u["Initiated"].timestamp())
                for u in page.get("Uploads", [])
            ]
            if not page.get("IsTruncated"):
                return out
            markers = {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

    async def abort_pending(self, upload: PendingUpload) -> None:
        await self._abort(upload.key, upload.handle)

    def uploader(self, key: str, on_part: Callable[[bytes], Any] | None = None) -> PartUploader:
        return S3PartUploader(self, key, on_part)

    async def touch(self, key: str, size: int) -> None:
        """A copy onto itself (LastModified)."""
        try:
            await self.compose([(key, size)], key, if_absent=False)
        except ObjectStoreError as exc:
            if exc.status != 404:
                raise

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


class S3PartUploader(PartUploader):
    """Parts of a multipart upload; under one part, a single PutObject."""

    client: S3Client
    part_type = bytearray  # botocore would copy a bytes body into the request head

    async def _begin(self) -> str:
        r = await self.client.call(
            "create_multipart_upload", Key=self.key, **self.client.write_args()
        )
        return str(r["UploadId"])

    async def _upload(self, handle: str, number: int, body: bytes) -> Any:
        return await self.client._upload_part(self.key, handle, number, body)

    async def _complete(self, handle: str, parts: list[Any]) -> None:
        await self.client.call(
            "complete_multipart_upload",
            Key=self.key,
            UploadId=handle,
            MultipartUpload={"Parts": parts},
        )

    async def _abort_upload(self, handle: str) -> None:
        await self.client._abort(self.key, handle)
