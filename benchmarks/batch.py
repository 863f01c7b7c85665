#!/usr/bin/env python3
"""Batch endpoints (issue 21 §4) beside the single calls they replace, in the same run. Not
part of CI; it never asserts.

* ``verify``  ``POST /v1/batch/verify`` of N subjects (200: a release) under one policy,
              against N single ``POST /v1/verify`` calls: one after another over one
              keep-alive connection (a pipeline's loop), and from 8 threads at once.
* ``plan``    ``POST /v1/batch`` upload planning of 1,000 objects (half already stored under
              their key, half new: presigned bound hrefs), against what a client does
              without it: a metadata ``GET`` per object, then ``POST /v1/presign`` for each
              missing one; and a first batch that links 1,000 keys to content stored
              elsewhere (no transfer).

Authentication is on and every request carries an API token (a CI robot's), so each item is
authorized and audited as in production.

    .venv/bin/python benchmarks/batch.py [--subjects 200] [--objects 1000] [--rounds 3]
        [--backend sqlite|mongodb] [--only verify,plan] [--json OUT]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import HOST, emit_results, log
from tests.fixtures.mongo import MongoServer, database_uri
from tests.fixtures.server import ServerProcess

ROOT_USER, ROOT_PASSWORD = "bench-admin", "bench-admin-password"
POLICY = {"sbom": True}
CYCLONEDX = "application/vnd.cyclonedx+json"
SETTLE_S = 1.5


class Api:
    """One keep-alive connection with the robot's token (one per thread)."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=600)
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None, **headers: str
    ) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        send = {**self.headers, **headers}
        if body is not None:
            send["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=send)
        resp = self.conn.getresponse()
        payload = resp.read()
        return resp.status, json.loads(payload) if payload.startswith(b"{") else None

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, answer = self.call(method, path, body, **kw)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    def close(self) -> None:
        self.conn.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def obj_path(bucket: str, key: str) -> str:
    return f"/v1/buckets/{bucket}/objects/{urllib.parse.quote(key, safe='')}"


def timed(fn: Any) -> float:
    # Audit records are written in batches every 0.5 s on the metadata thread: let the last
    # phase's drain first, so that no phase pays for another's.
    time.sleep(SETTLE_S)
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def robot_token(port: int) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    basic = base64.b64encode(f"{ROOT_USER}:{ROOT_PASSWORD}".encode()).decode()
    body = json.dumps({"name": "bench-robot", "roles": ["admin"]})
    conn.request(
        "POST",
        "/v1/tokens",
        body=body,
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    token = json.loads(resp.read())["token"]
    conn.close()
    return str(token)


def bench_verify(port: int, token: str, n: int, rounds: int) -> dict[str, Any]:
    api = Api(port, token)
    bucket = "bench-verify"
    api.ok("PUT", f"/v1/buckets/{bucket}")
    subjects = []
    log(f"verify: storing {n} objects, an SBOM on each")
    for i in range(n):
        key = f"release/file-{i:04d}.bin"
        api.ok("PUT", obj_path(bucket, key), raw=f"artifact {i}".encode() * 100)
        component = {"type": "library", "name": f"lib{i}", "version": "1.0"}
        sbom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
                "components": [component]}  # fmt: skip
        api.ok("POST", obj_path(bucket, key) + "/sboms", raw=json.dumps(sbom).encode(),
               **{"Content-Type": CYCLONEDX})  # fmt: skip
        subjects.append({"bucket": bucket, "key": key})

    def singles() -> None:
        for subject in subjects:
            answer = api.ok("POST", "/v1/verify", {"subject": subject, "policy": POLICY})
            assert answer["verified"], answer

    def singles_parallel() -> None:
        def part(chunk: list[dict[str, str]]) -> None:
            own = Api(port, token)
            for subject in chunk:
                own.ok("POST", "/v1/verify", {"subject": subject, "policy": POLICY})
            own.close()

        chunks = [subjects[i::8] for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(part, chunks))

    def batch() -> None:
        answer = api.ok("POST", "/v1/batch/verify", {"subjects": subjects, "policy": POLICY})
        assert answer["verified"] and answer["counts"]["passed"] == n, answer["counts"]

    times: dict[str, list[float]] = {"single": [], "single_8_threads": [], "batch": []}
    for r in range(rounds):
        log(f"verify: round {r + 1}/{rounds}")
        times["batch"].append(timed(batch))
        times["single"].append(timed(singles))
        times["single_8_threads"].append(timed(singles_parallel))
    api.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "subjects": n,
        "seconds": times,
        "median_s": med,
        "batch_speedup_vs_single": med["single"] / med["batch"],
        "batch_speedup_vs_single_8_threads": med["single_8_threads"] / med["batch"],
    }


