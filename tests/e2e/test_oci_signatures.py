"""Signatures and attestations that OCI tools push next to an image become evidence of the
supply-chain API: listed under the image digest, verified by POST /v1/verify.

Transport is real: skopeo copies cosign's legacy ``sha256-<hex>.sig`` / ``.att`` artifacts
from an OCI layout, and the oras Python client pushes OCI 1.1 referrers (a notation signature,
a cosign signature in referrers mode). The signature documents themselves are built here in
cosign's and notation's formats (simple-signing payload + annotation; notation's JWS with an
x5c chain, and its COSE_Sign1 with x5chain): neither cosign nor notation can be installed on
this machine (Debian's skopeo has sigstore signing disabled), so the formats follow their
specifications byte for byte.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.conftest import run, tool
from tests.fixtures.evidence import dsse, statement, trust
from tests.fixtures.oci_layout import OCI_MANIFEST, Layout, oras_push_referrer
from tests.fixtures.server import ServerProcess
from tests.integration.test_identity import eventually

USER = "sig-root"
PASSWORD = "sig-root-password"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
EMPTY_CONFIG = "application/vnd.oci.image.config.v1+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("e2e-oci-sig") / "data"
    proc = ServerProcess(data, env={"ZAS_ROOT_USER": USER, "ZAS_ROOT_PASSWORD": PASSWORD})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def api(registry: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, auth=(USER, PASSWORD), timeout=30) as c:
        yield c


def host(registry: ServerProcess) -> str:
    return f"127.0.0.1:{registry.port}"


def skopeo_push(registry: ServerProcess, layout: Path, tag: str, repo: str, home: Path) -> None:
    run(
        [tool("skopeo"), "copy", "--preserve-digests", "--dest-creds", f"{USER}:{PASSWORD}",
         "--dest-tls-verify=false", f"oci:{layout}:{tag}",
         f"docker://{host(registry)}/{repo}:{tag}"],
        env={"HOME": str(home)},
    )  # fmt: skip


def cosign_payload(reference: str, digest: str) -> bytes:
    """What cosign signs for an image (Go's json.Marshal: compact, this key order)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def cosign_sign(payload: bytes, private: ec.EllipticCurvePrivateKey) -> str:
    return base64.b64encode(private.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def artifact(layout: Layout, layers: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    """A cosign-style artifact manifest in the layout, tagged ``tag``."""
    config = layout.blob(b'{"architecture":"","os":"","config":{}}', EMPTY_CONFIG)
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    ).encode()
    descriptor = layout.blob(body, OCI_MANIFEST)
    layout.tag(descriptor, tag)
    return descriptor


def legacy_tag(digest: str, suffix: str) -> str:
    return digest.replace(":", "-") + "." + suffix


def evidence(api: httpx.Client, digest: str, kind: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/digests/{digest}/{kind}")
    assert r.status_code == 200, r.text
    return list(r.json()[kind])


def verify(api: httpx.Client, repo: str, digest: str, policy: dict[str, Any]) -> dict[str, Any]:
    r = api.post(
        "/v1/verify",
        json={"subject": {"repository": repo, "digest": digest}, "policy": policy},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_cosign_signature_and_attestation_tags_pushed_by_skopeo(
    registry: ServerProcess, api: httpx.Client, tmp_path: Path, home: Path
) -> None:
    repo = "team/signed-app"
    src = Layout(tmp_path / "img")
    image = src.image(layers=1)
    src.tag(image, "v1")
    skopeo_push(registry, src.root, "v1", repo, home)
    digest = image["digest"]
    assert evidence(api, digest, "signatures") == []

    release = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    key_id = trust(api, release)
    other_id = trust(api, other)

    # cosign's legacy scheme: the signature artifact is the tag sha256-<hex>.sig.
    sigs = Layout(tmp_path / "sig")
    payload = cosign_payload(f"{host(registry)}/{repo}", digest)
    layer = sigs.blob(
        payload,
        SIMPLESIGNING,
        annotations={"dev.cosignproject.cosign/signature": cosign_sign(payload, release)},
    )
    sig_tag = legacy_tag(digest, "sig")
    sig_manifest = artifact(sigs, [layer], sig_tag)
    # and the attestation artifact, .att: a DSSE envelope over an in-toto statement.
    envelope = dsse(statement(digest), release)
    att_layer = sigs.blob(
        envelope, DSSE, annotations={"predicateType": "https://slsa.dev/provenance/v1"}
    )
    att_tag = legacy_tag(digest, "att")
    artifact(sigs, [att_layer], att_tag)
    skopeo_push(registry, sigs.root, sig_tag, repo, home)
    skopeo_push(registry, sigs.root, att_tag, repo, home)

    [signature] = evidence(api, digest, "signatures")
    assert signature["format"] == "cosign"
    assert signature["subject"] == f"{repo}@{digest}"
    assert signature["details"]["oci_source"] == f"tag {sig_tag}"
    assert signature["details"]["oci_manifest"] == sig_manifest["digest"]
    fetched = api.get(f"/v1/evidence/{signature['id']}")
    assert fetched.content == payload  # the original bytes: the signed payload
    assert eventually(
        lambda: any(
            signature["id"] in r["reason"]
            for r in api.get("/v1/audit", params={"action": "supplychain:attach"}).json()["records"]
        )
    )
    [attestation] = evidence(api, digest, "attestations")
    assert attestation["details"]["predicate_type"] == "https://slsa.dev/provenance/v1"
    assert attestation["details"]["verified_by_key"] == key_id

    result = verify(
        api,
        repo,
        digest,
        {
            "signatures": [{"key": key_id}],
            "attestations": [
                {
                    "predicate_type": "https://slsa.dev/provenance/v1",
                    "constraints": {"runDetails.builder.id": "https://github.com/*"},
                }
            ],
        },
    )
    assert result["verified"] is True, result
    assert signature["id"] in result["rules"][0]["evidence"]

    # Another trusted key did not sign it: that rule fails with the reason.
    result = verify(api, repo, digest, {"signatures": [{"key": other_id}]})
    assert result["verified"] is False
    assert "does not verify" in result["rules"][0]["reason"]

    # Re-pushing the same .sig tag with one more signature (what cosign does) adds one record.
    second = ec.generate_private_key(ec.SECP256R1())
    second_id = trust(api, second)
    layer2 = sigs.blob(
        payload,
        SIMPLESIGNING,
        annotations={"dev.cosignproject.cosign/signature": cosign_sign(payload, second)},
    )
    sigs.index["manifests"] = [
        m for m in sigs.index["manifests"] if m["digest"] != sig_manifest["digest"]
    ]
    artifact(sigs, [layer, layer2], sig_tag)
    skopeo_push(registry, sigs.root, sig_tag, repo, home)
    signatures = evidence(api, digest, "signatures")
    assert len(signatures) == 2
    result = verify(api, repo, digest, {"signatures": [{"key": key_id}, {"key": second_id}]})
    assert result["verified"] is True, result

    # Deleting the signature artifact from the registry removes the evidence it carried (the
    # earlier, now untagged .sig manifest does not bring it back).
    r = api.get(f"/v2/{repo}/manifests/{sig_tag}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200
    current = r.headers["Docker-Content-Digest"]
    assert {s["details"]["oci_manifest"] for s in signatures} == {current}
    r = api.delete(f"/v2/{repo}/manifests/{current}")
    assert r.status_code == 202, r.text
    assert evidence(api, digest, "signatures") == []
    assert len(evidence(api, digest, "attestations")) == 1
    result = verify(api, repo, digest, {"signatures": [{"key": key_id}]})
    assert result["verified"] is False
    assert "no key-based signature" in result["rules"][0]["reason"]


def test_a_cosign_signature_for_another_image_is_not_evidence(
    registry: ServerProcess, api: httpx.Client, tmp_path: Path, home: Path
) -> None:
    repo = "team/mixed"
    src = Layout(tmp_path / "img")
    image, decoy = src.image(layers=1), src.image(layers=1)
    src.tag(image, "v1")
    skopeo_push(registry, src.root, "v1", repo, home)
    key = ec.generate_private_key(ec.SECP256R1())
    sigs = Layout(tmp_path / "sig")
    payload = cosign_payload(f"{host(registry)}/{repo}", decoy["digest"])  # names the decoy
    layer = sigs.blob(
        payload, SIMPLESIGNING,
        annotations={"dev.cosignproject.cosign/signature": cosign_sign(payload, key)},
    )  # fmt: skip
    tag = legacy_tag(image["digest"], "sig")
    artifact(sigs, [layer], tag)
    skopeo_push(registry, sigs.root, tag, repo, home)  # valid OCI: the push stands
    assert evidence(api, image["digest"], "signatures") == []


def notation_certificate(private: Any) -> x509.Certificate:
    """A self-signed code-signing certificate for ``private``, as ``notation cert generate-test``
    makes (CN=release.example.com)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "release.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(private, hashes.SHA256())
    )


def notation_payload(digest: str, size: int) -> bytes:
    return json.dumps(
        {"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}}
    ).encode()


def notation_signature(
    digest: str, size: int, private: ec.EllipticCurvePrivateKey
) -> tuple[bytes, x509.Certificate]:
    """A notation JWS envelope (notary.x509 scheme) over ``{"targetArtifact": descriptor}``."""
    cert = notation_certificate(private)
    now = datetime.datetime.now(datetime.UTC)

    def b64url(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    protected = b64url(
        json.dumps(
            {
                "alg": "ES256",
                "cty": "application/vnd.cncf.notary.payload.v1+json",
                "crit": ["io.cncf.notary.signingScheme"],
                "io.cncf.notary.signingScheme": "notary.x509",
                "io.cncf.notary.signingTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()
    )
    payload = b64url(notation_payload(digest, size))
    der = private.sign(f"{protected}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    envelope = {
        "payload": payload,
        "protected": protected,
        "header": {
            "x5c": [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()],
            "io.cncf.notary.signingAgent": "notation-go/1.2.0",
        },
        "signature": b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
    }
    return json.dumps(envelope).encode(), cert


def notation_cose_signature(digest: str, size: int, private: rsa.RSAPrivateKey) -> bytes:
    """A notation COSE envelope (``notation sign --signature-format cose``, notary.x509): a
    tagged COSE_Sign1 (RFC 9052) signed PS256 (COSE alg -37), the certificate chain in the
    unprotected x5chain header (33), and the notary headers of the envelope specification."""
    cert = notation_certificate(private)
    protected = cbor2.dumps(
        {
            1: -37,
            2: ["io.cncf.notary.signingScheme"],
            3: "application/vnd.cncf.notary.payload.v1+json",
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": cbor2.CBORTag(
                1, int(datetime.datetime.now().timestamp())
            ),
        }
    )
    payload = notation_payload(digest, size)
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = private.sign(to_sign, pss, hashes.SHA256())
    unprotected = {
        33: [cert.public_bytes(Encoding.DER)],
        "io.cncf.notary.signingAgent": "notation-go/1.2.0",
    }
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))


def test_notation_and_cosign_referrers_pushed_by_oras(
    registry: ServerProcess, api: httpx.Client, tmp_path: Path, home: Path
) -> None:
    repo = "team/referred"
    src = Layout(tmp_path / "img")
    image = src.image(layers=1)
    src.tag(image, "v1")
    skopeo_push(registry, src.root, "v1", repo, home)
    digest = image["digest"]
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": image["size"]}

    signer = ec.generate_private_key(ec.SECP256R1())
    jws, cert = notation_signature(digest, image["size"], signer)
    oras_push_referrer(host(registry), (USER, PASSWORD), tmp_path, repo, subject,
                       {"sig.jws": (jws, "application/jose+json")},
                       "application/vnd.cncf.notary.signature")  # fmt: skip
    cosign_key = ec.generate_private_key(ec.SECP256R1())
    payload = cosign_payload(f"{host(registry)}/{repo}", digest)
    # cosign's OCI 1.1 referrers mode: the same simple-signing layer, as a referrer.
    oras_push_referrer(host(registry), (USER, PASSWORD), tmp_path, repo, subject,
                       {"payload.json": (payload, SIMPLESIGNING)},
                       "application/vnd.dev.cosign.artifact.sig.v1+json",
                       {"payload.json": {"dev.cosignproject.cosign/signature":
                                         cosign_sign(payload, cosign_key)}})  # fmt: skip

    referrers = api.get(f"/v2/{repo}/referrers/{digest}").json()["manifests"]
    assert {m.get("artifactType") for m in referrers} == {
        "application/vnd.cncf.notary.signature",
        "application/vnd.dev.cosign.artifact.sig.v1+json",
    }
    by_format = {s["format"]: s for s in evidence(api, digest, "signatures")}
    assert set(by_format) == {"notation", "cosign"}
    assert by_format["notation"]["details"]["signer"] == "CN=release.example.com"
    assert by_format["notation"]["details"]["oci_source"] == "referrer"

    notation_key = trust(api, signer)
    result = verify(api, repo, digest, {"signatures": [{"key": notation_key}]})
    assert result["verified"] is True, result
    assert result["rules"][0]["evidence"] == [by_format["notation"]["id"]]
    cosign_id = trust(api, cosign_key)
    result = verify(api, repo, digest, {"signatures": [{"key": cosign_id}, {"key": notation_key}]})
    assert result["verified"] is True, result
    assert result["rules"][0]["evidence"] == [by_format["cosign"]["id"]]

    # A notation signature whose certificate holds another key does not count for this one.
    stranger = ec.generate_private_key(ec.SECP256R1())
    result = verify(api, repo, digest, {"signatures": [{"key": trust(api, stranger)}]})
    assert result["verified"] is False
    assert "does not verify" in result["rules"][0]["reason"]
    assert cert.public_key().public_numbers() == signer.public_key().public_numbers()

    # notation's other envelope, COSE (RSA-PSS here), is read and verified the same way.
    rsa_signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_key = trust(api, rsa_signer)
    cose = notation_cose_signature(digest, image["size"], rsa_signer)
    tampered = cose[:-1] + bytes([cose[-1] ^ 1])  # the last byte is the signature's

    def push_cose(body: bytes) -> None:
        layer = {"sig.cose": (body, "application/cose")}
        oras_push_referrer(
            host(registry), (USER, PASSWORD), tmp_path, repo, subject, layer,
            "application/vnd.cncf.notary.signature",
        )  # fmt: skip

    def cose_records() -> list[dict[str, Any]]:
        return [
            s for s in evidence(api, digest, "signatures") if s["media_type"] == "application/cose"
        ]

    push_cose(tampered)
    push_cose(b"not cbor")
    assert len(cose_records()) == 1  # the malformed envelope is not evidence
    result = verify(api, repo, digest, {"signatures": [{"key": rsa_key}]})
    assert result["verified"] is False
    assert "does not verify" in result["rules"][0]["reason"], result

    push_cose(cose)
    records = cose_records()
    assert len(records) == 2
    assert {s["details"]["signer"] for s in records} == {"CN=release.example.com"}
    result = verify(api, repo, digest, {"signatures": [{"key": rsa_key}]})
    assert result["verified"] is True, result
    assert api.get(f"/v1/evidence/{result['rules'][0]['evidence'][0]}").content == cose


def test_repository_gates_refuse_unsigned_pulls_until_the_image_is_signed(
    registry: ServerProcess, api: httpx.Client, tmp_path: Path, home: Path
) -> None:
    src = Layout(tmp_path / "img")
    image = src.image(layers=1)
    src.tag(image, "v1")
    for repo in ("prod/app", "prod/tools"):
        skopeo_push(registry, src.root, "v1", repo, home)
    digest = image["digest"]
    key = ec.generate_private_key(ec.SECP256R1())
    policy = {"signatures": [{"key": trust(api, key)}]}

    # Bad requests change nothing.
    r = api.put("/v1/repositories/prod/*/verification", json={"name": "x", "mode": "block"})
    assert r.status_code == 400 and r.json()["code"] == "MalformedJSON"
    bad = {"name": "x", "mode": "block", "policy": policy}
    r = api.put("/v1/repositories/prod/*/verification", json=bad)
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"
    r = api.put("/v1/repositories/Prod!/verification", json={**bad, "mode": "enforce"})
    assert r.status_code == 400 and "repository name or glob" in r.json()["message"]
    r = api.get("/v1/repositories/prod/*/verification")
    assert r.status_code == 404 and r.json()["code"] == "NoSuchVerificationPolicy"

    gate = {"name": "signed-releases", "mode": "enforce", "policy": policy}
    r = api.put("/v1/repositories/prod/*/verification", json=gate)
    assert r.status_code == 200, r.text
    assert api.get("/v1/repositories/prod/*/verification").json()["repositories"] == "prod/*"
    # prod/tools has a more specific gate in audit mode.
    r = api.put("/v1/repositories/prod/tools/verification", json={**gate, "mode": "audit"})
    assert r.status_code == 200, r.text

    out = tmp_path / "out"
    pull = [tool("skopeo"), "copy", "--src-creds", f"{USER}:{PASSWORD}", "--src-tls-verify=false"]
    failed = subprocess.run(
        [*pull, f"docker://{host(registry)}/prod/app:v1", f"oci:{out}:v1"],
        env={"HOME": str(home), "PATH": os.environ["PATH"]}, capture_output=True, text=True,
    )  # fmt: skip
    assert failed.returncode != 0
    assert "signed-releases" in failed.stderr and "no key-based signature" in failed.stderr
    r = api.get(f"/v2/prod/app/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 403
    assert r.json()["errors"][0]["code"] == "DENIED"
    assert "signed-releases" in r.json()["errors"][0]["message"]
    # audit mode: served, and the outcome is in the headers.
    r = api.get("/v2/prod/tools/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert r.headers["X-Verification"] == "failed"
    assert r.headers["X-Verification-Policy"] == "signed-releases (audit)"

    # Sign it (cosign's .sig tag: pushing and reading signatures is never gated).
    sigs = Layout(tmp_path / "sig")
    payload = cosign_payload(f"{host(registry)}/prod/app", digest)
    layer = sigs.blob(
        payload, SIMPLESIGNING,
        annotations={"dev.cosignproject.cosign/signature": cosign_sign(payload, key)},
    )  # fmt: skip
    tag = legacy_tag(digest, "sig")
    artifact(sigs, [layer], tag)
    skopeo_push(registry, sigs.root, tag, "prod/app", home)
    r = api.get(f"/v2/prod/app/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and "X-Verification" not in r.headers

    run([*pull, f"docker://{host(registry)}/prod/app:v1", f"oci:{out}:v1"],
        env={"HOME": str(home)})  # fmt: skip
    assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == digest

    assert api.delete("/v1/repositories/prod/*/verification").status_code == 204
    r = api.delete("/v1/repositories/prod/*/verification")
    assert r.status_code == 404 and r.json()["code"] == "NoSuchVerificationPolicy"
