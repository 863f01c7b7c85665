"""Inbound CI events: Tekton CloudEvents and GitHub ``workflow_run`` webhooks become build
records linked to the artifact digests they produced (DESIGN.md §1, "events").

A Tekton run names its artifacts in its results (``ARTIFACT_URI`` / ``ARTIFACT_DIGEST``,
Tekton Chains' ``*_ARTIFACT_OUTPUTS`` objects, ``IMAGE_URL`` / ``IMAGE_DIGEST``, ``IMAGES``);
a GitHub workflow run names none, so it is linked through the objects whose labels name it
(``github.repository`` and ``github.run_id``), when its event arrives and when such an object
is uploaded later. Each delivery is recorded once (CloudEvents ``Ce-Id``, GitHub
``X-GitHub-Delivery``); later events of a run update its one build record.

No Tornado here: the API layer hands over headers and the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import jsonbody
from ..auth.access_keys import SecretBox
from ..errors import StoreError
from ..metadata import (
    BuildQuery,
    BuildRecord,
    EventSource,
    InboundEvent,
    MetadataStore,
    ObjectRecord,
)
from ..observability.metrics import Metrics
from ..timefmt import iso_time, parse_time
from .artifacts import normalize_sha256

log = logging.getLogger(__name__)

SOURCE_TYPES = ("tekton", "github")
# Builds published with a bearer token and no ``source`` belong to this pseudo-source.
DEFAULT_SOURCE = "default"
MAX_EVENT_BODY = 1024 * 1024
RUN_LABELS = ("github.repository", "github.run_id")
# Whether whoever posted an event may read the object ``(bucket, key)``.
ReadCheck = Callable[[str, str], Awaitable[bool]]
_TEKTON_TYPE = re.compile(
    r"^dev\.tekton\.event\.(taskrun|pipelinerun)\.(started|running|successful|failed|unknown)\.v1$"
)
_TEKTON_STATUS = {
    "started": "started",
    "running": "running",
    "unknown": "running",  # the Succeeded condition is Unknown: pending or running
    "successful": "succeeded",
    "failed": "failed",
}
_GITHUB_ACTIONS = {"requested": "started", "in_progress": "running", "completed": None}
# How far a run has got; a late, delayed event never moves a run back.
_RANK = {"started": 0, "running": 1, "succeeded": 2, "failed": 2}
_COMMIT_RESULTS = {"COMMIT", "COMMIT_SHA", "GIT_COMMIT", "CHAINS_GIT_COMMIT"}
_STORE_PATH = re.compile(r"^(?:/s3)?/v1/buckets/([^/]+)/objects/(.+)$")


def source_json(source: EventSource, base_url: str) -> dict[str, Any]:
    """An event source as listed: never its token or secret."""
    return {
        "id": source.source_id,
        "name": source.name,
        "type": source.type,
        "url": f"{base_url}/v1/events?source={source.source_id}",
        "created_at": iso_time(source.created_at),
        "created_by": source.created_by,
    }


def build_summary(build: BuildRecord) -> dict[str, Any]:
    """What an object's metadata shows of the builds that produced it."""
    return {
        "id": build.build_id,
        "source": build.source_id,
        "name": build.name,
        "status": build.status,
        "url": build.url,
    }


def build_json(build: BuildRecord) -> dict[str, Any]:
    def when(ts: float | None) -> str | None:
        return iso_time(ts) if ts is not None else None

    return {
        **build_summary(build),
        "kind": build.kind,
        "run": build.run_key,
        "namespace": build.namespace,
        "commit": build.commit,
        "repository": build.repository,
        "attempt": build.attempt,
        "started_at": when(build.started_at),
        "finished_at": when(build.finished_at),
        "created_at": iso_time(build.created_at),
        "updated_at": iso_time(build.updated_at),
        "results": build.results,
        "artifacts": build.artifacts,
        "digests": build.digests,
        "details": build.details,
    }


def build_id_for(source_id: str, run_key: str) -> str:
    """Every event of one run, on any replica, names the same build."""
    return "b" + hashlib.sha256(f"{source_id}\0{run_key}".encode()).hexdigest()[:24]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Outcome:
    """What an accepted delivery did: the build it updated (None for a ping)."""

    event_id: str
    duplicate: bool = False
    build: BuildRecord | None = None
    event_type: str = ""


