"""The Helm chart deploy/helm/zot-artifact-store, rendered and linted by Helm v4's SDK: every
object valid for the pinned Kubernetes versions, pods admitted by the restricted profiles, the
rendered config accepted by the server's own loader, the refusals, and alerts on real metrics."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy.cases import CASES, STAND_INS, Case, materialize, resolved
from tests.deploy.k8s import (
    CHART,
    find,
    kinds,
    pod_spec,
    render,
    restricted_violations,
    validate,
)
from zot_artifact_store.cli import CONTAINER_DEFAULTS
from zot_artifact_store.config import load_config
from zot_artifact_store.observability.metrics import Metrics

CASE_IDS = [c.id for c in CASES]


@pytest.fixture(scope="module", params=CASES, ids=CASE_IDS)
def rendered(request: pytest.FixtureRequest) -> tuple[Case, dict[str, Any], list[dict[str, Any]]]:
    case: Case = request.param
    values = resolved(case)
    return case, values, render(values)


def test_every_object_is_valid_for_kubernetes(rendered: Any) -> None:
    case, _, objects = rendered
    for obj in objects:
        validate(obj)
    present = set(kinds(objects))
    assert set(case.kinds) <= present, f"missing {set(case.kinds) - present}"
    # The test hook: a Pod and its script, both annotated as helm test hooks.
    hooks = [o for o in objects if o["metadata"].get("annotations", {}).get("helm.sh/hook")]
    assert sorted(o["kind"] for o in hooks) == ["ConfigMap", "Pod"]


def test_pods_run_under_the_restricted_profiles(rendered: Any) -> None:
    case, _, objects = rendered
    pods = [(o["kind"], pod_spec(o)) for o in objects if pod_spec(o) is not None]
    assert [k for k, _ in pods] == ["Deployment", "Pod"]
    for kind, spec in pods:
        assert restricted_violations(spec, openshift=False) == [], kind
        if case.openshift:
            assert restricted_violations(spec, openshift=True) == [], kind
        container = spec["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "runAsUser" not in container["securityContext"]
        assert "runAsUser" not in spec["securityContext"]
        # Everything the process writes is a volume: /tmp, and the data directory (HOME too).
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts
    server = find(objects, "Deployment")["spec"]["template"]["spec"]
    assert {"/var/lib/zas", "/etc/zas"} <= {
        m["mountPath"] for m in server["containers"][0]["volumeMounts"]
    }
    assert {"name": "HOME", "value": "/var/lib/zas"} in server["containers"][0]["env"]
    # No service-link variables: ZAS_<SERVICE>_PORT from a Service named zas-… would be an
    # unknown ZAS_ setting, which stops the server.
    assert server["enableServiceLinks"] is False
    assert ("fsGroup" in server["securityContext"]) is not case.openshift


def test_the_restricted_check_finds_what_breaks_it() -> None:
    bad = {
        "hostNetwork": True,
        "securityContext": {"runAsUser": 0, "sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
        "volumes": [{"name": "host", "hostPath": {"path": "/var/run"}}],
        "containers": [
            {
                "name": "app",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {
                    "privileged": True,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                    "seccompProfile": {"type": "Unconfined"},
                },
            }
        ],
    }
    found = "\n".join(restricted_violations(bad, openshift=False))
    for expected in (
        "hostNetwork is true",
        "volume host: type hostPath",
        "sysctl kernel.msgmax",
        "container app: privileged",
        "allowPrivilegeEscalation must be false",
        "capabilities must drop ALL",
        "adds capabilities ['SYS_ADMIN']",
        "hostPort",
        "runAsNonRoot must be true",
        "seccompProfile must be RuntimeDefault",
        "pod: runAsUser 0",
    ):
        assert expected in found
    # The chart's Kubernetes pod (fsGroup set) is not what OpenShift's restricted-v2 admits
    # unchanged: the openshift value is what makes the difference.
    kubernetes_pod = pod_spec(find(render({}), "Deployment"))
    assert kubernetes_pod is not None
    assert restricted_violations(kubernetes_pod, openshift=False) == []
    assert restricted_violations(kubernetes_pod, openshift=True) == [
        "pod: fsGroup is set; restricted-v2 assigns it from the namespace's range "
        "(MustRunAsRange / MustRunAs)"
    ]


def test_the_rendered_config_loads_in_the_server(rendered: Any, tmp_path: Path) -> None:
    """The ConfigMap's config.yaml with the Deployment's environment (the ZAS_*_FILE variables
    pointing at the Secret files the pod would mount) is a valid config for the server, loaded
    as `serve --container` loads it."""
    _case, values, objects = rendered
    config_text = find(objects, "ConfigMap", "zas-zot-artifact-store")["data"]["config.yaml"]
    secrets = tmp_path / "secrets"
    env = materialize(objects, secrets)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_text.replace("/run/secrets/zas", str(secrets)))
    config = load_config(config_file, environ=env, defaults=CONTAINER_DEFAULTS)
    assert config.http.address == "0.0.0.0" and config.http.port == 8080
    assert config.storage.rootDirectory == "/var/lib/zas"
    assert config.http.shutdownTimeout == values.get("http", {}).get("shutdownTimeoutSeconds", 30)
    assert config.auth.root.user == "admin" and config.auth.root.password
    assert len(config.auth.root.password) >= 8
    storage_type = values.get("storage", {}).get("type", "filesystem")
    driver = config.storage.storageDriver
    assert driver.name == (None if storage_type == "filesystem" else storage_type)
    mongodb = values.get("metadata", {}).get("mongodb", {})
    assert config.metadata_uri.startswith("mongodb" if mongodb else "sqlite:////var/lib/zas/")
    if mongodb.get("uri"):
        assert config.metadata.uri == mongodb["uri"]
    if storage_type == "azure":
        azure = values["storage"]["azure"]
        assert (driver.accountname, driver.container) == (azure["accountname"], azure["container"])
        assert driver.accountkey == STAND_INS["accountkey"]  # from the Secret, as a file
    if storage_type == "gcs":
        assert driver.bucket == values["storage"]["gcs"]["bucket"]
        assert driver.keyfile and Path(driver.keyfile).read_text() == STAND_INS["key.json"]
    if storage_type in ("s3", "azure", "gcs"):  # OCI pulls redirected to the backend: opt-in
        chosen = values["storage"][storage_type]
        assert driver.redirect is chosen.get("redirect", False)
        assert driver.redirectexpiry == chosen.get("redirectexpiry", 1200)
    if storage_type == "s3":
        assert driver.bucket == values["storage"]["s3"]["bucket"]
        assert driver.accesskey and driver.secretkey
        inline = values["storage"]["s3"]["credentials"].get("accessKey")
        if inline:
            assert (driver.accesskey, driver.secretkey) == (inline, "s3cr3t-key-value")
    # Shared keys come from the Secret, so every replica uses the same ones.
    assert config.auth.secretsKeyFile and Path(config.auth.secretsKeyFile).read_text()
    signing = values.get("supplyChain", {}).get("signing", {})
    if signing.get("enabled"):
        from zot_artifact_store.services.signing import LocalKeyProvider

        assert config.extensions.supplychain.signing.key
        LocalKeyProvider(config.extensions.supplychain.signing.key)  # the key parses
    # Never a key each pod makes for itself (replicas would sign with different keys).
    assert config.extensions.supplychain.signing.generate is False
    if values.get("tls", {}).get("enabled"):
        assert config.http.tls.cert and config.http.tls.key
    # The first-class values reach their config keys (defaults: the server's own).
    http_values = values.get("http", {})
    assert config.http.trustedProxies == http_values.get("trustedProxies", [])
    cors = http_values.get("cors", {})
    assert config.http.cors.allowOrigins == cors.get("allowOrigins", [])
    assert config.http.cors.allowCredentials is cors.get("allowCredentials", False)
    s3_values = values.get("s3", {})
    assert config.s3.region == s3_values.get("region", "us-east-1")
    assert config.s3.blockPublicAccess is s3_values.get("blockPublicAccess", False)
    assert config.extensions.webhooks.enable is True
    assert config.extensions.webhooks.allowNetworks == values.get("webhooks", {}).get(
        "allowNetworks", []
    )


def test_rolling_update_and_termination(rendered: Any) -> None:
    _case, values, objects = rendered
    deployment = find(objects, "Deployment")
    spec = deployment["spec"]
    shared = values.get("storage", {}).get("type", "filesystem") != "filesystem"
    assert spec["strategy"]["type"] == ("RollingUpdate" if shared else "Recreate")
    assert spec["replicas"] == values.get("replicas", 1)
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    shutdown = values.get("http", {}).get("shutdownTimeoutSeconds", 30)
    assert pod["terminationGracePeriodSeconds"] > sleep + shutdown
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # The readiness check may wait 5 s for the metadata store and 5 s for the blob store.
    assert container["readinessProbe"]["timeoutSeconds"] > 10
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    zones = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
    assert zones == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_helm_lint_passes(rendered: Any) -> None:
    _case, values, _ = rendered
    report = helm.lint(CHART, values, strict=True, namespace="store")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert problems == []
    assert report["total_charts_linted"] == 1


# ---- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"replicas": 3},
            r"replicas=3 with storage.type=filesystem needs a ReadWriteMany volume: "
            r"storage.persistence.accessModes=\[ReadWriteOnce\] can be mounted by one node",
        ),
        (
            {"replicas": 2, "storage": {"persistence": {"enabled": False}}},
            r"every replica would keep its own blobs in its own emptyDir",
        ),
        (
            {"replicas": 2, "storage": {"persistence": {"accessModes": ["ReadWriteMany"]}}},
            r"replicas=2 needs an external MongoDB",
        ),
        (
            {"route": {"enabled": True, "tls": {"termination": "passthrough"}}},
            r"route.tls.termination=passthrough sends TLS to the pod: set tls.enabled=true",
        ),
        (
            {"terminationGracePeriodSeconds": 30},
            r"terminationGracePeriodSeconds=30 must be longer than preStopSleepSeconds \+ "
            r"http.shutdownTimeoutSeconds \(35\)",
        ),
        (
            {"supplyChain": {"signing": {"enabled": True}}},
            r"supplyChain.signing.enabled=true needs the key",
        ),
        (
            {"storage": {"type": "azure", "azure": {"container": "blobs"}}},
            r"storage.type=azure needs storage.azure.accountname, or a connection string",
        ),
        (
            {"storage": {"type": "s3", "s3": {"bucket": "bkt", "credentials": {"accessKey": "A"}}}},
            r"set both accessKey and secretKey",
        ),
    ],
    ids=[
        "rwo-replicas",
        "emptydir-replicas",
        "no-mongodb",
        "passthrough",
        "grace",
        "signing",
        "azure-account",
        "s3",
    ],
)
def test_the_chart_refuses(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


def test_replicas_on_read_write_many_with_mongodb_render() -> None:
    objects = render(
        {
            "replicas": 2,
            "storage": {"persistence": {"accessModes": ["ReadWriteMany"]}},
            "metadata": {"mongodb": {"uri": "mongodb://m/zas?replicaSet=rs0"}},
        }
    )
    assert find(objects, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert find(objects, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"storage": {"type": "azure"}}, "/storage/azure/container"),
        ({"storage": {"type": "gcs"}}, "/storage/gcs/bucket"),
        ({"storage": {"type": "swift"}}, "/storage/type"),
        ({"storage": {"type": "s3"}}, "/storage/s3/bucket"),
        ({"replica": 3}, "additional properties 'replica' not allowed"),
        ({"http": {"trustedProxies": ["the router"]}}, "/http/trustedProxies/0"),
        ({"http": {"cors": {"allowOrigins": ["ci.example.com"]}}}, "/http/cors/allowOrigins/0"),
        ({"s3": {"region": "EU Central"}}, "/s3/region"),
        ({"webhooks": {"allowNetworks": ["cluster"]}}, "/webhooks/allowNetworks/0"),
        ({"route": {"tls": {"termination": "plain"}}}, "/route/tls/termination"),
        ({"auth": {"root": {"password": "short"}}}, "/auth/root/password"),
        ({"ingress": {"enabled": True}}, "/ingress/hosts"),
        ({"storage": {"s3": {"sse": "aws:kms:dsse"}}}, "/storage/s3/sse"),
    ],
)
def test_the_values_schema_refuses(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        render(values)


# ---- values.schema.json: the contract --------------------------------------------------------


def _leaves(values: Any, schema: dict[str, Any], path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, value, schema) of every value in values.yaml, descending where the schema names
    the properties."""
    out = [(path, values, schema)]
    props = schema.get("properties")
    if isinstance(values, dict) and props:
        for key, value in values.items():
            assert key in props, f"{path}.{key} in values.yaml is missing from values.schema.json"
            out += _leaves(value, props[key], f"{path}.{key}".lstrip("."))
    return out


