"""Ranges and conditional requests (RFC 9110), shared by every API."""

from __future__ import annotations

import pytest

from zot_artifact_store.api.httputil import ByteRange, check_preconditions, http_date, parse_range
from zot_artifact_store.errors import NotModified, StoreError


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, ByteRange(0, 5)),
        ("bytes=5-", 10, ByteRange(5, 10)),
        ("bytes=-3", 10, ByteRange(7, 10)),
        ("bytes=-30", 10, ByteRange(0, 10)),
        ("bytes=8-100", 10, ByteRange(8, 10)),
        ("bytes=5-2", 10, None),  # invalid → ignored
        ("bytes=0-1,3-4", 10, None),  # several ranges → whole entity
        ("items=0-1", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(StoreError) as err:
        parse_range(header, size)
    assert err.value.status == 416
    assert err.value.headers["Content-Range"] == f"bytes */{size}"


T = 1_700_000_000.0


def test_precedence() -> None:
    # If-Match true wins over a failing If-Unmodified-Since.
    check_preconditions(
        {"If-Match": '"e"', "If-Unmodified-Since": http_date(T - 100)}, "e", T, is_read=True
    )
    with pytest.raises(StoreError):
        check_preconditions({"If-Unmodified-Since": http_date(T - 100)}, "e", T, is_read=True)
    # If-None-Match false wins over If-Modified-Since true (no 304).
    check_preconditions(
        {"If-None-Match": '"x"', "If-Modified-Since": http_date(T)}, "e", T, is_read=True
    )
    with pytest.raises(NotModified):
        check_preconditions({"If-None-Match": 'W/"e", "f"'}, "e", T, is_read=True)
    with pytest.raises(NotModified):
        check_preconditions({"If-Modified-Since": http_date(T)}, "e", T, is_read=True)
    check_preconditions({"If-Modified-Since": http_date(T - 1)}, "e", T, is_read=True)
    # Writes: If-None-Match * fails when the entity exists.
    with pytest.raises(StoreError) as err:
        check_preconditions({"If-None-Match": "*"}, "e", T, is_read=False)
    assert err.value.status == 412
    # Unparseable dates are ignored.
    check_preconditions({"If-Modified-Since": "yesterday"}, "e", T, is_read=True)
