"""The ZotArtifactStore spec → the Helm chart's values (deploy/helm/zot-artifact-store,
values.schema.json): the operator's whole mapping, a pure function."""

from __future__ import annotations

import re
from typing import Any

from zas_operator.spec import InvalidSpec, Spec, SpecError, problems, with_defaults

IMAGE = re.compile(
    r"(?P<repository>[^\s@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)
# The keys and the root password the operator makes once per store (never in the chart's
# generated Secret: the operator renders offline, where the chart's `lookup` finds nothing and
# would make new keys on every reconcile).
KEYS = ("root-password", "secrets.key", "registry-token.key")


def keys_secret_name(name: str) -> str:
    return f"{name}-keys"


def scc_name(spec: Spec, name: str, namespace: str) -> str:
    return str(spec["openshift"]["scc"].get("name") or f"zot-artifact-store-{namespace}-{name}")


def is_openshift(spec: Spec, detected: bool) -> bool:
    """openshift.enabled when set, else what the operator detected (the route.openshift.io API)."""
    explicit = spec["openshift"].get("enabled")
    return detected if explicit is None else bool(explicit)


def split_image(image: str) -> dict[str, str]:
    """repository[:tag][@sha256:…] → the chart's image values. Without a tag (a digest only)
    the chart's appVersion names the tag, and the digest decides what is pulled."""
    match = IMAGE.fullmatch(image)
    if not match or not (match["tag"] or match["digest"]):
        raise InvalidSpec([SpecError("image", f"{image!r}: needs a tag or a digest")])
    out = {"repository": match["repository"]}
    if match["tag"]:
        out["tag"] = match["tag"]
    if match["digest"]:
        out["digest"] = match["digest"]
    return out


def values_for(
    spec: Spec | None,
    name: str,
    namespace: str,
    *,
    openshift: bool = False,
    default_image: str | None = None,
) -> dict[str, Any]:
    """The chart values that deploy ``spec`` as ``name`` in ``namespace``. ``openshift``: the
    cluster serves route.openshift.io (used when spec.openshift.enabled is unset);
    ``default_image``: the image when spec.image is empty. Raises InvalidSpec naming every
    problem."""
    spec = with_defaults(spec)
    found = problems(spec, name)
    if found:
        raise InvalidSpec(found)
    keys = keys_secret_name(name)
    on_openshift = is_openshift(spec, openshift)
    values: dict[str, Any] = {
        "fullnameOverride": name,
        "replicas": spec["replicas"],
        "openshift": {"enabled": on_openshift},
        "auth": {
            "root": {"enabled": True, "existingSecret": keys, "passwordKey": "root-password"},
            "sharedKeys": {"existingSecret": keys, "generate": False},
        },
        # `helm test` objects are for Helm users: the operator reports readiness in its status.
        "tests": {"enabled": False},
    }
    image = spec.get("image") or default_image
    if image:
        values["image"] = split_image(image)
    values["storage"] = _storage(spec["storage"])
    uri = spec["metadata"]["mongodb"].get("uriSecretRef")
    if uri:
        values["metadata"] = {"mongodb": {"existingSecret": uri["name"], "uriKey": uri["key"]}}
    rbac = spec["rbac"]
    if rbac["enabled"]:
        values["auth"]["oidc"] = [_oidc(rbac["keycloak"])]
    signing = spec["supplyChain"]["signing"]
    if signing["enabled"]:
        ref = signing["secretRef"]
        values["supplyChain"] = {
            "signing": {"enabled": True, "existingSecret": ref["name"], "keyKey": ref["key"]}
        }
    route = spec["openshift"]["route"]
    if route["enabled"]:
        values.update(_route(route))
    if on_openshift and spec["openshift"]["scc"]["create"]:
        # Pin the pods to the SCC the operator creates (OpenShift ≥ 4.14 honours the annotation).
        values["podAnnotations"] = {"openshift.io/required-scc": scc_name(spec, name, namespace)}
    monitoring = spec["monitoring"]
    if monitoring["enabled"]:
        labels = dict(monitoring.get("labels") or {})
        values["monitoring"] = {
            "enabled": True,
            "serviceMonitor": {"labels": labels},
            "prometheusRule": {"labels": labels},
        }
    return values


def _storage(storage: Spec) -> dict[str, Any]:
    if storage["type"] == "filesystem":
        fs = storage["filesystem"]
        persistence = {"size": fs["size"], "accessModes": list(fs["accessModes"])}
        if fs.get("storageClassName"):
            persistence["storageClassName"] = fs["storageClassName"]
        return {"type": "filesystem", "persistence": persistence}
    if storage["type"] == "azure":
        azure = dict(storage["azure"])
        ref = azure.pop("credentials", {}).get("secretRef")
        if ref:
            key = ref["accountKeyKey"]
            azure["credentials"] = {"existingSecret": ref["name"], "accountKeyKey": key}
        return {"type": "azure", "azure": azure}
    if storage["type"] == "gcs":
        gcs = dict(storage["gcs"])
        ref = gcs.pop("credentials", {}).get("secretRef")
        if ref:
            gcs["credentials"] = {"existingSecret": ref["name"], "keyFileKey": ref["keyFileKey"]}
        return {"type": "gcs", "gcs": gcs}
    config = dict(storage["config"])
    credentials = config.pop("credentials", {}).get("secretRef")
    s3: dict[str, Any] = config
    if credentials:
        s3["credentials"] = {
            "existingSecret": credentials["name"],
            "accessKeyKey": credentials["accessKeyKey"],
            "secretKeyKey": credentials["secretKeyKey"],
        }
    return {"type": "s3", "s3": s3}


def _oidc(keycloak: Spec) -> dict[str, Any]:
    """A Keycloak realm as the server's auth.oidc issuer: tokens carry
    iss=<url>/realms/<realm> and name the client in aud or azp."""
    issuer = f"{keycloak['url'].rstrip('/')}/realms/{keycloak['realm']}"
    oidc: dict[str, Any] = {
        "issuer": issuer,
        "audience": keycloak["clientId"],
        "clientId": keycloak["clientId"],
    }
    for key in ("roleMap", "groupMap"):
        if keycloak.get(key):
            oidc[key] = dict(keycloak[key])
    return oidc


def _route(route: Spec) -> dict[str, Any]:
    tls = route["tls"]
    termination = tls["termination"]
    out: dict[str, Any] = {"route": {"enabled": True, "tls": {"termination": termination}}}
    if route.get("host"):
        out["route"]["host"] = route["host"]
    if termination == "edge":
        return out
    # reencrypt and passthrough: the pod serves TLS, with the given certificate or (reencrypt)
    # one the service CA issues, which the router trusts.
    if "secretRef" in tls:
        out["tls"] = {"enabled": True, "existingSecret": tls["secretRef"]["name"]}
    else:
        out["tls"] = {"enabled": True, "openshiftServingCert": True}
    if tls.get("destinationCACertificate"):
        out["route"]["tls"]["destinationCACertificate"] = tls["destinationCACertificate"]
    return out
