#!/usr/bin/env python3
"""Benchmark the Zot Artifact Store against the physical limits of this machine.

Starts the real server (``zot-artifact-store serve``, through ``tests.fixtures.server``) on a
scratch data directory and measures, beside reference runs on the same filesystem in the same
process:

* ``put``    single-stream PUT of an N GiB object (client streams from memory) vs ``dd
             conv=fsync``; the server's peak RSS while it uploads;
* ``get``    single-stream GET of that object, twice (the second is page-cache warm) vs a
             page-cache read of a file of the same size and raw TCP loopback bandwidth;
* ``rss2g``  the server's peak RSS while a 2 GiB object streams in (target < 150 MiB);
* ``small``  4 KiB PUT / GET / HEAD operations per second at C concurrent clients;
* ``start``  time from launch to ready (the ready file written) and idle RSS, over several
             fresh starts, beside a bare ``python -c "import tornado.web"`` (the floor).

It prints Markdown tables (and ``--json OUT`` writes the raw numbers). It never asserts:
it is a measurement, see DESIGN.md §7-§8 and benchmarks/README.md. Not part of CI.

    .venv/bin/python benchmarks/run.py [--size-gib 1] [--small-ops-seconds 10]
        [--concurrency 32] [--backend sqlite|mongodb] [--work-dir DIR]
        [--only put,get,small,rss2g] [--client threads|httpx|raw] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.mongo import MongoServer, database_uri  # noqa: E402
from tests.fixtures.server import SERVER_BIN, ServerProcess  # noqa: E402

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
MB = 1_000_000  # throughput is reported in decimal MB/s, like dd
CHUNK = 4 * MIB
SMALL_SIZE = 4 * KIB
HOST = "127.0.0.1"
PHASES = ("start", "put", "get", "rss2g", "small")
CLK_TCK = os.sysconf("SC_CLK_TCK")

TARGET_PUT_RATIO = 0.5  # of dd conv=fsync
TARGET_GET_MBPS = 1000.0  # 1 GB/s from page cache
TARGET_RSS_MIB = 150.0  # during a 2 GiB upload
TARGET_SMALL_OPS = 1000.0  # per second
TARGET_IDLE_RSS_MIB = 60.0  # one worker, after start
TARGET_READY_S = 1.0  # launch to ready


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- process probes --------------------------------------------------------------------------


def server_pids(pid: int) -> list[int]:
    """The server process and its worker processes (``http.workers`` > 1), if any."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def _one_status_kib(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


def proc_status_kib(pid: int, field_name: str) -> int | None:
    """A /proc status field summed over the server and its workers."""
    values = [v for p in server_pids(pid) if (v := _one_status_kib(p, field_name)) is not None]
    return sum(values) if values else None


def proc_cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the server and its workers (all their threads), seconds, with the
    children ``pid`` has already reaped (a relay that forks per connection)."""
    user = system = 0.0
    for p in server_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        user += int(fields[11]) / CLK_TCK
        system += int(fields[12]) / CLK_TCK
        if p == pid:
            user += int(fields[13]) / CLK_TCK
            system += int(fields[14]) / CLK_TCK
    return user, system


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the server and its workers (all their threads)."""
    return sum(proc_cpu_times(pid))


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class RssSampler:
    """Samples VmRSS of ``pid`` every ``interval`` s in a thread; resets and reads VmHWM."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.start_kib = 0
        self.samples = 0
        self.hwm_kib: int | None = None
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        rss = proc_status_kib(self.pid, "VmRSS")
        if rss is not None:
            self.samples += 1
            self.peak_kib = max(self.peak_kib, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the
        # high-water mark read at the end belongs to this phase only.
        try:
            for pid in server_pids(self.pid):
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.start_kib = proc_status_kib(self.pid, "VmRSS") or 0
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.hwm_kib = proc_status_kib(self.pid, "VmHWM")

    def as_dict(self) -> dict[str, Any]:
        return {
            "rss_start_mib": self.start_kib / KIB,
            "rss_peak_sampled_mib": self.peak_kib / KIB,
            "vm_hwm_mib": None if self.hwm_kib is None else self.hwm_kib / KIB,
            "vm_hwm_reset_at_phase_start": self.hwm_reset,
            "rss_samples": self.samples,
            "sample_interval_s": self.interval,
        }


@contextlib.contextmanager
def cpu_meter(pid: int) -> Iterator[dict[str, float]]:
    """Server and client (this process) CPU seconds and % of one core over the block."""
    out: dict[str, float] = {}
    (u0, k0), c0, t0 = proc_cpu_times(pid), self_cpu_seconds(), time.perf_counter()
    s0 = u0 + k0
    try:
        yield out
    finally:
        wall = time.perf_counter() - t0
        (u1, k1), c1 = proc_cpu_times(pid), self_cpu_seconds()
        s1 = u1 + k1
        out.update(
            wall_s=wall,
            server_cpu_s=s1 - s0,
            server_user_s=u1 - u0,
            server_system_s=k1 - k0,
            client_cpu_s=c1 - c0,
            server_cpu_pct=100 * (s1 - s0) / wall if wall else 0.0,
            client_cpu_pct=100 * (c1 - c0) / wall if wall else 0.0,
        )


def summarize_py_spy_raw(path: Path, top: int = 15) -> dict[str, Any]:
    """Top frames of a ``py-spy record --format raw`` file (collapsed stacks + counts)."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    if not path.exists():
        return {"samples": 0}
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = stack.split(";")
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            incl_counts[frame] = incl_counts.get(frame, 0) + count

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        items = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(frame, round(100 * n / total, 1)) for frame, n in items]

    return {
        "samples": total,
        "self_pct": ranked(self_counts) if total else [],
        "inclusive_pct": ranked(incl_counts) if total else [],
        "raw": str(path),
    }


