"""Large SBOMs (tens of thousands of components): validated in time linear in their size, with
the same verdicts and reasons as small ones, while the server keeps answering other requests.

The validators of CycloneDX JSON (uniqueItems) and SPDX (id and relationship lookups) used to
be quadratic: 8,000 components took two minutes, 60,000 froze the server for over ten."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess

CDX_JSON = "application/vnd.cyclonedx+json"
SPDX_JSON = "application/spdx+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server on the embedded metadata backend: the validators do not depend on it."""
    proc = ServerProcess(tmp_path_factory.mktemp("sbom-scale") / "data")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def subject(client: httpx.Client) -> tuple[str, str]:
    bucket = f"sbom-{uuid.uuid4().hex[:10]}"
    assert client.put(f"/v1/buckets/{bucket}").status_code == 201
    r = client.put(f"/v1/buckets/{bucket}/objects/app.bin", content=uuid.uuid4().bytes)
    assert r.status_code == 201, r.text
    return bucket, "app.bin"


def component(i: int, tag: str) -> dict[str, Any]:
    return {
        "type": "library",
        "name": f"{tag}-lib-{i}",
        "version": f"1.{i % 7}.0",
        "purl": f"pkg:pypi/{tag}-lib-{i}@1.{i % 7}.0",
        "licenses": [{"license": {"id": "MIT"}}],
    }


def cyclonedx(components: list[dict[str, Any]]) -> bytes:
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": components}
    return json.dumps(doc).encode()


def spdx(n: int, tag: str) -> dict[str, Any]:
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": tag,
        "documentNamespace": f"https://example.com/spdx/{tag}",
        "creationInfo": {"created": "2026-11-28T00:00:00Z", "creators": ["Tool: zas-tests"]},
        "packages": [
            {
                "SPDXID": f"SPDXRef-p{i}",
                "name": f"{tag}-pkg-{i}",
                "versionInfo": "1.0",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": f"pkg:npm/{tag}-pkg-{i}@1.0",
                    }
                ],
            }
            for i in range(n)
        ],
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": f"SPDXRef-p{i}",
            }
            for i in range(n)
        ],
    }


def test_large_cyclonedx_sbom_is_attached_while_the_server_keeps_serving(
    server: ServerProcess, client: httpx.Client
) -> None:
    bucket, key = subject(client)
    tag = uuid.uuid4().hex[:8]
    body = cyclonedx([component(i, tag) for i in range(20_000)])
    sent = threading.Event()
    attached: dict[str, httpx.Response] = {}

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]
        sent.set()  # the whole document is on its way: the server reads it and validates

    def attach() -> None:
        with server.client() as c:
            attached["r"] = c.post(
                f"/v1/buckets/{bucket}/objects/{key}/sboms",
                content=chunks(),
                headers={"Content-Type": CDX_JSON, "Content-Length": str(len(body))},
                timeout=600,
            )

    worker = threading.Thread(target=attach)
    worker.start()
    try:
        assert sent.wait(120)
        # Another client's request is answered before the attach returns.
        with server.client() as other:
            listed = other.get("/v1/buckets", timeout=120)
        answered_before_attach = "r" not in attached
        assert listed.status_code == 200
        assert any(b["name"] == bucket for b in listed.json()["buckets"]), listed.text
    finally:
        worker.join()
    assert answered_before_attach
    r = attached["r"]
    assert r.status_code == 201, r.text[:500]
    assert r.json()["format"] == "cyclonedx"
    assert r.json()["details"]["components"] == "20000"

    found = client.get("/v1/sboms/search", params={"purl": f"pkg:pypi/{tag}-lib-12345"}).json()
    assert [(x["subject"], x["component"]["version"]) for x in found["results"]] == [
        (f"{bucket}/{key}", "1.4.0")
    ]
    named = client.get("/v1/sboms/search", params={"name": f"{tag}-lib-19999"}).json()
    assert [x["subject"] for x in named["results"]] == [f"{bucket}/{key}"]


def test_large_cyclonedx_sbom_with_a_duplicate_component_is_refused(client: httpx.Client) -> None:
    bucket, key = subject(client)
    tag = uuid.uuid4().hex[:8]
    components = [component(i, tag) for i in range(10_000)]
    # The same component again (its keys in another order), far from the first one.
    components.append(dict(reversed(list(components[17].items()))))
    sboms = f"/v1/buckets/{bucket}/objects/{key}/sboms"
    r = client.post(sboms, content=cyclonedx(components), headers={"Content-Type": CDX_JSON})
    assert r.status_code == 422, r.text[:500]
    assert r.json()["code"] == "InvalidEvidence"
    message = r.json()["message"]
    assert message.startswith("the SBOM is invalid: [{") and "has non-unique elements" in message
    assert len(message) < 1000  # the reason quotes the array, cut in its middle
    assert client.get(sboms).json()["sboms"] == []
    search = client.get("/v1/sboms/search", params={"name": f"{tag}-lib-17"}).json()
    assert search["results"] == []

    # Small arrays keep their verdicts: of strings, and of objects with keys in another order.
    def with_dependencies(depends_on: list[Any]) -> bytes:
        doc = json.loads(cyclonedx([component(0, tag)]))
        doc["dependencies"] = [{"ref": "a", "dependsOn": depends_on}]
        return json.dumps(doc).encode()

    r = client.post(
        sboms, content=with_dependencies(["a", "b"]), headers={"Content-Type": CDX_JSON}
    )
    assert r.status_code == 201, r.text
    r = client.post(
        sboms, content=with_dependencies(["a", "a"]), headers={"Content-Type": CDX_JSON}
    )
    assert r.status_code == 422 and "['a', 'a'] has non-unique elements" in r.json()["message"]

    first = component(1, tag)
    again = dict(reversed(list(first.items())))
    r = client.post(sboms, content=cyclonedx([first, again]), headers={"Content-Type": CDX_JSON})
    assert r.status_code == 422 and "has non-unique elements" in r.json()["message"], r.text
    assert len(client.get(sboms).json()["sboms"]) == 1  # the first one only


def test_large_spdx_document_is_validated_with_its_reasons(client: httpx.Client) -> None:
    bucket, key = subject(client)
    sboms = f"/v1/buckets/{bucket}/objects/{key}/sboms"
    tag = uuid.uuid4().hex[:8]
    doc = spdx(8_000, tag)
    broken = json.loads(json.dumps(doc))
    broken["relationships"].append(
        {
            "spdxElementId": "SPDXRef-p7",
            "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": "SPDXRef-missing",
        }
    )
    broken["packages"].append(dict(broken["packages"][3000], name="again"))
    r = client.post(sboms, content=json.dumps(broken).encode(), headers={"Content-Type": SPDX_JSON})
    assert r.status_code == 422, r.text[:500]
    message = r.json()["message"]
    assert 'did not find the referenced spdx_id "SPDXRef-missing"' in message
    assert "every spdx_id must be unique" in message and "SPDXRef-p3000" in message
    assert client.get(sboms).json()["sboms"] == []

    r = client.post(sboms, content=json.dumps(doc).encode(), headers={"Content-Type": SPDX_JSON})
    assert r.status_code == 201, r.text[:500]
    assert r.json()["format"] == "spdx" and r.json()["details"]["components"] == "8000"
    found = client.get("/v1/sboms/search", params={"purl": f"pkg:npm/{tag}-pkg-7777"}).json()
    assert [x["subject"] for x in found["results"]] == [f"{bucket}/{key}"]
