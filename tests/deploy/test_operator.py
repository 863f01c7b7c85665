"""The operator deploy/operator (ZotArtifactStore, artifacts.zotregistry.io/v1), without a
cluster: the CRD valid as a CRD, its CEL rules evaluated (cel-python) and held to the same
verdicts as the operator's own checks, every spec field mapped to chart values (valid against
values.schema.json) and through the real chart to objects that are valid and restricted, the
status from Deployment states and errors, the bundle and plain manifests in step with their
sources, the kopf handlers registered, the Containerfile's operator target."""

from __future__ import annotations

import base64
import copy
import importlib.util
import itertools
import json
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import celpy
import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.cases import materialize
from tests.deploy.k8s import (
    CHART,
    K8S_VERSIONS,
    RESTRICTED_VOLUMES,
    ROOT,
    Obj,
    find,
    kinds,
    kustomize,
    pod_spec,
    restricted_violations,
    validate,
)
from tests.fixtures.server import signing_key_pem
from zas_operator import kube
from zas_operator.render import RESOURCES, desired, keys_secret, own, stale
from zas_operator.spec import InvalidSpec, crd, problems, schema, with_defaults
from zas_operator.status import classify, status_for, url_for
from zas_operator.values import values_for
from zot_artifact_store.cli import CONTAINER_DEFAULTS
from zot_artifact_store.config import load_config

OPERATOR = ROOT / "deploy" / "operator"
NS, UID = "store", "0b6f1c2e-5d1a-4c7e-9f7b-2d1e3c4b5a69"
NOW = "2026-12-08T10:00:00Z"
S3 = {"type": "s3", "config": {"bucket": "zas-blobs"}}
MONGO = {"mongodb": {"uriSecretRef": {"name": "mongo"}}}


@cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zas_operator_generate", OPERATOR / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def samples() -> dict[str, Obj]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((OPERATOR / "samples").glob("*"))}


def render(spec: Obj, name: str = "store", **kwargs: Any) -> list[Obj]:
    return desired(spec, name, NS, UID, **kwargs)


# ---- CEL: the CRD's x-kubernetes-validations, evaluated --------------------------------------


@cache
def _rules() -> list[tuple[tuple[str, ...], str, str, Any]]:
    """(path, rule, message, compiled program) of every rule in the schema."""
    env = celpy.Environment()
    out = []

    def walk(sub: Obj, path: tuple[str, ...]) -> None:
        for rule in sub.get("x-kubernetes-validations", []):
            program = env.program(env.compile(rule["rule"]))
            out.append((path, rule["rule"], " ".join(rule["message"].split()), program))
        for key, prop in sub.get("properties", {}).items():
            walk(prop, (*path, key))

    walk(schema(), ())
    return out


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def defaulted(obj: Obj) -> Obj:
    from zas_operator.spec import apply_defaults

    result: Obj = apply_defaults(schema(), copy.deepcopy(obj))
    return result


def cel_failures(obj: Obj, old: Obj | None = None) -> list[str]:
    """Messages of the rules the API server would refuse ``obj`` by (defaults applied first,
    as it does; transition rules only on an update, with ``old``)."""
    obj = defaulted(obj)
    old = defaulted(old) if old else None
    failed = []
    for path, rule, message, program in _rules():
        value = _at(obj, path)
        if value is None:
            continue
        activation = {"self": celpy.json_to_cel(value)}
        if "oldSelf" in rule:
            before = _at(old, path) if old else None
            if before is None:
                continue
            activation["oldSelf"] = celpy.json_to_cel(before)
        result = program.evaluate(activation)
        if not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            failed.append(message)
    return failed


def store(spec: Obj, name: str = "store") -> Obj:
    return {
        "apiVersion": "artifacts.zotregistry.io/v1",
        "kind": "ZotArtifactStore",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def schema_errors(obj: Obj) -> list[str]:
    validator = jsonschema.Draft7Validator(schema(), format_checker=jsonschema.FormatChecker())
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]


# ---- the CRD ----------------------------------------------------------------------------------


