"""Verification rules that must not pass too easily, over HTTP against the real server on both
metadata backends: a scoped key vouches only for subjects where it is trusted (not for the
same bytes elsewhere), a threshold counts each signer once, and RSA DSSE envelopes verify
whichever RSA padding signed them, and the store's own key never vouches for a predicate a
writer made up."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from tests.fixtures.evidence import data, dsse, statement, trust
from tests.fixtures.server import ServerProcess, signing_config
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from tests.integration.test_signatures import BUNDLE_V3, GITHUB, client, server

__all__ = ["client", "server"]  # the signature tests' server (staging trusted root), reused

SLSA = "https://slsa.dev/provenance/v1"


def put(c: httpx.Client, bucket: str, body: bytes) -> dict[str, str]:
    if c.head(f"/v1/buckets/{bucket}").status_code == 404:
        assert c.put(f"/v1/buckets/{bucket}").status_code == 201
    assert c.put(f"/v1/buckets/{bucket}/objects/app.txt", content=body).status_code == 201
    return {"bucket": bucket, "key": "app.txt"}


def verify(c: httpx.Client, subject: dict[str, str], policy: dict[str, Any]) -> dict[str, Any]:
    r = c.post("/v1/verify", json={"subject": subject, "policy": policy})
    assert r.status_code == 200, r.text
    return r.json()


def attach(c: httpx.Client, subject: dict[str, str], kind: str, body: bytes) -> None:
    path = f"/v1/buckets/{subject['bucket']}/objects/{subject['key']}/{kind}"
    r = c.post(path, content=body)
    assert r.status_code == 201, r.text


def test_an_unknown_rule_is_a_bad_request(client: httpx.Client) -> None:
    """Found by the API fuzzer: a rule the store does not know was a 501 (a server error)."""
    subject = put(client, "rules-unknown", b"x")
    r = client.post("/v1/verify", json={"subject": subject, "policy": {"colour": "red"}})
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", r.text
    assert "colour" in r.json()["message"] and "signatures" in r.json()["message"]


def test_a_scoped_key_vouches_only_where_it_is_trusted(client: httpx.Client) -> None:
    body = f"the same bytes {uuid.uuid4()}".encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    team, prod = f"team-{uuid.uuid4().hex[:8]}", f"prod-{uuid.uuid4().hex[:8]}"
    in_team, in_prod = put(client, team, body), put(client, prod, body)
    signer = ec.generate_private_key(ec.SECP256R1())
    key = trust(client, signer, scope=f"bucket:{team}")
    # Team B signs and attests its copy: evidence binds to the digest, shared by both copies.
    attach(client, in_team, "signatures", dsse(statement(digest), signer))
    attach(client, in_team, "attestations", dsse(statement(digest, SLSA), signer))

    signed = {"signatures": [{"key": key}]}
    attested = {"attestations": [{"predicate_type": SLSA}]}
    for policy in (signed, attested):
        assert verify(client, in_team, policy)["verified"] is True
        out = verify(client, in_prod, policy)
        assert out["verified"] is False, out
        assert f"trusted only for bucket:{team}" in json.dumps(out["rules"])
        assert verify(client, {"digest": digest}, policy)["verified"] is False

    # A glob scope covers the buckets it names, and only those.
    globbed = ec.generate_private_key(ec.SECP256R1())
    glob = trust(client, globbed, scope=f"bucket:{team[:5]}*")
    attach(client, in_team, "signatures", dsse(statement(digest), globbed))
    assert verify(client, in_team, {"signatures": [{"key": glob}]})["verified"] is True
    assert verify(client, in_prod, {"signatures": [{"key": glob}]})["verified"] is False

    # An enforce gate on prod is not opened by team B's key.
    gate = {"name": "attested", "mode": "enforce", "policy": attested}
    assert client.put(f"/v1/buckets/{prod}/verification", json=gate).status_code in (200, 201)
    assert client.get(f"/v1/buckets/{prod}/objects/app.txt").status_code == 403
    assert client.get(f"/v1/buckets/{team}/objects/app.txt").content == body
    assert client.delete(f"/v1/buckets/{prod}/verification").status_code == 204


def test_a_threshold_counts_each_signer_once(client: httpx.Client) -> None:
    body = f"two signers wanted {uuid.uuid4()}".encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    subject = put(client, f"thr-{uuid.uuid4().hex[:8]}", body)
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    k1, k2 = trust(client, first), trust(client, second)
    attach(client, subject, "signatures", dsse(statement(digest), first))
    attach(client, subject, "signatures", dsse(statement(digest), first))  # signed twice

    out = verify(client, subject, {"signatures": [{"key": k1}, {"key": k1}], "threshold": 2})
    assert out["verified"] is False
    summary = next(r for r in out["rules"] if r["rule"].startswith("at least"))
    assert "1 distinct signer" in summary["reason"], summary
    out = verify(client, subject, {"signatures": [{"key": k1}, {"key": k2}], "threshold": 2})
    assert out["verified"] is False
    attach(client, subject, "signatures", dsse(statement(digest), second))
    out = verify(client, subject, {"signatures": [{"key": k1}, {"key": k2}], "threshold": 2})
    assert out["verified"] is True, out


def test_one_sigstore_identity_is_one_signer(client: httpx.Client) -> None:
    subject = put(client, f"sgt-{uuid.uuid4().hex[:8]}", data("bundle_v3.txt"))
    path = f"/v1/buckets/{subject['bucket']}/objects/app.txt/signatures"
    for bundle in ("bundle_v3.txt.sigstore",):
        r = client.post(path, content=data(bundle), headers={"Content-Type": BUNDLE_V3})
        assert r.status_code == 201, r.text
    # Two rules that the same person (william@yossarian.net) meets.
    rules = [
        {"sigstore": {"issuer": GITHUB, "identity_regex": r".*@yossarian\.net"}},
        {"sigstore": {"issuer": GITHUB, "identity_regex": r"william@.*"}},
    ]
    out = verify(client, subject, {"signatures": rules, "threshold": 2})
    assert [r["passed"] for r in out["rules"][:2]] == [True, True]
    assert out["verified"] is False, out
    assert verify(client, subject, {"signatures": rules, "threshold": 1})["verified"] is True


def test_rsa_dsse_envelopes_verify_with_either_padding(client: httpx.Client) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = trust(client, private)
    for scheme in ("rsa-pkcs1v15-sha256", "rsassa-pss-sha256"):
        body = f"rsa {scheme} {uuid.uuid4()}".encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        subject = put(client, f"rsa-{uuid.uuid4().hex[:8]}", body)
        public = SSlibKey.from_crypto(private.public_key(), scheme=scheme)
        envelope = Envelope(statement(digest), "application/vnd.in-toto+json", {})
        envelope.sign(CryptoSigner(private, public))  # what cosign does for RSA: PKCS#1 v1.5
        attach(client, subject, "signatures", json.dumps(envelope.to_dict()).encode())
        out = verify(client, subject, {"signatures": [{"key": key}]})
        assert out["verified"] is True, (scheme, out)


@pytest.fixture(scope="module")
def signing_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A store with server-side signing and authentication on."""
    base = tmp_path_factory.mktemp("sign-auth")
    config = signing_config(base)
    proc = ServerProcess(
        base / "data", config=config,
        env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    ).start()  # fmt: skip
    yield proc
    proc.stop()


