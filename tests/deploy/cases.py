"""The values matrix the chart is rendered for, and the files its Secrets would hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.deploy.k8s import Obj, find
from tests.fixtures.server import signing_key_pem

SECRETS_DIR = "/run/secrets/zas"


@dataclass(frozen=True)
class Case:
    id: str
    values: dict[str, Any]
    openshift: bool = False
    kinds: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "defaults",
        {},
        kinds=(
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceAccount",
        ),
    ),
    Case(
        "openshift-route",
        {
            "openshift": {"enabled": True},
            "route": {"enabled": True, "host": "store.apps.example.com"},
            "networkPolicy": {"ingressFrom": [{"podSelector": {"matchLabels": {"ci": "true"}}}]},
        },
        openshift=True,
        kinds=("Route",),
    ),
    Case(
        "openshift-reencrypt",
        {
            "openshift": {"enabled": True},
            "tls": {"enabled": True, "openshiftServingCert": True},
            "route": {"enabled": True, "tls": {"termination": "reencrypt"}},
            "metadata": {"mongodb": {"existingSecret": "mongo", "uriKey": "connectionString"}},
            "monitoring": {"enabled": True},
        },
        openshift=True,
        kinds=("Route", "ServiceMonitor", "PrometheusRule"),
    ),
    Case(
        "s3-3-replicas",
        {
            "replicas": 3,
            "storage": {
                "type": "s3",
                "s3": {
                    "bucket": "zas-blobs",
                    "regionendpoint": "http://minio.storage:9000",
                    "forcepathstyle": True,
                    "rootdirectory": "prod",
                    "sse": "AES256",
                    "redirect": True,
                    "redirectexpiry": 600,
                    "credentials": {"accessKey": "AKIAEXAMPLE", "secretKey": "s3cr3t-key-value"},
                },
            },
            "metadata": {"mongodb": {"uri": "mongodb://m-0,m-1,m-2/zas?replicaSet=rs0"}},
            "auth": {"root": {"password": "change-me-now"}},
        },
    ),
    Case(
        "azure-2-replicas",
        {
            "replicas": 2,
            "storage": {
                "type": "azure",
                "azure": {
                    "accountname": "zasprod",
                    "container": "zas-blobs",
                    "rootdirectory": "prod",
                    "credentials": {"existingSecret": "azure-storage"},
                },
            },
            "metadata": {"mongodb": {"uri": "mongodb://m-0,m-1,m-2/zas?replicaSet=rs0"}},
        },
    ),
    Case(
        "gcs-key-file",
        {
            "storage": {
                "type": "gcs",
                "gcs": {
                    "bucket": "zas-blobs",
                    "redirect": True,
                    "credentials": {"existingSecret": "gcs-sa"},
                },
            },
        },
    ),
    Case(
        "monitoring-ingress-everything",
        {
            "replicas": 2,
            "storage": {
                "type": "s3",
                "s3": {"bucket": "zas", "credentials": {"existingSecret": "s3-keys"}},
            },
            "metadata": {"mongodb": {"uri": "mongodb+srv://cluster0.example.net/zas"}},
            "auth": {
                "root": {"existingSecret": "root", "passwordKey": "pw"},
                "sharedKeys": {"existingSecret": "shared-keys"},
                "oidc": [
                    {
                        "issuer": "https://sso.example.com/realms/ci",
                        "audience": "zas",
                        "roleMap": {"ci-writer": "writer"},
                    }
                ],
            },
            "supplyChain": {"signing": {"enabled": True, "key": "SIGNING_PEM"}},
            "tls": {"enabled": True, "existingSecret": "zas-tls"},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": [{"host": "store.example.com"}],
                "tls": [{"secretName": "store-tls", "hosts": ["store.example.com"]}],
            },
            "networkPolicy": {
                "ingressFrom": [{"namespaceSelector": {"matchLabels": {"team": "ci"}}}],
                "egressTo": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
            },
            "monitoring": {"enabled": True, "serviceMonitor": {"labels": {"release": "prom"}}},
            "tracing": {"enabled": True, "endpoint": "http://otel:4318/v1/traces"},
            "extraConfig": {"auth": {"lockout": {"attempts": 5}}},
            "http": {
                "workers": 2,
                "shutdownTimeoutSeconds": 60,
                "trustedProxies": ["10.128.0.0/14"],
                "cors": {"allowOrigins": ["https://ci.example.com"], "allowCredentials": True},
            },
            "s3": {"region": "eu-central-1", "blockPublicAccess": True},
            "webhooks": {"allowNetworks": ["10.0.0.0/8"]},
        },
        kinds=("Ingress", "ServiceMonitor", "PrometheusRule"),
    ),
]


def resolved(case: Case) -> dict[str, Any]:
    """The case's values with placeholders filled in (a fresh signing key)."""
    values = case.values
    signing = values.get("supplyChain", {}).get("signing", {})
    if signing.get("key") == "SIGNING_PEM":
        values = {**values, "supplyChain": {"signing": {**signing, "key": signing_key_pem()}}}
    return values


def secret_contents(objects: list[Obj]) -> dict[tuple[str, str], str]:
    """(Secret name, key) → content, for the Secrets the chart renders and stand-ins for the
    ones a user provides (existingSecret)."""
    import base64

    contents: dict[tuple[str, str], str] = {}
    for obj in objects:
        if obj["kind"] == "Secret":
            for key, data in (obj.get("data") or {}).items():
                contents[(obj["metadata"]["name"], key)] = base64.b64decode(data).decode()
    return contents


STAND_INS = {
    "pw": "root-password-from-a-user-secret",
    "password": "root-password-from-a-user-secret",
    "connectionString": "mongodb://mongo-0.mongo,mongo-1.mongo/zas?replicaSet=rs0",
    "uri": "mongodb://mongo-0.mongo/zas?replicaSet=rs0",
    "accesskey": "AKIAUSERSECRET",
    "secretkey": "user-secret-key-value",
    "accountkey": "YXp1cmUtYWNjb3VudC1rZXk=",
    "key.json": '{"type": "service_account", "client_email": "zas@example.com"}',
    "secrets.key": "a" * 64,
    "registry-token.key": "b" * 64,
}


def materialize(objects: list[Obj], directory: Path) -> dict[str, str]:
    """Write the files the server container would see under /run/secrets/zas (its Secret volume
    mounts, by item) into ``directory``; return the container's environment with those paths
    moved there. A self-signed certificate stands in for the TLS Secret."""
    deployment = find(objects, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    contents = secret_contents(objects)
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        if not mount["mountPath"].startswith(SECRETS_DIR):
            continue
        target = directory / mount["mountPath"][len(SECRETS_DIR) + 1 :]
        target.mkdir(parents=True, exist_ok=True)
        secret = volumes[mount["name"]]["secret"]
        if mount["name"] == "tls":
            write_self_signed(target)
            continue
        for item in secret["items"]:
            value = contents.get((secret["secretName"], item["key"]))
            if value is None:
                value = STAND_INS[item["key"]]
            (target / item["path"]).write_text(value)
    env = {}
    for var in container["env"]:
        env[var["name"]] = var["value"].replace(SECRETS_DIR, str(directory))
    return env


def write_self_signed(directory: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zas.store.svc")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