def test_values_schema_describes_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    leaves = _leaves(values, schema)
    for path, _, sub in leaves[1:]:
        assert sub.get("description"), f"{path}: no description in values.schema.json"

    # ... and nothing in the schema that values.yaml leaves out (each value has a default).
    def walk(sub: dict[str, Any], default: Any, path: str) -> None:
        for key, prop in (sub.get("properties") or {}).items():
            if path == "" and key == "global":
                continue
            assert isinstance(default, dict) and key in default, f"{path}{key}: no default"
            walk(prop, default[key], f"{path}{key}.")

    walk(schema, values, "")

    # Objects refuse unknown keys, so a typo fails at install time.
    def closed(sub: dict[str, Any], path: str) -> None:
        if sub.get("properties"):
            assert sub.get("additionalProperties") is False, f"{path or 'the top'} is open"
            for key, prop in sub["properties"].items():
                closed(prop, f"{path}.{key}")

    closed(schema, "")


def test_storage_types_are_what_the_server_implements() -> None:
    """The schema offers the filesystem and the object stores config.py accepts as
    storage.storageDriver.name, nothing the server would refuse at start."""
    from typing import get_args

    from zot_artifact_store.config import StorageDriverConfig

    def literals(annotation: Any) -> set[str]:
        args = get_args(annotation)
        if not args:
            return {annotation} if isinstance(annotation, str) else set()
        return set().union(*(literals(a) for a in args))

    schema = json.loads((CHART / "values.schema.json").read_text())
    chart_types = set(schema["properties"]["storage"]["properties"]["type"]["enum"])
    server_drivers = literals(StorageDriverConfig.model_fields["name"].annotation)
    assert server_drivers and chart_types == {"filesystem"} | server_drivers


