"""``zot-artifact-store storage migrate --to CONFIG``: a filesystem store moved to S3 (moto's
server on loopback) as docs/deploy.md tells a user to — migrate while the server still runs,
stop it, migrate again to catch up, switch the config — with the first copy cut off part-way
(the object store starts dropping blob uploads through the fault proxy, then the run is
killed) and resumed. A server on the S3 config then serves every object and the image byte
for byte. A corrupt source blob is reported and fails the run, and nothing is stored for it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import run, tool
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.objectstores import S3Endpoint
from tests.fixtures.oci_layout import Layout, blob_files
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import SERVER_BIN, ServerProcess
from zot_artifact_store.storage import FilesystemBlobStore

pytestmark = pytest.mark.slow

MiB = 1 << 20


def s3_config(
    path: Path, moto: S3Endpoint, data_dir: Path, prefix: str, endpoint: str | None = None
) -> Path:
    """A server config whose blobs are in moto's bucket under ``prefix`` (metadata and keys
    stay in ``data_dir``); the secret key comes from a file, as a mounted secret would."""
    secret = path.with_suffix(".secret")
    secret.write_text(moto.secret_key + "\n")
    config = {
        "storage": {
            "rootDirectory": str(data_dir),
            "storageDriver": {
                "name": "s3",
                "bucket": moto.bucket,
                "region": "us-east-1",
                "regionendpoint": urlsplit(endpoint or moto.url).netloc,
                "secure": False,
                "forcepathstyle": True,
                "rootdirectory": prefix,
                "accesskey": moto.access_key,
                "secretkeyFile": str(secret),
                "chunksize": 5 * MiB,
            },
        }
    }
    path.write_text(json.dumps(config))
    return path


def migrate(data_dir: Path, to: Path, *extra: str, timeout: float = 180) -> tuple[int, dict, str]:
    """Run the command; (exit code, the summary it printed, what it said on stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAS_")}
    proc = subprocess.run(
        [SERVER_BIN, "storage", "migrate", "--data-dir", str(data_dir), "--to", str(to), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    summary = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, summary, proc.stderr


def skopeo(*args: str, home: Path) -> None:
    run([tool("skopeo"), *args], {"HOME": str(home)})


def fill(server: ServerProcess, layout: Layout, home: Path, tag: str) -> dict[str, Any]:
    """Objects through S3 (one multipart) and /v1, an image through skopeo; what was stored."""
    s3 = s3_client(server.url)
    name = f"mig-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    objects: dict[tuple[str, str], bytes] = {}
    for i in range(12):
        body = os.urandom(64 * 1024 + i)
        s3.put_object(Bucket=name, Key=f"small/{i}", Body=body)
        objects[(name, f"small/{i}")] = body
    parts = [os.urandom(5 * MiB), os.urandom(2 * MiB)]
    up = s3.create_multipart_upload(Bucket=name, Key="big/multi.bin")["UploadId"]
    etags = [
        s3.upload_part(Bucket=name, Key="big/multi.bin", UploadId=up, PartNumber=n, Body=p)["ETag"]
        for n, p in enumerate(parts, 1)
    ]
    s3.complete_multipart_upload(
        Bucket=name,
        Key="big/multi.bin",
        UploadId=up,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]},
    )
    objects[(name, "big/multi.bin")] = b"".join(parts)
    with server.client() as c:
        assert c.put(f"/v1/buckets/{name}-v1").status_code == 201
        for i in range(3):
            body = os.urandom(300_000 + i)
            r = c.put(f"/v1/buckets/{name}-v1/objects/docs/{i}.bin", content=body)
            assert r.status_code in (200, 201), r.text
            objects[(f"{name}-v1", f"docs/{i}.bin")] = body
    layout.tag(layout.image(layers=2, layer_size=200_000), tag)
    ref = f"docker://127.0.0.1:{server.port}/migrate/app:{tag}"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.root}:{tag}", ref, home=home)
    return {"objects": objects, "image": f"migrate/app:{tag}"}


def check_served(server: ServerProcess, stored: dict[str, Any], workdir: Path, home: Path) -> None:
    """Every object byte for byte through S3 (and /v1 for /v1's), each image through skopeo."""
    s3 = s3_client(server.url)
    with server.client() as c:
        for (bucket, key), body in stored["objects"].items():
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), (bucket, key)
            if bucket.endswith("-v1"):
                assert c.get(f"/v1/buckets/{bucket}/objects/{key}").content == body
    for image, src in stored["images"]:
        out = workdir / f"pulled-{uuid.uuid4().hex[:6]}"
        tag = image.rsplit(":", 1)[1]
        ref = f"docker://127.0.0.1:{server.port}/{image}"
        skopeo("copy", "--src-tls-verify=false", ref, f"oci:{out}:{tag}", home=home)
        pulled = blob_files(out)
        assert pulled and all(src[d] == data for d, data in pulled.items())


