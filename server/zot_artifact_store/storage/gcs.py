"""The Google Cloud Storage blob store: blobs in a bucket, all state in the bucket.

The store's logic (layout, writes, upload sessions, leftovers) is the object stores' common one
(``objectstore.py``); here is the GCS wire (why this library, and why in threads:
docs/adr/0006):

- ``google-cloud-storage``'s sync client for the small requests (metadata, list, delete, put,
  compose), with ``ifGenerationMatch=0`` wherever only one writer may create an object;
- a write larger than one chunk streams as a **resumable upload** to a temporary object, chunk by
  chunk in order as it is hashed (its own requests on an authorized session: the library's
  resumable API wants a file-like stream it reads itself), then is **composed** onto its
  digest's name with ``ifGenerationMatch=0`` — compose is done by the service, no byte passes
  through this server again, and the object appears whole;
- an upload session's segments are composed 32 at a time (GCS's limit per request), through
  intermediate objects under the instance's ``tmp/`` when there are more;
- reads are ranged GETs streamed from the socket (a large download read into one buffer and
  sent to the client's socket on a sender thread, as S3's); the dedupe touch is a compose of
  the blob onto itself (GCS's ``updated`` restarts; done by the service, no copy of bytes
  through here).

Resumable sessions cannot be listed; GCS drops unfinished ones after a week, so there are no
pending uploads to sweep, and an aborted write cancels its session (DELETE).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from .base import StorageUnavailableError
from .objectclient import (
    ClientSettings,
    ObjectBody,
    ObjectClient,
    ObjectInfo,
    ObjectStoreError,
    PartUploader,
    readinto_response,
)
from .objectstore import ObjectBlobStore

__all__ = ["GcsBlobStore", "GcsOptions"]

T = TypeVar("T")

CHUNK_ALIGN = 256 * 1024  # every resumable chunk but the last is a multiple of this
MAX_COMPOSE = 32  # sources per compose request
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
PUBLIC_ENDPOINT = "https://storage.googleapis.com"


@dataclass(frozen=True)
class GcsOptions(ClientSettings):
    bucket: str
    keyfile: str | None = None  # a service account's JSON key; None: ADC
    endpoint: str | None = None  # an emulator or private endpoint instead of the public one
    anonymous: bool = False  # no credentials at all (an emulator: STORAGE_EMULATOR_HOST)
    project: str | None = None
    # Seconds a request is retried for: backoff from 0.5 s, doubling, jittered — about 3 tries,
    # as the other backends (the library's own default retries for 120 s).
    retry_deadline: float = 5.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @property
    def api_endpoint(self) -> str:
        return (self.endpoint or PUBLIC_ENDPOINT).rstrip("/")

    def credentials_name(self) -> str:
        """Which credentials, for messages (never a secret)."""
        if self.anonymous:
            return "anonymous access"
        if self.keyfile:
            return f"the service account key {self.keyfile!r}"
        return "Application Default Credentials"


class GcsClient(ObjectClient):
    """``google-cloud-storage``'s sync client plus an authorized session for the streams;
    every call on the thread pool."""

    backend = "gcs"
    max_part = 5 << 30
    max_parts = 1_000_000  # a resumable upload is one stream: no part count limit

    def __init__(self, options: GcsOptions) -> None:
        # Every resumable chunk but the last is a multiple of 256 KiB.
        chunk = max(CHUNK_ALIGN, options.part_size // CHUNK_ALIGN * CHUNK_ALIGN)
        self.options = options = dataclasses.replace(options, part_size=chunk)
        super().__init__(options)
        self._credentials = self._load_credentials()
        self.session = AuthorizedSession(self._credentials)
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=self.workers, max_retries=0
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._client = storage.Client(
            project=options.project or "-",
            credentials=self._credentials,
            client_options={"api_endpoint": options.api_endpoint},
            _http=self.session,
        )
        self.bucket = self._client.bucket(options.bucket)
        self.retry = DEFAULT_RETRY.with_delay(initial=0.5, multiplier=2.0, maximum=4.0)
        self.retry = self.retry.with_timeout(options.retry_deadline)
        self.timeout = (options.connect_timeout, options.read_timeout)

    def _load_credentials(self) -> Credentials:
        o = self.options
        if o.anonymous:
            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        if o.keyfile:
            from google.oauth2 import service_account

            try:
                creds: Credentials = service_account.Credentials.from_service_account_file(
                    o.keyfile, scopes=list(SCOPES)
                )
            except (ValueError, KeyError, OSError) as exc:
                raise StorageUnavailableError(
                    f"storage.storageDriver (gcs): keyfile {o.keyfile!r} is not a service "
                    f"account key ({type(exc).__name__}: {exc})"
                ) from None
            return creds
        import google.auth

        try:
            creds, _project = google.auth.default(scopes=list(SCOPES))
        except auth_exc.DefaultCredentialsError as exc:
            raise StorageUnavailableError(
                f"storage.storageDriver (gcs): no credentials: set keyfile, or provide "
                f"Application Default Credentials ({str(exc).splitlines()[0]})"
            ) from None
        return creds

    def describe(self) -> str:
        return f"gs://{self.options.bucket}/{self.options.prefix} at {self.options.api_endpoint}"

    def where(self) -> str:
        return self.options.api_endpoint

    def credentials_name(self) -> str:
        return self.options.credentials_name()

    def namespace_name(self) -> str:
        return self.options.bucket

    async def probe(self) -> None:
        def first_page() -> None:
            blobs = self._client.list_blobs(
                self.bucket, prefix=self.options.prefix, max_results=1, timeout=self.timeout
            )
            next(blobs.pages, None)

        await self.invoke("list_objects", first_page)

    def translate(self, operation: str, exc: Exception) -> ObjectStoreError | None:
        if isinstance(exc, gexc.GoogleAPICallError):
            status = int(exc.code or 0)
            code = str(exc.reason or type(exc).__name__)
            return ObjectStoreError(operation, code, status, str(exc.message).split("\n")[0])
        if isinstance(exc, gexc.RetryError):  # the retry deadline passed: no answer
            return ObjectStoreError(operation, "RetryError", 0, str(exc).split("\n")[0])
        if isinstance(exc, requests.RequestException | ConnectionError | TimeoutError):
            return ObjectStoreError(operation, type(exc).__name__, 0, str(exc).split("\n")[0])
        if isinstance(exc, auth_exc.TransportError):
            return ObjectStoreError(operation, type(exc).__name__, 0, str(exc).split("\n")[0])
        if isinstance(exc, auth_exc.GoogleAuthError):  # no token could be had
            return ObjectStoreError(operation, type(exc).__name__, 401, str(exc).split("\n")[0])
        return None

    def close_library(self) -> None:
        self._client.close()
        self.session.close()

    def _blob(self, key: str) -> storage.Blob:
        """A fresh handle (no cached properties: compose would send them back)."""
        return self.bucket.blob(key)

    def raise_for(self, operation: str, response: requests.Response) -> None:
        """A raw request's refusal as an ObjectStoreError."""
        if response.status_code < 400:
            return
        try:
            error = response.json().get("error", {})
            message, reason = str(error.get("message", "")), ""
            if error.get("errors"):
                reason = str(error["errors"][0].get("reason", ""))
        except ValueError:
            message, reason = response.text[:200], ""
        raise ObjectStoreError(operation, reason or response.reason, response.status_code, message)

    def retrying(self, operation: str, fn: Callable[[], T]) -> T:
        """``fn()`` again after a retryable failure (5xx, 429, no answer), with jittered backoff
        from 0.5 s, for up to ``retry_deadline``: the library retries its own requests, these
        (resumable uploads, streamed reads) are ours. Runs on the pool."""
        deadline = time.monotonic() + self.options.retry_deadline
        delay = 0.5
        while True:
            try:
                return fn()
            except Exception as exc:
                err = exc if isinstance(exc, ObjectStoreError) else self.translate(operation, exc)
                if err is None or not err.retryable or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(2 * delay, 4.0)

    # ---- the requests a store makes -----------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo | None:
        blob = await self.invoke(
            "get_object",
            lambda: self.bucket.get_blob(key, retry=self.retry, timeout=self.timeout),
        )
        if blob is None:
            return None
        return ObjectInfo(key, int(blob.size or 0), blob.updated.timestamp())

    async def put(self, key: str, body: bytes, *, if_absent: bool = False) -> bool:
        """A media upload; with ``if_absent`` (``ifGenerationMatch=0``) False when it existed."""
        blob = self._blob(key)
        try:
            await self.invoke(
                "insert_object",
                lambda: blob.upload_from_string(
                    body,
                    content_type="application/octet-stream",
                    if_generation_match=0 if if_absent else None,
                    checksum=None,
                    retry=self.retry,
                    timeout=self.timeout,
                ),
                len(body),
            )
        except ObjectStoreError as exc:
            if if_absent and exc.status == 412:
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        try:
            await self.invoke(
                "delete_object",
                lambda: self.bucket.delete_blob(key, retry=self.retry, timeout=self.timeout),
            )
        except ObjectStoreError as exc:
            if exc.status != 404:
                raise

    async def list(self, prefix: str) -> list[ObjectInfo]:
        def page_all() -> list[ObjectInfo]:
            blobs = self._client.list_blobs(
                self.bucket, prefix=prefix, retry=self.retry, timeout=self.timeout
            )
            return [ObjectInfo(b.name, int(b.size or 0), b.updated.timestamp()) for b in blobs]

        return await self.invoke("list_objects", page_all)

    async def get(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody:
        url = (
            f"{self.options.api_endpoint}/download/storage/v1/b/{quote(self.options.bucket)}"
            f"/o/{quote(key, safe='')}?alt=media"
        )
        headers = {"Accept-Encoding": "identity"}
        if start or end is not None:
            if end is not None and end <= start:
                raise ObjectStoreError("get_object", "InvalidRange", 416, "empty range")
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"

        def download() -> ObjectBody:
            r = self.session.get(url, headers=headers, stream=True, timeout=self.timeout)
            if r.status_code >= 400:
                r.close()
                self.raise_for("get_object", r)
            return _Download(r)

        return await self.invoke("get_object", lambda: self.retrying("get_object", download))

    fills_buffers = True

    def readinto(self, body: ObjectBody, view: memoryview) -> int:
        """Straight into ``view`` from the urllib3 response under requests' (a ranged GET we
        asked with ``Accept-Encoding: identity``)."""
        assert isinstance(body, _Download)
        return readinto_response(body.raw, view, body.read)

    @property
    def signs_urls(self) -> bool:
        """With a service account key only: Application Default Credentials on GKE hold no key
        (signing would be a request to the IAM ``signBlob`` API per URL: not built, the store
        proxies) and an emulator's are anonymous."""
        from google.oauth2 import service_account

        return isinstance(self._credentials, service_account.Credentials)

    async def presign_get(self, key: str, expires: int) -> str | None:
        """A V4 signed URL (``GOOG4-RSA-SHA256``, path style on the configured endpoint) signed
        with the service account key, here, without a request; None when it cannot sign."""
        if not self.signs_urls:
            return None

        def sign() -> str:
            url: str = self._blob(key).generate_signed_url(
                version="v4",
                expiration=datetime.timedelta(seconds=expires),
                method="GET",
                api_access_endpoint=self.options.api_endpoint,
                credentials=self._credentials,
            )
            return url

        return await self.run(self._guarded, "presign_get_object", sign)

    async def compose(self, sources: list[tuple[str, int]], dest: str, *, if_absent: bool) -> bool:
        """Compose ``sources`` onto ``dest`` (``ifGenerationMatch=0`` with ``if_absent``); more
        than 32 go through intermediate composites under the scratch prefix first."""
        if sum(size for _, size in sources) == 0:
            return await self.put(dest, b"", if_absent=if_absent)
        keys = [key for key, size in sources if size]
        made: list[str] = []
        try:
            while len(keys) > MAX_COMPOSE:
                level: list[str] = []
                for i in range(0, len(keys), MAX_COMPOSE):
                    group = keys[i : i + MAX_COMPOSE]
                    if len(group) == 1:
                        level.append(group[0])
                        continue
                    part = f"{self.scratch}compose-{secrets.token_hex(8)}"
                    await self._compose(group, part, if_absent=False)
                    made.append(part)
                    level.append(part)
                keys = level
            try:
                await self._compose(keys, dest, if_absent=if_absent)
            except ObjectStoreError as exc:
                if if_absent and exc.status == 412:
                    return False
                raise
            return True
        finally:
            await asyncio.gather(*(self.delete(k) for k in made), return_exceptions=True)

    async def _compose(self, keys: list[str], dest: str, *, if_absent: bool) -> None:
        target = self._blob(dest)
        target.content_type = "application/octet-stream"
        parts = [self._blob(k) for k in keys]
        await self.invoke(
            "compose_object",
            lambda: target.compose(
                parts,
                if_generation_match=0 if if_absent else None,
                retry=self.retry,
                timeout=self.timeout,
            ),
        )

    async def touch(self, key: str, size: int) -> None:
        """Compose the object onto itself: a new generation, ``updated`` restarts."""
        try:
            await self._compose([key], key, if_absent=False)
        except ObjectStoreError as exc:
            if exc.status != 404:
                raise

    def uploader(self, key: str, on_part: Callable[[bytes], Any] | None = None) -> PartUploader:
        return GcsResumableUpload(self, key, on_part)


class _Download:
    """A streamed GET as an :class:`ObjectBody`."""

    def __init__(self, response: requests.Response) -> None:
        self._r = response

    @property
    def raw(self) -> Any:
        """urllib3's response under requests'."""
        return self._r.raw

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._r.raw.read(None if size < 0 else size)
        return data

    def close(self) -> None:
        self._r.close()


class GcsResumableUpload(PartUploader):
    """A resumable upload: chunks (multiples of 256 KiB) sent in order, one at a time (the
    protocol is one stream); the last request carries the total size and creates the object.
    Under one chunk the object is a single media upload."""

    client: GcsClient

    def __init__(
        self, client: GcsClient, key: str, on_part: Callable[[bytes], Any] | None = None
    ) -> None:
        super().__init__(client, key, on_part)
        self._order = asyncio.Lock()
        self._next = 1
        self._offset = 0  # bytes the service has persisted
        self._lock = threading.Lock()

    async def _begin(self) -> str:
        c = self.client
        url = (
            f"{c.options.api_endpoint}/upload/storage/v1/b/{quote(c.options.bucket)}/o"
            f"?uploadType=resumable&name={quote(self.key, safe='')}"
        )

        def start() -> str:
            r = c.session.post(
                url,
                json={"name": self.key, "contentType": "application/octet-stream"},
                headers={"X-Upload-Content-Type": "application/octet-stream"},
                timeout=c.timeout,
            )
            c.raise_for("resumable_start", r)
            return str(r.headers["Location"])

        return await c.invoke("resumable_start", lambda: c.retrying("resumable_start", start))

    def _put(self, handle: str, body: bytes, total: int | None) -> None:
        """Send ``body`` (the bytes from the persisted offset on); after a failure, ask the
        session what it kept and send the rest (GCS's resumable-upload recovery)."""
        with self._lock:
            base, failed = self._offset, False

            def attempt() -> None:
                nonlocal failed
                if failed:
                    kept = self._persisted(handle)
                    if kept is None:  # the lost answer was the one that completed it
                        self._offset = base + len(body)
                        return
                    self._offset = kept
                failed = True
                self._transmit(handle, memoryview(body)[self._offset - base :], total)
                failed = False

            self.client.retrying("resumable_put", attempt)

    def _persisted(self, handle: str) -> int | None:
        """How many bytes the session holds (a status query); None when it is complete."""
        c = self.client
        r = c.session.put(handle, headers={"Content-Range": "bytes */*"}, timeout=c.timeout)
        if r.status_code in (200, 201):
            return None
        if r.status_code != 308:
            c.raise_for("resumable_status", r)
            raise ObjectStoreError("resumable_status", r.reason, r.status_code, "not resumable")
        kept = r.headers.get("Range")  # "bytes=0-N"
        return int(kept.rsplit("-", 1)[1]) + 1 if kept else 0

    def _transmit(self, handle: str, view: memoryview, total: int | None) -> None:
        """PUT ``view`` at ``self._offset``; resend what a 308 says was not kept."""
        c = self.client
        start = self._offset
        if not view and total is None:
            return  # all of it is there already; only the last request may be empty
        while True:
            end = start + len(view) - 1
            span = f"{start}-{end}" if len(view) else "*"
            r = c.session.put(
                handle,
                data=bytes(view),
                headers={"Content-Range": f"bytes {span}/{'*' if total is None else total}"},
                timeout=c.timeout,
            )
            if r.status_code in (200, 201):
                self._offset = start + len(view)
                return
            if r.status_code != 308:
                c.raise_for("resumable_put", r)
                raise ObjectStoreError("resumable_put", r.reason, r.status_code, r.text[:200])
            kept = r.headers.get("Range")  # "bytes=0-N": what the service persisted
            persisted = int(kept.rsplit("-", 1)[1]) + 1 if kept else 0
            done = persisted - start
            if done >= len(view):
                self._offset = persisted
                return
            view, start = view[max(0, done) :], persisted

    async def _upload(self, handle: str, number: int, body: bytes) -> Any:
        async with self._order:  # FIFO: parts go in the order they were started
            if number != self._next:
                raise ObjectStoreError("resumable_put", "OutOfOrder", 400, f"part {number}")
            await self.client.invoke("resumable_put", lambda: self._put(handle, body, None))
            self._next += 1
        return (number, len(body))

    async def _finish_parts(self, handle: str, tail: bytes) -> None:
        if self._inflight:
            await self._reap()
        total = self.size
        await self.client.invoke("resumable_finish", lambda: self._put(handle, tail, total))

    async def _complete(self, handle: str, parts: list[Any]) -> None:
        return None  # the last chunk completes the upload (_finish_parts)

    async def _abort_upload(self, handle: str) -> None:
        """Cancel the session (GCS answers 499); never raises for the store."""
        try:
            await self.client.invoke(
                "resumable_cancel",
                lambda: self.client.session.delete(handle, timeout=self.client.timeout),
            )
        except ObjectStoreError:
            pass


class GcsBlobStore(ObjectBlobStore):
    client: GcsClient
    options: GcsOptions

    def new_client(self) -> GcsClient:
        return GcsClient(self.options)


def emulator_host() -> str | None:
    """Google's convention for pointing clients at an emulator (no credentials)."""
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        return None
    return host if "://" in host else f"http://{host}"
