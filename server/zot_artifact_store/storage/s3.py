"""The S3 blob store: blobs in an S3 (or S3-compatible) bucket, all state in the bucket.

The store's logic (layout, writes, upload sessions, leftovers) is the object stores' common
one (``objectstore.py``); here are the S3 wire (``s3client.py``: PutObject with
``If-None-Match: *``, multipart uploads, UploadPartCopy with a conditional
``CompleteMultipartUpload``, a copy onto itself as the dedupe touch) and the start-up check.
"""

from __future__ import annotations

from .objectstore import ObjectBlobStore
from .s3client import S3Client, S3Options

__all__ = ["S3BlobStore", "S3Options"]


class S3BlobStore(ObjectBlobStore):
    client: S3Client
    options: S3Options

    def new_client(self) -> S3Client:
        return S3Client(self.options)
