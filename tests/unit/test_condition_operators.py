"""Policy conditions as AWS evaluates them: operators, several values (any), several keys
(all), a key the request lacks (false; negated operators and ``…IfExists`` true; ``Null``),
key names case-insensitive, tag keys exact."""

from __future__ import annotations

from typing import Any

import pytest

from zot_artifact_store.auth.conditions import EvalContext, parse_conditions, request_tag_values
from zot_artifact_store.auth.principal import ANONYMOUS, Principal
from zot_artifact_store.errors import StoreError

ALICE = Principal("s3key:ZAKALICE", "alice", source="s3key")


def holds(cond: dict[str, Any], ctx: EvalContext, who: Principal = ALICE) -> bool:
    return all(c.holds(who, ctx) for c in parse_conditions(cond, "Condition"))


LIST = EvalContext(values={"s3:prefix": "home/alice/", "s3:max-keys": "50"})


@pytest.mark.parametrize(
    "cond, expected",
    [
        ({"StringEquals": {"s3:prefix": "home/alice/"}}, True),
        ({"StringEquals": {"S3:Prefix": ["x", "home/alice/"]}}, True),  # any value; any case
        ({"StringNotEquals": {"s3:prefix": ["x", "home/alice/"]}}, False),
        ({"StringEqualsIgnoreCase": {"s3:prefix": "HOME/Alice/"}}, True),
        ({"StringLike": {"s3:prefix": "home/?????/*"}}, True),
        ({"StringLike": {"s3:prefix": "home/bob/*"}}, False),
        ({"StringNotLike": {"s3:prefix": "home/bob/*"}}, True),
        ({"NumericLessThan": {"s3:max-keys": 51}}, True),
        ({"NumericLessThan": {"s3:max-keys": "50"}}, False),
        ({"NumericLessThanEquals": {"s3:max-keys": "50"}}, True),
        ({"NumericGreaterThan": {"s3:max-keys": "10"}}, True),
        ({"NumericEquals": {"s3:max-keys": "50.0"}}, True),
        # A key the request lacks: false, negated true, IfExists true.
        ({"StringEquals": {"s3:delimiter": "/"}}, False),
        ({"StringNotEquals": {"s3:delimiter": "/"}}, True),
        ({"StringEqualsIfExists": {"s3:delimiter": "/"}}, True),
        ({"Null": {"s3:delimiter": "true"}}, True),
        ({"Null": {"s3:prefix": "true"}}, False),
        ({"Null": {"s3:prefix": False}}, True),
        # Several keys: all must hold.
        ({"StringEquals": {"s3:prefix": "home/alice/", "aws:username": "bob"}}, False),
        ({"StringEquals": {"aws:username": "alice", "aws:userid": "s3key:ZAKALICE"}}, True),
    ],
)
def test_operators(cond: dict[str, Any], expected: bool) -> None:
    assert holds(cond, LIST) is expected


def test_principal_keys_and_transport() -> None:
    assert holds({"StringEquals": {"aws:username": "alice"}}, EvalContext())
    assert not holds({"StringEquals": {"aws:username": "anonymous"}}, EvalContext(), ANONYMOUS)
    assert holds({"Null": {"aws:username": "true"}}, EvalContext(), ANONYMOUS)
    assert holds({"Bool": {"aws:SecureTransport": "true"}}, EvalContext(secure_transport=True))
    assert holds({"Bool": {"aws:SecureTransport": False}}, EvalContext())


def test_dates_and_epoch() -> None:
    ctx = EvalContext(now=1_800_000_000.0)
    assert holds({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}, ctx)
    assert holds({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, ctx)
    assert holds({"NumericGreaterThanEquals": {"aws:EpochTime": 1_800_000_000}}, ctx)
    assert not holds({"DateLessThan": {"aws:EpochTime": "1700000000"}}, ctx)


def test_tags_keep_their_case() -> None:
    ctx = EvalContext(values=request_tag_values({"Team": "build"}), object_tags={"Stage": "rc"})
    assert holds({"StringEquals": {"s3:requestobjecttag/Team": "build"}}, ctx)
    assert not holds({"StringEquals": {"s3:RequestObjectTag/team": "build"}}, ctx)
    assert holds({"StringEquals": {"s3:ExistingObjectTag/Stage": "rc"}}, ctx)
    assert holds({"Null": {"s3:ExistingObjectTag/stage": "true"}}, ctx)


@pytest.mark.parametrize(
    "cond, says",
    [
        ({"ArnEquals": {"aws:SourceArn": "x"}}, "ArnEquals"),
        ({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, "aws:SourceVpc"),
        ({"StringEquals": {"s3:ExistingObjectTag/": "x"}}, "s3:ExistingObjectTag/"),
        ({"ForAllValues:StringEquals": {"s3:prefix": "x"}}, "ForAllValues"),
        ({"DateLessThan": {"s3:prefix": "2030-01-01T00:00:00Z"}}, "s3:prefix"),
        ({"StringEquals": {"aws:CurrentTime": "now"}}, "aws:CurrentTime"),
        ({"DateLessThan": {"aws:CurrentTime": "tomorrow"}}, "aws:CurrentTime"),
        ({"StringEquals": {"s3:prefix": {"a": 1}}}, "s3:prefix"),
        ({"StringEquals": {}}, "StringEquals"),
        ({"Null": {"s3:prefix": "maybe"}}, "Null"),
        ({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}, "policy variables"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(cond: dict[str, Any], says: str) -> None:
    with pytest.raises(StoreError) as exc:
        parse_conditions(cond, "Statement[0].Condition")
    assert exc.value.code == "MalformedPolicy" and says in exc.value.message, exc.value.message


def test_policy_variables_in_resources_are_refused() -> None:
    from zot_artifact_store.auth.policy import parse_statements

    doc = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                          "Resource": "arn:aws:s3:::b/home/${aws:username}/*"}]}  # fmt: skip
    with pytest.raises(StoreError) as exc:
        parse_statements(doc, "test", bucket="b")
    assert "Statement[0].Resource" in exc.value.message and "policy variables" in exc.value.message
