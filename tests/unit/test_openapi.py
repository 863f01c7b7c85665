"""The /v1 OpenAPI document: valid OpenAPI 3.1, and in step with the routes and error codes."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from zot_artifact_store.api import health
from zot_artifact_store.api.base import BaseHandler, NotFoundHandler
from zot_artifact_store.api.query import QueryCheckedHandler
from zot_artifact_store.api.v1 import routes as v1
from zot_artifact_store.errors import CATALOGUE

SPEC_PATH = resources.files("zot_artifact_store.api.v1").joinpath("openapi.json")
METHODS = {"get", "put", "post", "delete", "head", "patch", "options"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def test_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_docs_copy_is_the_served_document() -> None:
    docs = Path(__file__).parents[2] / "docs" / "openapi.json"
    assert docs.read_text() == SPEC_PATH.read_text()


def _documented_routes() -> dict[str, set[str]]:
    """Route template → HTTP methods its handler implements."""
    out: dict[str, set[str]] = {}
    for _pattern, handler, kwargs in [*v1.routes(None), *health.routes(None)]:
        if handler in (NotFoundHandler, health.ReservedPathHandler):
            continue  # the 404 for anything else under /v1, /health, /metrics
        implemented = {
            m
            for m in METHODS
            if getattr(handler, m) is not getattr(BaseHandler, m, None) and m != "options"
        }
        out[kwargs["route"]] = implemented
    return out


def test_every_route_and_method_is_documented_and_nothing_else(spec: dict[str, Any]) -> None:
    routes = _documented_routes()
    paths = {p: {m for m in ops if m in METHODS} for p, ops in spec["paths"].items()}
    assert set(paths) == set(routes)
    for template, methods in routes.items():
        assert paths[template] == methods, template


def test_path_parameters_are_declared(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        declared = set()
        for p in item.get("parameters", []):
            if "$ref" in p:
                p = spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
            if p["in"] == "path":
                declared.add(p["name"])
        assert declared == names, path


def test_error_codes_exist_in_the_catalogue(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    mentioned = set()
    for match in re.finditer(r"Codes: ([A-Za-z, ]+)\.", text):
        mentioned |= {c.strip() for c in match.group(1).split(",")}
    assert mentioned, "the document names no error codes"
    assert mentioned <= set(CATALOGUE), mentioned - set(CATALOGUE)


def _query_parameters(spec: dict[str, Any], path: str, method: str) -> set[str]:
    item = spec["paths"][path]
    out = set()
    for p in [*item.get("parameters", []), *item[method].get("parameters", [])]:
        if "$ref" in p:
            p = spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        if p["in"] == "query":
            out.add(p["name"])
    return out


def test_query_parameters_are_those_the_handlers_take(spec: dict[str, Any]) -> None:
    """Each /v1 handler declares the query parameters each method takes (and refuses the
    rest): the document lists exactly those."""
    checked = 0
    for _pattern, handler, kwargs in v1.routes(None):
        if handler is NotFoundHandler:
            continue
        assert issubclass(handler, QueryCheckedHandler), handler
        template = kwargs["route"]
        for method in _documented_routes()[template]:
            declared = handler.query_parameters.get(method.upper(), frozenset())
            assert _query_parameters(spec, template, method) == declared, (method, template)
            checked += 1
    assert checked >= 50
