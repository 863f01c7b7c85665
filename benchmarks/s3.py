#!/usr/bin/env python3
"""S3 API benchmarks (issue 3), beside references from the same run. Not part of CI.

* ``multipart``  a 1 GiB upload through boto3's transfer manager in 8 parallel parts of
                 128 MiB, timed to the CompleteMultipartUpload response; reference: a
                 single-stream S3 PutObject of the same bytes and ``dd conv=fsync``.
* ``list``       ListObjectsV2 page latency (1,000 keys a page, p50/p99) walking a bucket of
                 100,000 objects, with and without a delimiter. The keys are loaded straight
                 into the metadata store before the server starts (all pointing at one small
                 blob), so the measurement is the listing, not the loading.
* ``small``      per-request cost: sequential PutObject (1 KiB), HeadObject and GetObject over
                 one keep-alive plain-HTTP connection (no client signing or parsing), requests/s
                 and p50/p99 for each; what the S3 dispatch (api/s3/operations.py) adds shows
                 here if anywhere.

    .venv/bin/python benchmarks/s3.py [--size-gib 1] [--objects 100000] [--workers 1]
        [--only multipart,list,small] [--small-requests 2000] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import emit_results, log, percentile, proc_status_kib
from tests.fixtures.server import ServerProcess
from zot_artifact_store.metadata import Bucket, ObjectRecord, create_metadata_store
from zot_artifact_store.storage import create_blob_store

MIB = 1 << 20
GIB = 1 << 30


def client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench-secret",
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=16,
            retries={"max_attempts": 1},
        ),
    )


class RepeatingReader(io.RawIOBase):
    """``size`` bytes of a repeated random 4 MiB block, readable (and seekable) like a file,
    so the client does not hold the whole object in memory."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0
        self.block = os.urandom(4 * MIB)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, min(self.size, base + offset))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.size - self.pos)
        if n <= 0:
            return 0
        view = memoryview(buf)
        done = 0
        while done < n:
            off = (self.pos + done) % len(self.block)
            take = min(n - done, len(self.block) - off)
            view[done : done + take] = self.block[off : off + take]
            done += take
        self.pos += n
        return n


def dd_rate(work: Path, size: int) -> float:
    target = work / "dd.bin"
    t = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size // MIB}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    rate = size / (time.perf_counter() - t) / 1e6
    target.unlink()
    return rate


