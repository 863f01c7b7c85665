"""Logging in to the web UI at the OpenID provider (issue 24): authorization code with PKCE
against a real provider (``tests/fixtures/oidc/provider.js``, a public client and a login
form), on both metadata backends. Headless Chromium logs in as a person would; plain HTTP
proves the refusals (a tampered state, a callback without this browser's login cookie, an
error from the issuer, a code that does not redeem) create no session; the session renews
its access token with the refresh token."""

from __future__ import annotations

import asyncio
import copy
import html
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cdp import Page, chromium_process, devtools_page
from tests.fixtures.evidence import DATA
from tests.fixtures.mongo import free_port
from tests.fixtures.oidc import DEFAULT_AUDIENCE, DEFAULT_CONFIG, OIDCProvider
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from tests.integration.test_signatures import GITHUB
from tests.integration.test_ui import (
    BROWSER,
    CYCLONEDX,
    SIGNED,
    csrf_of,
    save_screenshots,
    seed_evidence,
    set_cookie,
    visible,
)
from zot_artifact_store.api.ui.base import REFRESH_MARGIN_S

ROOT = (ROOT_USER, ROOT_PASSWORD)
RUN = uuid.uuid4().hex[:8]
PRIVATE, PUBLIC = f"oidc-priv-{RUN}", f"oidc-pub-{RUN}"
OTHER, REPO = f"oidc-other-{RUN}", f"oidc-app-{RUN}"  # alice is denied OTHER
ALICE = "alice-0001"
UI_CLIENT = "zas-ui"
# Access tokens live 25 s; the UI renews them when less than REFRESH_MARGIN_S (15 s) are
# left, so after 10 s (time enough for a slow machine to show no renewal before).
TOKEN_TTL_S = 25


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[tuple[ServerProcess, OIDCProvider]]:
    """A server whose UI logs people in at the provider (alice: reader; bob: no role)."""
    base = tmp_path_factory.mktemp(f"ui-oidc-{request.param}")
    port = free_port()
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["access_token_ttl"] = TOKEN_TTL_S
    # carol's refresh tokens expire before her access token needs renewing.
    config["users"].append(
        {
            "username": "carol",
            "password": "carol-pw",
            "sub": "carol-0003",
            "client_roles": {DEFAULT_AUDIENCE: ["reader"]},
            "refresh_token_ttl": 2,
        }
    )
    config["clients"].append(
        {
            "client_id": UI_CLIENT,
            "public": True,
            "redirect_uris": [f"http://127.0.0.1:{port}/ui/login/callback"],
            "post_logout_redirect_uris": [f"http://127.0.0.1:{port}/ui/login"],
        }
    )
    with OIDCProvider(config, workdir=base / "idp") as idp:
        proc = ServerProcess(
            base / "data",
            metadata_uri=metadata_uri_for(request.param, base / "data"),
            env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
            config={
                # This host may say the browser came over HTTPS (X-Forwarded-Proto).
                "http": {"trustedProxies": ["127.0.0.1/32"]},
                "extensions": {
                    "supplychain": {"trustedRoot": str(DATA / "trusted_root.staging.json")}
                },
                "auth": {
                    "oidc": [
                        {
                            "issuer": idp.issuer,
                            "audience": DEFAULT_AUDIENCE,
                            "leeway": "0s",
                            "ui": {"clientId": UI_CLIENT},
                        }
                    ]
                },
            },
            extra_args=["--port", str(port)],  # the redirect URI the provider knows
        )
        proc.start()
        try:
            with proc.client(auth=ROOT) as c:
                for name, body in ((PRIVATE, {}), (PUBLIC, {"public_read": True}), (OTHER, {})):
                    assert c.put(f"/v1/buckets/{name}", json=body).status_code == 201
                r = c.put(f"/v1/buckets/{PRIVATE}/objects/release.txt", content=b"v1")
                assert r.status_code == 201, r.text
                seed_evidence(c, PRIVATE, OTHER, REPO)
            deny = {  # alice, a reader, may not read OTHER: its bucket policy says so
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": [f"oidc:{idp.issuer}#{ALICE}"]},
                        "Action": "*",
                        "Resource": [f"arn:aws:s3:::{OTHER}", f"arn:aws:s3:::{OTHER}/*"],
                    }
                ],
            }
            admin_s3 = s3_client(proc.url, ROOT_USER, ROOT_PASSWORD)
            admin_s3.put_bucket_policy(Bucket=OTHER, Policy=json.dumps(deny))
            admin_s3.close()
            yield proc, idp
        finally:
            proc.stop()


