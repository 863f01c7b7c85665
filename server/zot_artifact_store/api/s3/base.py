"""What every S3 handler shares (the S3 API is path-style, at ``/`` and ``/s3``; DESIGN.md §3).

Handlers parse S3's headers, query subresources and XML, call the same services as ``/v1``
(an object put here is the artifact ``/v1`` shows, with its sha256), and render S3's XML.
Errors come from the one catalogue, renamed to S3's codes where S3 has its own. One module a
resource: ``service``, ``buckets``, ``objects`` (with multipart); ``routes`` wires them.
"""

from __future__ import annotations

import base64
import email.errors
import email.header
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import tornado.httputil
import tornado.ioloop
import tornado.web

from ...auth.awschunked import stored_content_encoding
from ...auth.conditions import listing_values, request_tag_values
from ...auth.principal import current_principal
from ...auth.sigv2 import verify_sigv2
from ...auth.sigv4 import SigV4Context, SigV4Request
from ...errors import CATALOGUE, NotModified, StoreError
from ...metadata import ObjectRecord
from ...services.artifacts import PutOptions
from ...services.checksums import BodyChecksums, parse_checksum_headers
from ...services.lifecycle import EXPIRES_HEADER, parse_expires_at
from ...services.versioning import s3_version_id
from ..base import BaseHandler
from ..httputil import check_preconditions, parse_copy_source
from . import xml
from .operations import Level, Operation, resolve
from .tagging import parse_tagging, parse_tagging_header

MAX_KEYS = 1000
MAX_DELETE_KEYS = 1000
# Our codes whose S3 name differs.
_S3_CODES = {
    "Unauthenticated": "AccessDenied",
    "VerificationFailed": "AccessDenied",
    "ReservedName": "InvalidBucketName",
    "MalformedJSON": "MalformedXML",
    "InvalidContinuationToken": "InvalidArgument",
    "ChecksumMismatch": "BadDigest",
    "NotFound": "NoSuchKey",
    "TooManyRequests": "SlowDown",
    # 507 is no S3 status: a full disk is S3's 503 ServiceUnavailable (docs/errors.md).
    "InsufficientStorage": "ServiceUnavailable",
}
# S3's status where it differs from ours.
_S3_STATUS = {"RequestTimeout": 400}
# Stored and served as given (S3's "system metadata" a client may set).
STORED_HEADERS = (
    "Content-Encoding",
    "Content-Disposition",
    "Cache-Control",
    "Content-Language",
    "Expires",
)
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
# Canned ACLs as this store's access model has them: public-read or not. Under
# BucketOwnerEnforced the bucket-owner-* ones mean private; others (public-read-write,
# authenticated-read, aws-exec-read, log-delivery-write) grant what it cannot express.
CANNED_ACLS = {
    "private": False,
    "public-read": True,
    "bucket-owner-full-control": False,
    "bucket-owner-read": False,
}
DEFAULT_REGION = "us-east-1"
OWNER = {"ID": "zot-artifact-store", "DisplayName": "zot-artifact-store"}
STORAGE_CLASS = "STANDARD"
# An RFC 2047 encoded-word (=?charset?B|Q?text?=) in a user metadata value; its base64 text.
_ENCODED_WORD_RE = re.compile(r"=\?[^?\s]+\?([bBqQ])\?([^?\s]*)\?=")
_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


# ---- helpers ----------------------------------------------------------------------------------
def store_region(config: Any) -> str:
    """The region this store answers as (GetBucketLocation, HeadBucket, ListBuckets,
    CreateBucket's answer for a bucket you own): ``s3.region`` (default us-east-1)."""
    return str(config.s3.region)


def s3_code(error: StoreError, *, content_sha256: bool = False) -> tuple[str, int]:
    """S3's code and status for one of our errors."""
    code = error.code
    if code == "ChecksumMismatch" and "expected" in error.detail:
        code = "XAmzContentSHA256Mismatch" if content_sha256 else "BadDigest"
    code = _S3_CODES.get(code, code)
    if code == "InvalidKey":
        code = "KeyTooLongError" if "bytes long" in error.message else "InvalidArgument"
    if code in _S3_STATUS:
        return code, _S3_STATUS[code]
    return code, CATALOGUE[code].status if code in CATALOGUE else error.status


# ---- base -------------------------------------------------------------------------------------
class _S3ResponseHeaders(tornado.httputil.HTTPHeaders):
    """S3 sends user metadata names in lower case (``x-amz-meta-build``) and clients keep the
    case they receive; Tornado would send ``X-Amz-Meta-Build``."""

    def get_all(self) -> Iterator[tuple[str, str]]:
        for name, value in super().get_all():
            lower = name.lower()
            yield (lower if lower.startswith("x-amz-") else name), value


