"""The web UI (issue 24) against a real server, on both metadata backends (SQLite and
MongoDB): login and the session cookie, CSRF, security headers, escaping, what readers and
anonymous visitors see, paging, and the browser redirect of ``/`` (S3 clients unaffected)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import os
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.cdp import chromium_process, devtools_page
from tests.fixtures.evidence import DATA, data, dsse, statement, trust
from tests.fixtures.oci_layout import OCI_INDEX, OCI_MANIFEST, sha256
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from tests.integration.test_oci import image, index_of, push_blob, put_manifest
from tests.integration.test_signatures import BUNDLE_V3, GITHUB
from tests.integration.test_webhooks import Receiver

ROOT = (ROOT_USER, ROOT_PASSWORD)
RUN = uuid.uuid4().hex[:8]
MINE, OTHER, PUBLIC = f"ui-mine-{RUN}", f"ui-other-{RUN}", f"ui-pub-{RUN}"
HOSTILE = "<script>alert(1)</script>.txt"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def ui_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    """The UI on each metadata backend (the embedded SQLite, and MongoDB's wire protocol)."""
    base = tmp_path_factory.mktemp(f"ui-{request.param}")
    trusted_root = str(DATA / "trusted_root.staging.json")
    proc = ServerProcess(
        base / "data",
        metadata_uri=metadata_uri_for(request.param, base / "data"),
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
        config={
            "extensions": {
                "supplychain": {"trustedRoot": trusted_root},
                "webhooks": {"allowNetworks": ["127.0.0.1/32"]},  # a receiver on this host
            },
            # Anonymous pulls of public/* (Zot's shape): the UI shows them to anyone.
            "http": {
                "accessControl": {"repositories": {"public/**": {"anonymousPolicy": ["read"]}}},
                # This host may say the browser came over HTTPS (X-Forwarded-Proto).
                "trustedProxies": ["127.0.0.1/32"],
            },
        },
    )
    proc.start()
    with proc.client(auth=ROOT) as c:
        for name, body in ((MINE, {}), (OTHER, {}), (PUBLIC, {"public_read": True})):
            assert c.put(f"/v1/buckets/{name}", json=body).status_code == 201
        for key, data in (
            ("docs/readme.md", b"# readme\n"),
            ("docs/guide/intro.md", b"intro"),
            ("app.tar.gz", b"artifact bytes"),
            (HOSTILE, b"hostile"),
        ):
            r = c.put(
                f"/v1/buckets/{MINE}/objects/{urllib.parse.quote(key)}",
                content=data,
                headers={"X-Artifact-Labels": "team=a,stage=<b>rc</b>"},
            )
            assert r.status_code == 201, r.text
        assert c.put(f"/v1/buckets/{OTHER}/objects/secret.txt", content=b"s").status_code == 201
        assert c.put(f"/v1/buckets/{PUBLIC}/objects/hello.txt", content=b"hi").status_code == 201
    yield proc
    proc.stop()


def make_token(server: ServerProcess, roles: list[str], **extra: object) -> str:
    with server.client(auth=ROOT) as c:
        r = c.post(
            "/v1/tokens", json={"name": f"ui-{uuid.uuid4().hex[:6]}", "roles": roles, **extra}
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]


@pytest.fixture(scope="module")
def reader_token(ui_server: ServerProcess) -> str:
    """A reader of MINE only: every other bucket is denied by the token's own statement."""
    statements = [
        {"Effect": "Deny", "Action": "*", "Resource": [f"{OTHER}", f"{OTHER}/*"]},
    ]
    return make_token(ui_server, ["reader"], statements=statements)


def csrf_of(page: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert match, page
    return html.unescape(match.group(1))


def login(c: httpx.Client, token: str | None = None, **fields: str) -> httpx.Response:
    page = c.get("/ui/login")
    assert page.status_code == 200, page.text
    data = {"_csrf": csrf_of(page.text), **fields}
    if token is not None:
        data["token"] = token
    return c.post("/ui/login", data=data)


def visible(page: str) -> str:
    """A page's text as a reader sees it: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def browser(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60.0, headers=BROWSER)


def set_cookie(r: httpx.Response, name: str) -> str:
    for header in r.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {r.headers.get_list('set-cookie')}")


# ---- login and session ---------------------------------------------------------------------
def test_token_login_sets_a_hardened_session_cookie_and_logout_ends_it(
    ui_server: ServerProcess, reader_token: str
) -> None:
    with browser(ui_server) as c:
        r = login(c, reader_token, next="/ui/buckets/" + MINE)
        assert r.status_code == 302, r.text
        assert r.headers["location"] == f"/ui/buckets/{MINE}"
        cookie = set_cookie(r, "zas_ui_session")
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "path", "expires"} <= attrs
        assert "samesite=lax" in cookie.lower() and "path=/ui" in cookie.lower()
        assert "secure" not in attrs  # plain HTTP here; HTTPS adds Secure
        assert reader_token not in cookie  # sealed, not the token in clear
        home = c.get("/ui/")
        assert home.status_code == 200
        assert MINE in home.text and PUBLIC in home.text
        assert "Log out" in home.text
        # Logging out needs the session's CSRF token too.
        assert c.post("/ui/logout", data={}).status_code == 403
        r = c.post("/ui/logout", data={"_csrf": csrf_of(home.text)})
        assert r.status_code == 302 and r.headers["location"] == "/ui/login"
        assert "zas_ui_session=;" in set_cookie(r, "zas_ui_session").replace('""', "")
        # Logged out: the private bucket sends the browser to log in.
        r = c.get(f"/ui/buckets/{MINE}")
        assert r.status_code == 302 and r.headers["location"].startswith("/ui/login?next=")


def test_cookies_are_secure_behind_https(ui_server: ServerProcess, reader_token: str) -> None:
    with browser(ui_server) as c:
        c.headers["X-Forwarded-Proto"] = "https"  # from the trusted proxy terminating TLS
        page = c.get("/ui/login")
        csrf_cookie = set_cookie(page, "zas_ui_csrf")
        assert "secure" in csrf_cookie.lower().split("; ")
        # httpx keeps a Secure cookie for https URLs only: hand it back as the browser would.
        c.cookies.set("zas_ui_csrf", csrf_cookie.split(";")[0].split("=", 1)[1], path="/ui")
        r = c.post("/ui/login", data={"_csrf": csrf_of(page.text), "token": reader_token})
        assert r.status_code == 302
        flags = set_cookie(r, "zas_ui_session").lower().split("; ")
        assert {"secure", "httponly", "samesite=lax", "path=/ui"} <= set(flags), flags


def test_bad_token_and_bad_password_are_refused(ui_server: ServerProcess) -> None:
    with browser(ui_server) as c:
        r = login(c, "zat_0123456789abcdef_" + "x" * 43)
        assert r.status_code == 401
        assert "Login failed" in r.text and "zas_ui_session" not in r.headers.get("set-cookie", "")
        r = login(c, user=ROOT_USER, password="wrong")
        assert r.status_code == 401 and "Login failed" in r.text
        r = login(c, user=ROOT_USER, password=ROOT_PASSWORD)
        assert r.status_code == 302
        assert OTHER in c.get("/ui/").text  # root sees every bucket


def test_revoked_token_ends_its_session(ui_server: ServerProcess) -> None:
    with ui_server.client(auth=ROOT) as admin:
        r = admin.post("/v1/tokens", json={"name": "short-lived", "roles": ["reader"]})
        token, token_id = r.json()["token"], r.json()["id"]
        with browser(ui_server) as c:
            assert login(c, token).status_code == 302
            assert c.get(f"/ui/buckets/{MINE}").status_code == 200
            assert admin.delete(f"/v1/tokens/{token_id}").status_code in (200, 204)
            r = c.get(f"/ui/buckets/{MINE}")
            assert r.status_code == 302 and r.headers["location"].startswith("/ui/login")


def test_forged_or_tampered_session_cookie_is_anonymous(ui_server: ServerProcess) -> None:
    with browser(ui_server) as c:
        c.cookies.set("zas_ui_session", "A" * 120, path="/ui")
        r = c.get(f"/ui/buckets/{MINE}")
        assert r.status_code == 302 and r.headers["location"].startswith("/ui/login")


def test_login_without_csrf_token_is_refused(ui_server: ServerProcess, reader_token: str) -> None:
    with browser(ui_server) as c:
        c.get("/ui/login")  # has the CSRF cookie, but does not send the form's token
        r = c.post("/ui/login", data={"token": reader_token})
        assert r.status_code == 403 and "CSRF" in r.text
        assert "zas_ui_session" not in r.headers.get("set-cookie", "")
        r = c.post("/ui/login", data={"token": reader_token, "_csrf": "guessed"})
        assert r.status_code == 403
    with browser(ui_server) as c:  # a token from another browser's page does not help
        stolen = csrf_of(httpx.get(f"{ui_server.url}/ui/login").text)
        r = c.post("/ui/login", data={"token": reader_token, "_csrf": stolen})
        assert r.status_code == 403


def test_cross_origin_post_is_refused(ui_server: ServerProcess, reader_token: str) -> None:
    with browser(ui_server) as c:
        page = c.get("/ui/login")
        r = c.post(
            "/ui/login",
            data={"token": reader_token, "_csrf": csrf_of(page.text)},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403


# ---- security headers and escaping ---------------------------------------------------------
def test_pages_carry_a_strict_csp_and_refuse_framing(ui_server: ServerProcess) -> None:
    with browser(ui_server) as c:
        for path in ("/ui/", "/ui/login", f"/ui/buckets/{PUBLIC}", "/ui/nowhere"):
            r = c.get(path)
            csp = r.headers["content-security-policy"]
            for directive in (
                "default-src 'self'",
                "script-src 'self'",
                "object-src 'none'",
                "frame-ancestors 'none'",
            ):
                assert directive in csp, (path, csp)
            assert "unsafe-inline" not in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "<script>" not in r.text.replace('<script src="/ui/static/ui.js', "")
        assert c.get("/ui/nowhere").status_code == 404
        js = c.get(re.search(r'src="(/ui/static/ui\.js[^"]*)"', c.get("/ui/").text).group(1))
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")


def test_hostile_key_and_labels_are_escaped(ui_server: ServerProcess) -> None:
    with browser(ui_server) as c:
        assert login(c, user=ROOT_USER, password=ROOT_PASSWORD).status_code == 302
        listing = c.get(f"/ui/buckets/{MINE}")
        assert listing.status_code == 200
        # Its "/" makes "<script>alert(1)</" a folder.
        assert "<script>" not in listing.text.replace('<script src="/ui/static/ui.js', "")
        assert "&lt;script&gt;alert(1)&lt;/</a>" in listing.text
        folder = c.get(f"/ui/buckets/{MINE}", params={"prefix": "<script>alert(1)</"})
        assert "<script>alert(1)" not in folder.text
        assert "script&gt;.txt</a>" in folder.text
        assert "<b>rc</b>" not in listing.text and "&lt;b&gt;rc&lt;/b&gt;" in listing.text
        detail = c.get(f"/ui/buckets/{MINE}/object", params={"key": HOSTILE})
        assert detail.status_code == 200
        assert "<script>alert(1)</script>" not in detail.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.txt" in detail.text
        # The copy-able commands quote the key for a shell.
        assert "&#x27;s3://" in detail.text or "&#39;s3://" in detail.text


def test_object_detail_and_attachment_download(ui_server: ServerProcess) -> None:
    with browser(ui_server) as c:
        assert login(c, user=ROOT_USER, password=ROOT_PASSWORD).status_code == 302
        page = c.get(f"/ui/buckets/{MINE}/object", params={"key": "docs/readme.md"})
        assert page.status_code == 200
        text = html.unescape(page.text)
        digest = hashlib.sha256(b"# readme\n").hexdigest()
        assert f"sha256:{digest}" in text and "9 bytes" in text
        assert f"aws --endpoint-url {ui_server.url} s3 cp s3://{MINE}/docs/readme.md ." in text
        assert f"zot-artifacts --url {ui_server.url} download {MINE}/docs/readme.md" in text
        assert f"{ui_server.url}/v1/buckets/{MINE}/objects/docs/readme.md" in text
        href = re.search(r'href="(/ui/buckets/[^"]+/download\?[^"]+)"', page.text).group(1)
        r = c.get(html.unescape(href))
        assert r.status_code == 200 and r.content == b"# readme\n"
        assert r.headers["content-disposition"].startswith("attachment")
        assert "readme.md" in r.headers["content-disposition"]
        assert r.headers["content-security-policy"] == "sandbox"


# ---- who sees what -------------------------------------------------------------------------
def test_reader_sees_only_what_they_may_read(ui_server: ServerProcess, reader_token: str) -> None:
    with browser(ui_server) as c:
        assert login(c, reader_token).status_code == 302
        home = c.get("/ui/").text
        assert MINE in home and PUBLIC in home and OTHER not in home
        assert c.get(f"/ui/buckets/{MINE}").status_code == 200
        r = c.get(f"/ui/buckets/{OTHER}")
        assert r.status_code == 403 and "secret.txt" not in r.text
        assert "AccessDenied" in r.text
        r = c.get(f"/ui/buckets/{OTHER}/object", params={"key": "secret.txt"})
        assert r.status_code == 403
        r = c.get(f"/ui/buckets/{OTHER}/download", params={"key": "secret.txt"})
        assert r.status_code == 403 and r.content != b"s"


def test_anonymous_sees_public_buckets_only(ui_server: ServerProcess) -> None:
    with browser(ui_server) as c:
        home = c.get("/ui/")
        assert home.status_code == 200
        assert PUBLIC in home.text and MINE not in home.text and OTHER not in home.text
        assert "Log in" in home.text
        listing = c.get(f"/ui/buckets/{PUBLIC}")
        assert listing.status_code == 200 and "hello.txt" in listing.text
        r = c.get(f"/ui/buckets/{PUBLIC}/download", params={"key": "hello.txt"})
        assert r.status_code == 200 and r.content == b"hi"
        page = visible(c.get(f"/ui/buckets/{PUBLIC}/object", params={"key": "hello.txt"}).text)
        assert "hello.txt" in page and "You may not read this object's evidence." in page
        r = c.get(f"/ui/buckets/{MINE}")
        assert r.status_code == 302
        assert r.headers["location"] == "/ui/login?next=" + urllib.parse.quote(
            f"/ui/buckets/{MINE}", safe=""
        )


def test_folders_and_paging_over_2500_objects(ui_server: ServerProcess) -> None:
    bucket = f"ui-many-{RUN}"
    keys = [f"build/{i:05d}.bin" for i in range(2500)]
    with ui_server.client(auth=ROOT) as c:
        assert c.put(f"/v1/buckets/{bucket}").status_code == 201
        assert c.put(f"/v1/buckets/{bucket}/objects/top.txt", content=b"t").status_code == 201

    def put(chunk: list[str]) -> None:
        with ui_server.client(auth=ROOT) as c:
            for key in chunk:
                r = c.put(f"/v1/buckets/{bucket}/objects/{key}", content=key.encode())
                assert r.status_code == 201, r.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, [keys[i::4] for i in range(4)]))
    with root_browser(ui_server) as c:
        top = c.get(f"/ui/buckets/{bucket}")
        assert top.status_code == 200
        assert "build/" in top.text and "top.txt" in top.text and "00001.bin" not in top.text
        seen: list[str] = []
        url: str | None = f"/ui/buckets/{bucket}?prefix=build%2F&limit=1000"
        pages = 0
        while url:
            page = c.get(url)
            assert page.status_code == 200
            pages += 1
            seen += [html.unescape(k) for k in re.findall(r'/object\?key=([^"]+)"', page.text)]
            nxt = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = html.unescape(nxt.group(1)) if nxt else None
        assert pages == 3
        assert [urllib.parse.unquote_plus(k) for k in seen] == keys


# ---- "/" for browsers and for S3 clients --------------------------------------------------
def test_root_redirects_browsers_only(ui_server: ServerProcess) -> None:
    r = httpx.get(f"{ui_server.url}/", headers=BROWSER)
    assert r.status_code == 302 and r.headers["location"] == "/ui/"
    # Not a browser: S3's answer (anonymous ListBuckets is refused in S3's XML).
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/xml"}):
        r = httpx.get(f"{ui_server.url}/", headers=headers)
        assert r.status_code in (401, 403) and r.text.startswith("<?xml"), (headers, r.text)
    # Any credential, even with a browser's Accept: S3.
    r = httpx.get(f"{ui_server.url}/", headers={**BROWSER, "Authorization": "Basic eDp5"})
    assert r.status_code != 302
    r = httpx.get(f"{ui_server.url}/", headers=BROWSER, auth=ROOT)
    assert r.status_code == 200 and "<ListAllMyBucketsResult" in r.text
    # A SigV4-signed request that also says it accepts HTML.
    request = AWSRequest(method="GET", url=f"{ui_server.url}/", headers=dict(BROWSER))
    S3SigV4Auth(Credentials(ROOT_USER, ROOT_PASSWORD), "s3", "us-east-1").add_auth(request)
    r = httpx.get(f"{ui_server.url}/", headers=dict(request.headers.items()))
    assert r.status_code == 200 and f"<Name>{MINE}</Name>" in r.text
    # A presigned (query) request: S3.
    r = httpx.get(f"{ui_server.url}/?X-Amz-Algorithm=AWS4-HMAC-SHA256", headers=BROWSER)
    assert r.status_code != 302
    names = [b["Name"] for b in s3_client(ui_server.url, *ROOT).list_buckets()["Buckets"]]
    assert MINE in names and PUBLIC in names
    # /ui itself: the UI; as a bucket name it is reserved.
    r = httpx.get(f"{ui_server.url}/ui", headers=BROWSER)
    assert r.status_code == 301 and r.headers["location"] == "/ui/"
    r = httpx.put(f"{ui_server.url}/ui", auth=ROOT)
    assert r.status_code == 400 and "ReservedName" in r.text
    r = httpx.put(f"{ui_server.url}/ui/some/key", content=b"x", auth=ROOT)
    assert r.status_code == 400 and r.json()["code"] == "ReservedName"
    r = httpx.put(f"{ui_server.url}/v1/buckets/ui", auth=ROOT)
    assert r.status_code == 400 and r.json()["code"] == "ReservedName"


# ---- evidence, images, SBOM search, verification -------------------------------------------
SIGNED = "release/bundle_v3.txt"
REPO = f"ui-app-{RUN}"
CYCLONEDX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "version": 1,
    "components": [
        {
            "type": "library",
            "name": "log4j-core",
            "version": "2.14.1",
            "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
        }
    ],
}
CYCLONEDX_TYPE = "application/vnd.cyclonedx+json"
EMPTY = "application/vnd.oci.empty.v1+json"


@pytest.fixture(scope="module")
def evidence(ui_server: ServerProcess) -> dict[str, str]:
    with ui_server.client(auth=ROOT) as c:
        return seed_evidence(c, MINE, OTHER, REPO)


def seed_evidence(c: httpx.Client, mine: str, other_bucket: str, repo: str) -> dict[str, str]:
    """A Sigstore-signed object with an SBOM and a key-signed SLSA attestation in ``mine``,
    the same SBOM on an object of ``other_bucket``, and an image (plus an index of it) in
    ``repo`` whose SBOM is an OCI referrer; ``c`` is an admin's client."""
    sbom = json.dumps(CYCLONEDX).encode()
    r = c.put(f"/v1/buckets/{mine}/objects/{SIGNED}", content=data("bundle_v3.txt"))
    assert r.status_code == 201, r.text
    digest = r.json()["digest"]
    subject = f"/v1/buckets/{mine}/objects/{SIGNED}"
    r = c.post(
        f"{subject}/signatures",
        content=data("bundle_v3.txt.sigstore"),
        headers={"Content-Type": BUNDLE_V3},
    )
    assert r.status_code == 201, r.text
    r = c.post(f"{subject}/sboms", content=sbom, headers={"Content-Type": CYCLONEDX_TYPE})
    assert r.status_code == 201, r.text
    private = ec.generate_private_key(ec.SECP256R1())
    trust(c, private)
    r = c.post(f"{subject}/attestations", content=dsse(statement(digest), private))
    assert r.status_code == 201, r.text
    other = f"/v1/buckets/{other_bucket}/objects/vendored.jar"
    assert c.put(other, content=b"jar").status_code == 201
    r = c.post(f"{other}/sboms", content=sbom, headers={"Content-Type": CYCLONEDX_TYPE})
    assert r.status_code == 201, r.text
    other_sbom = r.json()["id"]
    manifest = image(c, repo)
    assert put_manifest(c, repo, "v1", manifest).status_code == 201
    index = index_of(OCI_INDEX, OCI_MANIFEST, manifest, "arm64")
    assert put_manifest(c, repo, "multi", index, OCI_INDEX).status_code == 201
    push_blob(c, repo, b"{}")
    push_blob(c, repo, sbom)
    referrer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": CYCLONEDX_TYPE,
            "config": {"mediaType": EMPTY, "digest": sha256(b"{}"), "size": 2},
            "layers": [{"mediaType": CYCLONEDX_TYPE, "digest": sha256(sbom), "size": len(sbom)}],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(manifest),
                "size": len(manifest),
            },
        }
    ).encode()
    r = put_manifest(c, repo, sha256(referrer), referrer)
    assert r.status_code == 201, r.text
    return {
        "object_digest": digest,
        "image_digest": sha256(manifest),
        "index_digest": sha256(index),
        "referrer_digest": sha256(referrer),
        "other_sbom": other_sbom,
    }


