"""S3 bucket CORS as AWS documents it, on both metadata backends with authentication on:
Put/Get/DeleteBucketCors through boto3 (S3's limits, ``NoSuchCORSConfiguration``), a browser's
preflight ``OPTIONS`` on bucket and object paths (at ``/`` and ``/s3``) answered from the first
matching rule without credentials, 403 ``AccessForbidden`` when no rule matches, and actual
requests from an allowed origin getting ``Access-Control-Allow-Origin`` and the rule's exposed
headers, errors included."""

from __future__ import annotations

import hashlib
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.browser import run_page
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

PAGE = "https://ui.example.com"
RULES = [
    {
        "ID": "uploads",
        "AllowedOrigins": [PAGE],
        "AllowedMethods": ["PUT", "POST"],
        "AllowedHeaders": ["content-type", "x-amz-*", "authorization"],
        "ExposeHeaders": ["ETag", "x-amz-request-id"],
        "MaxAgeSeconds": 600,
    },
    {"ID": "anyone-reads", "AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]},
    {"AllowedOrigins": ["https://*.example.org"], "AllowedMethods": ["DELETE"]},
]


@pytest.fixture(scope="module")
def s3(auth_server: ServerProcess) -> BaseClient:
    return s3_client(auth_server.url, ROOT_USER, ROOT_PASSWORD)


@pytest.fixture
def bucket(s3: BaseClient) -> Iterator[str]:
    name = f"cors-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="dir/a.txt", Body=b"artifact\n")
    yield name


def error_of(call: object, **kwargs: object) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)  # type: ignore[operator]
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def preflight(
    url: str, origin: str | None, method: str | None, headers: str = ""
) -> httpx.Response:
    h = {}
    if origin is not None:
        h["Origin"] = origin
    if method is not None:
        h["Access-Control-Request-Method"] = method
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return httpx.request("OPTIONS", url, headers=h)


def code_of(r: httpx.Response) -> str:
    return ET.fromstring(r.content).findtext("Code") or ""


def test_put_get_delete_bucket_cors(s3: BaseClient, bucket: str) -> None:
    assert error_of(s3.get_bucket_cors, Bucket=bucket)[:2] == ("NoSuchCORSConfiguration", 404)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES
    # A second put replaces the whole configuration.
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES[1:2]})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES[1:2]
    s3.delete_bucket_cors(Bucket=bucket)
    assert error_of(s3.get_bucket_cors, Bucket=bucket)[:2] == ("NoSuchCORSConfiguration", 404)
    # The bucket and its object are untouched.
    assert s3.get_object(Bucket=bucket, Key="dir/a.txt")["Body"].read() == b"artifact\n"
    missing = f"cors-missing-{uuid.uuid4().hex[:8]}"
    assert error_of(s3.get_bucket_cors, Bucket=missing)[:2] == ("NoSuchBucket", 404)
    config = {"CORSRules": RULES}
    assert error_of(s3.put_bucket_cors, Bucket=missing, CORSConfiguration=config)[:2] == (
        "NoSuchBucket",
        404,
    )


@pytest.mark.parametrize(
    "rules, code, says",
    [
        ([{"AllowedOrigins": [PAGE], "AllowedMethods": ["PATCH"]}], "InvalidRequest", "PATCH"),
        ([{"AllowedOrigins": [PAGE], "AllowedMethods": ["get"]}], "InvalidRequest", "'get'"),
        (
            [{"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}],
            "InvalidRequest",
            "more than one wildcard",
        ),
        (
            [{"AllowedOrigins": [PAGE], "AllowedMethods": ["GET"], "AllowedHeaders": ["*-*"]}],
            "InvalidRequest",
            "AllowedHeader",
        ),
        ([{"AllowedOrigins": [PAGE], "AllowedMethods": ["GET"]}] * 101, "MalformedXML", "100"),
        ([{"AllowedOrigins": [PAGE], "AllowedMethods": []}], "MalformedXML", "AllowedMethod"),
    ],
    ids=["method", "lower-case", "origin-wildcards", "header-wildcards", "101-rules", "no-method"],
)
def test_a_bad_configuration_is_refused_and_changes_nothing(
    s3: BaseClient, bucket: str, rules: list, code: str, says: str
) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES[1:2]})
    got_code, status, message = error_of(
        s3.put_bucket_cors, Bucket=bucket, CORSConfiguration={"CORSRules": rules}
    )
    assert (got_code, status) == (code, 400) and says in message, message
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES[1:2]


