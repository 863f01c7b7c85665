"""The ZotArtifactStore spec: its defaults, read from the CRD's schema as the API server applies
them, and the checks of the CRD's CEL rules, done again here (a cluster without CEL validation,
or a spec changed since, still gets a clear condition instead of a broken rollout)."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import yaml

from zas_operator import CRD_FILE

Spec = dict[str, Any]
NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


class SpecError(ValueError):
    """A spec the operator cannot deploy: ``field`` names where, the message says why and what
    to set instead."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"spec.{field}: {message}")
        self.field = field


class InvalidSpec(ValueError):
    """Every problem of a spec, at once."""

    def __init__(self, found: list[SpecError]) -> None:
        super().__init__("; ".join(str(p) for p in found))
        self.problems = found


@cache
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return loaded


def schema() -> dict[str, Any]:
    """The v1 openAPIV3Schema of the whole object."""
    version = next(v for v in crd()["spec"]["versions"] if v["name"] == "v1")
    found: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return found


def apply_defaults(sub: dict[str, Any], value: Any) -> Any:
    """``value`` with the schema's defaults filled in, as the API server does: a missing field
    with a default gets it, and objects (defaulted ones too) are defaulted inside."""
    if isinstance(value, dict) and sub.get("properties"):
        value = dict(value)
        for key, prop in sub["properties"].items():
            if key not in value and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
            if key in value:
                value[key] = apply_defaults(prop, value[key])
    elif isinstance(value, list) and isinstance(sub.get("items"), dict):
        value = [apply_defaults(sub["items"], v) for v in value]
    return value


def with_defaults(spec: Spec | None) -> Spec:
    defaulted: Spec = apply_defaults(schema()["properties"]["spec"], dict(spec or {}))
    return defaulted


def problems(spec: Spec, name: str = "store") -> list[SpecError]:
    """What the CRD's CEL rules refuse in a defaulted ``spec`` (the same conditions, as Python),
    plus what only the operator can know. Empty: deployable."""
    found: list[SpecError] = []
    replicas = spec["replicas"]
    storage = spec["storage"]
    kind = storage["type"]
    s3 = kind == "s3"
    rwx = "ReadWriteMany" in storage["filesystem"]["accessModes"]
    if not (len(name) <= 52 and NAME.fullmatch(name)):
        found.append(SpecError("metadata.name", "must be a DNS label of at most 52 characters"))
    if replicas > 1 and kind == "filesystem" and not rwx:
        found.append(
            SpecError(
                "replicas",
                f"replicas={replicas} needs an object store (storage.type s3, azure or gcs) or a "
                "ReadWriteMany filesystem volume "
                "(storage.filesystem.accessModes: [ReadWriteMany]): a ReadWriteOnce volume is "
                "mounted by one node at a time",
            )
        )
    if replicas > 1 and "uriSecretRef" not in spec["metadata"]["mongodb"]:
        found.append(
            SpecError(
                "metadata.mongodb.uriSecretRef",
                f"replicas={replicas} needs an external MongoDB: the embedded SQLite metadata "
                "cannot be shared by replicas",
            )
        )
    config = storage.get("config")
    if s3 and len((config or {}).get("bucket", "")) < 3:
        found.append(SpecError("storage.config.bucket", "storage.type s3 needs a bucket"))
    if not s3 and config is not None:
        found.append(SpecError("storage.config", "object-store settings need storage.type s3"))
    azure, gcs = storage.get("azure"), storage.get("gcs")
    if kind == "azure" and not (
        azure and azure.get("accountname") and len(azure.get("container", "")) >= 3
    ):
        found.append(
            SpecError("storage.azure", "storage.type azure needs an accountname and a container")
        )
    if kind != "azure" and azure is not None:
        found.append(SpecError("storage.azure", "Azure Blob settings need storage.type azure"))
    if kind == "gcs" and len((gcs or {}).get("bucket", "")) < 3:
        found.append(SpecError("storage.gcs.bucket", "storage.type gcs needs a bucket"))
    if kind != "gcs" and gcs is not None:
        found.append(SpecError("storage.gcs", "GCS settings need storage.type gcs"))
    if spec["rbac"]["enabled"] and "keycloak" not in spec["rbac"]:
        found.append(SpecError("rbac.keycloak", "rbac.enabled needs url, realm and clientId"))
    signing = spec["supplyChain"]["signing"]
    if signing["enabled"] and "secretRef" not in signing:
        found.append(
            SpecError(
                "supplyChain.signing.secretRef",
                "signing with keyProvider k8s-secret needs a Secret holding the PEM private key",
            )
        )
    openshift = spec["openshift"]
    route = openshift["route"]
    tls = route["tls"]
    if route["enabled"] and openshift.get("enabled") is False:
        found.append(SpecError("openshift.route.enabled", "a Route needs openshift.enabled"))
    if tls["termination"] == "passthrough" and not (route.get("host") and "secretRef" in tls):
        found.append(
            SpecError(
                "openshift.route.tls",
                "passthrough: the pod presents the certificate clients see; set "
                "openshift.route.host and openshift.route.tls.secretRef",
            )
        )
    if (
        tls["termination"] == "reencrypt"
        and "secretRef" in tls
        and not tls.get("destinationCACertificate")
    ):
        found.append(
            SpecError(
                "openshift.route.tls.destinationCACertificate",
                "reencrypt with tls.secretRef needs the CA of that certificate",
            )
        )
    if tls["termination"] != "reencrypt" and "destinationCACertificate" in tls:
        found.append(
            SpecError("openshift.route.tls.destinationCACertificate", "is for reencrypt only")
        )
    return found
