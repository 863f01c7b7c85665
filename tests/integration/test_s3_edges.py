"""S3 protocol edge cases, as AWS S3 defines them, through boto3 and raw HTTP against the real
server on both metadata backends: listings that echo what was sent byte for byte, non-ASCII
user metadata (RFC 2047), aws-chunked beside a plain payload, re-creating a bucket you own,
retried and overlapping multipart requests, ``partNumber`` reads, copy-source ranges, and
(with authentication on) presigned-URL lifetimes, missing buckets and listings that show only
what the caller may read."""

from __future__ import annotations

import base64
import hashlib
import http.client
import time
import uuid
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

MiB = 1 << 20
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> BaseClient:
    return s3_client(server.url)


@pytest.fixture
def bucket(s3: BaseClient) -> str:
    name = f"edge-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def s3_error(r: httpx.Response) -> tuple[int, str, str]:
    root = ElementTree.fromstring(r.content)
    return r.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def fields(r: httpx.Response) -> dict[str, str | None]:
    """The top-level text fields of a listing (``None`` for an empty element)."""
    assert r.status_code == 200, r.text
    root = ElementTree.fromstring(r.content)
    return {child.tag.removeprefix(NS): child.text for child in root if len(child) == 0}


def keys(r: httpx.Response) -> list[str]:
    root = ElementTree.fromstring(r.content)
    return [c.findtext(f"{NS}Key") or "" for c in root.iter(f"{NS}Contents")]


# ---- listings echo what was sent ------------------------------------------------------------
def test_listings_echo_parameters_exactly(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    for key in (" lead/x", "a b/c", "nl\nkey/1", "cr\rkey", "plain"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    url = f"{server.url}/{bucket}"

    # Leading and trailing whitespace is part of the prefix: " a" is not "a".
    r = httpx.get(url, params={"list-type": "2", "prefix": " lead/", "delimiter": "/ "})
    got = fields(r)
    assert (got["Prefix"], got["Delimiter"]) == (" lead/", "/ ")
    assert keys(r) == [" lead/x"]
    r = httpx.get(url, params={"list-type": "2", "prefix": " a"})
    assert fields(r)["Prefix"] == " a" and keys(r) == []

    # A newline and a carriage return survive the XML round trip.
    r = httpx.get(url, params={"prefix": "cr\r", "marker": " "})
    got = fields(r)
    assert (got["Prefix"], got["Marker"]) == ("cr\r", " ")
    assert keys(r) == ["cr\rkey"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="nl\n", Delimiter="/")  # boto3: url
    assert listed["Prefix"] == "nl\n" and listed["CommonPrefixes"] == [{"Prefix": "nl\nkey/"}]

    # Set means echoed, even when empty or blank; absent means left out.
    r = httpx.get(url, params={"list-type": "2", "delimiter": "", "start-after": "  "})
    got = fields(r)
    assert got["Delimiter"] is None and "Delimiter" in got
    assert got["StartAfter"] == "  "
    assert "ContinuationToken" not in got
    r = httpx.get(url, params={"list-type": "2"})
    assert {"Delimiter", "StartAfter", "ContinuationToken"}.isdisjoint(fields(r))

    # A continuation token comes back exactly as sent.
    first = s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
    token = first["NextContinuationToken"]
    again = s3.list_objects_v2(Bucket=bucket, MaxKeys=1, ContinuationToken=token)
    assert again["ContinuationToken"] == token

    # Characters XML cannot carry, with encoding-type=url: percent-encoded, not dropped.
    r = httpx.get(url, params={"list-type": "2", "prefix": "\x01 x", "encoding-type": "url"})
    got = fields(r)
    assert (got["Prefix"], got["EncodingType"]) == ("%01%20x", "url")
    r = httpx.get(url, params={"prefix": "\x01", "marker": "\x02", "encoding-type": "url"})
    got = fields(r)
    assert (got["Prefix"], got["Marker"]) == ("%01", "%02")
    r = httpx.get(url, params={"versions": "", "prefix": " lead/", "delimiter": " "})
    got = fields(r)
    assert (got["Prefix"], got["Delimiter"]) == (" lead/", " ")
    # ListBuckets too: a prefix no bucket name can match is still echoed as sent.
    r = httpx.get(f"{server.url}/", params={"prefix": f" {bucket}"})
    assert fields(r)["Prefix"] == f" {bucket}"
    assert bucket not in r.text.replace(f"<Prefix> {bucket}</Prefix>", "")


# ---- user metadata --------------------------------------------------------------------------
def test_non_ascii_user_metadata_is_rfc_2047(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    """As AWS: encoded-words are decoded before storing; a value that is not printable
    US-ASCII is returned as one ``=?UTF-8?B?...?=`` word (never raw bytes or mojibake)."""
    b64 = "=?UTF-8?B?" + base64.b64encode("héllo ✓".encode()).decode() + "?="
    s3.put_object(Bucket=bucket, Key="sdk", Body=b"x", Metadata={"name": b64})
    assert s3.head_object(Bucket=bucket, Key="sdk")["Metadata"] == {"name": b64}

    url = f"{server.url}/{bucket}"
    sent = {
        "x-amz-meta-q": "=?utf-8?q?h=C3=A9llo?=",  # Q-encoding
        "x-amz-meta-raw": "héllo ✓".encode(),  # raw UTF-8 bytes
        "x-amz-meta-ascii": "=?UTF-8?B?aGVsbG8=?=",  # decodes to plain ASCII
        "x-amz-meta-plain": "build 42",
    }
    assert httpx.put(f"{url}/raw", content=b"x", headers=sent).status_code == 200
    got = s3.head_object(Bucket=bucket, Key="raw")["Metadata"]
    assert got == {
        "q": "=?UTF-8?B?" + base64.b64encode("héllo".encode()).decode() + "?=",
        "raw": b64,
        "ascii": "hello",
        "plain": "build 42",
    }
    # Multipart and copies keep the decoded value the same way.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"name": b64})
    etag = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"y"
    )["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Metadata"] == {"name": b64}
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "raw"})
    assert s3.head_object(Bucket=bucket, Key="copy")["Metadata"]["raw"] == b64


