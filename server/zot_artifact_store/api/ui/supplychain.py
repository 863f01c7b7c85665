"""SBOM search across buckets and repositories, and running a verification policy."""

from __future__ import annotations

import json
from typing import Any

from ...errors import StoreError
from ...metadata import SbomComponent
from ...services.supplychain import subject_scope
from ..v1.common import V1Handler, read_action
from .base import UIHandler, link

SEARCH_LIMIT = 500
EXAMPLE_POLICY = """{
  "signatures": [{"sigstore": {
    "issuer": "https://token.actions.githubusercontent.com",
    "identity_regex": "^https://github.com/example/.*"}}],
  "sbom": true
}"""


def subject_link(subject_ref: str) -> str | None:
    """The UI page of a subject as evidence names it (``bucket/key``, ``repo@digest``)."""
    action, resource = read_action(subject_ref)
    if action == "s3:GetObject":
        bucket, _, key = resource.partition("/")
        return link(f"/ui/buckets/{bucket}/object", key=key)
    if action == "oci:pull":
        name, _, digest = subject_ref.rpartition("@")
        return link("/ui/repositories/manifest", name=name, ref=digest)
    return None


class SearchHandler(UIHandler):
    """``/ui/search?purl=|name=``: every subject the visitor may read whose SBOM lists the
    component."""

    readable_components = V1Handler.readable_components

    async def get(self) -> None:
        purl = self.get_query_argument("purl", "").strip()
        name = self.get_query_argument("name", "").strip()
        results: list[SbomComponent] | None = None
        if purl or name:
            await self.authorize("supplychain:read", "")
            found = await self.ctx.supplychain.search(purl or None, name or None, SEARCH_LIMIT)
            results = await self.readable_components(found)
        self.page(
            "search.html", purl=purl, name=name, results=results, subject_link=subject_link,
            limit=SEARCH_LIMIT,
        )  # fmt: skip


def form_subject(get: Any) -> dict[str, str]:
    """The subject of the verification form: an object, an image or a bare digest."""
    kind = get("kind", "object")
    if kind == "object":
        return {"bucket": get("bucket", "").strip(), "key": get("key", "")}
    if kind == "image":
        return {"repository": get("repository", "").strip(), "digest": get("digest", "").strip()}
    return {"digest": get("digest", "").strip()}


class VerifyHandler(UIHandler):
    """``/ui/verify``: paste a policy, name a subject, see each rule pass or fail and why (as
    ``POST /v1/verify`` answers)."""

    async def gates(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The verification gates the visitor may read: (scope label, ``bucket:<name>`` or
        ``repo:<pattern>``, gate)."""
        out = []
        buckets = await self.ctx.authorizer.visible_buckets(
            self.principal, sorted(await self.ctx.artifacts.list_buckets(), key=lambda b: b.name)
        )
        for b in buckets:
            gate = b.settings.get("verification")
            if gate and await self.allowed("supplychain:read", b.name):
                out.append((f"bucket {b.name}", f"bucket:{b.name}", gate))
        for pattern, gate in sorted((await self.ctx.supplychain.repo_gates()).items()):
            if await self.allowed("supplychain:read", f"repo:{pattern}"):
                out.append((f"repositories {pattern}", f"repo:{pattern}", gate))
        return out

    async def get(self) -> None:
        subject = form_subject(self.get_query_argument)
        gates = await self.gates()
        chosen = self.get_query_argument("gate", "")
        policy = EXAMPLE_POLICY
        for _, scope, gate in gates:
            if scope == chosen:
                policy = json.dumps(gate["policy"], indent=2)
        self.page(
            "verify.html", kind=self.get_query_argument("kind", "object"), subject=subject,
            policy=policy, result=None, error=None, gates=gates,
        )  # fmt: skip

    async def post(self) -> None:
        kind = self.get_body_argument("kind", "object")
        subject = form_subject(self.get_body_argument)
        policy_text = self.get_body_argument("policy", "")
        try:
            policy = json.loads(policy_text)
        except ValueError as exc:
            self.page(
                "verify.html", 400, kind=kind, subject=subject, policy=policy_text, result=None,
                error=f"The policy is not valid JSON: {exc}", gates=[],
            )  # fmt: skip
            return
        try:
            digest, ref, resource = await self.authorized_subject(subject, "supplychain:verify")
            verified, rules = await self.ctx.supplychain.verify_request(
                digest, ref, policy, subject_scope(subject)
            )
        except StoreError as exc:
            if exc.status in (401, 403) or exc.status >= 500:
                raise
            self.page(
                "verify.html", exc.status, kind=kind, subject=subject, policy=policy_text,
                result=None, error=f"{exc.code}: {exc.message}", gates=[],
            )  # fmt: skip
            return
        self.audit(
            "supplychain:verify", resource, True, "passed" if verified else "failed",
            subject_digest=digest,
        )  # fmt: skip
        self.page(
            "verify.html", kind=kind, subject=subject, policy=policy_text, error=None, gates=[],
            result={"verified": verified, "subject": ref, "digest": digest, "rules": rules},
        )  # fmt: skip