def test_the_crd_is_a_valid_crd() -> None:
    definition = crd()
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(definition, version, strict=True)
    spec = definition["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["plural"], spec["names"]["kind"]) == (
        "artifacts.zotregistry.io",
        "Namespaced",
        "zotartifactstores",
        "ZotArtifactStore",
    )
    (v1,) = spec["versions"]
    assert v1["name"] == "v1" and v1["served"] and v1["storage"]
    assert v1["subresources"]["status"] == {}
    columns = {c["name"]: c["jsonPath"] for c in v1["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase" and columns["Ready"] == ".status.readyReplicas"
    replicas = schema()["properties"]["spec"]["properties"]["replicas"]
    assert (replicas["minimum"], replicas["default"]) == (1, 3)


def test_the_crd_schema_is_structural() -> None:
    """Every node has a type (no x-kubernetes-preserve-unknown-fields, no untyped nodes), so
    the API server prunes unknown fields and can default and check CEL costs; lists and
    strings that rules iterate are bounded."""

    def walk(sub: Obj, path: str) -> None:
        assert "type" in sub, f"{path}: no type"
        assert "x-kubernetes-preserve-unknown-fields" not in sub, path
        assert not any(k in sub for k in ("anyOf", "oneOf", "allOf", "not", "$ref")), path
        if sub["type"] == "array":
            assert "maxItems" in sub or path.startswith("status"), f"{path}: unbounded list"
            walk(sub["items"], f"{path}[]")
        for key, prop in sub.get("properties", {}).items():
            if path == "" and key == "metadata":
                continue
            walk(prop, f"{path}.{key}".lstrip("."))
        if isinstance(sub.get("additionalProperties"), dict):
            walk(sub["additionalProperties"], f"{path}{{}}")

    walk(schema(), "")
    storage = schema()["properties"]["spec"]["properties"]["storage"]["properties"]
    assert storage["type"]["enum"] == ["filesystem", "s3", "azure", "gcs"]
    signing = schema()["properties"]["spec"]["properties"]["supplyChain"]["properties"]["signing"]
    assert signing["properties"]["keyProvider"]["enum"] == ["k8s-secret"]
    assert "vault" in signing["properties"]["keyProvider"]["description"].lower()


def test_storage_types_are_the_charts() -> None:
    chart = json.loads((CHART / "values.schema.json").read_text())
    chart_types = chart["properties"]["storage"]["properties"]["type"]["enum"]
    ours = schema()["properties"]["spec"]["properties"]["storage"]["properties"]["type"]["enum"]
    assert ours == chart_types


@pytest.mark.parametrize("sample", list(samples()))
def test_samples_are_valid_stores(sample: str) -> None:
    obj = samples()[sample]
    assert schema_errors(defaulted(obj)) == []
    assert cel_failures(obj) == []
    assert problems(with_defaults(obj["spec"]), obj["metadata"]["name"]) == []


def test_the_schema_refuses_what_it_should() -> None:
    for spec, where in [
        ({"replicas": 0}, "spec.replicas"),
        ({"storage": {"type": "swift"}}, "spec.storage.type"),
        ({"storage": {"type": "gcs", "gcs": {"bucket": "ab"}}}, "bucket"),
        ({"supplyChain": {"signing": {"keyProvider": "vault"}}}, "keyProvider"),
        ({"openshift": {"route": {"tls": {"termination": "plain"}}}}, "termination"),
        ({"image": "quay.io/zas/server"}, "spec.image"),
        ({"image": "registry:5000/zas/server"}, "spec.image"),
        ({"rbac": {"keycloak": {"url": "sso.example.com", "realm": "r", "clientId": "c"}}}, "url"),
        ({"storage": {"filesystem": {"size": "lots"}}}, "size"),
    ]:
        errors = schema_errors(defaulted(store(spec)))
        assert any(where.split(".")[-1] in e for e in errors), (spec, errors)
    for image in (
        "ghcr.io/zot-artifact-store/zot-artifact-store:0.1.0",
        "registry:5000/zas/server:1.2",
        "registry:5000/zas/server@sha256:" + "a" * 64,
    ):
        assert schema_errors(defaulted(store({"replicas": 1, "image": image}))) == []


# ---- invalid specs: refused by CEL, by the operator, and shown as conditions ------------------

INVALID = [
    ({"replicas": 3, "metadata": MONGO}, "ReadWriteMany", "replicas"),
    ({"replicas": 2, "storage": S3}, "external MongoDB", "metadata.mongodb.uriSecretRef"),
    (
        {"replicas": 1, "storage": {"type": "s3"}},
        "needs storage.config.bucket",
        "storage.config.bucket",
    ),
    (
        {"replicas": 1, "storage": {"type": "filesystem", "config": {"bucket": "abc"}}},
        "set storage.type s3",
        "storage.config",
    ),
    (
        {"replicas": 1, "storage": {"type": "azure", "azure": {"container": "blobs"}}},
        "needs storage.azure.accountname and storage.azure.container",
        "storage.azure",
    ),
    (
        {"replicas": 1, "storage": {"type": "s3", "config": {"bucket": "abc"}, "gcs": {}}},
        "set storage.type gcs",
        "storage.gcs",
    ),
    ({"replicas": 1, "storage": {"type": "gcs"}}, "needs storage.gcs.bucket", "storage.gcs.bucket"),
    ({"replicas": 1, "rbac": {"enabled": True}}, "rbac.enabled needs", "rbac.keycloak"),
    (
        {"replicas": 1, "supplyChain": {"signing": {"enabled": True}}},
        "needs supplyChain.signing.secretRef",
        "supplyChain.signing.secretRef",
    ),
    (
        {
            "replicas": 1,
            "openshift": {"route": {"enabled": True, "tls": {"termination": "passthrough"}}},
        },
        "passthrough",
        "openshift.route.tls",
    ),
    (
        {
            "replicas": 1,
            "openshift": {
                "route": {
                    "enabled": True,
                    "tls": {"termination": "reencrypt", "secretRef": {"name": "t"}},
                }
            },
        },
        "needs tls.destinationCACertificate",
        "openshift.route.tls.destinationCACertificate",
    ),
    (
        {"replicas": 1, "openshift": {"route": {"tls": {"destinationCACertificate": "PEM"}}}},
        "for reencrypt only",
        "openshift.route.tls.destinationCACertificate",
    ),
    (
        {"replicas": 1, "openshift": {"enabled": False, "route": {"enabled": True}}},
        "needs OpenShift",
        "openshift.route.enabled",
    ),
]


@pytest.mark.parametrize(("spec", "message", "field"), INVALID, ids=[i[2] for i in INVALID])
def test_invalid_specs_are_refused_with_a_reason(spec: Obj, message: str, field: str) -> None:
    failures = cel_failures(store(spec))
    assert len(failures) == 1 and message in failures[0], failures
    with pytest.raises(InvalidSpec) as caught:
        values_for(spec, "store", NS)
    assert [p.field for p in caught.value.problems] == [field]
    status = status_for(spec, 4, name="store", namespace=NS, now=NOW, error=classify(caught.value))
    assert status["phase"] == "Failed" and status["observedGeneration"] == 4
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "InvalidSpec"
    assert conditions["Degraded"]["status"] == "True"
    assert f"spec.{field}:" in conditions["Degraded"]["message"]
    assert status_schema_errors(status) == []


def test_cel_and_the_operator_agree() -> None:
    """Over every combination of the fields the multi-replica rules read, the CRD's CEL rules
    and the operator's checks refuse the same specs."""
    for replicas, storage, rwx, mongo, bucket in itertools.product(
        (1, 2),
        ("filesystem", "s3", "azure", "gcs"),
        (False, True),
        (False, True),
        ("", "ab", "abc"),
    ):
        spec: Obj = {"replicas": replicas, "storage": {"type": storage}}
        if rwx:
            spec["storage"]["filesystem"] = {"accessModes": ["ReadWriteMany"]}
        if storage == "s3" and bucket:
            spec["storage"]["config"] = {"bucket": bucket}
        if storage == "gcs" and bucket:
            spec["storage"]["gcs"] = {"bucket": bucket}
        if storage == "azure" and bucket:
            spec["storage"]["azure"] = {"accountname": "zasprod", "container": bucket}
        if mongo:
            spec["metadata"] = MONGO
        # ("ab" is refused by the schema's minLength before CEL; the operator refuses it too.)
        cel = bool(cel_failures(store(spec))) or bool(schema_errors(defaulted(store(spec))))
        ours = bool(problems(with_defaults(spec)))
        assert cel == ours, spec


def test_storage_type_cannot_change() -> None:
    old = store({"replicas": 1})
    new = store({"replicas": 1, "storage": S3})
    assert cel_failures(new) == []
    assert cel_failures(new, old) == [
        "storage.type cannot change: the blobs stay in the old backend; create a new "
        "ZotArtifactStore and copy the data"
    ]
    assert cel_failures(store({"replicas": 2, "storage": S3, "metadata": MONGO}), new) == []


@pytest.mark.parametrize(
    ("name", "ok"), [("artifacts", True), ("a" * 52, True), ("a" * 53, False), ("1st", False)]
)
def test_store_names(name: str, ok: bool) -> None:
    assert (cel_failures(store({"replicas": 1}, name)) == []) is ok
    assert (problems(with_defaults({"replicas": 1}), name) == []) is ok


# ---- every spec field → values → objects ------------------------------------------------------


@cache
def chart_values_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((CHART / "values.schema.json").read_text()))


def values(spec: Obj, **kwargs: Any) -> Obj:
    result = values_for(spec, "store", NS, **kwargs)
    errors = [e.message for e in chart_values_validator().iter_errors(result)]
    assert errors == [], errors
    return result


def test_defaults_and_keys() -> None:
    v = values({"replicas": 1})
    assert v["fullnameOverride"] == "store" and v["replicas"] == 1
    assert v["openshift"] == {"enabled": False}
    assert v["auth"]["root"] == {
        "enabled": True,
        "existingSecret": "store-keys",
        "passwordKey": "root-password",
    }
    assert v["auth"]["sharedKeys"] == {"existingSecret": "store-keys", "generate": False}
    assert v["storage"] == {
        "type": "filesystem",
        "persistence": {"size": "20Gi", "accessModes": ["ReadWriteOnce"]},
    }
    assert v["tests"] == {"enabled": False}
    assert "image" not in v  # the chart's appVersion
    assert values({"replicas": 1}, default_image="quay.io/zas/server:9.9")["image"] == {
        "repository": "quay.io/zas/server",
        "tag": "9.9",
    }


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/z/zas:0.2.0", {"repository": "ghcr.io/z/zas", "tag": "0.2.0"}),
        ("registry:5000/z/zas:1", {"repository": "registry:5000/z/zas", "tag": "1"}),
        (
            "r.io/z@sha256:" + "b" * 64,
            {"repository": "r.io/z", "digest": "sha256:" + "b" * 64},
        ),
        (
            "r.io/z:1.0@sha256:" + "b" * 64,
            {"repository": "r.io/z", "tag": "1.0", "digest": "sha256:" + "b" * 64},
        ),
    ],
)
def test_image(image: str, expected: Obj) -> None:
    assert values({"replicas": 1, "image": image})["image"] == expected
    container = find(render({"replicas": 1, "image": image}), "Deployment")["spec"]["template"]
    pulled = container["spec"]["containers"][0]["image"]
    assert pulled.startswith(expected["repository"] + ":")
    assert pulled.endswith(expected.get("digest") or expected["tag"])