# ---- aws-chunked beside a plain payload -----------------------------------------------------
def test_aws_chunked_with_a_plain_payload_is_stored_without_it(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    body = b"plain body, not framed"
    url = f"{server.url}/{bucket}"
    r = httpx.put(
        f"{url}/signed",
        content=body,
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
        },
    )
    assert r.status_code == 200, r.text
    got = httpx.get(f"{url}/signed")
    assert got.content == body and "content-encoding" not in got.headers
    r = httpx.put(
        f"{url}/gz",
        content=body,
        headers={
            "Content-Encoding": "aws-chunked, gzip",
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
    )
    assert r.status_code == 200, r.text
    assert s3.head_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip"
    # A decoded length other than the body's means framing without a STREAMING-* mode.
    r = httpx.put(
        f"{url}/framed",
        content=body,
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
            "x-amz-decoded-content-length": "3",
        },
    )
    assert s3_error(r)[:2] == (400, "InvalidRequest")
    assert httpx.head(f"{url}/framed").status_code == 404
    # CreateMultipartUpload stores the encoding without aws-chunked too.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m", ContentEncoding="aws-chunked,br")
    etag = s3.upload_part(
        Bucket=bucket, Key="m", UploadId=upload["UploadId"], PartNumber=1, Body=b"z"
    )["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="m",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert s3.head_object(Bucket=bucket, Key="m")["ContentEncoding"] == "br"


# ---- buckets --------------------------------------------------------------------------------
def test_recreating_a_bucket_you_own_in_us_east_1_is_200_and_resets_its_acl(
    server: ServerProcess, s3: BaseClient
) -> None:
    name = f"again-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ACL="public-read")
    s3.put_object(Bucket=name, Key="k", Body=b"kept")
    assert httpx.get(f"{server.url}/{name}/k").status_code == 200  # public
    again = s3.create_bucket(Bucket=name)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") is None
    grants = s3.get_bucket_acl(Bucket=name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # private again
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"kept"


# ---- multipart ------------------------------------------------------------------------------
def _two_part_upload(s3: BaseClient, bucket: str, key: str) -> tuple[str, dict[str, Any], bytes]:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    first, second = b"a" * (5 * MiB), b"last part"
    parts = [
        {"PartNumber": n, "ETag": s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=data)["ETag"]}
        for n, data in ((1, first), (2, second))
    ]  # fmt: skip
    return upload, {"Parts": parts}, first + second


def test_complete_multipart_upload_retried_gets_the_same_answer(
    s3: BaseClient, bucket: str
) -> None:
    upload, parts, data = _two_part_upload(s3, bucket, "mp")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts
    )
    retried = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts
    )
    assert {k: retried[k] for k in ("Bucket", "Key", "ETag", "Location")} == {
        k: done[k] for k in ("Bucket", "Key", "ETag", "Location")
    }
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == data
    # Other parts than those completed, or after the object was replaced: the upload is gone.
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=upload,
            MultipartUpload={"Parts": parts["Parts"][:1]},
        )
    assert code_of(exc) == ("NoSuchUpload", 404)
    s3.put_object(Bucket=bucket, Key="mp", Body=b"replaced")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts
        )
    assert code_of(exc) == ("NoSuchUpload", 404)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"replaced"


