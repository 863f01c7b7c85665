#!/usr/bin/env python3
"""What audit, policies, verification gates and webhooks cost on small operations (issue 23:
each < 10 % of small-op throughput), measured with and without in alternating rounds.

Each round starts one fresh server per configuration, in this order, and runs 4 KiB PUTs then
HEADs of what was put (32 raw keep-alive clients, as ``run.py --only small``):

* ``base``      the embedded default (audit on, no policy, no gate, no webhook);
* ``no-audit``  ``auth.audit.enable: false`` — audit's cost is base against this;
* ``policies``  a global policy and a bucket policy on the measured bucket (statements that
                are evaluated on every request but decide nothing for it);
* ``gate``      a verification gate in ``audit`` mode on the bucket (every HEAD checked against
                it; objects fail and are served with ``X-Verification: failed``);
* ``webhook``   a webhook subscribed to ``object.created`` delivering to a receiver in this
                process (every PUT queues a delivery, the server sends it).

It never asserts: a measurement (DESIGN.md §7-§8). Server CPU per operation is reported
beside the rates: on a shared machine it moves less than ops/s.

With ``--base DIR`` (the ``server/`` directory of another commit, as ``s3_ab.py``: ``mkdir
/tmp/base && git archive main server | tar -x -C /tmp/base``) every round runs each
configuration on that build and then on this checkout's, so both see the same machine load.
``--profile DIR`` samples each server with ``py-spy`` (as ``run.py --profile``).

    .venv/bin/python benchmarks/features.py [--rounds 2] [--seconds 5] [--base /tmp/base/server]
        [--only gate,webhook] [--profile DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import (
    HOST,
    SMALL_SIZE,
    cpu_meter,
    emit_results,
    log,
    percentile,
    proc_cpu_times,
    py_spy_record,
    run_small_op,
    simple_request,
)
from tests.fixtures.server import ServerProcess

CONFIGS = ("base", "no-audit", "policies", "gate", "webhook")
BUCKET = "small"


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as most receivers (a sender may reuse it)
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def start_receiver() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((HOST, 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def set_up(config: str, port: int, receiver_port: int) -> None:
    """Turn the feature of ``config`` on in a running server (audit is a start setting)."""
    simple_request(port, "PUT", f"/v1/buckets/{BUCKET}")
    if config == "policies":
        freeze = {
            "Statement": [
                {"Sid": "freeze", "Effect": "Deny", "Principal": "*",
                 "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": ["frozen/*"]},
                {"Sid": "team-reads", "Effect": "Allow", "Principal": "token:0123456789abcdef",
                 "Action": "s3:GetObject", "Resource": [f"{BUCKET}/*"],
                 "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}},
            ]
        }  # fmt: skip
        simple_request(port, "PUT", "/v1/policies/bench-freeze", json.dumps(freeze).encode())
        keep = {
            "Statement": [
                {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                 "Resource": [f"{BUCKET}/keep/*"]}
            ]
        }  # fmt: skip
        simple_request(port, "PUT", f"/v1/buckets/{BUCKET}/policy", json.dumps(keep).encode())
    elif config == "gate":
        gate = {"name": "bench-gate", "mode": "audit", "policy": {"sbom": True}}
        simple_request(port, "PUT", f"/v1/buckets/{BUCKET}/verification", json.dumps(gate).encode())
    elif config == "webhook":
        hook = {"url": f"http://{HOST}:{receiver_port}/hook", "events": ["object.created"]}
        simple_request(port, "POST", "/v1/webhooks", json.dumps(hook).encode())


ROOT = Path(__file__).resolve().parents[1]


def start(config: str, where: Path, receiver_port: int, tree: Path | None) -> ServerProcess:
    """A fresh server (of the ``server/`` directory ``tree``, default this checkout's) in
    ``where``, with ``config``'s feature on."""
    env = {"ZAS_LOG_LEVEL": "info"}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(ROOT / "sdk/python"), str(ROOT)])
    if config == "no-audit":
        env["ZAS_AUTH_AUDIT_ENABLE"] = "false"
    if config == "webhook":
        env["ZAS_EXTENSIONS_WEBHOOKS_ALLOWPRIVATE"] = "true"
    server = ServerProcess(where / "data", env=env).start()
    try:
        set_up(config, server.port, receiver_port)
    except Exception:
        server.stop()
        raise
    return server


def interleaved(
    servers: dict[str, ServerProcess], rounds: int, seconds: float, concurrency: int
) -> dict[str, dict[str, Any]]:
    """Every server up at once; each round gives each of them a ``seconds`` slice of PUTs in
    turn (the order rotating), then likewise HEADs. A server's CPU per operation in a round is
    all the CPU it used during that round (its background work during the others' slices —
    webhook deliveries, audit writes — included) over the operations of its slice, so load that
    comes and goes on a shared machine falls on every configuration alike."""
    names = list(servers)
    body = os.urandom(SMALL_SIZE)
    keys: dict[str, list[str]] = {n: [] for n in names}
    out: dict[str, dict[str, Any]] = {n: {"PUT": [], "HEAD": []} for n in names}
    for op in ("PUT", "HEAD"):
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            before = {n: proc_cpu_times(servers[n].proc.pid) for n in names}  # type: ignore[union-attr]
            done: dict[str, tuple[int, float]] = {}
            for n in order:
                started = time.perf_counter()
                st = run_small_op(
                    "raw", servers[n].port, op, BUCKET, seconds, concurrency, keys[n], body
                )
                if op == "PUT":
                    keys[n] = sorted(set(keys[n]) | set(st.keys))
                done[n] = (len(st.latencies) - st.errors, time.perf_counter() - started)
            after = {n: proc_cpu_times(servers[n].proc.pid) for n in names}  # type: ignore[union-attr]
            for n in names:
                ok, wall = done[n]
                cpu = sum(after[n]) - sum(before[n])
                out[n][op].append(
                    {"ops_s": ok / wall, "server_cpu_ms_per_op": 1000 * cpu / ok if ok else None}
                )
            log(
                f"interleaved {op} round {r + 1} (load {os.getloadavg()[0]:.1f}): "
                + "; ".join(f"{n} {out[n][op][-1]['server_cpu_ms_per_op'] or 0:.2f}" for n in names)
            )
    return out


