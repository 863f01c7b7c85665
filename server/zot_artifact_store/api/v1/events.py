"""``/v1/events``, ``/v1/event-sources``, ``/v1/builds``: inbound CI events and the builds
they record (services/events.py decides; this module parses, authenticates and renders).

``POST /v1/events`` needs no Authorization header: a Tekton delivery carries its source's URL
token (``?source=<id>&token=<secret>``), a GitHub delivery its ``X-Hub-Signature-256``. A
bearer credential allowed ``events:Publish`` may publish Tekton events too.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from ...auth.audit import decode_audit_cursor, encode_cursor
from ...auth.principal import Principal
from ...errors import StoreError
from ...metadata import BuildQuery, EventSource
from ...services.events import (
    DEFAULT_SOURCE,
    MAX_EVENT_BODY,
    build_json,
    source_json,
)
from ..base import UploadHandler
from ..query import takes
from .common import MAX_LIST_LIMIT, V1Handler


def source_principal(source: EventSource) -> Principal:
    """Who sent a delivery its source authenticated (URL token or webhook signature)."""
    return Principal(id=f"event-source:{source.source_id}", name=source.name, source="event")


@tornado.web.stream_request_body
class EventsHandler(V1Handler, UploadHandler):
    """``POST /v1/events``: a Tekton CloudEvent (binary mode) or a GitHub webhook delivery.
    The body (at most 1 MiB) is read whole before anything is checked against it."""

    query_parameters = takes(POST=("source", "token"))

    async def prepare(self) -> None:
        await super().prepare()
        self.body = bytearray()
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_EVENT_BODY:
            raise StoreError("EntityTooLarge", f"an event may be at most {MAX_EVENT_BODY} bytes")

    async def receive(self, chunk: bytes) -> None:
        self.body += chunk
        if len(self.body) > MAX_EVENT_BODY:
            raise StoreError("EntityTooLarge", f"an event may be at most {MAX_EVENT_BODY} bytes")

    async def post(self) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        events, headers = self.ctx.events, self.request.headers
        source_id = self.get_query_argument("source", None)
        token = self.get_query_argument("token", None)
        body = bytes(self.body)
        if "X-GitHub-Event" in headers:
            if not source_id:
                raise StoreError("Unauthenticated", "a GitHub webhook URL names its ?source=")
            await self.check_secret(
                f"events:{source_id or ''}",
                lambda: events.verify_github(source_id, body, headers.get("X-Hub-Signature-256")),
            )
            self.principal = source_principal(await events.get_source(source_id))
            outcome = await events.github(source_id, headers, body)
        else:
            if token is not None:
                ident, secret = source_id or "", token
                source = await self.check_secret(
                    f"events:{ident}", lambda: events.source_by_token(ident, secret)
                )
                self.principal = source_principal(source)
            else:
                await self.authorize("events:Publish", f"events:{source_id or DEFAULT_SOURCE}")
                if source_id and (await events.get_source(source_id)).type != "tekton":
                    raise StoreError("InvalidArgument", f"source {source_id!r} is not Tekton's")
            principal = self.principal

            async def may_read(bucket: str, key: str) -> bool:
                decision = await self.ctx.authorizer.decide(
                    principal, "s3:GetObject", f"{bucket}/{key}"
                )
                return decision.allowed

            outcome = await events.tekton(source_id or DEFAULT_SOURCE, headers, body, may_read)
        answer: dict[str, Any] = {"duplicate": outcome.duplicate, "event_id": outcome.event_id}
        if outcome.build is not None:
            build = outcome.build
            self.audit(
                "events:Publish", f"events:{build.source_id}", True,
                f"{outcome.event_type} {outcome.event_id}", build=build.build_id,
            )  # fmt: skip
            answer["build"] = build_json(build)
        elif outcome.event_type == "ping":
            answer["ping"] = True
        self.write_json(answer)


class EventSourcesHandler(V1Handler):
    """``/v1/event-sources``: where CI events may come from (admins only)."""

    async def post(self) -> None:
        await self.authorize("admin:ManageEventSources", "admin:event-sources")
        body = self.json_body(required=True)
        if not isinstance(body, dict) or not {"name", "type"} <= set(body) <= {
            "name",
            "type",
            "secret",
        }:
            raise StoreError("MalformedJSON", 'the request is {"name", "type", "secret"?}')
        name, kind, secret = body["name"], body["type"], body.get("secret")
        if not all(isinstance(v, str) for v in (name, kind)) or not isinstance(secret, str | None):
            raise StoreError("MalformedJSON", "name, type and secret must be strings")
        source, secret = await self.ctx.events.create_source(name, kind, secret, self.principal.id)
        resource = f"admin:event-sources/{source.source_id}"
        self.audit("admin:ManageEventSources", resource, True, f"created ({source.type})")
        answer = source_json(source, self.base_url())
        if source.type == "tekton":
            answer["url"] += f"&token={secret}"
        answer["secret"] = secret
        self.set_header("Location", f"/v1/event-sources/{source.source_id}")
        self.set_header("Cache-Control", "no-store")
        self.write_json(answer, 201)

    async def get(self) -> None:
        await self.authorize("admin:ManageEventSources", "admin:event-sources")
        sources = await self.ctx.events.list_sources()
        self.write_json({"sources": [source_json(s, self.base_url()) for s in sources]})


class EventSourceHandler(V1Handler):
    async def delete(self, source_id: str) -> None:
        resource = f"admin:event-sources/{source_id}"
        await self.authorize("admin:ManageEventSources", resource)
        await self.ctx.events.delete_source(source_id)
        self.audit("admin:ManageEventSources", resource, True, "deleted")
        self.set_status(204)
        self.finish()


class BuildsHandler(V1Handler):
    """``GET /v1/builds?digest=…&source=…``: builds newest first, paginated by cursor."""

    query_parameters = takes(GET=("digest", "source", "cursor", "limit"))

    async def get(self) -> None:
        await self.authorize("events:Read", "events:builds")
        digest = self.get_query_argument("digest", None)
        if digest is not None and not digest.startswith("sha256:"):
            raise StoreError("InvalidArgument", "digest must be sha256:<hex>")
        query = BuildQuery(source_id=self.get_query_argument("source", None), digest=digest)
        before = decode_audit_cursor(self.get_query_argument("cursor", None))
        limit = self.int_arg("limit", 100, 1, MAX_LIST_LIMIT)
        builds, more = await self.ctx.events.list_builds(query, before, limit)
        out: dict[str, Any] = {"builds": [build_json(b) for b in builds]}
        last = builds[-1] if builds and more else None
        out["next_cursor"] = encode_cursor(last.created_at, last.build_id) if last else None
        self.write_json(out)


class BuildHandler(V1Handler):
    async def get(self, build_id: str) -> None:
        await self.authorize("events:Read", f"events:builds/{build_id}")
        self.write_json(build_json(await self.ctx.events.get_build(build_id)))