@contextlib.contextmanager
def root_browser(server: ServerProcess) -> Iterator[httpx.Client]:
    with browser(server) as c:
        assert login(c, user=ROOT_USER, password=ROOT_PASSWORD).status_code == 302
        yield c


def test_object_page_shows_signer_sbom_and_attestation(
    ui_server: ServerProcess, evidence: dict[str, str], reader_token: str
) -> None:
    with root_browser(ui_server) as c:
        page = c.get(f"/ui/buckets/{MINE}/object", params={"key": SIGNED})
        assert page.status_code == 200
        text = visible(page.text)
        assert "Signatures (1)" in text and "signed by william@yossarian.net" in text
        assert f"issuer {GITHUB}" in text
        assert "SBOMs (1)" in text and "cyclonedx" in text
        assert "Attestations (1)" in text and "https://slsa.dev/provenance/v1" in text
        links = dict(
            zip(
                ("signature", "sbom", "attestation"),
                re.findall(r'href="(/ui/evidence/[^"/]+)"', page.text),
                strict=True,
            )
        )
        signature = c.get(links["signature"])
        assert signature.status_code == 200
        assert "william@yossarian.net" in visible(signature.text)
        download = re.search(r'href="(/ui/evidence/[^"]+/download)"', signature.text).group(1)
        doc = c.get(download)
        assert doc.status_code == 200 and doc.content == data("bundle_v3.txt.sigstore")
        assert doc.headers["content-disposition"].startswith("attachment")
        assert doc.headers["content-security-policy"] == "sandbox"
        # The SBOM's component table, with licences, filtered.
        sbom = visible(c.get(links["sbom"]).text)
        assert "1 of 1 component" in sbom and "log4j-core 2.14.1 Apache-2.0" in sbom
        assert "0 of 1 component" in visible(c.get(links["sbom"], params={"q": "zlib"}).text)
        # The attestation's SLSA provenance, in words.
        provenance = visible(c.get(links["attestation"]).text)
        for fact in (
            "Source repository octo-org/octo-repo",
            "Ref refs/tags/1.21.0",
            "Commit 1ac93ce21ee526b36fd154b9058d97dfaa424c50",
            "Workflow .github/workflows/ci.yaml",
            "Run https://github.com/octo-org/octo-repo/actions/runs/10313983218/attempts/2",
        ):
            assert fact in provenance, (fact, provenance)
    with browser(ui_server) as anonymous:  # evidence of a private object: log in first
        for target in (links["sbom"], download):
            r = anonymous.get(target)
            assert r.status_code == 302 and r.headers["location"].startswith("/ui/login")


