"""S3 versioning as AWS documents it, through boto3 against the real server, at ``/`` and
``/s3``, on both metadata backends: Put/GetBucketVersioning (Enabled, Suspended), a version id
on every write (PUT, copy, multipart completion), GET/HEAD/DELETE ``?versionId=``, delete
markers, ListObjectVersions with paging and common prefixes, CopyObject from a version, the
null version of a suspended bucket, the policy actions that guard versions, a bucket with
versions not being empty, garbage collection keeping every version's blob, and evidence about
an old version's digest staying verifiable."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.evidence import DATA, data
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER, blob_path, wait_gone

V1, V2, V3 = b"first build\n", b"second build\n", b"third build\n"
PART = b"p" * (5 * 1024 * 1024)
GITHUB = "https://github.com/login/oauth"
BUNDLE_V3 = "application/vnd.dev.sigstore.bundle.v0.3+json"


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    """The server with a Sigstore trusted root, so evidence about old versions verifies."""
    base = tmp_path_factory.mktemp(f"ver-{request.param}")
    config = base / "config.yaml"
    root = DATA / "trusted_root.staging.json"
    config.write_text(json.dumps({"extensions": {"supplychain": {"trustedRoot": str(root)}}}))
    proc = ServerProcess(
        base / "data", config=config, metadata_uri=metadata_uri_for(request.param, base)
    ).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module", params=["", "/s3"], ids=["root", "s3-prefix"])
def s3(server: ServerProcess, request: pytest.FixtureRequest) -> BaseClient:
    return s3_client(server.url + request.param)


@pytest.fixture
def bucket(s3: BaseClient) -> str:
    name = f"ver-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def error_of(call: object, **kwargs: object) -> tuple[str, int, dict[str, str]]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)  # type: ignore[operator]
    err = exc.value.response
    return (
        err["Error"]["Code"],
        err["ResponseMetadata"]["HTTPStatusCode"],
        err["ResponseMetadata"]["HTTPHeaders"],
    )


def body(s3: BaseClient, bucket: str, key: str, version: str | None = None) -> bytes:
    extra = {"VersionId": version} if version is not None else {}
    return s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()


def versions(s3: BaseClient, bucket: str, **kw: object) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is a delete marker) in the order S3 lists them: by key,
    newest first (boto3 parses versions and markers apart; the order is their time)."""
    answer = s3.list_object_versions(Bucket=bucket, **kw)
    rows = [(v, False) for v in answer.get("Versions", [])] + [
        (m, True) for m in answer.get("DeleteMarkers", [])
    ]
    rows.sort(key=lambda r: (r[0]["Key"], -r[0]["LastModified"].timestamp(), not r[0]["IsLatest"]))
    return [(r["Key"], r["VersionId"], r["IsLatest"], marker) for r, marker in rows]


def test_a_new_bucket_is_unversioned_and_answers_as_before(s3: BaseClient) -> None:
    name = f"plain-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)
    put = s3.put_object(Bucket=name, Key="k", Body=V1)
    assert "VersionId" not in put
    assert (
        "x-amz-version-id"
        not in s3.head_object(Bucket=name, Key="k")["ResponseMetadata"]["HTTPHeaders"]
    )
    s3.put_object(Bucket=name, Key="k", Body=V2)
    assert versions(s3, name) == [("k", "null", True, False)]
    assert body(s3, name, "k", "null") == V2
    s3.delete_object(Bucket=name, Key="k")
    assert versions(s3, name) == []
    s3.delete_bucket(Bucket=name)


