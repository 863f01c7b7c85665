"""Byte-range downloads for callers: the Python SDK's ``download(..., offset=, length=)``
(sync and async, to a path or a stream, resumed within the range after a dropped connection)
and the CLI's ``download --range`` (curl's FIRST-LAST, FIRST-, -SUFFIX), against the real
server (sqlite backend: ranges do not touch metadata)."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.server import ServerProcess
from zot_artifacts import ArtifactStoreError, AsyncClient, Client, RetryPolicy
from zot_artifacts_cli.main import cli

MIB = 1 << 20
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)
DATA = os.urandom(3 * MIB + 123)

pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)


@pytest.fixture
def sdk(server: ServerProcess) -> Iterator[Client]:
    with Client(server.url, retry=FAST) as c:
        yield c


@pytest.fixture
def bucket(sdk: Client) -> str:
    name = sdk.create_bucket(f"rng-{uuid.uuid4().hex[:12]}").name
    sdk.upload(name, "data.bin", DATA)
    return name


def test_sdk_downloads_a_range(sdk: Client, bucket: str, tmp_path: Path) -> None:
    out = io.BytesIO()
    info = sdk.download(bucket, "data.bin", out, offset=10, length=20)
    assert out.getvalue() == DATA[10:30] and info.size == 20
    # To a path, to the end; progress counts the range.
    seen: list[tuple[int, int | None]] = []
    path = tmp_path / "tail.bin"
    track = lambda p: seen.append((p.bytes_done, p.total))  # noqa: E731
    info = sdk.download(bucket, "data.bin", path, offset=MIB, progress=track)
    assert path.read_bytes() == DATA[MIB:] and info.size == len(DATA) - MIB
    assert seen[-1] == (len(DATA) - MIB, len(DATA) - MIB)
    assert not Path(f"{path}.part").exists()
    # Past the end: clipped; from past the end: refused (416), nothing left behind.
    out = io.BytesIO()
    assert sdk.download(bucket, "data.bin", out, offset=len(DATA) - 3, length=100).size == 3
    assert out.getvalue() == DATA[-3:]
    with pytest.raises(ArtifactStoreError) as err:
        sdk.download(bucket, "data.bin", tmp_path / "none.bin", offset=len(DATA) + 1)
    assert err.value.http_status == 416
    assert not (tmp_path / "none.bin.part").exists()
    with pytest.raises(ValueError):
        sdk.download(bucket, "data.bin", io.BytesIO(), offset=-1)
    with pytest.raises(ValueError):
        sdk.download(bucket, "data.bin", io.BytesIO(), length=0)


def test_a_dropped_range_resumes_within_the_range(
    server: ServerProcess, sdk: Client, bucket: str
) -> None:
    with FaultProxy(server.url) as proxy, Client(proxy.url, retry=FAST) as c:
        proxy.drop_after(MIB)
        out = io.BytesIO()
        info = c.download(bucket, "data.bin", out, offset=100, length=2 * MIB)
        assert out.getvalue() == DATA[100 : 100 + 2 * MIB] and info.size == 2 * MIB
        ranges = [r.headers.get("range") for r in proxy.seen("GET", "/data.bin")]
        last = 100 + 2 * MIB - 1
        assert ranges == [f"bytes=100-{last}", f"bytes={100 + MIB}-{last}"]
        assert proxy.seen("GET", "/data.bin")[1].headers.get("if-range")

        # The object replaced between the two requests: If-Range answers all of it, which
        # must not be spliced into the range.
        proxy.reset()
        proxy.drop_after(MIB)
        sdk.upload(bucket, "other.bin", DATA)
        replaced = {"done": False}

        def replace_once(_: object) -> None:
            if not replaced["done"] and proxy.seen("GET", "/other.bin"):
                replaced["done"] = True
                sdk.upload(bucket, "other.bin", DATA[::-1])

        with pytest.raises(ArtifactStoreError) as err:
            c.download(bucket, "other.bin", io.BytesIO(), offset=5, progress=replace_once)
        assert err.value.code == "ObjectChanged"


async def test_async_client_downloads_a_range(server: ServerProcess, bucket: str) -> None:
    async with AsyncClient(server.url) as c:
        out = io.BytesIO()
        info = await c.download(bucket, "data.bin", out, offset=7, length=9)
    assert out.getvalue() == DATA[7:16] and info.size == 9


def cli_json(url: str, *args: str) -> dict:
    r = CliRunner().invoke(
        cli,
        ["--output", "json", *args],
        env={"ZOT_ARTIFACTS_URL": url, "ZOT_ARTIFACTS_TOKEN": None, "ZOT_ARTIFACTS_PROFILE": None},
    )
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    return json.loads(r.stdout)


def test_cli_download_range(
    server: ServerProcess, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOT_ARTIFACTS_CONFIG", str(tmp_path / "cfg.yaml"))
    ref = f"{bucket}/data.bin"
    for spec, start, end in (
        ("0-99", 0, 100),
        ("100-", 100, len(DATA)),
        ("-50", len(DATA) - 50, len(DATA)),
        ("5-5", 5, 6),
    ):
        dest = tmp_path / f"r{spec}.bin"
        got = cli_json(server.url, "download", ref, str(dest), "--range", spec)
        assert dest.read_bytes() == DATA[start:end], spec
        assert got["range"] == {"offset": start, "length": end - start}, spec
    r = CliRunner().invoke(
        cli,
        ["download", ref, str(tmp_path / "bad.bin"), "--range", "9-3"],
        env={"ZOT_ARTIFACTS_URL": server.url, "ZOT_ARTIFACTS_TOKEN": None},
    )
    assert r.exit_code == 2 and "FIRST-LAST" in r.stderr
