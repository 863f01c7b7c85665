"""Evidence: signatures, attestations and SBOMs attached through /v1 or pushed into the registry."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING

from ...errors import StoreError
from ...metadata import (
    ComponentQuery,
    Evidence,
    Manifest,
    SbomComponent,
)
from ..oci_evidence import (
    COSIGN_CERTIFICATE_ANNOTATION,
    COSIGN_SIGNATURE_ANNOTATION,
    OciLayer,
    cosign_payload_digest,
    evidence_layers,
    legacy_subject,
    parse_notation,
)
from ..sbom import parse_sbom_async, purl_base
from .base import EVENT_DETAILS, SupplyChainBase, subject_fields
from .formats import (
    DSSE_TYPE,
    MAX_EVIDENCE_BYTES,
    bundle_details,
    bundle_statement,
    check_statement,
    parse_dsse_statement,
    raw_signature,
    signature_format,
    sigstore_errors,
    sigstore_models,
)

if TYPE_CHECKING:
    from sigstore.models import Bundle

log = logging.getLogger(__name__)


class EvidenceMixin(SupplyChainBase):
    """Evidence: signatures, attestations and SBOMs attached through /v1 or pushed into the
    registry."""

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
        await self.supplychain_changed()  # a download gate may pass now, on every replica
        await self.notify.emit(
            "evidence.attached",
            {**subject_fields(ref), "digest": digest},
            {"evidence_id": evidence.evidence_id, "kind": kind, "format": fmt,
             "media_type": media_type, **{k: details[k] for k in EVENT_DETAILS if k in details}},
        )  # fmt: skip
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
                await self.supplychain_changed()
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
            return sigstore_models.Bundle.from_json(body)
        except (sigstore_errors.Error, ValueError, KeyError, TypeError) as exc:
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
                await self.supplychain_changed()
                continue
            out.append(evidence)
        return out

    async def evidence_bytes(self, evidence_id: str) -> tuple[Evidence, bytes]:
        evidence = await self.metadata.get_evidence(evidence_id)
        if evidence is None:
            raise StoreError("NoSuchEvidence", f"no evidence {evidence_id!r}")
        return evidence, await self.blobs.read_all(evidence.digest)
