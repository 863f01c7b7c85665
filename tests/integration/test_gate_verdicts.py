"""Verification gate verdicts are kept until what they depend on changes (issue 23), on every
replica: two real servers share one metadata store and one blob directory (the scale-out shape,
DESIGN.md §4), and a change made through one is obeyed by the other within a second or two —
a signature attached, a trusted key revoked. Every gated download stays audited: its
``supplychain:gate`` record in the store, the verdict on the request's access line, and a
refusal also on the audit log."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.evidence import trust
from tests.fixtures.server import ServerProcess
from tests.integration.test_gate_bypass import sbom_doc

# Another replica sees a change within the generation poll (1 s) and a request; give it room
# on a loaded machine, yet far below the verdicts' 60 s backstop (and the old 10 s TTL).
REPLICA_DEADLINE_S = 5.0


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def replicas(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one metadata store and one blob directory (the second reaches the
    first's data directory through a symlink: its own ready file and log)."""
    base = tmp_path_factory.mktemp(f"gate-verdicts-{request.param}")
    data = base / "data"
    uri = metadata_uri_for(request.param, data)
    first = ServerProcess(data, metadata_uri=uri).start()
    (base / "data-b").symlink_to(data, target_is_directory=True)
    try:
        second = ServerProcess(base / "data-b", metadata_uri=uri).start()
    except Exception:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


def gated_object(c: httpx.Client, mode: str, policy: dict[str, Any]) -> tuple[str, str, bytes]:
    """A new bucket holding one object, gated by ``policy`` in ``mode``: (bucket, url, bytes)."""
    bucket = f"verdicts-{uuid.uuid4().hex[:10]}"
    body = uuid.uuid4().bytes * 100
    assert c.put(f"/v1/buckets/{bucket}").status_code == 201
    url = f"/v1/buckets/{bucket}/objects/app.bin"
    assert c.put(url, content=body).status_code == 201
    gate = {"name": "release", "mode": mode, "policy": policy}
    assert c.put(f"/v1/buckets/{bucket}/verification", json=gate).status_code == 200
    return bucket, url, body


