"""The container image (Containerfile), built with ``make image`` and run here as OpenShift
runs it: an arbitrary UID in group 0 (see tests/fixtures/image.py for how, with no container
engine). Then dogfood: the image is pushed into a store started from itself, gets an SBOM of
its Python packages and the store's signature as evidence, verifies under a policy, and a gate
in enforce mode serves it and refuses an unsigned image."""

from __future__ import annotations

import importlib.metadata
import json
import os
import stat
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.conftest import tool
from tests.fixtures.image import (
    ARBITRARY_UID,
    IMAGE,
    Build,
    Container,
    ContainerServer,
    build_image,
    image_config,
    sh,
    storage_env,
    which_in,
)
from tests.fixtures.oci_layout import OCI_MANIFEST, Layout, oras_push_referrer

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
USER, PASSWORD = "image-root", "image-root-password"
ROOT_ENV = {"ZAS_ROOT_USER": USER, "ZAS_ROOT_PASSWORD": PASSWORD}
CYCLONEDX = "application/vnd.cyclonedx+json"
SITE = "/opt/zas/lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def built() -> Build:
    build = build_image()
    print(f"\nimage: make image took {build.seconds:.1f} s")
    return build


@pytest.fixture
def container(built: Build) -> Iterator[Container]:
    with Container(built.image) as c:
        yield c


def test_the_image_config_is_what_orchestrators_expect(built: Build) -> None:
    config = image_config(built.image)["config"]
    assert config["User"] == "1001:0"
    assert config["Entrypoint"] == ["zot-artifact-store", "serve", "--container"]
    assert set(config["ExposedPorts"]) == {"8080/tcp"}
    assert config["StopSignal"] == "SIGTERM"
    assert "Healthcheck" not in config  # probes belong to the orchestrator
    assert config["WorkingDir"] == "/var/lib/zas"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    # The commit it was built from (HEAD, or before it when a commit landed since the build).
    revision = labels["org.opencontainers.image.revision"]
    assert len(revision) == 40
    ancestor = ["git", "merge-base", "--is-ancestor", revision, "HEAD"]
    assert subprocess.run(ancestor, cwd=REPO, check=False).returncode == 0, revision
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    # The build leaves nothing behind: no working container (each keeps an overlay mounted).
    left = sh("buildah", "containers", "--format", "{{.ContainerName}}").split()
    assert [name for name in left if not name.startswith("zas-test-")] == [], left
    size = sh("buildah", "images", "--format", "{{.Size}}", built.image).strip()
    print(f"\nimage: {size} uncompressed (on the test base)")


def test_nothing_in_the_image_is_writable_only_by_a_fixed_uid(container: Container) -> None:
    owners: set[int] = set()
    offenders = []
    for top in container.rootfs.iterdir():
        if top.name in ("proc", "sys", "dev"):
            continue
        for path in [top, *top.rglob("*")]:
            st = path.lstat()
            owners.add(st.st_uid)
            if st.st_uid == 0 or stat.S_ISLNK(st.st_mode):
                continue
            user, group = (st.st_mode >> 6) & 7, (st.st_mode >> 3) & 7
            if st.st_gid != 0 or group != user:
                offenders.append(f"{path.relative_to(container.rootfs)} {oct(st.st_mode)}")
    assert not offenders, offenders[:20]
    assert owners <= {0, 1001}
    data = container.path("/var/lib/zas").stat()
    assert data.st_gid == 0 and data.st_mode & stat.S_IWGRP
    assert stat.S_IMODE(container.path("/tmp").stat().st_mode) == 0o1777


def test_the_image_has_no_compiler_pip_sources_or_tests(container: Container) -> None:
    assert which_in(container, ["gcc", "cc", "make", "pip", "pip3", "pip3.11"]) == []
    for gone in ("/src", "/dist", "/wheelhouse", "/root/.cache/pip", "/opt/zas/bin/pip"):
        assert not container.path(gone).exists(), gone
    site = container.path(SITE)
    assert (site / "zot_artifact_store").is_dir() and (site / "zot_artifacts_cli").is_dir()
    # The Azure Blob and GCS backends' clients (the azure and gcs extras) are in.
    assert (site / "azure" / "storage" / "blob").is_dir() and (site / "azure" / "identity").is_dir()
    assert (site / "google" / "cloud" / "storage").is_dir()
    assert not (site / "tests").exists()


