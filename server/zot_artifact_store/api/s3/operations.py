"""Which S3 operation a request is, decided by an allow-list drawn from botocore's S3 model.

S3 names many operations by a query "sub-resource" on the same path (``PUT /b/k?tagging`` is
PutObjectTagging, not PutObject). A server that routes on the method and path alone turns
every sub-resource it does not know into the plain operation: a tagging call overwrites the
object, ``DELETE ?analytics`` deletes the bucket. So every request is first identified as one
operation of botocore's S3 service model (method, service/bucket/object level, the literal
query markers of its ``requestUri``, its required query members, ``x-amz-copy-source``), and
then only an operation in :data:`IMPLEMENTED` runs; anything else is refused with
``501 NotImplemented`` naming it. A future S3 operation in the model is refused the same way,
never mistaken for a supported one.

Within an implemented operation, a query member of the model that the store does not honour
(a ListMultipartUploads ``delimiter``) is refused too, and
headers that ask for a feature the store does not have (object lock, grants,
server-side encryption) are refused instead of silently ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ...errors import StoreError
from ...lazy import lazy_module

# botocore's S3 model is read on the first S3 request, not at start (issue 23).
botocore_auth = lazy_module("botocore.auth")
botocore_session = lazy_module("botocore.session")

Level = Literal["service", "bucket", "object"]

# Each implemented operation and the model query members it honours (others are refused).
_LIST_OBJECTS = frozenset({"delimiter", "encoding-type", "marker", "max-keys", "prefix"})
_OVERRIDES = frozenset(
    {
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
    }
)
IMPLEMENTED: dict[str, frozenset[str]] = {
    "ListBuckets": frozenset({"max-buckets", "continuation-token", "prefix", "bucket-region"}),
    "CreateBucket": frozenset(),
    "HeadBucket": frozenset(),
    "DeleteBucket": frozenset(),
    "ListObjects": _LIST_OBJECTS,
    "ListObjectsV2": frozenset(
        {"delimiter", "encoding-type", "max-keys", "prefix", "continuation-token"}
        | {"fetch-owner", "start-after"}
    ),
    "ListObjectVersions": frozenset(
        {"delimiter", "encoding-type", "key-marker", "max-keys", "prefix", "version-id-marker"}
    ),
    "GetBucketLocation": frozenset(),
    "GetBucketAcl": frozenset(),
    "PutBucketAcl": frozenset(),
    "GetBucketVersioning": frozenset(),
    "PutBucketVersioning": frozenset(),
    "GetBucketPolicy": frozenset(),
    "PutBucketPolicy": frozenset(),
    "DeleteBucketPolicy": frozenset(),
    "GetBucketPolicyStatus": frozenset(),
    "GetPublicAccessBlock": frozenset(),
    "PutPublicAccessBlock": frozenset(),
    "DeletePublicAccessBlock": frozenset(),
    "GetBucketOwnershipControls": frozenset(),
    "PutBucketOwnershipControls": frozenset(),
    "GetBucketTagging": frozenset(),
    "PutBucketTagging": frozenset(),
    "DeleteBucketTagging": frozenset(),
    "GetBucketLifecycleConfiguration": frozenset(),
    "PutBucketLifecycleConfiguration": frozenset(),
    "DeleteBucketLifecycle": frozenset(),
    "GetBucketCors": frozenset(),
    "PutBucketCors": frozenset(),
    "DeleteBucketCors": frozenset(),
    "ListMultipartUploads": frozenset(
        {"encoding-type", "key-marker", "max-uploads", "prefix", "upload-id-marker"}
    ),
    "DeleteObjects": frozenset(),
    "PutObject": frozenset(),
    "CopyObject": frozenset(),
    "GetObject": _OVERRIDES | {"versionId", "partNumber"},
    "HeadObject": _OVERRIDES | {"versionId", "partNumber"},
    "DeleteObject": frozenset({"versionId"}),
    "GetObjectAcl": frozenset({"versionId"}),
    "PutObjectAcl": frozenset({"versionId"}),
    "GetObjectTagging": frozenset({"versionId"}),
    "PutObjectTagging": frozenset({"versionId"}),
    "DeleteObjectTagging": frozenset({"versionId"}),
    "PutObjectRetention": frozenset({"versionId"}),
    "GetObjectRetention": frozenset({"versionId"}),
    "PutObjectLegalHold": frozenset({"versionId"}),
    "GetObjectLegalHold": frozenset({"versionId"}),
    "PutObjectLockConfiguration": frozenset(),
    "GetObjectLockConfiguration": frozenset(),
    "GetObjectAttributes": frozenset({"versionId"}),
    "CreateMultipartUpload": frozenset(),
    "UploadPart": frozenset({"partNumber", "uploadId"}),
    "UploadPartCopy": frozenset({"partNumber", "uploadId"}),
    "ListParts": frozenset({"max-parts", "part-number-marker", "uploadId"}),
    "AbortMultipartUpload": frozenset({"uploadId"}),
    "CompleteMultipartUpload": frozenset({"uploadId"}),
}

# Query parameters that are not the operation's own: request signing (SigV4 and SigV2
# presigned URLs) and the operation hint newer AWS SDKs add (``?x-id=PutObject``).
_TRANSPORT = frozenset(
    {"x-id", "AWSAccessKeyId", "Signature", "Expires"}
    | {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires"}
    | {"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Content-Sha256"}
)

# Headers that ask for what this store does not do; refused rather than ignored (a user who
# asks for encryption must not believe the object is encrypted).
_OBJECT_WRITE_OPS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
_UNSUPPORTED_HEADERS: tuple[tuple[str, frozenset[str] | None, str], ...] = (
    ("x-amz-website-redirect-location", _OBJECT_WRITE_OPS, "website redirects"),
    ("x-amz-server-side-encryption", _OBJECT_WRITE_OPS, "server-side encryption"),
    ("x-amz-server-side-encryption-customer-algorithm", None, "SSE-C"),
    ("x-amz-copy-source-server-side-encryption-customer-algorithm", None, "SSE-C"),
)
_GRANT_OPS = frozenset(
    {"PutObject", "CopyObject", "CreateMultipartUpload", "CreateBucket"}
    | {"PutBucketAcl", "PutObjectAcl"}
)
_GRANT_HEADERS = (
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
)


@dataclass(frozen=True)
class Operation:
    """One operation of the S3 model, as it appears on the wire."""

    name: str
    method: str
    level: Level
    markers: tuple[tuple[str, str | None], ...]  # literal query of the requestUri
    query: frozenset[str]  # the wire names of its querystring members
    required: frozenset[str]  # the required ones among them
    copy_source: bool | None  # x-amz-copy-source: required (True), absent (False), any (None)
    literal: str | None = None  # a fixed first path segment (POST /WriteGetObjectResponse)

    @property
    def implemented(self) -> bool:
        return self.name in IMPLEMENTED

    def matches(self, query: Mapping[str, str], copy_source: bool, bucket: str | None) -> bool:
        if self.literal is not None and self.literal != bucket:
            return False
        for name, value in self.markers:
            if name not in query or (value is not None and query[name] != value):
                return False
        if not self.required <= query.keys():
            return False
        return self.copy_source is None or self.copy_source == copy_source

    def describe(self) -> str:
        marks = "&".join(
            name if value is None else f"{name}={value}" for name, value in self.markers
        )
        where = {"service": "the service", "bucket": "a bucket", "object": "an object"}[self.level]
        if self.literal is not None:
            where = f"/{self.literal}"
        return f"{self.method}{' ?' + marks if marks else ''} on {where}"


def _level(path: str) -> tuple[Level, str | None] | None:
    """The level of a requestUri's path, and its fixed first segment if it has one."""
    path = path.split("?", 1)[0]
    if path == "/":
        return "service", None
    if path == "/{Bucket}":
        return "bucket", None
    if path == "/{Bucket}/{Key+}":
        return "object", None
    segments = path.strip("/").split("/")
    if len(segments) == 1 and "{" not in path:
        return "bucket", segments[0]  # /WriteGetObjectResponse (sent to its own host)
    return None


