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
* ``smallpush`` 4 KiB blob pushes per second (``POST …/blobs/uploads/`` then ``PUT
                <location>&digest=`` with the body, as registry clients push a small layer or
                config), unique content, C concurrent keep-alive clients; beside Debian's
                ``docker-registry`` (the Go reference registry, distribution 2.8) started on
                127.0.0.1 with a temporary config, in alternating rounds. Skipped, with a
                message, when ``docker-registry`` is not installed (``apt-get install
                docker-registry``; not a project dependency). With ``--base DIR`` (the
                ``server/`` directory of another commit: ``git archive <commit> server | tar
                -x -C DIR/..``) that build runs too, in the same alternating rounds: an A/B of
                two builds beside the reference on a shared machine.

    .venv/bin/python benchmarks/oci.py [--size-gib 1] [--seconds 10] [--concurrency 32]
        [--workers 1] [--only push,pull,manifest,gated] [--work-dir DIR] [--json OUT]
        [--small-rounds 2] [--small-chunked] [--base DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
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
from benchmarks.s3_ab import cpu_seconds
from benchmarks.s3_ab import start as start_build
from tests.fixtures.process import terminate
from tests.fixtures.server import ServerProcess

SMALL_BLOB = 4096
DOCKER_REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"

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


def send_body(
    port: int,
    method: str,
    path: str,
    size: int,
    chunk: bytes,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """One request streaming ``size`` bytes (a repeated in-memory chunk); (status, headers).
    ``headers`` adds request headers (e.g. an OCI chunk's ``Content-Range``)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(size))
    conn.putheader("Content-Type", "application/octet-stream")
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
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


class DockerRegistry:
    """Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1 with a temporary config:
    filesystem storage under ``root``, no auth, logs at warn."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @staticmethod
    def available() -> bool:
        return Path(DOCKER_REGISTRY).exists()

    def start(self, timeout: float = 30.0) -> DockerRegistry:
        self.root.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:  # a free port (the registry cannot report one it chose)
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        config = self.root / "config.yml"
        config.write_text(
            json.dumps(
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {
                        "filesystem": {"rootdirectory": str(self.root / "data")},
                        "delete": {"enabled": True},
                    },
                    "http": {"addr": f"{HOST}:{self.port}"},
                }
            )
        )
        with open(self.root / "registry.log", "ab") as log_file:  # the child keeps its own fd
            self.proc = subprocess.Popen(
                [DOCKER_REGISTRY, "serve", str(config)], stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited: {(self.root / 'registry.log').read_text()[-2000:]}"
                )
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/v2/")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
                conn.close()
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not answer /v2/ in time")

    def stop(self) -> None:
        terminate(self.proc)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[bytes, bytes]]:
    """One HTTP/1.1 exchange on a keep-alive connection (Content-Length bodies only)."""
    writer.write(request)
    header = await reader.readuntil(b"\r\n\r\n")
    headers: dict[bytes, bytes] = {}
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        raise RuntimeError("chunked responses are not supported by this client")
    length = int(headers.get(b"content-length", b"0"))
    if length:
        await reader.readexactly(length)
    return int(header[9:12]), headers


