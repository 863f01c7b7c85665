"""Every operation of botocore's S3 model, sent through boto3 to the real server, at ``/`` and
at ``/s3``, on both metadata backends.

The server implements the operations in ``IMPLEMENTED``; every other one must be answered
``501 NotImplemented`` (the operation named in the message) and must leave everything as it
was. Before this walk existed, requests naming a sub-resource the server does not implement
fell through to the plain object or bucket operation: ``PutObjectTagging`` replaced the
object's bytes with the ``<Tagging>`` XML, ``DeleteObjectTagging`` deleted the object,
``DeleteBucketAnalyticsConfiguration`` deleted the bucket, ``GetObjectAttributes`` returned the
object's bytes.

Each case gets a fresh bucket holding ``k.txt`` and ``other.txt`` with known bytes and an upload
in progress on ``k.txt`` (one part), all made through ``/v1``. The operation is called with
generated minimal parameters: every required member of its input shape filled by type, the
bucket, key, upload, part number and copy source taken from the case, and per-operation
overrides in ``SCENARIOS`` where a value must be real to mean anything. The server-side state
(buckets, objects with their bytes and metadata, uploads with their parts, the bucket policy) is
read through ``/v1`` before and after: it must be exactly as before, or changed exactly as the
implemented operation documents. The machinery is in ``tests/fixtures/s3_walk.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import ANY

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3_walk import (
    KEY,
    KNOWN,
    MODEL,
    OTHER,
    OTHER_KEY,
    PART,
    State,
    Wire,
    World,
    call,
    describe_changes,
    generated_params,
    make_world,
    same_request_names,
    short,
    snapshot,
    v1_ok,
)
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

# The operations the server implements. Every other operation of the model must answer 501
# NotImplemented. When an operation becomes implemented, move its name here and give it a
# scenario in SCENARIOS (what it is called with, what it answers, what it changes).
IMPLEMENTED: frozenset[str] = frozenset(
    {
        "ListBuckets",
        "CreateBucket",
        "DeleteBucket",
        "HeadBucket",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "GetBucketLocation",
        "GetBucketAcl",
        "PutBucketAcl",
        "GetBucketVersioning",
        "PutBucketVersioning",
        "GetBucketPolicy",
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "GetBucketPolicyStatus",
        "GetPublicAccessBlock",
        "PutPublicAccessBlock",
        "DeletePublicAccessBlock",
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "GetBucketTagging",
        "PutBucketTagging",
        "DeleteBucketTagging",
        "GetBucketLifecycleConfiguration",
        "PutBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
        "GetBucketCors",
        "PutBucketCors",
        "DeleteBucketCors",
        "ListMultipartUploads",
        "DeleteObjects",
        "PutObject",
        "CopyObject",
        "GetObject",
        "HeadObject",
        "DeleteObject",
        "GetObjectAcl",
        "PutObjectAcl",
        "GetObjectTagging",
        "PutObjectTagging",
        "DeleteObjectTagging",
        "GetObjectAttributes",
        "PutObjectLockConfiguration",
        "GetObjectLockConfiguration",
        "PutObjectRetention",
        "GetObjectRetention",
        "PutObjectLegalHold",
        "GetObjectLegalHold",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "ListParts",
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
    }
)

# Operations botocore sends as exactly another operation's request, so that no server can tell
# them apart; they are walked like the rest (nothing may change) but expected to answer as the
# named operation does. The test checks that the two requests really are identical on the wire,
# so an entry stops passing the moment botocore makes the operation distinguishable.
# ListDirectoryBuckets: ``GET /`` with no query (its parameters are all optional), i.e.
# ListBuckets; AWS tells them apart only by the host (the S3 Express control endpoint).
# GetBucketLifecycle / PutBucketLifecycle: the deprecated names of GET / PUT ``?lifecycle``;
# AWS serves both forms with one operation (a rule may still carry the old rule-level Prefix
# instead of a Filter), and so does the store.
SAME_REQUEST_AS: dict[str, str] = {
    "ListDirectoryBuckets": "ListBuckets",
    "GetBucketLifecycle": "GetBucketLifecycleConfiguration",
    "PutBucketLifecycle": "PutBucketLifecycleConfiguration",
}

OPERATIONS: list[str] = sorted(MODEL.operation_names)
PREFIXES = {"root": "", "s3-prefix": "/s3"}
NEW = b"bytes a PutObject or UploadPart sends\n"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


# ---- what each implemented operation is called with, answers and changes -----------------
def _no_params(world: World) -> dict[str, Any]:
    return {}


def _no_setup(world: World) -> None:
    return None


def _as_before(world: World, state: State, response: dict[str, Any]) -> None:
    return None


Check = Callable[[World, State, dict[str, Any]], None]


@dataclass(frozen=True)
class Scenario:
    params: Callable[[World], dict[str, Any]] = _no_params  # on top of the generated ones
    setup: Callable[[World], None] = _no_setup  # before the "before" snapshot
    check: Check = _as_before  # the answer has the documented shape (given the before state)
    change: Check = _as_before  # applies the intended change to the expected state


def _keys(items: list[dict[str, Any]] | None) -> list[str]:
    return [item["Key"] for item in items or []]


def _grants_all_users_read(grants: list[dict[str, Any]]) -> bool:
    return any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in grants)


def _policy(world: World) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "walk",
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{world.bucket}/*"],
            }
        ],
    }


def _put_policy(world: World) -> None:
    v1_ok(world.http.put(f"/v1/buckets/{world.bucket}/policy", json=_policy(world)))


def _create_empty_bucket(world: World) -> None:
    v1_ok(world.http.put(f"/v1/buckets/{world.empty_bucket}"))


def _drop(section: str, name: Callable[[World], str]) -> Check:
    def apply(world: World, state: State, response: dict[str, Any]) -> None:
        del state[section][name(world)]

    return apply


def _rewritten(key: str, body: bytes) -> Check:
    """``key`` now holds ``body`` (its metadata changes with it)."""

    def apply(world: World, state: State, response: dict[str, Any]) -> None:
        state["objects"][key] = {"bytes": body, "meta": ANY}

    return apply


def _versioning_enabled(world: World, state: State, response: dict[str, Any]) -> None:
    state["buckets"][world.bucket]["versioning"] = "Enabled"


# Object Lock: the case's bucket gets versioning (and Object Lock) in the scenario's setup;
# its objects, written before, are null versions that can then be locked.
LOCK_CONFIG = {"ObjectLockEnabled": "Enabled"}
RETAIN_UNTIL = "2099-01-01T00:00:00Z"


def _enable_versioning(world: World) -> None:
    world.checker.put_bucket_versioning(
        Bucket=world.bucket, VersioningConfiguration={"Status": "Enabled"}
    )


def _enable_lock(world: World) -> None:
    _enable_versioning(world)
    world.checker.put_object_lock_configuration(
        Bucket=world.bucket, ObjectLockConfiguration=LOCK_CONFIG
    )


def _retained(world: World) -> None:
    _enable_lock(world)
    world.checker.put_object_retention(
        Bucket=world.bucket,
        Key=KEY,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": RETAIN_UNTIL},
    )


def _held(world: World) -> None:
    _enable_lock(world)
    world.checker.put_object_legal_hold(Bucket=world.bucket, Key=KEY, LegalHold={"Status": "ON"})


def _lock_enabled(world: World, state: State, response: dict[str, Any]) -> None:
    state["buckets"][world.bucket]["object_lock"] = {"enabled": True}


def _key_meta(name: str, value: Any) -> Check:
    def apply(world: World, state: State, response: dict[str, Any]) -> None:
        state["objects"][KEY]["meta"][name] = value

    return apply


def _made_public(world: World, state: State, response: dict[str, Any]) -> None:
    state["buckets"][world.bucket]["public_read"] = True


def _policy_set(world: World, state: State, response: dict[str, Any]) -> None:
    state["policy"] = _policy(world)


def _policy_removed(world: World, state: State, response: dict[str, Any]) -> None:
    state["policy"] = None


def _expect(condition: Callable[[World, State, dict[str, Any]], bool], what: str) -> Check:
    def check(world: World, state: State, response: dict[str, Any]) -> None:
        assert condition(world, state, response), f"{what}; answer: {short(response)}"

    return check


def _check_get_object(world: World, state: State, response: dict[str, Any]) -> None:
    assert response["Body"] == KNOWN  # read by call()
    assert response["ContentLength"] == len(KNOWN)
    assert response["ETag"] == world.etag(state, KEY)


def _check_list_parts(world: World, state: State, response: dict[str, Any]) -> None:
    assert response["UploadId"] == world.upload_id and response["Key"] == KEY
    assert [(p["PartNumber"], p["Size"]) for p in response["Parts"]] == [(1, len(PART))]


def _check_put_bucket_acl(world: World, state: State, response: dict[str, Any]) -> None:
    assert _grants_all_users_read(world.checker.get_bucket_acl(Bucket=world.bucket)["Grants"])


def _check_put_object_acl(world: World, state: State, response: dict[str, Any]) -> None:
    acl = world.checker.get_object_acl(Bucket=world.bucket, Key=KEY)
    assert _grants_all_users_read(acl["Grants"])


def _new_bucket(world: World, state: State, response: dict[str, Any]) -> None:
    state["buckets"][world.new_bucket] = {
        "name": world.new_bucket,
        "public_read": False,
        "labels": {},
        "tags": {},
        "web": False,
        "owner": ANY,
        "created_at": ANY,
    }


def _tagged(tags: dict[str, str]) -> Check:
    def apply(world: World, state: State, response: dict[str, Any]) -> None:
        state["objects"][KEY]["meta"]["tags"] = tags

    return apply


BUCKET_TAGS = {"cost-center": "ci", "app.kubernetes.io/name": "walk"}


def _put_bucket_tags(world: World) -> None:
    tag_set = [{"Key": k, "Value": v} for k, v in BUCKET_TAGS.items()]
    world.checker.put_bucket_tagging(Bucket=world.bucket, Tagging={"TagSet": tag_set})


def _bucket_tagged(tags: dict[str, str]) -> Check:
    def apply(world: World, state: State, response: dict[str, Any]) -> None:
        state["buckets"][world.bucket]["tags"] = tags

    return apply


# The rule-level Prefix: both the current and the deprecated model can send it (Filter rules
# are tested in test_lifecycle.py).
LIFECYCLE_RULE = {"ID": "walk", "Status": "Enabled", "Prefix": "tmp/", "Expiration": {"Days": 7}}


def _put_lifecycle(world: World) -> None:
    world.checker.put_bucket_lifecycle_configuration(
        Bucket=world.bucket, LifecycleConfiguration={"Rules": [LIFECYCLE_RULE]}
    )


def _lifecycle_rule_ids(world: World) -> list[str] | None:
    """The bucket's lifecycle rule IDs (read back through S3: /v1 does not show them), None
    when it has no configuration."""
    try:
        rules = world.checker.get_bucket_lifecycle_configuration(Bucket=world.bucket)["Rules"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration", exc.response
        return None
    return [r["ID"] for r in rules]


CORS_RULE = {"ID": "walk", "AllowedOrigins": ["https://ui.example.com"], "AllowedMethods": ["GET"]}


def _put_cors(world: World) -> None:
    world.checker.put_bucket_cors(Bucket=world.bucket, CORSConfiguration={"CORSRules": [CORS_RULE]})


def _cors_rules(world: World) -> list[dict[str, Any]] | None:
    """The bucket's CORS rules (read back through S3: /v1 does not show them), None when it
    has no configuration."""
    try:
        return world.checker.get_bucket_cors(Bucket=world.bucket)["CORSRules"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchCORSConfiguration", exc.response
        return None


BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": False,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": False,
}
OWNER_ENFORCED = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def _put_block(world: World) -> None:
    world.checker.put_public_access_block(Bucket=world.bucket, PublicAccessBlockConfiguration=BLOCK)


def _block(world: World) -> dict[str, Any] | None:
    """The bucket's public access block (read back through S3), None without one."""
    try:
        answer = world.checker.get_public_access_block(Bucket=world.bucket)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code == "NoSuchPublicAccessBlockConfiguration", exc.response
        return None
    return answer["PublicAccessBlockConfiguration"]


