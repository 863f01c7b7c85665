"""The objects of a ZotArtifactStore: the Helm chart rendered by Helm's SDK for the values the
spec maps to (one renderer for Helm users, the Kustomize manifests and the operator), owned by
the custom resource and labelled as the operator's; plus the two objects only the operator
makes: the Secret of keys it creates once, and (openshift.scc.create) an SCC."""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zas_operator import API_VERSION, KIND, MANAGED_BY, chart_path
from zas_operator.spec import Spec, with_defaults
from zas_operator.values import KEYS, is_openshift, keys_secret_name, scc_name, values_for

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


# Every kind the operator applies, and where the API serves it: its RBAC is made from this
# table (deploy/operator/generate.py), so it may touch these kinds and nothing else.
RESOURCES: dict[str, Resource] = {
    "ConfigMap": Resource("", "v1", "configmaps"),
    "Secret": Resource("", "v1", "secrets"),
    "Service": Resource("", "v1", "services"),
    "ServiceAccount": Resource("", "v1", "serviceaccounts"),
    "PersistentVolumeClaim": Resource("", "v1", "persistentvolumeclaims"),
    "Deployment": Resource("apps", "v1", "deployments"),
    "PodDisruptionBudget": Resource("policy", "v1", "poddisruptionbudgets"),
    "NetworkPolicy": Resource("networking.k8s.io", "v1", "networkpolicies"),
    "Route": Resource("route.openshift.io", "v1", "routes"),
    "ServiceMonitor": Resource("monitoring.coreos.com", "v1", "servicemonitors"),
    "PrometheusRule": Resource("monitoring.coreos.com", "v1", "prometheusrules"),
    "SecurityContextConstraints": Resource(
        "security.openshift.io", "v1", "securitycontextconstraints", namespaced=False
    ),
}
# The chart marks what `helm uninstall` keeps (the PVC with the blobs): the operator keeps it
# too, so it gets no owner reference and outlives a deleted ZotArtifactStore.
KEEP = "helm.sh/resource-policy"
INSTANCE = "app.kubernetes.io/instance"


def render_chart(
    values: Mapping[str, Any], name: str, namespace: str, chart: Path | None = None
) -> list[Obj]:
    """The chart's objects for ``values`` as release ``name`` in ``namespace``, without the
    ``helm test`` hooks."""
    import helm_python as helm

    with helm.Chart.load(chart or chart_path()) as loaded:
        files = loaded.render(values=dict(values), name=name, namespace=namespace)
    objects = [
        doc
        for path, text in sorted(files.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return [o for o in objects if "helm.sh/hook" not in o["metadata"].get("annotations", {})]


def owner_reference(name: str, uid: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def own(obj: Obj, name: str, namespace: str, uid: str) -> Obj:
    """``obj`` in ``namespace``, labelled as the operator's, owned by the store (garbage
    collected with it) unless the chart keeps it."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    labels = meta.setdefault("labels", {})
    labels["app.kubernetes.io/managed-by"] = MANAGED_BY
    labels[INSTANCE] = name
    if RESOURCES[obj["kind"]].namespaced:
        meta["namespace"] = namespace
        if meta.get("annotations", {}).get(KEEP) != "keep":
            meta["ownerReferences"] = [owner_reference(name, uid)]
    return obj


def desired(
    spec: Spec | None,
    name: str,
    namespace: str,
    uid: str,
    *,
    openshift: bool = False,
    default_image: str | None = None,
    chart: Path | None = None,
) -> list[Obj]:
    """Every object the store ``name`` needs, ready for server-side apply (the keys Secret
    aside: ``keys_secret`` is created once, never applied). Raises InvalidSpec, or Helm's
    errors when the chart refuses the values."""
    spec = with_defaults(spec)
    values = values_for(spec, name, namespace, openshift=openshift, default_image=default_image)
    objects = [own(o, name, namespace, uid) for o in render_chart(values, name, namespace, chart)]
    if is_openshift(spec, openshift) and spec["openshift"]["scc"]["create"]:
        objects.append(
            own(scc(scc_name(spec, name, namespace), name, namespace), name, namespace, uid)
        )
    unknown = {o["kind"] for o in objects} - set(RESOURCES)
    assert not unknown, f"the chart renders kinds the operator may not apply: {unknown}"
    return objects


def keys_secret(name: str, namespace: str) -> Obj:
    """The root password and the keys every replica shares, random, made once: never owned
    (a re-created store must still open the S3 secret keys sealed in its metadata)."""
    data = {
        "root-password": secrets.token_urlsafe(24),
        "secrets.key": secrets.token_hex(32),
        "registry-token.key": secrets.token_hex(32),
    }
    assert set(data) == set(KEYS)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": keys_secret_name(name),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "zot-artifact-store",
                INSTANCE: name,
                "app.kubernetes.io/managed-by": MANAGED_BY,
            },
            "annotations": {KEEP: "keep"},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def scc(scc_name: str, name: str, namespace: str) -> Obj:
    """An SCC that allows what restricted-v2 allows (and a read-only root filesystem), used by
    the store's ServiceAccount only. It exists for clusters whose admins changed or replaced
    restricted-v2, or grant a more permissive SCC that would otherwise be chosen; the pods
    name it in openshift.io/required-scc."""
    return {
        "apiVersion": "security.openshift.io/v1",
        "kind": "SecurityContextConstraints",
        "metadata": {
            "name": scc_name,
            "annotations": {
                "kubernetes.io/description": (
                    f"Zot Artifact Store {namespace}/{name}: restricted-v2's rules with a "
                    "read-only root filesystem, for the store's ServiceAccount only."
                )
            },
        },
        "allowHostDirVolumePlugin": False,
        "allowHostIPC": False,
        "allowHostNetwork": False,
        "allowHostPID": False,
        "allowHostPorts": False,
        "allowPrivilegeEscalation": False,
        "allowPrivilegedContainer": False,
        "allowedCapabilities": None,
        "defaultAddCapabilities": None,
        "fsGroup": {"type": "MustRunAs"},
        "groups": [],
        "priority": None,
        "readOnlyRootFilesystem": True,
        "requiredDropCapabilities": ["ALL"],
        "runAsUser": {"type": "MustRunAsRange"},
        "seLinuxContext": {"type": "MustRunAs"},
        "seccompProfiles": ["runtime/default"],
        "supplementalGroups": {"type": "RunAsAny"},
        "users": [f"system:serviceaccount:{namespace}:{name}"],
        "volumes": [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ],
    }


def ref(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def stale(existing: Iterable[Obj], wanted: Iterable[Obj]) -> list[Obj]:
    """Of the objects the operator applied before (``existing``: listed by its labels), those
    no longer rendered (a Route turned off, monitoring off): to delete. Kept objects (the PVC,
    the keys Secret) are never pruned."""
    keep = {ref(o) for o in wanted}
    return [
        o
        for o in existing
        if ref(o) not in keep and o["metadata"].get("annotations", {}).get(KEEP) != "keep"
    ]