def bench_multipart(url: str, pid: int, work: Path, size: int) -> dict[str, Any]:
    s3 = client(url)
    s3.create_bucket(Bucket="bench-mp")
    from boto3.s3.transfer import TransferConfig

    cfg = TransferConfig(
        multipart_threshold=8 * MIB,
        multipart_chunksize=size // 8,
        max_concurrency=8,
        use_threads=True,
    )
    out: dict[str, Any] = {"size": size, "parts": 8, "part_size": size // 8}
    out["dd_fsync_mb_s"] = dd_rate(work, size)
    t = time.perf_counter()
    s3.upload_fileobj(RepeatingReader(size), "bench-mp", "mp.bin", Config=cfg)
    out["multipart_s"] = time.perf_counter() - t
    out["multipart_mb_s"] = size / out["multipart_s"] / 1e6
    out["server_rss_mib_after"] = (proc_status_kib(pid, "VmHWM") or 0) / 1024
    head = s3.head_object(Bucket="bench-mp", Key="mp.bin")
    assert head["ContentLength"] == size, head
    single = TransferConfig(multipart_threshold=size * 2)
    t = time.perf_counter()
    s3.upload_fileobj(RepeatingReader(size), "bench-mp", "single.bin", Config=single)
    out["single_put_s"] = time.perf_counter() - t
    out["single_put_mb_s"] = size / out["single_put_s"] / 1e6
    log(
        f"multipart 8x{size // 8 // MIB} MiB: {out['multipart_mb_s']:.0f} MB/s; single PUT "
        f"{out['single_put_mb_s']:.0f} MB/s; dd conv=fsync {out['dd_fsync_mb_s']:.0f} MB/s"
    )
    return out


async def preload(data_dir: Path, count: int) -> None:
    """``count`` objects in bucket ``bench-list`` (keys ``d{i % 100}/obj-{i}``), one blob."""
    blobs = create_blob_store(str(data_dir), fsync=False)
    await blobs.open()
    info = await blobs.put_bytes(b"x" * 1024)
    await blobs.close()
    meta = create_metadata_store(f"sqlite:///{data_dir / 'metadata.db'}")
    await meta.open()
    now = time.time()
    await meta.create_bucket(Bucket("bench-list", now))
    for i in range(count):
        await meta.put_object(
            ObjectRecord(
                bucket="bench-list",
                key=f"d{i % 100:02d}/obj-{i:07d}",
                digest=info.digest,
                size=info.size,
                etag="0" * 32,
                content_type="application/octet-stream",
                created_at=now,
                updated_at=now,
            )
        )
    await meta.close()


def _raw_pages(url: str, params: dict[str, str]) -> list[float]:
    """Page latencies of ListObjectsV2 over plain HTTP (no client-side XML parsing): the
    server's share of what a boto3 user waits for."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    latencies: list[float] = []
    token = ""
    try:
        while True:
            query = {"list-type": "2", "max-keys": "1000", **params}
            if token:
                query["continuation-token"] = token
            t = time.perf_counter()
            conn.request("GET", "/bench-list?" + urllib.parse.urlencode(query))
            body = conn.getresponse().read()
            latencies.append(time.perf_counter() - t)
            match = re.search(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>", body)
            if not match:
                return sorted(latencies)
            token = match.group(1).decode()
    finally:
        conn.close()


def bench_list(url: str, count: int) -> dict[str, Any]:
    s3 = client(url)
    out: dict[str, Any] = {"objects": count}
    raw = _raw_pages(url, {})
    out["raw_http_flat"] = {
        "pages": len(raw),
        "p50_ms": percentile(raw, 0.5) * 1000,
        "p99_ms": percentile(raw, 0.99) * 1000,
    }
    log(
        f"ListObjectsV2 raw HTTP (server side): {len(raw)} pages, p50 "
        f"{out['raw_http_flat']['p50_ms']:.1f} ms, p99 {out['raw_http_flat']['p99_ms']:.1f} ms"
    )
    for label, kwargs in (("flat", {}), ("delimiter", {"Prefix": "d07/", "Delimiter": "/"})):
        latencies: list[float] = []
        seen = 0
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": "bench-list", "MaxKeys": 1000, **kwargs}
            if token:
                args["ContinuationToken"] = token
            t = time.perf_counter()
            page = s3.list_objects_v2(**args)
            latencies.append(time.perf_counter() - t)
            seen += page["KeyCount"]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
        latencies.sort()
        out[label] = {
            "pages": len(latencies),
            "keys": seen,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": latencies[-1] * 1000,
        }
        log(
            f"ListObjectsV2 {label}: {seen} keys in {len(latencies)} pages, p50 "
            f"{out[label]['p50_ms']:.1f} ms, p99 {out[label]['p99_ms']:.1f} ms"
        )
    return out


def bench_small(url: str, count: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    body = os.urandom(1024)
    out: dict[str, Any] = {"requests": count}
    try:
        conn.request("PUT", "/bench-small")
        conn.getresponse().read()
        for method in ("PUT", "HEAD", "GET"):
            latencies: list[float] = []
            start = time.perf_counter()
            for i in range(count):
                t = time.perf_counter()
                conn.request(method, f"/bench-small/obj-{i}", body if method == "PUT" else None)
                response = conn.getresponse()
                response.read()
                latencies.append(time.perf_counter() - t)
                assert response.status == 200, (method, response.status)
            elapsed = time.perf_counter() - start
            latencies.sort()
            out[method] = {
                "per_s": count / elapsed,
                "p50_ms": percentile(latencies, 0.5) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000,
            }
            log(
                f"{method} 1 KiB x{count}: {out[method]['per_s']:.0f}/s, p50 "
                f"{out[method]['p50_ms']:.2f} ms, p99 {out[method]['p99_ms']:.2f} ms"
            )
    finally:
        conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--only", default="multipart,list,small")
    p.add_argument("--small-requests", type=int, default=2000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    phases = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="zas-s3bench-", dir=args.work_dir))
    results: dict[str, Any] = {"workers": args.workers}
    try:
        data = work / "data"
        if "list" in phases:
            t = time.perf_counter()
            asyncio.run(preload(data, args.objects))
            log(f"preloaded {args.objects} objects in {time.perf_counter() - t:.1f} s")
        env = {"ZAS_LOG_LEVEL": "warning", "ZAS_HTTP_WORKERS": str(args.workers)}
        server = ServerProcess(data, env=env).start()
        assert server.proc is not None
        try:
            if "multipart" in phases:
                size = int(args.size_gib * GIB) // (8 * MIB) * (8 * MIB)
                results["multipart"] = bench_multipart(server.url, server.proc.pid, work, size)
            if "list" in phases:
                results["list"] = bench_list(server.url, args.objects)
            if "small" in phases:
                results["small"] = bench_small(server.url, args.small_requests)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
