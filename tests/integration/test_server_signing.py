"""Server-side signing: the store signs a subject with its configured key (a DSSE envelope over
an in-toto statement), its key is trusted automatically, and verification accepts it."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import SSlibKey
from sigstore_models.bundle.v1 import Bundle as ModelBundle

from tests.fixtures.server import ServerProcess


@pytest.fixture(scope="module")
def signing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("signing")
    key = base / "signing.pem"
    private = ec.generate_private_key(ec.SECP256R1())
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    config = base / "config.yaml"
    config.write_text(
        json.dumps({"extensions": {"supplychain": {"signing": {"keyFile": str(key)}}}})
    )
    proc = ServerProcess(base / "data", config=config).start()
    yield proc
    proc.stop()


def test_the_store_signs_and_its_signature_verifies(signing_server: ServerProcess) -> None:
    with signing_server.client() as c:
        bucket = f"sign-{uuid.uuid4().hex[:8]}"
        artifact = uuid.uuid4().bytes * 50
        c.put(f"/v1/buckets/{bucket}")
        c.put(f"/v1/buckets/{bucket}/objects/app.bin", content=artifact)
        keys = [k for k in c.get("/v1/keys").json()["keys"] if k["name"] == "server signing key"]
        assert len(keys) == 1 and keys[0]["algorithm"] == "ecdsa-p256"
        server_key = keys[0]["id"]
        subject = {"bucket": bucket, "key": "app.bin"}
        policy = {"signatures": [{"key": server_key}]}
        before = c.post("/v1/verify", json={"subject": subject, "policy": policy}).json()
        assert before["verified"] is False

        r = c.post("/v1/sign", json={"subject": subject})
        assert r.status_code == 201, r.text
        signed = r.json()
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
        assert signed["subject_digest"] == digest and signed["format"] == "dsse"
        assert signed["envelope"]["payloadType"] == "application/vnd.in-toto+json"
        # The same signature as a Sigstore bundle with public-key material, verifiable with
        # the store's public key over DSSE's pre-authentication encoding.
        bundle = signed["bundle"]
        assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        assert bundle["verificationMaterial"]["publicKey"]["hint"] == server_key
        assert bundle["dsseEnvelope"]["payload"] == signed["envelope"]["payload"]
        ModelBundle.model_validate_json(json.dumps(bundle))
        pem = next(
            k["public_key"] for k in c.get("/v1/keys").json()["keys"] if k["id"] == server_key
        )
        public = serialization.load_pem_public_key(pem.encode())
        envelope = Envelope.from_dict(bundle["dsseEnvelope"])
        [signature] = envelope.signatures.values()
        SSlibKey.from_crypto(public, keyid=signature.keyid).verify_signature(
            signature, envelope.pae()
        )
        tampered = Envelope(
            b'{"forged": true}', envelope.payload_type, {signature.keyid: signature}
        )
        with pytest.raises(UnverifiedSignatureError):
            SSlibKey.from_crypto(public, keyid=signature.keyid).verify_signature(
                signature, tampered.pae()
            )
        after = c.post("/v1/verify", json={"subject": subject, "policy": policy}).json()
        assert after["verified"] is True, after

        # With a predicate it is an attestation a policy can require.
        r = c.post(
            "/v1/sign",
            json={
                "subject": subject,
                "predicate_type": "https://example.com/qa/v1",
                "predicate": {"result": "passed"},
            },
        )
        assert r.status_code == 201 and r.json()["kind"] == "attestation"
        rule = {"predicate_type": "https://example.com/qa/v1", "constraints": {"result": "passed"}}
        out = c.post("/v1/verify", json={"subject": subject, "policy": {"attestations": [rule]}})
        assert out.json()["verified"] is True, out.text
        # Bad requests.
        assert c.post("/v1/sign", json={"subject": subject, "predicate": 3}).status_code == 400
        assert c.post("/v1/sign", json={"subject": subject, "x": 1}).status_code == 400
        assert (
            c.post("/v1/sign", json={"subject": {"bucket": bucket, "key": "nope"}}).status_code
            == 404
        )


def test_the_embedded_default_signs_with_a_key_it_made_and_keeps(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """docs/cli.md's `zot-artifacts sign` works on a fresh default server: a P-256 key is made
    on first start in the data directory (private), logged by key id, and kept across restarts
    (signatures made before a restart still verify with the same trusted key)."""
    data = tmp_path_factory.mktemp("default-signing") / "data"
    subject = {"digest": "sha256:" + "1" * 64}
    proc = ServerProcess(data).start()
    try:
        with proc.client() as c:
            r = c.post("/v1/sign", json={"subject": subject})
            assert r.status_code == 201, r.text
            [key] = [
                k for k in c.get("/v1/keys").json()["keys"] if k["name"] == "server signing key"
            ]
    finally:
        proc.stop()
    pem = data / "signing-key.pem"
    assert pem.stat().st_mode & 0o077 == 0
    assert b"PRIVATE KEY" in pem.read_bytes()
    [line] = [x for x in proc.log_lines() if x["message"] == "server-side signing enabled"]
    assert line["key_id"] == key["id"] and line["key_source"].endswith("signing-key.pem")
    proc = ServerProcess(data).start()
    try:
        with proc.client() as c:
            keys = [
                k for k in c.get("/v1/keys").json()["keys"] if k["name"] == "server signing key"
            ]
            assert [k["id"] for k in keys] == [key["id"]]
            policy = {"signatures": [{"key": key["id"]}]}
            out = c.post("/v1/verify", json={"subject": subject, "policy": policy}).json()
            assert out["verified"] is True, out
    finally:
        proc.stop()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda pem: pem[: len(pem) // 2], id="cut-short"),
        pytest.param(lambda pem: b"not a key\n", id="not-pem"),
        pytest.param(lambda pem: pem.replace(b"\n", b"\n!", 2), id="bad-base64"),
        pytest.param(lambda pem: pem.replace(b"-----\n", b"-----\nMIIB", 1), id="padded"),
    ],
)
def test_a_broken_generated_key_stops_the_start_and_says_what_to_do(
    tmp_path_factory: pytest.TempPathFactory, damage: Callable[[bytes], bytes]
) -> None:
    """The generated key is loaded on first use (idle memory, issue 23); a broken one already
    in the data directory still stops the start, naming the file, not the first signature."""
    data = tmp_path_factory.mktemp("broken-signing") / "data"
    proc = ServerProcess(data).start()
    try:
        with proc.client() as c:
            assert c.post("/v1/sign", json={"subject": {"digest": "sha256:" + "2" * 64}}).is_success
    finally:
        proc.stop()
    pem = data / "signing-key.pem"
    good = pem.read_bytes()
    pem.write_bytes(damage(good))
    refused = ServerProcess(data)
    try:
        with pytest.raises(RuntimeError, match="server exited with") as exc:
            refused.start()
    finally:
        refused.stop()  # had it started, it must not outlive the test
    said = str(exc.value)
    assert f"generated signing key {pem} is unusable" in said and "move it away" in said
    pem.write_bytes(good)  # restored: it starts and signs with the same key
    proc = ServerProcess(data).start()
    try:
        with proc.client() as c:
            assert c.post("/v1/sign", json={"subject": {"digest": "sha256:" + "3" * 64}}).is_success
    finally:
        proc.stop()


def test_signing_is_off_when_generation_is_turned_off(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("no-signing") / "data"
    env = {"ZAS_EXTENSIONS_SUPPLYCHAIN_SIGNING_GENERATE": "false"}
    proc = ServerProcess(data, env=env).start()
    try:
        with proc.client() as c:
            r = c.post("/v1/sign", json={"subject": {"digest": "sha256:" + "0" * 64}})
            assert r.status_code == 501 and r.json()["code"] == "NotImplemented"
    finally:
        proc.stop()
    assert not (data / "signing-key.pem").exists()


def test_a_passing_verification_issues_a_signed_vsa(signing_server: ServerProcess) -> None:
    with signing_server.client() as c:
        bucket = f"vsa-{uuid.uuid4().hex[:8]}"
        c.put(f"/v1/buckets/{bucket}")
        c.put(f"/v1/buckets/{bucket}/objects/app.bin", content=b"verified bytes")
        subject = {"bucket": bucket, "key": "app.bin"}
        server_key = next(
            k["id"] for k in c.get("/v1/keys").json()["keys"] if k["name"] == "server signing key"
        )
        policy = {"signatures": [{"key": server_key}]}
        # Failing: no VSA.
        r = c.post("/v1/verify", json={"subject": subject, "policy": policy, "issue_vsa": True})
        assert r.json()["verified"] is False and "vsa" not in r.json()
        assert c.post("/v1/sign", json={"subject": subject}).status_code == 201
        r = c.post("/v1/verify", json={"subject": subject, "policy": policy, "issue_vsa": True})
        answer = r.json()
        assert answer["verified"] is True, answer
        vsa = answer["vsa"]
        assert vsa["kind"] == "attestation"
        assert vsa["details"]["predicate_type"] == "https://slsa.dev/verification_summary/v1"
        envelope = json.loads(c.get(f"/v1/evidence/{vsa['id']}").content)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["predicate"]["verificationResult"] == "PASSED"
        assert statement["predicate"]["resourceUri"] == f"{bucket}/app.bin"
        assert len(statement["predicate"]["inputAttestations"]) == 1
        # And a policy can require it.
        rule = {
            "predicate_type": "https://slsa.dev/verification_summary/v1",
            "constraints": {"verificationResult": "PASSED"},
        }
        out = c.post("/v1/verify", json={"subject": subject, "policy": {"attestations": [rule]}})
        assert out.json()["verified"] is True
        bad = c.post("/v1/verify", json={"subject": subject, "policy": policy, "issue_vsa": "y"})
        assert bad.status_code == 400
