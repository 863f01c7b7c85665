"""Incremental decoder for ``Content-Encoding: aws-chunked`` request bodies.

The wire format (``x-amz-content-sha256`` says which variant), each line ending in CRLF::

    <hex-size>;chunk-signature=<sig>    STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]
    <data>
    <hex-size>                          STREAMING-UNSIGNED-PAYLOAD-TRAILER
    <data>
    ...
    0[;chunk-signature=<sig>]
    [x-amz-checksum-crc32:<base64>]     trailers (the -TRAILER variants)
    [x-amz-trailer-signature:<sig>]     signed-trailer variant only
    <empty line>

Chunk *n*'s signature is ``HMAC(kSigning, "AWS4-HMAC-SHA256-PAYLOAD\\n" + amz-date + "\\n" +
scope + "\\n" + signature(n-1) + "\\n" + sha256("") + "\\n" + sha256(data_n))`` with the request
signature as signature(0); the trailer signature is ``HMAC(kSigning, "AWS4-HMAC-SHA256-TRAILER
\\n" + amz-date + "\\n" + scope + "\\n" + signature(final 0-chunk) + "\\n" +
sha256("name:value\\n" for each trailer, sorted by name))``.

:class:`AwsChunkedDecoder` is fed the body in whatever pieces the network delivers and hands
back the payload as ``memoryview`` slices of those pieces. It keeps at most one header or
trailer line (bounded) plus a running sha256 of the current chunk: chunk data is never
accumulated. A chunk's signature can only be checked when the chunk ends, so payload bytes are
handed out *before* they are verified: treat everything as untrusted until :meth:`finish`
returns (write to a temporary file, commit only afterwards).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import StoreError
from .sigv4 import (
    PayloadMode,
    SigV4Context,
    chunk_string_to_sign,
    sign,
    trailer_string_to_sign,
)

Buffer = bytes | bytearray | memoryview

MAX_LINE = 4096  # a chunk header is ~90 bytes; a trailer line a name and a base64 digest
MAX_TRAILER_BYTES = 16 * 1024
MAX_TRAILERS = 16
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_HEX_SIZE_RE = re.compile(rb"^[0-9a-fA-F]{1,16}$")
_SIG_RE = re.compile(r"^[0-9a-f]{64}$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")

_HEADER, _DATA, _DATA_CRLF, _TRAILER, _DONE = range(5)


def is_aws_chunked(content_encoding: str | None) -> bool:
    """True when ``Content-Encoding`` lists ``aws-chunked``."""
    if not content_encoding:
        return False
    return any(t.strip().lower() == "aws-chunked" for t in content_encoding.split(","))


def stored_content_encoding(content_encoding: str | None) -> str | None:
    """``Content-Encoding`` without ``aws-chunked`` (what S3 stores); None when nothing is left."""
    if not content_encoding:
        return None
    rest = [t.strip() for t in content_encoding.split(",")]
    rest = [t for t in rest if t and t.lower() != "aws-chunked"]
    return ",".join(rest) or None


def _malformed(message: str) -> StoreError:
    return StoreError("InvalidRequest", f"Malformed aws-chunked body: {message}")


@dataclass(frozen=True)
class _Signing:
    key: bytes
    amz_date: str
    scope: str


class AwsChunkedDecoder:
    """Incremental ``aws-chunked`` decoder; see the module docstring.

    The views :meth:`feed` returns point into the buffer it was given: write them out before
    reusing that buffer.

    ``mode`` is one of the streaming :class:`PayloadMode` values. Signed modes verify their
    chunk signatures with ``context`` (from
    :func:`~zot_artifact_store.auth.sigv4.verify_request`: signing key, date, scope and seed
    signature); without one they are only parsed. ``decoded_content_length`` (the
    ``x-amz-decoded-content-length`` header) is enforced when given; ``expected_trailers``
    (the names in ``x-amz-trailer``) must all arrive.
    """

    def __init__(
        self,
        mode: PayloadMode,
        *,
        context: SigV4Context | None = None,
        decoded_content_length: int | None = None,
        expected_trailers: Iterable[str] = (),
    ) -> None:
        if not mode.is_streaming:
            raise ValueError(f"{mode} is not an aws-chunked payload mode")
        self.mode = mode
        self._signed = mode.has_chunk_signatures
        self._signing: _Signing | None = None
        self._previous = ""
        # Without a context (authentication off: no secret to check against) a signed body's
        # chunk signatures are parsed but not verified.
        if self._signed and context is not None:
            self._signing = _Signing(context.signing_key, context.amz_date, context.scope)
            self._previous = context.seed_signature
        self.decoded_content_length = decoded_content_length
        self.expected_trailers = tuple(t.strip().lower() for t in expected_trailers if t.strip())
        self.trailers: dict[str, str] = {}
        self.trailer_signature: str | None = None
        self.decoded_length = 0
        self.chunks = 0
        self._state = _HEADER
        self._line = bytearray()
        self._remaining = 0  # data bytes left in the current chunk
        self._crlf_seen = 0  # bytes of the CRLF after chunk data seen so far
        self._chunk_hash: hashlib._Hash | None = None
        self._chunk_signature = ""
        self._trailer_bytes = 0
        self._blank_before_trailers = False

    @classmethod
    def from_context(cls, context: SigV4Context) -> AwsChunkedDecoder:
        """A decoder configured from a verified request's context."""
        return cls(
            context.payload_mode,
            context=context,
            decoded_content_length=context.decoded_content_length,
            expected_trailers=context.trailer_names,
        )

    # ----------------------------------------------------------------- results
    @property
    def done(self) -> bool:
        """True once the final chunk and the trailer section have been read."""
        return self._state == _DONE

    @property
    def checksum_trailers(self) -> dict[str, str]:
        """The ``x-amz-checksum-*`` trailers received (names lower-cased, values base64)."""
        return {k: v for k, v in self.trailers.items() if k.startswith("x-amz-checksum-")}

    # ----------------------------------------------------------------- input
    def feed(self, data: Buffer) -> list[memoryview]:
        """Consume the next piece of the body; return the payload bytes it completed.

        Raises :class:`StoreError` on malformed framing (``InvalidRequest``), a bad chunk or
        trailer signature (``SignatureDoesNotMatch``) or more payload than
        ``x-amz-decoded-content-length`` (``InvalidRequest``).
        """
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        out: list[memoryview] = []
        pos = 0
        end = len(view)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                piece = view[pos : pos + take]
                pos += take
                self._remaining -= take
                self._count(take)
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._end_of_data()
            elif state == _DATA_CRLF:
                expected = b"\r\n"[self._crlf_seen]
                if view[pos] != expected:
                    raise _malformed("chunk data is not followed by CRLF")
                pos += 1
                self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._state = _HEADER
            elif state in (_HEADER, _TRAILER):
                nl = _find_newline(view, pos, end)
                stop = end if nl < 0 else nl + 1
                limit = MAX_LINE + 2
                if len(self._line) + (stop - pos) > limit:
                    raise _malformed("line too long")
                self._line += view[pos:stop]
                pos = stop
                if nl >= 0:
                    line = bytes(self._line)
                    self._line.clear()
                    if not line.endswith(b"\r\n"):
                        raise _malformed("lines must end with CRLF")
                    if state == _HEADER:
                        self._chunk_header(line[:-2])
                    else:
                        self._trailer_line(line[:-2])
            else:  # _DONE
                raise _malformed("data after the end of the body")
        return out

    def finish(self) -> None:
        """Declare the end of the body; raise unless it was complete and consistent.

        ``IncompleteBody`` when the body stopped early or carried fewer bytes than
        ``x-amz-decoded-content-length``; ``InvalidRequest`` when a trailer named in
        ``x-amz-trailer`` never came; ``SignatureDoesNotMatch`` for a missing trailer signature.
        """
        if self._state == _TRAILER and not self._line:
            if self._blank_before_trailers:
                self._finish_trailers()  # "0\r\n\r\n" and no trailers: the body ends here
            elif not self.mode.has_trailer:
                # Tolerate a body whose final empty line is missing after the 0-chunk.
                self._finish_trailers()
        if not self.done:
            raise StoreError("IncompleteBody", "The request body terminated unexpectedly")
        if (
            self.decoded_content_length is not None
            and self.decoded_length != self.decoded_content_length
        ):
            raise StoreError(
                "IncompleteBody",
                "You did not provide the number of bytes specified by the "
                "x-amz-decoded-content-length HTTP header",
                detail={
                    "DecodedContentLength": str(self.decoded_content_length),
                    "ReceivedLength": str(self.decoded_length),
                },
            )
        missing = [t for t in self.expected_trailers if t not in self.trailers]
        if missing:
            raise StoreError(
                "InvalidRequest",
                f"The trailer {missing[0]} declared in x-amz-trailer was not sent",
            )

    # ----------------------------------------------------------------- internals
    def _count(self, n: int) -> None:
        self.decoded_length += n
        limit = self.decoded_content_length
        if limit is not None and self.decoded_length > limit:
            raise StoreError(
                "InvalidRequest",
                "The aws-chunked body carries more bytes than x-amz-decoded-content-length",
            )

    def _chunk_header(self, line: bytes) -> None:
        size_part, _, ext = line.partition(b";")
        size_part = size_part.strip()
        if not _HEX_SIZE_RE.match(size_part):
            raise _malformed(f"invalid chunk size {size_part[:32]!r}")
        size = int(size_part, 16)
        signature = ""
        if self._signed:
            name, sep, value = ext.partition(b"=")
            if name.strip() != b"chunk-signature" or not sep:
                raise _malformed("chunk-signature missing from a signed chunk")
            signature = value.strip().decode("ascii", "replace")
            if not _SIG_RE.match(signature):
                raise _malformed("chunk-signature is not 64 lower-case hex digits")
        if (
            self.decoded_content_length is not None
            and self.decoded_length + size > self.decoded_content_length
        ):
            raise StoreError(
                "InvalidRequest",
                "The aws-chunked body carries more bytes than x-amz-decoded-content-length",
            )
        self.chunks += 1
        self._chunk_signature = signature
        self._chunk_hash = hashlib.sha256() if self._signed else None
        if size == 0:
            self._verify_chunk()
            self._state = _TRAILER
        else:
            self._remaining = size
            self._state = _DATA

    def _end_of_data(self) -> None:
        self._verify_chunk()
        self._crlf_seen = 0
        self._state = _DATA_CRLF

    def _verify_chunk(self) -> None:
        if self._signing is None or self._chunk_hash is None:
            return
        s = self._signing
        expected = sign(
            s.key,
            chunk_string_to_sign(s.amz_date, s.scope, self._previous, self._chunk_hash.hexdigest()),
        )
        if not hmac.compare_digest(expected, self._chunk_signature):
            raise StoreError(
                "SignatureDoesNotMatch",
                "The chunk signature we calculated does not match the signature you provided "
                f"(chunk {self.chunks}).",
            )
        self._previous = expected
        self._chunk_hash = None

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            if self.mode.has_trailer and not self.trailers and not self._blank_before_trailers:
                # Some encoders put an empty line between the 0-chunk and the trailers; a body
                # may also legitimately end here. Stay ready for trailer lines.
                self._blank_before_trailers = True
                return
            self._finish_trailers()
            return
        if not self.mode.has_trailer:
            raise _malformed("trailing headers are not allowed for this x-amz-content-sha256")
        self._blank_before_trailers = False
        self._trailer_bytes += len(line)
        if self._trailer_bytes > MAX_TRAILER_BYTES or len(self.trailers) >= MAX_TRAILERS:
            raise _malformed("too many trailing headers")
        name_b, sep, value_b = line.partition(b":")
        name = name_b.strip().decode("latin-1").lower()
        if not sep or not _TOKEN_RE.match(name):
            raise _malformed("invalid trailing header line")
        value = value_b.strip().decode("latin-1")
        if name == TRAILER_SIGNATURE:
            if self.trailer_signature is not None:
                raise _malformed("x-amz-trailer-signature repeated")
            self.trailer_signature = value
            return
        if name in self.trailers:
            raise _malformed(f"trailing header {name} repeated")
        self.trailers[name] = value

    def _finish_trailers(self) -> None:
        if self.mode is PayloadMode.STREAMING_SIGNED_TRAILER:
            self._verify_trailer_signature()
        self._blank_before_trailers = False
        self._state = _DONE

    def _verify_trailer_signature(self) -> None:
        if self._signing is None:
            return
        provided = self.trailer_signature
        if provided is None:
            raise StoreError("SignatureDoesNotMatch", "x-amz-trailer-signature is missing")
        s = self._signing
        expected = sign(
            s.key,
            trailer_string_to_sign(
                s.amz_date, s.scope, self._previous, trailer_digest(self.trailers)
            ),
        )
        if not hmac.compare_digest(expected.encode(), provided.encode("latin-1")):
            raise StoreError(
                "SignatureDoesNotMatch",
                "The trailer signature we calculated does not match the signature you provided.",
            )


