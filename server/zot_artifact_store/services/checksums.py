"""S3 flexible checksums: incremental calculators and request-header expectations.

S3 lets a client name one additional checksum per upload (``x-amz-checksum-<alg>`` header,
``x-amz-sdk-checksum-algorithm``, or an ``aws-chunked`` trailer announced by
``x-amz-trailer``) besides the legacy ``Content-MD5``. Values travel base64-encoded, CRCs as
their big-endian bytes.

CRCs come from ``awscrt.checksums`` (the CRT that awscli v2 and botocore use; hardware
accelerated). Without awscrt, CRC32 falls back to :func:`zlib.crc32` and CRC32C / CRC64NVME to
table-driven pure Python (correct, slow); the xxhash algorithms need awscrt. awscrt is
imported on the first checksum that needs it, not at start (issue 23: lean workers).

Use :func:`parse_checksum_headers` on the request headers, feed every body byte to
:meth:`BodyChecksums.update`, then call :meth:`BodyChecksums.verify` (with the trailer values
the aws-chunked decoder received, if any). A mismatch raises ``BadDigest``; a malformed or
contradictory declaration raises ``InvalidRequest`` (``InvalidDigest`` for Content-MD5).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib.util
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import StoreError
from ..lazy import lazy_module

# awscrt is a declared dependency (>= 0.32.2: the xxhash algorithms); checked without loading.
HAS_CRT = importlib.util.find_spec("awscrt") is not None
_crt = lazy_module("awscrt.checksums") if HAS_CRT else None

CHECKSUM_HEADER_PREFIX = "x-amz-checksum-"
SDK_ALGORITHM_HEADER = "x-amz-sdk-checksum-algorithm"
CHECKSUM_TYPE_HEADER = "x-amz-checksum-type"

Buffer = bytes | bytearray | memoryview


class Checksum(Protocol):
    """An incremental checksum (the hashlib shape)."""

    def update(self, data: Buffer, /) -> None: ...

    def digest(self) -> bytes: ...


# --------------------------------------------------------------------------- CRC primitives


def _reflected_table(poly: int, width: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc & ((1 << width) - 1))
    return table


_CRC32C_TABLE: list[int] | None = None
_CRC64NVME_TABLE: list[int] | None = None
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


def py_crc32c(data: Buffer, previous: int = 0) -> int:
    """CRC-32C (Castagnoli), pure Python; same contract as ``awscrt.checksums.crc32c``."""
    global _CRC32C_TABLE
    if _CRC32C_TABLE is None:
        _CRC32C_TABLE = _reflected_table(0x82F63B78, 32)
    table = _CRC32C_TABLE
    crc = previous ^ _MASK32
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK32


def py_crc64nvme(data: Buffer, previous: int = 0) -> int:
    """CRC-64/NVME, pure Python; same contract as ``awscrt.checksums.crc64nvme``."""
    global _CRC64NVME_TABLE
    if _CRC64NVME_TABLE is None:
        _CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5, 64)
    table = _CRC64NVME_TABLE
    crc = previous ^ _MASK64
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK64


def _zlib_crc32(data: Buffer, previous: int = 0) -> int:
    return zlib.crc32(data, previous) & _MASK32


_PY_CRCS: dict[str, Callable[[Any, int], int]] = {
    "crc32": _zlib_crc32,
    "crc32c": py_crc32c,
    "crc64nvme": py_crc64nvme,
}


def _crc_fn(name: str) -> Callable[[Any, int], int]:
    """awscrt's ``crc32`` / ``crc32c`` / ``crc64nvme`` (imported on first use), or the
    fallback without awscrt."""
    return getattr(_crt, name) if _crt is not None else _PY_CRCS[name]


class _Crc:
    def __init__(self, fn: Callable[[Any, int], int], width_bytes: int) -> None:
        self._fn = fn
        self._bytes = width_bytes
        self._crc = 0

    def update(self, data: Buffer, /) -> None:
        # awscrt wants a bytes-like object supporting the buffer protocol; memoryview works.
        self._crc = self._fn(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(self._bytes, "big")


class _XXHash:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self._h = factory()

    def update(self, data: Buffer, /) -> None:
        self._h.update(data if isinstance(data, bytes) else bytes(data))

    def digest(self) -> bytes:
        return bytes(self._h.finalize())


# --------------------------------------------------------------------------- algorithms

_FACTORIES: dict[str, Callable[[], Checksum]] = {
    "CRC32": lambda: _Crc(_crc_fn("crc32"), 4),
    "CRC32C": lambda: _Crc(_crc_fn("crc32c"), 4),
    "CRC64NVME": lambda: _Crc(_crc_fn("crc64nvme"), 8),
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
    "MD5": lambda: hashlib.md5(usedforsecurity=False),
}
_DIGEST_SIZES: dict[str, int] = {
    "CRC32": 4,
    "CRC32C": 4,
    "CRC64NVME": 8,
    "SHA1": 20,
    "SHA256": 32,
    "SHA512": 64,
    "MD5": 16,
}
if _crt is not None:
    _FACTORIES["XXHASH64"] = lambda: _XXHash(_crt.XXHash.new_xxhash64)
    _FACTORIES["XXHASH3"] = lambda: _XXHash(_crt.XXHash.new_xxhash3_64)
    _FACTORIES["XXHASH128"] = lambda: _XXHash(_crt.XXHash.new_xxhash3_128)
    _DIGEST_SIZES.update({"XXHASH64": 8, "XXHASH3": 8, "XXHASH128": 16})

#: Algorithms a client may name in ``x-amz-checksum-*`` (MD5 only travels as Content-MD5).
S3_ALGORITHMS: tuple[str, ...] = tuple(a for a in _FACTORIES if a != "MD5")
#: Algorithms whose multipart checksum can be FULL_OBJECT (combinable CRCs).
CRC_ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME")


def normalize_algorithm(name: str) -> str:
    """``"crc32c"`` → ``"CRC32C"``; raises ``InvalidRequest`` for an unsupported algorithm."""
    upper = name.strip().upper()
    if upper not in S3_ALGORITHMS:
        raise StoreError(
            "InvalidRequest",
            f"Checksum algorithm {name!r} is not supported; use one of {', '.join(S3_ALGORITHMS)}",
        )
    return upper


def new_checksum(algorithm: str) -> Checksum:
    """A fresh incremental calculator for an S3 algorithm name (or ``"MD5"``)."""
    upper = algorithm.upper()
    if upper == "MD5":
        return _FACTORIES["MD5"]()
    return _FACTORIES[normalize_algorithm(upper)]()


def digest_size(algorithm: str) -> int:
    """Length in bytes of the raw digest of ``algorithm``."""
    return _DIGEST_SIZES[algorithm.upper()]


def checksum_b64(algorithm: str, data: Buffer) -> str:
    """One-shot: the base64 form S3 uses for ``data`` under ``algorithm``."""
    calc = new_checksum(algorithm)
    calc.update(data)
    return base64.b64encode(calc.digest()).decode("ascii")


def header_name(algorithm: str) -> str:
    """``"CRC32"`` → ``"x-amz-checksum-crc32"``."""
    return CHECKSUM_HEADER_PREFIX + normalize_algorithm(algorithm).lower()


def algorithm_for_header(name: str) -> str | None:
    """``"x-amz-checksum-crc32"`` → ``"CRC32"``; None for other headers and ``-type``/``-mode``."""
    lower = name.strip().lower()
    if not lower.startswith(CHECKSUM_HEADER_PREFIX):
        return None
    suffix = lower[len(CHECKSUM_HEADER_PREFIX) :].upper()
    return suffix if suffix in S3_ALGORITHMS else None


def decode_checksum_value(algorithm: str, value: str, *, source: str | None = None) -> bytes:
    """Base64 checksum value → raw bytes, checked for the algorithm's digest length."""
    where = source or header_name(algorithm)
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise StoreError("InvalidRequest", f"Value for {where} header is invalid.") from None
    if len(raw) != digest_size(algorithm):
        raise StoreError("InvalidRequest", f"Value for {where} header is invalid.")
    return raw


