"""``/v1`` multipart uploads and presigned URLs.

Uploads are the S3 API's multipart uploads (services/multipart.py) in JSON: parts stream
into blobs in any order and in parallel, ``GET`` on an upload lists what has arrived (what a
client needs to resume), and completing it publishes the object with the sha256 of the whole
content. ``POST /v1/presign`` signs object URLs (auth/presign.py).
"""

from __future__ import annotations

from typing import Any

import tornado.web

from ...auth.presign import ACTIONS, DEFAULT_EXPIRES_IN, check_expires_in
from ...errors import StoreError
from ...metadata import MultipartUpload, Part
from ...services.artifacts import (
    PutOptions,
    normalize_sha256,
    object_json,
    validate_bucket_name,
    validate_key,
    validate_labels,
)
from ...services.lifecycle import parse_expires_at, parse_expires_in
from ...services.multipart import PartSession, check_part_number
from ...timefmt import iso_time
from ..base import UploadHandler
from ..query import takes
from .common import MAX_LIST_LIMIT, V1Handler


def upload_json(upload: MultipartUpload) -> dict[str, Any]:
    return {
        "upload_id": upload.upload_id,
        "bucket": upload.bucket,
        "key": upload.key,
        "created_at": iso_time(upload.initiated_at),
        "content_type": upload.content_type,
        "labels": upload.labels,
        "expires_at": iso_time(upload.expires_at) if upload.expires_at is not None else None,
    }


def part_json(part: Part) -> dict[str, Any]:
    return {
        "part_number": part.part_number,
        "size": part.size,
        "etag": part.etag,
        "sha256": part.digest.removeprefix("sha256:"),
    }


def json_object(handler: V1Handler, fields: set[str], shape: str) -> dict[str, Any]:
    """The request body: a JSON object with no field outside ``fields``."""
    body = handler.json_body(required=True)
    if not isinstance(body, dict):
        raise StoreError("MalformedJSON", f"the request is {shape}")
    unknown = set(body) - fields
    if unknown:
        raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
    return body


class UploadsHandler(V1Handler):
    """``/v1/buckets/{bucket}/uploads``: start an upload; list those in progress."""

    query_parameters = takes(GET=("prefix", "limit"))

    async def post(self, bucket: str) -> None:
        body = json_object(
            self,
            {"key", "content_type", "labels", "expires_in", "expires_at"},
            '{"key", "content_type"?, "labels"?, "expires_in"? | "expires_at"?}',
        )
        key, content_type = body.get("key"), body.get("content_type")
        if not isinstance(key, str):
            raise StoreError("MalformedJSON", "key must be a string")
        if content_type is not None and not isinstance(content_type, str):
            raise StoreError("MalformedJSON", "content_type must be a string")
        validate_key(key)
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        options = PutOptions(content_type=content_type, labels=validate_labels(body.get("labels")))
        if "expires_in" in body and "expires_at" in body:
            raise StoreError("InvalidArgument", "give expires_in or expires_at, not both")
        if body.get("expires_in") is not None:
            options.expires_at = parse_expires_in(body["expires_in"])
        elif body.get("expires_at") is not None:
            if not isinstance(body["expires_at"], str):
                raise StoreError("MalformedJSON", "expires_at must be an RFC 3339 string")
            options.expires_at = parse_expires_at(body["expires_at"])
        upload = await self.ctx.multipart.create(bucket, key, self.principal.id, options)
        self.audit("s3:PutObject", f"{bucket}/{key}", True, f"upload {upload.upload_id} started")
        self.set_header("Location", f"/v1/buckets/{bucket}/uploads/{upload.upload_id}")
        self.write_json(upload_json(upload), 201)

    async def get(self, bucket: str) -> None:
        await self.authorize("s3:ListBucketMultipartUploads", bucket)
        await self.ctx.artifacts.get_bucket(bucket)
        limit = self.int_arg("limit", MAX_LIST_LIMIT, 1, MAX_LIST_LIMIT)
        uploads, truncated = await self.ctx.metadata.list_multipart(
            bucket, self.get_query_argument("prefix", ""), limit=limit
        )
        self.write_json({"uploads": [upload_json(u) for u in uploads], "truncated": truncated})


class MultipartUploadHandler(V1Handler):
    """``/v1/buckets/{bucket}/uploads/{upload_id}``: its parts so far; abort."""

    async def get(self, bucket: str, upload_id: str) -> None:
        upload = await self.ctx.multipart.get(bucket, None, upload_id)
        await self.authorize("s3:ListMultipartUploadParts", f"{bucket}/{upload.key}")
        parts = await self.ctx.multipart.parts(upload)
        self.write_json({**upload_json(upload), "parts": [part_json(p) for p in parts]})

    async def delete(self, bucket: str, upload_id: str) -> None:
        upload = await self.ctx.multipart.get(bucket, None, upload_id)
        resource = f"{bucket}/{upload.key}"
        await self.authorize("s3:AbortMultipartUpload", resource)
        await self.ctx.multipart.abort(upload)
        self.audit("s3:AbortMultipartUpload", resource, True, f"upload {upload_id} aborted")
        self.set_status(204)
        self.finish()


