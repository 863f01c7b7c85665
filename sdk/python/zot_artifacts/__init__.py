"""Python SDK for Zot Artifact Store: buckets, objects (parallel, resumable transfers with
sha256 checks) and supply-chain evidence over the store's ``/v1`` API.

    from zot_artifacts import Client, TokenAuth
    with Client("http://127.0.0.1:8080", auth=TokenAuth("zat_...")) as c:
        c.upload("builds", "app.tar.gz", "dist/app.tar.gz")

:class:`Client` blocks (and is thread-safe); :class:`AsyncClient` has the same methods as
coroutines. Both drive one sans-IO implementation of every operation (``_ops``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .aio import AsyncClient
from .auth import (
    Auth,
    BasicAuth,
    GitHubActionsAuth,
    OIDCClientCredentials,
    TokenAuth,
)
from .client import Client
from .errors import (
    AccessDeniedError,
    ArtifactStoreError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
)
from .models import (
    ApiToken,
    AuditRecord,
    BatchAction,
    BatchError,
    BatchKeyResult,
    BatchKeysResult,
    BatchObjectResult,
    BatchResult,
    BatchUpload,
    BatchVerification,
    BatchVerifyResult,
    Bucket,
    Evidence,
    ObjectInfo,
    RuleResult,
    Subject,
    TrustedKey,
    Upload,
    UploadPart,
    UploadProgress,
    VerificationGate,
    VerificationResult,
    Webhook,
    WebhookDelivery,
)
from .retry import RetryPolicy

__all__ = [
    "AccessDeniedError",
    "ApiToken",
    "ArtifactStoreError",
    "AsyncClient",
    "AuditRecord",
    "Auth",
    "AuthenticationError",
    "BasicAuth",
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
    "Client",
    "ConflictError",
    "Evidence",
    "GitHubActionsAuth",
    "NotFoundError",
    "OIDCClientCredentials",
    "ObjectInfo",
    "PreconditionFailedError",
    "RetryPolicy",
    "RuleResult",
    "Subject",
    "TokenAuth",
    "TrustedKey",
    "Upload",
    "UploadPart",
    "UploadProgress",
    "VerificationGate",
    "VerificationResult",
    "Webhook",
    "WebhookDelivery",
]