# ---- monitoring --------------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """Every sample name /metrics can carry (counters with _total, histograms with _bucket)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        kind = family.type
        base = family.name
        if kind == "counter":
            names |= {base + "_total", base + "_created"}
        elif kind == "histogram":
            names |= {base + s for s in ("_bucket", "_sum", "_count", "_created")}
        else:
            names.add(base)
    return names


def test_alerts_use_only_metrics_the_server_exports() -> None:
    objects = render(
        {"monitoring": {"enabled": True}, "storage": {"type": "s3", "s3": {"bucket": "zas"}}}
    )
    rule = find(objects, "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "ZotArtifactStoreDown",
        "ZotArtifactStoreHighErrorRatio",
        "ZotArtifactStoreHighLatency",
        "ZotArtifactStoreStorageErrors",
    }
    exported = exported_metric_names()
    used = {m for expr in alerts.values() for m in re.findall(r"\bzas_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    # Each alert selects this release's targets: the ServiceMonitor's job is the Service name.
    service = find(objects, "Service")["metadata"]["name"]
    for name, expr in alerts.items():
        assert f'job="{service}", namespace="store"' in expr, name
    # The filesystem backend adds the kubelet's volume alert on its PVC.
    fs_rule = find(render({"monitoring": {"enabled": True}}), "PrometheusRule")
    expr = fs_rule["spec"]["groups"][0]["rules"][-1]["expr"]
    assert 'persistentvolumeclaim="zas-zot-artifact-store-data"' in expr


def test_latency_alert_leaves_out_body_routes() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pattern = re.compile(values["monitoring"]["prometheusRule"]["latencyExcludeRoutes"])
    for route in (
        "s3:/{bucket}/{key}",
        "/v1/buckets/{bucket}/objects/{key}",
        "/v2/{name}/blobs/{digest}",
    ):
        assert pattern.fullmatch(route), route
    for route in ("s3:/{bucket}", "/v1/buckets/{bucket}", "/v2/{name}/manifests/{reference}"):
        assert not pattern.fullmatch(route), route


def test_service_monitor_scrapes_metrics() -> None:
    objects = render({"monitoring": {"enabled": True, "prometheusRule": {"enabled": False}}})
    assert "PrometheusRule" not in kinds(objects)
    endpoint = find(objects, "ServiceMonitor")["spec"]["endpoints"][0]
    service_port = find(objects, "Service")["spec"]["ports"][0]["name"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == (
        service_port,
        "/metrics",
        "http",
    )


def test_openshift_route_for_large_uploads() -> None:
    case = next(c for c in CASES if c.id == "openshift-route")
    objects = render(case.values)
    route = find(objects, "Route")
    assert route["metadata"]["annotations"]["haproxy.router.openshift.io/timeout"] == "1h"
    assert route["spec"]["tls"] == {
        "termination": "edge",
        "insecureEdgeTerminationPolicy": "Redirect",
    }
    assert route["spec"]["to"]["name"] == find(objects, "Service")["metadata"]["name"]
    config = yaml.safe_load(
        find(objects, "ConfigMap", "zas-zot-artifact-store")["data"]["config.yaml"]
    )
    assert config["http"]["externalUrl"] == "https://store.apps.example.com"
    # The router reaches the pods through the NetworkPolicy.
    peers = find(objects, "NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"network.openshift.io/policy-group": "ingress"}}
    } in peers


def test_reencrypt_uses_the_service_ca() -> None:
    case = next(c for c in CASES if c.id == "openshift-reencrypt")
    objects = render(case.values)
    service = find(objects, "Service")
    assert service["metadata"]["annotations"] == {
        "service.beta.openshift.io/serving-cert-secret-name": "zas-zot-artifact-store-tls"
    }
    container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert find(objects, "Route")["spec"]["tls"]["termination"] == "reencrypt"


def test_secrets_reach_the_server_as_files_only() -> None:
    case = next(c for c in CASES if c.id == "s3-3-replicas")
    objects = render(case.values)
    config = find(objects, "ConfigMap", "zas-zot-artifact-store")["data"]["config.yaml"]
    container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) == {
        "HOME",
        "ZAS_ROOT_PASSWORD_FILE",
        "ZAS_METADATA_URI_FILE",
        "ZAS_STORAGE_STORAGEDRIVER_ACCESSKEY_FILE",
        "ZAS_STORAGE_STORAGEDRIVER_SECRETKEY_FILE",
    }
    rendered_text = json.dumps(find(objects, "Deployment")) + config
    for secret in ("change-me-now", "s3cr3t-key-value", "AKIAEXAMPLE", "replicaSet=rs0"):
        assert secret not in rendered_text


def test_generated_secret_is_kept() -> None:
    generated = find(render({}), "Secret", "zas-zot-artifact-store-generated")
    assert generated["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert set(generated["data"]) == {"root-password", "secrets.key", "registry-token.key"}
    none = render(
        {"auth": {"root": {"existingSecret": "r"}, "sharedKeys": {"existingSecret": "k"}}}
    )
    assert "Secret" not in kinds(none)


def test_values_are_not_mutated_by_rendering() -> None:
    values = resolved(CASES[-1])
    before = copy.deepcopy(values)
    render(values)
    assert values == before


DELETE = object()


@pytest.mark.parametrize(
    ("kind", "path", "value", "message"),
    [
        (
            "Deployment",
            ("spec", "template", "spec", "containers", 0, "readinesProbe"),
            {},
            r"Deployment/zas-zot-artifact-store \(Kubernetes 1.27.0\)",
        ),
        ("Service", ("spec", "ports", 0, "port"), "http", r"spec\.ports\.0\.port"),
        (
            "Route",
            ("spec", "tls"),
            {"termination": "passthrough", "certificate": "PEM"},
            r"Route/zas-zot-artifact-store: spec\.tls",
        ),
        (
            "ServiceMonitor",
            ("spec", "endpoints", 0, "interval"),
            "half a minute",
            r"spec\.endpoints\.0\.interval",
        ),
        (
            "PrometheusRule",
            ("spec", "groups", 0, "rules", 0, "expr"),
            DELETE,
            "'expr' is a required property",
        ),
    ],
)
def test_validation_catches_what_kubernetes_refuses(
    kind: str, path: tuple[str | int, ...], value: Any, message: str
) -> None:
    objects = render({"route": {"enabled": True}, "monitoring": {"enabled": True}})
    obj = copy.deepcopy(find(objects, kind))
    validate(obj)
    node: Any = obj
    for step in path[:-1]:
        node = node[step]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises(AssertionError, match=message):
        validate(obj)


def test_chart_runs_the_image_of_this_version() -> None:
    import tomllib

    version = tomllib.loads((CHART.parents[2] / "pyproject.toml").read_text())["project"]["version"]
    metadata = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (metadata["version"], metadata["appVersion"]) == (version, version)
    container = find(render({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/zot-artifact-store/zot-artifact-store:{version}"
    digest = "sha256:" + "a" * 64
    pinned = find(render({"image": {"digest": digest}}), "Deployment")
    assert pinned["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        f":{version}@{digest}"
    )
