"""AWS Signature Version 4 verification for the S3 API (DESIGN.md §5, §10).

A small native verifier: the server sees the raw request line, so it canonicalises what it
received rather than re-serialising a request the way a client SDK would.

* Header auth: ``Authorization: AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/
  aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=<64 hex>``,
  with ``x-amz-date`` (or ``Date``) within :data:`MAX_CLOCK_SKEW` of the server's clock and a
  required ``x-amz-content-sha256``.
* Presigned URLs: ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
  ``X-Amz-Expires`` (1..604800, honoured), ``X-Amz-SignedHeaders``, ``X-Amz-Signature``; the
  payload is ``UNSIGNED-PAYLOAD`` unless an ``x-amz-content-sha256`` header (or query
  parameter) says otherwise.

Canonicalisation (S3 flavour, which never double-encodes the path nor normalises ``.``/``..``):
the raw path is percent-decoded once and re-encoded with every byte but ``A-Za-z0-9-._~/``
escaped; query parameters are decoded (``+`` is a space, as the server's own query parser
reads it), re-encoded with the same rule, sorted by name then value, with ``X-Amz-Signature``
left out for presigned URLs; signed headers are lower-cased, their values trimmed and inner
whitespace collapsed, repeated headers joined with ``,``. When a client signed exactly the
bytes it sent but encoded them differently (``!*'()`` left raw, a literal ``+``), the raw
path and raw query are tried as a second candidate.

Strings given for the path, query and header values are taken to be the wire bytes decoded as
latin-1 (what Tornado, ``http.server`` and WSGI hand out); characters above U+00FF, which
latin-1 decoding never produces, are encoded as UTF-8 instead.

The body is never read here. The returned :class:`SigV4Context` says how it must be checked:
``PayloadMode.SHA256`` → feed it to :meth:`SigV4Context.payload_verifier`; the streaming modes
→ decode it with :class:`zot_artifact_store.auth.awschunked.AwsChunkedDecoder`, which checks
chunk and trailer signatures with the context's signing key and seed signature.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from ..errors import StoreError
from .principal import Principal

if TYPE_CHECKING:  # authn imports this module
    from .authn import AuthRequest

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"

MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 604800  # one week, in seconds

# x-amz-* headers a client may send without signing them: the content hash is bound by the
# canonical request's last line and the date by the string to sign (S3 tolerates both).
UNSIGNED_AMZ_HEADERS_ALLOWED = frozenset({"x-amz-content-sha256", "x-amz-date"})

_AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
_DATE_RE = re.compile(r"^\d{8}$")
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


class PayloadMode(enum.StrEnum):
    """What ``x-amz-content-sha256`` (or its presigned default) promises about the body."""

    SHA256 = "sha256"  # a hex digest: the caller must verify the body against it
    UNSIGNED = "unsigned"  # UNSIGNED-PAYLOAD
    STREAMING_SIGNED = "streaming-signed"  # STREAMING-AWS4-HMAC-SHA256-PAYLOAD
    STREAMING_SIGNED_TRAILER = "streaming-signed-trailer"  # ...-PAYLOAD-TRAILER
    STREAMING_UNSIGNED_TRAILER = "streaming-unsigned-trailer"  # STREAMING-UNSIGNED-PAYLOAD-TRAILER

    @property
    def is_streaming(self) -> bool:
        return self.value.startswith("streaming-")

    @property
    def has_chunk_signatures(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)

    @property
    def has_trailer(self) -> bool:
        return self in (
            PayloadMode.STREAMING_SIGNED_TRAILER,
            PayloadMode.STREAMING_UNSIGNED_TRAILER,
        )


_MODES = {
    UNSIGNED_PAYLOAD: PayloadMode.UNSIGNED,
    STREAMING_PAYLOAD: PayloadMode.STREAMING_SIGNED,
    STREAMING_PAYLOAD_TRAILER: PayloadMode.STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER: PayloadMode.STREAMING_UNSIGNED_TRAILER,
}


def payload_mode(content_sha256: str | None) -> PayloadMode | None:
    """The mode an ``x-amz-content-sha256`` value names (None when absent or unknown), for
    requests whose signature is not checked (authentication off)."""
    if not content_sha256:
        return None
    value = content_sha256.strip()
    if len(value) == 64:
        return PayloadMode.SHA256
    return _MODES.get(value)


# --------------------------------------------------------------------------- inputs


HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class SigV4Request:
    """What the verifier needs from an HTTP request, as received.

    ``raw_path`` is the path of the request target, still percent-encoded, including any
    prefix the client addressed (``/s3/bucket/key``); ``raw_query`` the part after ``?``
    without the ``?``. With Tornado: ``SigV4Request(req.method, req.path, req.query,
    req.headers)``. ``headers`` may be a mapping or ``(name, value)`` pairs; a Tornado
    ``HTTPHeaders`` keeps repeated headers apart.
    """

    method: str
    raw_path: str | bytes
    raw_query: str | bytes
    headers: HeaderInput
    _headers: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_headers", _normalise_headers(self.headers))

    def header(self, name: str) -> str | None:
        """The value of a header (case-insensitive), repeated values joined with ``,``."""
        values = self._headers.get(name.lower())
        return None if values is None else ",".join(values)

    def header_values(self, name: str) -> list[str]:
        return list(self._headers.get(name.lower(), ()))

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset(self._headers)

    @classmethod
    def from_auth_request(cls, request: AuthRequest) -> SigV4Request:
        """Build from the generic :class:`AuthRequest`.

        ``AuthRequest`` carries the raw path but only the decoded query, so the query is
        re-encoded canonically; an ``AuthRequest`` that grows a ``raw_query`` attribute is used
        as is. Handlers that have the Tornado request should build :class:`SigV4Request`
        directly.
        """
        raw_query = getattr(request, "raw_query", None)
        if raw_query is None:
            raw_query = "&".join(
                f"{quote(k, safe='')}={quote(v, safe='')}"
                for k, values in request.query.items()
                for v in values
            )
        return cls(request.method, request.path, raw_query, request.headers)


def _normalise_headers(headers: HeaderInput) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    get_all = getattr(headers, "get_all", None)
    pairs: Iterable[tuple[str, str]]
    if callable(get_all):  # tornado.httputil.HTTPHeaders
        pairs = get_all()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    for name, value in pairs:
        out.setdefault(str(name).strip().lower(), []).append(str(value))
    return out


# --------------------------------------------------------------------------- primitives


def wire_bytes(value: str | bytes) -> bytes:
    """Request text as the bytes that were on the wire (see the module docstring)."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def uri_encode(data: bytes, *, keep_slash: bool) -> str:
    """SigV4 URI-encoding: everything but ``A-Za-z0-9-._~`` (and ``/`` if asked) as ``%XX``."""
    return quote_from_bytes(data, safe="/" if keep_slash else "")