@contextlib.contextmanager
def py_spy_record(
    pid: int, out_dir: Path | None, name: str, gil_only: bool = False
) -> Iterator[dict[str, Any]]:
    """Samples the server with ``py-spy record`` during the block (only with --profile).

    Without ``gil_only`` every thread that is not idle is sampled, including thread-pool
    workers blocked in fsync/pread; with it only the thread holding the GIL (Python CPU)."""
    info: dict[str, Any] = {}
    if out_dir is None:
        yield info
        return
    exe = Path(sys.executable).with_name("py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{name}.collapsed.txt"
    proc = subprocess.Popen(
        [
            *(str(exe), "record", "--pid", str(pid), "--format", "raw", "--nonblocking"),
            *("--rate", "200", "-o", str(raw)),
            *(("--gil",) if gil_only else ()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.3)  # let it attach
    try:
        yield info
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        info.update(summarize_py_spy_raw(raw))
        if not info.get("samples"):
            info["error"] = err.decode(errors="replace")[-1000:]
        else:
            log(f"py-spy ({name}): top self frames")
            for frame, pct in info["self_pct"][:8]:
                log(f"  {pct:5.1f}%  {frame}")


# ---- reference runs --------------------------------------------------------------------------


def ref_dd_fsync(path: Path, size: int) -> dict[str, Any]:
    count = size // MIB
    cmd = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}", "conv=fsync"]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}, check=True
    )
    wall = time.perf_counter() - t0
    m = re.search(r"(\d+) bytes .*copied, ([\d.]+) s", proc.stderr)
    seconds = float(m.group(2)) if m else wall
    nbytes = int(m.group(1)) if m else count * MIB
    return {
        "command": " ".join(cmd),
        "bytes": nbytes,
        "seconds": seconds,
        "wall_s": wall,
        "mb_s": nbytes / seconds / MB,
        "dd_said": proc.stderr.strip().splitlines()[-1],
    }


def ref_python_hash_write_fsync(path: Path, size: int, chunk: bytes) -> dict[str, Any]:
    """What the server's write path does, minus HTTP: sha256 while writing, then fsync."""
    h = hashlib.sha256()
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        remaining = size
        view = memoryview(chunk)
        while remaining:
            part = view[: min(remaining, len(view))]
            h.update(part)
            os.write(fd, part)
            remaining -= len(part)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    return {"bytes": size, "seconds": seconds, "mb_s": size / seconds / MB}


def ref_sha256(chunk: bytes, size: int) -> dict[str, Any]:
    h = hashlib.sha256()
    view = memoryview(chunk)
    t0 = time.perf_counter()
    remaining = size
    while remaining:
        part = view[: min(remaining, len(view))]
        h.update(part)
        remaining -= len(part)
    seconds = time.perf_counter() - t0
    return {"bytes": size, "seconds": seconds, "mb_s": size / seconds / MB}


def ref_durable_small_creates(root: Path, threads: int, seconds: float) -> dict[str, Any]:
    """The disk's limit for small durable writes, as the blob store does them: write 4 KiB to
    a temporary file, fsync it, link it into a fan-out directory, unlink the temporary name,
    fsync the directory. ``threads`` workers for ``seconds``; creates per second."""
    tmp = root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    fans = [root / f"{i:02x}" for i in range(256)]
    for fan in fans:
        fan.mkdir(exist_ok=True)
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(w: int) -> None:
        try:
            work(w)
        except OSError:  # the scratch dir went away (interrupted): stop quietly
            pass

    def work(w: int) -> None:
        base = os.urandom(SMALL_SIZE)
        i = 0
        while time.perf_counter() < deadline:
            src = tmp / f"{w}-{i}"
            fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, base)
            os.fsync(fd)
            os.close(fd)
            fan = fans[(w * 7919 + i) % len(fans)]
            os.link(src, fan / f"{w}-{i}")
            os.unlink(src)
            dfd = os.open(fan, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dfd)
            os.close(dfd)
            i += 1
        counts[w] = i

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    return {"threads": threads, "creates": sum(counts), "ops_s": sum(counts) / wall}


def _read_file(path: Path) -> int:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            total += n
    return total


def ref_page_cache_read(path: Path) -> dict[str, Any]:
    _read_file(path)  # warm the page cache
    t0 = time.perf_counter()
    nbytes = _read_file(path)
    py_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open(path, "rb") as src:
        subprocess.run(["cat"], stdin=src, stdout=subprocess.DEVNULL, check=True)
    cat_s = time.perf_counter() - t0
    return {
        "bytes": nbytes,
        "python_readinto_4mib_s": py_s,
        "mb_s": nbytes / py_s / MB,
        "cat_s": cat_s,
        "cat_mb_s": nbytes / cat_s / MB,
    }


def ref_loopback(size: int) -> dict[str, Any]:
    """Raw TCP over 127.0.0.1 in 4 MiB sends (a thread receives and discards)."""
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    received = [0]

    def sink() -> None:
        conn, _ = listener.accept()
        buf = bytearray(CHUNK)
        with conn:
            while n := conn.recv_into(buf):
                received[0] += n

    t = threading.Thread(target=sink, daemon=True)
    t.start()
    chunk = memoryview(bytes(CHUNK))
    t0 = time.perf_counter()
    with socket.create_connection((HOST, port)) as s:
        remaining = size
        while remaining:
            part = chunk[: min(remaining, len(chunk))]
            s.sendall(part)
            remaining -= len(part)
    t.join()
    seconds = time.perf_counter() - t0
    listener.close()
    return {"bytes": received[0], "seconds": seconds, "mb_s": received[0] / seconds / MB}


# ---- large-object client -----------------------------------------------------------------


