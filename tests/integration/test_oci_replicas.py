"""Two replicas (separate server processes) sharing one storage root and one MongoDB: an
upload started on one is continued and finished on the other, and a manifest pushed through
one is pulled through the other at once."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.server import ServerProcess


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    base = tmp_path_factory.mktemp("replicas")
    shared = base / "shared-storage"
    uri = metadata_uri_for("mongodb", shared)
    env = {"ZAS_STORAGE_ROOTDIRECTORY": str(shared), "ZAS_METADATA_URI": uri}
    a = ServerProcess(base / "a", env=env, data_dir_flag=False).start()
    b = ServerProcess(base / "b", env=env, data_dir_flag=False).start()
    yield a, b
    a.stop()
    b.stop()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_an_upload_moves_between_replicas(replicas: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = replicas
    data = os.urandom(3 * 1024 * 1024)
    parts = [data[:1_000_000], data[1_000_000:2_000_000], data[2_000_000:]]
    with httpx.Client(base_url=a.url) as ca, httpx.Client(base_url=b.url) as cb:
        location = ca.post("/v2/team/ha/blobs/uploads/").headers["location"]
        r = cb.patch(location, content=parts[0], headers={"Content-Range": "0-999999"})
        assert r.status_code == 202, r.text
        r = ca.patch(location, content=parts[1], headers={"Content-Range": "1000000-1999999"})
        assert r.status_code == 202, r.text
        assert cb.get(location).headers["range"] == "0-1999999"
        r = cb.put(location, params={"digest": sha256(data)}, content=parts[2])
        assert r.status_code == 201, r.text
        assert ca.get(f"/v2/team/ha/blobs/{sha256(data)}").content == data

        config = b"{}"
        ca.post("/v2/team/ha/blobs/uploads/", params={"digest": sha256(config)}, content=config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256(config),
                    "size": 2,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256(data),
                        "size": len(data),
                    }
                ],
            }
        ).encode()
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        assert (
            ca.put("/v2/team/ha/manifests/v1", content=manifest, headers=headers).status_code == 201
        )
        assert cb.get("/v2/team/ha/manifests/v1").content == manifest
