"""Admin pages: API tokens (list, create — the secret shown once —, revoke) and the audit
log with filters. Every action is authorized and audited as its ``/v1`` twin is."""

from __future__ import annotations

from ...auth.audit import decode_audit_cursor, encode_audit_cursor
from ...errors import StoreError
from ...metadata import AuditQuery
from ...timefmt import parse_time
from .base import UIHandler

AUDIT_PAGE = 100


class TokensHandler(UIHandler):
    """``/ui/admin/tokens``: GET lists; POST creates (``action=create``) or revokes
    (``action=revoke``, ``id``)."""

    async def get(self) -> None:
        await self.authorize("admin:ListTokens", "admin:tokens")
        await self.show(None, None)

    async def show(self, created: tuple[str, str] | None, error: str | None) -> None:
        tokens = sorted(await self.ctx.api_tokens.list(), key=lambda t: -t.created_at)
        self.page(
            "tokens.html", 400 if error else 200, tokens=tokens, created=created, error=error,
            roles=sorted(self.ctx.authorizer.roles),
        )  # fmt: skip

    async def post(self) -> None:
        action = self.get_body_argument("action", "")
        if action == "revoke":
            token_id = self.get_body_argument("id", "")
            resource = f"admin:tokens/{token_id}"
            await self.authorize("admin:RevokeToken", resource)
            await self.ctx.api_tokens.revoke(token_id)
            self.audit("admin:RevokeToken", resource, True, "revoked")
            self.redirect("/ui/admin/tokens")
            return
        if action != "create":
            raise StoreError("InvalidArgument", "action must be create or revoke")
        await self.authorize("admin:CreateToken", "admin:tokens")
        name = self.get_body_argument("name", "").strip()
        roles = self.get_body_arguments("roles")
        raw_expiry = self.get_body_argument("expires_in_days", "").strip()
        try:
            expires_in = float(raw_expiry) * 86400 if raw_expiry else None
        except ValueError:
            await self.show(None, "Expiry must be a number of days")
            return
        try:
            token, secret = await self.ctx.api_tokens.create(
                self.principal, name, roles, expires_in
            )
        except StoreError as exc:
            if exc.status != 400:
                raise
            await self.show(None, exc.message)
            return
        self.audit("admin:CreateToken", f"admin:tokens/{token.token_id}", True, "created")
        await self.show((token.name, secret), None)


class AuditHandler(UIHandler):
    """``/ui/admin/audit?principal=&action=&resource=&decision=&since=&until=&cursor=``."""

    async def get(self) -> None:
        await self.authorize("admin:ReadAudit", "admin:audit")
        arg = self.get_query_argument
        filters = {
            name: arg(name, "").strip()
            for name in ("principal", "action", "resource", "decision", "since", "until")
        }
        if filters["decision"] not in ("", "allow", "deny"):
            raise StoreError("InvalidArgument", "decision must be allow or deny")
        times: dict[str, float | None] = {}
        for name in ("since", "until"):
            try:
                times[name] = parse_time(filters[name]) if filters[name] else None
            except ValueError:
                raise StoreError(
                    "InvalidArgument", f"{name} must be an RFC 3339 time or Unix seconds"
                ) from None
        query = AuditQuery(
            principal=filters["principal"] or None,
            action=filters["action"] or None,
            resource_prefix=filters["resource"] or None,
            decision=filters["decision"] or None,
            since=times["since"],
            until=times["until"],
        )
        await self.ctx.audit.settle()
        records, more = await self.ctx.metadata.query_audit(
            query, decode_audit_cursor(arg("cursor", None)), AUDIT_PAGE
        )
        self.page(
            "audit.html", records=records, filters=filters,
            next_cursor=encode_audit_cursor(records[-1]) if more and records else None,
        )  # fmt: skip
