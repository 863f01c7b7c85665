"""S3 bucket CORS: Put/Get/DeleteBucketCors (AWS's ``<CORSConfiguration>``), the browser's
preflight ``OPTIONS`` on a bucket or object path answered from the bucket's rules, and the
``Access-Control-*`` headers of an actual request whose ``Origin`` a rule allows.

The rules and their matching are :mod:`..services.bucket_cors`. ``/v1``'s server-wide CORS
(``http.cors``) is :mod:`..cors`; neither applies to the other's paths.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from ...errors import StoreError
from ...services.bucket_cors import (
    CorsRule,
    bucket_cors,
    check_rules,
    matching_rule,
    set_bucket_cors,
)
from . import xml
from .base import S3Handler, verify_body_integrity

_RULE_FIELDS = {
    "ID",
    "AllowedOrigin",
    "AllowedMethod",
    "AllowedHeader",
    "ExposeHeader",
    "MaxAgeSeconds",
}
# What a preflight's answer varies by (AWS sends the same).
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
NOT_ENABLED = "CORSResponse: CORS is not enabled for this bucket"
NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed: no CORS rule of the bucket allows this "
    "origin, method (Access-Control-Request-Method) and request headers "
    "(Access-Control-Request-Headers)"
)


def parse_cors(body: bytes) -> list[CorsRule]:
    """A ``<CORSConfiguration>`` body as rules, within S3's limits."""
    root = xml.parse(body, "CORSConfiguration")
    rules = []
    for element in root:
        if xml.local_name(element.tag) != "CORSRule":
            raise StoreError(
                "MalformedXML", f"unexpected <{xml.local_name(element.tag)}> in CORSConfiguration"
            )
        rules.append(_rule(element))
    return check_rules(rules)


def _rule(element: Element) -> CorsRule:
    values: dict[str, list[str]] = {name: [] for name in _RULE_FIELDS}
    for child in element:
        name = xml.local_name(child.tag)
        if name not in _RULE_FIELDS:
            raise StoreError("MalformedXML", f"unexpected <{name}> in CORSRule")
        values[name].append((child.text or "").strip())
    for single in ("ID", "MaxAgeSeconds"):
        if len(values[single]) > 1:
            raise StoreError("MalformedXML", f"a CORSRule has at most one <{single}>")
    max_age = None
    if values["MaxAgeSeconds"]:
        try:
            max_age = int(values["MaxAgeSeconds"][0])
        except ValueError:
            raise StoreError("MalformedXML", "MaxAgeSeconds must be an integer") from None
    return CorsRule(
        allowed_origins=values["AllowedOrigin"],
        allowed_methods=values["AllowedMethod"],
        allowed_headers=values["AllowedHeader"],
        expose_headers=values["ExposeHeader"],
        max_age_seconds=max_age,
        id=values["ID"][0] if values["ID"] else None,
    )


def cors_xml(rules: list[CorsRule]) -> dict[str, Any]:
    """The ``<CORSConfiguration>`` answer's content (GetBucketCors)."""
    return {
        "CORSRule": [
            {
                "ID": rule.id,
                "AllowedHeader": rule.allowed_headers,
                "AllowedMethod": rule.allowed_methods,
                "AllowedOrigin": rule.allowed_origins,
                "ExposeHeader": rule.expose_headers,
                "MaxAgeSeconds": rule.max_age_seconds,
            }
            for rule in rules
        ]
    }


def _header_list(value: str | None) -> list[str]:
    return [h.strip() for h in (value or "").split(",") if h.strip()]


def _origin_headers(rule: CorsRule, origin: str) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": rule.allow_origin(origin)}
    if headers["Access-Control-Allow-Origin"] != "*":
        headers["Access-Control-Allow-Credentials"] = "true"
    if rule.expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    return headers