class EventService:
    def __init__(self, metadata: MetadataStore, box: SecretBox) -> None:
        self.metadata = metadata
        self.box = box
        self.metrics: Metrics | None = None  # set by app.py

    async def _counted(self, source: str, delivery: Awaitable[Outcome]) -> Outcome:
        """A delivery's outcome, counted in ``zas_events_received`` (accepted, duplicate,
        refused)."""
        result = "refused"
        try:
            outcome = await delivery
            result = "duplicate" if outcome.duplicate else "accepted"
            return outcome
        finally:
            if self.metrics is not None:
                self.metrics.events.labels(source, result).inc()

    # ---- sources --------------------------------------------------------------------------
    async def create_source(
        self, name: str, source_type: str, secret: str | None, creator: str
    ) -> tuple[EventSource, str]:
        """A new source and its secret (a Tekton URL token or a GitHub webhook secret), the
        only time the secret leaves the server."""
        if not name or len(name) > 128 or not name.isprintable():
            raise StoreError("InvalidArgument", "name must be 1-128 printable characters")
        if source_type not in SOURCE_TYPES:
            raise StoreError("InvalidArgument", f"type must be one of {', '.join(SOURCE_TYPES)}")
        if secret is None:
            secret = secrets.token_urlsafe(32)
        elif not 16 <= len(secret) <= 256 or not secret.isprintable() or " " in secret:
            raise StoreError(
                "InvalidArgument", "secret must be 16-256 printable characters without spaces"
            )
        source_id = "es_" + secrets.token_hex(8)
        source = EventSource(
            source_id=source_id,
            name=name,
            type=source_type,
            created_at=time.time(),
            created_by=creator,
        )
        if source_type == "tekton":
            source.token_sha256 = _hash(secret)
        else:
            source.secret_encrypted = self.box.seal(secret, source_id)
        await self.metadata.create_event_source(source)
        return source, secret

    async def list_sources(self) -> list[EventSource]:
        return await self.metadata.list_event_sources()

    async def get_source(self, source_id: str) -> EventSource:
        source = await self.metadata.get_event_source(source_id)
        if source is None:
            raise StoreError("NoSuchEventSource", f"no event source {source_id!r}")
        return source

    async def delete_source(self, source_id: str) -> None:
        if not await self.metadata.delete_event_source(source_id):
            raise StoreError("NoSuchEventSource", f"no event source {source_id!r}")

    # ---- authentication of deliveries -----------------------------------------------------
    async def source_by_token(self, source_id: str, token: str) -> EventSource:
        """The Tekton source whose URL token this is; 401 for any mismatch (an unknown source
        and a wrong token look the same, and take the same time)."""
        source = await self.metadata.get_event_source(source_id)
        expected = source.token_sha256 if source and source.type == "tekton" else "0" * 64
        if not hmac.compare_digest(expected, _hash(token)) or source is None:
            raise StoreError("Unauthenticated", "invalid event source or token")
        return source

    async def verify_github(self, source_id: str, body: bytes, signature: str | None) -> None:
        """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` with the source's
        secret, compared in constant time, before the body is parsed."""
        source = await self.metadata.get_event_source(source_id)
        if source is None or source.type != "github":
            raise StoreError("Unauthenticated", "invalid event source")
        if not signature:
            raise StoreError("Unauthenticated", "X-Hub-Signature-256 is required")
        secret = self.box.open(source.secret_encrypted, source.source_id)
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise StoreError("SignatureDoesNotMatch", "X-Hub-Signature-256 does not match the body")

    # ---- deliveries -----------------------------------------------------------------------
    async def tekton(
        self,
        source_id: str,
        headers: Mapping[str, str],
        body: bytes,
        may_read: ReadCheck | None = None,
    ) -> Outcome:
        return await self._counted("tekton", self._tekton(source_id, headers, body, may_read))

    async def _tekton(
        self,
        source_id: str,
        headers: Mapping[str, str],
        body: bytes,
        may_read: ReadCheck | None = None,
    ) -> Outcome:
        """A Tekton CloudEvent in binary content mode. A result naming a store object without
        its digest is resolved only when ``may_read`` says the poster may read that object:
        otherwise the event would tell anyone who may post whether a private object exists and
        what its digest is."""
        if headers.get("Ce-Specversion", "").strip() != "1.0":
            raise StoreError("InvalidRequest", "Ce-Specversion must be 1.0 (binary content mode)")
        event_id, event_type = headers.get("Ce-Id", "").strip(), headers.get("Ce-Type", "").strip()
        if not event_id or len(event_id) > 256:
            raise StoreError("InvalidRequest", "Ce-Id is required (at most 256 characters)")
        match = _TEKTON_TYPE.match(event_type)
        if match is None:
            raise StoreError("UnsupportedEvent", f"unsupported Ce-Type {event_type!r}")
        kind, phase = match.groups()
        data = _json_object(body)
        run = data.get("taskRun" if kind == "taskrun" else "pipelineRun")
        if not isinstance(run, dict):
            key = "taskRun" if kind == "taskrun" else "pipelineRun"
            raise StoreError("MalformedJSON", f"a {event_type} event carries {{{key!r}: {{…}}}}")
        meta = _dict(run.get("metadata"))
        status = _dict(run.get("status"))
        name = _str(meta.get("name")) or headers.get("Ce-Subject", "")
        namespace = _str(meta.get("namespace"))
        run_key = _str(meta.get("uid")) or f"{kind}/{namespace}/{name}"
        results = _results(status, kind)
        artifacts = await self._artifacts(results, may_read)
        now = time.time()
        event_time = _time(headers.get("Ce-Time")) or now
        condition = next(
            (c for c in status.get("conditions") or [] if _dict(c).get("type") == "Succeeded"), {}
        )
        build = BuildRecord(
            build_id=build_id_for(source_id, run_key),
            source_id=source_id,
            run_key=run_key,
            kind=kind,
            name=name,
            status=_TEKTON_STATUS[phase],
            created_at=now,
            updated_at=now,
            namespace=namespace,
            url=headers.get("Ce-Source", ""),
            commit=next(
                (str(v) for k, v in results.items() if _norm(k) in _COMMIT_RESULTS and v), ""
            ),
            started_at=_time(status.get("startTime"))
            or (event_time if phase == "started" else None),
            finished_at=_time(status.get("completionTime")),
            results=results,
            artifacts=[{"uri": uri, "digest": d} for uri, d in artifacts],
            digests=list(dict.fromkeys(d for _, d in artifacts if d)),
            details={
                k: v
                for k, v in (
                    ("reason", _str(condition.get("reason"))),
                    ("message", _str(condition.get("message"))[:1024]),
                    ("pipeline", _str(_dict(meta.get("labels")).get("tekton.dev/pipeline"))),
                    ("task", _str(_dict(meta.get("labels")).get("tekton.dev/task"))),
                )
                if v
            },
        )
        return await self._record(source_id, event_id, event_type, build)

    async def github(self, source_id: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        return await self._counted("github", self._github(source_id, headers, body))

    async def _github(self, source_id: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        """A GitHub webhook delivery whose signature :meth:`verify_github` checked."""
        event = headers.get("X-GitHub-Event", "").strip()
        delivery = headers.get("X-GitHub-Delivery", "").strip()
        if event == "ping":
            return Outcome(delivery, event_type="ping")
        if event != "workflow_run":
            raise StoreError(
                "UnsupportedEvent", f"unsupported GitHub event {event!r} (send workflow_run)"
            )
        if not delivery or len(delivery) > 256:
            raise StoreError("InvalidRequest", "X-GitHub-Delivery is required")
        data = _json_object(body)
        action, run = data.get("action"), data.get("workflow_run")
        if action not in _GITHUB_ACTIONS or not isinstance(run, dict):
            raise StoreError("UnsupportedEvent", f"unsupported workflow_run action {action!r}")
        repository = _str(_dict(run.get("repository")).get("full_name")) or _str(
            _dict(data.get("repository")).get("full_name")
        )
        run_id = run.get("id")
        if not repository or isinstance(run_id, bool) or not isinstance(run_id, int | str):
            raise StoreError("MalformedJSON", "workflow_run needs an id and repository.full_name")
        conclusion = _str(run.get("conclusion"))
        status = _GITHUB_ACTIONS[action] or ("succeeded" if conclusion == "success" else "failed")
        run_key = f"{repository}#{run_id}"
        now = time.time()
        linked = await self.metadata.find_objects_by_labels(
            {"github.repository": repository, "github.run_id": str(run_id)}
        )
        build = BuildRecord(
            build_id=build_id_for(source_id, run_key),
            source_id=source_id,
            run_key=run_key,
            kind="workflow_run",
            name=_str(run.get("name")),
            status=status,
            created_at=now,
            updated_at=now,
            url=_str(run.get("html_url")),
            commit=_str(run.get("head_sha")),
            repository=repository,
            attempt=run.get("run_attempt") if isinstance(run.get("run_attempt"), int) else 0,
            started_at=_time(run.get("run_started_at")),
            finished_at=_time(run.get("updated_at")) if action == "completed" else None,
            digests=list(dict.fromkeys(o.digest for o in linked)),
            details={
                k: v
                for k, v in (
                    ("run_id", str(run_id)),
                    ("branch", _str(run.get("head_branch"))),
                    ("event", _str(run.get("event"))),
                    ("conclusion", conclusion),
                )
                if v
            },
        )
        return await self._record(source_id, delivery, f"workflow_run.{action}", build)

    async def _record(
        self, source_id: str, event_id: str, event_type: str, build: BuildRecord
    ) -> Outcome:
        """Record the delivery once, then fold it into its run's build record."""
        claimed = await self.metadata.add_inbound_event(
            InboundEvent(source_id, event_id, event_type, time.time(), build.build_id)
        )
        if not claimed:
            return Outcome(event_id, duplicate=True, event_type=event_type)
        try:
            previous = await self.metadata.get_build(build.build_id)
            if previous is not None:
                build = _merge(previous, build)
            await self.metadata.put_build(build)
        except BaseException:
            # Not processed: forget the delivery so the sender's retry is accepted.
            await self.metadata.delete_inbound_event(source_id, event_id)
            raise
        stored = await self.metadata.get_build(build.build_id)
        return Outcome(event_id, build=stored or build, event_type=event_type)

    async def _artifacts(
        self, results: dict[str, Any], may_read: ReadCheck | None
    ) -> list[tuple[str, str]]:
        """(uri, digest) of every artifact the results name; a store URI without a digest is
        resolved to the object's current digest when the poster may read it."""
        named: list[tuple[str, str]] = []
        pairs: dict[tuple[str, str], dict[str, str]] = {}
        for name, value in results.items():
            upper = name.upper()
            if upper.endswith("ARTIFACT_OUTPUTS") and isinstance(value, dict):
                if _prefix_ok(upper, "ARTIFACT_OUTPUTS"):
                    named.append((_str(value.get("uri")), _str(value.get("digest"))))
            elif (
                upper.endswith("IMAGES") and _prefix_ok(upper, "IMAGES") and isinstance(value, str)
            ):
                for ref in re.split(r"[\s,]+", value):
                    uri, _, digest = ref.partition("@")
                    if digest:
                        named.append((uri, digest))
            for family, uri_suffix, digest_suffix in (
                ("artifact", "ARTIFACT_URI", "ARTIFACT_DIGEST"),
                ("image", "IMAGE_URL", "IMAGE_DIGEST"),
            ):
                for suffix, part in ((uri_suffix, "uri"), (digest_suffix, "digest")):
                    if upper.endswith(suffix) and _prefix_ok(upper, suffix):
                        key = (family, upper[: -len(suffix)])
                        pairs.setdefault(key, {})[part] = _str(value)
        named += [(p.get("uri", ""), p.get("digest", "")) for p in pairs.values()]
        out: list[tuple[str, str]] = []
        for uri, digest in named:
            uri = uri.strip()
            try:
                digest = normalize_sha256(digest) if digest else await self._resolve(uri, may_read)
            except StoreError:
                digest = ""  # not a sha256 digest: kept as named, linked to nothing
            if uri or digest:
                out.append((uri, digest))
        return out

    async def _resolve(self, uri: str, may_read: ReadCheck | None) -> str:
        """The current digest of the object a store URI names (``zot://b/k``, ``s3://b/k``,
        ``http(s)://host/v1/buckets/b/objects/k``); "" when it names none or the poster may
        not read it (the same answer, so the two cannot be told apart)."""
        parts = urlsplit(uri)
        if parts.scheme in ("zot", "s3"):
            bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        elif parts.scheme in ("http", "https") and (m := _STORE_PATH.match(parts.path)):
            bucket, key = unquote(m.group(1)), unquote(m.group(2))
        else:
            return ""
        if not bucket or not key or may_read is None or not await may_read(bucket, key):
            return ""
        record = await self.metadata.get_object(bucket, key)
        return record.digest if record is not None else ""

    # ---- links from uploads ---------------------------------------------------------------
    async def object_published(self, record: ObjectRecord) -> None:
        """An object labelled with a GitHub run joins the builds of that run (the run's
        events may have arrived before the upload)."""
        repository, run_id = (record.labels.get(k) for k in RUN_LABELS)
        if not repository or not run_id:
            return
        builds, _ = await self.metadata.list_builds(
            BuildQuery(run_key=f"{repository}#{run_id}"), limit=100
        )
        for build in builds:
            await self.metadata.link_build(build.build_id, [record.digest])

    # ---- reading --------------------------------------------------------------------------
    async def builds_of(self, digest: str) -> list[BuildRecord]:
        builds, _ = await self.metadata.list_builds(BuildQuery(digest=digest), limit=100)
        return builds

    async def list_builds(
        self, query: BuildQuery, before: tuple[float, str] | None, limit: int
    ) -> tuple[list[BuildRecord], bool]:
        return await self.metadata.list_builds(query, before, limit)

    async def get_build(self, build_id: str) -> BuildRecord:
        build = await self.metadata.get_build(build_id)
        if build is None:
            raise StoreError("NoSuchBuild", f"no build {build_id!r}")
        return build


def _merge(previous: BuildRecord, new: BuildRecord) -> BuildRecord:
    """A run's record after one more event: what the event says wins, except that a delayed
    event of an earlier phase (a ``started`` after ``successful``) does not move the run back
    unless it is a new attempt, and fields the event leaves empty keep their value."""
    later_attempt = new.attempt > previous.attempt
    if not later_attempt and _RANK.get(new.status, 1) < _RANK.get(previous.status, 1):
        new.status, new.finished_at = previous.status, previous.finished_at
    for name in ("name", "namespace", "url", "commit", "repository"):
        if not getattr(new, name):
            setattr(new, name, getattr(previous, name))
    if previous.started_at is not None and (new.started_at is None or not later_attempt):
        new.started_at = previous.started_at
    if new.finished_at is None and not later_attempt and _RANK.get(new.status) == 2:
        new.finished_at = previous.finished_at
    if not new.results:
        new.results, new.artifacts = previous.results, previous.artifacts
    new.attempt = max(new.attempt, previous.attempt)
    new.details = {**previous.details, **new.details}
    new.created_at = previous.created_at
    return new


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = jsonbody.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError("MalformedJSON", f"the event body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StoreError("MalformedJSON", "the event body must be a JSON object")
    return data


def _results(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """Results by name: Tekton v1 ``status.results``; v1beta1 ``taskResults`` /
    ``pipelineResults``."""
    legacy = "taskResults" if kind == "taskrun" else "pipelineResults"
    raw = status.get("results") or status.get(legacy) or []
    out: dict[str, Any] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out[item["name"]] = item.get("value")
    return out


def _prefix_ok(name: str, suffix: str) -> bool:
    """``IMAGE_URL``, ``APP_IMAGE_URL`` and ``app-IMAGE_URL`` name a pair; ``XIMAGE_URL``
    does not."""
    prefix = name[: -len(suffix)]
    return not prefix or prefix[-1] in "_-"


def _norm(name: str) -> str:
    return name.upper().replace("-", "_")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value.replace("Z", "+00:00"))
    except ValueError:
        return None
