"""The SDK's supply-chain calls against the real server (with a signing key), on both
backends: store-side signing, key-based raw signatures, DSSE attestations and CycloneDX
SBOMs attached (content types detected), listed, fetched back, verified by policy,
bucket verification gates, SBOM search, trusted keys."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

from tests.fixtures.server import ServerProcess
from zot_artifacts import (
    AccessDeniedError,
    ArtifactStoreError,
    Client,
    Evidence,
    NotFoundError,
    Subject,
    VerificationResult,
)

SLSA = "https://slsa.dev/provenance/v1"
CYCLONEDX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "version": 1,
    "components": [
        {"type": "library", "name": "idna", "version": "3.6", "purl": "pkg:pypi/idna@3.6"}
    ],
}


def write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    private = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return private


def public_pem(private: ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def signing_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp(f"sdk-sc-{request.param}")
    write_key(base / "signing.pem")
    config = base / "config.yaml"
    signing = {"signing": {"keyFile": str(base / "signing.pem")}}
    config.write_text(json.dumps({"extensions": {"supplychain": signing}}))
    proc = ServerProcess(
        base / "data", config=config, metadata_uri=metadata_uri_for(request.param, base)
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def sdk(signing_server: ServerProcess) -> Iterator[Client]:
    with Client(signing_server.url) as c:
        yield c


def test_supply_chain_calls(sdk: Client, tmp_path: Path) -> None:
    bucket = sdk.create_bucket(f"sdk-sc-{uuid.uuid4().hex[:10]}").name
    artifact = uuid.uuid4().bytes * 1000
    info = sdk.upload(bucket, "app.bin", artifact)
    subject = Subject.object(bucket, "app.bin")
    by_digest = Subject.digest(info.sha256)
    assert by_digest.to_json() == {"digest": info.digest}
    assert Subject.image("acme/app", info.digest).to_json() == {
        "repository": "acme/app",
        "digest": info.digest,
    }

    # The store signs with its own key.
    signed = sdk.sign(subject)
    assert isinstance(signed, Evidence)
    assert signed.subject_digest == info.digest and signed.format == "dsse"
    assert signed.envelope and signed.envelope["payloadType"] == "application/vnd.in-toto+json"
    server_key = next(k for k in sdk.list_keys() if k.name == "server signing key")

    # A raw signature (as cosign sign-blob writes it) from a path; its key trusted.
    signer = ec.generate_private_key(ec.SECP256R1())
    sig_file = tmp_path / "app.bin.sig"
    sig_file.write_bytes(base64.b64encode(signer.sign(artifact, ec.ECDSA(hashes.SHA256()))))
    raw = sdk.attach_signature(subject, sig_file)
    assert (raw.kind, raw.format, raw.media_type) == ("signature", "raw", "text/plain")
    pem_file = tmp_path / "release.pub"
    pem_file.write_text(public_pem(signer))
    key = sdk.add_key(pem_file, "release key")
    assert key.algorithm == "ecdsa-p256" and key.id in [k.id for k in sdk.list_keys()]

    # A DSSE attestation (SLSA provenance) signed by the same key, as bytes.
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app.bin", "digest": {"sha256": info.sha256}}],
        "predicateType": SLSA,
        "predicate": {"buildDefinition": {"buildType": "https://example.com/ci"}},
    }
    envelope = Envelope(json.dumps(statement).encode(), "application/vnd.in-toto+json", {})
    envelope.sign(CryptoSigner(signer))
    att = sdk.attach_attestation(subject, envelope.to_dict())
    assert att.kind == "attestation" and att.details.get("predicate_type") == SLSA

    # A CycloneDX SBOM, detected from the document.
    sbom = sdk.attach_sbom(subject, json.dumps(CYCLONEDX).encode())
    assert sbom.kind == "sbom" and sbom.media_type == "application/vnd.cyclonedx+json"
    with pytest.raises(ArtifactStoreError) as unknown:
        sdk.attach_sbom(subject, b'{"not": "an sbom"}')
    assert unknown.value.code == "UnknownFormat"
    found = sdk.search_sboms(purl="pkg:pypi/idna@3.6")
    assert any(r["subject_digest"] == info.digest for r in found)

    # Listing, by kind and all; the documents exactly as attached.
    assert [e.id for e in sdk.list_evidence(subject, "sboms")] == [sbom.id]
    every = {e.id for e in sdk.list_evidence(subject)}
    assert {signed.id, raw.id, att.id, sbom.id} <= every
    assert {e.id for e in sdk.list_evidence(by_digest, "signatures")} >= {signed.id, raw.id}
    assert sdk.get_evidence(raw.id) == sig_file.read_bytes()
    with pytest.raises(NotFoundError):
        sdk.get_evidence("0" * 32)
    with pytest.raises(ValueError):
        sdk.list_evidence(subject, "photos")

    # Verification, rule by rule.
    policy = {
        "signatures": [{"key": key.id}, {"key": server_key.id}],
        "sbom": True,
        "attestations": [{"predicate_type": SLSA}],
    }
    result = sdk.verify(subject, policy)
    assert isinstance(result, VerificationResult)
    assert result.verified and result.subject_digest == info.digest, result
    assert all(r.passed for r in result.rules) and len(result.rules) >= 3
    other = ec.generate_private_key(ec.SECP256R1())
    stranger = sdk.add_key(public_pem(other), "stranger")
    failed = sdk.verify(subject, {"signatures": [{"key": stranger.id}]})
    assert not failed.verified and failed.failed_rules[0].reason
    sdk.revoke_key(stranger.id)
    assert next(k for k in sdk.list_keys() if k.id == stranger.id).revoked_at

    # A verification gate: enforce refuses downloads of what does not pass.
    gate = sdk.set_verification(bucket, {"signatures": [{"key": key.id}]}, "enforce")
    assert (gate.mode, gate.name) == ("enforce", "default")
    assert sdk.get_verification(bucket).policy == {"signatures": [{"key": key.id}]}
    sdk.upload(bucket, "unsigned.bin", b"nobody signed this")
    with pytest.raises(AccessDeniedError) as denied:
        sdk.download(bucket, "unsigned.bin", tmp_path / "unsigned.bin")
    assert denied.value.code == "VerificationFailed"
    assert not (tmp_path / "unsigned.bin").exists()
    assert not (tmp_path / "unsigned.bin.part").exists()
    assert sdk.download(bucket, "app.bin", tmp_path / "app.bin").sha256 == info.sha256
    sdk.delete_verification(bucket)
    with pytest.raises(NotFoundError) as none:
        sdk.get_verification(bucket)
    assert none.value.code == "NoSuchBucketPolicy"

    # Repositories' pull gates, by name or glob.
    gate = sdk.set_repository_verification("prod/*", {"signatures": [{"key": key.id}]}, "enforce")
    assert (gate.repositories, gate.mode) == ("prod/*", "enforce")
    assert sdk.get_repository_verification("prod/*").policy == {"signatures": [{"key": key.id}]}
    sdk.delete_repository_verification("prod/*")
    with pytest.raises(NotFoundError) as none:
        sdk.get_repository_verification("prod/*")
    assert none.value.code == "NoSuchVerificationPolicy"
    assert hashlib.sha256((tmp_path / "app.bin").read_bytes()).hexdigest() == info.sha256
