"""Zot Artifact Store: artifacts over S3, images over OCI, and their supply-chain evidence."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zot-artifact-store")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
