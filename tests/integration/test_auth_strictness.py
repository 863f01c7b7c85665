"""Strict credential checks (issue 19, finding 6), with real clients against the running
server: a ``/v1`` presigned URL allows nothing it did not sign, SigV4's credential scope must
name the configured region (``s3.region``), signatures are exact lower-case hex, and a
request presents one credential, never a header and a signed URL at once."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("strict") / "data",
        env={
            "ZAS_ROOT_USER": ROOT_USER,
            "ZAS_ROOT_PASSWORD": ROOT_PASSWORD,
            "ZAS_S3_REGION": REGION,
        },
    ).start()
    s3 = s3_client(proc.url, ROOT_USER, ROOT_PASSWORD, region=REGION)
    s3.create_bucket(Bucket="strict", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="strict", Key="app.tar.gz", Body=b"artifact bytes")
    yield proc
    proc.stop()


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, dict[str, str]]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]


def test_v1_presigned_url_refuses_parameters_it_did_not_sign(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.post("/v1/presign", json={"bucket": "strict", "key": "app.tar.gz"}, auth=ROOT)
        url = r.json()["url"]
        assert c.get(url).content == b"artifact bytes"
        # Turning the download into a metadata read (or anything else) is refused.
        for extra in ("metadata=true", "metadata=1", "metadata"):
            r = c.get(f"{url}&{extra}")
            assert r.status_code == 403, (extra, r.text)
            assert r.json()["code"] == "SignatureDoesNotMatch"
            assert extra.split("=")[0] in r.json()["detail"]
            assert '"size"' not in r.text
        # A second expiry cannot stretch it either.
        assert c.get(f"{url}&zas-expires=9999999999").status_code == 403


def test_sigv4_region_must_be_the_configured_one(server: ServerProcess) -> None:
    s3 = s3_client(server.url, ROOT_USER, ROOT_PASSWORD, region=REGION)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["strict"]
    # GetBucketLocation, HeadBucket and ListBuckets name the region the server signs for.
    assert s3.get_bucket_location(Bucket="strict")["LocationConstraint"] == REGION
    head = s3.head_bucket(Bucket="strict")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == REGION
    wrong = s3_client(
        server.url, ROOT_USER, ROOT_PASSWORD, region="us-east-1", signature_version="s3v4"
    )
    with pytest.raises(ClientError) as exc:
        wrong.list_buckets()
    code, status, body = error(exc)
    assert (code, status) == ("AuthorizationHeaderMalformed", 400)
    assert body["Region"] == REGION and REGION in body["Message"]
    # A presigned URL signed for another region is refused too, in the query dialect.
    url = wrong.generate_presigned_url(
        "get_object", Params={"Bucket": "strict", "Key": "app.tar.gz"}
    )
    r = httpx.get(url)
    assert r.status_code == 400 and "<Code>AuthorizationQueryParametersError</Code>" in r.text
    assert f"<Region>{REGION}</Region>" in r.text


def presigned_url(server: ServerProcess, key: str = "app.tar.gz") -> str:
    request = AWSRequest(method="GET", url=f"{server.url}/strict/{key}")
    S3SigV4QueryAuth(Credentials(ROOT_USER, ROOT_PASSWORD), "s3", REGION, expires=300).add_auth(
        request
    )
    return request.url


def test_presigned_signature_must_be_exact_lower_case_hex(server: ServerProcess) -> None:
    url = presigned_url(server)
    assert httpx.get(url).content == b"artifact bytes"
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    upper = [(k, v.upper() if k == "X-Amz-Signature" else v) for k, v in query]
    r = httpx.get(parts._replace(query=urllib.parse.urlencode(upper)).geturl())
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text


def test_v1_presigned_signature_must_be_exact_lower_case_hex(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as c:
        url = c.post(
            "/v1/presign", json={"bucket": "strict", "key": "app.tar.gz"}, auth=ROOT
        ).json()["url"]
        signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["zas-signature"][0]
        r = c.get(url.replace(signature, signature.upper()))
        assert r.status_code == 403 and r.json()["code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(f"{ROOT_USER}:{ROOT_PASSWORD}".encode()).decode(),
        "Bearer junk",
        "AWS rootadmin:c2lnbmF0dXJl",
    ],
)
def test_query_auth_and_an_authorization_header_together_are_refused(
    server: ServerProcess, header: str
) -> None:
    # S3: a SigV4 presigned URL plus any Authorization header.
    r = httpx.get(presigned_url(server), headers={"Authorization": header})
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text, r.text
    # /v1: a presigned URL plus any Authorization header.
    with httpx.Client(base_url=server.url) as c:
        url = c.post(
            "/v1/presign", json={"bucket": "strict", "key": "app.tar.gz"}, auth=ROOT
        ).json()["url"]
        r = c.get(url, headers={"Authorization": header})
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", r.text
