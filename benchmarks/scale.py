#!/usr/bin/env python3
"""Scale curves of issue 23: how the store behaves as objects, sizes, connections and workers
grow. Tables (Markdown, printed; ``--json OUT`` for the raw numbers) and PNG plots
(matplotlib, Agg) written to ``benchmarks/scale-<phase>.png``. Not part of CI; it never
asserts. See benchmarks/README.md.

* ``objects``      LIST page (1,000 keys: ``/v1`` ``limit`` and S3 ``max-keys``) p50/p99, HEAD
                   and 4 KiB PUT latency at 10k, 100k and 1M objects in one bucket, on sqlite and
                   on the MongoDB-wire ``nx-27017``. Records are seeded in bulk through the
                   metadata backend's own code in this process (not 1M HTTP PUTs); every
                   measurement goes through HTTP to the running server.
* ``sizes``        PUT/GET throughput and the server's peak RSS for 1 MiB … 10 GiB through
                   ``/v1`` (one PUT), S3 multipart (boto3 transfer manager) and an OCI chunked
                   push (POST, PATCH chunks, PUT ?digest=); every GET is checked by sha256; a
                   fresh server and data dir for each size and path (so the disk is freed).
* ``connections``  10,000 idle keep-alive connections held open while 32, then 1,000 active
                   clients run HEAD: p50/p99, errors, server RSS and descriptors.
* ``workers``      4 KiB PUT/GET/HEAD at ``http.workers`` 1 and 2 (``run.py``'s small phase).

    .venv/bin/python benchmarks/scale.py [--only objects,sizes,connections,workers]
        [--counts 10000,100000,1000000] [--backends sqlite,mongodb] [--sizes-mib 1,16,…]
        [--json OUT] [--plot-from A.json B.json …]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.oci import digest_of, request, send_body
from benchmarks.run import (
    CHUNK,
    HOST,
    KIB,
    MB,
    MIB,
    Bench,
    RssSampler,
    _md_table,
    _raise_interrupt,
    _raw_exchange,
    cpu_meter,
    get_stream,
    log,
    machine_info,
    percentile,
    proc_status_kib,
    put_stream,
    simple_request,
)
from benchmarks.run import parse_args as run_parse_args
from benchmarks.s3 import RepeatingReader
from tests.fixtures.mongo import MongoServer, database_uri
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import SERVER_BIN, ServerProcess
from zot_artifact_store.metadata import ObjectRecord, create_metadata_store

HERE = Path(__file__).resolve().parent
PHASES = ("objects", "sizes", "connections", "workers")
BUCKET = "scale"
REPO = "scale/app"
PATHS = ("v1", "s3-multipart", "oci-chunked")
OCI_CHUNK = 64 * MIB
S3_PART = 64 * MIB
# The server caps connections per source address (http.maxConnectionsPerAddress, 256 by
# default); loopback answers on all of 127.0.0.0/8, so clients spread over source addresses
# the way distinct hosts would, and the server runs with its default limits.
PER_ADDRESS = 200


# ---- a server (and its MongoDB-wire metadata server) in a scratch dir ------------------------


class Scratch:
    """Servers started in ``work``; :meth:`close` stops them all (also on Ctrl-C)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.servers: list[ServerProcess] = []
        self.mongos: list[MongoServer] = []

    def server(
        self, name: str, *, backend: str = "sqlite", env: dict[str, str] | None = None
    ) -> tuple[ServerProcess, int, str]:
        """A fresh server on ``work/name``: (process, pid, metadata URI)."""
        data = self.work / name
        uri = f"sqlite:///{data / 'metadata.db'}"
        metadata_uri = None
        if backend == "mongodb":
            mongo = MongoServer(self.work / f"{name}-mongo").start()
            self.mongos.append(mongo)
            metadata_uri = uri = database_uri(mongo.uri, "zas_scale")
        server = ServerProcess(
            data, metadata_uri=metadata_uri, env={"ZAS_LOG_LEVEL": "warning", **(env or {})}
        )
        self.servers.append(server)
        server.start(timeout=60)
        assert server.proc is not None
        ready = json.loads((self.work / f"{name}.ready.json").read_text())
        return server, int(ready.get("pid") or server.proc.pid), uri

    def drop(self, server: ServerProcess) -> None:
        """Stop ``server`` (and a MongoDB-wire server started with it); remove its files."""
        server.stop()
        self.servers.remove(server)
        for mongo in self.mongos:
            mongo.stop()
        self.mongos.clear()
        name = server.data_dir.name
        for path in self.work.glob(f"{name}*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        for server in list(self.servers):
            server.stop()
        for mongo in self.mongos:
            mongo.stop()
        self.servers.clear()
        self.mongos.clear()


def rss_mib(pid: int) -> float:
    return (proc_status_kib(pid, "VmRSS") or 0) / KIB


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def lat_summary(latencies: list[float], errors: int, wall: float) -> dict[str, Any]:
    lat = sorted(latencies)
    return {
        "requests": len(lat),
        "errors": errors,
        "ops_s": (len(lat) - errors) / wall if wall else 0.0,
        "p50_ms": 1000 * percentile(lat, 0.50),
        "p99_ms": 1000 * percentile(lat, 0.99),
        "max_ms": 1000 * lat[-1] if lat else float("nan"),
    }


# ---- concurrent keep-alive clients (run.py's raw HTTP/1.1 exchange) ---------------------------


def source_address(group: int, n: int) -> str:
    """The ``n``-th client's source address in ``group`` (PER_ADDRESS clients each)."""
    a = n // PER_ADDRESS
    return f"127.{group}.{a // 250}.{a % 250 + 1}"


async def open_clients(
    port: int, count: int, group: int, parallel: int = 256
) -> tuple[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]], int, str | None]:
    """``count`` keep-alive connections, each having answered one ``GET /health/live``."""
    sem = asyncio.Semaphore(parallel)
    req = f"GET /health/live HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    errors: list[str] = []

    async def one(n: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, port, local_addr=(source_address(group, n), 0)),
                    30,
                )
                status = await asyncio.wait_for(_raw_exchange(reader, writer, req, False), 30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                errors.append(repr(exc))
                return None
            if status != 200:
                errors.append(f"status {status}")
            return reader, writer

    conns = await asyncio.gather(*(one(n) for n in range(count)))
    return [c for c in conns if c is not None], len(errors), errors[0] if errors else None


async def drive(
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    make: Callable[[int, int], bytes],
    head: bool,
    seconds: float,
) -> dict[str, Any]:
    """Each connection sends ``make(client, i)`` requests back to back for ``seconds``."""
    latencies: list[float] = []
    errors = [0]
    first: list[str] = []
    deadline = time.perf_counter() + seconds

    async def worker(wid: int) -> None:
        reader, writer = conns[wid]
        i = 0
        perf = time.perf_counter
        while (t := perf()) < deadline:
            try:
                status = await asyncio.wait_for(
                    _raw_exchange(reader, writer, make(wid, i), head), 60
                )
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                status = 0
                first.append(repr(exc))
            latencies.append(perf() - t)
            if status == 0 or status >= 300:
                errors[0] += 1
                first.append(f"status {status}")
                if status == 0:
                    return  # the connection is gone
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(len(conns))))
    out = lat_summary(latencies, errors[0], time.perf_counter() - t0)
    out["clients"] = len(conns)
    out["first_error"] = first[0] if first else None
    return out


