"""Content-addressed blob storage (DESIGN.md §4): the interface and its backends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import (
    DIGEST_RE,
    EXTRA_HASHES,
    SUPPORTED_ALGORITHMS,
    BlobInfo,
    BlobNotFoundError,
    BlobStat,
    BlobStore,
    BlobWriter,
    DigestMismatchError,
    StorageBackendError,
    StorageUnavailableError,
    UploadNotFoundError,
    is_digest,
    split_digest,
)
from .filesystem import FilesystemBlobStore

if TYPE_CHECKING:
    from ..config import StorageDriverConfig

__all__ = [
    "DIGEST_RE",
    "EXTRA_HASHES",
    "SUPPORTED_ALGORITHMS",
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStat",
    "BlobStore",
    "BlobWriter",
    "DigestMismatchError",
    "FilesystemBlobStore",
    "StorageBackendError",
    "StorageUnavailableError",
    "UploadNotFoundError",
    "create_blob_store",
    "is_digest",
    "split_digest",
]


def create_blob_store(
    root: str | Path, *, fsync: bool = True, driver: StorageDriverConfig | None = None
) -> BlobStore:
    """The configured blob store (not yet opened: call ``await store.open()``): the filesystem
    under ``root``, or the object store ``driver`` names (``storage.storageDriver``)."""
    if driver is not None and driver.name == "s3":
        from .s3 import S3BlobStore, S3Options  # botocore loads only when configured

        assert driver.bucket is not None  # the config requires it for s3
        prefix = driver.rootdirectory.strip("/")
        return S3BlobStore(
            S3Options(
                bucket=driver.bucket,
                region=driver.region,
                endpoint=driver.regionendpoint,
                prefix=prefix + "/" if prefix else "",
                access_key=driver.accesskey,
                secret_key=driver.secretkey,
                force_path_style=driver.forcepathstyle,
                secure=driver.secure,
                skip_verify=driver.skipverify,
                storage_class=driver.storageclass,
                sse=driver.sse,
                sse_kms_key_id=driver.ssekmskeyid,
                part_size=driver.chunksize,
            )
        )
    return FilesystemBlobStore(root, fsync=fsync)
