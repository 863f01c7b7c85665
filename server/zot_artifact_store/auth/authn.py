"""Authenticators turn request credentials into a :class:`Principal`.

Each authenticator looks at the request; it returns ``None`` when the request carries no
credential of its kind, a Principal when the credential is valid, and raises
``StoreError("Unauthenticated")`` when a credential of its kind is present but wrong.
Later issues add OIDC, API tokens, S3 keys (SigV4) and workload identity to the chain.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..config import AuthConfig
from ..errors import StoreError
from .principal import ANONYMOUS, OPEN_ACCESS, Principal, root_principal
from .sigv4 import SigV4Authenticator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthRequest:
    """The parts of an HTTP request authenticators look at (no Tornado objects)."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, Sequence[str]]
    remote_ip: str


class Authenticator(Protocol):
    async def authenticate(self, request: AuthRequest) -> Principal | None: ...


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` → (user, password); None when not Basic."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise StoreError("Unauthenticated", "malformed Basic credentials") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise StoreError("Unauthenticated", "malformed Basic credentials")
    return user, password


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# Verifies a secret presented as a Basic password (an API token); None: not such a secret.
PasswordVerifier = Callable[[str], Awaitable[Principal | None]]
# Verifies a Basic user name and password pair (an S3 access key id and its secret).
PairVerifier = Callable[[str, str], Awaitable[Principal | None]]
# An S3 access key id → (secret, principal), or None.
SecretLookup = Callable[[str], Awaitable[tuple[str, Principal] | None]]


class BasicAuthenticator:
    """HTTP Basic: the bootstrap root user (``ZAS_ROOT_USER`` / ``ZAS_ROOT_PASSWORD``); any user
    name with a bearer credential as the password (an API token, an OIDC access token: how
    registry clients log in with one); or an S3 access key id and its secret."""

    def __init__(
        self,
        user: str | None,
        password: str | None,
        tokens: Sequence[PasswordVerifier] = (),
        key_pair: PairVerifier | None = None,
    ) -> None:
        self._user = user
        self._password = password
        self._tokens = tokens
        self._key_pair = key_pair

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        creds = parse_basic(request.headers.get("Authorization"))
        if creds is None:
            return None
        user, password = creds
        for verify in self._tokens:
            principal = await verify(password)
            if principal is not None:
                return principal
        if self._key_pair is not None:
            principal = await self._key_pair(user, password)
            if principal is not None:
                return principal
        if self._user and self._password:
            # Evaluate both comparisons so timing does not reveal which one failed.
            ok_user = constant_time_equals(user, self._user)
            ok_password = constant_time_equals(password, self._password)
            if ok_user and ok_password:
                return root_principal(self._user)
        raise StoreError("Unauthenticated", "invalid username or password")


class Authentication:
    """The authenticator chain. With auth disabled everyone is :data:`OPEN_ACCESS`."""

    def __init__(
        self,
        config: AuthConfig,
        tokens: Sequence[PasswordVerifier] = (),
        access_keys: SecretLookup | None = None,
        key_pairs: PairVerifier | None = None,
        *,
        s3_region: str | None = None,
    ) -> None:
        self.enabled = config.enabled
        self.realm = config.realm
        self._root = config.root
        self._access_keys = access_keys
        self._chain: list[Authenticator] = [
            BasicAuthenticator(config.root.user, config.root.password, tokens, key_pairs)
        ]
        # S3 signatures (SigV4): the S3 API calls it directly, for the body-checking context.
        self.sigv4 = SigV4Authenticator(self.s3_secret, region=s3_region)
        self._chain.append(self.sigv4)

    async def s3_secret(self, access_key_id: str) -> tuple[str, Principal] | None:
        """The secret and principal of an S3 access key: the root user's name is its access
        key id and its password the secret (as MinIO's root user); then the stored keys."""
        user, password = self._root.user, self._root.password
        if user and password and constant_time_equals(access_key_id, user):
            return password, root_principal(user)
        if self._access_keys is not None:
            return await self._access_keys(access_key_id)
        return None

    def add(self, authenticator: Authenticator) -> None:
        self._chain.append(authenticator)

    async def authenticate(self, request: AuthRequest) -> Principal:
        if not self.enabled:
            return OPEN_ACCESS
        for authenticator in self._chain:
            principal = await authenticator.authenticate(request)
            if principal is not None:
                return principal
        header = request.headers.get("Authorization")
        if header:
            if header.split(" ", 1)[0].lower() == "bearer":
                # Every bearer authenticator declined it: it is none of their tokens, or it
                # expired, or another store (a replica with other keys) signed it.
                raise StoreError(
                    "Unauthenticated",
                    "the bearer token is not valid here: unknown, revoked, expired or signed "
                    "with another key",
                )
            raise StoreError("Unauthenticated", "unsupported Authorization scheme")
        return ANONYMOUS
