"""S3 object operations: PutObject (streamed), CopyObject, GetObject, HeadObject,
DeleteObject, object ACLs and multipart uploads."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import tornado.httputil
import tornado.ioloop
import tornado.web

from ...auth.awschunked import AwsChunkedDecoder, is_aws_chunked
from ...auth.ratelimit import Presented
from ...auth.sigv4 import PayloadMode, payload_mode
from ...errors import NotModified, StoreError
from ...metadata import ObjectRecord
from ...services.artifacts import PutOptions, PutSession, validate_key
from ...services.checksums import BodyChecksums, checksum_type_of, parse_checksum_headers
from ...services.multipart import PartSession, check_part_number
from ...services.versioning import s3_version_id
from ..base import UploadHandler
from ..httputil import (
    ByteRange,
    check_preconditions,
    http_date,
    parse_range,
    quote_etag,
)
from . import xml
from .base import (
    RESPONSE_OVERRIDES,
    encode_metadata_value,
)
from .cors import CorsHandling
from .multipart import MultipartOperations
from .objectlock import ObjectLockOperations
from .tagging import parse_tagging, tagging_xml


# ---- objects ----------------------------------------------------------------------------------
@tornado.web.stream_request_body
class ObjectHandler(MultipartOperations, ObjectLockOperations, CorsHandling, UploadHandler):
    """``/{bucket}/{key}``: objects, their ACLs and multipart uploads (with
    :class:`MultipartOperations`). PutObject and UploadPart bodies stream into the blob store."""

    level = "object"
    missing_object_code = "NoSuchKey"

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished:  # a CORS preflight, answered
            return
        self.session = None
        self.decoder: AwsChunkedDecoder | None = None
        self.checksums: BodyChecksums | None = None
        self.small_body = bytearray()
        bucket, key = self.path_args
        if self.operation.name not in ("PutObject", "UploadPart"):
            return  # any other body is small XML, read into self.small_body
        if self.operation.name == "UploadPart":
            await self.authorize("s3:PutObject", f"{bucket}/{key}")
            upload = await self.ctx.multipart.get(bucket, key, self.arg("uploadId") or "")
            number = self._part_number()
            options = self._streaming_options(upload.checksum_algorithm)
            self.session = await self.ctx.multipart.begin_part(upload, number, options)
        else:
            options = self._streaming_options()
            await self.authorize("s3:PutObject", f"{bucket}/{key}")
            options.tags = await self.header_tags(bucket, key) or {}
            options.retention, options.legal_hold = await self.lock_request(bucket, key)
            validate_key(key)
            await self.check_write_preconditions(bucket, key)
            self.session = await self.ctx.artifacts.begin_put(bucket, key, options)

    def _streaming_options(self, required: str | None = None) -> PutOptions:
        """PutOptions for a streamed body, and how to read it: ``self.decoder`` for
        aws-chunked framing, ``self.checksums`` for the flexible checksum S3 promised.
        ``required`` is the checksum algorithm of a part's multipart upload: a part checksum
        of another algorithm is refused, and without one it is computed (a SHA-256 from the
        blob's own digest, see :class:`.PartSession`)."""
        headers = self.request.headers
        options = self.put_options()
        options.md5_etag = True
        mode = (
            self.sigv4.payload_mode
            if self.sigv4
            else payload_mode(headers.get("x-amz-content-sha256"))
        )
        # The body is aws-chunked framing when the payload mode is STREAMING-*. As on AWS,
        # ``Content-Encoding: aws-chunked`` beside a plain payload (a sha256 or
        # UNSIGNED-PAYLOAD) is accepted and the body read as it is, unless a decoded length
        # that differs from the body's says it is framed after all.
        chunked = bool(mode and mode.is_streaming)
        length = headers.get("Content-Length")
        if length is None and "chunked" not in headers.get("Transfer-Encoding", "").lower():
            raise StoreError("MissingContentLength", "PUT needs a Content-Length")
        decoded_length = headers.get("x-amz-decoded-content-length")
        if (
            not chunked
            and is_aws_chunked(headers.get("Content-Encoding"))
            and decoded_length not in (None, length)
        ):
            raise StoreError(
                "InvalidRequest", "aws-chunked bodies need a STREAMING-* x-amz-content-sha256"
            )
        declared = decoded_length if chunked else length
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
            assert mode is not None
            self.decoder = (
                AwsChunkedDecoder.from_context(self.sigv4)
                if self.sigv4
                else AwsChunkedDecoder(
                    mode,
                    decoded_content_length=options.expected_size,
                    expected_trailers=headers.get("x-amz-trailer", "").split(","),
                )
            )
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
        sent = expectation.algorithm
        if required is not None and sent is not None and sent != required:
            raise StoreError(
                "InvalidRequest",
                f"Checksum Type mismatch occurred, expected checksum Type: {required.lower()}, "
                f"actual checksum Type: {sent.lower()}",
            )
        if required not in (None, "SHA256") and expectation.algorithm is None:
            expectation = dataclasses.replace(expectation, algorithm=required)
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

    # -- PUT: PutObject, UploadPart, CopyObject, PutObjectAcl --
    async def op_PutObjectAcl(self, bucket: str, key: str) -> None:
        await self.authorize("s3:PutObjectAcl", f"{bucket}/{key}")
        self.request.body = self.body
        public = self.acl_from_request()
        if public:
            await self.ctx.artifacts.check_public_acl(bucket)
        record = await self._version(bucket, key)
        record.public_read = public
        await self.ctx.artifacts.update_version(record)
        await self.set_version_header(record)
        self.finish()

    async def _version(self, bucket: str, key: str) -> ObjectRecord:
        """The object, or the version ``?versionId`` names."""
        return await self.ctx.artifacts.head_object(bucket, key, self.arg("versionId"))

    # -- tags (S3 object tagging) --
    async def op_GetObjectTagging(self, bucket: str, key: str) -> None:
        await self.authorize("s3:GetObjectTagging", f"{bucket}/{key}")
        record = await self._version(bucket, key)
        await self.set_version_header(record)
        self.write_xml("Tagging", tagging_xml(record.tags))

    async def op_PutObjectTagging(self, bucket: str, key: str) -> None:
        await self.authorize("s3:PutObjectTagging", f"{bucket}/{key}")
        tags = parse_tagging(self.body)
        await self._set_tags(bucket, key, tags)
        self.finish()

    async def op_DeleteObjectTagging(self, bucket: str, key: str) -> None:
        await self.authorize("s3:DeleteObjectTagging", f"{bucket}/{key}")
        await self._set_tags(bucket, key, {})
        self.set_status(204)
        self.finish()

    async def _set_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        """Replace the tags of the version (``?versionId``, else the current one); its bytes,
        ETag and metadata stay."""
        record = await self._version(bucket, key)
        record.tags = tags
        await self.ctx.artifacts.update_version(record)
        await self.set_version_header(record)

    # -- attributes --
    async def op_GetObjectAttributes(self, bucket: str, key: str) -> None:
        await self.authorize("s3:GetObject", f"{bucket}/{key}")
        wanted = {
            a.strip()
            for h in self.request.headers.get_list("x-amz-object-attributes")
            for a in h.split(",")
            if a.strip()
        }
        unknown = wanted - OBJECT_ATTRIBUTES
        if not wanted or unknown:
            raise StoreError(
                "InvalidArgument",
                "x-amz-object-attributes must name some of "
                f"{', '.join(sorted(OBJECT_ATTRIBUTES))}"
                + (f" (not {', '.join(sorted(unknown))})" if unknown else ""),
            )
        record = await self._version(bucket, key)
        self.set_header("Last-Modified", http_date(record.updated_at))
        await self.set_version_header(record)
        answer: dict[str, Any] = {}
        if "ETag" in wanted:
            answer["ETag"] = record.etag
        if "Checksum" in wanted and record.checksums:
            answer["Checksum"] = {
                f"Checksum{algorithm.upper()}": value
                for algorithm, value in sorted(record.checksums.items())
            }
            first = next(iter(sorted(record.checksums.items())))[1]
            answer["Checksum"]["ChecksumType"] = checksum_type_of(first)
        if "ObjectParts" in wanted and record.parts:
            answer["ObjectParts"] = self._object_parts(record)
        if "StorageClass" in wanted:
            answer["StorageClass"] = "STANDARD"
        if "ObjectSize" in wanted:
            answer["ObjectSize"] = record.size
        self.write_xml("GetObjectAttributesResponse", answer)

    def _object_parts(self, record: ObjectRecord) -> dict[str, Any]:
        """GetObjectAttributes ``ObjectParts``: the count, and a page of the parts (number,
        size, checksum) after ``x-amz-part-number-marker``, ``x-amz-max-parts`` at a time,
        when the parts have checksums (as on AWS)."""
        answer: dict[str, Any] = {"PartsCount": len(record.parts)}
        if not any("checksums" in p for p in record.parts):
            return answer
        marker = self._whole_header("x-amz-part-number-marker", 0)
        limit = min(self._whole_header("x-amz-max-parts", 1000), 1000)
        numbered = list(enumerate(record.parts, start=1))[marker:]
        page = numbered[:limit]
        answer.update(
            {
                "PartNumberMarker": marker,
                "MaxParts": limit,
                "IsTruncated": "true" if len(numbered) > limit else "false",
                "Part": [
                    {
                        "PartNumber": number,
                        "Size": part["size"],
                        **{
                            f"Checksum{algorithm.upper()}": value
                            for algorithm, value in part.get("checksums", {}).items()
                        },
                    }
                    for number, part in page
                ],
            }
        )
        if page and len(numbered) > limit:
            answer["NextPartNumberMarker"] = page[-1][0]
        return answer

    def _whole_header(self, name: str, default: int) -> int:
        raw = self.request.headers.get(name)
        if raw is None:
            return default
        if not raw.strip().isdigit():
            raise StoreError("InvalidArgument", f"{name} must be a whole number")
        return int(raw.strip())

    def _take_session(self) -> PutSession | None:
        """The streamed body's session, now the body is in (None: it was refused while it
        streamed in, and that answer is sent)."""
        if self._finished:
            return None
        session, self.session = self.session, None
        assert session is not None
        return session

    def _stored(self, etag: str, checksums: dict[str, str]) -> None:
        """The answer to a stored body: its ETag and the checksums S3 computed."""
        self.set_header("ETag", quote_etag(etag))
        for algorithm, value in checksums.items():
            self.set_header(f"x-amz-checksum-{algorithm}", value)
        self.finish()

    async def op_UploadPart(self, bucket: str, key: str) -> None:
        session = self._take_session()
        if session is None:
            return
        try:
            self._verify_body(session)
            assert isinstance(session, PartSession)
            part = await session.finish_part()
        finally:
            await session.abort()
        self._stored(part.etag, part.checksums)

    async def op_PutObject(self, bucket: str, key: str) -> None:
        session = self._take_session()
        if session is None:
            return
        try:
            self._verify_body(session)
            public = session.options.headers.pop("x-amz-acl", None) == "public-read"
            record, _ = await session.finish()
            if public:
                record.public_read = True
                await self.ctx.metadata.put_object(record)
        finally:
            await session.abort()
        await self.set_expiration_header(record)
        await self.set_version_header(record)
        self._stored(record.etag, record.checksums)

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

    async def op_CopyObject(self, bucket: str, key: str) -> None:
        source = await self.copy_source(bucket, key)
        directive = self.request.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise StoreError("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE")
        restore = self.copy_source_version is not None  # a version copied over its key
        if directive == "COPY" and (source.bucket, source.key) == (bucket, key) and not restore:
            raise StoreError(
                "InvalidRequest",
                "this copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata",
            )
        replace = self.put_options() if directive == "REPLACE" else None
        if replace is not None:
            replace.labels = source.labels
        tagging = self.request.headers.get("x-amz-tagging-directive", "COPY").upper()
        if tagging not in ("COPY", "REPLACE"):
            raise StoreError("InvalidArgument", "x-amz-tagging-directive must be COPY or REPLACE")
        # COPY keeps the source's tags (an x-amz-tagging header is then ignored, as on AWS);
        # REPLACE sets the header's, or none without one.
        tags = (await self.header_tags(bucket, key) or {}) if tagging == "REPLACE" else None
        public = self.canned_acl()
        retention, legal_hold = await self.lock_request(bucket, key)
        record, _ = await self.ctx.artifacts.copy_object(
            source, bucket, key, replace, tags=tags, retention=retention, legal_hold=legal_hold
        )
        if public:
            record.public_read = True
            await self.ctx.metadata.put_object(record)
        await self.set_expiration_header(record)
        await self.set_version_header(record)
        self.write_xml(
            "CopyObjectResult",
            {"ETag": quote_etag(record.etag), "LastModified": xml.s3_time(record.updated_at)},
        )

    # -- GET / HEAD --
    async def op_GetObjectAcl(self, bucket: str, key: str) -> None:
        await self.authorize("s3:GetObjectAcl", f"{bucket}/{key}")
        record = await self._version(bucket, key)
        await self.set_version_header(record)
        self.acl_xml(record.public_read)

    async def op_GetObject(self, bucket: str, key: str) -> None:
        await self._read(bucket, key, send_body=True)

    async def op_HeadObject(self, bucket: str, key: str) -> None:
        await self._read(bucket, key, send_body=False)

    async def _read(self, bucket: str, key: str, *, send_body: bool) -> None:
        if not Presented.of(self.request.headers, self.auth_request().query).any and any(
            self.has(arg) for arg in RESPONSE_OVERRIDES
        ):  # as on AWS: an anonymous link cannot make the store serve bytes as, say, HTML
            raise StoreError(
                "InvalidRequest",
                "Request specific response headers cannot be used for anonymous GET requests.",
            )
        version = self.arg("versionId")
        action = "s3:GetObjectVersion" if version is not None else "s3:GetObject"
        await self.authorize(action, f"{bucket}/{key}")
        record = await self.ctx.artifacts.head_object(bucket, key, version)
        self.set_header("ETag", quote_etag(record.etag))
        self.set_header("Last-Modified", http_date(record.updated_at))
        await self.set_version_header(record)
        self.set_lock_headers(record)
        await self.set_expiration_header(record)
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
            self.set_header(name, encode_metadata_value(value))
        if record.tags:
            self.set_header("x-amz-tagging-count", str(len(record.tags)))
        for arg, header in RESPONSE_OVERRIDES.items():
            value = self.arg(arg)
            if value is not None:
                self.set_header(header, value)
        part_number = self.arg("partNumber")
        if part_number is not None:
            if "Range" in self.request.headers:
                raise StoreError(
                    "InvalidRequest",
                    "cannot specify both Range header and partNumber query parameter",
                )
            rng = _part_range(record, part_number)
            self.set_header("x-amz-mp-parts-count", str(max(1, len(record.parts))))
        else:
            rng = parse_range(self.request.headers.get("Range"), record.size)
        if self.request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            # For the bytes sent: a client checks them against the body it receives.
            if rng is None:
                for algorithm, value in record.checksums.items():
                    self.set_header(f"x-amz-checksum-{algorithm}", value)
                    self.set_header("x-amz-checksum-type", checksum_type_of(value))
            elif part_number is not None:  # one part: that part's own checksum
                part = record.parts[int(part_number) - 1]
                for algorithm, value in part.get("checksums", {}).items():
                    self.set_header(f"x-amz-checksum-{algorithm}", value)
        await self.send_object(record, rng, send_body=send_body)

    # -- DELETE --
    async def op_DeleteObject(self, bucket: str, key: str) -> None:
        version = self.arg("versionId")
        action = "s3:DeleteObjectVersion" if version is not None else "s3:DeleteObject"
        await self.authorize(action, f"{bucket}/{key}")
        bypass = await self.bypass_governance(f"{bucket}/{key}")
        deletion = await self.ctx.artifacts.delete_object(
            bucket, key, version_id=version, bypass_governance=bypass
        )
        if deletion.delete_marker:
            self.set_header("x-amz-delete-marker", "true")
        marker = deletion.marker
        if version is not None or marker is not None:
            self.set_header("x-amz-version-id", version or s3_version_id(marker))
        self.set_status(204)
        self.finish()


# What GetObjectAttributes can answer (x-amz-object-attributes).
OBJECT_ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})


def _part_range(record: ObjectRecord, raw: str) -> ByteRange | None:
    """The bytes of part ``raw`` of a multipart object (None: a one-part object, whole).
    As on AWS: a number outside 1..10000 is ``InvalidArgument``, one beyond the object's
    parts ``InvalidPartNumber``."""
    try:
        number = check_part_number(int(raw))
    except ValueError:
        raise StoreError("InvalidArgument", "partNumber must be an integer") from None
    count = max(1, len(record.parts))
    if number > count:
        raise StoreError(
            "InvalidPartNumber",
            f"the requested partnumber is not satisfiable: the object has {count} "
            + ("part" if count == 1 else "parts"),
        )
    if not record.parts:
        return None
    start = sum(int(p["size"]) for p in record.parts[: number - 1])
    return ByteRange(start, start + int(record.parts[number - 1]["size"]))
