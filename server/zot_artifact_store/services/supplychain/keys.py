"""Trusted keys: who may sign what, revocation, and why a signer is not trusted."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import time
from typing import TYPE_CHECKING

from ...auth.tokens import revoke_record
from ...errors import StoreError
from ...lazy import lazy_module
from ...metadata import TrustedKey
from .base import SupplyChainBase
from .formats import key_algorithm, verify_dsse

if TYPE_CHECKING:
    from cryptography import exceptions as crypto_errors
    from cryptography.hazmat.primitives import serialization
else:  # cryptography loads on first use (issue 23: idle RSS)
    crypto_errors = lazy_module("cryptography.exceptions")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")


class KeysMixin(SupplyChainBase):
    """Trusted keys: who may sign what, revocation, and why a signer is not trusted."""

    # ---- trusted keys ---------------------------------------------------------------------
    async def add_key(
        self, pem: str, name: str, scope: str, expires_in: float | None, principal_id: str
    ) -> tuple[TrustedKey, bool]:
        """Register a public key (PEM); (key, created). The key id is the sha256 of its DER
        SubjectPublicKeyInfo, so registering the same key again is idempotent."""
        try:
            public = serialization.load_pem_public_key(pem.encode())
        except (ValueError, TypeError) as exc:
            raise StoreError("InvalidArgument", f"not a PEM public key: {exc}") from None
        algorithm = key_algorithm(public)
        if not name or len(name) > 128:
            raise StoreError("InvalidArgument", "name must be 1-128 characters")
        if scope and not re.fullmatch(r"(bucket|repo):[^\s]+", scope):
            raise StoreError("InvalidArgument", 'scope is "", "bucket:<name>" or "repo:<name>"')
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = hashlib.sha256(der).hexdigest()
        existing = await self.metadata.get_trusted_key(key_id)
        if existing is not None and existing.revoked_at is None:
            return existing, False
        now = time.time()
        key = TrustedKey(
            key_id=key_id,
            name=name,
            public_key_pem=public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            algorithm=algorithm,
            scope=scope,
            created_at=now,
            created_by=principal_id,
            expires_at=now + expires_in if expires_in else None,
        )
        if existing is None:
            await self.metadata.create_trusted_key(key)
        else:  # re-registering a revoked key trusts it again, as a new registration
            await self.metadata.update_trusted_key(key)
        await self.supplychain_changed()
        return key, True

    async def list_keys(self) -> list[TrustedKey]:
        await self.ensure_signing()  # the server's own key is listed from the start
        return await self.metadata.list_trusted_keys()

    async def revoke_key(self, key_id: str) -> None:
        await revoke_record(
            key_id,
            self.metadata.get_trusted_key,
            self.metadata.update_trusted_key,
            StoreError("NoSuchTrustedKey", f"no trusted key {key_id!r}"),
        )
        await self.supplychain_changed()  # a verdict that trusted it is gone everywhere

    async def _trusted_signer(
        self, envelope: bytes, scope: str | None, only: str | None = None
    ) -> str | None:
        """The id of a trusted key (``only`` that one) usable for a subject in ``scope`` that
        verifies the envelope (``scope`` None: whatever the key's scope, as a hint)."""
        for key in await self.metadata.list_trusted_keys():
            if only and key.key_id != only:
                continue
            if self._unusable(key, scope if scope is not None else key.scope):
                continue
            try:
                verify_dsse(
                    envelope, serialization.load_pem_public_key(key.public_key_pem.encode())
                )
            except crypto_errors.InvalidSignature:
                continue
            return key.key_id
        return None

    async def _why_untrusted(self, envelope: bytes, only: str | None, scope: str) -> str:
        """Why no trusted key vouches for the envelope here: none signed it, or the one that
        did may not vouch for this subject (revoked, expired, scoped elsewhere)."""
        signer = await self._trusted_signer(envelope, None, only)
        key = await self.metadata.get_trusted_key(signer) if signer else None
        why = self._unusable(key, scope) if key else ""
        return (
            f"signed by key {key.key_id[:16]}, but {why}"
            if key and why
            else ("not signed by a trusted key")
        )

    @staticmethod
    def _unusable(key: TrustedKey, scope: str) -> str:
        """Why ``key`` may not vouch for a subject in ``scope`` ("" when it may). The scope is
        where the subject being verified lives (``bucket:<name>``, ``repo:<name>``, "" for a
        bare digest), never where its evidence was attached: evidence binds to a digest, so
        a key scoped to one bucket must not vouch for the same bytes anywhere else. A scope
        may be a glob (``repo:team/*``)."""
        if key.revoked_at is not None:
            return "the key was revoked"
        if key.expires_at is not None and time.time() >= key.expires_at:
            return "the key has expired"
        if key.scope and not (scope and fnmatch.fnmatchcase(scope, key.scope)):
            where = scope or "a bare digest"
            return f"the key is trusted only for {key.scope}, not {where}"
        return ""
