"""The JavaScript SDK in a real browser: headless Chromium (Debian ``chromium``) opens a page
(sdk/js/test/browser/scenario.html) that imports the SDK's build as it is and runs a small
scenario against a live server with auth on and ``http.cors.allowOrigins`` set to the page's
origin: create a bucket, upload with progress reports, compare the store's sha256 with Web
Crypto's, list, read a byte range, get a typed not-found error, and read the headers the store
exposes (ETag, X-Request-Id). A page served from an origin the store does not allow is refused
by the browser (CORS) and nothing reaches the store.

The pages come from a small static server started here on 127.0.0.1 (one port per origin);
Chromium dumps the page's DOM once its load event fires, which the page holds back (an image
the static server answers only when the scenario has posted its results) until it is done."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "js"
PAGE = SDK / "test" / "browser" / "scenario.html"
ADMIN = ("browser-admin", "browser-admin-password")
SCENARIO_TIMEOUT = 90.0  # seconds the page may take; the browser is killed after a bit more


class PageServer:
    """Serves the scenario page, the SDK's build (``/sdk/``) and @noble/hashes (``/noble/``)
    on 127.0.0.1; ``/hold`` answers once the page has POSTed its results to ``/done``."""

    def __init__(self, build: Path) -> None:
        self.done = threading.Event()
        self.posted: str | None = None
        roots = {
            "/sdk/": build,
            "/noble/": SDK / "node_modules" / "@noble" / "hashes",
        }
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                path = urllib.parse.urlsplit(path).path
                for prefix, root in roots.items():
                    if path.startswith(prefix):
                        target = (root / path.removeprefix(prefix)).resolve()
                        if target.is_relative_to(root.resolve()):
                            return str(target)
                return str(PAGE if path == "/scenario.html" else PAGE.parent / "missing")

            def do_GET(self) -> None:
                if self.path == "/hold":
                    server.done.wait(SCENARIO_TIMEOUT)
                    self.send_response(204)
                    self.end_headers()
                    return
                super().do_GET()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/done":
                    server.posted = body.decode()
                    server.done.set()
                self.send_response(204)
                self.end_headers()

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, (
        "chromium is not installed: the browser test needs Debian's `chromium` "
        "(run `make setup`, or `apt-get install chromium`)"
    )
    return path


def run_page(page: PageServer, fragment: dict[str, str], profile: Path) -> dict[str, Any]:
    """Open the scenario page in headless Chromium; the results it wrote into its DOM."""
    page.done.clear()
    page.posted = None
    url = f"{page.origin}/scenario.html#{urllib.parse.urlencode(fragment)}"
    cmd = [
        chromium(), "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
        "--disable-extensions", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
        f"--user-data-dir={profile}", f"--timeout={int(SCENARIO_TIMEOUT * 1000)}",
        "--dump-dom", url,
    ]  # fmt: skip
    # Its own session, so the browser's helper processes go with it whatever happens.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        dom, log = proc.communicate(timeout=SCENARIO_TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        dom, log = proc.communicate()
        pytest.fail(f"chromium did not finish in {SCENARIO_TIMEOUT + 30:.0f}s:\n{log[-4000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the browser, or helpers it left behind
    # The page's console and the browser's errors (without the noise of a machine with no D-Bus).
    console = "\n".join(
        line
        for line in log.splitlines()
        if ("CONSOLE" in line or "ERROR" in line) and "dbus" not in line
    )
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found, f"chromium exited {proc.returncode} without the page's DOM:\n{log[-4000:]}"
    text = html.unescape(found.group(1))
    assert text != "pending", f"the scenario did not finish in time:\n{console[-4000:]}"
    results = json.loads(text)
    assert page.posted is not None and json.loads(page.posted) == results
    assert results["ok"], f"the scenario failed: {results.get('error')}\n{console[-4000:]}"
    return results


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK's build (`npm run build`), into a directory of this module's own: the JS suite
    may be building sdk/js/dist in another worker at the same time."""
    chromium()  # first: a machine without it is told so before anything starts
    assert (SDK / "node_modules").is_dir(), "sdk/js has no node_modules: run make setup"
    out_dir = tmp_path_factory.mktemp("sdk-js-build")
    out = subprocess.run(
        ["npm", "run", "build", "--", "--outDir", str(out_dir)], cwd=SDK, capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, f"npm run build:\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}"
    assert (out_dir / "index.js").is_file(), f"no index.js in {out_dir}"
    return out_dir


@pytest.fixture(scope="module")
def allowed(build: Path) -> Iterator[PageServer]:
    with PageServer(build) as page:
        yield page


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, allowed: PageServer) -> Iterator[ServerProcess]:
    env = {"ZAS_ROOT_USER": ADMIN[0], "ZAS_ROOT_PASSWORD": ADMIN[1]}
    config = {"http": {"cors": {"allowOrigins": [allowed.origin]}}}
    proc = ServerProcess(tmp_path_factory.mktemp("sdk-browser") / "data", env=env, config=config)
    yield proc.start()
    proc.stop()


