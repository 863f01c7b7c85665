"""Shared pieces of the ``/v1`` handlers: the base handler and the authorization resources
of subjects."""

from __future__ import annotations

from typing import Any

import tornado.web

from ... import jsonbody
from ...errors import StoreError
from ...metadata import Evidence, SbomComponent
from ...services.artifacts import (
    PutOptions,
    normalize_sha256,
    validate_labels,
)
from ...services.lifecycle import EXPIRES_HEADER, parse_expires_at, parse_expires_in
from ...services.registry import NAME_RE as REPOSITORY_NAME
from ...services.supplychain import request_resource
from ...storage import is_digest
from .. import cors
from ..query import QueryCheckedHandler


def parse_labels_header(value: str | None) -> dict[str, str]:
    """``X-Artifact-Labels``: a JSON object or ``k=v,k2=v2``."""
    if not value:
        return {}
    value = value.strip()
    if value.startswith("{"):
        try:
            return validate_labels(jsonbody.loads(value))
        except ValueError:
            raise StoreError("InvalidArgument", "X-Artifact-Labels is not valid JSON") from None
    labels: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            raise StoreError("InvalidArgument", f"label {item.strip()!r} must be name=value")
        labels[key.strip()] = val.strip()
    return validate_labels(labels)


MAX_LIST_LIMIT = 1000


_TRUE = {"1", "true", "yes", "on", ""}


_FALSE = {"0", "false", "no", "off"}


def subject_resource(subject_ref: str, repository: str | None = None) -> str:
    """The authorization resource of a subject as evidence names it: ``repo:<name>`` for an
    image (``<name>@<digest>``, or evidence read from repository ``repository``),
    ``digest:<d>`` for a bare digest, ``bucket/key`` for an object (whose key may hold ``@``:
    only a valid repository name followed by ``@<digest>`` is an image)."""
    if repository:
        return f"repo:{repository}"
    if is_digest(subject_ref):
        return f"digest:{subject_ref}"
    name, sep, digest = subject_ref.rpartition("@")
    if sep and is_digest(digest) and REPOSITORY_NAME.fullmatch(name):
        return f"repo:{name}"
    return subject_ref


def evidence_resource(evidence: Evidence) -> str:
    """Where a piece of evidence lives for authorization: its subject's resource."""
    ref = evidence.subject_ref or evidence.subject
    return subject_resource(ref, evidence.details.get("repository"))


def read_action(subject_ref: str, repository: str | None = None) -> tuple[str, str]:
    """The (action, resource) that reading a subject named ``subject_ref`` needs: an object
    (``bucket/key``), an image (``repo@digest``) or a bare digest."""
    resource = subject_resource(subject_ref, repository)
    if resource.startswith("repo:"):
        return "oci:pull", resource
    if resource.startswith("digest:"):
        return "supplychain:read", resource
    return "s3:GetObject", resource


