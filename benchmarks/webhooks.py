#!/usr/bin/env python3
"""Outbound webhooks (issue 21 §6): how fast events reach a fast receiver, and what one active
subscription costs small writes. A measurement, not a test: it never asserts and is not in CI.

* ``delivery``  N objects written (4 KiB ``/v1`` PUTs, 32 clients) with one subscription to
                ``object.created``; a receiver on 127.0.0.1 that answers 204 at once counts what
                arrives. Reports events/s from the first delivery to the last, and the time
                from the last write to the last delivery (the outbox's lag).
* ``outbox``    4 KiB ``/v1`` PUT throughput (32 clients, ``--seconds`` each) with no
                subscription and with one active subscription, alternated ``--rounds`` times on
                one server (the outbox row is written in the same unit of work as the object).

    .venv/bin/python benchmarks/webhooks.py [--events 2000] [--seconds 8] [--rounds 2]
        [--only delivery,outbox] [--json OUT]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from benchmarks.run import emit_results, log
from tests.fixtures.server import ServerProcess

ROOT = ("bench-admin", "bench-admin-password")
CLIENTS = 32
BODY = b"x" * 4096


class Counter(BaseHTTPRequestHandler):
    """Answers every POST with 204 and notes when it arrived."""

    arrivals: list[float] = []
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()
        with Counter.lock:
            Counter.arrivals.append(time.monotonic())


def put_many(url: str, bucket: str, prefix: str, count: int | None, seconds: float) -> int:
    """``count`` PUTs (or as many as fit in ``seconds``) from CLIENTS threads; how many."""
    done = [0] * CLIENTS
    stop = time.monotonic() + seconds
    next_index = iter(range(10**9))
    lock = threading.Lock()

    def worker(w: int) -> None:
        with httpx.Client(base_url=url, auth=ROOT, timeout=60) as c:
            while time.monotonic() < stop:
                with lock:
                    i = next(next_index)
                if count is not None and i >= count:
                    return
                r = c.put(f"/v1/buckets/{bucket}/objects/{prefix}/{i}", content=BODY)
                if r.status_code != 201:
                    raise RuntimeError(f"PUT answered {r.status_code}: {r.text[:200]}")
                done[w] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def subscribe(c: httpx.Client, url: str, bucket: str) -> str:
    r = c.post("/v1/webhooks", json={"url": url, "events": ["object.created"],
                                     "filter": {"buckets": [bucket]}})  # fmt: skip
    r.raise_for_status()
    return str(r.json()["id"])


def phase_delivery(store: ServerProcess, receiver: str, events: int) -> dict[str, Any]:
    with store.client(auth=ROOT) as c:
        c.put("/v1/buckets/hooked").raise_for_status()
        hook = subscribe(c, receiver, "hooked")
        Counter.arrivals.clear()
        started = time.monotonic()
        written = put_many(store.url, "hooked", "d", events, 600)
        wrote_all = time.monotonic()
        deadline = wrote_all + 600
        while len(Counter.arrivals) < written and time.monotonic() < deadline:
            time.sleep(0.05)
        c.delete(f"/v1/webhooks/{hook}").raise_for_status()
    arrivals = sorted(Counter.arrivals)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    return {
        "events": written,
        "delivered": len(arrivals),
        "events_per_s": round((len(arrivals) - 1) / span, 1) if span == span else None,
        "writes_per_s": round(written / (wrote_all - started), 1),
        "lag_after_last_write_s": round(arrivals[-1] - wrote_all, 2) if arrivals else None,
    }


def phase_outbox(
    store: ServerProcess, receiver: str, seconds: float, rounds: int
) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"none": [], "one": []}
    with store.client(auth=ROOT) as c:
        c.put("/v1/buckets/outbox").raise_for_status()
        for r in range(rounds):
            for mode in ("none", "one"):
                hook = subscribe(c, receiver, "outbox") if mode == "one" else None
                n = put_many(store.url, "outbox", f"{mode}{r}", None, seconds)
                rates[mode].append(n / seconds)
                log(f"outbox round {r} {mode}: {n / seconds:.0f} PUT/s")
                if hook:
                    c.delete(f"/v1/webhooks/{hook}").raise_for_status()
    none, one = statistics.median(rates["none"]), statistics.median(rates["one"])
    return {
        "put_per_s_no_subscription": round(none, 1),
        "put_per_s_one_subscription": round(one, 1),
        "slowdown_pct": round(100 * (1 - one / none), 1),
        "runs": rates,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only", default="delivery,outbox")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    phases = set(args.only.split(","))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    receiver = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="zas-bench-hooks-") as work:
        config = {"extensions": {"webhooks": {"allowNetworks": ["127.0.0.0/8"]}}}
        env = {"ZAS_ROOT_USER": ROOT[0], "ZAS_ROOT_PASSWORD": ROOT[1]}
        store = ServerProcess(Path(work) / "data", env=env, config=config).start()
        try:
            if "delivery" in phases:
                results["delivery"] = phase_delivery(store, receiver, args.events)
                log(f"delivery: {results['delivery']}")
            if "outbox" in phases:
                results["outbox"] = phase_outbox(store, receiver, args.seconds, args.rounds)
                log(f"outbox: {results['outbox']}")
        finally:
            store.stop()
            httpd.shutdown()
    emit_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