class S3Handler(BaseHandler):
    def clear(self) -> None:
        super().clear()
        self._headers = _S3ResponseHeaders(self._headers)

    def initialize(self, ctx: Any, route: str) -> None:  # type: ignore[override]
        super().initialize(ctx, route)
        self.set_header("x-amz-request-id", self.request_id)

    def set_default_headers(self) -> None:
        super().set_default_headers()
        rid = getattr(self, "request_id", None)
        if rid:
            self.set_header("x-amz-request-id", rid)

    sigv4: SigV4Context | None = None
    # The versionId of x-amz-copy-source, once :meth:`copy_source` read it.
    copy_source_version: str | None = None
    level: Level  # which resource the subclass serves: service, bucket or object
    operation: Operation

    async def prepare(self) -> None:
        """Authenticate, then identify the S3 operation (:func:`.operations.resolve`): one
        this store does not implement is refused here, before any handler code runs."""
        self.sigv4 = None
        await self._authenticate_s3()
        self.operation = resolve(
            self.request.method or "GET",
            self.level,
            {
                name: values[0].decode("utf-8", "replace") if values else ""
                for name, values in self.request.query_arguments.items()
            },
            self.request.headers.keys(),
            self.path_args[0] if self.path_args else None,
        )
        if self.request.headers.get("x-amz-acl") == "public-read" and self.path_args:
            await self.ctx.artifacts.check_public_acl(self.path_args[0])  # Block Public Access

    async def _authenticate_s3(self) -> None:
        auth = self.ctx.authentication
        if auth.enabled:
            await self.screen_credentials()
            try:
                if await self._verify_signature():
                    return
            except StoreError as exc:
                await self.credentials_failed(exc)
                raise
        await self.authenticate()

    async def _verify_signature(self) -> bool:
        """A SigV4 or SigV2 signature (header or presigned): True when one was verified."""
        auth = self.ctx.authentication
        request = SigV4Request(
            self.request.method or "GET",
            self.request.path,
            self.request.query,
            list(self.request.headers.get_all()),
        )
        result = await auth.sigv4.verify(request)
        if result is not None:
            self.principal, self.sigv4 = result.principal, result.context
            current_principal.set(self.principal)  # who wrote it, who did it (events)
            return True
        legacy = await verify_sigv2(
            request.method,
            self.request.path,
            self.request.query,
            self.request.headers.get_all(),
            auth.s3_secret,
        )
        if legacy is not None:
            self.principal = legacy
            current_principal.set(legacy)
            return True
        return False

    async def run_operation(self, *args: str) -> None:
        """Run the identified operation: ``op_<OperationName>`` of the subclass."""
        await getattr(self, f"op_{self.operation.name}")(*args)

    get = head = put = post = delete = run_operation

    async def copy_source(self, bucket: str, key: str) -> ObjectRecord:
        """The source of CopyObject / UploadPartCopy, authorized for reading it and writing
        ``bucket/key``, its bucket's verification gate applied as for a GetObject (enforce:
        AccessDenied; audit: recorded) and its ``x-amz-copy-source-if-*`` conditions held."""
        raw = self.request.headers["x-amz-copy-source"]
        path, _, query = raw.partition("?")
        versions = urllib.parse.parse_qs(query, keep_blank_values=True).get("versionId")
        version = versions[0] if versions else None
        source_bucket, source_key = parse_copy_source(path, "x-amz-copy-source")
        action = "s3:GetObjectVersion" if version is not None else "s3:GetObject"
        await self.authorize(action, f"{source_bucket}/{source_key}")
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        source = await self.ctx.artifacts.head_object(source_bucket, source_key, version)
        await self.check_gate(source)
        _check_copy_conditions(self.request.headers, source)
        if source.version_id or version is not None:
            self.set_header("x-amz-copy-source-version-id", s3_version_id(source))
        self.copy_source_version = version
        return source

    def acted_version(self) -> str | None:
        return self.arg("versionId")  # GET/HEAD/DELETE/…?versionId= acts on that version

    async def set_version_header(self, record: ObjectRecord) -> None:
        """``x-amz-version-id`` of an object written or read: versions get one, the null
        version "null" in a bucket whose versioning is enabled or suspended; a bucket that
        never had versioning answers without it, as AWS does."""
        if (
            record.version_id
            or self.has("versionId")
            or await self.ctx.artifacts.versioning_seen(record.bucket)
        ):
            self.set_header("x-amz-version-id", s3_version_id(record))

    def challenge_headers(self, error: StoreError) -> dict[str, str]:
        return {}  # S3 answers 403 AccessDenied, never a Basic challenge

    def render_error(self, error: StoreError) -> None:
        code, status = s3_code(error, content_sha256=self._content_sha256_declared())
        self.set_status(status)
        self.set_header("Content-Type", "application/xml")
        body = xml.render(
            "Error",
            {
                "Code": code,
                "Message": error.message,
                "Resource": self.request.path,
                "RequestId": self.request_id,
                # AWS's extra elements (Region, HeadersNotSigned, ...): detail named as S3 does.
                **{
                    name: value
                    for name, value in error.detail.items()
                    if name[:1].isupper() and isinstance(value, str | int)
                },
            },
            namespace=False,
        )
        self.finish(body)

    def _content_sha256_declared(self) -> bool:
        value = self.request.headers.get("x-amz-content-sha256", "")
        return len(value) == 64

    def write_xml(self, root: str, children: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/xml")
        self.finish(xml.render(root, children))

    def arg(self, name: str) -> str | None:
        """A query parameter exactly as sent (the last if repeated): S3 echoes ``prefix``,
        ``delimiter`` and markers byte for byte, so no stripping of whitespace or control
        characters (Tornado's ``get_query_argument`` does both)."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise StoreError("InvalidArgument", f"{name} is not valid UTF-8") from None

    def url_encoding(self) -> bool:
        """``encoding-type=url`` asked for (any other value is refused)."""
        encoding = self.arg("encoding-type")
        if encoding not in (None, "", "url"):
            raise StoreError("InvalidArgument", "encoding-type must be url")
        return encoding == "url"

    def has(self, name: str) -> bool:
        return name in self.request.query_arguments

    def int_arg(self, name: str, default: int, low: int = 0, high: int = MAX_KEYS) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise StoreError("InvalidArgument", f"{name} must be an integer") from None
        if value < low:
            raise StoreError("InvalidArgument", f"{name} must be at least {low}")
        return min(value, high)

    def canned_acl(self) -> bool | None:
        """``x-amz-acl``: True for public-read, False for private, None when absent."""
        acl = self.request.headers.get("x-amz-acl")
        if acl is None:
            return None
        if acl not in CANNED_ACLS:
            raise unsupported_acl(acl)
        return CANNED_ACLS[acl]

    def condition_values(self, action: str) -> dict[str, str]:
        """Policy condition keys of this S3 request: a listing's ``s3:prefix``,
        ``s3:delimiter`` and ``s3:max-keys``; the tags a write sets
        (``s3:RequestObjectTag/<key>``: the ``x-amz-tagging`` header, or PutObjectTagging's
        body). Tags that break S3's limits are refused after authorization, as ever."""
        operation = getattr(self, "operation", None)
        name = operation.name if operation is not None else ""
        if name in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
            return listing_values(self.arg("prefix"), self.arg("delimiter"), self.arg("max-keys"))
        if action not in ("s3:PutObject", "s3:PutObjectTagging"):
            return {}
        try:
            if name == "PutObjectTagging":
                return request_tag_values(parse_tagging(getattr(self, "body", b"")))
            header = self.request.headers.get("x-amz-tagging")
            return request_tag_values(parse_tagging_header(header) if header else None)
        except StoreError:
            return {}

    async def header_tags(self, bucket: str, key: str) -> dict[str, str] | None:
        """The tags of a write's ``x-amz-tagging`` header (None: no header). As on AWS, a
        write that sets tags needs ``s3:PutObjectTagging`` besides ``s3:PutObject``; tags
        beyond S3's limits are ``InvalidTag`` before anything is stored."""
        value = self.request.headers.get("x-amz-tagging")
        if value is None:
            return None
        await self.authorize("s3:PutObjectTagging", f"{bucket}/{key}")
        return parse_tagging_header(value)

    def put_options(self) -> PutOptions:
        """Content type, user metadata and stored headers of a PutObject-like request."""
        headers = self.request.headers
        stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
        # aws-chunked is how the body travelled, never how it is stored (S3 drops it).
        encoding = stored_content_encoding(stored.pop("Content-Encoding", None))
        if encoding:
            stored["Content-Encoding"] = encoding
        return PutOptions(
            content_type=headers.get("Content-Type") or None,
            user_metadata={
                name.lower(): decode_metadata_value(value)
                for name, value in headers.get_all()
                if name.lower().startswith("x-amz-meta-")
            },
            headers=stored,
            if_absent=self.create_only(),
            expires_at=(
                parse_expires_at(headers[EXPIRES_HEADER]) if EXPIRES_HEADER in headers else None
            ),
        )

    async def set_expiration_header(self, record: ObjectRecord) -> None:
        """``x-amz-expiration`` when the object expires (its own expiry or a bucket rule)."""
        expiration = await self.ctx.artifacts.expiration(record)
        if expiration is not None:
            self.set_header("x-amz-expiration", expiration.s3_header())

    def acl_xml(self, public: bool) -> None:
        grants: list[dict[str, Any]] = [
            {
                "Grantee": {**OWNER, "Type": "CanonicalUser"},
                "Permission": "FULL_CONTROL",
            }
        ]
        if public:
            grants.append(
                {
                    "Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                    "Permission": "READ",
                }
            )
        self.write_xml(
            "AccessControlPolicy", {"Owner": OWNER, "AccessControlList": {"Grant": grants}}
        )

    def acl_from_request(self) -> bool:
        """PutBucketAcl / PutObjectAcl: the canned ACL header, or an AccessControlPolicy body
        granting READ to AllUsers (public) or nothing more (private)."""
        canned = self.canned_acl()
        if canned is not None:
            return canned
        body = self.request.body
        if not body:
            raise StoreError("MalformedXML", "send x-amz-acl or an AccessControlPolicy body")
        policy = xml.parse(body, "AccessControlPolicy")
        public = False
        for acl in xml.children(policy, "AccessControlList"):
            for grant in xml.children(acl, "Grant"):
                uri = "".join(g.text or "" for g in grant.iter() if xml.local_name(g.tag) == "URI")
                if uri.endswith("/AllUsers"):
                    if xml.child_text(grant, "Permission") != "READ":
                        raise StoreError("NotImplemented", "AllUsers may only be granted READ here")
                    public = True
        return public


def unsupported_acl(acl: str) -> StoreError:
    return StoreError(
        "NotImplemented",
        f"canned ACL {acl!r} is not supported: access here is private or public-read "
        "(bucket-owner-full-control and bucket-owner-read mean private, objects being owned by "
        "the bucket's owner); grant anything else with a bucket policy",
    )


def decode_metadata_value(raw: str) -> str:
    """A user metadata value as S3 stores it: RFC 2047 encoded-words (``=?UTF-8?B?…?=``, how
    SDKs send non-ASCII) decoded. A raw non-ASCII value (Tornado reads header bytes as
    ISO-8859-1) is taken as UTF-8 when its bytes are UTF-8, else as ISO-8859-1."""
    words = _ENCODED_WORD_RE.findall(raw)
    if words:
        if any(kind in "bB" and not _BASE64_RE.fullmatch(text) for kind, text in words):
            return raw  # not an encoded-word after all (Python would decode it to nothing)
        try:
            return str(email.header.make_header(email.header.decode_header(raw)))
        except (email.errors.HeaderParseError, LookupError, UnicodeDecodeError):
            return raw  # not decodable after all: kept as sent
    if not raw.isascii():
        try:
            return raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return raw
    return raw


def encode_metadata_value(value: str) -> str:
    """A stored user metadata value as S3 returns it: unchanged when printable US-ASCII, else
    one RFC 2047 encoded-word over its UTF-8 (mail-safe; what AWS answers)."""
    if all(c == "\t" or " " <= c <= "~" for c in value):
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def verify_body_integrity(headers: Any, body: bytes, *, required: bool) -> None:
    """Content-MD5, or an ``x-amz-checksum-*`` header (what boto3 ≥ 1.36 sends instead)."""
    expectation = parse_checksum_headers(headers.get_all())
    if required and expectation.content_md5 is None and expectation.algorithm is None:
        raise StoreError("InvalidRequest", "Content-MD5 or an x-amz-checksum-* header is required")
    checksums = BodyChecksums(expectation)
    checksums.update(body)
    checksums.verify()


def _check_copy_conditions(headers: Any, source: ObjectRecord) -> None:
    mapped = {
        "If-Match": headers.get("x-amz-copy-source-if-match"),
        "If-None-Match": headers.get("x-amz-copy-source-if-none-match"),
        "If-Modified-Since": headers.get("x-amz-copy-source-if-modified-since"),
        "If-Unmodified-Since": headers.get("x-amz-copy-source-if-unmodified-since"),
    }
    present = {k: v for k, v in mapped.items() if v is not None}
    if not present:
        return
    try:
        check_preconditions(present, source.etag, source.updated_at, is_read=True)
    except NotModified:
        raise StoreError("PreconditionFailed", "a copy-source condition does not hold") from None
