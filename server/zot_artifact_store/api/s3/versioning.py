"""S3 versioning on a bucket: Get/PutBucketVersioning and ListObjectVersions
(services/versioning.py has the rules)."""

from __future__ import annotations

from typing import Any

from ...errors import StoreError
from ...metadata import ObjectRecord
from ...services.object_versions import VersionListing
from ...services.versioning import bucket_versioning, s3_version_id
from ..httputil import quote_etag
from . import xml
from .base import MAX_KEYS, OWNER, STORAGE_CLASS, S3Handler


class BucketVersioningOperations(S3Handler):
    """Mixed into the bucket handler."""

    async def op_GetBucketVersioning(self, name: str) -> None:
        await self.authorize("s3:GetBucketVersioning", name)
        bucket = await self.ctx.artifacts.get_bucket(name)
        status = bucket_versioning(bucket)
        # Never enabled: no Status at all, as on AWS.
        self.write_xml("VersioningConfiguration", {"Status": status or None})

    async def op_PutBucketVersioning(self, name: str) -> None:
        await self.authorize("s3:PutBucketVersioning", name)
        config = xml.parse(self.request.body, "VersioningConfiguration")
        if (xml.child_text(config, "MfaDelete") or "Disabled").strip() != "Disabled":
            raise StoreError("NotImplemented", "PutBucketVersioning: MFA delete is not implemented")
        status = (xml.child_text(config, "Status") or "").strip()
        await self.ctx.artifacts.set_versioning(name, status)
        self.audit("s3:PutBucketVersioning", name, True, f"versioning {status}")
        self.finish()

    async def op_ListObjectVersions(self, name: str) -> None:
        await self.authorize("s3:ListBucketVersions", name)
        sent_delimiter = self.arg("delimiter")
        prefix = self.arg("prefix") or ""
        max_keys = self.int_arg("max-keys", MAX_KEYS)
        enc = self.url_encoding()
        key_marker = self.arg("key-marker") or None
        version_marker = self.arg("version-id-marker") or None
        bucket = await self.ctx.artifacts.get_bucket(name)
        if max_keys == 0:
            listing = VersionListing([], [], False)
        else:
            listing = await self.ctx.artifacts.list_object_versions(
                name,
                prefix=prefix,
                delimiter=sent_delimiter or "",
                key_marker=key_marker,
                version_id_marker=version_marker,
                limit=max_keys,
            )

        def common(o: ObjectRecord) -> dict[str, Any]:
            return {
                "Key": xml.url_encode(o.key, enc),
                "VersionId": s3_version_id(o),
                "IsLatest": o.noncurrent_since is None,
                "LastModified": xml.s3_time(o.updated_at),
            }

        versions = [
            {
                **common(o),
                "ETag": quote_etag(o.etag),
                "Size": o.size,
                "StorageClass": STORAGE_CLASS,
                "Owner": OWNER,
            }
            for o in listing.versions
            if not o.delete_marker
        ]
        markers = [{**common(o), "Owner": OWNER} for o in listing.versions if o.delete_marker]
        self.write_xml(
            "ListVersionsResult",
            {
                "Name": bucket.name,
                "Prefix": xml.url_encode(prefix, enc),
                "KeyMarker": xml.url_encode(key_marker or "", enc),
                "VersionIdMarker": version_marker or "",
                "NextKeyMarker": (
                    xml.url_encode(listing.next_key_marker, enc) if listing.truncated else None
                ),
                "NextVersionIdMarker": (
                    listing.next_version_id_marker if listing.truncated else None
                ),
                "MaxKeys": max_keys,
                "Delimiter": xml.url_encode(sent_delimiter, enc),
                "EncodingType": "url" if enc else None,
                "IsTruncated": listing.truncated,
                "Version": versions,
                "DeleteMarker": markers,
                "CommonPrefixes": [
                    {"Prefix": xml.url_encode(p, enc)} for p in listing.common_prefixes
                ],
            },
        )
