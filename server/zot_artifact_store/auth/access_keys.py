"""S3 access keys for users and robots (DESIGN.md §5).

SigV4 signs with the secret itself, so the server must be able to recover it: the secret is
encrypted at rest with AES-256-GCM under a server key (a file every replica shares, created
under ``storage.rootDirectory`` on first start, or ``auth.secretsKeyFile``), and shown in
clear exactly once, when the key is created. Rotation is create-new, switch, delete-old, as on
AWS; revocation takes effect on the next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..ids import UPPER_DIGITS, random_chars
from ..lazy import lazy_module
from ..metadata import AccessKey, MetadataStore
from ..timefmt import iso_time
from .principal import Principal
from .tokens import ROLES, check_new_credential, revoke_record

if TYPE_CHECKING:
    from cryptography import exceptions as crypto_errors
    from cryptography.hazmat.primitives.ciphers import aead
else:  # cryptography loads on first use (issue 23: idle RSS)
    crypto_errors = lazy_module("cryptography.exceptions")
    aead = lazy_module("cryptography.hazmat.primitives.ciphers.aead")

KEY_FILENAME = "secrets.key"


def key_principal(key: AccessKey) -> Principal:
    return Principal(
        id=f"s3key:{key.access_key_id}",
        name=key.name,
        roles=frozenset(key.roles),
        source="s3key",
    )


def access_key_json(key: AccessKey) -> dict[str, Any]:
    """An access key as ``/v1`` lists it: never the secret."""
    return {
        "access_key_id": key.access_key_id,
        "name": key.name,
        "roles": key.roles,
        "owner": key.owner,
        "created_at": iso_time(key.created_at),
        "expires_at": iso_time(key.expires_at) if key.expires_at else None,
        "revoked_at": iso_time(key.revoked_at) if key.revoked_at else None,
    }


class SecretBox:
    """AES-256-GCM with a key derived from the server's secrets key file; the record's id is
    the associated data, so a ciphertext cannot be moved to another record. Seals S3 secret
    access keys and CI event sources' webhook secrets (the derivation label predates the
    second use and stays, so sealed secrets keep opening)."""

    def __init__(self, key_material: bytes) -> None:
        self._key = hashlib.sha256(b"zas access keys v1\0" + key_material).digest()
        self._cipher: aead.AESGCM | None = None  # made on first use (issue 23: idle RSS)

    @property
    def _aead(self) -> aead.AESGCM:
        if self._cipher is None:
            self._cipher = aead.AESGCM(self._key)
        return self._cipher

    def seal(self, plaintext: str, bound_to: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, bound_to: str) -> str:
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
        except crypto_errors.InvalidTag:
            raise StoreError(
                "InternalError",
                f"the sealed secret of {bound_to!r} cannot be decrypted: was the secrets key "
                "replaced?",
            ) from None


class AccessKeys:
    def __init__(
        self, metadata: MetadataStore, box: SecretBox, roles: Collection[str] = ROLES
    ) -> None:
        self.metadata = metadata
        self.box = box
        self.roles = roles

    async def create(
        self, creator: Principal, name: str, roles: list[str], expires_in: float | None
    ) -> tuple[AccessKey, str]:
        roles, expires_at = check_new_credential(creator, name, roles, expires_in, self.roles)
        key_id = "ZAK" + random_chars(17, UPPER_DIGITS)
        secret = random_chars(40)  # 40 characters, like AWS's (none an option to a CLI)
        key = AccessKey(
            access_key_id=key_id,
            name=name,
            secret_encrypted=self.box.seal(secret, key_id),
            roles=roles,
            owner=creator.id,
            created_at=time.time(),
            expires_at=expires_at,
        )
        await self.metadata.create_access_key(key)
        return key, secret

    async def list(self) -> list[AccessKey]:
        return await self.metadata.list_access_keys()

    async def revoke(self, access_key_id: str) -> None:
        await revoke_record(
            access_key_id,
            self.metadata.get_access_key,
            self.metadata.update_access_key,
            StoreError("NoSuchAccessKey", f"no access key {access_key_id!r}"),
        )

    async def secret(self, access_key_id: str) -> tuple[str, Principal] | None:
        """The secret and principal of a usable key; None when unknown, revoked or expired
        (to the client, all three are S3's InvalidAccessKeyId)."""
        if not access_key_id.startswith("ZAK"):
            return None
        key = await self.metadata.get_access_key(access_key_id)
        now = time.time()
        if key is None or key.revoked_at is not None:
            return None
        if key.expires_at is not None and now >= key.expires_at:
            return None
        return self.box.open(key.secret_encrypted, key.access_key_id), key_principal(key)

    async def verify_pair(self, access_key_id: str, secret: str) -> Principal | None:
        """HTTP Basic with an access key id and its secret (registry clients): the principal,
        or None when ``access_key_id`` is not an access key id at all."""
        if not access_key_id.startswith("ZAK"):
            return None
        found = await self.secret(access_key_id)
        expected = found[0] if found else secrets.token_urlsafe(30)
        if not hmac.compare_digest(expected.encode(), secret.encode()) or found is None:
            raise StoreError("Unauthenticated", "invalid access key or secret")
        return found[1]