def test_filesystem_storage() -> None:
    spec = {
        "replicas": 2,
        "storage": {
            "filesystem": {
                "size": "200Gi",
                "storageClassName": "cephfs",
                "accessModes": ["ReadWriteMany"],
            }
        },
        "metadata": MONGO,
    }
    objects = render(spec)
    pvc = find(objects, "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert pvc["spec"]["storageClassName"] == "cephfs"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert find(objects, "Deployment")["spec"]["replicas"] == 2


def test_azure_and_gcs_storage() -> None:
    azure = {
        "accountname": "zasprod",
        "container": "zas-blobs",
        "rootdirectory": "prod",
        "credentials": {"secretRef": {"name": "azure-storage"}},
    }
    spec = {"replicas": 2, "storage": {"type": "azure", "azure": azure}, "metadata": MONGO}
    assert cel_failures(store(spec)) == [] and problems(with_defaults(spec)) == []
    v = values(spec)
    assert v["storage"] == {
        "type": "azure",
        "azure": {
            "accountname": "zasprod",
            "container": "zas-blobs",
            "rootdirectory": "prod",
            "credentials": {"existingSecret": "azure-storage", "accountKeyKey": "accountkey"},
        },
    }
    objects = render(spec)
    assert "PersistentVolumeClaim" not in kinds(objects)
    driver = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])["storage"][
        "storageDriver"
    ]
    assert (driver["name"], driver["accountname"], driver["container"]) == (
        "azure",
        "zasprod",
        "zas-blobs",
    )
    env = {
        e["name"]: e["value"] for e in pod_spec(find(objects, "Deployment"))["containers"][0]["env"]
    }
    assert env["ZAS_STORAGE_STORAGEDRIVER_ACCOUNTKEY_FILE"].endswith("/azure/accountkey")
    gcs = {"bucket": "zas-blobs", "credentials": {"secretRef": {"name": "gcs-sa"}}}
    spec = {"replicas": 1, "storage": {"type": "gcs", "gcs": gcs}}
    assert cel_failures(store(spec)) == [] and problems(with_defaults(spec)) == []
    objects = render(spec)
    driver = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])["storage"][
        "storageDriver"
    ]
    assert (driver["name"], driver["bucket"]) == ("gcs", "zas-blobs")
    assert driver["keyfile"].endswith("/gcs/key.json")


