"""Abuse resistance for failed authentications (issue 19; docs/user-guide.md#failed-logins).

A credential id is public in practice (a presigned S3 URL carries its access key id, a ``/v1``
presigned URL its principal), so failures against an identity must never lock its owner out.
The model:

* **per (identity, source)**: after ``auth.lockout.attempts`` failures within the window from
  one source against one identity, that source's further attempts with that identity are
  refused (429, ``Retry-After``) until enough of its failures have aged out of the window;
* **per source**: after ``addressAttempts`` failures from one source (any identities), its
  attempts with any credentials are refused the same way;
* **per identity, every source**: after ``identityAttempts`` failures within the window,
  every attempt with that identity is *delayed* by ``identityDelay`` before its secret is
  checked, never refused: the owner, from a source that has not guessed, still gets in.

A source is the client's address (an IPv6 client's /64: one host owns a whole /64); behind a
trusted proxy the address ``X-Forwarded-For`` names (``http.trustedProxies``). Every way a
secret is presented counts: an ``Authorization`` header of any scheme, SigV4 and SigV2
presigned query parameters, a ``/v1`` presigned URL's signature. The counters live in the
metadata store, so every worker and replica sees the same counts; each process caches what it
read for :data:`CACHE_S` and re-reads a key after recording a failure under it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..config import LockoutConfig
from ..metadata import MetadataStore

# Slots per window: counts age out of the window a tenth of it at a time.
SLOTS_PER_WINDOW = 10
# How long a process trusts counts it read from the store (seconds).
CACHE_S = 1.0
CACHE_KEYS = 10_000
# How often a process deletes expired counters (seconds).
PURGE_EVERY_S = 60.0
_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_TOKEN = re.compile(r"zat_([0-9a-f]{16})_")
# Query parameters that carry a secret (a signature) or name whose it is.
QUERY_CREDENTIALS = (
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Algorithm",
    "AWSAccessKeyId",
    "Signature",
    "zas-signature",
)


def _token_identity(secret: str) -> str | None:
    match = _TOKEN.match(secret.strip())
    return f"token:{match.group(1)}" if match else None


def header_identity(authorization: str) -> str:
    """Who an ``Authorization`` header claims to be, before it is checked: the Basic user
    name (the token id when the password is an API token), the SigV4/SigV2 access key id, the
    API token id of a Bearer token; "" when it names nobody (a JWT, an unknown scheme)."""
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return _token_identity(password) or f"name:{user}"
    if scheme == "aws4-hmac-sha256":
        match = _SIGV4_CREDENTIAL.search(value)
        return f"name:{match.group(1)}" if match else ""
    if scheme == "aws":
        return "name:" + value.rpartition(":")[0].strip()
    if scheme == "bearer":
        return _token_identity(value) or ""
    return ""


def query_identity(query: Mapping[str, Sequence[str]]) -> str | None:
    """Who a request's query credentials claim to be ("" when they name nobody); None when
    the query carries none."""
    if not any(query.get(name) for name in QUERY_CREDENTIALS):
        return None
    if query.get("X-Amz-Credential"):
        return "name:" + query["X-Amz-Credential"][0].split("/", 1)[0]
    if query.get("AWSAccessKeyId"):
        return "name:" + query["AWSAccessKeyId"][0]
    if query.get("zas-principal"):
        return "presign:" + query["zas-principal"][0]
    return ""


@dataclass(frozen=True)
class Presented:
    """The credentials a request presents: in its ``Authorization`` header, in its query, or
    both (which is refused: one request, one credential)."""

    header: str | None  # the claimed identity, None without an Authorization header
    query: str | None

    @classmethod
    def of(cls, headers: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> Presented:
        authorization = headers.get("Authorization")
        return cls(
            None if authorization is None else header_identity(authorization),
            query_identity(query),
        )

    @property
    def any(self) -> bool:
        return self.header is not None or self.query is not None

    @property
    def both(self) -> bool:
        return self.header is not None and self.query is not None

    @property
    def identities(self) -> tuple[str, ...]:
        return tuple(i for i in dict.fromkeys((self.header, self.query)) if i)


def source_of(address: str) -> str:
    """The throttling source of a client address: the address; an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Verdict:
    retry_after: int = 0  # > 0: refuse (429) and say when to come back
    delay: float = 0.0  # > 0: wait this long before checking the secret


