"""The SDK, the CLI and the actions' script promise Python 3.9 (the runner's ``python3`` in
the actions, ``requires-python = ">=3.9"`` in their packages), while the server and its tests
run on 3.11. vermin reads their syntax and standard-library use and names the minimum
version; anything newer than 3.9 (``datetime.UTC``, ``match``, ``zip(strict=)``, ...) fails
here rather than on a user's runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY39 = [
    ROOT / "sdk" / "python" / "zot_artifacts",
    ROOT / "cli" / "zot_artifacts_cli",
    ROOT / "actions" / "_shared" / "zas_action.py",
]


def vermin(*paths: Path) -> subprocess.CompletedProcess[str]:
    """vermin's verdict on ``paths`` against Python 3.9 (exit 0: nothing newer is used)."""
    exe = Path(sys.executable).with_name("vermin")
    args = [str(exe), "-t=3.9-", "--no-tips", "--violations", *map(str, paths)]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def test_sdk_cli_and_actions_need_no_more_than_python_3_9() -> None:
    r = vermin(*PY39)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_check_notices_newer_python(tmp_path: Path) -> None:
    newer = tmp_path / "newer.py"
    newer.write_text("import datetime\nprint(datetime.UTC)\n")
    r = vermin(newer)
    assert r.returncode != 0 and "datetime.UTC" in r.stdout, r.stdout
