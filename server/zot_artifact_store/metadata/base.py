"""The metadata store interface (DESIGN.md §4).

One async interface, two backends: sqlite (embedded default) and MongoDB (pymongo's asyncio
API). Both pass ``tests/contract/test_metadata.py``. Later issues add collections with the
same pattern: a dataclass record here, abstract methods on :class:`MetadataStore`, one
implementation per backend, and contract tests.

Ordering: keys sort by their UTF-8 bytes (S3's order) in both backends.
Times are float seconds since the epoch (UTC).
"""

from __future__ import annotations

import abc
import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

SCHEMA_VERSION = 1
# The generation that moves whenever what a verification verdict depends on changes: evidence,
# trusted keys, verification gates, manifests (OCI evidence is manifests). Issue 23.
SUPPLYCHAIN_GENERATION = "supplychain"


class MetadataError(Exception):
    """Base class for metadata-layer failures that services translate to API errors."""


class AlreadyExistsError(MetadataError):
    """A unique constraint was violated (bucket name, upload id, ...)."""


class NotFoundError(MetadataError):
    pass


@dataclass
class Bucket:
    name: str
    created_at: float
    owner: str = ""
    public_read: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    # Free-form settings later issues hang off a bucket (policy, ACL, ...), JSON-serialisable.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObjectRecord:
    bucket: str
    key: str
    digest: str  # "sha256:<hex>" of the content blob
    size: int
    etag: str  # without quotes
    content_type: str
    created_at: float
    updated_at: float
    labels: dict[str, str] = field(default_factory=dict)
    # S3 user metadata (x-amz-meta-*), lower-cased names.
    user_metadata: dict[str, str] = field(default_factory=dict)
    # Content-Encoding, Content-Disposition, Cache-Control, Content-Language, Expires, ...
    headers: dict[str, str] = field(default_factory=dict)
    # Extra checksums (crc32, sha1, ...) as the client will want them back.
    checksums: dict[str, str] = field(default_factory=dict)
    # For objects assembled from parts (S3 multipart): the part blobs in order, each
    # {"digest": ..., "size": ...}. Empty for a single-blob object.
    parts: list[dict[str, Any]] = field(default_factory=list)
    # Canned ACL public-read on the object itself (S3 x-amz-acl).
    public_read: bool = False
    # S3 object tags (PutObjectTagging): at most 10, kept by a copy, reset by an overwrite.
    tags: dict[str, str] = field(default_factory=dict)
    # Who wrote this version (principal id) and, for a CI workload session, the session's id:
    # server-built provenance covers only what the asking identity wrote (never served).
    writer: str = ""
    writer_session: str = ""
    # When the object expires (seconds since the epoch; None: never): lifecycle removes it.
    expires_at: float | None = None
    # The multipart upload this version was completed from: a CompleteMultipartUpload
    # retried after its answer was lost gets the same answer (S3 clients retry it).
    upload_id: str = ""
    # S3 versioning: this version's id; "" is the null version (every object of a bucket that
    # never had versioning, and those written while it was suspended; S3 shows "null").
    version_id: str = ""
    # An S3 delete marker: no bytes; while it is the latest version the key reads as deleted.
    delete_marker: bool = False
    # When this version stopped being the latest one (None: it is the latest).
    noncurrent_since: float | None = None
    # S3 Object Lock: retention ("GOVERNANCE" or "COMPLIANCE" until ``retain_until``) and
    # legal hold (None: never set; S3 answers GetObjectLegalHold with
    # NoSuchObjectLockConfiguration, False: set OFF); while either holds, this version cannot
    # be deleted.
    retention_mode: str = ""
    retain_until: float | None = None
    legal_hold: bool | None = None


@dataclass
class ObjectPage:
    objects: list[ObjectRecord]
    # True when more keys follow the last one returned.
    truncated: bool


@dataclass
class MultipartUpload:
    upload_id: str
    bucket: str
    key: str
    initiated_at: float
    content_type: str = "application/octet-stream"
    owner: str = ""
    user_metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # S3 multipart checksums (``x-amz-checksum-algorithm`` / ``-type`` at create): every part
    # gets one of ``checksum_algorithm``; the object's is COMPOSITE or FULL_OBJECT.
    checksum_algorithm: str | None = None
    checksum_type: str | None = None
    # S3 object tags given at create (``x-amz-tagging``), the object's at complete.
    tags: dict[str, str] = field(default_factory=dict)
    # The object's expiry given at create (``X-Expires-At`` / ``expires_in``), set at complete.
    expires_at: float | None = None
    # S3 Object Lock given at create (``x-amz-object-lock-*``), the object's at complete.
    retention_mode: str = ""
    retain_until: float | None = None
    legal_hold: bool | None = None


