"""The documents' shell examples run, in order, against a live server, as a user would type
them (tests/fixtures/docs.py says how: which blocks run, how a block is marked not run, how
output and HTTP statuses are checked). Each test prints how many blocks ran and how many are
marked not run, and why."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.docs import ROOT, Block, DocRunner, read_blocks
from tests.fixtures.oci_layout import Layout
from tests.integration.conftest import ROOT_PASSWORD

DOC_ROOT = {"ZAS_ROOT_USER": "admin", "ZAS_ROOT_PASSWORD": "change-me-now"}


def app_tarball() -> bytes:
    """What a user has at hand to store: a small gzipped tarball."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = b"#!/bin/sh\necho hello\n" + os.urandom(2048).hex().encode()
        info = tarfile.TarInfo("app/bin/app")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture
def runner(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DocRunner]:
    kw = getattr(request, "param", {})
    r = DocRunner(tmp_path / "work", **kw)
    yield r
    r.close()


def run_doc(runner: DocRunner, name: str, at_least: int) -> list[Block]:
    blocks = read_blocks(ROOT / name)
    report = runner.run(blocks)
    print(f"{name}: {report.summary()}")
    assert len(report.ran) >= at_least, f"{name} lost its examples: {report.summary()}"
    for block in report.not_run:  # a reason a reader can act on, not a bare marker
        assert len(block.not_run or "") >= 10, f"{block.where}: say why it is not run"
    return blocks


def test_readme(runner: DocRunner) -> None:
    run_doc(runner, "README.md", at_least=5)


USER_GUIDE_FILES = {
    "app.tar.gz": app_tarball(),
    "os.iso": os.urandom(6 * 1024 * 1024),  # one multipart part: a 64 MiB split of it
    "dist/app.py": 'print("hello")\n',
    "dist/docs/README.md": "# app\n",
    "requirements.txt": "requests==2.31.0\n",
}


@pytest.mark.parametrize("runner", [{"server_env": {}, "files": USER_GUIDE_FILES}], indirect=True)
def test_user_guide(runner: DocRunner) -> None:
    layout = Layout(runner.work / "multi")  # what `skopeo copy --all oci:./multi:1.0` pushes
    layout.tag(layout.multi_arch(), "1.0")
    run_doc(runner, "docs/user-guide.md", at_least=20)


@pytest.mark.parametrize(
    "runner",
    [
        {
            "server_env": {"ZAS_ROOT_USER": "admin", "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
            "env": {"ADMIN_PASSWORD": ROOT_PASSWORD},
        }
    ],
    indirect=True,
)
def test_cli_doc(runner: DocRunner) -> None:
    blocks = run_doc(runner, "docs/cli.md", at_least=10)
    lines = [
        f" {line[2:]} "
        for b in blocks
        if b.runs
        for line in b.body.splitlines()
        if line.startswith("$ ") and "zot-artifacts" in line
    ]
    for name in (
        "login",
        "logout",
        "bucket",
        "upload",
        "download",
        "ls",
        "head",
        "rm",
        "cp",
        "presign",
        "sign",
        "attach",
        "verify",
        "policy",
        "token",
        "audit",
        "completion",
        "evidence",
        "key",
        "sbom",
    ):
        assert any(f" {name} " in line for line in lines), f"docs/cli.md: no example of {name}"


def test_ci_doc(runner: DocRunner) -> None:
    """docs/ci.md shows workflows and pipelines (YAML, run by tests/ci), no shell examples yet:
    any it gains run here."""
    blocks = read_blocks(ROOT / "docs" / "ci.md")
    assert any(b.lang == "yaml" for b in blocks)
    if any(b.runs for b in blocks):
        runner.serve({})
    print(f"docs/ci.md: {runner.run(blocks).summary()}")


@pytest.mark.parametrize("runner", [{"server_env": {}}], indirect=True)
def test_the_harness_fails_what_a_reader_would_see_fail(runner: DocRunner, tmp_path: Path) -> None:
    def doc(text: str) -> list[Block]:
        path = tmp_path / "doc.md"
        path.write_text(text)
        return read_blocks(path)

    ok = doc(
        "<!-- not run: needs a cluster -->\n```sh\nkubectl get pods\n```\n\n"
        "```json file=body.json\n{}\n```\n\n"
        "```sh\ncurl -X PUT localhost:8080/v1/buckets/docs-ok\n"
        "curl localhost:8080/v1/buckets/docs-ok/objects/nope   # 404 NoSuchKey\n```\n\n"
        "```console\n$ curl -s localhost:8080/v1/buckets/docs-ok\n"
        '{"name": "docs-ok", "created_at": "…"\n$ false  # exit 1\n```\n'
    )
    report = runner.run(ok)
    assert (len(report.ran), [b.not_run for b in report.not_run]) == (2, ["needs a cluster"])
    assert (runner.work / "body.json").read_text() == "{}\n"
    failing = {
        "an HTTP error the block does not show": "```sh\ncurl localhost:8080/v1/buckets/none\n```",
        "a failing command": "```sh\nfalse\necho never\n```",
        "output the doc shows but the command does not print": (
            "```console\n$ echo hello\nhello world\n```"
        ),
        "an exit code other than the one shown": "```console\n$ true  # exit 1\n```",
        "a server started otherwise than make serve": (
            "```sh\n.venv/bin/zot-artifact-store serve --port 9000\n```"
        ),
    }
    for what, text in failing.items():
        with pytest.raises(AssertionError):
            runner.run(doc(text))
            pytest.fail(f"the harness let {what} pass")
