"""The Kustomize manifests deploy/kubernetes (base + openshift overlay): generated from the
chart and kept in step with it, rendered by `kubectl kustomize`, valid, restricted, and the same
objects the chart renders."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.cases import materialize
from tests.deploy.k8s import (
    KUSTOMIZE,
    find,
    generator,
    kinds,
    kustomize,
    pod_spec,
    restricted_violations,
    validate,
)
from zot_artifact_store.cli import CONTAINER_DEFAULTS
from zot_artifact_store.config import load_config

BASE_KINDS = [
    "ConfigMap",
    "Deployment",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
]


def test_committed_manifests_are_generated_from_the_chart() -> None:
    problems = generator().check()
    assert problems == [], (
        "deploy/kubernetes is out of date with the chart; run `make manifests`:\n"
        + "\n".join(problems)
    )


def test_the_freshness_check_catches_an_edit(tmp_path: Path) -> None:
    copy_dir = tmp_path / "kubernetes"
    shutil.copytree(KUSTOMIZE, copy_dir)
    deployment = copy_dir / "base" / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 1", "replicas: 2"))
    (copy_dir / "base" / "extra.yaml").write_text("kind: ConfigMap\n")
    (copy_dir / "overlays" / "openshift" / "route.yaml").unlink()
    problems = generator().check(copy_dir)
    assert len(problems) == 3
    assert problems[0] == "base/extra.yaml: not generated (remove it)"
    assert "-  replicas: 2\n+  replicas: 1" in problems[1]
    assert problems[2] == "overlays/openshift/route.yaml: missing"


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(KUSTOMIZE / "base")


@pytest.fixture(scope="module")
def openshift() -> list[dict[str, Any]]:
    return kustomize(KUSTOMIZE / "overlays" / "openshift")


def test_base_is_valid_and_restricted(base: list[dict[str, Any]]) -> None:
    assert kinds(base) == BASE_KINDS
    for obj in base:
        validate(obj)
        assert "helm.sh/chart" not in obj["metadata"].get("labels", {})
    spec = pod_spec(find(base, "Deployment"))
    assert spec is not None
    assert restricted_violations(spec, openshift=False) == []
    # The config comes from the generated ConfigMap (its name carries the content's hash).
    configmap = find(base, "ConfigMap")["metadata"]["name"]
    assert configmap.startswith("zot-artifact-store-") and configmap != "zot-artifact-store"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["config"]["configMap"]["name"] == configmap
    assert volumes["secret-root"]["secret"]["secretName"] == "zot-artifact-store-root"


def test_openshift_overlay_is_valid_and_admitted_by_restricted_v2(
    openshift: list[dict[str, Any]],
) -> None:
    assert kinds(openshift) == sorted([*BASE_KINDS, "Route"])
    for obj in openshift:
        validate(obj)
    spec = pod_spec(find(openshift, "Deployment"))
    assert spec is not None
    assert restricted_violations(spec, openshift=True) == []
    route = find(openshift, "Route")
    assert route["spec"]["tls"]["termination"] == "edge"
    assert route["metadata"]["annotations"]["haproxy.router.openshift.io/timeout"] == "1h"


def _normalized(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects by (kind, name), without what Helm and Kustomize legitimately do differently:
    Helm's labels and annotations, the ConfigMap's hashed name."""
    out = {}
    for obj in objects:
        if obj["kind"] == "Secret" or "helm.sh/hook" in obj["metadata"].get("annotations", {}):
            continue
        obj = generator()._strip_helm(obj)
        if obj["kind"] == "ConfigMap":
            obj["metadata"]["name"] = "zot-artifact-store"
        if obj["kind"] == "Deployment":
            for volume in obj["spec"]["template"]["spec"]["volumes"]:
                if "configMap" in volume:
                    volume["configMap"]["name"] = "zot-artifact-store"
        out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out


@pytest.mark.parametrize("flavour", ["base", "openshift"])
def test_kustomize_renders_what_the_chart_renders(
    flavour: str, base: list[dict[str, Any]], openshift: list[dict[str, Any]]
) -> None:
    gen = generator()
    values = gen.BASE_VALUES if flavour == "base" else gen.OPENSHIFT_VALUES
    chart = _normalized(gen.render(values))
    ours = _normalized(base if flavour == "base" else openshift)
    assert ours == chart


def test_base_config_loads_in_the_server(base: list[dict[str, Any]], tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    env = materialize(base, secrets)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(find(base, "ConfigMap")["data"]["config.yaml"])
    config = load_config(config_file, environ=env, defaults=CONTAINER_DEFAULTS)
    assert config.auth.root.user == "admin"
    assert config.auth.root.password == "root-password-from-a-user-secret"
    assert config.metadata_uri == "sqlite:////var/lib/zas/metadata.db"


def test_missing_kubectl_fails_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AssertionError, match="kubectl is not on PATH"):
        kustomize(KUSTOMIZE / "base")
    assert os.environ["PATH"] == str(tmp_path)


def test_overlay_keeps_the_base_pod_otherwise(
    base: list[dict[str, Any]], openshift: list[dict[str, Any]]
) -> None:
    ours = copy.deepcopy(find(openshift, "Deployment"))
    theirs = copy.deepcopy(find(base, "Deployment"))
    ours["spec"]["template"]["spec"].pop("securityContext")
    theirs["spec"]["template"]["spec"].pop("securityContext")
    assert ours == theirs
