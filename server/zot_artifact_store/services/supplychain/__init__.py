"""Supply-chain evidence and verification (DESIGN.md §4), by concern:

- ``service``: :class:`SupplyChainService`, put together from the parts below;
- ``base``: shared state, subjects; ``keys``: trusted keys; ``server_signing``: the store's own
  signatures and VSAs; ``evidence``: attaching signatures, attestations, SBOMs (and registry
  referrers); ``gates``: download and pull gates; ``verification``: policies and rules;
- ``formats``: parsing and checking evidence formats; ``views``: API JSON shapes.

No Tornado here.
"""

from .formats import (
    DSSE_TYPE,
    IN_TOTO_STATEMENTS,
    IN_TOTO_TYPE,
    MAX_EVIDENCE_BYTES,
    OIDC_ISSUER_V1,
    OIDC_ISSUER_V2,
    SAN_OTHERNAME,
    SIGSTORE_BUNDLE_TYPES,
    IdentityRegex,
    bundle_details,
    bundle_statement,
    certificate_identities,
    certificate_issuer,
    check_statement,
    identity_check,
    key_algorithm,
    lookup,
    parse_dsse_statement,
    public_key_bundle,
    raw_signature,
    signature_format,
    statement_subject_names,
    trusted_root,
    verify_dsse,
    verify_raw,
)
from .provenance import SLSA_PROVENANCE_V1, provenance_predicate
from .service import SupplyChainService
from .verification import (
    RuleResult,
    distinct_signers,
    request_resource,
    rule_kinds,
    subject_scope,
)
from .views import component_json, evidence_json, key_json

__all__ = [
    "DSSE_TYPE",
    "IN_TOTO_STATEMENTS",
    "IN_TOTO_TYPE",
    "MAX_EVIDENCE_BYTES",
    "OIDC_ISSUER_V1",
    "OIDC_ISSUER_V2",
    "SAN_OTHERNAME",
    "SIGSTORE_BUNDLE_TYPES",
    "SLSA_PROVENANCE_V1",
    "IdentityRegex",
    "RuleResult",
    "SupplyChainService",
    "bundle_details",
    "bundle_statement",
    "certificate_identities",
    "certificate_issuer",
    "check_statement",
    "component_json",
    "distinct_signers",
    "evidence_json",
    "identity_check",
    "key_algorithm",
    "key_json",
    "lookup",
    "parse_dsse_statement",
    "provenance_predicate",
    "public_key_bundle",
    "raw_signature",
    "request_resource",
    "rule_kinds",
    "signature_format",
    "statement_subject_names",
    "subject_scope",
    "trusted_root",
    "verify_dsse",
    "verify_raw",
]
