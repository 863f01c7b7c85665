"""Replicas on one metadata store share their secret keys, or the odd one out refuses to start
(services/replica_keys.py): two and more server processes on one MongoDB-wire server
(nx-27017), each with its own data directory, the keys given as files as a Secret would be."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.server import ServerProcess

ROOT = ("keys-root", "keys-root-password-123")


def key_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(os.urandom(32).hex())
    path.chmod(0o600)
    return path


def replica(base: Path, name: str, uri: str, secrets: Path, token: Path) -> ServerProcess:
    env = {
        "ZAS_ROOT_USER": ROOT[0],
        "ZAS_ROOT_PASSWORD": ROOT[1],
        "ZAS_AUTH_SECRETSKEYFILE": str(secrets),
        "ZAS_AUTH_TOKEN_KEYFILE": str(token),
        "ZAS_HTTP_EXTERNALURL": "http://127.0.0.1:1",  # presigned URLs: only their path is used
        "ZAS_STORAGE_ROOTDIRECTORY": str(base / "blobs"),  # the bytes: one store for all
    }
    return ServerProcess(base / name, metadata_uri=uri, env=env, data_dir_flag=False)


def test_a_replica_with_other_keys_refuses_to_start_and_names_the_key(
    tmp_path: Path, metadata_uri_for: Any
) -> None:
    uri = metadata_uri_for("mongodb", tmp_path)
    keys = tmp_path / "keys"
    keys.mkdir()
    secrets, token = key_file(keys, "secrets.key"), key_file(keys, "registry-token.key")
    other_secrets, other_token = key_file(keys, "other-secrets.key"), key_file(keys, "other.key")
    a = replica(tmp_path, "a", uri, secrets, token).start()
    started = [a]
    try:
        b = replica(tmp_path, "b", uri, other_secrets, token)
        with pytest.raises(RuntimeError, match="server exited with") as exc:
            b.start()
        said = str(exc.value)
        assert f"auth.secretsKeyFile ({other_secrets}" in said
        assert "presigned URLs" in said and "auth.token.keyFile" not in said
        assert other_secrets.read_text() not in b.log_path.read_text()  # a hash, never the key

        c = replica(tmp_path, "c", uri, secrets, other_token)
        with pytest.raises(RuntimeError, match="server exited with") as exc:
            c.start()
        assert f"auth.token.keyFile ({other_token}" in str(exc.value)
        assert "registry bearer tokens" in str(exc.value)

        # The same keys: another replica starts, and what one signs the other accepts.
        d = replica(tmp_path, "d", uri, secrets, token).start()
        started.append(d)
        with a.client(auth=ROOT) as client:
            assert client.put("/v1/buckets/shared").status_code in (200, 201)
            put = client.put("/v1/buckets/shared/objects/k", content=b"signed by a")
            assert put.status_code == 201, put.text
            r = client.post("/v1/presign", json={"bucket": "shared", "key": "k"})
            assert r.status_code in (200, 201), r.text
        url = urlsplit(r.json()["url"])
        got = httpx.get(f"{d.url}{url.path}?{url.query}")
        assert got.status_code == 200 and got.content == b"signed by a", got.text
    finally:
        for server in started:
            server.stop()
