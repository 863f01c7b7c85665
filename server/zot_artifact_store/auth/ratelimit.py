"""Abuse resistance: too many failed authentications from one source address, or against one
claimed identity (a user name, an access key id, an API token id), within a window, and
further attempts with credentials get 429 with ``Retry-After`` until the window has passed.

Counted per server process: behind a load balancer each replica counts its own share, which
bounds an attacker to ``limit * replicas`` guesses per window.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence

MAX_KEYS = 100_000
_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class FailureLimiter:
    """``limit`` failures per identity, ``address_limit`` per source address (keys starting
    with ``ip:``; an address is often shared, behind NAT or a CI runner pool), per window."""

    def __init__(self, limit: int, window: float, address_limit: int | None = None) -> None:
        self.limit = limit
        self.address_limit = limit * 10 if address_limit is None else address_limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            if not key:
                continue
            times = self._recent(key, now) or deque()
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def retry_after(self, *keys: str) -> int:
        """Seconds until an attempt under any of ``keys`` may be made again (0: now)."""
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            limit = self.address_limit if key.startswith("ip:") else self.limit
            if limit <= 0:
                continue
            times = self._recent(key, now) if key else None
            if times is not None and len(times) >= limit:
                wait = max(wait, times[-limit] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0


def claimed_identity(headers: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> str:
    """Who the credentials of a request claim to be, before they are checked: the Basic user
    name, the SigV4/SigV2 access key id, or the API token id; "" when there are none."""
    auth = headers.get("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            return "user:" + base64.b64decode(value.strip()).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    if scheme == "aws4-hmac-sha256":
        match = _SIGV4_CREDENTIAL.search(value)
        return f"key:{match.group(1)}" if match else ""
    if scheme == "aws":
        return "key:" + value.partition(":")[0].strip()
    if scheme == "bearer":
        token = value.strip()
        return "token:" + token[:21] if token.startswith("zat_") else ""
    for name in ("X-Amz-Credential", "AWSAccessKeyId"):
        if query.get(name):
            return "key:" + query[name][0].split("/", 1)[0]
    return ""


def has_credentials(headers: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> bool:
    return bool(
        headers.get("Authorization") or query.get("X-Amz-Credential") or query.get("AWSAccessKeyId")
    )