@dataclass
class Part:
    upload_id: str
    part_number: int
    digest: str
    size: int
    etag: str
    last_modified: float
    checksums: dict[str, str] = field(default_factory=dict)
    # When its upload began: of two uploads of one part number in flight together, the one
    # begun later is kept whichever finishes last (a client's retry replaces its first try).
    started_at: float = 0.0


@dataclass
class Manifest:
    """An OCI manifest (image, index, artifact) in a repository; its bytes are a blob."""

    repo: str
    digest: str
    media_type: str
    size: int
    created_at: float
    subject: str | None = None  # digest of the manifest this one refers to (referrers API)
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    # Every digest the manifest references (config, layers, blobs, child manifests).
    references: list[str] = field(default_factory=list)


@dataclass
class Tag:
    repo: str
    name: str
    digest: str
    updated_at: float


@dataclass
class RegistryUpload:
    """An OCI blob upload in progress: any replica can continue it (the bytes are a blob-store
    upload session). ``session_id`` is empty until the first bytes arrive in a chunk: an
    upload finished by one ``PUT`` with the whole body never has a session."""

    upload_id: str
    repo: str
    session_id: str
    created_at: float


@dataclass
class ApiToken:
    """A robot's API token. Only a hash of the secret is kept; the secret is shown once."""

    token_id: str
    name: str
    secret_sha256: str
    roles: list[str]
    owner: str  # the principal id that created it
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None
    # IAM-style statements attached to the token (its principal is implied).
    statements: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AccessKey:
    """An S3 access key. SigV4 needs the secret itself, so it is kept encrypted with the
    server's key (``secret_encrypted``), never in clear."""

    access_key_id: str
    name: str
    secret_encrypted: str
    roles: list[str]
    owner: str
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None


@dataclass
class Evidence:
    """Supply-chain evidence about a subject digest: a signature, an SBOM or an attestation.
    Its bytes, exactly as attached, are a blob (``digest``)."""

    evidence_id: str
    subject: str  # the digest it is about ("sha256:…")
    kind: str  # "signature" | "sbom" | "attestation"
    format: str  # "sigstore", "dsse", "cyclonedx", "spdx", …
    media_type: str
    digest: str
    size: int
    created_at: float
    created_by: str
    subject_ref: str = ""  # how the subject was named when attached ("bucket/key", "repo@…")
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class TrustedKey:
    """A public key trusted to sign evidence, globally or for one bucket or repository."""

    key_id: str  # sha256 of the DER SubjectPublicKeyInfo
    name: str
    public_key_pem: str
    algorithm: str  # "ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-3072", …
    scope: str  # "" (everywhere), "bucket:<name>" or "repo:<name>"
    created_at: float
    created_by: str
    expires_at: float | None = None
    revoked_at: float | None = None


@dataclass
class SbomComponent:
    """One component an SBOM lists, indexed for search."""

    evidence_id: str
    subject: str
    subject_ref: str
    name: str
    version: str = ""
    purl: str = ""  # "pkg:pypi/requests@2.31.0"
    purl_base: str = ""  # the purl without version, qualifiers or subpath
    licenses: list[str] = field(default_factory=list)


@dataclass
class ComponentQuery:
    purl: str | None = None
    purl_base: str | None = None
    name: str | None = None


@dataclass
class Policy:
    """A named global policy: an IAM-style document (kept as its JSON text)."""

    name: str
    document: str
    created_at: float
    updated_at: float


@dataclass
class VerificationGate:
    """A verification policy applied to downloads from a scope (``repo:<name or glob>``):
    ``audit`` serves and records the outcome, ``enforce`` refuses a subject that fails."""

    scope: str
    name: str
    mode: str
    document: str  # the policy's JSON text
    updated_at: float


@dataclass
class AuditRecord:
    """Who did (or tried) what to which resource, and what was decided."""

    record_id: str
    time: float
    principal: str
    source_ip: str
    action: str
    resource: str
    decision: str  # "allow" | "deny"
    reason: str = ""
    request_id: str = ""
    detail: dict[str, str] = field(default_factory=dict)


@dataclass
class AuditQuery:
    principal: str | None = None
    action: str | None = None
    resource_prefix: str | None = None
    decision: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass
