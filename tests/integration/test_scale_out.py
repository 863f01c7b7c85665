"""Scale-out with no shared disk (issue 17 §4): three replicas, separate processes, each with its
own data directory, one MongoDB-wire metadata server (nx-27017), one S3 bucket (moto's server)
for the blobs. What replicas share besides is what the Helm chart and the operator mount into
every pod: the config, the root password, ``secrets.key`` (sealed S3 secrets, presigned URLs),
``registry-token.key`` (OCI bearer tokens) and the signing key — as files named in the config.

Scenarios: an S3 multipart upload whose parts go to different replicas; an OCI chunked push
across replicas; awscli and skopeo round trips through a round-robin TCP balancer; garbage
collection running on one replica while the others upload; a replica SIGKILLed mid-upload
while the client retries on another. Every wait is bounded."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import run, tool
from tests.fixtures.objectstores import S3Endpoint
from tests.fixtures.oci_layout import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Layout, blob_files
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess, signing_key_pem
from tests.fixtures.tcpswitch import TcpSwitch

pytestmark = pytest.mark.slow

MiB = 1 << 20
USER, PASSWORD = "scale-root", "scale-root-password-123"
ROOT = (USER, PASSWORD)
GC_DELAY = 4.0  # seconds: short, so GC would catch anything in flight that it should not


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Cluster:
    replicas: list[ServerProcess]
    balancer: TcpSwitch
    moto: S3Endpoint
    prefix: str
    config: Path
    env: dict[str, str]
    base: Path
    extra: list[ServerProcess] = field(default_factory=list)

    def s3(self, i: int) -> Any:
        return s3_client(self.replicas[i].url, USER, PASSWORD)

    def raw(self) -> Any:
        return s3_client(self.moto.url, self.moto.access_key, self.moto.secret_key)

    def keys(self, under: str) -> dict[str, int]:
        """Key → size of the bucket's objects under ``prefix/under``."""
        out: dict[str, int] = {}
        pages = self.raw().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.moto.bucket, Prefix=f"{self.prefix}/{under}"):
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        return out

    def replica(self, name: str, **env: str) -> ServerProcess:
        """Another replica on the same config, its own data directory; stopped at the end."""
        server = ServerProcess(
            self.base / name, env={**self.env, **env}, config=self.config
        ).start()
        self.extra.append(server)
        return server


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, moto_s3: S3Endpoint, metadata_uri_for
) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("scale-out")
    shared = base / "secrets"  # what a Kubernetes Secret mounts into every pod
    shared.mkdir()
    for name in ("secrets.key", "registry-token.key"):
        (shared / name).write_text(os.urandom(32).hex())
    (shared / "signing.pem").write_text(signing_key_pem())
    (shared / "s3-secretkey").write_text(moto_s3.secret_key)
    (shared / "root-password").write_text(PASSWORD)
    for f in shared.iterdir():
        f.chmod(0o600)
    prefix = f"scale-{uuid.uuid4().hex[:8]}"
    config = base / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "storage": {
                    "gcDelay": f"{GC_DELAY}s",
                    "storageDriver": {
                        "name": "s3",
                        "bucket": moto_s3.bucket,
                        "region": "us-east-1",
                        "regionendpoint": urlsplit(moto_s3.url).netloc,
                        "secure": False,
                        "forcepathstyle": True,
                        "rootdirectory": prefix,
                        "accesskey": moto_s3.access_key,
                        "secretkeyFile": str(shared / "s3-secretkey"),
                        "chunksize": 5 * MiB,
                    },
                },
                "auth": {
                    "secretsKeyFile": str(shared / "secrets.key"),
                    "token": {"keyFile": str(shared / "registry-token.key")},
                },
                "extensions": {
                    "supplychain": {"signing": {"keyFile": str(shared / "signing.pem")}}
                },
            }
        )
    )
    env = {
        "ZAS_ROOT_USER": USER,
        "ZAS_ROOT_PASSWORD_FILE": str(shared / "root-password"),
        "ZAS_METADATA_URI": metadata_uri_for("mongodb", base),
        "ZAS_STORAGE_FSYNC": "false",
        "ZAS_HTTP_WORKERS": "1",
        "ZAS_STORAGE_GC": "false",
        "ZAS_LOG_LEVEL": "info",
    }
    replicas: list[ServerProcess] = []
    balancer: TcpSwitch | None = None
    try:
        for name in ("a", "b"):
            replicas.append(ServerProcess(base / name, env=env, config=config).start())
        # Replica c collects garbage every second (the others never do).
        gc_env = {**env, "ZAS_STORAGE_GC": "true", "ZAS_STORAGE_GCINTERVAL": "1s"}
        replicas.append(ServerProcess(base / "c", env=gc_env, config=config).start())
        dirs = [r.data_dir for r in replicas]
        assert len(set(dirs)) == 3 and not any(a in b.parents for a in dirs for b in dirs)
        balancer = TcpSwitch(*(("127.0.0.1", r.port) for r in replicas)).start()
        cluster = Cluster(replicas, balancer, moto_s3, prefix, config, env, base)
        yield cluster
        for server in cluster.extra:
            server.stop()
    finally:
        if balancer is not None:
            balancer.stop()
        for server in replicas:
            server.stop()


