"""Provenance the store vouches for: SLSA v1 provenance built by the server from what it
verified itself — the CI platform token's claims the caller exchanged at ``/v1/auth/exchange``
(GitHub Actions OIDC, a Kubernetes service-account token) — never from what the caller says.
One in-toto statement names every file the caller's identity wrote, signed with the store's
key, attached to each as an attestation (as ``actions/attest-build-provenance`` does)."""

from __future__ import annotations

import fnmatch
import json
import time
from typing import Any

from ...auth.principal import Principal
from ...errors import StoreError
from ...metadata import Evidence
from ...observability.tracing import span
from ...timefmt import iso_time
from .base import SupplyChainBase
from .formats import DSSE_TYPE, IN_TOTO_STATEMENTS, IN_TOTO_TYPE, dsse, lookup

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
# The build types, as actions/attest-build-provenance writes GitHub's; ours for the others.
GITHUB_BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1"
KUBERNETES_BUILD_TYPE = "https://zot-artifact-store.dev/buildtypes/kubernetes/v1"
UPLOAD_BUILD_TYPE = "https://zot-artifact-store.dev/buildtypes/upload/v1"
GITHUB_SERVER = "https://github.com"
MAX_SUBJECTS = 1000


def provenance_predicate(principal: Principal, server_url: str = GITHUB_SERVER) -> dict[str, Any]:
    """The SLSA v1 predicate for what ``principal`` built, from its verified claims only."""
    c = principal.workload_claims
    if c.get("repository") and c.get("workflow_ref"):  # GitHub Actions
        repository = c["repository"]
        path = c["workflow_ref"].removeprefix(f"{repository}/").split("@", 1)[0]
        dependency: dict[str, Any] = {"uri": f"git+{server_url}/{repository}@{c.get('ref', '')}"}
        if c.get("sha"):
            dependency["digest"] = {"gitCommit": c["sha"]}
        return {
            "buildDefinition": {
                "buildType": GITHUB_BUILD_TYPE,
                "externalParameters": {
                    "workflow": {
                        "ref": c.get("ref", ""),
                        "repository": f"{server_url}/{repository}",
                        "path": path,
                    }
                },
                "internalParameters": {
                    "github": {
                        k: c[k]
                        for k in (
                            "event_name",
                            "repository_id",
                            "repository_owner_id",
                            "runner_environment",
                        )
                        if k in c
                    }
                },
                "resolvedDependencies": [dependency],
            },
            "runDetails": {
                "builder": {"id": f"{server_url}/{c.get('job_workflow_ref') or c['workflow_ref']}"},
                "metadata": {
                    "invocationId": f"{server_url}/{repository}/actions/runs/"
                    f"{c.get('run_id', '')}/attempts/{c.get('run_attempt', '1')}"
                },
            },
        }
    if c.get("kubernetes.io/namespace"):  # a Kubernetes service account (Tekton)
        namespace = c["kubernetes.io/namespace"]
        account = c.get("kubernetes.io/serviceaccount/name", "")
        internal = {k.removeprefix("kubernetes.io/"): v for k, v in c.items() if "/" in k}
        metadata = (
            {"invocationId": c["kubernetes.io/pod/uid"]} if c.get("kubernetes.io/pod/uid") else {}
        )
        return {
            "buildDefinition": {
                "buildType": KUBERNETES_BUILD_TYPE,
                "externalParameters": {"namespace": namespace, "serviceAccount": account},
                "internalParameters": {"kubernetes": internal, "issuer": c.get("iss", "")},
                "resolvedDependencies": [],
            },
            "runDetails": {
                "builder": {"id": f"{c.get('iss', '')}#{namespace}/{account}"},
                "metadata": metadata,
            },
        }
    # Any other identity (an API token, a user): the store vouches only for who uploaded.
    return {
        "buildDefinition": {
            "buildType": UPLOAD_BUILD_TYPE,
            "externalParameters": {"uploader": principal.id},
            "internalParameters": {},
            "resolvedDependencies": [],
        },
        "runDetails": {"builder": {"id": f"zot-artifact-store:{principal.id}"}, "metadata": {}},
    }


# What a policy's ``source`` shorthand names, and where each is in a SLSA v1 predicate.
SOURCE_FACTS = ("repository", "ref", "commit", "workflow", "namespace", "service_account")


