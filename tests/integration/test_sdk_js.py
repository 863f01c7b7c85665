"""The JavaScript/TypeScript SDK's own suite (sdk/js, `node --test`) against a live server:
this test starts the server with auth on and the fault proxy in front of it (with its control
port, as for the Go SDK), makes an admin API token and runs `npm test` with ZAS_TEST_URL,
ZAS_TEST_TOKEN, ZAS_TEST_FAULT_PROXY and ZAS_TEST_FAULT_CONTROL; every scenario the suite
reports must pass. The generated OpenAPI types must match docs/openapi.json,
and the SDK must be lint clean (tsc strict, biome)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.faultcontrol import FaultControl
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "js"
ADMIN = ("js-admin", "js-admin-password")


def npm(*args: str, env: dict[str, str] | None = None, timeout: int = 900) -> str:
    out = subprocess.run(
        ["npm", *args], cwd=SDK, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip
    assert out.returncode == 0, f"npm {' '.join(args)}:\n{out.stdout[-6000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    assert (SDK / "node_modules").is_dir(), "sdk/js has no node_modules: run make setup"
    env = {"ZAS_ROOT_USER": ADMIN[0], "ZAS_ROOT_PASSWORD": ADMIN[1]}
    proc = ServerProcess(tmp_path_factory.mktemp("sdk-js") / "data", env=env).start()
    yield proc
    proc.stop()


def test_the_js_sdk_suite_passes_against_a_live_server(store: ServerProcess) -> None:
    with store.client(auth=ADMIN) as admin:
        made = admin.post("/v1/tokens", json={"name": "js-suite", "roles": ["admin"]})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
    with FaultProxy(store.url) as proxy, FaultControl(proxy) as control:
        env = {
            "ZAS_TEST_URL": store.url,
            "ZAS_TEST_TOKEN": token,
            "ZAS_TEST_FAULT_PROXY": proxy.url,
            "ZAS_TEST_FAULT_CONTROL": control.url,
        }
        report = npm("test", env=env)
    # node --test's TAP summary: every test ran and passed, none skipped or left to do.
    summary = dict(
        line.removeprefix("# ").split(" ", 1)
        for line in report.splitlines()
        if line.startswith("# ") and line.count(" ") == 2
    )
    assert int(summary["tests"]) >= 14 and summary["fail"] == "0", report[-3000:]
    assert summary["skipped"] == "0" and summary["todo"] == "0", report[-3000:]


def test_the_js_sdk_fails_saying_what_to_set_without_a_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAS_TEST_")}
    out = subprocess.run(
        ["npm", "test"], cwd=SDK, capture_output=True, text=True, timeout=300, env=env,
        check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "set ZAS_TEST_URL and ZAS_TEST_TOKEN" in out.stdout + out.stderr


def test_the_js_sdk_types_match_the_openapi_document_and_lint_is_clean(tmp_path: Path) -> None:
    fresh = tmp_path / "openapi.d.ts"
    npm("exec", "--", "openapi-typescript", str(ROOT / "docs" / "openapi.json"), "-o", str(fresh))
    committed = SDK / "src" / "openapi.d.ts"
    assert fresh.read_text() == committed.read_text(), (
        "sdk/js/src/openapi.d.ts is stale: run `npm run gen` in sdk/js"
    )
    npm("run", "lint")
    assert shutil.which("node")
