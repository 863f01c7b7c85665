"""S3 Block Public Access, Object Ownership and canned ACLs, with authentication on, on both
metadata backends: Put/Get/DeletePublicAccessBlock and what each of its four settings does to
ACLs and bucket policies, for anonymous and authenticated callers; the server-wide
``s3.blockPublicAccess``; OwnershipControls (always BucketOwnerEnforced); canned ACLs the
store can express and a clear refusal of the others."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def anonymous(url: str) -> BaseClient:
    config = Config(signature_version=UNSIGNED, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=config)


def code_of(call: Callable[..., Any], **kwargs: Any) -> str | None:
    try:
        call(**kwargs)
        return None
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])


def public_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def s3(auth_server: ServerProcess) -> BaseClient:
    return s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD)


@pytest.fixture(scope="module")
def bob(auth_server: ServerProcess) -> BaseClient:
    """An S3 key whose role grants nothing in S3."""
    with auth_server.client(auth=ROOT) as c:
        r = c.post("/v1/access-keys", json={"name": "bob", "roles": ["events-publisher"]})
        assert r.status_code == 201, r.text
        key = r.json()
    return s3_client(auth_server.url, key["access_key_id"], key["secret_access_key"])


@pytest.fixture
def bucket(s3: BaseClient) -> Iterator[str]:
    name = f"pab-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="a.txt", Body=b"artifact")
    yield name


def test_put_get_delete_public_access_block(s3: BaseClient, bucket: str) -> None:
    assert code_of(s3.get_public_access_block, Bucket=bucket) == (
        "NoSuchPublicAccessBlockConfiguration"
    )
    config = {"BlockPublicAcls": True, "IgnorePublicAcls": False}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)
    got = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert got == {**config, "BlockPublicPolicy": False, "RestrictPublicBuckets": False}
    s3.delete_public_access_block(Bucket=bucket)
    assert code_of(s3.get_public_access_block, Bucket=bucket) == (
        "NoSuchPublicAccessBlockConfiguration"
    )


def test_block_public_acls(s3: BaseClient, bucket: str) -> None:
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"BlockPublicAcls": True}
    )
    assert code_of(s3.put_object, Bucket=bucket, Key="b.txt", Body=b"b", ACL="public-read") == (
        "AccessDenied"
    )
    assert code_of(s3.head_object, Bucket=bucket, Key="b.txt") == "404"  # nothing stored
    assert code_of(s3.put_bucket_acl, Bucket=bucket, ACL="public-read") == "AccessDenied"
    assert code_of(s3.put_object_acl, Bucket=bucket, Key="a.txt", ACL="public-read") == (
        "AccessDenied"
    )
    grants = (
        s3.get_bucket_acl(Bucket=bucket)["Grants"]
        + s3.get_object_acl(Bucket=bucket, Key="a.txt")["Grants"]
    )
    assert not any(g["Grantee"].get("URI") == ALL_USERS for g in grants)
    # private stays possible
    s3.put_object(Bucket=bucket, Key="c.txt", Body=b"c", ACL="private")


def test_ignore_public_acls(auth_server: ServerProcess, s3: BaseClient, bucket: str) -> None:
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    anon = anonymous(auth_server.url)
    assert anon.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"artifact"
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"IgnorePublicAcls": True}
    )
    assert code_of(anon.get_object, Bucket=bucket, Key="a.txt") == "AccessDenied"
    with httpx.Client(base_url=auth_server.url) as c:  # /v1 asks the same authorizer
        assert c.get(f"/v1/buckets/{bucket}/objects/a.txt").status_code == 401
    s3.delete_public_access_block(Bucket=bucket)
    assert anon.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"artifact"


def test_block_public_policy(s3: BaseClient, bucket: str) -> None:
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"BlockPublicPolicy": True}
    )
    assert code_of(s3.put_bucket_policy, Bucket=bucket, Policy=public_policy(bucket)) == (
        "AccessDenied"
    )
    assert code_of(s3.get_bucket_policy, Bucket=bucket) == "NoSuchBucketPolicy"
    # A policy for known principals is not public.
    named = json.loads(public_policy(bucket))
    named["Statement"][0]["Principal"] = {"AWS": "s3key:ZAKSOMEONE"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(named))


def test_restrict_public_buckets(
    auth_server: ServerProcess, s3: BaseClient, bob: BaseClient, bucket: str
) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    anon = anonymous(auth_server.url)
    assert anon.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"artifact"
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True}
    )
    assert code_of(anon.get_object, Bucket=bucket, Key="a.txt") == "AccessDenied"
    # An authenticated caller still gets what the statement grants.
    assert bob.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"artifact"


def test_server_wide_block(tmp_path: Path) -> None:
    proc = ServerProcess(
        tmp_path / "data",
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
        config={"s3": {"blockPublicAccess": True}},
    )
    proc.start()
    try:
        s3 = s3_client(proc.url, ROOT_USER, ROOT_PASSWORD)
        assert code_of(s3.create_bucket, Bucket="open-one", ACL="public-read") == "AccessDenied"
        assert code_of(s3.head_bucket, Bucket="open-one") == "404"
        s3.create_bucket(Bucket="closed")
        with proc.client(auth=ROOT) as c:
            r = c.put("/v1/buckets/closed", json={"public_read": True})
            assert r.status_code == 403 and "s3.blockPublicAccess" in r.json()["message"]
        assert code_of(s3.put_bucket_policy, Bucket="closed", Policy=public_policy("closed")) == (
            "AccessDenied"
        )
        # The bucket's own configuration cannot loosen it.
        s3.put_public_access_block(
            Bucket="closed", PublicAccessBlockConfiguration={"BlockPublicAcls": False}
        )
        assert code_of(s3.put_bucket_acl, Bucket="closed", ACL="public-read") == "AccessDenied"
    finally:
        proc.stop()


def test_ownership_controls(s3: BaseClient, bucket: str) -> None:
    rule = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == rule
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=rule)
    other = {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=other)
    assert exc.value.response["Error"]["Code"] == "NotImplemented"
    assert "BucketOwnerEnforced" in exc.value.response["Error"]["Message"]
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == rule


def test_canned_acls(s3: BaseClient, bucket: str) -> None:
    for acl in ("bucket-owner-full-control", "bucket-owner-read"):
        s3.put_object(Bucket=bucket, Key=f"{acl}.txt", Body=b"x", ACL=acl)
        grants = s3.get_object_acl(Bucket=bucket, Key=f"{acl}.txt")["Grants"]
        assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    for acl in ("public-read-write", "authenticated-read", "log-delivery-write"):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key="refused.txt", Body=b"x", ACL=acl)
        err = exc.value.response["Error"]
        assert err["Code"] == "NotImplemented" and acl in err["Message"]
        assert "bucket policy" in err["Message"]
    assert code_of(s3.head_object, Bucket=bucket, Key="refused.txt") == "404"
