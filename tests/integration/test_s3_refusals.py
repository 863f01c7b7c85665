"""What the S3 API does not implement is refused, never mistaken for what it does: object
versions, object lock, grants and encryption asked for in parameters, headers or bodies
are 501 NotImplemented and change nothing; misplaced parameters are 400. Also the ListBuckets
and ListMultipartUploads parameters that were ignored before. Through boto3, at ``/`` and
``/s3``, on both metadata backends."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

BODY = b"original-content\n"


@pytest.fixture(scope="module", params=["", "/s3"], ids=["root", "s3-prefix"])
def s3(server: ServerProcess, request: pytest.FixtureRequest) -> BaseClient:
    return s3_client(server.url + request.param)


@pytest.fixture
def bucket(s3: BaseClient) -> Iterator[str]:
    name = f"ref-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k.txt", Body=BODY)
    yield name


def error_of(call: object, **kwargs: object) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)  # type: ignore[operator]
    err = exc.value.response
    return (
        err["Error"]["Code"],
        err["ResponseMetadata"]["HTTPStatusCode"],
        err["Error"].get("Message", ""),
    )


def unchanged(s3: BaseClient, bucket: str, keys: tuple[str, ...] = ("k.txt",)) -> None:
    assert s3.get_object(Bucket=bucket, Key="k.txt")["Body"].read() == BODY
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == list(keys)


def test_version_ids_are_refused_not_mistaken_for_the_current_object(
    s3: BaseClient, bucket: str
) -> None:
    # The null version is the object itself (no versioning here): it is served.
    assert s3.get_object(Bucket=bucket, Key="k.txt", VersionId="null")["Body"].read() == BODY
    # An id this store cannot have made: InvalidArgument, as on AWS; one it could have made
    # but the key does not have: NoSuchVersion. Never the current object in its place.
    for call in (s3.get_object, s3.delete_object, s3.get_object_acl):
        code, status, message = error_of(call, Bucket=bucket, Key="k.txt", VersionId="v1abc")
        assert (code, status) == ("InvalidArgument", 400) and "version" in message
    code, status, _ = error_of(s3.head_object, Bucket=bucket, Key="k.txt", VersionId="v1abc")
    assert status == 400
    code, status, _ = error_of(s3.get_object, Bucket=bucket, Key="k.txt", VersionId="V" * 32)
    assert (code, status) == ("NoSuchVersion", 404)
    # A copy from a version is not a copy of the current object.
    code, status, _ = error_of(
        s3.copy_object,
        Bucket=bucket,
        Key="copy.txt",
        CopySource={"Bucket": bucket, "Key": "k.txt", "VersionId": "v1abc"},
    )
    assert (code, status) == ("InvalidArgument", 400)
    unchanged(s3, bucket)


def test_delete_objects_with_a_version_id_keeps_the_object(s3: BaseClient, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="other.txt", Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "k.txt", "VersionId": "v1abc"}, {"Key": "other.txt"}]},
    )
    assert [d["Key"] for d in result.get("Deleted", [])] == ["other.txt"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("k.txt", "InvalidArgument")]
    unchanged(s3, bucket)


@pytest.mark.parametrize(
    "extra",
    [
        (
            {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": datetime(2030, 1, 1)},
            ("InvalidRequest", 400),
        ),
        ({"ObjectLockLegalHoldStatus": "ON"}, ("InvalidRequest", 400)),
        (
            {"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'},
            ("NotImplemented", 501),
        ),
        ({"ServerSideEncryption": "AES256"}, ("NotImplemented", 501)),
        ({"WebsiteRedirectLocation": "/elsewhere"}, ("NotImplemented", 501)),
    ],
    ids=["retention", "legal-hold", "grant", "sse", "website-redirect"],
)
def test_write_headers_for_missing_features_store_nothing(
    s3: BaseClient, bucket: str, extra: tuple[dict[str, object], tuple[str, int]]
) -> None:
    """Features the store lacks, and Object Lock on a bucket without it ("Bucket is missing
    Object Lock Configuration", as on AWS): refused, never stored unprotected."""
    headers, expected = extra
    for call, kwargs in (
        (s3.put_object, {"Key": "k.txt", "Body": b"replacement"}),
        (s3.put_object, {"Key": "new.txt", "Body": b"new"}),
        (s3.copy_object, {"Key": "new.txt", "CopySource": f"{bucket}/k.txt"}),
        (s3.create_multipart_upload, {"Key": "new.txt"}),
    ):
        code, status, _ = error_of(call, Bucket=bucket, **kwargs, **headers)
        assert (code, status) == expected, call
    unchanged(s3, bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_object_lock_bucket_is_created_protected(s3: BaseClient) -> None:
    name = f"lock-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"


def test_misplaced_parameters_are_400(server: ServerProcess, bucket: str) -> None:
    # Unauthenticated server: plain HTTP is enough, and shows the raw S3 XML.
    r = httpx.put(f"{server.url}/{bucket}/k.txt?uploadId=abc", content=b"replacement")
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text
    assert "uploadId" in r.text
    r = httpx.delete(f"{server.url}/{bucket}/k.txt?retention")
    assert r.status_code == 501 and "retention" in r.text
    # DeleteObjectTagging is implemented now: it removes tags, never the object.
    assert httpx.delete(f"{server.url}/{bucket}/k.txt?tagging").status_code == 204
    r = httpx.get(f"{server.url}/{bucket}/k.txt")
    assert r.content == BODY


def test_list_buckets_prefix_and_pages(s3: BaseClient) -> None:
    stem = f"lb{uuid.uuid4().hex[:8]}"
    names = sorted(f"{stem}-{i}" for i in range(5))
    for name in names:
        s3.create_bucket(Bucket=name)
    only = s3.list_buckets(Prefix=stem)
    assert [b["Name"] for b in only["Buckets"]] == names
    seen: list[str] = []
    token = None
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = s3.list_buckets(Prefix=stem, MaxBuckets=2, **kwargs)
        assert len(page["Buckets"]) <= 2
        seen += [b["Name"] for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if not token:
            break
    assert seen == names
    assert s3.list_buckets(Prefix=stem, BucketRegion="eu-west-1")["Buckets"] == []


def test_list_multipart_uploads_encodes_keys_when_asked(s3: BaseClient, bucket: str) -> None:
    key = "dir/a b+c.bin"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    try:
        # boto3 decodes url-encoded answers it asked for; ask by hand to see the wire form.
        listed = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url")
        assert [u["Key"] for u in listed["Uploads"]] == ["dir/a%20b%2Bc.bin"]
        assert listed["EncodingType"] == "url"
        plain = s3.list_multipart_uploads(Bucket=bucket)
        assert [u["Key"] for u in plain["Uploads"]] == [key]
        code, status, _ = error_of(s3.list_multipart_uploads, Bucket=bucket, Delimiter="/")
        assert (code, status) == ("NotImplemented", 501)
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)


def test_refusals_log_at_info_without_traceback(server: ServerProcess, bucket: str) -> None:
    marker = uuid.uuid4().hex
    r = httpx.post(
        f"{server.url}/{bucket}/k.txt?restore",
        content=b"<RestoreRequest><Days>1</Days></RestoreRequest>",
        headers={"X-Request-Id": marker},
    )
    assert r.status_code == 501
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    lines: list[str] = []
    while datetime.now(UTC) < deadline:
        lines = [line for line in server.log_path.read_text().splitlines() if marker in line]
        if any("RestoreObject" in line for line in lines):
            break
        time.sleep(0.05)
    refused = [line for line in lines if "RestoreObject" in line]
    assert refused and all('"level": "info"' in line for line in refused), lines
    assert not any("Traceback" in line or '"level": "error"' in line for line in lines), lines
