"""Evidence formats: Sigstore bundles, DSSE envelopes, raw signatures, in-toto statements,
certificates."""

from __future__ import annotations

import base64
import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import jsonbody
from ...errors import StoreError
from ...lazy import lazy_module
from ..oci_evidence import verify_prehashed

if TYPE_CHECKING:
    from cryptography import exceptions as crypto_errors
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from securesystemslib.dsse import Envelope
    from sigstore.models import Bundle, TrustedRoot
else:  # cryptography loads on first use (issue 23: idle RSS)
    crypto_errors = lazy_module("cryptography.exceptions")
    x509 = lazy_module("cryptography.x509")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    ed25519 = lazy_module("cryptography.hazmat.primitives.asymmetric.ed25519")
    rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")

# The supply-chain stack is most of a worker's memory: imported on first use (issue 23).
dsse = lazy_module("securesystemslib.dsse")
sslib_exceptions = lazy_module("securesystemslib.exceptions")
sslib_signer = lazy_module("securesystemslib.signer")
sigstore_errors = lazy_module("sigstore.errors")
sigstore_hashes = lazy_module("sigstore.hashes")
sigstore_models = lazy_module("sigstore.models")
sigstore_policy = lazy_module("sigstore.verify.policy")
sigstore_verify = lazy_module("sigstore.verify")
bundle_model = lazy_module("sigstore_models.bundle.v1")
common_model = lazy_module("sigstore_models.common.v1")

SIGSTORE_BUNDLE_TYPES = (
    "application/vnd.dev.sigstore.bundle+json",
    "application/vnd.dev.sigstore.bundle.v0.1+json",
    "application/vnd.dev.sigstore.bundle.v0.2+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
)


DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"


IN_TOTO_STATEMENTS = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")


IN_TOTO_TYPE = "application/vnd.in-toto+json"


MAX_EVIDENCE_BYTES = 16 * 1024 * 1024


# Fulcio certificate extensions: the OIDC issuer (v1: raw string, v2: DER UTF8String).
OIDC_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"  # dotted OIDs: x509.ObjectIdentifier(...) on use


OIDC_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"


SAN_OTHERNAME = "1.3.6.1.4.1.57264.1.7"


def trusted_root(setting: str) -> TrustedRoot:
    """``production`` / ``staging`` (the roots sigstore-python ships, used offline) or a path
    to a ``trusted_root.json`` (private Sigstore, air-gapped sites)."""
    hosts = {"production": "tuf-repo-cdn.sigstore.dev", "staging": "tuf-repo-cdn.sigstage.dev"}
    if setting in hosts:
        asset = resources.files("sigstore") / "_store" / f"https%3A%2F%2F{hosts[setting]}"
        return sigstore_models.TrustedRoot.from_file(str(asset / "trusted_root.json"))
    return sigstore_models.TrustedRoot.from_file(str(Path(setting)))


def certificate_identities(cert: x509.Certificate) -> set[str]:
    """The identities (SANs) a Fulcio certificate names: e-mail, URI, Sigstore's other-name."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set(san.get_values_for_type(x509.RFC822Name))
    names.update(san.get_values_for_type(x509.UniformResourceIdentifier))
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == SAN_OTHERNAME:
            names.add(other.value.decode(errors="replace").lstrip("\x0c\x13").strip())
    return names


def certificate_issuer(cert: x509.Certificate) -> str:
    for oid in (OIDC_ISSUER_V2, OIDC_ISSUER_V1):
        try:
            raw = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value.value  # type: ignore[attr-defined]
        except x509.ExtensionNotFound:
            continue
        text = raw.decode(errors="replace")
        # v2 is DER: tag (0x0c) and length before the text.
        return text[2:] if oid == OIDC_ISSUER_V2 and len(raw) > 2 else text
    return ""


class IdentityRegex:
    """A sigstore verification policy: some SAN fully matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def verify(self, cert: x509.Certificate) -> None:
        names = certificate_identities(cert)
        if not any(self.pattern.fullmatch(n) for n in names):
            raise sigstore_policy.VerificationError(
                f"no certificate SAN matches {self.pattern.pattern!r}; actual SANs: {names}"
            )


