"""Supply-chain evidence and verification (DESIGN.md §4): evidence binds to a subject's digest.

A subject is an object (``bucket/key``, resolved to its current sha256), an OCI manifest
(``repo@sha256:…``) or a bare digest. This part handles Sigstore bundles: attached ones are
parsed and checked against the subject's digest, stored exactly as sent, and verified fully
offline with sigstore-python against the configured trusted root and an identity policy.
No Tornado here.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier, policy
from sigstore_models.common.v1 import HashAlgorithm

from ..errors import StoreError
from ..metadata import Evidence, MetadataStore
from ..storage import BlobStore, is_digest
from ..timefmt import iso_time
from .artifacts import ArtifactService
from .registry import RegistryService

SIGSTORE_BUNDLE_TYPES = (
    "application/vnd.dev.sigstore.bundle+json",
    "application/vnd.dev.sigstore.bundle.v0.1+json",
    "application/vnd.dev.sigstore.bundle.v0.2+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
)
MAX_EVIDENCE_BYTES = 16 * 1024 * 1024
# Fulcio certificate extensions: the OIDC issuer (v1: raw string, v2: DER UTF8String).
OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SAN_OTHERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


def trusted_root(setting: str) -> TrustedRoot:
    """``production`` / ``staging`` (the roots sigstore-python ships, used offline) or a path
    to a ``trusted_root.json`` (private Sigstore, air-gapped sites)."""
    hosts = {"production": "tuf-repo-cdn.sigstore.dev", "staging": "tuf-repo-cdn.sigstage.dev"}
    if setting in hosts:
        asset = resources.files("sigstore") / "_store" / f"https%3A%2F%2F{hosts[setting]}"
        return TrustedRoot.from_file(str(asset / "trusted_root.json"))
    return TrustedRoot.from_file(str(Path(setting)))


def certificate_identities(cert: x509.Certificate) -> set[str]:
    """The identities (SANs) a Fulcio certificate names: e-mail, URI, Sigstore's other-name."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set(san.get_values_for_type(x509.RFC822Name))
    names.update(san.get_values_for_type(x509.UniformResourceIdentifier))
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == SAN_OTHERNAME:
            names.add(other.value.decode(errors="replace").lstrip("\x0c\x13").strip())
    return names


def certificate_issuer(cert: x509.Certificate) -> str:
    for oid in (OIDC_ISSUER_V2, OIDC_ISSUER_V1):
        try:
            raw = cert.extensions.get_extension_for_oid(oid).value.value  # type: ignore[attr-defined]
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
            raise policy.VerificationError(
                f"no certificate SAN matches {self.pattern.pattern!r}; actual SANs: {names}"
            )


@dataclass
class RuleResult:
    rule: str
    passed: bool
    reason: str
    evidence: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "passed": self.passed,
            "reason": self.reason,
            "evidence": self.evidence,
        }


def evidence_json(e: Evidence) -> dict[str, Any]:
    return {
        "id": e.evidence_id,
        "subject_digest": e.subject,
        "subject": e.subject_ref,
        "kind": e.kind,
        "format": e.format,
        "media_type": e.media_type,
        "digest": e.digest,
        "size": e.size,
        "created_at": iso_time(e.created_at),
        "created_by": e.created_by,
        "details": e.details,
    }


