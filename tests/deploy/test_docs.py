"""docs/deploy.md: the values reference matches values.schema.json, and the values files the
Kubernetes and OpenShift sections give render into valid, restricted objects."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.k8s import CHART, ROOT, find, pod_spec, render, restricted_violations, validate

DOC = ROOT / "docs" / "deploy.md"


@cache
def reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "zas_values_reference", CHART.parent / "values_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_values_reference_is_up_to_date() -> None:
    doc = DOC.read_text()
    assert reference().updated(doc) == doc, (
        "docs/deploy.md: the values reference is stale; run `make manifests`"
    )


def test_values_reference_lists_every_value() -> None:
    ref = reference()
    table = ref.reference()
    for name in ("replicas", "storage.s3.credentials.existingSecret", "route.tls.termination"):
        assert f"| `{name}` |" in table
    types = "`filesystem` \\| `s3` \\| `azure` \\| `gcs`"
    assert f"| `storage.type` | {types} | `filesystem` |" in table
    # A value added to the schema shows up, so a stale document fails the test above.
    doc = DOC.read_text()
    original = ref.reference
    try:
        ref.reference = lambda: original().replace("| `replicas` |", "| `replicaCount` |")
        assert ref.updated(doc) != doc
    finally:
        ref.reference = original


def values_file(name: str) -> dict[str, Any]:
    """The YAML block of docs/deploy.md that starts with the comment ``# NAME``."""
    blocks = re.findall(r"```yaml\n(# " + re.escape(name) + r"\n.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, f"{name} in docs/deploy.md"
    values: dict[str, Any] = yaml.safe_load(blocks[0])
    return values


@pytest.mark.parametrize(
    ("files", "openshift"),
    [
        (["values-prod.yaml"], False),
        (["values-openshift.yaml"], True),
        (["values-prod.yaml", "values-openshift.yaml"], True),
    ],
)
def test_documented_values_render(files: list[str], openshift: bool) -> None:
    values: dict[str, Any] = {}
    for name in files:
        for key, value in values_file(name).items():
            values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    # The documented digest is a placeholder.
    if "image" in values:
        values["image"] = {**values["image"], "digest": "sha256:" + "0" * 64}
    objects = render(values)
    for obj in objects:
        validate(obj)
    spec = pod_spec(find(objects, "Deployment"))
    assert spec is not None
    assert restricted_violations(spec, openshift=openshift) == []
    if "values-prod.yaml" in files:
        assert find(objects, "Deployment")["spec"]["replicas"] == 3


def test_documented_alerts_are_the_rendered_ones() -> None:
    objects = render(
        {"monitoring": {"enabled": True}, "storage": {"type": "s3", "s3": {"bucket": "zas"}}}
    )
    alerts = {
        r["alert"] for g in find(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]
    }
    alerts |= {
        r["alert"]
        for g in find(render({"monitoring": {"enabled": True}}), "PrometheusRule")["spec"]["groups"]
        for r in g["rules"]
    }
    section = DOC.read_text().split("### Alerts", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"`(ZotArtifactStore\w+)`", section)) == alerts