def test_image_pages_show_tags_layers_platforms_referrers_and_commands(
    ui_server: ServerProcess, evidence: dict[str, str]
) -> None:
    host = ui_server.url.removeprefix("http://")
    with root_browser(ui_server) as c:
        repos = c.get("/ui/repositories")
        assert repos.status_code == 200 and REPO in repos.text
        tags = c.get("/ui/repositories/tags", params={"name": REPO})
        assert tags.status_code == 200 and ">v1<" in tags.text and ">multi<" in tags.text
        page = c.get("/ui/repositories/manifest", params={"name": REPO, "ref": "v1"})
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert evidence["image_digest"] in text and "in 2 layers" in text
        assert "application/vnd.oci.image.layer.v1.tar+gzip" in text
        assert "Referrers (1)" in text and evidence["referrer_digest"] in text
        assert "SBOMs (1)" in text
        ref = f"{host}/{REPO}@{evidence['image_digest']}"
        assert f"skopeo copy --src-tls-verify=false docker://{ref}" in text
        assert f"oras pull --plain-http {ref}" in text
        multi = c.get("/ui/repositories/manifest", params={"name": REPO, "ref": "multi"})
        assert multi.status_code == 200
        assert "linux/arm64" in multi.text and evidence["image_digest"] in multi.text
    with ui_server.client(auth=ROOT) as admin:
        public = f"public/tool-{RUN}"
        assert put_manifest(admin, public, "1.0", image(admin, public)).status_code == 201
    with browser(ui_server) as anonymous:  # only public/** may be pulled anonymously
        r = anonymous.get("/ui/repositories")
        assert r.status_code == 200 and REPO not in r.text and public in r.text
        r = anonymous.get("/ui/repositories/tags", params={"name": REPO})
        assert r.status_code == 302
        r = anonymous.get("/ui/repositories/manifest", params={"name": public, "ref": "1.0"})
        assert r.status_code == 200 and "in 2 layers" in visible(r.text)


