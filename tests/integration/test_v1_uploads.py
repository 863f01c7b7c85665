"""``/v1`` multipart uploads, server-side copy and presigned URLs, over HTTP against the running
server on both metadata backends (presign and permissions with authentication on)."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.parse
import uuid

import httpx
import pytest

from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from tests.integration.test_identity import eventually
from tests.integration.test_v1_objects import obj_url, problem

MIB = 1024 * 1024
ROOT = (ROOT_USER, ROOT_PASSWORD)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start(c: httpx.Client, bucket: str, key: str, **extra: object) -> str:
    r = c.post(f"/v1/buckets/{bucket}/uploads", json={"key": key, **extra})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["bucket"], body["key"]) == (bucket, key)
    assert body["created_at"].endswith("Z")
    assert r.headers["location"] == f"/v1/buckets/{bucket}/uploads/{body['upload_id']}"
    return body["upload_id"]


def put_part(
    c: httpx.Client, bucket: str, upload: str, n: int | str, data: bytes, **headers: str
) -> httpx.Response:
    return c.put(f"/v1/buckets/{bucket}/uploads/{upload}/parts/{n}", content=data, headers=headers)


# ---- multipart uploads --------------------------------------------------------------------


def test_parts_out_of_order_then_complete(client: httpx.Client, bucket: str) -> None:
    first, second = os.urandom(5 * MIB), os.urandom(MIB + 3)
    upload = start(
        client, bucket, "dist/app.tar", content_type="application/x-tar", labels={"ci": "42"}
    )
    # The last part first, then the first one, each checked against its declared sha256.
    r = put_part(client, bucket, upload, 2, second, **{"X-Checksum-Sha256": sha(second)})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "part_number": 2,
        "size": len(second),
        "etag": hashlib.md5(second).hexdigest(),
        "sha256": sha(second),
    }
    r = put_part(client, bucket, upload, 1, first)
    assert r.status_code == 200, r.text
    etags = {1: r.json()["etag"], 2: hashlib.md5(second).hexdigest()}
    # In progress: listed in the bucket (with a prefix), not yet an object.
    uploads = client.get(f"/v1/buckets/{bucket}/uploads", params={"prefix": "dist/"}).json()
    assert [u["upload_id"] for u in uploads["uploads"]] == [upload]
    assert (
        client.get(f"/v1/buckets/{bucket}/uploads", params={"prefix": "x"}).json()["uploads"] == []
    )
    assert client.head(obj_url(bucket, "dist/app.tar")).status_code == 404
    whole = first + second
    r = client.post(
        f"/v1/buckets/{bucket}/uploads/{upload}/complete",
        json={
            "parts": [{"part_number": n, "etag": etags[n]} for n in (1, 2)],
            "sha256": sha(whole),
        },
    )
    assert r.status_code == 201, r.text
    obj = r.json()
    assert obj["sha256"] == sha(whole)
    assert obj["digest"] == f"sha256:{sha(whole)}"
    assert obj["size"] == len(whole)
    assert obj["etag"] == sha(whole)  # as for any /v1 object
    assert obj["content_type"] == "application/x-tar"
    assert obj["labels"] == {"ci": "42"}
    metadata = client.get(obj_url(bucket, "dist/app.tar") + "?metadata=true").json()
    assert set(obj) | {"builds", "expiration"} == set(metadata)
    got = client.get(obj_url(bucket, "dist/app.tar"))
    assert got.status_code == 200
    assert got.content == whole
    assert got.headers["x-checksum-sha256"] == sha(whole)
    # Completed: the upload is gone.
    problem(client.get(f"/v1/buckets/{bucket}/uploads/{upload}"), 404, "NoSuchUpload")
    assert client.get(f"/v1/buckets/{bucket}/uploads").json()["uploads"] == []


def test_resume_lists_parts_and_resending_replaces(client: httpx.Client, bucket: str) -> None:
    upload = start(client, bucket, "resume.bin")
    parts = {3: b"three", 1: os.urandom(5 * MIB), 2: os.urandom(5 * MIB)}
    for n, data in parts.items():
        assert put_part(client, bucket, upload, n, data).status_code == 200
    parts[2] = os.urandom(5 * MIB + 1)  # sent again: replaces part 2
    assert put_part(client, bucket, upload, 2, parts[2]).status_code == 200
    r = client.get(f"/v1/buckets/{bucket}/uploads/{upload}")
    assert r.status_code == 200, r.text
    state = r.json()
    assert (state["upload_id"], state["bucket"], state["key"]) == (upload, bucket, "resume.bin")
    assert state["parts"] == [
        {
            "part_number": n,
            "size": len(parts[n]),
            "etag": hashlib.md5(parts[n]).hexdigest(),
            "sha256": sha(parts[n]),
        }
        for n in (1, 2, 3)
    ]
    # A client resumes from that list alone.
    r = client.post(
        f"/v1/buckets/{bucket}/uploads/{upload}/complete",
        json={
            "parts": [{"part_number": p["part_number"], "etag": p["etag"]} for p in state["parts"]]
        },
    )
    assert r.status_code == 201, r.text
    whole = parts[1] + parts[2] + parts[3]
    assert r.json()["sha256"] == sha(whole)
    assert client.get(obj_url(bucket, "resume.bin")).content == whole


def test_part_checksum_mismatch_stores_nothing(client: httpx.Client, bucket: str) -> None:
    upload = start(client, bucket, "bad-part.bin")
    data = os.urandom(1000)
    r = put_part(client, bucket, upload, 1, data, **{"X-Checksum-Sha256": sha(b"other")})
    body = problem(r, 422, "ChecksumMismatch")
    assert "part 1" in body["message"]
    assert client.get(f"/v1/buckets/{bucket}/uploads/{upload}").json()["parts"] == []
    problem(
        put_part(client, bucket, upload, 1, data, **{"X-Checksum-Sha256": "not-hex"}),
        400,
        "InvalidDigest",
    )
    assert client.get(f"/v1/buckets/{bucket}/uploads/{upload}").json()["parts"] == []


def test_complete_with_wrong_sha256_keeps_the_upload(client: httpx.Client, bucket: str) -> None:
    key = "checked.bin"
    assert client.put(obj_url(bucket, key), content=b"old").status_code == 201
    upload = start(client, bucket, key)
    data = os.urandom(2048)
    etag = put_part(client, bucket, upload, 1, data).json()["etag"]
    complete = f"/v1/buckets/{bucket}/uploads/{upload}/complete"
    parts = [{"part_number": 1, "etag": etag}]
    body = problem(
        client.post(complete, json={"parts": parts, "sha256": sha(b"x")}), 422, "ChecksumMismatch"
    )
    assert sha(data) in body["message"]
    assert client.get(obj_url(bucket, key)).content == b"old"  # nothing written
    assert len(client.get(f"/v1/buckets/{bucket}/uploads/{upload}").json()["parts"]) == 1
    problem(client.post(complete, json={"parts": parts, "sha256": "zz"}), 400, "InvalidDigest")
    # Create-only completion over an existing object: 412, nothing written, upload kept.
    create_only = {"If-None-Match": "*"}
    problem(client.post(complete, json={"parts": parts}, headers=create_only), 412,
            "PreconditionFailed")  # fmt: skip
    assert client.get(obj_url(bucket, key)).content == b"old"
    assert len(client.get(f"/v1/buckets/{bucket}/uploads/{upload}").json()["parts"]) == 1
    # The right digest (sha256: prefix accepted) completes it, replacing the object: 200.
    r = client.post(complete, json={"parts": parts, "sha256": f"sha256:{sha(data)}"})
    assert r.status_code == 200, r.text
    assert client.get(obj_url(bucket, key)).content == data


def test_complete_refusals(client: httpx.Client, bucket: str) -> None:
    upload = start(client, bucket, "refused.bin")
    small = [put_part(client, bucket, upload, n, b"tiny%d" % n).json() for n in (1, 2)]
    complete = f"/v1/buckets/{bucket}/uploads/{upload}/complete"
    listed = [{"part_number": p["part_number"], "etag": p["etag"]} for p in small]
    problem(client.post(complete, json={"parts": listed}), 400, "EntityTooSmall")
    problem(client.post(complete, json={"parts": listed[::-1]}), 400, "InvalidPartOrder")
    wrong = [{"part_number": 1, "etag": "0" * 32}]
    problem(client.post(complete, json={"parts": wrong}), 400, "InvalidPart")
    problem(
        client.post(complete, json={"parts": [{"part_number": 5, "etag": "x"}]}), 400, "InvalidPart"
    )
    for bad in ({"parts": []}, {"parts": [{"part_number": "1", "etag": "x"}]}, {"x": 1}, [1]):
        problem(client.post(complete, json=bad), 400, "MalformedJSON")
    problem(client.post(complete, content=b"{not json"), 400, "MalformedJSON")
    assert client.head(obj_url(bucket, "refused.bin")).status_code == 404
    assert len(client.get(f"/v1/buckets/{bucket}/uploads/{upload}").json()["parts"]) == 2


def test_abort_frees_the_upload(client: httpx.Client, bucket: str) -> None:
    upload = start(client, bucket, "aborted.bin")
    etag = put_part(client, bucket, upload, 1, b"data").json()["etag"]
    assert client.delete(f"/v1/buckets/{bucket}/uploads/{upload}").status_code == 204
    problem(client.get(f"/v1/buckets/{bucket}/uploads/{upload}"), 404, "NoSuchUpload")
    problem(client.delete(f"/v1/buckets/{bucket}/uploads/{upload}"), 404, "NoSuchUpload")
    problem(put_part(client, bucket, upload, 2, b"more"), 404, "NoSuchUpload")
    r = client.post(
        f"/v1/buckets/{bucket}/uploads/{upload}/complete",
        json={"parts": [{"part_number": 1, "etag": etag}]},
    )
    problem(r, 404, "NoSuchUpload")
    assert client.head(obj_url(bucket, "aborted.bin")).status_code == 404
    assert client.get(f"/v1/buckets/{bucket}/uploads").json()["uploads"] == []


def test_unknown_uploads_and_bad_requests(client: httpx.Client, bucket: str) -> None:
    uploads = f"/v1/buckets/{bucket}/uploads"
    missing = uuid.uuid4().hex
    problem(client.get(f"{uploads}/{missing}"), 404, "NoSuchUpload")
    problem(put_part(client, bucket, missing, 1, b"x"), 404, "NoSuchUpload")
    # An upload is found only under its own bucket.
    other = f"other-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/buckets/{other}").status_code == 201
    upload = start(client, bucket, "k")
    problem(client.get(f"/v1/buckets/{other}/uploads/{upload}"), 404, "NoSuchUpload")
    problem(client.get(f"/v1/buckets/nobucket-{missing[:8]}/uploads/{upload}"), 404, "NoSuchBucket")
    for n in ("0", "10001", "one"):
        problem(put_part(client, bucket, upload, n, b"x"), 400, "InvalidArgument")
    assert client.get(f"{uploads}/{upload}").json()["parts"] == []
    problem(client.post(uploads, json={}), 400, "MalformedJSON")
    problem(client.post(uploads, json={"key": "a", "size": 1}), 400, "MalformedJSON")
    problem(client.post(uploads, json={"key": ""}), 400, "InvalidKey")
    problem(
        client.post(uploads, json={"key": "a", "labels": {"bad label": "x"}}),
        400,
        "InvalidArgument",
    )
    problem(
        client.post(f"/v1/buckets/nobucket-{missing[:8]}/uploads", json={"key": "a"}),
        404,
        "NoSuchBucket",
    )
    problem(client.get(uploads, params={"limit": "0"}), 400, "InvalidArgument")
    assert [u["upload_id"] for u in client.get(uploads).json()["uploads"]] == [upload]


# ---- copy ---------------------------------------------------------------------------------


def test_copy_within_and_across_buckets(client: httpx.Client, bucket: str) -> None:
    data = os.urandom(4096)
    src = "src/a file+ü.bin"
    r = client.put(
        obj_url(bucket, src),
        content=data,
        headers={"Content-Type": "application/x-thing", "X-Artifact-Labels": "team=ci"},
    )
    assert r.status_code == 201
    source = r.json()
    copy_source = f"{bucket}/{urllib.parse.quote(src)}"
    r = client.put(obj_url(bucket, "copy/one"), headers={"X-Copy-Source": copy_source})
    assert r.status_code == 201, r.text
    copied = r.json()
    assert (copied["bucket"], copied["key"]) == (bucket, "copy/one")
    for field in ("sha256", "digest", "size", "etag", "content_type", "labels"):
        assert copied[field] == source[field], field
    assert client.get(obj_url(bucket, "copy/one")).content == data
    # Across buckets, with a new content type and labels; again: replaced (200).
    other = f"copy-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/buckets/{other}").status_code == 201
    headers = {
        "X-Copy-Source": copy_source,
        "Content-Type": "text/plain",
        "X-Artifact-Labels": '{"stage": "release"}',
    }
    r = client.put(obj_url(other, "b"), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == source["sha256"]
    assert r.json()["content_type"] == "text/plain"
    assert r.json()["labels"] == {"stage": "release"}
    got = client.get(obj_url(other, "b"))
    assert got.content == data and got.headers["content-type"] == "text/plain"
    r = client.put(obj_url(other, "b"), headers={"X-Copy-Source": copy_source})
    assert r.status_code == 200
    assert r.json()["labels"] == {"team": "ci"}
    # Create-only copy onto an existing key.
    r = client.put(
        obj_url(other, "b"), headers={"X-Copy-Source": copy_source, "If-None-Match": "*"}
    )
    problem(r, 412, "PreconditionFailed")


def test_copy_refusals(client: httpx.Client, bucket: str) -> None:
    assert client.put(obj_url(bucket, "present"), content=b"x").status_code == 201
    r = client.put(obj_url(bucket, "t"), headers={"X-Copy-Source": f"{bucket}/absent"})
    problem(r, 404, "NoSuchKey")
    r = client.put(
        obj_url(bucket, "t"), headers={"X-Copy-Source": f"nobucket-{uuid.uuid4().hex[:8]}/k"}
    )
    problem(r, 404, "NoSuchBucket")
    problem(
        client.put(obj_url(bucket, "t"), headers={"X-Copy-Source": bucket}), 400, "InvalidArgument"
    )
    r = client.put(
        obj_url(bucket, "t"), headers={"X-Copy-Source": f"{bucket}/present"}, content=b"body"
    )
    problem(r, 400, "InvalidRequest")
    assert client.head(obj_url(bucket, "t")).status_code == 404


# ---- with authentication: permissions and presigned URLs ----------------------------------


def token(
    c: httpx.Client, roles: list[str], statements: list[dict] | None = None
) -> dict[str, str]:
    body = {"name": "uploads-test", "roles": roles}
    if statements:
        body["statements"] = statements  # type: ignore[assignment]
    r = c.post("/v1/tokens", json=body, auth=ROOT)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def auth_bucket(auth_server: ServerProcess) -> str:
    name = f"ps-{uuid.uuid4().hex[:12]}"
    with auth_server.client() as c:
        assert c.put(f"/v1/buckets/{name}", auth=ROOT).status_code == 201
    return name


def presign(c: httpx.Client, bucket: str, key: str, **extra: object) -> httpx.Response:
    return c.post("/v1/presign", json={"bucket": bucket, "key": key, **extra}, auth=ROOT)


def test_copy_needs_read_on_the_source(auth_server: ServerProcess, auth_bucket: str) -> None:
    with auth_server.client() as c:
        assert c.put(obj_url(auth_bucket, "secret"), content=b"s", auth=ROOT).status_code == 201
        deny_read = [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{auth_bucket}/*"}]
        writer = token(c, ["writer"], deny_read)
        r = c.put(
            obj_url(auth_bucket, "leak"),
            headers={**writer, "X-Copy-Source": f"{auth_bucket}/secret"},
        )
        problem(r, 403, "AccessDenied")
        assert c.head(obj_url(auth_bucket, "leak"), auth=ROOT).status_code == 404
        reader = token(c, ["reader"])
        r = c.put(
            obj_url(auth_bucket, "leak"),
            headers={**reader, "X-Copy-Source": f"{auth_bucket}/secret"},
        )
        problem(r, 403, "AccessDenied")
        r = c.put(obj_url(auth_bucket, "ok"), headers={"X-Copy-Source": f"{auth_bucket}/secret"})
        problem(r, 401, "Unauthenticated")
        r = c.put(
            obj_url(auth_bucket, "ok"),
            headers={**token(c, ["writer"]), "X-Copy-Source": f"{auth_bucket}/secret"},
        )
        assert r.status_code == 201, r.text


def test_presigned_get_head_and_put(auth_server: ServerProcess, auth_bucket: str) -> None:
    key = "dir/with space/ü+?.bin"
    data = os.urandom(3000)
    with auth_server.client() as c:
        r = presign(c, auth_bucket, key, method="PUT", expires_in=600)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["method"] == "PUT"
        assert body["url"].startswith(auth_server.url + "/v1/buckets/")
        assert body["expires_at"].endswith("Z")
        assert r.headers["cache-control"] == "no-store"
        put_url = body["url"]
    # No credentials at all: a fresh client, no Authorization header.
    with httpx.Client(timeout=60) as anon:
        r = anon.put(put_url, content=data)
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == sha(data)
        assert r.json()["key"] == key
    with auth_server.client() as c:
        assert c.get(obj_url(auth_bucket, key), auth=ROOT).content == data
        get_url = presign(c, auth_bucket, key).json()["url"]  # GET, one hour, by default
        assert presign(c, auth_bucket, key).json()["method"] == "GET"
    with httpx.Client(timeout=60) as anon:
        r = anon.get(get_url)
        assert r.status_code == 200 and r.content == data
        r = anon.head(get_url)
        assert r.status_code == 200 and r.headers["content-length"] == str(len(data))
        # Exactly that method on exactly that object.
        problem(anon.put(get_url, content=b"overwrite"), 403, "AccessDenied")
        problem(anon.delete(get_url), 403, "AccessDenied")
        body = problem(anon.get(put_url), 403, "AccessDenied")
        assert "PUT" in body["message"]
        other = get_url.replace(urllib.parse.quote(key, safe=""), "dir/other")
        assert other != get_url
        problem(anon.get(other), 403, "SignatureDoesNotMatch")
        sig = urllib.parse.parse_qs(urllib.parse.urlsplit(get_url).query)["zas-signature"][0]
        flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
        problem(anon.get(get_url.replace(sig, flipped)), 403, "SignatureDoesNotMatch")
        later = get_url.replace("zas-expires=", "zas-expires=9")
        problem(anon.get(later), 403, "SignatureDoesNotMatch")
        admin = get_url.replace("zas-principal=", "zas-principal=x")
        problem(anon.get(admin), 403, "SignatureDoesNotMatch")
    with auth_server.client() as c:
        assert c.get(obj_url(auth_bucket, key), auth=ROOT).content == data  # not overwritten
    time.sleep(1.0)  # access lines are flushed
    assert sig not in auth_server.log_path.read_text()  # a usable credential is never logged


def test_presigned_url_expires(auth_server: ServerProcess, auth_bucket: str) -> None:
    with auth_server.client() as c:
        assert c.put(obj_url(auth_bucket, "soon"), content=b"x", auth=ROOT).status_code == 201
        url = presign(c, auth_bucket, "soon", expires_in=1).json()["url"]
        time.sleep(2.1)
        body = problem(httpx.get(url), 403, "AccessDenied")
        assert "expired" in body["message"]


def test_presign_needs_permission_and_valid_request(
    auth_server: ServerProcess, auth_bucket: str
) -> None:
    with auth_server.client() as c:
        reader = token(c, ["reader"])
        ask = {"bucket": auth_bucket, "key": "k", "method": "PUT"}
        problem(c.post("/v1/presign", json=ask, headers=reader), 403, "AccessDenied")
        problem(c.post("/v1/presign", json=ask), 401, "Unauthenticated")
        r = c.post("/v1/presign", json={**ask, "method": "GET"}, headers=reader)
        assert r.status_code == 200, r.text  # a reader may share what it can read
        for bad, code in (
            ({"expires_in": 0}, "InvalidArgument"),
            ({"expires_in": 604801}, "InvalidArgument"),
            ({"expires_in": True}, "InvalidArgument"),
            ({"method": "DELETE"}, "InvalidArgument"),
            ({"key": ""}, "InvalidKey"),
            ({"bucket": "BAD"}, "InvalidBucketName"),
            ({"extra": 1}, "MalformedJSON"),
            ({"key": 5}, "MalformedJSON"),
        ):
            problem(c.post("/v1/presign", json={**ask, **bad}, auth=ROOT), 400, code)
        assert c.head(obj_url(auth_bucket, "k"), auth=ROOT).status_code == 404


def test_uploads_need_permission(auth_server: ServerProcess, auth_bucket: str) -> None:
    with auth_server.client() as c:
        reader = token(c, ["reader"])
        uploads = f"/v1/buckets/{auth_bucket}/uploads"
        problem(c.post(uploads, json={"key": "k"}, headers=reader), 403, "AccessDenied")
        upload = c.post(uploads, json={"key": "k"}, auth=ROOT).json()["upload_id"]
        problem(
            c.put(f"{uploads}/{upload}/parts/1", content=b"x", headers=reader), 403, "AccessDenied"
        )
        problem(c.get(uploads, headers=reader), 403, "AccessDenied")
        problem(c.delete(f"{uploads}/{upload}", headers=reader), 403, "AccessDenied")
        assert c.get(f"{uploads}/{upload}", auth=ROOT).json()["parts"] == []
        writer = token(c, ["writer"])
        assert c.put(f"{uploads}/{upload}/parts/1", content=b"x", headers=writer).status_code == 200
        assert c.delete(f"{uploads}/{upload}", headers=writer).status_code == 204


def test_presigned_url_dies_with_its_token(auth_server: ServerProcess, auth_bucket: str) -> None:
    with auth_server.client() as c:
        assert c.put(obj_url(auth_bucket, "k"), content=b"v", auth=ROOT).status_code == 201
        r = c.post("/v1/tokens", json={"name": "sharer", "roles": ["reader"]}, auth=ROOT)
        made = r.json()
        ask = {"bucket": auth_bucket, "key": "k"}
        r = c.post("/v1/presign", json=ask, headers={"Authorization": f"Bearer {made['token']}"})
        assert r.status_code == 200, r.text
        url = r.json()["url"]
        assert f"zas-principal=token%3A{made['id']}" in url
        assert httpx.get(url).content == b"v"
        assert c.delete(f"/v1/tokens/{made['id']}", auth=ROOT).status_code == 204
        body = problem(httpx.get(url), 403, "AccessDenied")
        assert "revoked" in body["message"]


def test_presign_and_uploads_are_audited(auth_server: ServerProcess, auth_bucket: str) -> None:
    with auth_server.client() as c:
        assert presign(c, auth_bucket, "audited", method="PUT").status_code == 200
        uploads = f"/v1/buckets/{auth_bucket}/uploads"
        upload = c.post(uploads, json={"key": "audited"}, auth=ROOT).json()["upload_id"]
        etag = c.put(f"{uploads}/{upload}/parts/1", content=b"x", auth=ROOT).json()["etag"]
        r = c.post(
            f"{uploads}/{upload}/complete",
            json={"parts": [{"part_number": 1, "etag": etag}]},
            auth=ROOT,
        )
        assert r.status_code == 201, r.text

        def reasons() -> list[str]:
            params = {"resource": f"{auth_bucket}/audited", "principal": f"root:{ROOT_USER}"}
            records = c.get("/v1/audit", params=params, auth=ROOT).json()["records"]
            return [f"{r['action']} {r['reason']}" for r in records]

        assert eventually(lambda: len(reasons()) >= 3 and any("completed" in x for x in reasons()))
        found = reasons()
        assert any(x.startswith("auth:Presign PUT until ") for x in found), found
        assert f"s3:PutObject upload {upload} started" in found
        assert f"s3:PutObject upload {upload} completed (1 parts)" in found


def test_presign_with_authentication_off(client: httpx.Client, bucket: str) -> None:
    assert client.put(obj_url(bucket, "open"), content=b"o").status_code == 201
    r = client.post("/v1/presign", json={"bucket": bucket, "key": "open"})
    assert r.status_code == 200, r.text
    assert httpx.get(r.json()["url"]).content == b"o"
