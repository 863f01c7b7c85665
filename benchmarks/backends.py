#!/usr/bin/env python3
"""The store on each object-store backend against the same backend used directly (issue 17 §5).
A measurement, not a test: it never asserts and is not part of CI.

For each backend — S3 on ``moto_server`` and on a second Zot Artifact Store (its own S3 API,
filesystem, fsync off), Azure Blob on Azurite, GCS on ``gcp-storage-emulator`` — in one run:

* ``direct``  a ``--size-mib`` object written and read with the backend's own client (botocore
              multipart in 8 MiB parts, 4 in flight; azure-storage-blob ``upload_blob`` with
              ``max_concurrency`` 4; google-cloud-storage ``upload_from_file``), streamed from a
              repeated random block, read back in 1 MiB pieces and dropped;
* ``store``   the same bytes PUT to and GET from a store on that backend through ``/v1``
              (one stream each way), with the store's peak RSS (``VmHWM``) during the PUT;
* ``small``   4 KiB PUTs through ``/v1`` from 8 clients for ``--small-seconds``;
* ``redirect`` (``--redirect``) the same bytes pushed as an OCI blob to a store with
              ``storage.storageDriver.redirect`` on, and its ``GET /v2/…/blobs/<digest>``
              followed to the backend's signed URL (GCS: the store given a service account
              key, its tokens from a stand-in for Google's token endpoint).

GETs through the store are read in 1 MiB pieces by ``--get-client``: ``urllib3`` (default:
the HTTP library under botocore's direct read, same piece size) or ``httpx`` (what the runs
before 2026-12-05 17:00 used; its 64 KiB reads cost the measuring process 0.7 s of CPU per GiB
against urllib3's 0.2, on a machine of two cores). The store's CPU seconds per GiB of its
``/v1`` GET are reported too.

    .venv/bin/python benchmarks/backends.py [--size-mib 1024] [--small-seconds 5]
        [--backends moto,zas,azurite,gcs] [--commit pointer,copy] [--rounds N] [--json OUT]
        [--get-client urllib3|httpx] [--redirect] [--relays haproxy,nginx,socat]

``relay``     (``--relays haproxy,nginx,socat``) the direct client's PUT and GET again through a
              plain proxy between it and the backend — haproxy (HTTP mode, splicing), nginx
              (``proxy_pass``, no temporary files), socat (bytes only) — one worker each,
              256 KiB buffers: what one more hop costs on this machine whatever does the
              hopping, the ratio any proxy reaches here. Installed from Debian
              (``apt-get install haproxy nginx-light socat``); not needed otherwise. With
              relays, ``direct`` runs again after them and every ratio is against the
              faster of its two runs each way.

``--commit`` runs each backend once per commit mode (``storage.storageDriver.commit``), the
modes alternating, ``--rounds`` times over: the PUT ratio of pointer against copy commits
(docs/adr/0006) on a machine whose load changes from minute to minute.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from benchmarks.run import emit_results, log, proc_cpu_times, proc_status_kib
from tests.fixtures.google_oauth import GoogleTokenEndpoint
from tests.fixtures.objectstores import (
    GcsEndpoint,
    LoopbackProcess,
    start_azurite,
    start_gcs_emulator,
    start_moto,
    start_zas,
)
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

MIB = 1 << 20
MB = 1_000_000
PART = 8 * MIB
ROOT = ("bench-admin", "bench-admin-password")
BLOCK = os.urandom(PART)


def blocks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        n = min(PART, size - sent)
        yield BLOCK if n == PART else BLOCK[:n]
        sent += n


class BlockReader(io.RawIOBase):
    """A file-like object of ``size`` bytes of the repeated block, for clients that read."""

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.size - self.pos)
        start = self.pos % PART
        take = min(n, PART - start)
        buf[:take] = BLOCK[start : start + take]
        self.pos += take
        return take

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.size)
        return self.pos

    def tell(self) -> int:
        return self.pos


def source(size: int) -> io.BufferedReader:
    """A buffered reader of ``size`` bytes: ``read(n)`` gives ``n`` bytes until the end, which
    some clients assume when they size their requests."""
    return io.BufferedReader(BlockReader(size), PART)


# The processes whose CPU a run bills (name -> pid: the backend server, the store), and the
# CPU seconds each phase cost them and this process (the clients), per GiB moved.
PIDS: dict[str, int] = {}
CPU: dict[str, dict[str, float]] = {}


def timed(fn: Callable[[], object], phase: str | None = None, size: int = 0) -> float:
    """Seconds ``fn`` took; with ``phase``, the CPU per GiB of ``size`` it cost each process
    in :data:`PIDS` and this one (``client``) is kept in :data:`CPU`: on two cores the clients,
    the store and the backend share the machine, and a ratio is read against their CPU."""
    before = {name: cpu_seconds(pid) for name, pid in PIDS.items()}
    own = time.process_time()
    started = time.perf_counter()
    fn()
    took = time.perf_counter() - started
    if phase:
        gib = size / (1 << 30)
        spent = {"client": time.process_time() - own}
        spent |= {name: cpu_seconds(pid) - before[name] for name, pid in PIDS.items()}
        CPU[phase] = {name: round(s / gib, 2) for name, s in spent.items()}
    return took


def rate(size: int, seconds: float) -> float:
    return round(size / MB / seconds, 1)


# ---- each backend's own client ------------------------------------------------------------


def direct_s3(
    url: str, access: str, secret: str, bucket: str, size: int, phase: str = ""
) -> tuple[float, float]:
    from boto3.s3.transfer import TransferConfig

    client = s3_client(url, access, secret)
    config = TransferConfig(multipart_chunksize=PART, max_concurrency=4)
    key = f"direct-{uuid.uuid4().hex}"
    put = timed(
        lambda: client.upload_fileobj(source(size), bucket, key, Config=config),
        f"{phase}direct_put",
        size,
    )

    def get() -> None:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        while body.read(MIB):
            pass

    return put, timed(get, f"{phase}direct_get", size)


def direct_azure(
    connection_string: str, container: str, size: int, phase: str = ""
) -> tuple[float, float]:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    blob = service.get_blob_client(container, f"direct-{uuid.uuid4().hex}")
    put = timed(
        lambda: blob.upload_blob(source(size), length=size, max_concurrency=4),
        f"{phase}direct_put",
        size,
    )

    def get() -> None:
        for _ in blob.download_blob().chunks():
            pass

    return put, timed(get, f"{phase}direct_get", size)


def direct_gcs(client: Any, bucket: str, size: int, phase: str = "") -> tuple[float, float]:
    blob = client.bucket(bucket).blob(f"direct-{uuid.uuid4().hex}", chunk_size=PART)
    put = timed(lambda: blob.upload_from_file(source(size), size=size), f"{phase}direct_put", size)

    def get() -> None:
        with blob.open("rb", chunk_size=PART) as f:
            while f.read(MIB):
                pass

    return put, timed(get, f"{phase}direct_get", size)


# ---- a plain proxy between the direct client and the backend -------------------------------


class Relay(LoopbackProcess):
    """A proxy on a free loopback port in front of ``target`` (a port), one worker, passing
    ``Host`` through (the direct clients sign for the address they connect to)."""

    ready_path = "/"

    def __init__(self, workdir: Path, target: int) -> None:
        super().__init__(workdir / f"{self.name}.log")
        self.workdir, self.target = workdir, target

    def stop(self) -> None:
        """Asked to stop first: nginx's workers outlive a killed master, holding the port."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        super().stop()