def gc_runs(server: ServerProcess) -> list[dict[str, Any]]:
    return [
        line["report"]
        for line in server.log_lines()
        if line.get("message") == "garbage collection finished"
    ]


# ---- S3 multipart: each part through another replica -----------------------------------------
def test_s3_multipart_parts_through_different_replicas(cluster: Cluster) -> None:
    a, b, c = (cluster.s3(i) for i in range(3))
    bucket = f"mpu-{uuid.uuid4().hex[:8]}"
    a.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 17), os.urandom(123_456)]
    up = a.create_multipart_upload(Bucket=bucket, Key="dist/app.tar")["UploadId"]
    etags = []
    for n, (client, body) in enumerate(zip((b, c, a), parts, strict=True), 1):
        r = client.upload_part(
            Bucket=bucket, Key="dist/app.tar", UploadId=up, PartNumber=n, Body=body
        )
        etags.append(r["ETag"])
    listed = c.list_parts(Bucket=bucket, Key="dist/app.tar", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [
        (i + 1, len(p)) for i, p in enumerate(parts)
    ]
    done = b.complete_multipart_upload(
        Bucket=bucket,
        Key="dist/app.tar",
        UploadId=up,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]},
    )
    assert done["ETag"].strip('"').endswith("-3")
    whole = b"".join(parts)
    for client in (a, b, c):
        got = client.get_object(Bucket=bucket, Key="dist/app.tar")
        assert got["ContentLength"] == len(whole) and got["Body"].read() == whole
        assert got["ETag"] == done["ETag"]
    ranged = c.get_object(
        Bucket=bucket, Key="dist/app.tar", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}"
    )
    assert ranged["Body"].read() == whole[5 * MiB - 3 : 5 * MiB + 3]
    # The bytes are in the bucket, not on any replica's disk.
    # (a multipart object is its part blobs, not a second copy of them).
    stored = cluster.keys("blobs/")
    assert all(f"{cluster.prefix}/blobs/sha256/{sha256(p)[7:]}" in stored for p in parts)
    for server in cluster.replicas:
        assert not (server.data_dir / "blobs").exists()