def test_s3_storage_with_credentials() -> None:
    config = {
        "bucket": "zas-blobs",
        "region": "eu-west-1",
        "regionendpoint": "https://minio.storage:9000",
        "rootdirectory": "prod",
        "forcepathstyle": True,
        "secure": True,
        "skipverify": False,
        "storageclass": "STANDARD_IA",
        "sse": "aws:kms",
        "ssekmskeyid": "alias/zas",
        "chunksize": 16777216,
        "credentials": {"secretRef": {"name": "s3", "accessKeyKey": "id", "secretKeyKey": "key"}},
    }
    v = values({"replicas": 3, "storage": {"type": "s3", "config": config}, "metadata": MONGO})
    expected = {k: val for k, val in config.items() if k != "credentials"}
    assert v["storage"]["s3"] == expected | {
        "credentials": {"existingSecret": "s3", "accessKeyKey": "id", "secretKeyKey": "key"}
    }
    assert v["metadata"] == {"mongodb": {"existingSecret": "mongo", "uriKey": "uri"}}
    objects = render(
        {"replicas": 3, "storage": {"type": "s3", "config": config}, "metadata": MONGO}
    )
    assert "PersistentVolumeClaim" not in kinds(objects)
    server = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])
    assert server["storage"]["storageDriver"]["bucket"] == "zas-blobs"
    assert server["storage"]["storageDriver"]["sse"] == "aws:kms"
    volumes = {v["name"]: v for v in pod_spec(find(objects, "Deployment"))["volumes"]}
    assert volumes["secret-s3"]["secret"]["secretName"] == "s3"
    assert volumes["secret-mongodb"]["secret"]["secretName"] == "mongo"
    # Without a secretRef: the default AWS credential chain (IRSA), no S3 Secret mounted.
    bare = render({"replicas": 1, "storage": S3})
    assert "secret-s3" not in {v["name"] for v in pod_spec(find(bare, "Deployment"))["volumes"]}


def test_keycloak_becomes_the_oidc_issuer() -> None:
    keycloak = {
        "url": "https://sso.example.com/",
        "realm": "ci",
        "clientId": "artifact-store",
        "clientSecret": {"secretRef": {"name": "kc"}},
        "roleMap": {"ci-writer": "writer"},
        "groupMap": {"/admins": "admin"},
    }
    v = values({"replicas": 1, "rbac": {"enabled": True, "keycloak": keycloak}})
    assert v["auth"]["oidc"] == [
        {
            "issuer": "https://sso.example.com/realms/ci",
            "audience": "artifact-store",
            "clientId": "artifact-store",
            "roleMap": {"ci-writer": "writer"},
            "groupMap": {"/admins": "admin"},
        }
    ]
    # The client secret is never mounted: the server checks tokens against the realm's JWKS.
    objects = render({"replicas": 1, "rbac": {"enabled": True, "keycloak": keycloak}})
    assert "kc" not in json.dumps(find(objects, "Deployment"))
    assert "oidc" not in values({"replicas": 1, "rbac": {"keycloak": keycloak}})["auth"]


def test_signing_key_from_a_secret() -> None:
    signing = {"enabled": True, "keyProvider": "k8s-secret", "secretRef": {"name": "sig"}}
    v = values({"replicas": 1, "supplyChain": {"signing": signing}})
    assert v["supplyChain"] == {
        "signing": {"enabled": True, "existingSecret": "sig", "keyKey": "signing.pem"}
    }
    objects = render({"replicas": 1, "supplyChain": {"signing": signing}})
    env = pod_spec(find(objects, "Deployment"))["containers"][0]["env"]
    assert {
        "name": "ZAS_EXTENSIONS_SUPPLYCHAIN_SIGNING_KEY_FILE",
        "value": ("/run/secrets/zas/signing/signing.pem"),
    } in env


