"""A bucket's CORS rules (S3 PutBucketCors) and how a browser's request is matched against them.

The rules live in the bucket's settings (``cors``), as its tags and lifecycle rules do. Matching
follows AWS: the first rule whose ``AllowedOrigin`` matches the request's ``Origin`` (``*`` as
one wildcard), whose ``AllowedMethod`` holds the method (the preflight's
``Access-Control-Request-Method``), and whose ``AllowedHeader`` patterns cover every header the
preflight asks for (case-insensitive) decides; no rule means no CORS headers (a preflight is
refused). ``/v1``'s server-wide CORS (``http.cors``, ``api/cors.py``) is separate: S3's is per
bucket.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ..errors import StoreError
from ..metadata import Bucket

# What S3 allows in a CORS configuration.
METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
MAX_ID = 255


@dataclass
class CorsRule:
    allowed_origins: list[str]
    allowed_methods: list[str]
    allowed_headers: list[str] = field(default_factory=list)
    expose_headers: list[str] = field(default_factory=list)
    max_age_seconds: int | None = None
    id: str | None = None

    def matches(self, origin: str, method: str, headers: Iterable[str] = ()) -> bool:
        """Does this rule allow ``method`` from ``origin``, with these request headers?"""
        if method not in self.allowed_methods:
            return False
        if not any(_wildcard(pattern, origin) for pattern in self.allowed_origins):
            return False
        allowed = [h.lower() for h in self.allowed_headers]
        return all(any(_wildcard(p, h.lower()) for p in allowed) for h in headers)

    def allow_origin(self, origin: str) -> str:
        """``Access-Control-Allow-Origin``: ``*`` for a rule open to every origin (no
        credentials then), else the request's own origin."""
        return "*" if self.allowed_origins == ["*"] else origin


def _wildcard(pattern: str, value: str) -> bool:
    """``pattern`` with at most one ``*`` (any run of characters) matches ``value``."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def check_rules(rules: list[CorsRule]) -> list[CorsRule]:
    """What S3 refuses in a CORS configuration (``MalformedXML`` for its shape,
    ``InvalidRequest`` for a value), naming the rule."""
    if not rules:
        raise StoreError("MalformedXML", "a CORS configuration needs at least one CORSRule")
    if len(rules) > MAX_RULES:
        raise StoreError("MalformedXML", f"a CORS configuration has at most {MAX_RULES} rules")
    for number, rule in enumerate(rules, 1):
        where = f"CORSRule {rule.id or number}"
        if rule.id is not None and len(rule.id) > MAX_ID:
            raise StoreError("InvalidArgument", f"{where}: an ID is at most {MAX_ID} characters")
        if not rule.allowed_methods or not rule.allowed_origins:
            raise StoreError(
                "MalformedXML", f"{where} needs at least one AllowedMethod and AllowedOrigin"
            )
        for method in rule.allowed_methods:
            if method not in METHODS:
                raise StoreError(
                    "InvalidRequest",
                    f"{where}: unsupported HTTP method in CORS config: {method!r} "
                    f"(allowed: {', '.join(METHODS)})",
                )
        for what, values in (
            ("AllowedOrigin", rule.allowed_origins),
            ("AllowedHeader", rule.allowed_headers),
        ):
            for value in values:
                if value.count("*") > 1:
                    raise StoreError(
                        "InvalidRequest",
                        f'{where}: {what} "{value}" can not have more than one wildcard',
                    )
        if rule.max_age_seconds is not None and rule.max_age_seconds < 0:
            raise StoreError("InvalidRequest", f"{where}: MaxAgeSeconds must not be negative")
    return rules


def bucket_cors(bucket: Bucket) -> list[CorsRule]:
    return [CorsRule(**r) for r in bucket.settings.get("cors", [])]


def set_bucket_cors(bucket: Bucket, rules: list[CorsRule] | None) -> None:
    """Replace a bucket's CORS rules (None: delete the configuration)."""
    if rules:
        bucket.settings["cors"] = [asdict(r) for r in rules]
    else:
        bucket.settings.pop("cors", None)


def matching_rule(
    rules: Iterable[CorsRule], origin: str, method: str, headers: Iterable[str] = ()
) -> CorsRule | None:
    """The first rule that allows the request (AWS's order), or None."""
    wanted = list(headers)
    return next((r for r in rules if r.matches(origin, method, wanted)), None)
