"""When to try a request again, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import REFUSED_STATUSES, RETRYABLE_STATUSES, ArtifactStoreError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter (AWS's recommendation): before attempt ``n + 1``
    wait a random time in ``[0, min(max_backoff, initial_backoff * 2**n)]``, or the server's
    ``Retry-After`` when it sent one (capped at ``max_retry_after``).

    Retried, for idempotent requests (reads, PUTs of a whole object or part, deletes):
    problems the server marks ``retryable``, HTTP 429/502/503/504, and connection failures
    (refused, reset, timeout, a stream cut short). For the others (creating a token, signing,
    attaching evidence, completing an upload, an OIDC exchange) only what proves the request
    was not applied: a refused connection, 429 and 503 - a 500, 502 or 504 may come after the
    server acted, and a second try would act twice. Never retried: anything else (400, 401,
    403, 404, 409 ...). ``max_attempts`` counts the first try (1 = no retries)."""

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 10.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoffs must not be negative")

    def should_retry(self, error: ArtifactStoreError, *, idempotent: bool) -> bool:
        if error.http_status == 0:
            # Nothing reached the server (connect failed): always safe. Otherwise the request
            # may have been applied: only when repeating it changes nothing.
            return error.code == "ConnectError" or (idempotent and error.retryable)
        if idempotent:
            return error.retryable or error.http_status in RETRYABLE_STATUSES
        return error.http_status in REFUSED_STATUSES

    def delay(self, attempt: int, error: ArtifactStoreError, *, idempotent: bool) -> float | None:
        """Seconds to wait before the next try after ``attempt`` (1-based) failed with
        ``error``, or None when it must not be retried."""
        if attempt >= self.max_attempts or not self.should_retry(error, idempotent=idempotent):
            return None
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return random.uniform(0.0, ceiling)


NO_RETRY = RetryPolicy(max_attempts=1)