def _new_upload(world: World, state: State, response: dict[str, Any]) -> None:
    state["uploads"][response["UploadId"]] = {"key": KEY, "parts": []}


def _part_added(size: int) -> Check:
    def apply(world: World, state: State, response: dict[str, Any]) -> None:
        parts = state["uploads"][world.upload_id]["parts"]
        parts.append({"part_number": 2, "size": size, "etag": ANY})

    return apply


def _completed(world: World, state: State, response: dict[str, Any]) -> None:
    del state["uploads"][world.upload_id]
    state["objects"][KEY] = {"bytes": PART, "meta": ANY}


SCENARIOS: dict[str, Scenario] = {
    "ListBuckets": Scenario(
        check=_expect(
            lambda w, s, r: w.bucket in [b["Name"] for b in r["Buckets"]], "the bucket is listed"
        )
    ),
    "CreateBucket": Scenario(
        params=lambda w: {"Bucket": w.new_bucket},
        check=_expect(lambda w, s, r: r["Location"].endswith(w.new_bucket), "Location names it"),
        change=_new_bucket,
    ),
    "DeleteBucket": Scenario(
        setup=_create_empty_bucket,
        params=lambda w: {"Bucket": w.empty_bucket},
        change=_drop("buckets", lambda w: w.empty_bucket),
    ),
    "HeadBucket": Scenario(
        check=_expect(lambda w, s, r: r["BucketRegion"] == "us-east-1", "it names its region")
    ),
    "ListObjects": Scenario(
        check=_expect(
            lambda w, s, r: (
                _keys(r.get("Contents")) == [KEY, OTHER_KEY]
                and [o["Size"] for o in r["Contents"]] == [len(KNOWN), len(OTHER)]
            ),
            "both objects are listed with their sizes",
        )
    ),
    "ListObjectsV2": Scenario(
        check=_expect(
            lambda w, s, r: _keys(r.get("Contents")) == [KEY, OTHER_KEY] and r["KeyCount"] == 2,
            "both objects are listed",
        )
    ),
    "ListObjectVersions": Scenario(
        check=_expect(
            lambda w, s, r: (
                _keys(r.get("Versions")) == [KEY, OTHER_KEY]
                and {v["VersionId"] for v in r["Versions"]} == {"null"}
                and all(v["IsLatest"] for v in r["Versions"])
                and "DeleteMarkers" not in r
            ),
            "both objects are listed, version null, latest",
        )
    ),
    "GetBucketLocation": Scenario(
        check=_expect(
            lambda w, s, r: r.get("LocationConstraint") in (None, ""), "us-east-1 (empty)"
        )
    ),
    "GetBucketAcl": Scenario(
        check=_expect(
            lambda w, s, r: (
                "ID" in r["Owner"]
                and any(g["Permission"] == "FULL_CONTROL" for g in r["Grants"])
                and not _grants_all_users_read(r["Grants"])
            ),
            "the owner has FULL_CONTROL, the bucket is private",
        )
    ),
    "PutBucketAcl": Scenario(
        params=lambda w: {"ACL": "public-read"},
        check=_check_put_bucket_acl,
        change=_made_public,
    ),
    "GetBucketVersioning": Scenario(
        check=_expect(lambda w, s, r: "Status" not in r, "versioning was never enabled")
    ),
    "PutBucketVersioning": Scenario(
        params=lambda w: {"VersioningConfiguration": {"Status": "Enabled"}},
        check=_expect(
            lambda w, s, r: w.checker.get_bucket_versioning(Bucket=w.bucket)["Status"] == "Enabled",
            "versioning is enabled",
        ),
        change=_versioning_enabled,
    ),
    "PutObjectLockConfiguration": Scenario(
        setup=_enable_versioning,
        params=lambda w: {"ObjectLockConfiguration": LOCK_CONFIG},
        check=_expect(
            lambda w, s, r: (
                w.checker.get_object_lock_configuration(Bucket=w.bucket)["ObjectLockConfiguration"]
                == LOCK_CONFIG
            ),
            "Object Lock is on",
        ),
        change=_lock_enabled,
    ),
    "GetObjectLockConfiguration": Scenario(
        setup=_enable_lock,
        check=_expect(
            lambda w, s, r: r["ObjectLockConfiguration"] == LOCK_CONFIG, "Object Lock is on"
        ),
    ),
    "PutObjectRetention": Scenario(
        setup=_enable_lock,
        params=lambda w: {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": RETAIN_UNTIL}},
        change=_key_meta("retention", {"mode": "GOVERNANCE", "retain_until": ANY}),
    ),
    "GetObjectRetention": Scenario(
        setup=_retained,
        check=_expect(
            lambda w, s, r: r["Retention"]["Mode"] == "GOVERNANCE", "the version's retention"
        ),
    ),
    "PutObjectLegalHold": Scenario(
        setup=_enable_lock,
        params=lambda w: {"LegalHold": {"Status": "ON"}},
        change=_key_meta("legal_hold", True),
    ),
    "GetObjectLegalHold": Scenario(
        setup=_held,
        check=_expect(lambda w, s, r: r["LegalHold"] == {"Status": "ON"}, "the legal hold"),
    ),
    "GetBucketPolicy": Scenario(
        setup=_put_policy,
        check=_expect(lambda w, s, r: json.loads(r["Policy"]) == _policy(w), "the policy"),
    ),
    "PutBucketPolicy": Scenario(
        params=lambda w: {"Policy": json.dumps(_policy(w))},
        change=_policy_set,
    ),
    "DeleteBucketPolicy": Scenario(setup=_put_policy, change=_policy_removed),
    "GetBucketPolicyStatus": Scenario(  # the walk's policy lets anyone read: public
        setup=_put_policy,
        check=_expect(lambda w, s, r: r["PolicyStatus"]["IsPublic"] is True, "it is public"),
    ),
    "GetBucketTagging": Scenario(
        setup=_put_bucket_tags,
        check=_expect(
            lambda w, s, r: {t["Key"]: t["Value"] for t in r["TagSet"]} == BUCKET_TAGS,
            "the bucket's tags",
        ),
    ),
    "PutBucketTagging": Scenario(
        params=lambda w: {"Tagging": {"TagSet": [{"Key": "team", "Value": "build"}]}},
        check=_expect(
            lambda w, s, r: (
                w.checker.get_bucket_tagging(Bucket=w.bucket)["TagSet"]
                == [{"Key": "team", "Value": "build"}]
            ),
            "the tag is set",
        ),
        change=_bucket_tagged({"team": "build"}),
    ),
    "DeleteBucketTagging": Scenario(setup=_put_bucket_tags, change=_bucket_tagged({})),
    "GetBucketLifecycleConfiguration": Scenario(
        setup=_put_lifecycle,
        check=_expect(
            lambda w, s, r: [rule["ID"] for rule in r["Rules"]] == ["walk"], "the bucket's rule"
        ),
    ),
    "PutBucketLifecycleConfiguration": Scenario(
        params=lambda w: {"LifecycleConfiguration": {"Rules": [LIFECYCLE_RULE]}},
        check=_expect(lambda w, s, r: _lifecycle_rule_ids(w) == ["walk"], "the rule is set"),
    ),
    "DeleteBucketLifecycle": Scenario(
        setup=_put_lifecycle,
        check=_expect(lambda w, s, r: _lifecycle_rule_ids(w) is None, "the rules are gone"),
    ),
    "GetBucketCors": Scenario(
        setup=_put_cors,
        check=_expect(lambda w, s, r: r["CORSRules"] == [CORS_RULE], "the bucket's rule"),
    ),
    "PutBucketCors": Scenario(
        params=lambda w: {"CORSConfiguration": {"CORSRules": [CORS_RULE]}},
        check=_expect(lambda w, s, r: _cors_rules(w) == [CORS_RULE], "the rule is set"),
    ),
    "DeleteBucketCors": Scenario(
        setup=_put_cors,
        check=_expect(lambda w, s, r: _cors_rules(w) is None, "the rules are gone"),
    ),
    "GetPublicAccessBlock": Scenario(
        setup=_put_block,
        check=_expect(lambda w, s, r: r["PublicAccessBlockConfiguration"] == BLOCK, "the block"),
    ),
    "PutPublicAccessBlock": Scenario(
        params=lambda w: {"PublicAccessBlockConfiguration": BLOCK},
        check=_expect(lambda w, s, r: _block(w) == BLOCK, "the block is set"),
    ),
    "DeletePublicAccessBlock": Scenario(
        setup=_put_block,
        check=_expect(lambda w, s, r: _block(w) is None, "the block is gone"),
    ),
    "GetBucketOwnershipControls": Scenario(
        check=_expect(
            lambda w, s, r: r["OwnershipControls"] == OWNER_ENFORCED, "BucketOwnerEnforced"
        )
    ),
    "PutBucketOwnershipControls": Scenario(params=lambda w: {"OwnershipControls": OWNER_ENFORCED}),
    "ListMultipartUploads": Scenario(
        check=_expect(
            lambda w, s, r: (
                [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == [(KEY, w.upload_id)]
            ),
            "the upload in progress is listed",
        )
    ),
    "DeleteObjects": Scenario(
        params=lambda w: {"Delete": {"Objects": [{"Key": OTHER_KEY}]}},
        check=_expect(
            lambda w, s, r: _keys(r.get("Deleted")) == [OTHER_KEY] and not r.get("Errors"),
            "other.txt is reported deleted",
        ),
        change=_drop("objects", lambda w: OTHER_KEY),
    ),
    "PutObject": Scenario(params=lambda w: {"Body": NEW}, change=_rewritten(KEY, NEW)),
    "CopyObject": Scenario(  # CopySource is other.txt (generated from the case)
        check=_expect(
            lambda w, s, r: r["CopyObjectResult"]["ETag"] == w.etag(s, OTHER_KEY),
            "the copy has the source's ETag",
        ),
        change=_rewritten(KEY, OTHER),
    ),
    "GetObject": Scenario(check=_check_get_object),
    "HeadObject": Scenario(
        check=_expect(
            lambda w, s, r: r["ContentLength"] == len(KNOWN) and r["ETag"] == w.etag(s, KEY),
            "the length and ETag of k.txt",
        )
    ),
    "DeleteObject": Scenario(change=_drop("objects", lambda w: KEY)),
    "GetObjectAcl": Scenario(
        check=_expect(
            lambda w, s, r: (
                any(g["Permission"] == "FULL_CONTROL" for g in r["Grants"])
                and not _grants_all_users_read(r["Grants"])
            ),
            "the owner has FULL_CONTROL, the object is private",
        )
    ),
    "PutObjectAcl": Scenario(params=lambda w: {"ACL": "public-read"}, check=_check_put_object_acl),
    "GetObjectTagging": Scenario(
        check=_expect(lambda w, s, r: r["TagSet"] == [], "k.txt has no tags yet")
    ),
    "PutObjectTagging": Scenario(
        params=lambda w: {"Tagging": {"TagSet": [{"Key": "team", "Value": "build"}]}},
        check=_expect(
            lambda w, s, r: (
                w.checker.get_object_tagging(Bucket=w.bucket, Key=KEY)["TagSet"]
                == [{"Key": "team", "Value": "build"}]
            ),
            "the tag is set",
        ),
        change=_tagged({"team": "build"}),
    ),
    "DeleteObjectTagging": Scenario(),  # no tags to remove: nothing changes, bytes stay
    "GetObjectAttributes": Scenario(
        params=lambda w: {"ObjectAttributes": ["ETag", "ObjectSize", "StorageClass"]},
        check=_expect(
            lambda w, s, r: (
                r["ObjectSize"] == len(KNOWN)
                and f'"{r["ETag"]}"' == w.etag(s, KEY)
                and r["StorageClass"] == "STANDARD"
            ),
            "k.txt's size, ETag and storage class",
        ),
    ),
    "CreateMultipartUpload": Scenario(
        check=_expect(
            lambda w, s, r: r["Key"] == KEY and r["Bucket"] == w.bucket and r["UploadId"],
            "a new upload on k.txt",
        ),
        change=_new_upload,
    ),
    "UploadPart": Scenario(
        params=lambda w: {"PartNumber": 2, "Body": NEW},
        check=_expect(lambda w, s, r: r["ETag"], "the part's ETag"),
        change=_part_added(len(NEW)),
    ),
    "UploadPartCopy": Scenario(  # CopySource is other.txt (generated from the case)
        params=lambda w: {"PartNumber": 2},
        check=_expect(lambda w, s, r: r["CopyPartResult"]["ETag"], "the part's ETag"),
        change=_part_added(len(OTHER)),
    ),
    "ListParts": Scenario(check=_check_list_parts),
    "AbortMultipartUpload": Scenario(change=_drop("uploads", lambda w: w.upload_id)),
    "CompleteMultipartUpload": Scenario(
        params=lambda w: {
            "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": f'"{w.part_etag}"'}]}
        },
        check=_expect(
            lambda w, s, r: r["Key"] == KEY and r["Bucket"] == w.bucket and r["ETag"],
            "the completed object",
        ),
        change=_completed,
    ),
}