def test_every_write_is_a_version_and_old_ones_stay_readable(s3: BaseClient, bucket: str) -> None:
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    first = s3.put_object(Bucket=bucket, Key="app.bin", Body=V1)["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="app.bin", Body=V2)["VersionId"]
    assert first != second and "null" not in (first, second)
    assert body(s3, bucket, "app.bin") == V2
    assert body(s3, bucket, "app.bin", first) == V1
    got = s3.get_object(Bucket=bucket, Key="app.bin", VersionId=first)
    assert got["VersionId"] == first and got["Body"].read() == V1
    head = s3.head_object(Bucket=bucket, Key="app.bin", VersionId=first)
    assert head["VersionId"] == first and head["ETag"] == f'"{hashlib.md5(V1).hexdigest()}"'
    assert s3.head_object(Bucket=bucket, Key="app.bin")["VersionId"] == second
    assert versions(s3, bucket) == [
        ("app.bin", second, True, False),
        ("app.bin", first, False, False),
    ]
    # The current listing shows the key once.
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("app.bin", len(V2))]
    # A version this store could have made but never did; one it never could.
    assert error_of(s3.get_object, Bucket=bucket, Key="app.bin", VersionId="A" * 32)[:2] == (
        "NoSuchVersion",
        404,
    )
    assert error_of(s3.get_object, Bucket=bucket, Key="app.bin", VersionId="not+an/id")[:2] == (
        "InvalidArgument",
        400,
    )


