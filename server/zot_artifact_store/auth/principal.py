"""Who is making a request (DESIGN.md §5)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    # "root", "anonymous", "open" (auth disabled); later "oidc", "token", "s3key", "workload".
    source: str = "anonymous"
    # When set, the principal may do exactly these "action resource" pairs and nothing else
    # (a registry token's grants), whatever its roles.
    scopes: frozenset[str] | None = None
    # Statements attached to the credential itself (compiled auth.policy.Statement objects).
    statements: tuple[Any, ...] = ()
    # A CI workload (auth.workload): the platform token's verified claims the store vouches
    # for in provenance (repository, workflow, run, namespace …), as sorted (name, value) pairs.
    claims: tuple[tuple[str, str], ...] = ()
    # The session token's id (jti) for a workload session: what it wrote is bound to it.
    session: str = ""
    # A presigned PUT URL bound to content (auth/presign.py): (sha256 hex, size) that the
    # upload through it must have.
    bound_content: tuple[str, int] | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.source == "anonymous"

    @property
    def workload_claims(self) -> dict[str, str]:
        return dict(self.claims)


ANONYMOUS = Principal(id="anonymous", name="anonymous", source="anonymous")
# Who the request being served authenticated as (set by the API layer once it knows): the
# services stamp what it writes with it (ObjectRecord.writer).
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "current_principal", default=None
)
# Everyone is this principal when authentication is off (no root credentials configured).
OPEN_ACCESS = Principal(
    id="anonymous",
    name="anonymous (authentication disabled)",
    roles=frozenset({"admin"}),
    source="open",
)


def root_principal(user: str) -> Principal:
    return Principal(id=f"root:{user}", name=user, roles=frozenset({"admin"}), source="root")


@dataclass(frozen=True)
class RequestContext:
    """What services need to know about the caller; built by the API layer per request."""

    principal: Principal
    request_id: str
    remote_ip: str = ""