def test_both_commands_are_in_the_image(container: Container) -> None:
    for command in ("zot-artifact-store", "zot-artifacts"):
        out = container.run([command, "--version"])
        assert out.returncode == 0, out.stdout
        assert out.stdout.split() == [command, VERSION]
    # Maintenance from the same entrypoint's defaults (data in /var/lib/zas).
    gc = container.run(
        ["zot-artifact-store", "gc", "--container", "--dry-run"], stderr=subprocess.PIPE
    )
    assert gc.returncode == 0, gc.stderr
    report = json.loads(gc.stdout)
    assert report["blobs_deleted"] == 0 and "blobs_seen" in report


def s3(server: ContainerServer, home: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": USER,
        "AWS_SECRET_ACCESS_KEY": PASSWORD,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    out = subprocess.run(
        [tool("aws"), "--endpoint-url", server.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_entrypoint_serves_v1_and_s3_as_any_uid_in_group_0(
    container: Container, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.tar.gz"
    artifact.write_bytes(os.urandom(300_000))
    server = ContainerServer(container, ROOT_ENV).start(tmp_path / "server.log")
    try:
        assert f'"port": {server.port}' in server.log() and '"address": "0.0.0.0"' in server.log()
        with httpx.Client(base_url=server.url, auth=(USER, PASSWORD), timeout=60) as c:
            assert c.get("/health/ready").json()["status"] == "ok"
            assert httpx.get(f"{server.url}/v1/buckets").status_code == 401  # auth is on
            assert c.put("/v1/buckets/builds").status_code in (200, 201)
            r = c.put("/v1/buckets/builds/objects/v1/app.tar.gz", content=artifact.read_bytes())
            assert r.status_code in (200, 201), r.text
            assert c.get("/v1/buckets/builds/objects/v1/app.tar.gz").content == (
                artifact.read_bytes()
            )
        s3(server, tmp_path, "s3", "cp", str(artifact), "s3://builds/s3/app.tar.gz")
        s3(server, tmp_path, "s3", "cp", "s3://builds/s3/app.tar.gz", str(tmp_path / "back"))
        assert (tmp_path / "back").read_bytes() == artifact.read_bytes()
    finally:
        assert server.stop() == 0, server.log()[-2000:]
    assert '"message": "stopped"' in server.log()

    # What it wrote belongs to group 0 and is group-writable, so the next pod, under another
    # arbitrary UID, reads and writes the same data.
    data = container.path("/var/lib/zas")
    for path in [data, *data.rglob("*")]:
        st = path.lstat()
        assert st.st_uid in (0, ARBITRARY_UID) and st.st_gid == 0, path
        want = stat.S_IRGRP | stat.S_IWGRP | (stat.S_IXGRP if path.is_dir() else 0)
        assert st.st_mode & want == want, f"{path} {oct(st.st_mode)}"
    again = ContainerServer(container, ROOT_ENV, uid=ARBITRARY_UID + 7)
    again.start(tmp_path / "again.log")
    try:
        s3(again, tmp_path, "s3", "cp", str(artifact), "s3://builds/s3/second.tar.gz")
        out = s3(again, tmp_path, "s3", "ls", "s3://builds/", "--recursive")
        assert {line.split()[-1] for line in out.splitlines()} == {
            "s3/app.tar.gz",
            "s3/second.tar.gz",
            "v1/app.tar.gz",
        }
    finally:
        assert again.stop() == 0, again.log()[-2000:]


def image_sbom(site: Path) -> bytes:
    """A CycloneDX SBOM of the Python distributions installed in ``site``."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    for dist in importlib.metadata.distributions(path=[str(site)]):
        name, version = dist.metadata["Name"], dist.version
        purl = PackageURL("pypi", name=name.lower().replace("_", "-"), version=version)
        bom.components.add(
            Component(type=ComponentType.LIBRARY, name=name, version=version, purl=purl)
        )
    return JsonV1Dot6(bom).output_as_string().encode()


def skopeo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**storage_env(), "HOME": str(home)}
    return subprocess.run(
        [tool("skopeo"), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_image_is_pushed_into_the_store_it_serves_signed_with_its_sbom(
    container: Container, tmp_path: Path
) -> None:
    # The store runs from the image, with its config mounted at /etc/zas/config.yaml (read
    # because it is there) and its signing key as a mounted secret.
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    etc = container.path("/etc/zas")
    (etc / "signing.pem").write_bytes(pem)
    (etc / "signing.pem").chmod(0o640)  # a Secret volume: readable by the pod's group
    signing = {"signing": {"keyFile": "/etc/zas/signing.pem"}}
    (etc / "config.yaml").write_text(json.dumps({"extensions": {"supplychain": signing}}))
    server = ContainerServer(container, ROOT_ENV).start(tmp_path / "server.log")
    home = tmp_path / "home"
    home.mkdir()
    host = f"127.0.0.1:{server.port}"
    repo, tag = "zot/zot-artifact-store", f"test-{uuid.uuid4().hex[:6]}"
    creds = f"{USER}:{PASSWORD}"
    try:
        digest_file = tmp_path / "digest"
        out = skopeo(
            home, "copy", "--dest-tls-verify=false", "--dest-creds", creds,
            "--digestfile", str(digest_file),
            f"containers-storage:{IMAGE}", f"docker://{host}/{repo}:{tag}",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        digest = digest_file.read_text().strip()

        with httpx.Client(base_url=server.url, auth=(USER, PASSWORD), timeout=60) as c:
            manifest = c.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
            assert manifest.status_code == 200, manifest.text
            subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest.content)}
            assert manifest.headers["content-type"] == OCI_MANIFEST
            # The SBOM of the image's Python packages, pushed as an OCI referrer.
            sbom = image_sbom(container.path(SITE))
            assert b'"name": "zot-artifact-store"' in sbom.replace(b'":"', b'": "')
            oras_push_referrer(host, (USER, PASSWORD), tmp_path, repo, subject,
                               {"sbom.cdx.json": (sbom, CYCLONEDX)}, CYCLONEDX)  # fmt: skip
            referrers = c.get(f"/v2/{repo}/referrers/{digest}").json()["manifests"]
            assert [m["artifactType"] for m in referrers] == [CYCLONEDX]
            token = c.post("/v1/tokens", json={"name": "dogfood", "roles": ["admin"]}).json()
            server_key = next(
                k["id"]
                for k in c.get("/v1/keys").json()["keys"]
                if k["name"] == "server signing key"
            )

        # The CLI in the same image signs with the store's key and verifies under a policy.
        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            env = {"ZOT_ARTIFACTS_URL": server.url, "ZOT_ARTIFACTS_TOKEN": token["token"]}
            return container.run(["zot-artifacts", "--no-progress", *args], env=env)

        policy = {"signatures": [{"key": server_key}], "sbom": True}
        container.path("/tmp/policy.json").write_text(json.dumps(policy))
        before = cli("verify", "--image", f"{repo}@{digest}", "--policy", "/tmp/policy.json")
        assert before.returncode == 1, before.stdout  # the SBOM alone does not verify
        signed = cli("sign", "--image", f"{repo}@{digest}")
        assert signed.returncode == 0, signed.stdout
        after = cli("verify", "--image", f"{repo}@{digest}", "--policy", "/tmp/policy.json")
        assert after.returncode == 0, after.stdout
        assert "FAIL" not in after.stdout and "PASS" in after.stdout

        # A gate in enforce mode: the verified image is served, an unsigned one refused.
        gate = cli("policy", "set", "--repositories", "zot/*", "--file", "/tmp/policy.json",
                   "--mode", "enforce")  # fmt: skip
        assert gate.returncode == 0, gate.stdout
        pulled = skopeo(
            home, "copy", "--src-tls-verify=false", "--src-creds", creds,
            f"docker://{host}/{repo}:{tag}", f"oci:{tmp_path / 'pulled'}:{tag}",
        )  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
        unsigned = Layout(tmp_path / "unsigned")
        unsigned.tag(unsigned.image(layers=1), "v1")
        pushed = skopeo(
            home, "copy", "--dest-tls-verify=false", "--dest-creds", creds,
            f"oci:{unsigned.root}:v1", f"docker://{host}/zot/unsigned:v1",
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        refused = skopeo(
            home, "copy", "--src-tls-verify=false", "--src-creds", creds,
            f"docker://{host}/zot/unsigned:v1", f"oci:{tmp_path / 'refused'}:v1",
        )  # fmt: skip
        assert refused.returncode != 0
        assert "verification" in refused.stderr.lower() or "denied" in refused.stderr.lower()
    finally:
        assert server.stop() == 0, server.log()[-2000:]
