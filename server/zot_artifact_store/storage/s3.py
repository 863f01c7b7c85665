"""The S3 blob store: blobs in an S3 (or S3-compatible) bucket, all state in the bucket.

The store's logic (layout, writes, upload sessions, leftovers) is the object stores' common
one (``objectstore.py``); here are the S3 wire (``s3client.py``: PutObject with
``If-None-Match: *``, multipart uploads, UploadPartCopy with a conditional
``CompleteMultipartUpload``, a copy onto itself as the dedupe touch) and the start-up check.
"""

from __future__ import annotations

from .base import StorageUnavailableError
from .objectstore import ObjectBlobStore
from .s3client import ObjectStoreError, S3Client, S3Options

__all__ = ["S3BlobStore", "S3Options"]


class S3BlobStore(ObjectBlobStore):
    client: S3Client

    def __init__(self, options: S3Options) -> None:
        self.options = options
        super().__init__(
            S3Client(options),
            touch_after=options.touch_after,
            orphan_copy_age=options.orphan_copy_age,
        )

    async def _check_reachable(self) -> None:
        o = self.options
        try:
            await self.client.call("list_objects_v2", Prefix=o.prefix, MaxKeys=1)
        except ObjectStoreError as exc:
            who = f"access key {o.access_key!r}" if o.access_key else "the default AWS credentials"
            if exc.code == "NoSuchBucket" or exc.status == 404:
                why = f"bucket {o.bucket!r} does not exist"
            elif exc.status in (401, 403) or exc.code in (
                "AccessDenied",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "NoCredentialsError",
                "PartialCredentialsError",
            ):
                why = f"{who} cannot list bucket {o.bucket!r} ({exc.code})"
            else:
                why = f"cannot list bucket {o.bucket!r}: {exc}"
            await self.client.close()
            self.client = S3Client(o)
            raise StorageUnavailableError(
                f"storage.storageDriver (s3): {why} at {o.endpoint_url or 'AWS ' + o.region}"
            ) from None