def provenance_facts(predicate: Any) -> dict[str, str]:
    """Who built it, read from a SLSA v1 provenance predicate (the store's own, or GitHub's
    ``actions/attest-build-provenance``, which share the GitHub build type): ``repository``
    (``owner/name``), ``ref``, ``commit``, ``workflow`` (its path), ``namespace`` and
    ``service_account`` (Kubernetes) and ``builder`` (``runDetails.builder.id``). Absent facts
    are left out, so a rule naming one fails."""
    if not isinstance(predicate, dict):
        return {}
    facts: dict[str, Any] = {}
    definition = predicate.get("buildDefinition") or {}
    external = definition.get("externalParameters") if isinstance(definition, dict) else None
    external = external if isinstance(external, dict) else {}
    workflow = external.get("workflow")
    if isinstance(workflow, dict):
        repository = workflow.get("repository")
        if isinstance(repository, str) and "://" in repository:
            # https://github.com/acme/widget -> acme/widget (any GitHub server)
            facts["repository"] = repository.split("://", 1)[1].split("/", 1)[-1]
        facts["ref"] = workflow.get("ref")
        facts["workflow"] = workflow.get("path")
        dependencies = definition.get("resolvedDependencies") or []
        if dependencies and isinstance(dependencies[0], dict):
            digest = dependencies[0].get("digest")
            if isinstance(digest, dict):
                facts["commit"] = digest.get("gitCommit")
    facts["namespace"] = external.get("namespace")
    facts["service_account"] = external.get("serviceAccount")
    facts["builder"] = lookup(predicate, "runDetails.builder.id")
    return {k: v for k, v in facts.items() if isinstance(v, str) and v}


def match_provenance(predicate: Any, source: dict[str, str], builder: str | None) -> list[str]:
    """Why ``predicate`` does not come from ``source`` (facts -> globs) and ``builder`` (a
    glob of the builder id): empty when it does. Repositories compare case-insensitively,
    as GitHub names them."""
    facts = provenance_facts(predicate)
    wanted = dict(source)
    if builder is not None:
        wanted["builder"] = builder
    failed = []
    for name, pattern in wanted.items():
        value = facts.get(name)
        if name == "repository" and value is not None:
            value, pattern = value.lower(), pattern.lower()
        if value is None or not fnmatch.fnmatchcase(value, pattern):
            failed.append(f"{name} is {value!r}, not {pattern!r}")
    return failed


class ProvenanceMixin(SupplyChainBase):
    """``POST /v1/provenance``: the store builds, signs and attaches provenance."""

    async def build_provenance(
        self, subjects: list[tuple[str, str, str]], principal: Principal
    ) -> tuple[list[Evidence], dict[str, Any]]:
        """One SLSA v1 statement over ``subjects`` ((sha256 digest, name in the statement, how
        the subject was named): the caller has checked that ``principal`` wrote each), signed by
        the store, attached to each subject. Returns the evidence (one per subject) and the
        statement."""
        if await self.ensure_signing() is None:
            raise StoreError("NotImplemented", "server-side signing is not configured")
        if not subjects or len(subjects) > MAX_SUBJECTS:
            raise StoreError("InvalidArgument", f"give 1 to {MAX_SUBJECTS} subjects")
        predicate = provenance_predicate(principal)
        predicate["runDetails"]["metadata"]["finishedOn"] = iso_time(time.time())
        statement = {
            "_type": IN_TOTO_STATEMENTS[0],
            "subject": [
                {"name": name, "digest": {"sha256": digest.split(":", 1)[1]}}
                for digest, name, _ in subjects
            ],
            "predicateType": SLSA_PROVENANCE_V1,
            "predicate": predicate,
        }
        with span("supplychain.provenance", {"zas.subjects": len(subjects)}):
            envelope = dsse.Envelope(json.dumps(statement).encode(), IN_TOTO_TYPE, {})
            envelope.sign(self.signing.signer)
            body = json.dumps(envelope.to_dict()).encode()
            details = {
                "predicate_type": SLSA_PROVENANCE_V1,
                "statement_type": IN_TOTO_STATEMENTS[0],
                "signed_by_server": self.signing_key_id,
                "verified_by_key": self.signing_key_id,
                "built_by_server": "true",
                "build_type": predicate["buildDefinition"]["buildType"],
                "builder": predicate["runDetails"]["builder"]["id"],
            }
            evidence = []
            for digest, _, ref in subjects:
                evidence.append(
                    await self._store(  # type: ignore[attr-defined]
                        digest, ref, "attestation", "dsse", body, DSSE_TYPE, principal.id, details
                    )
                )
        return evidence, statement
