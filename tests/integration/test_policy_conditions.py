"""Bucket policies as AWS writes them, put with boto3 and tested by requests from different
principals (S3 access keys, anonymous, root), on both metadata backends: ``Principal: "*"``,
``Resource`` as the bucket's ARNs, conditions on object tags (``s3:ExistingObjectTag/<key>``,
``s3:RequestObjectTag/<key>``), listing keys (``s3:prefix``, ``s3:delimiter``,
``s3:max-keys``), ``aws:SecureTransport`` (through a trusted proxy's ``X-Forwarded-Proto``),
``aws:username`` / ``aws:userid``, ``Null``; the same decisions through ``/v1``;
GetBucketPolicyStatus; and a condition the engine cannot honour refused, naming it."""

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

from tests.fixtures.server import ServerProcess

ROOT = ("cond-admin", "cond-admin-password")


def client(url: str, auth: tuple[str, str] | None, proto: str | None = None) -> BaseClient:
    config = Config(
        signature_version="s3v4" if auth else UNSIGNED,
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
    )
    keys = {"aws_access_key_id": auth[0], "aws_secret_access_key": auth[1]} if auth else {}
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=config, **keys)
    if proto is not None:  # as the TLS-terminating proxy in front of the store says

        def forwarded(request: Any, **_: Any) -> None:
            request.headers["X-Forwarded-Proto"] = proto

        s3.meta.events.register("before-sign.s3.*", forwarded)
    return s3


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp(f"cond-{request.param}") / "data"
    proc = ServerProcess(
        data,
        metadata_uri=metadata_uri_for(request.param, data),
        env={"ZAS_ROOT_USER": ROOT[0], "ZAS_ROOT_PASSWORD": ROOT[1]},
        config={"http": {"trustedProxies": ["127.0.0.1/32"]}},
    )
    yield proc.start()
    proc.stop()


def allowed(call: Callable[..., Any], **kwargs: Any) -> bool:
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
        return False


