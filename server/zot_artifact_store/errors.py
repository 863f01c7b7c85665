"""One error model for every API (DESIGN.md §2).

Each error has a stable ``code``, an HTTP ``status``, a human ``message`` and ``retryable``.
Services raise :class:`StoreError`; each API renders it in its own dialect (S3 XML, OCI JSON,
problem JSON for ``/v1``). ``docs/errors.md`` is the catalogue: a section per code with its
likely causes and the fix, which the problem JSON's ``type`` links to
(:data:`PROBLEM_TYPE_BASE` + code); ``tests/unit/test_errors.py`` checks that every code
defined here has its section there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The problem JSON's ``type``: the code's section of docs/errors.md (likely causes, the fix),
# in the repository the image's org.opencontainers.image.source label names.
PROBLEM_TYPE_BASE = (
    "https://github.com/zot-artifact-store/zot-artifact-store/blob/main/docs/errors.md#"
)


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    status: int
    title: str
    retryable: bool = False

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.code


# The catalogue. Codes reuse S3's names where S3 has one, so the S3 dialect maps 1:1.
CATALOGUE: dict[str, ErrorSpec] = {
    spec.code: spec
    for spec in (
        ErrorSpec("InvalidRequest", 400, "The request is malformed"),
        ErrorSpec("MalformedJSON", 400, "The request body is not valid JSON of the expected shape"),
        ErrorSpec("InvalidArgument", 400, "A parameter has an invalid value"),
        ErrorSpec("InvalidTag", 400, "The object tags break S3's limits"),
        ErrorSpec(
            "UnexpectedQueryParameter", 400, "The request has a query parameter it does not take"
        ),
        ErrorSpec("InvalidBucketName", 400, "The bucket name is not valid"),
        ErrorSpec("InvalidKey", 400, "The object key is not valid"),
        ErrorSpec("InvalidDigest", 400, "The declared digest is not well-formed"),
        ErrorSpec("InvalidContinuationToken", 400, "The continuation token is not valid"),
        ErrorSpec("Unauthenticated", 401, "Authentication is required"),
        ErrorSpec("AccessDenied", 403, "Access denied"),
        ErrorSpec("NoSuchBucket", 404, "The bucket does not exist"),
        ErrorSpec("NoSuchKey", 404, "The object does not exist"),
        ErrorSpec("NoSuchVersion", 404, "The object version does not exist"),
        ErrorSpec("ObjectLockConfigurationNotFoundError", 404, "The bucket has no Object Lock"),
        ErrorSpec("NoSuchObjectLockConfiguration", 404, "The object version has no retention"),
        ErrorSpec("InvalidBucketState", 409, "The bucket's state does not allow this"),
        ErrorSpec("NoSuchUpload", 404, "The upload does not exist"),
        ErrorSpec("NotFound", 404, "No such resource"),
        ErrorSpec("MethodNotAllowed", 405, "The method is not allowed on this resource"),
        ErrorSpec("BucketAlreadyExists", 409, "The bucket already exists"),
        ErrorSpec("BucketAlreadyOwnedByYou", 409, "You already own this bucket"),
        ErrorSpec("BucketNotEmpty", 409, "The bucket is not empty"),
        ErrorSpec("ReservedName", 400, "The name is reserved"),
        ErrorSpec("PreconditionFailed", 412, "A precondition does not hold"),
        ErrorSpec("EntityTooLarge", 413, "The body exceeds the allowed size"),
        ErrorSpec("BatchTooLarge", 413, "The batch has more items than one request takes"),
        ErrorSpec(
            "RequestHeaderSectionTooLarge", 431, "The request's header fields exceed the limit"
        ),
        ErrorSpec("InvalidRange", 416, "The requested range is not satisfiable"),
        ErrorSpec("InvalidPartNumber", 416, "The requested part number is not satisfiable"),
        ErrorSpec("ChecksumMismatch", 422, "The body does not match the declared checksum"),
        ErrorSpec("IncompleteBody", 400, "The body is shorter than Content-Length"),
        ErrorSpec(
            "MalformedXML", 400, "The XML body is not well-formed or does not match the schema"
        ),
        ErrorSpec("BadDigest", 400, "The body does not match Content-MD5 or x-amz-checksum-*"),
        ErrorSpec("XAmzContentSHA256Mismatch", 400, "The body does not match x-amz-content-sha256"),
        ErrorSpec("InvalidPart", 400, "A part is missing or its ETag does not match"),
        ErrorSpec("InvalidPartOrder", 400, "Parts are not in ascending order"),
        ErrorSpec("EntityTooSmall", 400, "A part is smaller than the 5 MiB minimum"),
        ErrorSpec("KeyTooLongError", 400, "The key is longer than 1,024 bytes"),
        ErrorSpec("MissingContentLength", 411, "Content-Length is required"),
        ErrorSpec("NotImplemented", 501, "This feature is not implemented"),
        ErrorSpec("SignatureDoesNotMatch", 403, "The request signature does not match"),
        ErrorSpec("InvalidAccessKeyId", 403, "The access key does not exist"),
        ErrorSpec("AuthorizationHeaderMalformed", 400, "The Authorization header is malformed"),
        ErrorSpec(
            "AuthorizationQueryParametersError", 400, "The presigned query parameters are malformed"
        ),
        ErrorSpec("RequestTimeTooSkewed", 403, "The request time is too far from the server's"),
        ErrorSpec("NoSuchToken", 404, "The API token does not exist"),
        ErrorSpec("NoSuchPolicy", 404, "The policy does not exist"),
        ErrorSpec("NoSuchAccessKey", 404, "The access key does not exist"),
        ErrorSpec("NoSuchBucketPolicy", 404, "The bucket has no policy"),
        ErrorSpec("NoSuchTagSet", 404, "The bucket has no tags"),
        ErrorSpec("NoSuchLifecycleConfiguration", 404, "The bucket has no lifecycle rules"),
        ErrorSpec("NoSuchCORSConfiguration", 404, "The bucket has no CORS configuration"),
        ErrorSpec("AccessForbidden", 403, "The CORS request is not allowed"),
        ErrorSpec(
            "NoSuchPublicAccessBlockConfiguration", 404, "The bucket has no public access block"
        ),
        ErrorSpec("InvalidPolicyDocument", 400, "The POST policy is malformed"),
        ErrorSpec("MalformedPOSTRequest", 400, "The POST body is not well-formed form data"),
        ErrorSpec(
            "MaxPostPreDataLengthExceededError",
            400,
            "The POST form fields before the file are too large",
        ),
        ErrorSpec(
            "OperationAborted", 409, "A conflicting operation is in progress", retryable=True
        ),
        ErrorSpec("MalformedPolicy", 400, "The policy document is malformed"),
        ErrorSpec("NoSuchEvidence", 404, "The evidence does not exist"),
        ErrorSpec("VerificationFailed", 403, "The subject fails its verification policy"),
        ErrorSpec("NoSuchVerificationPolicy", 404, "No verification policy is set there"),
        ErrorSpec("NoSuchTrustedKey", 404, "The trusted key does not exist"),
        ErrorSpec("InvalidEvidence", 422, "The evidence document is invalid"),
        ErrorSpec("SubjectMismatch", 422, "The evidence is about another digest"),
        ErrorSpec("NoSuchEventSource", 404, "The event source does not exist"),
        ErrorSpec("NoSuchBuild", 404, "The build does not exist"),
        ErrorSpec("NoSuchWebhook", 404, "The webhook does not exist"),
        ErrorSpec("NoSuchDelivery", 404, "The webhook delivery does not exist"),
        ErrorSpec("WebhookTargetRefused", 400, "The webhook URL is not a reachable public address"),
        ErrorSpec("TooManyWebhooks", 409, "The store has as many webhooks as it allows"),
        ErrorSpec("UnsupportedEvent", 400, "The event's type is not one this endpoint accepts"),
        ErrorSpec("BlobUnknown", 404, "The blob is unknown to the registry"),
        ErrorSpec("BlobUploadInvalid", 400, "The blob upload is invalid"),
        ErrorSpec("BlobUploadUnknown", 404, "The blob upload is unknown"),
        ErrorSpec("DigestInvalid", 400, "The digest does not match the content"),
        ErrorSpec("ManifestBlobUnknown", 400, "A blob the manifest references is unknown"),
        ErrorSpec("ManifestInvalid", 400, "The manifest is invalid"),
        ErrorSpec("ManifestUnknown", 404, "The manifest is unknown"),
        ErrorSpec("TagInvalid", 400, "The manifest tag is not valid"),
        ErrorSpec("NameInvalid", 400, "The repository name is invalid"),
        ErrorSpec("NameUnknown", 404, "The repository is unknown"),
        ErrorSpec("RequestTimeout", 408, "The request body arrived too slowly", retryable=True),
        ErrorSpec("TooManyRequests", 429, "Too many requests", retryable=True),
        ErrorSpec("InternalError", 500, "Internal error", retryable=True),
        ErrorSpec("ServiceUnavailable", 503, "The service is unavailable", retryable=True),
        ErrorSpec("InsufficientStorage", 507, "The storage is full", retryable=True),
    )
}


class StoreError(Exception):
    """An error a client should see, with a stable code from :data:`CATALOGUE`."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        resource: str | None = None,
        detail: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code not in CATALOGUE:
            raise ValueError(f"unknown error code {code!r}: add it to errors.CATALOGUE")
        self.spec = CATALOGUE[code]
        self.message = message or self.spec.title
        self.resource = resource
        self.detail = detail or {}
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")

    @property
    def code(self) -> str:
        return self.spec.code

    @property
    def status(self) -> int:
        return self.spec.status

    @property
    def retryable(self) -> bool:
        return self.spec.retryable

    def problem(self, request_id: str | None = None) -> dict[str, Any]:
        """RFC 9457 problem details, with our extension members."""
        body: dict[str, Any] = {
            "type": self.spec.type_uri,
            "title": self.spec.title,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "detail": self.message,
            "retryable": self.retryable,
        }
        if self.resource is not None:
            body["instance"] = self.resource
        if request_id:
            body["request_id"] = request_id
        if self.detail:
            body["errors"] = self.detail
        return body


class NotModified(Exception):
    """A conditional GET/HEAD whose answer is 304; carries the ETag to return."""

    def __init__(self, etag: str, last_modified: float) -> None:
        self.etag = etag
        self.last_modified = last_modified
        super().__init__("not modified")
