"""The S3 API, path-style, at ``/`` and ``/s3`` (DESIGN.md §3).

Handlers parse S3's headers, query subresources and XML, call the same services as ``/v1``
(an object put here is the artifact ``/v1`` shows, with its sha256), and render S3's XML.
Errors come from the one catalogue, renamed to S3's codes where S3 has its own.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import tornado.httputil
import tornado.ioloop
import tornado.web

from ...auth.awschunked import AwsChunkedDecoder, is_aws_chunked, stored_content_encoding
from ...auth.sigv2 import verify_sigv2
from ...auth.sigv4 import PayloadMode, SigV4Context, SigV4Request, payload_mode
from ...errors import CATALOGUE, NotModified, StoreError
from ...metadata import MultipartUpload, ObjectRecord
from ...services.artifacts import Listing, PutOptions, PutSession, decode_token, validate_key
from ...services.checksums import BodyChecksums, parse_checksum_headers
from ...services.multipart import PartSession, check_part_number
from ..base import BaseHandler, Route, UploadHandler, route
from ..httputil import (
    ByteRange,
    check_preconditions,
    http_date,
    parse_copy_source,
    parse_range,
    quote_etag,
)
from . import xml

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
}
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
CANNED_ACLS = {"private": False, "public-read": True}
# Bucket subresources S3 tools may probe that this store does not implement.
UNSUPPORTED_BUCKET_SUBRESOURCES = (
    "lifecycle",
    "cors",
    "tagging",
    "encryption",
    "website",
    "logging",
    "replication",
    "object-lock",
    "ownershipControls",
    "publicAccessBlock",
    "notification",
    "requestPayment",
    "accelerate",
)
OWNER = {"ID": "zot-artifact-store", "DisplayName": "zot-artifact-store"}
STORAGE_CLASS = "STANDARD"


# ---- helpers ----------------------------------------------------------------------------------
def s3_code(error: StoreError, *, content_sha256: bool = False) -> tuple[str, int]:
    """S3's code and status for one of our errors."""
    code = error.code
    if code == "ChecksumMismatch" and "expected" in error.detail:
        code = "XAmzContentSHA256Mismatch" if content_sha256 else "BadDigest"
    code = _S3_CODES.get(code, code)
    if code == "InvalidKey":
        code = "KeyTooLongError" if "bytes long" in error.message else "InvalidArgument"
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

    async def prepare(self) -> None:
        self.sigv4 = None
        auth = self.ctx.authentication
        if auth.enabled:
            self.check_lockout()
            request = SigV4Request(
                self.request.method or "GET",
                self.request.path,
                self.request.query,
                list(self.request.headers.get_all()),
            )
            result = await auth.sigv4.verify(request)
            if result is not None:
                self.principal, self.sigv4 = result.principal, result.context
                return
            legacy = await verify_sigv2(
                request.method,
                self.request.path,
                self.request.query,
                self.request.headers.get_all(),
                auth.s3_secret,
            )
            if legacy is not None:
                self.principal = legacy
                return
        await self.authenticate()

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
        return self.get_query_argument(name, None)

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
            raise StoreError(
                "NotImplemented", f"canned ACL {acl!r}: only private and public-read exist here"
            )
        return CANNED_ACLS[acl]

    def put_options(self) -> PutOptions:
        """Content type, user metadata and stored headers of a PutObject-like request."""
        headers = self.request.headers
        return PutOptions(
            content_type=headers.get("Content-Type") or None,
            user_metadata={
                name.lower(): value
                for name, value in headers.get_all()
                if name.lower().startswith("x-amz-meta-")
            },
            headers={name: headers[name] for name in STORED_HEADERS if name in headers},
            if_absent=self.create_only(),
        )

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


