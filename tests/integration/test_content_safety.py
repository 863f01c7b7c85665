"""Objects are never served as active pages of the store's origin (issue 19, finding 5).

An uploader could publish HTML or SVG with a script, and an anonymous link with
``?response-content-type=text/html`` could make any object render as HTML: both would run
script with the store's origin. Now: anonymous ``response-*`` overrides are refused as on
AWS, active types are attachments unless the bucket opts in (``web``), every download is
sandboxed, and every response says ``nosniff``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)
PAGE = b"<html><script>alert(document.domain)</script></html>"
ANON_OVERRIDE = "Request specific response headers cannot be used for anonymous GET requests."
WEB_CSP = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("content-safety") / "data"
    proc = ServerProcess(
        data_dir, env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD}
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def site(server: ServerProcess) -> str:
    """A public bucket holding active and inert content."""
    with server.client(auth=ROOT) as c:
        assert c.put("/v1/buckets/site", json={"public_read": True}).status_code == 201
        s3 = s3_client(server.url, ROOT_USER, ROOT_PASSWORD)
        for key, content_type in [
            ("page.html", "text/html; charset=utf-8"),
            ("image.svg", "image/svg+xml"),
            ("feed.xml", "application/atom+xml"),
            ("app.js", "text/javascript"),
            ("notes.txt", "text/plain"),
            ("blob.bin", "application/octet-stream"),
        ]:
            s3.put_object(Bucket="site", Key=key, Body=PAGE, ContentType=content_type)
        s3.put_object(
            Bucket="site",
            Key="named.html",
            Body=PAGE,
            ContentType="text/html",
            ContentDisposition='inline; filename="report.html"',
        )
    return "site"


def test_anonymous_response_overrides_are_refused(server: ServerProcess, site: str) -> None:
    with server.client() as c:
        for arg in ("response-content-type=text/html", "response-content-disposition=inline"):
            r = c.get(f"/{site}/notes.txt?{arg}")
            assert r.status_code == 400, r.text
            assert r.headers["content-type"] == "application/xml"
            assert "<Code>InvalidRequest</Code>" in r.text and ANON_OVERRIDE in r.text
            assert c.head(f"/{site}/notes.txt?{arg}").status_code == 400
        # Without the override the public object is served as stored.
        r = c.get(f"/{site}/notes.txt")
        assert r.status_code == 200 and r.headers["content-type"] == "text/plain"


def test_signed_requests_keep_their_overrides(server: ServerProcess, site: str) -> None:
    s3 = s3_client(server.url, ROOT_USER, ROOT_PASSWORD)
    got = s3.get_object(
        Bucket=site, Key="blob.bin", ResponseContentDisposition='attachment; filename="x.bin"'
    )
    assert got["ContentDisposition"] == 'attachment; filename="x.bin"'
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": site, "Key": "notes.txt", "ResponseContentType": "text/csv"},
    )
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv"
    # An override to an active type is honoured, and still downloaded, not rendered.
    got = s3.get_object(Bucket=site, Key="notes.txt", ResponseContentType="text/html")
    assert got["ContentType"] == "text/html"
    assert got["ContentDisposition"] == "attachment"


@pytest.mark.parametrize("key", ["page.html", "image.svg", "feed.xml", "app.js"])
@pytest.mark.parametrize("api", ["s3", "v1"])
def test_active_types_are_attachments(server: ServerProcess, site: str, key: str, api: str) -> None:
    path = f"/{site}/{key}" if api == "s3" else f"/v1/buckets/{site}/objects/{key}"
    with server.client() as c:
        for r in (c.get(path), c.head(path)):
            assert r.status_code == 200
            assert r.headers["content-disposition"] == "attachment"
            assert r.headers["content-security-policy"] == "sandbox"
            assert r.headers["x-content-type-options"] == "nosniff"
        assert c.get(path).content == PAGE


def test_a_stored_filename_is_kept(server: ServerProcess, site: str) -> None:
    with server.client() as c:
        r = c.get(f"/{site}/named.html")
    assert r.headers["content-disposition"] == 'attachment; filename="report.html"'


@pytest.mark.parametrize("key", ["notes.txt", "blob.bin"])
def test_inert_types_stay_inline_in_a_sandbox(server: ServerProcess, site: str, key: str) -> None:
    with server.client() as c:
        r = c.get(f"/{site}/{key}")
    assert r.status_code == 200 and "content-disposition" not in r.headers
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_a_web_bucket_serves_pages_inline(server: ServerProcess) -> None:
    with server.client(auth=ROOT) as c:
        r = c.put("/v1/buckets/docs-site", json={"public_read": True})
        assert r.status_code == 201 and r.json()["web"] is False
        assert c.put("/v1/buckets/docs-site/objects/index.html", content=PAGE,
                     headers={"Content-Type": "text/html"}).status_code == 201  # fmt: skip
        r = c.put("/v1/buckets/docs-site", json={"web": True})
        assert r.status_code == 200 and r.json()["web"] is True
        assert c.get("/v1/buckets/docs-site").json()["web"] is True
        assert c.put("/v1/buckets/docs-site", json={"web": "yes"}).status_code == 400
    with server.client() as anonymous:
        for path in ("/docs-site/index.html", "/v1/buckets/docs-site/objects/index.html"):
            r = anonymous.get(path)
            assert r.status_code == 200 and r.content == PAGE
            assert "content-disposition" not in r.headers
            assert r.headers["content-security-policy"] == WEB_CSP
            assert r.headers["x-content-type-options"] == "nosniff"
        # Still no anonymous overrides in a web bucket.
        r = anonymous.get("/docs-site/index.html?response-content-type=text/plain")
        assert r.status_code == 400
    with server.client(auth=ROOT) as c:
        assert c.put("/v1/buckets/docs-site", json={"web": False}).json()["web"] is False
        r = c.get("/docs-site/index.html")
        assert r.headers["content-disposition"] == "attachment"
        assert r.headers["content-security-policy"] == "sandbox"


@pytest.mark.parametrize(
    "path", ["/v2/", "/health", "/v1/buckets", "/v1/nope", "/no-such-bucket/key", "/"]
)
def test_nosniff_on_every_response(server: ServerProcess, path: str) -> None:
    with server.client() as c:
        r = c.get(path)
    assert r.headers["x-content-type-options"] == "nosniff", (r.status_code, r.text)