def test_sbom_search_finds_objects_and_images_the_visitor_may_read(
    ui_server: ServerProcess, evidence: dict[str, str], reader_token: str
) -> None:
    with root_browser(ui_server) as c:
        page = c.get("/ui/search", params={"name": "log4j-core"})
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert "3 results" in text and "Apache-2.0" in text
        assert f"{MINE}/{SIGNED}" in text and f"{OTHER}/vendored.jar" in text
        assert f"{REPO}@{evidence['image_digest']}" in text
        hrefs = [html.unescape(h) for h in re.findall(r'<td><a href="([^"]+)"', page.text)]
        assert link_for_object(MINE, SIGNED) in hrefs
        assert (
            "/ui/repositories/manifest?"
            + urllib.parse.urlencode({"name": REPO, "ref": evidence["image_digest"]})
            in hrefs
        )
        purl = c.get("/ui/search", params={"purl": CYCLONEDX["components"][0]["purl"]})
        assert "3 results" in purl.text
        assert "0 results" in c.get("/ui/search", params={"purl": "pkg:pypi/nothing"}).text
    with browser(ui_server) as c:
        assert login(c, reader_token).status_code == 302
        text = html.unescape(c.get("/ui/search", params={"name": "log4j-core"}).text)
        assert "2 results" in text and OTHER not in text
        for path in (
            f"/ui/evidence/{evidence['other_sbom']}",
            f"/ui/evidence/{evidence['other_sbom']}/download",
        ):
            r = c.get(path)
            assert r.status_code == 403 and "log4j" not in r.text