def bench_plan(port: int, token: str, n: int, rounds: int) -> dict[str, Any]:
    api = Api(port, token)
    bucket, elsewhere = "bench-plan", "bench-source"
    api.ok("PUT", f"/v1/buckets/{bucket}")
    api.ok("PUT", f"/v1/buckets/{elsewhere}")
    contents = {f"dist/file-{i:04d}.bin": f"content {i}".encode() * 50 for i in range(n)}
    log(f"plan: storing {n // 2} of {n} objects under their key, {n} elsewhere")
    for i, (key, data) in enumerate(contents.items()):
        if i % 2 == 0:
            api.ok("PUT", obj_path(bucket, key), raw=data)
        api.ok("PUT", obj_path(elsewhere, f"src/{i}"), raw=data + b"!")  # not the same content
    objects = [{"key": k, "sha256": sha(d), "size": len(d)} for k, d in contents.items()]

    def batch() -> None:
        answer = api.ok("POST", "/v1/batch", {"operation": "upload", "bucket": bucket,
                                              "objects": objects})  # fmt: skip
        assert answer["counts"] == {"present": n - n // 2, "linked": 0, "upload": n // 2,
                                    "error": 0}, answer["counts"]  # fmt: skip

    def per_object() -> None:
        for obj in objects:
            status, meta = api.call("GET", obj_path(bucket, obj["key"]) + "?metadata=true")
            if status == 200 and meta["sha256"] == obj["sha256"]:
                continue
            api.ok("POST", "/v1/presign", {"bucket": bucket, "key": obj["key"], "method": "PUT"})

    times: dict[str, list[float]] = {"batch": [], "per_object": []}
    for r in range(rounds):
        log(f"plan: round {r + 1}/{rounds}")
        times["batch"].append(timed(batch))
        times["per_object"].append(timed(per_object))
    # Linking: a fresh bucket, every object's content already stored elsewhere.
    target = "bench-link"
    api.ok("PUT", f"/v1/buckets/{target}")
    linked = [
        {"key": f"linked/{i}", "sha256": sha(d + b"!"), "size": len(d) + 1}
        for i, d in enumerate(contents.values())
    ]
    link_answer: dict[str, Any] = {}

    def link() -> None:
        link_answer.update(api.ok("POST", "/v1/batch", {"operation": "upload", "bucket": target,
                                                         "objects": linked}))  # fmt: skip

    link_s = timed(link)
    assert link_answer["counts"]["linked"] == n, link_answer["counts"]
    api.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "objects": n,
        "seconds": times,
        "median_s": med,
        "batch_objects_per_s": n / med["batch"],
        "batch_speedup_vs_per_object": med["per_object"] / med["batch"],
        "link_all_s": link_s,
        "link_objects_per_s": n / link_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "mongodb"), default="sqlite")
    parser.add_argument("--only", default="verify,plan")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zas-bench-batch-", dir=args.work_dir))
    mongo = None
    server = None
    try:
        metadata_uri = None
        if args.backend == "mongodb":
            mongo = MongoServer(work / "mongo").start()
            metadata_uri = database_uri(mongo.uri, "zas_bench_batch")
        env = {"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD}
        server = ServerProcess(work / "data", metadata_uri=metadata_uri, env=env).start()
        token = robot_token(server.port)
        results: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "backend": args.backend,
            "rounds": args.rounds,
        }
        only = set(args.only.split(","))
        if "verify" in only:
            results["verify"] = bench_verify(server.port, token, args.subjects, args.rounds)
        if "plan" in only:
            results["plan"] = bench_plan(server.port, token, args.objects, args.rounds)
        emit_results(results, args.json)
    finally:
        if server is not None:
            server.stop()
        if mongo is not None:
            mongo.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