class V1Handler(QueryCheckedHandler):
    """Refuses query parameters the method does not take (``query_parameters``), then
    authenticates, before anything else happens."""

    def initialize(self, ctx: Any, route: str) -> None:  # type: ignore[override]
        super().initialize(ctx, route)
        self.cors_headers()

    def set_default_headers(self) -> None:
        super().set_default_headers()
        if getattr(self, "ctx", None) is not None:  # again after an error clears them
            self.cors_headers()

    def cors_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        for name, value in cors.response_headers(self.ctx.config.http.cors, origin).items():
            self.set_header(name, value)

    async def prepare(self) -> None:
        headers = self.request.headers
        if (
            self.request.method == "OPTIONS"
            and "Origin" in headers
            and "Access-Control-Request-Method" in headers
        ):
            self.preflight()
            return
        await super().prepare()
        await self.authenticate()

    def preflight(self) -> None:
        """A browser's CORS preflight: allowed for an allowed origin and a method this route
        takes, whatever the credentials (a preflight carries none)."""
        config = self.ctx.config.http.cors
        origin = self.request.headers["Origin"]
        if cors.allowed_origin(config, origin) is None:
            raise StoreError(
                "AccessDenied", f"origin {origin!r} may not call this API (http.cors.allowOrigins)"
            )
        wanted = self.request.headers["Access-Control-Request-Method"].strip().upper()
        methods = self.allowed_methods()
        if wanted not in methods:
            raise StoreError(
                "AccessDenied", f"{self.route} takes {', '.join(methods)}, not {wanted}"
            )
        self.set_header("Access-Control-Allow-Methods", ", ".join(methods))
        requested = self.request.headers.get("Access-Control-Request-Headers")
        if requested:
            self.set_header("Access-Control-Allow-Headers", requested)
        self.set_header("Access-Control-Max-Age", str(int(config.maxAge)))
        self.set_status(204)
        self.finish()

    async def options(self, *args: str) -> None:
        """``OPTIONS`` that is not a CORS preflight: not a method of this API."""
        raise tornado.web.HTTPError(405)

    async def authorized_subject(self, subject: Any, action: str) -> tuple[str, str, str]:
        """A supply-chain subject's (digest, name, authorization resource), once ``action`` on
        it is allowed: a missing subject and a forbidden one answer alike (403)."""
        resource = request_resource(subject)
        await self.authorize(action, resource)
        digest, ref = await self.ctx.supplychain.resolve(subject)
        return digest, ref, resource

    async def readable(self, items: list[Evidence]) -> list[Evidence]:
        """The evidence whose subject the caller may read (``supplychain:read`` on it, and
        reading the object or image itself), as ``GET /v1/evidence/{id}`` and the SBOM search
        decide: a listing by digest must not reveal what other buckets and repositories
        hold."""
        decided: dict[tuple[str, str], bool] = {}

        async def allowed(action: str, resource: str) -> bool:
            if (action, resource) not in decided:
                decision = await self.ctx.authorizer.decide(self.principal, action, resource)
                decided[action, resource] = decision.allowed
            return decided[action, resource]

        out = []
        for evidence in items:
            ref = evidence.subject_ref or evidence.subject
            action, resource = read_action(ref, evidence.details.get("repository"))
            if await allowed("supplychain:read", resource) and await allowed(action, resource):
                out.append(evidence)
        return out

    async def readable_components(self, found: list[SbomComponent]) -> list[SbomComponent]:
        """The SBOM search results whose subject the caller may read (the object or image
        itself): a search must not reveal other teams' artifacts."""
        allowed: dict[str, bool] = {}
        out = []
        for c in found:
            if c.subject_ref not in allowed:
                action, resource = read_action(c.subject_ref)
                decision = await self.ctx.authorizer.decide(self.principal, action, resource)
                allowed[c.subject_ref] = decision.allowed
            if allowed[c.subject_ref]:
                out.append(c)
        return out

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise StoreError("InvalidArgument", f"query parameter {name!r} must be true or false")

    def stream_options(self) -> PutOptions:
        """PutOptions of a body about to stream in (an object or a part): its declared length
        (refused at once beyond ``http.maxObjectSize``), sha256, content type and labels."""
        max_size = self.ctx.config.http.maxObjectSize
        length = self.request.headers.get("Content-Length")
        expected_size: int | None = None
        if length is not None:
            try:
                expected_size = int(length)
            except ValueError:
                raise StoreError("InvalidRequest", "Content-Length is not a number") from None
            if expected_size > max_size:
                raise StoreError("EntityTooLarge", f"objects may be at most {max_size} bytes")
        declared = self.request.headers.get("X-Checksum-Sha256") or self.get_query_argument(
            "sha256", None
        )
        expected_sha256 = normalize_sha256(declared) if declared else None
        bound = self.principal.bound_content
        if bound is not None:
            expected_sha256, expected_size = self.bound_content(
                bound, expected_sha256, expected_size
            )
        return PutOptions(
            content_type=self.request.headers.get("Content-Type"),
            labels=parse_labels_header(self.request.headers.get("X-Artifact-Labels")),
            expected_sha256=expected_sha256,
            expected_size=expected_size,
            if_absent=self.create_only(),
        )

    def bound_content(
        self, bound: tuple[str, int], declared: str | None, length: int | None
    ) -> tuple[str, int]:
        """The sha256 and size a presigned URL bound to content (``POST /v1/batch``) demands:
        a declared checksum or length that differs is refused before the body is read; the
        body itself is checked against them as it is committed (nothing stored otherwise)."""
        sha256, size = f"sha256:{bound[0]}", bound[1]
        resource = "/".join(self.path_args[:2])
        if declared is not None and declared != sha256:
            raise StoreError(
                "ChecksumMismatch",
                f"this URL was issued for sha256 {bound[0]}, not {declared.removeprefix('sha256:')}"
                "; nothing was stored",
                resource=resource,
                detail={"expected": sha256, "actual": declared},
            )
        if length is not None and length != size:
            raise StoreError(
                "ChecksumMismatch",
                f"this URL was issued for {size} bytes; the body's Content-Length is {length}; "
                "nothing was stored",
                resource=resource,
                detail={"expected_size": size, "actual_size": length},
            )
        return sha256, size

    def requested_expiry(self) -> float | None:
        """An object's expiry: ``X-Expires-At`` (RFC 3339) or ``?expires_in=`` (seconds)."""
        header = self.request.headers.get(EXPIRES_HEADER)
        seconds = self.get_query_argument("expires_in", None)
        if header is not None and seconds is not None:
            raise StoreError("InvalidArgument", f"give {EXPIRES_HEADER} or expires_in, not both")
        if header is not None:
            return parse_expires_at(header)
        return parse_expires_in(seconds) if seconds is not None else None

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise StoreError("InvalidArgument", f"{name} must be an integer") from None
        if not low <= value <= high:
            raise StoreError("InvalidArgument", f"{name} must be between {low} and {high}")
        return value
