"""Two builds of the server side by side, for "did this change slow S3 down?" on a shared
machine: both servers up at once, sequential raw HTTP requests alternating between them (so
whatever else runs on the machine hits both alike), server CPU per request read from /proc.

    .venv/bin/python benchmarks/s3_ab.py /tmp/base/server [--requests 1500] [--keys 2000]

BEFORE is a ``server/`` directory of another commit (``mkdir /tmp/base && git archive <commit>
server | tar -x -C /tmp/base``); AFTER defaults to this checkout's. Per operation — 1 KiB
PutObject, HeadObject, GetObject, and a ListObjectsV2 page of 1,000 keys — it prints the server
CPU per request and the client's p50/p90. Auth off, sqlite, one worker, log level warning. A
measurement, not a test: not part of CI.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.server import ServerProcess  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(tree: Path, scratch: Path) -> ServerProcess:
    env = {
        "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT / "sdk/python"), str(ROOT / "cli")]),
        "ZAS_LOG_LEVEL": "warning",
    }
    server = ServerProcess(Path(tempfile.mkdtemp(dir=scratch)) / "data", env=env)
    server.start()
    return server


def measure(
    servers: dict[str, ServerProcess],
    clients: dict[str, httpx.Client],
    name: str,
    count: int,
    call: Callable[[httpx.Client, int], None],
) -> None:
    before = {w: cpu_seconds(s.proc.pid) for w, s in servers.items()}  # type: ignore[union-attr]
    latencies: dict[str, list[float]] = {w: [] for w in servers}
    order = list(servers)
    for i in range(count):
        for who in order if i % 2 else order[::-1]:
            t = time.perf_counter()
            call(clients[who], i)
            latencies[who].append(time.perf_counter() - t)
    after = {w: cpu_seconds(s.proc.pid) for w, s in servers.items()}  # type: ignore[union-attr]
    for who, lat in latencies.items():
        lat.sort()
        cpu_ms = 1000 * (after[who] - before[who]) / len(lat)
        p50, p90 = 1000 * lat[len(lat) // 2], 1000 * lat[int(0.9 * len(lat))]
        print(
            f"{name:<14} {who:<6} server CPU {cpu_ms:6.2f} ms/request   "
            f"p50 {p50:6.2f} ms   p90 {p90:6.2f} ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the other build's server/ directory")
    parser.add_argument("after", type=Path, nargs="?", default=ROOT / "server")
    parser.add_argument("--requests", type=int, default=1500, help="per operation and server")
    parser.add_argument("--keys", type=int, default=2000, help="objects in the listed bucket")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="s3ab-") as scratch:
        servers: dict[str, ServerProcess] = {}
        try:
            for who, tree in (("before", args.before), ("after", args.after)):
                servers[who] = start(tree, Path(scratch))
            clients = {w: httpx.Client(base_url=s.url, timeout=60) for w, s in servers.items()}
            body = os.urandom(1024)
            for client in clients.values():
                assert client.put("/ab-ops").status_code == 200
                assert client.put("/ab-list").status_code == 200

                def seed(i: int, client: httpx.Client = client) -> None:
                    assert client.put(f"/ab-list/k/{i:06d}", content=b"x").status_code == 200

                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    list(pool.map(seed, range(args.keys)))

            def put(c: httpx.Client, i: int) -> None:
                assert c.put(f"/ab-ops/k{i % 500}", content=body).status_code == 200

            def head(c: httpx.Client, i: int) -> None:
                assert c.head(f"/ab-ops/k{i % 500}").status_code == 200

            def get(c: httpx.Client, i: int) -> None:
                assert c.get(f"/ab-ops/k{i % 500}").content == body

            def listing(c: httpx.Client, i: int) -> None:
                r = c.get("/ab-list", params={"list-type": "2", "max-keys": "1000"})
                assert r.status_code == 200 and r.text.count("<Key>") == 1000

            measure(servers, clients, "PutObject 1KiB", args.requests, put)
            measure(servers, clients, "HeadObject", args.requests, head)
            measure(servers, clients, "GetObject 1KiB", args.requests, get)
            measure(servers, clients, "ListObjectsV2", max(20, args.requests // 15), listing)
            for client in clients.values():
                client.close()
        finally:
            for server in servers.values():
                server.stop()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