def browser(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30.0, headers=BROWSER)


def at_provider(server: ServerProcess, authorize: str, user: str, password: str) -> str:
    """What the browser does at the provider: open the authorization URL, fill in the login
    form, follow the redirects; the URL it is sent back to (the UI's callback)."""
    with httpx.Client(timeout=30.0) as idp:
        r = idp.get(authorize)
        for _ in range(10):
            location = r.headers.get("location")
            if location is None:
                action = re.search(r'<form method="post" action="([^"]+)"', r.text)
                assert action, r.text
                url = urllib.parse.urljoin(str(r.url), html.unescape(action[1]))
                r = idp.post(url, data={"username": user, "password": password})
                continue
            target = urllib.parse.urljoin(str(r.url), location)
            if target.startswith(server.url):
                return target
            r = idp.get(target)
    raise AssertionError(f"the provider did not send the browser back: {r.status_code} {r.text}")


def start_login(c: httpx.Client, next_page: str | None = None) -> str:
    r = c.get("/ui/login/oidc", params={"next": next_page} if next_page else {})
    assert r.status_code == 302, r.text
    return r.headers["location"]


def oidc_login(
    server: ServerProcess, c: httpx.Client, user: str, password: str, next_page: str | None = None
) -> httpx.Response:
    callback = at_provider(server, start_login(c, next_page), user, password)
    return c.get(callback.removeprefix(server.url))


def test_login_page_offers_oidc_and_the_request_carries_pkce_state_and_nonce(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    server, idp = site
    with browser(server) as c:
        page = c.get("/ui/login", params={"next": f"/ui/buckets/{PRIVATE}"})
        assert "Log in with OIDC" in visible(page.text)
        r = c.get("/ui/login/oidc", params={"next": f"/ui/buckets/{PRIVATE}"})
        assert r.status_code == 302
        authorize = urllib.parse.urlsplit(r.headers["location"])
        assert (
            f"{authorize.scheme}://{authorize.netloc}{authorize.path}"
            == (idp.discovery()["authorization_endpoint"])
        )
        query = dict(urllib.parse.parse_qsl(authorize.query))
        assert query["response_type"] == "code" and query["client_id"] == UI_CLIENT
        assert query["redirect_uri"] == f"{server.url}/ui/login/callback"
        assert query["code_challenge_method"] == "S256"
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
        assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
        assert set(query["scope"].split()) == {"openid", "profile"}
        cookie = set_cookie(r, "zas_ui_oidc")
        flags = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/ui/login"} <= flags, cookie
        for secret in (query["state"], query["nonce"]):
            assert secret not in cookie  # sealed
        assert "zas_ui_session" not in r.headers.get("set-cookie", "")
        # Behind a proxy terminating TLS: the cookie is Secure, the redirect URI https.
        r = c.get("/ui/login/oidc", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in set_cookie(r, "zas_ui_oidc").lower().split("; ")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["location"]).query))
        assert query["redirect_uri"].startswith("https://")