# ---- OCI: a chunked push across replicas, with a token from a third ---------------------------
def registry_token(server: ServerProcess, repo: str) -> dict[str, str]:
    r = httpx.get(
        f"{server.url}/v2/token",
        params={"scope": f"repository:{repo}:pull,push", "service": "zot-artifact-store"},
        auth=ROOT,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_oci_chunked_push_across_replicas(cluster: Cluster) -> None:
    a, b, c = cluster.replicas
    repo = "scale/chunked"
    bearer = registry_token(c, repo)  # issued by c, honoured by a and b
    layer = os.urandom(7 * MiB + 5)
    chunks = [layer[: 3 * MiB], layer[3 * MiB : 6 * MiB], layer[6 * MiB :]]
    with (
        httpx.Client(base_url=a.url, headers=bearer, timeout=60) as ca,
        httpx.Client(base_url=b.url, headers=bearer, timeout=60) as cb,
        httpx.Client(base_url=c.url, headers=bearer, timeout=60) as cc,
    ):
        r = ca.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        offset = 0
        for client, chunk in zip((cb, cc), chunks[:2], strict=True):
            end = offset + len(chunk) - 1
            r = client.patch(location, content=chunk, headers={"Content-Range": f"{offset}-{end}"})
            assert r.status_code == 202, r.text
            location, offset = r.headers["location"], end + 1
        assert ca.get(location).headers["range"] == f"0-{offset - 1}"
        r = cb.put(location, params={"digest": sha256(layer)}, content=chunks[2])
        assert r.status_code == 201, r.text
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        r = cc.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(config)}, content=config)
        assert r.status_code == 201, r.text
        # A small blob sent whole: the upload started on a, its body PUT to c, pulled from b.
        small = os.urandom(4096)
        at = ca.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        r = cc.put(at, params={"digest": sha256(small)}, content=small)
        assert r.status_code == 201, r.text
        assert cb.get(f"/v2/{repo}/blobs/{sha256(small)}").content == small
        described = [(OCI_CONFIG, config), (OCI_LAYER, layer)]
        config_desc, layer_desc = (
            {"mediaType": kind, "digest": sha256(data), "size": len(data)}
            for kind, data in described
        )
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc}
        manifest = json.dumps({**doc, "layers": [layer_desc]}).encode()
        headers = {"Content-Type": OCI_MANIFEST}
        r = ca.put(f"/v2/{repo}/manifests/v1", content=manifest, headers=headers)
        assert r.status_code == 201, r.text
        for client in (ca, cb, cc):
            assert client.get(f"/v2/{repo}/manifests/v1").content == manifest
            got = client.get(f"/v2/{repo}/blobs/{sha256(layer)}")
            assert got.status_code == 200 and got.content == layer
    assert not cluster.keys("uploads/")  # the finished session left nothing behind


# ---- shared keys: what one replica issues, every other honours --------------------------------
def test_credentials_and_presigned_urls_work_on_every_replica(cluster: Cluster) -> None:
    a, b, c = cluster.replicas
    r = httpx.post(f"{a.url}/v1/access-keys", json={"name": "ci", "roles": ["writer"]}, auth=ROOT)
    assert r.status_code == 201, r.text
    key = (r.json()["access_key_id"], r.json()["secret_access_key"])
    bucket = f"keys-{uuid.uuid4().hex[:8]}"
    s3_client(b.url, *key).create_bucket(Bucket=bucket)  # b opens the secret a sealed
    s3_client(c.url, *key).put_object(Bucket=bucket, Key="k", Body=b"sealed by a")
    r = httpx.post(f"{b.url}/v1/presign", json={"bucket": bucket, "key": "k"}, auth=ROOT)
    assert r.status_code in (200, 201), r.text
    url = urlsplit(r.json()["url"])
    for server in (a, c):  # signed by b, checked by a and c
        got = httpx.get(f"{server.url}{url.path}?{url.query}")
        assert got.status_code == 200 and got.content == b"sealed by a", got.text