def put_stream(port: int, path: str, size: int, chunk: bytes) -> dict[str, Any]:
    """One PUT with Content-Length over one connection; the body is one in-memory chunk
    sent repeatedly, so the client costs a sendall() per 4 MiB."""
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    view = memoryview(chunk)
    t0 = time.perf_counter()
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(size))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    assert conn.sock is not None
    remaining = size
    send_error: OSError | None = None
    try:
        while remaining:
            part = view[: min(remaining, len(view))]
            conn.sock.sendall(part)
            remaining -= len(part)
    except OSError as exc:  # the server answered early (an error) and closed
        send_error = exc
    t_sent = time.perf_counter()
    resp = conn.getresponse()
    body = resp.read()
    t1 = time.perf_counter()
    conn.close()
    if resp.status not in (200, 201) or send_error is not None:
        raise RuntimeError(f"PUT {path}: {resp.status} {body[:500]!r} (send error: {send_error})")
    return {
        "bytes": size,
        "seconds": t1 - t0,
        "mb_s": size / (t1 - t0) / MB,
        "send_s": t_sent - t0,
        "response_wait_s": t1 - t_sent,
        "status": resp.status,
        "response": json.loads(body),
    }


def get_stream(port: int, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {resp.read()[:500]!r}")
    expected = int(resp.getheader("Content-Length") or -1)
    total = 0
    while n := resp.readinto(view):
        total += n
    t1 = time.perf_counter()
    conn.close()
    if total != expected:
        raise RuntimeError(f"GET {path}: got {total} bytes, Content-Length said {expected}")
    return {"bytes": total, "seconds": t1 - t0, "mb_s": total / (t1 - t0) / MB}


def simple_request(port: int, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {data[:500]!r}")
    return resp.status


# ---- small-operation clients ---------------------------------------------------------------


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    keys: list[str] = field(default_factory=list)

    def record(self, op: str, method: str, path: str, status: int, seconds: float) -> None:
        """One finished request (``status`` 0: it failed before a response)."""
        self.latencies.append(seconds)
        if status >= 300 or status == 0:
            self.errors += 1
            if status:
                self.first_error = self.first_error or f"{method} {path}: {status}"
        elif op == "PUT":
            self.keys.append(path.split("/objects/", 1)[1])

    def merge(self, other: OpStats) -> None:
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error
        self.keys.extend(other.keys)


def small_body(wid: int, i: int, base: bytes) -> bytes:
    """4 KiB, unique per operation (so content-addressed dedupe never kicks in)."""
    return base[:-16] + wid.to_bytes(4, "big") + i.to_bytes(12, "big")


def _small_request(op: str, bucket: str, wid: int, i: int, keys: list[str]) -> tuple[str, str]:
    if op == "PUT":
        return "PUT", f"/v1/buckets/{bucket}/objects/small/{wid}/{i}"
    key = keys[(wid * 7919 + i) % len(keys)]
    return op, f"/v1/buckets/{bucket}/objects/{key}"


def run_threads(
    port: int, op: str, bucket: str, seconds: float, concurrency: int, keys: list[str], base: bytes
) -> OpStats:
    """``concurrency`` threads, each with its own keep-alive http.client connection."""
    barrier = threading.Barrier(concurrency + 1)
    results = [OpStats() for _ in range(concurrency)]
    deadline = [0.0]

    def worker(wid: int) -> None:
        st = results[wid]
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        barrier.wait()
        i = 0
        perf = time.perf_counter
        while True:
            t = perf()
            if t >= deadline[0]:
                break
            method, path = _small_request(op, bucket, wid, i, keys)
            body = small_body(wid, i, base) if op == "PUT" else None
            try:
                conn.request(method, path, body=body)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                status = 0
                st.first_error = st.first_error or repr(exc)
                conn.close()
            st.record(op, method, path, status, perf() - t)
            i += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(concurrency)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    barrier.wait()
    for t in threads:
        t.join()
    total = OpStats()
    for r in results:
        total.merge(r)
    return total


async def _run_httpx(
    port: int, op: str, bucket: str, seconds: float, concurrency: int, keys: list[str], base: bytes
) -> OpStats:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results = [OpStats() for _ in range(concurrency)]
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", limits=limits, timeout=60.0
    ) as client:
        # Open the pool's connections before the clock starts.
        await asyncio.gather(*(client.get("/health/live") for _ in range(concurrency)))
        deadline = time.perf_counter() + seconds

        async def worker(wid: int) -> None:
            st = results[wid]
            i = 0
            perf = time.perf_counter
            while True:
                t = perf()
                if t >= deadline:
                    break
                method, path = _small_request(op, bucket, wid, i, keys)
                body = small_body(wid, i, base) if op == "PUT" else None
                try:
                    resp = await client.request(method, path, content=body)
                    status = resp.status_code
                except httpx.HTTPError as exc:
                    status = 0
                    st.first_error = st.first_error or repr(exc)
                st.record(op, method, path, status, perf() - t)
                i += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    total = OpStats()
    for r in results:
        total.merge(r)
    return total


async def _raw_exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, head: bool
) -> int:
    """One HTTP/1.1 exchange on a keep-alive connection (Content-Length bodies only)."""
    writer.write(request)
    header = await reader.readuntil(b"\r\n\r\n")
    status = int(header[9:12])
    length = 0
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value)
        elif lname == b"transfer-encoding":
            raise RuntimeError("chunked responses are not supported by the raw client")
    if length and not head and status != 304 and status != 204:
        await reader.readexactly(length)
    return status


