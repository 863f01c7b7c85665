"""Signatures and attestations that OCI tools push into the registry, read as evidence.

cosign stores an image's signatures under the tag ``sha256-<hex>.sig`` (attestations under
``.att``, SBOMs under ``.sbom``) in the image's repository, or, in OCI 1.1 mode, as referrers
(manifests whose ``subject`` is the image). A cosign signature is a layer of media type
``application/vnd.dev.cosign.simplesigning.v1+json`` whose bytes are the "simple signing"
payload naming the image digest, with the base64 signature over those bytes in the layer
annotation ``dev.cosignproject.cosign/signature``. Attestation layers are DSSE envelopes.
notation stores a referrer of artifact type ``application/vnd.cncf.notary.signature`` whose
layer is a JWS (``application/jose+json``) or a COSE_Sign1 message (``application/cose``) over
``{"targetArtifact": descriptor}`` with the signing certificate chain (``x5c`` / ``x5chain``).
Sigstore bundles pushed as referrers (cosign v3) are layers of a
``application/vnd.dev.sigstore.bundle…`` media type.

This module knows the formats; SupplyChainService.index_oci stores them as evidence.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import jsonbody
from ..errors import StoreError
from ..lazy import lazy_module

if TYPE_CHECKING:
    from cryptography import exceptions as crypto_errors
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
else:  # cryptography (≈ 9 MiB) loads on first use (issue 23: idle RSS)
    x509 = lazy_module("cryptography.x509")
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    ed25519 = lazy_module("cryptography.hazmat.primitives.asymmetric.ed25519")
    padding = lazy_module("cryptography.hazmat.primitives.asymmetric.padding")
    rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")
    asym_utils = lazy_module("cryptography.hazmat.primitives.asymmetric.utils")
    crypto_errors = lazy_module("cryptography.exceptions")

cbor2 = lazy_module("cbor2")  # notation's COSE envelopes only: on first use (issue 23)

COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
NOTATION_ARTIFACT = "application/vnd.cncf.notary.signature"
NOTATION_JWS = "application/jose+json"
NOTATION_COSE = "application/cose"
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
LEGACY_TAG = re.compile(r"sha256-([0-9a-f]{64})\.(sig|att|sbom)")

_JWS_HASHES = {"256": "SHA256", "384": "SHA384", "512": "SHA512"}  # names in hashes


@dataclass
class OciLayer:
    """One evidence-bearing layer of a signature/attestation manifest."""

    kind: str  # "cosign", "attestation", "sigstore", "notation", "sbom"
    digest: str
    media_type: str
    annotations: dict[str, str]


def legacy_subject(tag: str | None) -> tuple[str, str] | None:
    """(subject digest, "sig" | "att" | "sbom") for a cosign ``sha256-<hex>.sig`` style tag."""
    match = LEGACY_TAG.fullmatch(tag or "")
    return ("sha256:" + match.group(1), match.group(2)) if match else None


def evidence_layers(doc: dict[str, Any], artifact_type: str | None) -> list[OciLayer]:
    """The layers of a manifest that carry signatures, attestations or SBOMs."""
    out = []
    for layer in doc.get("layers") or []:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            continue
        media = str(layer.get("mediaType", ""))
        raw = layer.get("annotations")
        annotations = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        if media == COSIGN_SIMPLESIGNING:
            kind = "cosign"
        elif media == "application/vnd.dsse.envelope.v1+json":
            kind = "attestation"
        elif media.startswith(SIGSTORE_BUNDLE_PREFIX):
            kind = "sigstore"
        elif artifact_type == NOTATION_ARTIFACT and media in (NOTATION_JWS, NOTATION_COSE):
            kind = "notation"
        elif media.startswith(("application/vnd.cyclonedx", "application/spdx")):
            kind = "sbom"
        else:
            continue
        out.append(OciLayer(kind, layer["digest"], media, annotations))
    return out


# Artifact (or config) types of manifests that carry evidence only: cosign's signatures,
# attestations and SBOMs in OCI 1.1 mode, notation, Sigstore bundles, in-toto and SBOM formats.
EVIDENCE_ARTIFACT_TYPES = (
    "application/vnd.dev.cosign.artifact.",
    NOTATION_ARTIFACT,
    SIGSTORE_BUNDLE_PREFIX,
    "application/vnd.in-toto",
    "application/vnd.dsse.envelope",
    "application/vnd.cyclonedx",
    "application/spdx",
    "text/spdx",
)
# Layer media types a container runtime unpacks into a filesystem: a manifest with one of them
# is a runnable image, whatever else it says about itself.
IMAGE_LAYER_TYPES = (
    "application/vnd.oci.image.layer.",
    "application/vnd.docker.image.rootfs.",
)


def is_evidence_manifest(doc: dict[str, Any], artifact_type: str | None, subject: bool) -> bool:
    """Whether a manifest is evidence about another one (a signature, an attestation, an
    SBOM), which a repository's verification gate lets verifiers read ungated; ``subject``:
    it names one (``subject``, or it is pulled by a cosign ``sha256-<hex>.sig`` style tag).

    Both are the pusher's to choose, so neither suffices: every layer must be an evidence
    layer (:func:`evidence_layers`), or the manifest's artifact type (or config media type)
    must be a signature, attestation or SBOM type and no layer an image layer. A runnable
    image is never evidence."""
    if not subject or not isinstance(doc, dict) or "manifests" in doc:
        return False  # an index is gated like the images it lists
    layers = doc.get("layers")
    if not isinstance(layers, list):
        return False
    media_types = [str(x.get("mediaType", "")) if isinstance(x, dict) else "" for x in layers]
    if any(m.startswith(IMAGE_LAYER_TYPES) for m in media_types):
        return False
    if layers and len(evidence_layers(doc, artifact_type)) == len(layers):
        return True
    config = doc.get("config")
    config_type = str(config.get("mediaType", "")) if isinstance(config, dict) else ""
    declared = artifact_type or doc.get("artifactType") or config_type
    return isinstance(declared, str) and declared.startswith(EVIDENCE_ARTIFACT_TYPES)


def cosign_payload_digest(payload: bytes) -> str:
    """The image digest a cosign simple-signing payload names (422 when malformed)."""
    try:
        doc = jsonbody.loads(payload)
        claimed = doc["critical"]["image"]["docker-manifest-digest"]
        kind = doc["critical"]["type"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise StoreError("InvalidEvidence", "not a cosign simple-signing payload") from None
    if kind != "cosign container image signature" or not isinstance(claimed, str):
        raise StoreError("InvalidEvidence", "not a cosign container image signature")
    return claimed


def verify_prehashed(signature: bytes, sha256: bytes, public: Any) -> None:
    """``signature`` over the message whose SHA-256 is ``sha256`` (ECDSA, RSA PKCS#1 v1.5 or
    PSS); Ed25519 signs the message itself, which a digest cannot stand in for."""
    prehashed = asym_utils.Prehashed(hashes.SHA256())
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, sha256, ec.ECDSA(prehashed))
    elif isinstance(public, rsa.RSAPublicKey):
        try:
            public.verify(signature, sha256, padding.PKCS1v15(), prehashed)
        except crypto_errors.InvalidSignature:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            public.verify(signature, sha256, pss, prehashed)
    else:
        raise crypto_errors.InvalidSignature


def verify_message(signature: bytes, message: bytes, public: Any) -> None:
    """``signature`` over ``message`` with ``public`` (ECDSA/RSA with SHA-256, Ed25519)."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        public.verify(signature, message)
    else:
        verify_prehashed(signature, hashlib.sha256(message).digest(), public)


