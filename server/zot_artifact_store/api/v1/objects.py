"""``/v1/buckets/{bucket}/objects/{key}``: upload, download, read and update metadata, copy
and delete one object."""

from __future__ import annotations

import json
from typing import Any

import tornado.web

from ...errors import NotModified, StoreError
from ...services.artifacts import (
    PutOptions,
    object_json,
)
from ...services.events import build_summary
from ...timefmt import iso_time
from ..base import UploadHandler
from ..httputil import check_preconditions, http_date, parse_copy_source, parse_range, quote_etag
from ..query import takes
from .common import V1Handler, parse_labels_header


@tornado.web.stream_request_body
class ObjectHandler(V1Handler, UploadHandler):
    """An object's bytes. PUT streams the body straight into the blob store."""

    query_parameters = takes(GET=("metadata",), PUT=("sha256", "expires_in"))

    async def prepare(self) -> None:
        await super().prepare()
        self.session = None
        if self.request.method != "PUT":
            return
        if "X-Copy-Source" in self.request.headers:
            if self.request.headers.get("Content-Length", "0") != "0":
                raise StoreError("InvalidRequest", "a copy (X-Copy-Source) has no body")
            return
        bucket, key = self.path_args
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        options = self.stream_options()
        options.expires_at = self.requested_expiry()
        # Conditional create/replace: evaluated against the current object before the body.
        await self.check_write_preconditions(bucket, key)
        self.session = await self.ctx.artifacts.begin_put(bucket, key, options)

    async def receive(self, chunk: bytes) -> None:
        if self.session is not None:
            await self.session.write(chunk)
        elif self.bytes_in > self.ctx.config.http.maxRequestBodySize:
            raise StoreError("EntityTooLarge", "request body too large")

    async def put(self, bucket: str, key: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        if "X-Copy-Source" in self.request.headers:
            await self._copy(bucket, key)
            return
        session = self.session
        assert session is not None
        self.session = None
        try:
            record, previous = await session.finish()
        finally:
            await session.abort()
        self._object_headers(record)
        self.write_json(object_json(record), 200 if previous is not None else 201)

    async def _copy(self, bucket: str, key: str) -> None:
        """``X-Copy-Source: <bucket>/<key>``: the new object shares the source's bytes."""
        if self.bytes_in:
            raise StoreError("InvalidRequest", "a copy (X-Copy-Source) has no body")
        source_bucket, source_key = parse_copy_source(
            self.request.headers["X-Copy-Source"], "X-Copy-Source"
        )
        source_resource = f"{source_bucket}/{source_key}"
        await self.authorize("s3:GetObject", source_resource)
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        source = await self.ctx.artifacts.head_object(source_bucket, source_key)
        # A copy reads its source: the source bucket's verification gate decides as for a GET.
        await self.check_gate(source)
        await self.check_write_preconditions(bucket, key)
        replace = None
        headers = self.request.headers
        expires_at = self.requested_expiry()
        if "Content-Type" in headers or "X-Artifact-Labels" in headers or expires_at is not None:
            replace = PutOptions(
                content_type=headers.get("Content-Type") or source.content_type,
                labels=(
                    parse_labels_header(headers["X-Artifact-Labels"])
                    if "X-Artifact-Labels" in headers
                    else source.labels
                ),
                user_metadata=source.user_metadata,
                headers=source.headers,
                expires_at=expires_at,
            )
        record, previous = await self.ctx.artifacts.copy_object(
            source, bucket, key, replace, if_absent=self.create_only()
        )
        self.audit(
            "s3:PutObject", f"{bucket}/{key}", True, f"copied from {source_resource}",
            subject_digest=record.digest,
        )  # fmt: skip
        self._object_headers(record)
        self.write_json(object_json(record), 200 if previous is not None else 201)

    def _object_headers(self, record: Any) -> None:
        self.set_header("ETag", quote_etag(record.etag))
        self.set_header("Last-Modified", http_date(record.updated_at))
        self.set_header("X-Checksum-Sha256", record.digest.removeprefix("sha256:"))

    async def get(self, bucket: str, key: str) -> None:
        await self._read(bucket, key, send_body=True)

    async def head(self, bucket: str, key: str) -> None:
        await self._read(bucket, key, send_body=False)

    async def _read(self, bucket: str, key: str, *, send_body: bool) -> None:
        await self.authorize("s3:GetObject", f"{bucket}/{key}")
        record = await self.ctx.artifacts.head_object(bucket, key)
        self._object_headers(record)
        if send_body and self.flag("metadata"):
            builds = [build_summary(b) for b in await self.ctx.events.builds_of(record.digest)]
            expiration = await self.ctx.artifacts.expiration(record)
            self.write_json(
                {
                    **object_json(record),
                    "builds": builds,
                    "expiration": (
                        {"at": iso_time(expiration.at), "rule_id": expiration.rule_id}
                        if expiration is not None
                        else None
                    ),
                }
            )
            return
        try:
            check_preconditions(self.request.headers, record.etag, record.updated_at, is_read=True)
        except NotModified:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", record.content_type)
        self.set_header("Accept-Ranges", "bytes")
        if record.labels:
            self.set_header("X-Artifact-Labels", json.dumps(record.labels, sort_keys=True))
        rng = parse_range(self.request.headers.get("Range"), record.size)
        if rng is not None and "If-Range" in self.request.headers:
            if_range = self.request.headers["If-Range"].strip()
            if if_range != quote_etag(record.etag):
                rng = None
        await self.send_object(record, rng, send_body=send_body)

    async def delete(self, bucket: str, key: str) -> None:
        await self.authorize("s3:DeleteObject", f"{bucket}/{key}")
        deletion = await self.ctx.artifacts.delete_object(bucket, key, existing=True)
        if deletion.removed is None:
            raise StoreError(
                "NoSuchKey",
                f"object {key!r} does not exist in bucket {bucket!r}",
                resource=f"{bucket}/{key}",
            )
        self.set_status(204)
        self.finish()
