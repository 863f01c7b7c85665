"""What operators see: the Grafana dashboard's metrics exist after a short workload, the
operational metrics count what happened, and readiness names what fails (issue 20)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "zot-artifact-store.json"
USER, PASSWORD = "operator", "operator-password"


def dashboard_metrics() -> set[str]:
    """Every metric name a panel of the dashboard queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names |= set(re.findall(r"\bzas_[a-z0-9_]+", target["expr"]))
    return names


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value of a Prometheus exposition text."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found


def value(found: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the series of ``name`` that carry ``labels``."""
    total = 0.0
    for series, v in found.items():
        base, _, rest = series.partition("{")
        if base == name and all(f'{k}="{val}"' in rest for k, val in labels.items()):
            total += v
    return total


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The metrics of a server after a short workload on every API."""
    data = tmp_path_factory.mktemp("observed") / "data"
    proc = ServerProcess(data, env={"ZAS_ROOT_USER": USER, "ZAS_ROOT_PASSWORD": PASSWORD}).start()
    body = b"observed content " * 64
    try:
        with proc.client(auth=(USER, PASSWORD)) as c:
            assert c.put("/v1/buckets/observed").status_code == 201
            assert c.put("/v1/buckets/observed/objects/a.bin", content=body).is_success
            assert c.get("/v1/buckets/observed/objects/a.bin").content == body
            assert c.put("/observed/s3.bin", content=body).status_code == 200
            assert c.get("/observed/s3.bin").content == body
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            start = c.post(f"/v2/observed/img/blobs/uploads/?digest={digest}", content=body)
            assert start.status_code == 201, start.text
            assert c.get(f"/v2/observed/img/blobs/{digest}").content == body
            subject = {"bucket": "observed", "key": "a.bin"}
            assert c.post("/v1/sign", json={"subject": subject}).status_code == 201
            key_id = c.get("/v1/keys").json()["keys"][0]["id"]
            policy = {"signatures": [{"key": key_id}]}
            verified = c.post("/v1/verify", json={"subject": subject, "policy": policy})
            assert verified.json()["verified"] is True
            gate = {"name": "signed", "mode": "enforce", "policy": {"sbom": True}}
            assert c.put("/v1/buckets/observed/verification", json=gate).status_code == 200
            refused = c.get("/v1/buckets/observed/objects/a.bin")
            assert refused.status_code == 403
            assert c.get("/v1/buckets", auth=(USER, "wrong-password")).status_code == 401
            anonymous = httpx.get(f"{proc.url}/v1/buckets/observed/objects/a.bin")
            assert anonymous.status_code == 401
            left_open = c.post("/v2/observed/img/blobs/uploads/")
            assert left_open.status_code == 202
            # Left open after a first chunk, which makes its storage session (an upload that
            # has received nothing holds none).
            chunk = c.patch(left_open.headers["location"], content=b"first chunk")
            assert chunk.status_code == 202, chunk.text
            text = c.get("/metrics").text
    finally:
        assert proc.stop() == 0
    return samples(text)


def test_every_metric_the_dashboard_queries_exists(operated: dict[str, float]) -> None:
    queried = dashboard_metrics()
    assert len(queried) >= 25, queried
    exposed = {series.partition("{")[0] for series in operated}
    assert queried - exposed == set()


def test_operational_metrics_count_the_workload(operated: dict[str, float]) -> None:
    m = operated
    size = len(b"observed content " * 64)
    for api in ("v1", "s3", "oci"):
        assert value(m, "zas_uploads_total", api=api, result="ok") >= 1, api
        assert value(m, "zas_upload_bytes_total", api=api) >= size, api
    # The gate's 403 and the anonymous 401.
    assert value(m, "zas_downloads_total", api="v1", result="client_error") == 2
    assert value(m, "zas_download_bytes_total", api="s3") == size
    assert value(m, "zas_signing_operations_total", kind="signature", result="ok") == 1
    assert value(m, "zas_verifications_total", result="passed") == 1
    assert value(m, "zas_verification_rules_total", kind="key", result="passed") == 1
    assert (
        value(m, "zas_gate_decisions_total", target="bucket", mode="enforce", decision="fail") == 1
    )
    assert value(m, "zas_authentications_total", method="basic", result="failed") == 1
    assert value(m, "zas_authentications_total", method="basic", result="ok") >= 10
    assert value(m, "zas_authorization_denials_total", action="s3:GetObject") == 1
    assert value(m, "zas_metadata_operations_total", backend="sqlite", operation="put_object") >= 2
    assert value(m, "zas_storage_operations_total", backend="filesystem", operation="read") >= 2
    assert value(m, "zas_upload_sessions_open") == 1
    assert 0 < value(m, "zas_storage_free_bytes") <= value(m, "zas_storage_capacity_bytes")
    # Bounded labels: no bucket, key, digest or principal anywhere.
    for series in m:
        assert "observed" not in series and "sha256" not in series and USER not in series


def probes(proc: ServerProcess) -> tuple[httpx.Response, dict[str, Any]]:
    """``/health/ready`` and ``/health``'s body of a server started for them (then stopped)."""
    proc.start()
    try:
        with proc.client() as c:
            return c.get("/health/ready"), c.get("/health").json()
    finally:
        assert proc.stop() == 0


def test_ready_fails_below_the_free_space_reserve(tmp_path: Path) -> None:
    env = {"ZAS_STORAGE_MINFREEPERCENT": "100"}
    ready, health = probes(ServerProcess(tmp_path / "data", env=env))
    assert ready.status_code == 503
    problem = ready.json()
    assert "storage check failed" in problem["message"] and "reserve" in problem["message"]
    storage = problem["errors"]["checks"]["storage"]
    assert storage["status"] == "fail" and storage["backend"] == "filesystem"
    assert storage["free_bytes"] < storage["reserve_bytes"] == storage["total_bytes"]
    assert problem["errors"]["failing"] == ["storage"]
    assert (health["status"], health["failing"]) == ("fail", ["storage"])


def test_unreachable_oidc_issuer_degrades_but_stays_ready(tmp_path: Path) -> None:
    issuer = "http://127.0.0.1:9/realms/gone"  # the discard port: nothing listens
    config = {"auth": {"oidc": [{"issuer": issuer, "audience": "zas"}]}}
    ready, health = probes(ServerProcess(tmp_path / "data", config=config))
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["failing"]) == ("degraded", [f"oidc:{issuer}"])
    assert body["checks"][f"oidc:{issuer}"]["status"] == "fail"
    assert body["checks"]["metadata"]["status"] == body["checks"]["storage"]["status"] == "ok"
    assert health["status"] == "degraded" and health["uptime_seconds"] > 0
    assert health["versions"]["server"] == health["version"]
    assert health["versions"]["metadata_schema"] >= 1
