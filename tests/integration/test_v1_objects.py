"""``/v1`` buckets and objects over HTTP against the running server, on both backends."""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


def problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert isinstance(body["retryable"], bool)
    assert body["type"].endswith(code)
    assert body["message"]
    return body


def obj_url(bucket: str, key: str) -> str:
    return f"/v1/buckets/{bucket}/objects/{urllib.parse.quote(key, safe='/')}"


# ---- buckets ------------------------------------------------------------------------------


def test_bucket_lifecycle(client: httpx.Client) -> None:
    name = "lifecycle-" + os.urandom(4).hex()
    r = client.put(f"/v1/buckets/{name}", json={"labels": {"team": "ci"}, "public_read": False})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/buckets/{name}"
    assert r.json()["labels"] == {"team": "ci"}
    # Same owner again: idempotent update, 200.
    r = client.put(f"/v1/buckets/{name}", json={"public_read": True})
    assert r.status_code == 200
    assert r.json()["public_read"] is True
    assert client.get(f"/v1/buckets/{name}").json()["name"] == name
    assert client.head(f"/v1/buckets/{name}").status_code == 200
    names = [b["name"] for b in client.get("/v1/buckets").json()["buckets"]]
    assert name in names
    assert names == sorted(names)
    assert client.delete(f"/v1/buckets/{name}").status_code == 204
    problem(client.get(f"/v1/buckets/{name}"), 404, "NoSuchBucket")
    assert client.head(f"/v1/buckets/{name}").status_code == 404


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "UPPER",
        "under_score",
        "-dash",
        "dash-",
        "a..b",
        "192.168.1.1",
        "xn--abc",
        "has space",
    ],
)
def test_invalid_bucket_names(client: httpx.Client, name: str) -> None:
    body = problem(client.put(f"/v1/buckets/{urllib.parse.quote(name)}"), 400, "InvalidBucketName")
    assert name in body["message"]
    assert client.get(f"/v1/buckets/{urllib.parse.quote(name)}").status_code == 400


@pytest.mark.parametrize("name", ["health", "metrics"])
def test_reserved_bucket_names(client: httpx.Client, name: str) -> None:
    body = problem(client.put(f"/v1/buckets/{name}"), 400, "ReservedName")
    assert "reserved" in body["message"]


def test_bucket_bad_json(client: httpx.Client) -> None:
    problem(client.put("/v1/buckets/bad-json-bucket", content=b"{not json"), 400, "MalformedJSON")
    problem(client.put("/v1/buckets/bad-json-bucket", json=[1, 2]), 400, "MalformedJSON")
    problem(
        client.put("/v1/buckets/bad-json-bucket", json={"public_read": "yes"}), 400, "MalformedJSON"
    )
    problem(client.put("/v1/buckets/bad-json-bucket", json={"colour": "red"}), 400, "MalformedJSON")
    problem(
        client.put("/v1/buckets/bad-json-bucket", json={"labels": {"bad key!": "x"}}),
        400,
        "InvalidArgument",
    )
    # None of the bad requests created the bucket.
    problem(client.get("/v1/buckets/bad-json-bucket"), 404, "NoSuchBucket")


def test_delete_non_empty_bucket(client: httpx.Client, bucket: str) -> None:
    client.put(obj_url(bucket, "a.txt"), content=b"a")
    problem(client.delete(f"/v1/buckets/{bucket}"), 409, "BucketNotEmpty")
    assert client.get(obj_url(bucket, "a.txt")).content == b"a"
    assert client.delete(f"/v1/buckets/{bucket}", params={"recursive": "true"}).status_code == 204
    problem(client.get(f"/v1/buckets/{bucket}"), 404, "NoSuchBucket")
    problem(client.get(obj_url(bucket, "a.txt")), 404, "NoSuchBucket")


# ---- objects ------------------------------------------------------------------------------


