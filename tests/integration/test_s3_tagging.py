"""S3 tags as AWS documents them, through boto3, at ``/`` and ``/s3``, on both metadata
backends: ``x-amz-tagging`` on PutObject, CreateMultipartUpload (the object gets them at
complete) and CopyObject (``x-amz-tagging-directive`` COPY or REPLACE), S3's limits
(``InvalidTag``, nothing stored), an overwrite without tags dropping them, bucket tags
(Put/Get/DeleteBucketTagging, ``NoSuchTagSet``), and ``s3:PutObjectTagging`` being needed
besides ``s3:PutObject`` for a write that sets tags."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

BODY = b"tagged artifact\n"
PART = b"p" * (5 * 1024 * 1024)  # a non-last part must be at least 5 MiB


@pytest.fixture(scope="module", params=["", "/s3"], ids=["root", "s3-prefix"])
def s3(server: ServerProcess, request: pytest.FixtureRequest) -> BaseClient:
    return s3_client(server.url + request.param)


@pytest.fixture
def bucket(s3: BaseClient) -> Iterator[str]:
    name = f"tag-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name


def tags_of(s3: BaseClient, bucket: str, key: str) -> dict[str, str]:
    tag_set = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def error_of(call: object, **kwargs: object) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)  # type: ignore[operator]
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def listed(s3: BaseClient, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_put_object_with_tags_header(s3: BaseClient, bucket: str, server: ServerProcess) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=BODY, Tagging="team=build&stage=rc%201&empty=")
    assert tags_of(s3, bucket, "a.txt") == {"team": "build", "stage": "rc 1", "empty": ""}
    head = s3.head_object(Bucket=bucket, Key="a.txt")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "3"
    assert s3.get_object(Bucket=bucket, Key="a.txt")["TagCount"] == 3
    # /v1 shows them beside the labels.
    with server.client() as http:
        meta = http.get(f"/v1/buckets/{bucket}/objects/a.txt?metadata=true").json()
    assert meta["tags"] == {"team": "build", "stage": "rc 1", "empty": ""}


def test_an_overwrite_without_the_header_drops_the_tags(s3: BaseClient, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=BODY, Tagging="team=build")
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"v2\n")
    assert tags_of(s3, bucket, "a.txt") == {}
    head = s3.head_object(Bucket=bucket, Key="a.txt")
    assert "x-amz-tagging-count" not in head["ResponseMetadata"]["HTTPHeaders"]
    # ... and an overwrite with the header sets exactly its tags.
    s3.put_object(Bucket=bucket, Key="a.txt", Body=BODY, Tagging="stage=final")
    assert tags_of(s3, bucket, "a.txt") == {"stage": "final"}


def test_multipart_upload_carries_its_tags_to_the_object(s3: BaseClient, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin", Tagging="team=build&k=v")
    upload_id = upload["UploadId"]
    # Nothing exists until the upload completes.
    assert error_of(s3.get_object_tagging, Bucket=bucket, Key="big.bin") == ("NoSuchKey", 404)
    etags = [
        s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload_id, PartNumber=n, Body=body)[
            "ETag"
        ]
        for n, body in ((1, PART), (2, BODY))
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    assert tags_of(s3, bucket, "big.bin") == {"team": "build", "k": "v"}
    got = s3.get_object(Bucket=bucket, Key="big.bin")
    assert got["TagCount"] == 2 and got["Body"].read() == PART + BODY
    # An upload without the header makes an object without tags.
    plain = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=plain, PartNumber=1, Body=BODY)[
        "ETag"
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=plain,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert tags_of(s3, bucket, "big.bin") == {}


def test_copy_keeps_or_replaces_the_tags(s3: BaseClient, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src.txt", Body=BODY, Tagging="team=build&stage=rc")
    source = {"Bucket": bucket, "Key": "src.txt"}
    # COPY (the default) keeps the source's; a header beside it is ignored, as on AWS.
    s3.copy_object(Bucket=bucket, Key="copy.txt", CopySource=source)
    assert tags_of(s3, bucket, "copy.txt") == {"team": "build", "stage": "rc"}
    s3.copy_object(
        Bucket=bucket, Key="copy2.txt", CopySource=source, TaggingDirective="COPY", Tagging="x=y"
    )
    assert tags_of(s3, bucket, "copy2.txt") == {"team": "build", "stage": "rc"}
    # REPLACE takes the header's, or none without one.
    s3.copy_object(
        Bucket=bucket, Key="new.txt", CopySource=source, TaggingDirective="REPLACE", Tagging="x=y"
    )
    assert tags_of(s3, bucket, "new.txt") == {"x": "y"}
    s3.copy_object(Bucket=bucket, Key="none.txt", CopySource=source, TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "none.txt") == {}
    # The metadata directive is independent of the tagging directive.
    s3.copy_object(
        Bucket=bucket,
        Key="meta.txt",
        CopySource=source,
        MetadataDirective="REPLACE",
        Metadata={"a": "b"},
    )
    assert tags_of(s3, bucket, "meta.txt") == {"team": "build", "stage": "rc"}
    assert s3.head_object(Bucket=bucket, Key="meta.txt")["Metadata"] == {"a": "b"}
    # The source is untouched; a bad directive is refused.
    assert tags_of(s3, bucket, "src.txt") == {"team": "build", "stage": "rc"}
    assert error_of(
        s3.copy_object, Bucket=bucket, Key="bad.txt", CopySource=source, TaggingDirective="MERGE"
    ) == ("InvalidArgument", 400)
    assert "bad.txt" not in listed(s3, bucket)


@pytest.mark.parametrize(
    "tagging",
    [
        "&".join(f"k{i}=v" for i in range(11)),  # 11 tags
        f"{'k' * 129}=v",  # key too long
        f"k={'v' * 257}",  # value too long
        "=v",  # empty key
        "k=1&k=2",  # twice
    ],
    ids=["eleven", "long-key", "long-value", "empty-key", "twice"],
)
def test_tags_beyond_the_limits_store_nothing(s3: BaseClient, bucket: str, tagging: str) -> None:
    s3.put_object(Bucket=bucket, Key="src.txt", Body=BODY, Tagging="keep=me")
    source = {"Bucket": bucket, "Key": "src.txt"}
    for call, kwargs in (
        (s3.put_object, {"Key": "src.txt", "Body": b"replacement"}),
        (s3.put_object, {"Key": "new.txt", "Body": b"new"}),
        (s3.copy_object, {"Key": "new.txt", "CopySource": source, "TaggingDirective": "REPLACE"}),
        (s3.create_multipart_upload, {"Key": "new.txt"}),
    ):
        assert error_of(call, Bucket=bucket, Tagging=tagging, **kwargs) == ("InvalidTag", 400)
    assert listed(s3, bucket) == ["src.txt"]
    assert s3.get_object(Bucket=bucket, Key="src.txt")["Body"].read() == BODY
    assert tags_of(s3, bucket, "src.txt") == {"keep": "me"}
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_ten_tags_and_the_longest_key_and_value_are_accepted(s3: BaseClient, bucket: str) -> None:
    tagging = "&".join(f"k{i}=v" for i in range(9)) + f"&{'k' * 128}={'v' * 256}"
    s3.put_object(Bucket=bucket, Key="a.txt", Body=BODY, Tagging=tagging)
    assert len(tags_of(s3, bucket, "a.txt")) == 10


def test_bucket_tags_round_trip(s3: BaseClient, bucket: str, server: ServerProcess) -> None:
    assert error_of(s3.get_bucket_tagging, Bucket=bucket) == ("NoSuchTagSet", 404)
    tag_set = [
        {"Key": "app.kubernetes.io/name", "Value": "zas"},  # a dotted key, stored as given
        {"Key": "$cost", "Value": ""},
    ]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert sorted(got, key=lambda t: t["Key"]) == sorted(tag_set, key=lambda t: t["Key"])
    with server.client() as http:
        shown = http.get(f"/v1/buckets/{bucket}").json()
    assert shown["tags"] == {"app.kubernetes.io/name": "zas", "$cost": ""}
    # A put replaces the whole set; the bucket policy beside them is kept.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ci"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "ci"}]
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    s3.delete_bucket_tagging(Bucket=bucket)
    assert error_of(s3.get_bucket_tagging, Bucket=bucket) == ("NoSuchTagSet", 404)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    # Bucket tags are not object tags: an object in the bucket has none.
    s3.put_object(Bucket=bucket, Key="a.txt", Body=BODY)
    assert tags_of(s3, bucket, "a.txt") == {}


def test_bucket_tags_limits(s3: BaseClient, bucket: str) -> None:
    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": fifty})
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    for tag_set in (
        [*fifty, {"Key": "one-more", "Value": "v"}],
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}],
    ):
        code = error_of(s3.put_bucket_tagging, Bucket=bucket, Tagging={"TagSet": tag_set})
        assert code == ("InvalidTag", 400)
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50  # unchanged
    missing = f"nope-{uuid.uuid4().hex[:12]}"
    assert error_of(s3.get_bucket_tagging, Bucket=missing) == ("NoSuchBucket", 404)


def test_a_write_with_tags_needs_put_object_tagging(auth_server: ServerProcess) -> None:
    """As on AWS: a PUT that carries x-amz-tagging is also authorized as s3:PutObjectTagging.
    A bucket policy denying it refuses tagged writes (nothing stored) and lets plain ones in."""
    s3 = s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD)
    bucket = f"tagauth-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="src.txt", Body=BODY, Tagging="team=build")
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:PutObjectTagging"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
    source = {"Bucket": bucket, "Key": "src.txt"}
    for call, kwargs in (
        (s3.put_object, {"Key": "new.txt", "Body": BODY, "Tagging": "a=b"}),
        (s3.create_multipart_upload, {"Key": "new.txt", "Tagging": "a=b"}),
        (
            s3.copy_object,
            {
                "Key": "new.txt",
                "CopySource": source,
                "TaggingDirective": "REPLACE",
                "Tagging": "a=b",
            },
        ),
    ):
        assert error_of(call, Bucket=bucket, **kwargs) == ("AccessDenied", 403)
    assert listed(s3, bucket) == ["src.txt"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # Without tags the same writes pass; a COPY of the tags is no tagging request.
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=BODY)
    s3.copy_object(Bucket=bucket, Key="copy.txt", CopySource=source)
    assert tags_of(s3, bucket, "copy.txt") == {"team": "build"}
    assert listed(s3, bucket) == ["copy.txt", "plain.txt", "src.txt"]
