"""Abandoned uploads, object expiry and S3 bucket lifecycle, against the running server on both
metadata backends, with real clients (boto3 for S3, httpx / the SDK for ``/v1``)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess


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
