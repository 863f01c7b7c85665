"""Every operation of the SDK, once, as a sans-IO generator (see :mod:`._protocol`): the sync
and async clients only drive these."""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import json
import os
import threading
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Union
from urllib.parse import quote

from ._protocol import Blocking, Body, Call, Instruction, Op, Parallel, Reply, Sleep, Source
from .auth import Auth
from .errors import (
    AccessDeniedError,
    ArtifactStoreError,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
)
from .models import (
    ApiToken,
    BatchAction,
    BatchError,
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
    UploadPart,
    UploadProgress,
    VerificationGate,
    VerificationResult,
    Webhook,
    WebhookDelivery,
)
from .retry import RetryPolicy

MIB = 1 << 20
DEFAULT_PART_SIZE = 16 * MIB
DEFAULT_MULTIPART_THRESHOLD = 64 * MIB
MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10_000
SIGSTORE_PREFIX = "application/vnd.dev.sigstore.bundle"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
EVIDENCE_KINDS = ("signatures", "sboms", "attestations")
# Items the store takes in one batch request; longer lists go in several.
BATCH_LIMIT = 1000
# Failures after which a request may or may not have been applied (no answer, 500, 502, 504).
OUTCOME_UNKNOWN = frozenset({0, 500, 502, 504})

ProgressCallback = Callable[[UploadProgress], None]
UploadSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]
Document = Union[bytes, str, "os.PathLike[str]", Mapping[str, Any]]


def q(segment: str, safe: str = "") -> str:
    """One path segment, percent-encoded (``/`` in keys too, so a key can never be mistaken
    for a sub-route such as ``…/signatures``)."""
    return quote(segment, safe=safe)


def object_url(bucket: str, key: str) -> str:
    return f"/v1/buckets/{q(bucket)}/objects/{q(key)}"


def gate_url(bucket: str | None = None, repositories: str | None = None) -> str:
    """A verification gate's route: a bucket's, or that of repositories (a name or a glob)."""
    if repositories is not None:
        return f"/v1/repositories/{q(repositories, safe='/*?')}/verification"
    return f"/v1/buckets/{q(str(bucket))}/verification"


def evidence_url(subject: Subject, kind: str) -> str:
    j = subject.to_json()
    if "bucket" in j:
        return f"{object_url(j['bucket'], j['key'])}/{kind}"
    return f"/v1/digests/{q(j['digest'], safe=':')}/{kind}"


@dataclass(frozen=True)
class PartPlan:
    number: int
    offset: int
    length: int


def plan_parts(size: int, part_size: int) -> list[PartPlan]:
    """Split ``size`` bytes into parts of ``part_size`` (grown when more than 10,000 parts
    would be needed; at least 5 MiB, the store's minimum for all parts but the last)."""
    part_size = max(part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))
    parts = [
        PartPlan(n + 1, off, min(part_size, size - off))
        for n, off in enumerate(range(0, size, part_size))
    ]
    return parts or [PartPlan(1, 0, 0)]


class Progress:
    """Thread-safe byte counter feeding a ``progress`` callback; each stream (part) reports
    its own count so a retried part is not counted twice."""

    def __init__(self, callback: ProgressCallback | None, total: int | None, key: str) -> None:
        self.callback = callback
        self.total = total
        self.key = key
        self._lock = threading.Lock()
        self._streams: dict[int, int] = {}

    def _report(self) -> None:
        if self.callback is not None:
            self.callback(UploadProgress(sum(self._streams.values()), self.total, self.key))

    def start(self, stream: int) -> None:
        with self._lock:
            self._streams[stream] = 0

    def add(self, stream: int, n: int) -> None:
        with self._lock:
            self._streams[stream] = self._streams.get(stream, 0) + n
            self._report()


def transport_error(exc: Exception, timeout: bool, connect: bool) -> ArtifactStoreError:
    """A failure below HTTP (classified by the driver) as an ArtifactStoreError."""
    code = "ConnectError" if connect else "Timeout" if timeout else "ConnectionError"
    return ArtifactStoreError(
        f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        code=code,
        http_status=0,
        retryable=True,
    )


def detect_signature_type(data: bytes) -> str:
    """A Sigstore bundle's own mediaType, DSSE for an envelope, text/plain for a raw
    (base64) signature as ``cosign sign-blob`` writes it."""
    doc = _json_or_none(data)
    if isinstance(doc, dict):
        media = doc.get("mediaType")
        if isinstance(media, str) and media.startswith(SIGSTORE_PREFIX):
            return media
        if "payloadType" in doc and "signatures" in doc:
            return DSSE_TYPE
        if "verificationMaterial" in doc:
            return f"{SIGSTORE_PREFIX}+json"
    return "text/plain"


