"""The Azure Blob Storage blob store: blobs in a container, all state in the container.

The store's logic (layout, writes, upload sessions, leftovers) is the object stores' common one
(``objectstore.py``); here is the Azure wire, ``azure-storage-blob``'s sync client on the
client's bounded thread pool (why: docs/adr/0006):

- a write streams as blocks (Put Block) of a temporary blob while it is hashed, made whole with
  Put Block List; under one block it is one Put Blob straight to its digest's name with
  ``If-None-Match: *``;
- composition (a commit, an upload session's segments) stages the sources' byte ranges on the
  destination with Put Block From URL — the service copies them, no byte passes through this
  server — and commits them with Put Block List and ``If-None-Match: *``: the blob appears
  whole, and of concurrent writers of the same content exactly one creates it;
- the dedupe touch is Set Blob Metadata (it restarts Last-Modified without a copy);
- uncommitted blocks left by a crash are swept with their blob (listed with
  ``include=uncommittedblobs``); Azure also drops them after 7 days.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ExponentialRetry,
    generate_blob_sas,
)

from .objectclient import (
    SEND_THREADS,
    ClientSettings,
    MiB,
    ObjectBody,
    ObjectClient,
    ObjectInfo,
    ObjectStoreError,
    PartUploader,
    PendingUpload,
)
from .objectstore import ObjectBlobStore

__all__ = ["AzureBlobStore", "AzureOptions"]

MAX_BLOCK = 4000 * MiB  # Put Block: largest block
MAX_BLOCKS = 50_000  # committed blocks in one blob
COPY_BLOCK = 100 * MiB  # Put Block From URL: the range each staged copy carries (default)
# A download fetches one block of the store's own writing per request (``part_size``, 8 MiB):
# reads aligned with the blocks. 4 MiB reads of 8 MiB blocks cost Azurite 12 s of CPU per GiB
# of a 2 GiB blob against 1.4 s aligned (benchmarks/RESULTS.md, issue 17); real Azure bills
# per request. At most two blocks per download are held (one sent, one fetched ahead).
STORAGE_SCOPE = "https://storage.azure.com/.default"


@dataclass(frozen=True)
class AzureOptions(ClientSettings):
    container: str
    account_name: str | None = None
    account_key: str | None = None
    connection_string: str | None = None
    # The account's blob endpoint URL (Azurite: http://127.0.0.1:10000/devstoreaccount1);
    # unset: https://<account>.blob.<realm>
    endpoint: str | None = None
    realm: str = "core.windows.net"
    copy_block: int = COPY_BLOCK  # bytes each Put Block From URL copies at a commit
    max_attempts: int = 3  # tries per request (azure-core's exponential retry)
    retry_backoff: float = 0.5  # seconds before the first retry, then doubling (jittered)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @property
    def account_url(self) -> str:
        if self.endpoint:
            return self.endpoint.rstrip("/")
        return f"https://{self.account_name}.blob.{self.realm}"

    def credentials(self) -> str:
        """Which credentials, for messages (never the secret)."""
        if self.connection_string:
            return "the connection string"
        if self.account_key:
            return f"the account key of {self.account_name!r}"
        return "DefaultAzureCredential (workload identity, managed identity, environment)"


class AzureClient(ObjectClient):
    """``azure-storage-blob``'s sync container client; every call on the thread pool."""

    backend = "azure"
    max_part = MAX_BLOCK
    max_parts = MAX_BLOCKS

    namespace = "container"

    def __init__(self, options: AzureOptions) -> None:
        self.options = options
        super().__init__(options)
        self._session = requests.Session()
        self._fetchers = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="azure-fetch")
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=self.workers, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        kwargs: dict[str, Any] = {
            "retry_policy": ExponentialRetry(
                initial_backoff=options.retry_backoff,  # type: ignore[arg-type]
                increment_base=2,
                retry_total=max(0, options.max_attempts - 1),
                random_jitter_range=1,
            ),
            "max_single_get_size": options.part_size,
            "max_single_put_size": MAX_BLOCK,
            "max_chunk_get_size": options.part_size,
        }
        # The transport's own settings: the library applies these only to a transport it
        # makes itself, so one given to it read downloads 4 KiB at a time (3.3 s of CPU per
        # GiB against 1.3) and waited azure-core's 300 s for a dead backend.
        connection = {
            "connection_timeout": options.connect_timeout,
            "read_timeout": options.read_timeout,
            "connection_data_block_size": 256 * 1024,
        }
        # One connection per worker thread (requests' default pool keeps 10).
        kwargs["transport"] = RequestsTransport(
            session=self._session, session_owner=False, **connection
        )
        kwargs.update(connection)
        self._token_credential: Any = None
        if options.connection_string:
            service = BlobServiceClient.from_connection_string(options.connection_string, **kwargs)
            if options.endpoint:
                service = BlobServiceClient(
                    options.account_url, credential=service.credential, **kwargs
                )
        elif options.account_key:
            credential = {"account_name": options.account_name, "account_key": options.account_key}
            service = BlobServiceClient(options.account_url, credential=credential, **kwargs)
        else:
            from azure.identity import DefaultAzureCredential  # only when configured

            self._token_credential = DefaultAzureCredential()
            service = BlobServiceClient(
                options.account_url, credential=self._token_credential, **kwargs
            )
        self._service = service
        self.container: ContainerClient = service.get_container_client(options.container)
        self._account_key: str | None = getattr(service.credential, "account_key", None)

    @property
    def account_url(self) -> str:
        return str(self._service.url).rstrip("/")

    def describe(self) -> str:
        return f"azure://{self.options.container}/{self.options.prefix} at {self.account_url}"

    def where(self) -> str:
        return self.account_url

    def credentials_name(self) -> str:
        return self.options.credentials()

    def namespace_name(self) -> str:
        return self.options.container

    async def probe(self) -> None:
        def first_page() -> None:
            blobs = self.container.list_blobs(
                name_starts_with=self.options.prefix, results_per_page=1
            )
            next(blobs.by_page(), None)

        await self.invoke("list_blobs", first_page)

    def translate(self, operation: str, exc: Exception) -> ObjectStoreError | None:
        if isinstance(exc, HttpResponseError) and exc.status_code is not None:
            code = str(exc.error_code or exc.reason or "")
            message = (exc.message or str(exc)).split("\n", 1)[0]
            return ObjectStoreError(operation, code, int(exc.status_code), message)
        if isinstance(exc, ClientAuthenticationError):  # no token could be had
            return ObjectStoreError(operation, type(exc).__name__, 401, str(exc).split("\n")[0])
        if isinstance(exc, AzureError):  # no answer: refused, cut, timed out
            return ObjectStoreError(operation, type(exc).__name__, 0, str(exc).split("\n")[0])
        return None

    # Downloads go to a client's socket block by block, each block fetched while the one
    # before is sent: the library fetches one block per request and waits to be asked for the
    # next, so a backend would otherwise idle while the store sends.
    fills_buffers = True

    def body_pieces(self, body: ObjectBody, size: int) -> Iterator[memoryview]:
        assert isinstance(body, _Download)
        ready: queue.Queue[bytes | BaseException | None] = queue.Queue()
        held = threading.Semaphore(2)  # blocks alive: the one being sent, one fetched ahead
        stop = threading.Event()

        def fetch() -> None:
            blocks = body.chunks()
            while True:
                while not held.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    block = next(blocks, None)
                except Exception as exc:  # the backend failed: the sender stops there
                    ready.put(exc)
                    return
                ready.put(block)
                if block is None:
                    return

        fetching = self._fetchers.submit(fetch)
        left = size
        try:
            while left > 0:
                try:
                    item = ready.get(timeout=1.0)
                except queue.Empty:
                    if fetching.done():
                        return
                    continue
                if item is None or isinstance(item, BaseException):
                    return
                piece = memoryview(item)[:left]
                left -= len(piece)
                yield piece
                held.release()  # sent: the next block may be fetched
        finally:
            stop.set()

    def close_library(self) -> None:
        self._fetchers.shutdown(wait=True)
        self._service.close()
        self._session.close()
        if self._token_credential is not None:
            self._token_credential.close()

    def _blob(self, key: str) -> Any:
        return self.container.get_blob_client(key)

    # ---- the requests a store makes -----------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo | None:
        try:
            p = await self.invoke("get_blob_properties", self._blob(key).get_blob_properties)
        except ObjectStoreError as exc:
            if exc.status == 404:
                return None
            raise
        return ObjectInfo(key, int(p.size), p.last_modified.timestamp())

    async def put(self, key: str, body: bytes, *, if_absent: bool = False) -> bool:
        """Put Blob; with ``if_absent`` (``If-None-Match: *``) False when the blob existed."""
        blob = self._blob(key)
        extra: dict[str, Any] = {"match_condition": MatchConditions.IfMissing} if if_absent else {}
        try:
            await self.invoke(
                "put_blob",
                lambda: blob.upload_blob(body, overwrite=True, **extra),
                len(body),
            )
        except ObjectStoreError as exc:
            if if_absent and exc.status in (409, 412):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        try:
            await self.invoke("delete_blob", self._blob(key).delete_blob)
        except ObjectStoreError as exc:
            if exc.status != 404:
                raise

    async def list(self, prefix: str) -> list[ObjectInfo]:
        def page_all() -> list[ObjectInfo]:
            return [
                ObjectInfo(b.name, int(b.size), b.last_modified.timestamp())
                for b in self.container.list_blobs(name_starts_with=prefix)
            ]

        return await self.invoke("list_blobs", page_all)

    async def get(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody:
        blob = self._blob(key)
        length = None if end is None else max(0, end - start)
        if length == 0:
            raise ObjectStoreError("get_blob", "InvalidRange", 416, "empty range")

        def download() -> ObjectBody:
            try:
                return _Download(blob.download_blob(offset=start, length=length))
            except HttpResponseError as exc:
                if exc.status_code == 416:
                    raise ObjectStoreError(
                        "get_blob", "InvalidRange", 416, "past the end"
                    ) from None
                raise

        return await self.invoke("get_blob", download)

    async def touch(self, key: str, size: int) -> None:
        """Set Blob Metadata: Last-Modified restarts, no copy."""
        stamp = {"touched": str(int(time.time()))}
        try:
            await self.invoke("set_blob_metadata", lambda: self._blob(key).set_blob_metadata(stamp))
        except ObjectStoreError as exc:
            if exc.status != 404:
                raise

    def uploader(self, key: str, on_part: Callable[[bytes], Any] | None = None) -> PartUploader:
        return AzurePartUploader(self, key, on_part)

    async def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        """Blobs under ``prefix`` with uncommitted blocks only (a write cut short)."""

        def uncommitted() -> list[PendingUpload]:
            committed = {b.name for b in self.container.list_blobs(name_starts_with=prefix)}
            return [
                PendingUpload(b.name, "", (b.creation_time or b.last_modified).timestamp())
                for b in self.container.list_blobs(
                    name_starts_with=prefix, include=["uncommittedblobs"]
                )
                if b.name not in committed
            ]

        return await self.invoke("list_blobs", uncommitted)

    async def abort_pending(self, upload: PendingUpload) -> None:
        await self.discard_blocks(
            upload.key, may_commit=not upload.key.startswith(self.key("blobs/"))
        )

    async def discard_blocks(self, key: str, *, may_commit: bool) -> None:
        """Drop a blob's uncommitted blocks: delete it, or (where the service refuses to delete
        a blob that has no committed content, and only on a name no reader looks at) commit it
        empty, then delete it. Never raises for the store."""
        blob = self._blob(key)
        try:
            await self.invoke("delete_blob", blob.delete_blob)
            return
        except ObjectStoreError as exc:
            if exc.status != 404 or not may_commit:
                return
        try:
            await self.invoke(
                "put_block_list",
                lambda: blob.commit_block_list([], match_condition=MatchConditions.IfMissing),
            )
            await self.invoke("delete_blob", blob.delete_blob)
        except ObjectStoreError:
            return

    # ---- composition: blobs → one blob, inside the service ---------------------------------
    def _source_url(self, key: str) -> tuple[str, dict[str, Any]]:
        """A URL the service can read ``key`` from, and how it is authorized: a short-lived
        read SAS signed with the account key, else the bearer token of the credential."""
        blob = self._blob(key)
        if self._account_key:
            return self._read_sas_url(key, 3600), {}
        token = self._token_credential.get_token(STORAGE_SCOPE).token
        return blob.url, {"source_authorization": f"Bearer {token}"}

    def _read_sas_url(self, key: str, seconds: int) -> str:
        """``key``'s URL with a read-only SAS signed with the account key, valid ``seconds``."""
        assert self._account_key
        blob = self._blob(key)
        sas = generate_blob_sas(
            blob.account_name,
            self.options.container,
            key,
            account_key=self._account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds),
        )
        return f"{blob.url}?{sas}"

    @property
    def signs_urls(self) -> bool:
        return self._account_key is not None

    async def presign_get(self, key: str, expires: int) -> str | None:
        """A read SAS signed with the account key; None with a token credential (a user
        delegation SAS would need a request to the service: not built, the store proxies)."""
        return self._read_sas_url(key, expires) if self.signs_urls else None

    async def compose(self, sources: list[tuple[str, int]], dest: str, *, if_absent: bool) -> bool:
        """Put Block From URL for each source range (up to ``copy_block`` each), then Put Block
        List with ``If-None-Match: *``. Another writer committing ``dest`` meanwhile discards
        our staged blocks: then the commit fails and ``dest`` exists — False."""
        if sum(size for _, size in sources) == 0:
            return await self.put(dest, b"", if_absent=if_absent)
        nonce, step = secrets.token_hex(8), self.options.copy_block
        ranges = [
            (key, pos, min(step, size - pos))
            for key, size in sources
            for pos in range(0, size, step)
        ]
        if len(ranges) > MAX_BLOCKS:
            raise ObjectStoreError("compose", "TooManyBlocks", 400, f"{len(ranges)} blocks")
        blob = self._blob(dest)
        urls: dict[str, tuple[str, dict[str, Any]]] = {}
        ids = [block_id(nonce, i + 1) for i in range(len(ranges))]

        async def stage(i: int) -> None:
            key, offset, length = ranges[i]
            if key not in urls:
                urls[key] = await self.run(self._source_url, key)
            url, auth = urls[key]
            await self.invoke(
                "put_block_from_url",
                lambda: blob.stage_block_from_url(
                    ids[i], url, source_offset=offset, source_length=length, **auth
                ),
            )

        for start in range(0, len(ranges), self.settings.concurrency):
            batch = range(start, min(len(ranges), start + self.settings.concurrency))
            await asyncio.gather(*(stage(i) for i in batch))
        extra: dict[str, Any] = {"match_condition": MatchConditions.IfMissing} if if_absent else {}
        try:
            await self.invoke("put_block_list", lambda: blob.commit_block_list(ids, **extra))
        except ObjectStoreError as exc:
            if if_absent and (
                exc.status in (409, 412)
                or (exc.code == "InvalidBlockList" and await self.head(dest) is not None)
            ):
                return False
            raise
        return True


