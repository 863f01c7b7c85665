"""Real OCI clients against the server with authentication on: skopeo (Debian) and oras (the
PyPI package) log in through the docker-style token flow, push, pull, discover and delete."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import oras.client
import oras.oci
import pytest

from tests.e2e.conftest import run, tool
from tests.fixtures.oci_layout import OCI_INDEX, Layout, blob_files
from tests.fixtures.server import ServerProcess

USER = "oci-root"
PASSWORD = "oci-root-password"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("e2e-oci") / "data"
    proc = ServerProcess(data, env={"ZAS_ROOT_USER": USER, "ZAS_ROOT_PASSWORD": PASSWORD})
    proc.start()
    yield proc
    proc.stop()


def skopeo(*args: str, home: Path) -> str:
    return run([tool("skopeo"), *args], env={"HOME": str(home)})


def host(registry: ServerProcess) -> str:
    return f"127.0.0.1:{registry.port}"


def test_skopeo_copies_images_and_indexes_in_and_out_byte_identical(
    registry: ServerProcess, tmp_path: Path, home: Path
) -> None:
    src = Layout(tmp_path / "src")
    single = src.image(layers=3)
    src.tag(single, "v1")
    multi = src.multi_arch(("amd64", "arm64"))
    src.tag(multi, "multi")
    ref = f"docker://{host(registry)}/e2e/skopeo/app"
    creds = f"{USER}:{PASSWORD}"
    skopeo("copy", "--dest-creds", creds, "--dest-tls-verify=false",
           f"oci:{src.root}:v1", f"{ref}:v1", home=home)  # fmt: skip
    skopeo("copy", "--all", "--dest-creds", creds, "--dest-tls-verify=false",
           f"oci:{src.root}:multi", f"{ref}:multi", home=home)  # fmt: skip

    out = tmp_path / "out"
    skopeo("copy", "--all", "--src-creds", creds, "--src-tls-verify=false",
           f"{ref}:multi", f"oci:{out}:multi", home=home)  # fmt: skip
    skopeo("copy", "--src-creds", creds, "--src-tls-verify=false",
           f"{ref}:v1", f"oci:{out}:v1", home=home)  # fmt: skip
    # Every blob (layers, configs, manifests, the index) came back byte for byte.
    assert blob_files(out) == blob_files(src.root)
    out_index = json.loads((out / "index.json").read_text())
    assert {m["digest"] for m in out_index["manifests"]} == {single["digest"], multi["digest"]}

    raw = skopeo("inspect", "--raw", "--creds", creds, "--tls-verify=false", f"{ref}:multi",
                 home=home)  # fmt: skip
    assert hashlib.sha256(raw.encode()).hexdigest() == multi["digest"].split(":")[1]
    assert json.loads(raw)["mediaType"] == OCI_INDEX
    info = json.loads(
        skopeo("inspect", "--creds", creds, "--tls-verify=false", f"{ref}:v1", home=home)
    )
    assert info["Digest"] == single["digest"]
    assert len(info["Layers"]) == 3

    tags = json.loads(skopeo("list-tags", "--creds", creds, "--tls-verify=false", ref, home=home))
    assert sorted(tags["Tags"]) == ["multi", "v1"]
    skopeo("delete", "--creds", creds, "--tls-verify=false", f"{ref}:v1", home=home)
    tags = json.loads(skopeo("list-tags", "--creds", creds, "--tls-verify=false", ref, home=home))
    assert tags["Tags"] == ["multi"]


def test_skopeo_without_credentials_is_refused(
    registry: ServerProcess, tmp_path: Path, home: Path
) -> None:
    src = Layout(tmp_path / "src")
    src.tag(src.image(layers=1, layer_size=1024), "v1")
    cmd = [tool("skopeo"), "copy", "--dest-tls-verify=false", f"oci:{src.root}:v1",
           f"docker://{host(registry)}/e2e/anon:v1"]  # fmt: skip
    with pytest.raises(AssertionError, match=r"(?i)401|denied|unauthorized"):
        run(cmd, env={"HOME": str(home)})
    bad = [*cmd[:2], "--dest-creds", f"{USER}:wrong-password", *cmd[2:]]
    with pytest.raises(AssertionError, match=r"(?i)401|unauthorized|invalid username"):
        run(bad, env={"HOME": str(home)})


def test_oras_pushes_an_artifact_attaches_a_referrer_and_pulls_both(
    registry: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    client = oras.client.OrasClient(hostname=host(registry), insecure=True, auth_backend="token")
    client.auth.set_basic_auth(USER, PASSWORD)
    target = f"{host(registry)}/e2e/oras/report:1.0"

    Path("report.txt").write_text("build report\n")
    r = client.push(
        target=target,
        files=["report.txt:text/plain"],
        manifest_config="config.json:application/vnd.example.report.v1",
        quiet=True,
    )
    assert r.status_code == 201, r.text
    subject_digest = r.headers["Docker-Content-Digest"]
    subject_manifest = client.get_manifest(target)
    assert subject_manifest["config"]["mediaType"] == "application/vnd.example.report.v1"

    # A referrer (an SBOM) with an explicit artifactType and the report as its subject.
    container = client.get_container(f"{host(registry)}/e2e/oras/report")
    Path("sbom.json").write_text('{"spdxVersion": "SPDX-2.3"}')
    layer = oras.oci.NewLayer("sbom.json", media_type="application/spdx+json")
    layer["annotations"] = {"org.opencontainers.image.title": "sbom.json"}
    assert client.upload_blob("sbom.json", container, layer).status_code == 201
    empty = Path("empty.json")
    empty.write_text("{}")
    config = {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
        "size": 2,
    }
    assert client.upload_blob(str(empty), container, config).status_code in (200, 201)
    referrer = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": config,
        "layers": [layer],
        "subject": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": subject_digest,
            "size": len(json.dumps(subject_manifest)),
        },
    }
    sbom_container = client.get_container(f"{host(registry)}/e2e/oras/report:sbom")
    r = client.upload_manifest(referrer, sbom_container)
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == subject_digest
    referrer_digest = r.headers["Docker-Content-Digest"]

    # Discovered through the referrers API, with oras's own authenticated session.
    url = f"http://{host(registry)}/v2/e2e/oras/report/referrers/{subject_digest}"
    found = client.do_request(url + "?artifactType=application%2Fspdx%2Bjson").json()
    assert [m["digest"] for m in found["manifests"]] == [referrer_digest]
    assert found["manifests"][0]["artifactType"] == "application/spdx+json"

    out = tmp_path / "pulled"
    files = client.pull(target=target, outdir=str(out))
    assert [Path(f).read_text() for f in files] == ["build report\n"]
    files = client.pull(target=f"{host(registry)}/e2e/oras/report@{referrer_digest}",
                        outdir=str(out / "sbom"))  # fmt: skip
    assert [Path(f).read_text() for f in files] == ['{"spdxVersion": "SPDX-2.3"}']


def test_token_endpoint_grants_only_what_was_asked_and_allowed(registry: ServerProcess) -> None:
    with httpx.Client(base_url=registry.url) as c:
        r = c.get("/v2/")
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'realm="{registry.url}/v2/token"' in challenge
        r = c.get("/v2/e2e/x/tags/list")
        assert 'scope="repository:e2e/x:pull"' in r.headers["www-authenticate"]

        r = c.get("/v2/token", params={"scope": "repository:e2e/x:pull"}, auth=(USER, "wrong"))
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"

        r = c.get("/v2/token", params={"scope": "repository:e2e/x:pull"}, auth=(USER, PASSWORD))
        assert r.status_code == 200
        token = r.json()["token"]
        assert r.json()["expires_in"] > 0
        bearer = {"Authorization": f"Bearer {token}"}
        assert c.get("/v2/", headers=bearer).status_code == 200
        # pull was granted, push was not asked for: denied, with a challenge for push.
        r = c.post("/v2/e2e/x/blobs/uploads/", headers=bearer)
        assert r.status_code == 403
        assert r.json()["errors"][0]["code"] == "DENIED"
        assert 'scope="repository:e2e/x:pull,push"' in r.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        # Another repository is not in the token either.
        assert c.get("/v2/e2e/y/tags/list", headers=bearer).status_code == 403
        # A forged token is not accepted.
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        r = c.get("/v2/", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401

        # Anonymous: a token with nothing in it (no repository is public here).
        r = c.get("/v2/token", params={"scope": "repository:e2e/x:pull"})
        assert r.status_code == 200
        anon = {"Authorization": f"Bearer {r.json()['token']}"}
        assert c.get("/v2/e2e/x/tags/list", headers=anon).status_code == 401