# ---- service ----------------------------------------------------------------------------------
class ServiceHandler(S3Handler):
    async def get(self) -> None:
        await self.authorize("s3:ListAllMyBuckets", "")
        buckets = await self.ctx.artifacts.list_buckets()
        self.write_xml(
            "ListAllMyBucketsResult",
            {
                "Owner": OWNER,
                "Buckets": {
                    "Bucket": [
                        {"Name": b.name, "CreationDate": xml.s3_time(b.created_at)} for b in buckets
                    ]
                },
            },
        )


# ---- buckets ----------------------------------------------------------------------------------
class BucketHandler(S3Handler):
    async def put(self, name: str) -> None:
        if self.has("acl"):
            await self.authorize("s3:PutBucketAcl", name)
            bucket = await self.ctx.artifacts.get_bucket(name)
            bucket.public_read = self.acl_from_request()
            await self.ctx.artifacts.metadata.update_bucket(bucket)
            self.finish()
            return
        if self.has("policy"):
            await self.authorize("s3:PutBucketPolicy", name)
            await self.ctx.authorizer.policies.put_bucket_policy(name, self.policy_body())
            self.audit("s3:PutBucketPolicy", name, True, "policy set")
            self.set_status(204)
            self.finish()
            return
        for sub in ("versioning", *UNSUPPORTED_BUCKET_SUBRESOURCES):
            if self.has(sub):
                raise StoreError("NotImplemented", f"PUT ?{sub} is not supported")
        await self.authorize("s3:CreateBucket", name)
        if self.request.body:
            config = xml.parse(self.request.body, "CreateBucketConfiguration")
            xml.child_text(config, "LocationConstraint")  # any region is this store
        public = self.canned_acl()
        await self.ctx.artifacts.create_bucket(name, self.principal.id, public_read=bool(public))
        self.set_header("Location", f"/{name}")
        self.finish()

    async def head(self, name: str) -> None:
        await self.authorize("s3:ListBucket", name)
        await self.ctx.artifacts.get_bucket(name)
        self.set_header("x-amz-bucket-region", "us-east-1")
        self.finish()

    def policy_body(self) -> Any:
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError):
            raise StoreError("MalformedPolicy", "the policy is not valid JSON") from None

    async def delete(self, name: str) -> None:
        if self.has("policy"):
            await self.authorize("s3:DeleteBucketPolicy", name)
            await self.ctx.authorizer.policies.delete_bucket_policy(name)
            self.audit("s3:DeleteBucketPolicy", name, True, "policy removed")
            self.set_status(204)
            self.finish()
            return
        for sub in UNSUPPORTED_BUCKET_SUBRESOURCES:
            if self.has(sub):
                raise StoreError("NotImplemented", f"DELETE ?{sub} is not supported")
        await self.authorize("s3:DeleteBucket", name)
        await self.ctx.artifacts.delete_bucket(name)
        self.set_status(204)
        self.finish()

    async def get(self, name: str) -> None:
        if self.has("location"):
            await self.authorize("s3:GetBucketLocation", name)
            await self.ctx.artifacts.get_bucket(name)
            self.write_xml("LocationConstraint", {})  # empty: us-east-1
        elif self.has("acl"):
            await self.authorize("s3:GetBucketAcl", name)
            bucket = await self.ctx.artifacts.get_bucket(name)
            self.acl_xml(bucket.public_read)
        elif self.has("versioning"):
            await self.authorize("s3:GetBucketVersioning", name)
            await self.ctx.artifacts.get_bucket(name)
            self.write_xml("VersioningConfiguration", {})  # never enabled
        elif self.has("policy"):
            await self.authorize("s3:GetBucketPolicy", name)
            doc = await self.ctx.authorizer.policies.get_bucket_policy(name)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(doc))
        elif self.has("uploads"):
            await self.authorize("s3:ListBucketMultipartUploads", name)
            await self._list_uploads(name)
        else:
            for sub in UNSUPPORTED_BUCKET_SUBRESOURCES:
                if self.has(sub):
                    raise StoreError("NotImplemented", f"GET ?{sub} is not supported")
            await self.authorize("s3:ListBucket", name)
            if self.has("versions"):
                await self._list(name, "versions")
            elif self.arg("list-type") == "2":
                await self._list(name, "v2")
            else:
                await self._list(name, "v1")

    async def _list(self, name: str, style: str) -> None:
        prefix = self.arg("prefix") or ""
        delimiter = self.arg("delimiter") or ""
        max_keys = self.int_arg("max-keys", MAX_KEYS)
        encoding = self.arg("encoding-type")
        if encoding not in (None, "", "url"):
            raise StoreError("InvalidArgument", "encoding-type must be url")
        enc = encoding == "url"
        if style == "v2":
            token = self.arg("continuation-token")
            start_after = self.arg("start-after")
            after = decode_token(token) if token else start_after
        elif style == "versions":
            after = self.arg("key-marker") or None
        else:
            after = self.arg("marker") or None
        bucket = await self.ctx.artifacts.get_bucket(name)
        if max_keys == 0:
            listing = Listing([], [], False)
        else:
            listing = await self.ctx.artifacts.list_objects(
                name, prefix=prefix, delimiter=delimiter, start_after=after, limit=max_keys
            )
        fetch_owner = style != "v2" or self.arg("fetch-owner") == "true"

        def entry(o: ObjectRecord) -> dict[str, Any]:
            out: dict[str, Any] = {
                "Key": xml.url_encode(o.key, enc),
                "LastModified": xml.s3_time(o.updated_at),
                "ETag": quote_etag(o.etag),
                "Size": o.size,
                "StorageClass": STORAGE_CLASS,
            }
            if fetch_owner:
                out["Owner"] = OWNER
            return out

        common = [{"Prefix": xml.url_encode(p, enc)} for p in listing.common_prefixes]
        base: dict[str, Any] = {
            "Name": bucket.name,
            "Prefix": xml.url_encode(prefix, enc),
        }
        if style == "v2":
            self.write_xml(
                "ListBucketResult",
                {
                    **base,
                    "Delimiter": xml.url_encode(delimiter, enc) or None,
                    "MaxKeys": max_keys,
                    "EncodingType": "url" if enc else None,
                    "KeyCount": len(listing.objects) + len(listing.common_prefixes),
                    "IsTruncated": listing.truncated,
                    "ContinuationToken": self.arg("continuation-token") or None,
                    "NextContinuationToken": listing.next_token,
                    "StartAfter": xml.url_encode(self.arg("start-after"), enc) or None,
                    "Contents": [entry(o) for o in listing.objects],
                    "CommonPrefixes": common,
                },
            )
        elif style == "versions":
            versions = [
                {
                    "Key": xml.url_encode(o.key, enc),
                    "VersionId": "null",
                    "IsLatest": True,
                    "LastModified": xml.s3_time(o.updated_at),
                    "ETag": quote_etag(o.etag),
                    "Size": o.size,
                    "StorageClass": STORAGE_CLASS,
                    "Owner": OWNER,
                }
                for o in listing.objects
            ]
            self.write_xml(
                "ListVersionsResult",
                {
                    **base,
                    "KeyMarker": xml.url_encode(self.arg("key-marker") or "", enc),
                    "VersionIdMarker": self.arg("version-id-marker") or "",
                    "NextKeyMarker": (
                        xml.url_encode(listing.next_marker, enc) if listing.truncated else None
                    ),
                    "NextVersionIdMarker": "null" if listing.truncated else None,
                    "MaxKeys": max_keys,
                    "Delimiter": xml.url_encode(delimiter, enc) or None,
                    "EncodingType": "url" if enc else None,
                    "IsTruncated": listing.truncated,
                    "Version": versions,
                    "CommonPrefixes": common,
                },
            )
        else:
            self.write_xml(
                "ListBucketResult",
                {
                    **base,
                    "Marker": xml.url_encode(self.arg("marker") or "", enc),
                    "NextMarker": (
                        xml.url_encode(listing.next_marker, enc) if listing.truncated else None
                    ),
                    "MaxKeys": max_keys,
                    "Delimiter": xml.url_encode(delimiter, enc) or None,
                    "EncodingType": "url" if enc else None,
                    "IsTruncated": listing.truncated,
                    "Contents": [entry(o) for o in listing.objects],
                    "CommonPrefixes": common,
                },
            )

    async def _list_uploads(self, name: str) -> None:
        prefix = self.arg("prefix") or ""
        key_marker = self.arg("key-marker") or None
        upload_marker = self.arg("upload-id-marker") or None
        limit = self.int_arg("max-uploads", MAX_KEYS, low=1)
        await self.ctx.artifacts.get_bucket(name)
        uploads, truncated = await self.ctx.metadata.list_multipart(
            name, prefix, key_marker, upload_marker, limit
        )
        last = uploads[-1] if uploads else None
        self.write_xml(
            "ListMultipartUploadsResult",
            {
                "Bucket": name,
                "KeyMarker": key_marker or "",
                "UploadIdMarker": upload_marker or "",
                "NextKeyMarker": last.key if truncated and last else None,
                "NextUploadIdMarker": last.upload_id if truncated and last else None,
                "Prefix": prefix,
                "MaxUploads": limit,
                "IsTruncated": truncated,
                "Upload": [
                    {
                        "Key": u.key,
                        "UploadId": u.upload_id,
                        "Initiator": OWNER,
                        "Owner": OWNER,
                        "StorageClass": STORAGE_CLASS,
                        "Initiated": xml.s3_time(u.initiated_at),
                    }
                    for u in uploads
                ],
            },
        )

    async def post(self, name: str) -> None:
        if not self.has("delete"):
            raise StoreError("NotImplemented", "unsupported POST on a bucket")
        await self._delete_objects(name)

    async def _delete_objects(self, name: str) -> None:
        body = self.request.body
        verify_body_integrity(self.request.headers, body, required=True)
        request = xml.parse(body, "Delete")
        quiet = (xml.child_text(request, "Quiet") or "").strip().lower() == "true"
        keys = [xml.child_text(o, "Key") for o in xml.children(request, "Object")]
        if len(keys) > MAX_DELETE_KEYS:
            raise StoreError("MalformedXML", f"at most {MAX_DELETE_KEYS} keys per request")
        if not keys:
            raise StoreError("MalformedXML", "the request names no objects")
        await self.ctx.artifacts.get_bucket(name)
        deleted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for key in keys:
            try:
                if key is None:
                    raise StoreError("InvalidArgument", "an <Object> has no <Key>")
                await self.authorize("s3:DeleteObject", f"{name}/{key}")
                await self.ctx.artifacts.delete_object(name, key)
                if not quiet:
                    deleted.append({"Key": key})
            except StoreError as exc:
                code, _ = s3_code(exc)
                errors.append({"Key": key or "", "Code": code, "Message": exc.message})
        self.write_xml("DeleteResult", {"Deleted": deleted, "Error": errors})


