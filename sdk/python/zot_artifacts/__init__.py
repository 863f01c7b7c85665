"""Python SDK for Zot Artifact Store (the full client arrives with its own issue)."""

__version__ = "0.1.0"
