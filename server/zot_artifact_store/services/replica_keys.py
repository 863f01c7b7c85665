"""Replicas on one metadata store must share their secret keys (DESIGN.md: stateless replicas).

A replica that started with a key of its own would not fail at once: presigned URLs and
registry tokens issued by one replica would be refused by the others, and S3 secret keys sealed
by one (``SecretBox``) could not be opened by them — intermittently, by whichever replica a
load balancer picked. So at start-up each serving process claims, in the shared metadata store,
a lease per key whose holder is the key's *fingerprint* (a keyed hash: the key never leaves the
process, and 32 random bytes cannot be recovered from it). A claim succeeds when the lease is
free or held by the same fingerprint; otherwise another live replica uses a different key and
this one refuses to start, naming the key. Every process renews its claims, so they lapse
LEASE_TTL after the last replica with those keys stopped: rotating a key is stopping every
replica (a Recreate rollout), waiting that long, and starting them with the new key.

Not checked: the supply-chain signing key. Each replica's public key becomes a trusted key in
the shared store (``enable_signing``), so signatures made by any replica verify everywhere;
per-replica signing keys are valid, only less tidy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from ..metadata import MetadataStore

log = logging.getLogger(__name__)

LEASE_PREFIX = "replica-key:"
LEASE_TTL = 90.0  # a claim outlives its last holder by this long
RENEW_EVERY = 30.0


def fingerprint(name: str, key: bytes) -> str:
    """A hash naming ``key`` without revealing it (HMAC under the key, over its role)."""
    label = f"zas replica key fingerprint: {name}".encode()
    return hmac.new(key, label, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class SharedKey:
    """A key every replica must share: its role, where it was read (for the error) and the
    bytes."""

    name: str  # e.g. "secrets" — the lease's name
    setting: str  # what the operator sets, e.g. "auth.secretsKeyFile"
    source: str  # the file it came from
    used_for: str  # what breaks across replicas when it differs
    key: bytes


class KeyMismatchError(RuntimeError):
    """Another live replica on this metadata store uses a different key."""


class ReplicaKeys:
    """Claims (and keeps claiming) the fingerprints of this process's shared keys."""

    def __init__(self, metadata: MetadataStore, keys: list[SharedKey]) -> None:
        self.metadata = metadata
        self.keys = keys
        self._task: asyncio.Task[None] | None = None

    async def claim(self) -> None:
        """Claim every key's fingerprint; KeyMismatchError naming the first that differs."""
        now = time.time()
        for k in self.keys:
            fp = fingerprint(k.name, k.key)
            if not await self.metadata.acquire_lease(LEASE_PREFIX + k.name, fp, now, LEASE_TTL):
                raise KeyMismatchError(
                    f"{k.setting} ({k.source}, fingerprint {fp[:16]}) differs from the key "
                    f"the other replicas on this metadata store use: {k.used_for} would fail "
                    "between replicas. Give every replica the same key file (one Secret "
                    "mounted everywhere); to rotate it, stop every replica and start them "
                    f"with the new key once {int(LEASE_TTL)} s have passed."
                )

    def start(self) -> None:
        self._task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                await self.claim()
            except KeyMismatchError as exc:  # only if our claim lapsed and another took it
                log.error("replica keys: %s", exc)
            except Exception:  # the metadata store is down: readiness says so; try again
                log.warning("replica keys: cannot renew the claim", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