def within(deadline_s: float, check: Callable[[], bool]) -> float:
    """Seconds until ``check()`` held (polled); fails after ``deadline_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < deadline_s, f"not within {deadline_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def gate_records(c: httpx.Client, bucket: str) -> list[dict[str, Any]]:
    r = c.get("/v1/audit", params={"action": "supplychain:gate", "resource": bucket})
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["records"]))  # oldest first


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    out = []
    for line in Path(server.log_path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_an_sbom_attached_after_a_refusal_lets_the_next_download_through_at_once(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, _ = replicas
    with a.client() as c:
        bucket, url, body = gated_object(c, "enforce", {"sbom": True})
        r = c.get(url)
        assert r.status_code == 403 and r.json()["code"] == "VerificationFailed", r.text
        assert c.post(f"{url}/sboms", content=sbom_doc("app")).status_code == 201
        # Same process: no wait at all (the old verdict was kept 10 s).
        r = c.get(url)
        assert r.status_code == 200 and r.content == body
        assert r.headers["x-verification"] == "passed"
        records = gate_records(c, bucket)
        assert [x["decision"] for x in records] == ["deny", "allow"], records
        for x in records:
            assert x["resource"] == f"{bucket}/app.bin"
            assert x["detail"]["policy"] == "release" and x["detail"]["mode"] == "enforce"
            assert x["detail"]["subject_digest"].startswith("sha256:")
        assert "no SBOM" in records[0]["reason"]


def test_a_signature_attached_on_one_replica_opens_the_gate_on_the_other(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    signer = ec.generate_private_key(ec.SECP256R1())
    with a.client() as ca, b.client() as cb:
        key_id = trust(ca, signer)
        _, url, body = gated_object(ca, "enforce", {"signatures": [{"key": key_id}]})
        # Both replicas have refused it, so both hold a 'deny' verdict.
        for c in (ca, cb):
            assert c.get(url).status_code == 403
        signature = base64.b64encode(signer.sign(body, ec.ECDSA(hashes.SHA256())))
        assert cb.post(f"{url}/signatures", content=signature).status_code == 201
        assert cb.get(url).status_code == 200  # the replica that took it: at once
        within(REPLICA_DEADLINE_S, lambda: ca.get(url).status_code == 200)
        assert ca.get(url).headers["x-verification"] == "passed"

        # Worse than a stale deny: a stale allow. The key is revoked on A; B, which has just
        # let the download through, must refuse it again.
        assert cb.get(url).status_code == 200
        assert ca.delete(f"/v1/keys/{key_id}").status_code == 204
        assert ca.get(url).status_code == 403
        within(REPLICA_DEADLINE_S, lambda: cb.get(url).status_code == 403)
        r = cb.get(url)
        assert r.json()["code"] == "VerificationFailed" and "release" in r.json()["message"]


def test_a_gate_changed_on_one_replica_applies_on_the_other(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    with a.client() as ca, b.client() as cb:
        bucket, url, _ = gated_object(ca, "audit", {"sbom": True})
        r = cb.get(url)
        assert r.status_code == 200 and r.headers["x-verification-policy"] == "release (audit)"
        gate = {"name": "release", "mode": "enforce", "policy": {"sbom": True}}
        assert ca.put(f"/v1/buckets/{bucket}/verification", json=gate).status_code == 200
        within(REPLICA_DEADLINE_S, lambda: cb.get(url).status_code == 403)


def test_a_download_an_audit_gate_fails_is_recorded_and_on_its_access_line(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, _ = replicas
    with a.client() as c:
        bucket, url, body = gated_object(c, "audit", {"sbom": True})
        r = c.get(url, headers={"X-Request-Id": f"audit-mode-{bucket}"})
        assert r.status_code == 200 and r.content == body
        assert r.headers["x-verification"] == "failed"
        [record] = gate_records(c, bucket)
        assert record["decision"] == "deny" and record["detail"]["mode"] == "audit"
        assert record["request_id"] == f"audit-mode-{bucket}"

        enforced, url2, _ = gated_object(c, "enforce", {"sbom": True})
        refused = c.get(url2, headers={"X-Request-Id": f"enforce-mode-{enforced}"})
        assert refused.status_code == 403

    def lines() -> list[dict[str, Any]]:
        return [x for x in log_lines(a) if x.get("request_id", "").endswith(bucket)
                or x.get("request_id", "").endswith(enforced)]  # fmt: skip

    def access_lines() -> list[dict[str, Any]]:
        return [x for x in lines() if x.get("logger") == "zot_artifact_store.access"]

    # Both requests' access lines (written once each response is out) and the refusal's audit line.
    within(REPLICA_DEADLINE_S, lambda: len(access_lines()) >= 2 and len(lines()) >= 3)
    served = [x for x in lines() if x["request_id"] == f"audit-mode-{bucket}"]
    [access] = [x for x in served if x["logger"] == "zot_artifact_store.access"]
    assert access["status"] == 200 and access["verification"] == "failed: release (audit)"
    # Served, so a read: its verdict is in the store and on the access line, not a second
    # line on the audit log; a refusal is on both.
    assert not [x for x in served if x["logger"] == "zot_artifact_store.audit"]
    refusal = [x for x in lines() if x["request_id"] == f"enforce-mode-{enforced}"]
    [audit_line] = [x for x in refusal if x["logger"] == "zot_artifact_store.audit"]
    assert audit_line["audit"]["action"] == "supplychain:gate"
    assert audit_line["audit"]["decision"] == "deny"
    [access2] = [x for x in refusal if x["logger"] == "zot_artifact_store.access"]
    assert access2["status"] == 403 and access2["verification"] == "failed: release (enforce)"
