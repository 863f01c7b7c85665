"""Content-addressed blob storage (DESIGN.md §4): the interface and its backends."""

from __future__ import annotations

from pathlib import Path

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
    UploadNotFoundError,
    is_digest,
    split_digest,
)
from .filesystem import FilesystemBlobStore

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
    "UploadNotFoundError",
    "create_blob_store",
    "is_digest",
    "split_digest",
]


def create_blob_store(root: str | Path, *, fsync: bool = True) -> BlobStore:
    """The configured blob store (not yet opened: call ``await store.open()``).

    Only the filesystem backend exists today; object-store backends (S3, Azure, GCS) will be
    chosen here from the storage configuration.
    """
    return FilesystemBlobStore(root, fsync=fsync)