def combine_crc(algorithm: str, crc1: int, crc2: int, len2: int) -> int:
    """CRC of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)`` (FULL_OBJECT multipart)."""
    upper = algorithm.upper()
    if _crt is not None:
        fn = {
            "CRC32": _crt.combine_crc32,
            "CRC32C": _crt.combine_crc32c,
            "CRC64NVME": _crt.combine_crc64nvme,
        }.get(upper)
        if fn is None:
            raise ValueError(f"{algorithm} is not a combinable CRC")
        return int(fn(crc1, crc2, len2))
    raise NotImplementedError("combining CRCs needs awscrt")  # pragma: no cover


def full_object_crc(algorithm: str, parts: Sequence[tuple[bytes, int]]) -> bytes:
    """FULL_OBJECT checksum of a multipart object from ``(part_digest, part_size)`` pairs."""
    width = digest_size(algorithm)
    crc = 0
    for i, (digest, size) in enumerate(parts):
        value = int.from_bytes(digest, "big")
        crc = value if i == 0 else combine_crc(algorithm, crc, value, size)
    return crc.to_bytes(width, "big")


def composite_checksum(algorithm: str, part_digests: Sequence[bytes]) -> str:
    """COMPOSITE multipart checksum: ``base64(alg(concat(part digests)))-N``."""
    calc = new_checksum(algorithm)
    for digest in part_digests:
        calc.update(digest)
    return f"{base64.b64encode(calc.digest()).decode('ascii')}-{len(part_digests)}"