class SupplyChainService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        artifacts: ArtifactService,
        registry: RegistryService,
        root: TrustedRoot,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.artifacts = artifacts
        self.registry = registry
        self.verifier = Verifier(trusted_root=root)

    # ---- subjects -------------------------------------------------------------------------
    async def resolve(self, subject: Any) -> tuple[str, str]:
        """(digest, how it was named) of a subject: ``{"bucket", "key"}`` (the object's
        current sha256), ``{"repository", "digest"}`` or ``{"digest"}``."""
        if not isinstance(subject, dict):
            raise StoreError("InvalidArgument", "subject must be an object")
        if set(subject) == {"bucket", "key"}:
            record = await self.artifacts.head_object(str(subject["bucket"]), str(subject["key"]))
            return record.digest, f"{record.bucket}/{record.key}"
        if set(subject) == {"repository", "digest"}:
            manifest = await self.registry.resolve(
                str(subject["repository"]), str(subject["digest"])
            )
            return manifest.digest, f"{manifest.repo}@{manifest.digest}"
        if set(subject) == {"digest"} and is_digest(str(subject["digest"])):
            return str(subject["digest"]), str(subject["digest"])
        raise StoreError(
            "InvalidArgument",
            'subject must be {"bucket", "key"}, {"repository", "digest"} or {"digest"}',
        )

    # ---- signatures -----------------------------------------------------------------------
    async def attach_signature(
        self, digest: str, ref: str, body: bytes, media_type: str, principal_id: str
    ) -> Evidence:
        """Store a Sigstore bundle about ``digest`` after checking it parses and signs that
        digest (422 otherwise: nothing is stored)."""
        if len(body) > MAX_EVIDENCE_BYTES:
            raise StoreError("EntityTooLarge", "evidence documents may be at most 16 MiB")
        bundle = self._parse_bundle(body)
        signed = self._signed_digest(bundle)
        if signed is not None and signed != digest:
            raise StoreError(
                "SubjectMismatch",
                f"the bundle signs {signed}, not the subject's digest {digest}",
            )
        cert = bundle.signing_certificate
        details = {
            "identity": ", ".join(sorted(certificate_identities(cert))),
            "issuer": certificate_issuer(cert),
            "bundle_media_type": json.loads(body).get("mediaType", ""),
        }
        info = await self.blobs.put_bytes(body)
        evidence = Evidence(
            evidence_id=uuid.uuid4().hex,
            subject=digest,
            kind="signature",
            format="sigstore",
            media_type=media_type or details["bundle_media_type"],
            digest=info.digest,
            size=len(body),
            created_at=time.time(),
            created_by=principal_id,
            subject_ref=ref,
            details=details,
        )
        await self.metadata.add_evidence(evidence)
        return evidence

    @staticmethod
    def _parse_bundle(body: bytes) -> Bundle:
        try:
            return Bundle.from_json(body)
        except (SigstoreError, ValueError, KeyError, TypeError) as exc:
            raise StoreError("InvalidEvidence", f"not a valid Sigstore bundle: {exc}") from None

    @staticmethod
    def _signed_digest(bundle: Bundle) -> str | None:
        message = bundle._inner.message_signature
        if message is None or message.message_digest is None:
            return None  # a DSSE bundle: its statement names the subject
        return "sha256:" + message.message_digest.digest.hex()

    async def list(self, digest: str, kind: str | None = None) -> list[Evidence]:
        return await self.metadata.list_evidence(digest, kind)

    async def evidence_bytes(self, evidence_id: str) -> tuple[Evidence, bytes]:
        evidence = await self.metadata.get_evidence(evidence_id)
        if evidence is None:
            raise StoreError("NoSuchEvidence", f"no evidence {evidence_id!r}")
        return evidence, await self.blobs.read_all(evidence.digest)

    # ---- verification ---------------------------------------------------------------------
    async def verify(self, digest: str, rules: Any) -> tuple[bool, list[RuleResult]]:
        if not isinstance(rules, dict):
            raise StoreError("InvalidArgument", "policy must be an object")
        unsupported = set(rules) - {"signatures", "threshold"}
        if unsupported:
            raise StoreError(
                "NotImplemented",
                f"policy rules not supported yet: {', '.join(sorted(unsupported))}",
            )
        wanted = rules.get("signatures") or []
        if not isinstance(wanted, list) or not wanted:
            raise StoreError("InvalidArgument", "policy.signatures must be a non-empty list")
        threshold = rules.get("threshold", len(wanted))
        if (
            not isinstance(threshold, int)
            or isinstance(threshold, bool)
            or not (1 <= threshold <= len(wanted))
        ):
            raise StoreError("InvalidArgument", "threshold must be between 1 and the signers")
        bundles = [
            (e, await self.blobs.read_all(e.digest))
            for e in await self.metadata.list_evidence(digest, "signature")
            if e.format == "sigstore"
        ]
        results = [self._signature_rule(digest, spec, bundles) for spec in wanted]
        passed = sum(r.passed for r in results)
        summary = RuleResult(
            f"at least {threshold} of {len(wanted)} signers",
            passed >= threshold,
            f"{passed} of {len(wanted)} signer rules passed",
        )
        return summary.passed, [*results, summary]

    def _signature_rule(
        self, digest: str, spec: Any, bundles: list[tuple[Evidence, bytes]]
    ) -> RuleResult:
        sig = spec.get("sigstore") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and "key" in spec:
            raise StoreError("NotImplemented", "key-based signer rules are not supported yet")
        if not isinstance(sig, dict) or not isinstance(sig.get("issuer"), str):
            raise StoreError(
                "InvalidArgument",
                'a signer is {"sigstore": {"issuer", "identity" | "identity_regex"}}',
            )
        issuer = sig["issuer"]
        if isinstance(sig.get("identity"), str):
            name = f"sigstore signature by {sig['identity']} ({issuer})"
            check: Any = policy.Identity(identity=sig["identity"], issuer=issuer)
        elif isinstance(sig.get("identity_regex"), str):
            try:
                regex = IdentityRegex(sig["identity_regex"])
            except re.error as exc:
                raise StoreError("InvalidArgument", f"identity_regex: {exc}") from None
            name = f"sigstore signature by /{sig['identity_regex']}/ ({issuer})"
            check = policy.AllOf([policy.OIDCIssuer(issuer), regex])
        else:
            raise StoreError(
                "InvalidArgument", "a sigstore signer needs identity or identity_regex"
            )
        if not digest.startswith("sha256:"):
            return RuleResult(name, False, "Sigstore verification needs a sha256 subject")
        if not bundles:
            return RuleResult(name, False, "no Sigstore signature is attached to the subject")
        hashed = Hashed(
            algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.split(":")[1])
        )
        reasons = []
        for evidence, body in bundles:
            try:
                self.verifier.verify_artifact(hashed, Bundle.from_json(body), check)
            except (SigstoreError, policy.VerificationError, ValueError) as exc:
                reasons.append(f"{evidence.evidence_id}: {exc}")
                continue
            return RuleResult(name, True, "verified offline against the trusted root",
                              [evidence.evidence_id])  # fmt: skip
        return RuleResult(name, False, "; ".join(reasons))
