"""aws-chunked properties: bodies framed by botocore (unsigned, checksum trailer) and signed
requests whose seed signature awscrt computed decode to the payload whatever the chunk size
and however the body is split on the wire; cut short or tampered, they are refused."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import io
import itertools
import random

import pytest
from awscrt import auth as crt_auth
from awscrt import http as crt_http
from botocore.httpchecksum import (
    AwsChunkedWrapper,
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_awschunked import AKID, SECRET, decode, lookup
from zot_artifact_store.auth.awschunked import AwsChunkedDecoder
from zot_artifact_store.auth.sigv4 import PayloadMode, SigV4Context, SigV4Request, verify_request
from zot_artifact_store.errors import StoreError
from zot_artifact_store.services.checksums import BodyChecksums, parse_checksum_headers

CHECKSUMS = {
    "CRC32": (Crc32Checksum, "x-amz-checksum-crc32"),
    "CRC32C": (CrtCrc32cChecksum, "x-amz-checksum-crc32c"),
    "CRC64NVME": (CrtCrc64NvmeChecksum, "x-amz-checksum-crc64nvme"),
    "SHA1": (Sha1Checksum, "x-amz-checksum-sha1"),
    "SHA256": (Sha256Checksum, "x-amz-checksum-sha256"),
}

# Payload sizes around the interesting edges (empty, one byte, chunk-sized) and up to ~130 KiB,
# made from a seed so that large payloads cost hypothesis nothing to generate.
SIZES = st.one_of(st.integers(0, 64), st.integers(0, 130_000))
CHUNK_SIZES = st.one_of(st.integers(1, 16), st.integers(1, 70_000))


def payload_of(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def split(total: int, seed: int, cuts: int) -> list[int]:
    """``total`` bytes as ``cuts + 1`` pieces at random places (how reads may split a body)."""
    points = sorted(random.Random(seed).sample(range(1, total), min(cuts, total - 1)))
    bounds = [0, *points, total]
    return [b - a for a, b in itertools.pairwise(bounds) if b > a]


def bounded(chunk_size: int, size: int) -> int:
    """At most ~200 chunks, so a large payload in tiny chunks does not cost seconds."""
    return max(chunk_size, size // 200)


@given(
    SIZES,
    CHUNK_SIZES,
    st.sampled_from(sorted(CHECKSUMS)),
    st.integers(0, 2**32),
    st.integers(0, 300),
)
def test_botocore_trailer_bodies_decode_however_split(
    size: int, chunk_size: int, algorithm: str, seed: int, cuts: int
) -> None:
    payload, chunk_size = payload_of(size, seed), bounded(chunk_size, size)
    checksum_cls, trailer = CHECKSUMS[algorithm]
    wire = AwsChunkedWrapper(
        io.BytesIO(payload), checksum_cls=checksum_cls, checksum_name=trailer, chunk_size=chunk_size
    ).read()
    expected = base64.b64encode(_digest(checksum_cls, payload))
    decoder = AwsChunkedDecoder(
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
        decoded_content_length=size,
        expected_trailers=[trailer],
    )
    assert decode(wire, decoder, split(len(wire), seed, cuts)) == payload
    assert decoder.checksum_trailers == {trailer: expected.decode()}
    checks = BodyChecksums(
        parse_checksum_headers(
            {"x-amz-trailer": trailer, "x-amz-sdk-checksum-algorithm": algorithm}
        )
    )
    checks.update(payload)
    assert checks.verify(decoder.trailers) == {algorithm: expected.decode()}


def _digest(checksum_cls: type, data: bytes) -> bytes:
    checksum = checksum_cls()
    checksum.update(data)
    return checksum.digest()


@given(SIZES, CHUNK_SIZES, st.integers(0, 2**32), st.floats(0, 1, exclude_max=True))
def test_a_body_cut_short_is_refused(size: int, chunk_size: int, seed: int, where: float) -> None:
    payload, chunk_size = payload_of(size, seed), bounded(chunk_size, size)
    wire = AwsChunkedWrapper(
        io.BytesIO(payload),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=chunk_size,
    ).read()
    cut = int(len(wire) * where)
    decoder = AwsChunkedDecoder(
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
        decoded_content_length=size,
        expected_trailers=["x-amz-checksum-crc32"],
    )
    with pytest.raises(StoreError) as info:
        decode(wire[:cut], decoder)
    assert info.value.code in ("IncompleteBody", "InvalidRequest")


# ---------------------------------------------------------------- signed chunks (awscrt seed)

WHEN = dt.datetime(2025, 6, 7, 8, 9, 10, tzinfo=dt.UTC)


def crt_signed_context(decoded_length: int) -> SigV4Context:
    """A streaming PUT whose seed signature awscrt computed, as our verifier accepts it."""
    request = crt_http.HttpRequest(
        "PUT",
        "/bkt/chunked%20object.bin",
        crt_http.HttpHeaders(
            [
                ("Host", "127.0.0.1:9000"),
                ("Content-Encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", str(decoded_length)),
            ]
        ),
    )
    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4,
        signature_type=crt_auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
        credentials_provider=crt_auth.AwsCredentialsProvider.new_static(AKID, SECRET),
        region="eu-west-3",
        service="s3",
        date=WHEN,
        use_double_uri_encode=False,
        should_normalize_uri_path=False,
        signed_body_value=crt_auth.AwsSignedBodyValue.STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
        signed_body_header_type=crt_auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
    )
    signed = crt_auth.aws_sign_request(request, config).result()
    path, _, query = signed.path.partition("?")
    result = asyncio.run(
        verify_request(SigV4Request("PUT", path, query, list(signed.headers)), lookup, now=WHEN)
    )
    assert result is not None
    return result.context


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_body(payload: bytes, chunk_size: int, seed_signature: str) -> bytes:
    """``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` framing, written from AWS's description
    (sigv4-streaming.html), independently of the server's encoder."""
    date = WHEN.strftime("%Y%m%d")
    scope = f"{date}/eu-west-3/s3/aws4_request"
    key = _hmac(f"AWS4{SECRET}".encode(), date)
    for part in ("eu-west-3", "s3", "aws4_request"):
        key = _hmac(key, part)
    empty = hashlib.sha256(b"").hexdigest()
    previous, out = seed_signature, bytearray()
    chunks = [payload[i : i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]
    for chunk in chunks:
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-PAYLOAD",
                WHEN.strftime("%Y%m%dT%H%M%SZ"),
                scope,
                previous,
                empty,
                hashlib.sha256(chunk).hexdigest(),
            )
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"
    return bytes(out)


@given(SIZES, CHUNK_SIZES, st.integers(0, 2**32), st.integers(0, 300))
def test_signed_chunks_decode_however_split(
    size: int, chunk_size: int, seed: int, cuts: int
) -> None:
    payload, chunk_size = payload_of(size, seed), bounded(chunk_size, size)
    ctx = crt_signed_context(size)
    assert ctx.payload_mode is PayloadMode.STREAMING_SIGNED
    wire = signed_body(payload, chunk_size, ctx.seed_signature)
    decoder = AwsChunkedDecoder.from_context(ctx)
    assert decode(wire, decoder, split(len(wire), seed, cuts)) == payload
    assert decoder.chunks == -(-size // chunk_size) + 1


@given(
    st.integers(1, 20_000), CHUNK_SIZES, st.integers(0, 2**32), st.floats(0, 1, exclude_max=True)
)
def test_a_changed_payload_byte_fails_its_chunk_signature(
    size: int, chunk_size: int, seed: int, where: float
) -> None:
    payload, chunk_size = bytearray(payload_of(size, seed)), bounded(chunk_size, size)
    ctx = crt_signed_context(size)
    wire = signed_body(bytes(payload), chunk_size, ctx.seed_signature)
    assert decode(wire, AwsChunkedDecoder.from_context(ctx)) == payload
    payload[int(size * where)] ^= 0x01
    # The original chunk signatures with one payload bit flipped.
    swapped = _with_data_of(wire, signed_body(bytes(payload), chunk_size, ctx.seed_signature))
    with pytest.raises(StoreError) as info:
        decode(swapped, AwsChunkedDecoder.from_context(ctx))
    assert info.value.code == "SignatureDoesNotMatch"


def _with_data_of(original: bytes, other: bytes) -> bytes:
    """``original``'s chunk headers (signatures) with ``other``'s chunk data."""
    out, i, j = bytearray(), 0, 0
    while i < len(original):
        head_end = original.index(b"\r\n", i) + 2
        other_head_end = other.index(b"\r\n", j) + 2
        size = int(original[i:head_end].split(b";", 1)[0], 16)
        out += original[i:head_end] + other[other_head_end : other_head_end + size] + b"\r\n"
        i = head_end + size + 2
        j = other_head_end + size + 2
    return bytes(out)
