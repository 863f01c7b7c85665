"""API fuzzing: schemathesis against the served ``/v1/openapi.json``, as root and anonymously.

Every documented operation is called with generated valid and invalid data (schemathesis'
``examples``, ``coverage`` and ``fuzzing`` phases), and each answer is checked: no 5xx, a
status code the document lists, a body that matches the documented schema, and for a method an
operation does not take, 405 with an ``Allow`` header. The budget is bounded (a few examples
per operation, deterministic generation, one worker), so a run is reproducible. The bucket and
objects named in tests/fixtures/fuzz/schemathesis.toml exist during the run, so part of the
requests reach real resources.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ServerProcess

CONFIG = Path(__file__).parents[1] / "fixtures" / "fuzz" / "schemathesis.toml"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
ROOT = ("fuzzroot", "fuzz-root-password-1")
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "unsupported_method",
        "allow_header_conformance",
    )
)
EXAMPLES_PER_OPERATION = 3
# The coverage phase (boundary and invalid values of every parameter, methods an operation does
# not take) is most of the run's requests: as root, where they reach the handlers. Anonymous
# requests stop at authentication, which the examples and random fuzzing already cover.
PHASES = {"root": "examples,coverage,fuzzing", "anonymous": "examples,fuzzing"}


@pytest.fixture
def fuzz_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path / "data",
        env={"ZAS_ROOT_USER": ROOT[0], "ZAS_ROOT_PASSWORD": ROOT[1]},
        # The fuzzer sends wrong credentials on purpose: no lock-out (429) for them.
        config={"auth": {"lockout": {"attempts": 0, "addressAttempts": 0}}},
    ).start()
    with server.client(auth=ROOT) as client:
        assert client.put("/v1/buckets/fuzz-data").status_code == 201
        for key, content_type, body in (
            ("doc.json", "application/json", b'{"a": [1, 2]}'),
            ("dir/notes.txt", "text/plain", b"notes"),
        ):
            r = client.put(
                f"/v1/buckets/fuzz-data/objects/{key}",
                content=body,
                headers={"Content-Type": content_type},
            )
            assert r.status_code == 201, r.text
    try:
        yield server
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("who", ["root", "anonymous"])
def test_v1_api_conforms_to_its_openapi_document(
    fuzz_server: ServerProcess, who: str, tmp_path: Path
) -> None:
    auth = ["--auth", ":".join(ROOT)] if who == "root" else []
    cmd = [
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{fuzz_server.url}/v1/openapi.json",
        *auth,
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--generation-deterministic",
        "--workers",
        "1",
        "--phases",
        PHASES[who],
        "--request-timeout",
        "30",
    ]
    operations = sum(
        m in {"get", "put", "post", "delete", "head", "patch"}
        for item in httpx.get(f"{fuzz_server.url}/v1/openapi.json").json()["paths"].values()
        for m in item
    )
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    run = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    out = run.stdout + run.stderr
    failures = out[out.find("FAILURES") :] if "FAILURES" in out else out[-6000:]
    assert run.returncode == 0, f"schemathesis found problems:\n{failures[:20000]}"
    # The budget was spent on the API: every operation of the document was exercised.
    generated = re.search(r"(\d+) generated", out)
    assert generated and int(generated.group(1)) >= 2 * operations, out[-3000:]
