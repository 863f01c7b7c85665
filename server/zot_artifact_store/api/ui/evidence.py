"""One piece of evidence: what it says (an SBOM's components, an attestation's predicate and,
for SLSA provenance, who built the subject from what), and its document as a download."""

from __future__ import annotations

from typing import Any

from ...errors import StoreError
from ...metadata import Evidence
from ...services.sbom import Component, parse_sbom_async
from ...services.supplychain.formats import bundle_statement, lookup, parse_dsse_statement
from ...services.supplychain.provenance import provenance_facts
from ..content_safety import DOWNLOAD_CSP
from ..v1.common import evidence_resource
from .base import UIHandler
from .supplychain import subject_link

MAX_COMPONENT_ROWS = 1000


def statement_of(evidence: Evidence, body: bytes) -> dict[str, Any] | None:
    """The in-toto statement an attestation carries (None when it cannot be read)."""
    try:
        if evidence.format == "sigstore":
            return bundle_statement(body, evidence.subject)
        return parse_dsse_statement(body, evidence.subject)[1]
    except (StoreError, ValueError, KeyError, TypeError):
        return None


def provenance_summary(statement: dict[str, Any] | None) -> dict[str, str]:
    """Builder, source repository, ref, commit, workflow and run of SLSA provenance."""
    if not statement or not str(statement.get("predicateType", "")).startswith(
        "https://slsa.dev/provenance/"
    ):
        return {}
    predicate = statement.get("predicate")
    facts = provenance_facts(predicate)
    run = lookup(predicate, "runDetails.metadata.invocationId")
    if isinstance(run, str) and run:
        facts["run"] = run
    return facts


def matches(component: Component, query: str) -> bool:
    text = " ".join([component.name, component.version, component.purl, *component.licenses])
    return query.lower() in text.lower()


class EvidenceHandler(UIHandler):
    """``/ui/evidence/{id}?q=``: a signature's signer, an SBOM's component table (filtered by
    ``q``), an attestation's predicate (SLSA provenance summarised)."""

    async def get(self, evidence_id: str) -> None:
        evidence, body = await self.ctx.supplychain.evidence_bytes(evidence_id)
        await self.authorize("supplychain:read", evidence_resource(evidence))
        query = self.get_query_argument("q", "").strip()
        components: list[Component] = []
        total = 0
        if evidence.kind == "sbom":
            parsed = await parse_sbom_async(body, evidence.media_type)
            total = len(parsed.components)
            components = [c for c in parsed.components if not query or matches(c, query)]
        statement = statement_of(evidence, body) if evidence.kind == "attestation" else None
        self.page(
            "evidence_page.html",
            e=evidence,
            subject_href=subject_link(evidence.subject_ref) if evidence.subject_ref else None,
            query=query,
            components=components[:MAX_COMPONENT_ROWS],
            matched=len(components),
            total=total,
            provenance=provenance_summary(statement),
            predicate_type=(statement or {}).get("predicateType", ""),
        )


class EvidenceDownloadHandler(UIHandler):
    """``/ui/evidence/{id}/download``: the document exactly as attached, as an attachment."""

    async def get(self, evidence_id: str) -> None:
        evidence, body = await self.ctx.supplychain.evidence_bytes(evidence_id)
        await self.authorize("supplychain:read", evidence_resource(evidence))
        self.set_header("Content-Type", evidence.media_type or "application/octet-stream")
        self.set_header("Content-Disposition", f'attachment; filename="{evidence_id}.json"')
        self.set_header("Content-Security-Policy", DOWNLOAD_CSP)
        self.finish(body)
