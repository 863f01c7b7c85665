"""Typed results of the SDK's operations (plain dataclasses; ``raw`` keeps the server's JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiToken",
    "AuditRecord",
    "BatchAction",
    "BatchError",
    "BatchKeyResult",
    "BatchKeysResult",
    "BatchObjectResult",
    "BatchResult",
    "BatchUpload",
    "BatchVerification",
    "BatchVerifyResult",
    "Bucket",
    "Evidence",
    "ObjectInfo",
    "RuleResult",
    "Subject",
    "TrustedKey",
    "Upload",
    "UploadPart",
    "UploadProgress",
    "VerificationGate",
    "VerificationResult",
    "Webhook",
    "WebhookDelivery",
]


def _s(data: dict[str, Any], name: str, default: str = "") -> str:
    value = data.get(name)
    return default if value is None else str(value)


def _opt(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else str(value)


@dataclass(frozen=True)
class Subject:
    """What supply-chain evidence is about: an object (its current sha256), an OCI image
    (repository + manifest digest) or a bare digest. Build one with :meth:`object`,
    :meth:`image` or :meth:`digest`."""

    bucket: str | None = None
    key: str | None = None
    repository: str | None = None
    digest_value: str | None = None

    @classmethod
    def object(cls, bucket: str, key: str) -> Subject:
        return cls(bucket=bucket, key=key)

    @classmethod
    def image(cls, repository: str, digest: str) -> Subject:
        return cls(repository=repository, digest_value=digest)

    @classmethod
    def digest(cls, digest: str) -> Subject:
        """``sha256:<hex>`` (a bare 64-hex sha256 is accepted and prefixed)."""
        if ":" not in digest and len(digest) == 64:
            digest = f"sha256:{digest}"
        return cls(digest_value=digest)

    def to_json(self) -> dict[str, str]:
        """The API's form: ``{"bucket","key"}``, ``{"repository","digest"}`` or ``{"digest"}``."""
        if self.bucket is not None and self.key is not None:
            return {"bucket": self.bucket, "key": self.key}
        if self.repository is not None and self.digest_value is not None:
            return {"repository": self.repository, "digest": self.digest_value}
        if self.digest_value is not None:
            return {"digest": self.digest_value}
        raise ValueError("a subject needs bucket+key, repository+digest or a digest")


