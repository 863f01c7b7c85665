#!/usr/bin/env python3
"""Object-store client libraries compared (issue 17): which one the S3 blob backend uses.

Each client does the same work against the same S3 server, each operation in a fresh child
process, so its CPU time (user + system) and peak RSS are its own:

* ``put``    a 256 MiB object streamed from a repeated random 8 MiB block as a multipart upload
             (8 MiB parts, 4 in flight) — the shape of the blob backend's writer;
* ``get``    the same object streamed back in 1 MiB reads and discarded;
* ``small``  sequential 4 KiB PutObjects (ops/s).

Clients: ``obstore`` (Rust object_store, async), ``botocore`` (the sync client in a thread
pool, as the backend would use it), ``aiobotocore`` (async botocore on aiohttp; it pins an older
botocore than the server's, so it runs from another virtualenv given by ``--aiobotocore-python``
and is skipped without one). Servers, on loopback: ``zas`` (this project's own S3 API on the
filesystem backend, started through ``tests/fixtures/server.py``) and ``moto`` (``moto_server``,
in memory).

    .venv/bin/python benchmarks/objectstore.py [--size-mib 256] [--small 500]
        [--servers zas,moto] [--clients obstore,botocore,aiobotocore]
        [--aiobotocore-python /path/to/venv/bin/python] [--json OUT]

The child part (``--child``) imports only its client library, so it runs in either virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MIB = 1 << 20
PART = 8 * MIB
CONCURRENCY = 4
KEY, SECRET, REGION = "bench", "bench-secret", "us-east-1"


# ---- child: one client, one operation ------------------------------------------------------
def _blocks(size: int) -> Iterator[bytes]:
    block = os.urandom(PART)
    sent = 0
    while sent < size:
        n = min(PART, size - sent)
        yield block if n == PART else block[:n]
        sent += n


def _botocore_client(endpoint: str) -> Any:
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name=REGION,
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=CONCURRENCY * 2,
            retries={"max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def run_botocore(op: str, endpoint: str, bucket: str, size: int, count: int) -> None:
    s3 = _botocore_client(endpoint)
    if op == "put":
        mpu = s3.create_multipart_upload(Bucket=bucket, Key="big")
        uid = mpu["UploadId"]

        def part(args: tuple[int, bytes]) -> dict[str, Any]:
            n, body = args
            r = s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=n, Body=body)
            return {"PartNumber": n, "ETag": r["ETag"]}

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            parts = list(pool.map(part, enumerate(_blocks(size), 1)))
        s3.complete_multipart_upload(
            Bucket=bucket, Key="big", UploadId=uid, MultipartUpload={"Parts": parts}
        )
    elif op == "get":
        body = s3.get_object(Bucket=bucket, Key="big")["Body"]
        while body.read(MIB):
            pass
    else:
        data = os.urandom(4096)
        for i in range(count):
            s3.put_object(Bucket=bucket, Key=f"small/{i}", Body=data)


def run_aiobotocore(op: str, endpoint: str, bucket: str, size: int, count: int) -> None:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async def main() -> None:
        cfg = AioConfig(
            s3={"addressing_style": "path"},
            max_pool_connections=CONCURRENCY * 2,
            retries={"max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        async with get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
            config=cfg,
        ) as s3:
            if op == "put":
                uid = (await s3.create_multipart_upload(Bucket=bucket, Key="big"))["UploadId"]
                sem = asyncio.Semaphore(CONCURRENCY)

                async def part(n: int, body: bytes) -> dict[str, Any]:
                    try:
                        r = await s3.upload_part(
                            Bucket=bucket, Key="big", UploadId=uid, PartNumber=n, Body=body
                        )
                        return {"PartNumber": n, "ETag": r["ETag"]}
                    finally:
                        sem.release()

                tasks = []
                for n, body in enumerate(_blocks(size), 1):
                    await sem.acquire()
                    tasks.append(asyncio.create_task(part(n, body)))
                parts = await asyncio.gather(*tasks)
                await s3.complete_multipart_upload(
                    Bucket=bucket, Key="big", UploadId=uid, MultipartUpload={"Parts": parts}
                )
            elif op == "get":
                r = await s3.get_object(Bucket=bucket, Key="big")
                async with r["Body"] as stream:
                    while await stream.read(MIB):
                        pass
            else:
                data = os.urandom(4096)
                for i in range(count):
                    await s3.put_object(Bucket=bucket, Key=f"small/{i}", Body=data)

    asyncio.run(main())


def run_obstore(op: str, endpoint: str, bucket: str, size: int, count: int) -> None:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=endpoint,
        access_key_id=KEY,
        secret_access_key=SECRET,
        region=REGION,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )

    async def main() -> None:
        if op == "put":

            async def body() -> AsyncIterator[bytes]:
                for block in _blocks(size):
                    yield block

            await obstore.put_async(
                store, "big", body(), chunk_size=PART, max_concurrency=CONCURRENCY
            )
        elif op == "get":
            result = await obstore.get_async(store, "big")
            async for _chunk in result.stream(min_chunk_size=MIB):
                pass
        else:
            data = os.urandom(4096)
            for i in range(count):
                await obstore.put_async(store, f"small/{i}", data)

    asyncio.run(main())


CHILDREN: dict[str, Callable[[str, str, str, int, int], None]] = {
    "botocore": run_botocore,
    "aiobotocore": run_aiobotocore,
    "obstore": run_obstore,
}


def _status_kib(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(m.group(1)) if m else -1


def child(args: argparse.Namespace) -> None:
    fn = CHILDREN[args.client]
    # The library's import is a one-off cost of a server start, not of the operation.
    importlib.import_module({"obstore": "obstore.store"}.get(args.client, f"{args.client}.session"))
    rss_before = _status_kib("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    fn(args.op, args.endpoint, args.bucket, args.size, args.count)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_kib("VmHWM")  # the exec'd child's own high-water mark
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "rss_start_kib": rss_before, "peak_kib": peak}))


# ---- parent: servers, rounds, report ---------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    exe = str(Path(sys.executable).with_name("moto_server"))
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"http://127.0.0.1:{port}", proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--client", default="botocore")
    p.add_argument("--op", default="put")
    p.add_argument("--endpoint", default="")
    p.add_argument("--bucket", default="bench")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--small", type=int, default=500)
    p.add_argument("--servers", default="zas,moto")
    p.add_argument("--clients", default="obstore,botocore,aiobotocore")
    p.add_argument("--aiobotocore-python", default="")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        # obstore 0.12.1 aborts (SIGABRT) at interpreter exit in about one run in five, after
        # the work is done: leave without the interpreter's teardown.
        sys.stdout.flush()
        os._exit(0)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import botocore.session  # noqa: F401  (the parent creates buckets with it)

    from tests.fixtures.server import ServerProcess

    results: dict[str, Any] = {"size_mib": args.size_mib, "small": args.small, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="zas-objbench-") as tmp:
        for server in args.servers.split(","):
            stop: Callable[[], object]
            if server == "zas":
                srv = ServerProcess(Path(tmp) / "zas").start()
                endpoint, stop = srv.url, srv.stop
            else:
                endpoint, proc = start_moto()
                stop = proc.kill
            try:
                for client in args.clients.split(","):
                    python = sys.executable
                    if client == "aiobotocore":
                        if not args.aiobotocore_python:
                            continue
                        python = args.aiobotocore_python
                    bucket = f"bench-{client}"
                    _botocore_client(endpoint).create_bucket(Bucket=bucket)
                    for op in ("put", "get", "small"):
                        out = subprocess.run(
                            [python, __file__, "--child", "--client", client, "--op", op,
                             "--endpoint", endpoint, "--bucket", bucket,
                             "--size", str(args.size_mib * MIB), "--count", str(args.small)],
                            capture_output=True, text=True, timeout=600, check=False,
                        )  # fmt: skip
                        if out.returncode:
                            raise RuntimeError(
                                f"{server}/{client}/{op}: exit {out.returncode}: "
                                f"{out.stderr[-2000:]}"
                            )
                        r = json.loads(out.stdout.strip().splitlines()[-1])
                        if op == "small":
                            r["ops_per_s"] = args.small / r["wall_s"]
                            r["cpu_ms_per_op"] = 1000 * r["cpu_s"] / args.small
                        else:
                            r["mb_per_s"] = args.size_mib * MIB / r["wall_s"] / 1e6
                            r["cpu_s_per_gib"] = r["cpu_s"] * 1024 / args.size_mib
                        results["runs"][f"{server}/{client}/{op}"] = r
                        print(f"{server}/{client}/{op}: {json.dumps(r)}", file=sys.stderr)
            finally:
                stop()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
