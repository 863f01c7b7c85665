"""Evidence of a subject (``…/signatures|sboms|attestations``, ``/v1/evidence/{id}``) and SBOM
search."""

from __future__ import annotations

from ...errors import StoreError
from ...services.supplychain import (
    component_json,
    evidence_json,
)
from ..query import takes
from .common import V1Handler, evidence_resource

GENERIC_MEDIA_TYPES = frozenset(
    {
        "",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/octet-stream",
        "application/json",
        "text/json",
    }
)


class EvidenceHandler(V1Handler):
    """Signatures of a subject: ``/v1/buckets/{b}/objects/{key}/signatures`` (the object's
    current digest) and ``/v1/digests/{digest}/signatures``. POST attaches a Sigstore bundle
    (its JSON as the body); GET lists what is attached."""

    async def subject(self, action: str, *args: str) -> tuple[str, str, str]:
        """(digest, how it was named, authorization resource), once ``action`` is allowed on
        the object or digest (before it is looked up: missing and forbidden answer alike)."""
        if len(args) == 2:
            bucket, key = args
            return await self.authorized_subject({"bucket": bucket, "key": key}, action)
        return await self.authorized_subject({"digest": args[0]}, action)

    async def post(self, *args: str) -> None:
        kind = args[-1]
        digest, ref, resource = await self.subject("supplychain:attach", *args[:-1])
        media_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type in GENERIC_MEDIA_TYPES:
            media_type = ""  # detected from the document: curl -d sends a form type
        attach = {
            "signatures": self.ctx.supplychain.attach_signature,
            "sboms": self.ctx.supplychain.attach_sbom,
            "attestations": self.ctx.supplychain.attach_attestation,
        }.get(kind)
        if attach is None:
            raise StoreError("NotImplemented", f"attaching {kind} is not supported yet")
        evidence = await attach(digest, ref, self.request.body, media_type, self.principal.id)
        self.audit("supplychain:attach", resource, True, f"{evidence.kind} {evidence.evidence_id}")
        self.set_header("Location", f"/v1/evidence/{evidence.evidence_id}")
        self.write_json(evidence_json(evidence), 201)

    async def get(self, *args: str) -> None:
        kind = args[-1]
        digest, _, _ = await self.subject("supplychain:read", *args[:-1])
        # The same bytes may be evidence-bearing elsewhere too: only what the caller may read.
        items = await self.readable(await self.ctx.supplychain.list(digest, kind[:-1]))
        self.write_json({"subject_digest": digest, kind: [evidence_json(e) for e in items]})


class EvidenceDocumentHandler(V1Handler):
    """``GET /v1/evidence/{id}``: the document exactly as attached (HEAD: its headers)."""

    async def get(self, evidence_id: str) -> None:
        evidence, body = await self.ctx.supplychain.evidence_bytes(evidence_id)
        # Its real subject's resource: bucket/key, repo:<name> (as pulls are authorized) or
        # digest:<d>, so a Deny on a bucket or repository covers its evidence too.
        await self.authorize("supplychain:read", evidence_resource(evidence))
        self.set_header("Content-Type", evidence.media_type or "application/octet-stream")
        self.set_header("X-Evidence-Subject", evidence.subject)
        self.finish(body)


class SbomSearchHandler(V1Handler):
    """``GET /v1/sboms/search?purl=…|name=…``: every subject whose SBOM lists the component
    (a purl with a version matches exactly; without, every version)."""

    query_parameters = takes(GET=("purl", "name", "limit"))

    async def get(self) -> None:
        await self.authorize("supplychain:read", "")
        found = await self.ctx.supplychain.search(
            self.get_query_argument("purl", None),
            self.get_query_argument("name", None),
            self.int_arg("limit", 1000, 1, 10_000),
        )
        # Only what the caller may read: a search must not reveal other teams' artifacts.
        results = [component_json(c) for c in await self.readable_components(found)]
        self.write_json({"results": results})
