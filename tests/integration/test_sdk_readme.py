"""sdk/python/README.md never lies: its ``python`` code blocks run, in order, in one namespace,
against a live server (authentication on, an admin API token in ``ZOT_ARTIFACTS_TOKEN``).
Blocks fenced ``python skip`` (or marked ``<!-- not run: why -->``, tests/fixtures/docs.py)
need an outside service and are only compiled."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.docs import ROOT, read_blocks
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

README = ROOT / "sdk" / "python" / "README.md"


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
    found = [b for b in read_blocks(README) if b.lang == "python"]
    assert len([b for b in found if b.not_run is None]) >= 10, "the README lost its examples"
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in found:
        compiled = compile(block.body, block.where, "exec")
        if block.not_run is None:
            exec(compiled, namespace)
    out = capsys.readouterr().out
    assert "signature raw" in out and "zat_" in out and "['async/a.txt']" in out
    assert "NoSuchKey 404" in out
    assert "['dist/app.tar', 'dist/hello.txt'] ['dist/new.txt'] {}" in out  # batch
    assert "upload error InvalidDigest" in out and "{'deleted': 1, 'error': 1}" in out
    assert "False {'passed': 1, 'failed': 1, 'error': 1}" in out
