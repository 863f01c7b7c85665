"""The S3 API through boto3, on both metadata backends (authentication off here; SigV4 and
ACL enforcement are tested with credentials in test_s3_auth.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

MiB = 1 << 20


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> BaseClient:
    return s3_client(server.url)


@pytest.fixture
def bucket(s3: BaseClient) -> Iterator[str]:
    name = f"s3-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- buckets --------------------------------------------------------------------------------
def test_bucket_lifecycle(s3: BaseClient, server: ServerProcess) -> None:
    name = f"life-{uuid.uuid4().hex[:12]}"
    resp = s3.create_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "")
    # us-east-1 (this store's region): re-creating a bucket you own is 200 (AWS's legacy rule).
    assert s3.create_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert code_of(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # The same bucket is visible through /v1.
    s3.create_bucket(Bucket=name)
    with server.client() as c:
        assert c.get(f"/v1/buckets/{name}").status_code == 200


@pytest.mark.parametrize("name", ["ab", "Upper-Case", "bad_underscore", "a..b", "192.168.1.1"])
def test_invalid_bucket_names(s3: BaseClient, server: ServerProcess, name: str) -> None:
    # boto3 validates some names itself; send raw requests so the server is what answers.
    with server.client() as c:
        r = c.put(f"/{name}")
    assert r.status_code == 400, r.text
    assert "<Code>InvalidBucketName</Code>" in r.text
    assert r.headers["content-type"] == "application/xml"


def test_reserved_names_are_refused(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.put("/s3/health")
        assert r.status_code == 400 and "<Code>InvalidBucketName</Code>" in r.text
        assert "reserved" in r.text


def test_s3_prefix_serves_the_same_api(server: ServerProcess, s3: BaseClient, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="p/q", Body=b"via root")
    with server.client() as c:
        r = c.get(f"/s3/{bucket}/p/q")
        assert r.status_code == 200 and r.content == b"via root"
        r = c.get("/s3/")
        assert r.status_code == 200 and f"<Name>{bucket}</Name>" in r.text


# ---- objects --------------------------------------------------------------------------------
def test_put_get_head_with_metadata(s3: BaseClient, bucket: str, server: ServerProcess) -> None:
    body = os.urandom(300_000)
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/file.bin",
        Body=body,
        ContentType="application/x-thing",
        Metadata={"build": "42", "Team": "core"},
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="file.bin"',
        CacheControl="max-age=60",
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-thing"
    assert got["Metadata"] == {"build": "42", "team": "core"}
    assert got["ContentDisposition"] == 'attachment; filename="file.bin"'
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentEncoding"] == "identity"
    head = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    # /v1 shows the same artifact with its sha256.
    with server.client() as c:
        meta = c.get(f"/v1/buckets/{bucket}/objects/dir/file.bin", params={"metadata": "true"})
        assert meta.json()["sha256"] == sha256(body)


def test_checksums_verified_and_returned(s3: BaseClient, bucket: str) -> None:
    body = b"checksummed body" * 1000
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, ChecksumAlgorithm="CRC32")
    assert put["ChecksumCRC32"] == crc
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc
    got["Body"].read()
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key="s", Body=body, ChecksumSHA256=sha)
    assert put["ChecksumSHA256"] == sha


def test_bad_digests_store_nothing(s3: BaseClient, bucket: str, server: ServerProcess) -> None:
    s3.put_object(Bucket=bucket, Key="keep", Body=b"original")
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="keep", Body=b"replacement", ContentMD5=wrong_md5)
    assert code_of(exc) == ("BadDigest", 400)
    wrong_crc = base64.b64encode((12345).to_bytes(4, "big")).decode()
    with server.client() as c:
        r = c.put(
            f"/{bucket}/keep", content=b"replacement", headers={"x-amz-checksum-crc32": wrong_crc}
        )
        assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
        r = c.put(
            f"/{bucket}/keep",
            content=b"replacement",
            headers={"x-amz-content-sha256": sha256(b"something else")},
        )
        assert r.status_code == 400 and "<Code>XAmzContentSHA256Mismatch</Code>" in r.text
        r = c.put(f"/{bucket}/keep", content=b"x", headers={"Content-MD5": "not base64!"})
        assert r.status_code == 400 and "<Code>InvalidDigest</Code>" in r.text
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"original"


def test_ranges_and_conditions(s3: BaseClient, bucket: str) -> None:
    body = bytes(range(256)) * 40
    etag = s3.put_object(Bucket=bucket, Key="r", Body=body)["ETag"]
    part = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == body[-5:]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert code_of(exc) == ("InvalidRange", 416)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfMatch='"0000"')
    assert code_of(exc) == ("PreconditionFailed", 412)
    future = datetime.now(UTC) + timedelta(days=1)
    past = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfModifiedSince=future)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfUnmodifiedSince=past)
    assert code_of(exc) == ("PreconditionFailed", 412)
    # S3's precedence: If-Match true wins over If-Unmodified-Since false.
    got = s3.get_object(Bucket=bucket, Key="r", IfMatch=etag, IfUnmodifiedSince=past)
    assert got["Body"].read() == body
    over = s3.get_object(
        Bucket=bucket,
        Key="r",
        ResponseContentType="text/csv",
        ResponseContentDisposition="inline",
    )
    assert over["ContentType"] == "text/csv" and over["ContentDisposition"] == "inline"
    over["Body"].read()


def test_missing_things(s3: BaseClient, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="absent")
    assert code_of(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert code_of(exc) == ("NoSuchBucket", 404)
    s3.delete_object(Bucket=bucket, Key="absent")  # S3: deleting nothing succeeds


def test_key_validation(server: ServerProcess, bucket: str) -> None:
    with server.client() as c:
        r = c.put(f"/{bucket}/{'k' * 1025}", content=b"x")
        assert r.status_code == 400 and "<Code>KeyTooLongError</Code>" in r.text
        r = c.put(f"/{bucket}/a%00b", content=b"x")
        assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text


# ---- listing --------------------------------------------------------------------------------
KEYS = ["a.txt", "b/1", "b/2", "b/c/3", "c d+e", "d/x", "z/1", "é/ü"]


def _fill(s3: BaseClient, bucket: str) -> None:
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())


def test_list_v2_delimiter_and_exact_pages(s3: BaseClient, bucket: str) -> None:
    _fill(s3, bucket)
    full = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in full["Contents"]] == sorted(KEYS, key=str.encode)
    assert full["KeyCount"] == len(KEYS) and full["IsTruncated"] is False
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "c d+e"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["b/", "d/", "z/", "é/"]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Delimiter": "/", "MaxKeys": 2}
    pages = 0
    while True:
        page = s3.list_objects_v2(**kwargs)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert page["KeyCount"] <= 2
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert sorted(seen) == sorted(["a.txt", "c d+e", "b/", "d/", "z/", "é/"])
    assert pages == 3  # 6 entries in pages of 2: the last page does not claim more
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/2", Prefix="b/")
    assert [o["Key"] for o in after["Contents"]] == ["b/c/3"]
    owner = s3.list_objects_v2(Bucket=bucket, FetchOwner=True, MaxKeys=1)
    assert "Owner" in owner["Contents"][0]
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        o["Key"]
        for p in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 3})
        for o in p["Contents"]
    ]
    assert keys == sorted(KEYS, key=str.encode)


def test_list_v1_and_versions(s3: BaseClient, bucket: str) -> None:
    _fill(s3, bucket)
    page = s3.list_objects(Bucket=bucket, MaxKeys=3)
    assert [o["Key"] for o in page["Contents"]] == ["a.txt", "b/1", "b/2"]
    assert page["IsTruncated"] is True
    rest = s3.list_objects(Bucket=bucket, Marker="b/2")
    assert rest["Contents"][0]["Key"] == "b/c/3"
    versions = s3.list_object_versions(Bucket=bucket)
    assert sorted(v["Key"] for v in versions["Versions"]) == sorted(KEYS)
    assert {v["VersionId"] for v in versions["Versions"]} == {"null"}
    # The cleanup idiom of versioned-bucket tools works.
    s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions["Versions"]
            ]
        },
    )
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects(s3: BaseClient, bucket: str, server: ServerProcess) -> None:
    _fill(s3, bucket)
    resp = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a.txt"}, {"Key": "missing"}, {"Key": "b/1"}]}
    )
    assert sorted(d["Key"] for d in resp["Deleted"]) == ["a.txt", "b/1", "missing"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b/2"}], "Quiet": True})
    assert "Deleted" not in quiet or quiet["Deleted"] == []
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "a.txt" not in remaining and "b/2" not in remaining and "c d+e" in remaining
    too_many = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1001))
    body = f"<Delete>{too_many}</Delete>".encode()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    with server.client() as c:
        r = c.post(f"/{bucket}?delete", content=body, headers={"Content-MD5": md5})
        assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text
        garbage = b"<Delete><Object>"
        r = c.post(
            f"/{bucket}?delete",
            content=garbage,
            headers={"Content-MD5": base64.b64encode(hashlib.md5(garbage).digest()).decode()},
        )
        assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text
        ok = b"<Delete><Object><Key>z/1</Key></Object></Delete>"
        r = c.post(f"/{bucket}?delete", content=ok)
        assert r.status_code == 400 and "<Code>InvalidRequest</Code>" in r.text
        r = c.post(f"/{bucket}?delete", content=ok, headers={"Content-MD5": md5})
        assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
    assert "z/1" in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


# ---- copy -----------------------------------------------------------------------------------
def test_copy_object(s3: BaseClient, bucket: str) -> None:
    body = os.urandom(70_000)
    src = s3.put_object(Bucket=bucket, Key="src", Body=body, Metadata={"a": "1"}, ContentType="x/y")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == body and got["Metadata"] == {"a": "1"}
    assert got["ETag"] == src["ETag"] and got["ContentType"] == "x/y"
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="text/plain",
    )
    got = s3.head_object(Bucket=bucket, Key="dst2")
    assert got["Metadata"] == {"b": "2"} and got["ContentType"] == "text/plain"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code_of(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket=bucket,
            Key="dst3",
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceIfMatch='"nope"',
        )
    assert code_of(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst3", CopySource={"Bucket": bucket, "Key": "absent"})
    assert code_of(exc) == ("NoSuchKey", 404)


# ---- multipart ------------------------------------------------------------------------------
def test_multipart_through_the_transfer_manager(
    s3: BaseClient, bucket: str, server: ServerProcess
) -> None:
    data = os.urandom(17 * MiB)
    s3.upload_fileobj(
        io.BytesIO(data),
        bucket,
        "big/blob.bin",
        Config=boto3.s3.transfer.TransferConfig(
            multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB
        ),
    )
    head = s3.head_object(Bucket=bucket, Key="big/blob.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-4"')
    out = io.BytesIO()
    s3.download_fileobj(bucket, "big/blob.bin", out)
    assert sha256(out.getvalue()) == sha256(data)
    part2 = s3.get_object(Bucket=bucket, Key="big/blob.bin", PartNumber=2)
    assert part2["Body"].read() == data[5 * MiB : 10 * MiB] and part2["PartsCount"] == 4
    with server.client() as c:
        meta = c.get(f"/v1/buckets/{bucket}/objects/big/blob.bin", params={"metadata": "true"})
        assert meta.json()["sha256"] == sha256(data)
    # Range across a part boundary
    rng = s3.get_object(
        Bucket=bucket, Key="big/blob.bin", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}"
    )
    assert rng["Body"].read() == data[5 * MiB - 10 : 5 * MiB + 10]


def test_multipart_rules(s3: BaseClient, bucket: str) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="a/b", Metadata={"m": "1"})
    uid = up["UploadId"]
    big = os.urandom(5 * MiB)
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"tiny")["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=big)["ETag"]
    e3 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=3, Body=b"last")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=uid,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]
            },
        )
    assert code_of(exc) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=uid,
            MultipartUpload={
                "Parts": [{"PartNumber": 3, "ETag": e3}, {"PartNumber": 2, "ETag": e2}]
            },
        )
    assert code_of(exc) == ("InvalidPartOrder", 400)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=uid,
            MultipartUpload={
                "Parts": [{"PartNumber": 2, "ETag": '"ffff"'}, {"PartNumber": 3, "ETag": e3}]
            },
        )
    assert code_of(exc) == ("InvalidPart", 400)
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2] and parts["IsTruncated"] is True
    rest = s3.list_parts(
        Bucket=bucket, Key="mp", UploadId=uid, PartNumberMarker=parts["NextPartNumberMarker"]
    )
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]
    uploads = s3.list_multipart_uploads(Bucket=bucket)
    assert [u["UploadId"] for u in uploads["Uploads"]] == [uid]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # nothing visible yet
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]},
    )
    expected_etag = hashlib.md5(
        hashlib.md5(big).digest() + hashlib.md5(b"last").digest()
    ).hexdigest()
    assert done["ETag"] == f'"{expected_etag}-2"'
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == big + b"last"
    assert got["ContentType"] == "a/b" and got["Metadata"] == {"m": "1"}
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert code_of(exc) == ("NoSuchUpload", 404)


def test_abort_and_upload_part_copy(s3: BaseClient, bucket: str) -> None:
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="source", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=uid,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )["CopyPartResult"]["ETag"]
    p2 = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=uid,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange=f"bytes={5 * MiB}-{6 * MiB - 1}",
    )["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]},
    )
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dropped")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="dropped", UploadId=uid, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="dropped", UploadId=uid)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="dropped", UploadId=uid, PartNumber=2, Body=b"y")
    assert code_of(exc) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="dropped")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_errors_are_s3_xml(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.get("/no-such-bucket-xyz/key")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/xml"
    assert r.headers["x-amz-request-id"]
    assert (
        "<Code>NoSuchBucket</Code>" in r.text
        and "<Resource>/no-such-bucket-xyz/key</Resource>" in r.text
    )
    assert f"<RequestId>{r.headers['x-amz-request-id']}</RequestId>" in r.text


def test_unsupported_features_say_so(server: ServerProcess, bucket: str) -> None:
    with server.client() as c:
        r = c.put(f"/{bucket}/k", content=b"x", headers={"x-amz-acl": "authenticated-read"})
        assert r.status_code == 501 and "<Code>NotImplemented</Code>" in r.text
        r = c.get(f"/{bucket}?website")
        assert r.status_code == 501 and "<Code>NotImplemented</Code>" in r.text


@pytest.mark.parametrize("name", ["health", "metrics"])
def test_reserved_bucket_names_at_the_root(server: ServerProcess, name: str) -> None:
    with server.client() as c:
        r = c.put(f"/{name}")
        assert r.status_code == 400 and r.json()["code"] == "ReservedName"
        assert "reserved" in r.json()["message"]
        r = c.put(f"/{name}/some/key", content=b"x")
        assert r.status_code == 400 and r.json()["code"] == "ReservedName"
        assert c.get(f"/{name}/some/key").status_code == 404


def test_body_errors_mid_stream_get_an_answer(server: ServerProcess, bucket: str) -> None:
    # A declared length shorter than the body: refused as it streams, in S3's dialect.
    with server.client() as c:
        big = b"x" * (3 << 20)
        r = c.post(f"/{bucket}/k?uploadId=whatever", content=big)
        assert r.status_code == 413 and "<Code>EntityTooLarge</Code>" in r.text
        assert r.headers.get("connection", "").lower() == "close"
        assert c.get(f"/{bucket}").status_code == 200  # the client carries on


def test_delete_objects_reports_per_key_errors(
    server: ServerProcess, bucket: str, s3: BaseClient
) -> None:
    s3.put_object(Bucket=bucket, Key="fine", Body=b"x")
    body = (
        f"<Delete><Object><Key>fine</Key></Object><Object><Key>{'k' * 1100}</Key></Object></Delete>"
    ).encode()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    with server.client() as c:
        r = c.post(f"/{bucket}?delete", content=body, headers={"Content-MD5": md5})
    assert r.status_code == 200
    assert "<Deleted><Key>fine</Key></Deleted>" in r.text
    assert "<Error><Key>" in r.text and "<Code>KeyTooLongError</Code>" in r.text
