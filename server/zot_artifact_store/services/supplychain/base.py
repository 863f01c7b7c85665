"""The service's shared state, and how a subject resolves to a digest."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...errors import StoreError
from ...metadata import SUPPLYCHAIN_GENERATION, MetadataStore
from ...observability.metrics import Metrics
from ...storage import BlobStore, is_digest
from ..artifacts import ArtifactService
from ..notify import Notifier
from ..registry import RegistryService
from ..signing import SigningProvider

if TYPE_CHECKING:
    from sigstore.verify import Verifier

# A subject named as an image (repository@digest), as :meth:`SupplyChainBase.resolve` names it.
_IMAGE_REF = re.compile(r"^([a-z0-9]+(?:(?:[._]|__|-+|/)[a-z0-9]+)*)@(sha256:[0-9a-f]{64})$")
# Evidence details that an evidence.attached event repeats.
EVENT_DETAILS = ("predicate_type", "signer_identity", "signer_issuer", "verified_by_key")


def subject_fields(ref: str) -> dict[str, str]:
    """An event's subject fields from how a subject was named: ``bucket``/``key`` for an
    object, ``repository`` for an image, nothing for a bare digest."""
    image = _IMAGE_REF.match(ref)
    if image:
        return {"repository": image.group(1)}
    if ref.startswith("sha256:") or "/" not in ref:
        return {}
    bucket, _, key = ref.partition("/")
    return {"bucket": bucket, "key": key}


class SupplyChainBase:
    """The state every part of the service shares (set by :class:`SupplyChainService`)."""

    metadata: MetadataStore
    blobs: BlobStore
    artifacts: ArtifactService
    registry: RegistryService
    verifier: Verifier
    signing: SigningProvider | None
    signing_key_id: str
    _signing_loader: Callable[[], Awaitable[object]] | None
    _signing_loading: asyncio.Future[object] | None
    _gates: dict[str, tuple[float, dict[str, Any] | None]]
    _results: dict[tuple[str, str, str], tuple[float, bool, str]]
    _repo_gates: tuple[float, dict[str, dict[str, Any]]] | None
    _epoch: int  # moves whenever cached verdicts are dropped (see ``supplychain_changed``)
    _generation: int
    _policy_keys: dict[int, tuple[Any, str]]
    _generation_read_at: float
    metrics: Metrics | None
    notify: Notifier

    # ---- what gate verdicts depend on ----------------------------------------------------
    async def supplychain_changed(self) -> None:
        """Evidence, a trusted key or a gate changed: this process drops its verdicts and
        gates now, every other worker and replica within ``GENERATION_POLL`` seconds (the
        shared ``supplychain`` generation they read, gates.py). Call it after the change is
        stored: a verification that read the old state and ends later is not kept."""
        self._forget_verdicts()
        await self.metadata.bump_generation(SUPPLYCHAIN_GENERATION)

    def _forget_verdicts(self) -> None:
        self._epoch += 1
        self._results.clear()
        self._policy_keys.clear()
        self._gates.clear()
        self._repo_gates = None

    # ---- the server's signing key ---------------------------------------------------------
    def defer_signing(self, load: Callable[[], Awaitable[object]]) -> None:
        """Set up server-side signing on first use: ``load`` (run once, by the first caller
        of :meth:`ensure_signing`) loads or makes the key and enables it. The embedded
        default's key is made this way, so a server that never signs never loads a crypto
        library (issue 23: idle memory)."""
        self._signing_loader = load

    async def ensure_signing(self) -> SigningProvider | None:
        """The signing provider (None: signing is not configured), set up now if that was
        deferred; concurrent first callers wait for the same set-up, a failed one is retried
        by the next caller."""
        if self._signing_loader is not None and self._signing_loading is None:
            self._signing_loading = asyncio.ensure_future(self._signing_loader())
        loading = self._signing_loading
        if loading is not None:
            try:
                await asyncio.shield(loading)
            except Exception:
                if self._signing_loading is loading:
                    self._signing_loading = None
                raise
            self._signing_loader = None
        return self.signing

    # ---- subjects -------------------------------------------------------------------------
    async def resolve(self, subject: Any) -> tuple[str, str]:
        """(digest, how it was named) of a subject: ``{"bucket", "key"}`` (the object's
        current sha256), ``{"repository", "digest"}`` or ``{"digest"}``."""
        if not isinstance(subject, dict):
            raise StoreError("InvalidArgument", "subject must be an object")
        if set(subject) == {"bucket", "key"}:
            record = await self.artifacts.head_object(str(subject["bucket"]), str(subject["key"]))
            return record.digest, f"{record.bucket}/{record.key}"
        if set(subject) == {"repository", "digest"}:
            manifest = await self.registry.resolve(
                str(subject["repository"]), str(subject["digest"])
            )
            return manifest.digest, f"{manifest.repo}@{manifest.digest}"
        if set(subject) == {"digest"} and is_digest(str(subject["digest"])):
            return str(subject["digest"]), str(subject["digest"])
        raise StoreError(
            "InvalidArgument",
            'subject must be {"bucket", "key"}, {"repository", "digest"} or {"digest"}',
        )