def public_key_bundle(envelope: dict[str, Any], key_id: str) -> dict[str, Any]:
    """A Sigstore bundle (v0.3) carrying a DSSE envelope signed by a known key: verification
    material is the key's id as a hint (no certificate, no transparency log), what
    ``cosign verify-blob-attestation --bundle … --key … --insecure-ignore-tlog`` reads."""
    doc = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": key_id}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": envelope["payload"],
            "payloadType": envelope["payloadType"],
            "signatures": [{"sig": sig["sig"], "keyid": sig.get("keyid", "")}
                           for sig in envelope["signatures"]],
        },
    }  # fmt: skip
    # The protobuf-specs model checks the shape (sigstore's Bundle would also demand a log).
    bundle_model.Bundle.model_validate_json(json.dumps(doc))
    return doc


def key_algorithm(public: Any) -> str:
    """The supported key types: ECDSA P-256/P-384, Ed25519, RSA of at least 2048 bits."""
    if isinstance(public, ec.EllipticCurvePublicKey):
        if public.curve.name in ("secp256r1", "secp384r1"):
            return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}[public.curve.name]
    elif isinstance(public, ed25519.Ed25519PublicKey):
        return "ed25519"
    elif isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048:
        return f"rsa-{public.key_size}"
    raise StoreError(
        "InvalidArgument", "keys must be ECDSA P-256/P-384, Ed25519 or RSA of at least 2048 bits"
    )


def signature_format(body: bytes, media_type: str) -> str:
    """ "sigstore", "dsse" or "raw" for an attached signature document."""
    if media_type.startswith("application/vnd.dev.sigstore.bundle"):
        return "sigstore"
    if media_type == DSSE_TYPE:
        return "dsse"
    try:
        doc = jsonbody.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "raw"
    if isinstance(doc, dict) and "payloadType" in doc and "signatures" in doc:
        return "dsse"
    return "sigstore"


def raw_signature(body: bytes) -> bytes:
    """A raw signature as cosign writes it: base64 text (or the bytes themselves)."""
    text = body.strip()
    try:
        decoded = base64.b64decode(text, validate=True)
    except ValueError:
        decoded = text
    if not 32 <= len(decoded) <= 1024:
        raise StoreError("InvalidEvidence", "a raw signature is 32-1024 bytes (base64 is fine)")
    return decoded


def verify_raw(signature: bytes, digest: str, public: Any) -> None:
    """A raw signature over the artifact (prehashed: the sha256 is all the store needs)."""
    if not digest.startswith("sha256:"):
        raise crypto_errors.InvalidSignature
    verify_prehashed(signature, bytes.fromhex(digest.split(":", 1)[1]), public)


def bundle_details(bundle: Bundle, body: bytes) -> dict[str, str]:
    """What an evidence record remembers of a Sigstore bundle: who signed, for which issuer."""
    cert = bundle.signing_certificate
    return {
        "identity": ", ".join(sorted(certificate_identities(cert))),
        "issuer": certificate_issuer(cert),
        "bundle_media_type": jsonbody.loads(body).get("mediaType", ""),
    }


def identity_check(spec: Any) -> tuple[str, Any]:
    """(label, sigstore policy) of ``{"sigstore": {"issuer", "identity" | "identity_regex"}}``."""
    sig = spec.get("sigstore") if isinstance(spec, dict) else None
    if not isinstance(sig, dict) or not isinstance(sig.get("issuer"), str):
        raise StoreError(
            "InvalidArgument",
            'a signer is {"sigstore": {"issuer", "identity" | "identity_regex"}} '
            'or {"key": "<key id>"}',
        )
    issuer = sig["issuer"]
    if isinstance(sig.get("identity"), str):
        return f"{sig['identity']} ({issuer})", sigstore_policy.Identity(
            identity=sig["identity"], issuer=issuer
        )
    if isinstance(sig.get("identity_regex"), str):
        try:
            regex = IdentityRegex(sig["identity_regex"])
        except re.error as exc:
            raise StoreError("InvalidArgument", f"identity_regex: {exc}") from None
        label = f"/{sig['identity_regex']}/ ({issuer})"
        return label, sigstore_policy.AllOf([sigstore_policy.OIDCIssuer(issuer), regex])
    raise StoreError("InvalidArgument", "a sigstore signer needs identity or identity_regex")