async def _run_raw(
    port: int, op: str, bucket: str, seconds: float, concurrency: int, keys: list[str], base: bytes
) -> OpStats:
    results = [OpStats() for _ in range(concurrency)]
    conns = [await asyncio.open_connection(HOST, port) for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds
    host_header = f"Host: {HOST}:{port}\r\n".encode()

    async def worker(wid: int) -> None:
        reader, writer = conns[wid]
        st = results[wid]
        i = 0
        perf = time.perf_counter
        while True:
            t = perf()
            if t >= deadline:
                break
            method, path = _small_request(op, bucket, wid, i, keys)
            if op == "PUT":
                body = small_body(wid, i, base)
                req = (
                    f"PUT {path} HTTP/1.1\r\n".encode()
                    + host_header
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            else:
                req = f"{method} {path} HTTP/1.1\r\n".encode() + host_header + b"\r\n"
            try:
                status = await _raw_exchange(reader, writer, req, op == "HEAD")
            except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
                status = 0
                st.first_error = st.first_error or repr(exc)
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
            st.record(op, method, path, status, perf() - t)
            i += 1
        writer.close()

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    total = OpStats()
    for r in results:
        total.merge(r)
    return total


def run_small_op(
    client: str,
    port: int,
    op: str,
    bucket: str,
    seconds: float,
    concurrency: int,
    keys: list[str],
    base: bytes,
) -> OpStats:
    if client == "threads":
        return run_threads(port, op, bucket, seconds, concurrency, keys, base)
    runner = _run_httpx if client == "httpx" else _run_raw
    return asyncio.run(runner(port, op, bucket, seconds, concurrency, keys, base))


def emit_results(results: dict[str, Any], path: Path | None) -> None:
    """Print the raw numbers; also write them to ``path`` (``--json``) when given."""
    text = json.dumps(results, indent=2)
    print(text)
    if path:
        path.write_text(text)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


# ---- start-up ----------------------------------------------------------------------------------


def measure_start(
    work: Path, runs: int, env: dict[str, str], settle_s: float = 1.0
) -> dict[str, Any]:
    """``runs`` fresh starts on empty data dirs: seconds from launch to the ready file (its
    mtime, so the harness's polling does not count) and VmRSS after ``settle_s`` idle."""
    ready_s: list[float] = []
    rss_mib: list[float] = []
    cpu_s: list[float] = []
    for r in range(runs):
        server = ServerProcess(work / f"start-{r}", env=env)
        t0 = time.time()
        server.start()
        try:
            assert server.proc is not None
            ready_file = work / f"start-{r}.ready.json"
            ready_s.append(ready_file.stat().st_mtime - t0)
            # CPU the start took (read just after ready): steadier than the wall time when
            # other jobs share the cores.
            cpu_s.append(proc_cpu_seconds(server.proc.pid))
            time.sleep(settle_s)
            rss_mib.append((proc_status_kib(server.proc.pid, "VmRSS") or 0) / KIB)
        finally:
            server.stop()
    # The floor: an interpreter that only imports Tornado.
    t0 = time.perf_counter()
    bare = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tornado.web; print(open('/proc/self/status').read().split('VmRSS:')[1]"
            ".split()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    bare_s = time.perf_counter() - t0
    return {
        "runs": runs,
        "ready_s": ready_s,
        "rss_idle_mib": rss_mib,
        "cpu_to_ready_s": cpu_s,
        "cpu_to_ready_s_median": sorted(cpu_s)[(runs - 1) // 2],
        "ready_s_median": sorted(ready_s)[(runs - 1) // 2],
        "rss_idle_mib_median": sorted(rss_mib)[(runs - 1) // 2],
        "bare_tornado_s": bare_s,
        "bare_tornado_rss_mib": int(bare.stdout.strip()) / KIB,
    }


# ---- the benchmark ---------------------------------------------------------------------------


def machine_info(work: Path) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    cpu = ""
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else ""
    df = subprocess.run(
        ["df", "--output=source,fstype,size,avail,target", str(work)],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    fs = df[-1].split() if len(df) > 1 else []
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "ram_gib": round(mem_kib / MIB, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "scratch_dir": str(work),
        "scratch_fs_source": fs[0] if fs else "",
        "scratch_fs_type": fs[1] if len(fs) > 1 else "",
        "scratch_fs_mount": fs[-1] if fs else "",
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.size = int(args.size_gib * GIB) // CHUNK * CHUNK
        self.chunk = os.urandom(CHUNK)
        self.results: dict[str, Any] = {"references": {}}
        self.server: ServerProcess | None = None
        self.mongo: MongoServer | None = None
        self.pid = 0
        self.big_key: str | None = None
        self.profile_dir: Path | None = args.profile
        if self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle --
    def start_server(self) -> None:
        env = {"ZAS_LOG_LEVEL": self.args.log_level, "ZAS_HTTP_WORKERS": str(self.args.workers)}
        env.update(self.args.server_env)
        metadata_uri = None
        if self.args.backend == "mongodb":
            self.mongo = MongoServer(self.work / "mongo").start()
            metadata_uri = database_uri(self.mongo.uri, "zas_bench")
            log(f"metadata: {metadata_uri}")
        self.server = ServerProcess(self.work / "data", metadata_uri=metadata_uri, env=env)
        self.server.start()
        assert self.server.proc is not None
        self.pid = self.server.proc.pid
        ready = json.loads((self.work / "data.ready.json").read_text())
        if ready.get("pid") != self.pid:
            log(f"note: ready file pid {ready.get('pid')} != child pid {self.pid}; using it")
            self.pid = int(ready["pid"])
        self.results["server"] = {
            "url": self.server.url,
            "pid": self.pid,
            "backend": self.args.backend,
            "workers": self.args.workers,
            "metadata_uri": metadata_uri or "sqlite (default, inside the data dir)",
            "log_level": self.args.log_level,
            "rss_idle_mib": (proc_status_kib(self.pid, "VmRSS") or 0) / KIB,
        }
        log(f"server up at {self.server.url} (pid {self.pid}, {self.args.backend})")
        simple_request(self.server.port, "PUT", "/v1/buckets/bench")

    def stop(self) -> None:
        if self.server is not None:
            code = self.server.stop()
            log(f"server stopped (exit {code})")
            self.server = None
        if self.mongo is not None:
            self.mongo.stop()
            self.mongo = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    # -- phases --
    def references(self, phases: set[str]) -> None:
        """Rates that do not touch the disk's write path (those run beside each PUT)."""
        refs = self.results["references"]
        if "small" in phases:
            # asyncio's default executor (what the blob store's threads come from) has
            # min(32, nproc + 4) workers; also with one thread per client.
            for n in sorted({min(32, (os.cpu_count() or 1) + 4), self.args.concurrency}):
                r = ref_durable_small_creates(self.work / "ref" / f"creates-{n}", n, 3.0)
                refs[f"durable_4k_creates_{n}_threads"] = r
                log(f"reference: durable 4 KiB creates, {n} threads: {r['ops_s']:.0f}/s")
        if not phases & {"put", "get"}:
            return
        scratch = self.work / "ref"
        scratch.mkdir(exist_ok=True)
        if "get" in phases:
            log(f"reference: page-cache read of a {self.size / GIB:g} GiB file")
            f = scratch / "read.bin"
            ref_python_hash_write_fsync(f, self.size, self.chunk)  # written and fsynced
            refs["page_cache_read"] = ref_page_cache_read(f)  # kept: see phase_put
            log(
                f"  python readinto: {refs['page_cache_read']['mb_s']:.0f} MB/s, "
                f"cat: {refs['page_cache_read']['cat_mb_s']:.0f} MB/s"
            )
        refs["sha256_only"] = ref_sha256(self.chunk, min(self.size, GIB))
        refs["loopback_tcp"] = ref_loopback(self.size)
        log(
            f"reference: sha256 {refs['sha256_only']['mb_s']:.0f} MB/s, "
            f"TCP loopback {refs['loopback_tcp']['mb_s']:.0f} MB/s"
        )

    def big_put(self, key: str, size: int, name: str) -> dict[str, Any]:
        path = f"/v1/buckets/bench/objects/{key}"
        with (
            py_spy_record(
                self.pid, self.profile_dir, gil_only=self.args.profile_gil, name=name
            ) as prof,
            RssSampler(self.pid) as rss,
            cpu_meter(self.pid) as cpu,
        ):
            res = put_stream(self.port, path, size, self.chunk)
        res.update(rss.as_dict())
        res["cpu"] = cpu
        if self.profile_dir is not None:
            res["profile"] = prof
        return res

    def phase_start(self) -> None:
        runs = self.args.start_runs
        log(f"start-up: {runs} fresh starts, launch to ready and idle RSS")
        env = {"ZAS_LOG_LEVEL": self.args.log_level, "ZAS_HTTP_WORKERS": str(self.args.workers)}
        res = measure_start(self.work / "starts", runs, env)
        self.results["start"] = res
        log(
            f"  ready in {_rates([1000 * x for x in res['ready_s']])} ms (CPU "
            f"{_rates([1000 * x for x in res['cpu_to_ready_s']])} ms), idle RSS "
            f"{_rates(res['rss_idle_mib'])} MiB (bare Tornado: {res['bare_tornado_rss_mib']:.0f}"
            f" MiB, {1000 * res['bare_tornado_s']:.0f} ms)"
        )

    def phase_put(self) -> None:
        """Rounds of: dd conv=fsync, Python sha256+write+fsync, server PUT — interleaved, and
        every file kept until the end, so all three write to fresh blocks under the same
        conditions (this VM's disk is much faster on blocks that were just freed)."""
        refs = self.results["references"]
        scratch = self.work / "ref"
        scratch.mkdir(exist_ok=True)
        dd_runs: list[dict[str, Any]] = []
        py_runs: list[dict[str, Any]] = []
        put_runs: list[dict[str, Any]] = []
        for r in range(self.args.rounds):
            dd = ref_dd_fsync(scratch / f"dd-{r}.bin", self.size)
            dd_runs.append(dd)
            py = ref_python_hash_write_fsync(scratch / f"py-{r}.bin", self.size, self.chunk)
            py_runs.append(py)
            key = f"big/object-{r}.bin"
            res = self.big_put(key, self.size, f"put-{r + 1}")
            self.big_key = key
            put_runs.append(res)
            log(
                f"round {r + 1}/{self.args.rounds}: dd {dd['mb_s']:.0f} MB/s, python sha256+write"
                f"+fsync {py['mb_s']:.0f} MB/s, PUT {res['mb_s']:.0f} MB/s in "
                f"{res['seconds']:.2f} s (response {res['response_wait_s']:.2f} s after the last "
                f"byte), server RSS peak {res['rss_peak_sampled_mib']:.0f} MiB, server CPU "
                f"{res['cpu']['server_cpu_pct']:.0f}%, client CPU "
                f"{res['cpu']['client_cpu_pct']:.0f}%"
            )
        refs["dd_fsync"] = {**_median_run(dd_runs), "runs_mb_s": [x["mb_s"] for x in dd_runs]}
        refs["python_sha256_write_fsync"] = {
            **_median_run(py_runs),
            "runs_mb_s": [x["mb_s"] for x in py_runs],
        }
        put = dict(_median_run(put_runs))
        put["runs_mb_s"] = [x["mb_s"] for x in put_runs]
        put["rss_peak_sampled_mib"] = max(x["rss_peak_sampled_mib"] for x in put_runs)
        hwm = [x["vm_hwm_mib"] for x in put_runs if x["vm_hwm_mib"] is not None]
        put["vm_hwm_mib"] = max(hwm) if hwm else None
        put["runs"] = put_runs
        self.results["put"] = put

    def phase_get(self) -> None:
        if self.big_key is None:
            log(f"GET needs an object: uploading {self.size / GIB:g} GiB first (untimed)")
            put_stream(self.port, "/v1/buckets/bench/objects/big/object.bin", self.size, self.chunk)
            self.big_key = "big/object.bin"
        path = f"/v1/buckets/bench/objects/{self.big_key}"
        runs = []
        for n in (1, 2):
            with (
                py_spy_record(
                    self.pid, self.profile_dir, gil_only=self.args.profile_gil, name=f"get-{n}"
                ) as prof,
                RssSampler(self.pid) as rss,
                cpu_meter(self.pid) as cpu,
            ):
                res = get_stream(self.port, path)
            res.update(rss.as_dict())
            res["cpu"] = cpu
            if self.profile_dir is not None:
                res["profile"] = prof
            runs.append(res)
            log(
                f"GET run {n}: {res['mb_s']:.0f} MB/s, server CPU "
                f"{cpu['server_cpu_pct']:.0f}%, client CPU {cpu['client_cpu_pct']:.0f}%"
            )
        self.results["get"] = {"first": runs[0], "warm": runs[1]}
        simple_request(self.port, "DELETE", path)

    def phase_rss2g(self) -> None:
        log("PUT 2 GiB, sampling server RSS")
        res = self.big_put("big/two-gib.bin", 2 * GIB, "rss2g")
        self.results["rss2g"] = res
        log(
            f"  peak RSS {res['rss_peak_sampled_mib']:.0f} MiB sampled, VmHWM "
            f"{res['vm_hwm_mib']:.0f} MiB, {res['mb_s']:.0f} MB/s"
        )
        simple_request(self.port, "DELETE", "/v1/buckets/bench/objects/big/two-gib.bin")

    def phase_small(self) -> None:
        args = self.args
        simple_request(self.port, "PUT", "/v1/buckets/small")
        base = os.urandom(SMALL_SIZE)
        keys: list[str] = []
        out: dict[str, Any] = {"client": args.client, "concurrency": args.concurrency}
        for op in ("PUT", "GET", "HEAD"):
            if op != "PUT" and not keys:
                log(f"  no objects were stored: skipping {op}")
                continue
            log(
                f"small {op}: {args.concurrency} clients ({args.client}), "
                f"{args.small_ops_seconds:g} s"
            )
            with (
                py_spy_record(
                    self.pid, self.profile_dir, gil_only=self.args.profile_gil, name=f"small-{op}"
                ) as prof,
                RssSampler(self.pid) as rss,
                cpu_meter(self.pid) as cpu,
            ):
                st = run_small_op(
                    args.client,
                    self.port,
                    op,
                    "small",
                    args.small_ops_seconds,
                    args.concurrency,
                    keys,
                    base,
                )
            if op == "PUT":
                keys = st.keys
            lat = sorted(st.latencies)
            ok = len(lat) - st.errors
            res = {
                "ops": len(lat),
                "errors": st.errors,
                "first_error": st.first_error,
                "ops_s": ok / cpu["wall_s"],
                "p50_ms": 1000 * percentile(lat, 0.50),
                "p99_ms": 1000 * percentile(lat, 0.99),
                "max_ms": 1000 * lat[-1] if lat else float("nan"),
                "cpu": cpu,
                # Server CPU per successful operation: steadier than ops/s on a shared machine.
                "server_cpu_ms_per_op": 1000 * cpu["server_cpu_s"] / ok if ok else None,
                "server_user_ms_per_op": 1000 * cpu["server_user_s"] / ok if ok else None,
                **rss.as_dict(),
            }
            if self.profile_dir is not None:
                res["profile"] = prof
            out[op] = res
            log(
                f"  {res['ops_s']:.0f} ops/s, p50 {res['p50_ms']:.1f} ms, p99 "
                f"{res['p99_ms']:.1f} ms, errors {st.errors}; server CPU "
                f"{cpu['server_cpu_pct']:.0f}%, client CPU {cpu['client_cpu_pct']:.0f}%; server "
                f"CPU per op {_fmt(res['server_cpu_ms_per_op'], '.2f')} ms (user "
                f"{_fmt(res['server_user_ms_per_op'], '.2f')} ms)"
            )
        self.results["small"] = out

    def py_spy_dump(self) -> None:
        """If py-spy is installed (not a dependency), keep a dump of the server's stacks."""
        exe = Path(sys.executable).with_name("py-spy")
        if not exe.exists():
            return
        proc = subprocess.run(
            [str(exe), "dump", "--pid", str(self.pid)], capture_output=True, text=True
        )
        self.results["py_spy_dump_at_end"] = proc.stdout[-4000:]


# ---- report --------------------------------------------------------------------------------


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda x: x["mb_s"])
    return ordered[(len(ordered) - 1) // 2]


def _rates(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "n/a" if value is None else format(value, spec)


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def report(results: dict[str, Any]) -> str:
    refs = results.get("references", {})
    rows: list[list[str]] = []
    start = results.get("start")
    if start:
        rows.append(
            [
                f"launch to ready (median of {start['runs']})",
                f"{1000 * start['ready_s_median']:.0f} ms "
                f"(runs: {_rates([1000 * x for x in start['ready_s']])}; CPU "
                f"{1000 * start['cpu_to_ready_s_median']:.0f} ms)",
                f"bare `python -c 'import tornado.web'`: {1000 * start['bare_tornado_s']:.0f} ms",
                f"{start['ready_s_median'] / TARGET_READY_S:.2f} of target",
                "< 1 s",
                _met(start["ready_s_median"] < TARGET_READY_S),
            ]
        )
        rows.append(
            [
                f"idle RSS after start, {results['config'].get('workers', 1)} worker(s) "
                f"(median of {start['runs']})",
                f"{start['rss_idle_mib_median']:.1f} MiB (runs: {_rates(start['rss_idle_mib'])})",
                f"bare Tornado process: {start['bare_tornado_rss_mib']:.1f} MiB",
                f"{start['rss_idle_mib_median'] / TARGET_IDLE_RSS_MIB:.2f} of target",
                "≤ 60 MiB per worker",
                _met(start["rss_idle_mib_median"] <= TARGET_IDLE_RSS_MIB),
            ]
        )
    size_gib = results["config"]["size_gib"]
    put = results.get("put")
    if put:
        dd = refs["dd_fsync"]["mb_s"]
        ratio = put["mb_s"] / dd
        rows.append(
            [
                f"PUT {size_gib:g} GiB, single stream (median of {len(put['runs_mb_s'])})",
                f"{put['mb_s']:.0f} MB/s (runs: {_rates(put['runs_mb_s'])})",
                f"dd conv=fsync {dd:.0f} MB/s (runs: {_rates(refs['dd_fsync']['runs_mb_s'])})",
                f"{ratio:.2f}",
                "≥ 0.50 of dd",
                _met(ratio >= TARGET_PUT_RATIO),
            ]
        )
        rows.append(
            [
                f"server peak RSS during the {size_gib:g} GiB PUT",
                f"{put['rss_peak_sampled_mib']:.0f} MiB (VmHWM {_fmt(put['vm_hwm_mib'])})",
                f"idle {results.get('server', {}).get('rss_idle_mib', 0):.0f} MiB",
                "",
                "",
                "",
            ]
        )
    get = results.get("get")
    if get:
        warm = get["warm"]["mb_s"]
        pc = refs.get("page_cache_read", {}).get("mb_s")
        lo = refs.get("loopback_tcp", {}).get("mb_s")
        rows.append(
            [
                f"GET {size_gib:g} GiB, single stream, 2nd run (warm)",
                f"{warm:.0f} MB/s (1st run {get['first']['mb_s']:.0f})",
                f"page-cache read {_fmt(pc)} MB/s; TCP loopback {_fmt(lo)} MB/s",
                f"{warm / pc:.2f} of page cache; {warm / TARGET_GET_MBPS:.2f} of target"
                if pc
                else f"{warm / TARGET_GET_MBPS:.2f} of target",
                "≥ 1000 MB/s",
                _met(warm >= TARGET_GET_MBPS),
            ]
        )
    r2 = results.get("rss2g")
    if r2:
        peak = max(r2["rss_peak_sampled_mib"], r2["vm_hwm_mib"] or 0)
        rows.append(
            [
                "server peak RSS during a 2 GiB PUT",
                f"{r2['rss_peak_sampled_mib']:.0f} MiB sampled, VmHWM {_fmt(r2['vm_hwm_mib'])} MiB"
                f" (upload at {r2['mb_s']:.0f} MB/s)",
                f"idle {results.get('server', {}).get('rss_idle_mib', 0):.0f} MiB",
                f"{peak / TARGET_RSS_MIB:.2f} of target",
                "< 150 MiB",
                _met(peak < TARGET_RSS_MIB),
            ]
        )
    small = results.get("small")
    if small:
        for op in ("PUT", "GET", "HEAD"):
            s = small.get(op)
            if not s:
                continue
            rows.append(
                [
                    f"4 KiB {op}, {small['concurrency']} clients",
                    f"{s['ops_s']:.0f} ops/s (p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms)",
                    "",
                    f"{s['ops_s'] / TARGET_SMALL_OPS:.2f} of target",
                    "≥ 1000 ops/s",
                    _met(s["ops_s"] >= TARGET_SMALL_OPS and s["errors"] == 0),
                ]
            )
    head = ["measurement", "measured", "reference (same run)", "ratio", "target", "met"]
    lines = [_md_table(head, rows)]

    if refs:
        ref_rows = []
        names = {
            "dd_fsync": "dd if=/dev/zero bs=1M conv=fsync (median)",
            "python_sha256_write_fsync": "Python: sha256 + write 4 MiB chunks + fsync (median)",
            "sha256_only": "Python hashlib sha256 (1 thread)",
            "page_cache_read": "page-cache read, Python readinto 4 MiB (cat: see JSON)",
            "loopback_tcp": "TCP loopback, Python sendall/recv_into 4 MiB",
        }
        for key in sorted(k for k in refs if k.startswith("durable_4k_creates_")):
            r = refs[key]
            ref_rows.append(
                [
                    f"durable 4 KiB creates (write, fsync, link, unlink, fsync dir), "
                    f"{r['threads']} threads",
                    f"{r['ops_s']:.0f} /s",
                ]
            )
        for key, name in names.items():
            if key in refs:
                extra = ""
                if key == "page_cache_read":
                    extra = f" (cat > /dev/null: {refs[key]['cat_mb_s']:.0f} MB/s)"
                if "runs_mb_s" in refs[key]:
                    extra = f" (runs: {_rates(refs[key]['runs_mb_s'])})"
                ref_rows.append([name, f"{refs[key]['mb_s']:.0f} MB/s{extra}"])
        lines += ["", _md_table(["reference run", "rate"], ref_rows)]

    if small:
        srows = []
        for op in ("PUT", "GET", "HEAD"):
            s = small.get(op)
            if not s:
                continue
            srows.append(
                [
                    op,
                    f"{s['ops_s']:.0f}",
                    f"{s['p50_ms']:.2f}",
                    f"{s['p99_ms']:.2f}",
                    f"{s['max_ms']:.1f}",
                    f"{s['ops']}",
                    f"{s['errors']}",
                    f"{s['cpu']['server_cpu_pct']:.0f}%",
                    f"{s['cpu']['client_cpu_pct']:.0f}%",
                    _fmt(s.get("server_cpu_ms_per_op"), ".2f"),
                    f"{s['rss_peak_sampled_mib']:.0f}",
                ]
            )
        lines += [
            "",
            f"Small operations: client `{small['client']}`, {small['concurrency']} concurrent, "
            f"{results['config']['small_ops_seconds']:g} s each; client and server share "
            f"{results['machine']['nproc']} cores (CPU % is of one core).",
            "",
            _md_table(
                [
                    "op",
                    "ops/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "ops",
                    "errors",
                    "server CPU",
                    "client CPU",
                    "server CPU ms/op",
                    "server RSS MiB",
                ],
                srows,
            ),
        ]
    big_rows = []
    for name, res in (
        ("PUT (median run)", put),
        ("GET 1st", get and get["first"]),
        ("GET warm", get and get["warm"]),
        ("PUT 2 GiB", r2),
    ):
        if res:
            big_rows.append(
                [
                    name,
                    f"{res['mb_s']:.0f}",
                    f"{res['seconds']:.2f}",
                    f"{res['cpu']['server_cpu_pct']:.0f}%",
                    f"{res['cpu']['client_cpu_pct']:.0f}%",
                    f"{res['rss_peak_sampled_mib']:.0f}",
                    _fmt(res["vm_hwm_mib"]),
                ]
            )
    if big_rows:
        lines += [
            "",
            _md_table(
                [
                    "large object",
                    "MB/s",
                    "seconds",
                    "server CPU",
                    "client CPU",
                    "server RSS peak MiB",
                    "VmHWM MiB",
                ],
                big_rows,
            ),
        ]
    return "\n".join(lines)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ---- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=1.0, help="large object size (default 1)")
    p.add_argument("--small-ops-seconds", type=float, default=10.0, help="per op type (10)")
    p.add_argument("--concurrency", type=int, default=32, help="small-op clients (32)")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="PUT rounds, each beside its own dd and Python write (median reported; 3)",
    )
    p.add_argument("--backend", choices=("sqlite", "mongodb"), default="sqlite")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server worker processes (http.workers; 0 = one per CPU; default 1). RSS and CPU "
        "are summed over the supervisor and its workers.",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the scratch dir is made (server data + reference files; default: the "
        "system temp dir). Put it on the filesystem you want to measure.",
    )
    p.add_argument(
        "--only", default=",".join(PHASES), help="comma list of start,put,get,rss2g,small"
    )
    p.add_argument(
        "--client",
        choices=("threads", "httpx", "raw"),
        default="raw",
        help="small-op client: threads (http.client keep-alive, one thread per client), httpx "
        "(asyncio httpx.AsyncClient), raw (asyncio streams, minimal HTTP/1.1; default: the "
        "cheapest in CPU, so the client leaves the most of the shared cores to the server)",
    )
    p.add_argument(
        "--log-level", default="info", help="server log level (ZAS_LOG_LEVEL; default info)"
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the server with py-spy (must be in the venv) during every phase; collapsed "
        "stacks go to DIR, top frames to the log and the JSON. Costs CPU: not for the record.",
    )
    p.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL (where Python CPU goes)",
    )
    p.add_argument(
        "--start-runs", type=int, default=5, help="fresh starts in the start phase (median; 5)"
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="ZAS_NAME=VALUE",
        help="extra setting for the measured server (repeatable), e.g. ZAS_STORAGE_FSYNC=false "
        "to profile the CPU cost of a write without the disk: not for the record",
    )
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    p.add_argument("--keep", action="store_true", help="keep the scratch dir (for debugging)")
    args = p.parse_args(argv)
    args.phases = {x.strip() for x in args.only.split(",") if x.strip()}
    bad = [item for item in args.server_env if "=" not in item]
    if bad:
        p.error(f"--server-env wants ZAS_NAME=VALUE, not {bad[0]!r}")
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    unknown = args.phases - set(PHASES)
    if unknown:
        p.error(f"--only: unknown phase(s) {', '.join(sorted(unknown))}; use {','.join(PHASES)}")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(SERVER_BIN).exists():
        print(f"{SERVER_BIN} not found: run with the project's .venv/bin/python", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="zas-bench-", dir=args.work_dir))
    bench = Bench(args, work)
    results = bench.results
    results["config"] = {
        "size_gib": bench.size / GIB,
        "rounds": args.rounds,
        "small_ops_seconds": args.small_ops_seconds,
        "concurrency": args.concurrency,
        "backend": args.backend,
        "phases": sorted(args.phases),
        "client": args.client,
        "workers": args.workers,
        "server_env": args.server_env,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    results["machine"] = machine_info(work)
    log(f"scratch dir {work} ({results['machine']['scratch_fs_type']})")
    phases: dict[str, Callable[[], None]] = {
        "start": bench.phase_start,
        "put": bench.phase_put,
        "get": bench.phase_get,
        "rss2g": bench.phase_rss2g,
        "small": bench.phase_small,
    }
    code = 0
    try:
        if "start" in args.phases:  # fresh servers of its own, before the measured one
            phases["start"]()
        bench.references(args.phases)
        if args.phases - {"start"}:
            bench.start_server()
            for name in PHASES:
                if name in args.phases and name != "start":
                    phases[name]()
            bench.py_spy_dump()
            assert bench.server is not None
            results["server"]["log"] = str(bench.server.log_path)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        code = 130
    except Exception as exc:
        log(f"benchmark failed: {exc!r}")
        if bench.server is not None and bench.server.log_path.exists():
            tail = bench.server.log_path.read_text()[-3000:]
            log(f"server log tail:\n{tail}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a 2nd Ctrl-C must not skip the cleanup
        bench.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if code == 0 or any(k in results for k in PHASES):
        print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"raw numbers: {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