class EventSource:
    """Where inbound CI events come from. Tekton signs nothing, so a Tekton source is
    authenticated by an unguessable URL token, kept as its sha256 (``token_sha256``); GitHub
    signs each delivery with an HMAC whose secret the server needs, so it is sealed with the
    server's secrets key (``secret_encrypted``)."""

    source_id: str
    name: str
    type: str  # "tekton" | "github"
    created_at: float
    created_by: str
    token_sha256: str = ""
    secret_encrypted: str = ""


@dataclass
class InboundEvent:
    """One accepted event delivery, kept so a redelivery (same ``event_id``: CloudEvents
    ``Ce-Id``, GitHub ``X-GitHub-Delivery``) is recognised and recorded once."""

    source_id: str
    event_id: str
    type: str
    received_at: float
    build_id: str = ""


@dataclass
class WebhookSubscription:
    """An outbound webhook: where events matching ``events`` (globs of event types) and
    ``filter`` go, in ``format``. ``secrets`` are sealed with the server's secrets key, newest
    first, each ``{"sealed": …, "expires_at": float | None}`` (a rotated-out secret signs
    alongside the new one until it expires)."""

    webhook_id: str
    url: str
    events: list[str]
    format: str  # "standard-webhooks" | "cloudevents"
    created_at: float
    created_by: str
    secrets: list[dict[str, Any]] = field(default_factory=list)
    filter: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    active: bool = True
    disabled_reason: str = ""
    failing_since: float | None = None