def test_delete_adds_a_marker_and_deleting_the_marker_restores(s3: BaseClient, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="k.txt", Body=V1)["VersionId"]
    gone = s3.delete_object(Bucket=bucket, Key="k.txt")
    assert gone["DeleteMarker"] is True
    marker = gone["VersionId"]
    code, status, headers = error_of(s3.get_object, Bucket=bucket, Key="k.txt")
    assert (code, status) == ("NoSuchKey", 404)
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert versions(s3, bucket) == [("k.txt", marker, True, True), ("k.txt", first, False, False)]
    # The marker itself cannot be read (405), the version under it can.
    code, status, headers = error_of(s3.get_object, Bucket=bucket, Key="k.txt", VersionId=marker)
    assert (code, status) == ("MethodNotAllowed", 405)
    assert headers["x-amz-delete-marker"] == "true"
    assert body(s3, bucket, "k.txt", first) == V1
    # Removing the marker brings the object back.
    removed = s3.delete_object(Bucket=bucket, Key="k.txt", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert body(s3, bucket, "k.txt") == V1
    assert versions(s3, bucket) == [("k.txt", first, True, False)]


def test_delete_with_a_version_id_removes_that_version_for_good(
    s3: BaseClient, bucket: str
) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=V1)["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=V2)["VersionId"]
    third = s3.put_object(Bucket=bucket, Key="k", Body=V3)["VersionId"]
    answer = s3.delete_object(Bucket=bucket, Key="k", VersionId=second)
    assert answer["VersionId"] == second and "DeleteMarker" not in answer
    assert error_of(s3.get_object, Bucket=bucket, Key="k", VersionId=second)[:2] == (
        "NoSuchVersion",
        404,
    )
    assert body(s3, bucket, "k") == V3
    # Deleting the current version makes the one before it current.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=third)
    assert body(s3, bucket, "k") == V1
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == first
    assert versions(s3, bucket) == [("k", first, True, False)]


def test_tags_and_acl_of_an_old_version_change_in_place(s3: BaseClient, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=V1)["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=V2, Tagging="stage=rc")
    s3.put_object_tagging(
        Bucket=bucket, Key="k", VersionId=first, Tagging={"TagSet": [{"Key": "a", "Value": "1"}]}
    )
    old = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=first)
    assert old["TagSet"] == [{"Key": "a", "Value": "1"}] and old["VersionId"] == first
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [
        {"Key": "stage", "Value": "rc"}
    ]
    s3.put_object_acl(Bucket=bucket, Key="k", VersionId=first, ACL="public-read")
    grants = s3.get_object_acl(Bucket=bucket, Key="k", VersionId=first)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    assert body(s3, bucket, "k", first) == V1 and body(s3, bucket, "k") == V2
    assert len(versions(s3, bucket)) == 2


def test_copy_from_an_old_version_restores_it(s3: BaseClient, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=V1, ContentType="text/x-one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=V2)
    copied = s3.copy_object(
        Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k", "VersionId": first}
    )
    assert copied["CopySourceVersionId"] == first
    assert copied["VersionId"] not in (first, None)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == V1 and got["ContentType"] == "text/x-one"
    assert next(v[1] for v in versions(s3, bucket)) == copied["VersionId"]
    assert len(versions(s3, bucket)) == 3
    # A delete marker as a copy source is refused; nothing is written.
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    code, status, _ = error_of(
        s3.copy_object,
        Bucket=bucket,
        Key="other",
        CopySource={"Bucket": bucket, "Key": "k", "VersionId": marker},
    )
    assert status in (400, 405) and code in ("InvalidRequest", "MethodNotAllowed")
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_multipart_completion_makes_a_version(s3: BaseClient, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="big", Body=V1)["VersionId"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=PART)[
        "ETag"
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert done["VersionId"] not in (None, first)
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == len(PART)
    assert body(s3, bucket, "big", first) == V1


def test_suspended_versioning_writes_the_null_version(s3: BaseClient, bucket: str) -> None:
    kept = s3.put_object(Bucket=bucket, Key="k", Body=V1)["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    s3.put_object(Bucket=bucket, Key="k", Body=V2)
    put = s3.put_object(Bucket=bucket, Key="k", Body=V3)  # replaces the null version
    assert put["VersionId"] == "null"
    # A plain GET/HEAD of the null version names it, as AWS does once versioning was on.
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    assert s3.get_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    assert versions(s3, bucket) == [("k", "null", True, False), ("k", kept, False, False)]
    assert body(s3, bucket, "k", "null") == V3
    # A delete puts a null delete marker in place of the null version.
    gone = s3.delete_object(Bucket=bucket, Key="k")
    assert gone["DeleteMarker"] is True and gone["VersionId"] == "null"
    assert versions(s3, bucket) == [("k", "null", True, True), ("k", kept, False, False)]
    assert body(s3, bucket, "k", kept) == V1
    # Versioning cannot be switched off, only suspended; other states are malformed.
    code, status, _ = error_of(
        s3.put_bucket_versioning, Bucket=bucket, VersioningConfiguration={"Status": "Off"}
    )
    assert (code, status) == ("MalformedXML", 400)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_objects_written_before_versioning_are_the_null_version(s3: BaseClient) -> None:
    name = f"later-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=V1)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    assert s3.head_object(Bucket=name, Key="k")["VersionId"] == "null"
    new = s3.put_object(Bucket=name, Key="k", Body=V2)["VersionId"]
    assert versions(s3, name) == [("k", new, True, False), ("k", "null", False, False)]
    assert body(s3, name, "k", "null") == V1


def test_list_versions_pages_and_rolls_up_common_prefixes(s3: BaseClient, bucket: str) -> None:
    made: list[tuple[str, str]] = []
    for key in ("a", "b", "dir/x", "dir/y"):
        for content in (V1, V2):
            made.append((key, s3.put_object(Bucket=bucket, Key=key, Body=content)["VersionId"]))
    marker = s3.delete_object(Bucket=bucket, Key="b")["VersionId"]
    expected = [
        ("a", made[1][1]),
        ("a", made[0][1]),
        ("b", marker),
        ("b", made[3][1]),
        ("b", made[2][1]),
        ("dir/x", made[5][1]),
        ("dir/x", made[4][1]),
        ("dir/y", made[7][1]),
        ("dir/y", made[6][1]),
    ]
    seen: list[tuple[str, str]] = []
    pages = 0
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    ):
        pages += 1
        rows = page.get("Versions", []) + page.get("DeleteMarkers", [])
        rows.sort(key=lambda r: (r["Key"], -r["LastModified"].timestamp()))
        seen += [(r["Key"], r["VersionId"]) for r in rows]
        assert len(rows) <= 2
    assert seen == expected and pages == 5
    rolled = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["dir/"]
    assert {v["Key"] for v in rolled["Versions"]} == {"a", "b"}
    under = s3.list_object_versions(Bucket=bucket, Prefix="dir/", KeyMarker="dir/x")
    assert [v["VersionId"] for v in under["Versions"]] == [made[7][1], made[6][1]]
    # A version marker without a key marker is refused, as on AWS.
    code, status, _ = error_of(s3.list_object_versions, Bucket=bucket, VersionIdMarker=marker)
    assert (code, status) == ("InvalidArgument", 400)


def test_delete_objects_with_version_ids(s3: BaseClient, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="a", Body=V1)["VersionId"]
    s3.put_object(Bucket=bucket, Key="a", Body=V2)
    s3.put_object(Bucket=bucket, Key="b", Body=V1)
    answer = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "a", "VersionId": first}, {"Key": "b"}]},
    )
    deleted = {d["Key"]: d for d in answer["Deleted"]}
    assert deleted["a"]["VersionId"] == first and "DeleteMarker" not in deleted["a"]
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"]
    assert body(s3, bucket, "a") == V2
    assert [v[1] for v in versions(s3, bucket) if v[0] == "a"] != [first]
    assert len([v for v in versions(s3, bucket) if v[0] == "a"]) == 1


