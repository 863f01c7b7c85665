"""Host and X-Forwarded-* trust (issue 19, finding 9), against the running server: without
``http.externalUrl`` the URLs handed out follow the request's Host (the embedded default) and
the server warns at start when auth is on; ``X-Forwarded-For``/``-Proto``/``-Host`` are
believed only from ``http.trustedProxies``; with ``externalUrl`` nothing a client sends
changes the URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)
AUTH_ENV = {"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD}
FORWARDED = {
    "X-Forwarded-For": "6.6.6.6, 198.51.100.3",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "artifacts.example.com",
}


def start(base: Path, name: str, **env: str) -> ServerProcess:
    proc = ServerProcess(base / name, env={**AUTH_ENV, **env}).start()
    with httpx.Client(base_url=proc.url) as c:
        assert c.put("/v1/buckets/fwd-bucket", auth=ROOT).status_code == 201
        r = c.put("/v1/buckets/fwd-bucket/objects/k", content=b"v", auth=ROOT)
        assert r.status_code == 201, r.text
    return proc


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    base = tmp_path_factory.mktemp("forwarded")
    procs = {
        "plain": start(base, "plain"),
        "proxied": start(base, "proxied", ZAS_HTTP_TRUSTEDPROXIES="127.0.0.0/8, ::1/128"),
        "external": start(
            base,
            "external",
            ZAS_HTTP_EXTERNALURL="https://store.example.org",
            ZAS_HTTP_TRUSTEDPROXIES="127.0.0.1/32",
        ),
    }
    yield procs
    for proc in procs.values():
        proc.stop()


def handed_out(server: ServerProcess, headers: dict[str, str]) -> tuple[str, str, str]:
    """(a presigned URL, the registry's token realm, the audited source address)."""
    with httpx.Client(base_url=server.url) as c:
        url = c.post(
            "/v1/presign", json={"bucket": "fwd-bucket", "key": "k"}, auth=ROOT, headers=headers
        ).json()["url"]
        challenge = c.get("/v2/", headers=headers).headers["www-authenticate"]
        realm = challenge.split('realm="', 1)[1].split('"', 1)[0]
        c.put("/v1/buckets/fwd-bucket/objects/k2", content=b"w", auth=ROOT, headers=headers)
        records = c.get(
            "/v1/audit", params={"resource": "fwd-bucket/k2", "limit": "1"}, auth=ROOT
        ).json()["records"]
        return url, realm, records[0]["source_ip"]


def warnings(server: ServerProcess) -> list[str]:
    return [line["message"] for line in server.log_lines() if line.get("level") == "warning"]


def test_without_trusted_proxies_forwarding_headers_are_ignored(
    servers: dict[str, ServerProcess],
) -> None:
    server = servers["plain"]
    url, realm, source = handed_out(server, FORWARDED)
    assert url.startswith(f"http://127.0.0.1:{server.port}/v1/buckets/fwd-bucket/objects/k?")
    assert realm == f"http://127.0.0.1:{server.port}/v2/token"
    assert source == "127.0.0.1"
    # The embedded default follows the Host the client used ...
    url, realm, _ = handed_out(server, {"Host": f"localhost:{server.port}"})
    assert url.startswith(f"http://localhost:{server.port}/") and realm.startswith(
        "http://localhost"
    )
    # ... and says at start that, with auth on, this should be configured.
    assert any("http.externalUrl is unset" in m for m in warnings(server))


def test_a_trusted_proxy_sets_client_address_scheme_and_host(
    servers: dict[str, ServerProcess],
) -> None:
    server = servers["proxied"]
    url, realm, source = handed_out(server, FORWARDED)
    assert url.startswith("https://artifacts.example.com/v1/buckets/fwd-bucket/objects/k?")
    assert realm == "https://artifacts.example.com/v2/token"
    # The right-most address the trusted proxy did not vouch for: the client's own claim
    # ("6.6.6.6") further left is not believed.
    assert source == "198.51.100.3"
    # The URL handed out works through that host (here: straight back to the server).
    path = url.split("artifacts.example.com", 1)[1]
    assert httpx.get(server.url + path).content == b"v"
    # A malformed forwarded host is ignored.
    url, _, _ = handed_out(server, {"X-Forwarded-Host": "evil.example/path?x="})
    assert url.startswith(f"http://127.0.0.1:{server.port}/")


def test_external_url_wins_and_silences_the_warning(servers: dict[str, ServerProcess]) -> None:
    server = servers["external"]
    url, realm, source = handed_out(server, FORWARDED)
    assert url.startswith("https://store.example.org/v1/buckets/fwd-bucket/objects/k?")
    assert realm == "https://store.example.org/v2/token"
    assert source == "198.51.100.3"
    assert not any("http.externalUrl" in m for m in warnings(server))