def canonical_uri(raw_path: str | bytes) -> str:
    """The S3 canonical URI of a raw request path: decoded once, encoded once, ``/`` kept."""
    raw = wire_bytes(raw_path) or b"/"
    return uri_encode(unquote_to_bytes(raw), keep_slash=True)


def _query_pairs(raw_query: str | bytes) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """``(raw_key, raw_value, decoded_key, decoded_value)`` for each non-empty parameter."""
    out = []
    for part in wire_bytes(raw_query).split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        out.append(
            (
                key,
                value,
                unquote_to_bytes(key.replace(b"+", b" ")),
                unquote_to_bytes(value.replace(b"+", b" ")),
            )
        )
    return out


def canonical_query_string(raw_query: str | bytes, *, exclude: Iterable[str] = ()) -> str:
    """Canonical query string: decode, re-encode, sort by name then value."""
    skip = {name.encode("utf-8") for name in exclude}
    pairs = sorted(
        (uri_encode(dk, keep_slash=False), uri_encode(dv, keep_slash=False))
        for _, _, dk, dv in _query_pairs(raw_query)
        if dk not in skip
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def _raw_query_string(raw_query: str | bytes, *, exclude: Iterable[str] = ()) -> str:
    """The query as the client sent it, only sorted (the bytes some clients sign)."""
    skip = {name.encode("utf-8") for name in exclude}
    pairs = sorted((k, v) for k, v, dk, _ in _query_pairs(raw_query) if dk not in skip)
    return "&".join(f"{k.decode('latin-1')}={v.decode('latin-1')}" for k, v in pairs)


def canonical_header_value(values: Iterable[str]) -> str:
    """Values trimmed, inner whitespace runs collapsed to one space, joined with ``,``."""
    return ",".join(" ".join(v.split()) for v in values)


def canonical_headers(request: SigV4Request, signed_headers: Iterable[str]) -> bytes:
    """``name:value\\n`` for each signed header, in the signed-headers order."""
    lines = []
    for name in signed_headers:
        value = canonical_header_value(request.header_values(name))
        lines.append(name.encode("ascii") + b":" + wire_bytes(value) + b"\n")
    return b"".join(lines)


def build_canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: bytes,
    signed_headers: Iterable[str],
    payload_hash: str,
) -> bytes:
    return b"\n".join(
        (
            method.upper().encode("ascii", "replace"),
            uri.encode("ascii"),
            query.encode("latin-1", "replace"),
            headers,
            ";".join(signed_headers).encode("ascii"),
            payload_hash.encode("ascii", "replace"),
        )
    )


