"""S3 Object Lock (WORM) as AWS documents it, through boto3 against the real server, on both
metadata backends: a bucket created with Object Lock (versioning on for good), default
retention, per-version retention (GOVERNANCE bypassable by those allowed, COMPLIANCE by
nobody and only extended), legal hold, the ``x-amz-object-lock-*`` headers of writes, and a
locked version surviving every API that could remove it: S3 DELETE ``?versionId=`` and
DeleteObjects, ``/v1`` DELETE, PUT and recursive bucket delete, lifecycle rules and garbage
collection."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER, blob_path, wait_gone

BODY = b"release 1.0 artifact\n"


def later(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)


def error_of(call: object, **kwargs: object) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)  # type: ignore[operator]
    err = exc.value.response
    return (
        err["Error"]["Code"],
        err["ResponseMetadata"]["HTTPStatusCode"],
        err["Error"].get("Message", ""),
    )


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> BaseClient:
    return s3_client(server.url)


@pytest.fixture
def bucket(s3: BaseClient) -> str:
    name = f"lock-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def body(s3: BaseClient, bucket: str, key: str, version: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()


def test_a_lock_bucket_has_versioning_for_good(s3: BaseClient, bucket: str) -> None:
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    code, status, _ = error_of(
        s3.put_bucket_versioning, Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    assert (code, status) == ("InvalidBucketState", 409)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_a_plain_bucket_refuses_lock_requests_and_stores_nothing(s3: BaseClient) -> None:
    name = f"nolock-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    code, status, _ = error_of(s3.get_object_lock_configuration, Bucket=name)
    assert (code, status) == ("ObjectLockConfigurationNotFoundError", 404)
    code, status, message = error_of(
        s3.put_object,
        Bucket=name,
        Key="k",
        Body=BODY,
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=later(1),
    )
    assert (code, status) == ("InvalidRequest", 400) and "Object Lock" in message
    assert s3.list_objects_v2(Bucket=name).get("Contents", []) == []
    s3.put_object(Bucket=name, Key="k", Body=BODY)
    code, status, _ = error_of(
        s3.put_object_legal_hold, Bucket=name, Key="k", LegalHold={"Status": "ON"}
    )
    assert (code, status) == ("InvalidRequest", 400)
    # Object Lock on an existing bucket needs versioning Enabled first.
    config = {"ObjectLockEnabled": "Enabled"}
    code, status, _ = error_of(
        s3.put_object_lock_configuration, Bucket=name, ObjectLockConfiguration=config
    )
    assert (code, status) == ("InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=config)
    s3.put_object_legal_hold(Bucket=name, Key="k", LegalHold={"Status": "ON"})
    code, status, _ = error_of(s3.delete_object, Bucket=name, Key="k", VersionId="null")
    assert (code, status) == ("AccessDenied", 403)


def test_default_retention_applies_to_new_versions(s3: BaseClient, bucket: str) -> None:
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 3}},
        },
    )
    rule = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 3}}
    version = s3.put_object(Bucket=bucket, Key="k", Body=BODY)["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert later(2.9) < until < later(3.1)
    retention = s3.get_object_retention(Bucket=bucket, Key="k", VersionId=version)["Retention"]
    assert retention["Mode"] == "GOVERNANCE" and retention["RetainUntilDate"] == until
    # A write naming its own retention keeps it instead of the default.
    s3.put_object(
        Bucket=bucket,
        Key="own",
        Body=BODY,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=later(10),
    )
    assert s3.head_object(Bucket=bucket, Key="own")["ObjectLockMode"] == "COMPLIANCE"
    code, status, _ = error_of(
        s3.put_object_lock_configuration,
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}},
        },
    )
    assert (code, status) == ("InvalidArgument", 400)


def test_compliance_retention_blocks_deletion_and_only_grows(s3: BaseClient, bucket: str) -> None:
    version = s3.put_object(
        Bucket=bucket,
        Key="app.tar",
        Body=BODY,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=later(5),
    )["VersionId"]
    code, status, message = error_of(
        s3.delete_object,
        Bucket=bucket,
        Key="app.tar",
        VersionId=version,
        BypassGovernanceRetention=True,
    )
    assert (code, status) == ("AccessDenied", 403)
    assert "object lock" in message and "COMPLIANCE" in message
    for shorter in ({"Mode": "COMPLIANCE", "RetainUntilDate": later(1)},
                    {"Mode": "GOVERNANCE", "RetainUntilDate": later(30)}):  # fmt: skip
        code, status, _ = error_of(
            s3.put_object_retention,
            Bucket=bucket,
            Key="app.tar",
            VersionId=version,
            Retention=shorter,
            BypassGovernanceRetention=True,
        )
        assert (code, status) == ("AccessDenied", 403)
    longer = later(30)  # once: a second boundary may pass before the comparison
    s3.put_object_retention(
        Bucket=bucket,
        Key="app.tar",
        VersionId=version,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer},
    )
    got = s3.get_object_retention(Bucket=bucket, Key="app.tar", VersionId=version)["Retention"]
    assert got["RetainUntilDate"] == longer
    # DeleteObjects refuses the version too; a plain delete adds a marker, bytes stay.
    answer = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "app.tar", "VersionId": version}]}
    )
    assert [e["Code"] for e in answer["Errors"]] == ["AccessDenied"]
    assert s3.delete_object(Bucket=bucket, Key="app.tar")["DeleteMarker"] is True
    assert body(s3, bucket, "app.tar", version) == BODY


def test_governance_gives_way_only_to_the_bypass(s3: BaseClient, bucket: str) -> None:
    version = s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=BODY,
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=later(5),
    )["VersionId"]
    assert error_of(s3.delete_object, Bucket=bucket, Key="k", VersionId=version)[:2] == (
        "AccessDenied",
        403,
    )
    code, status, _ = error_of(
        s3.put_object_retention,
        Bucket=bucket,
        Key="k",
        VersionId=version,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(1)},
    )
    assert (code, status) == ("AccessDenied", 403)
    # Extending needs no bypass; shortening with it works; then the delete with it.
    s3.put_object_retention(
        Bucket=bucket,
        Key="k",
        VersionId=version,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(6)},
    )
    s3.put_object_retention(
        Bucket=bucket,
        Key="k",
        VersionId=version,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(1)},
        BypassGovernanceRetention=True,
    )
    s3.delete_object(Bucket=bucket, Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert error_of(s3.head_object, Bucket=bucket, Key="k", VersionId=version)[1] == 404


def test_a_legal_hold_never_set_is_no_configuration_and_off_once_released(
    s3: BaseClient, bucket: str
) -> None:
    version = s3.put_object(Bucket=bucket, Key="plain", Body=BODY)["VersionId"]
    code, status, _ = error_of(s3.get_object_legal_hold, Bucket=bucket, Key="plain")
    assert (code, status) == ("NoSuchObjectLockConfiguration", 404)
    assert "ObjectLockLegalHoldStatus" not in s3.head_object(Bucket=bucket, Key="plain")
    s3.put_object_legal_hold(Bucket=bucket, Key="plain", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=bucket, Key="plain")["LegalHold"] == {"Status": "OFF"}
    assert s3.head_object(Bucket=bucket, Key="plain")["ObjectLockLegalHoldStatus"] == "OFF"
    s3.delete_object(Bucket=bucket, Key="plain", VersionId=version)  # OFF does not hold it


def test_legal_hold_blocks_deletion_until_released(s3: BaseClient, bucket: str) -> None:
    version = s3.put_object(Bucket=bucket, Key="k", Body=BODY, ObjectLockLegalHoldStatus="ON")[
        "VersionId"
    ]
    hold = s3.get_object_legal_hold(Bucket=bucket, Key="k", VersionId=version)["LegalHold"]
    assert hold == {"Status": "ON"}
    assert s3.head_object(Bucket=bucket, Key="k")["ObjectLockLegalHoldStatus"] == "ON"
    code, status, message = error_of(
        s3.delete_object,
        Bucket=bucket,
        Key="k",
        VersionId=version,
        BypassGovernanceRetention=True,
    )
    assert (code, status) == ("AccessDenied", 403) and "legal hold" in message
    s3.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=version, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=bucket, Key="k")["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=bucket, Key="k", VersionId=version)
    assert s3.list_object_versions(Bucket=bucket).get("Versions", []) == []


def test_multipart_and_copy_carry_the_lock_they_ask_for(s3: BaseClient, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", ObjectLockLegalHoldStatus="ON")[
        "UploadId"
    ]
    etag = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=BODY)[
        "ETag"
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert s3.get_object_legal_hold(Bucket=bucket, Key="big", VersionId=done["VersionId"])[
        "LegalHold"
    ] == {"Status": "ON"}
    # A copy does not inherit its source's lock; it gets what it asks for.
    copied = s3.copy_object(
        Bucket=bucket,
        Key="copy",
        CopySource={"Bucket": bucket, "Key": "big"},
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=later(2),
    )
    head = s3.head_object(Bucket=bucket, Key="copy", VersionId=copied["VersionId"])
    assert head["ObjectLockMode"] == "GOVERNANCE" and "ObjectLockLegalHoldStatus" not in head
    # Mode without a date, or a date in the past, is refused; nothing is written.
    for call, kwargs in (
        (s3.put_object, {"Body": BODY, "ObjectLockMode": "GOVERNANCE"}),
        (s3.copy_object, {"CopySource": f"{bucket}/big", "ObjectLockMode": "GOVERNANCE"}),
        (
            s3.copy_object,
            {
                "CopySource": f"{bucket}/big",
                "ObjectLockMode": "GOVERNANCE",
                "ObjectLockRetainUntilDate": later(-1),
            },
        ),
    ):
        code, status, _ = error_of(call, Bucket=bucket, Key="half", **kwargs)
        assert (code, status) == ("InvalidArgument", 400), (call, kwargs)
    assert error_of(s3.head_object, Bucket=bucket, Key="half")[1] == 404


def test_v1_cannot_remove_a_locked_version(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    version = s3.put_object(Bucket=bucket, Key="k", Body=BODY, ObjectLockLegalHoldStatus="ON")[
        "VersionId"
    ]
    with server.client() as c:
        meta = c.get(f"/v1/buckets/{bucket}/objects/k?metadata=true").json()
        assert meta["legal_hold"] is True and meta["version_id"] == version
        assert c.get(f"/v1/buckets/{bucket}").json()["object_lock"] == {"enabled": True}
        # An overwrite through /v1 adds a version; the locked one stays.
        assert c.put(f"/v1/buckets/{bucket}/objects/k", content=b"new").status_code == 200
        # A /v1 delete adds a delete marker; the locked version stays.
        assert c.delete(f"/v1/buckets/{bucket}/objects/k").status_code == 204
        r = c.delete(f"/v1/buckets/{bucket}?recursive=true")
        assert r.status_code == 403 and "object lock" in r.json()["message"], r.text
    assert body(s3, bucket, "k", version) == BODY


def test_lifecycle_keeps_locked_versions(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    rule = {
        "ID": "history",
        "Status": "Enabled",
        "Filter": {},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    locked = s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=BODY,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=later(30),
    )["VersionId"]
    free = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"three")
    with server.client() as c:
        when = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = c.post("/v1/admin/lifecycle/run", json={"now": when})
        assert r.status_code == 200, r.text
        expired = r.json()["expired"]
    assert f"{bucket}/k?versionId={free}" in expired
    assert not any(locked in e for e in expired)
    assert body(s3, bucket, "k", locked) == BODY


def test_bypass_needs_its_own_permission(auth_server: ServerProcess) -> None:
    """x-amz-bypass-governance-retention from a principal denied s3:BypassGovernanceRetention
    is AccessDenied; the actions that set locks are authorized as themselves."""
    s3 = s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD)
    name = f"lockauth-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    version = s3.put_object(
        Bucket=name,
        Key="k",
        Body=BODY,
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=later(2),
    )["VersionId"]
    deny: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:BypassGovernanceRetention", "s3:PutObjectLegalHold"],
                "Resource": [f"arn:aws:s3:::{name}/*"],
            }
        ],
    }
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(deny))
    code, status, _ = error_of(
        s3.delete_object, Bucket=name, Key="k", VersionId=version, BypassGovernanceRetention=True
    )
    assert (code, status) == ("AccessDenied", 403)
    for call, kwargs in (
        (s3.put_object_legal_hold, {"Key": "k", "LegalHold": {"Status": "ON"}}),
        (s3.put_object, {"Key": "k2", "Body": BODY, "ObjectLockLegalHoldStatus": "ON"}),
    ):
        assert error_of(call, Bucket=name, **kwargs)[:2] == ("AccessDenied", 403)
    assert body(s3, name, "k", version) == BODY
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["k"]
    s3.delete_bucket_policy(Bucket=name)
    s3.delete_object(Bucket=name, Key="k", VersionId=version, BypassGovernanceRetention=True)


# ---- garbage collection ---------------------------------------------------------------------
def test_gc_never_collects_a_locked_version(gc_server: ServerProcess) -> None:
    s3 = s3_client(gc_server.url)
    name = f"lockgc-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    locked = b"locked release " * 100
    version = s3.put_object(Bucket=name, Key="k", Body=locked, ObjectLockLegalHoldStatus="ON")[
        "VersionId"
    ]
    s3.put_object(Bucket=name, Key="k", Body=b"next")
    s3.delete_object(Bucket=name, Key="k")
    plain = f"plain-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=plain)
    gone = b"an unreferenced blob " * 50
    s3.put_object(Bucket=plain, Key="x", Body=gone)
    s3.put_object(Bucket=plain, Key="x", Body=b"replacement")
    assert wait_gone(blob_path(gc_server.data_dir, gone)), "the collector did not run"
    assert blob_path(gc_server.data_dir, locked).exists()
    assert body(s3, name, "k", version) == locked
