"""Verification: a subject's evidence checked against a policy's rules."""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ... import jsonbody
from ...errors import StoreError
from ...lazy import lazy_module
from ...metadata import Evidence
from ...observability.tracing import span
from ..oci_evidence import (
    parse_notation,
    verify_cosign,
    verify_notation,
)
from .base import SupplyChainBase, subject_fields
from .formats import (
    IN_TOTO_TYPE,
    bundle_statement,
    common_model,
    dsse,
    identity_check,
    lookup,
    raw_signature,
    sigstore_errors,
    sigstore_hashes,
    sigstore_models,
    sigstore_policy,
    statement_subject_names,
    verify_dsse,
    verify_raw,
)
from .provenance import SLSA_PROVENANCE_V1, SOURCE_FACTS, match_provenance

if TYPE_CHECKING:
    from cryptography import exceptions as crypto_errors
    from cryptography.hazmat.primitives import serialization
else:  # cryptography loads on first use (issue 23: idle RSS)
    crypto_errors = lazy_module("cryptography.exceptions")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")


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


def provenance_rule(spec: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """An attestation rule's shorthand for who built the subject: ``"source": {"repository":
    "acme/widget", "ref": "refs/tags/*", …}`` and ``"builder": {"id": "<glob>"}``, checked
    against the SLSA v1 provenance predicate (``gh attestation verify --repo`` /
    ``--signer-workflow`` in one rule)."""
    source = spec.get("source", {})
    builder = spec.get("builder")
    if "source" not in spec and builder is None:
        return {}, None
    if spec["predicate_type"] != SLSA_PROVENANCE_V1:
        raise StoreError(
            "InvalidArgument", f"source and builder apply to {SLSA_PROVENANCE_V1} attestations"
        )
    if (
        not isinstance(source, dict)
        or set(source) - set(SOURCE_FACTS)
        or not all(isinstance(v, str) and v for v in source.values())
    ):
        raise StoreError(
            "InvalidArgument", f"source maps {', '.join(SOURCE_FACTS)} to globs (non-empty)"
        )
    if builder is not None and (
        not isinstance(builder, dict)
        or set(builder) != {"id"}
        or not isinstance(builder["id"], str)
        or not builder["id"]
    ):
        raise StoreError("InvalidArgument", 'builder is {"id": "<glob of the builder id>"}')
    if not source and builder is None:
        raise StoreError(
            "InvalidArgument", "source names at least one of " + ", ".join(SOURCE_FACTS)
        )
    return source, builder["id"] if builder is not None else None


def request_resource(subject: Any) -> str:
    """The authorization resource of a ``/v1/verify`` or ``/v1/sign`` subject, from its name
    alone: authorized before the subject is looked up, so that a caller who may not read it
    cannot tell whether it exists."""
    if isinstance(subject, dict):
        if set(subject) == {"bucket", "key"}:
            return f"{subject['bucket']}/{subject['key']}"
        if set(subject) == {"repository", "digest"}:
            return f"repo:{subject['repository']}"
        if set(subject) == {"digest"}:
            return f"digest:{subject['digest']}"
    raise StoreError(
        "InvalidArgument",
        'subject must be {"bucket", "key"}, {"repository", "digest"} or {"digest"}',
    )


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


class VerificationMixin(SupplyChainBase):
    """Verification: a subject's evidence checked against a policy's rules."""

    # ---- verification ---------------------------------------------------------------------
    async def verify_request(
        self, digest: str, ref: str, rules: Any, scope: str = ""
    ) -> tuple[bool, list[RuleResult]]:
        """A verification someone asked for (``POST /v1/verify``): :meth:`verify`, announced
        as ``verification.passed`` or ``verification.failed`` (download gates, which verify
        on every read, are not announced here)."""
        verified, results = await self.verify(digest, rules, scope)
        failed = [r.as_json() for r in results if not r.passed]
        await self.notify.emit(
            "verification.passed" if verified else "verification.failed",
            {**subject_fields(ref), "digest": digest},
            {"rules": len(results), "failed_rules": failed[:20]},
        )
        return verified, results

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
                "InvalidArgument",
                f"unknown policy rules: {', '.join(sorted(unsupported))} (the rules are "
                "signatures, threshold, sbom and attestations)",
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
            except (sigstore_errors.Error, sigstore_policy.VerificationError, ValueError) as exc:
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
        bundle = sigstore_models.Bundle.from_json(body)
        if bundle._inner.dsse_envelope is None:
            hashed = sigstore_hashes.Hashed(
                algorithm=common_model.HashAlgorithm.SHA2_256,
                digest=bytes.fromhex(digest.split(":")[1]),
            )
            self.verifier.verify_artifact(hashed, bundle, check)
            return
        payload_type, payload = self.verifier.verify_dsse(bundle, check)
        if payload_type != IN_TOTO_TYPE:
            raise ValueError(f"the envelope's payload is {payload_type}, not in-toto")
        statement_subject_names(jsonbody.loads(payload), digest)

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
            except crypto_errors.InvalidSignature:
                reasons.append(f"{evidence.evidence_id}: the signature does not verify")
                continue
            except StoreError as exc:
                reasons.append(f"{evidence.evidence_id}: {exc.message}")
                continue
            return RuleResult(name, True, f"verified with key {key.name!r}",
                              [evidence.evidence_id], {f"key:{key.key_id}"})  # fmt: skip
        return RuleResult(name, False, "; ".join(reasons))

    async def _attestation_rule(self, digest: str, spec: Any, scope: str) -> RuleResult:
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("predicate_type"), str)
            or set(spec) - {"predicate_type", "constraints", "signer", "source", "builder"}
        ):
            raise StoreError(
                "InvalidArgument",
                'an attestation rule is {"predicate_type", "constraints"?, "signer"?, '
                '"source"?, "builder"?}',
            )
        constraints = spec.get("constraints") or {}
        if not isinstance(constraints, dict) or not all(
            isinstance(v, str) for v in constraints.values()
        ):
            raise StoreError("InvalidArgument", "constraints map predicate paths to globs")
        source, builder = provenance_rule(spec)
        signer_spec = spec.get("signer")
        sigstore_check = None
        if signer_spec is not None:
            if isinstance(signer_spec, dict) and set(signer_spec) == {"key"}:
                if not isinstance(signer_spec["key"], str):
                    raise StoreError("InvalidArgument", "a key signer names a key id")
            else:
                signer_label, sigstore_check = identity_check(signer_spec)
        wanted = spec["predicate_type"]
        named = {**constraints, **source, **({"builder": builder} if builder else {})}
        name = f"attestation {wanted}" + (
            " with " + ", ".join(f"{k}={v}" for k, v in named.items()) if named else ""
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
                except (
                    sigstore_errors.Error,
                    sigstore_policy.VerificationError,
                    ValueError,
                ) as exc:
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
                statement = jsonbody.loads(dsse.Envelope.from_dict(jsonbody.loads(body)).payload)
                how = f"signed by trusted key {signer[:16]}"
            predicate = statement.get("predicate")
            failed = [
                f"{path} is {value!r}, not {pattern!r}"
                for path, pattern in constraints.items()
                if not isinstance(value := lookup(predicate, path), str)
                or not fnmatch.fnmatchcase(value, pattern)
            ]
            if source or builder is not None:
                failed += match_provenance(predicate, source, builder)
            if failed:
                reasons.append(f"{evidence.evidence_id}: " + "; ".join(failed))
                continue
            return RuleResult(name, True, how, [evidence.evidence_id])
        return RuleResult(name, False, "; ".join(reasons))
