"""CI workload identity (DESIGN.md §5): a job proves who it is with the OIDC token its platform
gives it (GitHub Actions, a Kubernetes service account) and gets a short-lived store token,
when a configured trust rule matches the token's issuer, audience and claims. No long-lived
secret lives in CI: trusted publishing, as PyPI does it, for an artifact store.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ..config import OIDCIssuerConfig, TrustRule
from ..errors import StoreError
from .oidc import Issuer, unverified_claims
from .principal import Principal


def claim(claims: dict[str, Any], path: str) -> str | None:
    """A claim by name (``repository``), or by ``/``-separated path into nested objects
    (``kubernetes.io/namespace``, ``kubernetes.io/serviceaccount/name``)."""
    if path in claims:
        value: Any = claims[path]
    else:
        value = claims
        for part in path.split("/"):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
    return value if isinstance(value, str) else None


# The platform claims provenance is built from (services/supplychain/provenance.py): GitHub
# Actions' OIDC token, and a Kubernetes service-account token's (paths into its nested claims).
PROVENANCE_CLAIMS = (
    "iss",
    "sub",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "ref",
    "ref_type",
    "sha",
    "workflow_ref",
    "workflow_sha",
    "job_workflow_ref",
    "job_workflow_sha",
    "run_id",
    "run_attempt",
    "event_name",
    "runner_environment",
    "actor",
    "kubernetes.io/namespace",
    "kubernetes.io/serviceaccount/name",
    "kubernetes.io/serviceaccount/uid",
    "kubernetes.io/pod/name",
    "kubernetes.io/pod/uid",
)


def provenance_claims(claims: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The verified claims a principal carries for provenance (strings only, sorted)."""
    found = ((name, claim(claims, name)) for name in PROVENANCE_CLAIMS)
    return tuple(sorted((name, value) for name, value in found if value is not None))


class WorkloadExchange:
    def __init__(self, rules: list[TrustRule]) -> None:
        self.rules = rules
        self._issuers: dict[tuple[str, str], Issuer] = {}
        for rule in rules:
            key = (rule.issuer, rule.audience)
            if key not in self._issuers:
                self._issuers[key] = Issuer(
                    OIDCIssuerConfig(issuer=rule.issuer, audience=rule.audience, leeway=rule.leeway)
                )

    async def exchange(self, token: str) -> tuple[Principal, TrustRule]:
        """The principal a platform token stands for under the first matching rule. 401 when
        the token is not a valid token of a trusted issuer; 403 when no rule's claims match."""
        parsed = unverified_claims(token)
        if parsed is None:
            raise StoreError("Unauthenticated", "the subject token is not a JWT")
        header, unverified = parsed
        candidates = [r for r in self.rules if r.issuer == unverified.get("iss")]
        if not candidates:
            raise StoreError("Unauthenticated", "no trust rule names this token's issuer")
        verified: dict[tuple[str, str], dict[str, Any] | StoreError] = {}
        for rule in candidates:
            key = (rule.issuer, rule.audience)
            if key not in verified:
                try:
                    verified[key] = await self._issuers[key].verify(token, header)
                except StoreError as exc:
                    verified[key] = exc
            claims = verified[key]
            if isinstance(claims, StoreError):
                continue
            if all(
                (value := claim(claims, name)) is not None and fnmatch.fnmatchcase(value, pattern)
                for name, pattern in rule.claims.items()
            ):
                sub = str(claims.get("sub", ""))
                principal = Principal(
                    id=f"workload:{rule.name}:{sub}",
                    name=sub,
                    roles=frozenset(rule.roles),
                    source="workload",
                    claims=provenance_claims(claims),
                )
                return principal, rule
        errors = [v for v in verified.values() if isinstance(v, StoreError)]
        if len(errors) == len(verified):
            raise errors[0]
        raise StoreError("AccessDenied", "the token's claims match no trust rule")
