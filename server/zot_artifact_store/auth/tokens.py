"""API tokens for robots (DESIGN.md §5): created once and shown once, stored as a hash,
scoped to roles, expiring, revocable at once.

A token reads ``zat_<id>_<secret>``: the id finds the record, the secret's sha256 is compared
in constant time. Sent as ``Authorization: Bearer zat_…``, or as the password of HTTP Basic
(any user name), which is how ``docker login``, skopeo and oras present it to ``/v2/token``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from ..config import BUILTIN_ROLES
from ..errors import StoreError
from ..metadata import ApiToken, MetadataStore
from ..services.notify import NULL_NOTIFIER, Notifier
from ..timefmt import iso_time
from .authn import AuthRequest
from .policy import parse_statements
from .principal import Principal

log = logging.getLogger(__name__)

PREFIX = "zat_"
TOKEN_RE = re.compile(r"zat_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
ROLES = BUILTIN_ROLES
DEFAULT_EXPIRY_S = 30 * 86400.0
MAX_EXPIRY_S = 366 * 86400.0
# Record a token's last use at most this often (one metadata write, not one per request).
LAST_USED_RESOLUTION_S = 60.0


def check_new_credential(
    creator: Principal,
    name: str,
    roles: list[str],
    expires_in: float | None,
    known_roles: Collection[str] = ROLES,
) -> tuple[list[str], float]:
    """Validate a new token's or access key's name, roles and lifetime; (roles, expires_at).
    A credential never carries roles its creator lacks."""
    if not name or len(name) > 128 or not name.isprintable():
        raise StoreError("InvalidArgument", "name must be 1-128 printable characters")
    if not roles or any(r not in known_roles for r in roles):
        raise StoreError(
            "InvalidArgument", f"roles must be a non-empty subset of {sorted(known_roles)}"
        )
    if "admin" not in creator.roles and not set(roles) <= creator.roles:
        raise StoreError("AccessDenied", "a credential cannot have roles its creator lacks")
    expiry = DEFAULT_EXPIRY_S if expires_in is None else expires_in
    if not 60 <= expiry <= MAX_EXPIRY_S:
        raise StoreError("InvalidArgument", "expires_in must be between 60 s and 366 days")
    return sorted(set(roles)), time.time() + expiry


async def revoke_record(
    ident: str,
    load: Callable[[str], Awaitable[Any]],
    save: Callable[[Any], Awaitable[None]],
    missing: StoreError,
) -> Any:
    """Mark a credential record (token, access key, trusted key) revoked now; idempotent."""
    record = await load(ident)
    if record is None:
        raise missing
    if record.revoked_at is None:
        record.revoked_at = time.time()
        await save(record)
    return record


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_json(token: ApiToken) -> dict[str, Any]:
    """A token as ``/v1`` shows it: never its secret (nor the secret's hash)."""
    return {
        "id": token.token_id,
        "name": token.name,
        "roles": token.roles,
        "owner": token.owner,
        "created_at": iso_time(token.created_at),
        "expires_at": iso_time(token.expires_at) if token.expires_at else None,
        "last_used_at": iso_time(token.last_used_at) if token.last_used_at else None,
        "revoked_at": iso_time(token.revoked_at) if token.revoked_at else None,
        "statements": token.statements,
    }


def token_principal(token: ApiToken) -> Principal:
    principal_id = f"token:{token.token_id}"
    statements = (
        tuple(parse_statements(token.statements, f"token {token.token_id}", subject=principal_id))
        if token.statements
        else ()
    )
    return Principal(
        id=principal_id,
        name=token.name,
        roles=frozenset(token.roles),
        source="token",
        statements=statements,
    )


class ApiTokens:
    def __init__(self, metadata: MetadataStore, roles: Collection[str] = ROLES) -> None:
        self.metadata = metadata
        self.roles = roles
        self._uses = UseRecorder()
        # Outbound webhooks (services/webhooks.py): token.created, token.revoked.
        self.notify: Notifier = NULL_NOTIFIER

    async def create(
        self,
        creator: Principal,
        name: str,
        roles: list[str],
        expires_in: float | None,
        statements: list[dict[str, Any]] | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token and its secret (the only time the secret exists outside the caller).
        Statements (its own IAM-style rules: Deny narrows, Allow widens) need an admin."""
        roles, expires_at = check_new_credential(creator, name, roles, expires_in, self.roles)
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        if statements:
            if "admin" not in creator.roles:
                raise StoreError("AccessDenied", "only admins attach statements to tokens")
            parse_statements(statements, f"token {token_id}", subject=f"token:{token_id}")
        token = ApiToken(
            token_id=token_id,
            name=name,
            secret_sha256=_hash(secret),
            roles=roles,
            owner=creator.id,
            created_at=time.time(),
            expires_at=expires_at,
            statements=statements or [],
        )
        await self.metadata.create_api_token(token)
        await self.notify.emit(
            "token.created",
            {"token_id": token_id},
            {"name": name, "roles": roles, "expires_at": expires_at},
        )
        return token, f"{PREFIX}{token_id}_{secret}"

    async def list(self) -> list[ApiToken]:
        return await self.metadata.list_api_tokens()

    async def revoke(self, token_id: str) -> ApiToken:
        token = await revoke_record(
            token_id,
            self.metadata.get_api_token,
            self.metadata.update_api_token,
            StoreError("NoSuchToken", f"no API token {token_id!r}"),
        )
        await self.notify.emit("token.revoked", {"token_id": token_id}, {"name": token.name})
        return token

    async def usable(self, token_id: str) -> bool:
        """Whether the token exists, is not revoked and has not expired."""
        token = await self.metadata.get_api_token(token_id)
        if token is None or token.revoked_at is not None:
            return False
        return token.expires_at is None or time.time() < token.expires_at

    async def verify(self, presented: str) -> Principal | None:
        """The principal of a presented token; None when it is not an API token at all."""
        match = TOKEN_RE.fullmatch(presented)
        if match is None:
            if presented.startswith(PREFIX):
                raise StoreError("Unauthenticated", "malformed API token")
            return None
        token = await self.metadata.get_api_token(match.group(1))
        # Compare even when the id is unknown, so timing does not tell ids apart.
        expected = token.secret_sha256 if token else "0" * 64
        if not hmac.compare_digest(expected, _hash(match.group(2))) or token is None:
            raise StoreError("Unauthenticated", "invalid API token")
        now = time.time()
        if token.revoked_at is not None:
            raise StoreError("Unauthenticated", "the API token was revoked")
        if token.expires_at is not None and now >= token.expires_at:
            raise StoreError("Unauthenticated", "the API token has expired")
        self._uses.note(token, now, self.metadata.get_api_token, self.metadata.update_api_token)
        return token_principal(token)


class UseRecorder:
    """Notes a credential's last use in the background, at most once a minute per credential:
    a failed note never fails the request that used it."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def note(
        self,
        record: Any,
        now: float,
        load: Callable[[str], Awaitable[Any]],
        save: Callable[[Any], Awaitable[None]],
    ) -> None:
        if record.last_used_at is not None and now - record.last_used_at <= LAST_USED_RESOLUTION_S:
            return
        record.last_used_at = now
        key = getattr(record, "token_id", None) or record.access_key_id

        async def touch() -> None:
            try:
                current = await load(key)
                if current is not None and current.revoked_at is None:
                    current.last_used_at = now
                    await save(current)
            except Exception:
                log.warning("could not record the last use of credential %s", key)

        task = asyncio.ensure_future(touch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class ApiTokenAuthenticator:
    """``Authorization: Bearer zat_…``."""

    def __init__(self, tokens: ApiTokens) -> None:
        self._tokens = tokens

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return await self._tokens.verify(value.strip())