@pytest.fixture(scope="module")
def token(store: ServerProcess) -> str:
    with store.client(auth=ADMIN) as admin:
        made = admin.post("/v1/tokens", json={"name": "browser", "roles": ["admin"]})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


def test_the_sdk_runs_a_scenario_in_headless_chromium(
    allowed: PageServer, store: ServerProcess, token: str, tmp_path: Path
) -> None:
    fragment = {"store": store.url, "token": token, "bucket": "from-a-browser", "mode": "full"}
    r = run_page(allowed, fragment, tmp_path / "profile")
    size = 12 * 1024 * 1024
    assert r["origin"] == allowed.origin
    assert r["bucket"] == "from-a-browser"
    upload = r["upload"]
    assert upload["size"] == size
    # The store's sha256 of what it received is Web Crypto's of what the page sent.
    assert upload["sha256"] == r["webcrypto_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", upload["sha256"])
    # Progress: one report per 5 MiB part, growing to the whole, then the small upload's.
    done = [d for d, total in upload["progress"][:3]]
    assert sorted(done) == done and done[-1] == size, upload["progress"]
    assert all(total == size for _, total in upload["progress"][:3])
    assert upload["progress"][3:] == [[21, 21]]
    small = r["small"]
    assert small["size"] == 21 and small["sha256"] == r["small_webcrypto_sha256"]
    assert r["list"] == [["dir/big.bin", size], ["dir/hello.txt", 21]]
    assert r["range"] == {
        "status": 206,
        "contentRange": f"bytes 1000-1999/{size}",
        "length": 1000,
        "equal": True,
        "etag": upload["etag"],
        "sha256": upload["sha256"],
        "size": size,
    }
    assert r["download"] == {"length": size, "sha256": upload["sha256"]}
    nf = r["not_found"]
    assert nf["thrown"] and nf["name"] == "NotFoundError", nf
    assert nf["notFoundError"] and nf["storeError"] and nf["isNotFound"]
    assert nf["status"] == 404 and nf["code"] == "NoSuchKey", nf
    assert nf["requestId"], nf
    headers = r["headers"]
    assert headers["status"] == 200
    assert headers["etag"].strip('"') == small["etag"] != ""
    assert headers["requestId"] and headers["sha256"] == small["sha256"]
    assert headers["missingStatus"] == 404 and headers["missingRequestId"]
    assert headers["missingBody"]["request_id"] == headers["missingRequestId"]
    assert r["deleted"] is True


def test_a_page_from_another_origin_is_refused_by_the_browser(
    build: Path, store: ServerProcess, token: str, tmp_path: Path
) -> None:
    with PageServer(build) as other:
        fragment = {"store": store.url, "token": token, "bucket": "from-elsewhere"}
        r = run_page(other, {**fragment, "mode": "refused"}, tmp_path / "profile")
    refused = r["refused"]
    # fetch rejects without an HTTP answer the page may see: the SDK's status-0 network error.
    assert refused["thrown"] and refused["name"] == "StoreError", refused
    assert refused["status"] == 0 and refused["code"] == "ConnectionError", refused
    assert "Failed to fetch" in refused["cause"], refused
    # The preflight was refused, so the PUT was never sent: no bucket.
    with store.client(auth=ADMIN) as admin:
        assert admin.get("/v1/buckets/from-elsewhere").status_code == 404
    pre = httpx.options(
        f"{store.url}/v1/buckets/from-elsewhere",
        headers={"Origin": other.origin, "Access-Control-Request-Method": "PUT"},
    )
    assert pre.status_code == 403 and "Access-Control-Allow-Origin" not in pre.headers
