"""Oversized requests get an answer in each API's dialect (issue 19, finding 7).

Tornado's own limits used to answer a body over ``http.maxRequestBodySize`` (or a huge
``Content-Length``) with a bare ``400`` and no body, and drop the connection on a header
block over 64 KiB or a 70 KB S3 key. Now: 413 ``EntityTooLarge`` naming the limit, 431 for
headers, ``KeyTooLongError`` for keys, each in the API's own format, nothing stored.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

BODY_LIMIT = 8 * 1024 * 1024  # http.maxRequestBodySize's default
HEADER_LIMIT = 64 * 1024  # http.maxHeaderSize's default
NINE_MIB = b'{"pad": "' + b" " * (9 * 1024 * 1024) + b'"}'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("limits") / "data")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def bucket(client: httpx.Client) -> str:
    name = f"lim-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/buckets/{name}").status_code == 201
    return name


def raw_exchange(server: ServerProcess, head: bytes, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send ``head`` (and ``body``) on a raw socket; read the answer until the server closes:
    (status, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        if body:
            try:
                sock.sendall(body)
            except OSError:
                pass  # answered and closed before the whole body was sent
        data = b""
        while True:
            try:
                got = sock.recv(65536)
            except ConnectionResetError:
                break
            if not got:
                break
            data += got
    header_block, _, rest = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, rest[: int(headers.get("content-length", len(rest)))]


def problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    return r.json()


# ---- bodies ---------------------------------------------------------------------------------
def test_v1_json_body_over_the_limit(client: httpx.Client) -> None:
    r = client.put("/v1/policies/huge", content=NINE_MIB)
    body = problem(r, 413, "EntityTooLarge")
    assert f"at most {BODY_LIMIT} bytes (http.maxRequestBodySize)" in body["message"]
    assert body["errors"]["limit"] == BODY_LIMIT
    assert r.headers["connection"] == "close"
    assert client.get("/v1/policies/huge").status_code == 404  # nothing stored


def test_v1_chunked_body_over_the_limit(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(9):
            yield b" " * (1024 * 1024)

    r = client.post("/v1/authorize", content=chunks())  # no Content-Length: chunked
    body = problem(r, 413, "EntityTooLarge")
    assert "http.maxRequestBodySize" in body["message"]


def test_unauthenticated_endpoint_with_a_huge_content_length(server: ServerProcess) -> None:
    status, headers, body = raw_exchange(
        server,
        b"POST /v1/auth/exchange HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000000000000\r\n\r\n",
        b'{"token": "',
    )
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert b'"code": "EntityTooLarge"' in body and b"1000000000000000000" in body


def test_oci_blob_upload_refused_from_its_headers(
    server: ServerProcess, client: httpx.Client
) -> None:
    location = client.post("/v2/limits/blobs/blobs/uploads/").headers["location"]
    cases = [
        (431, b"X-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 5000000"),
        (413, b"Content-Length: 99999999999999999999"),
    ]
    for status_wanted, extra in cases:
        status, headers, body = raw_exchange(
            server,
            b"PATCH " + location.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n\r\n",
            b"x" * 100_000,
        )
        assert status == status_wanted and headers["content-type"] == "application/json", body
    assert "Traceback" not in server.log_path.read_text()


def test_oci_manifest_over_the_limit(client: httpx.Client) -> None:
    r = client.put(
        "/v2/limits/repo/manifests/big",
        content=NINE_MIB,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 413, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "SIZE_INVALID" and "http.maxRequestBodySize" in error["message"]
    assert client.get("/v2/limits/repo/tags/list").status_code == 404


def test_s3_xml_body_over_the_limit(server: ServerProcess, bucket: str) -> None:
    s3 = s3_client(server.url)
    tags = [{"Key": f"k{i}", "Value": "v" * 250} for i in range(40_000)]  # ~12 MiB of XML
    with pytest.raises(ClientError) as err:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert err.value.response["Error"]["Code"] == "EntityTooLarge"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "http.maxRequestBodySize" in err.value.response["Error"]["Message"]


def test_s3_object_over_max_object_size_from_its_length(server: ServerProcess, bucket: str) -> None:
    status, headers, body = raw_exchange(
        server,
        f"PUT /{bucket}/big.bin HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 99999999999999999999\r\n\r\n".encode(),
        b"x" * 1024,
    )
    assert status == 413 and headers["content-type"] == "application/xml"
    assert b"<Code>EntityTooLarge</Code>" in body
    assert s3_client(server.url).list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_bodies_within_the_limit_still_work(client: httpx.Client, bucket: str) -> None:
    # 7 MiB of JSON is read and answered on its merits (not a policy: 400, not 413).
    r = client.put("/v1/policies/big-but-fine", content=b'{"x": "' + b" " * (7 << 20) + b'"}')
    assert r.status_code == 400 and r.json()["code"] != "EntityTooLarge"
    # Objects stream past maxRequestBodySize.
    big = b"y" * (9 * 1024 * 1024)
    assert client.put(f"/v1/buckets/{bucket}/objects/nine", content=big).status_code == 201
    assert client.get(f"/v1/buckets/{bucket}/objects/nine").content == big


# ---- headers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/{bucket}/k", "application/xml", b"<Code>RequestHeaderSectionTooLarge</Code>"),
        ("/v1/buckets/{bucket}", "application/problem+json", b'"RequestHeaderSectionTooLarge"'),
        ("/v2/", "application/json", b'"code": "UNSUPPORTED"'),
    ],
)
def test_header_fields_over_the_limit(
    server: ServerProcess, bucket: str, path: str, content_type: str, marker: bytes
) -> None:
    target = path.format(bucket=bucket).encode()
    status, headers, body = raw_exchange(
        server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    assert status == 431, body
    assert headers["content-type"] == content_type and marker in body
    assert f"at most {HEADER_LIMIT}".encode() in body and b"http.maxHeaderSize" in body


def test_boto3_metadata_over_the_header_limit(server: ServerProcess, bucket: str) -> None:
    s3 = s3_client(server.url)
    metadata = {f"m{i}": "v" * 1000 for i in range(80)}  # 80 KB of x-amz-meta-*
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="meta", Body=b"x", Metadata=metadata)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 431
    assert err.value.response["Error"]["Code"] == "RequestHeaderSectionTooLarge"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_headers_within_the_limit_still_work(client: httpx.Client, bucket: str) -> None:
    r = client.get(f"/v1/buckets/{bucket}", headers={"X-Big": "a" * 60_000})
    assert r.status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_s3_key_over_1024_bytes(server: ServerProcess, bucket: str, method: str) -> None:
    key = b"k" * 70_000
    status, headers, body = raw_exchange(
        server,
        method.encode() + b" /" + bucket.encode() + b"/" + key
        + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
    )  # fmt: skip
    assert status == 400 and headers["content-type"] == "application/xml"
    assert b"<Code>KeyTooLongError</Code>" in body
    assert s3_client(server.url).list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# ---- streaming uploads sent chunked (no length declared) past http.maxObjectSize ----------
SMALL_OBJECTS = 1024 * 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("small-limits") / "data",
        env={"ZAS_HTTP_MAXOBJECTSIZE": str(SMALL_OBJECTS)},
    )
    proc.start()
    yield proc
    proc.stop()


def two_mib() -> Iterator[bytes]:
    for _ in range(32):
        yield b"z" * (64 * 1024)


def test_chunked_uploads_past_max_object_size(small_server: ServerProcess) -> None:
    limit = f"at most {SMALL_OBJECTS} bytes (http.maxObjectSize)"
    with small_server.client() as c:
        assert c.put("/v1/buckets/chunky").status_code == 201
        r = c.put("/v1/buckets/chunky/objects/v1.bin", content=two_mib())
        assert limit in problem(r, 413, "EntityTooLarge")["message"]
        r = c.put("/chunky/s3.bin", content=two_mib())
        assert r.status_code == 413 and "<Code>EntityTooLarge</Code>" in r.text, r.text
        assert limit in r.text
        assert c.get("/v1/buckets/chunky/objects").json()["objects"] == []
        # OCI: a chunk of a blob upload.
        r = c.post("/v2/chunky/repo/blobs/uploads/")
        assert r.status_code == 202, r.text
        r = c.patch(r.headers["location"], content=two_mib())
        assert r.status_code == 413, r.text
        error = r.json()["errors"][0]
        assert error["code"] == "SIZE_INVALID" and limit in error["message"]
        # Within the limit, chunked uploads work.
        one = b"w" * (SMALL_OBJECTS // 2)
        assert c.put("/chunky/ok.bin", content=iter([one])).status_code == 200
        assert c.get("/chunky/ok.bin").content == one
