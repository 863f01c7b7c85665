"""IAM-style policy statements (DESIGN.md §5): Effect, Principal, Action, Resource and optional
Condition. An explicit Deny wins over any Allow and over roles.

Names, as statements write them:

* **Action**: ``s3:GetObject``, ``s3:PutObject`` … (S3's operation names, used by ``/v1`` as
  well), ``oci:pull``, ``oci:push``, ``oci:delete``, ``oci:catalog``, ``supplychain:*``,
  ``admin:*``; globs with ``*`` and ``?``.
* **Resource**: ``bucket``, ``bucket/key`` (``builds/nightly/*``), ``repo:team/app``
  (``repo:team/*``), ``tokens``, ``audit``, ``policies``; ``*`` is everything.
* **Principal**: ``*`` (anyone, anonymous included), a principal id (``root:admin``,
  ``token:3f9c…``, ``oidc:<issuer>#<sub>``), ``role:writer``, ``group:devs``, or
  ``{"AWS": […]}`` as S3 bucket policies write it.
* **Condition**: AWS's operators (``StringEquals``, ``StringLike``, ``NumericLessThan``,
  ``Bool``, ``IpAddress``, ``Null`` …) on the keys :mod:`.conditions` lists (``aws:SourceIp``,
  ``aws:SecureTransport``, ``aws:username``, ``s3:prefix``, ``s3:ExistingObjectTag/<key>`` …).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError
from ..metadata import Bucket, MetadataStore, Policy
from ..timefmt import iso_time
from .conditions import Condition, EvalContext, parse_conditions
from .principal import ANONYMOUS, Principal
from .public_access import blocked, effective_block

EFFECTS = ("Allow", "Deny")
MAX_STATEMENTS = 100
POLICY_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


@dataclass(frozen=True)
class Statement:
    effect: str
    principals: tuple[str, ...]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    sid: str = ""
    source: str = ""  # where it came from, for the decision's reason ("policy ci-deny #0")
    # A public statement of a bucket with RestrictPublicBuckets: not for anonymous callers.
    authenticated_only: bool = False

    def applies(self, principal: Principal, action: str, resource: str, ctx: EvalContext) -> bool:
        if self.authenticated_only and principal.is_anonymous:
            return False
        return (
            any(_principal_matches(p, principal) for p in self.principals)
            and any(fnmatch.fnmatchcase(action, a) for a in self.actions)
            and any(_resource_matches(r, resource) for r in self.resources)
            and all(c.holds(principal, ctx) for c in self.conditions)
        )

    @property
    def needs_object_tags(self) -> bool:
        """Does a condition read the tags of the object acted on (s3:ExistingObjectTag)?"""
        return any(c.needs_object_tags for c in self.conditions)

    def describe(self) -> str:
        name = f" {self.sid}" if self.sid else ""
        return f"{self.effect} statement{name} of {self.source}".strip()


def _principal_matches(pattern: str, principal: Principal) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("role:"):
        return pattern[5:] in principal.roles
    if pattern.startswith("group:"):
        return pattern[6:] in principal.groups
    return fnmatch.fnmatchcase(principal.id, pattern)


def _resource_matches(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    # "bucket/*" also covers the bucket itself (ListBucket on "bucket").
    if pattern.endswith("/*") and resource == pattern[:-2]:
        return True
    return fnmatch.fnmatchcase(resource, pattern)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise StoreError("MalformedPolicy", f"{where} must be a string or a non-empty list")
    return tuple(items)


S3_ARN = "arn:aws:s3:::"


def _resources(value: Any, where: str, bucket: str | None) -> tuple[str, ...]:
    out = []
    for r in _strings(value, where):
        if "${" in r:
            raise StoreError(
                "MalformedPolicy",
                f"{where}: policy variables (${{aws:username}} …) are not supported in {r!r}",
            )
        r = r[len(S3_ARN) :] if r.startswith(S3_ARN) else r
        if bucket is not None and r != bucket and not r.startswith(bucket + "/"):
            raise StoreError("MalformedPolicy", f"{where}: {r!r} is outside bucket {bucket!r}")
        out.append(r)
    return tuple(out)


def check_document(doc: Any, source: str, **kwargs: Any) -> None:
    """What a policy being written must be: its statements valid (:func:`parse_statements`),
    ``Version`` a string and each ``Condition`` an object or null when given. (Stored documents
    are only compiled when read back, so one written before these checks still applies.)"""
    if isinstance(doc, dict) and not isinstance(doc.get("Version", ""), str):
        raise StoreError("MalformedPolicy", "Version must be a string (e.g. 2012-10-17)")
    parse_statements(doc, source, **kwargs)
    raw = doc.get("Statement") if isinstance(doc, dict) else doc
    for i, st in enumerate(raw if isinstance(raw, list) else [raw]):
        if not isinstance(st.get("Condition", {}), dict | None):
            raise StoreError("MalformedPolicy", f"Statement[{i}].Condition must be an object")


def parse_statements(
    doc: Any, source: str, *, bucket: str | None = None, subject: str | None = None
) -> list[Statement]:
    """Validate a policy document (``{"Statement": [...]}`` or a bare list) and compile it.
    A bucket policy (``bucket`` given) may only name resources of that bucket; S3 ARNs
    (``arn:aws:s3:::bucket/*``) are accepted. Statements attached to a credential (``subject``,
    its principal id) may leave Principal out. Raises ``StoreError("MalformedPolicy")`` naming
    the first problem."""
    raw = doc.get("Statement") if isinstance(doc, dict) else doc
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise StoreError("MalformedPolicy", "a policy needs a non-empty Statement list")
    if len(raw) > MAX_STATEMENTS:
        raise StoreError("MalformedPolicy", f"at most {MAX_STATEMENTS} statements")
    out = []
    for i, st in enumerate(raw):
        where = f"Statement[{i}]"
        if not isinstance(st, dict):
            raise StoreError("MalformedPolicy", f"{where} must be an object")
        unknown = set(st) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
        if unknown:
            raise StoreError("MalformedPolicy", f"{where}: unknown field(s) {sorted(unknown)}")
        if st.get("Effect") not in EFFECTS:
            raise StoreError("MalformedPolicy", f"{where}.Effect must be Allow or Deny")
        principal = st.get("Principal", subject)
        if isinstance(principal, dict):  # S3 bucket policies: {"AWS": [...]}
            other = sorted(set(principal) - {"AWS"})
            if other:
                raise StoreError(
                    "MalformedPolicy",
                    f"{where}.Principal: {', '.join(other)} principals are not supported here; "
                    'use "*" or {"AWS": [...]} with principal ids, role:<name> or group:<name>',
                )
            principal = principal.get("AWS")
        if principal is None:
            raise StoreError("MalformedPolicy", f"{where}.Principal is required")
        conditions = parse_conditions(st.get("Condition"), f"{where}.Condition")
        sid = st.get("Sid", "")
        if not isinstance(sid, str):
            raise StoreError("MalformedPolicy", f"{where}.Sid must be a string")
        out.append(
            Statement(
                effect=st["Effect"],
                principals=_strings(principal, f"{where}.Principal"),
                actions=_strings(st.get("Action"), f"{where}.Action"),
                resources=_resources(st.get("Resource"), f"{where}.Resource", bucket),
                conditions=conditions,
                sid=sid or f"#{i}",
                source=source,
            )
        )
    return out


def statement_is_public(statement: Statement) -> bool:
    """Does ``statement`` allow anonymous callers (``Principal: "*"`` or a pattern matching
    ``anonymous``) something, unrestricted by a condition AWS counts as limiting to known
    callers: ``IpAddress`` on ``aws:SourceIp`` without a ``/0`` network, or
    ``aws:userid`` / ``aws:username`` equal to fixed values (no wildcard)?"""
    if statement.effect != "Allow":
        return False
    if not any(_principal_matches(p, ANONYMOUS) for p in statement.principals):
        return False
    return not any(_restricts_callers(c) for c in statement.conditions)


def _restricts_callers(condition: Condition) -> bool:
    if condition.if_exists:
        return False
    if condition.key == "aws:sourceip" and condition.operator == "IpAddress":
        return all(ipaddress.ip_network(v, strict=False).prefixlen > 0 for v in condition.values)
    if condition.key in ("aws:userid", "aws:username"):
        fixed = not any("*" in v or "?" in v for v in condition.values)
        return condition.operator in ("StringEquals", "StringEqualsIgnoreCase") or (
            condition.operator == "StringLike" and fixed
        )
    return False


def evaluate(
    statements: Iterable[Statement],
    principal: Principal,
    action: str,
    resource: str,
    ctx: EvalContext,
) -> tuple[Statement | None, Statement | None]:
    """(the first applicable Deny, the first applicable Allow)."""
    deny = allow = None
    for st in statements:
        if st.applies(principal, action, resource, ctx):
            if st.effect == "Deny":
                return st, allow
            allow = allow or st
    return deny, allow


def bucket_of(resource: str) -> str | None:
    """The bucket a resource belongs to (``builds/a/b`` → ``builds``); None for registry
    (``repo:…``), admin (``admin:…``) and global (``""``) resources."""
    head = resource.split("/", 1)[0]
    if not head or ":" in head:
        return None
    return head


class Policies:
    """Global policies (metadata) and bucket policies (on the bucket record), compiled and
    cached for ``TTL`` seconds: a change made on another replica applies within that time, one
    made here at once."""

    TTL = 2.0

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata
        # ``s3.blockPublicAccess``: every bucket blocks public policies (auth/public_access).
        self.block_public_access = False
        self._global: tuple[float, list[Statement]] | None = None
        self._buckets: dict[str, tuple[float, list[Statement]]] = {}

    async def statements_for(self, resource: str) -> list[Statement]:
        now = time.monotonic()
        if self._global is None or self._global[0] < now:
            compiled = [
                st
                for p in await self.metadata.list_policies()
                for st in parse_statements(json.loads(p.document), f"policy {p.name}")
            ]
            self._global = (now + self.TTL, compiled)
        statements = self._global[1]
        bucket = bucket_of(resource)
        if bucket is None:
            return statements
        cached = self._buckets.get(bucket)
        if cached is None or cached[0] < now:
            record = await self.metadata.get_bucket(bucket)
            cached = self._cache_bucket(bucket, record, now)
        return statements + cached[1]

    def prime(self, buckets: Iterable[Bucket]) -> None:
        """Cache the bucket policies of records already read (a listing decides on each
        bucket it shows: one metadata lookup a bucket would make it slow)."""
        now = time.monotonic()
        for record in buckets:
            self._cache_bucket(record.name, record, now)

    def _cache_bucket(
        self, bucket: str, record: Bucket | None, now: float
    ) -> tuple[float, list[Statement]]:
        doc = record.settings.get("policy") if record else None
        source = f"bucket policy of {bucket}"
        compiled = parse_statements(doc, source, bucket=bucket) if doc else []
        if effective_block(record, self.block_public_access).RestrictPublicBuckets:
            compiled = [
                dataclasses.replace(st, authenticated_only=True) if statement_is_public(st) else st
                for st in compiled
            ]
        if len(self._buckets) > 10_000:
            self._buckets.clear()
        cached = self._buckets[bucket] = (now + self.TTL, compiled)
        return cached

    def invalidate(self, bucket: str | None = None) -> None:
        if bucket is None:
            self._global = None
        else:
            self._buckets.pop(bucket, None)

    # ---- global policies ------------------------------------------------------------------
    async def put(self, name: str, doc: Any) -> tuple[Policy, bool]:
        if not POLICY_NAME_RE.fullmatch(name):
            raise StoreError("InvalidArgument", "policy names are 1-128 of A-Z a-z 0-9 . _ -")
        check_document(doc, f"policy {name}")
        now = time.time()
        current = await self.metadata.get_policy(name)
        policy = Policy(name, json.dumps(doc), current.created_at if current else now, now)
        previous = await self.metadata.put_policy(policy)
        self.invalidate()
        return policy, previous is None

    async def get(self, name: str) -> Policy:
        policy = await self.metadata.get_policy(name)
        if policy is None:
            raise StoreError("NoSuchPolicy", f"no policy {name!r}")
        return policy

    async def list(self) -> list[Policy]:
        return await self.metadata.list_policies()

    async def delete(self, name: str) -> None:
        if not await self.metadata.delete_policy(name):
            raise StoreError("NoSuchPolicy", f"no policy {name!r}")
        self.invalidate()

    # ---- bucket policies ------------------------------------------------------------------
    async def put_bucket_policy(self, bucket: str, doc: Any) -> None:
        check_document(doc, f"bucket policy of {bucket}", bucket=bucket)
        record = await self._bucket(bucket)
        if effective_block(record, self.block_public_access).BlockPublicPolicy and any(
            statement_is_public(st) for st in parse_statements(doc, "", bucket=bucket)
        ):
            raise blocked("a public bucket policy", "BlockPublicPolicy", self.block_public_access)
        record.settings["policy"] = doc
        await self.metadata.update_bucket(record)
        self.invalidate(bucket)

    async def get_bucket_policy(self, bucket: str) -> Any:
        doc = (await self._bucket(bucket)).settings.get("policy")
        if doc is None:
            raise StoreError("NoSuchBucketPolicy", f"bucket {bucket!r} has no policy")
        return doc

    async def bucket_is_public(self, bucket: str) -> bool:
        """GetBucketPolicyStatus's ``IsPublic``: the bucket's policy grants anything to
        anonymous callers (:func:`statement_is_public`), or its canned ACL is public-read (the
        store's ACLs are part of its policy model). No policy and a private ACL:
        ``NoSuchBucketPolicy``, as AWS answers."""
        record = await self._bucket(bucket)
        doc = record.settings.get("policy")
        if doc is None and not record.public_read:
            raise StoreError("NoSuchBucketPolicy", f"bucket {bucket!r} has no policy")
        statements = parse_statements(doc, "", bucket=bucket) if doc else []
        return record.public_read or any(statement_is_public(st) for st in statements)

    async def delete_bucket_policy(self, bucket: str) -> None:
        record = await self._bucket(bucket)
        record.settings.pop("policy", None)
        await self.metadata.update_bucket(record)
        self.invalidate(bucket)

    async def _bucket(self, name: str) -> Bucket:
        record = await self.metadata.get_bucket(name)
        if record is None:
            raise StoreError("NoSuchBucket", f"bucket {name!r} does not exist", resource=name)
        return record


def policy_json(policy: Policy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "document": json.loads(policy.document),
        "created_at": iso_time(policy.created_at),
        "updated_at": iso_time(policy.updated_at),
    }
