"""``/v1`` native JSON API: buckets and objects (docs/openapi.json describes it)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import tornado.web

from ... import jsonbody
from ...auth.access_keys import access_key_json
from ...auth.audit import audit_json, decode_audit_cursor, encode_audit_cursor
from ...auth.policy import EvalContext, policy_json
from ...auth.principal import ANONYMOUS, Principal, root_principal
from ...auth.tokens import token_json, token_principal
from ...errors import NotModified, StoreError
from ...metadata import AuditQuery, Evidence
from ...services.artifacts import (
    Listing,
    PutOptions,
    bucket_json,
    decode_token,
    normalize_sha256,
    object_json,
    validate_labels,
)
from ...services.events import build_summary
from ...services.lifecycle import EXPIRES_HEADER, parse_expires_at, parse_expires_in
from ...services.registry import NAME_RE as REPOSITORY_NAME
from ...services.supplychain import (
    component_json,
    evidence_json,
    key_json,
    public_key_bundle,
    subject_scope,
)
from ...storage import is_digest
from ...timefmt import iso_time, parse_time
from .. import cors
from ..base import BaseHandler, NotFoundHandler, Route, UploadHandler, route
from ..httputil import check_preconditions, http_date, parse_copy_source, parse_range, quote_etag
from ..query import QueryCheckedHandler, takes

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


def request_resource(subject: Any) -> str:
    """The authorization resource of a ``/v1/verify`` or ``/v1/sign`` subject, from its name
    alone: authorized before the subject is looked up, so that a caller who may not read it
    cannot tell whether it exists."""
    if isinstance(subject, dict):
        if set(subject) == {"bucket", "key"}:
            return f"{subject['bucket']}/{subject['key']}"
        if set(subject) == {"repository", "digest"}:
            return f"repo:{subject['repository']}"
        if set(subject) == {"digest"}:
            return f"digest:{subject['digest']}"
    raise StoreError(
        "InvalidArgument",
        'subject must be {"bucket", "key"}, {"repository", "digest"} or {"digest"}',
    )


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
        return PutOptions(
            content_type=self.request.headers.get("Content-Type"),
            labels=parse_labels_header(self.request.headers.get("X-Artifact-Labels")),
            expected_sha256=normalize_sha256(declared) if declared else None,
            expected_size=expected_size,
            if_absent=self.create_only(),
        )

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


class BucketsHandler(V1Handler):
    async def get(self) -> None:
        await self.authorize("s3:ListAllMyBuckets", "")
        buckets = await self.ctx.authorizer.visible_buckets(
            self.principal, await self.ctx.artifacts.list_buckets()
        )
        self.write_json({"buckets": [bucket_json(b) for b in buckets]})


class BucketHandler(V1Handler):
    query_parameters = takes(DELETE=("recursive",))

    async def put(self, name: str) -> None:
        await self.authorize("s3:CreateBucket", name)
        body = self.json_body()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise StoreError("MalformedJSON", "the bucket configuration must be a JSON object")
        unknown = set(body) - {"public_read", "labels", "web"}
        if unknown:
            raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
        public = body.get("public_read")  # absent: a new bucket is private, one kept as is
        if public is not None and not isinstance(public, bool):
            raise StoreError("MalformedJSON", "public_read must be true or false")
        web = body.get("web")  # absent: off for a new bucket, kept as is for an existing one
        if web is not None and not isinstance(web, bool):
            raise StoreError("MalformedJSON", "web must be true or false")
        labels = validate_labels(body.get("labels")) if "labels" in body else None
        bucket, created = await self.ctx.artifacts.create_bucket(
            name, self.principal.id, public_read=public, labels=labels, exist_ok=True, web=web
        )
        if created:
            self.set_header("Location", f"/v1/buckets/{name}")
        self.write_json(bucket_json(bucket), 201 if created else 200)

    async def get(self, name: str) -> None:
        await self.authorize("s3:GetBucket", name)
        bucket = await self.ctx.artifacts.get_bucket(name)
        self.write_json(bucket_json(bucket))

    async def head(self, name: str) -> None:
        await self.authorize("s3:HeadBucket", name)
        await self.ctx.artifacts.get_bucket(name)
        self.set_header("Content-Type", "application/json")  # what GET answers
        self.finish()

    async def delete(self, name: str) -> None:
        await self.authorize("s3:DeleteBucket", name)
        recursive = self.flag("recursive")
        if recursive:
            await self.authorize("s3:DeleteObject", f"{name}/*")
        await self.ctx.artifacts.delete_bucket(name, recursive=recursive)
        self.set_status(204)
        self.finish()


class ObjectListHandler(V1Handler):
    query_parameters = takes(
        GET=("prefix", "delimiter", "limit", "continuation_token", "start_after")
    )

    async def get(self, bucket: str) -> None:
        await self.authorize("s3:ListBucket", bucket)
        prefix = self.get_query_argument("prefix", "")
        delimiter = self.get_query_argument("delimiter", "")
        limit = self.int_arg("limit", MAX_LIST_LIMIT, 1, MAX_LIST_LIMIT)
        token = self.get_query_argument("continuation_token", None)
        start_after = decode_token(token) if token else self.get_query_argument("start_after", None)
        listing: Listing = await self.ctx.artifacts.list_objects(
            bucket, prefix=prefix, delimiter=delimiter, start_after=start_after, limit=limit
        )
        self.write_json(
            {
                "bucket": bucket,
                "prefix": prefix,
                "delimiter": delimiter,
                "objects": [object_json(o) for o in listing.objects],
                "common_prefixes": listing.common_prefixes,
                "truncated": listing.truncated,
                "next_continuation_token": listing.next_token,
            }
        )


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


@tornado.web.stream_request_body
class ObjectHandler(V1Handler, UploadHandler):
    """An object's bytes. PUT streams the body straight into the blob store."""

    query_parameters = takes(GET=("metadata",), PUT=("sha256", "expires_in"))

    async def prepare(self) -> None:
        await super().prepare()
        self.session = None
        if self.request.method != "PUT":
            return
        if "X-Copy-Source" in self.request.headers:
            if self.request.headers.get("Content-Length", "0") != "0":
                raise StoreError("InvalidRequest", "a copy (X-Copy-Source) has no body")
            return
        bucket, key = self.path_args
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        options = self.stream_options()
        options.expires_at = self.requested_expiry()
        # Conditional create/replace: evaluated against the current object before the body.
        await self.check_write_preconditions(bucket, key)
        self.session = await self.ctx.artifacts.begin_put(bucket, key, options)

    async def receive(self, chunk: bytes) -> None:
        if self.session is not None:
            await self.session.write(chunk)
        elif self.bytes_in > self.ctx.config.http.maxRequestBodySize:
            raise StoreError("EntityTooLarge", "request body too large")

    async def put(self, bucket: str, key: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        if "X-Copy-Source" in self.request.headers:
            await self._copy(bucket, key)
            return
        session = self.session
        assert session is not None
        self.session = None
        try:
            record, previous = await session.finish()
        finally:
            await session.abort()
        self._object_headers(record)
        self.write_json(object_json(record), 200 if previous is not None else 201)

    async def _copy(self, bucket: str, key: str) -> None:
        """``X-Copy-Source: <bucket>/<key>``: the new object shares the source's bytes."""
        if self.bytes_in:
            raise StoreError("InvalidRequest", "a copy (X-Copy-Source) has no body")
        source_bucket, source_key = parse_copy_source(
            self.request.headers["X-Copy-Source"], "X-Copy-Source"
        )
        source_resource = f"{source_bucket}/{source_key}"
        await self.authorize("s3:GetObject", source_resource)
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        source = await self.ctx.artifacts.head_object(source_bucket, source_key)
        # A copy reads its source: the source bucket's verification gate decides as for a GET.
        await self.check_gate(source)
        await self.check_write_preconditions(bucket, key)
        replace = None
        headers = self.request.headers
        expires_at = self.requested_expiry()
        if "Content-Type" in headers or "X-Artifact-Labels" in headers or expires_at is not None:
            replace = PutOptions(
                content_type=headers.get("Content-Type") or source.content_type,
                labels=(
                    parse_labels_header(headers["X-Artifact-Labels"])
                    if "X-Artifact-Labels" in headers
                    else source.labels
                ),
                user_metadata=source.user_metadata,
                headers=source.headers,
                expires_at=expires_at,
            )
        record, previous = await self.ctx.artifacts.copy_object(
            source, bucket, key, replace, if_absent=self.create_only()
        )
        self.audit(
            "s3:PutObject", f"{bucket}/{key}", True, f"copied from {source_resource}",
            subject_digest=record.digest,
        )  # fmt: skip
        self._object_headers(record)
        self.write_json(object_json(record), 200 if previous is not None else 201)

    def _object_headers(self, record: Any) -> None:
        self.set_header("ETag", quote_etag(record.etag))
        self.set_header("Last-Modified", http_date(record.updated_at))
        self.set_header("X-Checksum-Sha256", record.digest.removeprefix("sha256:"))

    async def get(self, bucket: str, key: str) -> None:
        await self._read(bucket, key, send_body=True)

    async def head(self, bucket: str, key: str) -> None:
        await self._read(bucket, key, send_body=False)

    async def _read(self, bucket: str, key: str, *, send_body: bool) -> None:
        await self.authorize("s3:GetObject", f"{bucket}/{key}")
        record = await self.ctx.artifacts.head_object(bucket, key)
        self._object_headers(record)
        if send_body and self.flag("metadata"):
            builds = [build_summary(b) for b in await self.ctx.events.builds_of(record.digest)]
            expiration = await self.ctx.artifacts.expiration(record)
            self.write_json(
                {
                    **object_json(record),
                    "builds": builds,
                    "expiration": (
                        {"at": iso_time(expiration.at), "rule_id": expiration.rule_id}
                        if expiration is not None
                        else None
                    ),
                }
            )
            return
        try:
            check_preconditions(self.request.headers, record.etag, record.updated_at, is_read=True)
        except NotModified:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", record.content_type)
        self.set_header("Accept-Ranges", "bytes")
        if record.labels:
            self.set_header("X-Artifact-Labels", json.dumps(record.labels, sort_keys=True))
        rng = parse_range(self.request.headers.get("Range"), record.size)
        if rng is not None and "If-Range" in self.request.headers:
            if_range = self.request.headers["If-Range"].strip()
            if if_range != quote_etag(record.etag):
                rng = None
        await self.send_object(record, rng, send_body=send_body)

    async def delete(self, bucket: str, key: str) -> None:
        await self.authorize("s3:DeleteObject", f"{bucket}/{key}")
        removed = await self.ctx.artifacts.delete_object(bucket, key)
        if removed is None:
            raise StoreError(
                "NoSuchKey",
                f"object {key!r} does not exist in bucket {bucket!r}",
                resource=f"{bucket}/{key}",
            )
        self.set_status(204)
        self.finish()


class OpenAPIHandler(QueryCheckedHandler):
    """The OpenAPI 3.1 document of ``/v1`` (readable without authentication)."""

    _document: bytes | None = None

    def get(self) -> None:
        if OpenAPIHandler._document is None:
            OpenAPIHandler._document = (
                resources.files("zot_artifact_store.api.v1").joinpath("openapi.json").read_bytes()
            )
        self.set_header("Content-Type", "application/json")
        self.finish(OpenAPIHandler._document)


class CredentialsHandler(V1Handler):
    accepts_statements = False

    def credential_request(self) -> tuple[str, list[str], float | None]:
        """``{"name", "roles", "expires_in"?}`` of a new API token or access key (and, for
        tokens, ``statements``, in ``self.statements``)."""
        body = self.json_body(required=True)
        if not isinstance(body, dict):
            raise StoreError("MalformedJSON", "the request must be a JSON object")
        unknown = set(body) - {"name", "roles", "expires_in"}
        if self.accepts_statements:
            unknown.discard("statements")
            statements = body.get("statements") or []
            if not isinstance(statements, list):
                raise StoreError("MalformedPolicy", "statements must be a list of statements")
            self.statements: list[dict[str, Any]] = statements
        elif "statements" in unknown:
            raise StoreError(
                "InvalidArgument",
                "access keys carry roles only; use policies that name the key's principal id",
            )
        if unknown:
            raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
        name, roles, expires_in = body.get("name"), body.get("roles"), body.get("expires_in")
        if not isinstance(name, str):
            raise StoreError("MalformedJSON", "name must be a string")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise StoreError("MalformedJSON", "roles must be a list of strings")
        if expires_in is not None and (
            isinstance(expires_in, bool) or not isinstance(expires_in, int | float)
        ):
            raise StoreError("MalformedJSON", "expires_in must be a number of seconds")
        return name, roles, expires_in


class AccessKeysHandler(CredentialsHandler):
    """``/v1/access-keys``: S3 access keys (the secret is shown once)."""

    async def post(self) -> None:
        await self.authorize("admin:CreateAccessKey", "admin:access-keys")
        name, roles, expires_in = self.credential_request()
        key, secret = await self.ctx.access_keys.create(self.principal, name, roles, expires_in)
        resource = f"admin:access-keys/{key.access_key_id}"
        self.audit("admin:CreateAccessKey", resource, True, "created")
        self.set_header("Location", f"/v1/access-keys/{key.access_key_id}")
        self.set_header("Cache-Control", "no-store")
        self.write_json({**access_key_json(key), "secret_access_key": secret}, 201)

    async def get(self) -> None:
        await self.authorize("admin:ListAccessKeys", "admin:access-keys")
        keys = await self.ctx.access_keys.list()
        self.write_json({"access_keys": [access_key_json(k) for k in keys]})


class AccessKeyHandler(V1Handler):
    async def delete(self, key_id: str) -> None:
        resource = f"admin:access-keys/{key_id}"
        await self.authorize("admin:RevokeAccessKey", resource)
        await self.ctx.access_keys.revoke(key_id)
        self.audit("admin:RevokeAccessKey", resource, True, "revoked")
        self.set_status(204)
        self.finish()


class TokensHandler(CredentialsHandler):
    """``/v1/tokens``: API tokens for robots."""

    accepts_statements = True

    async def post(self) -> None:
        await self.authorize("admin:CreateToken", "admin:tokens")
        name, roles, expires_in = self.credential_request()
        token, secret = await self.ctx.api_tokens.create(
            self.principal, name, roles, expires_in, self.statements
        )
        self.audit("admin:CreateToken", f"admin:tokens/{token.token_id}", True, "created")
        self.set_header("Location", f"/v1/tokens/{token.token_id}")
        self.set_header("Cache-Control", "no-store")
        self.write_json({**token_json(token), "token": secret}, 201)

    async def get(self) -> None:
        await self.authorize("admin:ListTokens", "admin:tokens")
        self.write_json({"tokens": [token_json(t) for t in await self.ctx.api_tokens.list()]})


class TokenHandler(V1Handler):
    async def delete(self, token_id: str) -> None:
        await self.authorize("admin:RevokeToken", f"admin:tokens/{token_id}")
        await self.ctx.api_tokens.revoke(token_id)
        self.audit("admin:RevokeToken", f"admin:tokens/{token_id}", True, "revoked")
        self.set_status(204)
        self.finish()


class AuditHandler(V1Handler):
    """``GET /v1/audit``: the audit trail, newest first, filtered and paginated."""

    query_parameters = takes(
        GET=("principal", "action", "resource", "decision", "since", "until", "cursor", "limit")
    )

    async def get(self) -> None:
        await self.authorize("admin:ReadAudit", "admin:audit")
        arg = self.get_query_argument
        decision = arg("decision", None)
        if decision not in (None, "allow", "deny"):
            raise StoreError("InvalidArgument", "decision must be allow or deny")
        query = AuditQuery(
            principal=arg("principal", None),
            action=arg("action", None),
            resource_prefix=arg("resource", None),
            decision=decision,
            since=self.time_arg("since"),
            until=self.time_arg("until"),
        )
        before = decode_audit_cursor(arg("cursor", None))
        limit = self.int_arg("limit", 100, 1, MAX_LIST_LIMIT)
        await self.ctx.audit.settle()  # what this process buffered is in the answer
        records, more = await self.ctx.metadata.query_audit(query, before, limit)
        out: dict[str, Any] = {"records": [audit_json(r) for r in records]}
        out["next_cursor"] = encode_audit_cursor(records[-1]) if more and records else None
        self.write_json(out)

    def time_arg(self, name: str) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            return parse_time(raw)
        except ValueError:
            raise StoreError(
                "InvalidArgument", f"{name} must be an RFC 3339 time or Unix seconds"
            ) from None


def policy_document(handler: V1Handler) -> Any:
    body = handler.json_body(required=True)
    if not isinstance(body, dict | list):
        raise StoreError("MalformedPolicy", "a policy is a JSON object with a Statement list")
    return body


class PoliciesHandler(V1Handler):
    async def get(self) -> None:
        await self.authorize("admin:ListPolicies", "admin:policies")
        policies = await self.ctx.authorizer.policies.list()
        self.write_json({"policies": [policy_json(p) for p in policies]})


class PolicyHandler(V1Handler):
    async def put(self, name: str) -> None:
        await self.authorize("admin:PutPolicy", f"admin:policies/{name}")
        policy, created = await self.ctx.authorizer.policies.put(name, policy_document(self))
        self.audit("admin:PutPolicy", f"admin:policies/{name}", True, "policy set")
        self.write_json(policy_json(policy), 201 if created else 200)

    async def get(self, name: str) -> None:
        await self.authorize("admin:GetPolicy", f"admin:policies/{name}")
        self.write_json(policy_json(await self.ctx.authorizer.policies.get(name)))

    async def delete(self, name: str) -> None:
        await self.authorize("admin:DeletePolicy", f"admin:policies/{name}")
        await self.ctx.authorizer.policies.delete(name)
        self.audit("admin:DeletePolicy", f"admin:policies/{name}", True, "policy removed")
        self.set_status(204)
        self.finish()


class BucketPolicyHandler(V1Handler):
    async def put(self, bucket: str) -> None:
        await self.authorize("s3:PutBucketPolicy", bucket)
        await self.ctx.authorizer.policies.put_bucket_policy(bucket, policy_document(self))
        self.audit("s3:PutBucketPolicy", bucket, True, "policy set")
        self.write_json(await self.ctx.authorizer.policies.get_bucket_policy(bucket))

    async def get(self, bucket: str) -> None:
        await self.authorize("s3:GetBucketPolicy", bucket)
        self.write_json(await self.ctx.authorizer.policies.get_bucket_policy(bucket))

    async def delete(self, bucket: str) -> None:
        await self.authorize("s3:DeleteBucketPolicy", bucket)
        await self.ctx.authorizer.policies.delete_bucket_policy(bucket)
        self.audit("s3:DeleteBucketPolicy", bucket, True, "policy removed")
        self.set_status(204)
        self.finish()


class AuthorizeHandler(V1Handler):
    """``POST /v1/authorize``: may this principal (default: the caller) do this action on this
    resource, and what decided it."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        if not isinstance(body, dict):
            raise StoreError("MalformedJSON", "the question must be a JSON object")
        unknown = set(body) - {"principal", "action", "resource", "source_ip"}
        if unknown:
            raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
        action, resource = body.get("action"), body.get("resource", "")
        who, source_ip = body.get("principal"), body.get("source_ip", self.request.remote_ip)
        if not isinstance(action, str) or not action:
            raise StoreError("MalformedJSON", "action must be a non-empty string")
        if not isinstance(resource, str) or not isinstance(source_ip, str | None):
            raise StoreError("MalformedJSON", "resource and source_ip must be strings")
        if who is None or who == self.principal.id:
            principal = self.principal
        else:
            if not isinstance(who, str):
                raise StoreError("MalformedJSON", "principal must be a principal id")
            await self.authorize("admin:Authorize", "admin:authorize")
            principal = await self.resolve_principal(who)
        context = EvalContext(source_ip=source_ip or "")
        decision = await self.ctx.authorizer.decide(principal, action, resource, context)
        self.write_json(
            {
                "principal": principal.id,
                "action": action,
                "resource": resource,
                "allowed": decision.allowed,
                "reason": decision.reason,
            }
        )

    async def resolve_principal(self, who: str) -> Principal:
        if who == "anonymous":
            return ANONYMOUS
        root = self.ctx.config.auth.root.user
        if root and who == f"root:{root}":
            return root_principal(root)
        if who.startswith("token:"):
            token = await self.ctx.metadata.get_api_token(who[len("token:") :])
            if token is not None and token.revoked_at is None:
                return token_principal(token)
        raise StoreError("InvalidArgument", f"unknown principal {who!r}")


# Content types that say nothing about an evidence document (curl -d, a default JSON client):
# the format is detected from the document and its real media type stored.
GENERIC_MEDIA_TYPES = frozenset(
    {
        "",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/octet-stream",
        "application/json",
        "text/json",
    }
)


class EvidenceHandler(V1Handler):
    """Signatures of a subject: ``/v1/buckets/{b}/objects/{key}/signatures`` (the object's
    current digest) and ``/v1/digests/{digest}/signatures``. POST attaches a Sigstore bundle
    (its JSON as the body); GET lists what is attached."""

    async def subject(self, action: str, *args: str) -> tuple[str, str, str]:
        """(digest, how it was named, authorization resource), once ``action`` is allowed on
        the object or digest (before it is looked up: missing and forbidden answer alike)."""
        if len(args) == 2:
            bucket, key = args
            return await self.authorized_subject({"bucket": bucket, "key": key}, action)
        return await self.authorized_subject({"digest": args[0]}, action)

    async def post(self, *args: str) -> None:
        kind = args[-1]
        digest, ref, resource = await self.subject("supplychain:attach", *args[:-1])
        media_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type in GENERIC_MEDIA_TYPES:
            media_type = ""  # detected from the document: curl -d sends a form type
        attach = {
            "signatures": self.ctx.supplychain.attach_signature,
            "sboms": self.ctx.supplychain.attach_sbom,
            "attestations": self.ctx.supplychain.attach_attestation,
        }.get(kind)
        if attach is None:
            raise StoreError("NotImplemented", f"attaching {kind} is not supported yet")
        evidence = await attach(digest, ref, self.request.body, media_type, self.principal.id)
        self.audit("supplychain:attach", resource, True, f"{evidence.kind} {evidence.evidence_id}")
        self.set_header("Location", f"/v1/evidence/{evidence.evidence_id}")
        self.write_json(evidence_json(evidence), 201)

    async def get(self, *args: str) -> None:
        kind = args[-1]
        digest, _, _ = await self.subject("supplychain:read", *args[:-1])
        # The same bytes may be evidence-bearing elsewhere too: only what the caller may read.
        items = await self.readable(await self.ctx.supplychain.list(digest, kind[:-1]))
        self.write_json({"subject_digest": digest, kind: [evidence_json(e) for e in items]})


class BucketGateHandler(V1Handler):
    """``/v1/buckets/{bucket}/verification``: the verification policy every download of the
    bucket's objects is checked against, in ``audit`` or ``enforce`` mode (admins only)."""

    async def put(self, bucket: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", bucket)
        body = self.json_body(required=True)
        if not isinstance(body, dict) or set(body) != {"name", "mode", "policy"}:
            raise StoreError("MalformedJSON", 'the request is {"name", "mode", "policy"}')
        gate = await self.ctx.supplychain.set_bucket_gate(
            bucket, body["name"], body["mode"], body["policy"]
        )
        self.audit("admin:PutVerificationPolicy", bucket, True, f"{gate['name']} ({gate['mode']})")
        self.write_json(gate)

    async def get(self, bucket: str) -> None:
        await self.authorize("supplychain:read", bucket)
        gate = await self.ctx.supplychain.get_bucket_gate(bucket)
        if gate is None:
            await self.ctx.artifacts.get_bucket(bucket)  # 404 for a missing bucket
            raise StoreError("NoSuchBucketPolicy", f"bucket {bucket!r} has no verification policy")
        self.write_json(gate)

    async def delete(self, bucket: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", bucket)
        await self.ctx.supplychain.delete_bucket_gate(bucket)
        self.audit("admin:PutVerificationPolicy", bucket, True, "removed")
        self.set_status(204)
        self.finish()


class RepositoryGateHandler(V1Handler):
    """``/v1/repositories/{pattern}/verification``: the verification policy every manifest
    pull from matching repositories (a name or a glob such as ``prod/*``; the most specific
    applies) is checked against, in ``audit`` or ``enforce`` mode (admins only)."""

    async def put(self, pattern: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", f"repo:{pattern}")
        body = self.json_body(required=True)
        if not isinstance(body, dict) or set(body) != {"name", "mode", "policy"}:
            raise StoreError("MalformedJSON", 'the request is {"name", "mode", "policy"}')
        gate = await self.ctx.supplychain.set_repo_gate(
            pattern, body["name"], body["mode"], body["policy"]
        )
        self.audit(
            "admin:PutVerificationPolicy", f"repo:{pattern}", True,
            f"{gate['name']} ({gate['mode']})",
        )  # fmt: skip
        self.write_json(gate)

    async def get(self, pattern: str) -> None:
        await self.authorize("supplychain:read", f"repo:{pattern}")
        gate = (await self.ctx.supplychain.repo_gates()).get(pattern)
        if gate is None:
            raise StoreError(
                "NoSuchVerificationPolicy", f"no verification policy for repositories {pattern!r}"
            )
        self.write_json(gate)

    async def delete(self, pattern: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", f"repo:{pattern}")
        await self.ctx.supplychain.delete_repo_gate(pattern)
        self.audit("admin:PutVerificationPolicy", f"repo:{pattern}", True, "removed")
        self.set_status(204)
        self.finish()


class SbomSearchHandler(V1Handler):
    """``GET /v1/sboms/search?purl=…|name=…``: every subject whose SBOM lists the component
    (a purl with a version matches exactly; without, every version)."""

    query_parameters = takes(GET=("purl", "name", "limit"))

    async def get(self) -> None:
        await self.authorize("supplychain:read", "")
        found = await self.ctx.supplychain.search(
            self.get_query_argument("purl", None),
            self.get_query_argument("name", None),
            self.int_arg("limit", 1000, 1, 10_000),
        )
        # Only what the caller may read: a search must not reveal other teams' artifacts.
        allowed: dict[str, bool] = {}
        results = []
        for c in found:
            if c.subject_ref not in allowed:
                action, resource = read_action(c.subject_ref)
                decision = await self.ctx.authorizer.decide(self.principal, action, resource)
                allowed[c.subject_ref] = decision.allowed
            if allowed[c.subject_ref]:
                results.append(component_json(c))
        self.write_json({"results": results})


class KeysHandler(V1Handler):
    """``/v1/keys``: public keys trusted to sign evidence (admins only: a trusted key vouches
    for anything it signs)."""

    async def post(self) -> None:
        await self.authorize("admin:ManageKeys", "admin:keys")
        body = self.json_body(required=True)
        if not isinstance(body, dict) or set(body) - {"name", "public_key", "scope", "expires_in"}:
            raise StoreError(
                "MalformedJSON", 'the request is {"name", "public_key", "scope"?, "expires_in"?}'
            )
        pem, name = body.get("public_key"), body.get("name")
        scope, expires_in = body.get("scope", ""), body.get("expires_in")
        if not all(isinstance(v, str) for v in (pem, name, scope)):
            raise StoreError("MalformedJSON", "name, public_key and scope must be strings")
        if expires_in is not None and (
            isinstance(expires_in, bool) or not isinstance(expires_in, int | float)
        ):
            raise StoreError("MalformedJSON", "expires_in must be a number of seconds")
        key, created = await self.ctx.supplychain.add_key(
            pem, name, scope, expires_in, self.principal.id
        )
        self.audit("admin:ManageKeys", f"admin:keys/{key.key_id}", True, "trusted")
        self.set_header("Location", f"/v1/keys/{key.key_id}")
        self.write_json(key_json(key), 201 if created else 200)

    async def get(self) -> None:
        await self.authorize("supplychain:read", "admin:keys")
        self.write_json({"keys": [key_json(k) for k in await self.ctx.supplychain.list_keys()]})


class KeyHandler(V1Handler):
    async def delete(self, key_id: str) -> None:
        await self.authorize("admin:ManageKeys", f"admin:keys/{key_id}")
        await self.ctx.supplychain.revoke_key(key_id)
        self.audit("admin:ManageKeys", f"admin:keys/{key_id}", True, "revoked")
        self.set_status(204)
        self.finish()


class EvidenceDocumentHandler(V1Handler):
    """``GET /v1/evidence/{id}``: the document exactly as attached (HEAD: its headers)."""

    async def get(self, evidence_id: str) -> None:
        evidence, body = await self.ctx.supplychain.evidence_bytes(evidence_id)
        # Its real subject's resource: bucket/key, repo:<name> (as pulls are authorized) or
        # digest:<d>, so a Deny on a bucket or repository covers its evidence too.
        await self.authorize("supplychain:read", evidence_resource(evidence))
        self.set_header("Content-Type", evidence.media_type or "application/octet-stream")
        self.set_header("X-Evidence-Subject", evidence.subject)
        self.finish(body)


class SignHandler(V1Handler):
    """``POST /v1/sign``: the store signs a subject with its own key (a DSSE envelope over an
    in-toto statement), attached as a signature, or as an attestation with a predicate."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        if (
            not isinstance(body, dict)
            or "subject" not in body
            or set(body)
            - {
                "subject",
                "predicate_type",
                "predicate",
            }
        ):
            raise StoreError(
                "MalformedJSON", 'the request is {"subject", "predicate_type"?, "predicate"?}'
            )
        digest, ref, resource = await self.authorized_subject(body["subject"], "supplychain:sign")
        predicate_type = body.get("predicate_type")
        if predicate_type is not None and not isinstance(predicate_type, str):
            raise StoreError("MalformedJSON", "predicate_type must be a string")
        if predicate_type is not None or body.get("predicate") is not None:
            # The store's key vouching for a predicate the caller wrote: policies trust it.
            await self.authorize("signing:Attest", resource)
        evidence, envelope = await self.ctx.supplychain.sign(
            digest, ref, predicate_type, body.get("predicate"), self.principal.id
        )
        self.audit("supplychain:sign", resource, True, f"{evidence.kind} {evidence.evidence_id}")
        dsse = json.loads(envelope)
        bundle = public_key_bundle(dsse, self.ctx.supplychain.signing_key_id)
        self.write_json({**evidence_json(evidence), "envelope": dsse, "bundle": bundle}, 201)


class ProvenanceHandler(V1Handler):
    """``POST /v1/provenance {"subjects": [{"bucket", "key"}, …]}``: the store builds SLSA v1
    provenance for objects the caller's identity wrote — from the CI platform token's verified
    claims for a workload session (``/v1/auth/exchange``), else naming the uploader — signs it
    with its own key and attaches it to each. The caller supplies no predicate fields."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        subjects = body.get("subjects") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or set(body) != {"subjects"}
            or not isinstance(subjects, list)
        ):
            raise StoreError(
                "MalformedJSON",
                'the request is {"subjects": [{"bucket", "key"}, …]}: the store writes the '
                "predicate itself (a predicate of your own is POST /v1/sign, for signing:Attest)",
            )
        if not 1 <= len(subjects) <= MAX_PROVENANCE_SUBJECTS:
            raise StoreError("InvalidArgument", f"give 1 to {MAX_PROVENANCE_SUBJECTS} subjects")
        resolved: list[tuple[str, str, str]] = []
        for subject in subjects:
            if not isinstance(subject, dict) or set(subject) != {"bucket", "key"}:
                raise StoreError("InvalidArgument", 'each subject is {"bucket", "key"}')
            bucket, key = str(subject["bucket"]), str(subject["key"])
            await self.authorize("supplychain:attach", f"{bucket}/{key}")
            record = await self.ctx.artifacts.head_object(bucket, key)
            # Only what this identity wrote: in a workload session, in this very session.
            wrote = (
                record.writer_session == self.principal.session
                if self.principal.session
                else record.writer == self.principal.id
            )
            if not wrote or not record.writer:
                raise StoreError(
                    "AccessDenied",
                    f"{bucket}/{key} was not written by this "
                    f"{'session' if self.principal.session else 'identity'}: provenance covers "
                    "only what the asking identity uploaded",
                    resource=f"{bucket}/{key}",
                )
            resolved.append((record.digest, key, f"{bucket}/{key}"))
        evidence, statement = await self.ctx.supplychain.build_provenance(resolved, self.principal)
        for item in evidence:
            self.audit(
                "supplychain:attach", item.subject_ref, True, f"provenance {item.evidence_id}"
            )
        self.write_json(
            {"statement": statement, "evidence": [evidence_json(e) for e in evidence]}, 201
        )


# At most this many files in one provenance statement (POST /v1/provenance).
MAX_PROVENANCE_SUBJECTS = 1000


class VerifyHandler(V1Handler):
    """``POST /v1/verify``: does a subject satisfy a policy, rule by rule."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        if (
            not isinstance(body, dict)
            or not {"subject", "policy"} <= set(body)
            or set(body) - {"subject", "policy", "issue_vsa"}
        ):
            raise StoreError(
                "MalformedJSON", 'the request is {"subject": …, "policy": …, "issue_vsa"?: bool}'
            )
        digest, ref, resource = await self.authorized_subject(body["subject"], "supplychain:verify")
        issue_vsa = body.get("issue_vsa", False)
        if not isinstance(issue_vsa, bool):
            raise StoreError("MalformedJSON", "issue_vsa must be true or false")
        if issue_vsa:
            await self.authorize("supplychain:sign", resource)
        verified, rules = await self.ctx.supplychain.verify_request(
            digest, ref, body["policy"], subject_scope(body["subject"])
        )
        self.audit(
            "supplychain:verify", resource, True, "passed" if verified else "failed",
            subject_digest=digest,
        )  # fmt: skip
        answer: dict[str, Any] = {
            "verified": verified,
            "subject": ref,
            "subject_digest": digest,
            "rules": [r.as_json() for r in rules],
        }
        if issue_vsa and verified:
            vsa = await self.ctx.supplychain.issue_vsa(
                digest, ref, body["policy"], rules, self.principal.id
            )
            answer["vsa"] = evidence_json(vsa)
        self.write_json(answer)


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class ExchangeHandler(V1Handler):
    """``POST /v1/auth/exchange``: a CI platform's OIDC token in, a short-lived store token out,
    when a trust rule matches. JSON ``{"token": …}`` or RFC 8693's form
    (``grant_type=…token-exchange&subject_token=…``)."""

    async def post(self) -> None:
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == "application/x-www-form-urlencoded":
            grant = self.get_body_argument("grant_type", TOKEN_EXCHANGE)
            if grant != TOKEN_EXCHANGE:
                raise StoreError("InvalidArgument", f"grant_type must be {TOKEN_EXCHANGE}")
            subject = self.get_body_argument("subject_token", None)
        else:
            body = self.json_body(required=True)
            if not isinstance(body, dict) or set(body) - {"token"}:
                raise StoreError("MalformedJSON", 'the request must be {"token": "<JWT>"}')
            subject = body.get("token")
        if not isinstance(subject, str) or not subject:
            raise StoreError("InvalidArgument", "the platform's OIDC token is required")
        principal, rule = await self.ctx.workload.exchange(subject)
        self.principal = principal
        self.audit("auth:Exchange", f"trust:{rule.name}", True, f"trust rule {rule.name}")
        answer = self.ctx.registry_tokens.issue_session(principal, rule.expiry)
        self.set_header("Cache-Control", "no-store")
        self.write_json(
            {
                **answer,
                "principal": principal.id,
                "roles": sorted(principal.roles),
                "rule": rule.name,
            }
        )


def routes(ctx: Any) -> list[Route]:
    from . import admin, events, uploads, webhooks  # they build on this module's handlers

    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    return [
        *webhooks.routes(ctx),
        r(r"/v1/openapi\.json", OpenAPIHandler, "/v1/openapi.json"),
        r(r"/v1/buckets/?", BucketsHandler, "/v1/buckets"),
        r(r"/v1/buckets/([^/]+)/?", BucketHandler, "/v1/buckets/{bucket}"),
        r(r"/v1/buckets/([^/]+)/objects/?", ObjectListHandler, "/v1/buckets/{bucket}/objects"),
        r(
            r"/v1/buckets/([^/]+)/objects/(.+)/(signatures|sboms|attestations)",
            EvidenceHandler,
            "/v1/buckets/{bucket}/objects/{key}/{kind}",
        ),
        r(r"/v1/buckets/([^/]+)/objects/(.+)", ObjectHandler, "/v1/buckets/{bucket}/objects/{key}"),
        r(
            r"/v1/digests/([^/]+)/(signatures|sboms|attestations)",
            EvidenceHandler,
            "/v1/digests/{digest}/{kind}",
        ),
        r(r"/v1/sboms/search", SbomSearchHandler, "/v1/sboms/search"),
        r(r"/v1/evidence/([^/]+)", EvidenceDocumentHandler, "/v1/evidence/{id}"),
        r(r"/v1/keys/?", KeysHandler, "/v1/keys"),
        r(r"/v1/keys/([^/]+)", KeyHandler, "/v1/keys/{id}"),
        r(r"/v1/verify", VerifyHandler, "/v1/verify"),
        r(r"/v1/sign", SignHandler, "/v1/sign"),
        r(r"/v1/presign", uploads.PresignHandler, "/v1/presign"),
        r(r"/v1/buckets/([^/]+)/uploads/?", uploads.UploadsHandler, "/v1/buckets/{bucket}/uploads"),
        r(
            r"/v1/buckets/([^/]+)/uploads/([^/]+)/?",
            uploads.MultipartUploadHandler,
            "/v1/buckets/{bucket}/uploads/{upload_id}",
        ),
        r(
            r"/v1/buckets/([^/]+)/uploads/([^/]+)/parts/([^/]+)",
            uploads.PartHandler,
            "/v1/buckets/{bucket}/uploads/{upload_id}/parts/{part_number}",
        ),
        r(
            r"/v1/buckets/([^/]+)/uploads/([^/]+)/complete",
            uploads.CompleteHandler,
            "/v1/buckets/{bucket}/uploads/{upload_id}/complete",
        ),
        # Anything else under /v1 is ours (a problem JSON 404), never an S3 path.
        r(r"/v1/buckets/([^/]+)/policy", BucketPolicyHandler, "/v1/buckets/{bucket}/policy"),
        r(
            r"/v1/buckets/([^/]+)/verification",
            BucketGateHandler,
            "/v1/buckets/{bucket}/verification",
        ),
        r(
            r"/v1/repositories/(.+)/verification",
            RepositoryGateHandler,
            "/v1/repositories/{pattern}/verification",
        ),
        r(r"/v1/policies/?", PoliciesHandler, "/v1/policies"),
        r(r"/v1/policies/([^/]+)", PolicyHandler, "/v1/policies/{name}"),
        r(r"/v1/authorize", AuthorizeHandler, "/v1/authorize"),
        r(r"/v1/auth/exchange", ExchangeHandler, "/v1/auth/exchange"),
        r(r"/v1/provenance", ProvenanceHandler, "/v1/provenance"),
        r(r"/v1/access-keys/?", AccessKeysHandler, "/v1/access-keys"),
        r(r"/v1/access-keys/([^/]+)", AccessKeyHandler, "/v1/access-keys/{id}"),
        r(r"/v1/tokens/?", TokensHandler, "/v1/tokens"),
        r(r"/v1/tokens/([^/]+)", TokenHandler, "/v1/tokens/{id}"),
        r(r"/v1/audit/?", AuditHandler, "/v1/audit"),
        r(r"/v1/admin/lifecycle/run", admin.LifecycleRunHandler, "/v1/admin/lifecycle/run"),
        r(r"/v1/events/?", events.EventsHandler, "/v1/events"),
        r(r"/v1/event-sources/?", events.EventSourcesHandler, "/v1/event-sources"),
        r(r"/v1/event-sources/([^/]+)", events.EventSourceHandler, "/v1/event-sources/{id}"),
        r(r"/v1/builds/?", events.BuildsHandler, "/v1/builds"),
        r(r"/v1/builds/([^/]+)", events.BuildHandler, "/v1/builds/{id}"),
        r(r"/v1(?:/.*)?", NotFoundHandler, "unmatched"),
    ]
