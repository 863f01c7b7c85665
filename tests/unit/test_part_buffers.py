"""Part buffers kept for reuse between object-store uploads, and the S3 backend's signer
(storage/objectclient.py, storage/s3client.py; issue 17's PUT throughput)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import botocore
import botocore.auth

from zot_artifact_store.storage.objectclient import PartBuffers, PartUploader
from zot_artifact_store.storage.s3client import choose_pure_sigv4


async def test_a_given_buffer_is_taken_again_only_at_its_own_size() -> None:
    pool = PartBuffers(keep=2, idle=30)
    buf = bytearray(8)
    pool.give(buf)
    assert pool.take(16) is None
    assert pool.take(8) is buf
    assert pool.take(8) is None  # taken once
    pool.clear()


async def test_at_most_keep_buffers_wait() -> None:
    pool = PartBuffers(keep=2, idle=30)
    for _ in range(5):
        pool.give(bytearray(4))
    assert pool.held == 8
    pool.clear()
    assert pool.held == 0


async def test_buffers_are_let_go_after_idle_seconds_without_use() -> None:
    pool = PartBuffers(keep=4, idle=0.2)
    pool.give(bytearray(4))
    await asyncio.sleep(0.1)
    pool.give(bytearray(4))  # a use: the idle time starts again
    await asyncio.sleep(0.15)
    assert pool.held == 8
    await asyncio.sleep(0.3)
    assert pool.held == 0
    assert pool.take(4) is None


class _Uploader(PartUploader):
    async def _begin(self) -> str:
        return "u"

    async def _upload(self, handle: str, number: int, body: bytes) -> Any:
        return number

    async def _complete(self, handle: str, parts: list[Any]) -> None:
        return None

    async def _abort_upload(self, handle: str) -> None:
        return None


def _uploader(pool: PartBuffers) -> _Uploader:
    return _Uploader(SimpleNamespace(part_buffers=pool), "k")  # type: ignore[arg-type]


async def test_a_part_goes_back_only_once_sent_and_hashed() -> None:
    pool = PartBuffers(keep=4, idle=30)
    up, loop = _uploader(pool), asyncio.get_running_loop()
    part, sent, hashing = bytearray(4), loop.create_future(), loop.create_future()
    sent.set_result(1)
    up._recycle(part, hashing, sent)
    assert pool.held == 0  # still being hashed
    hashing.set_result(None)
    await asyncio.sleep(0)
    assert pool.take(4) is part
    pool.clear()


async def test_a_cancelled_part_is_never_reused() -> None:
    """A cancelled request may still be on its thread, reading the part."""
    pool = PartBuffers(keep=4, idle=30)
    up, loop = _uploader(pool), asyncio.get_running_loop()
    sent = loop.create_future()
    sent.cancel()
    up._recycle(bytearray(4), None, sent)
    assert pool.held == 0


def test_the_store_signs_with_botocores_own_sigv4() -> None:
    """Not awscrt's (it reads each part back through Python callbacks over plain HTTP): the
    S3 backend's signer choice maps botocore's s3v4 and its query form to botocore's own."""
    put = {"auth_type": "v4-unsigned-body"}
    chosen = choose_pure_sigv4("s3v4", context=put, signing_name="s3", region_name="r")
    assert botocore.auth.AUTH_TYPE_MAPS[chosen] is botocore.auth.S3SigV4Auth
    assert put["payload_signing_enabled"] is False  # botocore's own handler still ran
    query = choose_pure_sigv4("s3v4-query", context={}, signing_name="s3", region_name="r")
    assert botocore.auth.AUTH_TYPE_MAPS[query] is botocore.auth.S3SigV4QueryAuth
    none = choose_pure_sigv4("s3v4", context={"auth_type": "none"}, signing_name="s3")
    assert none is botocore.UNSIGNED
