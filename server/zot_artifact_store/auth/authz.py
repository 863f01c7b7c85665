"""The one Authorizer every handler asks (DESIGN.md §5).

This foundation knows roles only: ``admin`` may do everything, ``writer`` everything but
``admin:*``, ``reader`` the read actions; anonymous callers may read public buckets. The
identity issue adds IAM-style statements with explicit Deny; the call shape stays the same.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import StoreError
from .principal import Principal

log = logging.getLogger(__name__)

# Actions a public bucket grants to anyone.
READ_ACTIONS = frozenset(
    {
        "s3:GetObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:HeadBucket",
        "s3:GetBucket",
        "oci:pull",
    }
)

ROLE_GRANTS: dict[str, tuple[str, ...]] = {
    "admin": ("*",),
    "writer": ("s3:*", "oci:*", "supplychain:*"),
    "reader": (*sorted(READ_ACTIONS), "s3:ListAllMyBuckets", "supplychain:read*"),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


# Answers whether a resource ("bucket" or "bucket/key") is publicly readable.
PublicResolver = Callable[[str], Awaitable[bool]]


async def _never_public(resource: str) -> bool:
    return False


class Authorizer:
    def __init__(self, public_resolver: PublicResolver = _never_public) -> None:
        self._is_public = public_resolver

    def set_public_resolver(self, resolver: PublicResolver) -> None:
        self._is_public = resolver

    async def decide(self, principal: Principal, action: str, resource: str) -> Decision:
        if principal.scopes is not None:
            if f"{action} {resource}" in principal.scopes:
                return Decision(True, "granted by the token's scope")
            return Decision(False, "not in the token's scope")
        for role in sorted(principal.roles):
            for pattern in ROLE_GRANTS.get(role, ()):
                if fnmatch.fnmatchcase(action, pattern):
                    return Decision(True, f"role {role} grants {pattern}")
        if action in READ_ACTIONS and resource and await self._is_public(resource):
            return Decision(True, "public resource")
        return Decision(False, "no role or public access grants this action")

    async def require(self, principal: Principal, action: str, resource: str) -> None:
        """Raise 401 (anonymous) or 403 (authenticated) unless the action is allowed."""
        decision = await self.decide(principal, action, resource)
        log.debug(
            "authorization",
            extra={
                "principal": principal.id,
                "action": action,
                "resource": resource,
                "allowed": decision.allowed,
                "reason": decision.reason,
            },
        )
        if not decision.allowed:
            raise denial(principal, action, resource)


def denial(principal: Principal, action: str, resource: str) -> StoreError:
    """The error for a refused action: 401 for anonymous callers (log in), else 403."""
    if principal.is_anonymous:
        return StoreError("Unauthenticated", "authentication required", resource=resource)
    return StoreError(
        "AccessDenied",
        f"{principal.name} may not {action} on {resource or '*'}",
        resource=resource,
    )
