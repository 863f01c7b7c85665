"""End-to-end fixtures: real client tools (installed by scripts/setup.sh) against the server."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import ServerProcess

ACCESS_KEY = "e2e-root"
SECRET_KEY = "e2e-root-secret-key"


def tool(name: str) -> str:
    # The Debian packages first: a pyenv shim of the same name may run another version.
    path = shutil.which(name, path=os.pathsep.join(["/usr/bin", "/bin", os.environ["PATH"]]))
    assert path, f"{name} is not installed: run scripts/setup.sh (it installs the Debian package)"
    return path


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("e2e-s3") / "data"
    # Authentication on: every tool request is SigV4-signed and verified.
    env = {"ZAS_ROOT_USER": ACCESS_KEY, "ZAS_ROOT_PASSWORD": SECRET_KEY}
    proc = ServerProcess(data, env=env).start()
    yield proc
    proc.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME, so no user config leaks into the tools."""
    h = tmp_path / "home"
    h.mkdir()
    return h


def run(cmd: list[str], env: dict[str, str], timeout: float = 300) -> str:
    full_env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **env}
    result = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(cmd)} exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}"
    )
    return result.stdout