# ---- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clients(server: ServerProcess) -> dict[str, tuple[BaseClient, Wire]]:
    """The clients under test, one per prefix (no client-side validation, no host prefix),
    each with a record of what it sent and received."""
    out: dict[str, tuple[BaseClient, Wire]] = {}
    for name, prefix in PREFIXES.items():
        client = s3_client(
            server.url + prefix,
            parameter_validation=False,
            inject_host_prefix=False,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        wire = Wire()
        wire.attach(client)
        out[name] = (client, wire)
    return out


@pytest.fixture(scope="module")
def checker(server: ServerProcess) -> BaseClient:
    """A default boto3 client (validation, checksums) that reads back what a case left."""
    return s3_client(server.url)


@pytest.fixture
def world_for(
    server: ServerProcess, clients: dict[str, tuple[BaseClient, Wire]], checker: BaseClient
) -> Iterator[Callable[..., World]]:
    """``world_for(prefix, empty=False)``: a fresh case for the client at that prefix."""
    with server.client() as http:

        def make(prefix: str, empty: bool = False) -> World:
            s3, wire = clients[prefix]
            return make_world(http, s3, wire, checker, empty=empty)

        yield make


# ---- the walk -----------------------------------------------------------------------------
SUCCESS, UNKNOWN_OPERATION = "success", "operation"
INVALID_ARGUMENT = "invalid"


def walk(
    world: World,
    operation: str,
    *,
    expect: str,
    scenario: Scenario | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Call ``operation`` on the case and check its answer and everything it left behind."""
    scenario = scenario or SCENARIOS.get(operation, Scenario())
    scenario.setup(world)
    params = generated_params(operation, world)
    params.update(scenario.params(world))
    params.update(extra or {})
    before = snapshot(world)
    outcome = call(world, operation, params)
    sent = world.wire.sent[-1] if world.wire.sent else ("(nothing sent)", "")
    where = f"{operation} as {sent[0]} {sent[1]}"
    expected = copy.deepcopy(before)
    problems: list[str] = []
    if expect == SUCCESS:
        if outcome.response is None:
            problems.append(f"{where}: expected success, {outcome.describe()}")
        else:
            try:
                scenario.check(world, before, outcome.response)
            except (AssertionError, KeyError, TypeError) as exc:
                problems.append(f"{where}: the answer lacks its documented shape: {exc!r}")
            scenario.change(world, expected, outcome.response)
    elif expect == INVALID_ARGUMENT:
        head = MODEL.operation_model(operation).http["method"] == "HEAD"  # no body, no code
        if outcome.status != 400 or (not head and outcome.code != "InvalidArgument"):
            problems.append(f"{where}: expected 400 InvalidArgument, {outcome.describe()}")
    else:
        method = MODEL.operation_model(operation).http["method"]
        names = same_request_names(operation) if expect == UNKNOWN_OPERATION else set()
        if outcome.status != 501:
            problems.append(f"{where}: expected 501 NotImplemented, {outcome.describe()}")
        elif method == "HEAD":
            pass  # a HEAD answer has no body: its status is all there is
        elif outcome.code != "NotImplemented":
            problems.append(f"{where}: expected code NotImplemented, {outcome.describe()}")
        elif names and not any(n in (outcome.message or "") for n in names):
            problems.append(
                f"{where}: the message should name {' or '.join(sorted(names))}, "
                f"{outcome.describe()}"
            )
    after = snapshot(world)
    problems += [f"{where}: {change}" for change in describe_changes(expected, after)]
    # The same through S3, with a client nobody configured oddly.
    if KEY in expected["objects"] and KEY in after["objects"]:
        got = world.checker.get_object(Bucket=world.bucket, Key=KEY)["Body"].read()
        if got != expected["objects"][KEY]["bytes"]:
            problems.append(f"{where}: GetObject k.txt through S3 returns {short(got)}")
    if world.bucket in after["buckets"]:
        listed = _keys(world.checker.list_objects_v2(Bucket=world.bucket).get("Contents"))
        if listed != sorted(expected["objects"]):
            problems.append(f"{where}: ListObjectsV2 through S3 lists {listed}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("prefix", list(PREFIXES))
@pytest.mark.parametrize("operation", OPERATIONS, ids=OPERATIONS)
def test_operation(world_for: Callable[..., World], operation: str, prefix: str) -> None:
    world = world_for(prefix)
    alias = SAME_REQUEST_AS.get(operation)
    if alias is None:
        walk(world, operation, expect=SUCCESS if operation in IMPLEMENTED else UNKNOWN_OPERATION)
        return
    # Sent as ``alias`` is: expected to answer as it does (and to change nothing).
    walk(
        world,
        operation,
        expect=SUCCESS if alias in IMPLEMENTED else UNKNOWN_OPERATION,
        scenario=SCENARIOS.get(alias),
    )
    ours = world.wire.sent[-1]
    call(world, alias, generated_params(alias, world))
    assert ours == world.wire.sent[-1], (
        f"{operation} is no longer sent as {alias} is ({ours} vs {world.wire.sent[-1]}): "
        "take it out of SAME_REQUEST_AS"
    )


# Bucket operations the server does not implement, once more on an empty bucket: a fall-through
# to DeleteBucket is refused (BucketNotEmpty) while the bucket holds objects, and succeeds here.
BUCKET_LEVEL = sorted(
    name
    for name in OPERATIONS
    if name not in IMPLEMENTED
    and name not in SAME_REQUEST_AS
    and "Bucket" in MODEL.operation_model(name).input_shape.members
    and "Key" not in MODEL.operation_model(name).input_shape.members
)


@pytest.mark.parametrize("prefix", list(PREFIXES))
@pytest.mark.parametrize("operation", BUCKET_LEVEL, ids=BUCKET_LEVEL)
def test_operation_on_an_empty_bucket(
    world_for: Callable[..., World], operation: str, prefix: str
) -> None:
    walk(world_for(prefix, empty=True), operation, expect=UNKNOWN_OPERATION)


# Implemented operations with a versionId: only the null version exists here; a version id the
# store cannot have made is refused (400 InvalidArgument, as on AWS), never served or deleted
# as the current object.
VERSIONED = sorted(
    name
    for name in IMPLEMENTED
    if any(
        m.serialization.get("location") == "querystring"
        and m.serialization.get("name") == "versionId"
        for m in MODEL.operation_model(name).input_shape.members.values()
    )
)


@pytest.mark.parametrize(
    "version", ["null", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"], ids=["null", "other"]
)
@pytest.mark.parametrize("prefix", list(PREFIXES))
@pytest.mark.parametrize("operation", VERSIONED, ids=VERSIONED)
def test_version_id(
    world_for: Callable[..., World], operation: str, prefix: str, version: str
) -> None:
    expect = SUCCESS if version == "null" else INVALID_ARGUMENT
    walk(world_for(prefix), operation, expect=expect, extra={"VersionId": version})


def test_the_walk_covers_the_model() -> None:
    """The tripwire: the walk is parametrised over exactly the model's operations, every name
    this module classifies exists in the model, and every implemented one has a scenario."""
    walked = next(mark.args[1] for mark in test_operation.pytestmark if mark.args[0] == "operation")
    assert set(walked) == set(MODEL.operation_names) and len(walked) == len(set(walked))
    assert IMPLEMENTED <= set(walked), IMPLEMENTED - set(walked)
    assert set(SCENARIOS) == IMPLEMENTED, set(SCENARIOS) ^ IMPLEMENTED
    assert set(SAME_REQUEST_AS) <= set(walked) - IMPLEMENTED
    assert VERSIONED, "no implemented operation has a versionId any more"