def statement_subject_names(statement: Any, digest: str) -> None:
    """The in-toto statement's subjects include ``digest`` (SubjectMismatch otherwise)."""
    algorithm, _, hexdigest = digest.partition(":")
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list) or not subjects:
        raise StoreError("InvalidEvidence", "the in-toto statement names no subject")
    named = {str(s.get("digest", {}).get(algorithm, "")) for s in subjects if isinstance(s, dict)}
    if hexdigest not in named:
        raise StoreError("SubjectMismatch", f"the in-toto statement does not name {digest}")


def check_statement(statement: dict[str, Any]) -> tuple[str, str]:
    """(statement type, predicate type) of a well-formed in-toto statement (422 otherwise)."""
    statement_type = str(statement.get("_type", ""))
    if statement_type not in IN_TOTO_STATEMENTS:
        raise StoreError("InvalidEvidence", f"unknown in-toto statement type {statement_type!r}")
    predicate_type = statement.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise StoreError("InvalidEvidence", "the statement has no predicateType")
    if not isinstance(statement.get("predicate", {}), dict):
        raise StoreError("InvalidEvidence", "the predicate must be an object")
    return statement_type, predicate_type


def bundle_statement(body: bytes, digest: str) -> dict[str, Any]:
    """The in-toto statement in a Sigstore bundle's DSSE envelope, naming ``digest``."""
    try:
        envelope = jsonbody.loads(body)["dsseEnvelope"]
        payload_type = envelope["payloadType"]
        statement = jsonbody.loads(base64.b64decode(envelope["payload"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise StoreError(
            "InvalidEvidence", "the Sigstore bundle carries no DSSE envelope with a statement"
        ) from None
    if payload_type != IN_TOTO_TYPE or not isinstance(statement, dict):
        raise StoreError("InvalidEvidence", f"the envelope's payload is not {IN_TOTO_TYPE}")
    statement_subject_names(statement, digest)
    return statement


def parse_dsse_statement(body: bytes, digest: str) -> tuple[Envelope, dict[str, Any]]:
    """A DSSE envelope whose payload is an in-toto Statement naming ``digest``."""
    try:
        envelope = dsse.Envelope.from_dict(jsonbody.loads(body))
        statement = jsonbody.loads(envelope.payload)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise StoreError("InvalidEvidence", f"not a DSSE envelope: {exc}") from None
    if envelope.payload_type != IN_TOTO_TYPE or not isinstance(statement, dict):
        raise StoreError("InvalidEvidence", f"the envelope's payload is not {IN_TOTO_TYPE}")
    if not envelope.signatures:
        raise StoreError("InvalidEvidence", "the envelope carries no signature")
    statement_subject_names(statement, digest)
    return envelope, statement


def verify_dsse(body: bytes, public: Any) -> None:
    """Some signature of the envelope verifies with ``public`` (the envelope's key ids are
    hints, not trusted)."""
    envelope = dsse.Envelope.from_dict(jsonbody.loads(body))
    pae = envelope.pae()
    keys = [sslib_signer.SSlibKey.from_crypto(public)]
    if isinstance(public, rsa.RSAPublicKey):
        # securesystemslib assumes RSA-PSS; cosign and most signers use PKCS#1 v1.5.
        keys.append(sslib_signer.SSlibKey.from_crypto(public, scheme="rsa-pkcs1v15-sha256"))
    for signature in envelope.signatures.values():
        for key in keys:
            try:
                # cosign writes ``"keyid": ""``: the id is only a hint, the key is what counts.
                key.verify_signature(sslib_signer.Signature(key.keyid, signature.signature), pae)
                return
            except (sslib_exceptions.UnverifiedSignatureError, sslib_exceptions.VerificationError):
                continue
    raise crypto_errors.InvalidSignature


def lookup(doc: Any, path: str) -> Any:
    """``runDetails.builder.id`` in a predicate; None when absent."""
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc
