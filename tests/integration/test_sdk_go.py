"""The Go SDK's own suite (``go test ./...`` in sdk/go) against a real server started here:
auth on (root user and an admin API token), a signing key, the staging Sigstore trusted root,
a real OpenID provider it trusts (client credentials, and a GitHub-Actions-shaped runner token
endpoint for the workload exchange), and the fault proxy in front of it with its control port.
``ZAS_TEST_URL`` and ``ZAS_TEST_TOKEN`` name the server and the admin token (what the Go suite
needs to run against any server), ``ZAS_TEST_FAULT_*`` the proxy, ``ZAS_TEST_OIDC_*`` and
``ZAS_TEST_ACTIONS_*`` the identity provider."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.faultcontrol import FaultControl
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.oidc import DEFAULT_SECRET, OIDCProvider, RunnerTokenEndpoint
from tests.fixtures.server import ServerProcess, signing_key_pem

ROOT = Path(__file__).resolve().parents[2]
GO_SDK = ROOT / "sdk" / "go"
SIGSTORE = ROOT / "tests" / "fixtures" / "data" / "sigstore"
ROOT_USER = "go-root"
ROOT_PASSWORD = "go-root-password-123"
AUDIENCE = "zot-artifact-store"
RUNNER_SECRET = "runner-secret-for-go"


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


def identity_provider(tmp: Path) -> OIDCProvider:
    """A robot with the writer role (3 s tokens: the Go suite sees one refreshed) and a CI job
    whose token carries GitHub-shaped claims."""
    clients = [
        {"client_id": "ci-robot", "client_secret": DEFAULT_SECRET, "roles": ["zas-writer"]},
        {
            "client_id": "gh-release",
            "client_secret": DEFAULT_SECRET,
            "claims": {"repository": "acme/app", "ref": "refs/heads/main"},
        },
    ]
    config = {"audience": AUDIENCE, "access_token_ttl": 3, "clients": clients}
    return OIDCProvider(config, tmp / "oidc").start()


def server_config(tmp: Path, issuer: str) -> dict[str, Any]:
    key = tmp / "signing.pem"
    key.write_text(signing_key_pem())
    key.chmod(0o600)
    trust = {
        "name": "acme-releases",
        "issuer": issuer,
        "audience": AUDIENCE,
        "claims": {"repository": "acme/*", "ref": "refs/heads/main"},
        "roles": ["writer"],
        "expiry": "10m",
    }
    return {
        "auth": {
            "oidc": [{"issuer": issuer, "audience": AUDIENCE, "roleMap": {"zas-writer": "writer"}}],
            "trust": [trust],
        },
        "extensions": {
            "supplychain": {
                "signing": {"keyFile": str(key)},
                "trustedRoot": str(SIGSTORE / "trusted_root.staging.json"),
            }
        },
    }


@pytest.mark.timeout(900)
def test_go_sdk_suite(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        idp = identity_provider(tmp_path)
        stack.callback(idp.stop)
        runner = RunnerTokenEndpoint(idp, RUNNER_SECRET)
        stack.callback(runner.close)
        server = ServerProcess(
            tmp_path / "data",
            config=server_config(tmp_path, idp.issuer),
            env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
        ).start()
        stack.callback(server.stop)
        r = httpx.post(
            f"{server.url}/v1/tokens",
            json={"name": "go-sdk-tests", "roles": ["admin"]},
            auth=(ROOT_USER, ROOT_PASSWORD),
        )
        assert r.status_code == 201, r.text
        proxy = stack.enter_context(FaultProxy(server.url))
        control = stack.enter_context(FaultControl(proxy))
        env = go_env(tmp_path)
        env.update(
            ZAS_TEST_URL=server.url,
            ZAS_TEST_TOKEN=r.json()["token"],
            ZAS_TEST_FAULT_PROXY=proxy.url,
            ZAS_TEST_FAULT_CONTROL=control.url,
            ZAS_TEST_OIDC_ISSUER=idp.issuer,
            ZAS_TEST_OIDC_AUDIENCE=AUDIENCE,
            ZAS_TEST_OIDC_CLIENT="ci-robot",
            ZAS_TEST_OIDC_SECRET=DEFAULT_SECRET,
            ZAS_TEST_ACTIONS_TOKEN_URL=runner.url,
            ZAS_TEST_ACTIONS_TOKEN=RUNNER_SECRET,
            # The Go suite's large multipart upload: 200 MiB when run by hand (the issue's
            # size, ~13 s here); 64 MiB in `make test` (~4 s): five 16 MiB parts with four
            # in flight still exercise the parallel path, and the Python SDK's suite moves
            # 200 MiB through the same server routes.
            ZAS_TEST_GO_MULTIPART_MIB=os.environ.get("ZAS_TEST_GO_MULTIPART_MIB", "64"),
        )
        # With a C compiler the suite runs under the race detector (parallel parts, shared
        # token caches, retried bodies); without one, plainly.
        race = ["-race"] if shutil.which("gcc") else []
        if race:
            env["CGO_ENABLED"] = "1"
        run = subprocess.run(
            ["timeout", "840", go(), "test", *race, "-count=1", "-v", "./..."],
            cwd=GO_SDK,
            env=env,
            capture_output=True,
            text=True,
        )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-20000:]
    passed = [line for line in out.splitlines() if line.startswith("--- PASS")]
    assert len(passed) >= 30, out[-5000:]
    assert not [line for line in out.splitlines() if line.startswith("--- SKIP")], out[-5000:]


@pytest.mark.parametrize("module", [GO_SDK, ROOT / "benchmarks" / "go"], ids=["sdk", "bench"])
def test_go_code_is_gofmt_and_vet_clean(module: Path, tmp_path: Path) -> None:
    """The SDK, and the benchmark program built on it (which uses the SDK from this checkout
    through a replace directive)."""
    env = go_env(tmp_path)
    fmt = subprocess.run(
        ["timeout", "120", shutil.which("gofmt") or "gofmt", "-l", "."],
        cwd=module,
        env=env,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0 and fmt.stdout == "", fmt.stdout + fmt.stderr
    vet = subprocess.run(
        ["timeout", "300", go(), "vet", "./..."],
        cwd=module,
        env={**env, "GOFLAGS": "-mod=mod"},
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
