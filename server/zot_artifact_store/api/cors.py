"""CORS for ``/v1`` (``http.cors``): a browser page on an allowed origin may call the API (the
JavaScript SDK in a web app), read the answers' useful headers, and send its credentials in
``Authorization``. Preflights (``OPTIONS`` with ``Access-Control-Request-Method``) are
answered without authentication, for the methods the route takes. S3 and OCI are not
affected: S3's CORS is per bucket (PutBucketCors, ``api/s3/cors.py``)."""

from __future__ import annotations

from ..config import CORSConfig

# What a page may read besides the CORS-safelisted response headers.
EXPOSED_HEADERS = ", ".join(
    (
        "ETag", "Content-Range", "Content-Length", "Content-Disposition", "Location",
        "Retry-After", "Last-Modified", "X-Request-Id", "X-Checksum-Sha256",
        "X-Artifact-Labels", "X-Expires-At", "X-Verification",
    )
)  # fmt: skip


def allowed_origin(config: CORSConfig, origin: str | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, or None."""
    if not origin or not config.allowOrigins:
        return None
    if origin in config.allowOrigins:
        return origin
    if "*" in config.allowOrigins:
        return "*"
    return None


def response_headers(config: CORSConfig, origin: str | None) -> dict[str, str]:
    """The CORS headers of an answer (any status) to a request from ``origin``."""
    if not config.allowOrigins:
        return {}
    headers = {"Vary": "Origin"}
    allowed = allowed_origin(config, origin)
    if allowed is not None:
        headers["Access-Control-Allow-Origin"] = allowed
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if config.allowCredentials:
            headers["Access-Control-Allow-Credentials"] = "true"
    return headers