class HaproxyRelay(Relay):
    name = "haproxy"

    def command(self) -> list[str]:
        conf = self.workdir / "haproxy.cfg"
        conf.write_text(
            "global\n  nbthread 1\n  maxconn 256\n  tune.bufsize 262144\n"
            "defaults\n  mode http\n  option splice-auto\n  timeout connect 5s\n"
            "  timeout client 600s\n  timeout server 600s\n"
            f"frontend in\n  bind 127.0.0.1:{self.port}\n  default_backend out\n"
            f"backend out\n  server backend 127.0.0.1:{self.target}\n"
        )
        return ["haproxy", "-db", "-f", str(conf)]


class NginxRelay(Relay):
    name = "nginx"

    def command(self) -> list[str]:
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            "worker_processes 1;\ndaemon off;\nuser root;\n"
            f"pid {self.workdir}/nginx.pid;\nerror_log {self.workdir}/nginx-error.log;\n"
            "events { worker_connections 256; }\n"
            "http {\n  access_log off;\n  client_max_body_size 0;\n"
            f"  client_body_temp_path {self.workdir}/nginx-body;\n"
            f"  proxy_temp_path {self.workdir}/nginx-proxy;\n"
            "  proxy_request_buffering off;\n  proxy_buffer_size 256k;\n"
            "  proxy_buffers 8 256k;\n  proxy_busy_buffers_size 512k;\n"
            "  proxy_max_temp_file_size 0;\n"
            "  proxy_http_version 1.1;\n  proxy_read_timeout 600s;\n"
            f"  upstream backend {{ server 127.0.0.1:{self.target}; keepalive 8; }}\n"
            f"  server {{\n    listen 127.0.0.1:{self.port};\n"
            "    location / {\n      proxy_pass http://backend;\n"
            "      proxy_set_header Host $http_host;\n"
            '      proxy_set_header Connection "";\n    }\n  }\n}\n'
        )
        return ["nginx", "-p", str(self.workdir), "-c", str(conf)]


