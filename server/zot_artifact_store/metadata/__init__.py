"""Metadata stores: one interface (:mod:`.base`), backends sqlite and MongoDB."""

from __future__ import annotations

from .base import (
    SCHEMA_VERSION,
    SUPPLYCHAIN_GENERATION,
    AccessKey,
    AlreadyExistsError,
    ApiToken,
    AuditQuery,
    AuditRecord,
    Bucket,
    BuildQuery,
    BuildRecord,
    ComponentQuery,
    EventSource,
    Evidence,
    InboundEvent,
    Manifest,
    MetadataError,
    MetadataStore,
    MultipartUpload,
    NotFoundError,
    ObjectPage,
    ObjectRecord,
    Part,
    Policy,
    RegistryUpload,
    SbomComponent,
    Tag,
    TrustedKey,
    VerificationGate,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "SCHEMA_VERSION",
    "SUPPLYCHAIN_GENERATION",
    "AccessKey",
    "AlreadyExistsError",
    "ApiToken",
    "AuditQuery",
    "AuditRecord",
    "Bucket",
    "BuildQuery",
    "BuildRecord",
    "ComponentQuery",
    "EventSource",
    "Evidence",
    "InboundEvent",
    "Manifest",
    "MetadataError",
    "MetadataStore",
    "MultipartUpload",
    "NotFoundError",
    "ObjectPage",
    "ObjectRecord",
    "Part",
    "Policy",
    "RegistryUpload",
    "SbomComponent",
    "Tag",
    "TrustedKey",
    "VerificationGate",
    "WebhookDelivery",
    "WebhookSubscription",
    "create_metadata_store",
]


def create_metadata_store(uri: str) -> MetadataStore:
    """The backend a ``metadata.uri`` names: ``sqlite:///path`` or ``mongodb://…``."""
    if uri.startswith("sqlite:"):
        from .sqlite import SqliteMetadataStore

        return SqliteMetadataStore(uri)
    if uri.startswith(("mongodb://", "mongodb+srv://")):
        from .mongodb import MongoMetadataStore

        return MongoMetadataStore(uri)
    raise ValueError(f"unsupported metadata URI {uri!r}: use sqlite:///path or mongodb://host/db")
