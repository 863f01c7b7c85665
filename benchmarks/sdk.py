#!/usr/bin/env python3
"""Python SDK (``zot_artifacts``) transfer benchmarks, beside references from the same run.
Not part of CI.

* ``upload``    ``Client.upload`` of an N GiB file: single stream (one PUT with its sha256
                computed first) and in parallel parts (``--parallel`` parts of ``--part-mib``
                at a time, the whole sha256 computed alongside); reference: ``dd conv=fsync``
                of the same size on the same filesystem.
* ``download``  ``Client.download`` of that object to a file (streamed, sha256 checked),
                single stream; reference: a page-cache read of the source file.
* ``async``     the same upload in parts through ``AsyncClient`` (asyncio tasks).

    .venv/bin/python benchmarks/sdk.py [--size-gib 1] [--part-mib 64] [--parallel 4]
        [--only upload,download,async] [--work-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import emit_results, log
from benchmarks.s3 import dd_rate
from tests.fixtures.server import ServerProcess
from zot_artifacts import AsyncClient, Client, RetryPolicy

MIB = 1 << 20
GIB = 1 << 30
MB = 1_000_000


def make_file(path: Path, size: int) -> None:
    block = os.urandom(8 * MIB)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def rate(size: int, seconds: float) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "MB_s": round(size / MB / seconds, 1)}


def page_cache_read(path: Path) -> float:
    with open(path, "rb") as f:
        while f.read(8 * MIB):
            pass  # warm
    start = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(8 * MIB):
            pass
    return time.perf_counter() - start


@contextlib.contextmanager
def scratch_server(prefix: str, work_dir: Path | None) -> Iterator[tuple[str, Path]]:
    """A server on the embedded default in a scratch directory (inside ``work_dir``), both
    removed afterwards: ``(url, scratch dir)``."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir))
    try:
        server = ServerProcess(work / "data", env={"ZAS_LOG_LEVEL": "warning"}).start()
        try:
            yield server.url, work
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(url: str, work: Path, size: int, part: int, parallel: int, phases: set[str]) -> dict:
    src = work / "src.bin"
    make_file(src, size)
    out: dict[str, Any] = {"size_bytes": size, "part_bytes": part, "parallel": parallel}
    retry = RetryPolicy(max_attempts=3)
    with Client(url, timeout=300, retry=retry) as c:
        c.create_bucket("sdk-bench", exist_ok=True)
        if "upload" in phases or "download" in phases:
            t = time.perf_counter()
            c.upload("sdk-bench", "single.bin", src, multipart_threshold=size + 1)
            out["upload_single"] = rate(size, time.perf_counter() - t)
            log(f"upload single stream: {out['upload_single']}")
        if "upload" in phases:
            t = time.perf_counter()
            c.upload(
                "sdk-bench", "parts.bin", src, part_size=part, parallel=parallel,
                multipart_threshold=part,
            )  # fmt: skip
            out["upload_parts"] = rate(size, time.perf_counter() - t)
            log(f"upload parts: {out['upload_parts']}")
        if "download" in phases:
            dest = work / "dest.bin"
            t = time.perf_counter()
            c.download("sdk-bench", "single.bin", dest)
            out["download_single"] = rate(size, time.perf_counter() - t)
            log(f"download: {out['download_single']}")
            dest.unlink()
            out["ref_page_cache_read"] = rate(size, page_cache_read(src))
    if "async" in phases:

        async def run() -> float:
            async with AsyncClient(url, timeout=300, retry=retry) as ac:
                t = time.perf_counter()
                await ac.upload(
                    "sdk-bench", "async.bin", src, part_size=part, parallel=parallel,
                    multipart_threshold=part,
                )  # fmt: skip
                return time.perf_counter() - t

        out["async_upload_parts"] = rate(size, asyncio.run(run()))
        log(f"async upload parts: {out['async_upload_parts']}")
    if "upload" in phases:
        out["ref_dd_fsync_MB_s"] = round(dd_rate(work, size), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--part-mib", type=int, default=64)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--only", default="upload,download,async")
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    size = int(args.size_gib * GIB)
    with scratch_server("zas-sdkbench-", args.work_dir) as (url, work):
        results = bench(
            url, work, size, args.part_mib * MIB, args.parallel, set(args.only.split(","))
        )
    emit_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
