"""The error catalogue: every code is documented, and problem JSON has the promised shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from zot_artifact_store.errors import CATALOGUE, StoreError

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_every_code_is_documented() -> None:
    text = DOC.read_text()
    missing = [code for code in CATALOGUE if f"`{code}`" not in text]
    assert not missing, f"add these codes to docs/errors.md: {missing}"


def test_problem_shape() -> None:
    err = StoreError("NoSuchKey", "object 'k' does not exist", resource="b/k")
    body = err.problem("rid-1")
    assert body["status"] == 404 and body["code"] == "NoSuchKey"
    assert body["retryable"] is False
    assert body["instance"] == "b/k" and body["request_id"] == "rid-1"
    assert StoreError("ServiceUnavailable").retryable is True


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        StoreError("NoSuchThing")
