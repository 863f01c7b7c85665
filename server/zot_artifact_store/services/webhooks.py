"""Outbound webhooks: subscriptions, the event outbox and its delivery (docs/webhooks.md).

Services announce what happened with :meth:`Notifier.emit` (never from handlers). With a
subscription that matches, the event is written to the outbox in the metadata store — one
delivery row per subscription — before the call that caused it returns, so a crash after the
change loses nothing. A worker that any replica may run (the ``webhooks`` lease in metadata:
one replica delivers at a time) sends due deliveries: Standard Webhooks signatures
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``) over a
JSON body, or a CloudEvents 1.0 structured body with the same headers; retries with backoff
over about a day; ``410 Gone`` disables the subscription, and so do failures that last longer
than ``disableAfter``. Targets resolving to non-public addresses are refused at connect time
(no redirects followed), unless configuration allows them.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import ipaddress
import json
import logging
import os
import random
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import tornado.netutil
from standardwebhooks.webhooks import Webhook

from ..auth.access_keys import SecretBox
from ..auth.principal import current_principal
from ..config import WebhooksExtension
from ..errors import StoreError
from ..metadata import (
    AlreadyExistsError,
    MetadataStore,
    WebhookDelivery,
    WebhookSubscription,
)
from ..timefmt import iso_time
from .notify import Notifier
from .webhook_client import KeepAliveClient

log = logging.getLogger("zot_artifact_store.webhooks")

EVENT_TYPES = (
    "object.created",
    "object.deleted",
    "bucket.created",
    "bucket.deleted",
    "image.pushed",
    "image.deleted",
    "evidence.attached",
    "verification.passed",
    "verification.failed",
    "gate.denied",
    "upload.aborted",
    "token.created",
    "token.revoked",
    "webhook.disabled",
    "webhook.test",
)
FORMATS = ("standard-webhooks", "cloudevents")
FILTER_FIELDS = {"buckets": list, "repositories": list, "key_prefix": str}
PAYLOAD_VERSION = "1"
CLOUDEVENTS_TYPE = "dev.zot-artifact-store.{type}.v1"
LEASE = "webhooks"
LEASE_TTL = 10.0  # a replica that died holding it delays deliveries this long
POLL_SECONDS = 0.5
RESPONSE_KEEP = 1024  # bytes of an endpoint's answer kept in the delivery log
MAX_WEBHOOKS = 100
SECRET_GRACE = 86400.0
SUBSCRIPTIONS_TTL = 2.0  # seconds a replica trusts its cached list of subscriptions


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


class WebhookTargetRefused(Exception):
    """The target resolves to no address webhooks may reach."""


def address_allowed(address: str, settings: WebhooksExtension) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in ipaddress.ip_network(n, strict=False) for n in settings.allowNetworks):
        return True
    if settings.allowPrivate:
        return not ip.is_unspecified
    return ip.is_global and not ip.is_multicast


class SafeResolver(tornado.netutil.Resolver):
    """Resolves like the default resolver, then keeps only addresses webhooks may reach: the
    check is on the address the connection is made to, so DNS that changes between a check
    and the connect (rebinding) gains nothing."""

    # Answers kept per (host, port, family): a name is looked up (a trip to a resolver thread)
    # once per RESOLVE_TTL seconds, not per delivery (issue 23). Only what getaddrinfo
    # answered is kept and every answer is checked again, so rebinding still gains nothing.
    RESOLVE_TTL = 30.0

    def initialize(self, settings: WebhooksExtension) -> None:  # type: ignore[override]
        self.settings = settings
        self.inner = tornado.netutil.DefaultLoopResolver()
        self._found: dict[tuple[str, int, int], tuple[float, list[tuple[int, Any]]]] = {}

    async def _lookup(
        self, host: str, port: int, family: socket.AddressFamily
    ) -> list[tuple[int, Any]]:
        try:  # an address literal needs no lookup
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            if ip.version == 4 and family in (socket.AF_UNSPEC, socket.AF_INET):
                return [(socket.AF_INET, (str(ip), port))]
            if ip.version == 6 and family in (socket.AF_UNSPEC, socket.AF_INET6):
                return [(socket.AF_INET6, (str(ip), port, 0, 0))]
        key = (host, port, int(family))
        now = time.monotonic()
        cached = self._found.get(key)
        if cached is None or cached[0] < now:
            if len(self._found) > 1000:
                self._found.clear()
            cached = self._found[key] = (
                now + self.RESOLVE_TTL,
                await self.inner.resolve(host, port, family),
            )
        return cached[1]

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        found = await self._lookup(host, port, family)
        allowed = [a for a in found if address_allowed(a[1][0], self.settings)]
        if not allowed:
            addresses = ", ".join(sorted({a[1][0] for a in found})) or "nothing"
            raise WebhookTargetRefused(
                f"{host} resolves to {addresses}: not a public address (allow it with "
                "extensions.webhooks.allowNetworks or allowPrivate)"
            )
        return allowed


def _matches(sub: WebhookSubscription, event_type: str, subject: dict[str, Any]) -> bool:
    if not sub.active or not any(fnmatch.fnmatchcase(event_type, p) for p in sub.events):
        return False
    f = sub.filter
    if f.get("buckets"):
        bucket = subject.get("bucket")
        if bucket is None or not any(fnmatch.fnmatchcase(bucket, p) for p in f["buckets"]):
            return False
    if f.get("repositories"):
        repo = subject.get("repository")
        if repo is None or not any(fnmatch.fnmatchcase(repo, p) for p in f["repositories"]):
            return False
    if f.get("key_prefix"):
        key = subject.get("key")
        if key is None or not key.startswith(f["key_prefix"]):
            return False
    return True


class WebhookService(Notifier):
    def __init__(
        self,
        metadata: MetadataStore,
        box: SecretBox,
        settings: WebhooksExtension,
        base_url: str,
    ) -> None:
        self.metadata = metadata
        self.box = box
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self.holder = uuid.uuid4().hex
        self._subs: list[WebhookSubscription] | None = None
        self._subs_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[str] = set()
        self._per_endpoint: dict[str, asyncio.Semaphore] = {}
        self._all = asyncio.Semaphore(settings.concurrency)
        self._client: KeepAliveClient | None = None
        self._wake = asyncio.Event()
        self._last_expiry = 0.0
        self._signer_cache: dict[tuple[str, str], Webhook] = {}

    # ---- subscriptions ------------------------------------------------------------------

    def _validate(self, body: dict[str, Any], partial: bool = False) -> dict[str, Any]:
        allowed = {"url", "events", "filter", "format", "description", "active"}
        unknown = set(body) - allowed
        if unknown:
            raise StoreError("InvalidArgument", f"unknown field(s): {', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        if "url" in body or not partial:
            out["url"] = self._check_url(body.get("url"))
        if "events" in body or not partial:
            events = body.get("events")
            if (
                not isinstance(events, list)
                or not events
                or not all(isinstance(e, str) and e for e in events)
            ):
                raise StoreError("InvalidArgument", "events is a non-empty list of event types")
            for pattern in events:
                if not any(fnmatch.fnmatchcase(t, pattern) for t in EVENT_TYPES):
                    raise StoreError(
                        "InvalidArgument",
                        f"events: {pattern!r} names no event type (known: "
                        f"{', '.join(EVENT_TYPES)}; globs such as object.* work)",
                    )
            out["events"] = events
        if "format" in body or not partial:
            fmt = body.get("format", "standard-webhooks")
            if fmt not in FORMATS:
                raise StoreError("InvalidArgument", f"format is one of {', '.join(FORMATS)}")
            out["format"] = fmt
        if "filter" in body:
            f = body["filter"]
            if not isinstance(f, dict) or set(f) - set(FILTER_FIELDS):
                raise StoreError(
                    "InvalidArgument", "filter is {buckets?: [glob], repositories?: [glob], "
                    "key_prefix?: string}",
                )  # fmt: skip
            for name, kind in FILTER_FIELDS.items():
                value = f.get(name)
                if value is None:
                    continue
                if kind is list and not (
                    isinstance(value, list) and all(isinstance(v, str) and v for v in value)
                ):
                    raise StoreError("InvalidArgument", f"filter.{name} is a list of globs")
                if kind is str and not isinstance(value, str):
                    raise StoreError("InvalidArgument", f"filter.{name} is a string")
            out["filter"] = {k: v for k, v in f.items() if v not in (None, [], "")}
        for name, kind in (("description", str), ("active", bool)):
            if name in body:
                if not isinstance(body[name], kind):
                    raise StoreError("InvalidArgument", f"{name} is a {kind.__name__}")
                out[name] = body[name]
        if "description" in out and len(out["description"]) > 1000:
            raise StoreError("InvalidArgument", "description is at most 1000 characters")
        return out

    def _check_url(self, url: Any) -> str:
        if not isinstance(url, str) or len(url) > 2048:
            raise StoreError("InvalidArgument", "url is an http(s) URL of at most 2048 characters")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError("InvalidArgument", f"url {url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise StoreError("InvalidArgument", "url must not carry credentials")
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if literal is not None and not address_allowed(str(literal), self.settings):
            raise StoreError(
                "WebhookTargetRefused",
                f"{parts.hostname} is not a public address (allow it with "
                "extensions.webhooks.allowNetworks or allowPrivate)",
            )
        return url

    async def _check_resolves(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        resolver = SafeResolver(settings=self.settings)
        try:
            await resolver.resolve(parts.hostname or "", port)
        except WebhookTargetRefused as exc:
            raise StoreError("WebhookTargetRefused", str(exc)) from None
        except OSError as exc:
            raise StoreError("WebhookTargetRefused", f"{parts.hostname}: {exc}") from None

    async def create(self, body: dict[str, Any], actor: str) -> tuple[WebhookSubscription, str]:
        values = self._validate(body)
        await self._check_resolves(values["url"])
        if len(await self.metadata.list_webhooks()) >= MAX_WEBHOOKS:
            raise StoreError("TooManyWebhooks", f"at most {MAX_WEBHOOKS} webhooks")
        webhook_id = "wh_" + uuid.uuid4().hex[:20]
        secret = new_secret()
        sub = WebhookSubscription(
            webhook_id=webhook_id,
            url=values["url"],
            events=values["events"],
            format=values["format"],
            created_at=time.time(),
            created_by=actor,
            secrets=[{"sealed": self.box.seal(secret, webhook_id), "expires_at": None}],
            filter=values.get("filter", {}),
            description=values.get("description", ""),
            active=values.get("active", True),
        )
        try:
            await self.metadata.create_webhook(sub)
        except AlreadyExistsError:  # pragma: no cover - 80 random bits
            raise StoreError("InternalError", "webhook id collision; try again") from None
        self._subs = None
        return sub, secret

    async def get(self, webhook_id: str) -> WebhookSubscription:
        sub = await self.metadata.get_webhook(webhook_id)
        if sub is None:
            raise StoreError("NoSuchWebhook", f"webhook {webhook_id} does not exist")
        return sub

    async def list(self) -> list[WebhookSubscription]:
        return await self.metadata.list_webhooks()

    async def update(self, webhook_id: str, body: dict[str, Any]) -> WebhookSubscription:
        sub = await self.get(webhook_id)
        values = self._validate(body, partial=True)
        if "url" in values:
            await self._check_resolves(values["url"])
        for name, value in values.items():
            setattr(sub, name, value)
        if values.get("active"):
            sub.disabled_reason, sub.failing_since = "", None
        if not await self.metadata.update_webhook(sub):
            raise StoreError("NoSuchWebhook", f"webhook {webhook_id} does not exist")
        self._subs = None
        return sub

    async def delete(self, webhook_id: str) -> None:
        if not await self.metadata.delete_webhook(webhook_id):
            raise StoreError("NoSuchWebhook", f"webhook {webhook_id} does not exist")
        self._subs = None

    async def rotate_secret(
        self, webhook_id: str, grace: float = SECRET_GRACE
    ) -> tuple[WebhookSubscription, str]:
        """A new secret signs from now on; the current ones keep signing beside it for
        ``grace`` seconds (receivers accept any signature that verifies)."""
        if not 0 <= grace <= 7 * 86400:
            raise StoreError("InvalidArgument", "grace is 0 to 604800 seconds")
        sub = await self.get(webhook_id)
        now = time.time()
        secret = new_secret()
        kept = [
            {**s, "expires_at": min(s["expires_at"] or now + grace, now + grace)}
            for s in sub.secrets
            if s["expires_at"] is None or s["expires_at"] > now
        ]
        if grace == 0:
            kept = []
        sub.secrets = [{"sealed": self.box.seal(secret, webhook_id), "expires_at": None}, *kept]
        await self.metadata.update_webhook(sub)
        return sub, secret

    # ---- events -------------------------------------------------------------------------

    async def _subscriptions(self) -> list[WebhookSubscription]:
        now = time.monotonic()
        if self._subs is None or now - self._subs_at > SUBSCRIPTIONS_TTL:
            self._subs = await self.metadata.list_webhooks()
            self._subs_at = now
        return self._subs

    def event(
        self,
        event_type: str,
        subject: dict[str, Any],
        data: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        principal = current_principal.get()
        now = time.time()
        event: dict[str, Any] = {
            "id": "evt_" + uuid.uuid4().hex,
            "type": event_type,
            "version": PAYLOAD_VERSION,
            "time": iso_time(now),
            "actor": actor or (principal.id if principal is not None else "system"),
            "subject": subject,
            "link": self.link(subject),
        }
        if data:
            event["data"] = data
        return event

    def link(self, subject: dict[str, Any]) -> str:
        q = urllib.parse.quote
        if "bucket" in subject and "key" in subject:
            return f"{self.base_url}/v1/buckets/{q(subject['bucket'], '')}/objects/" + q(
                subject["key"], ""
            )
        if "bucket" in subject:
            return f"{self.base_url}/v1/buckets/{q(subject['bucket'], '')}"
        if "repository" in subject:
            ref = subject.get("digest") or subject.get("tag") or ""
            return f"{self.base_url}/v2/{subject['repository']}/manifests/{ref}"
        if "webhook_id" in subject:
            return f"{self.base_url}/v1/webhooks/{subject['webhook_id']}"
        if "token_id" in subject:
            return f"{self.base_url}/v1/tokens/{subject['token_id']}"
        return self.base_url

    def body(self, sub: WebhookSubscription, event: dict[str, Any]) -> str:
        if sub.format == "cloudevents":
            subject = event["subject"]
            doc: dict[str, Any] = {
                "specversion": "1.0",
                "id": event["id"],
                "source": self.base_url + "/",
                "type": CLOUDEVENTS_TYPE.format(type=event["type"]),
                "time": event["time"],
                "datacontenttype": "application/json",
                "data": event,
            }
            described = "/".join(
                str(subject[k]) for k in ("bucket", "key", "repository") if k in subject
            )
            if described:
                doc["subject"] = described
        else:
            doc = {"type": event["type"], "timestamp": event["time"], "data": event}
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)

    async def emit(
        self,
        event_type: str,
        subject: dict[str, Any],
        data: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        """Write the event to the outbox of every subscription that wants it (before the
        caller's answer is sent); a failure here is logged, never the caller's."""
        if not self.settings.enable:
            return
        try:
            subs = [s for s in await self._subscriptions() if _matches(s, event_type, subject)]
            if subs:
                await self.enqueue(subs, self.event(event_type, subject, data, actor))
        except Exception:
            log.exception("could not record %s for webhooks", event_type)

    async def enqueue(self, subs: Iterable[WebhookSubscription], event: dict[str, Any]) -> None:
        now = time.time()
        rows = [
            WebhookDelivery(
                delivery_id="msg_" + uuid.uuid4().hex,
                webhook_id=s.webhook_id,
                event_id=event["id"],
                event_type=event["type"],
                payload=self.body(s, event),
                created_at=now,
                next_attempt_at=now,
            )
            for s in subs
        ]
        await self.metadata.add_deliveries(rows)
        self._wake.set()

    async def send_test(self, webhook_id: str) -> WebhookDelivery:
        """A ``webhook.test`` event to this subscription alone (whatever its events)."""
        sub = await self.get(webhook_id)
        event = self.event("webhook.test", {"webhook_id": webhook_id})
        await self.enqueue([sub], event)
        page, _ = await self.metadata.list_deliveries(webhook_id, limit=1)
        return page[0]

    # ---- the delivery log ---------------------------------------------------------------

    async def deliveries(
        self, webhook_id: str, before: tuple[float, str] | None, limit: int
    ) -> tuple[list[WebhookDelivery], bool]:
        await self.get(webhook_id)
        return await self.metadata.list_deliveries(webhook_id, before, limit)

    async def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        delivery = await self.metadata.get_delivery(delivery_id)
        if delivery is None or delivery.webhook_id != webhook_id:
            raise StoreError("NoSuchDelivery", f"delivery {delivery_id} does not exist")
        delivery.status = "pending"
        delivery.next_attempt_at = time.time()
        await self.metadata.update_delivery(delivery)
        self._wake.set()
        return delivery

    # ---- the worker ---------------------------------------------------------------------

    def start(self) -> None:
        if self.settings.enable and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
            if self._client is not None:
                self._client.close()
                self._client = None
            try:
                await self.metadata.release_lease(LEASE, self.holder)
            except Exception:  # pragma: no cover - shutting down
                pass

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery loop")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass

    async def run_once(self, now: float | None = None) -> int:
        """Hold the lease, then start every due delivery not already in flight; how many."""
        now = time.time() if now is None else now
        lease = await self.metadata.acquire_lease(LEASE, self.holder, now, LEASE_TTL)
        if not lease:
            return 0
        if now - self._last_expiry > 3600:
            self._last_expiry = now
            await self.metadata.expire_deliveries(now - self.settings.retention)
        due = [
            d
            for d in await self.metadata.due_deliveries(now, self.settings.concurrency * 2)
            if d.delivery_id not in self._in_flight
        ]
        if not due:
            return 0
        # One read of the subscriptions for the batch, not one per delivery (issue 23).
        subs = {s.webhook_id: s for s in await self.metadata.list_webhooks()}
        read_at = time.monotonic()
        for delivery in due:
            self._in_flight.add(delivery.delivery_id)
            sub = subs.get(delivery.webhook_id)
            asyncio.get_running_loop().create_task(self._deliver_guarded(delivery, sub, read_at))
        return len(due)

    async def _deliver_guarded(
        self,
        delivery: WebhookDelivery,
        sub: WebhookSubscription | None = None,
        read_at: float | None = None,
    ) -> None:
        try:
            sem = self._per_endpoint.setdefault(
                delivery.webhook_id, asyncio.Semaphore(self.settings.concurrencyPerEndpoint)
            )
            async with self._all, sem:
                # What the batch read is used as it is while the lease it was read under
                # certainly still holds; a delivery that waited longer reads both again.
                fresh = read_at is not None and time.monotonic() - read_at < LEASE_TTL / 2
                await self.deliver(delivery, sub if fresh else None, fresh)
        except Exception:
            log.exception("webhook delivery %s", delivery.delivery_id)
        finally:
            self._in_flight.discard(delivery.delivery_id)
            if not self._in_flight:
                self._wake.set()  # a batch is done: look for more at once, not after a poll

    def _http(self) -> KeepAliveClient:
        if self._client is None:
            self._client = KeepAliveClient(
                SafeResolver(settings=self.settings), self.settings.concurrencyPerEndpoint
            )
        return self._client

    def _signers(self, sub: WebhookSubscription, now: float) -> list[Webhook]:
        """A signer per secret of ``sub`` in force at ``now``; each sealed secret is opened
        once, not per delivery (issue 23)."""
        out = []
        for s in sub.secrets:
            if s["expires_at"] is not None and s["expires_at"] <= now:
                continue
            key = (sub.webhook_id, s["sealed"])
            signer = self._signer_cache.get(key)
            if signer is None:
                if len(self._signer_cache) > 4 * MAX_WEBHOOKS:
                    self._signer_cache.clear()
                signer = self._signer_cache[key] = Webhook(self.box.open(s["sealed"], key[0]))
            out.append(signer)
        return out

    def headers(self, sub: WebhookSubscription, delivery: WebhookDelivery) -> dict[str, str]:
        now = time.time()
        stamp = datetime.fromtimestamp(int(now), tz=UTC)
        signatures = [
            signer.sign(delivery.delivery_id, stamp, delivery.payload)
            for signer in self._signers(sub, now)
        ]
        content_type = (
            "application/cloudevents+json" if sub.format == "cloudevents" else "application/json"
        )
        return {
            "Content-Type": content_type,
            "User-Agent": "zot-artifact-store-webhooks/1",
            "webhook-id": delivery.delivery_id,
            "webhook-timestamp": str(int(now)),
            "webhook-signature": " ".join(signatures),
        }

    async def deliver(
        self,
        delivery: WebhookDelivery,
        sub: WebhookSubscription | None = None,
        fresh: bool = False,
    ) -> None:
        """Send ``delivery`` once and record the outcome. ``fresh``: ``delivery`` and ``sub``
        (None: the subscription is gone) were read by this lease holder moments ago, under
        the lease, so nobody else sent it meanwhile; else both are read again."""
        if not fresh:
            sub = await self.metadata.get_webhook(delivery.webhook_id)
            current = await self.metadata.get_delivery(delivery.delivery_id)
            if current is None or current.status != "pending":
                return  # delivered meanwhile, or the subscription was deleted
            delivery = current
        now = time.time()
        if sub is None or not sub.active:
            delivery.status = "failed"
            delivery.attempts.append(
                {"at": now, "status_code": 0, "latency_ms": 0, "error": "subscription inactive"}
            )
            await self.metadata.update_delivery(delivery)
            return
        kept = bytearray()

        def keep(chunk: bytes) -> None:
            if len(kept) < RESPONSE_KEEP:
                kept.extend(chunk[: RESPONSE_KEEP - len(kept)])

        started = time.monotonic()
        status, error = 0, ""
        try:
            status = await self._http().post(
                sub.url,
                self.headers(sub, delivery),
                delivery.payload.encode(),
                self.settings.timeout,
                keep,
            )
        except WebhookTargetRefused as exc:
            error = str(exc)
        except TimeoutError:
            error = f"no answer within {self.settings.timeout:g} s"
        except Exception as exc:  # connect errors, TLS, a connection closed early
            error = f"{type(exc).__name__}: {exc}"
        latency = int((time.monotonic() - started) * 1000)
        if not error and not 200 <= status < 300:
            error = kept.decode("utf-8", "replace")[:200] or f"HTTP {status}"
        delivery.attempts.append(
            {"at": now, "status_code": status, "latency_ms": latency, "error": error}
        )
        if 200 <= status < 300:
            delivery.status = "delivered"
            await self.metadata.update_delivery(delivery)
            if sub.failing_since is not None:
                sub.failing_since = None
                await self.metadata.update_webhook(sub)
            return
        n = len(delivery.attempts)
        schedule = self.settings.retrySchedule
        if status == 410 or n > len(schedule):
            delivery.status = "failed"
        else:
            wait = schedule[n - 1]
            delivery.next_attempt_at = now + wait * random.uniform(0.9, 1.1)
        await self.metadata.update_delivery(delivery)
        if status == 410:
            await self._disable(sub, "the endpoint answered 410 Gone")
            return
        if sub.failing_since is None:
            sub.failing_since = now
            await self.metadata.update_webhook(sub)
        elif now - sub.failing_since > self.settings.disableAfter:
            days = (now - sub.failing_since) / 86400
            await self._disable(sub, f"every delivery failed for {days:.1f} days")

    async def _disable(self, sub: WebhookSubscription, reason: str) -> None:
        sub.active = False
        sub.disabled_reason = reason
        await self.metadata.update_webhook(sub)
        self._subs = None
        log.warning(
            "webhook disabled",
            extra={"webhook_id": sub.webhook_id, "url": sub.url, "reason": reason},
        )
        await self.emit(
            "webhook.disabled", {"webhook_id": sub.webhook_id}, {"url": sub.url, "reason": reason}
        )
