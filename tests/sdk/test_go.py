"""The Go SDK's own suite (``go test ./...`` in sdk/go) against a real server started here:
auth on (root user and an admin API token), a signing key, the staging Sigstore trusted root,
and the fault proxy in front of it with its control port. ``ZAS_TEST_URL`` and
``ZAS_TEST_TOKEN`` name the server and the admin token (what the Go suite needs to run against
any server), ``ZAS_TEST_FAULT_PROXY`` / ``ZAS_TEST_FAULT_CONTROL`` the proxy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fixtures.faultcontrol import FaultControl
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.server import ServerProcess, signing_key_pem

ROOT = Path(__file__).resolve().parents[2]
GO_SDK = ROOT / "sdk" / "go"
SIGSTORE = ROOT / "tests" / "fixtures" / "data" / "sigstore"
ROOT_USER = "go-root"
ROOT_PASSWORD = "go-root-password-123"


def go_env(tmp: Path) -> dict[str, str]:
    """The environment of the go tool: its caches in the checkout's ignored .work/go, offline
    (the SDK needs the standard library only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZAS_", "GO"))}
    env.update(
        GOCACHE=str(ROOT / ".work" / "go" / "cache"),
        GOPATH=str(ROOT / ".work" / "go" / "path"),
        TMPDIR=str(tmp),
        GOPROXY="off",
        GOTOOLCHAIN="local",
        GOTELEMETRY="off",
        CGO_ENABLED="0",
    )
    return env


def go() -> str:
    path = shutil.which("go")
    assert path, "go is not installed: run `make setup` (Debian: apt-get install golang-go)"
    return path


@pytest.mark.timeout(900)
def test_go_sdk_suite(tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    key.write_text(signing_key_pem())
    key.chmod(0o600)
    config = {
        "extensions": {
            "supplychain": {
                "signing": {"keyFile": str(key)},
                "trustedRoot": str(SIGSTORE / "trusted_root.staging.json"),
            }
        }
    }
    server = ServerProcess(
        tmp_path / "data",
        config=config,
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    ).start()
    try:
        r = httpx.post(
            f"{server.url}/v1/tokens",
            json={"name": "go-sdk-tests", "roles": ["admin"]},
            auth=(ROOT_USER, ROOT_PASSWORD),
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        with FaultProxy(server.url) as proxy, FaultControl(proxy) as control:
            env = go_env(tmp_path)
            env.update(
                ZAS_TEST_URL=server.url,
                ZAS_TEST_TOKEN=token,
                ZAS_TEST_FAULT_PROXY=proxy.url,
                ZAS_TEST_FAULT_CONTROL=control.url,
                # The Go suite's large multipart upload: 200 MiB when run by hand (the issue's
                # size, ~13 s here); 64 MiB in `make test` (~4 s): five 16 MiB parts with four
                # in flight still exercise the parallel path, and the Python SDK's suite moves
                # 200 MiB through the same server routes.
                ZAS_TEST_GO_MULTIPART_MIB=os.environ.get("ZAS_TEST_GO_MULTIPART_MIB", "64"),
            )
            run = subprocess.run(
                ["timeout", "840", go(), "test", "-count=1", "-v", "./..."],
                cwd=GO_SDK,
                env=env,
                capture_output=True,
                text=True,
            )
    finally:
        server.stop()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-20000:]
    passed = [line for line in out.splitlines() if line.startswith("--- PASS")]
    assert len(passed) >= 10, out[-5000:]


def test_go_sdk_is_gofmt_and_vet_clean(tmp_path: Path) -> None:
    env = go_env(tmp_path)
    fmt = subprocess.run(
        ["timeout", "120", shutil.which("gofmt") or "gofmt", "-l", "."],
        cwd=GO_SDK,
        env=env,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0 and fmt.stdout == "", fmt.stdout + fmt.stderr
    vet = subprocess.run(
        ["timeout", "300", go(), "vet", "./..."],
        cwd=GO_SDK,
        env=env,
        capture_output=True,
        text=True,
    )
    assert vet.returncode == 0, vet.stdout + vet.stderr


def test_the_go_suite_says_what_to_set(tmp_path: Path) -> None:
    """Without a server to test against, the suite fails and names the variables."""
    run = subprocess.run(
        ["timeout", "300", go(), "test", "-count=1", "-run", "TestRoundTrip", "./..."],
        cwd=GO_SDK,
        env=go_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "ZAS_TEST_URL" in run.stdout + run.stderr and "ZAS_TEST_TOKEN" in run.stdout
