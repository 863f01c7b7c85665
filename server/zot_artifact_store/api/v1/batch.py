"""``/v1/batch``, ``/v1/batch/delete``, ``/v1/batch/head`` and ``/v1/batch/verify``: many
objects or subjects in one request (services/batch.py decides each one). The answer is 200
with a result per item, in request order, even when some items fail; more than
:data:`MAX_BATCH_ITEMS` items is a 413 naming the limit."""

from __future__ import annotations

from typing import Any

from ...auth.presign import DEFAULT_EXPIRES_IN, check_expires_in
from ...errors import StoreError
from ...services.artifacts import validate_bucket_name
from ...services.batch import Caller
from .common import V1Handler
from .uploads import json_object


class BatchHandler(V1Handler):
    """Shared by the batch routes: the caller as services/batch.py sees them."""

    def caller(self) -> Caller:
        return Caller(self.principal.id, self.refusal, self.audit)

    def bucket_field(self, body: dict[str, Any]) -> str:
        bucket = body.get("bucket")
        if not isinstance(bucket, str):
            raise StoreError("MalformedJSON", "bucket must be a string")
        validate_bucket_name(bucket)
        return bucket


class BatchPlanHandler(BatchHandler):
    """``POST /v1/batch``: the Git LFS batch model (upload or download of many objects)."""

    async def post(self) -> None:
        body = json_object(
            self,
            {"operation", "bucket", "objects", "expires_in"},
            '{"operation": "upload" | "download", "bucket", "objects": [{"key", "sha256", '
            '"size"}, …], "expires_in"?}',
        )
        bucket = self.bucket_field(body)
        operation = body.get("operation")
        if not isinstance(operation, str):
            raise StoreError("MalformedJSON", 'operation must be "upload" or "download"')
        expires_in = check_expires_in(body.get("expires_in", DEFAULT_EXPIRES_IN))
        if self.principal.is_anonymous:
            raise StoreError("Unauthenticated", "log in to plan transfers (they are presigned)")
        answer = await self.ctx.batch.plan(
            operation, bucket, body.get("objects"), expires_in, self.caller(), self.base_url()
        )
        self.set_header("Cache-Control", "no-store")
        self.write_json(answer)


class BatchDeleteHandler(BatchHandler):
    """``POST /v1/batch/delete``: many keys of a bucket, each deleted as a single DELETE."""

    async def post(self) -> None:
        body = json_object(self, {"bucket", "keys"}, '{"bucket", "keys": ["<key>", …]}')
        bucket = self.bucket_field(body)
        self.write_json(await self.ctx.batch.delete(bucket, body.get("keys"), self.caller()))


class BatchHeadHandler(BatchHandler):
    """``POST /v1/batch/head``: many keys' metadata."""

    async def post(self) -> None:
        body = json_object(self, {"bucket", "keys"}, '{"bucket", "keys": ["<key>", …]}')
        bucket = self.bucket_field(body)
        self.write_json(await self.ctx.batch.head(bucket, body.get("keys"), self.caller()))


class BatchVerifyHandler(BatchHandler):
    """``POST /v1/batch/verify``: many subjects under one policy."""

    async def post(self) -> None:
        body = json_object(
            self,
            {"subjects", "policy", "issue_vsa"},
            '{"subjects": [<subject>, …], "policy": …, "issue_vsa"?: bool}',
        )
        if "policy" not in body:
            raise StoreError("MalformedJSON", "policy is required")
        issue_vsa = body.get("issue_vsa", False)
        if not isinstance(issue_vsa, bool):
            raise StoreError("MalformedJSON", "issue_vsa must be true or false")
        answer = await self.ctx.batch.verify(
            body.get("subjects"), body["policy"], issue_vsa, self.caller()
        )
        self.write_json(answer)
