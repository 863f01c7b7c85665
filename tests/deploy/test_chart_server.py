"""The chart against a real server: a store started from the chart's rendered config and Secrets
(as the pod would get them) passes the `helm test` script, and the packaged chart goes into that
store's OCI registry with Helm's own push and comes back byte-identical."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import pytest

from tests.deploy.cases import materialize
from tests.deploy.k8s import CHART, find, render
from tests.fixtures.server import ServerProcess, signing_key_pem

SMOKE_TEST = CHART / "files" / "smoke-test.py"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server run from the chart's default install (generated root password and shared keys)
    plus a signing key: the ConfigMap's config.yaml and the Deployment's ZAS_*_FILE variables."""
    tmp = tmp_path_factory.mktemp("chart-store")
    objects = render({"supplyChain": {"signing": {"enabled": True, "key": signing_key_pem()}}})
    secrets = tmp / "secrets"
    env = materialize(objects, secrets)
    config = tmp / "config.yaml"
    text = find(objects, "ConfigMap", "zas-zot-artifact-store")["data"]["config.yaml"]
    config.write_text(text.replace("/run/secrets/zas", str(secrets)))
    server = ServerProcess(tmp / "data", env=env, config=config, extra_args=["--host", "127.0.0.1"])
    server.start()
    password = Path(env["ZAS_ROOT_PASSWORD_FILE"]).read_text()
    try:
        yield {
            "server": server,
            "password": password,
            "password_file": env["ZAS_ROOT_PASSWORD_FILE"],
        }
    finally:
        server.stop()


def smoke_test(
    url: str, password_file: str, ready_timeout: int = 5
) -> subprocess.CompletedProcess[str]:
    env = {
        "STORE_URL": url,
        "STORE_USER": "admin",
        "STORE_PASSWORD_FILE": password_file,
        "STORE_READY_TIMEOUT": str(ready_timeout),
    }
    return subprocess.run(
        [sys.executable, str(SMOKE_TEST)], env=env, capture_output=True, text=True, timeout=60
    )


def test_helm_test_script_passes_against_the_store(store: dict[str, Any], tmp_path: Path) -> None:
    server = store["server"]
    done = smoke_test(server.url, store["password_file"])
    assert done.returncode == 0, done.stderr
    assert "ready: metadata ok, storage ok" in done.stdout
    assert "round trip ok: 262144 bytes" in done.stdout
    # It cleans up after itself.
    with server.client(auth=("admin", store["password"])) as c:
        names = [b["name"] for b in c.get("/v1/buckets").json()["buckets"]]
    assert not [n for n in names if n.startswith("helm-test-")]
    # And it fails when the round trip does.
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    done = smoke_test(server.url, str(wrong))
    assert done.returncode != 0
    assert "401" in done.stderr
    done = smoke_test("http://127.0.0.1:9", store["password_file"], ready_timeout=1)
    assert done.returncode != 0 and "not ready after 1s" in done.stderr


def test_chart_round_trips_through_the_stores_registry(
    store: dict[str, Any], tmp_path: Path
) -> None:
    server = store["server"]
    host = server.url.removeprefix("http://")
    archive = Path(helm.package(CHART, destination=tmp_path))
    assert archive.name == "zot-artifact-store-0.1.0.tgz"
    with helm.RegistryClient(
        plain_http=True, credentials_file=tmp_path / "registry.json"
    ) as client:
        client.login(host, "admin", store["password"], plain_http=True)
        pushed = client.push(archive, f"oci://{host}/charts", plain_http=True)
        assert pushed, pushed
        assert client.tags(f"oci://{host}/charts/zot-artifact-store") == ["0.1.0"]
        pulled_dir = tmp_path / "pulled"
        pulled_dir.mkdir()
        client.pull(
            f"oci://{host}/charts/zot-artifact-store",
            version="0.1.0",
            destination=pulled_dir,
            plain_http=True,
        )
    pulled = pulled_dir / archive.name
    assert pulled.read_bytes() == archive.read_bytes()
    # Stored as a Helm chart artifact, by the media types helm and other tools look for.
    with server.client(auth=("admin", store["password"])) as c:
        r = c.get(
            "/v2/charts/zot-artifact-store/manifests/0.1.0",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
    assert r.status_code == 200, r.text
    manifest = r.json()
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_CONTENT]
    assert manifest["layers"][0]["size"] == archive.stat().st_size
    # The pulled archive is a chart Helm loads and renders like the directory.
    with helm.Chart.load(pulled) as chart:
        assert chart.metadata["version"] == "0.1.0"
        assert chart.render(values={}, name="zas", namespace="store")
    # Anonymous clients get nothing.
    assert httpx.get(f"{server.url}/v2/charts/zot-artifact-store/tags/list").status_code == 401