@pytest.mark.parametrize(
    ("tls", "expected_tls", "scheme"),
    [
        ({}, None, "HTTP"),
        ({"termination": "reencrypt"}, {"enabled": True, "openshiftServingCert": True}, "HTTPS"),
        (
            {
                "termination": "reencrypt",
                "secretRef": {"name": "crt"},
                "destinationCACertificate": "CA",
            },
            {"enabled": True, "existingSecret": "crt"},
            "HTTPS",
        ),
        (
            {"termination": "passthrough", "secretRef": {"name": "crt"}},
            {"enabled": True, "existingSecret": "crt"},
            "HTTPS",
        ),
    ],
)
def test_openshift_route(tls: Obj, expected_tls: Obj | None, scheme: str) -> None:
    spec = {
        "replicas": 1,
        "openshift": {"route": {"enabled": True, "host": "s.apps.example.com", "tls": tls}},
    }
    v = values(spec, openshift=True)
    assert v["route"]["host"] == "s.apps.example.com"
    assert v["route"]["tls"]["termination"] == tls.get("termination", "edge")
    assert v.get("tls") == expected_tls
    objects = render(spec, openshift=True)
    route = find(objects, "Route")
    validate(route)
    assert route["spec"]["tls"]["termination"] == tls.get("termination", "edge")
    if "destinationCACertificate" in tls:
        assert route["spec"]["tls"]["destinationCACertificate"].strip() == "CA"
    probe = pod_spec(find(objects, "Deployment"))["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["scheme"] == scheme
    assert url_for(spec, "store", NS) == "https://s.apps.example.com"


def test_openshift_is_detected_or_set() -> None:
    assert values({"replicas": 1})["openshift"] == {"enabled": False}
    assert values({"replicas": 1}, openshift=True)["openshift"] == {"enabled": True}
    assert values({"replicas": 1, "openshift": {"enabled": False}}, openshift=True)[
        "openshift"
    ] == {"enabled": False}
    kube_pod = pod_spec(find(render({"replicas": 1}), "Deployment"))
    ocp_pod = pod_spec(find(render({"replicas": 1}, openshift=True), "Deployment"))
    assert "fsGroup" in kube_pod["securityContext"]
    assert restricted_violations(ocp_pod, openshift=True) == []


def test_scc_only_when_asked_and_then_pinned() -> None:
    assert "SecurityContextConstraints" not in kinds(render({"replicas": 1}, openshift=True))
    spec = {"replicas": 1, "openshift": {"scc": {"create": True}}}
    objects = render(spec, openshift=True)
    scc = find(objects, "SecurityContextConstraints")
    validate(scc)
    assert scc["metadata"]["name"] == "zot-artifact-store-store-store"
    assert "namespace" not in scc["metadata"] and "ownerReferences" not in scc["metadata"]
    assert scc["users"] == ["system:serviceaccount:store:store"]
    assert set(scc["volumes"]) == RESTRICTED_VOLUMES  # restricted-v2's, no more
    assert find(objects, "ServiceAccount")["metadata"]["name"] == "store"
    template = find(objects, "Deployment")["spec"]["template"]
    assert (
        template["metadata"]["annotations"]["openshift.io/required-scc"] == scc["metadata"]["name"]
    )
    # The SCC admits the pod as it is: its volumes, no added capabilities, read-only root,
    # no fixed UID or fsGroup (MustRunAsRange / MustRunAs assign them).
    pod = template["spec"]
    assert {next(k for k in v if k != "name") for v in pod["volumes"]} <= set(scc["volumes"])
    for c in pod["containers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert not c["securityContext"]["capabilities"].get("add")
    assert restricted_violations(pod, openshift=True) == []
    named = render(
        {"replicas": 1, "openshift": {"scc": {"create": True, "name": "zas"}}}, openshift=True
    )
    assert find(named, "SecurityContextConstraints")["metadata"]["name"] == "zas"
    # Not on Kubernetes: no SCC there, whatever the spec says.
    assert "SecurityContextConstraints" not in kinds(render(spec))


def test_monitoring() -> None:
    objects = render({"replicas": 1, "monitoring": {"enabled": True, "labels": {"release": "p"}}})
    assert find(objects, "ServiceMonitor")["metadata"]["labels"]["release"] == "p"
    assert find(objects, "PrometheusRule")["metadata"]["labels"]["release"] == "p"
    assert "ServiceMonitor" not in kinds(render({"replicas": 1}))


def test_a_spec_change_rolls_the_deployment() -> None:
    def template(spec: Obj) -> Obj:
        return find(render(spec), "Deployment")["spec"]["template"]

    before = template({"replicas": 1})
    keycloak = {"url": "https://sso", "realm": "r", "clientId": "c"}
    config_changed = template({"replicas": 1, "rbac": {"enabled": True, "keycloak": keycloak}})
    image_changed = template({"replicas": 1, "image": "ghcr.io/z/zas:9.9.9"})
    key = "checksum/config"
    assert config_changed["metadata"]["annotations"][key] != before["metadata"]["annotations"][key]
    assert image_changed["spec"]["containers"][0]["image"].endswith(":9.9.9")
    assert template({"replicas": 1}) == before  # the same spec renders the same pods


# ---- the rendered objects ---------------------------------------------------------------------


@pytest.mark.parametrize("sample", list(samples()))
def test_samples_render_valid_restricted_owned_objects(sample: str) -> None:
    obj = samples()[sample]
    openshift = "openshift" in sample
    objects = render(obj["spec"], obj["metadata"]["name"], openshift=openshift)
    name = obj["metadata"]["name"]
    for o in objects:
        validate(o)
        meta = o["metadata"]
        assert meta["namespace"] == NS
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "zot-artifact-store-operator"
        assert meta["labels"]["app.kubernetes.io/instance"] == name
        assert "helm.sh/hook" not in meta.get("annotations", {})
        owners = meta.get("ownerReferences")
        if o["kind"] == "PersistentVolumeClaim":
            assert owners is None  # kept, like helm uninstall keeps it
        else:
            assert owners == [
                {
                    "apiVersion": "artifacts.zotregistry.io/v1",
                    "kind": "ZotArtifactStore",
                    "name": name,
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
    spec = pod_spec(find(objects, "Deployment"))
    assert spec is not None
    assert restricted_violations(spec, openshift=openshift) == []
    assert spec["enableServiceLinks"] is False
    assert "Secret" not in kinds(objects)  # never the chart's generated Secret


def test_the_openshift_sample_is_what_openshift_users_expect() -> None:
    obj = samples()["zotartifactstore-openshift"]
    objects = render(obj["spec"], "artifacts", openshift=True)
    assert {
        "Deployment",
        "Service",
        "Route",
        "ConfigMap",
        "PodDisruptionBudget",
        "ServiceMonitor",
    } <= set(kinds(objects))
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = pod_spec(deployment)
    assert "fsGroup" not in pod["securityContext"] and "runAsUser" not in pod["securityContext"]
    route = find(objects, "Route")
    assert route["spec"]["host"] == "artifacts.apps.example.com"
    assert route["spec"]["tls"] == {
        "termination": "edge",
        "insecureEdgeTerminationPolicy": "Redirect",
    }
    assert route["metadata"]["annotations"]["haproxy.router.openshift.io/timeout"] == "1h"
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    config = yaml.safe_load(find(objects, "ConfigMap")["data"]["config.yaml"])
    assert config["http"]["externalUrl"] == "https://artifacts.apps.example.com"
    assert config["auth"]["oidc"][0]["issuer"] == "https://keycloak.apps.example.com/realms/ci"
    endpoint = find(objects, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"


@pytest.mark.parametrize("sample", ["zotartifactstore-minimal", "zotartifactstore-s3"])
def test_the_rendered_config_loads_in_the_server(sample: str, tmp_path: Path) -> None:
    """The ConfigMap, the keys Secret the operator makes and stand-ins for the user's Secrets
    load as the server's config, as `serve --container` loads it."""
    obj = samples()[sample]
    name = obj["metadata"]["name"]
    objects = render(obj["spec"], name)
    signing = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "zas-signing"},
        "data": {"signing.pem": base64.b64encode(signing_key_pem().encode()).decode()},
    }
    keys = keys_secret(name, NS)
    env = materialize([*objects, keys, signing], tmp_path / "secrets")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        find(objects, "ConfigMap")["data"]["config.yaml"].replace(
            "/run/secrets/zas", str(tmp_path / "secrets")
        )
    )
    config = load_config(config_file, environ=env, defaults=CONTAINER_DEFAULTS)
    made = {k: base64.b64decode(v).decode() for k, v in keys["data"].items()}
    assert config.auth.root.user == "admin"
    assert config.auth.root.password == made["root-password"]
    assert Path(config.auth.secretsKeyFile).read_text() == made["secrets.key"]
    assert Path(config.auth.token.keyFile).read_text() == made["registry-token.key"]
    if sample.endswith("s3"):
        assert config.storage.storageDriver.name == "s3"
        assert config.metadata_uri.startswith("mongodb://")
        assert config.auth.oidc[0].audience == "artifact-store"
        assert config.extensions.supplychain.signing.key


def test_the_keys_secret_is_random_and_kept() -> None:
    one, two = keys_secret("store", NS), keys_secret("store", NS)
    assert set(one["data"]) == {"root-password", "secrets.key", "registry-token.key"}
    assert one["data"] != two["data"]
    assert one["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "ownerReferences" not in one["metadata"]
    validate(one)
    decoded = {k: base64.b64decode(v).decode() for k, v in one["data"].items()}
    assert len(decoded["secrets.key"]) == 64 and len(decoded["registry-token.key"]) == 64
    assert len(decoded["root-password"]) >= 32
    # The pods read exactly this Secret for the root password and the shared keys.
    volumes = {
        v["name"]: v for v in pod_spec(find(render({"replicas": 1}), "Deployment"))["volumes"]
    }
    assert volumes["secret-root"]["secret"]["secretName"] == "store-keys"
    assert volumes["secret-keys"]["secret"]["secretName"] == "store-keys"


def test_what_is_no_longer_rendered_is_pruned() -> None:
    with_route = render(
        {"replicas": 1, "openshift": {"route": {"enabled": True}}, "monitoring": {"enabled": True}},
        openshift=True,
    )
    without = render({"replicas": 1}, openshift=True)
    gone = stale(with_route, without)
    assert sorted(o["kind"] for o in gone) == ["PrometheusRule", "Route", "ServiceMonitor"]
    assert stale(without, without) == []
    # The PVC and the keys Secret are never pruned.
    assert stale([find(with_route, "PersistentVolumeClaim"), keys_secret("store", NS)], []) == []


def test_the_chart_refusing_becomes_a_condition() -> None:
    """Values the chart's own checks refuse (here: a stand-in, the CRD rules prevent most)."""
    with pytest.raises(helm.HelmError) as caught:
        from zas_operator.render import render_chart

        render_chart({"replicas": 3, "tests": {"enabled": False}}, "store", NS)
    reason, message = classify(caught.value)
    assert reason == "ChartRefused"
    assert message.startswith("replicas=3 with storage.type=filesystem needs a ReadWriteMany")
    assert classify(RuntimeError("HTTP 403: forbidden")) == (
        "ApplyFailed",
        "RuntimeError: HTTP 403: forbidden",
    )


def test_every_rendered_kind_is_in_the_operators_table() -> None:
    rendered: set[str] = set()
    for spec in [
        {
            "replicas": 1,
            "openshift": {"route": {"enabled": True}, "scc": {"create": True}},
            "monitoring": {"enabled": True},
        },
        {"replicas": 3, "storage": S3, "metadata": MONGO},
    ]:
        rendered |= set(kinds(render(spec, openshift=True)))
    rendered.add("Secret")  # the keys Secret
    assert rendered == set(RESOURCES)


def test_own_never_changes_its_input() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    before = copy.deepcopy(obj)
    own(obj, "store", NS, UID)
    assert obj == before


# ---- status -----------------------------------------------------------------------------------


@cache
def status_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        schema()["properties"]["status"], format_checker=jsonschema.FormatChecker()
    )


def status_schema_errors(status: Obj) -> list[str]:
    return [e.message for e in status_validator().iter_errors(status)]


def deployment(
    *,
    replicas: int = 3,
    ready: int = 3,
    updated: int = 3,
    generation: int = 2,
    observed: int = 2,
    conditions: list[Obj] | None = None,
) -> Obj:
    return {
        "metadata": {"generation": generation},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/z/zas:0.1.0"}]}}},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "availableReplicas": ready,
            "conditions": conditions or [],
        },
    }


PROD = {"replicas": 3, "storage": S3, "metadata": MONGO}
STUCK = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "store-7d" has timed out progressing.',
}
FORBIDDEN = {
    "type": "ReplicaFailure",
    "status": "True",
    "reason": "FailedCreate",
    "message": (
        'pods "store-7d-" is forbidden: unable to validate against any security context constraint'
    ),
}


