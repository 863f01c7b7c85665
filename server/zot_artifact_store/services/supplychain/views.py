"""The JSON shapes the API returns for keys, SBOM components and evidence."""

from __future__ import annotations

from typing import Any

from ...metadata import (
    Evidence,
    SbomComponent,
    TrustedKey,
)
from ...timefmt import iso_time


def key_json(k: TrustedKey) -> dict[str, Any]:
    return {
        "id": k.key_id,
        "name": k.name,
        "algorithm": k.algorithm,
        "scope": k.scope,
        "public_key": k.public_key_pem,
        "created_at": iso_time(k.created_at),
        "created_by": k.created_by,
        "expires_at": iso_time(k.expires_at) if k.expires_at else None,
        "revoked_at": iso_time(k.revoked_at) if k.revoked_at else None,
    }


def component_json(c: SbomComponent) -> dict[str, Any]:
    return {
        "subject_digest": c.subject,
        "subject": c.subject_ref,
        "evidence_id": c.evidence_id,
        "component": {
            "name": c.name,
            "version": c.version,
            "purl": c.purl,
            "licenses": c.licenses,
        },
    }


def evidence_json(e: Evidence) -> dict[str, Any]:
    return {
        "id": e.evidence_id,
        "subject_digest": e.subject,
        "subject": e.subject_ref,
        "kind": e.kind,
        "format": e.format,
        "media_type": e.media_type,
        "digest": e.digest,
        "size": e.size,
        "created_at": iso_time(e.created_at),
        "created_by": e.created_by,
        "details": e.details,
    }
