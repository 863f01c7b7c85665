"""Verification gates and evidence reads that a caller must not get around (from a review), over
HTTP against the running server with authentication on, on both metadata backends:

* a repository's enforce gate exempts only real evidence (signatures, attestations, SBOMs),
  never a runnable image that carries a dummy ``subject`` or a cosign-looking tag;
* a server-side copy (``/v1`` X-Copy-Source, S3 CopyObject and UploadPartCopy) reads its source
  as a download does: an enforced bucket refuses it, an audited one records it;
* evidence is read only by who may read its subject, and a subject the caller may not read
  answers 403 whether it exists or not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures import s3client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from tests.integration.test_identity import eventually, make_token, problem

ROOT = (ROOT_USER, ROOT_PASSWORD)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY = "application/vnd.oci.empty.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
NOTATION = "application/vnd.cncf.notary.signature"
CYCLONEDX = "application/vnd.cyclonedx+json"
ACCEPT = {"Accept": OCI_MANIFEST}
SBOM_GATE = {"sbom": True}


class Bearer(httpx.Auth):
    """A token's credentials for one request of the root client."""

    def __init__(self, token: dict[str, Any]) -> None:
        self.token = str(token["token"])

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def c(auth_server: ServerProcess) -> Iterator[httpx.Client]:
    with auth_server.client(auth=ROOT) as client:
        yield client


# ---- registry helpers -----------------------------------------------------------------------