@pytest.mark.parametrize(
    ("observed", "phase", "ready", "progressing", "degraded"),
    [
        (None, "Pending", ("False", "Pending"), ("True", "Creating"), ("False", "AsExpected")),
        (
            deployment(ready=0, updated=0, replicas=0),
            "Pending",
            ("False", "ReplicasNotReady"),
            ("True", "RollingOut"),
            ("False", "AsExpected"),
        ),
        (
            deployment(),
            "Running",
            ("True", "AllReplicasReady"),
            ("False", "RolloutComplete"),
            ("False", "AsExpected"),
        ),
        (
            deployment(observed=1),
            "Running",
            ("False", "ReplicasNotReady"),
            ("True", "RollingOut"),
            ("False", "AsExpected"),
        ),
        (
            deployment(replicas=4, updated=1),
            "Running",
            ("False", "ReplicasNotReady"),
            ("True", "RollingOut"),
            ("False", "AsExpected"),
        ),
        (
            deployment(ready=2),
            "Running",
            ("False", "ReplicasNotReady"),
            ("False", "RolloutComplete"),
            ("True", "ReplicasUnavailable"),
        ),
        (
            deployment(ready=0, updated=3, replicas=3, conditions=[STUCK]),
            "Failed",
            ("False", "ReplicasNotReady"),
            ("False", "ProgressDeadlineExceeded"),
            ("True", "ProgressDeadlineExceeded"),
        ),
        (
            deployment(ready=0, updated=0, replicas=0, conditions=[FORBIDDEN]),
            "Failed",
            ("False", "ReplicasNotReady"),
            ("True", "RollingOut"),
            ("True", "ReplicaFailure"),
        ),
        (
            deployment(ready=3, replicas=4, updated=1, conditions=[STUCK]),
            "Running",
            ("False", "ReplicasNotReady"),
            ("False", "ProgressDeadlineExceeded"),
            ("True", "ProgressDeadlineExceeded"),
        ),
    ],
    ids=[
        "none",
        "starting",
        "ready",
        "new-generation",
        "rolling",
        "pod-lost",
        "stuck",
        "scc-refused",
        "stuck-old-serving",
    ],
)
def test_status_from_the_deployment(
    observed: Obj | None,
    phase: str,
    ready: tuple[str, str],
    progressing: tuple[str, str],
    degraded: tuple[str, str],
) -> None:
    status = status_for(PROD, 2, name="store", namespace=NS, now=NOW, deployment=observed)
    assert status_schema_errors(status) == []
    assert status["phase"] == phase
    got = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert got == {"Ready": ready, "Progressing": progressing, "Degraded": degraded}
    messages = {c["type"]: c["message"] for c in status["conditions"]}
    if degraded[1] == "ReplicaFailure":
        assert "security context constraint" in messages["Degraded"]
    assert status["observedGeneration"] == 2
    assert (
        status["selector"]
        == "app.kubernetes.io/name=zot-artifact-store,app.kubernetes.io/instance=store"
    )
    assert status["url"] == "http://store.store.svc:8080"


