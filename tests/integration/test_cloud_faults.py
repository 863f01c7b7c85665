"""The Azure Blob and GCS backends when the service misbehaves, through the fault proxy in front
of Azurite and gcp-storage-emulator: 5xx are retried, a response cut mid-body is resumed, and a
GCS resumable upload whose chunk was kept but whose answer was lost asks the session what it
holds and goes on from there — the blob is whole and nothing is sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.objectstores import AzureEndpoint, GcsEndpoint, put_in_parts
from tests.fixtures.sockets import send_cut_after, send_to_socketpair
from zot_artifact_store.storage import BlobStore
from zot_artifact_store.storage.azure import AzureBlobStore, AzureOptions
from zot_artifact_store.storage.gcs import GcsBlobStore, GcsOptions
from zot_artifact_store.storage.objectclient import ObjectStoreError

MiB = 1 << 20
DATA = (hashlib.sha512(b"cloud faults").digest() * (6 * MiB // 64 + 1))[: 6 * MiB + 333]


@pytest.fixture(params=["azure", "gcs"])
def service(request: pytest.FixtureRequest) -> Iterator[tuple[str, FaultProxy, BlobStore]]:
    prefix = f"faults-{uuid.uuid4().hex[:8]}/"
    if request.param == "azure":
        azurite: AzureEndpoint = request.getfixturevalue("azurite")
        parts = urlsplit(azurite.url)
        with FaultProxy(f"{parts.scheme}://{parts.netloc}") as proxy:
            yield (
                "azure",
                proxy,
                AzureBlobStore(
                    AzureOptions(
                        container=azurite.container,
                        account_name=azurite.account_name,
                        account_key=azurite.account_key,
                        endpoint=proxy.url + parts.path,
                        prefix=prefix,
                        part_size=MiB,
                        retry_backoff=0.1,
                    )
                ),
            )
        return
    gcs: GcsEndpoint = request.getfixturevalue("gcs_emulator")
    client = gcs.client()
    bucket = client.create_bucket(f"zas-{uuid.uuid4().hex[:12]}")
    client.close()
    with FaultProxy(gcs.url) as proxy:
        yield (
            "gcs",
            proxy,
            GcsBlobStore(
                GcsOptions(
                    bucket=bucket.name,
                    endpoint=proxy.url,
                    anonymous=True,
                    prefix=prefix,
                    part_size=MiB,
                )
            ),
        )


@pytest.fixture
async def opened(
    service: tuple[str, FaultProxy, BlobStore],
) -> AsyncIterator[tuple[str, FaultProxy, BlobStore]]:
    name, proxy, store = service
    await store.open()
    try:
        yield name, proxy, store
    finally:
        proxy.reset()
        await store.close()


async def test_5xx_on_writes_are_retried(opened: tuple[str, FaultProxy, BlobStore]) -> None:
    name, proxy, store = opened
    if name == "azure":
        proxy.fail_next(1, 503, match="blockid=")  # a Put Block
        proxy.fail_next(1, 500, match="comp=blocklist")  # the first Put Block List
        info = await store.put_bytes(DATA)
    else:
        proxy.fail_next(1, 500, match="uploadType=resumable&name=")  # the session's start
        w = await store.writer()
        await w.write(DATA[: 2 * MiB])
        for _ in range(1000):  # until the first chunk went through
            if proxy.seen("PUT", "upload_id="):
                break
            await asyncio.sleep(0.01)
        # A later chunk (gcp-storage-emulator answers a status query of a session that holds
        # nothing "bytes=0-0", as if it held a byte; GCS sends no Range then).
        proxy.fail_next(1, 503, match="upload_id=")
        await w.write(DATA[2 * MiB :])
        info = await w.commit()
    assert sorted(r.status for r in proxy.seen() if r.status >= 500) == [500, 503]
    assert await store.read_all(info.digest) == DATA


async def test_a_response_cut_mid_body_is_resumed(
    opened: tuple[str, FaultProxy, BlobStore],
) -> None:
    _name, proxy, store = opened
    digest, name = await put_in_parts(store, DATA)
    proxy.drop_after(MiB // 2 + 17, count=2, match=name)  # mid-body: reads are part_size
    assert await store.read_all(digest) == DATA
    assert sum(r.dropped for r in proxy.seen("GET", name)) == 2


@pytest.mark.parametrize("service", ["gcs"], indirect=True)
async def test_gcs_download_sent_to_a_socket_stops_where_the_body_was_cut(
    opened: tuple[str, FaultProxy, BlobStore],
) -> None:
    """The GCS sender (one ranged GET read into a buffer on a thread) with its response cut
    mid-body: it reports the bytes that reached the socket, exactly the blob's from the offset
    asked, and ``read`` asks again from there for the rest."""
    _name, proxy, store = opened
    name = await send_cut_after(store, proxy, DATA, 3 * MiB + 17)
    assert [r.dropped for r in proxy.seen("GET", name)] == [True, False]


@pytest.mark.parametrize("service", ["azure"], indirect=True)  # GCS's: the test above
async def test_azure_download_sent_to_a_socket_is_exact_when_blocks_are_cut(
    opened: tuple[str, FaultProxy, BlobStore],
) -> None:
    """The Azure sender (blocks fetched ahead on a thread of their own) with block responses
    cut mid-body: what reached the socket is exactly the blob's bytes from the offset asked,
    its count is what ``send_to_socket`` reports, and ``read`` gives the rest."""
    _name, proxy, store = opened
    digest, name = await put_in_parts(store, DATA)
    await store.stat(digest)  # the pointer is known: no peek at the record
    # The first block whole, then the second cut (and the library's retries of it).
    proxy.drop_after(MiB // 2 + 17, count=3, match=name, skip=1)
    sent, received = await send_to_socketpair(store, digest, 5, len(DATA))
    assert sent == MiB  # the first block (part_size from offset 5) went; stopped at the cut
    assert len(received) == sent and received == DATA[5 : 5 + sent]
    rest = b"".join([c async for c in store.read(digest, 5 + sent)])
    assert received + rest == DATA[5:]
    assert sum(r.dropped for r in proxy.seen("GET", name)) == 3


async def test_a_read_answered_503_is_retried(opened: tuple[str, FaultProxy, BlobStore]) -> None:
    _name, proxy, store = opened
    info = await store.put_bytes(DATA)
    proxy.fail_next(2, 503, match=info.digest.split(":")[1])
    assert await store.read_all(info.digest) == DATA


async def test_gcs_chunk_kept_but_its_answer_lost(
    opened: tuple[str, FaultProxy, BlobStore],
) -> None:
    """The service applied a chunk, the answer never came (a gateway's 504): the upload asks
    the session what it holds (``Content-Range: bytes */*``) and sends only the rest; the last
    request's answer lost too, the session says it is complete."""
    name, proxy, store = opened
    if name != "gcs":
        pytest.skip("GCS's resumable upload recovery")
    proxy.lose_answer_next(1, 504, match="upload_id=")  # the first chunk
    w = await store.writer()
    await w.write(DATA[: 3 * MiB])
    await w.write(DATA[3 * MiB :])
    info = await w.commit()
    assert info.digest == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert await store.read_all(info.digest) == DATA
    chunks = [r for r in proxy.seen("PUT", "upload_id=") if r.forwarded]
    statuses = [r for r in chunks if r.headers.get("content-range") == "bytes */*"]
    assert len(statuses) == 1  # one question after the lost answer, then on from the answer


async def test_azure_backend_that_never_answers_fails_within_its_read_timeout(
    azurite: AzureEndpoint,
) -> None:
    """``readTimeout`` reaches the library's transport: a backend that accepts the connection
    and never answers fails the write as a retryable error after about that long (the store
    had left its own transport at azure-core's 300 s, and requests hung that long)."""
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(silent.accept()[0])  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    store = AzureBlobStore(
        AzureOptions(
            container=azurite.container,
            account_name=azurite.account_name,
            account_key=azurite.account_key,
            endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}/{azurite.account_name}",
            prefix=f"silent-{uuid.uuid4().hex[:8]}/",
            read_timeout=1.0,
            connect_timeout=1.0,
            max_attempts=1,
        )
    )
    try:
        with pytest.raises(ObjectStoreError) as err:
            await asyncio.wait_for(store.client.put("k", b"x" * 100), timeout=30)
        assert err.value.retryable
    finally:
        stop.set()
        for s in held:
            s.close()
        silent.close()
        await store.client.close()