def verify_body_integrity(headers: Any, body: bytes, *, required: bool) -> None:
    """Content-MD5, or an ``x-amz-checksum-*`` header (what boto3 ≥ 1.36 sends instead)."""
    expectation = parse_checksum_headers(headers.get_all())
    if required and expectation.content_md5 is None and expectation.algorithm is None:
        raise StoreError("InvalidRequest", "Content-MD5 or an x-amz-checksum-* header is required")
    checksums = BodyChecksums(expectation)
    checksums.update(body)
    checksums.verify()


# ---- objects ----------------------------------------------------------------------------------
@tornado.web.stream_request_body
class ObjectHandler(S3Handler, UploadHandler):
    """Objects, their ACLs and multipart uploads. PUT bodies stream into the blob store."""

    missing_object_code = "NoSuchKey"

    async def prepare(self) -> None:
        await super().prepare()
        self.session = None
        self.decoder: AwsChunkedDecoder | None = None
        self.checksums: BodyChecksums | None = None
        self.small_body = bytearray()
        bucket, key = self.path_args
        method = self.request.method
        if method != "PUT" or self.has("acl") or "x-amz-copy-source" in self.request.headers:
            return
        self.request.connection.set_max_body_size(  # type: ignore[union-attr]
            self.ctx.config.http.maxObjectSize
        )
        options = self._streaming_options()
        if self.has("uploadId"):
            await self.authorize("s3:PutObject", f"{bucket}/{key}")
            upload = await self.ctx.multipart.get(bucket, key, self.arg("uploadId") or "")
            number = self._part_number()
            self.session = await self.ctx.multipart.begin_part(upload, number, options)
        else:
            await self.authorize("s3:PutObject", f"{bucket}/{key}")
            validate_key(key)
            await self.check_write_preconditions(bucket, key)
            self.session = await self.ctx.artifacts.begin_put(bucket, key, options)

    def _part_number(self) -> int:
        try:
            return check_part_number(int(self.arg("partNumber") or ""))
        except ValueError:
            raise StoreError("InvalidArgument", "partNumber must be an integer") from None

    def _streaming_options(self) -> PutOptions:
        """PutOptions for a streamed body, and how to read it: ``self.decoder`` for
        aws-chunked framing, ``self.checksums`` for the flexible checksum S3 promised."""
        headers = self.request.headers
        options = self.put_options()
        options.md5_etag = True
        mode = (
            self.sigv4.payload_mode
            if self.sigv4
            else payload_mode(headers.get("x-amz-content-sha256"))
        )
        chunked = is_aws_chunked(headers.get("Content-Encoding")) or bool(
            mode and mode.is_streaming
        )
        length = headers.get("Content-Length")
        if length is None and "chunked" not in headers.get("Transfer-Encoding", "").lower():
            raise StoreError("MissingContentLength", "PUT needs a Content-Length")
        declared = headers.get("x-amz-decoded-content-length") if chunked else length
        if declared is not None:
            try:
                options.expected_size = int(declared)
            except ValueError:
                raise StoreError("InvalidRequest", "the content length is not a number") from None
            if options.expected_size > self.ctx.config.http.maxObjectSize:
                raise StoreError(
                    "EntityTooLarge",
                    f"objects may be at most {self.ctx.config.http.maxObjectSize} bytes",
                )
        if chunked:
            if mode is None or not mode.is_streaming:
                raise StoreError(
                    "InvalidRequest", "aws-chunked bodies need a STREAMING-* x-amz-content-sha256"
                )
            self.decoder = (
                AwsChunkedDecoder.from_context(self.sigv4)
                if self.sigv4
                else AwsChunkedDecoder(
                    mode,
                    decoded_content_length=options.expected_size,
                    expected_trailers=headers.get("x-amz-trailer", "").split(","),
                )
            )
            encoding = stored_content_encoding(headers.get("Content-Encoding"))
            options.headers.pop("Content-Encoding", None)
            if encoding:
                options.headers["Content-Encoding"] = encoding
        content_sha256 = headers.get("x-amz-content-sha256", "").strip()
        if mode is PayloadMode.SHA256:
            try:
                bytes.fromhex(content_sha256)
            except ValueError:
                raise StoreError("InvalidDigest", "x-amz-content-sha256 is not hex") from None
            options.expected_sha256 = "sha256:" + content_sha256.lower()
        expectation = parse_checksum_headers(headers.get_all())
        if expectation.content_md5 is not None:
            options.expected_md5 = expectation.content_md5.hex()  # the writer computes MD5
            expectation = dataclasses.replace(expectation, content_md5=None)
        if expectation.algorithm == "SHA256" and expectation.expected is not None:
            # The blob's own digest checks it; no second SHA-256 pass.
            declared_sha = "sha256:" + expectation.expected.hex()
            if options.expected_sha256 not in (None, declared_sha):
                raise StoreError(
                    "BadDigest", "x-amz-checksum-sha256 and x-amz-content-sha256 differ"
                )
            options.expected_sha256 = declared_sha
            options.checksums = {"sha256": base64.b64encode(expectation.expected).decode()}
        elif expectation.algorithm is not None:
            self.checksums = BodyChecksums(expectation)
        public = self.canned_acl()
        if public:
            options.headers["x-amz-acl"] = "public-read"
        return options

    async def receive(self, chunk: bytes) -> None:
        if self.session is not None:
            pieces = self.decoder.feed(chunk) if self.decoder is not None else (chunk,)
            for piece in pieces:
                if self.checksums is not None:
                    self.checksums.update(piece)
                await self.session.write(piece)
        else:
            self.small_body += chunk
            if len(self.small_body) > xml.MAX_XML_BODY:
                raise StoreError("EntityTooLarge", "request body too large")

    @property
    def body(self) -> bytes:
        return bytes(self.small_body)

    # -- PUT: PutObject, UploadPart, CopyObject, UploadPartCopy, PutObjectAcl --
    async def put(self, bucket: str, key: str) -> None:
        if self.has("acl"):
            await self.authorize("s3:PutObjectAcl", f"{bucket}/{key}")
            self.request.body = self.body
            public = self.acl_from_request()
            record = await self.ctx.artifacts.head_object(bucket, key)
            record.public_read = public
            await self.ctx.metadata.put_object(record)
            self.finish()
            return
        if "x-amz-copy-source" in self.request.headers:
            await self._copy(bucket, key)
            return
        if self._finished:  # the body was refused while it streamed in
            return
        session = self.session
        assert session is not None
        self.session = None
        try:
            self._verify_body(session)
            if isinstance(session, PartSession):
                part = await session.finish_part()
                self.set_header("ETag", quote_etag(part.etag))
                for algorithm, value in part.checksums.items():
                    self.set_header(f"x-amz-checksum-{algorithm}", value)
                self.finish()
                return
            public = session.options.headers.pop("x-amz-acl", None) == "public-read"
            record, _ = await session.finish()
            if public:
                record.public_read = True
                await self.ctx.metadata.put_object(record)
        finally:
            await session.abort()
        self.set_header("ETag", quote_etag(record.etag))
        for algorithm, value in record.checksums.items():
            self.set_header(f"x-amz-checksum-{algorithm}", value)
        self.finish()

    def _verify_body(self, session: PutSession) -> None:
        """The end of the framing and the flexible checksum, before anything is published
        (the caller aborts the session when this raises)."""
        trailers: dict[str, str] = {}
        if self.decoder is not None:
            self.decoder.finish()
            trailers = self.decoder.trailers
        if self.checksums is not None:
            verified = self.checksums.verify(trailers)
            session.options.checksums = {
                name.lower(): value for name, value in verified.items() if name != "MD5"
            }

    async def _copy(self, bucket: str, key: str) -> None:
        source_bucket, source_key = parse_copy_source(
            self.request.headers["x-amz-copy-source"].split("?", 1)[0], "x-amz-copy-source"
        )
        await self.authorize("s3:GetObject", f"{source_bucket}/{source_key}")
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        source = await self.ctx.artifacts.head_object(source_bucket, source_key)
        # CopyObject and UploadPartCopy read their source: its bucket's verification gate
        # decides as for a GetObject (enforce: AccessDenied; audit: recorded).
        await self.check_gate(source)
        _check_copy_conditions(self.request.headers, source)
        if self.has("uploadId"):
            upload = await self.ctx.multipart.get(bucket, key, self.arg("uploadId") or "")
            start, end = _copy_range(self.request.headers.get("x-amz-copy-source-range"), source)
            part = await self.ctx.multipart.copy_part(
                upload, self._part_number(), source, start, end
            )
            self.write_xml(
                "CopyPartResult",
                {"ETag": quote_etag(part.etag), "LastModified": xml.s3_time(part.last_modified)},
            )
            return
        directive = self.request.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise StoreError("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE")
        if directive == "COPY" and (source_bucket, source_key) == (bucket, key):
            raise StoreError(
                "InvalidRequest",
                "this copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata",
            )
        replace = self.put_options() if directive == "REPLACE" else None
        if replace is not None:
            replace.labels = source.labels
        public = self.canned_acl()
        record, _ = await self.ctx.artifacts.copy_object(source, bucket, key, replace)
        if public:
            record.public_read = True
            await self.ctx.metadata.put_object(record)
        self.write_xml(
            "CopyObjectResult",
            {"ETag": quote_etag(record.etag), "LastModified": xml.s3_time(record.updated_at)},
        )

    # -- GET / HEAD --
    async def get(self, bucket: str, key: str) -> None:
        if self.has("acl"):
            await self.authorize("s3:GetObjectAcl", f"{bucket}/{key}")
            record = await self.ctx.artifacts.head_object(bucket, key)
            self.acl_xml(record.public_read)
            return
        if self.has("uploadId"):
            await self._list_parts(bucket, key)
            return
        await self._read(bucket, key, send_body=True)

    async def head(self, bucket: str, key: str) -> None:
        await self._read(bucket, key, send_body=False)

    async def _read(self, bucket: str, key: str, *, send_body: bool) -> None:
        await self.authorize("s3:GetObject", f"{bucket}/{key}")
        record = await self.ctx.artifacts.head_object(bucket, key)
        self.set_header("ETag", quote_etag(record.etag))
        self.set_header("Last-Modified", http_date(record.updated_at))
        try:
            check_preconditions(self.request.headers, record.etag, record.updated_at, is_read=True)
        except NotModified:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", record.content_type)
        self.set_header("Accept-Ranges", "bytes")
        for name, value in record.headers.items():
            self.set_header(name, value)
        for name, value in record.user_metadata.items():
            self.set_header(name, value)
        for arg, header in RESPONSE_OVERRIDES.items():
            value = self.arg(arg)
            if value is not None:
                self.set_header(header, value)
        part_number = self.arg("partNumber")
        if part_number is not None:
            rng = _part_range(record, part_number)
            self.set_header("x-amz-mp-parts-count", str(max(1, len(record.parts))))
        else:
            rng = parse_range(self.request.headers.get("Range"), record.size)
        if rng is None and self.request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            # Only for the whole object: a client checks them against the body it receives.
            for algorithm, value in record.checksums.items():
                self.set_header(f"x-amz-checksum-{algorithm}", value)
        await self.send_object(record, rng, send_body=send_body)

    async def _list_parts(self, bucket: str, key: str) -> None:
        await self.authorize("s3:ListMultipartUploadParts", f"{bucket}/{key}")
        upload = await self.ctx.multipart.get(bucket, key, self.arg("uploadId") or "")
        marker = self.int_arg("part-number-marker", 0, high=10_000)
        limit = self.int_arg("max-parts", MAX_KEYS, low=1)
        parts, truncated = await self.ctx.metadata.list_parts(upload.upload_id, marker, limit)
        self.write_xml(
            "ListPartsResult",
            {
                "Bucket": bucket,
                "Key": key,
                "UploadId": upload.upload_id,
                "Initiator": OWNER,
                "Owner": OWNER,
                "StorageClass": STORAGE_CLASS,
                "PartNumberMarker": marker,
                "NextPartNumberMarker": parts[-1].part_number if parts else marker,
                "MaxParts": limit,
                "IsTruncated": truncated,
                "Part": [
                    {
                        "PartNumber": p.part_number,
                        "LastModified": xml.s3_time(p.last_modified),
                        "ETag": quote_etag(p.etag),
                        "Size": p.size,
                    }
                    for p in parts
                ],
            },
        )

    # -- DELETE: DeleteObject, AbortMultipartUpload --
    async def delete(self, bucket: str, key: str) -> None:
        await self.authorize("s3:DeleteObject", f"{bucket}/{key}")
        if self.has("uploadId"):
            upload = await self.ctx.multipart.get(bucket, key, self.arg("uploadId") or "")
            await self.ctx.multipart.abort(upload)
        else:
            await self.ctx.artifacts.delete_object(bucket, key)
        self.set_status(204)
        self.finish()

    # -- POST: CreateMultipartUpload, CompleteMultipartUpload --
    async def post(self, bucket: str, key: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        if self.has("uploads"):
            public = self.canned_acl()
            upload = await self.ctx.multipart.create(
                bucket, key, self.principal.id, self.put_options(), public_read=bool(public)
            )
            self.write_xml(
                "InitiateMultipartUploadResult",
                {"Bucket": bucket, "Key": key, "UploadId": upload.upload_id},
            )
            return
        if not self.has("uploadId"):
            raise StoreError("NotImplemented", "unsupported POST on an object")
        upload = await self.ctx.multipart.get(bucket, key, self.arg("uploadId") or "")
        await self._complete(upload)

    async def _complete(self, upload: MultipartUpload) -> None:
        request = xml.parse(self.body, "CompleteMultipartUpload")
        parts: list[tuple[int, str]] = []
        for part in xml.children(request, "Part"):
            number, etag = xml.child_text(part, "PartNumber"), xml.child_text(part, "ETag")
            if number is None or etag is None:
                raise StoreError("MalformedXML", "each <Part> needs <PartNumber> and <ETag>")
            try:
                parts.append((int(number), etag))
            except ValueError:
                raise StoreError("MalformedXML", "<PartNumber> must be an integer") from None
        record, _ = await self.ctx.multipart.complete(upload, parts, if_absent=self.create_only())
        self.write_xml(
            "CompleteMultipartUploadResult",
            {
                "Location": f"{self.request.protocol}://{self.request.host}/{upload.bucket}/"
                + urllib.parse.quote(upload.key),
                "Bucket": upload.bucket,
                "Key": upload.key,
                "ETag": quote_etag(record.etag),
            },
        )


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


def _copy_range(value: str | None, source: ObjectRecord) -> tuple[int, int]:
    if not value:
        return 0, source.size
    rng = parse_range(value, source.size)
    if rng is None:
        raise StoreError("InvalidArgument", "x-amz-copy-source-range must be bytes=first-last")
    return rng.start, rng.end


def _part_range(record: ObjectRecord, raw: str) -> ByteRange | None:
    """The bytes of part ``raw`` of a multipart object (None: a one-part object, whole)."""
    try:
        number = int(raw)
    except ValueError:
        raise StoreError("InvalidArgument", "partNumber must be an integer") from None
    if not record.parts:
        if number != 1:
            raise StoreError("InvalidRange", "the object has one part")
        return None
    if not 1 <= number <= len(record.parts):
        raise StoreError("InvalidRange", f"the object has {len(record.parts)} parts")
    start = sum(int(p["size"]) for p in record.parts[: number - 1])
    return ByteRange(start, start + int(record.parts[number - 1]["size"]))


def routes(ctx: Any) -> list[Route]:
    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    return [
        r(r"/", ServiceHandler, "s3:/"),
        r(r"/s3/?", ServiceHandler, "s3:/"),
        r(r"/(?:s3/)?([^/]+)/?", BucketHandler, "s3:/{bucket}"),
        r(r"/(?:s3/)?([^/]+)/(.+)", ObjectHandler, "s3:/{bucket}/{key}"),
    ]
