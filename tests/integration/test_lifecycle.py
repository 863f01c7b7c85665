"""Abandoned uploads, object expiry and S3 bucket lifecycle, against the running server on both
metadata backends, with real clients (boto3 for S3, httpx / the SDK for ``/v1``)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import SERVER_BIN, ServerProcess
from tests.integration.test_cli import Z
from zot_artifact_store.metadata import create_metadata_store
from zot_artifact_store.timefmt import parse_time
from zot_artifacts import Client, NotFoundError


def blob_path(data_dir: Path, content: bytes) -> Path:
    hexd = hashlib.sha256(content).hexdigest()
    return data_dir / "blobs" / "sha256" / hexd[:2] / hexd


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def collecting_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    """A server that collects every second and gives up on an upload after 3 seconds."""
    data_dir = tmp_path_factory.mktemp(f"gc-{request.param}") / "data"
    env = {
        "ZAS_STORAGE_GCINTERVAL": "1s",
        "ZAS_STORAGE_GCDELAY": "0s",
        "ZAS_STORAGE_UPLOADRETENTION": "3s",
    }
    proc = ServerProcess(data_dir, metadata_uri=metadata_uri_for(request.param, data_dir), env=env)
    proc.start()
    yield proc
    proc.stop()


# ---- abandoned uploads ----------------------------------------------------------------------


def test_abandoned_uploads_and_their_parts_are_collected(collecting_server: ServerProcess) -> None:
    srv = collecting_server
    bucket = f"abandon-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(srv.url)
    s3.create_bucket(Bucket=bucket)
    s3_part = b"an S3 part nobody completes " * 50
    v1_part = b"a /v1 part nobody completes " * 50
    s3_upload = s3.create_multipart_upload(Bucket=bucket, Key="s3/big.bin")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="s3/big.bin", UploadId=s3_upload, PartNumber=1, Body=s3_part)
    with srv.client() as c:
        r = c.post(f"/v1/buckets/{bucket}/uploads", json={"key": "v1/big.bin"})
        assert r.status_code == 201, r.text
        v1_upload = r.json()["upload_id"]
        r = c.put(f"/v1/buckets/{bucket}/uploads/{v1_upload}/parts/1", content=v1_part)
        assert r.status_code == 200, r.text
        # An OCI chunked upload left open.
        r = c.post("/v2/abandoned/app/blobs/uploads/")
        assert r.status_code == 202, r.text
        oci_location = r.headers["location"]
        assert c.patch(oci_location, content=b"half a layer").status_code == 202

        # Fresh uploads survive collections younger than storage.uploadRetention.
        time.sleep(1.5)
        listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert {u["UploadId"] for u in listed} == {s3_upload, v1_upload}
        assert blob_path(srv.data_dir, s3_part).exists()

        def gone() -> bool:
            return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")

        assert wait_for(gone), "abandoned uploads were never collected"
        # Their part blobs go too, and the upload ids answer NoSuchUpload in both dialects.
        assert wait_for(lambda: not blob_path(srv.data_dir, s3_part).exists())
        assert wait_for(lambda: not blob_path(srv.data_dir, v1_part).exists())
        with pytest.raises(ClientError) as exc:
            s3.list_parts(Bucket=bucket, Key="s3/big.bin", UploadId=s3_upload)
        assert exc.value.response["Error"]["Code"] == "NoSuchUpload"
        r = c.get(f"/v1/buckets/{bucket}/uploads/{v1_upload}")
        assert r.status_code == 404 and r.json()["code"] == "NoSuchUpload"
        assert wait_for(lambda: c.get(oci_location).status_code == 404)
        assert c.get(oci_location).json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"

        # Each abort is audited, naming the upload and why.
        r = c.get("/v1/audit", params={"action": "s3:AbortMultipartUpload"})
        assert r.status_code == 200, r.text
        reasons = {rec["reason"] for rec in r.json()["records"] if bucket in rec["resource"]}
        assert any(s3_upload in why and "storage.uploadRetention" in why for why in reasons)
        assert any(v1_upload in why for why in reasons)


# ---- object expiry --------------------------------------------------------------------------


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def with_header(client: BaseClient, operation: str, name: str, value: str) -> None:
    """Send ``name: value`` (signed) on every ``operation`` of a boto3 client."""

    def add(request: Any, **_: Any) -> None:
        request.headers[name] = value

    client.meta.events.register(f"before-sign.s3.{operation}", add)


def run_lifecycle(c: httpx.Client, now: float | None = None) -> dict[str, Any]:
    r = c.post("/v1/admin/lifecycle/run", json={"now": iso(now)} if now is not None else {})
    assert r.status_code == 200, r.text
    return r.json()


def expired_in(bucket: str, report: dict[str, Any]) -> list[str]:
    """The keys of ``bucket`` a run expired, sorted (other tests share the server)."""
    return sorted(e.split("/", 1)[1] for e in report["expired"] if e.startswith(bucket + "/"))


def test_objects_expire_when_their_expiry_passes(server: ServerProcess) -> None:
    bucket = f"expiry-{uuid.uuid4().hex[:12]}"
    in_an_hour = time.time() + 3600
    with Client(server.url) as sdk, server.client() as c:
        sdk.create_bucket(bucket)
        small = sdk.upload(bucket, "v1/small.txt", b"short-lived", expires_in=3600)
        big = sdk.upload(
            bucket, "v1/multipart.bin", b"m" * 1000, expires_in=7200, multipart_threshold=1
        )
        kept = sdk.upload(bucket, "v1/kept.txt", b"kept")
        assert small.expires_at is not None and kept.expires_at is None
        assert abs(parse_time(small.expires_at) - in_an_hour) < 60
        assert abs(parse_time(big.expires_at or "") - (in_an_hour + 3600)) < 60
        meta = c.get(f"/v1/buckets/{bucket}/objects/v1/small.txt", params={"metadata": "1"})
        assert meta.json()["expiration"]["rule_id"] == "X-Expires-At"

        # S3: X-Expires-At on PutObject; x-amz-expiration on PUT, HEAD and GET (boto3's
        # "Expiration").
        s3 = s3_client(server.url)
        with_header(s3, "PutObject", "X-Expires-At", iso(in_an_hour))
        put = s3.put_object(Bucket=bucket, Key="s3/report.html", Body=b"<p>")
        assert 'rule-id="X-Expires-At"' in put["Expiration"]
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(int(in_an_hour)))
        assert f'expiry-date="{date}"' in put["Expiration"]
        assert (
            s3.head_object(Bucket=bucket, Key="s3/report.html")["Expiration"] == put["Expiration"]
        )
        assert "Expiration" not in s3.head_object(Bucket=bucket, Key="v1/kept.txt")
        # Overwriting without an expiry makes the object permanent again.
        sdk.upload(bucket, "v1/overwritten.txt", b"first", expires_in=60)
        sdk.upload(bucket, "v1/overwritten.txt", b"second")

        # Nothing is due yet.
        report = run_lifecycle(c)
        assert report["ran"] is True and expired_in(bucket, report) == []
        # As of two hours from now: the three expiring objects go, the others stay.
        report = run_lifecycle(c, time.time() + 3 * 3600)
        assert expired_in(bucket, report) == ["s3/report.html", "v1/multipart.bin", "v1/small.txt"]
        with pytest.raises(NotFoundError):
            sdk.head(bucket, "v1/small.txt")
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=bucket, Key="s3/report.html")
        assert exc.value.response["Error"]["Code"] == "404"
        assert sdk.download(bucket, "v1/kept.txt", io.BytesIO()).sha256 == kept.sha256
        assert sdk.head(bucket, "v1/overwritten.txt").size == len(b"second")
        # Audited as the lifecycle, naming why.
        r = c.get("/v1/audit", params={"principal": "system:lifecycle"})
        reasons = {
            rec["resource"]: rec["reason"]
            for rec in r.json()["records"]
            if rec["action"] == "s3:DeleteObject"
        }
        assert "X-Expires-At" in reasons[f"{bucket}/v1/small.txt"]


def test_bad_expiry_is_refused_and_nothing_is_stored(server: ServerProcess) -> None:
    bucket = f"expiry-bad-{uuid.uuid4().hex[:8]}"
    s3 = s3_client(server.url)
    s3.create_bucket(Bucket=bucket)
    with_header(s3, "PutObject", "X-Expires-At", "2001-01-01T00:00:00Z")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="past", Body=b"x")
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    assert "not in the future" in exc.value.response["Error"]["Message"]
    with server.client() as c:
        for params, headers in (
            ({"expires_in": "0"}, {}),
            ({"expires_in": "soon"}, {}),
            ({"expires_in": "²"}, {}),
            ({}, {"X-Expires-At": "next tuesday"}),
            ({"expires_in": "60"}, {"X-Expires-At": iso(time.time() + 60)}),
        ):
            r = c.put(
                f"/v1/buckets/{bucket}/objects/bad", content=b"x", params=params, headers=headers
            )
            assert r.status_code == 400, r.text
            assert r.json()["code"] == "InvalidArgument"
        r = c.post(f"/v1/buckets/{bucket}/uploads", json={"key": "up", "expires_in": -5})
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"
        assert c.get(f"/v1/buckets/{bucket}/objects").json()["objects"] == []
        assert c.get(f"/v1/buckets/{bucket}/uploads").json()["uploads"] == []
        r = c.post("/v1/admin/lifecycle/run", json={"now": "yesterday"})
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"
        r = c.post("/v1/admin/lifecycle/run", json={"when": iso(time.time())})
        assert r.status_code == 400 and r.json()["code"] == "MalformedJSON"


def test_one_lifecycle_run_at_a_time(server: ServerProcess) -> None:
    """Another replica's run holds the lease in the shared metadata: a run asked for here is
    refused (409, retryable) until the lease is released or expires."""
    uri = server.metadata_uri or f"sqlite:///{server.data_dir / 'metadata.db'}"

    async def lease(take: bool) -> bool:
        store = create_metadata_store(uri)
        await store.open()
        try:
            if take:
                return await store.acquire_lease("lifecycle", "other-replica", time.time(), 60)
            return await store.release_lease("lifecycle", "other-replica")
        finally:
            await store.close()

    assert asyncio.run(lease(True))
    try:
        with server.client() as c:
            r = c.post("/v1/admin/lifecycle/run")
            assert r.status_code == 409, r.text
            assert (r.json()["code"], r.json()["retryable"]) == ("OperationAborted", True)
            assert asyncio.run(lease(False))
            assert run_lifecycle(c)["ran"] is True
    finally:
        asyncio.run(lease(False))


@pytest.mark.slow
def test_the_server_expires_objects_periodically(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data", env={"ZAS_STORAGE_LIFECYCLEINTERVAL": "1s"}).start()
    try:
        with Client(proc.url) as sdk:
            sdk.create_bucket("periodic")
            sdk.upload("periodic", "soon", b"gone in two seconds", expires_in=2)
            sdk.upload("periodic", "kept", b"stays")

            def expired() -> bool:
                return not sdk.exists("periodic", "soon")

            assert wait_for(expired, 15), "the server never removed the expired object"
            assert sdk.exists("periodic", "kept")
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_cli_uploads_with_an_expiry(server: ServerProcess, tmp_path: Path) -> None:
    z = Z(tmp_path, server.url)
    bucket = z.new_bucket()
    report = tmp_path / "report.html"
    report.write_text("<p>42</p>")
    uploaded = z.json("upload", "--expires-in", "2d", str(report), f"{bucket}/pr-42/")
    expires = uploaded["objects"][0]["expires_at"]
    assert abs(parse_time(expires) - (time.time() + 2 * 86400)) < 60
    refused = z("upload", "--expires-in", "soon", str(report), bucket)
    assert refused.exit_code == 2 and "not a duration" in refused.stderr


def test_server_cli_runs_the_lifecycle_as_of_a_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = ServerProcess(data).start()
    try:
        with Client(proc.url) as sdk:
            sdk.create_bucket("offline")
            sdk.upload("offline", "old", b"expires in a day", expires_in=86400)
    finally:
        assert proc.stop() == 0
    cmd = [SERVER_BIN, "lifecycle", "run", "--data-dir", str(data)]
    bad = subprocess.run([*cmd, "--now", "tomorrow"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not an RFC 3339 time" in bad.stderr
    typo = subprocess.run([*cmd, "--nwo", "x"], capture_output=True, text=True, timeout=60)
    assert typo.returncode == 2 and "(did you mean --now?)" in typo.stderr
    now = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert now.returncode == 0, now.stderr
    assert json.loads(now.stdout)["objects_expired"] == 0
    later = subprocess.run(
        [*cmd, "--now", iso(time.time() + 2 * 86400)], capture_output=True, text=True, timeout=60
    )
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["expired"] == ["offline/old"]


# ---- S3 bucket lifecycle configuration ------------------------------------------------------

RULES: list[dict[str, Any]] = [
    {"ID": "prs", "Status": "Enabled", "Filter": {"Prefix": "pr-"}, "Expiration": {"Days": 14}},
    {
        "ID": "scratch",
        "Status": "Enabled",
        "Filter": {
            "And": {"Prefix": "tmp/", "Tags": [{"Key": "keep", "Value": "no"}]},
        },
        "Expiration": {"Days": 1},
    },
    {
        "ID": "big",
        "Status": "Disabled",
        "Filter": {"ObjectSizeGreaterThan": 10},
        "Expiration": {"Days": 1},
    },
    {
        "ID": "uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": "incoming/"},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
    },
]


def midnight_after(ts: float) -> float:
    return (int(ts // 86400) + 1) * 86400


def test_lifecycle_configuration_round_trips_and_is_enforced(server: ServerProcess) -> None:
    bucket = f"rules-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(server.url)
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["ID"] for r in got] == ["prs", "scratch", "big", "uploads"]
    assert got[0]["Filter"] == {"Prefix": "pr-"} and got[0]["Expiration"] == {"Days": 14}
    assert got[1]["Filter"]["And"] == {"Prefix": "tmp/", "Tags": [{"Key": "keep", "Value": "no"}]}
    assert got[2]["Status"] == "Disabled"
    assert got[3]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}

    written = time.time()
    s3.put_object(Bucket=bucket, Key="pr-7/report.html", Body=b"report")
    s3.put_object(Bucket=bucket, Key="tmp/a", Body=b"scratch", Tagging="keep=no")
    s3.put_object(Bucket=bucket, Key="tmp/b", Body=b"kept scratch", Tagging="keep=yes")
    s3.put_object(Bucket=bucket, Key="release/app.tar", Body=b"a big release " * 10)
    # HEAD names the rule that removes the object first, and when (rounded up to midnight UTC).
    head = s3.head_object(Bucket=bucket, Key="pr-7/report.html")
    when = time.strftime(
        "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(midnight_after(written + 14 * 86400))
    )
    assert head["Expiration"] == f'expiry-date="{when}", rule-id="prs"'
    assert "Expiration" not in s3.head_object(Bucket=bucket, Key="release/app.tar")
    incoming = s3.create_multipart_upload(Bucket=bucket, Key="incoming/x")["UploadId"]
    other = s3.create_multipart_upload(Bucket=bucket, Key="outgoing/y")["UploadId"]

    with server.client() as c:
        report = run_lifecycle(c, time.time() + 3 * 86400)
        assert expired_in(bucket, report) == ["tmp/a"]
        assert report["uploads_aborted"] >= 1
        uploads = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]}
        assert incoming not in uploads and other in uploads  # the default 7 days still hold
        report = run_lifecycle(c, time.time() + 16 * 86400)
        assert expired_in(bucket, report) == ["pr-7/report.html"]
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["release/app.tar", "tmp/b"]

    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ({"Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, "NotImplemented"),
        (
            {"NoncurrentVersionExpiration": {"NoncurrentDays": 3, "NewerNoncurrentVersions": 0}},
            "InvalidArgument",
        ),
        (
            {"NoncurrentVersionExpiration": {"NoncurrentDays": 3, "NewerNoncurrentVersions": 101}},
            "InvalidArgument",
        ),
        ({"NoncurrentVersionExpiration": {"NoncurrentDays": 0}}, "InvalidArgument"),
        ({"Expiration": {"Days": 3, "ExpiredObjectDeleteMarker": True}}, "InvalidArgument"),
        ({"Expiration": {"ExpiredObjectDeleteMarker": False}}, "InvalidRequest"),  # no action
        (
            {
                "Filter": {"Tag": {"Key": "a", "Value": "b"}},
                "Expiration": {"ExpiredObjectDeleteMarker": True},
            },
            "InvalidRequest",
        ),
        ({}, "InvalidRequest"),  # no action
        ({"Expiration": {"Days": 0}}, "InvalidArgument"),
        ({"Expiration": {"Date": "2030-01-01T12:00:00Z"}}, "InvalidArgument"),
        (
            {
                "Filter": {"Tag": {"Key": "a", "Value": "b"}},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
            "InvalidRequest",
        ),
    ],
)
def test_lifecycle_rules_that_cannot_be_honoured_are_refused(
    server: ServerProcess, rule: dict[str, Any], code: str
) -> None:
    bucket = f"badrules-{uuid.uuid4().hex[:10]}"
    s3 = s3_client(server.url)
    s3.create_bucket(Bucket=bucket)
    config = {"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {}, **rule}]}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=config)
    assert exc.value.response["Error"]["Code"] == code, exc.value.response["Error"]
    with pytest.raises(ClientError) as exc:  # nothing was stored
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"


def test_expiry_through_multipart_and_copies(server: ServerProcess) -> None:
    bucket = f"expiry-mp-{uuid.uuid4().hex[:10]}"
    at = time.time() + 86400
    s3 = s3_client(server.url)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="source", Body=b"source bytes")
    # CreateMultipartUpload carries the expiry; the object gets it at completion.
    with_header(s3, "CreateMultipartUpload", "X-Expires-At", iso(at))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"p")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert 'rule-id="X-Expires-At"' in done["Expiration"]
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Expiration"] == done["Expiration"] and got["Body"].read() == b"p"
    # A copy does not inherit the expiry; a REPLACE copy may set one.
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/mp")
    assert "Expiration" not in s3.head_object(Bucket=bucket, Key="copy")
    with_header(s3, "CopyObject", "X-Expires-At", iso(at))
    s3.copy_object(
        Bucket=bucket, Key="copy2", CopySource=f"{bucket}/source", MetadataDirective="REPLACE"
    )
    assert "Expiration" in s3.head_object(Bucket=bucket, Key="copy2")
    with server.client() as c:
        r = c.put(
            f"/v1/buckets/{bucket}/objects/v1-copy",
            headers={"X-Copy-Source": f"{bucket}/source"},
            params={"expires_in": "3600"},
        )
        assert r.status_code == 201, r.text
        assert abs(parse_time(r.json()["expires_at"]) - (time.time() + 3600)) < 60
        r = c.post(f"/v1/buckets/{bucket}/uploads", json={"key": "v1-mp", "expires_at": iso(at)})
        assert r.status_code == 201 and r.json()["expires_at"].startswith(iso(at)[:19])
        report = run_lifecycle(c, at + 1)
    assert expired_in(bucket, report) == ["copy2", "mp", "v1-copy"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["copy", "source"]


@pytest.mark.slow
def test_replicas_sharing_mongodb_expire_each_object_once(
    tmp_path: Path, metadata_uri_for: Callable[[str, Path], str]
) -> None:
    """Two replicas (one storage root, one MongoDB) both run the lifecycle every second; the
    lease lets one at a time work, and each expired object is removed and audited once."""
    shared = tmp_path / "shared"
    env = {
        "ZAS_STORAGE_ROOTDIRECTORY": str(shared),
        "ZAS_METADATA_URI": metadata_uri_for("mongodb", shared),
        "ZAS_STORAGE_LIFECYCLEINTERVAL": "1s",
    }
    a = ServerProcess(tmp_path / "a", env=env, data_dir_flag=False).start()
    b = ServerProcess(tmp_path / "b", env=env, data_dir_flag=False).start()
    try:
        with Client(a.url) as sdk_a, Client(b.url) as sdk_b, b.client() as cb:
            sdk_a.create_bucket("shared")
            keys = [f"k{i}" for i in range(6)]
            for key in keys:
                sdk_a.upload("shared", key, key.encode(), expires_in=1)
            sdk_a.upload("shared", "kept", b"kept")

            def all_gone() -> bool:
                return [o.key for o in sdk_b.list("shared")] == ["kept"]

            assert wait_for(all_gone, 20), "the replicas never expired the objects"
            time.sleep(2)  # a few more runs on both replicas
            r = cb.get(
                "/v1/audit", params={"principal": "system:lifecycle", "action": "s3:DeleteObject"}
            )
            expired = [rec["resource"] for rec in r.json()["records"]]
            assert sorted(expired) == [f"shared/{k}" for k in keys]
    finally:
        assert a.stop() == 0 and b.stop() == 0
