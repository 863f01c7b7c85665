"""``/v2``: the OCI distribution API (pull, push, content discovery, content management).

Errors are the spec's JSON (``{"errors": [{"code": "BLOB_UNKNOWN", ...}]}``). Upload bodies
stream into the blob store's resumable sessions; manifests are small JSON bodies.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import tornado.ioloop
import tornado.web

from ...auth.principal import Principal
from ...auth.registry_token import Scope
from ...errors import StoreError
from ...metadata import Manifest, RegistryUpload
from ...services.oci_evidence import is_evidence_manifest, legacy_subject
from ...services.registry import (
    EMPTY_INDEX,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    RegistryService,
    is_tag,
    validate_digest,
    validate_name,
)
from ...storage import BlobWriter
from ..base import SENDFILE_MIN_BYTES, BaseHandler, Route, route
from ..httputil import parse_range
from ..query import QueryCheckedHandler, takes

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
MAX_PAGE = 1000
# Our codes as the spec names them.
_OCI_CODES = {
    "BlobUnknown": "BLOB_UNKNOWN",
    "BlobUploadInvalid": "BLOB_UPLOAD_INVALID",
    "BlobUploadUnknown": "BLOB_UPLOAD_UNKNOWN",
    "DigestInvalid": "DIGEST_INVALID",
    "ManifestBlobUnknown": "MANIFEST_BLOB_UNKNOWN",
    "ManifestInvalid": "MANIFEST_INVALID",
    "ManifestUnknown": "MANIFEST_UNKNOWN",
    "TagInvalid": "TAG_INVALID",
    "NameInvalid": "NAME_INVALID",
    "NameUnknown": "NAME_UNKNOWN",
    "Unauthenticated": "UNAUTHORIZED",
    "AccessDenied": "DENIED",
    "VerificationFailed": "DENIED",
    "TooManyRequests": "TOOMANYREQUESTS",
    "MethodNotAllowed": "UNSUPPORTED",
    "NotImplemented": "UNSUPPORTED",
    "NotFound": "UNSUPPORTED",
    "InvalidArgument": "UNSUPPORTED",
    "UnexpectedQueryParameter": "UNSUPPORTED",
    "EntityTooLarge": "SIZE_INVALID",
    "RequestHeaderSectionTooLarge": "UNSUPPORTED",
    "InvalidRange": "BLOB_UPLOAD_INVALID",
    "IncompleteBody": "SIZE_INVALID",
}


class OCIHandler(QueryCheckedHandler):
    registry: RegistryService

    # The token scope a 401 challenge names (the access this request needs).
    scope: str | None = None

    def initialize(self, ctx: Any, route: str) -> None:  # type: ignore[override]
        super().initialize(ctx, route)
        self.registry = ctx.registry

    def challenge_headers(self, error: StoreError) -> dict[str, str]:
        """Docker-style: where to get a token, for which service and scope."""
        params = [
            f'realm="{self.base_url()}/v2/token"',
            f'service="{self.ctx.registry_tokens.service}"',
        ]
        if self.scope:
            params.append(f'scope="{self.scope}"')
        if self.principal.scopes is not None:
            params.append('error="insufficient_scope"')
        elif self.request.headers.get("Authorization"):
            params.append('error="invalid_token"')
        return {"WWW-Authenticate": "Bearer " + ",".join(params)}

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header(*API_VERSION)

    async def prepare(self) -> None:
        await super().prepare()  # query parameters the method does not take: 400 at once
        await self.authenticate()

    def render_error(self, error: StoreError) -> None:
        self.set_header("Content-Type", "application/json")
        body: dict[str, Any] = {
            "code": _OCI_CODES.get(error.code, error.code),
            "message": error.message,
        }
        if error.detail:
            body["detail"] = error.detail
        self.finish(json.dumps({"errors": [body]}))

    async def authorize(self, action: str, resource: str) -> None:
        try:
            await super().authorize(action, resource)
        except StoreError as exc:
            # A token without this scope: 403 DENIED plus the challenge for the scope needed,
            # so the client fetches a token for it ("insufficient_scope"; oras refreshes its
            # token on 403, docker and containers/image ask for every scope up front).
            if exc.code == "AccessDenied" and self.principal.scopes is not None:
                raise StoreError(
                    "AccessDenied",
                    exc.message,
                    resource=resource,
                    headers=self.challenge_headers(exc),
                ) from None
            raise

    async def pull(self, name: str) -> None:
        self.scope = f"repository:{name}:pull"
        await self.authorize("oci:pull", f"repo:{name}")

    async def may_pull(self, name: str) -> bool:
        decision = await self.ctx.authorizer.decide(self.principal, "oci:pull", f"repo:{name}")
        return decision.allowed

    async def push(self, name: str) -> None:
        self.scope = f"repository:{name}:pull,push"
        await self.authorize("oci:push", f"repo:{name}")

    async def remove(self, name: str) -> None:
        self.scope = f"repository:{name}:delete"
        await self.authorize("oci:delete", f"repo:{name}")

    def page_args(self) -> tuple[str | None, int]:
        raw = self.get_query_argument("n", None)
        try:
            n = MAX_PAGE if raw is None else int(raw)
        except ValueError:
            raise StoreError("InvalidArgument", "n must be an integer") from None
        if n < 0:
            raise StoreError("InvalidArgument", "n must not be negative")
        return self.get_query_argument("last", None) or None, min(n, MAX_PAGE)

    def link_next(self, path: str, last: str, n: int) -> None:
        query = urllib.parse.urlencode({"n": n, "last": last})
        self.set_header("Link", f'<{path}?{query}>; rel="next"')


class BaseV2Handler(OCIHandler):
    async def get(self) -> None:
        # Any valid token (even an anonymous one) or credential passes the version check.
        principal = self.principal
        if self.ctx.authentication.enabled and principal.is_anonymous and principal.scopes is None:
            raise StoreError("Unauthenticated", "authentication required")
        self.write_json({})

    head = get


class TokenHandler(OCIHandler):
    """``GET /v2/token?service=…&scope=…``: HTTP Basic (or nothing, for anonymous pulls) in,
    a short-lived registry token out, granting what the caller may do of what it asked.
    ``account``, ``client_id`` and ``offline_token`` (docker, podman send them) are taken and
    ignored: the credentials say who asks."""

    query_parameters = takes(GET=("service", "scope", "account", "client_id", "offline_token"))

    def challenge_headers(self, error: StoreError) -> dict[str, str]:
        return BaseHandler.challenge_headers(self, error)

    async def get(self) -> None:
        scopes = [
            Scope.parse(text)
            for raw in self.get_query_arguments("scope")
            for text in raw.split(" ")
            if text
        ]
        for scope in scopes:
            if scope.type == "repository":
                validate_name(scope.name)  # NAME_INVALID: never a token for "a/*" or "a/../b"

        async def decide(principal: Principal, action: str, resource: str) -> bool:
            return (await self.ctx.authorizer.decide(principal, action, resource)).allowed

        self.set_header("Cache-Control", "no-store")
        self.write_json(await self.ctx.registry_tokens.issue(self.principal, scopes, decide))


class CatalogHandler(OCIHandler):
    query_parameters = takes(GET=("n", "last"))

    async def get(self) -> None:
        self.scope = "registry:catalog:*"
        await self.authorize("oci:catalog", "")
        last, n = self.page_args()
        names, more = await self.registry.catalog(last, n) if n else ([], False)
        if more and names:
            self.link_next("/v2/_catalog", names[-1], n)
        self.write_json({"repositories": names})


class TagsHandler(OCIHandler):
    query_parameters = takes(GET=("n", "last"))

    async def get(self, name: str) -> None:
        await self.pull(name)
        last, n = self.page_args()
        tags, more = await self.registry.tags(name, last, n) if n else ([], False)
        if more and tags:
            self.link_next(f"/v2/{name}/tags/list", tags[-1], n)
        self.write_json({"name": name, "tags": tags})


class ManifestHandler(OCIHandler):
    def _describe(self, manifest: Manifest) -> None:
        self.set_header("Content-Type", manifest.media_type)
        self.set_header("Docker-Content-Digest", manifest.digest)
        self.set_header("ETag", f'"{manifest.digest}"')

    def _negotiate(self, manifest: Manifest) -> None:
        """As distribution does: a client whose ``Accept`` names manifest types, but not this
        one (nor a wildcard), is told the manifest is unknown rather than sent a format it
        cannot read. No ``Accept`` at all gets the manifest as pushed."""
        accepted = {
            part.split(";")[0].strip()
            for header in self.request.headers.get_list("Accept")
            for part in header.split(",")
        }
        if not accepted & MANIFEST_TYPES or manifest.media_type in accepted:
            return
        if accepted & {"*/*", "application/*"}:
            return
        raise StoreError(
            "ManifestUnknown",
            f"the manifest is {manifest.media_type}, which the Accept header does not list",
        )

    async def _gate(self, name: str, reference: str, manifest: Manifest) -> bytes | None:
        """The repository's verification gate. Signatures, attestations and SBOMs are evidence,
        not images: verifiers must be able to read them, so they pass; a manifest is evidence
        only when it names a subject (or is pulled by cosign's ``sha256-<hex>.sig`` style tag)
        and carries nothing but evidence (``is_evidence_manifest``), never because of its
        subject or tag alone. The manifest's bytes, when they were read to decide."""
        body = None
        if manifest.subject or legacy_subject(reference):
            body = await self.registry.manifest_bytes(manifest)
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and is_evidence_manifest(doc, manifest.artifact_type, True):
                return body
        outcome = await self.ctx.supplychain.repo_gate(name, manifest.digest)
        await self.apply_gate(outcome, f"{name}@{manifest.digest}", manifest.digest)
        return body

    async def get(self, name: str, reference: str) -> None:
        await self.pull(name)
        manifest = await self.registry.resolve(name, reference)
        self._negotiate(manifest)
        body = await self._gate(name, reference, manifest)
        self._describe(manifest)
        self.finish(body if body is not None else await self.registry.manifest_bytes(manifest))

    async def head(self, name: str, reference: str) -> None:
        await self.pull(name)
        manifest = await self.registry.resolve(name, reference)
        self._negotiate(manifest)
        await self._gate(name, reference, manifest)
        self._describe(manifest)
        self.set_header("Content-Length", str(manifest.size))
        self.finish()

    async def put(self, name: str, reference: str) -> None:
        await self.push(name)
        if len(self.request.body) > MAX_MANIFEST_BYTES:
            raise StoreError("ManifestInvalid", "manifests may be at most 4 MiB")
        manifest = await self.registry.put_manifest(
            name, reference, self.request.body, self.request.headers.get("Content-Type", "")
        )
        # cosign / notation signatures and attestations become evidence about their image.
        for evidence in await self.ctx.supplychain.index_oci(
            name, manifest, reference if is_tag(reference) else None, self.principal.id
        ):
            self.audit(
                "supplychain:attach", f"repo:{evidence.subject_ref}", True,
                f"{evidence.kind} {evidence.evidence_id} ({evidence.format}, pushed)",
            )  # fmt: skip
        self.set_status(201)
        self.set_header("Location", f"/v2/{name}/manifests/{manifest.digest}")
        self.set_header("Docker-Content-Digest", manifest.digest)
        if manifest.subject:
            self.set_header("OCI-Subject", manifest.subject)
        self.finish()

    async def delete(self, name: str, reference: str) -> None:
        await self.remove(name)
        await self.registry.delete(name, reference)
        self.set_status(202)
        self.finish()


class BlobHandler(OCIHandler):
    async def _serve(self, name: str, digest: str, *, send_body: bool) -> None:
        await self.pull(name)
        size = await self.registry.blob_size(name, digest)
        self.set_header("Docker-Content-Digest", digest)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Accept-Ranges", "bytes")
        rng = parse_range(self.request.headers.get("Range"), size)
        if send_body and rng is None and await self._redirect(digest):
            return
        start, end = (rng.start, rng.end) if rng else (0, size)
        if rng is not None:
            self.set_status(206)
            self.set_header("Content-Range", rng.content_range(size))
        self.set_header("Content-Length", str(end - start))
        if send_body and end - start >= SENDFILE_MIN_BYTES:
            send = functools.partial(self.registry.send_blob_to_socket, digest)
            start += await self.send_from_file(send, start, end)
        if send_body and start < end:
            await self.stream_out(self.registry.read_blob(digest, start, end))
        if not self._finished:
            self.finish()

    async def _redirect(self, digest: str) -> bool:
        """``storageDriver.redirect``: answer 307 to the backend's signed URL of the blob, so
        its bytes go from the backend to the client (docker distribution's redirect). Only
        after the pull was authorized (and audited) and the repository was found to hold the
        blob; ranges stay proxied (a client may not send its Range again after a redirect)."""
        driver = self.ctx.config.storage.storageDriver
        if not driver.redirect:
            return False
        url = await self.registry.blob_url(digest, driver.redirectexpiry)
        if url is None:
            return False
        self.set_status(307)
        self.set_header("Location", url)
        self.set_header("Content-Length", "0")
        self.clear_header("Content-Type")
        self.finish()
        return True

    async def get(self, name: str, digest: str) -> None:
        await self._serve(name, digest, send_body=True)

    async def head(self, name: str, digest: str) -> None:
        await self._serve(name, digest, send_body=False)

    async def delete(self, name: str, digest: str) -> None:
        # The blob leaves this repository; its bytes are shared (content-addressed, also by
        # S3 objects and other repositories), so garbage collection removes them once unused.
        await self.remove(name)
        await self.registry.delete_blob(name, digest)
        self.set_status(202)
        self.finish()


@tornado.web.stream_request_body
class BlobUploadHandler(OCIHandler):
    """POST …/blobs/uploads/ and PATCH/PUT/GET/DELETE …/blobs/uploads/<id>. A body that is
    the whole blob (``POST ?digest=``, or ``PUT ?digest=`` on an upload that has received
    nothing yet) streams into a blob write committed on its digest; a chunk streams into the
    upload's blob-store session through a queue."""

    # POST: monolithic (?digest=) or cross-repository mount (?mount=&from=); PUT: ?digest=.
    query_parameters = takes(POST=("digest", "mount", "from"), PUT=("digest",))

    upload: RegistryUpload | None = None

    async def prepare(self) -> None:
        await super().prepare()
        self._queue: asyncio.Queue[bytes | None] | None = None
        self._append: asyncio.Task[int] | None = None
        self._writer: BlobWriter | None = None  # the whole blob, when the body is that
        name = self.path_args[0]
        method = self.request.method
        session = len(self.path_args) > 1 and self.path_args[1] is not None
        if (method == "POST") == session:  # POST starts a session; the rest act on one
            allowed = "GET, PATCH, PUT, DELETE" if session else "POST"
            raise StoreError(
                "MethodNotAllowed",
                f"{method} is not allowed on {self.route}; it takes {allowed}",
                headers={"Allow": allowed},
            )
        if method in ("PATCH", "PUT", "POST"):
            await self.push(name)
        else:
            await self.pull(name)
        digest = self.get_query_argument("digest", None)
        if method == "POST":
            mount, source = (
                self.get_query_argument("mount", None),
                self.get_query_argument("from", None),
            )
            self.mounted = None
            if mount and source and await self.may_pull(source):
                if await self.registry.mount(name, source, mount):
                    self.mounted = mount
                    return
            if digest is not None:  # monolithic: the whole blob in this POST, no session
                validate_name(name)
                await self._write_whole_blob(digest)
                return
            self.upload = await self.registry.start_upload(name)
        else:
            self.upload = await self.registry.get_upload(name, self.path_args[1])
        if method == "PUT":
            if not digest:
                raise StoreError("DigestInvalid", "PUT needs ?digest=")
            if not self.upload.session_id:  # nothing received yet: the body is the blob
                await self._write_whole_blob(digest)
                return
            validate_digest(digest)  # before a byte of the last chunk is kept
        if method == "PATCH":
            await self._check_content_range()
        if method in ("PATCH", "PUT", "POST") and self._has_body():
            await self.registry.check_space(self._declared_length())
            self.upload = await self.registry.open_session(self.upload)
            self._start_append()

    async def _write_whole_blob(self, digest: str) -> None:
        await self.registry.check_space(self._declared_length())
        self._writer = await self.registry.blob_writer(digest)

    def _has_body(self) -> bool:
        """Whether bytes follow the headers (a declared length above 0, or a chunked body)."""
        length = self._declared_length()
        if length is not None:
            return length > 0
        return "chunked" in self.request.headers.get("Transfer-Encoding", "").lower()

    def _declared_length(self) -> int | None:
        """The body's Content-Length (None when it streams chunked)."""
        length = self.request.headers.get("Content-Length")
        return int(length) if length is not None and length.isdigit() else None

    async def _check_content_range(self) -> None:
        assert self.upload is not None
        header = self.request.headers.get("Content-Range")
        if not header:
            return
        match = re.fullmatch(r"(?:bytes[ =])?(\d+)-(\d+)", header.strip())
        current = await self.registry.upload_size(self.upload)
        if match is None or int(match.group(1)) != current:
            raise StoreError(
                "InvalidRange",
                f"the chunk must start at {current}",
                headers={"Range": f"0-{max(current - 1, 0)}", "Location": self._location()},
            )

    def _start_append(self) -> None:
        assert self.upload is not None
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

        async def chunks() -> AsyncIterator[bytes]:
            while (chunk := await queue.get()) is not None:
                yield chunk

        async def append(upload: RegistryUpload) -> int:
            try:
                return await self.registry.append(upload, chunks())
            except BaseException:
                # Nobody reads the queue any more: free a producer waiting for room (it sees
                # this task done before it queues the next chunk).
                while not queue.empty():
                    queue.get_nowait()
                raise

        self._queue = queue
        self._append = asyncio.ensure_future(append(self.upload))

    async def receive(self, chunk: bytes) -> None:
        self.bytes_in += len(chunk)
        if self._writer is not None:
            await self._writer.write(chunk)
            return
        if self._queue is None or self._append is None:
            return
        if self._append.done():  # the append failed (a full disk): answer now
            self._queue = None
            self._append.result()  # raises its error
            return
        await self._queue.put(chunk)

    async def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        try:
            await self.receive(chunk)
        except Exception as exc:
            await self.refuse_body(exc)

    async def refuse_body(self, error: StoreError) -> None:
        writer, self._writer = getattr(self, "_writer", None), None
        if writer is not None:  # a whole blob cut short keeps nothing, gone before the answer
            await writer.abort()
        if self._queue is not None:  # what arrived so far stays in the session, as on a drop
            queue, self._queue = self._queue, None
            await queue.put(None)
        await super().refuse_body(error)

    async def _body_done(self) -> int | None:
        if self._queue is None or self._append is None:
            return None
        await self._queue.put(None)
        self._queue = None
        return await self._append

    def on_connection_close(self) -> None:
        self._drop_writer()
        if getattr(self, "_queue", None) is not None:
            self._queue.put_nowait(None)  # type: ignore[union-attr]
        super().on_connection_close()

    def on_finish(self) -> None:
        self._drop_writer()  # answered without committing it (an error): nothing is kept
        super().on_finish()

    def _drop_writer(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            self._writer = None
            tornado.ioloop.IOLoop.current().add_callback(writer.abort)

    async def _commit(self, name: str, upload: RegistryUpload | None) -> None:
        """Commit the whole blob this request's body was, on its ``?digest=``; answer 201."""
        writer, self._writer = self._writer, None
        assert writer is not None
        digest = self.get_query_argument("digest", None) or ""
        info = await self.registry.commit_blob(name, writer, digest, upload)
        self._created(name, info.digest)

    def _location(self) -> str:
        assert self.upload is not None
        return f"/v2/{self.upload.repo}/blobs/uploads/{self.upload.upload_id}"

    def _progress(self, size: int, status: int) -> None:
        self.set_status(status)
        self.set_header("Location", self._location())
        self.set_header("Range", f"0-{max(size - 1, 0)}")
        self.set_header("Docker-Upload-UUID", self.upload.upload_id if self.upload else "")
        self.set_header("Content-Length", "0")
        self.finish()

    def _created(self, name: str, digest: str) -> None:
        self.set_status(201)
        self.set_header("Location", f"/v2/{name}/blobs/{digest}")
        self.set_header("Docker-Content-Digest", digest)
        self.set_header("Content-Length", "0")
        self.finish()

    async def post(self, name: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        if getattr(self, "mounted", None):
            self._created(name, self.mounted)  # type: ignore[arg-type]
            return
        if self._writer is not None:  # monolithic: the whole blob in this POST
            await self._commit(name, None)
            return
        size = await self._body_done() or 0
        self._progress(size, 202)

    async def patch(self, name: str, upload_id: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        size = await self._body_done()
        if size is None:  # an empty chunk
            assert self.upload is not None
            size = await self.registry.upload_size(self.upload)
        self._progress(size, 202)

    async def put(self, name: str, upload_id: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        if self._writer is not None:  # the whole blob in this PUT: no session to finalize
            await self._commit(name, self.upload)
            return
        await self._body_done()
        assert self.upload is not None
        info = await self.registry.finish_upload(self.upload, self.get_query_argument("digest"))
        self._created(name, info.digest)

    async def get(self, name: str, upload_id: str) -> None:
        assert self.upload is not None
        self._progress(await self.registry.upload_size(self.upload), 204)

    async def delete(self, name: str, upload_id: str) -> None:
        assert self.upload is not None
        await self.registry.cancel_upload(self.upload)
        self.set_status(204)
        self.finish()


class ReferrersHandler(OCIHandler):
    query_parameters = takes(GET=("artifactType",))

    async def get(self, name: str, digest: str) -> None:
        await self.pull(name)
        artifact_type = self.get_query_argument("artifactType", None)
        manifests = await self.registry.referrers(name, digest, artifact_type)
        if artifact_type:
            self.set_header("OCI-Filters-Applied", "artifactType")
        self.set_header("Content-Type", EMPTY_INDEX)
        self.finish(
            json.dumps({"schemaVersion": 2, "mediaType": EMPTY_INDEX, "manifests": manifests})
        )


class OCINotFoundHandler(OCIHandler):
    """Any /v2 path no route claims: 404 in the OCI dialect, whatever the method."""

    async def prepare(self) -> None:
        raise StoreError("NotFound", f"no such endpoint: {self.request.path}")


def routes(ctx: Any) -> list[Route]:
    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    name = r"(.+?)"
    return [
        r(r"/v2/?", BaseV2Handler, "/v2/"),
        r(r"/v2/token", TokenHandler, "/v2/token"),
        r(r"/v2/_catalog", CatalogHandler, "/v2/_catalog"),
        r(rf"/v2/{name}/tags/list", TagsHandler, "/v2/{name}/tags/list"),
        r(rf"/v2/{name}/manifests/([^/]+)", ManifestHandler, "/v2/{name}/manifests/{reference}"),
        r(rf"/v2/{name}/blobs/uploads/?", BlobUploadHandler, "/v2/{name}/blobs/uploads/"),
        r(rf"/v2/{name}/blobs/uploads/([^/]+)", BlobUploadHandler, "/v2/{name}/blobs/uploads/{id}"),
        r(rf"/v2/{name}/blobs/([^/]+)", BlobHandler, "/v2/{name}/blobs/{digest}"),
        r(rf"/v2/{name}/referrers/([^/]+)", ReferrersHandler, "/v2/{name}/referrers/{digest}"),
        r(r"/v2(?:/.*)?", OCINotFoundHandler, "unmatched"),
    ]