def test_a_bucket_with_versions_is_not_empty(s3: BaseClient, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=V1)
    s3.delete_object(Bucket=bucket, Key="k")  # only a marker and a noncurrent version remain
    assert error_of(s3.delete_bucket, Bucket=bucket)[:2] == ("BucketNotEmpty", 409)
    for _, version, _, _ in versions(s3, bucket):
        s3.delete_object(Bucket=bucket, Key="k", VersionId=version)
    s3.delete_bucket(Bucket=bucket)
    assert error_of(s3.head_bucket, Bucket=bucket)[1] == 404


def test_v1_shows_the_version_and_its_delete(server: ServerProcess, s3: BaseClient) -> None:
    name = f"v1ver-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    with server.client() as c:
        r = c.put(f"/v1/buckets/{name}/objects/k", content=V1)
        assert r.status_code == 201, r.text
        first = r.json()["version_id"]
        assert first and s3.head_object(Bucket=name, Key="k")["VersionId"] == first
        assert c.get(f"/v1/buckets/{name}/objects/k?metadata=true").json()["version_id"] == first
        # A /v1 delete on a versioned bucket adds a delete marker: the bytes stay a version.
        assert c.delete(f"/v1/buckets/{name}/objects/k").status_code == 204
        assert c.get(f"/v1/buckets/{name}/objects/k").status_code == 404
        assert c.delete(f"/v1/buckets/{name}/objects/k").status_code == 404
    assert body(s3, name, "k", first) == V1
    assert [v[3] for v in versions(s3, name)] == [True, False]


def test_evidence_about_an_old_version_stays_verifiable(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    """Evidence binds to digests: after an overwrite the old version is still signed, its bytes
    still served by version id, and the new content is unsigned until signed."""
    signed = data("bundle_v3.txt")
    old = s3.put_object(Bucket=bucket, Key="app.txt", Body=signed)["VersionId"]
    digest = "sha256:" + hashlib.sha256(signed).hexdigest()
    rule = {"sigstore": {"issuer": GITHUB, "identity": "william@yossarian.net"}}
    with server.client() as c:
        r = c.post(
            f"/v1/buckets/{bucket}/objects/app.txt/signatures",
            content=data("bundle_v3.txt.sigstore"),
            headers={"Content-Type": BUNDLE_V3},
        )
        assert r.status_code == 201, r.text
        s3.put_object(Bucket=bucket, Key="app.txt", Body=b"a later build\n")

        def verified(subject: dict[str, str]) -> bool:
            r = c.post("/v1/verify", json={"subject": subject, "policy": {"signatures": [rule]}})
            assert r.status_code == 200, r.text
            return bool(r.json()["verified"])

        assert verified({"digest": digest})
        assert not verified({"bucket": bucket, "key": "app.txt"})
    old_bytes = body(s3, bucket, "app.txt", old)
    assert "sha256:" + hashlib.sha256(old_bytes).hexdigest() == digest


def test_a_public_read_acl_opens_that_version_only(auth_server: ServerProcess) -> None:
    s3 = s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD)
    name = f"verpub-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=name, Key="k", Body=V1)["VersionId"]
    second = s3.put_object(Bucket=name, Key="k", Body=V2)["VersionId"]
    with httpx.Client(base_url=auth_server.url, timeout=30) as anonymous:
        assert anonymous.get(f"/{name}/k", params={"versionId": first}).status_code == 403
        s3.put_object_acl(Bucket=name, Key="k", VersionId=first, ACL="public-read")
        public = anonymous.get(f"/{name}/k", params={"versionId": first})
        assert public.status_code == 200 and public.content == V1
        assert public.headers["x-amz-version-id"] == first
        for params in ({}, {"versionId": second}):  # the current version stays private
            refused = anonymous.get(f"/{name}/k", params=params)
            assert refused.status_code == 403 and V2 not in refused.content
        assert "<Code>AccessDenied</Code>" in refused.text
        # The other way round: the current version public, the old one private.
        s3.put_object_acl(Bucket=name, Key="k", VersionId=first, ACL="private")
        s3.put_object_acl(Bucket=name, Key="k", ACL="public-read")
        assert anonymous.get(f"/{name}/k").content == V2
        assert anonymous.get(f"/{name}/k", params={"versionId": first}).status_code == 403