@dataclass(frozen=True)
class Bucket:
    name: str
    created_at: str
    public_read: bool = False
    owner: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # Serves HTML, SVG, scripts… inline (a static site); off: they download as attachments.
    web: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bucket:
        return cls(
            name=_s(data, "name"),
            created_at=_s(data, "created_at"),
            public_read=bool(data.get("public_read", False)),
            owner=_opt(data, "owner"),
            labels=dict(data.get("labels") or {}),
            web=bool(data.get("web", False)),
        )


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata. ``sha256`` is lowercase hex; ``digest`` is ``sha256:<hex>``."""

    bucket: str
    key: str
    size: int
    sha256: str
    etag: str
    content_type: str = "application/octet-stream"
    created_at: str | None = None
    updated_at: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # When the store removes the object (RFC 3339; None: it does not expire by itself).
    expires_at: str | None = None

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectInfo:
        sha = _s(data, "sha256") or _s(data, "digest").removeprefix("sha256:")
        return cls(
            bucket=_s(data, "bucket"),
            key=_s(data, "key"),
            size=int(data.get("size") or 0),
            sha256=sha,
            etag=_s(data, "etag").strip('"'),
            content_type=_s(data, "content_type", "application/octet-stream"),
            created_at=_opt(data, "created_at"),
            updated_at=_opt(data, "updated_at"),
            labels=dict(data.get("labels") or {}),
            expires_at=_opt(data, "expires_at"),
        )


@dataclass(frozen=True)
class UploadProgress:
    """Passed to a ``progress`` callback as bytes go out (upload) or come in (download)."""

    bytes_done: int
    total: int | None
    key: str


@dataclass(frozen=True)
class UploadPart:
    part_number: int
    size: int
    etag: str
    sha256: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadPart:
        return cls(
            part_number=int(data["part_number"]),
            size=int(data.get("size") or 0),
            etag=_s(data, "etag").strip('"'),
            sha256=_s(data, "sha256").lower(),
        )


@dataclass(frozen=True)
class Upload:
    """A multipart upload in progress (``parts`` only when fetched one by one)."""

    upload_id: str
    bucket: str
    key: str
    created_at: str
    parts: list[UploadPart] = field(default_factory=list)
    content_type: str = "application/octet-stream"
    labels: dict[str, str] = field(default_factory=dict)
    expires_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Upload:
        return cls(
            upload_id=_s(data, "upload_id"),
            bucket=_s(data, "bucket"),
            key=_s(data, "key"),
            created_at=_s(data, "created_at"),
            parts=[UploadPart.from_json(p) for p in data.get("parts") or []],
            content_type=str(data.get("content_type") or "application/octet-stream"),
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
            expires_at=_opt(data, "expires_at"),
        )


@dataclass(frozen=True)
class Evidence:
    """A signature, SBOM or attestation attached to a subject digest. ``envelope`` is the
    signed DSSE envelope when the store signed it (:meth:`Client.sign`)."""

    id: str
    kind: str
    format: str
    subject_digest: str
    subject: str
    media_type: str
    digest: str
    size: int
    created_at: str
    created_by: str
    details: dict[str, Any] = field(default_factory=dict)
    envelope: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            id=_s(data, "id"),
            kind=_s(data, "kind"),
            format=_s(data, "format"),
            subject_digest=_s(data, "subject_digest"),
            subject=_s(data, "subject"),
            media_type=_s(data, "media_type"),
            digest=_s(data, "digest"),
            size=int(data.get("size") or 0),
            created_at=_s(data, "created_at"),
            created_by=_s(data, "created_by"),
            details=dict(data.get("details") or {}),
            envelope=data.get("envelope"),
        )


@dataclass(frozen=True)
class RuleResult:
    """One policy rule's outcome: ``evidence`` lists the evidence ids it looked at."""

    rule: str
    passed: bool
    reason: str
    evidence: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleResult:
        return cls(
            rule=_s(data, "rule"),
            passed=bool(data.get("passed")),
            reason=_s(data, "reason"),
            evidence=[str(e) for e in data.get("evidence") or []],
        )