def test_a_person_logs_in_at_the_provider_and_sees_what_their_roles_allow(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    server, idp = site
    with browser(server) as c:  # alice: a reader
        r = oidc_login(server, c, "alice", "alice-pw", next_page=f"/ui/buckets/{PRIVATE}")
        assert r.status_code == 302, r.text
        assert r.headers["location"] == f"/ui/buckets/{PRIVATE}"
        flags = set_cookie(r, "zas_ui_session").lower()
        assert "httponly" in flags and "samesite=lax" in flags and "path=/ui" in flags
        page = c.get(f"/ui/buckets/{PRIVATE}")
        assert page.status_code == 200 and "release.txt" in visible(page.text)
        assert "alice" in visible(page.text)
        assert c.get("/ui/admin/tokens").status_code == 403  # a reader is no admin
        r = c.post("/ui/logout", data={"_csrf": csrf_of(page.text)})
        assert r.status_code == 302 and r.headers["location"] == "/ui/login?logged_out=oidc"
        # The login page offers to end the session at the provider too (RP-initiated logout).
        page = c.get(r.headers["location"])
        link = re.search(r'<a id="idp-logout" href="([^"]+)"', page.text)
        assert link and "logged out of the store" in visible(page.text), page.text
        end = urllib.parse.urlsplit(html.unescape(link[1]))
        assert f"{end.scheme}://{end.netloc}{end.path}" == idp.discovery()["end_session_endpoint"]
        assert dict(urllib.parse.parse_qsl(end.query)) == {
            "client_id": UI_CLIENT,
            "post_logout_redirect_uri": f"{server.url}/ui/login",
        }
        r = c.get(f"/ui/buckets/{PRIVATE}")
        assert r.status_code == 302 and r.headers["location"].startswith("/ui/login")
    with browser(server) as c:  # bob: no role at all
        assert oidc_login(server, c, "bob", "bob-pw").status_code == 302
        home = visible(c.get("/ui/").text)
        assert "bob" in home and PUBLIC in home and PRIVATE not in home
        r = c.get(f"/ui/buckets/{PRIVATE}")
        assert r.status_code == 403 and "release.txt" not in r.text
    with server.client(auth=ROOT) as admin:
        r = admin.get("/v1/audit", params={"action": "ui:login", "decision": "allow"})
        assert r.status_code == 200, r.text
        assert any("oidc alice" in (e.get("reason") or "") for e in r.json()["records"]), r.text


def refused(r: httpx.Response, status: int, reason: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[-800:])
    assert reason in visible(r.text), visible(r.text)
    assert "zas_ui_session=" not in " ".join(r.headers.get_list("set-cookie")).replace(
        'zas_ui_session="";', ""
    ), r.headers.get_list("set-cookie")


def test_tampered_state_is_refused_and_makes_no_session(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    server, _ = site
    with browser(server) as c:
        callback = at_provider(server, start_login(c), "alice", "alice-pw")
        tampered = re.sub(r"state=[^&]+", "state=" + "A" * 32, callback)
        r = c.get(tampered.removeprefix(server.url))
        refused(r, 400, "state mismatch")
        assert c.get(f"/ui/buckets/{PRIVATE}").status_code == 302  # still not logged in


def test_callback_without_this_browsers_login_cookie_is_refused(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    """The code alone logs nobody in: a browser that did not start the login (no sealed
    verifier) is refused, and so is the started one replaying a used callback."""
    server, _ = site
    with browser(server) as c:
        callback = at_provider(server, start_login(c), "alice", "alice-pw")
        with browser(server) as other:
            refused(other.get(callback.removeprefix(server.url)), 400, "not started in this")
        assert c.get(callback.removeprefix(server.url)).status_code == 302  # its owner: fine
    with browser(server) as c:
        callback = at_provider(server, start_login(c), "alice", "alice-pw")
        assert c.get(callback.removeprefix(server.url)).status_code == 302
        c.cookies.clear()
        refused(c.get(callback.removeprefix(server.url)), 400, "not started in this")


def test_code_without_its_pkce_verifier_does_not_redeem(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    """Someone who intercepts the code cannot use it: the provider wants the verifier, which
    only the server has (sealed in the browser's cookie)."""
    server, idp = site
    with browser(server) as c:
        callback = at_provider(server, start_login(c), "alice", "alice-pw")
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
        r = httpx.post(
            idp.discovery()["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": UI_CLIENT,
                "redirect_uri": f"{server.url}/ui/login/callback",
            },
            timeout=10,
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        # A code the provider does not redeem is a clear page, and no session.
        wrong = callback.replace(f"code={code}", "code=" + "x" * len(code))
        refused(c.get(wrong.removeprefix(server.url)), 401, "invalid_grant")


def test_error_from_the_issuer_is_shown_escaped_and_makes_no_session(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    server, _ = site
    with browser(server) as c:
        state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start_login(c)).query))["state"]
        r = c.get(
            "/ui/login/callback",
            params={
                "error": "access_denied",
                "error_description": "<script>alert(1)</script> the user said no",
                "state": state,
            },
        )
        refused(r, 401, "access_denied: <script>alert(1)</script> the user said no")
        assert "<script>alert(1)" not in r.text
        assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_session_renews_its_access_token_with_the_refresh_token(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    server, _ = site
    with browser(server) as c:
        assert oidc_login(server, c, "alice", "alice-pw").status_code == 302
        first = c.get(f"/ui/buckets/{PRIVATE}")
        assert first.status_code == 200 and "zas_ui_session" not in str(first.headers)
        time.sleep(TOKEN_TTL_S - REFRESH_MARGIN_S + 1.5)  # now less than the margin is left
        renewed = c.get(f"/ui/buckets/{PRIVATE}")
        assert renewed.status_code == 200 and "release.txt" in visible(renewed.text)
        assert "zas_ui_session=" in set_cookie(renewed, "zas_ui_session")  # resealed
        time.sleep(1)
        assert c.get(f"/ui/buckets/{PRIVATE}").status_code == 200


def test_session_ends_when_the_issuer_refuses_to_renew_it(
    site: tuple[ServerProcess, OIDCProvider],
) -> None:
    server, _ = site
    with browser(server) as c:
        assert oidc_login(server, c, "carol", "carol-pw").status_code == 302
        assert c.get(f"/ui/buckets/{PRIVATE}").status_code == 200
        # Her refresh token has expired by the time her access token needs renewing.
        time.sleep(TOKEN_TTL_S - REFRESH_MARGIN_S + 1.5)
        r = c.get(f"/ui/buckets/{PRIVATE}")
        assert r.status_code == 302 and r.headers["location"].startswith("/ui/login"), r.text
        assert 'zas_ui_session="";' in set_cookie(r, "zas_ui_session").replace("=;", '="";')
        assert c.get(f"/ui/buckets/{PRIVATE}").status_code == 302
    with server.client(auth=ROOT) as admin:
        r = admin.get("/v1/audit", params={"action": "ui:refresh", "decision": "deny"})
        records = r.json()["records"]
        assert any("carol" in e["principal"] and "invalid_grant" in e["reason"] for e in records)


async def until(page: Page, path: str) -> None:
    """Wait for the browser to arrive at ``path`` (after a chain of redirects)."""
    for _ in range(100):
        if await page.evaluate("location.pathname") == path:
            return
        await asyncio.sleep(0.1)
    assert await page.evaluate("location.pathname") == path


def test_headless_chromium_logs_in_at_the_provider(
    site: tuple[ServerProcess, OIDCProvider], tmp_path: Path
) -> None:
    server, _ = site
    shots: dict[str, bytes] = {}

    async def scenario(port: int) -> None:
        async with devtools_page(port) as page:
            await page.viewport(1440, 900)
            await page.goto(f"{server.url}/ui/buckets/{PRIVATE}")
            assert await page.evaluate("location.pathname") == "/ui/login"
            assert await page.axe_violations() == []
            shots["login-oidc-1440.png"] = await page.screenshot()
            await page.click("#oidc-login")  # off to the provider's login form
            assert (await page.evaluate("location.pathname")).startswith("/interaction/")
            await page.type_into("#username", "alice")
            await page.type_into("#password", "alice-pw")
            await page.submit_with_enter()
            await until(page, f"/ui/buckets/{PRIVATE}")  # back through the callback
            text = await page.text()
            assert "release.txt" in text and "alice" in text, text
            assert "zas_ui_session" not in await page.evaluate("document.cookie")
            await page.goto(f"{server.url}/ui/admin/tokens")
            assert "403 · AccessDenied" in await page.text()
            await page.goto(f"{server.url}/ui/")
            await page.click("form[action='/ui/logout'] button")
            assert await page.evaluate("location.pathname") == "/ui/login"
            await page.goto(f"{server.url}/ui/buckets/{PRIVATE}")
            assert await page.evaluate("location.pathname") == "/ui/login"
            # Single sign-on: the provider still knows alice, so she is back without a form.
            await page.click("#oidc-login")
            await until(page, f"/ui/buckets/{PRIVATE}")
            # Log out of both: the store, then the provider (its confirmation page).
            await page.click("form[action='/ui/logout'] button")
            assert "log out there too" in await page.text()
            await page.click("#idp-logout")
            await page.click("#logout-yes")
            assert await page.evaluate("location.pathname") == "/ui/login"
            await page.click("#oidc-login")  # now the provider asks again
            assert (await page.evaluate("location.pathname")).startswith("/interaction/")
            # No script error or CSP violation (the 403 page and the provider's missing
            # favicon are failed loads, as they should be).
            problems = page.console_problems()
            assert [p for p in problems if not p.startswith("Failed to load resource")] == []

    with chromium_process(tmp_path / "profile") as port:
        asyncio.run(scenario(port))
    save_screenshots(shots, tmp_path)


def test_headless_chromium_a_person_finds_a_signed_artifact_verifies_it_and_searches_a_purl(
    site: tuple[ServerProcess, OIDCProvider], tmp_path: Path
) -> None:
    """Issue 24's whole journey, in one browser session of a person logged in at the OpenID
    provider: find the artifact, see who signed it and what is in it, run a policy and read
    the verdict per rule, search a purl across buckets and images — and see nothing of the
    bucket her policy denies."""
    server, _ = site
    purl = CYCLONEDX["components"][0]["purl"]  # type: ignore[index]
    policy = json.dumps(
        {"signatures": [{"sigstore": {"issuer": GITHUB, "identity": "william@yossarian.net"}}]}
        | {"sbom": True}
    )

    async def scenario(port: int) -> None:
        async with devtools_page(port) as page:
            await page.viewport(1440, 900)
            await page.goto(f"{server.url}/ui/login")
            await page.click("#oidc-login")
            await page.type_into("#username", "alice")
            await page.type_into("#password", "alice-pw")
            await page.submit_with_enter()
            await until(page, "/ui/")
            home = await page.text()
            assert PRIVATE in home and OTHER not in home, home
            # Find the artifact by browsing down to it.
            await page.click(f'a[href="/ui/buckets/{PRIVATE}"]')
            await page.click('tr.folder a[href*="prefix=release"]')
            await page.click('a[href*="object?key=release"]')
            text = await page.text()
            for expected in (
                SIGNED,
                "Signatures (1)",
                "signed by william@yossarian.net",
                f"issuer {GITHUB}",
                "SBOMs (1)",
                "https://slsa.dev/provenance/v1",
            ):
                assert expected in text, (expected, text)
            object_page = await page.evaluate("location.href")
            # What is in it: the SBOM's components, with their licences.
            await page.click('section[aria-labelledby="sbom-h"] a[href^="/ui/evidence/"]')
            sbom = await page.text()
            assert "Components" in sbom and "log4j-core" in sbom and "Apache-2.0" in sbom
            # Run a policy against it: a verdict per rule.
            await page.goto(object_page)
            await page.click('a[href^="/ui/verify?kind=object"]')  # the object's own link
            await page.evaluate("document.querySelector('#policy').value = ''")
            await page.type_into("#policy", policy)
            await page.click('form[action="/ui/verify"] button[type="submit"]')
            verdict = await page.text()
            assert "Verified" in verdict and "Not verified" not in verdict, verdict
            rows = await page.evaluate(
                "[...document.querySelectorAll('td.pass, td.fail')].map(c => c.textContent)"
            )
            assert rows and set(rows) == {"pass"}, rows
            # Search a purl across buckets and images: what she may read, nothing of OTHER.
            await page.goto(f"{server.url}/ui/search")
            await page.type_into("#purl", purl)
            await page.click('form[action="/ui/search"] button[type="submit"]')
            found = await page.text()
            assert "2 results" in found and f"{PRIVATE}/{SIGNED}" in found, found
            assert REPO in found and OTHER not in found
            assert await page.axe_violations() == []
            # The bucket her policy denies stays closed, by link or by URL.
            await page.goto(f"{server.url}/ui/buckets/{OTHER}")
            assert "403 · AccessDenied" in await page.text()
            problems = page.console_problems()
            assert [p for p in problems if not p.startswith("Failed to load resource")] == []

    with chromium_process(tmp_path / "profile") as port:
        asyncio.run(scenario(port))
