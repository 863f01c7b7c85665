"""IAM-style policies against the running server with authentication on, on both metadata
backends. The same rules must hold identically through ``/v1``, S3 and the OCI registry: a
table of (who, API, operation, target) → allowed or not, each refusal proven to store
nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)
RUN = uuid.uuid4().hex[:8]
LOCKED, SHARED, OPEN = f"locked-{RUN}", f"shared-{RUN}", f"open-{RUN}"


def s3_client(url: str, auth: tuple[str, str] | None) -> BaseClient:
    kwargs: dict[str, Any] = {}
    if auth is None:
        from botocore import UNSIGNED

        kwargs["config"] = Config(
            signature_version=UNSIGNED, s3={"addressing_style": "path"}, retries={"max_attempts": 1}
        )
    else:
        kwargs["config"] = Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}
        )
        kwargs.update(aws_access_key_id=auth[0], aws_secret_access_key=auth[1])
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", **kwargs)


@pytest.fixture(scope="module")
def world(auth_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """Buckets and policies every test in this module shares."""
    with auth_server.client() as c:
        for bucket in (LOCKED, SHARED, OPEN):
            assert c.put(f"/v1/buckets/{bucket}", auth=ROOT).status_code in (200, 201)
        c.put(f"/v1/buckets/{SHARED}/objects/readme.txt", content=b"shared", auth=ROOT)
        c.put(f"/v1/buckets/{LOCKED}/objects/old.txt", content=b"old", auth=ROOT)
        # Global: even root may not write into the locked bucket or push to locked/*
        # repositories; anyone may pull shared/* repositories.
        doc = {
            "Statement": [
                {
                    "Sid": "freeze",
                    "Effect": "Deny",
                    "Principal": [f"root:{ROOT_USER}", "role:writer"],
                    "Action": ["s3:PutObject", "s3:DeleteObject", "oci:push"],
                    "Resource": [f"{LOCKED}/*", f"repo:{LOCKED}/*"],
                },
                {
                    "Sid": "public-images",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "oci:pull",
                    "Resource": f"repo:{SHARED}/*",
                },
            ]
        }
        r = c.put(f"/v1/policies/freeze-{RUN}", json=doc, auth=ROOT)
        assert r.status_code == 201, r.text
        # Bucket policy in S3's own dialect: anonymous reads of the shared bucket.
        bucket_doc = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{SHARED}/*"],
                }
            ],
        }
        s3_client(auth_server.url, ROOT).put_bucket_policy(
            Bucket=SHARED, Policy=json.dumps(bucket_doc)
        )
        # An image in shared/ to pull.
        digest = push_blob(c, f"{SHARED}/base", b"base layer", ROOT)
        # A robot with the writer role: an API token for /v1 and the registry, an S3 key.
        r = c.post("/v1/tokens", json={"name": "robot", "roles": ["writer"]}, auth=ROOT)
        token = r.json()["token"]
        r = c.post("/v1/access-keys", json={"name": "robot", "roles": ["writer"]}, auth=ROOT)
        key = (r.json()["access_key_id"], r.json()["secret_access_key"])
        yield {"shared_digest": digest, "robot_token": token, "robot_key": key}
        c.delete(f"/v1/policies/freeze-{RUN}", auth=ROOT)


def push_blob(
    c: httpx.Client, repo: str, data: bytes, auth: tuple[str, str] | None
) -> str | httpx.Response:
    scope = f"repository:{repo}:pull,push"
    tok = c.get("/v2/token", params={"scope": scope}, auth=auth).json()["token"]
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data,
               headers={"Authorization": f"Bearer {tok}"})  # fmt: skip
    return digest if r.status_code == 201 else r


def via_v1(c: httpx.Client, op: str, bucket: str, auth: tuple[str, str] | None) -> bool:
    key = f"{bucket}/objects/k-{uuid.uuid4().hex[:6]}"
    if op == "write":
        r = c.put(f"/v1/buckets/{key}", content=b"data", auth=auth)
        stored = c.head(f"/v1/buckets/{key}", auth=ROOT).status_code == 200
        assert stored == (r.status_code == 201), r.text  # a refusal stores nothing
        return r.status_code == 201
    r = c.get(f"/v1/buckets/{bucket}/objects/{'readme.txt' if bucket == SHARED else 'old.txt'}",
              auth=auth)  # fmt: skip
    assert r.status_code in (200, 401, 403, 404), r.text
    return r.status_code == 200


def via_s3(url: str, op: str, bucket: str, auth: tuple[str, str] | None) -> bool:
    s3 = s3_client(url, auth)
    key = f"k-{uuid.uuid4().hex[:6]}"
    try:
        if op == "write":
            s3.put_object(Bucket=bucket, Key=key, Body=b"data")
        else:
            s3.get_object(Bucket=bucket, Key="readme.txt" if bucket == SHARED else "old.txt")
        return True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
        if op == "write":
            with pytest.raises(ClientError):
                s3_client(url, ROOT).head_object(Bucket=bucket, Key=key)
        return False


def via_oci(
    c: httpx.Client, op: str, bucket: str, auth: tuple[str, str] | None, world: dict
) -> bool:
    repo = f"{bucket}/app"
    if op == "write":
        result = push_blob(c, repo, uuid.uuid4().bytes, auth)
        if isinstance(result, httpx.Response):
            assert result.status_code in (401, 403), result.text
            return False
        return True
    digest = world["shared_digest"]
    scope = f"repository:{bucket}/base:pull"
    tok = c.get("/v2/token", params={"scope": scope}, auth=auth).json()["token"]
    r = c.get(f"/v2/{bucket}/base/blobs/{digest}", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code in (200, 401, 403, 404), r.text
    return r.status_code == 200


NAMESPACES = {"open": OPEN, "locked": LOCKED, "shared": SHARED}
TABLE = [
    # who, operation, bucket/repository namespace, allowed
    ("root", "write", "open", True),
    ("root", "write", "locked", False),  # an explicit Deny beats the admin role
    ("root", "read", "locked", True),
    ("anonymous", "read", "shared", True),  # bucket policy / global Allow
    ("anonymous", "write", "shared", False),
    ("anonymous", "read", "locked", False),
    ("robot", "write", "open", True),  # the writer role
    ("robot", "write", "locked", False),  # Deny on role:writer
    ("robot", "read", "shared", True),
]


# Every row through every API, except root reading the locked namespace over OCI: root may
# not push there (that is the point), so there is no image to read.
CASES = [
    (api, *row)
    for api in ("v1", "s3", "oci")
    for row in TABLE
    if not (api == "oci" and row[:3] == ("root", "read", "locked"))
]


@pytest.mark.parametrize(("api", "who", "op", "bucket", "allowed"), CASES)
def test_the_same_rules_through_every_api(
    auth_server: ServerProcess, world: dict, api: str, who: str, op: str, bucket: str, allowed: bool
) -> None:
    # Credentials as each API takes them: root's password everywhere; the robot's API token
    # as a Basic password (/v1, registry login), its S3 access key for S3.
    auth = {"root": ROOT, "anonymous": None, "robot": ("robot", world["robot_token"])}[who]
    s3_auth = world["robot_key"] if who == "robot" else auth
    bucket = NAMESPACES[bucket]
    with auth_server.client() as c:
        actual: Callable[[], bool] = {
            "v1": lambda: via_v1(c, op, bucket, auth),
            "s3": lambda: via_s3(auth_server.url, op, bucket, s3_auth),
            "oci": lambda: via_oci(c, op, bucket, auth, world),
        }[api]
        assert actual() is allowed


def test_authorize_endpoint_names_the_deciding_statement(
    auth_server: ServerProcess, world: dict
) -> None:
    with auth_server.client() as c:
        r = c.post("/v1/authorize", json={"action": "s3:PutObject", "resource": f"{LOCKED}/x"},
                   auth=ROOT)  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["allowed"] is False
        assert "freeze" in body["reason"] and f"freeze-{RUN}" in body["reason"]
        r = c.post("/v1/authorize", json={"principal": "anonymous", "action": "oci:pull",
                   "resource": f"repo:{SHARED}/base"}, auth=ROOT)  # fmt: skip
        assert r.json()["allowed"] is True and "public-images" in r.json()["reason"]
        r = c.post("/v1/authorize", json={"principal": "token:nope", "action": "s3:GetObject"},
                   auth=ROOT)  # fmt: skip
        assert r.status_code == 400


def test_conditions_on_source_ip(auth_server: ServerProcess, world: dict) -> None:
    bucket = f"ipcond-{RUN}"
    with auth_server.client() as c:
        c.put(f"/v1/buckets/{bucket}", auth=ROOT)
        doc = {
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": f"{bucket}/*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}},
                }
            ]
        }
        assert c.put(f"/v1/buckets/{bucket}/policy", json=doc, auth=ROOT).status_code == 200
        # This test client is 127.0.0.1, outside 10/8: denied.
        r = c.put(f"/v1/buckets/{bucket}/objects/a", content=b"x", auth=ROOT)
        assert r.status_code == 403
        q = {"action": "s3:PutObject", "resource": f"{bucket}/a", "source_ip": "10.1.2.3"}
        assert c.post("/v1/authorize", json=q, auth=ROOT).json()["allowed"] is True
        assert c.delete(f"/v1/buckets/{bucket}/policy", auth=ROOT).status_code == 204
        r = c.put(f"/v1/buckets/{bucket}/objects/a", content=b"x", auth=ROOT)
        assert r.status_code == 201


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"Statement": []}, "non-empty Statement"),
        (
            {"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "*", "Resource": "*"}]},
            "Effect",
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, "Principal"),
        (  # found by the API fuzzer: stored, then echoed where the document promises a string
            {
                "Version": {},
                "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}],
            },
            "Version",
        ),
        (  # ... and an object (or null)
            {
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": False,
                    }
                ]
            },
            "Condition",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": [], "Resource": "*"}]},
            "Action",
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"x": "y"}},
                    }
                ]
            },
            "Condition",
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"IpAddress": {"aws:SourceIp": "999.1.1.1/8"}},
                    }
                ]
            },
            "IpAddress",
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "*",
                        "Resource": "*",
                        "Colour": "red",
                    }
                ]
            },
            "unknown field",
        ),
    ],
)
def test_malformed_policies_are_refused_and_change_nothing(
    auth_server: ServerProcess, world: dict, doc: dict, fragment: str
) -> None:
    with auth_server.client() as c:
        before = c.get("/v1/policies", auth=ROOT).json()
        r = c.put(f"/v1/policies/bad-{RUN}", json=doc, auth=ROOT)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "MalformedPolicy"
        assert fragment in r.json()["message"]
        assert c.get("/v1/policies", auth=ROOT).json() == before
        r = c.get(f"/v1/policies/bad-{RUN}", auth=ROOT)
        assert r.status_code == 404 and r.json()["code"] == "NoSuchPolicy"


def test_bucket_policies_stay_inside_their_bucket(auth_server: ServerProcess, world: dict) -> None:
    with auth_server.client() as c:
        doc = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                              "Resource": f"{LOCKED}/*"}]}  # fmt: skip
        r = c.put(f"/v1/buckets/{OPEN}/policy", json=doc, auth=ROOT)
        assert r.status_code == 400 and "outside bucket" in r.json()["message"]
        s3 = s3_client(auth_server.url, ROOT)
        with pytest.raises(ClientError) as exc:
            s3.put_bucket_policy(Bucket=OPEN, Policy=json.dumps(doc))
        assert exc.value.response["Error"]["Code"] == "MalformedPolicy"
        with pytest.raises(ClientError) as exc:
            s3.get_bucket_policy(Bucket=OPEN)
        assert exc.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
        policy = json.loads(s3.get_bucket_policy(Bucket=SHARED)["Policy"])
        assert policy["Statement"][0]["Action"] == ["s3:GetObject"]
        # Only admins (or writers) manage policies; anonymous callers not at all.
        r = c.put(f"/v1/policies/x-{RUN}", json=doc)
        assert r.status_code == 401