def measure(
    config: str,
    work: Path,
    seconds: float,
    concurrency: int,
    receiver_port: int,
    tree: Path | None = None,
    profile: Path | None = None,
    name: str = "",
    gil_only: bool = False,
) -> dict:
    """One fresh server of ``config`` (of the ``server/`` directory ``tree``, default this
    checkout's): 4 KiB PUTs, then HEADs of what was put."""
    server = start(config, work / config, receiver_port, tree)
    assert server.proc is not None
    try:
        out: dict[str, Any] = {}
        keys: list[str] = []
        body = os.urandom(SMALL_SIZE)
        for op in ("PUT", "HEAD"):
            with (
                py_spy_record(server.proc.pid, profile, f"{name}{config}-{op}", gil_only),
                cpu_meter(server.proc.pid) as cpu,
            ):
                st = run_small_op("raw", server.port, op, BUCKET, seconds, concurrency, keys, body)
            if op == "PUT":
                keys = st.keys
            lat = sorted(st.latencies)
            ok = len(lat) - st.errors
            out[op] = {
                "ops_s": ok / cpu["wall_s"],
                "errors": st.errors,
                "first_error": st.first_error,
                "p99_ms": 1000 * percentile(lat, 0.99),
                "server_cpu_ms_per_op": 1000 * cpu["server_cpu_s"] / ok if ok else None,
                "server_user_ms_per_op": 1000 * cpu["server_user_s"] / ok if ok else None,
            }
        return out
    finally:
        server.stop()
        shutil.rmtree(work / config, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="per operation and configuration")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--only", default=",".join(CONFIGS), help=f"comma list of {','.join(CONFIGS)}")
    p.add_argument("--base", type=Path, default=None, help="another build's server/ directory")
    p.add_argument("--profile", type=Path, default=None, help="py-spy profiles into DIR")
    p.add_argument("--profile-gil", action="store_true", help="sample only the GIL holder")
    p.add_argument(
        "--interleave",
        action="store_true",
        help="all servers up at once, slices of --seconds each in turn (see interleaved())",
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    builds: dict[str, Path | None] = {"": None}
    if args.base is not None:
        builds = {"base:": args.base.resolve(), "new:": None}
    configs = [c for c in CONFIGS if c in args.only.split(",")]
    receiver = start_receiver()
    work = Path(tempfile.mkdtemp(prefix="zas-features-"))
    runs: dict[str, list[dict[str, Any]]] = {b + c: [] for c in configs for b in builds}
    if args.interleave:
        servers: dict[str, ServerProcess] = {}
        try:
            for config in configs:
                for build, tree in builds.items():
                    where = work / (build.replace(":", "-") + config)
                    servers[build + config] = start(config, where, receiver.server_port, tree)
            res = interleaved(servers, args.rounds, args.seconds, args.concurrency)
        finally:
            for server in servers.values():
                server.stop()
            receiver.shutdown()
            shutil.rmtree(work, ignore_errors=True)
        for name, ops in res.items():
            runs[name] = [{op: ops[op][r] for op in ops} for r in range(args.rounds)]
    try:
        for r in range(0 if args.interleave else args.rounds):
            for config in configs:
                for build, tree in builds.items():
                    load = os.getloadavg()[0]
                    res = measure(
                        config, work, args.seconds, args.concurrency, receiver.server_port,
                        tree, args.profile, build.replace(":", "-"), args.profile_gil,
                    )  # fmt: skip
                    res["load"] = load
                    runs[build + config].append(res)
                    log(
                        f"round {r + 1} {build + config:14} (load {load:.1f}): "
                        + "; ".join(
                            f"{op} {v['ops_s']:.0f}/s, {v['server_cpu_ms_per_op'] or 0:.2f} ms "
                            f"CPU/op (errors {v['errors']})"
                            for op, v in res.items()
                            if isinstance(v, dict) and "ops_s" in v
                        )
                    )
    finally:
        receiver.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(
        "\n| configuration | PUT ops/s (rounds) | PUT CPU ms/op | median | HEAD ops/s "
        "| HEAD CPU ms/op | median |"
    )
    print("|---|---|---|---|---|---|---|")
    for config, results in runs.items():
        cells = []
        for op in ("PUT", "HEAD"):
            rates = ", ".join(f"{x[op]['ops_s']:.0f}" for x in results)
            cpus = [x[op]["server_cpu_ms_per_op"] or 0.0 for x in results]
            cpu = ", ".join(f"{c:.2f}" for c in cpus)
            cells += [rates, cpu, f"{statistics.median(cpus):.2f}" if cpus else "-"]
        print(f"| {config} | " + " | ".join(cells) + " |")
    log(f"webhook deliveries received: {_Receiver.received}")
    emit_results({"runs": runs, "webhook_deliveries": _Receiver.received}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
