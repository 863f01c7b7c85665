"""Supply-chain evidence and verification (DESIGN.md §4): evidence binds to a subject's digest.

A subject is an object (``bucket/key``, resolved to its current sha256), an OCI manifest
(``repo@sha256:…``) or a bare digest. This part handles Sigstore bundles: attached ones are
parsed and checked against the subject's digest, stored exactly as sent, and verified fully
offline with sigstore-python against the configured trusted root and an identity policy.
No Tornado here.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ObjectIdentifier
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import Signature, SSlibKey
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier, policy
from sigstore_models.bundle.v1 import Bundle as ModelBundle
from sigstore_models.common.v1 import HashAlgorithm

from ..auth.tokens import revoke_record
from ..errors import StoreError
from ..metadata import (
    ComponentQuery,
    Evidence,
    Manifest,
    MetadataStore,
    SbomComponent,
    TrustedKey,
    VerificationGate,
)
from ..observability.metrics import Metrics
from ..observability.tracing import span
from ..storage import BlobStore, is_digest
from ..timefmt import iso_time
from .artifacts import ArtifactService
from .oci_evidence import (
    COSIGN_CERTIFICATE_ANNOTATION,
    COSIGN_SIGNATURE_ANNOTATION,
    OciLayer,
    cosign_payload_digest,
    evidence_layers,
    legacy_subject,
    parse_notation,
    verify_cosign,
    verify_notation,
    verify_prehashed,
)
from .registry import RegistryService
from .sbom import parse_sbom_async, purl_base
from .signing import SigningProvider

SIGSTORE_BUNDLE_TYPES = (
    "application/vnd.dev.sigstore.bundle+json",
    "application/vnd.dev.sigstore.bundle.v0.1+json",
    "application/vnd.dev.sigstore.bundle.v0.2+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
)
MAX_EVIDENCE_BYTES = 16 * 1024 * 1024
log = logging.getLogger(__name__)
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
    # Who met a signer rule (key ids, Sigstore identities): a threshold counts each once.
    signers: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "passed": self.passed,
            "reason": self.reason,
            "evidence": self.evidence,
        }


def key_json(k: TrustedKey) -> dict[str, Any]:
    return {
        "id": k.key_id,
        "name": k.name,
        "algorithm": k.algorithm,
        "scope": k.scope,
        "public_key": k.public_key_pem,
        "created_at": iso_time(k.created_at),
        "created_by": k.created_by,
        "expires_at": iso_time(k.expires_at) if k.expires_at else None,
        "revoked_at": iso_time(k.revoked_at) if k.revoked_at else None,
    }


def component_json(c: SbomComponent) -> dict[str, Any]:
    return {
        "subject_digest": c.subject,
        "subject": c.subject_ref,
        "evidence_id": c.evidence_id,
        "component": {
            "name": c.name,
            "version": c.version,
            "purl": c.purl,
            "licenses": c.licenses,
        },
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
        self.signing: SigningProvider | None = None
        self.signing_key_id = ""
        self._gates: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._results: dict[tuple[str, str], tuple[float, bool, str]] = {}
        self._repo_gates: tuple[float, dict[str, dict[str, Any]]] | None = None
        self.metrics: Metrics | None = None  # set by app.py

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

    # ---- server-side signing --------------------------------------------------------------
    SIGNED_PREDICATE = "https://zot-artifact-store.dev/attestations/signed/v1"
    SERVER_KEY_NAME = "server signing key"

    async def enable_signing(self, provider: SigningProvider) -> TrustedKey:
        """Use ``provider`` for server-side signing; its public key becomes a trusted key."""
        self.signing = provider
        public = serialization.load_pem_public_key(provider.public_key_pem.encode())
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        existing = await self.metadata.get_trusted_key(hashlib.sha256(der).hexdigest())
        if existing is not None:  # an admin's revocation stands across restarts
            self.signing_key_id = existing.key_id
            return existing
        key, _ = await self.add_key(
            provider.public_key_pem, self.SERVER_KEY_NAME, "", None, "server"
        )
        self.signing_key_id = key.key_id
        return key

    # Predicate types only the store itself writes (after a verification passed).
    RESERVED_PREDICATES = (
        "https://slsa.dev/verification_summary/v1",
        "https://slsa.dev/verification_summary/v0.2",
    )

    async def sign(
        self, digest: str, ref: str, predicate_type: str | None, predicate: Any, principal_id: str
    ) -> tuple[Evidence, bytes]:
        """Sign ``digest`` with the store's key on a caller's request: a DSSE envelope over an
        in-toto Statement v1, attached as a signature (and as an attestation when a predicate
        is given; who may ask for that is the handler's ``signing:Attest`` check). A
        verification summary is never signed on request: only :meth:`issue_vsa` writes one,
        after the subject passed, so a VSA by the store's key means the store verified."""
        if predicate_type in self.RESERVED_PREDICATES:
            raise StoreError(
                "InvalidArgument",
                f"{predicate_type} is issued only by POST /v1/verify with issue_vsa, after a pass",
            )
        return await self._sign(digest, ref, predicate_type, predicate, principal_id)

    async def _sign(
        self, digest: str, ref: str, predicate_type: str | None, predicate: Any, principal_id: str
    ) -> tuple[Evidence, bytes]:
        """Sign, traced (``supplychain.sign``) and counted (``zas_signing_operations``)."""
        kind = (
            "vsa"
            if predicate_type == self.VSA_PREDICATE
            else "attestation"
            if predicate_type
            else "signature"
        )
        started = time.monotonic()
        result = "error"
        try:
            with span("supplychain.sign", {"zas.subject_digest": digest, "zas.sign.kind": kind}):
                signed = await self._sign_now(digest, ref, predicate_type, predicate, principal_id)
            result = "ok"
            return signed
        finally:
            if self.metrics is not None:
                self.metrics.signatures.labels(kind, result).inc()
                if result == "ok":
                    self.metrics.signing_latency.labels(kind).observe(time.monotonic() - started)

    async def _sign_now(
        self, digest: str, ref: str, predicate_type: str | None, predicate: Any, principal_id: str
    ) -> tuple[Evidence, bytes]:
        if self.signing is None:
            raise StoreError("NotImplemented", "server-side signing is not configured")
        if predicate is not None and not isinstance(predicate, dict):
            raise StoreError("InvalidArgument", "predicate must be an object")
        if not digest.startswith("sha256:"):
            raise StoreError("InvalidArgument", "only sha256 subjects can be signed")
        statement = {
            "_type": IN_TOTO_STATEMENTS[0],
            "subject": [{"name": ref, "digest": {"sha256": digest.split(":", 1)[1]}}],
            "predicateType": predicate_type or self.SIGNED_PREDICATE,
            "predicate": predicate
            if predicate is not None
            else {"signedBy": principal_id, "subject": ref, "signedAt": iso_time(time.time())},
        }
        envelope = Envelope(json.dumps(statement).encode(), IN_TOTO_TYPE, {})
        envelope.sign(self.signing.signer)
        body = json.dumps(envelope.to_dict()).encode()
        kind = "attestation" if predicate_type else "signature"
        details = {
            "predicate_type": str(statement["predicateType"]),
            "signed_by_server": self.signing_key_id,
        }
        if kind == "attestation":
            details.update(
                statement_type=IN_TOTO_STATEMENTS[0], verified_by_key=self.signing_key_id
            )
        evidence = await self._store(
            digest, ref, kind, "dsse", body, DSSE_TYPE, principal_id, details
        )
        return evidence, body

    VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"

    async def issue_vsa(
        self, digest: str, ref: str, rules: Any, results: list[RuleResult], principal_id: str
    ) -> Evidence:
        """A signed SLSA Verification Summary Attestation for a subject that just passed."""
        used = sorted({e for r in results for e in r.evidence})
        inputs = []
        for evidence_id in used:
            evidence = await self.metadata.get_evidence(evidence_id)
            if evidence is not None:
                inputs.append(
                    {
                        "uri": f"/v1/evidence/{evidence_id}",
                        "digest": {"sha256": evidence.digest.split(":", 1)[1]},
                    }
                )
        policy_digest = hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()
        predicate = {
            "verifier": {"id": "https://zot-artifact-store.dev/verifier"},
            "timeVerified": iso_time(time.time()),
            "resourceUri": ref,
            "policy": {"uri": "inline", "digest": {"sha256": policy_digest}},
            "inputAttestations": inputs,
            "verificationResult": "PASSED",
            "verifiedLevels": [],
        }
        evidence, _ = await self._sign(digest, ref, self.VSA_PREDICATE, predicate, principal_id)
        return evidence

    # ---- verification policies on buckets (audit / enforce on download) -------------------
    GATE_TTL = 10.0

    async def _check_gate(self, name: Any, mode: Any, rules: Any) -> None:
        if mode not in ("audit", "enforce"):
            raise StoreError("InvalidArgument", "mode is audit or enforce")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", name):
            raise StoreError("InvalidArgument", "name is 1-128 of A-Z a-z 0-9 . _ -")
        await self._verify("sha256:" + "0" * 64, rules)  # the rules must be well formed

    async def set_bucket_gate(
        self, bucket: str, name: str, mode: str, rules: Any
    ) -> dict[str, Any]:
        await self._check_gate(name, mode, rules)
        record = await self.metadata.get_bucket(bucket)
        if record is None:
            raise StoreError("NoSuchBucket", f"bucket {bucket!r} does not exist", resource=bucket)
        gate = {"name": name, "mode": mode, "policy": rules}
        record.settings["verification"] = gate
        await self.metadata.update_bucket(record)
        self._gates.pop(bucket, None)
        self._results.clear()
        return gate

    async def get_bucket_gate(self, bucket: str) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._gates.get(bucket)
        if cached is None or cached[0] < now:
            record = await self.metadata.get_bucket(bucket)
            gate = record.settings.get("verification") if record else None
            if len(self._gates) > 10_000:
                self._gates.clear()
            cached = self._gates[bucket] = (now + self.GATE_TTL, gate)
        return cached[1]

    async def delete_bucket_gate(self, bucket: str) -> None:
        record = await self.metadata.get_bucket(bucket)
        if record is None:
            raise StoreError("NoSuchBucket", f"bucket {bucket!r} does not exist", resource=bucket)
        record.settings.pop("verification", None)
        await self.metadata.update_bucket(record)
        self._gates.pop(bucket, None)

    async def gate(self, bucket: str, digest: str) -> tuple[dict[str, Any], bool, str] | None:
        """For a download: (the bucket's gate, passed, reasons), or None without a gate."""
        gate = await self.get_bucket_gate(bucket)
        return await self._evaluate(gate, digest, f"bucket:{bucket}") if gate else None

    # Repository gates: by exact name or glob ("prod/*"); the most specific one applies.
    REPO_PATTERN = re.compile(r"[a-z0-9*?]+(?:(?:[._/-]|__|-+)[a-z0-9*?]+)*")

    async def set_repo_gate(self, pattern: str, name: str, mode: str, rules: Any) -> dict[str, Any]:
        if not self.REPO_PATTERN.fullmatch(pattern) or len(pattern) > 255:
            raise StoreError("InvalidArgument", f"{pattern!r} is not a repository name or glob")
        await self._check_gate(name, mode, rules)
        await self.metadata.put_gate(
            VerificationGate(f"repo:{pattern}", name, mode, json.dumps(rules), time.time())
        )
        self._repo_gates = None
        self._results.clear()
        return {"name": name, "mode": mode, "policy": rules, "repositories": pattern}

    async def repo_gates(self) -> dict[str, dict[str, Any]]:
        """Every repository gate by pattern (kept ``GATE_TTL`` seconds)."""
        now = time.monotonic()
        if self._repo_gates is None or self._repo_gates[0] < now:
            gates = {
                g.scope.removeprefix("repo:"): {
                    "name": g.name,
                    "mode": g.mode,
                    "policy": json.loads(g.document),
                    "repositories": g.scope.removeprefix("repo:"),
                }
                for g in await self.metadata.list_gates()
                if g.scope.startswith("repo:")
            }
            self._repo_gates = (now + self.GATE_TTL, gates)
        return self._repo_gates[1]

    async def delete_repo_gate(self, pattern: str) -> None:
        if not await self.metadata.delete_gate(f"repo:{pattern}"):
            raise StoreError(
                "NoSuchVerificationPolicy", f"no verification policy for repositories {pattern!r}"
            )
        self._repo_gates = None

    async def repo_gate(self, repo: str, digest: str) -> tuple[dict[str, Any], bool, str] | None:
        """For a pull of ``repo@digest``: the most specific matching gate's outcome."""
        gates = await self.repo_gates()
        if not gates:
            return None
        gate = gates.get(repo)
        if gate is None:
            matching = [p for p in gates if fnmatch.fnmatchcase(repo, p)]
            if not matching:
                return None
            gate = gates[max(matching, key=len)]
        return await self._evaluate(gate, digest, f"repo:{repo}")

    async def _evaluate(
        self, gate: dict[str, Any], digest: str, scope: str
    ) -> tuple[dict[str, Any], bool, str]:
        """(gate, passed, reasons) for a subject in ``scope``; results are kept for
        ``GATE_TTL`` seconds (attaching evidence clears them)."""
        key = (digest, scope, json.dumps(gate["policy"], sort_keys=True))
        now = time.monotonic()
        cached = self._results.get(key)
        if cached is None or cached[0] < now:
            passed, rules = await self.verify(digest, gate["policy"], scope)
            reasons = "; ".join(f"{r.rule}: {r.reason}" for r in rules if not r.passed)
            if len(self._results) > 10_000:
                self._results.clear()
            cached = self._results[key] = (now + self.GATE_TTL, passed, reasons)
        if self.metrics is not None:
            target = "repository" if scope.startswith("repo:") else "bucket"
            decision = "pass" if cached[1] else "fail"
            self.metrics.gate_decisions.labels(target, str(gate["mode"]), decision).inc()
        return gate, cached[1], cached[2]

    # ---- trusted keys ---------------------------------------------------------------------
    async def add_key(
        self, pem: str, name: str, scope: str, expires_in: float | None, principal_id: str
    ) -> tuple[TrustedKey, bool]:
        """Register a public key (PEM); (key, created). The key id is the sha256 of its DER
        SubjectPublicKeyInfo, so registering the same key again is idempotent."""
        try:
            public = serialization.load_pem_public_key(pem.encode())
        except (ValueError, TypeError) as exc:
            raise StoreError("InvalidArgument", f"not a PEM public key: {exc}") from None
        algorithm = key_algorithm(public)
        if not name or len(name) > 128:
            raise StoreError("InvalidArgument", "name must be 1-128 characters")
        if scope and not re.fullmatch(r"(bucket|repo):[^\s]+", scope):
            raise StoreError("InvalidArgument", 'scope is "", "bucket:<name>" or "repo:<name>"')
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = hashlib.sha256(der).hexdigest()
        existing = await self.metadata.get_trusted_key(key_id)
        if existing is not None and existing.revoked_at is None:
            return existing, False
        now = time.time()
        key = TrustedKey(
            key_id=key_id,
            name=name,
            public_key_pem=public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            algorithm=algorithm,
            scope=scope,
            created_at=now,
            created_by=principal_id,
            expires_at=now + expires_in if expires_in else None,
        )
        if existing is None:
            await self.metadata.create_trusted_key(key)
        else:  # re-registering a revoked key trusts it again, as a new registration
            await self.metadata.update_trusted_key(key)
        return key, True

    async def list_keys(self) -> list[TrustedKey]:
        return await self.metadata.list_trusted_keys()

    async def revoke_key(self, key_id: str) -> None:
        await revoke_record(
            key_id,
            self.metadata.get_trusted_key,
            self.metadata.update_trusted_key,
            StoreError("NoSuchTrustedKey", f"no trusted key {key_id!r}"),
        )

    # ---- signatures -----------------------------------------------------------------------
    async def attach_signature(
        self,
        digest: str,
        ref: str,
        body: bytes,
        media_type: str,
        principal_id: str,
        extra: dict[str, str] | None = None,
    ) -> Evidence:
        """Store a signature about ``digest`` (422 and nothing stored when it is malformed or
        about other bytes): a Sigstore bundle, a DSSE envelope whose in-toto statement names
        the digest, or a raw signature (base64) over the digest, as ``cosign sign-blob --key``
        writes it."""
        if len(body) > MAX_EVIDENCE_BYTES:
            raise StoreError("EntityTooLarge", "evidence documents may be at most 16 MiB")
        kind = signature_format(body, media_type)
        if kind == "dsse":
            envelope, statement = parse_dsse_statement(body, digest)
            details = {
                "payload_type": envelope.payload_type,
                "predicate_type": str(statement.get("predicateType", "")),
                "keyids": ", ".join(sorted(envelope.signatures)),
            }
            return await self._store(digest, ref, "signature", "dsse", body,
                                     media_type or DSSE_TYPE, principal_id,
                                     details | (extra or {}))  # fmt: skip
        if kind == "raw":
            raw_signature(body)  # must decode
            return await self._store(digest, ref, "signature", "raw", body,
                                     media_type or "text/plain", principal_id, {})  # fmt: skip
        bundle = self._parse_bundle(body)
        signed = self._signed_digest(bundle)
        if signed is None:  # a DSSE bundle: its in-toto statement must name the subject
            bundle_statement(body, digest)
        elif signed != digest:
            raise StoreError(
                "SubjectMismatch",
                f"the bundle signs {signed}, not the subject's digest {digest}",
            )
        details = bundle_details(bundle, body)
        media_type = media_type or details["bundle_media_type"]
        return await self._store(
            digest, ref, "signature", "sigstore", body, media_type, principal_id,
            details | (extra or {}),
        )  # fmt: skip

    async def _store(
        self,
        digest: str,
        ref: str,
        kind: str,
        fmt: str,
        body: bytes,
        media_type: str,
        principal_id: str,
        details: dict[str, str],
    ) -> Evidence:
        info = await self.blobs.put_bytes(body)
        self._results.clear()  # a download gate may pass now
        evidence = Evidence(
            evidence_id=uuid.uuid4().hex,
            subject=digest,
            kind=kind,
            format=fmt,
            media_type=media_type,
            digest=info.digest,
            size=len(body),
            created_at=time.time(),
            created_by=principal_id,
            subject_ref=ref,
            details=details,
        )
        await self.metadata.add_evidence(evidence)
        return evidence

    # ---- attestations ---------------------------------------------------------------------
    async def attach_attestation(
        self,
        digest: str,
        ref: str,
        body: bytes,
        media_type: str,
        principal_id: str,
        extra: dict[str, str] | None = None,
    ) -> Evidence:
        """An in-toto Statement (v1 or v0.1) about ``digest``, in a DSSE envelope or in a
        Sigstore bundle carrying one (422 and nothing stored otherwise). A DSSE envelope's
        signature is checked against the trusted keys now and the result recorded; a bundle's
        certificate identity is recorded. Verification re-checks against the trust of then."""
        if len(body) > MAX_EVIDENCE_BYTES:
            raise StoreError("EntityTooLarge", "evidence documents may be at most 16 MiB")
        fmt = signature_format(body, media_type)
        if fmt == "sigstore":
            bundle = self._parse_bundle(body)
            statement = bundle_statement(body, digest)
            details = bundle_details(bundle, body)
            media_type = media_type or details["bundle_media_type"]
        elif fmt == "dsse":
            _, statement = parse_dsse_statement(body, digest)
            signer = await self._trusted_signer(body, None)
            details = {"verified_by_key": signer or ""}
            media_type = media_type or DSSE_TYPE
        else:
            raise StoreError(
                "InvalidEvidence",
                "an attestation is an in-toto statement in a DSSE envelope or a Sigstore bundle",
            )
        statement_type, predicate_type = check_statement(statement)
        details = {
            "predicate_type": predicate_type,
            "statement_type": statement_type,
            **details,
            **(extra or {}),
        }
        return await self._store(
            digest, ref, "attestation", fmt, body, media_type, principal_id, details
        )

    async def _trusted_signer(
        self, envelope: bytes, scope: str | None, only: str | None = None
    ) -> str | None:
        """The id of a trusted key (``only`` that one) usable for a subject in ``scope`` that
        verifies the envelope (``scope`` None: whatever the key's scope, as a hint)."""
        for key in await self.metadata.list_trusted_keys():
            if only and key.key_id != only:
                continue
            if self._unusable(key, scope if scope is not None else key.scope):
                continue
            try:
                verify_dsse(
                    envelope, serialization.load_pem_public_key(key.public_key_pem.encode())
                )
            except InvalidSignature:
                continue
            return key.key_id
        return None

    async def _why_untrusted(self, envelope: bytes, only: str | None, scope: str) -> str:
        """Why no trusted key vouches for the envelope here: none signed it, or the one that
        did may not vouch for this subject (revoked, expired, scoped elsewhere)."""
        signer = await self._trusted_signer(envelope, None, only)
        key = await self.metadata.get_trusted_key(signer) if signer else None
        why = self._unusable(key, scope) if key else ""
        return (
            f"signed by key {key.key_id[:16]}, but {why}"
            if key and why
            else ("not signed by a trusted key")
        )

    @staticmethod
    def _unusable(key: TrustedKey, scope: str) -> str:
        """Why ``key`` may not vouch for a subject in ``scope`` ("" when it may). The scope is
        where the subject being verified lives (``bucket:<name>``, ``repo:<name>``, "" for a
        bare digest), never where its evidence was attached: evidence binds to a digest, so
        a key scoped to one bucket must not vouch for the same bytes anywhere else. A scope
        may be a glob (``repo:team/*``)."""
        if key.revoked_at is not None:
            return "the key was revoked"
        if key.expires_at is not None and time.time() >= key.expires_at:
            return "the key has expired"
        if key.scope and not (scope and fnmatch.fnmatchcase(scope, key.scope)):
            where = scope or "a bare digest"
            return f"the key is trusted only for {key.scope}, not {where}"
        return ""

    async def _attestation_rule(self, digest: str, spec: Any, scope: str) -> RuleResult:
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("predicate_type"), str)
            or set(spec) - {"predicate_type", "constraints", "signer"}
        ):
            raise StoreError(
                "InvalidArgument",
                'an attestation rule is {"predicate_type", "constraints"?, "signer"?}',
            )
        constraints = spec.get("constraints") or {}
        if not isinstance(constraints, dict) or not all(
            isinstance(v, str) for v in constraints.values()
        ):
            raise StoreError("InvalidArgument", "constraints map predicate paths to globs")
        signer_spec = spec.get("signer")
        sigstore_check = None
        if signer_spec is not None:
            if isinstance(signer_spec, dict) and set(signer_spec) == {"key"}:
                if not isinstance(signer_spec["key"], str):
                    raise StoreError("InvalidArgument", "a key signer names a key id")
            else:
                signer_label, sigstore_check = identity_check(signer_spec)
        wanted = spec["predicate_type"]
        name = f"attestation {wanted}" + (
            " with " + ", ".join(f"{k}={v}" for k, v in constraints.items()) if constraints else ""
        )
        candidates = [
            e
            for e in await self.list(digest, "attestation")
            if e.details.get("predicate_type") == wanted
        ]
        if not candidates:
            return RuleResult(name, False, f"no {wanted} attestation is attached")
        reasons = []
        for evidence in candidates:
            body = await self.blobs.read_all(evidence.digest)
            if evidence.format == "sigstore":
                if sigstore_check is None:
                    reasons.append(
                        f"{evidence.evidence_id}: Sigstore-signed; the rule names no sigstore "
                        "signer to check its identity against"
                    )
                    continue
                try:
                    self._verify_bundle(body, digest, sigstore_check)
                except (SigstoreError, policy.VerificationError, ValueError) as exc:
                    reasons.append(f"{evidence.evidence_id}: {exc}")
                    continue
                statement = bundle_statement(body, digest)
                how = f"signed by {signer_label}"
            else:
                if sigstore_check is not None:
                    reasons.append(f"{evidence.evidence_id}: signed by a key, not {signer_label}")
                    continue
                only = signer_spec["key"] if signer_spec else None
                signer = await self._trusted_signer(body, scope, only)
                if signer is None:
                    reasons.append(
                        f"{evidence.evidence_id}: {await self._why_untrusted(body, only, scope)}"
                    )
                    continue
                statement = json.loads(Envelope.from_dict(json.loads(body)).payload)
                how = f"signed by trusted key {signer[:16]}"
            predicate = statement.get("predicate")
            failed = [
                f"{path} is {value!r}, not {pattern!r}"
                for path, pattern in constraints.items()
                if not isinstance(value := lookup(predicate, path), str)
                or not fnmatch.fnmatchcase(value, pattern)
            ]
            if failed:
                reasons.append(f"{evidence.evidence_id}: " + "; ".join(failed))
                continue
            return RuleResult(name, True, how, [evidence.evidence_id])
        return RuleResult(name, False, "; ".join(reasons))

    # ---- evidence pushed into the registry (cosign, notation, Sigstore bundles) -----------
    async def index_oci(
        self, repo: str, manifest: Manifest, tag: str | None, principal_id: str
    ) -> list[Evidence]:
        """Read the signatures, attestations and SBOMs a just-pushed manifest carries (cosign's
        ``sha256-<hex>.sig|.att|.sbom`` tags, or referrers of an image) into evidence about the
        image. Layers that are malformed or about another digest are skipped, and say why in
        the returned list's absence; the push itself always stands (it is valid OCI)."""
        legacy = legacy_subject(tag)
        subject = legacy[0] if legacy else manifest.subject
        if subject is None:
            return []
        layers = evidence_layers(
            json.loads(await self.registry.manifest_bytes(manifest)), manifest.artifact_type
        )
        if not layers:
            return []
        ref = f"{repo}@{subject}"
        # cosign re-tags a grown manifest (same payload layer, one more signature): one record
        # per signature, following the manifest the tag now names.
        known = {
            (e.details.get("oci_layer"), e.details.get("signature", "")): e
            for e in await self.list(subject)
            if e.details.get("repository") == repo
        }
        out = []
        for layer in layers:
            seen = known.get((layer.digest, layer.annotations.get(COSIGN_SIGNATURE_ANNOTATION, "")))
            if seen is not None:
                if seen.details.get("oci_manifest") == manifest.digest:
                    continue
                await self.metadata.delete_evidence(seen.evidence_id)
            base = {
                "repository": repo,
                "oci_manifest": manifest.digest,
                "oci_layer": layer.digest,
                "oci_source": f"tag {tag}" if legacy else "referrer",
            }
            try:
                stat = await self.blobs.stat(layer.digest)
                if stat is None or stat.size > MAX_EVIDENCE_BYTES:
                    continue  # never read a big layer whole: it is not evidence
                body = await self.blobs.read_all(layer.digest)
                out.append(await self._index_layer(subject, ref, layer, body, principal_id, base))
            except (StoreError, OSError) as exc:
                log.info("oci evidence %s of %s not indexed: %s", layer.digest, ref, exc)
        return out

    async def _index_layer(
        self,
        subject: str,
        ref: str,
        layer: OciLayer,
        body: bytes,
        principal_id: str,
        base: dict[str, str],
    ) -> Evidence:
        if layer.kind == "cosign":
            claimed = cosign_payload_digest(body)
            if claimed != subject:
                raise StoreError("SubjectMismatch", f"the payload names {claimed}")
            details = base | {
                "signature": layer.annotations.get(COSIGN_SIGNATURE_ANNOTATION, ""),
                "keyless": "true" if COSIGN_CERTIFICATE_ANNOTATION in layer.annotations else "",
            }
            return await self._store(
                subject, ref, "signature", "cosign", body, layer.media_type, principal_id, details
            )
        if layer.kind == "notation":
            jws = parse_notation(body, layer.media_type)
            if jws.target_digest != subject:
                raise StoreError("SubjectMismatch", f"the signature is about {jws.target_digest}")
            details = base | {"signer": jws.chain[0].subject.rfc4514_string()}
            return await self._store(
                subject, ref, "signature", "notation", body, layer.media_type, principal_id,
                details,
            )  # fmt: skip
        if layer.kind == "attestation":
            return await self.attach_attestation(
                subject, ref, body, layer.media_type, principal_id, base
            )
        if layer.kind == "sbom":
            return await self.attach_sbom(subject, ref, body, layer.media_type, principal_id, base)
        return await self.attach_signature(subject, ref, body, layer.media_type, principal_id, base)

    # ---- SBOMs ----------------------------------------------------------------------------
    async def attach_sbom(
        self,
        digest: str,
        ref: str,
        body: bytes,
        media_type: str,
        principal_id: str,
        extra: dict[str, str] | None = None,
    ) -> Evidence:
        """Validate (422 with the validator's reasons, nothing stored), store, and index the
        components so that search finds the subject by purl or name."""
        if len(body) > MAX_EVIDENCE_BYTES:
            raise StoreError("EntityTooLarge", "evidence documents may be at most 16 MiB")
        parsed = await parse_sbom_async(body, media_type)
        details = {
            "spec_version": parsed.spec_version,
            "components": str(len(parsed.components)),
            **(extra or {}),
        }
        evidence = await self._store(
            digest, ref, "sbom", parsed.format, body, parsed.media_type, principal_id, details
        )
        await self.metadata.add_components(
            [
                SbomComponent(
                    evidence.evidence_id,
                    digest,
                    ref,
                    c.name,
                    c.version,
                    c.purl,
                    purl_base(c.purl) if c.purl else "",
                    c.licenses,
                )
                for c in parsed.components
            ]
        )
        return evidence

    async def search(self, purl: str | None, name: str | None, limit: int) -> list[SbomComponent]:
        if purl:
            versioned = "@" in purl.split("?")[0].rsplit("/", 1)[-1]
            query = ComponentQuery(purl=purl) if versioned else ComponentQuery(purl_base=purl)
            if name:
                query.name = name
        elif name:
            query = ComponentQuery(name=name)
        else:
            raise StoreError("InvalidArgument", "search by purl or name")
        return await self.metadata.search_components(query, limit)

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
        """The evidence about ``digest``; evidence read from registry manifests that have
        since been deleted (or collected) is dropped here, so the registry stays the truth."""
        out = []
        for evidence in await self.metadata.list_evidence(digest, kind):
            source = evidence.details.get("oci_manifest")
            if (
                source
                and await self.metadata.get_manifest(evidence.details.get("repository", ""), source)
                is None
            ):
                await self.metadata.delete_evidence(evidence.evidence_id)
                continue
            out.append(evidence)
        return out

    async def evidence_bytes(self, evidence_id: str) -> tuple[Evidence, bytes]:
        evidence = await self.metadata.get_evidence(evidence_id)
        if evidence is None:
            raise StoreError("NoSuchEvidence", f"no evidence {evidence_id!r}")
        return evidence, await self.blobs.read_all(evidence.digest)

    # ---- verification ---------------------------------------------------------------------
    async def verify(
        self, digest: str, rules: Any, scope: str = ""
    ) -> tuple[bool, list[RuleResult]]:
        """:meth:`_verify`, traced (``supplychain.verify``) and counted
        (``zas_verifications``, ``zas_verification_rules`` by rule kind)."""
        started = time.monotonic()
        result = "error"
        try:
            with span(
                "supplychain.verify", {"zas.subject_digest": digest, "zas.scope": scope}
            ) as current:
                passed, results = await self._verify(digest, rules, scope)
                if current is not None:
                    current.set_attribute("zas.verify.passed", passed)
            result = "passed" if passed else "failed"
            if self.metrics is not None:
                for kind, rule in zip(rule_kinds(rules), results, strict=False):
                    self.metrics.verification_rules.labels(
                        kind, "passed" if rule.passed else "failed"
                    ).inc()
            return passed, results
        finally:
            if self.metrics is not None:
                self.metrics.verifications.labels(result).inc()
                self.metrics.verification_latency.observe(time.monotonic() - started)

    async def _verify(
        self, digest: str, rules: Any, scope: str = ""
    ) -> tuple[bool, list[RuleResult]]:
        """Whether the subject ``digest``, living in ``scope`` (``bucket:<name>``,
        ``repo:<name>``, "" for a bare digest: what scoped keys are checked against), meets
        the policy ``rules``; each rule's outcome."""
        if not isinstance(rules, dict):
            raise StoreError("InvalidArgument", "policy must be an object")
        unsupported = set(rules) - {"signatures", "threshold", "sbom", "attestations"}
        if unsupported:
            raise StoreError(
                "NotImplemented",
                f"policy rules not supported yet: {', '.join(sorted(unsupported))}",
            )
        sbom_rule = []
        if "sbom" in rules:
            if not isinstance(rules["sbom"], bool):
                raise StoreError("InvalidArgument", "policy.sbom is true or false")
            if rules["sbom"]:
                sboms = await self.list(digest, "sbom")
                sbom_rule.append(
                    RuleResult(
                        "an SBOM is attached",
                        bool(sboms),
                        f"{len(sboms)} SBOM(s): " + ", ".join(sorted({e.format for e in sboms}))
                        if sboms
                        else "no SBOM is attached to the subject",
                        [e.evidence_id for e in sboms],
                    )
                )
        attestation_specs = rules.get("attestations") or []
        if not isinstance(attestation_specs, list):
            raise StoreError("InvalidArgument", "policy.attestations must be a list")
        sbom_rule += [await self._attestation_rule(digest, a, scope) for a in attestation_specs]
        wanted = rules.get("signatures") or []
        if not isinstance(wanted, list) or (not wanted and not sbom_rule):
            raise StoreError(
                "InvalidArgument", "a policy needs signatures, attestations or sbom rules"
            )
        if not wanted:
            return all(r.passed for r in sbom_rule), sbom_rule
        threshold = rules.get("threshold", len(wanted))
        if (
            not isinstance(threshold, int)
            or isinstance(threshold, bool)
            or not (1 <= threshold <= len(wanted))
        ):
            raise StoreError("InvalidArgument", "threshold must be between 1 and the signers")
        signatures = [
            (e, await self.blobs.read_all(e.digest)) for e in await self.list(digest, "signature")
        ]
        bundles = [(e, body) for e, body in signatures if e.format == "sigstore"]
        keyed = [(e, b) for e, b in signatures if e.format in ("raw", "dsse", "cosign", "notation")]
        results = []
        for spec in wanted:
            if isinstance(spec, dict) and set(spec) == {"key"}:
                results.append(await self._key_rule(digest, spec["key"], keyed, scope))
            else:
                results.append(self._signature_rule(digest, spec, bundles))
        passed = sum(r.passed for r in results)
        distinct = distinct_signers(results)
        reason = f"{passed} of {len(wanted)} signer rules passed"
        if distinct < passed:
            reason += f", met by {distinct} distinct signer(s): a signer counts once"
        summary = RuleResult(
            f"at least {threshold} of {len(wanted)} signers", distinct >= threshold, reason
        )
        rules_out = [*results, summary, *sbom_rule]
        return summary.passed and all(r.passed for r in sbom_rule), rules_out

    def _signature_rule(
        self, digest: str, spec: Any, bundles: list[tuple[Evidence, bytes]]
    ) -> RuleResult:
        label, check = identity_check(spec)
        name = f"sigstore signature by {label}"
        if not digest.startswith("sha256:"):
            return RuleResult(name, False, "Sigstore verification needs a sha256 subject")
        if not bundles:
            return RuleResult(name, False, "no Sigstore signature is attached to the subject")
        reasons, used, signers = [], [], set()
        for evidence, body in bundles:
            try:
                self._verify_bundle(body, digest, check)
            except (SigstoreError, policy.VerificationError, ValueError) as exc:
                reasons.append(f"{evidence.evidence_id}: {exc}")
                continue
            used.append(evidence.evidence_id)
            signers.add(
                "sigstore:" + evidence.details.get("issuer", "")
                + " " + (evidence.details.get("identity") or evidence.evidence_id)
            )  # fmt: skip
        if used:
            return RuleResult(
                name, True, "verified offline against the trusted root", used, signers
            )
        return RuleResult(name, False, "; ".join(reasons))

    def _verify_bundle(self, body: bytes, digest: str, check: Any) -> None:
        """A Sigstore bundle verifies offline for ``digest`` under the identity ``check``: a
        message signature over the digest, or a DSSE envelope whose statement names it."""
        bundle = Bundle.from_json(body)
        if bundle._inner.dsse_envelope is None:
            hashed = Hashed(
                algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.split(":")[1])
            )
            self.verifier.verify_artifact(hashed, bundle, check)
            return
        payload_type, payload = self.verifier.verify_dsse(bundle, check)
        if payload_type != IN_TOTO_TYPE:
            raise ValueError(f"the envelope's payload is {payload_type}, not in-toto")
        statement_subject_names(json.loads(payload), digest)

    async def _key_rule(
        self, digest: str, key_id: Any, signatures: list[tuple[Evidence, bytes]], scope: str
    ) -> RuleResult:
        if not isinstance(key_id, str):
            raise StoreError("InvalidArgument", "a key signer names a key id")
        name = f"signature by key {key_id[:16]}"
        key = await self.metadata.get_trusted_key(key_id)
        if key is None:
            return RuleResult(name, False, "the key is not a trusted key")
        unusable = self._unusable(key, scope)
        if unusable:
            return RuleResult(name, False, unusable)
        if not signatures:
            return RuleResult(name, False, "no key-based signature is attached to the subject")
        public = serialization.load_pem_public_key(key.public_key_pem.encode())
        reasons = []
        for evidence, body in signatures:
            try:
                if evidence.format == "dsse":
                    verify_dsse(body, public)
                elif evidence.format == "cosign":
                    verify_cosign(body, evidence.details.get("signature", ""), digest, public)
                elif evidence.format == "notation":
                    verify_notation(parse_notation(body, evidence.media_type), digest, public)
                else:
                    verify_raw(raw_signature(body), digest, public)
            except InvalidSignature:
                reasons.append(f"{evidence.evidence_id}: the signature does not verify")
                continue
            except StoreError as exc:
                reasons.append(f"{evidence.evidence_id}: {exc.message}")
                continue
            return RuleResult(name, True, f"verified with key {key.name!r}",
                              [evidence.evidence_id], {f"key:{key.key_id}"})  # fmt: skip
        return RuleResult(name, False, "; ".join(reasons))


DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_STATEMENTS = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")


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
    ModelBundle.model_validate_json(json.dumps(doc))
    return doc


def rule_kinds(rules: dict[str, Any]) -> list[str]:
    """The kind of each result :meth:`SupplyChainService.verify` returns for ``rules``, in
    its order: the signer rules (key, identity) and their threshold, then sbom, attestation."""
    wanted = rules.get("signatures") or []
    kinds = [
        "key" if isinstance(spec, dict) and set(spec) == {"key"} else "identity" for spec in wanted
    ]
    if wanted:
        kinds.append("threshold")
    if rules.get("sbom") is True:
        kinds.append("sbom")
    return kinds + ["attestation"] * len(rules.get("attestations") or [])


def subject_scope(subject: Any) -> str:
    """Where a ``/v1/verify`` subject lives, as trusted keys are scoped: ``bucket:<name>`` for
    ``{"bucket", "key"}``, ``repo:<name>`` for ``{"repository", "digest"}``, "" otherwise."""
    if isinstance(subject, dict):
        if isinstance(subject.get("bucket"), str):
            return f"bucket:{subject['bucket']}"
        if isinstance(subject.get("repository"), str):
            return f"repo:{subject['repository']}"
    return ""


def distinct_signers(results: list[RuleResult]) -> int:
    """How many signer rules distinct signers meet at once: a maximum matching of rules to
    the signers that met them (one signer, or one key, counts for one rule only)."""
    owner: dict[str, int] = {}

    def assign(rule: int, seen: set[str]) -> bool:
        for signer in results[rule].signers:
            if signer in seen:
                continue
            seen.add(signer)
            if signer not in owner or assign(owner[signer], seen):
                owner[signer] = rule
                return True
        return False

    return sum(assign(i, set()) for i, r in enumerate(results) if r.passed)


