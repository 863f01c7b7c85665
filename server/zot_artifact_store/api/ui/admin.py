"""Admin pages: API tokens (list, create — the secret shown once —, revoke) and the audit
log with filters. Every action is authorized and audited as its ``/v1`` twin is."""

from __future__ import annotations

import time
from typing import Any

from ...auth.audit import decode_audit_cursor, encode_audit_cursor
from ...errors import StoreError
from ...metadata import AuditQuery
from ...timefmt import parse_time
from ..v1.webhooks import ACTION, delivery_cursor, parse_delivery_cursor
from .base import UIHandler

AUDIT_PAGE = 100


class CredentialsHandler(UIHandler):
    """A page of credentials (API tokens, S3 access keys): GET lists them; POST creates one
    (``action=create``: its secret shown once, on this answer only) or revokes one
    (``action=revoke``, ``id``)."""

    title: str
    noun: str
    path: str
    resource: str  # admin:tokens, admin:access-keys
    action_noun: str  # Token, AccessKey: admin:List<noun>s, admin:Create<noun>, ...

    def store(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def ident(record: Any) -> str:
        raise NotImplementedError

    async def get(self) -> None:
        await self.authorize(f"admin:List{self.action_noun}s", self.resource)
        await self.show(None, None)

    async def show(self, created: tuple[str, str, str] | None, error: str | None) -> None:
        records = sorted(await self.store().list(), key=lambda t: -t.created_at)
        self.page(
            "credentials.html", 400 if error else 200, title=self.title, noun=self.noun,
            path=self.path, records=records, ident=self.ident, created=created, error=error,
            roles=sorted(self.ctx.authorizer.roles),
        )  # fmt: skip

    async def post(self) -> None:
        action = self.get_body_argument("action", "")
        if action == "revoke":
            ident = self.get_body_argument("id", "")
            resource = f"{self.resource}/{ident}"
            await self.authorize(f"admin:Revoke{self.action_noun}", resource)
            await self.store().revoke(ident)
            self.audit(f"admin:Revoke{self.action_noun}", resource, True, "revoked")
            self.redirect(self.path)
            return
        if action != "create":
            raise StoreError("InvalidArgument", "action must be create or revoke")
        await self.authorize(f"admin:Create{self.action_noun}", self.resource)
        name = self.get_body_argument("name", "").strip()
        roles = self.get_body_arguments("roles")
        raw_expiry = self.get_body_argument("expires_in_days", "").strip()
        try:
            expires_in = float(raw_expiry) * 86400 if raw_expiry else None
        except ValueError:
            await self.show(None, "Expiry must be a number of days")
            return
        try:
            record, secret = await self.store().create(self.principal, name, roles, expires_in)
        except StoreError as exc:
            if exc.status != 400:
                raise
            await self.show(None, exc.message)
            return
        ident = self.ident(record)
        self.audit(f"admin:Create{self.action_noun}", f"{self.resource}/{ident}", True, "created")
        await self.show((record.name, ident, secret), None)


class TokensHandler(CredentialsHandler):
    """``/ui/admin/tokens``: API tokens for robots."""

    title, noun, path = "API tokens", "token", "/ui/admin/tokens"
    resource, action_noun = "admin:tokens", "Token"

    def store(self) -> Any:
        return self.ctx.api_tokens

    @staticmethod
    def ident(record: Any) -> str:
        return str(record.token_id)


class AccessKeysHandler(CredentialsHandler):
    """``/ui/admin/access-keys``: S3 access keys (the secret access key shown once)."""

    title, noun, path = "S3 access keys", "access key", "/ui/admin/access-keys"
    resource, action_noun = "admin:access-keys", "AccessKey"

    def store(self) -> Any:
        return self.ctx.access_keys

    @staticmethod
    def ident(record: Any) -> str:
        return str(record.access_key_id)


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


WEBHOOKS_ACTION = ACTION  # as /v1/webhooks: admins
DELIVERIES_PAGE = 50


class WebhooksHandler(UIHandler):
    """``/ui/admin/webhooks``: outbound webhook subscriptions (docs/webhooks.md). GET lists;
    POST creates one (``action=create``: URL, event types, description; its signing secret
    shown once) or deletes one (``action=delete``, ``id``)."""

    async def get(self) -> None:
        await self.authorize(WEBHOOKS_ACTION, "admin:webhooks")
        await self.show(None, None)

    async def show(self, created: tuple[str, str] | None, error: str | None) -> None:
        subs = sorted(await self.ctx.webhooks.list(), key=lambda s: -s.created_at)
        self.page("webhooks.html", 400 if error else 200, subs=subs, created=created, error=error)

    async def post(self) -> None:
        action = self.get_body_argument("action", "")
        if action == "delete":
            webhook_id = self.get_body_argument("id", "")
            resource = f"admin:webhooks/{webhook_id}"
            await self.authorize(WEBHOOKS_ACTION, resource)
            await self.ctx.webhooks.delete(webhook_id)
            self.audit(WEBHOOKS_ACTION, resource, True, "deleted")
            self.redirect("/ui/admin/webhooks")
            return
        if action != "create":
            raise StoreError("InvalidArgument", "action must be create or delete")
        await self.authorize(WEBHOOKS_ACTION, "admin:webhooks")
        events = [e.strip() for e in self.get_body_argument("events", "").split(",") if e.strip()]
        body: dict[str, Any] = {"url": self.get_body_argument("url", "").strip(), "events": events}
        description = self.get_body_argument("description", "").strip()
        if description:
            body["description"] = description
        try:
            sub, secret = await self.ctx.webhooks.create(body, self.principal.id)
        except StoreError as exc:
            if exc.status not in (400, 409):  # a bad or refused URL, too many webhooks
                raise
            await self.show(None, exc.message)
            return
        self.audit(WEBHOOKS_ACTION, f"admin:webhooks/{sub.webhook_id}", True, "created")
        await self.show((sub.webhook_id, secret), None)


class WebhookHandler(UIHandler):
    """``/ui/admin/webhooks/{id}?cursor=``: one subscription and its delivery log (newest
    first, paged: each delivery's attempts with response code, latency and error). POST
    ``action=rotate`` (``grace_hours``: the current secret keeps signing beside the new one
    that long; the new secret shown once), ``action=redeliver`` (``delivery``), or
    ``action=test`` (a ``webhook.test`` event), or ``action=edit`` (URL, event types,
    description, bucket and repository globs, key prefix, active) — as ``/v1/webhooks/{id}…``
    (``PATCH`` for the edit) does."""

    async def get(self, webhook_id: str) -> None:
        await self.authorize(WEBHOOKS_ACTION, f"admin:webhooks/{webhook_id}")
        await self.show(webhook_id, None, None, None)

    async def show(
        self, webhook_id: str, secret: str | None, notice: str | None, error: str | None
    ) -> None:
        sub = await self.ctx.webhooks.get(webhook_id)
        before = parse_delivery_cursor(self.get_query_argument("cursor", None))
        deliveries, more = await self.ctx.webhooks.deliveries(webhook_id, before, DELIVERIES_PAGE)
        self.page(
            "webhook.html", 400 if error else 200, sub=sub, deliveries=deliveries,
            next_cursor=delivery_cursor(deliveries, more), secret=secret, notice=notice,
            error=error, now=time.time(),
        )  # fmt: skip

    async def post(self, webhook_id: str) -> None:
        resource = f"admin:webhooks/{webhook_id}"
        await self.authorize(WEBHOOKS_ACTION, resource)
        action = self.get_body_argument("action", "")
        if action == "rotate":
            raw = self.get_body_argument("grace_hours", "24").strip() or "0"
            try:
                grace = float(raw) * 3600
            except ValueError:
                await self.show(webhook_id, None, None, "The grace period is a number of hours")
                return
            try:
                _, secret = await self.ctx.webhooks.rotate_secret(webhook_id, grace)
            except StoreError as exc:
                if exc.code != "InvalidArgument":
                    raise
                await self.show(webhook_id, None, None, "The grace period is 0 to 168 hours")
                return
            self.audit(WEBHOOKS_ACTION, resource, True, "secret rotated")
            await self.show(webhook_id, secret, None, None)
        elif action == "redeliver":
            delivery_id = self.get_body_argument("delivery", "")
            await self.ctx.webhooks.redeliver(webhook_id, delivery_id)
            self.audit(WEBHOOKS_ACTION, resource, True, f"redeliver {delivery_id}")
            await self.show(webhook_id, None, f"Delivery {delivery_id} queued again.", None)
        elif action == "test":
            delivery = await self.ctx.webhooks.send_test(webhook_id)
            self.audit(WEBHOOKS_ACTION, resource, True, f"test {delivery.delivery_id}")
            await self.show(webhook_id, None, f"Test event queued ({delivery.delivery_id}).", None)
        elif action == "edit":
            try:
                await self.ctx.webhooks.update(webhook_id, self._edited())
            except StoreError as exc:
                if exc.status != 400:  # a bad or refused URL, an unknown event type
                    raise
                await self.show(webhook_id, None, None, exc.message)
                return
            self.audit(WEBHOOKS_ACTION, resource, True, "updated")
            await self.show(webhook_id, None, "Saved.", None)
        else:
            raise StoreError("InvalidArgument", "action must be rotate, redeliver, test or edit")

    def _edited(self) -> dict[str, Any]:
        """The edit form as the ``PATCH`` body the service takes (empty lists: no filter)."""

        def listed(name: str) -> list[str]:
            return [v.strip() for v in self.get_body_argument(name, "").split(",") if v.strip()]

        body: dict[str, Any] = {
            "url": self.get_body_argument("url", "").strip(),
            "events": listed("events"),
            "description": self.get_body_argument("description", "").strip(),
            "active": self.get_body_argument("active", "") == "on",
        }
        where: dict[str, Any] = {}
        for name in ("buckets", "repositories"):
            if listed(name):
                where[name] = listed(name)
        prefix = self.get_body_argument("key_prefix", "").strip()
        if prefix:
            where["key_prefix"] = prefix
        body["filter"] = where
        return body
