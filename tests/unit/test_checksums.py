"""S3 flexible checksums: known vectors, incremental == one-shot, header expectations."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from botocore import httpchecksum

from zot_artifact_store.errors import StoreError
from zot_artifact_store.services import checksums
from zot_artifact_store.services.checksums import (
    CRC_ALGORITHMS,
    S3_ALGORITHMS,
    BodyChecksums,
    algorithm_for_header,
    checksum_b64,
    checksum_type_of,
    composite_checksum,
    full_object_crc,
    header_name,
    multipart_checksum,
    multipart_checksum_choice,
    new_checksum,
    parse_checksum_headers,
    py_crc32c,
    py_crc64nvme,
)

CHECK = b"123456789"
# The standard CRC check values (CRC catalogue: CRC-32/ISO-HDLC, CRC-32/ISCSI, CRC-64/NVME)
# and the usual digests of "123456789".
VECTORS = {
    "CRC32": "cbf43926",
    "CRC32C": "e3069283",
    "CRC64NVME": "ae8b14860a799888",
    "SHA1": "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
    "SHA256": "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
    "MD5": "25f9e794323b453885f5181f1b624d0b",
}


@pytest.mark.parametrize(("algorithm", "hexdigest"), list(VECTORS.items()))
def test_check_values(algorithm: str, hexdigest: str) -> None:
    calc = new_checksum(algorithm)
    calc.update(CHECK)
    assert calc.digest().hex() == hexdigest
    assert checksum_b64(algorithm, CHECK) == base64.b64encode(bytes.fromhex(hexdigest)).decode()


def test_s3_base64_forms() -> None:
    assert checksum_b64("CRC32", b"hello world") == "DUoRhQ=="  # 0x0d4a1185
    assert checksum_b64("CRC32", b"") == "AAAAAA=="
    assert checksum_b64("CRC64NVME", b"") == "AAAAAAAAAAA="
    assert checksum_b64("SHA256", b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    if "XXHASH64" in S3_ALGORITHMS:
        assert new_digest("XXHASH64", b"abc").hex() == "44bc2cf5ad770999"


def new_digest(algorithm: str, data: bytes) -> bytes:
    calc = new_checksum(algorithm)
    calc.update(data)
    return calc.digest()


@pytest.mark.parametrize("algorithm", [*S3_ALGORITHMS, "MD5"])
def test_incremental_equals_one_shot(algorithm: str) -> None:
    rng = random.Random(algorithm)
    data = rng.randbytes(300_000)
    expected = new_digest(algorithm, data)
    for _ in range(5):
        calc = new_checksum(algorithm)
        pos = 0
        while pos < len(data):
            n = rng.choice([1, 7, 4096, 65537, 200_000])
            piece = data[pos : pos + n]
            kind = rng.randrange(3)
            calc.update(memoryview(piece) if kind == 0 else bytearray(piece) if kind else piece)
            pos += n
        assert calc.digest() == expected
    assert new_digest(algorithm, data[:-1] + b"\x00") != expected or data[-1] == 0


@pytest.mark.parametrize("algorithm", S3_ALGORITHMS)
def test_same_as_botocore(algorithm: str) -> None:
    cls = httpchecksum._CHECKSUM_CLS.get(algorithm.lower())
    if cls is None:
        pytest.skip(f"botocore here has no {algorithm}")
    data = random.Random(1).randbytes(10_000)
    assert cls().handle(data) == checksum_b64(algorithm, data)


def test_pure_python_fallbacks_match_awscrt() -> None:
    assert py_crc32c(CHECK) == 0xE3069283
    assert py_crc64nvme(CHECK) == 0xAE8B14860A799888
    data = random.Random(2).randbytes(5000)
    assert py_crc32c(data[3000:], py_crc32c(data[:3000])) == int.from_bytes(
        new_digest("CRC32C", data), "big"
    )
    assert py_crc64nvme(data[10:], py_crc64nvme(data[:10])) == int.from_bytes(
        new_digest("CRC64NVME", data), "big"
    )


@pytest.mark.parametrize("algorithm", CRC_ALGORITHMS)
def test_full_object_crc_of_parts(algorithm: str) -> None:
    if not checksums.HAS_CRT:
        pytest.skip("combining CRCs needs awscrt")
    rng = random.Random(algorithm)
    parts = [rng.randbytes(n) for n in (5 * 1024 * 1024, 1, 777)]
    combined = full_object_crc(algorithm, [(new_digest(algorithm, p), len(p)) for p in parts])
    assert combined == new_digest(algorithm, b"".join(parts))


def test_composite_checksum() -> None:
    digests = [new_digest("SHA256", b"a"), new_digest("SHA256", b"b")]
    expected = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
    assert composite_checksum("SHA256", digests) == f"{expected}-2"


def test_multipart_checksum_choice() -> None:
    assert multipart_checksum_choice(None, None) == (None, None)
    assert multipart_checksum_choice("sha256", None) == ("SHA256", "COMPOSITE")
    assert multipart_checksum_choice("crc32", "full_object") == ("CRC32", "FULL_OBJECT")
    assert multipart_checksum_choice("CRC64NVME", None) == ("CRC64NVME", "FULL_OBJECT")
    for algorithm, kind in (
        (None, "COMPOSITE"),  # a type needs an algorithm
        ("SHA256", "FULL_OBJECT"),
        ("CRC64NVME", "COMPOSITE"),
        ("CRC32", "PARTIAL"),
        ("MD5", None),
    ):
        with pytest.raises(StoreError) as exc:
            multipart_checksum_choice(algorithm, kind)
        assert exc.value.code == "InvalidRequest"


def test_multipart_checksum_of_parts() -> None:
    parts = [b"a" * 10, b"bc"]
    values = [(checksum_b64("CRC32C", p), len(p)) for p in parts]
    composite = multipart_checksum("CRC32C", "COMPOSITE", values)
    assert composite == composite_checksum("CRC32C", [new_digest("CRC32C", p) for p in parts])
    assert checksum_type_of(composite) == "COMPOSITE"
    if checksums.HAS_CRT:
        full = multipart_checksum("CRC32C", "FULL_OBJECT", values)
        assert full == checksum_b64("CRC32C", b"".join(parts))
        assert checksum_type_of(full) == "FULL_OBJECT"


def test_header_names() -> None:
    assert header_name("crc64nvme") == "x-amz-checksum-crc64nvme"
    assert algorithm_for_header("X-Amz-Checksum-CRC32C") == "CRC32C"
    assert algorithm_for_header("x-amz-checksum-mode") is None
    assert algorithm_for_header("x-amz-checksum-type") is None
    assert algorithm_for_header("content-md5") is None


# --------------------------------------------------------------------------- expectations


def test_parse_header_checksum() -> None:
    value = checksum_b64("CRC32C", b"body")
    exp = parse_checksum_headers(
        {"X-Amz-Checksum-Crc32c": value, "x-amz-sdk-checksum-algorithm": "crc32c"}
    )
    assert exp.algorithm == "CRC32C"
    assert exp.expected == base64.b64decode(value)
    assert exp.trailer is None
    exp = parse_checksum_headers([("x-amz-sdk-checksum-algorithm", "SHA1")])
    assert (exp.algorithm, exp.expected) == ("SHA1", None)
    exp = parse_checksum_headers(
        {"x-amz-trailer": "x-amz-checksum-sha256", "x-amz-checksum-type": "full_object"}
    )
    assert (exp.algorithm, exp.trailer, exp.checksum_type) == (
        "SHA256",
        "x-amz-checksum-sha256",
        "FULL_OBJECT",
    )
    md5 = base64.b64encode(hashlib.md5(b"body").digest()).decode()
    assert parse_checksum_headers({"Content-MD5": md5}).content_md5 == hashlib.md5(b"body").digest()
    assert parse_checksum_headers({"x-amz-checksum-mode": "ENABLED"}).algorithm is None


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-checksum-crc32": "not base64!"},
        {"x-amz-checksum-crc32": base64.b64encode(b"12345").decode()},  # wrong length
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "A" * 27 + "="},
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-sdk-checksum-algorithm": "CRC32C"},
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-trailer": "x-amz-checksum-crc32"},
        {"x-amz-trailer": "x-amz-checksum-crc32, x-amz-checksum-sha1"},
        {"x-amz-trailer": "x-amz-checksum-whirlpool"},
        {"x-amz-checksum-whirlpool": "AAAA"},
        {"x-amz-sdk-checksum-algorithm": "ADLER32"},
        {"x-amz-checksum-type": "PARTIAL"},
    ],
)
def test_invalid_checksum_headers(headers: dict[str, str]) -> None:
    with pytest.raises(StoreError) as info:
        parse_checksum_headers(headers)
    assert (info.value.code, info.value.status) == ("InvalidRequest", 400)


@pytest.mark.parametrize("value", ["nope", base64.b64encode(b"short").decode()])
def test_invalid_content_md5(value: str) -> None:
    with pytest.raises(StoreError) as info:
        parse_checksum_headers({"Content-MD5": value})
    assert (info.value.code, info.value.status) == ("InvalidDigest", 400)


def test_body_checksums_verify_header_and_md5() -> None:
    body = random.Random(3).randbytes(100_000)
    headers = {
        "x-amz-checksum-sha256": checksum_b64("SHA256", body),
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }
    checks = BodyChecksums(parse_checksum_headers(headers), extra=["CRC64NVME"])
    for i in range(0, len(body), 4096):
        checks.update(memoryview(body)[i : i + 4096])
    stored = checks.verify()
    assert stored == {
        "SHA256": headers["x-amz-checksum-sha256"],
        "MD5": headers["Content-MD5"],
    }
    assert checks.b64("CRC64NVME") == checksum_b64("CRC64NVME", body)


@pytest.mark.parametrize("wrong", ["x-amz-checksum-sha256", "Content-MD5"])
def test_body_checksums_mismatch_is_bad_digest(wrong: str) -> None:
    body = b"the real body"
    headers = {
        "x-amz-checksum-sha256": checksum_b64("SHA256", body),
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }
    headers[wrong] = (
        checksum_b64("SHA256", b"other")
        if wrong.startswith("x-amz")
        else base64.b64encode(hashlib.md5(b"other").digest()).decode()
    )
    checks = BodyChecksums(parse_checksum_headers(headers))
    checks.update(body)
    with pytest.raises(StoreError) as info:
        checks.verify()
    assert (info.value.code, info.value.status) == ("BadDigest", 400)


def test_body_checksums_trailer() -> None:
    body = b"streamed"
    exp = parse_checksum_headers({"x-amz-trailer": "x-amz-checksum-crc32"})
    good = {"x-amz-checksum-crc32": checksum_b64("CRC32", body)}
    checks = BodyChecksums(exp)
    checks.update(body)
    assert checks.verify(good) == {"CRC32": good["x-amz-checksum-crc32"]}
    for trailers, code in (
        ({}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": "garbage"}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": checksum_b64("CRC32", b"x")}, "BadDigest"),
    ):
        checks = BodyChecksums(exp)
        checks.update(body)
        with pytest.raises(StoreError) as info:
            checks.verify(trailers)
        assert info.value.code == code


def test_algorithm_only_is_computed_not_verified() -> None:
    checks = BodyChecksums(parse_checksum_headers({"x-amz-sdk-checksum-algorithm": "CRC32"}))
    checks.update(b"hello world")
    assert checks.verify() == {"CRC32": "DUoRhQ=="}
    with pytest.raises(RuntimeError):
        checks.update(b"more")