def test_the_status_selector_selects_the_pods() -> None:
    status = status_for(PROD, 1, name="store", namespace=NS, now=NOW)
    labels = find(render(PROD), "Deployment")["spec"]["selector"]["matchLabels"]
    assert status["selector"] == ",".join(f"{k}={v}" for k, v in labels.items())


def test_transition_times_are_kept_while_a_condition_holds() -> None:
    first = status_for(
        PROD,
        1,
        name="store",
        namespace=NS,
        now="2026-12-08T10:00:00Z",
        deployment=deployment(ready=2),
    )
    later = status_for(
        PROD,
        1,
        name="store",
        namespace=NS,
        now="2026-12-08T10:05:00Z",
        deployment=deployment(ready=3),
        previous=first["conditions"],
    )
    times = {c["type"]: c["lastTransitionTime"] for c in later["conditions"]}
    assert times == {
        "Ready": "2026-12-08T10:05:00Z",
        "Progressing": "2026-12-08T10:00:00Z",
        "Degraded": "2026-12-08T10:05:00Z",
    }


def test_status_urls() -> None:
    route = {"replicas": 1, "openshift": {"route": {"enabled": True}}}
    assert (
        url_for(route, "s", "ns", route_host="s-ns.apps.example.com")
        == "https://s-ns.apps.example.com"
    )
    assert url_for(route, "s", "ns") == "http://s.ns.svc:8080"
    reencrypt = {
        "replicas": 1,
        "openshift": {"route": {"enabled": True, "tls": {"termination": "reencrypt"}}},
    }
    assert url_for(reencrypt, "s", "ns") == "https://s.ns.svc:8080"


# ---- the kopf glue ----------------------------------------------------------------------------


def test_the_kopf_handlers_are_registered() -> None:
    import kopf

    import zas_operator.handlers as handlers

    registry = kopf.get_default_registry()
    changing = registry._changing.get_all_handlers()
    ours = [h for h in changing if h.fn is handlers.reconcile]
    causes = sorted(str(h.reason) for h in ours if h.reason) + ["resume" for h in ours if h.initial]
    assert {"create", "update", "resume"} <= {c.rsplit(".", 1)[-1].lower() for c in causes}
    selectors = {(h.selector.group, h.selector.version, h.selector.any_name) for h in ours}
    assert selectors == {("artifacts.zotregistry.io", "v1", "zotartifactstores")}
    timers = [h for h in registry._spawning.get_all_handlers() if h.fn is handlers.reconcile]
    assert len(timers) == 1 and timers[0].interval == 60.0
    deletes = [h for h in changing if h.fn is handlers.delete_scc]
    assert len(deletes) == 1 and deletes[0].when is handlers._created_scc
    activities = {h.fn for h in registry._activities.get_all_handlers()}
    assert {handlers.startup, handlers.cleanup} <= activities


def test_api_paths() -> None:
    assert kube.path("Deployment", "s", "ns") == "/apis/apps/v1/namespaces/ns/deployments/s"
    assert kube.path("ConfigMap", None, "ns") == "/api/v1/namespaces/ns/configmaps"
    assert kube.path("Route", "s", "ns") == "/apis/route.openshift.io/v1/namespaces/ns/routes/s"
    assert (
        kube.path("SecurityContextConstraints", "x", None)
        == "/apis/security.openshift.io/v1/securitycontextconstraints/x"
    )


# ---- the bundle, the plain manifests, the image -------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    problems = generator().check()
    assert problems == [], "deploy/operator is out of date; run `make manifests`:\n" + "\n".join(
        problems
    )


def test_the_freshness_check_catches_an_edit(tmp_path: Path) -> None:
    import shutil

    copy_dir = tmp_path / "operator"
    shutil.copytree(OPERATOR / "config", copy_dir / "config")
    shutil.copytree(OPERATOR / "bundle", copy_dir / "bundle")
    rbac = copy_dir / "config" / "rbac.yaml"
    rbac.write_text(rbac.read_text().replace("- delete\n", "", 1))
    doc = tmp_path / "deploy.md"
    doc.write_text(
        (ROOT / "docs" / "deploy.md")
        .read_text()
        .replace("| `replicas` | integer | `3`", "| `replicaCount` | integer | `3`")
    )
    problems = generator().check(copy_dir, doc)
    assert len(problems) == 2 and "+  - delete" in problems[0] and "CRD reference" in problems[1]