def test_the_store_key_never_vouches_for_what_a_writer_wrote(signing_store: ServerProcess) -> None:
    root = (ROOT_USER, ROOT_PASSWORD)
    with signing_store.client() as c:
        r = c.post("/v1/tokens", json={"name": "ci-writer", "roles": ["writer"]}, auth=root)
        writer = {"Authorization": f"Bearer {r.json()['token']}"}
        bucket = f"forge-{uuid.uuid4().hex[:8]}"
        assert c.put(f"/v1/buckets/{bucket}", headers=writer).status_code == 201
        r = c.put(f"/v1/buckets/{bucket}/objects/app.bin", content=b"unverified", headers=writer)
        assert r.status_code == 201
        subject = {"bucket": bucket, "key": "app.bin"}
        vsa = "https://slsa.dev/verification_summary/v1"
        gate = {
            "name": "vsa", "mode": "enforce",
            "policy": {"attestations": [{"predicate_type": vsa,
                                         "constraints": {"verificationResult": "PASSED"}}]},
        }  # fmt: skip
        assert c.put(f"/v1/buckets/{bucket}/verification", json=gate, auth=root).status_code in (
            200,
            201,
        )
        assert c.get(f"/v1/buckets/{bucket}/objects/app.bin", headers=writer).status_code == 403

        # A writer may have the store sign the subject (a statement naming who asked) ...
        r = c.post("/v1/sign", json={"subject": subject}, headers=writer)
        assert r.status_code == 201, r.text
        # ... but not have its key vouch for a predicate the writer made up,
        forged = {"verificationResult": "PASSED", "verifier": {"id": "me"}}
        for kind in (vsa, "https://slsa.dev/provenance/v1"):
            r = c.post("/v1/sign", json={"subject": subject, "predicate_type": kind,
                                         "predicate": forged}, headers=writer)  # fmt: skip
            assert r.status_code == 403 and r.json()["code"] == "AccessDenied", r.text
        # ... and a verification summary is only ever issued by a passing verification.
        r = c.post("/v1/sign", json={"subject": subject, "predicate_type": vsa,
                                     "predicate": forged}, auth=root)  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", r.text
        assert c.get(f"/v1/buckets/{bucket}/objects/app.bin", headers=writer).status_code == 403
        # An admin may sign a predicate (e.g. for a trusted build service).
        r = c.post("/v1/sign", json={"subject": subject, "predicate_type": "https://example.com/t",
                                     "predicate": {"ok": True}}, auth=root)  # fmt: skip
        assert r.status_code == 201 and r.json()["kind"] == "attestation", r.text