def link_for_object(bucket: str, key: str) -> str:
    return f"/ui/buckets/{bucket}/object?" + urllib.parse.urlencode({"key": key})


def test_verification_page_shows_each_rule(
    ui_server: ServerProcess, evidence: dict[str, str]
) -> None:
    def policy(identity: str) -> str:
        signer = {"sigstore": {"issuer": GITHUB, "identity": identity}}
        return json.dumps({"signatures": [signer], "sbom": True})

    with root_browser(ui_server) as c:
        form = c.get("/ui/verify", params={"kind": "object", "bucket": MINE, "key": SIGNED})
        assert form.status_code == 200 and f'value="{SIGNED}"' in form.text
        fields = {"_csrf": csrf_of(form.text), "kind": "object", "bucket": MINE, "key": SIGNED}
        r = c.post("/ui/verify", data={**fields, "policy": policy("william@yossarian.net")})
        assert r.status_code == 200, r.text
        assert ">Verified<" in r.text and r.text.count('<td class="pass">pass</td>') == 3
        r = c.post("/ui/verify", data={**fields, "policy": policy("mallory@example.com")})
        assert r.status_code == 200 and ">Not verified<" in r.text
        assert '<td class="fail">fail</td>' in r.text and "mallory@example.com" in r.text
        r = c.post("/ui/verify", data={**fields, "policy": "{not json"})
        assert r.status_code == 400 and "not valid JSON" in r.text
        r = c.post("/ui/verify", data={**fields, "_csrf": "", "policy": policy("x")})
        assert r.status_code == 403


def test_admin_creates_and_revokes_a_token_and_reads_the_audit_log(
    ui_server: ServerProcess, reader_token: str
) -> None:
    with root_browser(ui_server) as c:
        page = c.get("/ui/admin/tokens")
        assert page.status_code == 200
        name = f"ui-made-{RUN}"
        form = {"_csrf": csrf_of(page.text), "action": "create", "name": name, "roles": "reader"}
        r = c.post("/ui/admin/tokens", data=form)
        assert r.status_code == 200, r.text
        secret = re.search(r'<code id="new-secret">([^<]+)</code>', r.text).group(1)
        assert secret.startswith("zat_")
        auth = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{ui_server.url}/v1/buckets", headers=auth).status_code == 200
        listing = c.get("/ui/admin/tokens")
        assert name in listing.text and secret not in listing.text  # shown once
        token_id = secret.split("_")[1]
        r = c.post(
            "/ui/admin/tokens",
            data={"_csrf": csrf_of(listing.text), "action": "revoke", "id": token_id},
        )
        assert r.status_code == 302
        assert httpx.get(f"{ui_server.url}/v1/buckets", headers=auth).status_code == 401
        audit = c.get("/ui/admin/audit", params={"action": "ui:login", "decision": "allow"})
        assert audit.status_code == 200 and "ui:login" in audit.text
        assert "admin:RevokeToken" in c.get("/ui/admin/audit").text
    with browser(ui_server) as c:
        assert login(c, reader_token).status_code == 302
        assert "/ui/admin/tokens" not in c.get("/ui/").text
        for path in ("/ui/admin/tokens", "/ui/admin/access-keys", "/ui/admin/audit"):
            assert c.get(path).status_code == 403
        form = {"_csrf": csrf_of(c.get("/ui/").text), "action": "create", "name": "x"}
        assert c.post("/ui/admin/tokens", data={**form, "roles": "admin"}).status_code == 403


