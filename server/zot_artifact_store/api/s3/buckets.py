"""S3 bucket operations: create, head, delete, list (v1, v2, versions, uploads), location,
ACL, versioning, policy, tags and DeleteObjects."""

from __future__ import annotations

import json
from typing import Any

from ... import jsonbody
from ...errors import StoreError
from ...metadata import ObjectRecord
from ...services.artifacts import Listing, bucket_tags, decode_token, set_bucket_tags
from ...services.lifecycle import bucket_rules
from ..httputil import (
    quote_etag,
)
from . import xml
from .access import BucketAccessOperations
from .base import (
    DEFAULT_REGION,
    MAX_DELETE_KEYS,
    MAX_KEYS,
    OWNER,
    STORAGE_CLASS,
    s3_code,
    store_region,
    verify_body_integrity,
)
from .cors import BucketCorsOperations, CorsHandling
from .lifecycle import lifecycle_xml, parse_lifecycle
from .objectlock import BucketObjectLockOperations, ObjectLockRequests
from .tagging import MAX_BUCKET_TAGS, parse_tagging, tagging_xml
from .versioning import BucketVersioningOperations


# ---- buckets ----------------------------------------------------------------------------------
class BucketHandler(
    BucketAccessOperations,
    BucketCorsOperations,
    BucketVersioningOperations,
    BucketObjectLockOperations,
    ObjectLockRequests,
    CorsHandling,
):
    """``/{bucket}``: each method runs the operation :mod:`.operations` identified."""

    level = "bucket"

    async def op_CreateBucket(self, name: str) -> None:
        await self.authorize("s3:CreateBucket", name)
        if self.request.body:
            config = xml.parse(self.request.body, "CreateBucketConfiguration")
            xml.child_text(config, "LocationConstraint")  # any region is this store
        public = self.canned_acl()
        # As AWS: re-creating a bucket you own is BucketAlreadyOwnedByYou (409), except in
        # us-east-1, where for legacy compatibility it is 200 OK and resets the bucket's ACL.
        legacy = store_region(self.ctx.config) == DEFAULT_REGION
        lock = self.request.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true"
        await self.ctx.artifacts.create_bucket(
            name, self.principal.id, public_read=bool(public), exist_ok=legacy, object_lock=lock
        )
        self.set_header("Location", f"/{name}")
        self.finish()

    async def op_HeadBucket(self, name: str) -> None:
        await self.authorize("s3:ListBucket", name)
        await self.ctx.artifacts.get_bucket(name)
        self.set_header("x-amz-bucket-region", store_region(self.ctx.config))
        self.set_header("Content-Type", "application/xml")  # as AWS answers
        self.finish()

    async def op_DeleteBucket(self, name: str) -> None:
        await self.authorize("s3:DeleteBucket", name)
        await self.ctx.artifacts.delete_bucket(name)
        self.set_status(204)
        self.finish()

    async def op_GetBucketLocation(self, name: str) -> None:
        await self.authorize("s3:GetBucketLocation", name)
        await self.ctx.artifacts.get_bucket(name)
        region = store_region(self.ctx.config)
        self.set_header("Content-Type", "application/xml")
        # us-east-1 is the empty constraint (S3's legacy default region).
        self.finish(
            xml.render_text("LocationConstraint", "" if region == DEFAULT_REGION else region)
        )

    async def op_GetBucketAcl(self, name: str) -> None:
        await self.authorize("s3:GetBucketAcl", name)
        bucket = await self.ctx.artifacts.get_bucket(name)
        self.acl_xml(bucket.public_read)

    async def op_PutBucketAcl(self, name: str) -> None:
        await self.authorize("s3:PutBucketAcl", name)
        bucket = await self.ctx.artifacts.get_bucket(name)
        bucket.public_read = self.acl_from_request()
        if bucket.public_read:
            await self.ctx.artifacts.check_public_acl(name)
        await self.ctx.artifacts.metadata.update_bucket(bucket)
        self.finish()

    async def op_GetBucketPolicy(self, name: str) -> None:
        await self.authorize("s3:GetBucketPolicy", name)
        doc = await self.ctx.authorizer.policies.get_bucket_policy(name)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc))

    async def op_PutBucketPolicy(self, name: str) -> None:
        await self.authorize("s3:PutBucketPolicy", name)
        await self.ctx.authorizer.policies.put_bucket_policy(name, self.policy_body())
        self.audit("s3:PutBucketPolicy", name, True, "policy set")
        self.set_status(204)
        self.finish()

    async def op_DeleteBucketPolicy(self, name: str) -> None:
        await self.authorize("s3:DeleteBucketPolicy", name)
        await self.ctx.authorizer.policies.delete_bucket_policy(name)
        self.audit("s3:DeleteBucketPolicy", name, True, "policy removed")
        self.set_status(204)
        self.finish()

    # -- tags (S3 bucket tagging) --
    async def op_GetBucketTagging(self, name: str) -> None:
        await self.authorize("s3:GetBucketTagging", name)
        tags = bucket_tags(await self.ctx.artifacts.get_bucket(name))
        if not tags:
            raise StoreError("NoSuchTagSet", f"bucket {name!r} has no tags", resource=name)
        self.write_xml("Tagging", tagging_xml(tags))

    async def op_PutBucketTagging(self, name: str) -> None:
        await self.authorize("s3:PutBucketTagging", name)
        bucket = await self.ctx.artifacts.get_bucket(name)
        verify_body_integrity(self.request.headers, self.request.body, required=False)
        tags = parse_tagging(self.request.body, MAX_BUCKET_TAGS, "a bucket")
        set_bucket_tags(bucket, tags)
        await self.ctx.artifacts.metadata.update_bucket(bucket)
        self.set_status(204)
        self.finish()

    async def op_DeleteBucketTagging(self, name: str) -> None:
        await self.authorize("s3:PutBucketTagging", name)  # AWS's action for deleting them too
        bucket = await self.ctx.artifacts.get_bucket(name)
        set_bucket_tags(bucket, {})
        await self.ctx.artifacts.metadata.update_bucket(bucket)
        self.set_status(204)
        self.finish()

    # -- lifecycle (S3 bucket lifecycle configuration; services/lifecycle.py enforces it) --
    async def op_GetBucketLifecycleConfiguration(self, name: str) -> None:
        await self.authorize("s3:GetLifecycleConfiguration", name)
        rules = bucket_rules(await self.ctx.artifacts.get_bucket(name))
        if not rules:
            raise StoreError(
                "NoSuchLifecycleConfiguration",
                f"bucket {name!r} has no lifecycle configuration",
                resource=name,
            )
        self.write_xml("LifecycleConfiguration", lifecycle_xml(rules))

    async def op_PutBucketLifecycleConfiguration(self, name: str) -> None:
        await self.authorize("s3:PutLifecycleConfiguration", name)
        await self.ctx.artifacts.get_bucket(name)  # NoSuchBucket before the body's errors
        verify_body_integrity(self.request.headers, self.request.body, required=False)
        rules = parse_lifecycle(self.request.body)
        await self.ctx.artifacts.set_lifecycle(name, rules)
        self.audit("s3:PutLifecycleConfiguration", name, True, f"{len(rules)} rule(s) set")
        self.finish()

    async def op_DeleteBucketLifecycle(self, name: str) -> None:
        await self.authorize("s3:PutLifecycleConfiguration", name)  # AWS's action for it
        await self.ctx.artifacts.set_lifecycle(name, None)
        self.audit("s3:PutLifecycleConfiguration", name, True, "lifecycle configuration removed")
        self.set_status(204)
        self.finish()

    def policy_body(self) -> Any:
        try:
            return jsonbody.loads(self.request.body)
        except (ValueError, UnicodeDecodeError):
            raise StoreError("MalformedPolicy", "the policy is not valid JSON") from None

    async def op_ListObjects(self, name: str) -> None:
        await self.authorize("s3:ListBucket", name)
        await self._list(name, "v1")

    async def op_ListObjectsV2(self, name: str) -> None:
        await self.authorize("s3:ListBucket", name)
        await self._list(name, "v2")

    async def op_ListMultipartUploads(self, name: str) -> None:
        await self.authorize("s3:ListBucketMultipartUploads", name)
        await self._list_uploads(name)

    async def _list(self, name: str, style: str) -> None:
        # Echoed exactly as sent (whitespace, newlines and all); absent ones are left out.
        sent_delimiter = self.arg("delimiter")
        prefix = self.arg("prefix") or ""
        delimiter = sent_delimiter or ""
        max_keys = self.int_arg("max-keys", MAX_KEYS)
        enc = self.url_encoding()
        if style == "v2":
            token = self.arg("continuation-token")
            start_after = self.arg("start-after")
            after = decode_token(token) if token else start_after
        else:
            after = self.arg("marker") or None
        bucket = await self.ctx.artifacts.get_bucket(name)
        if max_keys == 0:
            listing = Listing([], [], False)
        else:
            listing = await self.ctx.artifacts.list_objects(
                name, prefix=prefix, delimiter=delimiter, start_after=after, limit=max_keys
            )
        fetch_owner = style != "v2" or self.arg("fetch-owner") == "true"

        def entry(o: ObjectRecord) -> dict[str, Any]:
            out: dict[str, Any] = {
                "Key": xml.url_encode(o.key, enc),
                "LastModified": xml.s3_time(o.updated_at),
                "ETag": quote_etag(o.etag),
                "Size": o.size,
                "StorageClass": STORAGE_CLASS,
            }
            if fetch_owner:
                out["Owner"] = OWNER
            return out

        common = [{"Prefix": xml.url_encode(p, enc)} for p in listing.common_prefixes]
        base: dict[str, Any] = {
            "Name": bucket.name,
            "Prefix": xml.url_encode(prefix, enc),
        }
        if style == "v2":
            self.write_xml(
                "ListBucketResult",
                {
                    **base,
                    "Delimiter": xml.url_encode(sent_delimiter, enc),
                    "MaxKeys": max_keys,
                    "EncodingType": "url" if enc else None,
                    "KeyCount": len(listing.objects) + len(listing.common_prefixes),
                    "IsTruncated": listing.truncated,
                    "ContinuationToken": self.arg("continuation-token"),
                    "NextContinuationToken": listing.next_token,
                    "StartAfter": xml.url_encode(self.arg("start-after"), enc),
                    "Contents": [entry(o) for o in listing.objects],
                    "CommonPrefixes": common,
                },
            )
        else:
            self.write_xml(
                "ListBucketResult",
                {
                    **base,
                    "Marker": xml.url_encode(self.arg("marker") or "", enc),
                    "NextMarker": (
                        xml.url_encode(listing.next_marker, enc) if listing.truncated else None
                    ),
                    "MaxKeys": max_keys,
                    "Delimiter": xml.url_encode(sent_delimiter, enc),
                    "EncodingType": "url" if enc else None,
                    "IsTruncated": listing.truncated,
                    "Contents": [entry(o) for o in listing.objects],
                    "CommonPrefixes": common,
                },
            )

    async def _list_uploads(self, name: str) -> None:
        prefix = self.arg("prefix") or ""
        key_marker = self.arg("key-marker") or None
        upload_marker = self.arg("upload-id-marker") or None
        limit = self.int_arg("max-uploads", MAX_KEYS, low=1)
        enc = self.url_encoding()
        await self.ctx.artifacts.get_bucket(name)
        uploads, truncated = await self.ctx.metadata.list_multipart(
            name, prefix, key_marker, upload_marker, limit
        )
        last = uploads[-1] if uploads else None
        self.write_xml(
            "ListMultipartUploadsResult",
            {
                "Bucket": name,
                "KeyMarker": xml.url_encode(key_marker or "", enc),
                "UploadIdMarker": upload_marker or "",
                "NextKeyMarker": xml.url_encode(last.key, enc) if truncated and last else None,
                "NextUploadIdMarker": last.upload_id if truncated and last else None,
                "Prefix": xml.url_encode(prefix, enc),
                "MaxUploads": limit,
                "EncodingType": "url" if enc else None,
                "IsTruncated": truncated,
                "Upload": [
                    {
                        "Key": xml.url_encode(u.key, enc),
                        "UploadId": u.upload_id,
                        "Initiator": OWNER,
                        "Owner": OWNER,
                        "StorageClass": STORAGE_CLASS,
                        "Initiated": xml.s3_time(u.initiated_at),
                    }
                    for u in uploads
                ],
            },
        )

    async def op_DeleteObjects(self, name: str) -> None:
        body = self.request.body
        verify_body_integrity(self.request.headers, body, required=True)
        request = xml.parse(body, "Delete")
        quiet = (xml.child_text(request, "Quiet") or "").strip().lower() == "true"
        objects = [
            (xml.child_text(o, "Key"), xml.child_text(o, "VersionId"))
            for o in xml.children(request, "Object")
        ]
        keys = [key for key, _ in objects]
        if len(keys) > MAX_DELETE_KEYS:
            raise StoreError("MalformedXML", f"at most {MAX_DELETE_KEYS} keys per request")
        if not keys:
            raise StoreError("MalformedXML", "the request names no objects")
        await self.ctx.artifacts.get_bucket(name)
        bypass = await self.bypass_governance(name)
        deleted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for key, version in objects:
            try:
                if key is None:
                    raise StoreError("InvalidArgument", "an <Object> has no <Key>")
                action = "s3:DeleteObjectVersion" if version is not None else "s3:DeleteObject"
                await self.authorize(action, f"{name}/{key}")
                deletion = await self.ctx.artifacts.delete_object(
                    name, key, version_id=version, bypass_governance=bypass
                )
                if not quiet:
                    done: dict[str, Any] = {"Key": key, "VersionId": version}
                    if deletion.delete_marker:
                        done["DeleteMarker"] = True
                        if deletion.marker is not None:
                            done["DeleteMarkerVersionId"] = deletion.version_id
                    deleted.append(done)
            except StoreError as exc:
                code, _ = s3_code(exc)
                errors.append({"Key": key or "", "Code": code, "Message": exc.message})
        self.write_xml("DeleteResult", {"Deleted": deleted, "Error": errors})
