"""Records to stored documents and back (metadata/base.py ``to_doc`` / ``from_doc``), for every
record type the metadata backends store: the fast path that fills a record without
``__init__`` must give the same record as the constructor, and must only ever be taken for
plain dataclasses."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from zot_artifact_store.metadata import base
from zot_artifact_store.metadata.base import ObjectRecord, from_doc, to_doc

RECORDS = [
    cls
    for _, cls in inspect.getmembers(base, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == base.__name__
]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_every_record_type_is_a_plain_dataclass(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert not params.frozen and not hasattr(cls, "__slots__")
    assert not hasattr(cls, "__post_init__")


def test_a_full_document_and_a_partial_one_give_the_same_record() -> None:
    record = ObjectRecord(
        bucket="b",
        key="k",
        digest="sha256:" + "a" * 64,
        size=3,
        etag="e",
        content_type="text/plain",
        created_at=1.0,
        updated_at=2.0,
        tags={"a": "b"},
        parts=[{"digest": "sha256:" + "b" * 64, "size": 3}],
    )
    doc = json.loads(json.dumps(to_doc(record)))
    fast = from_doc(ObjectRecord, doc)
    assert fast == record and type(fast) is ObjectRecord
    # An older row without the newer fields, and a newer one with a field this reader does
    # not know: the constructor's path, defaults filled in, the unknown field ignored.
    old = {k: v for k, v in doc.items() if k not in ("legal_hold", "tags")}
    older = from_doc(ObjectRecord, {**old, "_id": "x", "field_of_a_newer_schema": 1})
    assert older.tags == {} and older.legal_hold is None and older.key == "k"
    # Mutable values are the document's own, never shared between records.
    again = from_doc(ObjectRecord, json.loads(json.dumps(to_doc(record))))
    again.tags["c"] = "d"
    assert fast.tags == {"a": "b"}