def string_to_sign(amz_date: str, scope: str, canonical_request: bytes) -> str:
    return "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request).hexdigest()))


def chunk_string_to_sign(
    amz_date: str, scope: str, previous_signature: str, chunk_sha256_hex: str
) -> str:
    """String to sign of one ``aws-chunked`` data chunk (``AWS4-HMAC-SHA256-PAYLOAD``)."""
    return "\n".join(
        (CHUNK_ALGORITHM, amz_date, scope, previous_signature, EMPTY_SHA256, chunk_sha256_hex)
    )


def trailer_string_to_sign(
    amz_date: str, scope: str, previous_signature: str, trailer_sha256_hex: str
) -> str:
    """String to sign of the trailing headers (``AWS4-HMAC-SHA256-TRAILER``)."""
    return "\n".join((TRAILER_ALGORITHM, amz_date, scope, previous_signature, trailer_sha256_hex))


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@lru_cache(maxsize=512)
def derive_signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The SigV4 signing key for one day, region and service.

    ``HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")``.
    """
    k_date = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, TERMINATOR)


def sign(signing_key: bytes, message: str) -> str:
    """Hex HMAC-SHA256 of ``message`` with ``signing_key``."""
    return hmac.new(signing_key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time comparison of two hex signatures: ``provided`` must be exactly the
    lower-case hex a signer produces (no other spelling of the same bytes is accepted)."""
    return hmac.compare_digest(expected.encode("ascii"), provided.encode("utf-8", "replace"))


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True)
class SigV4Context:
    """Everything the body checks need after a successful verification."""

    access_key_id: str
    region: str
    scope: str  # "20130524/us-east-1/s3/aws4_request"
    amz_date: str  # "20130524T000000Z", as used in the string to sign
    signing_key: bytes = field(repr=False)
    seed_signature: str  # the request signature; chunk signatures chain from it
    content_sha256: str  # x-amz-content-sha256 as sent (or UNSIGNED-PAYLOAD when presigned)
    payload_mode: PayloadMode
    presigned: bool
    signed_headers: tuple[str, ...]
    request_time: dt.datetime
    expires_at: dt.datetime | None = None  # presigned URLs only
    decoded_content_length: int | None = None  # x-amz-decoded-content-length
    trailer_names: tuple[str, ...] = ()  # x-amz-trailer, lower-cased
    content_encoding: str | None = None

    def payload_verifier(self) -> Sha256PayloadVerifier | None:
        """A verifier for a body promised by hex ``x-amz-content-sha256``; None otherwise."""
        if self.payload_mode is PayloadMode.SHA256:
            return Sha256PayloadVerifier(self.content_sha256)
        return None

    def sign(self, message: str) -> str:
        return sign(self.signing_key, message)