def test_a_part_resent_while_the_first_is_in_flight_keeps_the_later(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="p")["UploadId"]
    first, second = b"1" * (256 * 1024), b"2" * (256 * 1024)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("PUT", f"/{bucket}/p?partNumber=1&uploadId={upload}")
        conn.putheader("Content-Length", str(len(first)))
        conn.endheaders()
        conn.send(first[:1000])  # the first try is in flight...
        time.sleep(0.5)
        resent = s3.upload_part(Bucket=bucket, Key="p", UploadId=upload, PartNumber=1, Body=second)
        conn.send(first[1000:])  # ...and finishes after the retry
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        answer.read()
    finally:
        conn.close()
    listed = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(1, resent["ETag"])]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="p",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": resent["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="p")["Body"].read() == second


def test_get_and_head_by_part_number(s3: BaseClient, bucket: str) -> None:
    upload, parts, data = _two_part_upload(s3, bucket, "mp")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts)
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["Body"].read() == b"last part"
    assert second["PartsCount"] == 2
    assert second["ContentRange"] == f"bytes {5 * MiB}-{len(data) - 1}/{len(data)}"
    head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=1)
    assert (head["ContentLength"], head["PartsCount"]) == (5 * MiB, 2)
    s3.put_object(Bucket=bucket, Key="one", Body=b"single")
    assert s3.get_object(Bucket=bucket, Key="one", PartNumber=1)["Body"].read() == b"single"
    for key, number in (("mp", 3), ("one", 2)):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key=key, PartNumber=number)
        assert code_of(exc) == ("InvalidPartNumber", 416)
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=bucket, Key=key, PartNumber=number)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    for number in (0, 10001):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="mp", PartNumber=number)
        assert code_of(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-1")
    assert code_of(exc) == ("InvalidRequest", 400)


@pytest.mark.parametrize(
    "copy_range", ["bytes=5-2", "bytes=0-10", "bytes=-3", "bytes=3-", "bytes=abc", "items=0-1"]
)
def test_upload_part_copy_with_an_invalid_range_copies_nothing(
    s3: BaseClient, bucket: str, copy_range: str
) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dst",
            UploadId=upload,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=copy_range,
        )
    assert code_of(exc) == ("InvalidArgument", 400)
    assert s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload).get("Parts", []) == []
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange="bytes=2-9",
    )
    assert part["CopyPartResult"]["ETag"] == f'"{hashlib.md5(b"23456789").hexdigest()}"'


def test_a_wrong_checksum_sha256_is_bad_digest_and_stores_nothing(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ChecksumSHA256=wrong)
    assert code_of(exc) == ("BadDigest", 400)
    r = httpx.put(
        f"{server.url}/{bucket}/k", content=b"data", headers={"x-amz-checksum-sha256": wrong}
    )
    assert s3_error(r)[:2] == (400, "BadDigest")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# ---- with authentication on -----------------------------------------------------------------
ROOT = (ROOT_USER, ROOT_PASSWORD)


@pytest.fixture(scope="module")
def people(auth_server: ServerProcess) -> Iterator[dict[str, BaseClient]]:
    """Root, a reader and a writer, each with an S3 key."""
    # SigV4 (boto3 presigns with SigV2 unless told).
    clients = {"root": s3_client(auth_server.url, *ROOT, signature_version="s3v4")}
    with auth_server.client() as c:
        for role in ("reader", "writer"):
            r = c.post("/v1/access-keys", json={"name": role, "roles": [role]}, auth=ROOT)
            assert r.status_code == 201, r.text
            key = r.json()
            clients[role] = s3_client(
                auth_server.url, key["access_key_id"], key["secret_access_key"]
            )
    yield clients


@pytest.fixture(scope="module")
def people_tokens(auth_server: ServerProcess) -> dict[str, str]:
    """A /v1 API token for the reader role."""
    with auth_server.client() as c:
        r = c.post("/v1/tokens", json={"name": "reader", "roles": ["reader"]}, auth=ROOT)
        assert r.status_code == 201, r.text
        return {"reader": r.json()["token"]}