def detect_sbom_type(data: bytes) -> str:
    """CycloneDX JSON or XML, or SPDX JSON, from the document itself."""
    doc = _json_or_none(data)
    if isinstance(doc, dict):
        if doc.get("bomFormat") == "CycloneDX":
            return "application/vnd.cyclonedx+json"
        if "spdxVersion" in doc:
            return "application/spdx+json"
    head = data[:4096].lstrip()
    if head.startswith(b"<") and b"cyclonedx" in head.lower():
        return "application/vnd.cyclonedx+xml"
    raise ArtifactStoreError(
        "not a CycloneDX (JSON/XML) or SPDX JSON document: pass content_type", code="UnknownFormat"
    )


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _read_document(doc: Document) -> bytes:
    if isinstance(doc, (bytes, bytearray, memoryview)):
        return bytes(doc)
    if isinstance(doc, Mapping):
        return json.dumps(doc).encode()
    with open(os.fspath(doc), "rb") as f:
        return f.read()


def object_from_headers(bucket: str, key: str, headers: Mapping[str, str]) -> ObjectInfo:
    labels: dict[str, str] = {}
    raw = headers.get("x-artifact-labels")
    if raw:
        parsed = _json_or_none(raw.encode())
        labels = dict(parsed) if isinstance(parsed, dict) else {}
    size = headers.get("content-length")
    content_range = headers.get("content-range", "")
    if "/" in content_range:
        size = content_range.rsplit("/", 1)[1]
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=int(size) if size and size.isdigit() else 0,
        sha256=headers.get("x-checksum-sha256", "").lower(),
        etag=headers.get("etag", "").strip('"'),
        content_type=headers.get("content-type", "application/octet-stream"),
        updated_at=_rfc3339(headers.get("last-modified")),
        labels=labels,
    )


def _rfc3339(http_date: str | None) -> str | None:
    """An HTTP date (``Sun, 29 Nov 2026 06:23:58 GMT``) in the RFC 3339 form the JSON API
    uses (``2026-11-29T06:23:58Z``); the header carries whole seconds."""
    if not http_date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Sink:
    """Where a download goes. For a path: ``<dest>.part`` (resumable across calls, with the
    ETag it belongs to in ``<dest>.part.etag``), renamed into place once its sha256 checks.
    For a stream: written as it comes (restartable only when seekable)."""

    def __init__(self, dest: Any, resume: bool) -> None:
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.etag: str | None = None
        self.path: str | None = None
        self.file: Any
        if isinstance(dest, (str, os.PathLike)):
            self.path = os.fspath(dest)
            self.part = self.path + ".part"
            self.etag_file = self.part + ".etag"
            if resume and os.path.exists(self.part) and os.path.exists(self.etag_file):
                with open(self.etag_file, encoding="utf-8") as f:
                    self.etag = f.read().strip() or None
                self.file = open(self.part, "r+b")
                while chunk := self.file.read(1 << 20):
                    self.hasher.update(chunk)
                self.offset = self.file.tell()
            else:
                self.file = open(self.part, "wb")
        else:
            if not hasattr(dest, "write"):
                raise TypeError("dest must be a path or a writable binary stream")
            self.file = dest
            try:
                self.start: int | None = dest.tell() if dest.seekable() else None
            except (AttributeError, OSError, ValueError):
                self.start = None

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.hasher.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        """The server sends the whole object again: drop what was written."""
        if self.path is None:
            if self.start is None:
                raise ArtifactStoreError(
                    "the download must restart but the destination stream cannot seek",
                    code="ConnectionError",
                )
            self.file.seek(self.start)
        else:
            self.file.seek(0)
        self.file.truncate()
        self.hasher = hashlib.sha256()
        self.offset = 0

    def remember(self, etag: str) -> None:
        if self.path is not None and etag and etag != self.etag:
            with open(self.etag_file, "w", encoding="utf-8") as f:
                f.write(etag)
        self.etag = etag

    def close(self) -> None:
        if self.path is not None and not self.file.closed:
            self.file.close()

    def finish(self) -> None:
        if self.path is None:
            return
        self.file.flush()
        os.fsync(self.file.fileno())
        self.close()
        os.replace(self.part, self.path)
        _unlink(self.etag_file)

    def discard(self) -> None:
        if self.path is None:
            return
        self.close()
        _unlink(self.part)
        _unlink(self.etag_file)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Pager:
    """Lazily walks a paginated listing: :meth:`next_page` is the next page's operation
    (answering its items), None once the last page was read."""

    def __init__(self, page: Callable[[str | None], Op[tuple[list[Any], str | None]]]) -> None:
        self._page = page
        self._token: str | None = None
        self._done = False

    def next_page(self) -> Op[list[Any]] | None:
        if self._done:
            return None
        return self._run()

    def _run(self) -> Op[list[Any]]:
        items, token = yield from self._page(self._token)
        self._token = token
        self._done = not token
        return items


