"""Sigstore signatures over HTTP against the running server, on both metadata backends, with
real bundles and trusted roots (``tests/fixtures/data/sigstore``): attach to an object or a
digest, list, fetch back, verify offline against an identity policy; the failures each with
sigstore's own reason, and nothing stored when an attachment is refused."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.fixtures.evidence import DATA, data, dsse, pem, statement, trust
from tests.fixtures.server import ServerProcess

BUNDLE_V3 = "application/vnd.dev.sigstore.bundle.v0.3+json"
GITHUB = "https://github.com/login/oauth"


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_uri_for
) -> Iterator[ServerProcess]:
    assert DATA.is_dir(), f"the Sigstore test data is missing: {DATA}"
    base = tmp_path_factory.mktemp(f"sig-{request.param}")
    config = base / "config.yaml"
    root = DATA / "trusted_root.staging.json"
    config.write_text(json.dumps({"extensions": {"supplychain": {"trustedRoot": str(root)}}}))
    proc = ServerProcess(
        base / "data", config=config, metadata_uri=metadata_uri_for(request.param, base)
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def upload(c: httpx.Client, body: bytes) -> tuple[str, str]:
    bucket = f"sig-{uuid.uuid4().hex[:10]}"
    assert c.put(f"/v1/buckets/{bucket}").status_code == 201
    assert c.put(f"/v1/buckets/{bucket}/objects/app.txt", content=body).status_code == 201
    return bucket, "app.txt"


def verify(c: httpx.Client, subject: dict, *signers: dict, threshold: int | None = None) -> dict:
    policy: dict = {"signatures": list(signers)}
    if threshold is not None:
        policy["threshold"] = threshold
    r = c.post("/v1/verify", json={"subject": subject, "policy": policy})
    assert r.status_code == 200, r.text
    return r.json()


def test_attach_list_fetch_and_verify(client: httpx.Client) -> None:
    bucket, key = upload(client, data("bundle_v3.txt"))
    sigs = f"/v1/buckets/{bucket}/objects/{key}/signatures"
    bundle = data("bundle_v3.txt.sigstore")
    r = client.post(sigs, content=bundle, headers={"Content-Type": BUNDLE_V3})
    assert r.status_code == 201, r.text
    evidence = r.json()
    digest = "sha256:" + hashlib.sha256(data("bundle_v3.txt")).hexdigest()
    assert evidence["subject_digest"] == digest
    assert evidence["subject"] == f"{bucket}/{key}"
    assert evidence["details"]["identity"] == "william@yossarian.net"
    assert evidence["details"]["issuer"] == GITHUB
    assert r.headers["location"] == f"/v1/evidence/{evidence['id']}"

    listed = client.get(sigs).json()
    assert [s["id"] for s in listed["signatures"]] == [evidence["id"]]
    fetched = client.get(f"/v1/evidence/{evidence['id']}")
    assert fetched.content == bundle
    assert fetched.headers["content-type"] == BUNDLE_V3

    subject = {"bucket": bucket, "key": key}
    result = verify(
        client, subject, {"sigstore": {"issuer": GITHUB, "identity": "william@yossarian.net"}}
    )
    assert result["verified"] is True
    assert result["subject_digest"] == digest
    assert result["rules"][0]["evidence"] == [evidence["id"]]
    regex = {"sigstore": {"issuer": GITHUB, "identity_regex": r".*@yossarian\.net"}}
    assert verify(client, subject, regex)["verified"] is True

    # Wrong identity, wrong issuer: sigstore's own reasons.
    wrong = verify(
        client, subject, {"sigstore": {"issuer": GITHUB, "identity": "mallory@example.com"}}
    )
    assert wrong["verified"] is False
    assert "SANs do not match" in wrong["rules"][0]["reason"]
    other_issuer = {
        "sigstore": {"issuer": "https://accounts.google.com", "identity": "william@yossarian.net"}
    }
    assert verify(client, subject, other_issuer)["verified"] is False
    # A threshold: one good signer of two suffices when asked for one.
    both = [
        {"sigstore": {"issuer": GITHUB, "identity": "william@yossarian.net"}},
        {"sigstore": {"issuer": GITHUB, "identity": "mallory@example.com"}},
    ]
    assert verify(client, subject, *both)["verified"] is False
    assert verify(client, subject, *both, threshold=1)["verified"] is True

    # Overwriting the object changes its digest: the signature no longer covers it.
    assert client.put(f"/v1/buckets/{bucket}/objects/{key}", content=b"tampered").status_code == 200
    after = verify(
        client, subject, {"sigstore": {"issuer": GITHUB, "identity": "william@yossarian.net"}}
    )
    assert after["verified"] is False
    assert "no Sigstore signature" in after["rules"][0]["reason"]


GENERIC_TYPES = (
    "application/x-www-form-urlencoded",  # curl -d / --data-binary
    "application/json",
    "application/octet-stream",
    None,
)


def test_evidence_sent_with_a_generic_content_type_gets_its_real_media_type(
    client: httpx.Client, cyclonedx: dict[str, bytes]
) -> None:
    """curl -d sends application/x-www-form-urlencoded: the store detects the document's format
    and stores (and serves back) its real media type; HEAD answers the document's headers."""
    bucket, key = upload(client, data("bundle_v3.txt"))
    subject = f"/v1/buckets/{bucket}/objects/{key}"
    for declared in GENERIC_TYPES:
        headers = {"Content-Type": declared} if declared else {}
        r = client.post(f"{subject}/signatures", content=data("bundle_v3.txt.sigstore"),
                        headers=headers)  # fmt: skip
        assert r.status_code == 201, (declared, r.text)
        assert r.json()["media_type"] == BUNDLE_V3, declared
        sbom = client.post(f"{subject}/sboms", content=cyclonedx["JSON"], headers=headers)
        assert sbom.status_code == 201, (declared, sbom.text)
        assert sbom.json()["media_type"] == "application/vnd.cyclonedx+json", declared
    evidence = r.json()["id"]
    head = client.head(f"/v1/evidence/{evidence}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == BUNDLE_V3
    assert int(head.headers["content-length"]) == len(data("bundle_v3.txt.sigstore"))
    missing = client.head("/v1/evidence/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # A specific type that names another format: the document's real format is what is stored.
    other = client.post(f"{subject}/sboms", content=cyclonedx["JSON"],
                        headers={"Content-Type": "application/spdx+json"})  # fmt: skip
    assert other.json()["media_type"] == "application/vnd.cyclonedx+json", other.text


def test_refused_attachments_store_nothing(client: httpx.Client) -> None:
    bucket, key = upload(client, data("bundle_v3.txt"))
    sigs = f"/v1/buckets/{bucket}/objects/{key}/signatures"
    # Evidence binds to the digest: what another test attached to these bytes shows here too.
    before = client.get(sigs).json()["signatures"]
    # A bundle over other bytes.
    r = client.post(sigs, content=data("bundle.txt.sigstore"))
    assert r.status_code == 422 and r.json()["code"] == "SubjectMismatch", r.text
    # Bundles sigstore itself refuses to load.
    for bad in ("bundle_invalid_version", "bundle_no_cert_v1", "bundle_no_log_entry"):
        r = client.post(sigs, content=data(f"bad/{bad}.txt.sigstore"))
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["code"] == "InvalidEvidence"
    r = client.post(sigs, content=b"{not json")
    assert r.status_code == 422 and r.json()["code"] == "InvalidEvidence"
    assert client.get(sigs).json()["signatures"] == before
    problem = client.get(f"/v1/buckets/{bucket}/objects/missing.txt/signatures")
    assert problem.status_code == 404 and problem.json()["code"] == "NoSuchKey"
    assert client.get(f"/v1/evidence/{uuid.uuid4().hex}").json()["code"] == "NoSuchEvidence"


def test_digest_subjects_and_the_wrong_trusted_root(client: httpx.Client) -> None:
    digest = "sha256:" + hashlib.sha256(data("bundle.txt")).hexdigest()
    r = client.post(f"/v1/digests/{digest}/signatures", content=data("bundle.txt.sigstore"))
    assert r.status_code == 201, r.text  # a v0.1 bundle
    ok = verify(
        client, {"digest": digest}, {"sigstore": {"issuer": GITHUB, "identity": "a@tny.town"}}
    )
    assert ok["verified"] is True
    # A real GitHub Actions release signature, checked against this server's (staging) root:
    # its certificate chain does not build.
    wheel = "sha256:" + hashlib.sha256(data("bundle_v3_github.whl")).hexdigest()
    r = client.post(
        f"/v1/digests/{wheel}/signatures", content=data("bundle_v3_github.whl.sigstore")
    )
    assert r.status_code == 201, r.text
    assert r.json()["details"]["issuer"] == "https://token.actions.githubusercontent.com"
    identity = (
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
    )
    actions = "https://token.actions.githubusercontent.com"
    signer = {"sigstore": {"issuer": actions, "identity": identity}}
    result = verify(client, {"digest": wheel}, signer)
    assert result["verified"] is False
    assert result["rules"][0]["reason"]


def test_bad_verification_requests(client: httpx.Client) -> None:
    digest = "sha256:" + "0" * 64
    for body, code in (
        ({"subject": {"digest": digest}}, "MalformedJSON"),
        ({"subject": {"bucket": "x"}, "policy": {"signatures": [{}]}}, "InvalidArgument"),
        ({"subject": {"digest": digest}, "policy": {"signatures": []}}, "InvalidArgument"),
        (
            {"subject": {"digest": digest}, "policy": {"signatures": [{"sigstore": {}}]}},
            "InvalidArgument",
        ),
        (
            {
                "subject": {"digest": digest},
                "policy": {
                    "signatures": [{"sigstore": {"issuer": GITHUB, "identity": "a"}}],
                    "threshold": 2,
                },
            },
            "InvalidArgument",
        ),
        (
            {
                "subject": {"digest": digest},
                "policy": {"signatures": [{"sigstore": {"issuer": GITHUB, "identity_regex": "("}}]},
            },
            "InvalidArgument",
        ),
        ({"subject": {"digest": digest}, "policy": {"attestations": []}}, "InvalidArgument"),
        ({"subject": {"digest": digest}, "policy": {"enforce": True}}, "InvalidArgument"),
        (
            {"subject": {"digest": digest}, "policy": {"attestations": [{"x": 1}]}},
            "InvalidArgument",
        ),
        ({"subject": {"digest": digest}, "policy": {"sbom": "yes"}}, "InvalidArgument"),
    ):
        r = client.post("/v1/verify", json=body)
        assert r.json()["code"] == code, (body, r.text)


# ---- key-based signatures ----------------------------------------------------------------


def test_raw_signatures_as_cosign_sign_blob_writes_them(client: httpx.Client) -> None:
    artifact = uuid.uuid4().bytes * 100
    bucket, key = upload(client, artifact)
    sigs = f"/v1/buckets/{bucket}/objects/{key}/signatures"
    subject = {"bucket": bucket, "key": key}
    signer = ec.generate_private_key(ec.SECP256R1())
    signature = base64.b64encode(signer.sign(artifact, ec.ECDSA(hashes.SHA256())))
    r = client.post(sigs, content=signature, headers={"Content-Type": "text/plain"})
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "raw"
    # Not trusted yet.
    fake_id = "0" * 64
    assert "not a trusted key" in verify(client, subject, {"key": fake_id})["rules"][0]["reason"]
    key_id = trust(client, signer)
    ok = verify(client, subject, {"key": key_id})
    assert ok["verified"] is True, ok
    # Another key does not vouch for it; an RSA key signing with PKCS#1 v1.5 does.
    other = ec.generate_private_key(ec.SECP256R1())
    bad = verify(client, subject, {"key": trust(client, other)})
    assert bad["verified"] is False and "does not verify" in bad["rules"][0]["reason"]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    rsa_sig = base64.b64encode(rsa_key.sign(artifact, padding.PKCS1v15(), hashes.SHA256()))
    assert client.post(sigs, content=rsa_sig).status_code == 201
    assert verify(client, subject, {"key": trust(client, rsa_key)})["verified"] is True
    # Revoked: no longer trusted.
    assert client.delete(f"/v1/keys/{key_id}").status_code == 204
    revoked = verify(client, subject, {"key": key_id})
    assert revoked["verified"] is False and "revoked" in revoked["rules"][0]["reason"]
    # The signature covers these bytes only.
    client.put(f"/v1/buckets/{bucket}/objects/{key}", content=artifact + b"!")
    key_id = trust(client, signer)  # trusted again
    assert verify(client, subject, {"key": key_id})["verified"] is False


def test_dsse_envelopes_and_key_scope_and_expiry(client: httpx.Client) -> None:
    artifact = uuid.uuid4().bytes * 10
    bucket, key = upload(client, artifact)
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    sigs = f"/v1/buckets/{bucket}/objects/{key}/signatures"
    subject = {"bucket": bucket, "key": key}
    signer = ed25519.Ed25519PrivateKey.generate()
    envelope = dsse(statement(digest), signer)
    r = client.post(
        sigs, content=envelope, headers={"Content-Type": "application/vnd.dsse.envelope.v1+json"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "dsse"
    assert r.json()["details"]["predicate_type"] == "https://slsa.dev/provenance/v1"
    ed_key = trust(client, signer)
    assert verify(client, subject, {"key": ed_key})["verified"] is True
    # cosign writes an empty keyid: the key, not the hint, decides.
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    anonymous = json.loads(dsse(statement(digest), ecdsa))
    anonymous["signatures"][0]["keyid"] = ""
    assert client.post(sigs, json=anonymous).status_code == 201
    assert verify(client, subject, {"key": trust(client, ecdsa)})["verified"] is True
    # A statement about other bytes is refused; so is a tampered payload at verification.
    other = dsse(statement("sha256:" + "1" * 64), signer)
    r = client.post(sigs, content=other)
    assert r.status_code == 422 and r.json()["code"] == "SubjectMismatch"
    # A tampered payload (the statement swapped after signing) does not verify.
    doc = json.loads(envelope)
    doc["payload"] = base64.b64encode(statement(digest, "https://example.com/forged")).decode()
    tampered_artifact = artifact + b"tampered"
    tbucket, tkey = upload(client, tampered_artifact)
    new_digest = "sha256:" + hashlib.sha256(tampered_artifact).hexdigest()
    doc["payload"] = base64.b64encode(statement(new_digest)).decode()
    tsigs = f"/v1/buckets/{tbucket}/objects/{tkey}/signatures"
    assert client.post(tsigs, content=json.dumps(doc).encode()).status_code == 201
    out = verify(client, {"bucket": tbucket, "key": tkey}, {"key": ed_key})
    assert out["verified"] is False and "does not verify" in out["rules"][0]["reason"]
    # A key trusted only for another bucket does not count here.
    scoped_signer = ec.generate_private_key(ec.SECP384R1())
    scoped = trust(client, scoped_signer, scope="bucket:somewhere-else")
    assert client.post(sigs, content=dsse(statement(digest), scoped_signer)).status_code == 201
    out = verify(client, subject, {"key": scoped})
    assert (
        out["verified"] is False
        and "trusted only for bucket:somewhere-else" in out["rules"][0]["reason"]
    )
    # A key that expired.
    expiring_signer = ec.generate_private_key(ec.SECP384R1())
    expiring = trust(client, expiring_signer, expires_in=1)
    assert client.post(sigs, content=dsse(statement(digest), expiring_signer)).status_code == 201
    time.sleep(1.2)
    out = verify(client, subject, {"key": expiring})
    assert out["verified"] is False and "expired" in out["rules"][0]["reason"]


def test_unsupported_keys_are_refused(client: httpx.Client) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p521 = ec.generate_private_key(ec.SECP521R1())
    bodies = [
        {"name": "weak", "public_key": pem(weak)},
        {"name": "p521", "public_key": pem(p521)},
        {"name": "junk", "public_key": "-----BEGIN PUBLIC KEY-----\nxx\n"},
        {"name": "x", "public_key": pem(weak), "scope": "team"},
    ]
    for body in bodies:
        r = client.post("/v1/keys", json=body)
        assert r.status_code == 400, (body["name"], r.text)
    assert client.delete(f"/v1/keys/{'f' * 64}").json()["code"] == "NoSuchTrustedKey"
    assert client.post("/v1/keys", json={"public_key": 1}).json()["code"] == "MalformedJSON"


# ---- SBOMs -------------------------------------------------------------------------------

CYCLONEDX_PY = Path(sys.executable).with_name("cyclonedx-py")


@pytest.fixture(scope="module")
def cyclonedx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real SBOMs, written by ``cyclonedx-py requirements`` (CycloneDX's own generator)."""
    out = tmp_path_factory.mktemp("cdx")
    requirements = out / "requirements.txt"
    requirements.write_text("httpx==0.27.2\nidna==3.6\nrequests==2.31.0\n")
    docs = {}
    for fmt in ("JSON", "XML"):
        path = out / f"sbom.{fmt.lower()}"
        subprocess.run(
            [str(CYCLONEDX_PY), "requirements", "--of", fmt, "-o", str(path), str(requirements)],
            check=True,
            capture_output=True,
        )
        docs[fmt] = path.read_bytes()
    return docs


def spdx_document(tmp_path: Path, *, valid: bool = True) -> bytes:
    """An SPDX 2.3 JSON document written by spdx-tools (the SPDX reference implementation)."""
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_file

    info = CreationInfo(
        "SPDX-2.3",
        "SPDXRef-DOCUMENT",
        "app",
        "https://example.com/spdx/app-1",
        [Actor(ActorType.TOOL, "zas-tests")],
        datetime.datetime(2026, 11, 28),
    )
    package = Package(
        "SPDXRef-requests",
        "requests",
        SpdxNoAssertion(),
        version="2.31.0",
        external_references=[
            ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", "pkg:pypi/requests@2.31.0"
            )
        ],
    )
    relationships = [
        Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-requests")
    ]
    path = tmp_path / "app.spdx.json"
    write_document_to_file(
        Document(info, [package], relationships=relationships), str(path), validate=True
    )
    doc = json.loads(path.read_text())
    if not valid:
        del doc["packages"][0]["downloadLocation"]
    return json.dumps(doc).encode()


def test_sboms_validated_indexed_and_searchable(
    client: httpx.Client, cyclonedx: dict[str, bytes], tmp_path: Path
) -> None:
    artifact = uuid.uuid4().bytes
    bucket, key = upload(client, artifact)
    sboms = f"/v1/buckets/{bucket}/objects/{key}/sboms"
    subject = {"bucket": bucket, "key": key}
    none = client.post("/v1/verify", json={"subject": subject, "policy": {"sbom": True}}).json()
    assert none["verified"] is False and "no SBOM" in none["rules"][0]["reason"]

    r = client.post(
        sboms, content=cyclonedx["JSON"], headers={"Content-Type": "application/vnd.cyclonedx+json"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "cyclonedx" and r.json()["details"]["components"] == "3"
    r = client.post(
        sboms, content=cyclonedx["XML"], headers={"Content-Type": "application/vnd.cyclonedx+xml"}
    )
    assert r.status_code == 201, r.text
    r = client.post(
        sboms, content=spdx_document(tmp_path), headers={"Content-Type": "application/spdx+json"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "spdx"
    assert len(client.get(sboms).json()["sboms"]) == 3
    ok = client.post("/v1/verify", json={"subject": subject, "policy": {"sbom": True}}).json()
    assert ok["verified"] is True

    # Search by purl with and without version, and by name.
    exact = client.get("/v1/sboms/search", params={"purl": "pkg:pypi/httpx@0.27.2"}).json()
    assert any(r["subject"] == f"{bucket}/{key}" for r in exact["results"])
    assert {r["component"]["version"] for r in exact["results"]} == {"0.27.2"}
    other = client.get("/v1/sboms/search", params={"purl": "pkg:pypi/httpx@9.9.9"}).json()
    assert other["results"] == []
    anyv = client.get("/v1/sboms/search", params={"purl": "pkg:pypi/requests"}).json()
    assert any(r["component"]["version"] == "2.31.0" for r in anyv["results"])
    named = client.get("/v1/sboms/search", params={"name": "requests"}).json()["results"]
    assert any(r["subject_digest"] == ok["subject_digest"] for r in named)
    assert client.get("/v1/sboms/search").json()["code"] == "InvalidArgument"


def test_invalid_sboms_are_refused_with_reasons(
    client: httpx.Client, cyclonedx: dict[str, bytes], tmp_path: Path
) -> None:
    bucket, key = upload(client, uuid.uuid4().bytes)
    sboms = f"/v1/buckets/{bucket}/objects/{key}/sboms"
    broken = json.loads(cyclonedx["JSON"])
    broken["components"][0]["type"] = "spaceship"
    old = dict(json.loads(cyclonedx["JSON"]), specVersion="1.1")
    cases = [
        (json.dumps(broken).encode(), "spaceship"),
        (json.dumps(old).encode(), "not supported"),
        (spdx_document(tmp_path, valid=False), "download_location"),
        (spdx_document(tmp_path).replace(b"SPDX-2.3", b"SPDX-2.2"), "not supported"),
        (cyclonedx["XML"].replace(b"<components>", b"<components><bogus/>", 1), "bogus"),
        (b"not an sbom", "not JSON"),
        (b'{"hello": "world"}', "neither CycloneDX"),
    ]
    for body, reason in cases:
        r = client.post(sboms, content=body)
        assert r.status_code == 422, (reason, r.text)
        assert r.json()["code"] == "InvalidEvidence" and reason in r.json()["message"], r.text
    assert client.get(sboms).json()["sboms"] == []


# ---- attestations ------------------------------------------------------------------------

SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"


def attestation(digest: str, predicate_type: str, predicate_file: str, signer: Any,
                statement_type: str = "https://in-toto.io/Statement/v1") -> bytes:  # fmt: skip
    payload = json.dumps(
        {
            "_type": statement_type,
            "subject": [{"name": "app.txt", "digest": {"sha256": digest.split(":")[1]}}],
            "predicateType": predicate_type,
            "predicate": json.loads(data(predicate_file)),
        }
    ).encode()
    return dsse(payload, signer)


def test_slsa_provenance_attestations_with_constraints(client: httpx.Client) -> None:
    artifact = uuid.uuid4().bytes * 3
    bucket, key = upload(client, artifact)
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    atts = f"/v1/buckets/{bucket}/objects/{key}/attestations"
    subject = {"bucket": bucket, "key": key}
    builder = ec.generate_private_key(ec.SECP256R1())
    key_id = trust(client, builder)
    r = client.post(atts, content=attestation(digest, SLSA_V1, "slsa_predicate_v1_0.json", builder))
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "attestation"
    assert r.json()["details"]["predicate_type"] == SLSA_V1
    assert r.json()["details"]["verified_by_key"] == key_id
    old = attestation(
        digest, SLSA_V02, "slsa_predicate_v0_2.json", builder, "https://in-toto.io/Statement/v0.1"
    )
    assert client.post(atts, content=old).status_code == 201
    assert len(client.get(atts).json()["attestations"]) == 2

    def check(*rules: dict) -> dict:
        r = client.post(
            "/v1/verify", json={"subject": subject, "policy": {"attestations": list(rules)}}
        )
        assert r.status_code == 200, r.text
        return r.json()

    repo = "buildDefinition.externalParameters.workflow.repository"
    assert check(
        {"predicate_type": SLSA_V1, "constraints": {repo: "https://github.com/octo-org/*"}}
    )["verified"]
    v02 = json.loads(data("slsa_predicate_v0_2.json"))["builder"]["id"]
    assert check({"predicate_type": SLSA_V02, "constraints": {"builder.id": v02}})["verified"]
    wrong = check({"predicate_type": SLSA_V1, "constraints": {repo: "https://github.com/evil/*"}})
    assert (
        wrong["verified"] is False
        and "not 'https://github.com/evil/*'" in wrong["rules"][0]["reason"]
    )
    missing = check({"predicate_type": "https://example.com/test-results/v1"})
    assert (
        missing["verified"] is False
        and "no https://example.com/test-results/v1" in missing["rules"][0]["reason"]
    )
    # Once the builder's key is revoked, its attestations no longer count.
    assert client.delete(f"/v1/keys/{key_id}").status_code == 204
    revoked = check({"predicate_type": SLSA_V1})
    assert (
        revoked["verified"] is False
        and "not signed by a trusted key" in revoked["rules"][0]["reason"]
    )


def test_refused_attestations(client: httpx.Client) -> None:
    artifact = uuid.uuid4().bytes * 4
    bucket, key = upload(client, artifact)
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    atts = f"/v1/buckets/{bucket}/objects/{key}/attestations"
    signer = ed25519.Ed25519PrivateKey.generate()
    cases = [
        (
            attestation("sha256:" + "2" * 64, SLSA_V1, "slsa_predicate_v1_0.json", signer),
            "SubjectMismatch",
        ),
        (
            attestation(
                digest, SLSA_V1, "slsa_predicate_v1_0.json", signer, "https://example.com/Statement"
            ),
            "InvalidEvidence",
        ),
        (data("bundle_v3.txt.sigstore"), "InvalidEvidence"),
        (b"plain text", "InvalidEvidence"),
    ]
    for body, code in cases:
        r = client.post(atts, content=body)
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert client.get(atts).json()["attestations"] == []
    # Accepted but unsigned by anything trusted: recorded as such.
    r = client.post(atts, content=attestation(digest, SLSA_V1, "slsa_predicate_v1_0.json", signer))
    assert r.status_code == 201 and r.json()["details"]["verified_by_key"] == ""


# ---- the whole story ----------------------------------------------------------------------


def test_sign_attest_verify_then_enforce_on_download(
    server: ServerProcess, client: httpx.Client, cyclonedx: dict[str, bytes]
) -> None:
    artifact = uuid.uuid4().bytes * 1000
    bucket, key = upload(client, artifact)
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    base = f"/v1/buckets/{bucket}/objects/{key}"
    signer = ec.generate_private_key(ec.SECP256R1())
    key_id = trust(client, signer)
    signature = base64.b64encode(signer.sign(artifact, ec.ECDSA(hashes.SHA256())))
    assert client.post(f"{base}/signatures", content=signature).status_code == 201
    assert client.post(f"{base}/sboms", content=cyclonedx["JSON"]).status_code == 201
    provenance = attestation(digest, SLSA_V1, "slsa_predicate_v1_0.json", signer)
    assert client.post(f"{base}/attestations", content=provenance).status_code == 201
    policy = {
        "signatures": [{"key": key_id}],
        "attestations": [
            {
                "predicate_type": SLSA_V1,
                "constraints": {
                    "buildDefinition.externalParameters.workflow.repository": "https://github.com/octo-org/*"
                },
            }
        ],
        "sbom": True,
    }
    subject = {"bucket": bucket, "key": key}
    result = client.post("/v1/verify", json={"subject": subject, "policy": policy}).json()
    assert result["verified"] is True, result
    assert {r["passed"] for r in result["rules"]} == {True}

    gate = {"name": "release-gate", "mode": "enforce", "policy": policy}
    assert client.put(f"/v1/buckets/{bucket}/verification", json=gate).status_code == 200
    assert client.get(f"/v1/buckets/{bucket}/verification").json()["mode"] == "enforce"
    r = client.get(base)
    assert r.status_code == 200 and r.content == artifact
    assert r.headers["x-verification"] == "passed"
    s3 = httpx.get(f"{server.url}/{bucket}/{key}")
    assert s3.status_code == 200 and s3.content == artifact

    # Overwritten: the new digest carries no evidence, so the gate refuses it.
    assert client.put(base, content=b"unsigned bytes").status_code == 200
    after = client.post("/v1/verify", json={"subject": subject, "policy": policy}).json()
    assert after["verified"] is False
    r = client.get(base)
    assert r.status_code == 403 and r.json()["code"] == "VerificationFailed"
    assert "no key-based signature" in r.json()["message"]
    assert "no SBOM" in r.json()["message"]
    s3 = httpx.get(f"{server.url}/{bucket}/{key}")
    assert s3.status_code == 403 and "<Code>AccessDenied</Code>" in s3.text
    # Audit mode serves it, and says so.
    gate["mode"] = "audit"
    assert client.put(f"/v1/buckets/{bucket}/verification", json=gate).status_code == 200
    r = client.get(base)
    assert r.status_code == 200 and r.headers["x-verification"] == "failed"
    assert r.headers["x-verification-policy"] == "release-gate (audit)"
    # Removed: no header at all.
    assert client.delete(f"/v1/buckets/{bucket}/verification").status_code == 204
    assert "x-verification" not in client.get(base).headers
    assert client.get(f"/v1/buckets/{bucket}/verification").json()["code"] == "NoSuchBucketPolicy"
    # Bad gates are refused.
    for bad in (
        {**gate, "mode": "block"},
        {**gate, "policy": {"signatures": [{"x": 1}]}},
        {"name": "g", "mode": "audit"},
    ):
        r = client.put(f"/v1/buckets/{bucket}/verification", json=bad)
        assert r.status_code == 400, r.text


BEACON_ISSUER = "https://token.actions.githubusercontent.com"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)


def test_attestations_in_sigstore_bundles_verified_offline(client: httpx.Client) -> None:
    """A real DSSE Sigstore bundle (an in-toto SLSA provenance statement signed keylessly in
    GitHub Actions) as an attestation and as a signature."""
    bundle = data("a.dsse.staging-rekor-v2.txt.sigstore.json")
    statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    digest = "sha256:" + statement["subject"][0]["digest"]["sha256"]
    headers = {"Content-Type": BUNDLE_V3}

    # The statement is about a.txt, not about the bytes of this object: 422, nothing stored.
    bucket, key = upload(client, data("a.dsse.staging-rekor-v2.txt"))
    r = client.post(f"/v1/buckets/{bucket}/objects/{key}/attestations", content=bundle,
                    headers=headers)  # fmt: skip
    assert r.status_code == 422 and r.json()["code"] == "SubjectMismatch", r.text
    assert (
        client.get(f"/v1/buckets/{bucket}/objects/{key}/attestations").json()["attestations"] == []
    )

    r = client.post(f"/v1/digests/{digest}/attestations", content=bundle, headers=headers)
    assert r.status_code == 201, r.text
    attached = r.json()
    assert attached["format"] == "sigstore"
    assert attached["details"]["predicate_type"] == "https://slsa.dev/provenance/v1"
    assert attached["details"]["identity"] == BEACON
    assert attached["details"]["issuer"] == BEACON_ISSUER
    assert client.get(f"/v1/evidence/{attached['id']}").content == bundle

    def verify_attestation(**rule: object) -> dict:
        policy = {"attestations": [{"predicate_type": "https://slsa.dev/provenance/v1", **rule}]}
        r = client.post("/v1/verify", json={"subject": {"digest": digest}, "policy": policy})
        assert r.status_code == 200, r.text
        return dict(r.json())

    builder = {"runDetails.builder.id": "https://github.com/sigstore-conformance/*"}
    signer = {
        "sigstore": {
            "issuer": BEACON_ISSUER,
            "identity_regex": "https://github.com/sigstore-conformance/.*",
        }
    }
    passed = verify_attestation(constraints=builder, signer=signer)
    assert passed["verified"] is True, passed
    assert passed["rules"][0]["evidence"] == [attached["id"]]
    # Each way it can fail says why.
    mallory = {"sigstore": {"issuer": BEACON_ISSUER, "identity": "mallory@example.com"}}
    failed = verify_attestation(signer=mallory)
    assert failed["verified"] is False and "SAN" in failed["rules"][0]["reason"]
    failed = verify_attestation()
    assert "names no sigstore signer" in failed["rules"][0]["reason"]
    failed = verify_attestation(
        signer=signer, constraints={"runDetails.builder.id": "https://evil/*"}
    )
    assert "runDetails.builder.id is" in failed["rules"][0]["reason"]
    r = client.post("/v1/verify", json={"subject": {"digest": digest}, "policy": {
        "attestations": [{"predicate_type": "x", "signer": {"sigstore": {}}}]}})  # fmt: skip
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"

    # The same bundle as a signature: verified through its DSSE envelope.
    r = client.post(f"/v1/digests/{digest}/signatures", content=bundle, headers=headers)
    assert r.status_code == 201, r.text
    result = verify(client, {"digest": digest}, signer)
    assert result["verified"] is True, result
    result = verify(client, {"digest": digest}, mallory)
    assert result["verified"] is False
