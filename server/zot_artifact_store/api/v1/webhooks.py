"""``/v1/webhooks``: outbound webhook subscriptions, their delivery log and redelivery
(services/webhooks.py; docs/webhooks.md). Managing them is ``webhooks:Manage`` (admins)."""

from __future__ import annotations

from typing import Any

from ...errors import StoreError
from ...metadata import WebhookDelivery, WebhookSubscription
from ...timefmt import iso_time
from ..base import BaseHandler, Route, route
from ..query import takes
from .common import V1Handler

ACTION = "webhooks:Manage"


def webhook_json(sub: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": sub.webhook_id,
        "url": sub.url,
        "events": sub.events,
        "filter": sub.filter,
        "format": sub.format,
        "description": sub.description,
        "active": sub.active,
        "disabled_reason": sub.disabled_reason or None,
        "failing_since": iso_time(sub.failing_since) if sub.failing_since else None,
        "secrets": len(sub.secrets),
        "created_at": iso_time(sub.created_at),
        "created_by": sub.created_by,
    }


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    last = d.attempts[-1] if d.attempts else None
    return {
        "id": d.delivery_id,
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "status": d.status,
        "created_at": iso_time(d.created_at),
        "attempts": [
            {**a, "at": iso_time(a["at"]), "error": a.get("error") or None} for a in d.attempts
        ],
        "response_code": last["status_code"] if last else None,
        "latency_ms": last["latency_ms"] if last else None,
        "next_attempt_at": iso_time(d.next_attempt_at) if d.status == "pending" else None,
    }


def delivery_cursor(page: list[WebhookDelivery], more: bool) -> str | None:
    """The cursor of the delivery log's next page (None at its end)."""
    last = page[-1] if page else None
    return f"{last.created_at!r}:{last.delivery_id}" if more and last else None


def parse_delivery_cursor(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    when, _, ident = cursor.partition(":")
    try:
        return float(when), ident
    except ValueError:
        raise StoreError("InvalidArgument", "cursor is not one this API gave") from None


class WebhookBase(V1Handler):
    def body_object(self) -> dict[str, Any]:
        body = self.json_body(required=True)
        if not isinstance(body, dict):
            raise StoreError("MalformedJSON", "the request must be a JSON object")
        return body


class WebhooksHandler(WebhookBase):
    async def post(self) -> None:
        await self.authorize(ACTION, "admin:webhooks")
        sub, secret = await self.ctx.webhooks.create(self.body_object(), self.principal.id)
        self.audit(ACTION, f"admin:webhooks/{sub.webhook_id}", True, "created")
        self.set_header("Location", f"/v1/webhooks/{sub.webhook_id}")
        self.set_header("Cache-Control", "no-store")
        self.write_json({**webhook_json(sub), "secret": secret}, 201)

    async def get(self) -> None:
        await self.authorize(ACTION, "admin:webhooks")
        self.write_json({"webhooks": [webhook_json(s) for s in await self.ctx.webhooks.list()]})


class WebhookHandler(WebhookBase):
    async def get(self, webhook_id: str) -> None:
        await self.authorize(ACTION, f"admin:webhooks/{webhook_id}")
        self.write_json(webhook_json(await self.ctx.webhooks.get(webhook_id)))

    async def patch(self, webhook_id: str) -> None:
        await self.authorize(ACTION, f"admin:webhooks/{webhook_id}")
        sub = await self.ctx.webhooks.update(webhook_id, self.body_object())
        self.audit(ACTION, f"admin:webhooks/{webhook_id}", True, "updated")
        self.write_json(webhook_json(sub))

    async def delete(self, webhook_id: str) -> None:
        await self.authorize(ACTION, f"admin:webhooks/{webhook_id}")
        await self.ctx.webhooks.delete(webhook_id)
        self.audit(ACTION, f"admin:webhooks/{webhook_id}", True, "deleted")
        self.set_status(204)
        self.finish()


class RotateSecretHandler(WebhookBase):
    async def post(self, webhook_id: str) -> None:
        await self.authorize(ACTION, f"admin:webhooks/{webhook_id}")
        body = self.json_body() or {}
        if not isinstance(body, dict) or set(body) - {"grace_seconds"}:
            raise StoreError("MalformedJSON", 'the body is {"grace_seconds"?: number}')
        grace = body.get("grace_seconds", 86400)
        if isinstance(grace, bool) or not isinstance(grace, int | float):
            raise StoreError("InvalidArgument", "grace_seconds is a number")
        sub, secret = await self.ctx.webhooks.rotate_secret(webhook_id, float(grace))
        self.audit(ACTION, f"admin:webhooks/{webhook_id}", True, "secret rotated")
        self.set_header("Cache-Control", "no-store")
        self.write_json({**webhook_json(sub), "secret": secret})


class TestHandler(WebhookBase):
    async def post(self, webhook_id: str) -> None:
        await self.authorize(ACTION, f"admin:webhooks/{webhook_id}")
        delivery = await self.ctx.webhooks.send_test(webhook_id)
        self.write_json(delivery_json(delivery), 202)


class DeliveriesHandler(WebhookBase):
    query_parameters = takes(GET=("cursor", "limit"))

    async def get(self, webhook_id: str) -> None:
        await self.authorize(ACTION, f"admin:webhooks/{webhook_id}")
        limit = self.int_arg("limit", 100, 1, 1000)
        before = parse_delivery_cursor(self.get_query_argument("cursor", None))
        page, more = await self.ctx.webhooks.deliveries(webhook_id, before, limit)
        self.write_json(
            {
                "deliveries": [delivery_json(d) for d in page],
                "next_cursor": delivery_cursor(page, more),
            }
        )


class RedeliverHandler(WebhookBase):
    async def post(self, webhook_id: str, delivery_id: str) -> None:
        await self.authorize(ACTION, f"admin:webhooks/{webhook_id}")
        delivery = await self.ctx.webhooks.redeliver(webhook_id, delivery_id)
        self.audit(ACTION, f"admin:webhooks/{webhook_id}", True, f"redeliver {delivery_id}")
        self.write_json(delivery_json(delivery), 202)


def routes(ctx: Any) -> list[Route]:
    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    return [
        r(r"/v1/webhooks/?", WebhooksHandler, "/v1/webhooks"),
        r(r"/v1/webhooks/([^/]+)/?", WebhookHandler, "/v1/webhooks/{id}"),
        r(
            r"/v1/webhooks/([^/]+)/rotate-secret",
            RotateSecretHandler,
            "/v1/webhooks/{id}/rotate-secret",
        ),
        r(r"/v1/webhooks/([^/]+)/test", TestHandler, "/v1/webhooks/{id}/test"),
        r(r"/v1/webhooks/([^/]+)/deliveries/?", DeliveriesHandler, "/v1/webhooks/{id}/deliveries"),
        r(
            r"/v1/webhooks/([^/]+)/deliveries/([^/]+)/redeliver",
            RedeliverHandler,
            "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        ),
    ]