#: Multipart checksum types, and the algorithms each allows (AWS: a COMPOSITE checksum of
#: CRC64NVME, or a FULL_OBJECT one of a secure hash, cannot be asked for).
MULTIPART_CHECKSUM_TYPES: dict[str, tuple[str, ...]] = {
    "COMPOSITE": ("CRC32", "CRC32C", "SHA1", "SHA256"),
    "FULL_OBJECT": CRC_ALGORITHMS,
}


def multipart_checksum_choice(
    algorithm: str | None, checksum_type: str | None
) -> tuple[str | None, str | None]:
    """CreateMultipartUpload's ``x-amz-checksum-algorithm`` and ``x-amz-checksum-type``
    checked and normalised: ``(ALGORITHM, TYPE)``, or ``(None, None)`` when none is asked for.
    The type defaults to FULL_OBJECT for CRC64NVME, COMPOSITE otherwise (as on AWS)."""
    if not algorithm:
        if checksum_type:
            raise StoreError(
                "InvalidRequest",
                "The x-amz-checksum-type header can only be used with the "
                "x-amz-checksum-algorithm header.",
            )
        return None, None
    upper = normalize_algorithm(algorithm)
    kind = (checksum_type or "").strip().upper() or (
        "FULL_OBJECT" if upper == "CRC64NVME" else "COMPOSITE"
    )
    if kind not in MULTIPART_CHECKSUM_TYPES:
        raise StoreError("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    if upper not in MULTIPART_CHECKSUM_TYPES[kind]:
        raise StoreError(
            "InvalidRequest",
            f"The {kind} checksum type cannot be used with the {upper.lower()} checksum algorithm.",
        )
    return upper, kind


def multipart_checksum(algorithm: str, checksum_type: str, parts: Sequence[tuple[str, int]]) -> str:
    """The checksum of an object completed from parts, from each part's ``(base64 checksum,
    size)``: ``base64(alg(concat(part digests)))-N`` for COMPOSITE, the CRC of the whole
    object (combined from the parts' CRCs) for FULL_OBJECT."""
    digests = [decode_checksum_value(algorithm, value) for value, _ in parts]
    if checksum_type == "FULL_OBJECT":
        combined = full_object_crc(
            algorithm, [(d, size) for d, (_, size) in zip(digests, parts, strict=True)]
        )
        return base64.b64encode(combined).decode("ascii")
    return composite_checksum(algorithm, digests)


def checksum_type_of(value: str) -> str:
    """``x-amz-checksum-type`` of a stored checksum: a composite one ends in ``-N`` (base64
    never holds a ``-``), any other is of the full object."""
    return "COMPOSITE" if "-" in value else "FULL_OBJECT"


# --------------------------------------------------------------------------- expectations


@dataclass
class ChecksumExpectation:
    """What a request promised about its body.

    ``algorithm`` is the one flexible checksum named (None when none); ``expected`` its raw
    value from a header (None when it is computed only, or arrives later in a trailer, see
    ``trailer``). ``content_md5`` is the raw Content-MD5 digest.
    """

    algorithm: str | None = None
    expected: bytes | None = None
    trailer: str | None = None
    content_md5: bytes | None = None
    checksum_type: str | None = None

    @property
    def trailer_algorithm(self) -> str | None:
        return algorithm_for_header(self.trailer) if self.trailer else None


def _header_items(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def parse_checksum_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> ChecksumExpectation:
    """Read ``x-amz-checksum-*``, ``x-amz-sdk-checksum-algorithm``, ``x-amz-trailer`` and
    ``Content-MD5`` into a :class:`ChecksumExpectation`.

    Raises ``InvalidRequest`` for an unknown algorithm, a malformed value, more than one
    ``x-amz-checksum-*`` value, or an SDK algorithm that contradicts the header or trailer;
    ``InvalidDigest`` for a malformed Content-MD5.
    """
    exp = ChecksumExpectation()
    sdk_algorithm: str | None = None
    header_algorithms: list[tuple[str, str]] = []
    for name, value in _header_items(headers):
        lower = name.strip().lower()
        if lower == "content-md5":
            try:
                raw = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 16:
                raise StoreError("InvalidDigest", "The Content-MD5 you specified was invalid.")
            exp.content_md5 = raw
        elif lower == SDK_ALGORITHM_HEADER:
            sdk_algorithm = normalize_algorithm(value)
        elif lower == CHECKSUM_TYPE_HEADER:
            kind = value.strip().upper()
            if kind not in ("COMPOSITE", "FULL_OBJECT"):
                raise StoreError("InvalidRequest", f"Value for {lower} header is invalid.")
            exp.checksum_type = kind
        elif lower == "x-amz-trailer":
            names = [n.strip().lower() for n in value.split(",") if n.strip()]
            checksums = [n for n in names if n.startswith(CHECKSUM_HEADER_PREFIX)]
            if len(checksums) > 1:
                raise StoreError("InvalidRequest", "Expecting a single x-amz-checksum- trailer")
            if checksums:
                if algorithm_for_header(checksums[0]) is None:
                    raise StoreError(
                        "InvalidRequest", f"The trailer {checksums[0]!r} is not supported"
                    )
                exp.trailer = checksums[0]
        elif lower.startswith(CHECKSUM_HEADER_PREFIX) and lower != "x-amz-checksum-mode":
            algorithm = algorithm_for_header(lower)
            if algorithm is None:
                raise StoreError("InvalidRequest", f"The header {lower!r} is not supported")
            header_algorithms.append((algorithm, value))

    if len(header_algorithms) > 1:
        raise StoreError("InvalidRequest", "Expecting a single x-amz-checksum- header")
    if header_algorithms:
        algorithm, value = header_algorithms[0]
        exp.algorithm = algorithm
        exp.expected = decode_checksum_value(algorithm, value)
    trailer_algorithm = exp.trailer_algorithm
    if trailer_algorithm is not None:
        if exp.algorithm is not None:
            raise StoreError(
                "InvalidRequest", "Expecting a single x-amz-checksum- header or trailer"
            )
        exp.algorithm = trailer_algorithm
    if sdk_algorithm is not None:
        if exp.algorithm is None:
            exp.algorithm = sdk_algorithm
        elif exp.algorithm != sdk_algorithm:
            raise StoreError(
                "InvalidRequest",
                f"Value for x-amz-sdk-checksum-algorithm header is invalid: {sdk_algorithm} "
                f"does not match {exp.algorithm}",
            )
    return exp


@dataclass
class BodyChecksums:
    """Computes, while the body streams, everything a :class:`ChecksumExpectation` needs.

    ``extra`` names algorithms to compute even if the client did not ask (e.g. ``"SHA256"``
    to verify ``x-amz-content-sha256``, or a bucket's default CRC).
    """

    expectation: ChecksumExpectation
    extra: Sequence[str] = ()
    _calcs: dict[str, Checksum] = field(init=False, default_factory=dict)
    _digests: dict[str, bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        names: list[str] = []
        if self.expectation.algorithm:
            names.append(self.expectation.algorithm)
        if self.expectation.content_md5 is not None:
            names.append("MD5")
        names.extend(a.upper() for a in self.extra)
        for name in names:
            if name not in self._calcs:
                self._calcs[name] = new_checksum(name)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self._calcs)

    def update(self, data: Buffer) -> None:
        if self._digests is not None:
            raise RuntimeError("update() after digests()")
        for calc in self._calcs.values():
            calc.update(data)

    def digests(self) -> dict[str, bytes]:
        """Raw digests by algorithm name; finalises the calculators."""
        if self._digests is None:
            self._digests = {name: calc.digest() for name, calc in self._calcs.items()}
        return self._digests

    def b64(self, algorithm: str) -> str:
        return base64.b64encode(self.digests()[algorithm.upper()]).decode("ascii")

    def verify(self, trailers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Check the body against every promise; returns ``{algorithm: base64}`` of the
        flexible checksum (and MD5) to store.

        ``trailers`` are the trailing headers an aws-chunked body carried (names lower case).
        Raises ``BadDigest`` on a mismatch, ``InvalidRequest`` when a declared trailer is
        missing or malformed.
        """
        exp = self.expectation
        digests = self.digests()
        if exp.content_md5 is not None and not _equal(digests["MD5"], exp.content_md5):
            raise StoreError(
                "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        expected = exp.expected
        if exp.trailer is not None:
            value = None
            for name, val in (trailers or {}).items():
                if name.lower() == exp.trailer:
                    value = val
            if value is None:
                raise StoreError(
                    "InvalidRequest",
                    f"The trailer {exp.trailer} declared in x-amz-trailer is missing",
                )
            algorithm = exp.trailer_algorithm
            assert algorithm is not None  # validated by parse_checksum_headers
            expected = decode_checksum_value(algorithm, value, source=exp.trailer)
        if exp.algorithm is not None and expected is not None:
            if not _equal(digests[exp.algorithm], expected):
                raise StoreError(
                    "BadDigest",
                    f"The {exp.algorithm} you specified did not match the calculated checksum.",
                )
        out: dict[str, str] = {}
        if exp.algorithm is not None:
            out[exp.algorithm] = self.b64(exp.algorithm)
        if "MD5" in digests:
            out["MD5"] = self.b64("MD5")
        return out


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
