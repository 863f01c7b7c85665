"""``zot-artifact-store fsck`` on a store with a deleted and a corrupted blob (filesystem blobs,
each metadata backend): it finds both, ``--repair`` quarantines them, the store is clean after
and serves what is intact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import SERVER_BIN, ServerProcess


def fsck(data: Path, metadata_uri: str | None, *args: str) -> tuple[int, dict[str, Any]]:
    env_args = ["--data-dir", str(data)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAS_")}
    if metadata_uri:
        env["ZAS_METADATA_URI"] = metadata_uri
    done = subprocess.run(
        [SERVER_BIN, "fsck", *env_args, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def blob_file(data: Path, content: bytes) -> Path:
    hexdigest = hashlib.sha256(content).hexdigest()
    return data / "blobs" / "sha256" / hexdigest[:2] / hexdigest


@pytest.mark.parametrize("backend", ["sqlite", "mongodb"])
def test_fsck_finds_and_quarantines(tmp_path: Path, backend: str, metadata_uri_for: Any) -> None:
    data = tmp_path / "data"
    uri = metadata_uri_for(backend, data)
    contents = {"gone.bin": b"deleted blob " * 100, "bad.bin": b"corrupted blob " * 100}
    contents["good.bin"] = b"intact blob " * 100
    proc = ServerProcess(data, metadata_uri=uri).start()
    try:
        with proc.client() as c:
            assert c.put("/v1/buckets/fsck-test").status_code == 201
            for key, body in contents.items():
                assert c.put(f"/v1/buckets/fsck-test/objects/{key}", content=body).is_success
            signed = c.post(
                "/v1/sign", json={"subject": {"bucket": "fsck-test", "key": "good.bin"}}
            )
            assert signed.status_code == 201, signed.text
    finally:
        assert proc.stop() == 0

    code, report = fsck(data, uri)
    assert code == 0, report
    assert (report["objects"], report["evidence"], report["errors"]) == (3, 1, 0)

    blob_file(data, contents["gone.bin"]).unlink()
    corrupted = blob_file(data, contents["bad.bin"])
    corrupted.chmod(0o600)
    corrupted.write_bytes(b"X" * len(contents["bad.bin"]))

    code, report = fsck(data, uri)
    assert code == 1
    found = {(p["kind"], p["record"]) for p in report["problems"]}
    assert found == {
        ("missing_blob", "object fsck-test/gone.bin"),
        ("corrupt_blob", "object fsck-test/bad.bin"),
    }
    assert not any(p["repaired"] for p in report["problems"])

    code, report = fsck(data, uri, "--repair")
    assert code == 1 and all(p["repaired"] for p in report["problems"])
    quarantine = Path(report["quarantine"])
    assert quarantine.parent == data / "quarantine"
    moved = quarantine / "blobs" / "sha256" / hashlib.sha256(contents["bad.bin"]).hexdigest()
    assert moved.read_bytes() == b"X" * len(contents["bad.bin"])
    records = [json.loads(line) for line in (quarantine / "records.jsonl").read_text().splitlines()]
    assert {r["record"] for r in records} == {
        "object fsck-test/gone.bin",
        "object fsck-test/bad.bin",
    }
    assert {r["doc"]["key"] for r in records} == {"gone.bin", "bad.bin"}

    code, report = fsck(data, uri)
    assert (code, report["objects"], report["errors"]) == (0, 1, 0)
    proc = ServerProcess(data, metadata_uri=uri).start()
    try:
        with proc.client() as c:
            assert c.get("/v1/buckets/fsck-test/objects/good.bin").content == contents["good.bin"]
            assert c.get("/v1/buckets/fsck-test/objects/bad.bin").status_code == 404
            assert c.get("/v1/buckets/fsck-test/objects/gone.bin").status_code == 404
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize("backend", ["sqlite", "mongodb"])
def test_fsck_checks_noncurrent_versions_and_keeps_locked_ones(
    tmp_path: Path, backend: str, metadata_uri_for: Any
) -> None:
    """S3 versioning: an old version's blob is checked too, evidence about its digest resolves,
    and ``--repair`` removes a broken noncurrent version unless Object Lock protects it."""
    data = tmp_path / "data"
    uri = metadata_uri_for(backend, data)
    old, held, new = b"old version " * 100, b"held version " * 100, b"new version " * 100
    proc = ServerProcess(data, metadata_uri=uri).start()
    try:
        s3 = s3_client(proc.url)
        s3.create_bucket(Bucket="fsck-ver", ObjectLockEnabledForBucket=True)
        first = s3.put_object(Bucket="fsck-ver", Key="k", Body=old)["VersionId"]
        second = s3.put_object(Bucket="fsck-ver", Key="k", Body=held)["VersionId"]
        s3.put_object_legal_hold(
            Bucket="fsck-ver", Key="k", VersionId=second, LegalHold={"Status": "ON"}
        )
        s3.put_object(Bucket="fsck-ver", Key="k", Body=new)
        with proc.client() as c:
            digest = "sha256:" + hashlib.sha256(old).hexdigest()
            signed = c.post("/v1/sign", json={"subject": {"digest": digest}})
            assert signed.status_code == 201, signed.text
    finally:
        assert proc.stop() == 0

    code, report = fsck(data, uri)
    assert code == 0 and report["objects"] == 3, report
    assert not report["problems"], report["problems"]  # the evidence's subject resolves

    blob_file(data, old).unlink()
    blob_file(data, held).unlink()
    code, report = fsck(data, uri, "--repair")
    assert code == 1
    problems = {p["record"]: p for p in report["problems"]}
    assert set(problems) == {
        f"object fsck-ver/k?versionId={first}",
        f"object fsck-ver/k?versionId={second}",
    }
    assert problems[f"object fsck-ver/k?versionId={first}"]["repaired"] is True
    kept = problems[f"object fsck-ver/k?versionId={second}"]
    assert kept["repaired"] is False and "legal hold" in kept["detail"]
    code, report = fsck(data, uri)
    errors = [p["record"] for p in report["problems"] if p["severity"] == "error"]
    assert errors == [f"object fsck-ver/k?versionId={second}"]
    # The repaired version was the signed one: its evidence no longer resolves (a warning).
    warnings = [p["kind"] for p in report["problems"] if p["severity"] == "warning"]
    assert warnings == ["unresolved_subject"]
