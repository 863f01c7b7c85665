"""The asyncio client: :class:`AsyncClient` (the same operations as :class:`Client`, as
coroutines; listings as async iterators; parallel parts as asyncio tasks)."""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, BinaryIO, Union

import httpx

from ._config import ClientConfig, accepted, body_headers, classify, request_args
from ._ops import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    Document,
    Pager,
    ProgressCallback,
    UploadSource,
    gate_url,
    webhook_options,
)
from ._protocol import Blocking, Body, BytesSource, Call, Op, Parallel, Reply, Sleep, T
from .errors import error_from_response
from .models import (
    ApiToken,
    AuditRecord,
    BatchKeysResult,
    BatchResult,
    BatchUpload,
    BatchVerification,
    Bucket,
    Evidence,
    ObjectInfo,
    Subject,
    TrustedKey,
    Upload,
    VerificationGate,
    VerificationResult,
    Webhook,
    WebhookDelivery,
)

__all__ = ["AsyncClient"]

Dest = Union[str, "os.PathLike[str]", BinaryIO]


class AsyncClient(ClientConfig):
    """An asyncio client of the store's ``/v1`` API: ``async with AsyncClient(...) as c``.
    Blocking file work (hashing, reading parts) runs in worker threads."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._http = httpx.AsyncClient(**self._httpx_options)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---- the driver -----------------------------------------------------------------------

    async def _run(self, op: Op[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                instr = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            try:
                value = await self._do(instr)
            except Exception as exc:
                error = exc

    async def _do(self, instr: Any) -> Any:
        if isinstance(instr, Call):
            return await self._send(instr)
        if isinstance(instr, Blocking):
            return await asyncio.to_thread(instr.fn)
        if isinstance(instr, Sleep):
            await asyncio.sleep(instr.seconds)
            return None
        if isinstance(instr, Parallel):
            return await self._parallel(instr)
        raise TypeError(f"unknown instruction {instr!r}")

    async def _parallel(self, instr: Parallel) -> list[Any]:
        """At most ``limit`` at a time; after a failure no new one starts, those running
        finish (a part being sent is worth keeping for a resume), then the failure is raised."""
        gate = asyncio.Semaphore(instr.limit)
        failures: list[BaseException] = []

        async def one(op: Op[Any]) -> Any:
            async with gate:
                if failures:
                    op.close()
                    return None
                try:
                    return await self._run(op)
                except BaseException as exc:
                    failures.append(exc)
                    raise

        results = await asyncio.gather(*(one(op) for op in instr.ops), return_exceptions=True)
        if failures:
            raise failures[0]
        return results

    async def _body(self, body: Body) -> AsyncIterator[bytes]:
        if body.on_start is not None:
            body.on_start()
        chunks = body.source.iter_range(body.offset, body.length)
        in_memory = isinstance(body.source, BytesSource)
        while True:
            chunk = next(chunks, None) if in_memory else await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                return
            if body.on_chunk is not None:
                body.on_chunk(chunk)
            yield chunk

    async def _send(self, call: Call) -> Reply:
        args = request_args(call)
        if call.body is not None:
            body_headers(call.body, args["headers"])
            args["content"] = self._body(call.body)
        try:
            if call.on_chunk is None:
                r = await self._http.request(call.method, call.url, **args)
                if not accepted(call, r.status_code):
                    raise error_from_response(r.status_code, r.headers, r.content)
                return Reply(r.status_code, r.headers, r.content)
            async with self._http.stream(call.method, call.url, **args) as r:
                if not accepted(call, r.status_code):
                    raise error_from_response(r.status_code, r.headers, await r.aread())
                reply = Reply(r.status_code, r.headers)
                if call.on_headers is not None:
                    call.on_headers(reply)
                async for chunk in r.aiter_bytes():
                    call.on_chunk(chunk)
                return reply
        except httpx.TransportError as exc:
            raise classify(exc) from exc

    # ---- buckets --------------------------------------------------------------------------

    async def create_bucket(
        self,
        name: str,
        exist_ok: bool = False,
        *,
        public_read: bool | None = None,
        labels: Mapping[str, str] | None = None,
        web: bool | None = None,
    ) -> Bucket:
        return await self._run(self.ops.create_bucket(name, exist_ok, public_read, labels, web))

    async def get_bucket(self, name: str) -> Bucket:
        return await self._run(self.ops.get_bucket(name))

    async def list_buckets(self) -> list[Bucket]:
        return await self._run(self.ops.list_buckets())

    async def delete_bucket(self, name: str, recursive: bool = False) -> None:
        await self._run(self.ops.delete_bucket(name, recursive))

    # ---- objects --------------------------------------------------------------------------

    async def upload(
        self,
        bucket: str,
        key: str,
        source: UploadSource,
        *,
        content_type: str | None = None,
        labels: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        parallel: int = 4,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        progress: ProgressCallback | None = None,
        resume: bool = True,
        overwrite: bool = True,
        expires_in: int | None = None,
    ) -> ObjectInfo:
        return await self._run(
            self.ops.upload(
                bucket, key, source, content_type=content_type, labels=labels,
                part_size=part_size, parallel=parallel, multipart_threshold=multipart_threshold,
                progress=progress, resume=resume, overwrite=overwrite, expires_in=expires_in,
            )
        )  # fmt: skip

    async def download(
        self,
        bucket: str,
        key: str,
        dest: Dest,
        *,
        progress: ProgressCallback | None = None,
        resume: bool = True,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectInfo:
        """As :meth:`zot_artifacts.Client.download` (``offset`` / ``length``: a byte range)."""
        return await self._run(
            self.ops.download(bucket, key, dest, progress, resume, offset, length)
        )

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        return await self._run(self.ops.head(bucket, key))

    async def exists(self, bucket: str, key: str) -> bool:
        return await self._run(self.ops.exists(bucket, key))

    async def delete(self, bucket: str, key: str) -> None:
        await self._run(self.ops.delete(bucket, key))

    async def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        content_type: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        return await self._run(
            self.ops.copy(src_bucket, src_key, dst_bucket, dst_key, content_type, labels)
        )

    # ---- batch ----------------------------------------------------------------------------

    async def batch(
        self,
        bucket: str,
        objects: Sequence[Mapping[str, Any]],
        *,
        operation: str = "upload",
        expires_in: int = 3600,
    ) -> BatchResult:
        """``POST /v1/batch`` (the Git LFS batch model): for each ``{"key", "sha256",
        "size"}`` (``content_type`` optional) what to do, in order: ``present`` (nothing),
        ``linked`` (linked server-side from an object you may read), ``upload`` /
        ``download`` (``action.href``, presigned for ``expires_in`` seconds; an upload href
        takes exactly the declared bytes) or ``error``. More than 1,000 objects go in
        several requests."""
        return await self._run(self.ops.batch(bucket, objects, operation, expires_in))

    async def batch_delete(self, bucket: str, keys: Sequence[str]) -> BatchKeysResult:
        """Delete many keys, each as :meth:`delete` would; a result per key (``deleted`` or
        ``error``), never an exception for one key."""
        return await self._run(self.ops.batch_keys("delete", bucket, keys))

    async def batch_head(self, bucket: str, keys: Sequence[str]) -> BatchKeysResult:
        """Many keys' metadata: ``found`` with ``object`` (an :class:`ObjectInfo`) or
        ``error``, per key."""
        return await self._run(self.ops.batch_keys("head", bucket, keys))

    async def batch_verify(
        self, subjects: Sequence[Subject], policy: Mapping[str, Any], *, issue_vsa: bool = False
    ) -> BatchVerification:
        """Verify many subjects against one policy in one call (per 1,000): each result as
        :meth:`verify` would give it, or its error; true when every subject passed."""
        return await self._run(self.ops.batch_verify(subjects, policy, issue_vsa))

    async def upload_many(
        self,
        bucket: str,
        files: Mapping[str, UploadSource],
        *,
        content_types: Mapping[str, str | None] | None = None,
        parallel: int = 4,
        part_size: int = DEFAULT_PART_SIZE,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        progress: ProgressCallback | None = None,
        expires_in: int = 3600,
    ) -> BatchUpload:
        """Upload ``files`` (key → path or bytes) sending only what the store needs: one
        :meth:`batch` call says which keys already hold that content (``present``) or were
        linked server-side (``linked``); the rest go up ``parallel`` at a time through their
        presigned hrefs (large files as resumable multipart uploads). A file that fails is
        in ``failed``; the others still go."""
        return await self._run(
            self.ops.upload_many(
                bucket, files, content_types=content_types or {}, parallel=parallel,
                part_size=part_size, multipart_threshold=multipart_threshold,
                progress=progress, expires_in=expires_in,
            )
        )  # fmt: skip

    async def presign(
        self, bucket: str, key: str, *, method: str = "GET", expires_in: int = 3600
    ) -> str:
        return await self._run(self.ops.presign(bucket, key, method, expires_in))

    def list(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        *,
        recursive: bool = True,
        page_size: int = 1000,
    ) -> AsyncIterator[ObjectInfo]:
        if not recursive and delimiter is None:
            delimiter = "/"
        return self._iterate(self.ops.list_pager(bucket, prefix, delimiter, page_size, "objects"))

    async def list_prefixes(
        self, bucket: str, prefix: str = "", delimiter: str = "/"
    ) -> builtins.list[str]:
        pager = self.ops.list_pager(bucket, prefix, delimiter, 1000, "common_prefixes")
        return [p async for p in self._iterate(pager)]

    async def _iterate(self, pager: Pager) -> AsyncIterator[Any]:
        while (page := pager.next_page()) is not None:
            for item in await self._run(page):
                yield item

    async def list_uploads(self, bucket: str, prefix: str = "") -> builtins.list[Upload]:
        return await self._run(self.ops.list_uploads(bucket, prefix))

    async def get_upload(self, bucket: str, upload_id: str) -> Upload:
        return await self._run(self.ops.get_upload(bucket, upload_id))

    async def abort_upload(self, bucket: str, upload_id: str) -> None:
        await self._run(self.ops.abort_upload(bucket, upload_id))

    # ---- supply chain ---------------------------------------------------------------------

    async def sign(
        self, subject: Subject, *, predicate_type: str | None = None, predicate: Any = None
    ) -> Evidence:
        return await self._run(self.ops.sign(subject, predicate_type, predicate))

    async def provenance(self, objects: Sequence[tuple[str, str]]) -> list[Evidence]:
        return await self._run(self.ops.provenance(objects))

    async def attach_signature(
        self, subject: Subject, data: Document, content_type: str | None = None
    ) -> Evidence:
        return await self._run(self.ops.attach(subject, "signatures", data, content_type))

    async def attach_sbom(
        self, subject: Subject, data: Document, content_type: str | None = None
    ) -> Evidence:
        return await self._run(self.ops.attach(subject, "sboms", data, content_type))

    async def attach_attestation(self, subject: Subject, envelope: Document) -> Evidence:
        return await self._run(self.ops.attach(subject, "attestations", envelope, None))

    async def list_evidence(
        self, subject: Subject, kind: str | None = None
    ) -> builtins.list[Evidence]:
        return await self._run(self.ops.list_evidence(subject, kind))

    async def get_evidence(self, evidence_id: str) -> bytes:
        return await self._run(self.ops.get_evidence(evidence_id))

    async def verify(
        self, subject: Subject, policy: Mapping[str, Any], *, issue_vsa: bool = False
    ) -> VerificationResult:
        return await self._run(self.ops.verify(subject, policy, issue_vsa))

    async def set_verification(
        self, bucket: str, policy: Mapping[str, Any], mode: str = "audit", *, name: str = "default"
    ) -> VerificationGate:
        return await self._run(self.ops.set_verification(gate_url(bucket), policy, mode, name))

    async def get_verification(self, bucket: str) -> VerificationGate:
        return await self._run(self.ops.get_verification(gate_url(bucket)))

    async def delete_verification(self, bucket: str) -> None:
        await self._run(self.ops.delete_verification(gate_url(bucket)))

    async def set_repository_verification(
        self,
        repositories: str,
        policy: Mapping[str, Any],
        mode: str = "audit",
        *,
        name: str = "default",
    ) -> VerificationGate:
        return await self._run(
            self.ops.set_verification(gate_url(repositories=repositories), policy, mode, name)
        )

    async def get_repository_verification(self, repositories: str) -> VerificationGate:
        return await self._run(self.ops.get_verification(gate_url(repositories=repositories)))

    async def delete_repository_verification(self, repositories: str) -> None:
        await self._run(self.ops.delete_verification(gate_url(repositories=repositories)))

    async def search_sboms(
        self, purl: str | None = None, name: str | None = None, *, limit: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        return await self._run(self.ops.search_sboms(purl, name, limit))

    # ---- identity and audit ---------------------------------------------------------------

    async def authorize(
        self, action: str, resource: str = "", *, principal: str | None = None
    ) -> dict[str, Any]:
        return await self._run(self.ops.authorize(action, resource, principal))

    async def whoami(self) -> str:
        answer = await self._run(self.ops.authorize("sts:GetCallerIdentity", "", None))
        return str(answer["principal"])

    async def create_token(
        self,
        name: str,
        roles: Iterable[str],
        *,
        expires_in: float | None = None,
        statements: builtins.list[dict[str, Any]] | None = None,
    ) -> ApiToken:
        return await self._run(self.ops.create_token(name, roles, expires_in, statements))

    async def list_tokens(self) -> builtins.list[ApiToken]:
        return await self._run(self.ops.list_tokens())

    async def revoke_token(self, token_id: str) -> None:
        await self._run(self.ops.revoke_token(token_id))

    async def add_key(
        self,
        public_key: Document,
        name: str,
        *,
        scope: str = "",
        expires_in: float | None = None,
    ) -> TrustedKey:
        return await self._run(self.ops.add_key(public_key, name, scope, expires_in))

    async def list_keys(self) -> builtins.list[TrustedKey]:
        return await self._run(self.ops.list_keys())

    async def revoke_key(self, key_id: str) -> None:
        await self._run(self.ops.revoke_key(key_id))

    # ---- webhooks (admins: webhooks:Manage) ---------------------------------------------------

    async def create_webhook(
        self,
        url: str,
        events: Iterable[str],
        *,
        buckets: Iterable[str] | None = None,
        repositories: Iterable[str] | None = None,
        key_prefix: str | None = None,
        format: str = "standard-webhooks",
        description: str = "",
        active: bool = True,
    ) -> Webhook:
        options = webhook_options(buckets, repositories, key_prefix, format, description, active)
        return await self._run(self.ops.create_webhook(url, events, options))

    async def list_webhooks(self) -> builtins.list[Webhook]:
        return await self._run(self.ops.list_webhooks())

    async def get_webhook(self, webhook_id: str) -> Webhook:
        return await self._run(self.ops.get_webhook(webhook_id))

    async def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook:
        return await self._run(self.ops.update_webhook(webhook_id, changes))

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._run(self.ops.delete_webhook(webhook_id))

    async def rotate_webhook_secret(
        self, webhook_id: str, *, grace_seconds: float | None = None
    ) -> Webhook:
        return await self._run(self.ops.rotate_webhook_secret(webhook_id, grace_seconds))

    async def test_webhook(self, webhook_id: str) -> WebhookDelivery:
        return await self._run(self.ops.test_webhook(webhook_id))

    def webhook_deliveries(
        self, webhook_id: str, *, page_size: int = 100
    ) -> AsyncIterator[WebhookDelivery]:
        return self._iterate(self.ops.deliveries_pager(webhook_id, page_size))

    async def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        return await self._run(self.ops.redeliver(webhook_id, delivery_id))

    def audit(
        self,
        *,
        principal: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        decision: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[AuditRecord]:
        filters = {
            "principal": principal, "action": action, "resource": resource,
            "decision": decision, "since": since, "until": until,
        }  # fmt: skip
        return self._iterate(self.ops.audit_pager(filters, page_size))


def _share_docs() -> None:
    """The coroutines say what the blocking methods say (one text, kept in client.py)."""
    from .client import Client

    for name, member in vars(AsyncClient).items():
        blocking = getattr(Client, name, None)
        if callable(member) and blocking is not None and member.__doc__ is None:
            member.__doc__ = blocking.__doc__


_share_docs()