def lookup(doc: Any, path: str) -> Any:
    """``runDetails.builder.id`` in a predicate; None when absent."""
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


IN_TOTO_TYPE = "application/vnd.in-toto+json"


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
        doc = json.loads(body)
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
        raise InvalidSignature
    verify_prehashed(signature, bytes.fromhex(digest.split(":", 1)[1]), public)


def bundle_details(bundle: Bundle, body: bytes) -> dict[str, str]:
    """What an evidence record remembers of a Sigstore bundle: who signed, for which issuer."""
    cert = bundle.signing_certificate
    return {
        "identity": ", ".join(sorted(certificate_identities(cert))),
        "issuer": certificate_issuer(cert),
        "bundle_media_type": json.loads(body).get("mediaType", ""),
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
        return f"{sig['identity']} ({issuer})", policy.Identity(
            identity=sig["identity"], issuer=issuer
        )
    if isinstance(sig.get("identity_regex"), str):
        try:
            regex = IdentityRegex(sig["identity_regex"])
        except re.error as exc:
            raise StoreError("InvalidArgument", f"identity_regex: {exc}") from None
        label = f"/{sig['identity_regex']}/ ({issuer})"
        return label, policy.AllOf([policy.OIDCIssuer(issuer), regex])
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
        envelope = json.loads(body)["dsseEnvelope"]
        payload_type = envelope["payloadType"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
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
        envelope = Envelope.from_dict(json.loads(body))
        statement = json.loads(envelope.payload)
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
    envelope = Envelope.from_dict(json.loads(body))
    pae = envelope.pae()
    keys = [SSlibKey.from_crypto(public)]
    if isinstance(public, rsa.RSAPublicKey):
        # securesystemslib assumes RSA-PSS; cosign and most signers use PKCS#1 v1.5.
        keys.append(SSlibKey.from_crypto(public, scheme="rsa-pkcs1v15-sha256"))
    for signature in envelope.signatures.values():
        for key in keys:
            try:
                # cosign writes ``"keyid": ""``: the id is only a hint, the key is what counts.
                key.verify_signature(Signature(key.keyid, signature.signature), pae)
                return
            except (UnverifiedSignatureError, VerificationError):
                continue
    raise InvalidSignature