@dataclass
class WebhookDelivery:
    """One event for one subscription: the outbox row, and its delivery log (``attempts``:
    ``{"at", "status_code", "latency_ms", "error"}`` each). ``status``: ``pending`` (due at
    ``next_attempt_at``), ``delivered``, ``failed`` (retries exhausted, or the subscription
    was disabled)."""

    delivery_id: str
    webhook_id: str
    event_id: str
    event_type: str
    payload: str  # the JSON body, exactly as signed and sent
    created_at: float
    status: str = "pending"
    next_attempt_at: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BuildRecord:
    """A CI run (Tekton TaskRun/PipelineRun, GitHub workflow run) as its events told it, and
    the artifact digests it produced (``digests``: the links digest → build)."""

    build_id: str
    source_id: str
    run_key: str  # the run within its source: Tekton's metadata.uid, GitHub "<repo>#<run id>"
    kind: str  # "taskrun" | "pipelinerun" | "workflow_run"
    name: str
    status: str  # "started" | "running" | "succeeded" | "failed" | "unknown"
    created_at: float
    updated_at: float
    namespace: str = ""
    url: str = ""
    commit: str = ""
    repository: str = ""
    attempt: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    # Tekton results by name (a string, array or object each), as the last event carried them.
    results: dict[str, Any] = field(default_factory=dict)
    # What the results name: [{"uri": ..., "digest": ...}].
    artifacts: list[dict[str, str]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class BuildQuery:
    source_id: str | None = None
    run_key: str | None = None
    digest: str | None = None


class MetadataStore(abc.ABC):
    """Async metadata store. Every method is safe to call concurrently."""

    # ---- lifecycle --------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, create tables/collections and indexes, migrate to :data:`SCHEMA_VERSION`."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise when the store cannot answer (readiness probe)."""

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    # ---- buckets ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_bucket(self, bucket: Bucket) -> None:
        """Raise :class:`AlreadyExistsError` when the name is taken."""

    @abc.abstractmethod
    async def get_bucket(self, name: str) -> Bucket | None: ...

    @abc.abstractmethod
    async def list_buckets(self) -> list[Bucket]:
        """All buckets ordered by name."""

    @abc.abstractmethod
    async def update_bucket(self, bucket: Bucket) -> None:
        """Replace public_read, labels and settings; raise :class:`NotFoundError` when absent."""

    @abc.abstractmethod
    async def delete_bucket(self, name: str) -> bool:
        """Delete the bucket row only (callers empty it first); True when it existed."""

    # ---- objects ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_object(
        self, obj: ObjectRecord, *, if_absent: bool = False, require_bucket: bool = False
    ) -> ObjectRecord | None:
        """Insert or replace (bucket, key) atomically; returns the previous record, if any.

        When replacing, ``created_at`` of the stored record is kept from the previous one.
        With ``if_absent`` only insert: :class:`AlreadyExistsError` (nothing written) when
        the key exists, decided atomically (two create-only writers cannot both win). With
        ``require_bucket``, :class:`NotFoundError` (nothing written) when the bucket does not
        exist, checked in the same operation (one trip to the store instead of two).
        """

    @abc.abstractmethod
    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None: ...

    @abc.abstractmethod
    async def delete_object(self, bucket: str, key: str) -> ObjectRecord | None:
        """Delete and return the removed record (None when absent)."""

    @abc.abstractmethod
    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = 1000,
    ) -> ObjectPage:
        """Objects whose key starts with ``prefix`` and sorts strictly after ``start_after``,
        in key order, at most ``limit`` of them. Served by the (bucket, key) index."""

    @abc.abstractmethod
    async def count_objects(self, bucket: str, limit: int | None = None) -> int:
        """Number of objects in a bucket (stopping early at ``limit`` when given)."""

    @abc.abstractmethod
    async def delete_objects_in_bucket(self, bucket: str) -> int:
        """Delete every object of a bucket, and every noncurrent version and delete marker;
        returns how many current objects went."""

    # ---- object versions (S3 versioning) ------------------------------------------------------
    # The current version of a key is its row in ``objects`` (what every reader above sees);
    # noncurrent versions and delete markers are kept apart, so a bucket without versioning
    # pays nothing for it. Of a key's kept versions at most one has ``noncurrent_since`` None:
    # a delete marker that is the latest version (the key has no current object then).
    @abc.abstractmethod
    async def put_object_version(
        self, obj: ObjectRecord, *, if_absent: bool = False
    ) -> ObjectRecord | None:
        """As :meth:`put_object` for a bucket with versioning (enabled or suspended): the
        replaced current version is kept as a noncurrent one, unless it has ``obj``'s version
        id (the null version replaced by a new null version); a kept version with that id
        goes; a latest delete marker becomes noncurrent. ``obj`` may be a delete marker: it
        is kept as the latest version and the key has no current object any more. Returns the
        replaced current version, if any."""

    @abc.abstractmethod
    async def get_object_version(
        self, bucket: str, key: str, version_id: str
    ) -> ObjectRecord | None:
        """The version (current, noncurrent or delete marker) with that id ("" is null)."""

    @abc.abstractmethod
    async def delete_object_version(
        self,
        bucket: str,
        key: str,
        version_id: str,
        guard: Callable[[ObjectRecord], None] | None = None,
    ) -> ObjectRecord | None:
        """Remove one version for good; when it was the latest, the newest remaining one
        becomes the latest (a delete marker stays a marker; an object becomes the current
        object again). Returns the removed version (None when there was none).

        ``guard`` sees the version as it is when it is removed and may refuse by raising:
        then nothing changes. It is checked atomically with the removal (Object Lock: a
        retention or legal hold set meanwhile is never passed)."""

    @abc.abstractmethod
    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        after: ObjectRecord | None = None,
        limit: int = 1000,
    ) -> ObjectPage:
        """Every version of the keys starting with ``prefix``, by key (UTF-8 order) and then
        newest first: the current version, then the kept ones by ``updated_at`` and version id,
        both descending. Starts strictly after the key ``key_marker`` or, with ``after``, just
        after that version (of its key; a record this method returned). At most ``limit``."""

    @abc.abstractmethod
    async def update_object_version(self, record: ObjectRecord) -> bool:
        """Replace the stored version (current or kept) with ``record``'s (bucket, key,
        version id) in place: its tags, ACL, retention or legal hold; False when it is gone."""

    @abc.abstractmethod
    async def has_object_versions(self, bucket: str) -> bool:
        """Does the bucket keep any noncurrent version or delete marker?"""

    @abc.abstractmethod
    async def noncurrent_versions(
        self, bucket: str, prefix: str, before: float, limit: int = 1000
    ) -> list[ObjectRecord]:
        """Kept versions (delete markers too) of the bucket's keys under ``prefix`` that
        became noncurrent at or before ``before``, earliest first (lifecycle)."""

    @abc.abstractmethod
    async def object_digests(self) -> set[str]:
        """Every blob digest referenced by an object (its own and its parts'), noncurrent
        versions included, for GC."""

    # ---- multipart uploads ------------------------------------------------------------------
    @abc.abstractmethod
    async def create_multipart(self, upload: MultipartUpload) -> None: ...

    @abc.abstractmethod
    async def get_multipart(self, upload_id: str) -> MultipartUpload | None: ...

    @abc.abstractmethod
    async def list_multipart(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[MultipartUpload], bool]:
        """Uploads by (key, initiated_at, upload_id) after the markers: (page, truncated)."""

    @abc.abstractmethod
    async def delete_multipart(self, upload_id: str) -> bool:
        """Delete the upload and all its parts; True when it existed."""

    @abc.abstractmethod
    async def put_part(self, part: Part) -> Part | None:
        """Insert or replace (upload_id, part_number); returns the replaced part, if any."""

    @abc.abstractmethod
    async def list_parts(
        self, upload_id: str, after_part: int = 0, limit: int = 10000
    ) -> tuple[list[Part], bool]:
        """Parts ordered by number, strictly after ``after_part``; (page, truncated)."""

    @abc.abstractmethod
    async def part_digests(self) -> set[str]:
        """Every blob digest referenced by a part of an open upload, for GC."""

    # ---- OCI registry -----------------------------------------------------------------------
    @abc.abstractmethod
    async def put_manifest(self, manifest: Manifest) -> None:
        """Insert or replace (repo, digest)."""

    @abc.abstractmethod
    async def get_manifest(self, repo: str, digest: str) -> Manifest | None: ...

    @abc.abstractmethod
    async def delete_manifest(self, repo: str, digest: str) -> bool: ...

    @abc.abstractmethod
    async def list_referrers(self, repo: str, subject: str) -> list[Manifest]:
        """Manifests of ``repo`` whose subject is ``subject``, by digest."""

    @abc.abstractmethod
    async def list_repositories(
        self, after: str | None = None, limit: int = 1000
    ) -> tuple[list[str], bool]:
        """Repository names (those with a manifest) after ``after``, in order; (page, more)."""

    @abc.abstractmethod
    async def put_tag(self, tag: Tag) -> Tag | None:
        """Point (repo, name) at a digest; returns the tag it replaced."""

    @abc.abstractmethod
    async def get_tag(self, repo: str, name: str) -> Tag | None: ...

    @abc.abstractmethod
    async def delete_tag(self, repo: str, name: str) -> bool: ...

    @abc.abstractmethod
    async def list_tags(
        self, repo: str, after: str | None = None, limit: int = 1000
    ) -> tuple[list[Tag], bool]:
        """Tags of ``repo`` after ``after`` by name; (page, more)."""

    @abc.abstractmethod
    async def all_manifests(self) -> list[Manifest]:
        """Every manifest of every repository, for GC."""

    @abc.abstractmethod
    async def tagged_manifests(self) -> set[tuple[str, str]]:
        """(repo, digest) of every manifest some tag points at, for GC."""

    @abc.abstractmethod
    async def manifest_digests(self) -> set[str]:
        """Every manifest digest and every digest a manifest references, for GC."""

    @abc.abstractmethod
    async def link_blob(self, repo: str, digest: str) -> None:
        """Make blob ``digest`` part of ``repo`` (pushed or mounted there); idempotent."""

    @abc.abstractmethod
    async def is_blob_linked(self, repo: str, digest: str) -> bool: ...

    @abc.abstractmethod
    async def unlink_blob(self, repo: str, digest: str) -> bool:
        """Remove blob ``digest`` from ``repo``; False when it was not there."""

    @abc.abstractmethod
    async def create_registry_upload(self, upload: RegistryUpload) -> None: ...

    # ---- identity ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_api_token(self, token: ApiToken) -> None:
        """Insert; AlreadyExistsError when the id is taken."""

    @abc.abstractmethod
    async def get_api_token(self, token_id: str) -> ApiToken | None: ...

    @abc.abstractmethod
    async def update_api_token(self, token: ApiToken) -> None:
        """Replace an existing token record (revocation, last use)."""

    @abc.abstractmethod
    async def list_api_tokens(self) -> list[ApiToken]:
        """Every token, oldest first."""

    @abc.abstractmethod
    async def create_access_key(self, key: AccessKey) -> None:
        """Insert; AlreadyExistsError when the id is taken."""

    @abc.abstractmethod
    async def get_access_key(self, access_key_id: str) -> AccessKey | None: ...

    @abc.abstractmethod
    async def update_access_key(self, key: AccessKey) -> None: ...

    @abc.abstractmethod
    async def list_access_keys(self) -> list[AccessKey]:
        """Every key, oldest first."""

    # ---- supply chain -----------------------------------------------------------------------
    @abc.abstractmethod
    async def create_trusted_key(self, key: TrustedKey) -> None:
        """Insert; AlreadyExistsError when the key is already registered."""

    @abc.abstractmethod
    async def get_trusted_key(self, key_id: str) -> TrustedKey | None: ...

    @abc.abstractmethod
    async def update_trusted_key(self, key: TrustedKey) -> None: ...

    @abc.abstractmethod
    async def list_trusted_keys(self) -> list[TrustedKey]:
        """Every key, oldest first."""

    @abc.abstractmethod
    async def add_evidence(self, evidence: Evidence) -> None: ...

    @abc.abstractmethod
    async def get_evidence(self, evidence_id: str) -> Evidence | None: ...

    @abc.abstractmethod
    async def list_evidence(self, subject: str, kind: str | None = None) -> list[Evidence]:
        """Evidence about ``subject`` (of one kind), oldest first."""

    @abc.abstractmethod
    async def delete_evidence(self, evidence_id: str) -> bool: ...

    @abc.abstractmethod
    async def add_components(self, components: list[SbomComponent]) -> None: ...

    @abc.abstractmethod
    async def search_components(
        self, query: ComponentQuery, limit: int = 1000
    ) -> list[SbomComponent]:
        """Components matching every given field, by subject then name."""

    @abc.abstractmethod
    async def all_evidence(self) -> list[Evidence]:
        """Every evidence record, oldest first (``zot-artifact-store fsck``)."""

    @abc.abstractmethod
    async def evidence_digests(self) -> set[str]:
        """Every blob digest evidence is stored in, for GC."""

    @abc.abstractmethod
    async def put_policy(self, policy: Policy) -> Policy | None:
        """Insert or replace by name; returns the policy it replaced."""

    @abc.abstractmethod
    async def get_policy(self, name: str) -> Policy | None: ...

    @abc.abstractmethod
    async def list_policies(self) -> list[Policy]:
        """Every global policy, by name."""

    @abc.abstractmethod
    async def delete_policy(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def put_gate(self, gate: VerificationGate) -> None:
        """Insert or replace by scope."""

    @abc.abstractmethod
    async def list_gates(self) -> list[VerificationGate]:
        """Every verification gate, by scope."""

    @abc.abstractmethod
    async def delete_gate(self, scope: str) -> bool: ...

    # ---- inbound CI events ------------------------------------------------------------------
    @abc.abstractmethod
    async def create_event_source(self, source: EventSource) -> None:
        """Insert; AlreadyExistsError when the id is taken."""

    @abc.abstractmethod
    async def get_event_source(self, source_id: str) -> EventSource | None: ...

    @abc.abstractmethod
    async def list_event_sources(self) -> list[EventSource]:
        """Every source, oldest first."""

    @abc.abstractmethod
    async def delete_event_source(self, source_id: str) -> bool: ...

    @abc.abstractmethod
    async def add_inbound_event(self, event: InboundEvent) -> bool:
        """Record a delivery; False (and nothing written) when (source_id, event_id) is
        already recorded. Atomic: of two concurrent deliveries exactly one gets True."""

    @abc.abstractmethod
    async def delete_inbound_event(self, source_id: str, event_id: str) -> bool:
        """Forget a delivery (one that could not be processed, so a retry is accepted)."""

    @abc.abstractmethod
    async def put_build(self, build: BuildRecord) -> None:
        """Insert or update by ``build_id``. An update keeps the stored ``created_at`` and
        adds ``digests`` to the stored ones (links are never dropped by a later event)."""

    @abc.abstractmethod
    async def get_build(self, build_id: str) -> BuildRecord | None: ...

    @abc.abstractmethod
    async def link_build(self, build_id: str, digests: list[str]) -> bool:
        """Add ``digests`` to a build's links atomically; False when the build is absent."""

    @abc.abstractmethod
    async def list_builds(
        self, query: BuildQuery, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[BuildRecord], bool]:
        """Matching builds newest first (created_at, build_id), strictly before the cursor;
        (page, more). A digest query is served by an index of the links."""

    @abc.abstractmethod
    async def find_objects_by_digest(self, digest: str, limit: int = 100) -> list[ObjectRecord]:
        """Objects whose content is ``digest`` (the sha256 of the whole object), by (bucket,
        key), at most ``limit``: what a batch upload links new keys to. Indexed."""

    @abc.abstractmethod
    async def find_objects_by_labels(
        self, labels: dict[str, str], limit: int = 1000
    ) -> list[ObjectRecord]:
        """Objects carrying every one of ``labels`` (by bucket, key). Indexed for
        ``github.run_id``, the label CI links go through."""

    # ---- audit ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_audit_records(self, records: list[AuditRecord]) -> None: ...

    @abc.abstractmethod
    async def query_audit(
        self, query: AuditQuery, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[AuditRecord], bool]:
        """Matching records newest first, strictly before the (time, id) cursor; (page, more)."""

    @abc.abstractmethod
    async def expire_audit(self, older_than: float) -> int:
        """Delete records with ``time`` < ``older_than``; how many went."""

    # ---- outbound webhooks ----------------------------------------------------------------
    @abc.abstractmethod
    async def create_webhook(self, webhook: WebhookSubscription) -> None:
        """Raises AlreadyExistsError when ``webhook_id`` is taken."""

    @abc.abstractmethod
    async def get_webhook(self, webhook_id: str) -> WebhookSubscription | None: ...

    @abc.abstractmethod
    async def list_webhooks(self) -> list[WebhookSubscription]:
        """Oldest first."""

    @abc.abstractmethod
    async def update_webhook(self, webhook: WebhookSubscription) -> bool:
        """Replace by ``webhook_id``; False when it is gone."""

    @abc.abstractmethod
    async def delete_webhook(self, webhook_id: str) -> bool:
        """Delete a subscription and its deliveries."""

    @abc.abstractmethod
    async def add_deliveries(self, deliveries: list[WebhookDelivery]) -> None:
        """Write outbox rows (in one transaction where the backend has them)."""

    @abc.abstractmethod
    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None: ...

    @abc.abstractmethod
    async def update_delivery(self, delivery: WebhookDelivery) -> None: ...

    @abc.abstractmethod
    async def list_deliveries(
        self, webhook_id: str, before: tuple[float, str] | None = None, limit: int = 100
    ) -> tuple[list[WebhookDelivery], bool]:
        """A subscription's deliveries newest first (created_at, delivery_id), strictly
        before the cursor; (page, more)."""

    @abc.abstractmethod
    async def due_deliveries(self, now: float, limit: int) -> list[WebhookDelivery]:
        """Pending deliveries with ``next_attempt_at <= now``, earliest first."""

    @abc.abstractmethod
    async def expire_deliveries(self, older_than: float) -> int:
        """Delete delivered and failed rows created before ``older_than``; how many went."""

    @abc.abstractmethod
    async def get_registry_upload(self, upload_id: str) -> RegistryUpload | None: ...

    @abc.abstractmethod
    async def delete_registry_upload(self, upload_id: str) -> bool: ...

    @abc.abstractmethod
    async def set_registry_upload_session(self, upload_id: str, session_id: str) -> str | None:
        """Give an upload that has no blob-store session yet (``session_id`` empty) the
        session ``session_id``, atomically. Returns the upload's session afterwards: this one,
        or the one another replica set first; None when the upload is gone."""

    # ---- lifecycle: expiring objects, abandoned uploads, the one-runner lease ---------------
    @abc.abstractmethod
    async def expired_objects(self, now: float, limit: int = 1000) -> list[ObjectRecord]:
        """Objects whose ``expires_at`` is at or before ``now``, soonest first (indexed)."""

    @abc.abstractmethod
    async def expire_object(
        self, bucket: str, key: str, digest: str, updated_at: float
    ) -> ObjectRecord | None:
        """Delete ``bucket/key`` only if it is still the version with ``digest`` written at
        ``updated_at`` (an overwrite in the meantime is kept); the removed record or None."""

    @abc.abstractmethod
    async def stale_multipart(
        self, initiated_before: float, limit: int = 1000
    ) -> list[MultipartUpload]:
        """Open multipart uploads of every bucket started before ``initiated_before``, oldest
        first (indexed)."""

    @abc.abstractmethod
    async def stale_registry_uploads(
        self, created_before: float, limit: int = 1000
    ) -> list[RegistryUpload]:
        """OCI upload sessions started before ``created_before``, oldest first."""

    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        """Take (or renew) the lease ``name`` for ``holder`` until ``now + ttl``. True when
        ``holder`` has it: it was free, expired (its ``expires_at`` <= ``now``) or already
        ``holder``'s. Atomic: of two replicas asking at once, at most one gets True."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up if ``holder`` has it; True when it did."""

    # ---- failed authentications (issue 19) ---------------------------------------------------
    # Counters of failed authentications, shared by every worker and replica
    # (auth/ratelimit.py): per key (an opaque string) and time slot (an integer).
    @abc.abstractmethod
    async def add_auth_failure(self, keys: Sequence[str], slot: int, expires_at: float) -> None:
        """Count one failure under each of ``keys`` in ``slot`` (atomic per key: concurrent
        callers never lose a count); the counter may be deleted once ``expires_at`` passed."""

    @abc.abstractmethod
    async def auth_failures(
        self, keys: Sequence[str], since_slot: int
    ) -> dict[str, dict[int, int]]:
        """For each of ``keys`` with failures in slots >= ``since_slot``: {slot: count}."""

    @abc.abstractmethod
    async def expire_auth_failures(self, now: float) -> int:
        """Delete the counters whose ``expires_at`` < ``now``; how many went."""

    # ---- generations (issue 23) ---------------------------------------------------------------
    # Shared counters that say "something changed" to every worker and replica, so that each
    # may keep what it derived (verification gate verdicts) until the counter moves, reading
    # one number now and then instead of the data on every request.
    # ``SUPPLYCHAIN_GENERATION`` moves with evidence, trusted keys, gates and manifests.
    @abc.abstractmethod
    async def bump_generation(self, name: str) -> int:
        """Add one to the counter ``name`` (0 before its first bump); its new value. Atomic:
        concurrent bumps are all counted."""

    @abc.abstractmethod
    async def generation(self, name: str) -> int:
        """The counter ``name``'s value (0 when it was never bumped)."""


# ---- helpers shared by the backends ---------------------------------------------------------
R = TypeVar("R")


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """``dataclasses.asdict``'s copy of one value, with the common cases first (every store
    write and read converts a record: this runs on each request's path)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    if kind is list:
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return to_doc(value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return kind(_plain(v) for v in value)
    return copy.deepcopy(value)


def to_doc(record: Any) -> dict[str, Any]:
    """A record dataclass as a plain JSON/BSON-serialisable dict (nested values copied, as
    ``dataclasses.asdict`` does)."""
    return {name: _plain(getattr(record, name)) for name in _field_names(type(record))}


@functools.cache
def _field_set(cls: type) -> frozenset[str]:
    return frozenset(_field_names(cls))


def from_doc(cls: type[R], doc: Mapping[str, Any]) -> R:
    """Build ``cls`` from a stored document, ignoring fields it does not know (``_id``,
    fields added by a newer schema) so an older reader never fails on a newer row.

    A document with exactly the record's fields (what :func:`to_doc` writes: every row a
    listing decodes) fills the instance directly, without ``__init__``'s keyword handling —
    the records are plain dataclasses (no ``__post_init__``, slots or frozen fields) and the
    document's values are the caller's own, freshly decoded."""
    names = _field_set(cls)
    if doc.keys() == names and isinstance(doc, dict):
        record = object.__new__(cls)
        record.__dict__.update(doc)
        return record  # type: ignore[no-any-return]
    return cls(**{k: v for k, v in doc.items() if k in names})


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``, or None when
    there is none. Code-point order equals UTF-8 byte order, so this serves both backends'
    range queries: ``prefix <= key < upper`` exactly when ``key.startswith(prefix)``."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        nxt = last + 1
        if 0xD800 <= nxt <= 0xDFFF:  # skip surrogates: not valid in UTF-8
            nxt = 0xE000
        if nxt <= 0x10FFFF:
            return "".join(chars) + chr(nxt)
    return None


def blob_digests(obj: ObjectRecord) -> set[str]:
    """The blobs an object's bytes live in: its part blobs, or its own blob (none for a
    delete marker)."""
    if obj.delete_marker:
        return set()
    return {p["digest"] for p in obj.parts} if obj.parts else {obj.digest}


def version_order(record: ObjectRecord) -> tuple[float, str]:
    """How a key's kept versions sort, newest first when descending."""
    return (record.updated_at, record.version_id)


def merge_versions(current: list[ObjectRecord], kept: list[ObjectRecord], limit: int) -> ObjectPage:
    """One page of versions from the current objects and the kept versions, each already in
    its order (by key; the kept ones newest first) and each fetched with up to ``limit + 1``
    rows: by key, a key's current version before its kept ones."""
    out: list[ObjectRecord] = []
    i = j = 0
    while len(out) <= limit and (i < len(current) or j < len(kept)):
        if j >= len(kept) or (i < len(current) and current[i].key <= kept[j].key):
            out.append(current[i])
            i += 1
        else:
            out.append(kept[j])
            j += 1
    return ObjectPage(out[:limit], truncated=len(out) > limit)