def block_id(nonce: str, number: int) -> str:
    """Block ids of one blob must all have the same length: a nonce and a 6-digit number."""
    return base64.b64encode(f"{nonce}-{number:06d}".encode()).decode()


class _Download:
    """A download as an :class:`ObjectBody` (the library fetches ``part_size`` per request)."""

    def __init__(self, downloader: Any) -> None:
        self._d = downloader

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._d.read(size) if size >= 0 else self._d.readall()
        return data

    def chunks(self) -> Iterator[bytes]:
        """The download's blocks as the library fetches them (``part_size`` each)."""
        return iter(self._d.chunks())

    def close(self) -> None:
        return None


class AzurePartUploader(PartUploader):
    """Blocks of the blob (Put Block), made whole by Put Block List; under one block a single
    Put Blob."""

    client: AzureClient

    async def _begin(self) -> str:
        return secrets.token_hex(8)  # the block ids' nonce

    async def _upload(self, handle: str, number: int, body: bytes) -> Any:
        blob, bid = self.client._blob(self.key), block_id(handle, number)
        await self.client.invoke("put_block", lambda: blob.stage_block(bid, body), len(body))
        return (number, bid)

    async def _complete(self, handle: str, parts: list[Any]) -> None:
        blob, ids = self.client._blob(self.key), [bid for _, bid in parts]
        await self.client.invoke("put_block_list", lambda: blob.commit_block_list(ids))

    async def _abort_upload(self, handle: str) -> None:
        await self.client.discard_blocks(self.key, may_commit=True)


class AzureBlobStore(ObjectBlobStore):
    client: AzureClient
    options: AzureOptions

    def new_client(self) -> AzureClient:
        return AzureClient(self.options)