def _stored(key: str) -> str:
    """The key as stored: a fixed-size digest (no user name or address in the database, and
    no unbounded key from a hostile header)."""
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:40]


class FailureLimiter:
    def __init__(
        self,
        store: MetadataStore,
        config: LockoutConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.config = config
        self._clock = clock
        self._slot_s = max(config.window / SLOTS_PER_WINDOW, 0.001)
        self._cache: OrderedDict[str, tuple[float, dict[int, int]]] = OrderedDict()
        self._purged_at = 0.0

    def _keys(self, presented: Presented, source: str) -> dict[str, tuple[str, int]]:
        """Rate-limit keys (as stored) → (kind, limit): kind "refuse" or "delay"."""
        cfg = self.config
        keys = {_stored(f"src:{source}"): ("refuse", cfg.addressAttempts)}
        for identity in presented.identities:
            keys[_stored(f"pair:{identity}\0{source}")] = ("refuse", cfg.attempts)
            keys[_stored(f"id:{identity}")] = ("delay", cfg.identityAttempts)
        return keys

    def _slot(self, now: float) -> int:
        return math.floor(now / self._slot_s)

    async def _counts(self, keys: Sequence[str], now: float) -> dict[str, dict[int, int]]:
        fresh: dict[str, dict[int, int]] = {}
        stale: list[str] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < CACHE_S:
                fresh[key] = cached[1]
            else:
                stale.append(key)
        if stale:
            since = self._slot(now) - SLOTS_PER_WINDOW + 1
            read = await self._store.auth_failures(stale, since)
            for key in stale:
                counts = read.get(key, {})
                fresh[key] = counts
                self._cache[key] = (now, counts)
                self._cache.move_to_end(key)
            while len(self._cache) > CACHE_KEYS:
                self._cache.popitem(last=False)
        return fresh

    def _wait(self, counts: dict[int, int], limit: int, now: float) -> float:
        """Seconds until fewer than ``limit`` failures are left in the window (0: now). A
        slot's failures leave the window ``window`` after the slot began."""
        if limit <= 0:
            return 0.0
        first = self._slot(now) - SLOTS_PER_WINDOW + 1
        slots = sorted((s, n) for s, n in counts.items() if s >= first)
        total = sum(n for _, n in slots)
        for slot, n in slots:
            if total < limit:
                break
            total -= n
            if total < limit:
                return max((slot + SLOTS_PER_WINDOW) * self._slot_s - now, 0.001)
        return 0.0

    async def check(self, presented: Presented, address: str) -> Verdict:
        """What to do with an attempt before its credentials are checked."""
        now = self._clock()
        keys = self._keys(presented, source_of(address))
        counts = await self._counts(list(keys), now)
        refuse = 0.0
        delay = 0.0
        for key, (kind, limit) in keys.items():
            wait = self._wait(counts.get(key, {}), limit, now)
            if wait <= 0:
                continue
            if kind == "refuse":
                refuse = max(refuse, wait)
            else:
                delay = self.config.identityDelay
        return Verdict(math.ceil(refuse) if refuse > 0 else 0, delay)

    async def failed(self, presented: Presented, address: str) -> None:
        """Count one failed attempt under every key of the request."""
        now = self._clock()
        keys = list(self._keys(presented, source_of(address)))
        slot = self._slot(now)
        expires_at = (slot + SLOTS_PER_WINDOW + 1) * self._slot_s
        await self._store.add_auth_failure(keys, slot, expires_at)
        for key in keys:  # read again on the next attempt: this process counts exactly
            self._cache.pop(key, None)
        if now - self._purged_at >= PURGE_EVERY_S:
            self._purged_at = now
            await self._store.expire_auth_failures(now)
