"""The supply-chain service: its parts put together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...metadata import MetadataStore
from ...observability.metrics import Metrics
from ...storage import BlobStore
from ..artifacts import ArtifactService
from ..notify import NULL_NOTIFIER, Notifier
from ..registry import RegistryService
from ..signing import SigningProvider
from .base import SupplyChainBase
from .evidence import EvidenceMixin
from .formats import sigstore_verify, trusted_root
from .gates import GatesMixin
from .keys import KeysMixin
from .provenance import ProvenanceMixin
from .server_signing import SigningMixin
from .verification import VerificationMixin, subject_scope
from .views import evidence_json

if TYPE_CHECKING:
    from sigstore.verify import Verifier


class SupplyChainService(
    SigningMixin,
    ProvenanceMixin,
    GatesMixin,
    KeysMixin,
    EvidenceMixin,
    VerificationMixin,
    SupplyChainBase,
):
    """Supply-chain evidence and verification (DESIGN.md §4): evidence binds to a subject's
    digest. Its parts live beside it by concern."""

    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        artifacts: ArtifactService,
        registry: RegistryService,
        root: str = "production",
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.artifacts = artifacts
        self.registry = registry
        self.trusted_root = root
        self._verifier: Verifier | None = None
        self.signing: SigningProvider | None = None
        self.signing_key_id = ""
        self._signing_loader = None  # see defer_signing
        self._signing_loading = None
        self._gates: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._results: dict[tuple[str, str, str], tuple[float, bool, str]] = {}
        self._repo_gates: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._epoch = 0
        self._policy_keys: dict[int, tuple[Any, str]] = {}  # id(policy) -> (it, its JSON)
        self._generation = 0  # of SUPPLYCHAIN_GENERATION, as last read (gates.py)
        self._generation_read_at = float("-inf")
        self.metrics: Metrics | None = None  # set by app.py
        self.notify: Notifier = NULL_NOTIFIER  # set by app.py

    async def verify_resolved(
        self, digest: str, ref: str, subject: Any, policy: Any, vsa_for: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/verify``'s answer for a subject already authorized and resolved
        (:meth:`resolve`): verified against ``policy`` (announced as ``verification.*``),
        with a Verification Summary Attestation signed on behalf of ``vsa_for`` (a principal
        id) when asked and it passed. One subject of ``POST /v1/batch/verify`` alike."""
        verified, rules = await self.verify_request(digest, ref, policy, subject_scope(subject))
        answer: dict[str, Any] = {
            "verified": verified,
            "subject": ref,
            "subject_digest": digest,
            "rules": [r.as_json() for r in rules],
        }
        if vsa_for is not None and verified:
            vsa = await self.issue_vsa(digest, ref, policy, rules, vsa_for)
            answer["vsa"] = evidence_json(vsa)
        return answer

    @property
    def verifier(self) -> Verifier:
        """The Sigstore verifier over the ``trustedRoot`` setting (``production``, ``staging``
        or a path), built on first use: sigstore is most of a worker's memory (issue 23)."""
        if self._verifier is None:
            self._verifier = sigstore_verify.Verifier(trusted_root=trusted_root(self.trusted_root))
        return self._verifier
