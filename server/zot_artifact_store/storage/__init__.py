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
    if driver is None or driver.name is None:
        return FilesystemBlobStore(root, fsync=fsync)
    prefix = driver.rootdirectory.strip("/")
    prefix = prefix + "/" if prefix else ""
    factory = {"s3": _s3, "azure": _azure, "gcs": _gcs}[driver.name]
    try:  # each backend's client library loads only when configured (azure, gcs: extras)
        return factory(driver, prefix)
    except ImportError as exc:
        raise _missing(driver.name, exc) from None


def _s3(driver: StorageDriverConfig, prefix: str) -> BlobStore:
    from .s3 import S3BlobStore, S3Options

    assert driver.bucket is not None  # the config requires it for s3
    return S3BlobStore(
        S3Options(
            bucket=driver.bucket,
            region=driver.region,
            endpoint=driver.regionendpoint,
            prefix=prefix,
            access_key=driver.accesskey,
            secret_key=driver.secretkey,
            force_path_style=driver.forcepathstyle,
            secure=driver.secure,
            skip_verify=driver.skipverify,
            storage_class=driver.storageclass,
            sse=driver.sse,
            sse_kms_key_id=driver.ssekmskeyid,
            part_size=driver.chunksize,
            commit=driver.commit,
        )
    )


def _missing(extra: str, exc: ImportError) -> StorageUnavailableError:
    return StorageUnavailableError(
        f"storage.storageDriver ({extra}) needs the {exc.name or 'client'} package: "
        f"pip install 'zot-artifact-store[{extra}]'"
    )


def _azure(driver: StorageDriverConfig, prefix: str) -> BlobStore:
    from .azure import AzureBlobStore, AzureOptions

    assert driver.container is not None  # the config requires it for azure
    return AzureBlobStore(
        AzureOptions(
            container=driver.container,
            account_name=driver.accountname,
            account_key=driver.accountkey,
            connection_string=driver.connectionstring,
            endpoint=driver.endpoint,
            realm=driver.realm,
            prefix=prefix,
            part_size=driver.chunksize,
            commit=driver.commit,
        )
    )


def _gcs(driver: StorageDriverConfig, prefix: str) -> BlobStore:
    from .gcs import GcsBlobStore, GcsOptions, emulator_host

    assert driver.bucket is not None  # the config requires it for gcs
    emulator = emulator_host()
    return GcsBlobStore(
        GcsOptions(
            bucket=driver.bucket,
            prefix=prefix,
            keyfile=driver.keyfile,
            endpoint=driver.endpoint or emulator,
            anonymous=emulator is not None and not driver.keyfile,
            part_size=driver.chunksize,
            commit=driver.commit,
        )
    )