class SocatRelay(Relay):
    name = "socat"

    def command(self) -> list[str]:
        return [
            "socat",
            "-b",
            str(256 * 1024),
            f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr",
            f"TCP:127.0.0.1:{self.target}",
        ]


RELAYS: dict[str, type[Relay]] = {
    "haproxy": HaproxyRelay,
    "nginx": NginxRelay,
    "socat": SocatRelay,
}


def through_relays(
    relays: list[str],
    work: Path,
    backend_url: str,
    direct: Callable[[str, str], tuple[float, float]],
) -> dict[str, dict[str, float]]:
    """The direct client's (PUT, GET) seconds through each relay in front of the backend at
    ``backend_url`` (``http://127.0.0.1:PORT[/path]``), the client given the relay's URL."""
    address, _, path = backend_url.removeprefix("http://").partition("/")
    out: dict[str, dict[str, float]] = {}
    for name in relays:
        relay = RELAYS[name](work, int(address.rsplit(":", 1)[1])).start()
        PIDS["relay"] = backend_pid(relay)
        try:
            put_s, get_s = direct(relay.url + (f"/{path}" if path else ""), f"relay_{name}_")
        finally:
            relay.stop()
            PIDS.pop("relay", None)
        out[name] = {"put_s": put_s, "get_s": get_s}
    return out


# ---- through the store --------------------------------------------------------------------


def download(url: str, client: str) -> None:
    """GET ``url`` (following a redirect, without sending the credentials to another host)
    and drop the bytes, read in 1 MiB pieces."""
    if client == "httpx":
        with httpx.stream("GET", url, auth=ROOT, timeout=600, follow_redirects=True) as r:
            r.raise_for_status()
            for _ in r.iter_bytes(MIB):
                pass
        return
    import urllib3

    with urllib3.PoolManager(timeout=600) as pool:
        r = pool.request(
            "GET",
            url,
            headers=urllib3.make_headers(basic_auth=":".join(ROOT)),
            preload_content=False,
            redirect=True,  # urllib3 drops Authorization on a redirect to another host
        )
        if r.status != 200:
            raise RuntimeError(f"GET {url}: {r.status}")
        while r.read(MIB):
            pass
        r.release_conn()


def cpu_seconds(pid: int) -> float:
    return sum(proc_cpu_times(pid))


def backend_pid(server: Any) -> int:
    assert server.proc is not None
    return int(server.proc.pid)


def blob_digest(size: int) -> str:
    h = hashlib.sha256()
    for block in blocks(size):
        h.update(block)
    return "sha256:" + h.hexdigest()