class CorsHandling(S3Handler):
    """The CORS part of every S3 bucket and object handler."""

    cors_headers: dict[str, str] | None = None

    async def prepare(self) -> None:
        """A preflight is answered here, before authentication (it carries no credentials);
        any other request gets its CORS headers, then runs as usual."""
        if self.request.method == "OPTIONS":
            self._audited = True  # a refused preflight is no failed authentication
            await self.preflight()
            return
        await self.apply_cors()
        await super().prepare()

    def set_default_headers(self) -> None:
        super().set_default_headers()
        for name, value in (self.cors_headers or {}).items():  # again after an error clears
            self.set_header(name, value)

    async def _bucket_rules(self, name: str) -> list[CorsRule] | None:
        """The bucket's CORS rules; None when it does not exist (or the name is invalid)."""
        try:
            return bucket_cors(await self.ctx.artifacts.get_bucket(name))
        except StoreError:
            return None

    async def apply_cors(self) -> None:
        """An actual request from a page (``Origin``): when a rule of the bucket allows its
        origin and method, its answer — errors included — carries ``Access-Control-Allow-Origin``
        and the rule's ``ExposeHeader``s; a bucket with rules answers ``Vary: Origin``."""
        origin = self.request.headers.get("Origin")
        if not origin or not self.path_args:
            return
        rules = await self._bucket_rules(self.path_args[0])
        if not rules:
            return
        headers = {"Vary": "Origin"}
        rule = matching_rule(rules, origin, self.request.method or "GET")
        if rule is not None:
            headers.update(_origin_headers(rule, origin))
        self.cors_headers = headers
        for name, value in headers.items():
            self.set_header(name, value)

    async def preflight(self) -> None:
        """``OPTIONS`` on a bucket or object: answered from the bucket's first rule that allows
        the ``Origin``, ``Access-Control-Request-Method`` and every header of
        ``Access-Control-Request-Headers``; without credentials (a browser sends none). No
        such rule, no rules, or no such bucket: 403 (the same answer, so an anonymous
        preflight does not tell which buckets exist)."""
        headers = self.request.headers
        origin = headers.get("Origin")
        if not origin:
            raise StoreError(
                "InvalidRequest", "Insufficient information. Origin request header needed."
            )
        method = headers.get("Access-Control-Request-Method", "").strip()
        if not method:
            raise StoreError(
                "InvalidRequest", "a CORS preflight needs an Access-Control-Request-Method"
            )
        requested = _header_list(headers.get("Access-Control-Request-Headers"))
        rules = await self._bucket_rules(self.path_args[0])
        if not rules:
            raise StoreError("AccessForbidden", NOT_ENABLED, detail={"Method": method})
        rule = matching_rule(rules, origin, method, requested)
        if rule is None:
            raise StoreError("AccessForbidden", NOT_ALLOWED, detail={"Method": method})
        self.set_header("Access-Control-Allow-Methods", ", ".join(rule.allowed_methods))
        if requested:
            self.set_header("Access-Control-Allow-Headers", ", ".join(h.lower() for h in requested))
        if rule.max_age_seconds is not None:
            self.set_header("Access-Control-Max-Age", str(rule.max_age_seconds))
        for name, value in _origin_headers(rule, origin).items():
            self.set_header(name, value)
        self.set_header("Vary", VARY)
        self.finish()


class BucketCorsOperations(S3Handler):
    """Put/Get/DeleteBucketCors of :class:`.buckets.BucketHandler`."""

    async def op_GetBucketCors(self, name: str) -> None:
        await self.authorize("s3:GetBucketCORS", name)
        rules = bucket_cors(await self.ctx.artifacts.get_bucket(name))
        if not rules:
            raise StoreError(
                "NoSuchCORSConfiguration",
                f"bucket {name!r} has no CORS configuration",
                resource=name,
            )
        self.write_xml("CORSConfiguration", cors_xml(rules))

    async def op_PutBucketCors(self, name: str) -> None:
        await self.authorize("s3:PutBucketCORS", name)
        bucket = await self.ctx.artifacts.get_bucket(name)  # NoSuchBucket before the body's
        verify_body_integrity(self.request.headers, self.request.body, required=False)
        rules = parse_cors(self.request.body)
        set_bucket_cors(bucket, rules)
        await self.ctx.artifacts.metadata.update_bucket(bucket)
        self.audit("s3:PutBucketCORS", name, True, f"{len(rules)} CORS rule(s) set")
        self.finish()

    async def op_DeleteBucketCors(self, name: str) -> None:
        await self.authorize("s3:PutBucketCORS", name)  # AWS's action for deleting it too
        bucket = await self.ctx.artifacts.get_bucket(name)
        set_bucket_cors(bucket, None)
        await self.ctx.artifacts.metadata.update_bucket(bucket)
        self.audit("s3:PutBucketCORS", name, True, "CORS configuration removed")
        self.set_status(204)
        self.finish()