# ---- real clients through a round-robin balancer ----------------------------------------------
def test_awscli_and_skopeo_round_trips_through_a_round_robin(
    cluster: Cluster, tmp_path: Path
) -> None:
    lb = cluster.balancer
    before = list(lb.connections)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": USER,
        "AWS_SECRET_ACCESS_KEY": PASSWORD,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }

    def aws(*args: str) -> str:
        return run([tool("aws"), "--endpoint-url", lb.url, *args], env)

    bucket = f"aws-{uuid.uuid4().hex[:8]}"
    aws("s3", "mb", f"s3://{bucket}")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 * MiB))  # multipart: 5 parts of 8 MiB, several connections
    aws("s3", "cp", str(big), f"s3://{bucket}/big.bin")
    tree = tmp_path / "tree"
    for i in range(6):
        (tree / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 2}" / f"f{i}.bin").write_bytes(os.urandom(100_000 + i))
    aws("s3", "sync", str(tree), f"s3://{bucket}/tree/")
    back = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()
    tree_back = tmp_path / "tree-back"
    aws("s3", "sync", f"s3://{bucket}/tree/", str(tree_back))
    assert {p.relative_to(tree_back): p.read_bytes() for p in tree_back.rglob("*.bin")} == {
        p.relative_to(tree): p.read_bytes() for p in tree.rglob("*.bin")
    }

    src = Layout(tmp_path / "oci")
    src.tag(src.image(layers=4, layer_size=512 * 1024), "v1")
    ref = f"docker://127.0.0.1:{lb.port}/scale/skopeo:v1"
    creds = f"{USER}:{PASSWORD}"
    skopeo = tool("skopeo")
    run([skopeo, "copy", "--dest-creds", creds, "--dest-tls-verify=false",
         f"oci:{src.root}:v1", ref], {"HOME": str(home)})  # fmt: skip
    out = tmp_path / "oci-out"
    run([skopeo, "copy", "--src-creds", creds, "--src-tls-verify=false",
         ref, f"oci:{out}:v1"], {"HOME": str(home)})  # fmt: skip
    assert blob_files(out) == blob_files(src.root)
    # Every replica served part of it.
    assert all(now > then for now, then in zip(lb.connections, before, strict=True)), (
        lb.connections,
        before,
    )