async def bench_small_pushes(
    port: int, seconds: float, concurrency: int, salt: bytes, chunked: bool = False
) -> dict[str, Any]:
    """4 KiB blob pushes per second: POST an upload, PUT its location with ``digest`` and the
    body (``chunked``: PATCH the body, then an empty PUT, as docker and skopeo push); every
    blob different (nothing deduplicated)."""
    host = f"Host: {HOST}:{port}\r\n".encode()
    base = os.urandom(SMALL_BLOB - 24)
    latencies: list[float] = []
    failures: list[str] = []
    deadline = 0.0

    def with_body(method: str, target: str, body: bytes) -> bytes:
        return (
            f"{method} {target} HTTP/1.1\r\n".encode()
            + host
            + b"Content-Type: application/octet-stream\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    async def worker(wid: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        i = 0
        while (t := time.perf_counter()) < deadline:
            blob = base + salt[:8].ljust(8, b"-") + wid.to_bytes(4, "big") + i.to_bytes(12, "big")
            i += 1
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            post = f"POST /v2/{REPO}/blobs/uploads/ HTTP/1.1\r\n".encode() + host
            status, headers = await _exchange(reader, writer, post + b"Content-Length: 0\r\n\r\n")
            if status != 202:
                failures.append(f"POST: {status}")
                continue
            location = urllib.parse.urlsplit(headers[b"location"].decode())
            body = blob
            if chunked:
                target = urllib.parse.urlunsplit(("", "", *location[2:]))
                status, headers = await _exchange(reader, writer, with_body("PATCH", target, blob))
                if status != 202:
                    failures.append(f"PATCH: {status}")
                    continue
                location = urllib.parse.urlsplit(headers[b"location"].decode())
                body = b""
            query = f"{location.query}&" if location.query else ""
            put = with_body("PUT", f"{location.path}?{query}digest={digest}", body)
            status, _ = await _exchange(reader, writer, put)
            if status != 201:
                failures.append(f"PUT: {status}")
                continue
            latencies.append(time.perf_counter() - t)
        writer.close()

    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "concurrency": concurrency,
        "pushes": len(latencies),
        "errors": len(failures),
        "first_error": failures[0] if failures else None,
        "pushes_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def small_push_comparison(
    store_port: int,
    store_pid: int,
    work: Path,
    seconds: float,
    concurrency: int,
    rounds: int,
    base: ServerProcess | None = None,
    chunked: bool = False,
) -> dict[str, Any]:
    """Alternating rounds: the store (and the ``base`` build), then docker-registry, beside
    each other in one run; the load average is recorded with each round."""
    out: dict[str, Any] = {"store": [], "docker_registry": [], "blob_bytes": SMALL_BLOB}
    out["flow"] = "POST, PATCH body, empty PUT" if chunked else "POST, PUT body"
    if base is not None:
        out["store_base"] = []
    registry = None
    if DockerRegistry.available():
        registry = DockerRegistry(work / "docker-registry").start()
    else:
        out["skipped"] = (
            f"{DOCKER_REGISTRY} is not installed, so the reference registry is skipped "
            "(apt-get install docker-registry); the store alone is measured"
        )
        log(f"smallpush: {out['skipped']}")
    try:
        for r in range(rounds):
            runs: list[tuple[str, int, int]] = [("store", store_port, store_pid)]
            if base is not None and base.proc is not None:
                runs.append(("store_base", base.port, base.proc.pid))
                if r % 2:  # alternate which build goes first
                    runs.reverse()
            if registry is not None and registry.proc is not None:
                runs.append(("docker_registry", registry.port, registry.proc.pid))
            for name, port, pid in runs:
                cpu0 = cpu_seconds(pid)
                with RssSampler(pid) as rss:
                    res = asyncio.run(
                        bench_small_pushes(
                            port, seconds, concurrency, f"{name[:1]}{r}".encode(), chunked
                        )
                    )
                res.update(rss.as_dict())
                # Server CPU per push (user + system): steadier than the rate on a busy machine.
                res["cpu_ms_per_push"] = 1000 * (cpu_seconds(pid) - cpu0) / max(res["pushes"], 1)
                res["load_average_1m"] = os.getloadavg()[0]
                out[name].append(res)
                log(
                    f"smallpush round {r + 1} {name} (load {res['load_average_1m']:.1f}): "
                    f"{res['pushes_s']:.0f} pushes/s, CPU {res['cpu_ms_per_push']:.2f} ms/push, "
                    "p50 "
                    f"{res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, errors {res['errors']}"
                    f", RSS peak {res['rss_peak_sampled_mib']:.0f} MiB"
                )
    finally:
        if registry is not None:
            registry.stop()
    builds = ("store", "store_base") if base is not None else ("store",)
    for name in (*builds, "docker_registry"):
        rates = [x["pushes_s"] for x in out[name]]
        out[f"{name}_median_pushes_s"] = sorted(rates)[(len(rates) - 1) // 2] if rates else None
    for name in builds:
        if out[f"{name}_median_pushes_s"] and out["docker_registry_median_pushes_s"]:
            ratio = out[f"{name}_median_pushes_s"] / out["docker_registry_median_pushes_s"]
            suffix = "_base" if name == "store_base" else ""
            out[f"ratio{suffix}_to_docker_registry"] = ratio
            log(f"smallpush: {name} / docker-registry = {ratio:.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--only", default="push,pull,manifest,gated,smallpush")
    p.add_argument(
        "--small-rounds", type=int, default=2, help="smallpush: alternating rounds per server (2)"
    )
    p.add_argument(
        "--small-chunked",
        action="store_true",
        help="smallpush: POST, PATCH the body, empty PUT (docker, skopeo) instead of PUT body",
    )
    p.add_argument(
        "--base",
        type=Path,
        default=None,
        help="smallpush: another build's server/ directory, measured in the same rounds",
    )
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
            if "smallpush" in phases:
                base = start_build(args.base, work) if args.base else None
                try:
                    results["smallpush"] = small_push_comparison(
                        server.port,
                        server.proc.pid,
                        work,
                        args.seconds,
                        args.concurrency,
                        args.small_rounds,
                        base,
                        args.small_chunked,
                    )
                finally:
                    if base is not None:
                        base.stop()
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