def test_a_filesystem_store_moves_to_s3_interrupted_resumed_and_caught_up(
    moto_s3: S3Endpoint, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "data"
    prefix = f"migrated-{uuid.uuid4().hex[:8]}"
    raw = s3_client(moto_s3.url, moto_s3.access_key, moto_s3.secret_key)
    layout = Layout(tmp_path / "layout")
    server = ServerProcess(data, env={"ZAS_STORAGE_FSYNC": "false"}).start()
    try:
        first = fill(server, layout, home, "v1")
        source_blobs = {p.name for p in (data / "blobs" / "sha256").rglob("*") if p.is_file()}
        assert len(source_blobs) >= 20

        with FaultProxy(moto_s3.url) as proxy:
            config = s3_config(tmp_path / "to.yaml", moto_s3, data, prefix, endpoint=proxy.url)
            # The object store takes 4 blobs, then drops every further blob upload; the run
            # (the server still serving) is killed while it retries.
            proxy.stop_parts_after(4, match=f"/{prefix}/blobs/")
            env = {k: v for k, v in os.environ.items() if not k.startswith("ZAS_")}
            cmd = [SERVER_BIN, "storage", "migrate", "--data-dir", str(data), "--to", str(config)]
            run = subprocess.Popen(
                [*cmd, "--jobs", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            deadline = time.monotonic() + 60
            while not any(s.dropped for s in proxy.seen("PUT")) and run.poll() is None:
                assert time.monotonic() < deadline, "the fault proxy dropped nothing in 60s"
                time.sleep(0.05)
            run.kill()
            run.communicate(timeout=30)
            listed = raw.list_objects_v2(Bucket=moto_s3.bucket, Prefix=f"{prefix}/blobs/")
            landed = listed.get("KeyCount", 0)
            assert 1 <= landed <= 4  # part-way: only what got through

            proxy.reset()  # the store is healthy again: the second run resumes
            code, summary, said = migrate(data, config)
        assert code == 0, said
        assert summary["skipped"] == landed and summary["failed"] == 0
        assert summary["copied"] + summary["skipped"] == summary["blobs_seen"] >= len(source_blobs)
        assert "progress" in said or "done in" in said

        # More is written while the store is still on the filesystem, then the server stops
        # and a last run catches up with exactly what is new.
        second = fill(server, layout, home, "v2")
    finally:
        server.stop()
    config = s3_config(tmp_path / "to.yaml", moto_s3, data, prefix)
    code, summary, said = migrate(data, config)
    assert code == 0, said
    assert summary["copied"] >= 18 and summary["failed"] == 0
    assert summary["skipped"] >= len(source_blobs)
    code, summary, _ = migrate(data, config)  # nothing left to do
    assert (code, summary["copied"], summary["failed"]) == (0, 0, 0)

    # The switch: the same data directory (metadata, keys) with the blobs on S3. Nothing is
    # read from the filesystem's blobs any more: prove it by removing them.
    shutil.rmtree(data / "blobs")
    server = ServerProcess(data, config=config, data_dir_flag=False).start()
    try:
        with server.client() as c:
            ready = c.get("/health/ready").json()["checks"]["storage"]
            assert ready["backend"] == "s3"
        src = blob_files(layout.root)
        stored = {
            "objects": {**first["objects"], **second["objects"]},
            "images": [(first["image"], src), (second["image"], src)],
        }
        check_served(server, stored, tmp_path, home)
    finally:
        server.stop()
    assert not (data / "blobs").exists()


def test_a_corrupt_source_blob_fails_the_run_and_is_not_copied(
    moto_s3: S3Endpoint, tmp_path: Path
) -> None:
    import asyncio

    data = tmp_path / "data"

    async def put_blobs() -> list[str]:
        store = FilesystemBlobStore(data, fsync=False)
        await store.open()
        try:
            return [(await store.put_bytes(os.urandom(50_000 + i))).digest for i in range(4)]
        finally:
            await store.close()

    digests = asyncio.run(put_blobs())
    bad = digests[1].split(":", 1)[1]
    path = next(p for p in (data / "blobs" / "sha256").rglob(bad))
    body = bytearray(path.read_bytes())
    body[100] ^= 0xFF  # one flipped bit of rot
    path.write_bytes(bytes(body))
    prefix = f"corrupt-{uuid.uuid4().hex[:8]}"
    config = s3_config(tmp_path / "to.yaml", moto_s3, data, prefix)

    code, summary, said = migrate(data, config)
    assert code == 1
    assert (summary["copied"], summary["failed"]) == (3, 1)
    assert summary["failures"][0]["digest"] == digests[1]
    assert "corrupt" in summary["failures"][0]["error"]
    assert f"FAILED {digests[1]}" in said
    raw = s3_client(moto_s3.url, moto_s3.access_key, moto_s3.secret_key)
    keys = {
        o["Key"].rsplit("/", 1)[1]
        for o in raw.list_objects_v2(Bucket=moto_s3.bucket, Prefix=f"{prefix}/").get("Contents", [])
    }
    assert bad not in keys and {d.split(":")[1] for d in digests if d != digests[1]} <= keys
    # A re-run does not pretend otherwise: still failing, the good ones skipped.
    code, summary, _ = migrate(data, config)
    assert (code, summary["skipped"], summary["failed"]) == (1, 3, 1)


def test_migrate_refuses_a_target_that_is_the_source(tmp_path: Path) -> None:
    data = tmp_path / "data"
    same = tmp_path / "same.yaml"
    same.write_text(json.dumps({"storage": {"rootDirectory": str(data)}}))
    code, _, said = migrate(data, same)
    assert code == 2 and "names the store being migrated" in said
    missing = tmp_path / "missing.yaml"
    code, _, said = migrate(data, missing)
    assert code == 2 and "cannot read config file" in said