def verify_cosign(payload: bytes, signature_b64: str, digest: str, public: Any) -> None:
    """A cosign signature layer about ``digest`` verifies with ``public`` (InvalidSignature
    otherwise, StoreError when the payload names another image)."""
    claimed = cosign_payload_digest(payload)
    if claimed != digest:
        raise StoreError("SubjectMismatch", f"the signature's payload names {claimed}")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        raise crypto_errors.InvalidSignature from None
    verify_message(signature, payload, public)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class NotationEnvelope:
    """A notation signature envelope, JWS (JSON serialization) or COSE_Sign1, parsed to what
    verification needs: the algorithm as JOSE names it, the signed bytes, the signature (raw
    ``r || s`` for ECDSA in both formats) and the x509 chain, signing certificate first."""

    alg: str
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    chain: list[x509.Certificate]

    @property
    def target_digest(self) -> str:
        return str(self.payload.get("targetArtifact", {}).get("digest", ""))


# COSE algorithm identifiers (RFC 9053, RFC 8230) of the schemes notation signs with.
_COSE_ALGS = {-7: "ES256", -35: "ES384", -36: "ES512", -37: "PS256", -38: "PS384", -39: "PS512"}
_COSE_ALG, _COSE_X5CHAIN = 1, 33


def parse_notation(body: bytes, media_type: str) -> NotationEnvelope:
    """A notation envelope of either format (422 InvalidEvidence when malformed)."""
    parse = _parse_notation_cose if media_type == NOTATION_COSE else _parse_notation_jws
    try:
        envelope = parse(body)
    except (
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        UnicodeDecodeError,
        cbor2.CBORError,
    ) as exc:
        raise StoreError(
            "InvalidEvidence", f"not a notation {media_type} envelope: {exc}"
        ) from None
    if not envelope.chain or not isinstance(envelope.payload, dict):
        raise StoreError(
            "InvalidEvidence", "a notation envelope needs a certificate chain and a payload"
        )
    return envelope


