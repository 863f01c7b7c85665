"""Running the server as an operator would: auth, probes, metrics, logs, config, signals."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import SERVER_BIN, ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

# ---- authentication ------------------------------------------------------------------------


def test_auth_enforced_with_root_credentials(auth_server: ServerProcess) -> None:
    with auth_server.client() as c:
        r = c.get("/v1/buckets")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith('Basic realm="zot-artifact-store"')
        assert r.json()["code"] == "Unauthenticated"
        r = c.put("/v1/buckets/anon-bucket")
        assert r.status_code == 401
        r = c.get("/v1/buckets", auth=(ROOT_USER, "wrong-password"))
        assert r.status_code == 401 and r.json()["code"] == "Unauthenticated"
        r = c.get("/v1/buckets", auth=("someone", ROOT_PASSWORD))
        assert r.status_code == 401
        r = c.get("/v1/buckets", headers={"Authorization": "Basic !!!notbase64"})
        assert r.status_code == 401
        # Anonymous upload into a missing bucket is refused before the body is read.
        r = c.put("/v1/buckets/anon-bucket/objects/k", content=b"x")
        assert r.status_code == 401

        root = (ROOT_USER, ROOT_PASSWORD)
        assert c.put("/v1/buckets/auth-bucket", auth=root).status_code == 201
        assert (
            c.put("/v1/buckets/auth-bucket/objects/k", content=b"secret", auth=root).status_code
            == 201
        )
        assert c.get("/v1/buckets/auth-bucket/objects/k", auth=root).content == b"secret"
        # Private bucket: anonymous read denied.
        assert c.get("/v1/buckets/auth-bucket/objects/k").status_code == 401
        # Public bucket: anonymous read and list allowed, writes still denied.
        assert (
            c.put("/v1/buckets/auth-bucket", json={"public_read": True}, auth=root).status_code
            == 200
        )
        assert c.get("/v1/buckets/auth-bucket/objects/k").content == b"secret"
        assert c.get("/v1/buckets/auth-bucket/objects").status_code == 200
        assert c.put("/v1/buckets/auth-bucket/objects/k", content=b"vandal").status_code == 401
        assert c.delete("/v1/buckets/auth-bucket/objects/k").status_code == 401
        assert c.get("/v1/buckets/auth-bucket/objects/k", auth=root).content == b"secret"
        # Probes and metrics stay open.
        assert c.get("/health/live").status_code == 200
        assert c.get("/health/ready").status_code == 200
        assert c.get("/metrics").status_code == 200
    # No secret in the log.
    assert ROOT_PASSWORD not in auth_server.log_path.read_text()


def test_open_server_warns_loudly(server: ServerProcess) -> None:
    warnings = [line for line in server.log_lines() if line.get("level") == "warning"]
    assert any("AUTHENTICATION IS DISABLED" in line["message"] for line in warnings)


# ---- probes ---------------------------------------------------------------------------------


def test_probes(client: httpx.Client, server: ServerProcess) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    r = client.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["checks"]["metadata"]["status"] == "ok"
    assert r.json()["checks"]["storage"]["status"] == "ok"
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert re.match(r"^\d+\.\d+\.\d+", health["version"])
    assert health["metadata_backend"] == ("sqlite" if server.backend == "sqlite" else "mongodb")


def test_ready_names_failing_storage_check(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data").start()
    try:
        with proc.client() as c:
            assert c.get("/health/ready").status_code == 200
            # Make the blob store unable to write: its temp directory becomes a file.
            tmp_dir = proc.data_dir / "tmp"
            shutil.rmtree(tmp_dir)
            tmp_dir.write_text("not a directory")
            r = c.get("/health/ready")
            assert r.status_code == 503
            body = r.json()
            assert body["code"] == "ServiceUnavailable"
            assert "storage check failed" in body["message"]
            assert "metadata" not in body["message"]
            assert c.get("/health/live").status_code == 200
            assert c.get("/health").status_code == 503
            tmp_dir.unlink()
            tmp_dir.mkdir()
            assert c.get("/health/ready").status_code == 200
    finally:
        proc.stop()


# ---- metrics, request ids, logs -------------------------------------------------------------

OBJ = r"/v1/buckets/\{bucket\}/objects/\{key\}"


def test_metrics(client: httpx.Client, bucket: str) -> None:
    client.put(f"/v1/buckets/{bucket}/objects/m", content=b"x" * 1000)
    client.get(f"/v1/buckets/{bucket}/objects/m")
    client.get(f"/v1/buckets/{bucket}/objects/missing")
    text = client.get("/metrics").text
    assert re.search(
        r'zas_http_requests_total\{method="PUT",route="/v1/buckets/\{bucket\}/objects/\{key\}",'
        r'status="201"\} [1-9]',
        text,
    ), text[:3000]
    assert re.search(
        r'zas_http_requests_total\{method="GET",route="/v1/buckets/\{bucket\}/objects/\{key\}",'
        r'status="404"\} [1-9]',
        text,
    )
    assert "zas_http_request_duration_seconds_bucket" in text
    m = re.search(
        r'zas_http_request_bytes_total\{method="PUT",route="' + OBJ + r'"\} ([0-9.e+]+)',
        text,
    )
    assert m and float(m.group(1)) >= 1000
    assert re.search(
        r'zas_http_response_bytes_total\{method="GET",route="' + OBJ + r'"\} ',
        text,
    )
    assert "zas_http_requests_in_flight" in text
    # No raw user paths as labels (cardinality): bucket names never appear.
    assert bucket not in text


def test_request_id(client: httpx.Client, server: ServerProcess, bucket: str) -> None:
    r = client.get(f"/v1/buckets/{bucket}", headers={"X-Request-Id": "my-trace-123"})
    assert r.headers["x-request-id"] == "my-trace-123"
    r = client.get("/v1/buckets/nope-nope-nope")
    generated = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert r.json()["request_id"] == generated
    # Hostile ids are replaced, not echoed.
    r = client.get("/health/live", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"
    time.sleep(0.2)
    lines = server.log_lines()
    mine = [line for line in lines if line.get("request_id") == "my-trace-123"]
    assert mine and mine[-1]["status"] == 200 and mine[-1]["route"] == "/v1/buckets/{bucket}"
    assert any(line.get("request_id") == generated and line.get("status") == 404 for line in lines)


# ---- configuration ------------------------------------------------------------------------


def test_the_command_line_helps_and_names_the_subcommand_it_refuses() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SERVER_BIN, *args], capture_output=True, text=True, timeout=30)

    typo = cli("serve", "--prot", "9000")
    assert typo.returncode == 2
    assert typo.stderr.startswith("usage: zot-artifact-store serve")
    assert "unrecognized arguments: --prot 9000 (did you mean --port?)" in typo.stderr
    gc = cli("gc", "--dryrun")
    assert gc.returncode == 2 and "(did you mean --dry-run?)" in gc.stderr
    assert "zot-artifact-store gc: error" in gc.stderr
    helped = cli("serve", "--help")
    assert helped.returncode == 0
    for text in ("ZAS_ROOT_USER", "ZAS_ROOT_PASSWORD", "_FILE", "ZAS_METADATA_URI", "examples:"):
        assert text in helped.stdout, text
    script = cli("completion", "bash")
    assert script.returncode == 0
    registered = subprocess.run(
        ["bash", "-c", "source /dev/stdin; complete -p zot-artifact-store"],
        input=script.stdout,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert registered.returncode == 0 and "zot-artifact-store" in registered.stdout, registered
    assert cli("completion", "fish").returncode == 2


def test_invalid_config_fails_at_start(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("http:\n  port: 99999\n  adress: x\nlog:\n  level: loud\n")
    result = subprocess.run(
        [SERVER_BIN, "serve", "--config", str(cfg), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "http.port: value 99999 is not allowed" in result.stderr
    assert "http.adress: unknown field; did you mean http.address?" in result.stderr
    assert "log.level: value 'loud'" in result.stderr

    check = subprocess.run(
        [SERVER_BIN, "config", "check", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 1
    assert "3 problem(s)" in check.stderr

    good = tmp_path / "good.yaml"
    good.write_text("http:\n  address: 127.0.0.1\n  port: 5000\nstorage:\n  gcDelay: 2h\n")
    check = subprocess.run(
        [SERVER_BIN, "config", "check", str(good)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout

    env = {**os.environ, "ZAS_HTTP_PORT": "notaport"}
    result = subprocess.run(
        [SERVER_BIN, "config", "check", str(good)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 1
    assert "ZAS_HTTP_PORT" in result.stderr


def test_env_overrides_and_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "root-password"
    secret.write_text("from-a-file-secret\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("storage:\n  rootDirectory: /nonexistent/should-be-overridden\n")
    data = tmp_path / "elsewhere"
    proc = ServerProcess(
        data,
        config=cfg,
        data_dir_flag=False,
        env={
            "ZAS_STORAGE_ROOTDIRECTORY": str(data),
            "ZAS_ROOT_USER": "fileuser",
            "ZAS_ROOT_PASSWORD_FILE": str(secret),
        },
    )
    proc.start()
    try:
        with proc.client() as c:
            assert c.get("/v1/buckets").status_code == 401
            assert c.get("/v1/buckets", auth=("fileuser", "from-a-file-secret")).status_code == 200
            assert (
                c.put("/v1/buckets/env-bucket", auth=("fileuser", "from-a-file-secret")).status_code
                == 201
            )
        assert (data / "metadata.db").exists()
        assert (data / "blobs").is_dir()
    finally:
        proc.stop()


# ---- signals and crashes ------------------------------------------------------------------


def _raw_put_start(port: int, path: str, total: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {total}\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    sock.sendall(head + first)
    return sock


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "mongodb"])
def test_sigkill_mid_upload_leaves_no_partial_object(
    tmp_path: Path, backend: str, metadata_uri_for
) -> None:
    data_dir = tmp_path / "data"
    uri = metadata_uri_for(backend, data_dir)
    proc = ServerProcess(data_dir, metadata_uri=uri).start()
    original = os.urandom(1 << 20)
    with proc.client() as c:
        assert c.put("/v1/buckets/crash").status_code == 201
        assert c.put("/v1/buckets/crash/objects/obj", content=original).status_code == 201
    # Start a 512 MiB upload over the same key and send 64 MiB of it.
    chunk = os.urandom(1 << 20)
    sock = _raw_put_start(proc.port, "/v1/buckets/crash/objects/obj", 512 << 20, chunk)
    for _ in range(63):
        sock.sendall(chunk)
    tmp = data_dir / "tmp"  # tmp/<instance>/ holds each running instance's partial files

    def partial_files() -> list[Path]:
        return [f for d in tmp.iterdir() if d.is_dir() for f in d.iterdir()]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until the server has written some of it
        if any(f.stat().st_size > 0 for f in partial_files()):
            break
        time.sleep(0.05)
    assert partial_files(), "the upload should be in progress in tmp/<instance>/"
    killed = {p.name for p in tmp.iterdir()}
    proc.kill()
    sock.close()

    proc2 = ServerProcess(data_dir, metadata_uri=uri).start()
    try:
        # The restarted server swept the dead instance's directory, lock and partial file.
        assert killed.isdisjoint(p.name for p in tmp.iterdir())
        assert partial_files() == []
        with proc2.client() as c:
            r = c.get("/v1/buckets/crash/objects/obj")
            assert r.status_code == 200
            assert r.content == original
            listed = c.get("/v1/buckets/crash/objects").json()["objects"]
            assert [o["key"] for o in listed] == ["obj"]
            assert listed[0]["sha256"] == hashlib.sha256(original).hexdigest()
    finally:
        proc2.stop()


@pytest.mark.slow
def test_sigterm_finishes_in_flight_request(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data").start()
    with proc.client() as c:
        assert c.put("/v1/buckets/term").status_code == 201
    body = os.urandom(8 << 20)
    sock = _raw_put_start(proc.port, "/v1/buckets/term/objects/obj", len(body), body[: 1 << 20])
    time.sleep(0.3)
    assert proc.proc is not None
    proc.proc.send_signal(15)
    time.sleep(0.3)
    # New connections are refused while the in-flight upload completes.
    with pytest.raises(httpx.ConnectError):
        httpx.get(proc.url + "/health/live", timeout=2)
    sock.sendall(body[1 << 20 :])
    sock.settimeout(20)
    response = b""
    while b"\r\n\r\n" not in response:
        piece = sock.recv(65536)
        if not piece:
            break
        response += piece
    sock.close()
    assert response.startswith(b"HTTP/1.1 201"), response[:200]
    assert proc.proc.wait(30) == 0
    # The object is there after a restart.
    proc2 = ServerProcess(tmp_path / "data").start()
    try:
        with proc2.client() as c:
            assert c.get("/v1/buckets/term/objects/obj").content == body
    finally:
        proc2.stop()
    logs = proc.log_path.read_text()
    assert '"message": "stopped"' in logs


def test_cli_versions() -> None:
    out = subprocess.run([SERVER_BIN, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("zot-artifact-store ")
    client_bin = str(Path(sys.executable).with_name("zot-artifacts"))
    out = subprocess.run([client_bin, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("zot-artifacts ")


# ---- worker processes (http.workers) -------------------------------------------------------


def _workers(proc: ServerProcess) -> list[int]:
    assert proc.proc is not None
    pid = proc.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _served_by(proc: ServerProcess, bucket: str, n: int) -> set[int]:
    """Send ``n`` GETs, each on its own connection; the pids that logged serving them."""
    path = f"/v1/buckets/{bucket}"
    before = len(proc.log_lines())
    with proc.client() as c:
        for _ in range(n):
            assert c.get(path, headers={"Connection": "close"}).status_code == 200
    time.sleep(0.2)
    lines = proc.log_lines()[before:]
    served = [line for line in lines if line.get("path") == path and line["method"] == "GET"]
    assert len(served) == n
    return {line["pid"] for line in served}


def _requests_total(proc: ServerProcess, route: str) -> float:
    with proc.client() as c:
        text = c.get("/metrics", headers={"Connection": "close"}).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("zas_http_requests_total{") and f'route="{route}"' in line
    )


@pytest.mark.slow
def test_workers_share_the_port_the_metrics_and_are_replaced(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data", env={"ZAS_HTTP_WORKERS": "2"}).start()
    try:
        w1, w2 = _workers(proc)
        with proc.client() as c:
            assert c.put("/v1/buckets/shared").status_code == 201
        # Freeze one worker: the other must accept every connection, and vice versa.
        os.kill(w1, signal.SIGSTOP)
        try:
            assert _served_by(proc, "shared", 10) == {w2}
        finally:
            os.kill(w1, signal.SIGCONT)
        os.kill(w2, signal.SIGSTOP)
        try:
            assert _served_by(proc, "shared", 10) == {w1}
            # Served by w1, the metrics count what w2 served too (multiprocess aggregation).
            assert _requests_total(proc, "/v1/buckets/{bucket}") == 21  # 1 PUT + 20 GETs
        finally:
            os.kill(w2, signal.SIGCONT)

        # A worker that dies is replaced; the service keeps answering.
        os.kill(w1, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = _workers(proc)
            if len(now) == 2 and w1 not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and w2 in now and w1 not in now
        with proc.client() as c:
            assert c.get("/health/ready").status_code == 200
    finally:
        code = proc.stop()
    assert code == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in now)


@pytest.mark.slow
def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data", env={"ZAS_HTTP_WORKERS": "2"}).start()
    workers = _workers(proc)
    assert len(workers) == 2
    proc.kill()

    def alive() -> list[int]:  # a zombie waits for init to reap it: it counts as gone
        return [p for p in workers if _state(p) not in ("gone", "Z")]

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alive():
        time.sleep(0.1)
    assert alive() == []
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", proc.port))


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rindex(")") + 2]


# ---- garbage collection ---------------------------------------------------------------------


def _blob_path(data_dir: Path, content: bytes) -> Path:
    hexd = hashlib.sha256(content).hexdigest()
    return data_dir / "blobs" / "sha256" / hexd[:2] / hexd


@pytest.mark.slow
def test_server_collects_unreferenced_blobs_periodically(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"ZAS_STORAGE_GCINTERVAL": "1s", "ZAS_STORAGE_GCDELAY": "0s"}
    proc = ServerProcess(data_dir, env=env).start()
    old, new, kept = b"old content " * 100, b"new content " * 100, b"kept " * 100
    try:
        with proc.client() as c:
            assert c.put("/v1/buckets/gc-test").status_code == 201
            assert c.put("/v1/buckets/gc-test/objects/k", content=old).status_code == 201
            assert c.put("/v1/buckets/gc-test/objects/other", content=kept).status_code == 201
            assert _blob_path(data_dir, old).exists()
            assert c.put("/v1/buckets/gc-test/objects/k", content=new).status_code == 200
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _blob_path(data_dir, old).exists():
                time.sleep(0.2)
            assert not _blob_path(data_dir, old).exists(), "the replaced blob was not collected"
            assert _blob_path(data_dir, new).exists() and _blob_path(data_dir, kept).exists()
            assert c.get("/v1/buckets/gc-test/objects/k").content == new
            assert c.get("/v1/buckets/gc-test/objects/other").content == kept
    finally:
        assert proc.stop() == 0
