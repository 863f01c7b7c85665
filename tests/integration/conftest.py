"""Integration fixtures: the real server as a subprocess, on each metadata backend."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.mongo import database_uri
from tests.fixtures.server import ServerProcess

ROOT_USER = "rootadmin"
ROOT_PASSWORD = "s3cret-root-password"


@pytest.fixture(scope="session")
def metadata_uri_for(mongodb_base_uri: str):
    """``metadata_uri_for(backend)`` → a fresh metadata URI (new sqlite file / new database)."""

    def make(backend: str, data_dir: Path) -> str | None:
        if backend == "sqlite":
            return None  # the embedded default: sqlite inside the data directory
        return database_uri(mongodb_base_uri, f"zas_it_{uuid.uuid4().hex[:12]}")

    return make


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"srv-{request.param}") / "data"
    proc = ServerProcess(data_dir, metadata_uri=metadata_uri_for(request.param, data_dir))
    proc.backend = request.param  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"auth-{request.param}") / "data"
    proc = ServerProcess(
        data_dir,
        metadata_uri=metadata_uri_for(request.param, data_dir),
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def gc_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    """A server that collects garbage every second with no grace delay."""
    data_dir = tmp_path_factory.mktemp(f"gc-{request.param}") / "data"
    env = {"ZAS_STORAGE_GCINTERVAL": "1s", "ZAS_STORAGE_GCDELAY": "0s"}
    proc = ServerProcess(
        data_dir, metadata_uri=metadata_uri_for(request.param, data_dir), env=env
    ).start()
    yield proc
    proc.stop()


def blob_path(data_dir: Path, content: bytes) -> Path:
    """Where the filesystem blob store keeps ``content``."""
    hexd = hashlib.sha256(content).hexdigest()
    return data_dir / "blobs" / "sha256" / hexd[:2] / hexd


def wait_gone(path: Path, seconds: float = 15) -> bool:
    """Wait until ``path`` is gone (the collector ran); whether it is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and path.exists():
        time.sleep(0.2)
    return not path.exists()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def bucket(client: httpx.Client) -> str:
    name = f"it-{uuid.uuid4().hex[:16]}"
    r = client.put(f"/v1/buckets/{name}")
    assert r.status_code == 201, r.text
    return name
