"""OCI blob pushes as clients make them, and what they leave on disk (issue 23): a blob pushed
whole — ``POST`` then ``PUT ?digest=`` with the body, as most clients push small layers and
configs — is written straight to its digest with no upload-session file; a chunked push keeps
its bytes in a session that survives a restart; a wrong digest stores nothing and leaves the
upload usable; a client that drops mid-body leaves nothing behind. On both metadata backends,
across a server restart (the module's own ``server``: module-scoped, so restarting it here
disturbs no other module)."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import httpx

from tests.fixtures.oci_layout import sha256
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import blob_path
from tests.integration.test_oci import oci_error, repo_name


def session_files(server: ServerProcess) -> list[str]:
    return sorted(os.listdir(server.data_dir / "uploads"))


def temporary_files(server: ServerProcess) -> list[Path]:
    """Files in the running instance's temporary directories (in-progress writes)."""
    return [p for p in (server.data_dir / "tmp").glob("*/*") if p.is_file()]


def pull(client: httpx.Client, repo: str, digest: str) -> bytes:
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200, r.text
    assert r.headers["docker-content-digest"] == digest
    return r.content


def test_post_then_put_with_the_body_writes_the_blob_and_no_session_file(
    server: ServerProcess,
) -> None:
    repo, data = repo_name(), os.urandom(4096)
    with server.client() as client:
        r = client.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202
        location = r.headers["location"]
        assert r.headers["range"] == "0-0"
        assert session_files(server) == []  # an upload that has no bytes has no file
        status = client.get(location)
        assert status.status_code == 204 and status.headers["range"] == "0-0"
        r = client.put(location, params={"digest": sha256(data)}, content=data)
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v2/{repo}/blobs/{sha256(data)}"
        assert r.headers["docker-content-digest"] == sha256(data)
        assert pull(client, repo, sha256(data)) == data
        assert blob_path(server.data_dir, data).read_bytes() == data
        oci_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")  # the upload is over
        oci_error(client.put(location, params={"digest": sha256(data)}), 404, "BLOB_UPLOAD_UNKNOWN")
    assert session_files(server) == []
    assert temporary_files(server) == []


def test_a_wrong_digest_stores_nothing_and_the_upload_stays_usable(
    server: ServerProcess,
) -> None:
    repo, data = repo_name(), os.urandom(5000)
    claimed = sha256(b"something else")
    with server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        err = oci_error(
            client.put(location, params={"digest": claimed}, content=data), 400, "DIGEST_INVALID"
        )
        assert sha256(data) in err["message"] and claimed in err["message"]
        oci_error(client.head(f"/v2/{repo}/blobs/{claimed}"), 404, "BLOB_UNKNOWN")
        oci_error(client.head(f"/v2/{repo}/blobs/{sha256(data)}"), 404, "BLOB_UNKNOWN")
        assert not blob_path(server.data_dir, data).exists()
        assert temporary_files(server) == [] and session_files(server) == []
        # Bad requests read no body into the upload either: it is still empty.
        oci_error(client.put(location, content=data), 400, "DIGEST_INVALID")  # no ?digest=
        oci_error(client.put(location, params={"digest": "sha256:zz"}, content=data), 400,
                  "DIGEST_INVALID")  # fmt: skip
        assert client.get(location).headers["range"] == "0-0"
        # The client retries with the right digest on the same upload.
        r = client.put(location, params={"digest": sha256(data)}, content=data)
        assert r.status_code == 201, r.text
        assert pull(client, repo, sha256(data)) == data
        # A monolithic POST with a wrong digest: nothing stored, no upload made.
        other = os.urandom(3000)
        r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=other)
        oci_error(r, 400, "DIGEST_INVALID")
        assert not blob_path(server.data_dir, other).exists()
    assert temporary_files(server) == [] and session_files(server) == []


def test_chunked_push_keeps_its_bytes_in_a_session_until_the_put(
    server: ServerProcess,
) -> None:
    repo, data = repo_name(), os.urandom(200_000)
    with server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        r = client.patch(location, content=b"", headers={"Content-Range": "0-0"})
        assert r.status_code == 202 and r.headers["range"] == "0-0"
        assert session_files(server) == []  # an empty chunk makes no session either
        r = client.patch(location, content=data[:120_000], headers={"Content-Range": "0-119999"})
        assert r.status_code == 202, r.text
        assert len(session_files(server)) == 1
        # A wrong digest on the closing PUT: 400, and the bytes so far are kept.
        oci_error(client.put(location, params={"digest": sha256(b"x")}), 400, "DIGEST_INVALID")
        assert client.get(location).headers["range"] == "0-119999"
        r = client.put(location, params={"digest": sha256(data)}, content=data[120_000:])
        assert r.status_code == 201, r.text
        assert pull(client, repo, sha256(data)) == data
    assert session_files(server) == [] and temporary_files(server) == []


def test_uploads_survive_a_restart(server: ServerProcess) -> None:
    repo = repo_name()
    whole, chunked = os.urandom(4096), os.urandom(150_000)
    with server.client() as client:
        whole_at = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        chunked_at = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        r = client.patch(chunked_at, content=chunked[:100_000])
        assert r.status_code == 202, r.text
    server.stop()
    server.start()
    with server.client() as client:
        assert client.get(whole_at).headers["range"] == "0-0"
        assert client.get(chunked_at).headers["range"] == "0-99999"
        r = client.put(whole_at, params={"digest": sha256(whole)}, content=whole)
        assert r.status_code == 201, r.text
        r = client.put(chunked_at, params={"digest": sha256(chunked)}, content=chunked[100_000:])
        assert r.status_code == 201, r.text
        assert pull(client, repo, sha256(whole)) == whole
        assert pull(client, repo, sha256(chunked)) == chunked
    assert session_files(server) == []


def test_a_sha512_digest_and_an_empty_blob_pushed_whole(server: ServerProcess) -> None:
    repo, data = repo_name(), os.urandom(4096)
    sha512 = "sha512:" + hashlib.sha512(data).hexdigest()
    with server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        r = client.put(location, params={"digest": sha512}, content=data)
        assert r.status_code == 201, r.text
        assert r.headers["docker-content-digest"] == sha512
        assert pull(client, repo, sha512) == data
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        r = client.put(location, params={"digest": sha256(b"")})
        assert r.status_code == 201, r.text
        assert pull(client, repo, sha256(b"")) == b""


def test_a_client_that_drops_mid_body_leaves_nothing_behind(server: ServerProcess) -> None:
    repo, data = repo_name(), os.urandom(300_000)
    with server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"PUT {location}?digest={sha256(data)} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[:200_000])
        time.sleep(0.3)  # the server has begun writing it
    deadline = time.monotonic() + 10
    while temporary_files(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert temporary_files(server) == []
    assert not blob_path(server.data_dir, data).exists()
    with server.client() as client:
        assert client.get(location).headers["range"] == "0-0"  # still empty, still usable
        r = client.put(location, params={"digest": sha256(data)}, content=data)
        assert r.status_code == 201, r.text
        assert pull(client, repo, sha256(data)) == data
    assert session_files(server) == []