def test_100_rules_are_accepted(s3: BaseClient, bucket: str) -> None:
    rules = [
        {"AllowedOrigins": [f"https://{i}.example.com"], "AllowedMethods": ["GET"]}
        for i in range(100)
    ]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 100


@pytest.mark.parametrize("prefix", ["", "/s3"], ids=["root", "s3-prefix"])
def test_preflight_is_answered_from_the_matching_rule(
    auth_server: ServerProcess, s3: BaseClient, bucket: str, prefix: str
) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    obj = f"{auth_server.url}{prefix}/{bucket}/dir/new.bin"
    # The first rule: a page uploading with its SDK's headers (no credentials on a preflight).
    r = preflight(obj, PAGE, "PUT", "Content-Type, X-Amz-Date, authorization")
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == PAGE
    assert r.headers["Access-Control-Allow-Methods"] == "PUT, POST"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-date, authorization"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in r.headers["Vary"]
    # The second rule: anyone may GET; "*" answers "*" and no credentials.
    r = preflight(f"{auth_server.url}{prefix}/{bucket}", "https://other.example", "GET")
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert "Access-Control-Max-Age" not in r.headers
    # The third: a wildcard origin.
    r = preflight(obj, "https://team.example.org", "DELETE")
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == (
        "https://team.example.org"
    )


@pytest.mark.parametrize(
    "origin, method, headers",
    [
        ("https://other.example", "PUT", ""),  # an origin no PUT rule names
        (PAGE, "DELETE", ""),  # a method the page's rule does not allow
        (PAGE, "PUT", "content-type, x-custom-header"),  # a header no rule allows
        ("https://example.org", "DELETE", ""),  # the wildcard needs a subdomain
    ],
    ids=["origin", "method", "header", "wildcard"],
)
def test_preflight_without_a_matching_rule_is_refused(
    auth_server: ServerProcess, s3: BaseClient, bucket: str, origin: str, method: str, headers: str
) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    r = preflight(f"{auth_server.url}/{bucket}/dir/a.txt", origin, method, headers)
    assert r.status_code == 403, r.text
    assert code_of(r) == "AccessForbidden" and "CORSResponse" in r.text
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Methods" not in r.headers


def test_preflight_without_rules_or_bucket_or_origin(
    auth_server: ServerProcess, bucket: str
) -> None:
    no_rules = preflight(f"{auth_server.url}/{bucket}/dir/a.txt", PAGE, "GET")
    assert no_rules.status_code == 403 and code_of(no_rules) == "AccessForbidden"
    assert "not enabled" in no_rules.text
    # A bucket that does not exist answers the same (a preflight does not reveal buckets).
    missing = preflight(f"{auth_server.url}/cors-none-{uuid.uuid4().hex[:8]}/x", PAGE, "GET")
    assert (
        missing.status_code == 403
        and missing.text.replace(missing.headers["x-amz-request-id"], "").count("not enabled") == 1
    )
    no_origin = preflight(f"{auth_server.url}/{bucket}/dir/a.txt", None, "GET")
    assert no_origin.status_code == 400 and "Origin" in no_origin.text
    no_method = preflight(f"{auth_server.url}/{bucket}/dir/a.txt", PAGE, None)
    assert no_method.status_code == 400 and "Access-Control-Request-Method" in no_method.text


