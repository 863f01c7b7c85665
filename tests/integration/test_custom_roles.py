"""Roles defined in configuration (``auth.roles``) work like the built-in ones, everywhere."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("roles")
    config = base / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "auth": {
                    "roles": {
                        # May publish, never delete.
                        "publisher": ["s3:PutObject", "s3:GetObject", "oci:push", "oci:pull"],
                        # A narrower built-in reader.
                        "reader": ["s3:GetObject"],
                    }
                }
            }
        )
    )
    proc = ServerProcess(
        base / "data",
        config=config,
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    ).start()
    yield proc
    proc.stop()


def test_a_configured_role_grants_exactly_its_actions(server: ServerProcess) -> None:
    bucket = f"pub-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url) as c:
        assert c.put(f"/v1/buckets/{bucket}", auth=ROOT).status_code == 201
        r = c.post("/v1/tokens", json={"name": "pub", "roles": ["publisher"]}, auth=ROOT)
        assert r.status_code == 201, r.text
        pub = {"Authorization": f"Bearer {r.json()['token']}"}
        url = f"/v1/buckets/{bucket}/objects/a.txt"
        assert c.put(url, content=b"x", headers=pub).status_code == 201
        assert c.get(url, headers=pub).content == b"x"
        assert c.delete(url, headers=pub).status_code == 403
        assert c.get("/v1/buckets", headers=pub).status_code == 403  # s3:ListAllMyBuckets
        # The registry honours it too.
        r = c.get("/v2/token", params={"scope": "repository:pub/app:pull,push,delete"},
                  headers=pub)  # fmt: skip
        grants = r.json()["token"]
        data = b"published"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        bearer = {"Authorization": f"Bearer {grants}"}
        r = c.post("/v2/pub/app/blobs/uploads/", params={"digest": digest}, content=data,
                   headers=bearer)  # fmt: skip
        assert r.status_code == 201
        assert c.delete(f"/v2/pub/app/blobs/{digest}", headers=bearer).status_code == 403
        # The redefined reader lost ListBucket.
        r = c.post("/v1/tokens", json={"name": "rd", "roles": ["reader"]}, auth=ROOT)
        rd = {"Authorization": f"Bearer {r.json()['token']}"}
        assert c.get(url, headers=rd).content == b"x"  # the refused delete left it there
        assert c.get(f"/v1/buckets/{bucket}/objects", headers=rd).status_code == 403
        # Unknown roles are refused.
        r = c.post("/v1/tokens", json={"name": "x", "roles": ["superuser"]}, auth=ROOT)
        assert r.status_code == 400
