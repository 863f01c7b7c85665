#!/usr/bin/env python3
"""Go SDK transfer benchmarks beside the Python SDK and curl, in one run against one server.
Not part of CI.

For an N GiB file (default 1), each client uploads it and downloads it back:

* Go SDK (``benchmarks/go``, built here): ``PutObject`` (one streamed PUT, sha256 computed
  first), ``Upload`` (``--parallel`` parts of ``--part-mib``), ``Download`` (to a file,
  sha256 checked, fsynced);
* Python SDK: ``Client.upload`` single stream and in parts, ``Client.download``;
* curl: ``curl -T`` (one PUT, no sha256) and ``curl -o`` then ``sync FILE``;
* references: sha256 of the file by this Go toolchain and by Python's hashlib.

Each transfer runs ``--rounds`` times (the median is reported), the clients interleaved so a
busy moment of the machine does not land on one of them only.

    .venv/bin/python benchmarks/gosdk.py [--size-gib 1] [--part-mib 64] [--parallel 4]
        [--rounds 3] [--work-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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


def bench(url: str, work: Path, size: int, part: int, parallel: int, rounds: int) -> dict:
    src = work / "src.bin"
    make_file(src, size)
    dest = work / "dest.bin"
    binary = build_go(work)
    client = Client(url, timeout=300, retry=RetryPolicy(max_attempts=3))
    client.create_bucket("sdk-bench", exist_ok=True)

    def go(op: str, key: str, file: Path) -> float:
        cmd = [str(binary), "-url", url, "-op", op, "-key", key, "-file", str(file),
               "-part-mib", str(part // MIB), "-parallel", str(parallel)]  # fmt: skip
        run = subprocess.run(cmd, check=True, capture_output=True, text=True)
        answer = json.loads(run.stdout)
        assert answer["bytes"] == size, answer
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

    transfers: dict[str, Callable[[], float]] = {
        "go_put_single": lambda: go("put", "go.bin", src),
        "python_upload_single": lambda: timed(
            lambda: client.upload("sdk-bench", "py.bin", src, multipart_threshold=size + 1)
        ),
        "curl_put": lambda: timed(lambda: curl("-T", str(src), curl_url)),
        "go_upload_parts": lambda: go("upload", "go-parts.bin", src),
        "python_upload_parts": lambda: timed(python_parts),
        "go_download": lambda: go("download", "go.bin", dest),
        "python_download": lambda: timed(lambda: client.download("sdk-bench", "py.bin", dest)),
        "curl_get": lambda: timed(curl_get),
        "ref_go_sha256": lambda: go("sha256", "", src),
        "ref_python_sha256": lambda: timed(lambda: sha256_file(src)),
    }
    times: dict[str, list[float]] = {name: [] for name in transfers}
    for r in range(rounds):
        for name, fn in transfers.items():
            dest.unlink(missing_ok=True)
            times[name].append(fn())
            log(f"round {r + 1} {name}: {size / MB / times[name][-1]:.0f} MB/s")
    client.close()
    out: dict[str, Any] = {"size_bytes": size, "part_bytes": part, "parallel": parallel}
    for name, secs in times.items():
        median = statistics.median(secs)
        out[name] = {
            "MB_s": round(size / MB / median, 1),
            "rounds_MB_s": [round(size / MB / s, 1) for s in secs],
        }
    out["ref_page_cache_read_MB_s"] = round(size / MB / page_cache_read(src), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--part-mib", type=int, default=64)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    size = int(args.size_gib * GIB)
    with scratch_server("zas-gobench-", args.work_dir) as (url, work):
        results = bench(url, work, size, args.part_mib * MIB, args.parallel, args.rounds)
    emit_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
