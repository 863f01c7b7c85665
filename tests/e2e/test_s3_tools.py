"""awscli, s3cmd and rclone against the S3 API; every round trip checked by sha256."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ACCESS_KEY, SECRET_KEY, run, tool
from tests.fixtures.server import ServerProcess

MiB = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def make_tree(root: Path) -> dict[str, str]:
    """A directory tree with nested dirs, odd names and an empty file; relpath → sha256."""
    files = {
        "a.txt": b"alpha\n",
        "nested/deeper/b.bin": os.urandom(300_000),
        "nested/c d+e.txt": b"spaces and plus",
        "ünïcode/ß.txt": "grüße".encode(),
        "empty": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---- awscli ---------------------------------------------------------------------------------
def aws_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }


def aws(server: ServerProcess, home: Path, *args: str) -> str:
    return run([tool("aws"), "--endpoint-url", server.url, *args], aws_env(home))


def test_awscli_cp_multipart_sync_list_presign(
    s3_server: ServerProcess, home: Path, tmp_path: Path
) -> None:
    bucket = f"aws-{uuid.uuid4().hex[:10]}"
    aws(s3_server, home, "s3", "mb", f"s3://{bucket}")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(64 * MiB))
    aws(s3_server, home, "s3", "cp", str(big), f"s3://{bucket}/big.bin")
    head = json.loads(
        aws(s3_server, home, "s3api", "head-object", "--bucket", bucket, "--key", "big.bin")
    )
    assert head["ContentLength"] == 64 * MiB
    assert "-" in head["ETag"], "a 64 MiB cp should have gone multipart"
    back = tmp_path / "back.bin"
    aws(s3_server, home, "s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert sha256_file(back) == sha256_file(big)

    src = tmp_path / "tree"
    expected = make_tree(src)
    aws(s3_server, home, "s3", "sync", str(src), f"s3://{bucket}/tree/")
    dst = tmp_path / "tree-back"
    aws(s3_server, home, "s3", "sync", f"s3://{bucket}/tree/", str(dst))
    assert tree_hashes(dst) == expected
    # A second sync has nothing to do.
    assert aws(s3_server, home, "s3", "sync", str(src), f"s3://{bucket}/tree/").strip() == ""

    listing = json.loads(
        aws(
            s3_server,
            home,
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            "tree/",
            "--delimiter",
            "/",
        )
    )
    assert sorted(o["Key"] for o in listing["Contents"]) == ["tree/a.txt", "tree/empty"]
    assert sorted(p["Prefix"] for p in listing["CommonPrefixes"]) == [
        "tree/nested/",
        "tree/ünïcode/",
    ]

    url = aws(
        s3_server, home, "s3", "presign", f"s3://{bucket}/tree/a.txt", "--expires-in", "300"
    ).strip()
    r = subprocess.run(["curl", "-sf", url], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == b"alpha\n"

    aws(s3_server, home, "s3", "rm", "--recursive", f"s3://{bucket}/")
    aws(s3_server, home, "s3", "rb", f"s3://{bucket}")


def test_awscli_versioning_overwrite_list_and_restore(
    s3_server: ServerProcess, home: Path, tmp_path: Path
) -> None:
    """Enable versioning, overwrite, list the versions, read and restore the old one (a copy
    of that version over the key), delete (a marker) and undelete (remove the marker)."""
    bucket = f"awsver-{uuid.uuid4().hex[:10]}"
    aws(s3_server, home, "s3", "mb", f"s3://{bucket}")
    aws(s3_server, home, "s3api", "put-bucket-versioning", "--bucket", bucket,
        "--versioning-configuration", "Status=Enabled")  # fmt: skip
    status = json.loads(aws(s3_server, home, "s3api", "get-bucket-versioning", "--bucket", bucket))
    assert status["Status"] == "Enabled"
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_bytes(b"release 1.0\n")
    new.write_bytes(b"release 1.1\n")
    aws(s3_server, home, "s3", "cp", str(old), f"s3://{bucket}/app.txt")
    aws(s3_server, home, "s3", "cp", str(new), f"s3://{bucket}/app.txt")
    listing = json.loads(aws(s3_server, home, "s3api", "list-object-versions", "--bucket", bucket))
    versions = listing["Versions"]
    assert [v["IsLatest"] for v in versions] == [True, False]
    assert [v["Size"] for v in versions] == [len(b"release 1.1\n"), len(b"release 1.0\n")]
    first = versions[1]["VersionId"]
    back = tmp_path / "back.txt"
    aws(s3_server, home, "s3api", "get-object", "--bucket", bucket, "--key", "app.txt",
        "--version-id", first, str(back))  # fmt: skip
    assert back.read_bytes() == b"release 1.0\n"
    restored = json.loads(
        aws(
            s3_server,
            home,
            "s3api",
            "copy-object",
            "--bucket",
            bucket,
            "--key",
            "app.txt",
            "--copy-source",
            f"{bucket}/app.txt?versionId={first}",
        )
    )
    assert restored["CopySourceVersionId"] == first
    aws(s3_server, home, "s3", "cp", f"s3://{bucket}/app.txt", str(back))
    assert back.read_bytes() == b"release 1.0\n"
    # aws s3 rm adds a delete marker; removing the marker brings the object back.
    aws(s3_server, home, "s3", "rm", f"s3://{bucket}/app.txt")
    assert "app.txt" not in aws(s3_server, home, "s3", "ls", f"s3://{bucket}/")
    listing = json.loads(aws(s3_server, home, "s3api", "list-object-versions", "--bucket", bucket))
    assert len(listing["Versions"]) == 3 and listing["DeleteMarkers"][0]["IsLatest"] is True
    marker = listing["DeleteMarkers"][0]["VersionId"]
    aws(s3_server, home, "s3api", "delete-object", "--bucket", bucket, "--key", "app.txt",
        "--version-id", marker)  # fmt: skip
    aws(s3_server, home, "s3", "cp", f"s3://{bucket}/app.txt", str(back))
    assert back.read_bytes() == b"release 1.0\n"
    # Not empty while versions remain.
    assert "BucketNotEmpty" in aws_refused(s3_server, home, "s3", "rb", f"s3://{bucket}")


def test_awscli_legal_hold_refuses_deletion_and_the_bytes_survive(
    s3_server: ServerProcess, home: Path, tmp_path: Path
) -> None:
    """A bucket with Object Lock; a legal hold on a release; deleting that version is refused
    (AccessDenied naming the lock), a plain delete only adds a marker, and the bytes read back
    by version id are the original; releasing the hold lets the version go."""
    bucket = f"awslock-{uuid.uuid4().hex[:10]}"
    aws(s3_server, home, "s3api", "create-bucket", "--bucket", bucket,
        "--object-lock-enabled-for-bucket")  # fmt: skip
    release = tmp_path / "release.tar"
    release.write_bytes(os.urandom(200_000))
    put = json.loads(
        aws(
            s3_server,
            home,
            "s3api",
            "put-object",
            "--bucket",
            bucket,
            "--key",
            "release.tar",
            "--body",
            str(release),
        )
    )
    version = put["VersionId"]
    obj = ["--bucket", bucket, "--key", "release.tar", "--version-id", version]
    aws(s3_server, home, "s3api", "put-object-legal-hold", *obj, "--legal-hold", "Status=ON")
    hold = json.loads(aws(s3_server, home, "s3api", "get-object-legal-hold", *obj))
    assert hold["LegalHold"] == {"Status": "ON"}
    stderr = aws_refused(s3_server, home, "s3api", "delete-object", *obj)
    assert "AccessDenied" in stderr and "legal hold" in stderr, stderr
    aws(s3_server, home, "s3", "rm", f"s3://{bucket}/release.tar")  # a delete marker only
    back = tmp_path / "back.tar"
    aws(s3_server, home, "s3api", "get-object", *obj, str(back))
    assert sha256_file(back) == sha256_file(release)
    aws(s3_server, home, "s3api", "put-object-legal-hold", *obj, "--legal-hold", "Status=OFF")
    aws(s3_server, home, "s3api", "delete-object", *obj)
    versions = json.loads(aws(s3_server, home, "s3api", "list-object-versions", "--bucket", bucket))
    assert "Versions" not in versions and len(versions["DeleteMarkers"]) == 1


def test_awscli_bucket_settings_cors_public_access_policy_and_lifecycle(
    s3_server: ServerProcess, home: Path
) -> None:
    """The bucket settings artifact users set with awscli, each read back as set and acting
    as AWS documents: CORS answers a browser's preflight; a PublicAccessBlock refuses a public
    ACL and then a public policy; a policy with a condition shows IsPublic; lifecycle rules
    keep their NewerNoncurrentVersions and ExpiredObjectDeleteMarker."""
    bucket = f"awsset-{uuid.uuid4().hex[:10]}"
    b = ["--bucket", bucket]
    aws(s3_server, home, "s3api", "create-bucket", *b)
    cors = {
        "CORSRules": [
            {
                "AllowedOrigins": ["https://ui.example.com"],
                "AllowedMethods": ["GET", "PUT"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 600,
            }
        ]
    }
    aws(s3_server, home, "s3api", "put-bucket-cors", *b, "--cors-configuration", json.dumps(cors))
    got = json.loads(aws(s3_server, home, "s3api", "get-bucket-cors", *b))
    assert got["CORSRules"][0]["AllowedOrigins"] == ["https://ui.example.com"]
    preflight = httpx.options(
        f"{s3_server.url}/{bucket}/k",
        headers={
            "Origin": "https://ui.example.com",
            "Access-Control-Request-Method": "PUT",
        },
        timeout=30,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ui.example.com"
    other = httpx.options(
        f"{s3_server.url}/{bucket}/k",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
        timeout=30,
    )
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers

    public_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/public/*",
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/release": "yes"}},
            }
        ],
    }
    aws(s3_server, home, "s3api", "put-bucket-policy", *b, "--policy", json.dumps(public_policy))
    status = json.loads(aws(s3_server, home, "s3api", "get-bucket-policy-status", *b))
    assert status["PolicyStatus"]["IsPublic"] is True
    aws(s3_server, home, "s3api", "delete-bucket-policy", *b)
    settings = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    block = ",".join(f"{name}=true" for name in settings)
    aws(s3_server, home, "s3api", "put-public-access-block", *b,
        "--public-access-block-configuration", block)  # fmt: skip
    got = json.loads(aws(s3_server, home, "s3api", "get-public-access-block", *b))
    assert all(got["PublicAccessBlockConfiguration"].values())
    stderr = aws_refused(s3_server, home, "s3api", "put-bucket-acl", *b, "--acl", "public-read")
    assert "AccessDenied" in stderr, stderr
    stderr = aws_refused(
        s3_server, home, "s3api", "put-bucket-policy", *b, "--policy", json.dumps(public_policy)
    )
    assert "AccessDenied" in stderr, stderr
    stderr = aws_refused(s3_server, home, "s3api", "get-bucket-policy-status", *b)
    assert "NoSuchBucketPolicy" in stderr, stderr  # the public policy was not stored

    aws(s3_server, home, "s3api", "put-bucket-versioning", *b,
        "--versioning-configuration", "Status=Enabled")  # fmt: skip
    rules = {
        "Rules": [
            {
                "ID": "keep-three-builds",
                "Status": "Enabled",
                "Filter": {"Prefix": "builds/"},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 3},
            },
            {
                "ID": "tidy-markers",
                "Status": "Enabled",
                "Filter": {},
                "Expiration": {"ExpiredObjectDeleteMarker": True},
            },
        ]
    }
    aws(s3_server, home, "s3api", "put-bucket-lifecycle-configuration", *b,
        "--lifecycle-configuration", json.dumps(rules))  # fmt: skip
    got = json.loads(aws(s3_server, home, "s3api", "get-bucket-lifecycle-configuration", *b))
    by_id = {r["ID"]: r for r in got["Rules"]}
    assert by_id["keep-three-builds"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": 7,
        "NewerNoncurrentVersions": 3,
    }
    assert by_id["tidy-markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}


# ---- s3cmd ----------------------------------------------------------------------------------
def s3cmd(server: ServerProcess, home: Path, *args: str) -> str:
    hostport = server.url.removeprefix("http://")
    cfg = home / ".s3cfg"
    if not cfg.exists():
        cfg.write_text(
            "[default]\n"
            f"access_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n"
            f"host_base = {hostport}\nhost_bucket = {hostport}\n"
            "use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n"
        )
    return run([tool("s3cmd"), "-c", str(cfg), *args], {"HOME": str(home)})


def test_s3cmd_put_get_ls_del_multipart(
    s3_server: ServerProcess, home: Path, tmp_path: Path
) -> None:
    bucket = f"s3cmd-{uuid.uuid4().hex[:10]}"
    s3cmd(s3_server, home, "mb", f"s3://{bucket}")
    small = tmp_path / "small.txt"
    small.write_bytes(b"s3cmd small file\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(17 * MiB))
    s3cmd(s3_server, home, "put", str(small), f"s3://{bucket}/dir/small.txt")
    s3cmd(s3_server, home, "put", "--multipart-chunk-size-mb=5", str(big), f"s3://{bucket}/big.bin")
    out = s3cmd(s3_server, home, "ls", "--recursive", f"s3://{bucket}")
    assert f"s3://{bucket}/dir/small.txt" in out and f"s3://{bucket}/big.bin" in out
    for name, src in (("dir/small.txt", small), ("big.bin", big)):
        dest = tmp_path / f"got-{src.name}"
        s3cmd(s3_server, home, "get", f"s3://{bucket}/{name}", str(dest))
        assert sha256_file(dest) == sha256_file(src)
    s3cmd(s3_server, home, "del", f"s3://{bucket}/big.bin")
    out = s3cmd(s3_server, home, "ls", "--recursive", f"s3://{bucket}")
    assert "big.bin" not in out and "small.txt" in out


# ---- rclone ---------------------------------------------------------------------------------
def rclone(server: ServerProcess, home: Path, *args: str) -> str:
    env = {
        "HOME": str(home),
        "RCLONE_CONFIG_ZAS_TYPE": "s3",
        "RCLONE_CONFIG_ZAS_PROVIDER": "Other",
        "RCLONE_CONFIG_ZAS_ACCESS_KEY_ID": ACCESS_KEY,
        "RCLONE_CONFIG_ZAS_SECRET_ACCESS_KEY": SECRET_KEY,
        "RCLONE_CONFIG_ZAS_ENDPOINT": server.url,
        "RCLONE_CONFIG_ZAS_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_ZAS_REGION": "us-east-1",
    }
    return run([tool("rclone"), "--config", str(home / "rclone.conf"), *args], env)


def test_rclone_copy_sync_check(s3_server: ServerProcess, home: Path, tmp_path: Path) -> None:
    bucket = f"rclone-{uuid.uuid4().hex[:10]}"
    rclone(s3_server, home, "mkdir", f"zas:{bucket}")
    src = tmp_path / "tree"
    expected = make_tree(src)
    (src / "large.bin").write_bytes(os.urandom(12 * MiB))
    expected["large.bin"] = sha256_file(src / "large.bin")
    rclone(s3_server, home, "copy", str(src), f"zas:{bucket}/r")
    rclone(s3_server, home, "check", str(src), f"zas:{bucket}/r")
    (src / "a.txt").unlink()
    (src / "new.txt").write_bytes(b"new file")
    del expected["a.txt"]
    expected["new.txt"] = hashlib.sha256(b"new file").hexdigest()
    rclone(s3_server, home, "sync", str(src), f"zas:{bucket}/r")
    rclone(s3_server, home, "check", str(src), f"zas:{bucket}/r")
    back = tmp_path / "back"
    rclone(s3_server, home, "copy", f"zas:{bucket}/r", str(back))
    assert tree_hashes(back) == expected
    listed = rclone(s3_server, home, "lsf", "--recursive", f"zas:{bucket}/r").split("\n")
    assert "a.txt" not in listed and "new.txt" in listed
    with httpx.Client(base_url=s3_server.url) as c:  # unsigned: refused
        r = c.get(f"/{bucket}/r/new.txt")
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text


@pytest.fixture(autouse=True)
def _curl_present() -> None:
    tool("curl")


def aws_refused(server: ServerProcess, home: Path, *args: str) -> str:
    """Run awscli expecting it to fail; its stderr."""
    cmd = [tool("aws"), "--endpoint-url", server.url, *args]
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **aws_env(home)}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, f"{' '.join(args)} succeeded:\n{result.stdout}"
    return result.stderr


def test_awscli_sub_resources_never_touch_the_artifact(
    s3_server: ServerProcess, home: Path, tmp_path: Path
) -> None:
    """The issue's reproduction: tagging, legal hold and retention calls replaced the
    object's bytes, DeleteObjectTagging deleted it, DeleteBucketAnalyticsConfiguration (and
    metrics, inventory, intelligent-tiering) deleted the bucket. Each is now 501
    NotImplemented naming the operation — or, for the ones implemented since (object tagging,
    GetObjectAttributes, legal hold and retention), answers as AWS does — and the object and
    the buckets are as they were."""
    bucket, empty = f"sub-{uuid.uuid4().hex[:10]}", f"empty-{uuid.uuid4().hex[:10]}"
    orig = tmp_path / "orig.txt"
    orig.write_bytes(b"original-content\n")
    aws(s3_server, home, "s3", "mb", f"s3://{bucket}")
    aws(s3_server, home, "s3", "mb", f"s3://{empty}")
    aws(s3_server, home, "s3", "cp", str(orig), f"s3://{bucket}/k.txt")
    obj = ["--bucket", bucket, "--key", "k.txt"]
    # Implemented since: on a bucket without Object Lock, AWS's InvalidRequest.
    for args in (
        ["put-object-legal-hold", *obj, "--legal-hold", "Status=ON"],
        [
            "put-object-retention",
            *obj,
            "--retention",
            "Mode=GOVERNANCE,RetainUntilDate=2030-01-01T00:00:00Z",
        ],
    ):
        stderr = aws_refused(s3_server, home, "s3api", *args)
        assert "InvalidRequest" in stderr and "Object Lock" in stderr, stderr
    calls = {
        **{
            f"DeleteBucket{kind}Configuration": [
                f"delete-bucket-{cli}-configuration",
                "--bucket",
                empty,
                "--id",
                "x",
            ]
            for kind, cli in (
                ("Analytics", "analytics"),
                ("Metrics", "metrics"),
                ("Inventory", "inventory"),
                ("IntelligentTiering", "intelligent-tiering"),
            )
        },
    }
    for operation, args in calls.items():
        stderr = aws_refused(s3_server, home, "s3api", *args)
        assert "NotImplemented" in stderr and operation in stderr, stderr
    # Implemented since: tags are set, read and removed; attributes answer; the bytes stay.
    aws(s3_server, home, "s3api", "put-object-tagging", *obj, "--tagging",
        "TagSet=[{Key=a,Value=b}]")  # fmt: skip
    tags = json.loads(aws(s3_server, home, "s3api", "get-object-tagging", *obj))
    assert tags["TagSet"] == [{"Key": "a", "Value": "b"}]
    head = json.loads(aws(s3_server, home, "s3api", "head-object", *obj))
    attributes = json.loads(aws(s3_server, home, "s3api", "get-object-attributes", *obj,
                                "--object-attributes", "ETag", "ObjectSize"))  # fmt: skip
    assert attributes["ObjectSize"] == len(b"original-content\n")
    assert attributes["ETag"] == head["ETag"].strip('"')
    aws(s3_server, home, "s3api", "delete-object-tagging", *obj)
    assert json.loads(aws(s3_server, home, "s3api", "get-object-tagging", *obj))["TagSet"] == []
    out = tmp_path / "out.txt"
    aws(s3_server, home, "s3", "cp", f"s3://{bucket}/k.txt", str(out))
    assert out.read_bytes() == b"original-content\n"
    listing = aws(s3_server, home, "s3", "ls")
    assert bucket in listing and empty in listing
