"""S3 POST Object (browser form uploads) with authentication on, on both metadata backends:
forms made by boto3's ``generate_presigned_post`` and sent by httpx and by the real ``curl -F``;
the policy's conditions (``eq``, ``starts-with``, ``content-length-range``, ``bucket``, ``key``
with ``${filename}``), ``success_action_status`` / ``success_action_redirect``; and every
refusal (bad signature, expired policy, a condition broken, too large, an extra field) an S3
XML error that stores nothing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.browser import run_page
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

BODY = b"built by the browser\n" * 100


@pytest.fixture(scope="module")
def s3(auth_server: ServerProcess) -> BaseClient:
    """Forms signed with SigV4 (x-amz-algorithm, x-amz-credential, x-amz-date, x-amz-signature)."""
    return s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD, signature_version="s3v4")


@pytest.fixture
def bucket(s3: BaseClient) -> Iterator[str]:
    name = f"post-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name


def listed(s3: BaseClient, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def send(post: dict[str, Any], body: bytes = BODY, filename: str = "app.tar.gz") -> httpx.Response:
    files = {"file": (filename, body, "application/gzip")}
    return httpx.post(post["url"], data=post["fields"], files=files)


def error(r: httpx.Response) -> tuple[int, str, str]:
    root = ET.fromstring(r.content)
    return r.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def test_a_boto3_form_uploads_streamed_with_sha256(
    auth_server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    post = s3.generate_presigned_post(bucket, "builds/app.tar.gz", ExpiresIn=300)
    assert {"x-amz-algorithm", "x-amz-credential", "x-amz-signature"} <= set(post["fields"])
    r = send(post)
    assert r.status_code == 204, r.text
    md5 = hashlib.md5(BODY).hexdigest()
    assert r.headers["ETag"] == f'"{md5}"'
    assert r.headers["Location"].endswith(f"/{bucket}/builds/app.tar.gz")
    got = s3.get_object(Bucket=bucket, Key="builds/app.tar.gz")
    assert got["Body"].read() == BODY and got["ContentType"] == "application/gzip"
    # The same artifact /v1 shows, with its sha256.
    with auth_server.client(auth=(ROOT_USER, ROOT_PASSWORD)) as c:
        meta = c.get(f"/v1/buckets/{bucket}/objects/builds/app.tar.gz", params={"metadata": "true"})
        assert meta.status_code == 200, meta.text
        assert meta.json()["sha256"] == hashlib.sha256(BODY).hexdigest()


def test_conditions_and_success_answers(s3: BaseClient, bucket: str) -> None:
    fields = {
        "success_action_status": "201",
        "Content-Type": "text/plain",
        "x-amz-meta-build": "42",
        "acl": "public-read",
    }
    conditions: list[Any] = [
        {"success_action_status": "201"},
        ["starts-with", "$Content-Type", "text/"],
        ["eq", "$x-amz-meta-build", "42"],
        {"acl": "public-read"},
        ["starts-with", "$key", "uploads/"],
        ["content-length-range", 1, 10_000],
    ]
    post = s3.generate_presigned_post(
        bucket, "uploads/${filename}", Fields=fields, Conditions=conditions, ExpiresIn=300
    )
    r = send(post, filename="report.txt")
    assert r.status_code == 201, r.text
    answer = ET.fromstring(r.content)
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    assert answer.findtext("s3:Key", namespaces=ns) == "uploads/report.txt"
    assert answer.findtext("s3:Bucket", namespaces=ns) == bucket
    head = s3.head_object(Bucket=bucket, Key="uploads/report.txt")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"build": "42"}
    # public-read: anonymous clients may read it.
    assert httpx.get(r.headers["Location"]).content == BODY
    # success_action_redirect: 303 to it with bucket, key and ETag.
    post = s3.generate_presigned_post(
        bucket,
        "uploads/r.bin",
        Fields={"success_action_redirect": "https://ui.example.com/done?x=1"},
        Conditions=[{"success_action_redirect": "https://ui.example.com/done?x=1"}],
        ExpiresIn=300,
    )
    r = send(post)
    assert r.status_code == 303, r.text
    assert r.headers["Location"].startswith(
        f"https://ui.example.com/done?x=1&bucket={bucket}&key=uploads%2Fr.bin&etag=%22"
    )


def _refused(s3: BaseClient, bucket: str, r: httpx.Response, status: int, code: str) -> str:
    got_status, got_code, message = error(r)
    assert (got_status, got_code) == (status, code), r.text
    assert listed(s3, bucket) == []  # nothing stored
    return message


def test_a_bad_signature_is_refused(s3: BaseClient, bucket: str) -> None:
    post = s3.generate_presigned_post(bucket, "k.bin", ExpiresIn=300)
    post["fields"]["x-amz-signature"] = "0" * 64
    _refused(s3, bucket, send(post), 403, "SignatureDoesNotMatch")
    # A policy changed after signing: its signature no longer matches.
    post = s3.generate_presigned_post(bucket, "k.bin", ExpiresIn=300)
    doc = json.loads(base64.b64decode(post["fields"]["policy"]))
    doc["conditions"].append(["content-length-range", 0, 10**12])
    post["fields"]["policy"] = base64.b64encode(json.dumps(doc).encode()).decode()
    _refused(s3, bucket, send(post), 403, "SignatureDoesNotMatch")
    wrong_key = s3_client(
        s3.meta.endpoint_url, ROOT_USER, "not-the-password", signature_version="s3v4"
    )
    post = wrong_key.generate_presigned_post(bucket, "k.bin", ExpiresIn=300)
    _refused(s3, bucket, send(post), 403, "SignatureDoesNotMatch")


def test_an_expired_policy_is_refused(s3: BaseClient, bucket: str) -> None:
    post = s3.generate_presigned_post(bucket, "k.bin", ExpiresIn=-60)
    message = _refused(s3, bucket, send(post), 403, "AccessDenied")
    assert "Policy expired" in message


@pytest.mark.parametrize(
    "fields, conditions, key, says",
    [
        ({}, [["starts-with", "$key", "uploads/"]], "other/k.bin", '"$key", "uploads/"'),
        (
            {"Content-Type": "text/html"},
            [["starts-with", "$Content-Type", "image/"]],
            "k",
            "image/",
        ),
        ({"x-amz-meta-build": "7"}, [{"x-amz-meta-build": "42"}], "k", "x-amz-meta-build"),
        ({"x-amz-meta-extra": "1"}, [], "k", "Extra input fields: x-amz-meta-extra"),
    ],
    ids=["key-prefix", "content-type", "eq", "extra-field"],
)
def test_a_broken_condition_is_refused(
    s3: BaseClient, bucket: str, fields: dict, conditions: list, key: str, says: str
) -> None:
    post = s3.generate_presigned_post(
        bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=300
    )
    if key.startswith("other/"):  # the form names a key outside the policy's prefix
        post = s3.generate_presigned_post(
            bucket, "uploads/k.bin", Conditions=conditions, ExpiresIn=300
        )
        post["fields"]["key"] = key
        doc = json.loads(base64.b64decode(post["fields"]["policy"]))
        assert ["starts-with", "$key", "uploads/"] in doc["conditions"]
    message = _refused(s3, bucket, send(post), 403, "AccessDenied")
    assert says in message, message


def test_content_length_range(s3: BaseClient, bucket: str) -> None:
    post = s3.generate_presigned_post(
        bucket, "k.bin", Conditions=[["content-length-range", 10, 1000]], ExpiresIn=300
    )
    assert "EntityTooLarge" in error(send(post, b"x" * 5000))[1]
    assert listed(s3, bucket) == []
    assert _refused(s3, bucket, send(post, b"tiny"), 400, "EntityTooSmall")
    # Larger than a read chunk: refused while it streams, nothing left behind.
    big = s3.generate_presigned_post(
        bucket, "big.bin", Conditions=[["content-length-range", 0, 1 << 20]], ExpiresIn=300
    )
    r = send(big, b"y" * (3 << 20))
    assert error(r)[1] == "EntityTooLarge" and listed(s3, bucket) == []
    assert send(post, b"z" * 500).status_code == 204
    assert listed(s3, bucket) == ["k.bin"]


def test_malformed_forms(auth_server: ServerProcess, s3: BaseClient, bucket: str) -> None:
    post = s3.generate_presigned_post(bucket, "k.bin", ExpiresIn=300)
    no_key = {k: v for k, v in post["fields"].items() if k != "key"}
    r = httpx.post(post["url"], data=no_key, files={"file": ("a", b"a")})
    assert "field named 'key'" in _refused(s3, bucket, r, 400, "InvalidArgument")
    r = httpx.post(post["url"], data=post["fields"], files={"other": ("a", b"a")})
    assert "exactly one file" in _refused(s3, bucket, r, 400, "InvalidArgument")
    bad_policy = {**post["fields"], "policy": "not base64!"}
    r = httpx.post(post["url"], data=bad_policy, files={"file": ("a", b"a")})
    _refused(s3, bucket, r, 400, "InvalidPolicyDocument")
    # Without a policy the form is anonymous: refused unless the bucket lets anyone write.
    r = httpx.post(post["url"], data={"key": "k.bin"}, files={"file": ("a", b"a")})
    _refused(s3, bucket, r, 403, "AccessDenied")
    missing = post["url"].replace(bucket, f"post-none-{uuid.uuid4().hex[:8]}")
    r = httpx.post(missing, data=post["fields"], files={"file": ("a", b"a")})
    assert error(r)[:2] == (404, "NoSuchBucket")


def test_curl_uploads_a_file(s3: BaseClient, bucket: str, tmp_path: Path) -> None:
    """The real curl -F, as a shell script or a CI step would send the form."""
    artifact = tmp_path / "app.whl"
    artifact.write_bytes(BODY * 50)
    post = s3.generate_presigned_post(
        bucket,
        "dist/${filename}",
        Conditions=[["starts-with", "$key", "dist/"], ["content-length-range", 1, 1 << 20]],
        ExpiresIn=300,
    )
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"]
    for name, value in post["fields"].items():
        command += ["-F", f"{name}={value}"]
    command += ["-F", f"file=@{artifact}", post["url"]]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout == "204", out.stderr
    assert s3.get_object(Bucket=bucket, Key="dist/app.whl")["Body"].read() == BODY * 50


def test_the_clock(s3: BaseClient, bucket: str) -> None:
    """x-amz-date in the future (beyond the allowed skew) is refused."""
    post = s3.generate_presigned_post(bucket, "k.bin", ExpiresIn=300)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    post["fields"]["x-amz-date"] = future.strftime("%Y%m%dT%H%M%SZ")
    code = error(send(post))[1]
    assert code in ("AccessDenied", "InvalidArgument", "SignatureDoesNotMatch")
    assert listed(s3, bucket) == []
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k.bin")


def test_a_default_boto3_form_is_signed_with_sigv2(
    auth_server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    """boto3 without ``s3v4`` signs the policy the legacy way (AWSAccessKeyId, signature)."""
    legacy = s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD)
    post = legacy.generate_presigned_post(bucket, "v2.bin", ExpiresIn=300)
    assert {"AWSAccessKeyId", "signature"} <= set(post["fields"])
    assert send(post).status_code == 204
    assert s3.get_object(Bucket=bucket, Key="v2.bin")["Body"].read() == BODY
    post["fields"]["signature"] = base64.b64encode(b"x" * 20).decode()
    post["fields"]["key"] = "v2-forged.bin"
    assert error(send(post))[:2] == (403, "SignatureDoesNotMatch")
    assert listed(s3, bucket) == ["v2.bin"]


def test_the_file_streams_past_the_buffered_body_limit(tmp_path: Path) -> None:
    """With ``http.maxRequestBodySize`` at 1 MiB (what a handler that reads its body whole
    may take), a 6 MiB form upload still succeeds: the file is streamed, never buffered."""
    proc = ServerProcess(
        tmp_path / "data",
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
        config={"http": {"maxRequestBodySize": 1 << 20}},
    )
    proc.start()
    try:
        s3 = s3_client(proc.url, ROOT_USER, ROOT_PASSWORD, signature_version="s3v4")
        s3.create_bucket(Bucket="streamed")
        big = bytes(range(256)) * (6 << 12)  # 6 MiB
        post = s3.generate_presigned_post("streamed", "big.bin", ExpiresIn=300)
        r = send(post, big)
        assert r.status_code == 204, r.text
        head = s3.head_object(Bucket="streamed", Key="big.bin")
        assert head["ContentLength"] == len(big)
        assert head["ETag"] == f'"{hashlib.md5(big).hexdigest()}"'
    finally:
        proc.stop()


FORM_PAGE = """
<html><body><pre id="out">pending</pre><script>
async function run() {
  const form = new FormData();
  for (const [name, value] of Object.entries(%(fields)s)) form.append(name, value);
  form.append("file", new Blob(["made in the page\\n"], {type: "text/plain"}), "page.txt");
  try {
    const r = await fetch(%(url)s, {method: "POST", body: form});
    const named = (await r.text()).includes("<Key>up/page.txt</Key>");
    document.getElementById("out").textContent =
      r.status + " " + r.headers.get("ETag") + " " + named;
  } catch (e) { document.getElementById("out").textContent = "refused " + e.name; }
}
run();
</script></body></html>
"""


def test_a_browser_page_posts_a_form(s3: BaseClient, bucket: str) -> None:
    """Headless Chromium sends the form with fetch and FormData (the file a Blob), reads the
    201 answer and its exposed ETag under the bucket's CORS rule."""
    post = s3.generate_presigned_post(
        bucket,
        "up/${filename}",
        Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}, ["starts-with", "$key", "up/"]],
        ExpiresIn=300,
    )
    page = FORM_PAGE % {"fields": json.dumps(post["fields"]), "url": json.dumps(post["url"])}
    rule = {"AllowedOrigins": ["http://127.0.0.1:*"], "AllowedMethods": ["POST"],
            "ExposeHeaders": ["ETag"]}  # fmt: skip
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    etag = hashlib.md5(b"made in the page\n").hexdigest()
    assert run_page(page.encode(), "http://127.0.0.1:{port}/") == f'201 "{etag}" true'
    assert s3.get_object(Bucket=bucket, Key="up/page.txt")["Body"].read() == b"made in the page\n"