@dataclass(frozen=True)
class VerificationResult:
    verified: bool
    rules: list[RuleResult]
    subject_digest: str
    subject: str = ""
    vsa: Evidence | None = None

    def __bool__(self) -> bool:
        return self.verified

    @property
    def failed_rules(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerificationResult:
        vsa = data.get("vsa")
        return cls(
            verified=bool(data.get("verified")),
            rules=[RuleResult.from_json(r) for r in data.get("rules") or []],
            subject_digest=_s(data, "subject_digest"),
            subject=_s(data, "subject"),
            vsa=Evidence.from_json(vsa) if isinstance(vsa, dict) else None,
        )


@dataclass(frozen=True)
class VerificationGate:
    """A bucket's download check, or repositories' pull check: ``mode`` is ``audit`` (log)
    or ``enforce`` (refuse)."""

    name: str
    mode: str
    policy: dict[str, Any]
    repositories: str | None = None  # the name or glob of a repository gate

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerificationGate:
        return cls(
            name=_s(data, "name"),
            mode=_s(data, "mode"),
            policy=dict(data.get("policy") or {}),
            repositories=data.get("repositories"),
        )


@dataclass(frozen=True)
class ApiToken:
    """An API token; ``secret`` (the ``zat_…`` bearer value) only when just created."""

    id: str
    name: str
    roles: list[str]
    owner: str
    created_at: str
    expires_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None
    statements: list[dict[str, Any]] = field(default_factory=list)
    secret: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApiToken:
        return cls(
            id=_s(data, "id"),
            name=_s(data, "name"),
            roles=[str(r) for r in data.get("roles") or []],
            owner=_s(data, "owner"),
            created_at=_s(data, "created_at"),
            expires_at=_opt(data, "expires_at"),
            last_used_at=_opt(data, "last_used_at"),
            revoked_at=_opt(data, "revoked_at"),
            statements=list(data.get("statements") or []),
            secret=_opt(data, "token"),
        )


@dataclass(frozen=True)
class TrustedKey:
    id: str
    name: str
    algorithm: str
    scope: str
    public_key: str
    created_at: str
    created_by: str = ""
    expires_at: str | None = None
    revoked_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrustedKey:
        return cls(
            id=_s(data, "id"),
            name=_s(data, "name"),
            algorithm=_s(data, "algorithm"),
            scope=_s(data, "scope"),
            public_key=_s(data, "public_key"),
            created_at=_s(data, "created_at"),
            created_by=_s(data, "created_by"),
            expires_at=_opt(data, "expires_at"),
            revoked_at=_opt(data, "revoked_at"),
        )


@dataclass(frozen=True)
class Webhook:
    """An outbound webhook subscription; ``secret`` (``whsec_…``, for checking the Standard
    Webhooks signatures) only when just created or rotated."""

    id: str
    url: str
    events: list[str]
    filter: dict[str, Any]
    format: str
    description: str
    active: bool
    created_at: str
    created_by: str = ""
    disabled_reason: str | None = None
    failing_since: str | None = None
    secrets: int = 1
    secret: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Webhook:
        return cls(
            id=_s(data, "id"),
            url=_s(data, "url"),
            events=[str(e) for e in data.get("events") or []],
            filter=dict(data.get("filter") or {}),
            format=_s(data, "format"),
            description=_s(data, "description"),
            active=bool(data.get("active")),
            created_at=_s(data, "created_at"),
            created_by=_s(data, "created_by"),
            disabled_reason=_opt(data, "disabled_reason"),
            failing_since=_opt(data, "failing_since"),
            secrets=int(data.get("secrets") or 0),
            secret=_opt(data, "secret"),
        )


@dataclass(frozen=True)
class WebhookDelivery:
    """One event's delivery to a webhook: ``status`` is ``pending``, ``delivered`` or
    ``failed``; ``attempts`` lists each try (time, status code, latency, error)."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    created_at: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    response_code: int | None = None
    latency_ms: float | None = None
    next_attempt_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookDelivery:
        code = data.get("response_code")
        latency = data.get("latency_ms")
        return cls(
            id=_s(data, "id"),
            webhook_id=_s(data, "webhook_id"),
            event_id=_s(data, "event_id"),
            event_type=_s(data, "event_type"),
            status=_s(data, "status"),
            created_at=_s(data, "created_at"),
            attempts=list(data.get("attempts") or []),
            response_code=None if code is None else int(code),
            latency_ms=None if latency is None else float(latency),
            next_attempt_at=_opt(data, "next_attempt_at"),
        )


AuditRecord = dict[str, Any]
"""An audit record as the server writes it (see the AuditRecord schema in openapi.json)."""


# ---- batch (POST /v1/batch, /v1/batch/delete, /v1/batch/head, /v1/batch/verify) ---------------


@dataclass(frozen=True)
class BatchError:
    """Why one item of a batch failed: the code, message and HTTP status the single call
    would have answered."""

    code: str
    message: str
    status: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchError:
        return cls(_s(data, "code"), _s(data, "message"), int(data.get("status") or 0))


@dataclass(frozen=True)
class BatchAction:
    """A presigned transfer: ``method`` to ``href`` with ``headers``, no credentials, before
    ``expires_at``. An upload href takes exactly the declared bytes."""

    href: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchAction:
        return cls(
            href=_s(data, "href"),
            method=_s(data, "method"),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            expires_at=_opt(data, "expires_at"),
        )


@dataclass(frozen=True)
class BatchObjectResult:
    """One object of :meth:`Client.batch`, in request order. ``result``: ``present``
    (nothing to do), ``linked`` (linked server-side from ``linked_from``), ``upload`` /
    ``download`` (do ``action``) or ``error``."""

    key: str | None
    result: str
    sha256: str | None = None
    size: int | None = None
    linked_from: str | None = None
    action: BatchAction | None = None
    error: BatchError | None = None

    @property
    def ok(self) -> bool:
        return self.result != "error"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchObjectResult:
        actions = data.get("actions") or {}
        action = actions.get("upload") or actions.get("download")
        error = data.get("error")
        size = data.get("size")
        return cls(
            key=_opt(data, "key"),
            result=_s(data, "result"),
            sha256=_opt(data, "sha256"),
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            linked_from=_opt(data, "linked_from"),
            action=BatchAction.from_json(action) if isinstance(action, dict) else None,
            error=BatchError.from_json(error) if isinstance(error, dict) else None,
        )


def _sum_counts(into: dict[str, int], more: dict[str, Any]) -> dict[str, int]:
    for name, n in more.items():
        into[name] = into.get(name, 0) + int(n)
    return into


@dataclass(frozen=True)
class BatchResult:
    """:meth:`Client.batch`: a result per object and how many ended each way."""

    operation: str
    bucket: str
    objects: list[BatchObjectResult]
    counts: dict[str, int]

    def having(self, result: str) -> list[BatchObjectResult]:
        """The objects whose ``result`` is ``result`` (``"upload"``, ``"error"`` …)."""
        return [o for o in self.objects if o.result == result]

    @classmethod
    def from_pages(cls, operation: str, bucket: str, pages: list[dict[str, Any]]) -> BatchResult:
        counts: dict[str, int] = {}
        objects = []
        for page in pages:
            objects += [BatchObjectResult.from_json(o) for o in page.get("objects") or []]
            _sum_counts(counts, page.get("counts") or {})
        return cls(operation, bucket, objects, counts)


@dataclass(frozen=True)
class BatchKeyResult:
    """One key of :meth:`Client.batch_delete` (``deleted``, with the ``sha256`` it held) or
    :meth:`Client.batch_head` (``found``, with ``object``), or ``error``."""

    key: Any
    result: str
    sha256: str | None = None
    object: ObjectInfo | None = None
    error: BatchError | None = None

    @property
    def ok(self) -> bool:
        return self.result != "error"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchKeyResult:
        obj, error = data.get("object"), data.get("error")
        return cls(
            key=data.get("key"),
            result=_s(data, "result"),
            sha256=_opt(data, "sha256"),
            object=ObjectInfo.from_json(obj) if isinstance(obj, dict) else None,
            error=BatchError.from_json(error) if isinstance(error, dict) else None,
        )


@dataclass(frozen=True)
class BatchKeysResult:
    bucket: str
    keys: list[BatchKeyResult]
    counts: dict[str, int]

    @classmethod
    def from_pages(cls, bucket: str, pages: list[dict[str, Any]]) -> BatchKeysResult:
        counts: dict[str, int] = {}
        keys = []
        for page in pages:
            keys += [BatchKeyResult.from_json(k) for k in page.get("keys") or []]
            _sum_counts(counts, page.get("counts") or {})
        return cls(bucket, keys, counts)


@dataclass(frozen=True)
class BatchVerifyResult:
    """One subject of :meth:`Client.batch_verify`: ``passed`` or ``failed`` with its
    ``verification`` (as :meth:`Client.verify` returns it), or ``error``."""

    subject: Any
    result: str
    verification: VerificationResult | None = None
    error: BatchError | None = None

    @property
    def verified(self) -> bool:
        return self.result == "passed"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchVerifyResult:
        error = data.get("error")
        return cls(
            subject=data.get("subject"),
            result=_s(data, "result"),
            verification=VerificationResult.from_json(data) if "verified" in data else None,
            error=BatchError.from_json(error) if isinstance(error, dict) else None,
        )


@dataclass(frozen=True)
class BatchVerification:
    """:meth:`Client.batch_verify`: true (``verified``) when every subject passed."""

    verified: bool
    subjects: list[BatchVerifyResult]
    counts: dict[str, int]

    def __bool__(self) -> bool:
        return self.verified

    @classmethod
    def from_pages(cls, pages: list[dict[str, Any]]) -> BatchVerification:
        counts: dict[str, int] = {}
        subjects = []
        for page in pages:
            subjects += [BatchVerifyResult.from_json(s) for s in page.get("subjects") or []]
            _sum_counts(counts, page.get("counts") or {})
        return cls(all(s.verified for s in subjects), subjects, counts)


@dataclass(frozen=True)
class BatchUpload:
    """:meth:`Client.upload_many`: what the store already had (``present``), what it linked
    server-side (``linked``), what was sent (``uploaded``) and what failed (``failed``, by
    key)."""

    bucket: str
    present: list[str]
    linked: list[str]
    uploaded: list[ObjectInfo]
    failed: dict[str, BatchError]

    @property
    def ok(self) -> bool:
        return not self.failed
