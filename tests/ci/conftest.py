"""Fixtures shared by the CI suite's tests (the actions' and the Tekton Tasks'): a real server
that trusts a test OIDC issuer (GitHub-shaped tokens, and Kubernetes service-account tokens of
namespace ``ci``) and signs with its own key, its admin client, a fresh bucket, and the Tasks'
step image."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.ci.issuer import TestIssuer
from tests.fixtures.image import Container, build_image
from tests.fixtures.server import ServerProcess

AUDIENCE = "zot-artifact-store"
ROOT_USER, ROOT_PASSWORD = "ciadmin", "ci-admin-password-1"


@pytest.fixture(scope="module")
def step_image() -> Iterator[Container]:
    """The Tasks' step image: this repository's image, built by ``make image`` (the steps run
    in it as an arbitrary UID in group 0, see tests/fixtures/image.py)."""
    with Container(build_image().image) as container:
        yield container


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as it:
        yield it


@pytest.fixture(scope="module")
def store(issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("ci-store")
    key = base / "signing.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    rule = {"issuer": issuer.issuer, "audience": AUDIENCE, "roles": ["writer"], "expiry": "10m"}
    config = {
        "auth": {
            "trust": [
                {"name": "acme-main", **rule, "claims": {"repository": "acme/*"}},
                {"name": "ci-pods", **rule, "claims": {"kubernetes.io/namespace": "ci"}},
            ]
        },
        "extensions": {"supplychain": {"signing": {"keyFile": str(key)}}},
    }
    proc = ServerProcess(
        base / "data",
        config=config,
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def admin(store: ServerProcess) -> Iterator[httpx.Client]:
    with store.client(auth=(ROOT_USER, ROOT_PASSWORD)) as c:
        yield c


@pytest.fixture
def bucket(admin: httpx.Client) -> str:
    name = f"ci-{uuid.uuid4().hex[:12]}"
    assert admin.put(f"/v1/buckets/{name}").status_code == 201
    return name
