"""The one Authorizer every handler asks (DESIGN.md §5).

This foundation knows roles only: ``admin`` may do everything, ``writer`` everything but
``admin:*``, ``reader`` the read actions; anonymous callers may read public buckets. The
identity issue adds IAM-style statements with explicit Deny; the call shape stays the same.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import StoreError
from .policy import EvalContext, Policies, Statement, evaluate
from .principal import Principal

if TYPE_CHECKING:
    from ..metadata import Bucket

log = logging.getLogger(__name__)

# Actions a public bucket grants to anyone.
READ_ACTIONS = frozenset(
    {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetBucketLocation",
        "s3:HeadBucket",
        "s3:GetBucket",
        "oci:pull",
    }
)

# The root user can always manage policies, so a Deny that locks everybody out (as AWS's
# root account can always delete a bucket policy) is never permanent.
LOCKOUT_PROOF_ACTIONS = frozenset(
    {
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "admin:ListPolicies",
        "admin:GetPolicy",
        "admin:PutPolicy",
        "admin:DeletePolicy",
    }
)

# The built-in roles; ``auth.roles`` adds roles or redefines these.
ROLE_GRANTS: dict[str, tuple[str, ...]] = {
    "admin": ("*",),
    "writer": ("s3:*", "oci:*", "supplychain:*", "events:Read"),
    "reader": (
        *sorted(READ_ACTIONS),
        "s3:ListAllMyBuckets",
        "supplychain:read*",
        "supplychain:verify",
        "events:Read",
    ),
    # A CI system's credential that only sends build events (POST /v1/events).
    "events-publisher": ("events:Publish",),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


# Answers whether a resource ("bucket" or "bucket/key"; for an object, the version given or
# the current one) is publicly readable.
PublicResolver = Callable[[str, str | None], Awaitable[bool]]


async def _never_public(resource: str, version_id: str | None = None) -> bool:
    return False


class Authorizer:
    """Order of evaluation: an applicable Deny statement (global or bucket policy) refuses,
    whatever else; a registry token's scope then decides alone; else a role, an applicable
    Allow statement or public read allows; nothing applicable refuses."""

    def __init__(
        self,
        public_resolver: PublicResolver = _never_public,
        policies: Policies | None = None,
        roles: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._is_public = public_resolver
        self.policies = policies
        self.roles: dict[str, tuple[str, ...]] = {**ROLE_GRANTS}
        self.roles.update({name: tuple(actions) for name, actions in (roles or {}).items()})

    def set_public_resolver(self, resolver: PublicResolver) -> None:
        self._is_public = resolver

    async def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: EvalContext | None = None,
    ) -> Decision:
        allow = None
        if self.policies is not None:
            statements = await self.policies.statements_for(resource)
            if principal.statements:
                statements = [*statements, *principal.statements]
            if statements:
                context = await _with_object_tags(statements, resource, context or EvalContext())
                deny, allow = evaluate(statements, principal, action, resource, context)
                if deny is not None and not (
                    principal.source == "root" and action in LOCKOUT_PROOF_ACTIONS
                ):
                    return Decision(False, f"denied by the {deny.describe()}")
        if principal.scopes is not None:
            if f"{action} {resource}" in principal.scopes:
                return Decision(True, "granted by the token's scope")
            return Decision(False, "not in the token's scope")
        for role in sorted(principal.roles):
            for pattern in self.roles.get(role, ()):
                if fnmatch.fnmatchcase(action, pattern):
                    return Decision(True, f"role {role} grants {pattern}")
        if allow is not None:
            return Decision(True, f"allowed by the {allow.describe()}")
        version = context.version_id if context is not None else None
        if action in READ_ACTIONS and resource and await self._is_public(resource, version):
            return Decision(True, "public resource")
        return Decision(False, "no role, statement or public access grants this action")

    async def visible_buckets(
        self, principal: Principal, buckets: Sequence[Bucket]
    ) -> list[Bucket]:
        """The buckets ``principal`` may list (``s3:ListBucket``), in order: what ListBuckets
        and ``GET /v1/buckets`` show (a bucket the caller is denied must not appear)."""
        if self.policies is not None:
            self.policies.prime(buckets)  # their policies are on the records already read
        return [
            b for b in buckets if (await self.decide(principal, "s3:ListBucket", b.name)).allowed
        ]

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


async def _with_object_tags(
    statements: Sequence[Statement], resource: str, context: EvalContext
) -> EvalContext:
    """The context with the acted-on object's tags, read only when a statement's condition
    asks for them (``s3:ExistingObjectTag/<key>``) and the resource is an object."""
    if (
        context.existing_tags is None
        or context.object_tags is not None
        or "/" not in resource
        or not any(st.needs_object_tags for st in statements)
    ):
        return context
    tags = await context.existing_tags(resource)
    return dataclasses.replace(context, object_tags=tags)


def denial(principal: Principal, action: str, resource: str) -> StoreError:
    """The error for a refused action: 401 for anonymous callers (log in), else 403."""
    if principal.is_anonymous:
        return StoreError("Unauthenticated", "authentication required", resource=resource)
    return StoreError(
        "AccessDenied",
        f"{principal.name} may not {action} on {resource or '*'}",
        resource=resource,
    )
