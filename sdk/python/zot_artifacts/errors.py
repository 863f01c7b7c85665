"""Typed errors: every failure the SDK reports is an :class:`ArtifactStoreError`.

The server answers ``/v1`` errors as RFC 9457 problem JSON
(``type, title, status, code, message, retryable, request_id``); the SDK parses it into an
``ArtifactStoreError`` (or the subclass for its HTTP status) so callers can branch on
``err.code`` (stable, listed in the server's docs/errors.md) or catch ``NotFoundError``.
Failures that never reached the server (refused connection, timeout, dropped stream) have
``http_status == 0`` and the codes ``ConnectionError`` / ``Timeout``; the SDK's own checks
use ``ChecksumMismatch`` (a download or upload whose sha256 differs from the server's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AccessDeniedError",
    "ArtifactStoreError",
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PreconditionFailedError",
    "error_from_response",
]


class ArtifactStoreError(Exception):
    """An error from the store or from the way to it.

    Attributes: ``code`` (stable error code), ``message``, ``http_status`` (0 when no HTTP
    answer was received), ``retryable`` (the same request may succeed later), ``type`` (the
    problem's type URI), ``request_id`` (quote it in bug reports: it is on every server log
    line), ``problem`` (the whole problem JSON, e.g. ``errors`` with expected/actual digests).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "Error",
        http_status: int = 0,
        retryable: bool = False,
        type: str = "about:blank",
        request_id: str | None = None,
        problem: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.type = type
        self.request_id = request_id
        self.problem: dict[str, Any] = dict(problem or {})
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"HTTP {self.http_status} " if self.http_status else ""
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{where}{self.code}: {self.message}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status}, "
            f"retryable={self.retryable}, message={self.message!r})"
        )


class AuthenticationError(ArtifactStoreError):
    """HTTP 401: credentials missing, wrong or expired."""


class AccessDeniedError(ArtifactStoreError):
    """HTTP 403: authenticated, but not allowed (or a presigned URL that is not valid)."""


class NotFoundError(ArtifactStoreError):
    """HTTP 404: no such bucket, object, upload, key, token or evidence."""


class ConflictError(ArtifactStoreError):
    """HTTP 409: e.g. the bucket exists already or is not empty."""


class PreconditionFailedError(ConflictError):
    """HTTP 412: a conditional write's condition does not hold (e.g. ``upload(...,
    overwrite=False)`` and the object exists); nothing was written."""


_BY_STATUS: dict[int, type[ArtifactStoreError]] = {
    401: AuthenticationError,
    403: AccessDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
}
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Answers that say the request was turned away before anything was done.
REFUSED_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import time
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ArtifactStoreError:
    """The error an HTTP answer stands for: its problem JSON when it has one, otherwise
    what the status says."""
    problem: dict[str, Any] = {}
    try:
        parsed = json.loads(body) if body else None
        if isinstance(parsed, dict):
            problem = parsed
    except ValueError:
        pass
    code = str(problem.get("code") or _default_code(status))
    message = str(
        problem.get("message")
        or problem.get("detail")
        or problem.get("title")
        or body[:200].decode("utf-8", "replace").strip()
        or f"HTTP {status}"
    )
    retryable = problem.get("retryable")
    if not isinstance(retryable, bool):
        retryable = status in RETRYABLE_STATUSES
    cls = _BY_STATUS.get(status, ArtifactStoreError)
    return cls(
        message,
        code=code,
        http_status=status,
        retryable=retryable or status in RETRYABLE_STATUSES,
        type=str(problem.get("type") or "about:blank"),
        request_id=str(problem.get("request_id") or headers.get("x-request-id") or "") or None,
        problem=problem,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


def _default_code(status: int) -> str:
    return {
        400: "InvalidArgument",
        401: "Unauthenticated",
        403: "AccessDenied",
        404: "NotFound",
        409: "Conflict",
        416: "InvalidRange",
        429: "SlowDown",
        500: "InternalError",
        502: "BadGateway",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }.get(status, f"HTTP{status}")