def through_store(
    store: ServerProcess,
    size: int,
    small_seconds: float,
    get_client: str = "urllib3",
    redirect: bool = False,
) -> dict[str, Any]:
    assert store.proc is not None
    pid = store.proc.pid
    extra: dict[str, Any] = {}
    with httpx.Client(base_url=store.url, auth=ROOT, timeout=600) as c:
        c.put("/v1/buckets/bench").raise_for_status()
        rss_before = proc_status_kib(pid, "VmHWM")

        def put() -> None:
            r = c.put("/v1/buckets/bench/objects/big", content=blocks(size))
            r.raise_for_status()

        PIDS["store"] = pid
        put_s = timed(put, "store_put", size)
        rss_after = proc_status_kib(pid, "VmHWM")
        get_s = timed(
            lambda: download(f"{store.url}/v1/buckets/bench/objects/big", get_client),
            "store_get",
            size,
        )
        if redirect:
            digest = blob_digest(size)
            r = c.post("/v2/bench/blobs/uploads/", params={"digest": digest}, content=blocks(size))
            r.raise_for_status()
            url = f"{store.url}/v2/bench/blobs/{digest}"
            status = c.get(url).status_code
            if status == 307:
                extra["redirect_get_s"] = timed(
                    lambda: download(url, get_client), "redirect_get", size
                )
            elif status == 200:  # a backend the store cannot sign URLs for (GCS): proxied
                extra["redirect"] = "not offered: the blob GET is proxied"
            else:
                raise RuntimeError(f"redirect is on but the blob GET answered {status}")
    done = [0] * 8
    stop = time.monotonic() + small_seconds

    def worker(w: int) -> None:
        with httpx.Client(base_url=store.url, auth=ROOT, timeout=60) as c:
            i = 0
            while time.monotonic() < stop:
                c.put(f"/v1/buckets/bench/objects/small/{w}/{i}", content=BLOCK[:4096])
                i += 1
                done[w] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        **extra,
        "put_s": put_s,
        "get_s": get_s,
        "peak_rss_mib_start": round((rss_before or 0) / 1024, 1),
        "peak_rss_mib_after_put": round((rss_after or 0) / 1024, 1),
        "small_put_ops_s": round(sum(done) / small_seconds, 1),
    }


def start_store(work: Path, env: dict[str, str]) -> ServerProcess:
    env = {**env, "ZAS_ROOT_USER": ROOT[0], "ZAS_ROOT_PASSWORD": ROOT[1], "ZAS_LOG_LEVEL": "warn"}
    return ServerProcess(work / f"store-{uuid.uuid4().hex[:6]}", env=env).start(timeout=60)