# ---- GC on one replica while the others upload ------------------------------------------------
def slow_body(data: bytes, pieces: int, pause: float) -> Iterator[bytes]:
    step = -(-len(data) // pieces)
    for i in range(0, len(data), step):
        yield data[i : i + step]
        time.sleep(pause)


def test_gc_on_one_replica_while_the_others_upload(cluster: Cluster) -> None:
    a, b, c = cluster.replicas
    runs_before = len(gc_runs(c))
    bucket = f"gc-{uuid.uuid4().hex[:8]}"
    s3a, s3b = cluster.s3(0), cluster.s3(1)
    s3a.create_bucket(Bucket=bucket)
    # An orphan GC must collect: an object written, then deleted.
    doomed = os.urandom(70_000)
    s3a.put_object(Bucket=bucket, Key="doomed", Body=doomed)
    s3a.delete_object(Bucket=bucket, Key="doomed")
    doomed_key = f"{cluster.prefix}/blobs/sha256/{sha256(doomed)[7:]}"
    assert doomed_key in cluster.keys("blobs/")

    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    stream_body = os.urandom(12 * MiB)
    chunked = [os.urandom(600_000 + i) for i in range(6)]
    slow_patch = os.urandom(6 * MiB)
    mpu_parts = [os.urandom(5 * MiB), os.urandom(1000)]
    bearer = registry_token(a, "scale/gc")

    def streaming_put() -> None:  # one PUT streaming for ~2 x gcDelay, to replica a
        with httpx.Client(base_url=a.url, auth=ROOT, timeout=120) as ca:
            r = ca.put(
                f"/v1/buckets/{bucket}/objects/stream.bin",
                content=slow_body(stream_body, 24, 2 * GC_DELAY / 24),
            )
            results["stream"] = r.status_code

    def chunked_push() -> None:  # an OCI session that stays busy longer than gcDelay, on b
        with httpx.Client(base_url=b.url, headers=bearer, timeout=120) as cb:
            location = cb.post("/v2/scale/gc/blobs/uploads/").headers["location"]
            offset = 0
            for chunk in chunked:
                time.sleep(GC_DELAY / 3)
                end = offset + len(chunk) - 1
                r = cb.patch(location, content=chunk, headers={"Content-Range": f"{offset}-{end}"})
                assert r.status_code == 202, r.text
                location, offset = r.headers["location"], end + 1
            # One more PATCH that itself streams for longer than gcDelay.
            end = offset + len(slow_patch) - 1
            r = cb.patch(
                location,
                content=slow_body(slow_patch, 12, 1.5 * GC_DELAY / 12),
                headers={"Content-Range": f"{offset}-{end}"},
            )
            assert r.status_code == 202, r.text
            whole = b"".join(chunked) + slow_patch
            r = cb.put(r.headers["location"], params={"digest": sha256(whole)})
            results["chunked"] = (r.status_code, r.text)

    def multipart_with_a_pause() -> None:  # parts a gcDelay apart, through a then b
        up = s3a.create_multipart_upload(Bucket=bucket, Key="mpu.bin")["UploadId"]
        e1 = s3a.upload_part(
            Bucket=bucket, Key="mpu.bin", UploadId=up, PartNumber=1, Body=mpu_parts[0]
        )
        time.sleep(2 * GC_DELAY)
        e2 = s3b.upload_part(
            Bucket=bucket, Key="mpu.bin", UploadId=up, PartNumber=2, Body=mpu_parts[1]
        )
        s3b.complete_multipart_upload(
            Bucket=bucket, Key="mpu.bin", UploadId=up,
            MultipartUpload={"Parts": [{"ETag": e1["ETag"], "PartNumber": 1},
                                       {"ETag": e2["ETag"], "PartNumber": 2}]},
        )  # fmt: skip
        results["mpu"] = True

    def guarded(fn: Any) -> Any:
        def run_it() -> None:
            try:
                fn()
            except BaseException as exc:  # reported below, with the others
                errors.append(exc)

        return threading.Thread(target=run_it, daemon=True)

    threads = [guarded(f) for f in (streaming_put, chunked_push, multipart_with_a_pause)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "an upload hung"
    assert not errors, errors
    assert results["stream"] in (200, 201)
    assert results["chunked"][0] == 201, results["chunked"]
    assert results["mpu"]

    # Garbage collection ran on c meanwhile, and it did collect what was garbage ...
    deadline = time.monotonic() + 30
    while doomed_key in cluster.keys("blobs/"):
        assert time.monotonic() < deadline, "GC never collected the orphan"
        time.sleep(0.5)
    assert len(gc_runs(c)) - runs_before >= 5
    # ... but nothing that was in flight: every upload reads back whole, through each replica.
    whole = b"".join(chunked) + slow_patch
    for i, server in enumerate(cluster.replicas):
        s3 = cluster.s3(i)
        assert s3.get_object(Bucket=bucket, Key="stream.bin")["Body"].read() == stream_body
        assert s3.get_object(Bucket=bucket, Key="mpu.bin")["Body"].read() == b"".join(mpu_parts)
        got = httpx.get(f"{server.url}/v2/scale/gc/blobs/{sha256(whole)}", headers=bearer)
        assert got.status_code == 200 and got.content == whole
    # And once GC has run again, still there (they are referenced now, or young).
    time.sleep(GC_DELAY + 2)
    assert s3b.head_object(Bucket=bucket, Key="stream.bin")["ContentLength"] == len(stream_body)


# ---- a replica killed mid-upload; the client retries on another -------------------------------
def test_a_replica_killed_mid_upload_the_client_retries_on_another(cluster: Cluster) -> None:
    doomed = cluster.replica("d")
    a = cluster.replicas[0]
    bucket = f"kill-{uuid.uuid4().hex[:8]}"
    cluster.s3(0).create_bucket(Bucket=bucket)
    body = os.urandom(16 * MiB)
    sent, killed = threading.Event(), threading.Event()

    def body_then_stall() -> Iterator[bytes]:
        for i in range(0, 8 * MiB, MiB):  # half the body, then the replica dies
            yield body[i : i + MiB]
        sent.set()
        killed.wait(30)
        yield body[8 * MiB :]

    failure: list[BaseException] = []

    def doomed_put() -> None:
        try:
            with httpx.Client(base_url=doomed.url, auth=ROOT, timeout=60) as cd:
                cd.put(
                    f"/v1/buckets/{bucket}/objects/release.bin",
                    content=body_then_stall(),
                    headers={"Content-Length": str(len(body))},
                )
        except httpx.HTTPError as exc:
            failure.append(exc)

    t = threading.Thread(target=doomed_put, daemon=True)
    t.start()
    assert sent.wait(60), "the first half was never sent"
    time.sleep(0.5)  # let the replica write some of it to the bucket
    doomed.kill()
    killed.set()
    t.join(timeout=60)
    assert not t.is_alive() and failure, "the cut upload should have failed on the client"

    # Nothing partial is visible through any surviving replica.
    with pytest.raises(ClientError) as exc:
        cluster.s3(1).head_object(Bucket=bucket, Key="release.bin")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert cluster.s3(2).list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0

    # The client retries on a; it succeeds and every replica serves the whole object.
    with httpx.Client(base_url=a.url, auth=ROOT, timeout=60) as ca:
        r = ca.put(f"/v1/buckets/{bucket}/objects/release.bin", content=body)
        assert r.status_code in (200, 201), r.text
    for i in range(3):
        got = cluster.s3(i).get_object(Bucket=bucket, Key="release.bin")
        assert got["ContentLength"] == len(body) and got["Body"].read() == body
    listed = cluster.s3(1).list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("release.bin", len(body))]
    # No committed blob in the bucket is anything but complete content under its own name.
    for key, size in cluster.keys("blobs/").items():
        if size == 8 * MiB or size == len(body):
            data = cluster.raw().get_object(Bucket=cluster.moto.bucket, Key=key)["Body"].read()
            assert hashlib.sha256(data).hexdigest() == key.rsplit("/", 1)[1]


def test_an_oci_upload_cut_by_a_killed_replica_resumes_on_another(cluster: Cluster) -> None:
    doomed = cluster.replica("e")
    a = cluster.replicas[0]
    repo = "scale/resume"
    bearer = registry_token(a, repo)
    first, rest = os.urandom(3 * MiB), os.urandom(9 * MiB + 1)
    with httpx.Client(base_url=doomed.url, headers=bearer, timeout=60) as cd:
        location = cd.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        r = cd.patch(location, content=first, headers={"Content-Range": f"0-{len(first) - 1}"})
        assert r.status_code == 202, r.text
        location = r.headers["location"]
    path = urlsplit(location)
    location = path.path + (f"?{path.query}" if path.query else "")
    sent, killed = threading.Event(), threading.Event()

    def stalled_patch() -> None:
        def gen() -> Iterator[bytes]:
            yield rest[: 4 * MiB]
            sent.set()
            killed.wait(30)
            yield rest[4 * MiB :]

        end = len(first) + len(rest) - 1
        with (
            httpx.Client(base_url=doomed.url, headers=bearer, timeout=60) as cd,
            pytest.raises(httpx.HTTPError),
        ):
            cd.patch(location, content=gen(), headers={"Content-Range": f"{len(first)}-{end}"})

    t = threading.Thread(target=stalled_patch, daemon=True)
    t.start()
    assert sent.wait(60)
    time.sleep(0.5)
    doomed.kill()
    killed.set()
    t.join(timeout=60)
    assert not t.is_alive()

    # Another replica knows exactly what the session holds; the client resumes from there.
    with httpx.Client(base_url=a.url, headers=bearer, timeout=60) as ca:
        r = ca.get(location)
        assert r.status_code == 204, r.text
        done = int(r.headers["range"].split("-")[1]) + 1
        assert done == len(first)  # the cut PATCH added nothing (an append is all or nothing)
        whole = first + rest
        end = len(whole) - 1
        r = ca.patch(location, content=whole[done:], headers={"Content-Range": f"{done}-{end}"})
        assert r.status_code == 202, r.text
        r = ca.put(r.headers["location"], params={"digest": sha256(whole)})
        assert r.status_code == 201, r.text
        for server in cluster.replicas:
            got = httpx.get(f"{server.url}/v2/{repo}/blobs/{sha256(whole)}", headers=bearer)
            assert got.status_code == 200 and got.content == whole
