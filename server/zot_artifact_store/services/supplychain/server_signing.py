"""Server-side signing: the store signs subjects with its own key, and issues VSAs."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from ...errors import StoreError
from ...lazy import lazy_module
from ...metadata import (
    Evidence,
    TrustedKey,
)
from ...observability.tracing import span
from ...timefmt import iso_time
from ..signing import SigningProvider
from .base import SupplyChainBase
from .formats import DSSE_TYPE, IN_TOTO_STATEMENTS, IN_TOTO_TYPE, dsse
from .verification import RuleResult

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import serialization
else:  # cryptography loads on first use (issue 23: idle RSS)
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")


class SigningMixin(SupplyChainBase):
    """Server-side signing: the store signs subjects with its own key, and issues VSAs."""

    # ---- server-side signing --------------------------------------------------------------
    SIGNED_PREDICATE = "https://zot-artifact-store.dev/attestations/signed/v1"

    SERVER_KEY_NAME = "server signing key"

    # Predicate types only the store itself writes (after a verification passed).
    RESERVED_PREDICATES = (
        "https://slsa.dev/verification_summary/v1",
        "https://slsa.dev/verification_summary/v0.2",
    )

    VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"

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
        if await self.ensure_signing() is None:
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
        envelope = dsse.Envelope(json.dumps(statement).encode(), IN_TOTO_TYPE, {})
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