def run_backend(
    name: str,
    work: Path,
    size: int,
    small_seconds: float,
    commit: str = "pointer",
    get_client: str = "urllib3",
    redirect: bool = False,
    relays: list[str] | None = None,
) -> dict[str, Any]:
    root = f"/bench-{uuid.uuid4().hex[:8]}"
    stop: list[Callable[[], object]] = []
    PIDS.clear()
    CPU.clear()
    direct_via: Callable[[str, str], tuple[float, float]]
    try:
        if name in ("moto", "zas"):
            server, endpoint = (start_moto if name == "moto" else start_zas)(work)
            stop.append(server.stop)
            if name == "zas":  # our S3 API with auth off: any signature is accepted
                endpoint.access_key, endpoint.secret_key = "any", "any-secret"

            def direct_via(url: str, phase: str) -> tuple[float, float]:
                e = endpoint
                return direct_s3(url, e.access_key, e.secret_key, e.bucket, size, phase)

            backend_url = endpoint.url
            env = endpoint.driver_env(work / f"{name}-secret", root)
        elif name == "azurite":
            server, az = start_azurite(work)
            stop.append(server.stop)

            def direct_via(url: str, phase: str) -> tuple[float, float]:
                return direct_azure(az.connection_string(url), az.container, size, phase)

            backend_url = az.url
            env = az.driver_env(work / "azure-key", root)
        elif name == "gcs":
            server, gcs = start_gcs_emulator(work)
            stop.append(server.stop)
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            gcs.client().create_bucket(bucket)

            def direct_via(url: str, phase: str) -> tuple[float, float]:
                return direct_gcs(GcsEndpoint(url).client(), bucket, size, phase)

            backend_url = gcs.url
            env = gcs.driver_env(bucket, root)
            if redirect:  # signing needs a service account key (its token from a stand-in)
                google = GoogleTokenEndpoint().__enter__()
                stop.append(lambda: google.__exit__(None, None, None))
                env["ZAS_STORAGE_STORAGEDRIVER_KEYFILE"] = str(google.write_key(work / "sa.json"))
        else:
            raise SystemExit(f"unknown backend {name!r}")
        PIDS["backend"] = backend_pid(server)
        direct = direct_via(backend_url, "")
        relayed = through_relays(relays or [], work, backend_url, direct_via)
        if relays:  # the first direct run warms the backend up: the faster of two, each way
            again = direct_via(backend_url, "again_")
            direct = (min(direct[0], again[0]), min(direct[1], again[1]))
        env["ZAS_STORAGE_STORAGEDRIVER_COMMIT"] = commit
        env["ZAS_STORAGE_STORAGEDRIVER_REDIRECT"] = "true" if redirect else "false"
        store = start_store(work, env)
        stop.append(store.stop)
        via = through_store(store, size, small_seconds, get_client, redirect)
    finally:
        for fn in reversed(stop):
            fn()
    result = {
        "direct_put_MB_s": rate(size, direct[0]),
        "direct_get_MB_s": rate(size, direct[1]),
        "store_put_MB_s": rate(size, via["put_s"]),
        "store_get_MB_s": rate(size, via["get_s"]),
        **{k: v for k, v in via.items() if not k.endswith("_s") or k.endswith("ops_s")},
    }
    result["cpu_s_per_gib"] = dict(CPU)
    result["put_ratio"] = round(result["store_put_MB_s"] / result["direct_put_MB_s"], 2)
    result["get_ratio"] = round(result["store_get_MB_s"] / result["direct_get_MB_s"], 2)
    for relay, took in relayed.items():
        for op in ("put", "get"):
            mb_s = rate(size, took[f"{op}_s"])
            result[f"relay_{relay}_{op}_MB_s"] = mb_s
            result[f"relay_{relay}_{op}_ratio"] = round(mb_s / result[f"direct_{op}_MB_s"], 2)
    if "redirect_get_s" in via:
        result["redirect_get_MB_s"] = rate(size, via["redirect_get_s"])
        result["redirect_get_ratio"] = round(
            result["redirect_get_MB_s"] / result["direct_get_MB_s"], 2
        )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--small-seconds", type=float, default=5.0)
    p.add_argument("--backends", default="moto,zas,azurite,gcs")
    p.add_argument("--commit", default="pointer", help="commit modes, comma-separated")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--get-client", choices=("urllib3", "httpx"), default="urllib3",
        help="the HTTP client of the GETs through the store (1 MiB reads)",
    )  # fmt: skip
    p.add_argument(
        "--redirect", action="store_true",
        help="also GET an OCI blob with storage.storageDriver.redirect on (307 to the backend)",
    )  # fmt: skip
    p.add_argument(
        "--relays", default="",
        help=f"also the direct client through each of these proxies ({','.join(RELAYS)})",
    )  # fmt: skip
    args = p.parse_args(argv)
    relays = [r for r in args.relays.split(",") if r]
    if unknown := set(relays) - set(RELAYS):
        p.error(f"unknown relays: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {"size_mib": args.size_mib, "runs": []}
    modes = args.commit.split(",")
    for rnd in range(args.rounds):
        for name in args.backends.split(","):
            for commit in modes if rnd % 2 == 0 else modes[::-1]:
                with tempfile.TemporaryDirectory(prefix=f"zas-bench-{name}-") as work:
                    log(f"{name} ({commit}, round {rnd + 1}): {args.size_mib} MiB direct, store")
                    run = run_backend(
                        name, Path(work), args.size_mib * MIB, args.small_seconds, commit,
                        args.get_client, args.redirect, relays,
                    )  # fmt: skip
                    run.update(backend=name, commit=commit, round=rnd + 1, load=os.getloadavg())
                    results["runs"].append(run)
                    log(f"{name} ({commit}): {run}")
    emit_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
