"""S3 POST Object: a browser form uploads a file straight into a bucket (``POST /{bucket}``,
``multipart/form-data``), authorized by a POST policy signed with SigV4
(:mod:`...auth.post_policy`).

The form is read as it arrives (werkzeug's sans-IO multipart decoder): the fields before the
``file`` part are kept (at most :data:`MAX_FIELDS_BYTES`), and when the file part starts the
policy, its signature and conditions are checked and ``s3:PutObject`` authorized; the file
then streams into the blob store like a PutObject body (sha256 and MD5 computed as it is
written) and is published only when the whole form has arrived and ``content-length-range``
holds. Anything refused stores nothing. Fields after the file are ignored, as on AWS.

The botocore model has no POST Object (browsers, not SDKs, send it), so the route is its own:
``POST`` on a bucket path with a ``multipart/form-data`` body and no query
(:class:`PostObjectMatches`); every other ``POST`` goes through the operation allow-list.
"""

from __future__ import annotations

import posixpath
import time
import urllib.parse
from typing import Any

import tornado.httputil
import tornado.routing
import tornado.web
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from ...auth.post_policy import (
    PostPolicy,
    check_length,
    check_policy,
    parse_policy,
    verify_signature,
)
from ...auth.principal import current_principal
from ...errors import StoreError
from ...services.artifacts import PutOptions, validate_key
from ..base import UploadHandler
from ..httputil import quote_etag
from .base import (
    CANNED_ACLS,
    STORED_HEADERS,
    decode_metadata_value,
    store_region,
    unsupported_acl,
)
from .cors import CorsHandling
from .tagging import parse_tagging

# The form fields before the file, all together (AWS allows 20 KB of policy and fields).
MAX_FIELDS_BYTES = 64 * 1024
MAX_PARTS = 1000
# Fields asking for what this store does not do: refused, never ignored.
_UNSUPPORTED_FIELDS = (
    "x-amz-server-side-encryption",
    "x-amz-object-lock-",
    "x-amz-website-redirect-location",
    "x-amz-checksum-",
    "content-md5",
    "x-amz-grant-",
)


class PostObjectMatches(tornado.routing.PathMatches):
    """A bucket path, when the request is a POST Object form upload."""

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if request.method != "POST" or request.query:
            return None
        content_type = request.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            return None
        return super().match(request)


