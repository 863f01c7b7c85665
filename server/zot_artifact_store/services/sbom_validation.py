"""Validators of ``sbom.py`` that take time linear in the document's size.

The libraries' validators mean what they say but two of them are quadratic in the number of
components, which let a few hundred KB of SBOM hold a CPU for minutes:

- CycloneDX JSON: the schema's ``uniqueItems`` (on ``components`` and others) is checked by
  jsonschema's ``uniq``, which compares every pair of items when they are objects. Here the
  library's own validator (its schema, registry and format checker) is extended with a
  ``uniqueItems`` that puts a canonical form of each item in a set; the canonical forms are
  equal exactly when jsonschema's ``equal`` says the items are (``1 == 1.0``, ``true != 1``,
  key order does not matter, ``NaN`` equals nothing). ``enum`` (hundreds of SPDX license ids,
  compared one by one for every license) becomes a set lookup of the same canonical forms.
- SPDX (spdx-tools): each package and relationship validator scans the whole document (the list
  of all SPDX ids, all relationships) for its lookups. While :func:`spdx_messages` runs, those
  lookups answer from indexes built once for the document being validated; anywhere else (or
  for another document) spdx-tools' own functions run unchanged. The validation messages are
  the same: only how the lookups are answered changes.

CycloneDX XML (lxml's XSD validation) is linear already.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# ---- CycloneDX JSON -----------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A hashable form of a JSON value; two are equal iff jsonschema's ``equal`` holds."""
    if value is True or value is False:
        return ("bool", value)  # not 1 / 0
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return ("nan", object())  # jsonschema: NaN equals no other item
        return ("num", value)  # Python: 1 == 1.0 and hash(1) == hash(1.0); -0.0 == 0.0
    if value is None:
        return ("null",)
    if isinstance(value, dict):
        return ("object", frozenset((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("array", tuple(canonical(v) for v in value))
    return ("other", id(value))  # not produced by json.loads


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``uniqueItems`` keyword (same error), in one pass over the items."""
    from jsonschema.exceptions import ValidationError

    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = canonical(item)
        if key in seen:
            yield ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


# Canonical forms of the schema's enums (the SPDX license-id enum has hundreds of values, which
# jsonschema compares one by one for each license): id of the enum list -> (list, forms).
_enum_forms: dict[int, tuple[Any, frozenset[Any]]] = {}


def _enum(validator: Any, enums: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``enum`` keyword (same error), by a set lookup."""
    from jsonschema.exceptions import ValidationError

    cached = _enum_forms.get(id(enums))
    if cached is None or cached[0] is not enums:
        cached = (enums, frozenset(canonical(each) for each in enums))
        _enum_forms[id(enums)] = cached  # the schema lives as long as its validator
    if canonical(instance) not in cached[1]:
        yield ValidationError(f"{instance!r} is not one of {enums!r}")


DRAFT7_URI = "http://json-schema.org/draft-07/schema#"
_local = threading.local()  # validators per thread: built once, never shared between threads


def cyclonedx_json_validator(schema_version: Any) -> Any:
    """The validator ``cyclonedx.validation.json.JsonStrictValidator`` builds for this version
    (its schema, its registry of referenced schemas, its format checker), with the linear
    ``uniqueItems`` and a set lookup for ``enum``. Built once per version and thread."""
    cache: dict[Any, Any] = _local.__dict__.setdefault("cyclonedx", {})
    if schema_version not in cache:
        from cyclonedx.validation.json import JsonStrictValidator
        from jsonschema import validators
        from referencing import Registry
        from referencing.jsonschema import DRAFT7

        library = JsonStrictValidator(schema_version)._validator
        linear = validators.extend(type(library), {"uniqueItems": _unique_items, "enum": _enum})
        # The referenced schemas (SPDX license ids, JSF, cryptography definitions) name their
        # draft in "$schema", so jsonschema would validate inside them with the plain Draft 7
        # class; without it they stay with this one. They are Draft 7 like the BOM schema.
        registry: Any = Registry()
        for uri in library._registry:
            contents = dict(library._registry.contents(uri))
            if contents.pop("$schema", DRAFT7_URI) != DRAFT7_URI:
                contents = dict(library._registry.contents(uri))  # another draft: keep it
            registry = registry.with_resource(uri, DRAFT7.create_resource(contents))
        cache[schema_version] = linear(
            library.schema, registry=registry, format_checker=library.format_checker
        )
    return cache[schema_version]


def cyclonedx_json_errors(doc: Any, schema_version: Any) -> list[str]:
    """The validation errors' messages (first lines), as the library would report them."""
    return [
        (str(error.message).splitlines() or [""])[0]
        for error in cyclonedx_json_validator(schema_version).iter_errors(doc)
    ]


# ---- SPDX ---------------------------------------------------------------------------------


class _SpdxIndex:
    """Lookups over one parsed SPDX document, built once (the document is not changed while
    it is validated)."""

    def __init__(self, document: Any) -> None:
        from spdx_tools.spdx.model import File, Package, Snippet

        self.document = document
        self.relationships = document.relationships
        self.files = document.files
        self.all_ids = {document.creation_info.spdx_id}
        self.file_ids = {f.spdx_id for f in document.files}
        self.element_type: dict[str, Any] = {}
        # The first match wins in spdx-tools: packages, then files, then snippets.
        for kind, elements in ((Snippet, document.snippets), (File, document.files)):
            for element in elements:
                self.element_type[element.spdx_id] = kind
        for package in document.packages:
            self.element_type[package.spdx_id] = Package
        self.all_ids.update(self.element_type)
        self.by_origin: dict[tuple[Any, str], list[Any]] = defaultdict(list)
        self.by_target: dict[tuple[Any, str], list[Any]] = defaultdict(list)
        for r in document.relationships:
            self.by_origin[(r.relationship_type, r.spdx_element_id)].append(r)
            self.by_target[(r.relationship_type, r.related_spdx_element_id)].append(r)


_spdx_local = threading.local()
_patch_lock = threading.Lock()
_patched = False


def _current(document: Any = None, relationships: Any = None) -> _SpdxIndex | None:
    index: _SpdxIndex | None = getattr(_spdx_local, "index", None)
    if index is None:
        return None
    if document is not None and document is not index.document:
        return None
    if relationships is not None and relationships is not index.relationships:
        return None
    return index


def _install_spdx_lookups() -> None:
    """Replace spdx-tools' scanning lookups (in the modules that call them) by functions that
    answer from the current thread's index for its document, and call the original otherwise."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        from spdx_tools.spdx import spdx_element_utils
        from spdx_tools.spdx.model import relationship_filters
        from spdx_tools.spdx.validation import (
            document_validator,
            package_validator,
            spdx_id_validators,
        )

        by_type_and_origin = relationship_filters.filter_by_type_and_origin
        by_type_and_target = relationship_filters.filter_by_type_and_target
        element_type = spdx_element_utils.get_element_type_from_spdx_id
        present_in_document = spdx_id_validators.is_spdx_id_present_in_document
        present_in_files = spdx_id_validators.is_spdx_id_present_in_files

        def filter_by_type_and_origin(relationships: Any, kind: Any, origin_id: str) -> Any:
            index = _current(relationships=relationships)
            if index is None:
                return by_type_and_origin(relationships, kind, origin_id)
            return list(index.by_origin.get((kind, origin_id), ()))

        def filter_by_type_and_target(relationships: Any, kind: Any, target_id: str) -> Any:
            index = _current(relationships=relationships)
            if index is None:
                return by_type_and_target(relationships, kind, target_id)
            return list(index.by_target.get((kind, target_id), ()))

        def get_element_type_from_spdx_id(spdx_id: str, document: Any) -> Any:
            index = _current(document=document)
            if index is None:
                return element_type(spdx_id, document)
            return index.element_type.get(spdx_id)

        def is_spdx_id_present_in_document(spdx_id: str, document: Any) -> bool:
            index = _current(document=document)
            if index is None:
                return bool(present_in_document(spdx_id, document))
            return spdx_id in index.all_ids

        def is_spdx_id_present_in_files(spdx_id: str, files: Any) -> bool:
            index = _current()
            if index is None or files is not index.files:
                return bool(present_in_files(spdx_id, files))
            return spdx_id in index.file_ids

        replacements: dict[str, Callable[..., Any]] = {
            "filter_by_type_and_origin": filter_by_type_and_origin,
            "filter_by_type_and_target": filter_by_type_and_target,
            "get_element_type_from_spdx_id": get_element_type_from_spdx_id,
            "is_spdx_id_present_in_document": is_spdx_id_present_in_document,
            "is_spdx_id_present_in_files": is_spdx_id_present_in_files,
        }
        for module in (relationship_filters, package_validator, document_validator):
            for name, function in replacements.items():
                if hasattr(module, name):
                    setattr(module, name, function)
        for name in ("is_spdx_id_present_in_document", "is_spdx_id_present_in_files"):
            setattr(spdx_id_validators, name, replacements[name])
        _patched = True


@contextmanager
def _indexed(document: Any) -> Iterator[None]:
    _install_spdx_lookups()
    previous = getattr(_spdx_local, "index", None)
    _spdx_local.index = _SpdxIndex(document)
    try:
        yield
    finally:
        _spdx_local.index = previous


def spdx_messages(document: Any, spdx_version: str) -> list[Any]:
    """``validate_full_spdx_document(document, spdx_version)``, with indexed lookups."""
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    with _indexed(document):
        return list(validate_full_spdx_document(document, spdx_version))