def test_put_get_head_delete(client: httpx.Client, bucket: str) -> None:
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    r = client.put(
        obj_url(bucket, "dir/file.bin"),
        content=data,
        headers={"Content-Type": "application/x-tar", "X-Artifact-Labels": "build=42,branch=main"},
    )
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["bucket"] == bucket and meta["key"] == "dir/file.bin"
    assert meta["size"] == len(data)
    assert meta["sha256"] == sha
    assert meta["etag"] == sha  # strong ETag: the content's sha256
    assert meta["content_type"] == "application/x-tar"
    assert meta["labels"] == {"build": "42", "branch": "main"}
    for field in ("created_at", "updated_at"):
        assert meta[field].endswith("Z")
    assert r.headers["etag"] == f'"{meta["etag"]}"'

    r = client.get(obj_url(bucket, "dir/file.bin"))
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "application/x-tar"
    assert r.headers["x-checksum-sha256"] == sha
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["last-modified"].endswith("GMT")

    r = client.head(obj_url(bucket, "dir/file.bin"))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(data))

    r = client.get(obj_url(bucket, "dir/file.bin"), params={"metadata": "true"})
    # The metadata is the object's JSON and the builds that produced it (none here).
    assert r.json() == {
        **meta,
        "updated_at": r.json()["updated_at"],
        "builds": [],
        "expiration": None,
    }

    assert client.delete(obj_url(bucket, "dir/file.bin")).status_code == 204
    problem(client.get(obj_url(bucket, "dir/file.bin")), 404, "NoSuchKey")
    assert client.head(obj_url(bucket, "dir/file.bin")).status_code == 404
    problem(client.delete(obj_url(bucket, "dir/file.bin")), 404, "NoSuchKey")


def test_overwrite_keeps_created_at(client: httpx.Client, bucket: str) -> None:
    first = client.put(obj_url(bucket, "k"), content=b"one").json()
    r = client.put(obj_url(bucket, "k"), content=b"two!")
    assert r.status_code == 200
    second = r.json()
    assert second["created_at"] == first["created_at"]
    assert second["sha256"] == hashlib.sha256(b"two!").hexdigest()
    assert client.get(obj_url(bucket, "k")).content == b"two!"


def test_unknown_bucket_and_object(client: httpx.Client, bucket: str) -> None:
    problem(client.get(obj_url("no-such-bucket-xyz", "k")), 404, "NoSuchBucket")
    problem(client.put(obj_url("no-such-bucket-xyz", "k"), content=b"x"), 404, "NoSuchBucket")
    problem(client.get(obj_url(bucket, "missing")), 404, "NoSuchKey")
    problem(client.get("/v1/buckets/no-such-bucket-xyz/objects"), 404, "NoSuchBucket")


def test_declared_sha256(client: httpx.Client, bucket: str) -> None:
    good = b"verified content"
    sha = hashlib.sha256(good).hexdigest()
    r = client.put(obj_url(bucket, "v"), content=good, headers={"X-Checksum-Sha256": sha})
    assert r.status_code == 201
    r = client.put(obj_url(bucket, "v2"), content=good, params={"sha256": "sha256:" + sha.upper()})
    assert r.status_code == 201

    # A wrong declared digest: 422, nothing stored, the previous version untouched.
    wrong = hashlib.sha256(b"something else").hexdigest()
    body = problem(
        client.put(obj_url(bucket, "v"), content=b"tampered", headers={"X-Checksum-Sha256": wrong}),
        422,
        "ChecksumMismatch",
    )
    assert wrong in body["message"]
    assert client.get(obj_url(bucket, "v")).content == good
    problem(
        client.put(obj_url(bucket, "fresh"), content=b"tampered", params={"sha256": wrong}),
        422,
        "ChecksumMismatch",
    )
    problem(client.get(obj_url(bucket, "fresh")), 404, "NoSuchKey")
    problem(
        client.put(obj_url(bucket, "x"), content=b"x", headers={"X-Checksum-Sha256": "abc"}),
        400,
        "InvalidDigest",
    )
    problem(client.get(obj_url(bucket, "x")), 404, "NoSuchKey")


def test_invalid_keys(client: httpx.Client, bucket: str) -> None:
    long_key = "k" * 1025
    body = problem(client.put(obj_url(bucket, long_key), content=b"x"), 400, "InvalidKey")
    assert "1025" in body["message"]
    # 1024 bytes exactly is fine, in multi-byte characters too.
    ok_key = "é" * 512
    assert client.put(obj_url(bucket, ok_key), content=b"x").status_code == 201
    problem(client.put(obj_url(bucket, "é" * 513), content=b"x"), 400, "InvalidKey")
    problem(client.put(f"/v1/buckets/{bucket}/objects/a%00b", content=b"x"), 400, "InvalidKey")
    listed = client.get(f"/v1/buckets/{bucket}/objects").json()["objects"]
    assert [o["key"] for o in listed] == [ok_key]


