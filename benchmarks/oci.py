#!/usr/bin/env python3
"""OCI registry benchmarks (issue 4), beside references from the same run. Not part of CI.

* ``push``      a 1 GiB layer pushed two ways, as registry clients do: monolithic
                (``POST …/blobs/uploads/?digest=`` with the whole body) and session
                (``POST``, one streamed ``PATCH``, ``PUT ?digest=``), each timed to the 201;
                reference: ``dd conv=fsync`` of the same size on the same filesystem, run
                just before each push.
* ``pull``      ``GET /v2/<name>/blobs/<digest>`` of that layer (page-cache warm); reference:
                a page-cache read of a file of the same size.
* ``manifest``  ``GET /v2/<name>/manifests/<tag>`` requests per second (p50/p99 latency) at
                32 concurrent keep-alive clients.
* ``gated``     the same after a repository verification gate (audit mode) is set: what
                checking every pull against a policy costs.

    .venv/bin/python benchmarks/oci.py [--size-gib 1] [--seconds 10] [--concurrency 32]
        [--workers 1] [--only push,pull,manifest,gated] [--work-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import (
    CHUNK,
    GIB,
    HOST,
    MB,
    RssSampler,
    emit_results,
    get_stream,
    log,
    percentile,
    ref_dd_fsync,
    ref_page_cache_read,
)
from tests.fixtures.server import ServerProcess

REPO = "bench/app"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def digest_of(chunk: bytes, size: int) -> str:
    h = hashlib.sha256()
    view = memoryview(chunk)
    remaining = size
    while remaining:
        part = view[: min(remaining, len(view))]
        h.update(part)
        remaining -= len(part)
    return "sha256:" + h.hexdigest()


def send_body(port: int, method: str, path: str, size: int, chunk: bytes) -> tuple[int, dict]:
    """One request streaming ``size`` bytes (a repeated in-memory chunk); (status, headers)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(size))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    assert conn.sock is not None
    view, remaining = memoryview(chunk), size
    while remaining:
        part = view[: min(remaining, len(view))]
        conn.sock.sendall(part)
        remaining -= len(part)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {body[:300]!r}")
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}


def request(port: int, method: str, path: str, body: bytes = b"", ctype: str = "") -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Content-Type": ctype} if ctype else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
    return {k.lower(): v for k, v in resp.getheaders()}


def bench_push(port: int, pid: int, work: Path, size: int) -> dict[str, Any]:
    out: dict[str, Any] = {"bytes": size}
    # Two different layers (the store would deduplicate a second push of the same bytes).
    # This disk slows down as consecutive gigabytes land, so each push is compared with a dd
    # run just before it.
    for mode, salt in (("monolithic", b"m"), ("session", b"s")):
        chunk = salt + os.urandom(CHUNK - 1)
        digest = digest_of(chunk, size)
        dd = ref_dd_fsync(work / "dd.ref", size)
        (work / "dd.ref").unlink()
        with RssSampler(pid) as rss:
            t0 = time.perf_counter()
            if mode == "monolithic":
                send_body(port, "POST", f"/v2/{REPO}/blobs/uploads/?digest={digest}", size, chunk)
            else:
                location = request(port, "POST", f"/v2/{REPO}/blobs/uploads/")["location"]
                _, headers = send_body(port, "PATCH", location, size, chunk)
                request(port, "PUT", f"{headers['location']}?digest={digest}")
            seconds = time.perf_counter() - t0
        out[mode] = {"seconds": seconds, "mb_s": size / seconds / MB, **rss.as_dict()}
        out[mode]["dd_conv_fsync"] = dd
        out[mode]["ratio_to_dd"] = out[mode]["mb_s"] / dd["mb_s"]
        out.setdefault("digests", []).append(digest)
        log(f"push {mode}: {out[mode]['mb_s']:.0f} MB/s (dd just before: {dd['mb_s']:.0f} MB/s)")
    return out


def bench_pull(port: int, work: Path, digest: str, size: int) -> dict[str, Any]:
    ref = work / "read.ref"
    with open(ref, "wb") as f:
        block = os.urandom(CHUNK)
        for _ in range(size // CHUNK):
            f.write(block)
    out = {"page_cache_read": ref_page_cache_read(ref)}
    ref.unlink()
    path = f"/v2/{REPO}/blobs/{digest}"
    get_stream(port, path)  # warm
    out["get"] = get_stream(port, path)
    log(f"pull: {out['get']['mb_s']:.0f} MB/s")
    return out


def push_manifest(port: int) -> str:
    config = b'{"architecture":"amd64","os":"linux"}'
    cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
    request(port, "POST", f"/v2/{REPO}/blobs/uploads/?digest={cdigest}", config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cdigest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    request(port, "PUT", f"/v2/{REPO}/manifests/latest", manifest, MANIFEST_TYPE)
    return "latest"


async def bench_manifest_gets(port: int, seconds: float, concurrency: int) -> dict[str, Any]:
    tag = push_manifest(port)
    req = (
        f"GET /v2/{REPO}/manifests/{tag} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Accept: {MANIFEST_TYPE}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        while (t := time.perf_counter()) < deadline:
            writer.write(req)
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if header[9:12] != b"200":
                errors += 1
            latencies.append(time.perf_counter() - t)
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    out = {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }
    log(f"manifest GET: {out['rps']:.0f}/s, p50 {out['p50_ms']:.1f} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--only", default="push,pull,manifest,gated")
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    phases = set(args.only.split(","))
    size = int(args.size_gib * GIB) // CHUNK * CHUNK
    work = Path(tempfile.mkdtemp(prefix="zas-ocibench-", dir=args.work_dir))
    results: dict[str, Any] = {"workers": args.workers, "size": size}
    try:
        env = {"ZAS_LOG_LEVEL": "warning", "ZAS_HTTP_WORKERS": str(args.workers)}
        server = ServerProcess(work / "data", env=env).start()
        assert server.proc is not None
        try:
            if "push" in phases or "pull" in phases:
                results["push"] = bench_push(server.port, server.proc.pid, work, size)
            if "pull" in phases:
                digest = results["push"]["digests"][0]
                results["pull"] = bench_pull(server.port, work, digest, size)
            if "manifest" in phases:
                results["manifest"] = asyncio.run(
                    bench_manifest_gets(server.port, args.seconds, args.concurrency)
                )
            if "gated" in phases:
                # The same pulls through a repository verification gate (audit mode: every
                # pull is checked, outcomes cached 10 s per digest, each one audited).
                gate = {"name": "bench", "mode": "audit", "policy": {"sbom": True}}
                request(server.port, "PUT", f"/v1/repositories/{REPO}/verification",
                        json.dumps(gate).encode(), "application/json")  # fmt: skip
                results["gated"] = asyncio.run(
                    bench_manifest_gets(server.port, args.seconds, args.concurrency)
                )
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
