"""The linear SBOM validators mean what the libraries' validators mean, and validating from
the event loop leaves the loop free."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from typing import Any

import pytest
from jsonschema._utils import equal

from zot_artifact_store.errors import StoreError
from zot_artifact_store.services import sbom
from zot_artifact_store.services.sbom_validation import canonical

VALUES: list[Any] = [
    0,
    1,
    1.0,
    -0.0,
    0.0,
    2.5,
    10**20,
    1e20,
    True,
    False,
    None,
    "",
    "1",
    "true",
    [],
    {},
    [1],
    [1.0],
    [True],
    [1, "a"],
    ["a", 1],
    {"a": 1},
    {"a": 1.0},
    {"a": True},
    {"a": 1, "b": [1, {"c": None}]},
    {"b": [1.0, {"c": None}], "a": 1},
    {"b": [True, {"c": None}], "a": 1},
    [{"a": 1}, {"b": 2}],
    [{"b": 2}, {"a": 1}],
]


@pytest.mark.parametrize(("one", "two"), list(itertools.product(VALUES, repeat=2)))
def test_canonical_forms_are_equal_exactly_when_json_schema_says_so(one: Any, two: Any) -> None:
    assert (canonical(one) == canonical(two)) is equal(one, two)


def test_nan_equals_nothing() -> None:
    nan = json.loads("NaN")
    assert canonical(nan) != canonical(json.loads("NaN"))


def document(components: list[dict[str, Any]]) -> bytes:
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": components}
    return json.dumps(doc).encode()


def test_a_duplicate_component_is_refused_with_the_validators_reason() -> None:
    components = [{"type": "library", "name": f"p{i}", "version": "1"} for i in range(3000)]
    components.append({"version": "1", "name": "p5", "type": "library"})
    with pytest.raises(StoreError) as raised:
        sbom.parse_sbom(document(components), sbom.CYCLONEDX_JSON)
    assert raised.value.code == "InvalidEvidence"
    assert str(raised.value.message).endswith("has non-unique elements")
    parsed = sbom.parse_sbom(document(components[:-1]), sbom.CYCLONEDX_JSON)
    assert len(parsed.components) == 3000


def test_an_unknown_license_id_is_refused() -> None:
    components = [{"type": "library", "name": "p", "licenses": [{"license": {"id": "NOPE-1"}}]}]
    with pytest.raises(StoreError) as raised:
        sbom.parse_sbom(document(components), sbom.CYCLONEDX_JSON)
    assert "is not valid under any of the given schemas" in str(raised.value.message)
    components[0]["licenses"] = [{"license": {"id": "Apache-2.0"}}]
    assert sbom.parse_sbom(document(components), sbom.CYCLONEDX_JSON).components[0].licenses == [
        "Apache-2.0"
    ]


def test_a_too_deeply_nested_document_is_refused() -> None:
    body = b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "x": ' + b"[" * 100_000
    body += b"]" * 100_000 + b"}"
    with pytest.raises(StoreError) as raised:
        sbom.parse_sbom(body, sbom.CYCLONEDX_JSON)
    assert raised.value.code == "InvalidEvidence" and "nested too deeply" in str(
        raised.value.message
    )


async def test_validation_from_the_event_loop_leaves_the_loop_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a document is validated, the loop runs other tasks: here the validation waits
    for a task on the loop, which could never run if the validation held the loop."""
    loop_ran = threading.Event()
    real = sbom._parse_sbom

    def validation(body: bytes, media_type: str) -> sbom.ParsedSbom:
        assert loop_ran.wait(30), "the event loop did not run while the SBOM was validated"
        return real(body, media_type)

    monkeypatch.setattr(sbom, "_parse_sbom", validation)

    async def other_request() -> None:
        loop_ran.set()

    body = document([{"type": "library", "name": "p"}])
    parsing = asyncio.ensure_future(sbom.parse_sbom_async(body, sbom.CYCLONEDX_JSON))
    await asyncio.sleep(0)  # parse_sbom_async has started
    await other_request()
    parsed = await parsing
    assert [c.name for c in parsed.components] == ["p"]