def test_a_missing_bucket_is_no_such_bucket_to_whoever_may_act_there(
    people: dict[str, BaseClient],
) -> None:
    missing = f"gone-{uuid.uuid4().hex[:12]}"
    for who in ("root", "reader", "writer"):
        s3 = people[who]
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=missing, Key="k")
        assert code_of(exc) == ("NoSuchBucket", 404), who
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=missing, Key="k")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, who
    for who in ("root", "writer"):
        with pytest.raises(ClientError) as exc:
            people[who].delete_object(Bucket=missing, Key="k")
        assert code_of(exc) == ("NoSuchBucket", 404), who
    with pytest.raises(ClientError) as exc:  # the reader may not delete anywhere
        people["reader"].delete_object(Bucket=missing, Key="k")
    assert code_of(exc) == ("AccessDenied", 403)


@pytest.mark.parametrize("expires", [0, -5, 604801])
def test_presigned_url_lifetimes_outside_a_week_are_refused(
    people: dict[str, BaseClient], auth_server: ServerProcess, expires: int
) -> None:
    s3 = people["root"]
    name = f"pre-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    # boto3's CRT presigner refuses these itself; botocore's own SigV4 signer signs them.
    request = AWSRequest(method="PUT", url=f"{auth_server.url}/{name}/k")
    S3SigV4QueryAuth(Credentials(*ROOT), "s3", "us-east-1", expires=expires).add_auth(request)
    assert f"X-Amz-Expires={expires}&" in request.url
    r = httpx.put(request.url, content=b"never stored")
    assert s3_error(r)[:2] == (400, "AuthorizationQueryParametersError")
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    week = s3.generate_presigned_url(
        "put_object", Params={"Bucket": name, "Key": "k"}, ExpiresIn=604800
    )
    assert httpx.put(week, content=b"stored").status_code == 200


def test_an_expired_presigned_url_is_access_denied(people: dict[str, BaseClient]) -> None:
    s3 = people["root"]
    name = f"exp-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"}, ExpiresIn=1)
    time.sleep(2.1)
    assert s3_error(httpx.get(url)) == (403, "AccessDenied", "Request has expired")


def test_a_signed_put_with_aws_chunked_and_a_sha256_payload(
    people: dict[str, BaseClient], auth_server: ServerProcess
) -> None:
    """SigV4-signed by botocore with the payload's sha256 and ``Content-Encoding:
    aws-chunked, gzip``: stored as sent, with ``gzip`` only."""
    s3 = people["root"]
    name = f"enc-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    body = b"\x1f\x8b not really gzip, but bytes all the same"
    request = AWSRequest(
        method="PUT",
        url=f"{auth_server.url}/{name}/k",
        data=body,
        headers={"Content-Encoding": "aws-chunked, gzip"},
    )
    S3SigV4Auth(Credentials(*ROOT), "s3", "us-east-1").add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    r = httpx.put(request.url, content=body, headers=dict(request.headers.items()))
    assert r.status_code == 200, r.text
    got = s3.get_object(Bucket=name, Key="k")
    assert got["Body"].read() == body and got["ContentEncoding"] == "gzip"


def test_listings_leave_out_buckets_the_caller_is_denied(
    people: dict[str, BaseClient], people_tokens: dict[str, str], auth_server: ServerProcess
) -> None:
    root, reader = people["root"], people["reader"]
    hidden, shown = (f"{w}-{uuid.uuid4().hex[:10]}" for w in ("hidden", "shown"))
    for name in (hidden, shown):
        root.create_bucket(Bucket=name)
    deny = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "role:reader",
                "Action": "s3:*",
                "Resource": [hidden, f"{hidden}/*"],
            }
        ]
    }
    with auth_server.client() as c:
        r = c.put(f"/v1/policies/deny-{hidden}", json=deny, auth=ROOT)
        assert r.status_code == 201, r.text
        try:
            names = [b["Name"] for b in reader.list_buckets()["Buckets"]]
            assert shown in names and hidden not in names
            paged = reader.list_buckets(MaxBuckets=1000)["Buckets"]
            assert hidden not in [b["Name"] for b in paged]
            assert hidden in [b["Name"] for b in root.list_buckets()["Buckets"]]
            token = {"Authorization": f"Bearer {people_tokens['reader']}"}
            v1 = [b["name"] for b in c.get("/v1/buckets", headers=token).json()["buckets"]]
            assert shown in v1 and hidden not in v1
            v1 = [b["name"] for b in c.get("/v1/buckets", auth=ROOT).json()["buckets"]]
            assert hidden in v1 and shown in v1
            with pytest.raises(ClientError) as exc:
                reader.list_objects_v2(Bucket=hidden)
            assert code_of(exc) == ("AccessDenied", 403)
        finally:
            c.delete(f"/v1/policies/deny-{hidden}", auth=ROOT)
        assert hidden in [b["Name"] for b in reader.list_buckets()["Buckets"]]