def test_versions_are_guarded_by_their_own_actions(auth_server: ServerProcess) -> None:
    """s3:GetObjectVersion, s3:DeleteObjectVersion, s3:ListBucketVersions and
    s3:PutBucketVersioning decide, not s3:GetObject / s3:DeleteObject / s3:ListBucket."""
    s3 = s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD)
    name = f"verauth-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=name, Key="k", Body=V1)["VersionId"]
    s3.put_object(Bucket=name, Key="k", Body=V2)
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": [
                    "s3:GetObjectVersion",
                    "s3:DeleteObjectVersion",
                    "s3:ListBucketVersions",
                    "s3:PutBucketVersioning",
                ],
                "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
            }
        ],
    }
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(deny))
    for call, kwargs in (
        (s3.get_object, {"Key": "k", "VersionId": first}),
        (s3.delete_object, {"Key": "k", "VersionId": first}),
        (s3.list_object_versions, {}),
        (s3.put_bucket_versioning, {"VersioningConfiguration": {"Status": "Suspended"}}),
    ):
        assert error_of(call, Bucket=name, **kwargs)[:2] == ("AccessDenied", 403)
    # The plain actions still work; the version survived.
    assert body(s3, name, "k") == V2
    s3.delete_object(Bucket=name, Key="k")  # a marker
    s3.delete_bucket_policy(Bucket=name)
    assert body(s3, name, "k", first) == V1
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    with auth_server.client() as c:
        r = c.get(
            "/v1/audit",
            params={"action": "s3:DeleteObjectVersion"},
            auth=(ROOT_USER, ROOT_PASSWORD),
        )
        assert r.status_code == 200, r.text
        assert any(
            rec["resource"] == f"{name}/k" and rec["decision"] == "deny"
            for rec in r.json()["records"]
        )


