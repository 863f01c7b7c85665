"""sdk/python/README.md never lies: its ``python`` code blocks run, in order, in one namespace,
against a live server (authentication on, an admin API token in ``ZOT_ARTIFACTS_TOKEN``).
Blocks fenced ``python skip`` need an outside service and are only compiled."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

README = Path(__file__).resolve().parents[2] / "sdk" / "python" / "README.md"
FENCE = re.compile(r"^```(python[^\n]*)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(README.read_text())]


def test_readme_examples_run(
    auth_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    r = httpx.post(
        f"{auth_server.url}/v1/tokens",
        json={"name": "readme", "roles": ["admin"]},
        auth=(ROOT_USER, ROOT_PASSWORD),
    )
    assert r.status_code == 201, r.text
    monkeypatch.setenv("ZOT_ARTIFACTS_URL", auth_server.url)
    monkeypatch.setenv("ZOT_ARTIFACTS_TOKEN", r.json()["token"])
    found = blocks()
    runnable = [code for info, code in found if info == "python"]
    assert len(runnable) >= 10, "the README lost its examples"
    namespace: dict[str, object] = {"__name__": "readme"}
    for n, (info, code) in enumerate(found):
        compiled = compile(code, f"README.md block {n + 1}", "exec")
        if info == "python":
            exec(compiled, namespace)
    out = capsys.readouterr().out
    assert "signature raw" in out and "zat_" in out and "['async/a.txt']" in out
    assert "NoSuchKey 404" in out