def test_admin_creates_and_revokes_an_s3_access_key(ui_server: ServerProcess) -> None:
    with root_browser(ui_server) as c:
        page = c.get("/ui/admin/access-keys")
        assert page.status_code == 200
        form = {"_csrf": csrf_of(page.text), "action": "create", "name": f"s3-{RUN}"}
        r = c.post("/ui/admin/access-keys", data={**form, "roles": "reader"})
        assert r.status_code == 200, r.text
        secret = html.unescape(re.search(r'<code id="new-secret">([^<]+)</code>', r.text)[1])
        key_id = re.search(r"\(<code>(ZAK[A-Z0-9]+)</code>\) was created", r.text)[1]
        names = [
            b["Name"] for b in s3_client(ui_server.url, key_id, secret).list_buckets()["Buckets"]
        ]
        assert MINE in names
        listing = c.get("/ui/admin/access-keys")
        assert key_id in listing.text and secret not in listing.text
        r = c.post(
            "/ui/admin/access-keys",
            data={"_csrf": csrf_of(listing.text), "action": "revoke", "id": key_id},
        )
        assert r.status_code == 302
        with pytest.raises(ClientError):
            s3_client(ui_server.url, key_id, secret).list_buckets()


# ---- a real browser -------------------------------------------------------------------------
def test_headless_chromium_logs_in_with_a_token_and_reads_an_objects_evidence(
    ui_server: ServerProcess, evidence: dict[str, str], reader_token: str, tmp_path: Path
) -> None:
    """Keyboard login with a token, then links clicked down to a signed object; the page's
    text as rendered, no script error or CSP violation, no serious or critical axe-core
    accessibility violation (light and dark), screenshots at 1440 and 360 px (light and dark),
    kept in the test's tmp directory."""

    shots: dict[str, bytes] = {}

    async def scenario(port: int) -> None:
        async with devtools_page(port) as page:
            await page.goto(f"{ui_server.url}/")  # a browser at "/" lands in the UI
            assert await page.evaluate("location.pathname") == "/ui/"
            await page.goto(f"{ui_server.url}/ui/login")
            assert await page.axe_violations() == []
            await page.type_into("#token", reader_token)
            await page.submit_with_enter()
            assert await page.evaluate("location.pathname") == "/ui/"
            home = await page.text()
            assert MINE in home and PUBLIC in home and OTHER not in home
            assert "zas_ui_session" not in await page.evaluate("document.cookie")  # HttpOnly
            problems: dict[str, list[str]] = {"/ui/": await page.axe_violations()}
            await page.click(f'a[href="/ui/buckets/{MINE}"]')
            await page.click('tr.folder a[href*="prefix=release"]')
            problems["bucket"] = await page.axe_violations()
            await page.click('a[href*="object?key=release"]')
            problems["object"] = await page.axe_violations()
            await page.viewport(1440, 900)
            text = await page.text()
            for expected in (
                SIGNED,
                evidence["object_digest"],
                "Signatures (1)",
                "signed by william@yossarian.net",
                f"issuer {GITHUB}",
                "SBOMs (1)",
                "https://slsa.dev/provenance/v1",
                f"zot-artifacts --url {ui_server.url} download {MINE}/{SIGNED}",
            ):
                assert expected in text, (expected, text)
            assert await page.evaluate("document.documentElement.classList.contains('js')")
            shots["object-1440.png"] = await page.screenshot()
            await page.viewport(360, 800, mobile=True)
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360
            shots["object-360.png"] = await page.screenshot()
            light = await page.evaluate("getComputedStyle(document.body).backgroundColor")
            await page.send(
                "Emulation.setEmulatedMedia",
                features=[{"name": "prefers-color-scheme", "value": "dark"}],
            )
            dark = await page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert light != dark, light
            shots["object-360-dark.png"] = await page.screenshot()
            problems["object, dark"] = await page.axe_violations()
            assert page.console_problems() == []
            for path in ("/ui/search?name=log4j-core", "/ui/verify", "/ui/repositories"):
                await page.goto(f"{ui_server.url}{path}")
                problems[path] = await page.axe_violations()
            # Log out (the header's button), log in as root by user and password: admin pages.
            await page.click("form[action='/ui/logout'] button")
            assert await page.evaluate("location.pathname") == "/ui/login"
            await page.type_into("#user", ROOT_USER)
            await page.type_into("#password", ROOT_PASSWORD)
            await page.submit_with_enter()
            assert "Tokens" in await page.text()
            manifest = f"/ui/repositories/manifest?name={REPO}&ref=v1"
            with ui_server.client(auth=ROOT) as admin:
                r = admin.post(
                    "/v1/webhooks",
                    json={"url": "http://127.0.0.1:9/a11y", "events": ["object.deleted"]},
                )
                assert r.status_code == 201, r.text
                admin_pages = ("tokens", "access-keys", "webhooks", f"webhooks/{r.json()['id']}")
            for path in (manifest, *(f"/ui/admin/{name}" for name in (*admin_pages, "audit"))):
                await page.goto(f"{ui_server.url}{path}")
                problems[path] = await page.axe_violations()
            await page.goto(f"{ui_server.url}{manifest}")
            await page.click('a[href^="/ui/evidence/"]')
            assert "Components" in await page.text()
            problems["sbom"] = await page.axe_violations()
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360
            await page.viewport(1440, 900)
            shots["sbom-1440.png"] = await page.screenshot()
            assert problems == {name: [] for name in problems}, problems

    with chromium_process(tmp_path / "profile") as port:
        asyncio.run(scenario(port))
    save_screenshots(shots, tmp_path)


