"""Client JSON is parsed with a depth limit, without recursion (jsonbody.py)."""

from __future__ import annotations

import json

import pytest

from zot_artifact_store.jsonbody import MAX_JSON_DEPTH, JSONTooDeep, check_depth, loads


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


@pytest.mark.parametrize("depth", [1, 2, MAX_JSON_DEPTH])
def test_up_to_the_limit_parses(depth: int) -> None:
    assert loads(nested(depth)) == json.loads(nested(depth))
    doc = '{"a":' * depth + "1" + "}" * depth
    assert loads(doc.encode()) == json.loads(doc)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deeper_is_a_value_error_not_recursion(depth: int) -> None:
    for doc in (nested(depth), '{"a":' * depth + "1" + "}" * depth, "[" * depth):
        with pytest.raises(JSONTooDeep) as err:
            loads(doc.encode())
        assert isinstance(err.value, ValueError)
        assert f"deeper than {MAX_JSON_DEPTH}" in str(err.value)


def test_brackets_inside_strings_are_text() -> None:
    doc = {"s": "[" * 1000 + '\\"{' * 500, "list": [[["x"]]]}
    assert loads(json.dumps(doc)) == doc


def test_mixed_and_sibling_nesting() -> None:
    wide = "[" + ",".join([nested(MAX_JSON_DEPTH - 1)] * 500) + "]"
    assert len(loads(wide)) == 500
    mixed = '[{"a":' * 40 + "1" + "}]" * 40  # 80 levels
    with pytest.raises(JSONTooDeep):
        loads(mixed)
    check_depth(mixed, max_depth=80)


def test_invalid_json_still_value_error() -> None:
    for bad in (b"{", b"]]]", b'{"a": [1, 2}', b"\xff"):
        with pytest.raises(ValueError):
            loads(bad)


def test_a_large_body_at_the_limit_passes() -> None:
    # The scan's worst case: 8 MiB of brackets nested exactly to the limit, side by side.
    doc = (nested(MAX_JSON_DEPTH) * (8 * 1024 * 1024 // (2 * MAX_JSON_DEPTH))).encode()
    check_depth(doc)
    with pytest.raises(JSONTooDeep):
        check_depth(doc + nested(MAX_JSON_DEPTH + 1).encode())
