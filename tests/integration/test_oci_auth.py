"""OCI auth against the running server: Bearer challenges, the token endpoint, anonymous
pulls of public repositories (Zot's ``http.accessControl``), token expiry and forgery, and a
TLS handshake on the plain-HTTP port."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

CONFIG = """
http:
  accessControl:
    repositories:
      "public/**":
        anonymousPolicy: [read]
"""


@pytest.fixture(scope="module")
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("oci-auth")
    config = base / "config.yaml"
    config.write_text(CONFIG)
    proc = ServerProcess(
        base / "data",
        config=config,
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    )
    proc.start()
    yield proc
    proc.stop()


def token(c: httpx.Client, scope: str, auth: tuple[str, str] | None = None) -> dict:
    r = c.get("/v2/token", params={"scope": scope, "service": "zot-artifact-store"}, auth=auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return {"Authorization": f"Bearer {r.json()['token']}"}


def push(c: httpx.Client, repo: str, data: bytes, headers: dict) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data,
               headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return digest


def test_a_token_is_limited_to_its_repository(registry: ServerProcess) -> None:
    with httpx.Client(base_url=registry.url) as c:
        writer = token(c, "repository:team/one:pull,push", (ROOT_USER, ROOT_PASSWORD))
        push(c, "team/one", b"layer one", writer)
        data = b"layer two"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = c.post("/v2/team/two/blobs/uploads/", params={"digest": digest}, content=data,
                   headers=writer)  # fmt: skip
        assert r.status_code == 403
        assert r.json()["errors"][0]["code"] == "DENIED"
        assert 'scope="repository:team/two:pull,push"' in r.headers["www-authenticate"]
        reader = token(c, "repository:team/two:pull", (ROOT_USER, ROOT_PASSWORD))
        assert c.head(f"/v2/team/two/blobs/{digest}", headers=reader).status_code == 404


def test_public_and_private_repositories_for_anonymous_clients(registry: ServerProcess) -> None:
    with httpx.Client(base_url=registry.url) as c:
        root = (ROOT_USER, ROOT_PASSWORD)
        pub = push(c, "public/lib", b"public bytes", token(c, "repository:public/lib:push", root))
        priv = push(c, "team/lib", b"team bytes", token(c, "repository:team/lib:push", root))
        # Without any credential: the public repository is readable through an anonymous
        # token, the private one is not, and nobody anonymous may push.
        anon = token(c, "repository:public/lib:pull,push repository:team/lib:pull")
        r = c.get(f"/v2/public/lib/blobs/{pub}", headers=anon)
        assert r.status_code == 200
        assert r.content == b"public bytes"
        r = c.get(f"/v2/team/lib/blobs/{priv}", headers=anon)
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert 'scope="repository:team/lib:pull"' in r.headers["www-authenticate"]
        r = c.post("/v2/public/lib/blobs/uploads/", headers=anon)
        assert r.status_code == 401
        # Directly, with no token at all, the public repository is readable too.
        assert c.head(f"/v2/public/lib/blobs/{pub}").status_code == 200
        assert c.head(f"/v2/team/lib/blobs/{priv}").status_code == 401


def test_basic_credentials_work_directly_on_v2(registry: ServerProcess) -> None:
    with httpx.Client(base_url=registry.url, auth=(ROOT_USER, ROOT_PASSWORD)) as c:
        assert c.get("/v2/").status_code == 200
        push(c, "team/basic", b"via basic", {})
    with httpx.Client(base_url=registry.url, auth=(ROOT_USER, "wrong-password")) as c:
        r = c.get("/v2/")
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_expired_and_foreign_tokens_are_refused(registry: ServerProcess) -> None:
    key = OctKey.import_key((Path(registry.data_dir) / "registry-token.key").read_bytes())
    now = int(time.time())
    claims = {
        "iss": "zot-artifact-store",
        "aud": "zot-artifact-store",
        "sub": f"root:{ROOT_USER}",
        "name": ROOT_USER,
        "anon": False,
        "iat": now - 600,
        "exp": now - 300,
        "access": [{"type": "repository", "name": "team/x", "actions": ["pull"]}],
    }
    expired = jwt.encode({"alg": "HS256"}, claims, key)
    foreign = jwt.encode({"alg": "HS256"}, {**claims, "exp": now + 300}, OctKey.generate_key())
    with httpx.Client(base_url=registry.url) as c:
        for bad in (expired, foreign, "not-a-jwt"):
            r = c.get("/v2/team/x/tags/list", headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401, bad
            assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
            assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_malformed_scope_is_refused(registry: ServerProcess) -> None:
    with httpx.Client(base_url=registry.url) as c:
        r = c.get("/v2/token", params={"scope": "repository-without-actions"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_tls_handshake_on_the_plain_port_is_answered_at_once(registry: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", registry.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32)
        reply = s.recv(200)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request")
    # Ordinary requests on the same port are unaffected.
    assert httpx.get(f"{registry.url}/v2/").status_code == 401


@pytest.mark.parametrize("name", ["alpha/../beta/app", "alpha/*", "Alpha/app", "alpha//app"])
def test_token_refuses_invalid_repository_names(registry: ServerProcess, name: str) -> None:
    """A scope naming no valid repository is refused as the registry refuses the name, not
    granted (a token for ``alpha/*`` or a path with ``..`` in it is never issued)."""
    with httpx.Client(base_url=registry.url) as c:
        r = c.get(
            "/v2/token",
            params={"scope": f"repository:{name}:pull,push", "service": "zot-artifact-store"},
            auth=(ROOT_USER, ROOT_PASSWORD),
        )
        assert r.status_code == 400, r.text
        error = r.json()["errors"][0]
        assert error["code"] == "NAME_INVALID" and name in error["message"]
        # A valid name beside it still gets its token.
        assert token(c, "repository:alpha/app:pull", (ROOT_USER, ROOT_PASSWORD))