def _markers(uri: str) -> tuple[tuple[str, str | None], ...]:
    if "?" not in uri:
        return ()
    out: list[tuple[str, str | None]] = []
    for item in uri.split("?", 1)[1].split("&"):
        name, sep, value = item.partition("=")
        if name != "x-id":
            out.append((name, value if sep else None))
    return tuple(out)


@functools.cache
def model_operations() -> tuple[Operation, ...]:
    """Every operation of botocore's S3 model that is addressed by path."""
    model = botocore_session.get_session().get_service_model("s3")
    ops: list[Operation] = []
    for name in model.operation_names:
        op = model.operation_model(name)
        where = _level(op.http["requestUri"])
        if where is None:
            continue
        level, literal = where
        shape = op.input_shape
        members = shape.members if shape is not None else {}
        query = {
            member: s.serialization.get("name", member)
            for member, s in members.items()
            if s.serialization.get("location") == "querystring"
        }
        required = set(shape.required_members) if shape is not None else set()
        copy_source: bool | None = None
        if level == "object" and op.http["method"] == "PUT":
            copy_source = "CopySource" in required
        ops.append(
            Operation(
                name=name,
                method=op.http["method"],
                level=level,
                markers=_markers(op.http["requestUri"]),
                query=frozenset(query.values()),
                required=frozenset(wire for m, wire in query.items() if m in required),
                copy_source=copy_source,
                literal=literal,
            )
        )
    return tuple(ops)