def save_screenshots(shots: dict[str, bytes], tmp_path: Path) -> None:
    """Test artifacts: look at them. ZAS_UI_SCREENSHOTS=docs/images/ui refreshes docs/ui.md's."""
    out = [tmp_path, *(Path(d) for d in [os.environ.get("ZAS_UI_SCREENSHOTS", "")] if d)]
    for name, shot in shots.items():
        assert shot.startswith(b"\x89PNG") and len(shot) > 10_000, name
        for directory in out:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(shot)


def test_admin_manages_webhooks(ui_server: ServerProcess, reader_token: str) -> None:
    with root_browser(ui_server) as c:
        page = c.get("/ui/admin/webhooks")
        assert page.status_code == 200
        form = {"_csrf": csrf_of(page.text), "action": "create", "events": "object.deleted"}
        r = c.post("/ui/admin/webhooks", data={**form, "url": "http://10.1.2.3/hook"})
        assert r.status_code == 400 and "10.1.2.3" in visible(r.text)  # a private address
        r = c.post(
            "/ui/admin/webhooks",
            data={**form, "url": "http://127.0.0.1:9/hook", "description": "<i>ci</i>"},
        )
        assert r.status_code == 200, r.text
        secret = html.unescape(re.search(r'<code id="new-secret">([^<]+)</code>', r.text)[1])
        webhook_id = re.search(r"Webhook <code>(wh_[0-9a-f]+)</code> created", r.text)[1]
        with ui_server.client(auth=ROOT) as admin:
            listed = admin.get("/v1/webhooks").json()["webhooks"]
            assert [w["url"] for w in listed if w["id"] == webhook_id] == [
                "http://127.0.0.1:9/hook"
            ]
        listing = c.get("/ui/admin/webhooks")
        assert webhook_id in listing.text and secret not in listing.text
        assert "&lt;i&gt;ci&lt;/i&gt;" in listing.text
        # Edit it: URL, events, filter, paused; what /v1 shows is what was saved.
        page_path = f"/ui/admin/webhooks/{webhook_id}"
        edit = {"_csrf": csrf_of(c.get(page_path).text), "action": "edit"}
        changes = {
            "url": "http://127.0.0.1:10/new",
            "events": "object.*, bucket.created",
            "description": "release builds",
            "buckets": "releases-*",
            "key_prefix": "v1/",
        }  # "active" left unchecked: paused
        r = c.post(page_path, data={**edit, **changes})
        assert r.status_code == 200 and "Saved." in visible(r.text), r.text
        with ui_server.client(auth=ROOT) as admin:
            saved = admin.get(f"/v1/webhooks/{webhook_id}").json()
        assert saved["url"] == "http://127.0.0.1:10/new" and saved["active"] is False
        assert saved["events"] == ["object.*", "bucket.created"]
        assert saved["filter"] == {"buckets": ["releases-*"], "key_prefix": "v1/"}
        assert 'value="releases-*"' in r.text
        assert re.search(r'<input type="checkbox" name="active"( checked)?>', r.text)[1] is None
        for bad, why in (({"events": "nope.*"}, "names no event type"), ({"url": "ftp://x"}, "")):
            r = c.post(page_path, data={**edit, **changes, **bad})
            assert r.status_code == 400 and why in visible(r.text)
        with ui_server.client(auth=ROOT) as admin:  # nothing of a refused edit was kept
            assert admin.get(f"/v1/webhooks/{webhook_id}").json()["url"] == saved["url"]
        r = c.post(
            "/ui/admin/webhooks",
            data={"_csrf": csrf_of(listing.text), "action": "delete", "id": webhook_id},
        )
        assert r.status_code == 302 and webhook_id not in c.get("/ui/admin/webhooks").text
    with browser(ui_server) as c:
        assert login(c, reader_token).status_code == 302
        assert c.get("/ui/admin/webhooks").status_code == 403