@tornado.web.stream_request_body
class PartHandler(V1Handler, UploadHandler):
    """``PUT /v1/buckets/{bucket}/uploads/{upload_id}/parts/{n}``: one part, streamed into
    its own blob; ``X-Checksum-Sha256`` (or ``?sha256=``) is checked before the part is
    recorded."""

    query_parameters = takes(PUT=("sha256",))

    async def prepare(self) -> None:
        await super().prepare()
        self.session = None
        if self.request.method != "PUT":
            return
        bucket, upload_id, raw_number = self.path_args
        upload = await self.ctx.multipart.get(bucket, None, upload_id)
        await self.authorize("s3:PutObject", f"{bucket}/{upload.key}")
        try:
            number = check_part_number(int(raw_number))
        except ValueError:
            raise StoreError("InvalidArgument", "the part number must be an integer") from None
        self.session = await self.ctx.multipart.begin_part(upload, number, self.stream_options())

    async def receive(self, chunk: bytes) -> None:
        if self.session is not None:
            await self.session.write(chunk)

    async def put(self, bucket: str, upload_id: str, number: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        session = self.session
        assert isinstance(session, PartSession)
        self.session = None
        try:
            part = await session.finish_part()
        except StoreError as exc:
            if exc.code != "ChecksumMismatch":
                raise
            raise StoreError(  # the same code as an object PUT whose body does not match
                "ChecksumMismatch",
                f"part {session.number} does not match X-Checksum-Sha256 ({exc.message})",
                resource=f"{bucket}/{session.key}",
                detail=exc.detail,
            ) from None
        finally:
            await session.abort()
        self.write_json(part_json(part))


class CompleteHandler(V1Handler):
    """``POST /v1/buckets/{bucket}/uploads/{upload_id}/complete``: publish the object."""

    async def post(self, bucket: str, upload_id: str) -> None:
        body = json_object(
            self,
            {"parts", "sha256"},
            '{"parts": [{"part_number", "etag"}, …], "sha256"?: "<hex>"}',
        )
        requested = body.get("parts")
        if not isinstance(requested, list) or not requested:
            raise StoreError("MalformedJSON", "parts must be a non-empty list")
        parts: list[tuple[int, str]] = []
        for item in requested:
            number = item.get("part_number") if isinstance(item, dict) else None
            etag = item.get("etag") if isinstance(item, dict) else None
            if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str):
                raise StoreError(
                    "MalformedJSON", 'each part is {"part_number": <int>, "etag": "<string>"}'
                )
            parts.append((number, etag))
        sha256 = body.get("sha256")
        if sha256 is not None and not isinstance(sha256, str):
            raise StoreError("MalformedJSON", "sha256 must be a string")
        upload = await self.ctx.multipart.get(bucket, None, upload_id)
        resource = f"{bucket}/{upload.key}"
        await self.authorize("s3:PutObject", resource)
        # Create-only (If-None-Match: *) or replace-this-version (If-Match), as on a PUT.
        await self.check_write_preconditions(bucket, upload.key)
        record, previous = await self.ctx.multipart.complete(
            upload,
            parts,
            normalize_sha256(sha256) if sha256 is not None else None,
            sha256_etag=True,
            if_absent=self.create_only(),
        )
        self.audit(
            "s3:PutObject", resource, True, f"upload {upload_id} completed ({len(parts)} parts)",
            subject_digest=record.digest,
        )  # fmt: skip
        self.write_json(object_json(record), 200 if previous is not None else 201)


class PresignHandler(V1Handler):
    """``POST /v1/presign``: a URL that lets its holder GET/HEAD or PUT one object until it
    expires, on the caller's authority (checked now)."""

    async def post(self) -> None:
        body = json_object(
            self,
            {"bucket", "key", "method", "expires_in"},
            '{"bucket", "key", "method"?, "expires_in"?}',
        )
        bucket, key = body.get("bucket"), body.get("key")
        method, expires_in = body.get("method", "GET"), body.get("expires_in", DEFAULT_EXPIRES_IN)
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise StoreError("MalformedJSON", "bucket and key must be strings")
        if not isinstance(method, str) or method.upper() not in ACTIONS:
            raise StoreError("InvalidArgument", "method must be GET, HEAD or PUT")
        expires_in = check_expires_in(expires_in)
        validate_bucket_name(bucket)
        validate_key(key)
        method = method.upper()
        resource = f"{bucket}/{key}"
        if self.principal.is_anonymous:
            raise StoreError("Unauthenticated", "log in to presign a URL", resource=resource)
        await self.authorize(ACTIONS[method], resource)
        signed = self.ctx.presigner.sign(method, bucket, key, self.principal.id, expires_in)
        expires_at = iso_time(signed.expires_at)
        self.audit("auth:Presign", resource, True, f"{method} until {expires_at}")
        self.set_header("Cache-Control", "no-store")
        self.write_json(
            {
                "url": self.base_url() + signed.path_and_query,
                "method": method,
                "expires_at": expires_at,
            }
        )