@dataclass(frozen=True)
class SigV4Result:
    principal: Principal
    context: SigV4Context


class Sha256PayloadVerifier:
    """Hashes a body as it streams and checks it against ``x-amz-content-sha256``."""

    def __init__(self, expected_hex: str) -> None:
        self.expected = expected_hex.lower()
        self._hash = hashlib.sha256()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def verify(self) -> None:
        """Raise ``XAmzContentSHA256Mismatch`` unless the body hashed to the promised value."""
        actual = self._hash.hexdigest()
        if not hmac.compare_digest(actual, self.expected):
            raise StoreError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                detail={
                    "ClientComputedContentSHA256": self.expected,
                    "S3ComputedContentSHA256": actual,
                },
            )


#: ``lookup(access_key_id)`` → ``(secret_access_key, principal)``, or None when unknown.
KeyLookup = Callable[[str], Awaitable[tuple[str, Principal] | None]]


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Parsed:
    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    request_time: dt.datetime
    presigned: bool
    expires: int | None
    error_code: str


def _malformed(code: str, message: str) -> StoreError:
    if code == "AuthorizationHeaderMalformed":
        return StoreError(code, f"The authorization header is malformed; {message}")
    return StoreError(code, message[:1].upper() + message[1:])


def parse_credential(value: str, code: str) -> Credential:
    parts = value.split("/")
    if len(parts) != 5 or not parts[0]:
        raise _malformed(
            code,
            "the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        )
    akid, date, region, service, terminator = parts
    if not _DATE_RE.match(date):
        raise _malformed(code, f'the Credential date "{date}" is not of the form YYYYMMDD.')
    if not region:
        raise _malformed(code, "the Credential region is empty.")
    if service != SERVICE:
        raise _malformed(
            code, f'the Credential service "{service}" is wrong; this endpoint is "{SERVICE}".'
        )
    if terminator != TERMINATOR:
        raise _malformed(
            code, f'the Credential terminator "{terminator}" is wrong; expecting "{TERMINATOR}".'
        )
    return Credential(akid, date, region, service)


def _parse_signed_headers(value: str, code: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in value.split(";"))
    if not value.strip() or any(not n for n in names):
        raise _malformed(code, "SignedHeaders is empty or has an empty name.")
    if any(not n.isascii() or any(c in n for c in ": \t") for n in names):
        raise _malformed(code, "SignedHeaders has an invalid header name.")
    if "host" not in names:
        raise _malformed(code, "SignedHeaders must include host.")
    return names


def parse_amz_date(value: str) -> dt.datetime | None:
    if not _AMZ_DATE_RE.match(value):
        return None
    try:
        return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _parse_header_auth(request: SigV4Request, header: str) -> _Parsed:
    code = "AuthorizationHeaderMalformed"
    rest = header.strip()[len(ALGORITHM) :]
    if rest and not rest[0].isspace():
        raise StoreError("AuthorizationHeaderMalformed", "Unsupported authorization type")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name in fields:
            raise _malformed(code, f'the authorization component "{part}" is malformed.')
        fields[name] = value.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
    if missing:
        raise _malformed(
            code,
            "the authorization header requires three components: Credential, SignedHeaders, "
            "and Signature.",
        )
    credential = parse_credential(fields["Credential"], code)
    signed = _parse_signed_headers(fields["SignedHeaders"], code)

    amz_date = request.header("x-amz-date")
    if amz_date is not None:
        amz_date = amz_date.strip()
        when = parse_amz_date(amz_date)
    else:
        date_header = request.header("date")
        when = None
        if date_header:
            try:
                when = email.utils.parsedate_to_datetime(date_header.strip())
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
        amz_date = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") if when else None
    if when is None or amz_date is None:
        raise StoreError(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    if credential.date != amz_date[:8]:
        raise _malformed(
            code,
            f'Invalid credential date "{credential.date}". This date is not the same as '
            f'X-Amz-Date: "{amz_date[:8]}".',
        )
    return _Parsed(
        credential=credential,
        signed_headers=signed,
        signature=fields["Signature"],
        amz_date=amz_date,
        request_time=when.astimezone(dt.UTC),
        presigned=False,
        expires=None,
        error_code=code,
    )


def _parse_query_auth(params: dict[str, list[str]]) -> _Parsed:
    code = "AuthorizationQueryParametersError"
    duplicated = [n for n in _PRESIGN_PARAMS if len(params.get(n, ())) > 1]
    if duplicated:
        raise StoreError(code, f"{duplicated[0]} is given more than once")
    if any(n not in params for n in _PRESIGN_PARAMS):
        raise StoreError(
            code,
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters.",
        )
    value = {n: params[n][0] for n in _PRESIGN_PARAMS}
    if value["X-Amz-Algorithm"] != ALGORITHM:
        raise StoreError(code, f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    credential = parse_credential(value["X-Amz-Credential"], code)
    amz_date = value["X-Amz-Date"]
    when = parse_amz_date(amz_date)
    if when is None:
        raise StoreError(
            code, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        )
    if credential.date != amz_date[:8]:
        raise StoreError(
            code,
            f'Invalid credential date "{credential.date}". This date is not the same as '
            f'X-Amz-Date: "{amz_date[:8]}".',
        )
    expires_text = value["X-Amz-Expires"]
    if not expires_text.isdigit() or not expires_text.isascii():
        raise StoreError(code, "X-Amz-Expires should be a non-negative number")
    expires = int(expires_text)
    if expires == 0:  # a URL that expires as it is made
        raise StoreError(code, "X-Amz-Expires must be at least 1 (seconds)")
    if expires > MAX_PRESIGN_EXPIRES:
        raise StoreError(
            code,
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}",
        )
    return _Parsed(
        credential=credential,
        signed_headers=_parse_signed_headers(value["X-Amz-SignedHeaders"], code),
        signature=value["X-Amz-Signature"],
        amz_date=amz_date,
        request_time=when,
        presigned=True,
        expires=expires,
        error_code=code,
    )


def _decoded_params(raw_query: str | bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for _, _, key, value in _query_pairs(raw_query):
        name = key.decode("utf-8", "replace")
        if name.startswith("X-Amz-") or name.startswith("x-amz-"):
            out.setdefault(name, []).append(value.decode("utf-8", "replace"))
    return out


def has_sigv4_credentials(request: SigV4Request) -> bool:
    """True when the request carries SigV4 credentials (header or presigned query)."""
    header = request.header("authorization")
    if header is not None and header.strip().startswith(ALGORITHM):
        return True
    params = _decoded_params(request.raw_query)
    return any(n in params for n in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"))


def _payload(request: SigV4Request, parsed: _Parsed, params: dict[str, list[str]]) -> str:
    value = request.header("x-amz-content-sha256")
    if parsed.presigned and "x-amz-content-sha256" not in parsed.signed_headers:
        # A presigned URL's canonical request ends in UNSIGNED-PAYLOAD unless the URL itself
        # names a payload hash; an unsigned header cannot change that.
        query_value = params.get("X-Amz-Content-Sha256") or params.get("X-Amz-Content-SHA256")
        value = query_value[0] if query_value else UNSIGNED_PAYLOAD
    if value is None:
        raise StoreError(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    value = value.strip()
    allowed = (
        (UNSIGNED_PAYLOAD, STREAMING_UNSIGNED_TRAILER)
        if parsed.presigned
        else (
            UNSIGNED_PAYLOAD,
            STREAMING_PAYLOAD,
            STREAMING_PAYLOAD_TRAILER,
            STREAMING_UNSIGNED_TRAILER,
        )
    )
    if value not in allowed and not _HEX64_RE.match(value):
        raise StoreError(
            "InvalidArgument",
            "x-amz-content-sha256 must be " + ", ".join(allowed) + " or a valid sha256 value.",
        )
    return value


def _check_time(parsed: _Parsed, now: dt.datetime, max_skew: dt.timedelta) -> dt.datetime | None:
    if not parsed.presigned:
        if abs(now - parsed.request_time) > max_skew:
            raise StoreError(
                "RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.",
                detail={
                    "RequestTime": parsed.amz_date,
                    "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "MaxAllowedSkewMilliseconds": int(max_skew.total_seconds() * 1000),
                },
            )
        return None
    assert parsed.expires is not None
    expires_at = parsed.request_time + dt.timedelta(seconds=parsed.expires)
    if now > expires_at:
        raise StoreError(
            "AccessDenied",
            "Request has expired",
            detail={
                "X-Amz-Expires": str(parsed.expires),
                "Expires": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    if parsed.request_time - now > max_skew:
        raise StoreError("AccessDenied", "Request is not valid yet")
    return expires_at


def _check_unsigned_amz_headers(request: SigV4Request, signed: tuple[str, ...]) -> None:
    unsigned = sorted(
        name
        for name in request.header_names
        if name.startswith("x-amz-")
        and name not in signed
        and name not in UNSIGNED_AMZ_HEADERS_ALLOWED
    )
    if unsigned:
        raise StoreError(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            detail={"HeadersNotSigned": ", ".join(unsigned)},
        )


def _content_length(request: SigV4Request) -> int | None:
    value = request.header("x-amz-decoded-content-length")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or not value.isascii():
        raise StoreError("InvalidArgument", "x-amz-decoded-content-length must be an integer")
    return int(value)


# --------------------------------------------------------------------------- verification


async def lookup_secret(lookup: KeyLookup, access_key_id: str) -> tuple[str, Principal]:
    """The secret and principal of an access key, or AWS's ``InvalidAccessKeyId``."""
    found = await lookup(access_key_id)
    if found is None:
        raise StoreError(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            detail={"AWSAccessKeyId": access_key_id},
        )
    return found


def signature_mismatch(access_key_id: str, **detail: str) -> StoreError:
    """AWS's ``SignatureDoesNotMatch``, with the elements it adds (``StringToSign`` …)."""
    return StoreError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        detail={"AWSAccessKeyId": access_key_id, **detail},
    )


async def verify_request(
    request: SigV4Request,
    lookup: KeyLookup,
    *,
    now: dt.datetime | None = None,
    max_skew: dt.timedelta = MAX_CLOCK_SKEW,
    region: str | None = None,
) -> SigV4Result | None:
    """Verify a request's SigV4 signature (header or presigned).

    Returns None when the request carries no SigV4 credentials at all; the principal and the
    body-checking context when the signature is valid. Raises :class:`StoreError` with
    ``AuthorizationHeaderMalformed`` / ``AuthorizationQueryParametersError`` (unparseable),
    ``AccessDenied`` (no valid date, presigned URL expired or not yet valid, unsigned
    ``x-amz-*`` headers), ``RequestTimeTooSkewed``, ``InvalidAccessKeyId``,
    ``SignatureDoesNotMatch``, ``InvalidRequest`` / ``InvalidArgument`` (missing or bad
    ``x-amz-content-sha256``, both header and query auth). With ``region``, a credential
    scope naming another region is refused (``AuthorizationHeaderMalformed`` /
    ``AuthorizationQueryParametersError`` with the expected ``Region``, as AWS answers).
    """
    header = request.header("authorization")
    params = _decoded_params(request.raw_query)
    by_header = header is not None and header.strip().startswith(ALGORITHM)
    by_query = any(n in params for n in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"))
    if not by_header and not by_query:
        return None
    if by_header and by_query:
        raise StoreError(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
            "Authorization header should be specified",
        )
    parsed = _parse_header_auth(request, header or "") if by_header else _parse_query_auth(params)
    if region is not None and parsed.credential.region != region:
        wrong = parsed.credential.region
        where = (
            "The authorization header is malformed"
            if by_header
            else "Error parsing the X-Amz-Credential parameter"
        )
        raise StoreError(
            parsed.error_code,
            f"{where}; the region '{wrong}' is wrong; expecting '{region}'",
            detail={"Region": region},
        )
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    expires_at = _check_time(parsed, now, max_skew)
    content_sha256 = _payload(request, parsed, params)
    _check_unsigned_amz_headers(request, parsed.signed_headers)

    credential = parsed.credential
    secret, principal = await lookup_secret(lookup, credential.access_key_id)
    signing_key = derive_signing_key(secret, credential.date, credential.region, SERVICE)
    exclude = ("X-Amz-Signature",) if parsed.presigned else ()
    headers = canonical_headers(request, parsed.signed_headers)

    candidates: list[tuple[str, str]] = [
        (
            canonical_uri(request.raw_path),
            canonical_query_string(request.raw_query, exclude=exclude),
        )
    ]
    raw_candidate = (
        wire_bytes(request.raw_path).decode("latin-1") or "/",
        _raw_query_string(request.raw_query, exclude=exclude),
    )
    if raw_candidate != candidates[0] and raw_candidate[0].isascii():
        candidates.append(raw_candidate)

    first: tuple[bytes, str] | None = None
    matched = False
    for uri, query in candidates:
        creq = build_canonical_request(
            request.method, uri, query, headers, parsed.signed_headers, content_sha256
        )
        sts = string_to_sign(parsed.amz_date, credential.scope, creq)
        if first is None:
            first = (creq, sts)
        # Evaluate every candidate so timing does not reveal which one matched.
        matched |= signatures_equal(sign(signing_key, sts), parsed.signature)
    if not matched:
        assert first is not None
        raise signature_mismatch(
            credential.access_key_id,
            StringToSign=first[1],
            CanonicalRequest=first[0].decode("latin-1"),
        )

    trailer = request.header("x-amz-trailer")
    context = SigV4Context(
        access_key_id=credential.access_key_id,
        region=credential.region,
        scope=credential.scope,
        amz_date=parsed.amz_date,
        signing_key=signing_key,
        seed_signature=parsed.signature,
        content_sha256=content_sha256,
        payload_mode=_MODES.get(content_sha256, PayloadMode.SHA256),
        presigned=parsed.presigned,
        signed_headers=parsed.signed_headers,
        request_time=parsed.request_time,
        expires_at=expires_at,
        decoded_content_length=_content_length(request),
        trailer_names=tuple(n.strip().lower() for n in (trailer or "").split(",") if n.strip()),
        content_encoding=request.header("content-encoding"),
    )
    return SigV4Result(principal, context)


class SigV4Authenticator:
    """The :class:`~zot_artifact_store.auth.authn.Authenticator` for S3 access keys.

    Returns None when the request carries no SigV4 credentials, the principal when they are
    valid, and raises :class:`StoreError` otherwise. The S3 handlers, which also need the
    :class:`SigV4Context` to check the body, call :func:`verify_request` directly.
    """

    def __init__(
        self,
        lookup: KeyLookup,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        region: str | None = None,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self.region = region

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        result = await self.verify(SigV4Request.from_auth_request(request))
        return None if result is None else result.principal

    async def verify(self, request: SigV4Request) -> SigV4Result | None:
        now = self._clock() if self._clock is not None else None
        return await verify_request(request, self._lookup, now=now, region=self.region)


def redact_presigned_query(raw_query: str) -> str:
    """The query with ``X-Amz-Signature`` (and ``X-Amz-Credential``'s key id kept) redacted,
    for access logs and traces."""
    parts = []
    for part in raw_query.split("&"):
        key, sep, _ = part.partition("=")
        if key.lower() in ("x-amz-signature", "x-amz-security-token"):
            parts.append(f"{key}{sep}REDACTED")
        else:
            parts.append(part)
    return "&".join(parts)
