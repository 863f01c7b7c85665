"""``/v1/buckets``: create, list, read and delete buckets, and list their objects."""

from __future__ import annotations

from ...auth.conditions import listing_values
from ...errors import StoreError
from ...services.artifacts import (
    Listing,
    bucket_json,
    decode_token,
    object_json,
    validate_labels,
)
from ..query import takes
from .common import MAX_LIST_LIMIT, V1Handler


class BucketsHandler(V1Handler):
    async def get(self) -> None:
        await self.authorize("s3:ListAllMyBuckets", "")
        buckets = await self.ctx.authorizer.visible_buckets(
            self.principal, await self.ctx.artifacts.list_buckets()
        )
        self.write_json({"buckets": [bucket_json(b) for b in buckets]})


class BucketHandler(V1Handler):
    query_parameters = takes(DELETE=("recursive",))

    async def put(self, name: str) -> None:
        await self.authorize("s3:CreateBucket", name)
        body = self.json_body()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise StoreError("MalformedJSON", "the bucket configuration must be a JSON object")
        unknown = set(body) - {"public_read", "labels", "web"}
        if unknown:
            raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
        public = body.get("public_read")  # absent: a new bucket is private, one kept as is
        if public is not None and not isinstance(public, bool):
            raise StoreError("MalformedJSON", "public_read must be true or false")
        web = body.get("web")  # absent: off for a new bucket, kept as is for an existing one
        if web is not None and not isinstance(web, bool):
            raise StoreError("MalformedJSON", "web must be true or false")
        labels = validate_labels(body.get("labels")) if "labels" in body else None
        bucket, created = await self.ctx.artifacts.create_bucket(
            name, self.principal.id, public_read=public, labels=labels, exist_ok=True, web=web
        )
        if created:
            self.set_header("Location", f"/v1/buckets/{name}")
        self.write_json(bucket_json(bucket), 201 if created else 200)

    async def get(self, name: str) -> None:
        await self.authorize("s3:GetBucket", name)
        bucket = await self.ctx.artifacts.get_bucket(name)
        self.write_json(bucket_json(bucket))

    async def head(self, name: str) -> None:
        await self.authorize("s3:HeadBucket", name)
        await self.ctx.artifacts.get_bucket(name)
        self.set_header("Content-Type", "application/json")  # what GET answers
        self.finish()

    async def delete(self, name: str) -> None:
        await self.authorize("s3:DeleteBucket", name)
        recursive = self.flag("recursive")
        if recursive:
            await self.authorize("s3:DeleteObject", f"{name}/*")
        await self.ctx.artifacts.delete_bucket(name, recursive=recursive)
        self.set_status(204)
        self.finish()


class ObjectListHandler(V1Handler):
    query_parameters = takes(
        GET=("prefix", "delimiter", "limit", "continuation_token", "start_after")
    )

    def condition_values(self, action: str) -> dict[str, str]:
        return listing_values(
            self.get_query_argument("prefix", None),
            self.get_query_argument("delimiter", None),
            self.get_query_argument("limit", None),
        )

    async def get(self, bucket: str) -> None:
        await self.authorize("s3:ListBucket", bucket)
        prefix = self.get_query_argument("prefix", "")
        delimiter = self.get_query_argument("delimiter", "")
        limit = self.int_arg("limit", MAX_LIST_LIMIT, 1, MAX_LIST_LIMIT)
        token = self.get_query_argument("continuation_token", None)
        start_after = decode_token(token) if token else self.get_query_argument("start_after", None)
        listing: Listing = await self.ctx.artifacts.list_objects(
            bucket, prefix=prefix, delimiter=delimiter, start_after=start_after, limit=limit
        )
        self.write_json(
            {
                "bucket": bucket,
                "prefix": prefix,
                "delimiter": delimiter,
                "objects": [object_json(o) for o in listing.objects],
                "common_prefixes": listing.common_prefixes,
                "truncated": listing.truncated,
                "next_continuation_token": listing.next_token,
            }
        )
