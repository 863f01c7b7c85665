"""Batch operations (issue 21 §4): many objects or subjects in one request, each decided on
its own, in request order.

``POST /v1/batch`` follows the Git LFS batch model: for each object to upload it answers that
nothing needs to move (the key already holds that content and the caller may read it), that
the content was linked server-side from another key the caller may read (no transfer), or an
``upload`` action: a presigned PUT URL bound to the declared sha256 and size (auth/presign.py),
so that bytes through it that differ are refused and nothing is stored. Downloads get a
presigned GET URL. ``batch/delete``, ``batch/head`` and ``batch/verify`` run the single
operations' service calls item by item.

Every item is authorized on its own through :class:`Caller` (the API layer's authorizer and
audit log: the same decisions, audited alike, as the single calls); a refusal or any other
:class:`StoreError` of one item becomes that item's ``error`` and the others go on. Events
(``object.created``, ``object.deleted``, ``verification.*``) come from the services called,
as for the single calls. This module never sees an HTTP request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..auth.presign import Presigner
from ..errors import StoreError
from ..metadata import ObjectRecord
from ..timefmt import iso_time
from .artifacts import ArtifactService, PutOptions, normalize_sha256, object_json, validate_key
from .supplychain import SupplyChainService, request_resource

MAX_BATCH_ITEMS = 1000
# Items of one batch in progress at once.
CONCURRENCY = 16
# Keys holding the same content examined for a link (the first one the caller may read wins).
LINK_CANDIDATES = 20
OPERATIONS = ("upload", "download")
OBJECT_FIELDS = frozenset({"key", "sha256", "size", "content_type"})


@dataclass(frozen=True)
class Caller:
    """Who a batch acts for, as the API layer authorizes and audits them: ``refusal(action,
    resource)`` asks the authorizer, audits its decision and returns the 401/403 error it
    means (None when allowed); ``audit(action, resource, allowed, reason, **detail)`` records
    what was done."""

    principal_id: str
    refusal: Callable[[str, str], Awaitable[StoreError | None]]
    audit: Callable[..., None]


def check_batch_size(items: object, field: str) -> list[Any]:
    """``items`` as a non-empty list of at most :data:`MAX_BATCH_ITEMS` (413 beyond)."""
    if not isinstance(items, list) or not items:
        raise StoreError("MalformedJSON", f"{field} must be a non-empty list")
    if len(items) > MAX_BATCH_ITEMS:
        raise StoreError(
            "BatchTooLarge",
            f"a batch takes at most {MAX_BATCH_ITEMS} {field}; this one has {len(items)}: split it",
            detail={"limit": MAX_BATCH_ITEMS, "given": len(items)},
        )
    return items


async def in_order(
    items: list[Any], one: Callable[[Any], Awaitable[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``one(item)`` for every item, :data:`CONCURRENCY` at a time (their metadata round
    trips overlap), the results in the items' order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def bounded(item: Any) -> dict[str, Any]:
        async with gate:
            return await one(item)

    return list(await asyncio.gather(*(bounded(item) for item in items)))


def error_json(error: StoreError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "status": error.status}


def _failed(item: dict[str, Any], error: StoreError) -> dict[str, Any]:
    return {**item, "result": "error", "error": error_json(error)}


def counts(results: Sequence[dict[str, Any]], outcomes: Sequence[str]) -> dict[str, int]:
    tally = dict.fromkeys(outcomes, 0)
    for result in results:
        tally[result["result"]] = tally.get(result["result"], 0) + 1
    return tally


@dataclass(frozen=True)
class BatchObject:
    key: str
    sha256: str | None  # "sha256:<hex>"
    size: int | None
    content_type: str | None


def parse_object(raw: Any, operation: str, max_size: int) -> BatchObject:
    """One ``objects`` entry: ``{key, sha256, size, content_type?}`` (sha256 and size are
    required to upload, optional to download)."""
    if not isinstance(raw, dict):
        raise StoreError("MalformedJSON", 'each object is {"key", "sha256", "size"}')
    unknown = set(raw) - OBJECT_FIELDS
    if unknown:
        raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
    key, sha256, size = raw.get("key"), raw.get("sha256"), raw.get("size")
    content_type = raw.get("content_type")
    if not isinstance(key, str):
        raise StoreError("MalformedJSON", "key must be a string")
    validate_key(key)
    if operation == "upload" and (sha256 is None or size is None):
        raise StoreError("MalformedJSON", "an upload names the object's sha256 and size")
    if sha256 is not None and not isinstance(sha256, str):
        raise StoreError("MalformedJSON", "sha256 must be a string")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise StoreError("MalformedJSON", "size must be a whole number of bytes")
    if size is not None and size > max_size:
        raise StoreError("EntityTooLarge", f"objects may be at most {max_size} bytes")
    if content_type is not None and (not isinstance(content_type, str) or operation != "upload"):
        raise StoreError("MalformedJSON", "content_type is a string, for an upload")
    return BatchObject(key, normalize_sha256(sha256) if sha256 else None, size, content_type)


def _echo(raw: Any) -> dict[str, Any]:
    """What a result repeats of its request entry (as given, even when invalid)."""
    if not isinstance(raw, dict):
        return {"key": None}
    out: dict[str, Any] = {"key": raw.get("key")}
    for name in ("sha256", "size"):
        if name in raw:
            out[name] = raw[name]
    return out


class _Plan:
    """One ``POST /v1/batch``: per-request caches (the bucket, links by digest)."""

    def __init__(
        self,
        service: BatchService,
        bucket: str,
        caller: Caller,
        base_url: str,
        expires_in: int,
    ) -> None:
        self.service = service
        self.bucket = bucket
        self.caller = caller
        self.base_url = base_url
        self.expires_in = expires_in
        # Asked once per request, however many items wait for the answer at once.
        self._bucket: asyncio.Future[StoreError | None] | None = None
        self._sources: dict[tuple[str, int], asyncio.Future[ObjectRecord | None]] = {}

    async def bucket_error(self) -> StoreError | None:
        """NoSuchBucket, told only to callers allowed the item (as a single call would)."""
        if self._bucket is None:
            self._bucket = asyncio.ensure_future(self._bucket_error())
        return await self._bucket

    async def _bucket_error(self) -> StoreError | None:
        try:
            await self.service.artifacts.get_bucket(self.bucket)
        except StoreError as exc:
            return exc
        return None

    def action(self, method: str, key: str, content: tuple[str, int] | None) -> dict[str, Any]:
        signed = self.service.presigner.sign(
            method, self.bucket, key, self.caller.principal_id, self.expires_in, content
        )
        expires_at = iso_time(signed.expires_at)
        self.caller.audit(
            "auth:Presign", f"{self.bucket}/{key}", True, f"{method} until {expires_at}"
        )
        return {
            "href": self.base_url + signed.path_and_query,
            "method": method,
            "headers": {},
            "expires_in": self.expires_in,
            "expires_at": expires_at,
        }

    async def upload(self, obj: BatchObject) -> dict[str, Any]:
        assert obj.sha256 is not None and obj.size is not None
        resource = f"{self.bucket}/{obj.key}"
        item = {"key": obj.key, "sha256": obj.sha256.removeprefix("sha256:"), "size": obj.size}
        refusal = await self.caller.refusal("s3:PutObject", resource)
        if refusal is None:
            refusal = await self.bucket_error()
        if refusal is not None:
            return _failed(item, refusal)
        current = await self.service.artifacts.metadata.get_object(self.bucket, obj.key)
        if (
            current is not None
            and current.digest == obj.sha256
            and current.size == obj.size
            # Only a caller who may read the key learns that it holds these bytes.
            and await self.caller.refusal("s3:GetObject", resource) is None
        ):
            return {**item, "result": "present"}
        source = await self.source(obj.sha256, obj.size)
        if source is not None:
            record, _ = await self.service.artifacts.copy_object(
                source,
                self.bucket,
                obj.key,
                PutOptions(content_type=obj.content_type),
                tags={},
            )
            origin = f"{source.bucket}/{source.key}"
            self.caller.audit(
                "s3:PutObject", resource, True, f"linked from {origin} (batch)",
                subject_digest=record.digest,
            )  # fmt: skip
            return {**item, "result": "linked", "linked_from": origin}
        action = self.action("PUT", obj.key, (item["sha256"], obj.size))
        action["headers"] = {"X-Checksum-Sha256": item["sha256"]}
        if obj.content_type:
            action["headers"]["Content-Type"] = obj.content_type
        return {**item, "result": "upload", "actions": {"upload": action}}

    async def source(self, digest: str, size: int) -> ObjectRecord | None:
        """An object holding ``digest`` that the caller may read and whose bucket's gate does
        not refuse it: knowing a digest never yields a copy of bytes one cannot read."""
        if (digest, size) not in self._sources:
            self._sources[digest, size] = asyncio.ensure_future(self._find_source(digest, size))
        return await self._sources[digest, size]

    async def _find_source(self, digest: str, size: int) -> ObjectRecord | None:
        service = self.service
        candidates = await service.artifacts.metadata.find_objects_by_digest(
            digest, LINK_CANDIDATES
        )
        for candidate in candidates:
            if candidate.size != size:
                continue
            outcome = await service.supplychain.gate(candidate.bucket, candidate.digest)
            if outcome is not None and not outcome[1] and outcome[0]["mode"] == "enforce":
                continue
            resource = f"{candidate.bucket}/{candidate.key}"
            if await self.caller.refusal("s3:GetObject", resource) is None:
                return candidate
        return None

    async def download(self, obj: BatchObject) -> dict[str, Any]:
        resource = f"{self.bucket}/{obj.key}"
        refusal = await self.caller.refusal("s3:GetObject", resource)
        if refusal is not None:
            return _failed(_echo_object(obj), refusal)
        try:
            record = await self.service.artifacts.head_object(self.bucket, obj.key)
        except StoreError as exc:
            return _failed(_echo_object(obj), exc)
        sha256 = record.digest.removeprefix("sha256:")
        item = {"key": obj.key, "sha256": sha256, "size": record.size}
        if (obj.sha256 is not None and obj.sha256 != record.digest) or (
            obj.size is not None and obj.size != record.size
        ):
            return _failed(
                _echo_object(obj),
                StoreError(
                    "PreconditionFailed",
                    f"{resource} holds {record.size} bytes with sha256 {sha256}, not the "
                    "declared content",
                    resource=resource,
                ),
            )
        return {
            **item,
            "result": "download",
            "actions": {"download": self.action("GET", obj.key, None)},
        }


async def _allowed_key(bucket: str, key: Any, action: str, caller: Caller) -> str:
    """``bucket/key`` of a valid key on which ``caller`` may do ``action`` (else the error)."""
    if not isinstance(key, str):
        raise StoreError("MalformedJSON", "each key is a string")
    validate_key(key)
    resource = f"{bucket}/{key}"
    refusal = await caller.refusal(action, resource)
    if refusal is not None:
        raise refusal
    return resource


def _echo_object(obj: BatchObject) -> dict[str, Any]:
    item: dict[str, Any] = {"key": obj.key}
    if obj.sha256 is not None:
        item["sha256"] = obj.sha256.removeprefix("sha256:")
    if obj.size is not None:
        item["size"] = obj.size
    return item


class BatchService:
    def __init__(
        self,
        artifacts: ArtifactService,
        supplychain: SupplyChainService,
        presigner: Presigner,
        max_object_size: int,
    ) -> None:
        self.artifacts = artifacts
        self.supplychain = supplychain
        self.presigner = presigner
        self.max_object_size = max_object_size

    async def plan(
        self,
        operation: str,
        bucket: str,
        objects: list[Any],
        expires_in: int,
        caller: Caller,
        base_url: str,
    ) -> dict[str, Any]:
        """``POST /v1/batch``: what to do for each object (see the module's docstring)."""
        if operation not in OPERATIONS:
            raise StoreError("InvalidArgument", 'operation must be "upload" or "download"')
        check_batch_size(objects, "objects")
        plan = _Plan(self, bucket, caller, base_url, expires_in)

        async def one(raw: Any) -> dict[str, Any]:
            try:
                obj = parse_object(raw, operation, self.max_object_size)
            except StoreError as exc:
                return _failed(_echo(raw), exc)
            try:
                if operation == "upload":
                    return await plan.upload(obj)
                return await plan.download(obj)
            except StoreError as exc:
                return _failed(_echo_object(obj), exc)

        results = await in_order(objects, one)
        outcomes = (
            ("present", "linked", "upload", "error")
            if operation == "upload"
            else ("download", "error")
        )
        return {
            "operation": operation,
            "bucket": bucket,
            "objects": results,
            "counts": counts(results, outcomes),
        }

    async def delete(self, bucket: str, keys: list[Any], caller: Caller) -> dict[str, Any]:
        """``POST /v1/batch/delete``: each key deleted as ``DELETE`` of the object would
        (its evidence stays with its digest, ``object.deleted`` announced)."""
        check_batch_size(keys, "keys")

        async def one(key: Any) -> dict[str, Any]:
            try:
                resource = await _allowed_key(bucket, key, "s3:DeleteObject", caller)
                deletion = await self.artifacts.delete_object(bucket, str(key), existing=True)
                removed = deletion.removed
                if removed is None:
                    raise StoreError(
                        "NoSuchKey",
                        f"object {key!r} does not exist in bucket {bucket!r}",
                        resource=resource,
                    )
            except StoreError as exc:
                return _failed({"key": key}, exc)
            return {
                "key": key,
                "result": "deleted",
                "sha256": removed.digest.removeprefix("sha256:"),
            }

        results = await in_order(keys, one)
        return {"bucket": bucket, "keys": results, "counts": counts(results, ("deleted", "error"))}

    async def head(self, bucket: str, keys: list[Any], caller: Caller) -> dict[str, Any]:
        """``POST /v1/batch/head``: each key's metadata, as ``GET …?metadata`` reads it."""
        check_batch_size(keys, "keys")

        async def one(key: Any) -> dict[str, Any]:
            try:
                await _allowed_key(bucket, key, "s3:GetObject", caller)
                record = await self.artifacts.head_object(bucket, str(key))
            except StoreError as exc:
                return _failed({"key": key}, exc)
            return {"key": key, "result": "found", "object": object_json(record)}

        results = await in_order(keys, one)
        return {"bucket": bucket, "keys": results, "counts": counts(results, ("found", "error"))}

    async def verify(
        self, subjects: list[Any], policy: Any, issue_vsa: bool, caller: Caller
    ) -> dict[str, Any]:
        """``POST /v1/batch/verify``: each subject authorized, resolved and verified as
        ``POST /v1/verify`` does it; a policy the verifier refuses fails the whole request
        (400), since it would fail every subject alike."""
        check_batch_size(subjects, "subjects")

        async def one(subject: Any) -> dict[str, Any]:
            try:
                resource = request_resource(subject)
                refusal = await caller.refusal("supplychain:verify", resource)
                if refusal is None and issue_vsa:
                    refusal = await caller.refusal("supplychain:sign", resource)
                if refusal is not None:
                    raise refusal
                digest, ref = await self.supplychain.resolve(subject)
            except StoreError as exc:
                return _failed({"subject": subject}, exc)
            # Not caught: a policy the verifier refuses fails the request.
            answer = await self.supplychain.verify_resolved(
                digest, ref, subject, policy, caller.principal_id if issue_vsa else None
            )
            passed = answer["verified"]
            caller.audit(
                "supplychain:verify", resource, True, "passed" if passed else "failed",
                subject_digest=digest,
            )  # fmt: skip
            return {**answer, "result": "passed" if passed else "failed"}

        results = await in_order(subjects, one)
        tally = counts(results, ("passed", "failed", "error"))
        return {"verified": tally["passed"] == len(results), "subjects": results, "counts": tally}