def test_admin_reads_a_webhooks_deliveries_redelivers_and_rotates_its_secret(
    ui_server: ServerProcess, reader_token: str, tmp_path: Path
) -> None:
    receiver = Receiver(tmp_path)
    try:
        with ui_server.client(auth=ROOT) as admin:
            r = admin.post(
                "/v1/webhooks",
                json={"url": f"{receiver.url}/hook", "events": ["object.deleted"]},
            )
            assert r.status_code == 201, r.text
            webhook_id, first_secret = r.json()["id"], r.json()["secret"]
        page_path = f"/ui/admin/webhooks/{webhook_id}"
        with root_browser(ui_server) as c:
            assert f'href="{page_path}"' in c.get("/ui/admin/webhooks").text
            page = c.get(page_path)
            assert page.status_code == 200
            text = visible(page.text)
            assert f"{receiver.url}/hook" in text and "No deliveries." in text
            assert first_secret not in page.text
            # A test event: the receiver answers 500 once; the log shows the failed attempt.
            receiver.control(secrets=[first_secret], fail=1, status=500)
            r = c.post(page_path, data={"_csrf": csrf_of(page.text), "action": "test"})
            assert r.status_code == 200 and "Test event queued" in visible(r.text)
            got = receiver.wait(lambda g: len(g) == 1)
            assert got[0]["verified"] and got[0]["answered"] == 500
            delivery_id = got[0]["id"]

            def logged(expected: str) -> str:
                deadline = time.monotonic() + 20
                while True:
                    text = visible(c.get(page_path).text)
                    if expected in text:
                        return text
                    assert time.monotonic() < deadline, text
                    time.sleep(0.2)

            text = logged("HTTP 500")
            assert delivery_id in text and "webhook.test" in text
            # Redeliver it now (before its retry is due): the receiver gets it again.
            page = c.get(page_path)
            r = c.post(
                page_path,
                data={"_csrf": csrf_of(page.text), "action": "redeliver", "delivery": delivery_id},
            )
            assert r.status_code == 200, r.text
            assert f"Delivery {delivery_id} queued again." in visible(r.text)
            got = receiver.wait(lambda g: len(g) >= 2)
            assert got[1]["id"] == delivery_id and got[1]["answered"] != 500
            logged("delivered")
            # Rotate the secret with a grace: shown once; the next delivery verifies with
            # the new secret alone, and carries both signatures.
            page = c.get(page_path)
            r = c.post(
                page_path,
                data={"_csrf": csrf_of(page.text), "action": "rotate", "grace_hours": "1"},
            )
            assert r.status_code == 200, r.text
            new_secret = html.unescape(
                re.search(r'<code id="new-secret">([^<]+)</code>', r.text)[1]
            )
            assert new_secret != first_secret and "a previous one, signing until" in visible(r.text)
            again = c.get(page_path)
            assert new_secret not in again.text and first_secret not in again.text
            receiver.control(secrets=[new_secret])
            c.post(page_path, data={"_csrf": csrf_of(again.text), "action": "test"})
            got = receiver.wait(lambda g: len(g) >= 3)
            assert got[-1]["verified"]
            assert len(got[-1]["headers"]["webhook-signature"].split(" ")) == 2
            # Refusals: no CSRF token, a bad grace, an unknown delivery, an unknown webhook.
            assert c.post(page_path, data={"action": "rotate"}).status_code == 403
            r = c.post(
                page_path,
                data={"_csrf": csrf_of(again.text), "action": "rotate", "grace_hours": "lots"},
            )
            assert r.status_code == 400 and "number of hours" in visible(r.text)
            r = c.post(
                page_path,
                data={"_csrf": csrf_of(again.text), "action": "rotate", "grace_hours": "1000"},
            )
            assert r.status_code == 400 and "0 to 168 hours" in visible(r.text)
            r = c.post(
                page_path,
                data={"_csrf": csrf_of(again.text), "action": "redeliver", "delivery": "d_nope"},
            )
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
            assert c.get("/ui/admin/webhooks/wh_nope").status_code == 404
        with ui_server.client(auth=ROOT) as admin:
            audit = admin.get("/v1/audit", params={"resource": f"admin:webhooks/{webhook_id}"})
            reasons = {record["reason"] for record in audit.json()["records"]}
            assert {"secret rotated", f"redeliver {delivery_id}"} <= reasons, reasons
            admin.delete(f"/v1/webhooks/{webhook_id}")
        with browser(ui_server) as c:  # a reader sees no webhook
            assert login(c, reader_token).status_code == 302
            assert c.get(page_path).status_code == 403
    finally:
        receiver.stop()


def test_verification_gates_at_a_glance(ui_server: ServerProcess, evidence: dict[str, str]) -> None:
    signed_by_william = {
        "signatures": [{"sigstore": {"issuer": GITHUB, "identity": "william@yossarian.net"}}]
    }
    with ui_server.client(auth=ROOT) as admin:
        r = admin.put(
            f"/v1/buckets/{MINE}/verification",
            json={"name": "signed", "mode": "audit", "policy": signed_by_william},
        )
        assert r.status_code == 200, r.text
        r = admin.put(
            "/v1/repositories/ui-app-*/verification",
            json={"name": "images-signed", "mode": "audit", "policy": signed_by_william},
        )
        assert r.status_code == 200, r.text
        try:
            with root_browser(ui_server) as c:
                assert "signed (audit)" in visible(c.get("/ui/").text)
                page = c.get(f"/ui/buckets/{MINE}/object", params={"key": SIGNED})
                assert "Verification gate signed (audit): passes" in visible(page.text)
                page = c.get(f"/ui/buckets/{MINE}/object", params={"key": "docs/readme.md"})
                assert "Verification gate signed (audit): fails" in visible(page.text)
                page = c.get("/ui/repositories/manifest", params={"name": REPO, "ref": "v1"})
                assert "Verification gate images-signed (audit): fails" in visible(page.text)
                form = c.get("/ui/verify")
                text = visible(form.text)
                assert f"bucket {MINE} signed audit" in text
                assert "repositories ui-app-* images-signed audit" in text
                use = re.search(r'href="([^"]*gate=bucket%3A[^"]*)"', form.text).group(1)
                prefilled = c.get(html.unescape(use))
                assert "william@yossarian.net" in html.unescape(prefilled.text)
        finally:
            admin.delete(f"/v1/buckets/{MINE}/verification")
            admin.delete("/v1/repositories/ui-app-*/verification")


def test_bad_input_gets_a_readable_error_page_never_a_crash(ui_server: ServerProcess) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    with root_browser(ui_server) as c:
        cases = [
            (f"/ui/buckets/{MINE}", {"token": hostile}, 400),
            (f"/ui/buckets/{MINE}", {"limit": "lots"}, 400),
            (f"/ui/buckets/{MINE}", {"limit": "100000"}, 400),
            ("/ui/buckets/no-such-bucket-here", {}, 404),
            (f"/ui/buckets/{MINE}/object", {"key": hostile}, 404),
            (f"/ui/buckets/{MINE}/object", {}, 400),
            ("/ui/repositories/tags", {"name": hostile}, 400),
            ("/ui/repositories/manifest", {"name": REPO, "ref": hostile}, 404),
            ("/ui/repositories/manifest", {"name": REPO, "ref": "sha256:" + "0" * 64}, 404),
            ("/ui/evidence/" + urllib.parse.quote(hostile, safe=""), {}, 404),
            ("/ui/admin/audit", {"since": hostile}, 400),
            ("/ui/admin/audit", {"decision": hostile}, 400),
            ("/ui/search", {"purl": hostile}, 200),
        ]
        for path, params, status in cases:
            r = c.get(path, params=params)
            assert r.status_code == status, (path, params, r.status_code, r.text[-500:])
            assert r.headers["content-type"].startswith("text/html"), (path, params)
            assert "<img src=x" not in r.text, (path, params)
        form = c.get("/ui/verify")
        r = c.post(
            "/ui/verify",
            data={"_csrf": csrf_of(form.text), "kind": "digest", "digest": hostile, "policy": "{}"},
        )
        assert r.status_code == 400 and "<img src=x" not in r.text