@tornado.web.stream_request_body
class PostObjectHandler(CorsHandling, UploadHandler):
    level = "bucket"

    async def prepare(self) -> None:
        self.fields: dict[str, str] = {}
        self.session = None
        self.policy: PostPolicy | None = None
        self._part: str | None = None  # "field:<name>", "file", "ignored"
        self._value = bytearray()
        self._fields_bytes = 0
        self._file_seen = self._file_done = False
        self.key = ""
        await self.apply_cors()
        headers = self.request.headers
        if "Authorization" in headers:
            raise StoreError(
                "InvalidArgument",
                "POST Object is authenticated by its form (policy, x-amz-signature), not an "
                "Authorization header",
            )
        _, options = parse_options_header(headers.get("Content-Type", ""))
        boundary = options.get("boundary", "")
        if not boundary or len(boundary) > 70:
            raise StoreError(
                "MalformedPOSTRequest", "multipart/form-data needs a boundary of 1-70 characters"
            )
        self.decoder = MultipartDecoder(
            boundary.encode("latin-1"),
            max_form_memory_size=MAX_FIELDS_BYTES + (1 << 20),
            max_parts=MAX_PARTS,
        )
        await self.ctx.artifacts.get_bucket(self.path_args[0])  # NoSuchBucket before the body

    async def receive(self, chunk: bytes) -> None:
        try:
            self.decoder.receive_data(chunk)
        except RequestEntityTooLarge:
            raise self._too_many_fields() from None
        await self._drain()

    def _too_many_fields(self) -> StoreError:
        return StoreError(
            "MaxPostPreDataLengthExceededError",
            f"the form fields before the file exceed {MAX_FIELDS_BYTES} bytes",
        )

    async def _drain(self) -> None:
        while True:
            try:
                event = self.decoder.next_event()
            except RequestEntityTooLarge:
                raise self._too_many_fields() from None
            except ValueError as exc:
                raise StoreError(
                    "MalformedPOSTRequest",
                    f"the body is not well-formed multipart/form-data: {exc}",
                ) from None
            if isinstance(event, NeedData | Epilogue):
                return
            if isinstance(event, File) and event.name.lower() == "file":
                if self._file_seen:
                    raise StoreError(
                        "InvalidArgument", "POST requires exactly one file upload per request."
                    )
                self._file_seen = True
                self._part = "file"
                await self._start(event.filename or "", event.headers.get("Content-Type"))
            elif isinstance(event, Field | File):
                self._part = "ignored" if self._file_seen else f"field:{event.name.lower()}"
                self._value.clear()
            elif isinstance(event, Data):
                await self._data(event.data, event.more_data)

    async def _data(self, data: bytes, more: bool) -> None:
        if self._part == "file":
            assert self.session is not None
            if data:
                await self.session.write(data)
                if self.policy is not None:
                    check_length(self.policy, self.session.size, final=False)
            self._file_done = not more
        elif self._part is not None and self._part.startswith("field:"):
            self._fields_bytes += len(data)
            if self._fields_bytes > MAX_FIELDS_BYTES:
                raise self._too_many_fields()
            self._value += data
            if not more:
                name = self._part[6:]
                try:
                    value = self._value.decode("utf-8")
                except UnicodeDecodeError:
                    raise StoreError(
                        "InvalidArgument", f"the form field {name!r} is not UTF-8"
                    ) from None
                self.fields.setdefault(name, value)

    async def _start(self, filename: str, part_type: str | None) -> None:
        """The file begins: authenticate the form, check its policy, authorize, open the
        upload."""
        bucket, fields = self.path_args[0], self.fields
        if "key" not in fields:
            raise StoreError(
                "InvalidArgument",
                "Bucket POST must contain a field named 'key'. If it is specified, please "
                "check the order of the fields (the file must come last).",
            )
        for name in fields:
            if name.startswith(_UNSUPPORTED_FIELDS):
                raise StoreError(
                    "NotImplemented", f"POST Object: the field {name} is not supported"
                )
        await self._authenticate_form()
        key = fields["key"].replace("${filename}", posixpath.basename(filename))
        validate_key(key)
        self.key = key
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        options = PutOptions(
            content_type=fields.get("content-type") or part_type or None,
            user_metadata={
                name: decode_metadata_value(value)
                for name, value in fields.items()
                if name.startswith("x-amz-meta-")
            },
            headers={h: fields[h.lower()] for h in STORED_HEADERS if h.lower() in fields},
            md5_etag=True,
        )
        if "tagging" in fields:
            await self.authorize("s3:PutObjectTagging", f"{bucket}/{key}")
            options.tags = parse_tagging(fields["tagging"].encode("utf-8"))
        acl = fields.get("acl", "private")
        if acl not in CANNED_ACLS:
            raise unsupported_acl(acl)
        self.public = CANNED_ACLS[acl]
        if self.public:
            await self.ctx.artifacts.check_public_acl(bucket)
        self.session = await self.ctx.artifacts.begin_put(bucket, key, options)

    async def _authenticate_form(self) -> None:
        """The principal the form speaks for: who signed its policy, or anonymous (a form
        without a policy, for a bucket whose policy lets anyone write)."""
        fields, auth = self.fields, self.ctx.authentication
        if "policy" in fields:
            self.policy = parse_policy(fields["policy"])
        elif "x-amz-signature" in fields:
            raise StoreError("InvalidArgument", "a signed POST needs its policy field")
        if self.policy is not None and auth.enabled:
            identity = fields.get("x-amz-credential", "").split("/", 1)[0]
            self.principal = await self.check_secret(
                identity,
                lambda: verify_signature(
                    fields, auth.s3_secret, region=store_region(self.ctx.config)
                ),
            )
            current_principal.set(self.principal)
        else:
            await self.authenticate()  # anonymous (or everyone, with authentication off)
        if self.policy is not None:
            check_policy(self.policy, fields, self.path_args[0], time.time())

    async def post(self, bucket: str) -> None:
        if self._finished:
            return
        try:
            self.decoder.receive_data(None)
            await self._drain()
        except Exception:
            await self._abort()
            raise
        if not self._file_seen:
            raise StoreError(
                "InvalidArgument", "POST requires exactly one file upload per request."
            )
        session, self.session = self.session, None
        assert session is not None
        try:
            if not self._file_done:
                raise StoreError("MalformedPOSTRequest", "the file part never ended")
            if self.policy is not None:
                check_length(self.policy, session.size, final=True)
            record, _ = await session.finish()
            if self.public:
                record.public_read = True
                await self.ctx.metadata.put_object(record)
        finally:
            await session.abort()
        await self.set_expiration_header(record)
        self._answer(bucket, record.etag)

    async def _abort(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.abort()

    def _answer(self, bucket: str, etag: str) -> None:
        """``success_action_redirect`` (303 to it, with bucket, key and ETag), else
        ``success_action_status``: 200, 201 (a ``PostResponse``) or 204 (the default)."""
        location = f"{self.base_url()}/{urllib.parse.quote(bucket)}/{urllib.parse.quote(self.key)}"
        self.set_header("ETag", quote_etag(etag))
        self.set_header("Location", location)
        redirect = self.fields.get("success_action_redirect") or self.fields.get("redirect")
        if redirect and urllib.parse.urlsplit(redirect).scheme in ("http", "https"):
            query = urllib.parse.urlencode(
                {"bucket": bucket, "key": self.key, "etag": quote_etag(etag)}
            )
            self.set_header("Location", f"{redirect}{'&' if '?' in redirect else '?'}{query}")
            self.set_status(303)
            self.finish()
            return
        status = self.fields.get("success_action_status", "204")
        if status == "201":
            self.write_xml(
                "PostResponse",
                {"Location": location, "Bucket": bucket, "Key": self.key, "ETag": quote_etag(etag)},
                status=201,
            )
            return
        self.set_status(200 if status == "200" else 204)
        self.finish()
