"""Render the Helm chart with real Helm code (helm-python-sdk: Helm v4's SDK) and check Kubernetes
objects offline: the Kubernetes schemas of pinned versions (kubernetes-validate), the schemas of
the custom resources the chart renders (tests/fixtures/deploy/schemas), and the restricted pod
security profiles (Kubernetes' restricted Pod Security Standard, OpenShift's restricted-v2 SCC)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "zot-artifact-store"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
SCHEMAS = ROOT / "tests" / "fixtures" / "deploy" / "schemas"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion; OpenShift 4.14) and the
# newest kubernetes-validate knows.
K8S_VERSIONS = ("1.27.0", "1.37.0")
RELEASE, NAMESPACE = "zas", "store"

Obj = dict[str, Any]


def load_objects(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@cache
def generator() -> ModuleType:
    """deploy/kubernetes/generate.py: it renders the chart for the Kustomize manifests too."""
    spec = importlib.util.spec_from_file_location(
        "zas_generate_manifests", KUSTOMIZE / "generate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(values: Mapping[str, Any] | None = None, *, hooks: bool = True) -> list[Obj]:
    """The chart's objects for ``values`` (release ``zas`` in namespace ``store``), as an install
    renders them; ``hooks=False`` leaves out the ``helm test`` objects."""
    objects: list[Obj] = generator().render(values, release=RELEASE, namespace=NAMESPACE)
    if not hooks:
        objects = [o for o in objects if "helm.sh/hook" not in o["metadata"].get("annotations", {})]
    return objects


def kustomize(directory: Path) -> list[Obj]:
    """``kubectl kustomize DIRECTORY``: fails (never skips) when kubectl is missing."""
    kubectl = shutil.which("kubectl")
    assert kubectl, (
        "kubectl is not on PATH: the Kustomize manifests are rendered with `kubectl kustomize` "
        "(Debian: apt-get install kubernetes-client, or any kubectl >= 1.27)"
    )
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return load_objects(done.stdout)


def find(objects: Iterable[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def kinds(objects: Iterable[Obj]) -> list[str]:
    return sorted(o["kind"] for o in objects)


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    group = api_version.rpartition("/")[0]
    path = SCHEMAS / f"{kind.lower()}-{group}-{api_version.rpartition('/')[2]}.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text())
    return jsonschema.Draft202012Validator(schema)


def validate(obj: Obj) -> None:
    """Raise AssertionError naming the object when it is not valid for every pinned Kubernetes
    version (strict: unknown fields fail) or, for a custom resource, for its CRD's schema."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    crd = _crd_validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    if crd is not None:
        errors = sorted(crd.iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, f"{where}: " + "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors
        )
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise AssertionError(f"{where} (Kubernetes {version}): {path}: {exc.message}") from None
        except kubernetes_validate.SchemaNotFoundError:
            raise AssertionError(
                f"{where}: no schema for {obj['apiVersion']} {obj['kind']}"
            ) from None


# ---- restricted pod security -------------------------------------------------------------------

# Kubernetes' restricted Pod Security Standard (the "latest" version) and OpenShift's
# restricted-v2 SCC allow the same volume types.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def restricted_violations(spec: Obj, *, openshift: bool) -> list[str]:
    """What in a pod spec breaks Kubernetes' restricted Pod Security Standard, and with
    ``openshift`` also what OpenShift's restricted-v2 SCC refuses or overrides (a fixed
    runAsUser or fsGroup outside the namespace's range, SELinux options). Empty: admitted."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{flag} is true")
    for volume in spec.get("volumes", []):
        kind = next((k for k in volume if k != "name"), "?")
        if kind not in RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: type {kind} is not allowed")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')} is not safe")
    containers = [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for c in containers:
        sc = c.get("securityContext") or {}
        where = f"container {c['name']}"
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities must drop ALL")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            problems.append(f"{where}: adds capabilities {sorted(extra)}")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            problems.append(f"{where}: hostPort")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{where}: procMount {sc['procMount']}")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{where}: runAsNonRoot must be true (pod or container)")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        for level, ctx in (("pod", pod_sc), (where, sc)):
            if ctx.get("runAsUser") == 0:
                problems.append(f"{level}: runAsUser 0")
            selinux = ctx.get("seLinuxOptions") or {}
            if selinux.get("user") or selinux.get("role"):
                problems.append(f"{level}: seLinuxOptions user/role")
            if selinux.get("type", "container_t") not in (
                "container_t",
                "container_init_t",
                "container_kvm_t",
            ):
                problems.append(f"{level}: seLinuxOptions type {selinux['type']}")
    if openshift:
        for level, ctx in [("pod", pod_sc)] + [
            (f"container {c['name']}", c.get("securityContext") or {}) for c in containers
        ]:
            for field in ("runAsUser", "fsGroup", "seLinuxOptions"):
                if field in ctx:
                    problems.append(
                        f"{level}: {field} is set; restricted-v2 assigns it from the "
                        "namespace's range (MustRunAsRange / MustRunAs)"
                    )
    return problems
