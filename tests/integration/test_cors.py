"""CORS for /v1 (http.cors): a page on an allowed origin gets Access-Control-Allow-Origin and
the exposed headers on every answer (errors included), its preflights are answered without
credentials for the methods the route takes; other origins, S3 and OCI get nothing; without
the setting nothing changes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.server import ServerProcess

ROOT = ("cors-admin", "cors-admin-password")
PAGE = "https://ui.example.com"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"ZAS_ROOT_USER": ROOT[0], "ZAS_ROOT_PASSWORD": ROOT[1]}
    config = {"http": {"cors": {"allowOrigins": [PAGE], "maxAge": "5m"}}}
    proc = ServerProcess(tmp_path_factory.mktemp("cors") / "data", env=env, config=config)
    yield proc.start()
    proc.stop()


def preflight(url: str, origin: str, method: str, headers: str = "") -> httpx.Response:
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return httpx.options(url, headers=h)


def test_an_allowed_origin_reads_answers_and_their_headers(store: ServerProcess) -> None:
    with store.client(auth=ROOT, headers={"Origin": PAGE}) as c:
        assert c.put("/v1/buckets/cors").status_code in (200, 201)
        r = c.put("/v1/buckets/cors/objects/a.txt", content=b"hello")
        assert r.status_code == 201
        assert r.headers["Access-Control-Allow-Origin"] == PAGE
        assert r.headers["Vary"] == "Origin"
        exposed = {h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"ETag", "X-Request-Id", "X-Checksum-Sha256", "Content-Range"} <= exposed
        assert "Access-Control-Allow-Credentials" not in r.headers
        missing = c.get("/v1/buckets/cors/objects/none")  # an error carries them too
        assert missing.status_code == 404
        assert missing.headers["Access-Control-Allow-Origin"] == PAGE
    unauthenticated = httpx.get(f"{store.url}/v1/buckets", headers={"Origin": PAGE})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["Access-Control-Allow-Origin"] == PAGE


def test_preflights_need_no_credentials_and_name_the_routes_methods(store: ServerProcess) -> None:
    url = f"{store.url}/v1/buckets/cors/objects/b.bin"
    r = preflight(url, PAGE, "PUT", "authorization, content-type, x-checksum-sha256")
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == PAGE
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) >= {"GET", "PUT", "DELETE"}
    assert r.headers["Access-Control-Allow-Headers"] == (
        "authorization, content-type, x-checksum-sha256"
    )
    assert r.headers["Access-Control-Max-Age"] == "300"
    # A method the route does not take, or another origin: refused, and nothing allowed.
    no = preflight(f"{store.url}/v1/buckets", PAGE, "DELETE")
    assert no.status_code == 403 and "Access-Control-Allow-Methods" not in no.headers
    other = preflight(url, "https://evil.example", "PUT")
    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.json()["code"] == "AccessDenied"
    # OPTIONS that is not a preflight is still not a method of this API.
    plain = httpx.options(f"{store.url}/v1/buckets")
    assert plain.status_code == 405


def test_other_origins_and_other_apis_get_no_cors(store: ServerProcess) -> None:
    with store.client(auth=ROOT, headers={"Origin": "https://evil.example"}) as c:
        r = c.get("/v1/buckets")
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    with store.client(auth=ROOT, headers={"Origin": PAGE}) as c:
        assert "Access-Control-Allow-Origin" not in c.get("/v2/").headers
        assert "Access-Control-Allow-Origin" not in c.get("/cors/a.txt").headers


def test_without_the_setting_nothing_changes(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/v1/buckets", headers={"Origin": PAGE})
    assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers
    pre = preflight(f"{server.url}/v1/buckets", PAGE, "GET")
    assert pre.status_code == 403 and "Access-Control-Allow-Origin" not in pre.headers


@pytest.mark.parametrize(
    "cors",
    [
        {"allowOrigins": ["https://ui.example.com/app"]},
        {"allowOrigins": ["ui.example.com"]},
        {"allowOrigins": ["*"], "allowCredentials": True},
    ],
)
def test_a_bad_cors_setting_stops_the_server(tmp_path, cors: dict) -> None:  # type: ignore[no-untyped-def]
    proc = ServerProcess(tmp_path / "data", config={"http": {"cors": cors}})
    with pytest.raises(RuntimeError, match="cors"):
        proc.start(timeout=20)