def test_ranges(client: httpx.Client, bucket: str) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    client.put(obj_url(bucket, "r"), content=data)
    r = client.get(obj_url(bucket, "r"), headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = client.get(obj_url(bucket, "r"), headers={"Range": "bytes=10000-"})
    assert r.status_code == 206 and r.content == data[10000:]
    r = client.get(obj_url(bucket, "r"), headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == data[-50:]
    r = client.get(obj_url(bucket, "r"), headers={"Range": "bytes=10000-99999"})
    assert r.status_code == 206 and r.content == data[10000:]
    r = client.get(obj_url(bucket, "r"), headers={"Range": f"bytes={len(data)}-"})
    problem(r, 416, "InvalidRange")
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    # A malformed Range is ignored: the whole entity.
    r = client.get(obj_url(bucket, "r"), headers={"Range": "pages=1-2"})
    assert r.status_code == 200 and r.content == data


def test_conditional_requests(client: httpx.Client, bucket: str) -> None:
    put = client.put(obj_url(bucket, "c"), content=b"conditional")
    etag = put.headers["etag"]
    last_modified = client.head(obj_url(bucket, "c")).headers["last-modified"]
    r = client.get(obj_url(bucket, "c"), headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == etag
    assert client.get(obj_url(bucket, "c"), headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(obj_url(bucket, "c"), headers={"If-Match": etag}).content == b"conditional"
    problem(
        client.get(obj_url(bucket, "c"), headers={"If-Match": '"other"'}), 412, "PreconditionFailed"
    )
    r = client.get(obj_url(bucket, "c"), headers={"If-Modified-Since": last_modified})
    assert r.status_code == 304
    r = client.get(
        obj_url(bucket, "c"), headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )
    assert r.status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 / S3 precedence).
    r = client.get(
        obj_url(bucket, "c"),
        headers={"If-None-Match": '"other"', "If-Modified-Since": last_modified},
    )
    assert r.status_code == 200
    # Conditional writes: create-only, and replace-if-unchanged.
    problem(
        client.put(obj_url(bucket, "c"), content=b"x", headers={"If-None-Match": "*"}),
        412,
        "PreconditionFailed",
    )
    assert (
        client.put(obj_url(bucket, "new"), content=b"x", headers={"If-None-Match": "*"}).status_code
        == 201
    )
    problem(
        client.put(obj_url(bucket, "c"), content=b"x", headers={"If-Match": '"stale"'}),
        412,
        "PreconditionFailed",
    )
    assert client.get(obj_url(bucket, "c")).content == b"conditional"
    assert (
        client.put(obj_url(bucket, "c"), content=b"y", headers={"If-Match": etag}).status_code
        == 200
    )


def test_racing_create_only_puts_exactly_one_wins(server, bucket: str) -> None:
    """Both bodies start before either finishes, so both pass the header-time check; the
    store decides at publish time: one 201, one 412, and the winner's bytes stay."""
    both_started = threading.Barrier(2, timeout=20)

    def body(tag: bytes) -> Iterator[bytes]:
        yield tag * 1024
        both_started.wait()
        yield tag * 1024

    def put(tag: bytes) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return c.put(obj_url(bucket, "race"), content=body(tag),
                         headers={"If-None-Match": "*"})  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(put, [b"a", b"b"]))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201, 412], [r.text for r in answers]
    loser = next(r for r in answers if r.status_code == 412)
    problem(loser, 412, "PreconditionFailed")
    winner = next(r for r in answers if r.status_code == 201)
    with httpx.Client(base_url=server.url) as c:
        stored = c.get(obj_url(bucket, "race")).content
    assert hashlib.sha256(stored).hexdigest() == winner.json()["sha256"]


def test_empty_object(client: httpx.Client, bucket: str) -> None:
    r = client.put(obj_url(bucket, "empty"), content=b"")
    assert r.status_code == 201
    assert r.json()["sha256"] == hashlib.sha256(b"").hexdigest()
    r = client.get(obj_url(bucket, "empty"))
    assert r.status_code == 200 and r.content == b""
    problem(
        client.get(obj_url(bucket, "empty"), headers={"Range": "bytes=0-"}), 416, "InvalidRange"
    )


def test_identical_content_stored_once(client: httpx.Client, bucket: str, server) -> None:
    data = os.urandom(50_000)
    sha = hashlib.sha256(data).hexdigest()
    client.put(obj_url(bucket, "one"), content=data)
    client.put(obj_url(bucket, "two"), content=data)
    blob = server.data_dir / "blobs" / "sha256" / sha[:2] / sha
    assert blob.read_bytes() == data
    assert len(list((server.data_dir / "blobs" / "sha256" / sha[:2]).glob(sha + "*"))) == 1


def test_listing(client: httpx.Client, bucket: str) -> None:
    keys = ["a.txt", "b/1", "b/2", "b/c/3", "c", "d/x", "z/1", "é"]  # UTF-8 byte order
    for k in keys:
        assert client.put(obj_url(bucket, k), content=k.encode()).status_code == 201
    url = f"/v1/buckets/{bucket}/objects"
    full = client.get(url).json()
    assert [o["key"] for o in full["objects"]] == keys
    assert full["truncated"] is False and full["next_continuation_token"] is None

    r = client.get(url, params={"delimiter": "/"}).json()
    assert [o["key"] for o in r["objects"]] == ["a.txt", "c", "é"]
    assert r["common_prefixes"] == ["b/", "d/", "z/"]

    r = client.get(url, params={"prefix": "b/", "delimiter": "/"}).json()
    assert [o["key"] for o in r["objects"]] == ["b/1", "b/2"]
    assert r["common_prefixes"] == ["b/c/"]

    # Walk pages of 2 with the delimiter: every entry exactly once, truncation exact.
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"delimiter": "/", "limit": "2"}
        if token:
            params["continuation_token"] = token
        page = client.get(url, params=params).json()
        pages += 1
        seen += [o["key"] for o in page["objects"]] + page["common_prefixes"]
        token = page["next_continuation_token"]
        assert page["truncated"] is (token is not None)
        if not token:
            break
    assert sorted(seen, key=lambda s: s.encode()) == ["a.txt", "b/", "c", "d/", "z/", "é"]
    assert pages == 3  # 6 entries, 2 per page, the last page not claiming more

    r = client.get(url, params={"limit": "8"}).json()
    assert len(r["objects"]) == 8 and r["truncated"] is False
    r = client.get(url, params={"limit": "7"}).json()
    assert len(r["objects"]) == 7 and r["truncated"] is True

    problem(
        client.get(url, params={"continuation_token": "garbage!"}), 400, "InvalidContinuationToken"
    )
    problem(client.get(url, params={"limit": "0"}), 400, "InvalidArgument")
    problem(client.get(url, params={"limit": "abc"}), 400, "InvalidArgument")