def test_the_plain_manifests_are_valid_and_restricted() -> None:
    objects = kustomize(OPERATOR / "config")
    assert kinds(objects) == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Namespace",
            "ServiceAccount",
        ]
    )
    for obj in objects:
        validate(obj)
    pod = pod_spec(find(objects, "Deployment"))
    assert restricted_violations(pod, openshift=True) == []
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert find(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert find(objects, "CustomResourceDefinition") == crd()


def _rule_kinds(rules: list[Obj]) -> set[tuple[str, str]]:
    return {(group, res) for r in rules for group in r["apiGroups"] for res in r["resources"]}


def test_rbac_is_least_privilege() -> None:
    gen = generator()
    namespaced = gen.namespaced_rules()
    allowed = _rule_kinds(namespaced)
    applied = {(r.group, r.plural) for r in RESOURCES.values() if r.namespaced}
    assert allowed == applied | {
        ("artifacts.zotregistry.io", "zotartifactstores"),
        ("artifacts.zotregistry.io", "zotartifactstores/status"),
        ("", "events"),
        ("events.k8s.io", "events"),
    }
    for rule in namespaced + gen.cluster_rules():
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
    assert _rule_kinds(gen.cluster_rules()) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "namespaces"),
        ("security.openshift.io", "securitycontextconstraints"),
    }
    for rule in gen.cluster_rules()[:2]:
        assert rule["verbs"] == ["list", "watch"]
    assert not ({("", "pods"), ("", "pods/exec"), ("", "nodes")} & allowed)


def test_the_olm_bundle() -> None:
    gen = generator()
    bundle = OPERATOR / "bundle"
    csv = yaml.safe_load(
        (
            bundle / "manifests" / "zot-artifact-store-operator.clusterserviceversion.yaml"
        ).read_text()
    )
    bundled_crd = yaml.safe_load(
        (bundle / "manifests" / "artifacts.zotregistry.io_zotartifactstores.yaml").read_text()
    )
    annotations = yaml.safe_load((bundle / "metadata" / "annotations.yaml").read_text())[
        "annotations"
    ]
    assert bundled_crd == crd()
    assert annotations["operators.operatorframework.io.bundle.mediatype.v1"] == "registry+v1"
    assert annotations["operators.operatorframework.io.bundle.manifests.v1"] == "manifests/"
    assert (
        annotations["operators.operatorframework.io.bundle.package.v1"]
        == "zot-artifact-store-operator"
    )
    assert csv["apiVersion"] == "operators.coreos.com/v1alpha1"
    version = csv["spec"]["version"]
    assert csv["metadata"]["name"] == f"zot-artifact-store-operator.v{version}"
    owned = csv["spec"]["customresourcedefinitions"]["owned"]
    assert [(o["name"], o["version"], o["kind"]) for o in owned] == [
        ("zotartifactstores.artifacts.zotregistry.io", "v1", "ZotArtifactStore")
    ]
    modes = {m["type"]: m["supported"] for m in csv["spec"]["installModes"]}
    assert modes == {
        "OwnNamespace": True,
        "SingleNamespace": True,
        "MultiNamespace": False,
        "AllNamespaces": True,
    }
    install = csv["spec"]["install"]
    assert install["strategy"] == "deployment"
    (dep,) = install["spec"]["deployments"]
    assert install["spec"]["permissions"][0]["rules"] == gen.namespaced_rules()
    assert install["spec"]["clusterPermissions"][0]["rules"] == gen.cluster_rules()
    sa = {
        p["serviceAccountName"]
        for p in install["spec"]["permissions"] + install["spec"]["clusterPermissions"]
    }
    assert sa == {dep["spec"]["template"]["spec"]["serviceAccountName"]}
    validate(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": dep["name"]},
            "spec": dep["spec"],
        }
    )
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert (
        env["WATCH_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"]
        == "metadata.annotations['olm.targetNamespaces']"
    )
    related = {r["name"]: r["image"] for r in csv["spec"]["relatedImages"]}
    assert (
        container["image"]
        == related["operator"]
        == csv["metadata"]["annotations"]["containerImage"]
    )
    assert (
        related["operator"] == f"ghcr.io/zot-artifact-store/zot-artifact-store-operator:{version}"
    )
    assert env["RELATED_IMAGE_ZOT_ARTIFACT_STORE"]["value"] == related["zot-artifact-store"]
    chart_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert version == chart_version
    examples = json.loads(csv["metadata"]["annotations"]["alm-examples"])
    assert sorted(e["metadata"]["name"] for e in examples) == sorted(
        s["metadata"]["name"] for s in samples().values()
    )
    for example in examples:
        assert schema_errors(defaulted(example)) == [] and cel_failures(example) == []


def test_the_containerfile_has_an_operator_target_and_keeps_the_default() -> None:
    text = (ROOT / "Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.M)
    names = [alias for _, alias in stages]
    assert "operator" in names and "server" in names
    # The last stage, built by default (make image, tests/image), is the server image as it was.
    assert stages[-1] == ("server", "")
    operator = text.split("AS operator\n", 1)[1].split("\nFROM ", 1)[0]
    assert 'ENTRYPOINT ["python3", "-m", "zas_operator"]' in operator
    assert "ZAS_OPERATOR_CHART=/opt/zas-operator/chart" in operator
    assert "USER 1001:0" in operator
    builder = text.split("AS operator-builder\n", 1)[1].split("\nFROM ", 1)[0]
    assert '["optional-dependencies"]["operator"]' in builder
    ignore = (ROOT / ".containerignore").read_text()
    assert (
        "!deploy/operator/zas_operator/" in ignore and "!deploy/helm/zot-artifact-store/" in ignore
    )


def test_the_operator_deps_stay_out_of_the_server() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert "kopf" not in runtime and "helm-python-sdk" not in runtime
    assert {d.split("==")[0] for d in project["optional-dependencies"]["operator"]} == {
        "kopf",
        "helm-python-sdk",
    }