@functools.cache
def _by_method_level() -> dict[tuple[str, str], tuple[Operation, ...]]:
    index: dict[tuple[str, str], list[Operation]] = {}
    for op in model_operations():
        index.setdefault((op.method, op.level), []).append(op)
    return {key: tuple(ops) for key, ops in index.items()}


@functools.cache
def sub_resources() -> frozenset[str]:
    """Query names that select an S3 sub-resource: every marker in the model, and the
    sub-resources S3 signs (botocore's SigV2 list), which include some the model does not
    mark (``versionId``, ``partNumber``, ``uploadId``)."""
    names = {name for op in model_operations() for name, _ in op.markers}
    return frozenset(names | set(botocore_auth.HmacV1Auth.QSAOfInterest))


@functools.cache
def model_query_names() -> frozenset[str]:
    return frozenset(name for op in model_operations() for name in op.query)


def resolve(
    method: str,
    level: Level,
    query: Mapping[str, str],
    headers: Iterable[str],
    bucket: str | None = None,
) -> Operation:
    """The implemented operation this request is, or a StoreError: ``NotImplemented`` for an
    operation (or a sub-resource, parameter or header) this store does not implement,
    ``InvalidArgument`` for a parameter that belongs to another operation. ``bucket`` is the
    first path segment (it can name an operation: ``POST /WriteGetObjectResponse``)."""
    header_names = {h.lower() for h in headers}
    copy_source = "x-amz-copy-source" in header_names
    candidates = [
        op
        for op in _by_method_level().get((method, level), ())
        if op.matches(query, copy_source, bucket)
    ]
    if not candidates:
        refused = sorted(k for k in query if k in sub_resources())
        what = f"?{'&'.join(refused)} " if refused else ""
        raise StoreError(
            "NotImplemented",
            f"{method} {what}on {'the service' if level == 'service' else 'a ' + level} is not "
            "an S3 operation this store implements",
        )

    def rank(op: Operation) -> tuple[bool, int, int, int, bool, bool, int]:
        known = sum(1 for k in query if k in op.query)
        return (
            op.literal is not None,
            len(op.markers),
            len(op.required),
            known,
            op.copy_source is True,
            op.implemented,  # wire-identical operations: the one this store has
            -ord(op.name[0]),
        )

    op = max(candidates, key=rank)
    if not op.implemented:
        raise StoreError(
            "NotImplemented", f"S3 operation {op.name} ({op.describe()}) is not implemented"
        )
    own = {name for name, _ in op.markers} | op.query
    for name in query:
        if name in own or name in _TRANSPORT:
            continue
        if name in model_query_names():
            raise StoreError("InvalidArgument", f"{name} is not a parameter of {op.name}")
        if name in sub_resources():
            raise StoreError(
                "NotImplemented",
                f"the sub-resource ?{name} is not implemented for {op.name} ({op.describe()})",
            )
    supported = IMPLEMENTED[op.name]
    for name in op.query & query.keys():
        if name not in supported:
            raise StoreError("NotImplemented", f"{op.name}: the parameter {name} is not supported")
    check_headers(op.name, header_names)
    return op


def check_headers(operation: str, header_names: set[str]) -> None:
    """Refuse a header that asks ``operation`` for a feature this store does not have."""
    for header, ops, feature in _UNSUPPORTED_HEADERS:
        if header in header_names and (ops is None or operation in ops):
            raise StoreError(
                "NotImplemented", f"{operation}: {feature} ({header}) is not implemented"
            )
    if operation in _GRANT_OPS:
        for header in _GRANT_HEADERS:
            if header in header_names:
                raise StoreError(
                    "NotImplemented",
                    f"{operation}: ACL grants ({header}) are not implemented; use a canned ACL "
                    "(x-amz-acl: private or public-read) or a bucket policy",
                )