def push_blob(c: httpx.Client, repo: str, data: bytes, media_type: str) -> dict[str, Any]:
    digest = sha256(data)
    r = c.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def push_manifest(c: httpx.Client, repo: str, ref: str, doc: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(doc).encode()
    r = c.put(f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
    return {"mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body)}


def manifest(config: dict[str, Any], layers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers,
            **extra}  # fmt: skip


def runnable_layers(c: httpx.Client, repo: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A real image's config and a gzip tar layer, unique to this call."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()})
    return (
        push_blob(c, repo, config.encode(), OCI_CONFIG),
        [push_blob(c, repo, os.urandom(512), OCI_LAYER)],
    )


def cosign_layer(c: httpx.Client, repo: str, digest: str) -> dict[str, Any]:
    payload = json.dumps(
        {"critical": {"identity": {"docker-reference": repo},
                      "image": {"docker-manifest-digest": digest},
                      "type": "cosign container image signature"},
         "optional": None},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = push_blob(c, repo, payload, SIMPLESIGNING)
    return {**layer, "annotations": {"dev.cosignproject.cosign/signature": signature}}


def sbom_doc(name: str) -> bytes:
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
         "components": [{"type": "library", "name": name, "version": "1.0"}]}
    ).encode()  # fmt: skip


def gate_repo(c: httpx.Client, pattern: str, mode: str = "enforce") -> None:
    gate = {"name": "sbom-required", "mode": mode, "policy": SBOM_GATE}
    r = c.put(f"/v1/repositories/{pattern}/verification", json=gate)
    assert r.status_code == 200, r.text


def gate_bucket(c: httpx.Client, bucket: str, mode: str = "enforce") -> None:
    gate = {"name": "sbom-required", "mode": mode, "policy": SBOM_GATE}
    r = c.put(f"/v1/buckets/{bucket}/verification", json=gate)
    assert r.status_code in (200, 201), r.text


def assert_denied(r: httpx.Response) -> None:
    assert r.status_code == 403, (r.status_code, r.text)
    if r.request.method != "HEAD":
        error = r.json()["errors"][0]
        assert error["code"] == "DENIED" and "sbom-required" in error["message"], r.text


# ---- defect 4: the repository gate exempts evidence only ------------------------------------


def test_a_runnable_image_under_a_cosign_signature_tag_is_gated(c: httpx.Client) -> None:
    repo = f"gated-{run_id()}/app"
    gate_repo(c, repo)
    config, layers = runnable_layers(c, repo)
    for suffix in ("sig", "att", "sbom"):
        legacy = f"sha256-{'1' * 64}.{suffix}"
        push_manifest(c, repo, legacy, manifest(config, layers))
        assert_denied(c.get(f"/v2/{repo}/manifests/{legacy}", headers=ACCEPT))
        assert_denied(c.head(f"/v2/{repo}/manifests/{legacy}", headers=ACCEPT))


def test_a_runnable_image_is_gated_whatever_subject_it_names(c: httpx.Client) -> None:
    repo = f"gated-{run_id()}/app"
    gate_repo(c, repo)
    config, layers = runnable_layers(c, repo)
    plain = push_manifest(c, repo, "plain", manifest(config, layers))
    assert_denied(c.get(f"/v2/{repo}/manifests/plain", headers=ACCEPT))

    # The same kind of unsigned image, with a subject pointing anywhere, tagged 1.0.
    config, layers = runnable_layers(c, repo)
    dummy = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "0" * 64, "size": 1}
    subjected = push_manifest(c, repo, "1.0", manifest(config, layers, subject=dummy))
    for ref in ("1.0", subjected["digest"]):
        assert_denied(c.get(f"/v2/{repo}/manifests/{ref}", headers=ACCEPT))
        assert_denied(c.head(f"/v2/{repo}/manifests/{ref}", headers=ACCEPT))

    # A subject that is a real image, and an artifact type that claims to be a signature,
    # do not make a runnable image evidence either.
    config, layers = runnable_layers(c, repo)
    posing = manifest(config, layers, subject=plain, artifactType=NOTATION)
    push_manifest(c, repo, "posing", posing)
    assert_denied(c.get(f"/v2/{repo}/manifests/posing", headers=ACCEPT))
    # Nor does one signature layer beside an image layer.
    mixed = manifest(config, [cosign_layer(c, repo, plain["digest"]), *layers], subject=plain)
    push_manifest(c, repo, "mixed", mixed)
    assert_denied(c.get(f"/v2/{repo}/manifests/mixed", headers=ACCEPT))

    # Real evidence stays readable, ungated: a cosign signature under its tag and as a
    # referrer, a notation signature and an SBOM referrer.
    digest = plain["digest"]
    empty = push_blob(c, repo, b"{}", EMPTY)
    sig_tag = digest.replace(":", "-") + ".sig"
    push_manifest(c, repo, sig_tag, manifest(config, [cosign_layer(c, repo, digest)]))
    jws = push_blob(c, repo, b'{"protected":"e30","payload":"e30","signature":""}',
                    "application/jose+json")  # fmt: skip
    sbom = push_blob(c, repo, sbom_doc("gated-lib"), CYCLONEDX)
    referrers = {
        "cosign": manifest(empty, [cosign_layer(c, repo, digest)], subject=plain,
                           artifactType="application/vnd.dev.cosign.artifact.sig.v1+json"),
        "notation": manifest(empty, [jws], subject=plain, artifactType=NOTATION),
        "sbom": manifest(empty, [sbom], subject=plain, artifactType=CYCLONEDX),
    }  # fmt: skip
    for name, doc in referrers.items():
        push_manifest(c, repo, name, doc)
    for ref in (sig_tag, *referrers):
        r = c.get(f"/v2/{repo}/manifests/{ref}", headers=ACCEPT)
        assert r.status_code == 200, (ref, r.text)
        assert "x-verification" not in r.headers
    # The SBOM referrer made the image itself pass the gate.
    r = c.get(f"/v2/{repo}/manifests/plain", headers=ACCEPT)
    assert r.status_code == 200, r.text
    assert r.headers["x-verification"] == "passed"


# ---- defect 5: copies read their source as a download does ---------------------------------


def s3_client(server: ServerProcess, c: httpx.Client) -> BaseClient:
    r = c.post("/v1/access-keys", json={"name": "copier", "roles": ["writer"]})
    assert r.status_code == 201, r.text
    key = r.json()
    return s3client.s3_client(server.url, key["access_key_id"], key["secret_access_key"])


def s3_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def gated_buckets(c: httpx.Client) -> tuple[str, str, str, dict[str, Any], bytes]:
    """(an enforced bucket, an audited one, a plain target, a writer token, the bytes): both
    sources hold the same unverified x.bin (new bytes each time), their gate requires an
    SBOM."""
    run = run_id()
    body = f"unverified bytes {run} ".encode() * 1000
    gated, audited, target = f"gated-{run}", f"audited-{run}", f"target-{run}"
    for bucket in (gated, audited, target):
        assert c.put(f"/v1/buckets/{bucket}").status_code == 201
    for bucket in (gated, audited):
        assert c.put(f"/v1/buckets/{bucket}/objects/x.bin", content=body).status_code == 201
    gate_bucket(c, gated)
    gate_bucket(c, audited, "audit")
    writer = make_token(c, ["writer"], "copier")
    problem(c.get(f"/v1/buckets/{gated}/objects/x.bin", auth=Bearer(writer)), 403,
            "VerificationFailed")  # fmt: skip
    return gated, audited, target, writer, body


def gate_records(c: httpx.Client, bucket: str, count: int) -> list[dict[str, Any]]:
    """The audited gate decisions about ``bucket``/x.bin, once there are ``count``."""

    def records() -> list[dict[str, Any]]:
        r = c.get("/v1/audit", params={"action": "supplychain:gate", "resource": bucket})
        assert r.status_code == 200, r.text
        return [x for x in r.json()["records"] if x["resource"] == f"{bucket}/x.bin"]

    return list(eventually(lambda: len(records()) >= count and records()) or [])


def test_a_v1_copy_reads_its_source_through_the_bucket_gate(c: httpx.Client) -> None:
    gated, audited, target, writer, _ = gated_buckets(c)
    # Refused as the GET is, and nothing is written.
    r = c.put(f"/v1/buckets/{target}/objects/copy.bin",
              auth=Bearer(writer), headers={"X-Copy-Source": f"{gated}/x.bin"})  # fmt: skip
    problem(r, 403, "VerificationFailed")
    assert "sbom-required" in r.json()["message"]
    problem(c.get(f"/v1/buckets/{target}/objects/copy.bin"), 404, "NoSuchKey")

    # Audit mode: the copy is made, told and recorded as a download is.
    r = c.put(f"/v1/buckets/{target}/objects/copy.bin",
              auth=Bearer(writer), headers={"X-Copy-Source": f"{audited}/x.bin"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.headers["x-verification"] == "failed"
    assert r.headers["x-verification-policy"] == "sbom-required (audit)"
    records = gate_records(c, audited, 1)
    assert [x["decision"] for x in records] == ["deny"], records

    # With an SBOM the gated source passes, and the copy is made.
    r = c.post(f"/v1/buckets/{gated}/objects/x.bin/sboms", content=sbom_doc("x"),
               headers={"Content-Type": CYCLONEDX})  # fmt: skip
    assert r.status_code == 201, r.text
    r = c.put(f"/v1/buckets/{target}/objects/copy.bin",
              auth=Bearer(writer), headers={"X-Copy-Source": f"{gated}/x.bin"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-verification"] == "passed"


def test_s3_copies_read_their_source_through_the_bucket_gate(
    auth_server: ServerProcess, c: httpx.Client
) -> None:
    gated, audited, target, _, body = gated_buckets(c)
    s3 = s3_client(auth_server, c)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=gated, Key="x.bin")
    assert s3_error(exc) == ("AccessDenied", 403)
    # CopyObject and UploadPartCopy are refused as S3 refuses the GET; nothing is written.
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=target, Key="c.bin", CopySource={"Bucket": gated, "Key": "x.bin"})
    assert s3_error(exc) == ("AccessDenied", 403)
    upload = s3.create_multipart_upload(Bucket=target, Key="m.bin")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=target, Key="m.bin", UploadId=upload, PartNumber=1,
                            CopySource={"Bucket": gated, "Key": "x.bin"},
                            CopySourceRange="bytes=0-99")  # fmt: skip
    assert s3_error(exc) == ("AccessDenied", 403)
    assert s3.list_parts(Bucket=target, Key="m.bin", UploadId=upload).get("Parts", []) == []
    assert s3.list_objects_v2(Bucket=target).get("Contents", []) == []

    # Audit mode: both are made, and recorded as downloads are.
    s3.copy_object(Bucket=target, Key="c.bin", CopySource={"Bucket": audited, "Key": "x.bin"})
    part = s3.upload_part_copy(Bucket=target, Key="m.bin", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": audited, "Key": "x.bin"},
                               CopySourceRange="bytes=0-99")  # fmt: skip
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]}
    s3.complete_multipart_upload(Bucket=target, Key="m.bin", UploadId=upload, MultipartUpload=parts)
    assert s3.get_object(Bucket=target, Key="m.bin")["Body"].read() == body[:100]
    assert s3.get_object(Bucket=target, Key="c.bin")["Body"].read() == body
    records = gate_records(c, audited, 2)
    assert [x["decision"] for x in records] == ["deny", "deny"], records


# ---- defect 8: evidence is read only by who may read its subject ----------------------------


class Evidence:
    """An image signed by a cosign tag in team ``secret-…``, and the same bytes in a closed and
    an open bucket with an SBOM each; ``outsider`` is a reader denied everything of the team
    and of the closed bucket, ``insider`` a plain reader."""

    def __init__(self, c: httpx.Client) -> None:
        run = run_id()
        team = f"secret-{run}"
        self.repo = f"{team}/app"
        config, layers = runnable_layers(c, self.repo)
        self.image = push_manifest(c, self.repo, "1.0", manifest(config, layers))["digest"]
        sig_tag = self.image.replace(":", "-") + ".sig"
        cosign = manifest(config, [cosign_layer(c, self.repo, self.image)])
        push_manifest(c, self.repo, sig_tag, cosign)
        [self.image_sig] = c.get(f"/v1/digests/{self.image}/signatures").json()["signatures"]
        assert self.image_sig["subject"] == f"{self.repo}@{self.image}"

        self.closed, self.open = f"closed-{run}", f"open-{run}"
        body = f"shared bytes {run}".encode()
        self.digest = sha256(body)
        self.sboms = {}
        for bucket in (self.closed, self.open):
            assert c.put(f"/v1/buckets/{bucket}").status_code == 201
            assert c.put(f"/v1/buckets/{bucket}/objects/f.bin", content=body).status_code == 201
            r = c.post(f"/v1/buckets/{bucket}/objects/f.bin/sboms", content=sbom_doc(bucket),
                       headers={"Content-Type": CYCLONEDX})  # fmt: skip
            assert r.status_code == 201, r.text
            self.sboms[bucket] = r.json()["id"]
        closed = self.closed
        deny = [{"Effect": "Deny", "Action": "*",
                 "Resource": [f"repo:{team}/*", closed, f"{closed}/*"]}]  # fmt: skip
        self.outsider = Bearer(make_token(c, ["reader"], "outsider", statements=deny))
        self.insider = Bearer(make_token(c, ["reader"], "insider"))


def test_an_evidence_document_is_read_only_by_who_may_read_its_subject(
    c: httpx.Client,
) -> None:
    e = Evidence(c)
    # The image's signature and the closed bucket's SBOM are refused to the outsider ...
    problem(c.get(f"/v1/evidence/{e.image_sig['id']}", auth=e.outsider), 403, "AccessDenied")
    problem(c.get(f"/v1/evidence/{e.sboms[e.closed]}", auth=e.outsider), 403, "AccessDenied")
    assert c.get(f"/v1/evidence/{e.sboms[e.open]}", auth=e.outsider).status_code == 200
    # ... to the outsider only.
    for evidence_id in (e.image_sig["id"], *e.sboms.values()):
        assert c.get(f"/v1/evidence/{evidence_id}", auth=e.insider).status_code == 200


def test_evidence_listings_show_only_what_the_caller_may_read(c: httpx.Client) -> None:
    e = Evidence(c)

    def listed(path: str, who: Bearer) -> set[str]:
        r = c.get(path, auth=who)
        assert r.status_code == 200, r.text
        return {x["subject"] for x in r.json()[path.rsplit("/", 1)[1]]}

    image_sigs = f"/v1/digests/{e.image}/signatures"
    assert listed(image_sigs, e.insider) == {f"{e.repo}@{e.image}"}
    assert listed(image_sigs, e.outsider) == set()
    both = {f"{e.closed}/f.bin", f"{e.open}/f.bin"}
    assert listed(f"/v1/digests/{e.digest}/sboms", e.insider) == both
    assert listed(f"/v1/digests/{e.digest}/sboms", e.outsider) == {f"{e.open}/f.bin"}
    # Listed through the open object, the closed one's SBOM (same bytes) is not shown either.
    path = f"/v1/buckets/{e.open}/objects/f.bin/sboms"
    assert listed(path, e.insider) == both
    assert listed(path, e.outsider) == {f"{e.open}/f.bin"}


def outsider(c: httpx.Client, *resources: str) -> Bearer:
    """A writer denied everything on ``resources``."""
    deny = [{"Effect": "Deny", "Action": "*", "Resource": list(resources)}]
    return Bearer(make_token(c, ["writer"], "outsider", statements=deny))


def test_an_object_the_caller_may_not_read_answers_403_whether_it_exists_or_not(
    c: httpx.Client,
) -> None:
    secret = f"secret-{run_id()}"
    assert c.put(f"/v1/buckets/{secret}").status_code == 201
    assert c.put(f"/v1/buckets/{secret}/objects/plans/q3.pdf", content=b"x").status_code == 201
    who = outsider(c, secret, f"{secret}/*")
    for key in ("plans/q3.pdf", "plans/nothing.pdf"):
        problem(c.get(f"/v1/buckets/{secret}/objects/{key}", auth=who), 403, "AccessDenied")
        subject = {"bucket": secret, "key": key}
        r = c.post("/v1/verify", json={"subject": subject, "policy": SBOM_GATE}, auth=who)
        problem(r, 403, "AccessDenied")
        problem(c.post("/v1/sign", json={"subject": subject}, auth=who), 403, "AccessDenied")
        url = f"/v1/buckets/{secret}/objects/{key}"
        for kind in ("signatures", "sboms", "attestations"):
            problem(c.get(f"{url}/{kind}", auth=who), 403, "AccessDenied")
        r = c.post(f"{url}/sboms", content=sbom_doc("x"),
                   auth=who, headers={"Content-Type": CYCLONEDX})  # fmt: skip
        problem(r, 403, "AccessDenied")
    # Whoever may read it learns that it is missing.
    subject = {"bucket": secret, "key": "plans/nothing.pdf"}
    r = c.post("/v1/verify", json={"subject": subject, "policy": SBOM_GATE})
    problem(r, 404, "NoSuchKey")
    problem(c.get(f"/v1/buckets/{secret}/objects/plans/nothing.pdf/sboms"), 404, "NoSuchKey")


def test_an_image_the_caller_may_not_pull_is_neither_verified_nor_signed_for_it(
    c: httpx.Client,
) -> None:
    team = f"hidden-{run_id()}"
    repo = f"{team}/app"
    config, layers = runnable_layers(c, repo)
    image = push_manifest(c, repo, "1.0", manifest(config, layers))["digest"]
    who = outsider(c, f"repo:{team}/*")
    for digest in (image, "sha256:" + "2" * 64):
        subject = {"repository": repo, "digest": digest}
        r = c.post("/v1/verify", json={"subject": subject, "policy": SBOM_GATE}, auth=who)
        problem(r, 403, "AccessDenied")
        problem(c.post("/v1/sign", json={"subject": subject}, auth=who), 403, "AccessDenied")
    # Whoever may pull it still verifies it.
    subject = {"repository": repo, "digest": image}
    r = c.post("/v1/verify", json={"subject": subject, "policy": SBOM_GATE})
    assert r.status_code == 200 and r.json()["verified"] is False, r.text
    assert r.json()["subject"] == f"{repo}@{image}"
