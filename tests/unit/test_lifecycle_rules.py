"""Lifecycle rules as S3 evaluates them: which objects a rule selects, when it expires them
(Days rounded up to midnight UTC, Date), and the ``x-amz-expiration`` header naming it."""

from __future__ import annotations

import calendar

import pytest

from zot_artifact_store.errors import StoreError
from zot_artifact_store.metadata import MultipartUpload, ObjectRecord
from zot_artifact_store.services.lifecycle import (
    LifecycleRule,
    check_rules,
    expiration_of,
    next_midnight,
)


def utc(*args: int) -> float:
    return float(calendar.timegm((*args, 0, 0, 0)[:6]))


def obj(key: str, written: float, size: int = 10, **kw: object) -> ObjectRecord:
    return ObjectRecord("b", key, "sha256:" + "a" * 64, size, "e", "x/y", written, written, **kw)


def test_days_count_from_the_last_write_rounded_up_to_midnight_utc() -> None:
    # S3's example: written 2014-01-15 10:30 UTC, 3 days -> 2014-01-19 00:00 UTC.
    rule = LifecycleRule("r", expiration_days=3)
    assert rule.expiry_of(obj("k", utc(2014, 1, 15, 10, 30))) == utc(2014, 1, 19)
    assert next_midnight(utc(2014, 1, 19)) == utc(2014, 1, 19)


def test_filters_and_status() -> None:
    written = utc(2026, 1, 1)
    rule = LifecycleRule(
        "r", prefix="logs/", tags={"keep": "no"}, size_greater_than=5, size_less_than=100,
        expiration_date=utc(2027, 1, 1),
    )  # fmt: skip
    due = utc(2027, 1, 1)
    assert rule.expiry_of(obj("logs/a", written, tags={"keep": "no", "x": "y"})) == due
    assert rule.expiry_of(obj("other/a", written, tags={"keep": "no"})) is None
    assert rule.expiry_of(obj("logs/a", written, tags={"keep": "yes"})) is None
    assert rule.expiry_of(obj("logs/a", written, size=5, tags={"keep": "no"})) is None
    assert rule.expiry_of(obj("logs/a", written, size=100, tags={"keep": "no"})) is None
    rule.enabled = False
    assert rule.expiry_of(obj("logs/a", written, tags={"keep": "no"})) is None


def test_the_earliest_of_the_objects_own_expiry_and_the_rules_wins() -> None:
    written = utc(2026, 3, 1, 12)
    rules = [LifecycleRule("month", expiration_days=30), LifecycleRule("week", expiration_days=7)]
    found = expiration_of(obj("k", written), rules)
    assert found is not None and (found.rule_id, found.at) == ("week", utc(2026, 3, 9))
    own = expiration_of(obj("k", written, expires_at=utc(2026, 3, 2)), rules)
    assert own is not None and own.rule_id == "X-Expires-At"
    assert own.s3_header() == 'expiry-date="Mon, 02 Mar 2026 00:00:00 GMT", rule-id="X-Expires-At"'
    quoted = expiration_of(obj("k", written), [LifecycleRule('say "hi"', expiration_days=1)])
    assert quoted is not None and quoted.s3_header().endswith('rule-id="say \\"hi\\""')
    assert expiration_of(obj("k", written), []) is None


def test_abort_rules_cover_uploads_by_prefix() -> None:
    upload = MultipartUpload("u", "b", "incoming/x", utc(2026, 5, 1, 12))
    assert LifecycleRule("r", abort_days=2).abort_time_of(upload) == utc(2026, 5, 4)
    assert LifecycleRule("r", prefix="out/", abort_days=2).abort_time_of(upload) is None
    assert LifecycleRule("r", expiration_days=2).abort_time_of(upload) is None


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([], "MalformedXML"),
        ([LifecycleRule("r")], "InvalidRequest"),
        ([LifecycleRule("r", expiration_days=1), LifecycleRule("r", abort_days=1)], "InvalidArgument"),  # noqa: E501
        ([LifecycleRule("r", abort_days=1, tags={"a": "b"})], "InvalidRequest"),
        ([LifecycleRule("r", expiration_days=0)], "InvalidArgument"),
        ([LifecycleRule("r", expiration_days=1, size_greater_than=9, size_less_than=9)], "InvalidArgument"),  # noqa: E501
        ([LifecycleRule("x" * 256, expiration_days=1)], "InvalidArgument"),
    ],
)  # fmt: skip
def test_rules_s3_refuses(rules: list[LifecycleRule], code: str) -> None:
    with pytest.raises(StoreError) as exc:
        check_rules(rules)
    assert exc.value.code == code
