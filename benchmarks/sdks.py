#!/usr/bin/env python3
"""The SDKs' transfer benchmarks side by side — Go, JavaScript (Node), Python — and curl, in one
run against one server. Not part of CI.

For an N GiB file (default 1), each client uploads it and downloads it back:

* Go SDK (``benchmarks/go``, built here): ``PutObject`` (one streamed PUT, sha256 computed
  first), ``Upload`` (``--parallel`` parts of ``--part-mib``), ``Download`` (to a file,
  sha256 checked, fsynced);
* JavaScript SDK in Node (``benchmarks/js/bench.mjs`` on ``sdk/js/dist``, built here with
  ``npm run build``): ``upload`` of ``fs.openAsBlob(file)`` in one PUT (sha256 first) and in
  parts, ``get`` streamed to a file with the SDK's sha256 checked on the way, fsynced;
* Python SDK: ``Client.upload`` single stream and in parts, ``Client.download``;
* curl: ``curl -T`` (one PUT, no sha256) and ``curl -o`` then ``sync FILE``;
* references: sha256 of the file in each language (Go's ``crypto/sha256``, the JS SDK's
  ``@noble/hashes`` and Node's OpenSSL, Python's hashlib).

Each transfer runs ``--rounds`` times (the median is reported), the clients interleaved so a
busy moment of the machine does not land on one of them only. ``--only`` picks clients.

    .venv/bin/python benchmarks/sdks.py [--size-gib 1] [--part-mib 64] [--parallel 4]
        [--rounds 3] [--only go,js,python,curl] [--work-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import emit_results, log  # noqa: E402
from benchmarks.sdk import GIB, MB, MIB, make_file, page_cache_read, scratch_server  # noqa: E402
from zot_artifacts import Client, RetryPolicy  # noqa: E402

SDK_JS = ROOT / "sdk" / "js"
CLIENTS = ("go", "js", "python", "curl")


def build_go(work: Path) -> Path:
    binary = work / "zotartifacts-bench"
    env = {
        **os.environ,
        "GOCACHE": str(ROOT / ".work" / "go" / "cache"),
        "GOPATH": str(ROOT / ".work" / "go" / "path"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    go = shutil.which("go")
    assert go, "go is not installed (make setup)"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=ROOT / "benchmarks" / "go",
                   env=env, check=True)  # fmt: skip
    return binary


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            h.update(chunk)
    return h.hexdigest()


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def build_js() -> Path:
    """``sdk/js/dist`` built from the sources (tsc), as its tests build it."""
    npm = shutil.which("npm")
    assert npm, "npm is not installed (make setup)"
    subprocess.run([npm, "run", "--silent", "build"], cwd=SDK_JS, check=True)
    return ROOT / "benchmarks" / "js" / "bench.mjs"


def bench(
    url: str, work: Path, size: int, part: int, parallel: int, rounds: int, only: set[str]
) -> dict:
    src = work / "src.bin"
    make_file(src, size)
    dest = work / "dest.bin"
    client = Client(url, timeout=300, retry=RetryPolicy(max_attempts=3))
    client.create_bucket("sdk-bench", exist_ok=True)
    extra: dict[str, list[float]] = {"ref_node_crypto_sha256": []}

    def program(cmd: list[str], op: str, key: str, file: Path) -> float:
        # --flag: Go's flag package and Node's parseArgs both take it.
        cmd = [*cmd, "--url", url, "--op", op, "--key", key, "--file", str(file),
               "--part-mib", str(part // MIB), "--parallel", str(parallel)]  # fmt: skip
        run = subprocess.run(cmd, check=True, capture_output=True, text=True)
        answer = json.loads(run.stdout)
        assert answer["bytes"] == size, answer
        if "node_crypto_seconds" in answer:
            extra["ref_node_crypto_sha256"].append(float(answer["node_crypto_seconds"]))
        return float(answer["seconds"])

    def curl(*args: str) -> None:
        subprocess.run(["curl", "-sSf", "-o", "/dev/null", *args], check=True)

    curl_url = f"{url}/v1/buckets/sdk-bench/objects/curl.bin"

    def curl_get() -> None:
        subprocess.run(["curl", "-sSf", "-o", str(dest), curl_url], check=True)
        subprocess.run(["sync", str(dest)], check=True)

    def python_parts() -> None:
        client.upload(
            "sdk-bench", "py-parts.bin", src, part_size=part, parallel=parallel,
            multipart_threshold=part,
        )  # fmt: skip

    uploads: dict[str, Callable[[], float]] = {}
    parts: dict[str, Callable[[], float]] = {}
    downloads: dict[str, Callable[[], float]] = {}
    refs: dict[str, Callable[[], float]] = {}
    if "go" in only:
        go = [str(build_go(work))]
        uploads["go_put_single"] = lambda: program(go, "put", "go.bin", src)
        parts["go_upload_parts"] = lambda: program(go, "upload", "go-parts.bin", src)
        downloads["go_download"] = lambda: program(go, "download", "go.bin", dest)
        refs["ref_go_sha256"] = lambda: program(go, "sha256", "", src)
    if "js" in only:
        node = shutil.which("node")
        assert node, "node is not installed (make setup)"
        js = [node, str(build_js())]
        uploads["js_put_single"] = lambda: program(js, "put", "js.bin", src)
        parts["js_upload_parts"] = lambda: program(js, "upload", "js-parts.bin", src)
        downloads["js_download"] = lambda: program(js, "download", "js.bin", dest)
        refs["ref_js_sha256"] = lambda: program(js, "sha256", "", src)
    if "python" in only:
        uploads["python_upload_single"] = lambda: timed(
            lambda: client.upload("sdk-bench", "py.bin", src, multipart_threshold=size + 1)
        )
        parts["python_upload_parts"] = lambda: timed(python_parts)
        downloads["python_download"] = lambda: timed(
            lambda: client.download("sdk-bench", "py.bin", dest)
        )
        refs["ref_python_sha256"] = lambda: timed(lambda: sha256_file(src))
    if "curl" in only:
        uploads["curl_put"] = lambda: timed(lambda: curl("-T", str(src), curl_url))
        downloads["curl_get"] = lambda: timed(curl_get)
    transfers = {**uploads, **parts, **downloads, **refs}
    times: dict[str, list[float]] = {name: [] for name in transfers}
    cpu: dict[str, list[float]] = {name: [] for name in transfers}
    for r in range(rounds):
        for name, fn in transfers.items():
            dest.unlink(missing_ok=True)
            before = client_cpu_seconds()
            times[name].append(fn())
            cpu[name].append(client_cpu_seconds() - before)
            log(f"round {r + 1} {name}: {size / MB / times[name][-1]:.0f} MB/s, "
                f"client CPU {cpu[name][-1]:.1f} s")  # fmt: skip
    client.close()
    if extra["ref_node_crypto_sha256"]:
        times.update(extra)
    out: dict[str, Any] = {"size_bytes": size, "part_bytes": part, "parallel": parallel}
    for name, secs in times.items():
        median = statistics.median(secs)
        out[name] = {
            "MB_s": round(size / MB / median, 1),
            "rounds_MB_s": [round(size / MB / s, 1) for s in secs],
        }
        if cpu.get(name):
            # The client's CPU (the SDK program, curl; or this process for the Python SDK),
            # less sensitive than its rate to other work on a shared machine.
            out[name]["client_cpu_s"] = round(statistics.median(cpu[name]), 2)
    out["ref_page_cache_read_MB_s"] = round(size / MB / page_cache_read(src), 1)
    return out


def client_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have exited (the SDK programs,
    curl; not the server, which runs until the end)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def table(out: dict[str, Any]) -> str:
    """The results as RESULTS.md's Markdown table: median MB/s (the rounds in brackets) and,
    after a slash, the client's CPU seconds (median)."""

    def cell(name: str) -> str:
        found = out.get(name)
        if not found:
            return "—"
        text = f"{found['MB_s']:.0f}"
        if len(found["rounds_MB_s"]) > 1:
            text += " (" + ", ".join(f"{v:.0f}" for v in found["rounds_MB_s"]) + ")"
        if "client_cpu_s" in found:
            text += f" / {found['client_cpu_s']:.1f} s"
        return text

    rows = [
        ("upload, one stream", "go_put_single", "js_put_single", "python_upload_single",
         "curl_put"),
        ("upload, parts", "go_upload_parts", "js_upload_parts", "python_upload_parts", ""),
        ("download to a file", "go_download", "js_download", "python_download", "curl_get"),
        ("reference: sha256 of the file, the SDK's hash", "ref_go_sha256",
         "ref_node_crypto_sha256", "ref_python_sha256", ""),
        ("reference: sha256, @noble/hashes (the JS SDK in browsers)", "", "ref_js_sha256", "",
         ""),
    ]  # fmt: skip
    head = "| MB/s / client CPU | Go SDK | JS SDK (Node) | Python SDK | curl |"
    lines = [head, "|---|---|---|---|---|"]
    lines += [f"| {label} | " + " | ".join(cell(n) for n in names) + " |" for label, *names in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--part-mib", type=int, default=64)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default=",".join(CLIENTS), help="clients: " + ",".join(CLIENTS))
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    size = int(args.size_gib * GIB)
    only = set(args.only.split(","))
    if only - set(CLIENTS):
        p.error(f"--only: unknown clients {sorted(only - set(CLIENTS))}; known: {CLIENTS}")
    with scratch_server("zas-sdkbench-", args.work_dir) as (url, work):
        results = bench(url, work, size, args.part_mib * MIB, args.parallel, args.rounds, only)
    emit_results(results, args.json)
    log("\n" + table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