def test_unknown_endpoint(client: httpx.Client) -> None:
    problem(client.get("/v1/nothing-here"), 404, "NotFound")
    problem(client.post("/v1/buckets"), 405, "MethodNotAllowed")


def test_openapi_served(client: httpx.Client) -> None:
    r = client.get("/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/v1/buckets",
        "/v1/buckets/{bucket}",
        "/v1/buckets/{bucket}/objects",
        "/v1/buckets/{bucket}/objects/{key}",
    ):
        assert path in doc["paths"], path


def test_streaming_upload_large(client: httpx.Client, bucket: str) -> None:
    """64 MiB sent in chunks (chunked transfer encoding, no Content-Length)."""
    h = hashlib.sha256()
    chunk = os.urandom(1 << 20)

    def body():
        for i in range(64):
            piece = chunk[i:] + chunk[:i]
            h.update(piece)
            yield piece

    r = client.put(obj_url(bucket, "big"), content=body())
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 64 << 20
    assert r.json()["sha256"] == h.hexdigest()
    got = hashlib.sha256()
    with client.stream("GET", obj_url(bucket, "big")) as resp:
        for part in resp.iter_bytes():
            got.update(part)
    assert got.hexdigest() == h.hexdigest()


def test_early_error_closes_connection_and_next_request_works(
    client: httpx.Client, bucket: str
) -> None:
    # The server answers from the headers without reading the 256 KiB body: it must tell the
    # client the connection closes, so the client's next request goes on a fresh one.
    for _ in range(5):
        r = client.put(obj_url("no-such-bucket-xyz", "k"), content=b"x" * (256 << 10))
        problem(r, 404, "NoSuchBucket")
        assert r.headers.get("connection", "").lower() == "close"
        assert client.get(f"/v1/buckets/{bucket}").status_code == 200
    # A request whose body was read keeps its connection.
    r = client.put(obj_url(bucket, "kept"), content=b"small")
    assert r.status_code == 201 and r.headers.get("connection", "").lower() != "close"