class Operations:
    """The operations; ``auth`` and ``retry`` are the client's configuration."""

    def __init__(self, auth: Auth | None, retry: RetryPolicy) -> None:
        self.auth = auth
        self.retry = retry

    # ---- plumbing -------------------------------------------------------------------------

    def delegate(self, gen: Generator[Instruction, Any, Any]) -> Op[Any]:
        """Run a sub-flow (e.g. fetching a token), sending its calls through :meth:`send`."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                instr = gen.throw(error) if error is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(instr, Call):
                    value = yield from self.send(instr)
                else:
                    value = yield instr
            except ArtifactStoreError as exc:
                error = exc

    def send(self, call: Call, *, retry: bool = True) -> Op[Reply]:
        """One request with the client's credentials, retried as :class:`RetryPolicy` says
        (a streamed body only when its source can be read again); a 401 after a cached
        token was used fetches a new token once (and re-sends only a body it can re-read)."""
        attempt, renewed = 0, False
        base_headers = dict(call.headers)
        while True:
            attempt += 1
            if call.auth and self.auth is not None:
                auth_headers = yield from self.delegate(self.auth.flow())
                call.headers = {**base_headers, **auth_headers}
            try:
                return (yield call)
            except ArtifactStoreError as err:
                # A streamed body that cannot be read again is never re-sent: the second
                # request would carry only what was left of it.
                replayable = call.body is None or call.body.source.replayable
                if err.http_status == 401 and call.auth and self.auth and not renewed:
                    renewed = True
                    if self.auth.invalidate() and replayable:
                        attempt -= 1
                        continue
                delay = (
                    self.retry.delay(attempt, err, idempotent=call.idempotent)
                    if retry and replayable
                    else None
                )
                if delay is None:
                    raise
                yield Sleep(delay)

    def json_call(self, method: str, url: str, **kw: Any) -> Op[Any]:
        reply = yield from self.send(Call(method, url, **kw))
        return reply.json()

    # ---- buckets --------------------------------------------------------------------------

    def create_bucket(
        self,
        name: str,
        exist_ok: bool,
        public_read: bool | None,
        labels: Mapping[str, str] | None,
        web: bool | None = None,
    ) -> Op[Bucket]:
        url = f"/v1/buckets/{q(name)}"
        if not exist_ok:
            # The store's PUT updates an existing bucket: look first, so nothing changes.
            reply = yield from self.send(Call("GET", url, accept=(404,)))
            if reply.status != 404:
                raise ConflictError(
                    f"bucket {name!r} already exists", code="BucketAlreadyExists", http_status=409
                )
        body: dict[str, Any] = {}
        if public_read is not None:
            body["public_read"] = public_read
        if labels is not None:
            body["labels"] = dict(labels)
        if web is not None:
            body["web"] = web
        reply = yield from self.send(Call("PUT", url, json=body))
        return Bucket.from_json(reply.json())

    def get_bucket(self, name: str) -> Op[Bucket]:
        return Bucket.from_json((yield from self.json_call("GET", f"/v1/buckets/{q(name)}")))

    def list_buckets(self) -> Op[list[Bucket]]:
        data = yield from self.json_call("GET", "/v1/buckets")
        return [Bucket.from_json(b) for b in data["buckets"]]

    def delete_bucket(self, name: str, recursive: bool) -> Op[None]:
        params = {"recursive": "true"} if recursive else None
        yield from self.send(Call("DELETE", f"/v1/buckets/{q(name)}", params=params))

    # ---- objects --------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> Op[ObjectInfo]:
        data = yield from self.json_call("GET", object_url(bucket, key), params={"metadata": "1"})
        return ObjectInfo.from_json(data)

    def exists(self, bucket: str, key: str) -> Op[bool]:
        try:
            yield from self.send(Call("HEAD", object_url(bucket, key)))
        except NotFoundError:
            return False
        return True

    def delete(self, bucket: str, key: str) -> Op[None]:
        yield from self.send(Call("DELETE", object_url(bucket, key)))

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        content_type: str | None,
        labels: Mapping[str, str] | None,
    ) -> Op[ObjectInfo]:
        headers = {"X-Copy-Source": f"{src_bucket}/{q(src_key, safe='/')}"}
        headers.update(_object_headers(content_type, labels))
        data = yield from self.json_call(
            "PUT", object_url(dst_bucket, dst_key), headers=headers, content=b""
        )
        return ObjectInfo.from_json(data)

    def presign(self, bucket: str, key: str, method: str, expires_in: int) -> Op[str]:
        body = {"bucket": bucket, "key": key, "method": method.upper(), "expires_in": expires_in}
        data = yield from self.json_call("POST", "/v1/presign", json=body)
        return str(data["url"])

    # ---- batch ----------------------------------------------------------------------------

    def batch(
        self, bucket: str, objects: Sequence[Mapping[str, Any]], operation: str, expires_in: int
    ) -> Op[BatchResult]:
        pages = []
        for chunk in _chunks(list(objects)):
            body = {
                "operation": operation,
                "bucket": bucket,
                "objects": [dict(o) for o in chunk],
                "expires_in": expires_in,
            }
            pages.append((yield from self.json_call("POST", "/v1/batch", json=body)))
        return BatchResult.from_pages(operation, bucket, pages)

    def batch_keys(self, route: str, bucket: str, keys: Sequence[str]) -> Op[BatchKeysResult]:
        pages = []
        for chunk in _chunks(list(keys)):
            body = {"bucket": bucket, "keys": chunk}
            pages.append((yield from self.json_call("POST", f"/v1/batch/{route}", json=body)))
        return BatchKeysResult.from_pages(bucket, pages)

    def batch_verify(
        self, subjects: Sequence[Subject], policy: Mapping[str, Any], issue_vsa: bool
    ) -> Op[BatchVerification]:
        pages = []
        for chunk in _chunks([s.to_json() for s in subjects]):
            body: dict[str, Any] = {"subjects": chunk, "policy": dict(policy)}
            if issue_vsa:
                body["issue_vsa"] = True
            data = yield from self.json_call(
                "POST", "/v1/batch/verify", json=body, idempotent=not issue_vsa
            )
            pages.append(data)
        return BatchVerification.from_pages(pages)

    def upload_many(
        self,
        bucket: str,
        files: Mapping[str, UploadSource],
        *,
        content_types: Mapping[str, str | None],
        parallel: int,
        part_size: int,
        multipart_threshold: int,
        progress: ProgressCallback | None,
        expires_in: int,
    ) -> Op[BatchUpload]:
        """Hash every file, ask ``POST /v1/batch`` what the store needs, send only that:
        small files through the bound upload hrefs, large ones as resumable multipart
        uploads. One file's failure is its entry in ``failed``; the others go on."""
        sources = {key: Source.of(src) for key, src in files.items()}
        for key, src in sources.items():
            if src.size is None or not src.replayable:
                raise ValueError(f"{key}: upload_many takes paths or bytes (read twice)")

        def digest(src: Source) -> Op[str]:
            return (yield Blocking(lambda: src.sha256_range(0, None)))

        hashes = yield Parallel([digest(src) for src in sources.values()], parallel)
        objects = []
        for (key, src), sha256 in zip(sources.items(), hashes):
            entry: dict[str, Any] = {"key": key, "sha256": sha256, "size": src.size}
            if content_types.get(key):
                entry["content_type"] = content_types[key]
            objects.append(entry)
        plan = yield from self.batch(bucket, objects, "upload", expires_in)
        present, linked, failed = [], [], {}
        sends = []
        for item in plan.objects:
            key = str(item.key)
            if item.result == "present":
                present.append(key)
            elif item.result == "linked":
                linked.append(key)
            elif item.result == "upload" and item.action is not None:
                send = self._send_planned(
                    bucket, key, sources[key], item.action, content_types.get(key),
                    part_size, multipart_threshold, progress,
                )  # fmt: skip
                sends.append(send)
            else:
                failed[key] = item.error or BatchError("InvalidResponse", f"{item.result!r}")
        uploaded = []
        for key, outcome in (yield Parallel(sends, parallel)):
            if isinstance(outcome, BatchError):
                failed[key] = outcome
            else:
                uploaded.append(outcome)
        return BatchUpload(bucket, present, linked, uploaded, failed)

    def _send_planned(
        self,
        bucket: str,
        key: str,
        src: Source,
        action: BatchAction,
        content_type: str | None,
        part_size: int,
        multipart_threshold: int,
        progress: ProgressCallback | None,
    ) -> Op[tuple[str, ObjectInfo | BatchError]]:
        """One file a batch asked for: through its presigned href (bound to its sha256 and
        size), or, when large, as a resumable multipart upload."""
        tracker = Progress(progress, src.size, key)
        try:
            if src.size is not None and src.size >= multipart_threshold:
                info = yield from self._multipart(
                    bucket, key, src, content_type, None, part_size, 4, tracker, True, {}, None
                )
                return key, info
            body = Body(src, 0, src.size, on_chunk=lambda c: tracker.add(0, len(c)),
                        on_start=lambda: tracker.start(0))  # fmt: skip
            call = Call("PUT", action.href, headers=dict(action.headers), body=body, auth=False)
            reply = yield from self.send(call)
            return key, ObjectInfo.from_json(reply.json())
        except ArtifactStoreError as exc:
            return key, BatchError(exc.code or "Error", exc.message, exc.http_status)

    def list_pager(
        self, bucket: str, prefix: str, delimiter: str | None, page_size: int, want: str
    ) -> Pager:
        """Pages of objects (``want="objects"``) or common prefixes (``"common_prefixes"``)."""

        def page(token: str | None) -> Op[tuple[list[Any], str | None]]:
            params = {"prefix": prefix, "limit": str(page_size)}
            if delimiter:
                params["delimiter"] = delimiter
            if token:
                params["continuation_token"] = token
            data = yield from self.json_call(
                "GET", f"/v1/buckets/{q(bucket)}/objects", params=params
            )
            items: list[Any] = (
                [ObjectInfo.from_json(o) for o in data["objects"]]
                if want == "objects"
                else list(data["common_prefixes"])
            )
            return items, data.get("next_continuation_token") if data.get("truncated") else None

        return Pager(page)

    # ---- upload ---------------------------------------------------------------------------

    def upload(
        self,
        bucket: str,
        key: str,
        source: UploadSource,
        *,
        content_type: str | None,
        labels: Mapping[str, str] | None,
        part_size: int,
        parallel: int,
        multipart_threshold: int,
        progress: ProgressCallback | None,
        resume: bool,
        overwrite: bool = True,
        expires_in: int | None = None,
    ) -> Op[ObjectInfo]:
        src = Source.of(source)
        tracker = Progress(progress, src.size, key)
        # overwrite=False: create-only, checked by the store when the object is published
        # (If-None-Match: *), so two writers cannot both win.
        condition = {} if overwrite else {"If-None-Match": "*"}
        if src.size is None or src.size < multipart_threshold:
            return (
                yield from self._put(
                    bucket, key, src, content_type, labels, tracker, condition, expires_in
                )
            )
        if not overwrite and (yield from self.exists(bucket, key)):
            raise PreconditionFailedError(  # before sending any part
                f"{bucket}/{key} exists and overwrite is off",
                code="PreconditionFailed",
                http_status=412,
            )
        return (
            yield from self._multipart(
                bucket, key, src, content_type, labels, part_size, parallel, tracker, resume,
                condition, expires_in,
            )
        )  # fmt: skip

    def _put(
        self,
        bucket: str,
        key: str,
        src: Source,
        content_type: str | None,
        labels: Mapping[str, str] | None,
        tracker: Progress,
        condition: Mapping[str, str],
        expires_in: int | None = None,
    ) -> Op[ObjectInfo]:
        headers = {**_object_headers(content_type, labels), **condition}
        # Relative, so the store's clock decides when (no client clock skew).
        params = {"expires_in": str(expires_in)} if expires_in is not None else None
        hasher: Any = None
        if src.replayable:
            headers["X-Checksum-Sha256"] = yield Blocking(lambda: src.sha256_range(0, None))
        else:
            hasher = hashlib.sha256()

        def on_chunk(chunk: bytes) -> None:
            if hasher is not None:
                hasher.update(chunk)
            tracker.add(0, len(chunk))

        body = Body(src, 0, src.size, on_chunk=on_chunk, on_start=lambda: tracker.start(0))
        reply = yield from self.send(
            Call("PUT", object_url(bucket, key), params=params, headers=headers, body=body)
        )
        info = ObjectInfo.from_json(reply.json())
        if hasher is not None and info.sha256 != hasher.hexdigest():
            raise ArtifactStoreError(
                f"the store received sha256 {info.sha256} but {hasher.hexdigest()} was sent",
                code="ChecksumMismatch",
                http_status=0,
            )
        return info

    def _multipart(
        self,
        bucket: str,
        key: str,
        src: Source,
        content_type: str | None,
        labels: Mapping[str, str] | None,
        part_size: int,
        parallel: int,
        tracker: Progress,
        resume: bool,
        condition: Mapping[str, str],
        expires_in: int | None = None,
    ) -> Op[ObjectInfo]:
        size = src.size or 0
        plan = plan_parts(size, part_size)
        upload = None
        if resume:
            try:
                upload = yield from self.find_upload(bucket, key)
            except AccessDeniedError:
                upload = None  # may upload but not list uploads: start afresh
        # An interrupted upload is continued only when it would publish what this call asks
        # for; one started with another content type or labels is left alone.
        if upload is not None and (
            upload.content_type != (content_type or "application/octet-stream")
            or upload.labels != dict(labels or {})
            or (expires_in is None) != (upload.expires_at is None)
        ):
            upload = None
        if upload is None:
            body: dict[str, Any] = {"key": key}
            if content_type:
                body["content_type"] = content_type
            if labels:
                body["labels"] = dict(labels)
            if expires_in is not None:
                body["expires_in"] = expires_in
            created = yield from self.json_call(
                "POST", f"/v1/buckets/{q(bucket)}/uploads", json=body, idempotent=False
            )
            upload = Upload.from_json(created)
        remote = {p.part_number: p for p in upload.parts}

        def whole() -> Op[str]:
            return (yield Blocking(lambda: src.sha256_range(0, size)))

        ops: list[Op[Any]] = [whole()]
        ops += [
            self._part(bucket, upload.upload_id, src, p, remote.get(p.number), tracker)
            for p in plan
        ]
        results = yield Parallel(ops, limit=max(1, parallel) + 1)
        sha256, etags = results[0], results[1:]
        try:
            data = yield from self.json_call(
                "POST",
                f"/v1/buckets/{q(bucket)}/uploads/{q(upload.upload_id)}/complete",
                headers=dict(condition),
                json={
                    "parts": [
                        {"part_number": p.number, "etag": etags[i]} for i, p in enumerate(plan)
                    ],
                    "sha256": sha256,
                },
                idempotent=False,
            )
        except ArtifactStoreError as err:
            if err.http_status not in OUTCOME_UNKNOWN:
                raise
            # The answer was lost (a gateway timeout, a cut connection): completion is not
            # repeated, but when the object now holds exactly these bytes it did complete.
            try:
                stored = yield from self.head(bucket, key)
            except ArtifactStoreError:
                raise err from None
            if stored.sha256 != sha256:
                raise
            return stored
        return ObjectInfo.from_json(data)

    def _part(
        self,
        bucket: str,
        upload_id: str,
        src: Source,
        part: PartPlan,
        remote: UploadPart | None,
        tracker: Progress,
    ) -> Op[str]:
        sha = yield Blocking(lambda: src.sha256_range(part.offset, part.length))
        if remote is not None and remote.size == part.length and remote.sha256 == sha:
            tracker.add(part.number, part.length)  # already there: resumed
            return remote.etag
        body = Body(
            src,
            part.offset,
            part.length,
            on_chunk=lambda chunk: tracker.add(part.number, len(chunk)),
            on_start=lambda: tracker.start(part.number),
        )
        data = yield from self.json_call(
            "PUT",
            f"/v1/buckets/{q(bucket)}/uploads/{q(upload_id)}/parts/{part.number}",
            headers={"X-Checksum-Sha256": sha},
            body=body,
        )
        return str(data["etag"]).strip('"')

    def find_upload(self, bucket: str, key: str) -> Op[Upload | None]:
        """The newest upload in progress for exactly ``key``, with its parts."""
        uploads = yield from self.list_uploads(bucket, key)
        mine = [u for u in uploads if u.key == key]
        if not mine:
            return None
        newest = max(mine, key=lambda u: u.created_at)
        return (yield from self.get_upload(bucket, newest.upload_id))

    def list_uploads(self, bucket: str, prefix: str) -> Op[list[Upload]]:
        params = {"prefix": prefix} if prefix else None
        data = yield from self.json_call("GET", f"/v1/buckets/{q(bucket)}/uploads", params=params)
        return [Upload.from_json(u) for u in data["uploads"]]

    def get_upload(self, bucket: str, upload_id: str) -> Op[Upload]:
        url = f"/v1/buckets/{q(bucket)}/uploads/{q(upload_id)}"
        return Upload.from_json((yield from self.json_call("GET", url)))

    def abort_upload(self, bucket: str, upload_id: str) -> Op[None]:
        yield from self.send(Call("DELETE", f"/v1/buckets/{q(bucket)}/uploads/{q(upload_id)}"))

    # ---- download -------------------------------------------------------------------------

    def download(
        self,
        bucket: str,
        key: str,
        dest: Any,
        progress: ProgressCallback | None,
        resume: bool,
        offset: int = 0,
        length: int | None = None,
    ) -> Op[ObjectInfo]:
        # A byte range (``length`` bytes from ``offset``; None: to the end) is fetched with
        # Range and resumed within itself; it cannot be checked against the object's sha256,
        # and a ``.part`` left by another call is never continued (it may be another range).
        ranged = offset != 0 or length is not None
        if offset < 0 or (length is not None and length <= 0):
            raise ValueError("offset must be >= 0 and length > 0")
        sink: Sink = yield Blocking(lambda: Sink(dest, resume and not ranged))
        tracker = Progress(progress, None, key)
        seen: dict[str, Any] = {}

        def on_headers(reply: Reply) -> None:
            if ranged and reply.status != 206:
                raise ArtifactStoreError(
                    f"the store sent all of {bucket}/{key}, not the range asked for "
                    "(it changed while it was downloaded)",
                    code="ObjectChanged",
                )
            if reply.status != 206 and sink.offset:
                sink.restart()  # the object changed (If-Range) or no range was served
            info = object_from_headers(bucket, key, reply.headers)
            tracker.total = info.size
            if ranged:
                tracker.total = sink.offset + int(reply.headers.get("content-length") or 0)
            tracker.start(0)
            tracker.add(0, sink.offset)
            sink.remember(info.etag)
            seen["info"] = info

        def on_chunk(chunk: bytes) -> None:
            sink.write(chunk)
            tracker.add(0, len(chunk))

        attempt = 0
        try:
            while True:
                attempt += 1
                headers: dict[str, str] = {}
                if sink.offset or ranged:
                    end = "" if length is None else str(offset + length - 1)
                    headers["Range"] = f"bytes={offset + sink.offset}-{end}"
                    if sink.offset and sink.etag:
                        headers["If-Range"] = f'"{sink.etag}"'
                call = Call(
                    "GET", object_url(bucket, key), headers=headers,
                    on_headers=on_headers, on_chunk=on_chunk,
                )  # fmt: skip
                try:
                    yield from self.send(call, retry=False)
                    break
                except ArtifactStoreError as err:
                    if err.http_status == 416 and sink.offset and not ranged:
                        yield Blocking(sink.restart)  # the partial file is not a prefix
                        attempt -= 1
                        continue
                    delay = self.retry.delay(attempt, err, idempotent=True)
                    if delay is None:
                        if not sink.offset:
                            yield Blocking(sink.discard)  # nothing worth resuming
                        raise
                    yield Sleep(delay)
            info: ObjectInfo = seen["info"]
            actual = sink.hasher.hexdigest()
            if info.sha256 and actual != info.sha256 and not ranged:
                yield Blocking(sink.discard)
                raise ArtifactStoreError(
                    f"downloaded {bucket}/{key} has sha256 {actual}, the store says {info.sha256}",
                    code="ChecksumMismatch",
                    problem={"expected": info.sha256, "actual": actual},
                )
            yield Blocking(sink.finish)
            return ObjectInfo(**{**info.__dict__, "size": sink.offset})
        finally:
            sink.close()

    # ---- supply chain ---------------------------------------------------------------------

    def sign(self, subject: Subject, predicate_type: str | None, predicate: Any) -> Op[Evidence]:
        body: dict[str, Any] = {"subject": subject.to_json()}
        if predicate_type is not None:
            body["predicate_type"] = predicate_type
        if predicate is not None:
            body["predicate"] = predicate
        data = yield from self.json_call("POST", "/v1/sign", json=body, idempotent=False)
        return Evidence.from_json(data)

    def provenance(self, objects: Sequence[tuple[str, str]]) -> Op[list[Evidence]]:
        body = {"subjects": [{"bucket": bucket, "key": key} for bucket, key in objects]}
        data = yield from self.json_call("POST", "/v1/provenance", json=body, idempotent=False)
        return [Evidence.from_json(e) for e in data["evidence"]]

    def attach(
        self, subject: Subject, kind: str, data: Document, content_type: str | None
    ) -> Op[Evidence]:
        raw: bytes = yield Blocking(lambda: _read_document(data))
        if content_type is None:
            content_type = {
                "signatures": detect_signature_type,
                "sboms": detect_sbom_type,
                "attestations": lambda _: DSSE_TYPE,
            }[kind](raw)
        doc = yield from self.json_call(
            "POST",
            evidence_url(subject, kind),
            content=raw,
            headers={"Content-Type": content_type},
            idempotent=False,
        )
        return Evidence.from_json(doc)

    def list_evidence(self, subject: Subject, kind: str | None) -> Op[list[Evidence]]:
        if kind is not None and kind not in EVIDENCE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(EVIDENCE_KINDS)}")
        found: list[Evidence] = []
        for k in [kind] if kind else EVIDENCE_KINDS:
            try:
                data = yield from self.json_call("GET", evidence_url(subject, k))
            except NotFoundError as err:
                # Digest subjects have no attestation listing route on older servers.
                if kind is None and err.code == "NotFound":
                    continue
                raise
            found += [Evidence.from_json(e) for e in data.get(k, [])]
        return found

    def get_evidence(self, evidence_id: str) -> Op[bytes]:
        reply = yield from self.send(Call("GET", f"/v1/evidence/{q(evidence_id)}"))
        return reply.content

    def verify(
        self, subject: Subject, policy: Mapping[str, Any], issue_vsa: bool
    ) -> Op[VerificationResult]:
        body: dict[str, Any] = {"subject": subject.to_json(), "policy": dict(policy)}
        if issue_vsa:
            body["issue_vsa"] = True
        data = yield from self.json_call("POST", "/v1/verify", json=body, idempotent=not issue_vsa)
        return VerificationResult.from_json(data)

    def set_verification(
        self, url: str, policy: Mapping[str, Any], mode: str, name: str
    ) -> Op[VerificationGate]:
        body = {"name": name, "mode": mode, "policy": dict(policy)}
        data = yield from self.json_call("PUT", url, json=body)
        return VerificationGate.from_json(data)

    def get_verification(self, url: str) -> Op[VerificationGate]:
        data = yield from self.json_call("GET", url)
        return VerificationGate.from_json(data)

    def delete_verification(self, url: str) -> Op[None]:
        yield from self.send(Call("DELETE", url))

    def search_sboms(
        self, purl: str | None, name: str | None, limit: int | None
    ) -> Op[list[dict[str, Any]]]:
        if not purl and not name:
            raise ValueError("search_sboms needs purl or name")
        params = {k: v for k, v in {"purl": purl, "name": name}.items() if v}
        if limit:
            params["limit"] = str(limit)
        data = yield from self.json_call("GET", "/v1/sboms/search", params=params)
        return list(data["results"])

    # ---- identity -------------------------------------------------------------------------

    def authorize(self, action: str, resource: str, principal: str | None) -> Op[dict[str, Any]]:
        body: dict[str, Any] = {"action": action, "resource": resource}
        if principal is not None:
            body["principal"] = principal
        data = yield from self.json_call("POST", "/v1/authorize", json=body)
        return dict(data)

    def create_token(
        self,
        name: str,
        roles: Iterable[str],
        expires_in: float | None,
        statements: list[dict[str, Any]] | None,
    ) -> Op[ApiToken]:
        body: dict[str, Any] = {"name": name, "roles": list(roles)}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if statements is not None:
            body["statements"] = statements
        data = yield from self.json_call("POST", "/v1/tokens", json=body, idempotent=False)
        return ApiToken.from_json(data)

    def list_tokens(self) -> Op[list[ApiToken]]:
        data = yield from self.json_call("GET", "/v1/tokens")
        return [ApiToken.from_json(t) for t in data["tokens"]]

    def revoke_token(self, token_id: str) -> Op[None]:
        yield from self.send(Call("DELETE", f"/v1/tokens/{q(token_id)}"))

    def add_key(
        self, public_key: Document, name: str, scope: str, expires_in: float | None
    ) -> Op[TrustedKey]:
        if isinstance(public_key, str) and "-----BEGIN" in public_key:
            pem = public_key
        else:
            raw: bytes = yield Blocking(lambda: _read_document(public_key))
            pem = raw.decode()
        body: dict[str, Any] = {"name": name, "public_key": pem, "scope": scope}
        if expires_in is not None:
            body["expires_in"] = expires_in
        data = yield from self.json_call("POST", "/v1/keys", json=body, idempotent=False)
        return TrustedKey.from_json(data)

    def list_keys(self) -> Op[list[TrustedKey]]:
        data = yield from self.json_call("GET", "/v1/keys")
        return [TrustedKey.from_json(k) for k in data["keys"]]

    def revoke_key(self, key_id: str) -> Op[None]:
        yield from self.send(Call("DELETE", f"/v1/keys/{q(key_id)}"))

    # ---- webhooks -------------------------------------------------------------------------

    def create_webhook(
        self, url: str, events: Iterable[str], options: dict[str, Any]
    ) -> Op[Webhook]:
        body = {"url": url, "events": list(events), **options}
        data = yield from self.json_call("POST", "/v1/webhooks", json=body, idempotent=False)
        return Webhook.from_json(data)

    def list_webhooks(self) -> Op[list[Webhook]]:
        data = yield from self.json_call("GET", "/v1/webhooks")
        return [Webhook.from_json(w) for w in data["webhooks"]]

    def get_webhook(self, webhook_id: str) -> Op[Webhook]:
        data = yield from self.json_call("GET", f"/v1/webhooks/{q(webhook_id)}")
        return Webhook.from_json(data)

    def update_webhook(self, webhook_id: str, changes: dict[str, Any]) -> Op[Webhook]:
        data = yield from self.json_call("PATCH", f"/v1/webhooks/{q(webhook_id)}", json=changes)
        return Webhook.from_json(data)

    def delete_webhook(self, webhook_id: str) -> Op[None]:
        yield from self.send(Call("DELETE", f"/v1/webhooks/{q(webhook_id)}"))

    def rotate_webhook_secret(self, webhook_id: str, grace_seconds: float | None) -> Op[Webhook]:
        body = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
        path = f"/v1/webhooks/{q(webhook_id)}/rotate-secret"
        data = yield from self.json_call("POST", path, json=body, idempotent=False)
        return Webhook.from_json(data)

    def test_webhook(self, webhook_id: str) -> Op[WebhookDelivery]:
        path = f"/v1/webhooks/{q(webhook_id)}/test"
        data = yield from self.json_call("POST", path, json={}, idempotent=False)
        return WebhookDelivery.from_json(data)

    def redeliver(self, webhook_id: str, delivery_id: str) -> Op[WebhookDelivery]:
        path = f"/v1/webhooks/{q(webhook_id)}/deliveries/{q(delivery_id)}/redeliver"
        data = yield from self.json_call("POST", path, json={}, idempotent=False)
        return WebhookDelivery.from_json(data)

    def deliveries_pager(self, webhook_id: str, page_size: int) -> Pager:
        def page(cursor: str | None) -> Op[tuple[list[Any], str | None]]:
            params = {"limit": str(page_size)}
            if cursor:
                params["cursor"] = cursor
            path = f"/v1/webhooks/{q(webhook_id)}/deliveries"
            data = yield from self.json_call("GET", path, params=params)
            items = [WebhookDelivery.from_json(d) for d in data["deliveries"]]
            return items, data.get("next_cursor")

        return Pager(page)

    def audit_pager(self, filters: Mapping[str, str | None], page_size: int) -> Pager:
        def page(cursor: str | None) -> Op[tuple[list[Any], str | None]]:
            params = {k: v for k, v in filters.items() if v is not None}
            params["limit"] = str(page_size)
            if cursor:
                params["cursor"] = cursor
            data = yield from self.json_call("GET", "/v1/audit", params=params)
            return list(data["records"]), data.get("next_cursor")

        return Pager(page)


def webhook_options(
    buckets: Iterable[str] | None,
    repositories: Iterable[str] | None,
    key_prefix: str | None,
    format: str,
    description: str,
    active: bool,
) -> dict[str, Any]:
    """The body of a new subscription beside its url and events."""
    flt: dict[str, Any] = {}
    if buckets is not None:
        flt["buckets"] = list(buckets)
    if repositories is not None:
        flt["repositories"] = list(repositories)
    if key_prefix:
        flt["key_prefix"] = key_prefix
    return {"filter": flt, "format": format, "description": description, "active": active}


def _chunks(items: list[Any]) -> list[list[Any]]:
    """``items`` in batch requests of at most :data:`BATCH_LIMIT`."""
    return [items[i : i + BATCH_LIMIT] for i in range(0, len(items), BATCH_LIMIT)]


def _object_headers(content_type: str | None, labels: Mapping[str, str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if content_type:
        headers["Content-Type"] = content_type
    if labels:
        headers["X-Artifact-Labels"] = json.dumps(dict(labels), sort_keys=True)
    return headers