def _parse_notation_jws(body: bytes) -> NotationEnvelope:
    doc = jsonbody.loads(body)
    protected = str(doc["protected"])
    payload_b64 = str(doc["payload"])
    header = jsonbody.loads(_b64url(protected))
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in doc["header"]["x5c"]]
    return NotationEnvelope(
        str(header["alg"]),
        jsonbody.loads(_b64url(payload_b64)),
        f"{protected}.{payload_b64}".encode(),
        _b64url(str(doc["signature"])),
        chain,
    )


def _parse_notation_cose(body: bytes) -> NotationEnvelope:
    """A COSE_Sign1 message (RFC 9052 §4.2; notation writes it tagged, 18): the signed bytes
    are the ``Sig_structure`` ``["Signature1", protected, external_aad, payload]``."""
    message = cbor2.loads(body)
    if isinstance(message, cbor2.CBORTag):
        if message.tag != 18:
            raise ValueError(f"CBOR tag {message.tag} is not COSE_Sign1")
        message = message.value
    protected, unprotected, payload, signature = message
    header = cbor2.loads(protected) if protected else {}
    alg = _COSE_ALGS.get(header.get(_COSE_ALG))
    if alg is None:
        raise ValueError(f"unsupported COSE algorithm {header.get(_COSE_ALG)!r}")
    x5chain = unprotected.get(_COSE_X5CHAIN)
    certs = [x5chain] if isinstance(x5chain, bytes) else list(x5chain or [])
    signed = cbor2.dumps(["Signature1", protected, b"", payload])
    return NotationEnvelope(
        alg,
        jsonbody.loads(payload),
        signed,
        bytes(signature),
        [x509.load_der_x509_certificate(c) for c in certs],
    )


def verify_notation(jws: NotationEnvelope, digest: str, public: Any) -> None:
    """The envelope is about ``digest``, its signing certificate holds ``public`` (the trusted
    key) and the JWS signature verifies (InvalidSignature otherwise)."""
    if jws.target_digest != digest:
        raise StoreError("SubjectMismatch", f"the signature is about {jws.target_digest}")
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if jws.chain[0].public_key().public_bytes(der, spki) != public.public_bytes(der, spki):
        raise crypto_errors.InvalidSignature
    alg = jws.alg
    name = _JWS_HASHES.get(alg[2:])
    if name is None:
        raise crypto_errors.InvalidSignature
    algorithm = getattr(hashes, name)
    if alg.startswith("ES") and isinstance(public, ec.EllipticCurvePublicKey):
        half = len(jws.signature) // 2
        der_sig = asym_utils.encode_dss_signature(
            int.from_bytes(jws.signature[:half], "big"), int.from_bytes(jws.signature[half:], "big")
        )
        public.verify(der_sig, jws.signing_input, ec.ECDSA(algorithm()))
    elif alg.startswith("PS") and isinstance(public, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(algorithm()), salt_length=algorithm.digest_size)
        public.verify(jws.signature, jws.signing_input, pss, algorithm())
    else:
        raise crypto_errors.InvalidSignature
