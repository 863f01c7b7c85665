"""The actions' venv setup (actions/_shared/setup-venv.sh) and its lock: a setup that was
killed while holding the lock must not block every later run, and a live holder is waited
for only so long. The venv itself is faked (a ``python`` whose ``-m venv`` makes an empty
venv whose pip does nothing), so these tests check the locking, not pip."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ci.runner import REPO

SETUP = REPO / "actions/_shared/setup-venv.sh"


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    exe = tmp_path / "python-fake"
    exe.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = -m ] && [ "$2" = venv ]; then\n'
        '  mkdir -p "$3/bin" && printf "#!/bin/sh\\nexit 0\\n" > "$3/bin/python"\n'
        '  chmod +x "$3/bin/python"; exit 0\n'
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    exe.chmod(0o755)
    return exe


def setup(
    root: Path, python: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ZAS_"))}
    return subprocess.run(
        ["bash", str(SETUP)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**base, "ZAS_ACTION_VENV_ROOT": str(root), "ZAS_ACTION_PYTHON": str(python), **env},
    )


def fresh_venv(tmp_path: Path, python: Path) -> tuple[Path, Path]:
    """A venv root where the venv is not built yet: (root, venv)."""
    root = tmp_path / "root"
    root.mkdir()
    first = setup(root, python)
    assert first.returncode == 0, first.stderr
    venv = Path(first.stdout.strip().splitlines()[-1]).parents[1]
    shutil.rmtree(venv)
    return root, venv


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_lock_left_by_a_killed_setup_is_taken_over(tmp_path: Path, fake_python: Path) -> None:
    root, venv = fresh_venv(tmp_path, fake_python)
    lock = Path(f"{venv}.lock")
    lock.mkdir()
    (lock / "owner").write_text(f"{dead_pid()} {socket.gethostname()}\n")
    started = time.monotonic()
    result = setup(root, fake_python, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert (venv / ".complete").is_file()
    assert not lock.exists()
    assert "took over the venv lock" in result.stderr and "is gone" in result.stderr


def test_an_old_lock_without_an_owner_is_taken_over(tmp_path: Path, fake_python: Path) -> None:
    root, venv = fresh_venv(tmp_path, fake_python)
    lock = Path(f"{venv}.lock")
    lock.mkdir()  # a setup killed before it wrote its owner (or one from before owners)
    old = time.time() - 7200
    os.utime(lock, (old, old))
    result = setup(root, fake_python, timeout=60, ZAS_ACTION_LOCK_STALE="3600")
    assert result.returncode == 0, result.stderr
    assert (venv / ".complete").is_file() and not lock.exists()


def test_a_live_holder_is_waited_for_then_the_step_gives_up(
    tmp_path: Path, fake_python: Path
) -> None:
    root, venv = fresh_venv(tmp_path, fake_python)
    lock = Path(f"{venv}.lock")
    lock.mkdir()
    (lock / "owner").write_text(f"{os.getpid()} {socket.gethostname()}\n")  # alive: this test
    result = setup(root, fake_python, timeout=60, ZAS_ACTION_LOCK_WAIT="3")
    assert result.returncode == 1
    assert "::error title=zot-artifacts::gave up after 3s waiting for the venv lock" in (
        result.stderr
    )
    assert lock.is_dir() and not (venv / ".complete").exists()  # the holder's lock is kept

    # Once the holder is done, the next run builds the venv.
    shutil.rmtree(lock)
    again = setup(root, fake_python, timeout=60)
    assert again.returncode == 0, again.stderr
    assert (venv / ".complete").is_file() and not lock.exists()