def test_lifecycle_expires_noncurrent_versions_and_marks_expired_objects(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    """NoncurrentVersionExpiration removes versions NoncurrentDays after they became
    noncurrent; Expiration on a versioned bucket adds a delete marker (the bytes stay)."""
    rules = [
        {
            "ID": "tmp-history",
            "Status": "Enabled",
            "Filter": {"Prefix": "tmp/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
        {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": "old/"}, "Expiration": {"Days": 5}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    first = s3.put_object(Bucket=bucket, Key="tmp/a", Body=V1)["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="tmp/a", Body=V2)["VersionId"]
    kept = s3.put_object(Bucket=bucket, Key="old/x", Body=V3)["VersionId"]

    def run(days: float) -> dict[str, object]:
        with server.client() as c:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + days * 86400))
            r = c.post("/v1/admin/lifecycle/run", json={"now": when})
            assert r.status_code == 200, r.text
            return dict(r.json())

    run(0)
    assert [v[1] for v in versions(s3, bucket, Prefix="tmp/")] == [second, first]
    report = run(2.1)
    assert f"{bucket}/tmp/a?versionId={first}" in report["expired"]  # type: ignore[operator]
    assert [v[1] for v in versions(s3, bucket, Prefix="tmp/")] == [second]
    assert body(s3, bucket, "tmp/a") == V2
    assert body(s3, bucket, "old/x") == V3  # not due yet
    report = run(7)
    assert f"{bucket}/old/x" in report["expired"]  # type: ignore[operator]
    code, status, headers = error_of(s3.get_object, Bucket=bucket, Key="old/x")
    assert (code, status, headers["x-amz-delete-marker"]) == ("NoSuchKey", 404, "true")
    assert body(s3, bucket, "old/x", kept) == V3


def test_lifecycle_keeps_the_newest_noncurrent_versions_and_removes_lone_markers(
    server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    """NewerNoncurrentVersions keeps that many of a key's newest noncurrent versions whatever
    their age; ExpiredObjectDeleteMarker removes a delete marker once it is its key's only
    version, and only then."""
    rules = [
        {
            "ID": "keep-two",
            "Status": "Enabled",
            "Filter": {"Prefix": "rel/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 2},
        },
        {
            "ID": "markers",
            "Status": "Enabled",
            "Filter": {"Prefix": "gone/"},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert got["keep-two"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": 1,
        "NewerNoncurrentVersions": 2,
    }
    assert got["markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    ids = [
        s3.put_object(Bucket=bucket, Key="rel/app", Body=b"%d" % n)["VersionId"] for n in range(5)
    ]
    s3.put_object(Bucket=bucket, Key="gone/x", Body=V1)
    x_marker = s3.delete_object(Bucket=bucket, Key="gone/x")["VersionId"]
    s3.put_object(Bucket=bucket, Key="gone/y", Body=V2)
    y_marker = s3.delete_object(Bucket=bucket, Key="gone/y")["VersionId"]

    def run(days: float) -> list[str]:
        with server.client() as c:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + days * 86400))
            r = c.post("/v1/admin/lifecycle/run", json={"now": when})
            assert r.status_code == 200, r.text
            return list(r.json()["expired"])

    assert run(0) == []  # nothing due; the markers still hide versions
    y_versions = versions(s3, bucket, Prefix="gone/y")
    assert (y_versions[0][1], y_versions[0][3], len(y_versions)) == (y_marker, True, 2)
    expired = run(2.1)
    # The two oldest noncurrent versions go; the newest two noncurrent stay with the current.
    assert [v[1] for v in versions(s3, bucket, Prefix="rel/")] == ids[::-1][:3]
    assert f"{bucket}/rel/app?versionId={ids[0]}" in expired
    assert f"{bucket}/rel/app?versionId={ids[1]}" in expired
    # gone/x and gone/y: the old versions expire, then each marker is alone and goes too.
    assert f"{bucket}/gone/x?versionId={x_marker}" in expired
    assert f"{bucket}/gone/y?versionId={y_marker}" in expired
    assert versions(s3, bucket, Prefix="gone/") == []
    assert run(4) == []  # the newest noncurrent versions are kept however old they get
    assert len(versions(s3, bucket, Prefix="rel/")) == 3


# ---- garbage collection ---------------------------------------------------------------------
def test_gc_keeps_every_version_blob_until_the_version_goes(gc_server: ServerProcess) -> None:
    s3 = s3_client(gc_server.url)
    name = f"vergc-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    old, new = b"old version " * 100, b"new version " * 100
    first = s3.put_object(Bucket=name, Key="k", Body=old)["VersionId"]
    s3.put_object(Bucket=name, Key="k", Body=new)
    s3.delete_object(Bucket=name, Key="k")  # a marker over both
    # A blob nobody references, to see the collector run.
    plain = f"plain-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=plain)
    gone = b"replaced in an unversioned bucket " * 50
    s3.put_object(Bucket=plain, Key="x", Body=gone)
    s3.put_object(Bucket=plain, Key="x", Body=b"replacement")
    assert wait_gone(blob_path(gc_server.data_dir, gone)), "the collector did not run"
    assert (
        blob_path(gc_server.data_dir, old).exists() and blob_path(gc_server.data_dir, new).exists()
    )
    assert body(s3, name, "k", first) == old
    s3.delete_object(Bucket=name, Key="k", VersionId=first)
    assert wait_gone(blob_path(gc_server.data_dir, old)), "a deleted version's blob stayed"
    assert blob_path(gc_server.data_dir, new).exists()
