"""S3 with authentication on: SigV4 (header and presigned), anonymous access and canned
ACLs, and aws-chunked bodies as boto3 really sends them (over HTTPS)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import ssl
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator

import boto3
import httpx
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fixtures.server import ServerProcess

KEY_ID = "s3root"
SECRET = "s3root-secret-key-123"


def make_client(url: str, key: str = KEY_ID, secret: str = SECRET, **kw: object) -> BaseClient:
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",  # s3.region (the default); others are refused
        config=Config(
            signature_version="s3v4",  # boto3 presigns with SigV2 unless told
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    """Auth on, over HTTPS with a throwaway self-signed certificate (boto3 only sends
    aws-chunked bodies over HTTPS)."""
    base = tmp_path_factory.mktemp(f"s3auth-{request.param}")
    cert, key = base / "cert.pem", base / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    data = base / "data"
    proc = ServerProcess(
        data,
        metadata_uri=metadata_uri_for(request.param, data),
        env={
            "ZAS_ROOT_USER": KEY_ID,
            "ZAS_ROOT_PASSWORD": SECRET,
            "ZAS_HTTP_TLS_CERT": str(cert),
            "ZAS_HTTP_TLS_KEY": str(key),
        },
    )
    proc.start()
    proc.cert = cert  # type: ignore[attr-defined]
    yield proc
    proc.stop()


def https_url(server: ServerProcess) -> str:
    return f"https://127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def s3(tls_server: ServerProcess) -> BaseClient:
    return make_client(https_url(tls_server), verify=str(tls_server.cert))  # type: ignore[attr-defined]


@pytest.fixture
def anon(tls_server: ServerProcess) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=str(tls_server.cert))  # type: ignore[attr-defined]
    with httpx.Client(base_url=https_url(tls_server), verify=ctx) as c:
        yield c


@pytest.fixture
def bucket(s3: BaseClient) -> str:
    name = f"auth-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_signed_requests_work_and_bad_ones_do_not(tls_server: ServerProcess, bucket: str) -> None:
    url, cert = https_url(tls_server), str(tls_server.cert)  # type: ignore[attr-defined]
    good = make_client(url, verify=cert)
    good.put_object(Bucket=bucket, Key="k", Body=b"secret data")
    assert good.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret data"
    with pytest.raises(ClientError) as exc:
        make_client(url, secret="wrong-secret", verify=cert).get_object(Bucket=bucket, Key="k")
    assert code_of(exc) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as exc:
        make_client(url, key="nobody", verify=cert).list_buckets()
    assert code_of(exc) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as exc:
        make_client(url, secret="wrong-secret", verify=cert).put_object(
            Bucket=bucket, Key="k", Body=b"overwrite"
        )
    assert code_of(exc) == ("SignatureDoesNotMatch", 403)
    assert good.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret data"


def test_anonymous_is_denied_in_s3_dialect(anon: httpx.Client, bucket: str) -> None:
    for method, path in (("GET", "/"), ("GET", f"/{bucket}"), ("PUT", f"/{bucket}/x")):
        r = anon.request(method, path, content=b"x" if method == "PUT" else None)
        assert r.status_code == 403, (method, path, r.text)
        assert "<Code>AccessDenied</Code>" in r.text
        assert "www-authenticate" not in r.headers


def test_public_read_bucket_and_object_acl(s3: BaseClient, anon: httpx.Client) -> None:
    public = f"pub-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=public, ACL="public-read")
    s3.put_object(Bucket=public, Key="open.txt", Body=b"for everyone")
    assert anon.get(f"/{public}/open.txt").content == b"for everyone"
    assert anon.head(f"/{public}/open.txt").status_code == 200
    listing = anon.get(f"/{public}", params={"list-type": "2"})
    assert listing.status_code == 200 and "<Key>open.txt</Key>" in listing.text
    assert anon.put(f"/{public}/new", content=b"x").status_code == 403
    assert anon.delete(f"/{public}/open.txt").status_code == 403
    grants = s3.get_bucket_acl(Bucket=public)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    # Back to private: anonymous reads stop.
    s3.put_bucket_acl(Bucket=public, ACL="private")
    assert anon.get(f"/{public}/open.txt").status_code == 403

    private = f"priv-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=private)
    s3.put_object(Bucket=private, Key="shared", Body=b"one object", ACL="public-read")
    s3.put_object(Bucket=private, Key="hidden", Body=b"not this one")
    assert anon.get(f"/{private}/shared").content == b"one object"
    assert anon.get(f"/{private}/hidden").status_code == 403
    assert anon.get(f"/{private}", params={"list-type": "2"}).status_code == 403
    s3.put_object_acl(Bucket=private, Key="hidden", ACL="public-read")
    assert anon.get(f"/{private}/hidden").content == b"not this one"
    acl = s3.get_object_acl(Bucket=private, Key="hidden")["Grants"]
    assert any(g["Permission"] == "READ" for g in acl)


def test_presigned_urls(s3: BaseClient, bucket: str, anon: httpx.Client) -> None:
    s3.put_object(Bucket=bucket, Key="dl/file.bin", Body=b"presigned content")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dl/file.bin"}, ExpiresIn=300
    )
    r = anon.get(url)
    assert r.status_code == 200 and r.content == b"presigned content"
    tampered = url.replace("dl/file.bin", "dl/other.bin")
    r = anon.get(tampered)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    expired = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dl/file.bin"}, ExpiresIn=1
    )
    time.sleep(2.1)
    r = anon.get(expired)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text and "expired" in r.text
    too_long = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dl/file.bin"}, ExpiresIn=8 * 86400
    )
    r = anon.get(too_long)
    assert r.status_code == 400 and "<Code>AuthorizationQueryParametersError</Code>" in r.text
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up.bin"}, ExpiresIn=300
    )
    assert anon.put(put_url, content=b"uploaded with a URL").status_code == 200
    assert s3.get_object(Bucket=bucket, Key="up.bin")["Body"].read() == b"uploaded with a URL"


class _Stream(io.RawIOBase):
    """A non-seekable body, as a pipe would be."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_aws_chunked_bodies_from_boto3(
    s3: BaseClient, bucket: str, tls_server: ServerProcess, algorithm: str
) -> None:
    data = bytes(range(256)) * 4096 + b"tail"
    seen: list[dict[str, str]] = []
    s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: seen.append(dict(request.headers))
    )
    try:
        put = s3.put_object(
            Bucket=bucket,
            Key=f"chunked-{algorithm}",
            Body=_Stream(data),
            ChecksumAlgorithm=algorithm,
        )
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject")
    sent = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in seen[-1].items()}
    assert "aws-chunked" in sent.get("content-encoding", ""), sent  # really was aws-chunked
    got = s3.get_object(Bucket=bucket, Key=f"chunked-{algorithm}", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got.get("ContentEncoding") in (None, "")  # the framing is not stored
    assert put[f"Checksum{algorithm}"] == got[f"Checksum{algorithm}"]
    if algorithm == "CRC32":
        assert (
            put["ChecksumCRC32"] == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        )


def test_aws_chunked_bad_trailer_stores_nothing(
    tls_server: ServerProcess, bucket: str, s3: BaseClient
) -> None:
    s3.put_object(Bucket=bucket, Key="victim", Body=b"original")

    def corrupt(request: object, **_: object) -> None:
        body = request.body  # type: ignore[attr-defined]
        raw = body.read() if hasattr(body, "read") else bytes(body)
        # Flip one payload byte (same length); the CRC32 trailer no longer matches.
        assert b"\r\nAAAA" in raw
        request.body = raw.replace(b"\r\nAAAA", b"\r\nBAAA", 1)  # type: ignore[attr-defined]

    s3.meta.events.register("before-send.s3.PutObject", corrupt)
    try:
        with pytest.raises(ClientError) as exc:
            s3.put_object(
                Bucket=bucket, Key="victim", Body=_Stream(b"AAAA" * 1000), ChecksumAlgorithm="CRC32"
            )
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", corrupt)
    assert code_of(exc) == ("BadDigest", 400)
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"original"


def _signed_chunked_put(
    server: ServerProcess, path: str, payload: bytes, *, tamper: bool = False
) -> httpx.Response:
    """PUT with ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``, the signed-chunk framing Java/Go SDKs
    send: botocore signs the seed request (it signs whatever x-amz-content-sha256 says), and
    each 64 KiB chunk is signed from that seed."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from zot_artifact_store.auth.awschunked import encode_aws_chunked
    from zot_artifact_store.auth.sigv4 import PayloadMode, SigV4Context, derive_signing_key

    url = https_url(server) + path
    framed_len = len(encode_aws_chunked(payload, 65536))  # unsigned framing, for the length
    signed_len = framed_len + (len(payload) // 65536 + 2) * len(";chunk-signature=" + "0" * 64)
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(payload)),
            "Content-Length": str(signed_len),
        },
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "s3", "us-east-1").add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    context = SigV4Context(
        access_key_id=KEY_ID,
        region="us-east-1",
        scope=scope,
        amz_date=amz_date,
        signing_key=derive_signing_key(SECRET, amz_date[:8], "us-east-1"),
        seed_signature=seed,
        content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        payload_mode=PayloadMode.STREAMING_SIGNED,
        presigned=False,
        signed_headers=(),
        request_time=dt.datetime.now(dt.UTC),
    )
    body = encode_aws_chunked(payload, 65536, context=context)
    assert len(body) == signed_len
    if tamper:
        body = body.replace(payload[1000:1010], b"X" * 10, 1)
    ctx = ssl.create_default_context(cafile=str(server.cert))  # type: ignore[attr-defined]
    with httpx.Client(verify=ctx) as c:
        return c.put(url, content=body, headers=dict(request.headers.items()))


def test_signed_chunk_bodies(tls_server: ServerProcess, s3: BaseClient, bucket: str) -> None:
    payload = bytes(range(256)) * 1000  # 256,000 bytes: 4 chunks + the final one
    r = _signed_chunked_put(tls_server, f"/{bucket}/signed-chunks", payload)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="signed-chunks")["Body"].read() == payload
    r = _signed_chunked_put(tls_server, f"/{bucket}/tampered", payload, tamper=True)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="tampered")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_legacy_sigv2_header_and_presigned(
    tls_server: ServerProcess, bucket: str, anon: httpx.Client
) -> None:
    url, cert = https_url(tls_server), str(tls_server.cert)  # type: ignore[attr-defined]

    def v2(secret: str = SECRET) -> BaseClient:
        return boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            verify=cert,
            config=Config(signature_version="s3", s3={"addressing_style": "path"}),
        )

    v2().put_object(Bucket=bucket, Key="v2/obj name+x", Body=b"signed the old way")
    assert (
        v2().get_object(Bucket=bucket, Key="v2/obj name+x")["Body"].read() == b"signed the old way"
    )
    with pytest.raises(ClientError) as exc:
        v2("wrong-secret").get_object(Bucket=bucket, Key="v2/obj name+x")
    assert code_of(exc) == ("SignatureDoesNotMatch", 403)
    presigned = v2().generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "v2/obj name+x", "ResponseContentType": "text/plain"},
        ExpiresIn=300,
    )
    assert "AWSAccessKeyId=" in presigned
    r = anon.get(presigned)
    assert r.status_code == 200 and r.content == b"signed the old way"
    assert r.headers["content-type"] == "text/plain"
    expired = v2().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "v2/obj name+x"}, ExpiresIn=-10
    )
    r = anon.get(expired)
    assert r.status_code == 403 and "expired" in r.text
