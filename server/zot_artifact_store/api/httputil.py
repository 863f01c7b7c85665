"""HTTP semantics shared by every API: ranges, conditional requests, dates (RFC 9110).

Pure functions over header values, so S3, OCI and ``/v1`` answer the same way.
"""

from __future__ import annotations

import email.utils
import functools
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import NotModified, StoreError

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """A single ``Range: bytes=…`` against an entity of ``size`` bytes.

    Returns None to serve the whole entity (no header, a syntactically invalid one, or several
    ranges, which we do not serve as multipart). Raises ``InvalidRange`` (416) when the range
    cannot be satisfied.
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size)
    start = int(first)
    if last != "" and int(last) < start:
        return None  # invalid: ignored, per RFC 9110 §14.1.1
    if start >= size:
        raise _unsatisfiable(size)
    end = size if last == "" else min(int(last) + 1, size)
    return ByteRange(start, end)


def _unsatisfiable(size: int) -> StoreError:
    return StoreError(
        "InvalidRange",
        f"the requested range is not satisfiable for an entity of {size} bytes",
        headers={"Content-Range": f"bytes */{size}"},
    )


def http_date(ts: float) -> str:
    return _http_date(int(ts))


@functools.lru_cache(maxsize=4096)
def _http_date(second: int) -> str:
    """The HTTP date of a whole second (objects' Last-Modified repeat: formatted once)."""
    return email.utils.formatdate(second, usegmt=True)


def parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed is not None else None


def _etag_list(value: str) -> list[str]:
    return [v.strip().removeprefix("W/").strip('"') for v in value.split(",") if v.strip()]


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


def check_preconditions(
    headers: Mapping[str, str], etag: str, last_modified: float, *, is_read: bool
) -> None:
    """Evaluate If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since in the
    order RFC 9110 §13.2.2 gives (which is also S3's precedence).

    Raises ``PreconditionFailed`` (412), or :class:`NotModified` for a read whose
    If-None-Match / If-Modified-Since says the client's copy is current.
    """
    modified = int(last_modified)
    if_match = headers.get("If-Match")
    if if_match is not None:
        tags = _etag_list(if_match)
        if "*" not in tags and etag not in tags:
            raise StoreError("PreconditionFailed", "If-Match does not match the current ETag")
    else:
        ius = parse_http_date(headers.get("If-Unmodified-Since"))
        if ius is not None and modified > ius:
            raise StoreError("PreconditionFailed", "the entity was modified after that time")
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = _etag_list(if_none_match)
        if "*" in tags or etag in tags:
            if is_read:
                raise NotModified(etag, last_modified)
            raise StoreError("PreconditionFailed", "If-None-Match matches the current ETag")
    elif is_read:
        ims = parse_http_date(headers.get("If-Modified-Since"))
        if ims is not None and modified <= ims:
            raise NotModified(etag, last_modified)


def parse_copy_source(value: str, header: str) -> tuple[str, str]:
    """A copy source header, ``[/]<bucket>/<key>`` percent-encoded → (bucket, key)."""
    bucket, _, key = urllib.parse.unquote(value.strip()).lstrip("/").partition("/")
    if not bucket or not key:
        raise StoreError("InvalidArgument", f"{header} must be <bucket>/<key>")
    return bucket, key
