"""aws-chunked decoding: AWS's published example, botocore's encoder, every byte boundary."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import io
import random
import zlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, CrtCrc32cChecksum

from zot_artifact_store.auth.awschunked import (
    AwsChunkedDecoder,
    encode_aws_chunked,
    is_aws_chunked,
    stored_content_encoding,
)
from zot_artifact_store.auth.principal import Principal
from zot_artifact_store.auth.sigv4 import PayloadMode, SigV4Context, SigV4Request, verify_request
from zot_artifact_store.errors import StoreError
from zot_artifact_store.services.checksums import BodyChecksums, parse_checksum_headers

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
BOB = Principal(id="s3key:bob", name="bob", source="s3key")


async def lookup(access_key_id: str) -> tuple[str, Principal] | None:
    return (SECRET, BOB) if access_key_id == AKID else None


# docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html: a 66560-byte object of 'a's
# uploaded in 64 KiB chunks.
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
EXAMPLE_PAYLOAD = b"a" * 66560
EXAMPLE_REQUEST = SigV4Request(
    "PUT",
    "/examplebucket/chunkObject.txt",
    "",
    {
        "Host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/"
        "aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;"
        f"x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "Content-Length": "66824",
    },
)
EXAMPLE_WIRE = (
    f"10000;chunk-signature={CHUNK_SIGS[0]}\r\n".encode()
    + b"a" * 65536
    + b"\r\n"
    + f"400;chunk-signature={CHUNK_SIGS[1]}\r\n".encode()
    + b"a" * 1024
    + b"\r\n"
    + f"0;chunk-signature={CHUNK_SIGS[2]}\r\n\r\n".encode()
)


def example_context() -> SigV4Context:
    now = dt.datetime(2013, 5, 24, 0, 1, tzinfo=dt.UTC)
    result = asyncio.run(verify_request(EXAMPLE_REQUEST, lookup, now=now))
    assert result is not None
    return result.context


def decode(wire: bytes, decoder: AwsChunkedDecoder, pieces: Iterable[int] | None = None) -> bytes:
    """Feed ``wire`` in pieces of the given sizes (all at once by default); return the payload."""
    out = bytearray()
    pos = 0
    for size in pieces if pieces is not None else [len(wire)]:
        for view in decoder.feed(wire[pos : pos + size]):
            assert isinstance(view, memoryview)
            out += view
        pos += size
    assert pos >= len(wire)
    decoder.finish()
    return bytes(out)


def random_pieces(total: int, rng: random.Random, largest: int) -> list[int]:
    sizes = []
    while total > 0:
        n = min(total, rng.randint(1, largest))
        sizes.append(n)
        total -= n
    return sizes


def test_example_request_and_wire() -> None:
    ctx = example_context()
    assert ctx.payload_mode is PayloadMode.STREAMING_SIGNED
    assert ctx.seed_signature == SEED
    assert ctx.decoded_content_length == 66560
    assert len(EXAMPLE_WIRE) == 66824  # the example's Content-Length
    # Our encoder reproduces the published body byte for byte.
    assert encode_aws_chunked(EXAMPLE_PAYLOAD, 65536, context=ctx) == EXAMPLE_WIRE


def test_example_decodes_whole_without_copying() -> None:
    decoder = AwsChunkedDecoder.from_context(example_context())
    views = decoder.feed(EXAMPLE_WIRE)
    assert [len(v) for v in views] == [65536, 1024]
    assert all(v.obj is EXAMPLE_WIRE for v in views)  # slices of the input, not copies
    decoder.finish()
    assert b"".join(views) == EXAMPLE_PAYLOAD
    assert decoder.done and decoder.chunks == 3 and decoder.decoded_length == 66560


def test_example_decodes_one_byte_at_a_time() -> None:
    decoder = AwsChunkedDecoder.from_context(example_context())
    assert decode(EXAMPLE_WIRE, decoder, [1] * len(EXAMPLE_WIRE)) == EXAMPLE_PAYLOAD


@pytest.mark.parametrize("seed", range(20))
def test_example_decodes_at_random_splits(seed: int) -> None:
    rng = random.Random(seed)
    pieces = random_pieces(len(EXAMPLE_WIRE), rng, rng.choice([3, 100, 5000, 70000]))
    decoder = AwsChunkedDecoder.from_context(example_context())
    assert decode(EXAMPLE_WIRE, decoder, pieces) == EXAMPLE_PAYLOAD


def test_every_split_point_of_a_small_signed_body() -> None:
    ctx = example_context()
    payload = bytes(range(256)) * 3
    wire = encode_aws_chunked(payload, 300, context=ctx)
    for cut in range(len(wire) + 1):
        decoder = AwsChunkedDecoder(
            PayloadMode.STREAMING_SIGNED, context=ctx, decoded_content_length=len(payload)
        )
        assert decode(wire, decoder, [cut, len(wire) - cut]) == payload


@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_bad_chunk_signature(chunk: int) -> None:
    bad_sig = CHUNK_SIGS[chunk][:-1] + ("0" if CHUNK_SIGS[chunk][-1] != "0" else "1")
    wire = EXAMPLE_WIRE.replace(CHUNK_SIGS[chunk].encode(), bad_sig.encode())
    decoder = AwsChunkedDecoder.from_context(example_context())
    with pytest.raises(StoreError) as info:
        decode(wire, decoder, [4096] * 17)
    assert (info.value.code, info.value.status) == ("SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("offset", [200, 65536 + 80, 66560])
def test_tampered_data_fails_its_chunk_signature(offset: int) -> None:
    wire = bytearray(EXAMPLE_WIRE)
    assert wire[offset] == ord("a")
    wire[offset] = ord("b")
    decoder = AwsChunkedDecoder.from_context(example_context())
    with pytest.raises(StoreError) as info:
        decode(bytes(wire), decoder)
    assert info.value.code == "SignatureDoesNotMatch"


def test_chunk_signatures_chain_from_the_seed() -> None:
    ctx = dataclasses.replace(example_context(), seed_signature="0" * 64)
    with pytest.raises(StoreError) as info:
        decode(EXAMPLE_WIRE, AwsChunkedDecoder.from_context(ctx))
    assert info.value.code == "SignatureDoesNotMatch"
    # Swapping two valid chunks breaks the chain as well.
    ctx = example_context()
    first, rest = EXAMPLE_WIRE[: 65536 + 90], EXAMPLE_WIRE[65536 + 90 :]
    second, final = rest[: 1024 + 88], rest[1024 + 88 :]
    assert second.startswith(b"400;") and final.startswith(b"0;")
    swapped = second + first + final
    decoder = AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED, context=ctx)
    with pytest.raises(StoreError) as info:
        decode(swapped, decoder)
    assert info.value.code == "SignatureDoesNotMatch"


def test_truncated_body_is_incomplete() -> None:
    ctx = example_context()
    payload = b"0123456789" * 30
    wire = encode_aws_chunked(payload, 128, context=ctx)
    complete_at = {len(wire), len(wire) - 2}  # the final empty line may be missing
    for cut in range(len(wire)):
        decoder = AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED, context=ctx)
        decoder.feed(wire[:cut])
        if cut in complete_at:
            decoder.finish()
            continue
        with pytest.raises(StoreError) as info:
            decoder.finish()
        assert (info.value.code, info.value.status) == ("IncompleteBody", 400), cut


def test_decoded_content_length_is_enforced() -> None:
    ctx = example_context()
    decoder = AwsChunkedDecoder(
        PayloadMode.STREAMING_SIGNED, context=ctx, decoded_content_length=66561
    )
    with pytest.raises(StoreError) as info:
        decode(EXAMPLE_WIRE, decoder)
    assert info.value.code == "IncompleteBody"
    decoder = AwsChunkedDecoder(
        PayloadMode.STREAMING_SIGNED, context=ctx, decoded_content_length=66559
    )
    with pytest.raises(StoreError) as info:
        decoder.feed(EXAMPLE_WIRE)
    assert info.value.code == "InvalidRequest"
    assert decoder.decoded_length <= 66559


UNSIGNED = PayloadMode.STREAMING_UNSIGNED_TRAILER


@pytest.mark.parametrize(
    ("mode", "wire"),
    [
        (UNSIGNED, b"zz\r\nhello\r\n0\r\n\r\n"),  # not hex
        (UNSIGNED, b"\r\n"),  # empty size
        (UNSIGNED, b"12345678901234567\r\n"),  # absurd size
        (UNSIGNED, b"5\r\nhelloXY0\r\n\r\n"),  # data not followed by CRLF
        (UNSIGNED, b"5\nhello\r\n0\r\n\r\n"),  # bare LF
        (UNSIGNED, b"5" * 5000),  # a header line that never ends
        (UNSIGNED, b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\nextra"),  # data after the end
        (PayloadMode.STREAMING_SIGNED, EXAMPLE_WIRE + b"\r\n"),
        (UNSIGNED, b"0\r\nnot a header line\r\n\r\n"),
        (UNSIGNED, b"0\r\nx-amz-checksum-crc32:a\r\nx-amz-checksum-crc32:b\r\n\r\n"),
        (PayloadMode.STREAMING_SIGNED, b"5\r\nhello\r\n"),  # no chunk-signature
        (PayloadMode.STREAMING_SIGNED, b"5;chunk-signature=abc\r\nhello\r\n"),
        (PayloadMode.STREAMING_SIGNED, b"5;chunk-sig=" + b"0" * 64 + b"\r\nhello\r\n"),
    ],
)
def test_malformed_framing(mode: PayloadMode, wire: bytes) -> None:
    decoder = AwsChunkedDecoder(mode, context=example_context())
    with pytest.raises(StoreError) as info:
        decode(wire, decoder)
    assert (info.value.code, info.value.status) == ("InvalidRequest", 400)
    assert "aws-chunked" in info.value.message


def test_trailers_refused_without_a_trailer_mode() -> None:
    ctx = example_context()
    wire = EXAMPLE_WIRE[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    with pytest.raises(StoreError) as info:
        decode(wire, AwsChunkedDecoder.from_context(ctx))
    assert info.value.code == "InvalidRequest"


# --------------------------------------------------------------------------- trailers


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def botocore_body(payload: bytes, chunk_size: int, checksum_cls: Any, name: str) -> bytes:
    wrapper = AwsChunkedWrapper(
        io.BytesIO(payload), checksum_cls=checksum_cls, checksum_name=name, chunk_size=chunk_size
    )
    return wrapper.read()


@pytest.mark.parametrize("size", [0, 1, 1000, 65536, 100_001])
def test_botocore_unsigned_trailer_body(size: int) -> None:
    payload = random.Random(size).randbytes(size)
    wire = botocore_body(payload, 8192, Crc32Checksum, "x-amz-checksum-crc32")
    assert wire.endswith(f"0\r\nx-amz-checksum-crc32:{crc32_b64(payload)}\r\n\r\n".encode())
    rng = random.Random(size + 1)
    for pieces in ([1] * len(wire) if size <= 1000 else None, random_pieces(len(wire), rng, 999)):
        decoder = AwsChunkedDecoder(
            UNSIGNED,
            decoded_content_length=size,
            expected_trailers=["x-amz-checksum-crc32"],
        )
        assert decode(wire, decoder, pieces) == payload
        assert decoder.checksum_trailers == {"x-amz-checksum-crc32": crc32_b64(payload)}
        checks = BodyChecksums(
            parse_checksum_headers(
                {"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32"}
            )
        )
        checks.update(payload)
        assert checks.verify(decoder.trailers) == {"CRC32": crc32_b64(payload)}


def test_botocore_trailer_with_wrong_checksum_is_bad_digest() -> None:
    payload = b"some object bytes" * 100
    wire = botocore_body(payload, 500, CrtCrc32cChecksum, "x-amz-checksum-crc32c")
    decoder = AwsChunkedDecoder(UNSIGNED, expected_trailers=["x-amz-checksum-crc32c"])
    decoded = decode(wire, decoder)
    checks = BodyChecksums(parse_checksum_headers({"X-Amz-Trailer": "x-amz-checksum-crc32c"}))
    checks.update(decoded[:-1] + b"!")  # what a corrupted store would have hashed
    with pytest.raises(StoreError) as info:
        checks.verify(decoder.trailers)
    assert (info.value.code, info.value.status) == ("BadDigest", 400)


def test_boto3_put_object_stream_end_to_end() -> None:
    """boto3 ≥ 1.36 over https: STREAMING-UNSIGNED-PAYLOAD-TRAILER with a checksum trailer."""
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)

        class Raw:
            def stream(self, *a: Any, **k: Any) -> Iterable[bytes]:
                yield b""

        return AWSResponse(request.url, 200, {"ETag": '"0"'}, Raw())

    client = boto3.client(
        "s3",
        endpoint_url="https://127.0.0.1:9443",
        region_name="us-east-2",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.meta.events.register("before-send.s3", capture)
    payload = random.Random(7).randbytes(200_000)
    client.put_object(
        Bucket="bkt", Key="ü/obj", Body=io.BytesIO(payload), ChecksumAlgorithm="CRC64NVME"
    )
    prepared = sent[-1]
    parts = urlsplit(prepared.url)
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items()]
    req = SigV4Request("PUT", parts.path, parts.query, headers)
    stamp = dt.datetime.strptime(req.header("x-amz-date") or "", "%Y%m%dT%H%M%SZ")
    result = asyncio.run(verify_request(req, lookup, now=stamp.replace(tzinfo=dt.UTC)))
    assert result is not None
    ctx = result.context
    assert ctx.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    assert is_aws_chunked(ctx.content_encoding)
    wire = prepared.body.read()
    decoder = AwsChunkedDecoder.from_context(ctx)
    checks = BodyChecksums(parse_checksum_headers(headers))
    for piece in random_pieces(len(wire), random.Random(3), 7000):
        for view in decoder.feed(wire[:piece]):
            checks.update(view)
        wire = wire[piece:]
    decoder.finish()
    assert decoder.decoded_length == len(payload)
    stored = checks.verify(decoder.trailers)
    assert set(stored) == {"CRC64NVME"}
    assert decoder.checksum_trailers == {"x-amz-checksum-crc64nvme": stored["CRC64NVME"]}


def signed_trailer_context() -> SigV4Context:
    return dataclasses.replace(example_context(), payload_mode=PayloadMode.STREAMING_SIGNED_TRAILER)


def test_signed_trailer_round_trip() -> None:
    ctx = signed_trailer_context()
    payload = b"hello, trailer" * 1000
    trailers = {"x-amz-checksum-crc32": crc32_b64(payload)}
    wire = encode_aws_chunked(payload, 4096, context=ctx, trailers=trailers)
    assert b"\r\nx-amz-trailer-signature:" in wire
    for pieces in (None, [1] * len(wire), random_pieces(len(wire), random.Random(5), 300)):
        decoder = AwsChunkedDecoder(
            ctx.payload_mode, context=ctx, expected_trailers=["x-amz-checksum-crc32"]
        )
        assert decode(wire, decoder, pieces) == payload
        assert decoder.trailers == trailers
        assert decoder.trailer_signature is not None


@pytest.mark.parametrize("damage", ["value", "signature", "missing-signature", "extra"])
def test_signed_trailer_tampering(damage: str) -> None:
    ctx = signed_trailer_context()
    payload = b"payload"
    good = crc32_b64(payload)
    wire = encode_aws_chunked(payload, 4096, context=ctx, trailers={"x-amz-checksum-crc32": good})
    head, _, sig_line = wire[:-2].rpartition(b"x-amz-trailer-signature:")
    if damage == "value":
        wire = wire.replace(good.encode(), crc32_b64(b"other").encode())
    elif damage == "signature":
        wire = head + b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n"
    elif damage == "missing-signature":
        wire = head + b"\r\n"
    else:
        wire = head + b"x-amz-meta-injected:1\r\nx-amz-trailer-signature:" + sig_line + b"\r\n"
    decoder = AwsChunkedDecoder(ctx.payload_mode, context=ctx)
    with pytest.raises(StoreError) as info:
        decode(wire, decoder)
    assert info.value.code == "SignatureDoesNotMatch"


def test_declared_trailer_must_arrive() -> None:
    decoder = AwsChunkedDecoder(UNSIGNED, expected_trailers=["x-amz-checksum-sha256"])
    with pytest.raises(StoreError) as info:
        decode(b"5\r\nhello\r\n0\r\n\r\n", decoder)
    assert info.value.code == "InvalidRequest"
    decoder = AwsChunkedDecoder(UNSIGNED, expected_trailers=["x-amz-checksum-sha256"])
    with pytest.raises(StoreError) as info:
        decode(b"5\r\nhello\r\n0\r\n", decoder)  # stopped before the trailers
    assert info.value.code == "IncompleteBody"


def test_blank_line_before_trailers_is_tolerated() -> None:
    value = crc32_b64(b"hello")
    wire = f"5\r\nhello\r\n0\r\n\r\nx-amz-checksum-crc32:{value}\r\n\r\n".encode()
    decoder = AwsChunkedDecoder(UNSIGNED, expected_trailers=["x-amz-checksum-crc32"])
    assert decode(wire, decoder, [1] * len(wire)) == b"hello"
    assert decoder.trailers == {"x-amz-checksum-crc32": value}


def test_unsigned_mode_ignores_chunk_extensions_and_needs_no_context() -> None:
    decoder = AwsChunkedDecoder(UNSIGNED)
    assert decode(b"5;ext=1\r\nhello\r\n3\r\n!!!\r\n0\r\n\r\n", decoder) == b"hello!!!"
    with pytest.raises(ValueError):
        AwsChunkedDecoder(PayloadMode.UNSIGNED)


def test_signed_mode_without_context_parses_but_does_not_verify() -> None:
    # Authentication off: no secret to verify with, but the framing is still enforced.
    sig = "0" * 64
    wire = f"5;chunk-signature={sig}\r\nhello\r\n0;chunk-signature={sig}\r\n\r\n".encode()
    decoder = AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED)
    assert decode(wire, decoder) == b"hello"
    with pytest.raises(StoreError) as info:
        decode(b"5\r\nhello\r\n0\r\n\r\n", AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED))
    assert info.value.code == "InvalidRequest"


def test_content_encoding_helpers() -> None:
    assert is_aws_chunked("aws-chunked")
    assert is_aws_chunked("gzip, AWS-Chunked")
    assert not is_aws_chunked("gzip")
    assert not is_aws_chunked(None)
    assert stored_content_encoding("aws-chunked") is None
    assert stored_content_encoding("gzip,aws-chunked") == "gzip"
    assert stored_content_encoding("aws-chunked, gzip, br") == "gzip,br"