def _find_newline(view: memoryview, start: int, end: int) -> int:
    # memoryview has no find(); bytes(view) of a whole network read would copy it, so search
    # a bounded window (a line is at most MAX_LINE + 2 bytes).
    window = bytes(view[start : min(end, start + MAX_LINE + 3)])
    i = window.find(b"\n")
    return -1 if i < 0 else start + i


def trailer_digest(trailers: Mapping[str, str]) -> str:
    """Hex sha256 of the canonical trailing headers: ``name:value\\n`` sorted by name."""
    canonical = "".join(
        f"{name.lower()}:{value.strip()}\n" for name, value in sorted(trailers.items())
    )
    return hashlib.sha256(canonical.encode("latin-1")).hexdigest()


# --------------------------------------------------------------------------- encoding


def encode_aws_chunked(
    payload: bytes,
    chunk_size: int,
    *,
    context: SigV4Context | None = None,
    trailers: Mapping[str, str] | None = None,
) -> bytes:
    """Encode ``payload`` as ``aws-chunked``: signed (``context`` given) or unsigned.

    For tests and for clients this project ships; with ``trailers`` and a context the trailer
    is signed too (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``).
    """
    out = bytearray()
    previous = context.seed_signature if context is not None else ""
    offsets = [*range(0, len(payload), chunk_size), len(payload)]
    for start in offsets:
        chunk = payload[start : start + chunk_size] if start < len(payload) else b""
        if context is not None:
            previous = context.sign(
                chunk_string_to_sign(
                    context.amz_date, context.scope, previous, hashlib.sha256(chunk).hexdigest()
                )
            )
            out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode()
        else:
            out += f"{len(chunk):x}\r\n".encode()
        if chunk:
            out += chunk + b"\r\n"
    for name, value in (trailers or {}).items():
        out += f"{name}:{value}\r\n".encode("latin-1")
    if trailers is not None and context is not None:
        signature = context.sign(
            trailer_string_to_sign(
                context.amz_date, context.scope, previous, trailer_digest(trailers)
            )
        )
        out += f"{TRAILER_SIGNATURE}:{signature}\r\n".encode()
    out += b"\r\n"
    return bytes(out)