@pytest.fixture(scope="module")
def world(store: ServerProcess) -> dict[str, Any]:
    """A bucket with tagged objects, two S3 keys whose role grants nothing in S3 (alice, bob)
    and the bucket's policy."""
    bucket = f"cond-{uuid.uuid4().hex[:12]}"
    root = client(store.url, ROOT)
    root.create_bucket(Bucket=bucket)
    for key, tags in (
        ("docs/public.txt", "visibility=public"),
        ("docs/private.txt", "visibility=private"),
        ("docs/untagged.txt", ""),
        ("home/alice/a.txt", ""),
        ("home/bob/b.txt", ""),
        ("tls/secret.txt", ""),
    ):
        root.put_object(Bucket=bucket, Key=key, Body=key.encode(), Tagging=tags)
    keys = {}
    with store.client(auth=ROOT) as c:
        for name in ("alice", "bob"):
            r = c.post(
                "/v1/access-keys", json={"name": name, "roles": ["events-publisher"]}
            )  # no S3 rights
            assert r.status_code == 201, r.text
            keys[name] = (r.json()["access_key_id"], r.json()["secret_access_key"])
    alice_id = f"s3key:{keys['alice'][0]}"
    arn = f"arn:aws:s3:::{bucket}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AnyoneReadsWhatIsTaggedPublic",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{arn}/*",
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/visibility": "public"}},
            },
            {
                "Sid": "AliceListsHerHome",
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {
                    "StringEquals": {"aws:username": "alice", "s3:delimiter": "/"},
                    "StringLike": {"s3:prefix": ["home/alice/*", "home/alice/"]},
                    "NumericLessThanEquals": {"s3:max-keys": 100},
                },
            },
            {
                "Sid": "UploadsCarryATeamTag",
                "Effect": "Allow",
                "Principal": {"AWS": [alice_id, f"s3key:{keys['bob'][0]}"]},
                "Action": ["s3:PutObject", "s3:PutObjectTagging"],
                "Resource": f"{arn}/uploads/*",
                "Condition": {"StringLike": {"s3:RequestObjectTag/team": ["build", "qa-*"]}},
            },
            {
                "Sid": "NoUntaggedUploads",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{arn}/uploads/*",
                "Condition": {"Null": {"s3:RequestObjectTag/team": "true"}},
            },
            {
                "Sid": "OnlyAliceDeletesInHome",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": f"{arn}/home/*",
                "Condition": {"StringEquals": {"aws:userid": alice_id}},
            },
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": f"{arn}/tls/*",
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            },
        ],
    }
    root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return {"bucket": bucket, "keys": keys, "policy": policy}


def test_existing_object_tags_decide_reads(store: ServerProcess, world: dict[str, Any]) -> None:
    bucket = world["bucket"]
    for who in (None, world["keys"]["bob"]):
        s3 = client(store.url, who)
        assert allowed(s3.get_object, Bucket=bucket, Key="docs/public.txt")
        assert not allowed(s3.get_object, Bucket=bucket, Key="docs/private.txt")
        assert not allowed(s3.get_object, Bucket=bucket, Key="docs/untagged.txt")
    # The tag is read at each request: retagging changes the answer.
    root = client(store.url, ROOT)
    tagging = {"TagSet": [{"Key": "visibility", "Value": "public"}]}
    root.put_object_tagging(Bucket=bucket, Key="docs/private.txt", Tagging=tagging)
    assert allowed(client(store.url, None).get_object, Bucket=bucket, Key="docs/private.txt")
    tagging = {"TagSet": [{"Key": "visibility", "Value": "private"}]}
    root.put_object_tagging(Bucket=bucket, Key="docs/private.txt", Tagging=tagging)
    # /v1 decides the same (one authorizer): an anonymous download by tag.
    with httpx.Client(base_url=store.url) as c:
        assert c.get(f"/v1/buckets/{bucket}/objects/docs/public.txt").status_code == 200
        assert c.get(f"/v1/buckets/{bucket}/objects/docs/private.txt").status_code == 401


def test_listing_keys_decide_listings(store: ServerProcess, world: dict[str, Any]) -> None:
    bucket = world["bucket"]
    alice = client(store.url, world["keys"]["alice"])
    ok = {"Bucket": bucket, "Prefix": "home/alice/", "Delimiter": "/", "MaxKeys": 50}
    listed = alice.list_objects_v2(**ok)
    assert [o["Key"] for o in listed["Contents"]] == ["home/alice/a.txt"]
    assert allowed(alice.list_objects, **ok)
    assert not allowed(alice.list_objects_v2, **{**ok, "Prefix": "home/bob/"})
    assert not allowed(alice.list_objects_v2, **{**ok, "Delimiter": "|"})
    assert not allowed(alice.list_objects_v2, **{**ok, "MaxKeys": 1000})
    assert not allowed(alice.list_objects_v2, Bucket=bucket, Prefix="home/alice/")  # no delimiter
    bob = client(store.url, world["keys"]["bob"])
    assert not allowed(bob.list_objects_v2, **ok)  # aws:username is alice only
    # /v1's listing offers the same keys (prefix, delimiter, limit as max-keys).
    with httpx.Client(base_url=store.url, auth=world["keys"]["alice"]) as c:
        url = f"/v1/buckets/{bucket}/objects"
        params = {"prefix": "home/alice/", "delimiter": "/", "limit": "50"}
        r = c.get(url, params=params)
        assert r.status_code == 200, r.text
        assert [o["key"] for o in r.json()["objects"]] == ["home/alice/a.txt"]
        assert c.get(url, params={**params, "prefix": "home/bob/"}).status_code == 403
        assert c.get(url, params={**params, "limit": "500"}).status_code == 403
        assert c.get(url).status_code == 403
    assert not allowed(client(store.url, None).list_objects_v2, **ok)


def test_request_object_tags_decide_uploads(store: ServerProcess, world: dict[str, Any]) -> None:
    bucket = world["bucket"]
    alice = client(store.url, world["keys"]["alice"])
    root = client(store.url, ROOT)
    assert allowed(
        alice.put_object, Bucket=bucket, Key="uploads/a.bin", Body=b"a", Tagging="team=build"
    )
    assert allowed(
        alice.put_object, Bucket=bucket, Key="uploads/b.bin", Body=b"b", Tagging="team=qa-eu"
    )
    assert not allowed(
        alice.put_object, Bucket=bucket, Key="uploads/c.bin", Body=b"c", Tagging="team=ops"
    )
    assert not allowed(alice.put_object, Bucket=bucket, Key="uploads/d.bin", Body=b"d")
    # Null: true denies an untagged upload even to root, whose role allows everything else.
    assert not allowed(root.put_object, Bucket=bucket, Key="uploads/e.bin", Body=b"e")
    stored = [o["Key"] for o in root.list_objects_v2(Bucket=bucket, Prefix="uploads/")["Contents"]]
    assert stored == ["uploads/a.bin", "uploads/b.bin"]  # refusals stored nothing
    # PutObjectTagging's body is the request's tags too.
    ok = {"TagSet": [{"Key": "team", "Value": "build"}]}
    bad = {"TagSet": [{"Key": "team", "Value": "ops"}]}
    assert allowed(alice.put_object_tagging, Bucket=bucket, Key="uploads/a.bin", Tagging=ok)
    assert not allowed(alice.put_object_tagging, Bucket=bucket, Key="uploads/a.bin", Tagging=bad)
    tags = root.get_object_tagging(Bucket=bucket, Key="uploads/a.bin")["TagSet"]
    assert tags == [{"Key": "team", "Value": "build"}]


def test_principal_ids_decide_deletes(store: ServerProcess, world: dict[str, Any]) -> None:
    bucket = world["bucket"]
    root = client(store.url, ROOT)
    root.put_object(Bucket=bucket, Key="home/bob/tmp.txt", Body=b"x")
    bob = client(store.url, world["keys"]["bob"])
    assert not allowed(bob.delete_object, Bucket=bucket, Key="home/bob/tmp.txt")
    assert root.head_object(Bucket=bucket, Key="home/bob/tmp.txt")["ContentLength"] == 1
    alice = client(store.url, world["keys"]["alice"])
    assert allowed(alice.delete_object, Bucket=bucket, Key="home/bob/tmp.txt")
    with pytest.raises(ClientError):
        root.head_object(Bucket=bucket, Key="home/bob/tmp.txt")


def test_secure_transport(store: ServerProcess, world: dict[str, Any]) -> None:
    bucket = world["bucket"]
    # Plain HTTP: denied to everyone, root included.
    assert not allowed(client(store.url, ROOT).get_object, Bucket=bucket, Key="tls/secret.txt")
    # Behind the trusted proxy that terminated TLS: allowed.
    tls = client(store.url, ROOT, proto="https")
    body = tls.get_object(Bucket=bucket, Key="tls/secret.txt")["Body"].read()
    assert body == b"tls/secret.txt"
    assert not allowed(
        client(store.url, ROOT, proto="http").get_object, Bucket=bucket, Key="tls/secret.txt"
    )


def test_policy_status(store: ServerProcess, world: dict[str, Any]) -> None:
    root = client(store.url, ROOT)
    # The shared world's policy lets anyone read objects tagged public: public.
    assert root.get_bucket_policy_status(Bucket=world["bucket"])["PolicyStatus"]["IsPublic"]
    bucket = f"status-{uuid.uuid4().hex[:12]}"
    root.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        root.get_bucket_policy_status(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "NoSuchBucketPolicy"

    def status(statement: dict[str, Any]) -> bool:
        doc = {"Version": "2012-10-17", "Statement": [statement]}
        root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
        return root.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"]

    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    assert status({**read, "Principal": "*"}) is True
    assert status({**read, "Principal": {"AWS": "*"}}) is True
    assert status({**read, "Principal": {"AWS": "s3key:ZAKSOMEONE"}}) is False
    assert status({**read, "Principal": "*", "Effect": "Deny"}) is False
    only_lan = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert status({**read, "Principal": "*", "Condition": only_lan}) is False
    anywhere = {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}
    assert status({**read, "Principal": "*", "Condition": anywhere}) is True
    one_user = {"StringEquals": {"aws:userid": "s3key:ZAKSOMEONE"}}
    assert status({**read, "Principal": "*", "Condition": one_user}) is False
    root.delete_bucket_policy(Bucket=bucket)
    root.put_bucket_acl(Bucket=bucket, ACL="public-read")  # a public ACL is public too
    assert root.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    # An anonymous caller may not ask.
    with pytest.raises(ClientError) as exc:
        client(store.url, None).get_bucket_policy_status(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize(
    "condition, names",
    [
        ({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*"}}, "ArnLike"),
        ({"StringEquals": {"s3:x-amz-acl": "public-read"}}, "s3:x-amz-acl"),
        ({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "a"}}, "ForAnyValue"),
        ({"NumericLessThan": {"s3:max-keys": "ten"}}, "NumericLessThan"),
        ({"IpAddress": {"s3:prefix": "10.0.0.0/8"}}, "s3:prefix"),
        ({"Bool": {"aws:SecureTransport": "maybe"}}, "aws:SecureTransport"),
        ({"NullIfExists": {"s3:prefix": "true"}}, "NullIfExists"),
    ],
    ids=["operator", "key", "set-operator", "number", "key-type", "bool", "null-if-exists"],
)
def test_conditions_the_engine_cannot_honour_are_refused(
    store: ServerProcess, world: dict[str, Any], condition: dict[str, Any], names: str
) -> None:
    root = client(store.url, ROOT)
    bucket = world["bucket"]
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": condition,
            }
        ],
    }
    with pytest.raises(ClientError) as exc:
        root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
    err = exc.value.response["Error"]
    assert err["Code"] == "MalformedPolicy" and names in err["Message"], err
    assert "Statement[0].Condition" in err["Message"]
    assert json.loads(root.get_bucket_policy(Bucket=bucket)["Policy"]) == world["policy"]


def test_other_principal_kinds_are_refused(store: ServerProcess, world: dict[str, Any]) -> None:
    root = client(store.url, ROOT)
    bucket = world["bucket"]
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    for principal in ({"Service": "cloudfront.amazonaws.com"}, {"CanonicalUser": "abc"}):
        doc = {"Statement": [{**statement, "Principal": principal}]}
        with pytest.raises(ClientError) as exc:
            root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
        message = exc.value.response["Error"]["Message"]
        assert next(iter(principal)) in message and "Principal" in message, message
    assert json.loads(root.get_bucket_policy(Bucket=bucket)["Policy"]) == world["policy"]