def close_all(conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in conns:
        writer.close()


def head_request(port: int, path: str) -> bytes:
    return f"HEAD {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()


def put_request(port: int, path: str, body: bytes) -> bytes:
    head = f"PUT {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


# ---- objects ---------------------------------------------------------------------------------


def object_key(i: int) -> str:
    """Seeded keys spread over 4,096 prefixes (inserted out of key order, like real names)."""
    return f"{(i * 2654435761) % 4096:03x}/o{i:08d}"


async def seed(
    uri: str, template: ObjectRecord, start: int, stop: int, deadline: float, batch: int = 5000
) -> int:
    """Object records ``start`` … ``stop`` - 1 through the backend's own code, in bulk; stops at
    ``deadline`` (monotonic). Returns how far it got."""
    store = create_metadata_store(uri)
    await store.open()
    try:
        now = time.time()
        for lo in range(start, stop, batch):
            if time.monotonic() > deadline:
                return lo
            records = [
                ObjectRecord(
                    bucket=BUCKET,
                    key=object_key(i),
                    digest=template.digest,
                    size=template.size,
                    etag=template.etag,
                    content_type=template.content_type,
                    created_at=now,
                    updated_at=now,
                )
                for i in range(lo, min(stop, lo + batch))
            ]
            if uri.startswith("sqlite:"):
                from zot_artifact_store.metadata.sqlite import SqliteMetadataStore, _transaction

                def bulk(conn: Any, recs: list[ObjectRecord] = records) -> None:
                    with _transaction(conn):  # one transaction per batch, the PUT's own rows
                        for rec in recs:
                            SqliteMetadataStore._write_current(conn, rec, None)

                await store._run(bulk)  # type: ignore[attr-defined]
            else:
                from zot_artifact_store.metadata.base import blob_digests
                from zot_artifact_store.metadata.mongodb import _encode

                docs = [_encode(r, blobs=sorted(blob_digests(r))) for r in records]
                await store._c("objects").insert_many(docs, ordered=False)  # type: ignore[attr-defined]
        if uri.startswith("sqlite:"):
            # Fold the seeded rows from the WAL into the database and read the table once, so
            # the measurement sees a steady store (a checkpointed file in the page cache), not
            # the seeding's aftermath.
            await store._run(  # type: ignore[attr-defined]
                lambda conn: (
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(),
                    conn.execute("SELECT count(*), sum(length(doc)) FROM objects").fetchall(),
                )
            )
        return stop
    finally:
        await store.close()


def list_pages(
    port: int, starts: list[str], pages: int, budget_s: float, s3: bool
) -> dict[str, Any]:
    """Up to ``pages`` LIST pages of 1,000 keys (fewer if ``budget_s`` runs out, at least 5),
    each after a random seeded key with 1,000 keys after it, sequentially over one keep-alive
    connection."""
    rng = random.Random(len(starts))
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    latencies: list[float] = []
    errors = 0
    t_end = time.perf_counter() + budget_s
    try:
        for n in range(pages):
            if n >= 5 and time.perf_counter() > t_end:
                break
            start = rng.choice(starts)
            if s3:
                q = {"list-type": "2", "max-keys": "1000", "start-after": start}
                path = f"/{BUCKET}?" + urllib.parse.urlencode(q)
            else:
                q = {"limit": "1000", "start_after": start}
                path = f"/v1/buckets/{BUCKET}/objects?" + urllib.parse.urlencode(q)
            t = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            latencies.append(time.perf_counter() - t)
            keys = body.count(b"<Key>") if s3 else len(json.loads(body)["objects"])
            if resp.status != 200 or keys != 1000:
                errors += 1
    finally:
        conn.close()
    return lat_summary(latencies, errors, sum(latencies))


async def object_ops(port: int, count: int, seconds: float, clients: int) -> dict[str, Any]:
    rng = random.Random(count + 1)
    body = os.urandom(4 * KIB)
    out: dict[str, Any] = {}
    conns = [await asyncio.open_connection(HOST, port) for _ in range(clients)]
    try:
        keys = [object_key(rng.randrange(count)) for _ in range(4096)]
        out["HEAD"] = await drive(
            conns,
            lambda w, i: head_request(
                port, f"/v1/buckets/{BUCKET}/objects/{keys[(w * 977 + i) % 4096]}"
            ),
            True,
            seconds,
        )

        def put(w: int, i: int) -> bytes:
            unique = body[:-16] + w.to_bytes(4, "big") + i.to_bytes(12, "big")
            return put_request(port, f"/v1/buckets/{BUCKET}/objects/new-{count}/{w}/{i}", unique)

        out["PUT"] = await drive(conns, put, False, seconds)
    finally:
        close_all(conns)
    return out


def phase_objects(scratch: Scratch, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend in args.backends:
        # The periodic garbage collection (its first run ten minutes after start) reads every
        # object's digests: at 1M objects it is a load of its own, not what is measured here.
        server, pid, uri = scratch.server(
            f"objects-{backend}", backend=backend, env={"ZAS_STORAGE_GC": "false"}
        )
        res: dict[str, Any] = {"metadata_uri": uri, "levels": [], "notes": []}
        out[backend] = res
        try:
            simple_request(server.port, "PUT", f"/v1/buckets/{BUCKET}")
            put = put_stream(
                server.port, f"/v1/buckets/{BUCKET}/objects/template", 4 * KIB, os.urandom(4 * KIB)
            )
            r = put["response"]
            template = ObjectRecord(
                bucket=BUCKET,
                key="template",
                digest=r["digest"],
                size=r["size"],
                etag=r.get("etag", "").strip('"') or r["digest"][7:39],
                content_type="application/octet-stream",
                created_at=0.0,
                updated_at=0.0,
            )
            deadline = time.monotonic() + args.seed_budget
            seeded = 0
            for target in args.counts:
                t0 = time.perf_counter()
                reached = asyncio.run(seed(uri, template, seeded, target, deadline))
                took = time.perf_counter() - t0
                log(f"{backend}: seeded {seeded:,} -> {reached:,} records in {took:.1f} s")
                res["notes"].append(f"seeded {seeded}->{reached} in {took:.1f} s")
                if reached < target:
                    res["notes"].append(
                        f"stopped seeding at {reached:,} of {target:,}: seed budget "
                        f"{args.seed_budget:g} s spent"
                    )
                    log(f"{backend}: seed budget spent at {reached:,} of {target:,}")
                if reached == seeded:
                    break
                level = measure_objects(server.port, pid, reached, args)
                level["seed_s"] = took
                level["seed_rate_per_s"] = (reached - seeded) / took if took else None
                seeded = reached
                res["levels"].append(level)
                if reached < target:
                    break
        finally:
            scratch.drop(server)
    return out


def measure_objects(port: int, pid: int, count: int, args: argparse.Namespace) -> dict[str, Any]:
    level: dict[str, Any] = {"objects": count, "load_before": load_average()}
    starts = sorted(object_key(i) for i in range(count))[: count - 1000]
    pages, budget = args.list_pages, args.list_seconds
    list_pages(port, starts, 5, 0, s3=False)  # warm the page cache and the connection
    for name, s3 in (("list_v1", False), ("list_s3", True)):
        with cpu_meter(pid) as cpu:
            level[name] = list_pages(port, starts, pages, budget, s3=s3)
        # Server CPU per page: steadier than the latency when neighbours share the cores.
        level[name]["server_cpu_ms_per_page"] = 1000 * cpu["server_cpu_s"] / level[name]["requests"]
    ops = asyncio.run(object_ops(port, count, args.op_seconds, args.op_clients))
    level.update(ops)
    level["rss_mib"] = rss_mib(pid)
    level["load_after"] = load_average()
    log(
        f"  {count:,} objects: LIST /v1 p50 {level['list_v1']['p50_ms']:.1f} p99 "
        f"{level['list_v1']['p99_ms']:.1f} ms, S3 p50 {level['list_s3']['p50_ms']:.1f} p99 "
        f"{level['list_s3']['p99_ms']:.1f} ms; HEAD p50 {ops['HEAD']['p50_ms']:.1f} p99 "
        f"{ops['HEAD']['p99_ms']:.1f} ms ({ops['HEAD']['ops_s']:.0f}/s); PUT p50 "
        f"{ops['PUT']['p50_ms']:.1f} p99 {ops['PUT']['p99_ms']:.1f} ms "
        f"({ops['PUT']['ops_s']:.0f}/s); load {level['load_after'][0]}"
    )
    return level


# ---- sizes -----------------------------------------------------------------------------------


def get_sha256(port: int, path: str) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status}")
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := resp.readinto(view):
        h.update(view[:n])
    conn.close()
    return "sha256:" + h.hexdigest()


def upload(path_kind: str, port: int, size: int, chunk: bytes) -> Callable[[], str]:
    """The set-up of one upload way (bucket, client; untimed); returns the timed transfer of
    ``size`` bytes (``chunk`` repeated), which returns the path to GET it back."""
    if path_kind == "v1":
        simple_request(port, "PUT", f"/v1/buckets/{BUCKET}")
        path = f"/v1/buckets/{BUCKET}/objects/big.bin"

        def v1_put() -> str:
            put_stream(port, path, size, chunk)
            return path

        return v1_put
    if path_kind == "s3-multipart":
        from boto3.s3.transfer import TransferConfig

        simple_request(port, "PUT", f"/v1/buckets/{BUCKET}")
        client = s3_client(f"http://{HOST}:{port}")
        client.head_bucket(Bucket=BUCKET)  # loads botocore's model before the clock starts
        config = TransferConfig(
            multipart_threshold=8 * MIB,
            multipart_chunksize=min(S3_PART, max(8 * MIB, size // 4)),
            max_concurrency=4,
        )

        def s3_upload() -> str:
            reader = RepeatingReader(size)
            reader.block = chunk
            client.upload_fileobj(reader, BUCKET, "big.bin", Config=config)
            return f"/{BUCKET}/big.bin"

        return s3_upload

    def oci_push() -> str:
        """POST a session, PATCH chunks with Content-Range, PUT ?digest=."""
        location = request(port, "POST", f"/v2/{REPO}/blobs/uploads/")["location"]
        offset = 0
        while offset < size:
            n = min(OCI_CHUNK, size - offset)
            _, headers = send_body(
                port, "PATCH", location, n, chunk, {"Content-Range": f"{offset}-{offset + n - 1}"}
            )
            location = headers["location"]
            offset += n
        sep = "&" if "?" in location else "?"
        request(port, "PUT", f"{location}{sep}digest={digest}")
        return f"/v2/{REPO}/blobs/{digest}"

    digest = digest_of(chunk, size)
    return oci_push


def transfer_details(path_kind: str, size: int) -> dict[str, Any]:
    if path_kind == "s3-multipart":
        part = min(S3_PART, max(8 * MIB, size // 4))
        return {"parts": 1 if size < 8 * MIB else -(-size // part), "part_size": part}
    if path_kind == "oci-chunked":
        return {"chunks": -(-size // OCI_CHUNK), "chunk_size": OCI_CHUNK}
    return {"requests": 1}


def phase_sizes(scratch: Scratch, args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for size_mib in args.sizes_mib:
        size = int(size_mib * MIB)
        chunk = os.urandom(CHUNK)
        t = time.perf_counter()
        expected = digest_of(chunk, size)
        log(f"{size_mib:g} MiB: expected {expected[:19]}… ({time.perf_counter() - t:.1f} s)")
        for kind in args.paths:
            server, pid, _ = scratch.server(f"size-{size_mib:g}-{kind}")
            row: dict[str, Any] = {"size_mib": size_mib, "path": kind, "load": load_average()}
            try:
                time.sleep(1.0)
                row["rss_idle_mib"] = rss_mib(pid)
                transfer = upload(kind, server.port, size, chunk)
                with RssSampler(pid) as rss:
                    t0 = time.perf_counter()
                    get_path = transfer()
                    put_s = time.perf_counter() - t0
                row.update(transfer_details(kind, size), put_s=put_s, put_mb_s=size / put_s / MB)
                row["put_rss_peak_mib"] = rss.as_dict()["rss_peak_sampled_mib"]
                with RssSampler(pid) as rss:
                    got = get_stream(server.port, get_path)
                row.update(get_s=got["seconds"], get_mb_s=got["mb_s"])
                row["get_rss_peak_mib"] = rss.as_dict()["rss_peak_sampled_mib"]
                actual = get_sha256(server.port, get_path)
                row["sha256_ok"] = actual == expected
                if actual != expected:
                    log(f"  sha256 MISMATCH: {actual} != {expected}")
                log(
                    f"  {kind}: PUT {row['put_mb_s']:.0f} MB/s, GET {row['get_mb_s']:.0f} MB/s, RSS"
                    f" idle {row['rss_idle_mib']:.0f} / PUT peak {row['put_rss_peak_mib']:.0f} / "
                    f"GET peak {row['get_rss_peak_mib']:.0f} MiB, sha256 "
                    f"{'ok' if row['sha256_ok'] else 'WRONG'}; load {row['load'][0]}"
                )
            except Exception as exc:  # one path failing must not lose the others' numbers
                row["error"] = repr(exc)[:500]
                log(f"  {kind}: failed: {exc!r}")
            finally:
                scratch.drop(server)
            rows.append(row)
    return {"rows": rows}


# ---- connections -----------------------------------------------------------------------------


def raise_nofile(want: int) -> dict[str, int]:
    """Raise this process's soft RLIMIT_NOFILE (the server child inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(hard, max(soft, want)) if hard != resource.RLIM_INFINITY else max(soft, want)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return {"soft_before": soft, "soft": new, "hard": hard}


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


async def connections(port: int, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"idle_target": args.idle, "rss_idle_mib": rss_mib(pid)}
    out["server_fds_before"] = fd_count(pid)
    t0 = time.perf_counter()
    idle, errors, first = await asyncio.wait_for(
        open_clients(port, args.idle, 1), args.phase_timeout
    )
    out.update(
        idle_open=len(idle),
        idle_open_errors=errors,
        idle_first_error=first,
        idle_open_s=time.perf_counter() - t0,
        rss_with_idle_mib=rss_mib(pid),
        server_fds_with_idle=fd_count(pid),
    )
    log(
        f"{len(idle):,} idle keep-alive connections in {out['idle_open_s']:.1f} s ({errors} "
        f"errors{', ' + first if first else ''}); server RSS {out['rss_with_idle_mib']:.0f} MiB, "
        f"{out['server_fds_with_idle']:,} fds"
    )
    try:
        target = f"/v1/buckets/{BUCKET}/objects/small.bin"
        for group, active in ((2, 32), (3, args.active)):
            conns, errs, first = await asyncio.wait_for(
                open_clients(port, active, group), args.phase_timeout
            )
            with RssSampler(pid) as rss:
                res = await asyncio.wait_for(
                    drive(conns, lambda w, i: head_request(port, target), True, args.op_seconds),
                    args.op_seconds + args.phase_timeout,
                )
            close_all(conns)
            res.update(connect_errors=errs, connect_first_error=first, load=load_average())
            res["rss_peak_mib"] = rss.as_dict()["rss_peak_sampled_mib"]
            out[f"active_{active}"] = res
            log(
                f"  {active} active HEAD clients beside them: {res['ops_s']:.0f}/s, p50 "
                f"{res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, errors {res['errors']} "
                f"(+{errs} connect), RSS peak {res['rss_peak_mib']:.0f} MiB; load {res['load'][0]}"
            )
            await asyncio.sleep(0.5)
        # Are the idle connections still served? One more request on each.
        req = f"GET /health/live HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
        sem = asyncio.Semaphore(256)

        async def check(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> bool:
            async with sem:
                try:
                    return await asyncio.wait_for(_raw_exchange(*conn, req, False), 30) == 200
                except (TimeoutError, OSError, asyncio.IncompleteReadError):
                    return False

        ok = await asyncio.wait_for(asyncio.gather(*(check(c) for c in idle)), args.phase_timeout)
        out["idle_still_served"] = sum(ok)
        out["idle_held_s"] = time.perf_counter() - t0
        log(f"  afterwards {sum(ok):,} of {len(idle):,} idle connections answered a request")
    finally:
        close_all(idle)
    return out


def phase_connections(scratch: Scratch, args: argparse.Namespace) -> dict[str, Any]:
    limits = raise_nofile(args.idle + args.active + 512)
    log(f"RLIMIT_NOFILE {limits}")
    server, pid, _ = scratch.server("connections")
    try:
        simple_request(server.port, "PUT", f"/v1/buckets/{BUCKET}")
        simple_request(server.port, "PUT", f"/v1/buckets/{BUCKET}/objects/small.bin", b"x" * 4096)
        time.sleep(1.0)
        res = asyncio.run(connections(server.port, pid, args))
        res["rlimit_nofile"] = limits
        res["server_nofile"] = (
            Path(f"/proc/{pid}/limits").read_text().split("Max open files")[1].split()[:2]
        )
        return res
    finally:
        scratch.drop(server)


# ---- workers ---------------------------------------------------------------------------------


def phase_workers(scratch: Scratch, args: argparse.Namespace) -> dict[str, Any]:
    """run.py's ``small`` phase (raw clients, 32 connections) at 1 and 2 workers."""
    out: dict[str, Any] = {}
    for workers in (1, 2):
        work = scratch.work / f"workers-{workers}"
        work.mkdir()
        bench = Bench(
            run_parse_args(
                [
                    "--only",
                    "small",
                    "--workers",
                    str(workers),
                    "--log-level",
                    "warning",
                    "--small-ops-seconds",
                    str(args.small_seconds),
                ]
            ),
            work,
        )
        try:
            bench.start_server()
            load = load_average()
            bench.phase_small()
            out[str(workers)] = {
                **bench.results["small"],
                "load": load,
                "load_after": load_average(),
            }
        finally:
            bench.stop()
            shutil.rmtree(work, ignore_errors=True)
    return out


# ---- report ----------------------------------------------------------------------------------


def _f(value: Any, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def _p50_p99(r: dict[str, Any]) -> str:
    return f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}"


def report(results: dict[str, Any]) -> str:
    parts: list[str] = []
    if "objects" in results:
        rows = []
        for backend, res in results["objects"].items():
            for lv in res["levels"]:
                errors = sum(lv[k]["errors"] for k in ("list_v1", "list_s3", "HEAD", "PUT"))
                rows.append(
                    [
                        backend,
                        f"{lv['objects']:,}",
                        _p50_p99(lv["list_v1"]),
                        _p50_p99(lv["list_s3"]),
                        "{} / {}".format(
                            *(
                                _f(lv[k].get("server_cpu_ms_per_page"))
                                for k in ("list_v1", "list_s3")
                            )
                        ),
                        f"{_p50_p99(lv['HEAD'])} ({lv['HEAD']['ops_s']:.0f}/s)",
                        f"{_p50_p99(lv['PUT'])} ({lv['PUT']['ops_s']:.0f}/s)",
                        str(errors),
                        f"{lv['seed_s']:.0f} s",
                        f"{lv['load_before'][0]} to {lv['load_after'][0]}",
                    ]
                )
        parts.append("### Object count\n")
        parts.append(
            _md_table(
                [
                    "backend",
                    "objects",
                    "LIST /v1 p50 / p99 ms",
                    "LIST S3 p50 / p99 ms",
                    "server CPU per page /v1 / S3 ms",
                    "HEAD p50 / p99 ms",
                    "4 KiB PUT p50 / p99 ms",
                    "errors",
                    "seeding",
                    "load",
                ],
                rows,
            )
        )
        for backend, res in results["objects"].items():
            for note in res["notes"]:
                if note.startswith("stopped"):
                    parts.append(f"\n{backend}: {note}")
    if "sizes" in results:
        rows = []
        for r in results["sizes"]["rows"]:
            rows.append(
                [
                    f"{r['size_mib']:g} MiB",
                    r["path"],
                    _f(r.get("put_mb_s"), ".0f"),
                    _f(r.get("get_mb_s"), ".0f"),
                    _f(r.get("rss_idle_mib"), ".0f"),
                    _f(r.get("put_rss_peak_mib"), ".0f"),
                    _f(r.get("get_rss_peak_mib"), ".0f"),
                    {True: "ok", False: "WRONG", None: r.get("error", "—")}[r.get("sha256_ok")],
                    str(r["load"][0]),
                ]
            )
        parts.append("\n### Object size\n")
        parts.append(
            _md_table(
                [
                    "size",
                    "path",
                    "PUT MB/s",
                    "GET MB/s",
                    "RSS idle MiB",
                    "RSS peak PUT MiB",
                    "RSS peak GET MiB",
                    "sha256",
                    "load",
                ],
                rows,
            )
        )
    if "connections" in results:
        c = results["connections"]
        rows = [
            [
                f"{c['idle_open']:,} idle + {r['clients']:,} active",
                f"{r['ops_s']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['errors']} (+{r['connect_errors']} connect)",
                f"{r['rss_peak_mib']:.0f}",
                str(r["load"][0]),
            ]
            for r in (c[k] for k in c if k.startswith("active_"))
        ]
        parts.append("\n### Connections\n")
        parts.append(
            f"{c['idle_open']:,} of {c['idle_target']:,} idle keep-alive connections opened in "
            f"{c['idle_open_s']:.1f} s ({c['idle_open_errors']} errors); server RSS "
            f"{c['rss_idle_mib']:.0f} MiB before, {c['rss_with_idle_mib']:.0f} MiB with them "
            f"({c['server_fds_with_idle']:,} descriptors); {c.get('idle_still_served', '?'):,} "
            f"answered a request after {c.get('idle_held_s', 0):.0f} s.\n"
        )
        parts.append(
            _md_table(
                ["load", "HEAD/s", "p50 ms", "p99 ms", "errors", "server RSS peak MiB", "load avg"],
                rows,
            )
        )
    if "workers" in results:
        w = results["workers"]
        rows = []
        for op in ("PUT", "GET", "HEAD"):
            one, two = w.get("1", {}).get(op), w.get("2", {}).get(op)
            if not one or not two:
                continue
            rows.append(
                [
                    f"4 KiB {op}",
                    f"{one['ops_s']:.0f} (p99 {one['p99_ms']:.0f} ms)",
                    f"{two['ops_s']:.0f} (p99 {two['p99_ms']:.0f} ms)",
                    f"{two['ops_s'] / one['ops_s']:.2f}x",
                ]
            )
        parts.append("\n### Workers\n")
        parts.append(_md_table(["operation", "1 worker ops/s", "2 workers ops/s", "2 / 1"], rows))
    return "\n".join(parts)


# ---- plots -----------------------------------------------------------------------------------


def log_axes(ax: Any, xlabel: str, ylabel: str, title: str, log_y: bool = True) -> None:
    """A curve panel: log x (and y), labels, legend, grid."""
    ax.set(xscale="log", yscale="log" if log_y else "linear")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=6)
    ax.grid(True, which="both", alpha=0.3)


def plot(results: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"scale-{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if "objects" in results:
        fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 5.2))
        # One colour per backend (run), a marker per request kind, solid p50 / dashed p99.
        for n, (backend, res) in enumerate(results["objects"].items()):
            xs = [lv["objects"] for lv in res["levels"]]
            color = f"C{n}"
            for ax, key, label, marker in (
                (ax1, "list_v1", "LIST /v1", "o"),
                (ax1, "list_s3", "LIST S3", "s"),
                (ax2, "HEAD", "HEAD", "o"),
                (ax2, "PUT", "PUT", "^"),
            ):
                for q, ls in (("p50", "-"), ("p99", "--")):
                    ys = [lv[key][f"{q}_ms"] for lv in res["levels"]]
                    ax.plot(xs, ys, ls, color=color, marker=marker, label=f"{backend}: {label} {q}")
                if key.startswith("list"):
                    ys = [lv[key].get("server_cpu_ms_per_page") for lv in res["levels"]]
                    ax3.plot(xs, ys, "-", color=color, marker=marker, label=f"{backend}: {label}")
        ax1.axhline(100, color="grey", lw=0.8, ls=":")
        count = "objects in the bucket"
        log_axes(ax1, count, "ms", "LIST page of 1,000 keys")
        log_axes(ax2, count, "ms", "HEAD and 4 KiB PUT (concurrent clients)")
        log_axes(ax3, count, "ms", "server CPU per LIST page")
        save(fig, "objects")
    if "sizes" in results:
        rows = [r for r in results["sizes"]["rows"] if "put_mb_s" in r]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for kind in PATHS:
            mine = [r for r in rows if r["path"] == kind]
            if not mine:
                continue
            xs = [r["size_mib"] for r in mine]
            ax1.plot(xs, [r["put_mb_s"] for r in mine], "-o", label=f"{kind} PUT")
            ax1.plot(xs, [r["get_mb_s"] for r in mine], "--o", label=f"{kind} GET")
            ax2.plot(xs, [r["put_rss_peak_mib"] for r in mine], "-o", label=f"{kind} PUT")
            ax2.plot(xs, [r["get_rss_peak_mib"] for r in mine], "--o", label=f"{kind} GET")
        log_axes(ax1, "object size (MiB)", "MB/s", "throughput, one transfer")
        log_axes(ax2, "object size (MiB)", "MiB", "server peak RSS during the transfer", False)
        ax2.set_ylim(0, None)
        save(fig, "sizes")
    if "connections" in results:
        c = results["connections"]
        runs = [c[k] for k in c if k.startswith("active_")]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
        labels = [f"{r['clients']} active" for r in runs]
        xs = range(len(runs))
        ax1.bar([x - 0.2 for x in xs], [r["p50_ms"] for r in runs], 0.4, label="p50")
        ax1.bar([x + 0.2 for x in xs], [r["p99_ms"] for r in runs], 0.4, label="p99")
        ax1.axhline(100, color="grey", lw=0.8, ls=":")
        ax1.set_xticks(list(xs), labels)
        ax1.set(ylabel="ms", title=f"HEAD beside {c['idle_open']:,} idle connections")
        ax1.legend(fontsize=8)
        ax2.bar(
            ["idle", f"+{c['idle_open']:,} idle", *labels],
            [c["rss_idle_mib"], c["rss_with_idle_mib"], *(r["rss_peak_mib"] for r in runs)],
        )
        ax2.set(ylabel="MiB", title="server RSS")
        save(fig, "connections")
    if "workers" in results:
        w = results["workers"]
        ops = [op for op in ("PUT", "GET", "HEAD") if op in w.get("1", {}) and op in w.get("2", {})]
        fig, ax = plt.subplots(figsize=(6, 3.8))
        xs = range(len(ops))
        for off, n in ((-0.2, "1"), (0.2, "2")):
            ax.bar(
                [x + off for x in xs],
                [w[n][op]["ops_s"] for op in ops],
                0.4,
                label=f"{n} worker{'s' if n == '2' else ''}",
            )
        ax.set_xticks(list(xs), [f"4 KiB {op}" for op in ops])
        ax.set(ylabel="ops/s", title="small operations, 32 clients")
        ax.legend(fontsize=8)
        save(fig, "workers")
    return written


# ---- main ------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default=",".join(PHASES), help="comma list of " + ",".join(PHASES))
    p.add_argument(
        "--counts",
        type=_ints,
        default=[10_000, 100_000, 1_000_000],
        help="objects: bucket sizes measured, in order (10000,100000,1000000)",
    )
    p.add_argument("--backends", default="sqlite,mongodb", help="objects: sqlite,mongodb")
    p.add_argument(
        "--seed-budget",
        type=float,
        default=900.0,
        help="objects: seconds of seeding per backend; stops at the level reached (900)",
    )
    p.add_argument(
        "--list-pages", type=int, default=100, help="objects: LIST pages per level (100)"
    )
    p.add_argument(
        "--list-seconds",
        type=float,
        default=60.0,
        help="objects: time budget of each LIST series; stops early (at least 5 pages; 60)",
    )
    p.add_argument(
        "--op-seconds",
        type=float,
        default=5.0,
        help="objects/connections: seconds of HEAD and PUT per level (5)",
    )
    p.add_argument(
        "--op-clients", type=int, default=8, help="objects: concurrent HEAD/PUT clients (8)"
    )
    p.add_argument(
        "--sizes-mib",
        default="1,16,256,1024,10240",
        help="sizes: object sizes in MiB (1,16,256,1024,10240)",
    )
    p.add_argument("--paths", default=",".join(PATHS), help="sizes: " + ",".join(PATHS))
    p.add_argument("--idle", type=int, default=10_000, help="connections: idle ones held (10000)")
    p.add_argument(
        "--active", type=int, default=1000, help="connections: the larger active set (1000)"
    )
    p.add_argument(
        "--phase-timeout",
        type=float,
        default=300.0,
        help="connections: bound on opening / checking connections (300 s)",
    )
    p.add_argument("--small-seconds", type=float, default=8.0, help="workers: per operation (8)")
    p.add_argument("--work-dir", type=Path, default=None, help="where the scratch dir is made")
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    p.add_argument("--plot-dir", type=Path, default=HERE, help="where the PNGs go (benchmarks/)")
    p.add_argument(
        "--plot-from",
        type=Path,
        nargs="+",
        default=None,
        metavar="JSON",
        help="run nothing: merge these --json outputs, print the tables, plot",
    )
    args = p.parse_args(argv)
    args.phases = [x for x in PHASES if x in {s.strip() for s in args.only.split(",")}]
    unknown = {s.strip() for s in args.only.split(",") if s.strip()} - set(PHASES)
    if unknown:
        p.error(f"--only: unknown phase(s) {', '.join(sorted(unknown))}")
    args.backends = [b for b in args.backends.split(",") if b]
    args.sizes_mib = [float(x) for x in args.sizes_mib.split(",") if x]
    args.paths = [x for x in args.paths.split(",") if x]
    if set(args.paths) - set(PATHS) or set(args.backends) - {"sqlite", "mongodb"}:
        p.error("--paths / --backends: unknown name")
    return args


@contextlib.contextmanager
def scratch_dir(parent: Path | None) -> Iterator[Scratch]:
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="zas-scale-", dir=parent))
    scratch = Scratch(work)
    try:
        yield scratch
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a 2nd Ctrl-C must not skip the cleanup
        scratch.close()
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot_from:
        results: dict[str, Any] = {}
        for path in args.plot_from:  # the objects phase of one run per backend merges
            for name, value in json.loads(path.read_text()).items():
                if name == "objects" and name in results:
                    results[name].update(value)
                else:
                    results[name] = value
        print(report(results))
        for png in plot(results, args.plot_dir):
            log(f"plot: {png}")
        return 0
    if not Path(SERVER_BIN).exists():
        print(f"{SERVER_BIN} not found: run with the project's .venv/bin/python", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    results = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    code = 0
    phases: dict[str, Callable[[Scratch, argparse.Namespace], dict[str, Any]]] = {
        "objects": phase_objects,
        "sizes": phase_sizes,
        "connections": phase_connections,
        "workers": phase_workers,
    }
    with scratch_dir(args.work_dir) as scratch:
        results["machine"] = machine_info(scratch.work)
        results["machine"]["load_at_start"] = load_average()
        try:
            for name in args.phases:
                log(f"phase {name} (load {load_average()})")
                results[name] = phases[name](scratch, args)
        except KeyboardInterrupt:
            log("interrupted: cleaning up")
            code = 130
        except Exception as exc:
            log(f"benchmark failed: {exc!r}")
            code = 1
    results["machine"]["load_at_end"] = load_average()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"raw numbers: {args.json}")
    if any(name in results for name in PHASES):
        for png in plot(results, args.plot_dir):
            log(f"plot: {png}")
    return code


if __name__ == "__main__":
    sys.exit(main())
