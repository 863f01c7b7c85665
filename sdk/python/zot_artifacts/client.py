"""The blocking client: :class:`Client`."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
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
from ._protocol import Blocking, Body, Call, Op, Parallel, Reply, Sleep, T
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

__all__ = ["Client"]

Dest = Union[str, "os.PathLike[str]", BinaryIO]


class Client(ClientConfig):
    """A blocking client of the store's ``/v1`` API; thread-safe. Use it as a context manager
    or call :meth:`close`.

    >>> c = Client("http://127.0.0.1:8080", auth=TokenAuth("zat_..."))  # doctest: +SKIP
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._http = httpx.Client(**self._httpx_options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- the driver -----------------------------------------------------------------------

    def _run(self, op: Op[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                instr = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            try:
                value = self._do(instr)
            except Exception as exc:
                error = exc

    def _do(self, instr: Any) -> Any:
        if isinstance(instr, Call):
            return self._send(instr)
        if isinstance(instr, Blocking):
            return instr.fn()
        if isinstance(instr, Sleep):
            time.sleep(instr.seconds)
            return None
        if isinstance(instr, Parallel):
            return self._parallel(instr)
        raise TypeError(f"unknown instruction {instr!r}")

    def _parallel(self, instr: Parallel) -> list[Any]:
        with ThreadPoolExecutor(
            max_workers=instr.limit, thread_name_prefix="zot-artifacts"
        ) as pool:
            futures = [pool.submit(self._run, op) for op in instr.ops]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                for f in futures:
                    f.cancel()
                raise failed[0].exception()  # type: ignore[misc]
            return [f.result() for f in futures]

    def _body(self, body: Body) -> Iterator[bytes]:
        if body.on_start is not None:
            body.on_start()
        for chunk in body.source.iter_range(body.offset, body.length):
            if body.on_chunk is not None:
                body.on_chunk(chunk)
            yield chunk

    def _send(self, call: Call) -> Reply:
        args = request_args(call)
        if call.body is not None:
            body_headers(call.body, args["headers"])
            args["content"] = self._body(call.body)
        try:
            if call.on_chunk is None:
                r = self._http.request(call.method, call.url, **args)
                if not accepted(call, r.status_code):
                    raise error_from_response(r.status_code, r.headers, r.content)
                return Reply(r.status_code, r.headers, r.content)
            with self._http.stream(call.method, call.url, **args) as r:
                if not accepted(call, r.status_code):
                    raise error_from_response(r.status_code, r.headers, r.read())
                reply = Reply(r.status_code, r.headers)
                if call.on_headers is not None:
                    call.on_headers(reply)
                for chunk in r.iter_bytes():
                    call.on_chunk(chunk)
                return reply
        except httpx.TransportError as exc:
            raise classify(exc) from exc

    # ---- buckets --------------------------------------------------------------------------

    def create_bucket(
        self,
        name: str,
        exist_ok: bool = False,
        *,
        public_read: bool | None = None,
        labels: Mapping[str, str] | None = None,
        web: bool | None = None,
    ) -> Bucket:
        """Create a bucket (``public_read``: anyone may read it; ``web``: HTML, SVG, scripts…
        are served inline, as a static site needs, not as attachments). When it exists: with
        ``exist_ok`` apply the given settings and return it, else raise
        :class:`ConflictError` (code ``BucketAlreadyExists``) and change nothing."""
        return self._run(self.ops.create_bucket(name, exist_ok, public_read, labels, web))

    def get_bucket(self, name: str) -> Bucket:
        return self._run(self.ops.get_bucket(name))

    def list_buckets(self) -> list[Bucket]:
        return self._run(self.ops.list_buckets())

    def delete_bucket(self, name: str, recursive: bool = False) -> None:
        """Delete a bucket; ``recursive`` deletes its objects first (else it must be empty)."""
        self._run(self.ops.delete_bucket(name, recursive))

    # ---- objects --------------------------------------------------------------------------

    def upload(
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
        """Upload a path, bytes or a binary file object (read in chunks).

        Below ``multipart_threshold`` (or when the size cannot be known: a non-seekable
        stream) one streamed PUT, with ``X-Checksum-Sha256`` computed first when the source
        can be read twice, else compared with the store's digest afterwards. Above it, a
        multipart upload: ``parallel`` parts of ``part_size`` at a time, each with its sha256,
        completed with the whole object's sha256. With ``resume`` an interrupted upload of the
        same key is continued: parts already stored with the same size and sha256 are not
        sent again. ``progress(UploadProgress)`` is called as bytes go out. With
        ``overwrite=False`` an existing object is never replaced: the store refuses the write
        when it would be published (:class:`PreconditionFailedError`), and a large upload
        checks first, before sending any part. With ``expires_in`` (seconds) the store
        removes the object that long after it receives it (``ObjectInfo.expires_at``)."""
        return self._run(
            self.ops.upload(
                bucket, key, source, content_type=content_type, labels=labels,
                part_size=part_size, parallel=parallel, multipart_threshold=multipart_threshold,
                progress=progress, resume=resume, overwrite=overwrite, expires_in=expires_in,
            )
        )  # fmt: skip

    def download(
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
        """Download to a path (through ``<dest>.part``, renamed when complete) or a writable
        binary stream. A dropped connection is resumed with ``Range``/``If-Range``; with
        ``resume`` a ``.part`` left by an earlier call is continued. The sha256 must equal
        the store's, else ``ArtifactStoreError(code="ChecksumMismatch")`` and the partial
        file is removed.

        ``offset`` / ``length`` download a byte range only (``length`` None: to the end): the
        returned ``size`` is the bytes written; a range cannot be checked against the
        object's sha256, and an object that changes midway fails with ``ObjectChanged``."""
        return self._run(self.ops.download(bucket, key, dest, progress, resume, offset, length))

    def head(self, bucket: str, key: str) -> ObjectInfo:
        return self._run(self.ops.head(bucket, key))

    def exists(self, bucket: str, key: str) -> bool:
        return self._run(self.ops.exists(bucket, key))

    def delete(self, bucket: str, key: str) -> None:
        self._run(self.ops.delete(bucket, key))

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        content_type: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Server-side copy (no bytes pass through the client); the copy keeps the source's
        content type and labels unless given."""
        return self._run(
            self.ops.copy(src_bucket, src_key, dst_bucket, dst_key, content_type, labels)
        )

    # ---- batch ----------------------------------------------------------------------------

    def batch(
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
        return self._run(self.ops.batch(bucket, objects, operation, expires_in))

    def batch_delete(self, bucket: str, keys: Sequence[str]) -> BatchKeysResult:
        """Delete many keys, each as :meth:`delete` would; a result per key (``deleted`` or
        ``error``), never an exception for one key."""
        return self._run(self.ops.batch_keys("delete", bucket, keys))

    def batch_head(self, bucket: str, keys: Sequence[str]) -> BatchKeysResult:
        """Many keys' metadata: ``found`` with ``object`` (an :class:`ObjectInfo`) or
        ``error``, per key."""
        return self._run(self.ops.batch_keys("head", bucket, keys))

    def batch_verify(
        self, subjects: Sequence[Subject], policy: Mapping[str, Any], *, issue_vsa: bool = False
    ) -> BatchVerification:
        """Verify many subjects against one policy in one call (per 1,000): each result as
        :meth:`verify` would give it, or its error; true when every subject passed."""
        return self._run(self.ops.batch_verify(subjects, policy, issue_vsa))

    def upload_many(
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
        return self._run(
            self.ops.upload_many(
                bucket, files, content_types=content_types or {}, parallel=parallel,
                part_size=part_size, multipart_threshold=multipart_threshold,
                progress=progress, expires_in=expires_in,
            )
        )  # fmt: skip

    def presign(self, bucket: str, key: str, *, method: str = "GET", expires_in: int = 3600) -> str:
        """A URL that allows ``method`` (GET, HEAD or PUT) on this object without
        credentials until it expires (1 s .. 7 days)."""
        return self._run(self.ops.presign(bucket, key, method, expires_in))

    def list(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        *,
        recursive: bool = True,
        page_size: int = 1000,
    ) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, following continuation tokens lazily.
        ``recursive=False`` (or a ``delimiter``) lists one level: objects whose key has no
        further ``delimiter`` (default ``/``); see :meth:`list_prefixes` for the rest."""
        if not recursive and delimiter is None:
            delimiter = "/"
        return self._iterate(self.ops.list_pager(bucket, prefix, delimiter, page_size, "objects"))

    def list_prefixes(
        self, bucket: str, prefix: str = "", delimiter: str = "/"
    ) -> builtins.list[str]:
        """The "directories" one level under ``prefix`` (common prefixes, ending with
        ``delimiter``)."""
        pager = self.ops.list_pager(bucket, prefix, delimiter, 1000, "common_prefixes")
        return list(self._iterate(pager))

    def _iterate(self, pager: Pager) -> Iterator[Any]:
        while (page := pager.next_page()) is not None:
            yield from self._run(page)

    def list_uploads(self, bucket: str, prefix: str = "") -> builtins.list[Upload]:
        """Multipart uploads in progress."""
        return self._run(self.ops.list_uploads(bucket, prefix))

    def get_upload(self, bucket: str, upload_id: str) -> Upload:
        return self._run(self.ops.get_upload(bucket, upload_id))

    def abort_upload(self, bucket: str, upload_id: str) -> None:
        self._run(self.ops.abort_upload(bucket, upload_id))

    # ---- supply chain ---------------------------------------------------------------------

    def sign(
        self, subject: Subject, *, predicate_type: str | None = None, predicate: Any = None
    ) -> Evidence:
        """Have the store sign ``subject`` with its own key (a DSSE envelope; with a
        predicate, an attestation of ``predicate_type``)."""
        return self._run(self.ops.sign(subject, predicate_type, predicate))

    def provenance(self, objects: Sequence[tuple[str, str]]) -> list[Evidence]:
        """Have the store build SLSA v1 provenance for ``objects`` ((bucket, key) pairs you
        uploaded with this client's identity), from what it verified itself (a CI job's
        exchanged OIDC claims), sign it and attach it to each: one statement names them all."""
        return self._run(self.ops.provenance(objects))

    def attach_signature(
        self, subject: Subject, data: Document, content_type: str | None = None
    ) -> Evidence:
        """Attach a Sigstore bundle, a DSSE envelope or a raw (base64) signature: bytes or a
        path; the content type is detected when not given."""
        return self._run(self.ops.attach(subject, "signatures", data, content_type))

    def attach_sbom(
        self, subject: Subject, data: Document, content_type: str | None = None
    ) -> Evidence:
        """Attach a CycloneDX (JSON or XML) or SPDX JSON SBOM (bytes or a path)."""
        return self._run(self.ops.attach(subject, "sboms", data, content_type))

    def attach_attestation(self, subject: Subject, envelope: Document) -> Evidence:
        """Attach an in-toto statement in a signed DSSE envelope (bytes, a path or a dict)."""
        return self._run(self.ops.attach(subject, "attestations", envelope, None))

    def list_evidence(self, subject: Subject, kind: str | None = None) -> builtins.list[Evidence]:
        """Evidence about ``subject``: ``kind`` = signatures, sboms, attestations or None (all)."""
        return self._run(self.ops.list_evidence(subject, kind))

    def get_evidence(self, evidence_id: str) -> bytes:
        """An evidence document exactly as attached."""
        return self._run(self.ops.get_evidence(evidence_id))

    def verify(
        self, subject: Subject, policy: Mapping[str, Any], *, issue_vsa: bool = False
    ) -> VerificationResult:
        """Check ``subject`` against a policy (``signatures``, ``threshold``, ``sbom``,
        ``attestations``), rule by rule; ``issue_vsa`` asks for a signed VSA when it passes."""
        return self._run(self.ops.verify(subject, policy, issue_vsa))

    def set_verification(
        self, bucket: str, policy: Mapping[str, Any], mode: str = "audit", *, name: str = "default"
    ) -> VerificationGate:
        """Check every download from ``bucket`` against ``policy``: ``audit`` logs failures,
        ``enforce`` refuses them (403 VerificationFailed)."""
        return self._run(self.ops.set_verification(gate_url(bucket), policy, mode, name))

    def get_verification(self, bucket: str) -> VerificationGate:
        return self._run(self.ops.get_verification(gate_url(bucket)))

    def delete_verification(self, bucket: str) -> None:
        self._run(self.ops.delete_verification(gate_url(bucket)))

    def set_repository_verification(
        self,
        repositories: str,
        policy: Mapping[str, Any],
        mode: str = "audit",
        *,
        name: str = "default",
    ) -> VerificationGate:
        """Check every image pull from repositories matching ``repositories`` (a name or a
        glob such as ``prod/*``; the most specific gate applies) against ``policy``."""
        return self._run(
            self.ops.set_verification(gate_url(repositories=repositories), policy, mode, name)
        )

    def get_repository_verification(self, repositories: str) -> VerificationGate:
        return self._run(self.ops.get_verification(gate_url(repositories=repositories)))

    def delete_repository_verification(self, repositories: str) -> None:
        self._run(self.ops.delete_verification(gate_url(repositories=repositories)))

    def search_sboms(
        self, purl: str | None = None, name: str | None = None, *, limit: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Subjects whose SBOM lists a component (a purl with a version matches exactly)."""
        return self._run(self.ops.search_sboms(purl, name, limit))

    # ---- identity and audit ---------------------------------------------------------------

    def authorize(
        self, action: str, resource: str = "", *, principal: str | None = None
    ) -> dict[str, Any]:
        """May ``principal`` (default: the caller) do ``action`` on ``resource``: the store's
        answer ``{"principal", "action", "resource", "allowed", "reason"}``."""
        return self._run(self.ops.authorize(action, resource, principal))

    def whoami(self) -> str:
        """The principal the store sees for these credentials (``anonymous`` without any)."""
        answer = self._run(self.ops.authorize("sts:GetCallerIdentity", "", None))
        return str(answer["principal"])

    def create_token(
        self,
        name: str,
        roles: Iterable[str],
        *,
        expires_in: float | None = None,
        statements: builtins.list[dict[str, Any]] | None = None,
    ) -> ApiToken:
        """A new API token; its secret is in ``.secret`` (shown once)."""
        return self._run(self.ops.create_token(name, roles, expires_in, statements))

    def list_tokens(self) -> builtins.list[ApiToken]:
        return self._run(self.ops.list_tokens())

    def revoke_token(self, token_id: str) -> None:
        self._run(self.ops.revoke_token(token_id))

    def add_key(
        self,
        public_key: Document,
        name: str,
        *,
        scope: str = "",
        expires_in: float | None = None,
    ) -> TrustedKey:
        """Trust a public key (PEM text, bytes or a path) for signatures; ``scope`` is ``""``
        (everywhere), ``bucket:<name>`` or ``repo:<name>``."""
        return self._run(self.ops.add_key(public_key, name, scope, expires_in))

    def list_keys(self) -> builtins.list[TrustedKey]:
        return self._run(self.ops.list_keys())

    def revoke_key(self, key_id: str) -> None:
        self._run(self.ops.revoke_key(key_id))

    # ---- webhooks (admins: webhooks:Manage) ---------------------------------------------------

    def create_webhook(
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
        """Subscribe ``url`` to ``events`` (names or globs: ``object.*``); the filter keeps
        events of those buckets/repositories (globs) and key prefix. The signing secret
        (``whsec_…``) is in ``.secret``, shown once."""
        options = webhook_options(buckets, repositories, key_prefix, format, description, active)
        return self._run(self.ops.create_webhook(url, events, options))

    def list_webhooks(self) -> builtins.list[Webhook]:
        return self._run(self.ops.list_webhooks())

    def get_webhook(self, webhook_id: str) -> Webhook:
        return self._run(self.ops.get_webhook(webhook_id))

    def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook:
        """Change ``url``, ``events``, ``filter``, ``format``, ``description`` or ``active``
        (``active=True`` re-enables a subscription the store disabled)."""
        return self._run(self.ops.update_webhook(webhook_id, changes))

    def delete_webhook(self, webhook_id: str) -> None:
        self._run(self.ops.delete_webhook(webhook_id))

    def rotate_webhook_secret(
        self, webhook_id: str, *, grace_seconds: float | None = None
    ) -> Webhook:
        """A new secret (in ``.secret``); the old one stays valid for ``grace_seconds``
        (the server's default: a day), so receivers can switch without missing an event."""
        return self._run(self.ops.rotate_webhook_secret(webhook_id, grace_seconds))

    def test_webhook(self, webhook_id: str) -> WebhookDelivery:
        """Queue a ``webhook.test`` event to the subscription; its delivery (pending)."""
        return self._run(self.ops.test_webhook(webhook_id))

    def webhook_deliveries(
        self, webhook_id: str, *, page_size: int = 100
    ) -> Iterator[WebhookDelivery]:
        """The subscription's deliveries, newest first, with every attempt."""
        return self._iterate(self.ops.deliveries_pager(webhook_id, page_size))

    def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        """Send a delivery again (a new attempt, the same ``webhook-id``)."""
        return self._run(self.ops.redeliver(webhook_id, delivery_id))

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
    ) -> Iterator[AuditRecord]:
        """Audit records, newest first, following the server's cursor lazily."""
        filters = {
            "principal": principal, "action": action, "resource": resource,
            "decision": decision, "since": since, "until": until,
        }  # fmt: skip
        return self._iterate(self.ops.audit_pager(filters, page_size))