def test_actual_requests_from_an_allowed_origin(
    auth_server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "dir/up.txt"}, ExpiresIn=300
    )
    put = httpx.put(url, content=b"from the page\n", headers={"Origin": PAGE})
    assert put.status_code == 200, put.text
    assert put.headers["Access-Control-Allow-Origin"] == PAGE
    assert put.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert put.headers["Vary"] == "Origin"
    assert s3.get_object(Bucket=bucket, Key="dir/up.txt")["Body"].read() == b"from the page\n"
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/up.txt"}, ExpiresIn=300
    )
    got = httpx.get(get_url, headers={"Origin": "https://any.example"})
    assert got.status_code == 200 and got.content == b"from the page\n"
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    # An error answer carries them too, so the page can read it.
    missing_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/none"}, ExpiresIn=300
    )
    missing = httpx.get(missing_url, headers={"Origin": PAGE})
    assert missing.status_code == 404 and code_of(missing) == "NoSuchKey"
    assert missing.headers["Access-Control-Allow-Origin"] == "*"
    unsigned = httpx.get(f"{auth_server.url}/{bucket}/dir/a.txt", headers={"Origin": PAGE})
    assert unsigned.status_code == 403 and code_of(unsigned) == "AccessDenied"
    assert unsigned.headers["Access-Control-Allow-Origin"] == "*"
    # A method no rule allows for this origin: no Allow-Origin (the browser hides the answer).
    delete = httpx.delete(
        s3.generate_presigned_url(
            "delete_object", Params={"Bucket": bucket, "Key": "dir/up.txt"}, ExpiresIn=300
        ),
        headers={"Origin": PAGE},
    )
    assert delete.status_code == 204
    assert "Access-Control-Allow-Origin" not in delete.headers
    assert delete.headers["Vary"] == "Origin"


def test_no_cors_headers_without_rules_or_origin(
    auth_server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/a.txt"}, ExpiresIn=300
    )
    r = httpx.get(url, headers={"Origin": PAGE})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    plain = httpx.get(url)
    assert plain.status_code == 200 and "Access-Control-Allow-Origin" not in plain.headers


# ---- a real browser -------------------------------------------------------------------------
PAGE_SCRIPT = """
<html><body><pre id="out">pending</pre><script>
async function run() {
  const out = [];
  try {
    const put = await fetch(%(put)s, {method: "PUT", body: "from chromium\\n",
                                      headers: {"Content-Type": "application/octet-stream"}});
    out.push("put " + put.status + " etag=" + put.headers.get("ETag"));
    const got = await fetch(%(get)s);
    out.push("get " + got.status + " " + (await got.text()).trim());
  } catch (e) { out.push("refused " + e.name); }
  document.getElementById("out").textContent = out.join(" | ");
}
run();
</script></body></html>
"""


def test_a_browser_page_uploads_and_reads_as_the_rules_allow(
    auth_server: ServerProcess, s3: BaseClient, bucket: str
) -> None:
    """Chromium itself sends the preflight for a PUT with a Content-Type, the PUT, and reads
    the exposed ETag; a page on an origin no rule names is refused by the browser and
    nothing is stored."""
    put = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": bucket,
            "Key": "dir/browser.txt",
            "ContentType": "application/octet-stream",  # signed: the page must send it
        },
        ExpiresIn=300,
    )
    get = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/browser.txt"}, ExpiresIn=300
    )
    page = (PAGE_SCRIPT % {"put": json.dumps(put), "get": json.dumps(get)}).encode()
    # Not yet allowed: the browser's preflight is refused, the PUT never sent.
    assert run_page(page, "http://127.0.0.1:{port}/") == "refused TypeError"
    assert error_of(s3.head_object, Bucket=bucket, Key="dir/browser.txt")[1] == 404
    # Rules for pages on http://127.0.0.1:<any port>; localhost stays another origin.
    rule = {
        "AllowedOrigins": ["http://127.0.0.1:*"],
        "AllowedMethods": ["PUT", "GET"],
        "AllowedHeaders": ["content-type"],
        "ExposeHeaders": ["ETag"],
    }
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    etag = hashlib.md5(b"from chromium\n").hexdigest()
    got = run_page(page, "http://127.0.0.1:{port}/")
    assert got == f'put 200 etag="{etag}" | get 200 from chromium', got
    assert s3.get_object(Bucket=bucket, Key="dir/browser.txt")["Body"].read() == (
        b"from chromium\n"
    )
    s3.delete_object(Bucket=bucket, Key="dir/browser.txt")
    assert run_page(page, "http://localhost:{port}/") == "refused TypeError"
    assert error_of(s3.head_object, Bucket=bucket, Key="dir/browser.txt")[1] == 404
