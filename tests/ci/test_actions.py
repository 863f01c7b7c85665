"""The composite actions and the Tekton tasks, run by the local runners (tests/ci/runner.py)
exactly as written, against a real server that trusts a GitHub-shaped test issuer and signs
with its own key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.ci.conftest import AUDIENCE
from tests.ci.issuer import REPOSITORY, TestIssuer, github_claims
from tests.ci.runner import REPO, ActionRunner, TaskRunner
from tests.fixtures.image import Container
from tests.fixtures.server import ServerProcess

GITHUB = {
    "GITHUB_REPOSITORY": REPOSITORY,
    "GITHUB_REPOSITORY_ID": "424242",
    "GITHUB_REPOSITORY_OWNER_ID": "4242",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_SHA": "9f2c1e0d5b7a3c4e8f6a1b2c3d4e5f60718293a4",
    "GITHUB_RUN_ID": "1234567890",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_WORKFLOW_REF": f"{REPOSITORY}/.github/workflows/release.yml@refs/heads/main",
}


SYSTEM_PYTHON = os.access("/usr/bin/python3", os.X_OK)


@pytest.fixture(scope="session")
def action_python() -> Iterator[str]:
    """The actions' private venv, created once by the actions' own setup script (the steps
    then find it and skip creation). It lives in a world-readable cache directory
    (``ZAS_ACTION_VENV_ROOT``, as a runner's tool cache would be), built on the system Python
    as on a runner image: the Tekton steps' non-root user must be able to run it, and a
    checkout (or a Python under /root) may not be readable to that user."""
    root = Path(tempfile.mkdtemp(prefix="zas-action-venv-"))
    root.chmod(0o755)
    os.environ["ZAS_ACTION_VENV_ROOT"] = str(root)
    out = subprocess.run(
        ["bash", str(REPO / "actions/_shared/setup-venv.sh"), "sbom"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
            **({"ZAS_ACTION_PYTHON": "/usr/bin/python3"} if SYSTEM_PYTHON else {}),
        },
    )
    try:
        assert out.returncode == 0, out.stderr
        yield out.stdout.strip().splitlines()[-1]
    finally:
        os.environ.pop("ZAS_ACTION_VENV_ROOT", None)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workspace() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ci-ws-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def job(workspace: Path, issuer: TestIssuer | None) -> ActionRunner:
    return ActionRunner(workspace, github=dict(GITHUB), issuer=issuer)


def test_workload_identity_is_exchanged_and_masked(
    store: ServerProcess, issuer: TestIssuer, workspace: Path, bucket: str, action_python: str
) -> None:
    """No files: the step fails with one readable annotation, after a real exchange whose
    tokens never reach the log."""
    result = job(workspace, issuer).run(
        "actions/upload-artifact",
        {"url": store.url, "bucket": bucket, "path": "dist/*.tar.gz", "if-no-files-found": "error"},
    )
    assert not result.success
    assert result.errors() == ["no files match dist/*.tar.gz"]
    assert AUDIENCE in issuer.requests
    assert len(result.masks) == 2  # the job's OIDC token and the store token
    for secret in result.masks:
        assert secret not in result.log
    assert "**Failed:** no files match" in result.summary


def test_a_forks_token_is_refused_readably(
    store: ServerProcess, workspace: Path, bucket: str, action_python: str
) -> None:
    with TestIssuer(github_claims(repository="evil/app")) as fork:
        config_issuer = fork.issuer  # a different issuer altogether: not trusted
        result = job(workspace, fork).run(
            "actions/upload-artifact", {"url": store.url, "bucket": bucket, "path": "x"}
        )
    assert not result.success
    [error] = result.errors()
    assert "/v1/auth/exchange answered 401" in error, error
    assert config_issuer not in result.outputs.get("uri", "")


def test_upload_sign_sbom_provenance_verify_in_one_run(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
) -> None:
    signer = ec.generate_private_key(ec.SECP256R1())
    pem = signer.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    r = admin.post("/v1/keys", json={"name": "ci release key", "public_key": public.decode()})
    assert r.status_code == 201, r.text
    key_id = r.json()["id"]
    dist = workspace / "dist"
    (dist / "sub").mkdir(parents=True)
    (dist / "app.tar.gz").write_bytes(os.urandom(4096))
    (dist / "sub" / "notes.txt").write_text("release notes\n")
    (dist / ".secret").write_text("hidden\n")
    sbom = workspace / "sbom.cdx.json"
    sbom.write_text(
        json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []})
    )
    policy = workspace / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "signatures": [{"key": key_id}],
                "attestations": [{"predicate_type": "https://slsa.dev/provenance/v1"}],
                "sbom": True,
            }
        )
    )
    runner = job(workspace, issuer)
    inputs = {
        "url": store.url,
        "bucket": bucket,
        "key-prefix": "app/1.0",
        "path": "dist/",
        "sign": "true",
        "signing-key": pem,
        "signing-key-id": key_id,
        "sbom": str(sbom),
        "provenance": "true",
        "policy": str(policy),
    }
    result = runner.run(".", inputs)
    assert result.success, result.log
    assert result.outputs["keys"].splitlines() == ["app/1.0/app.tar.gz", "app/1.0/sub/notes.txt"]
    assert result.outputs["verified"] == "true"
    assert len(json.loads(result.outputs["evidence-ids"])) == 6  # signature, SBOM, provenance x2
    digests = json.loads(result.outputs["digests"])
    head = admin.head(f"/v1/buckets/{bucket}/objects/app/1.0/app.tar.gz")
    assert head.status_code == 200
    assert json.loads(result.outputs["uris"])[0] == (
        f"{store.url}/v1/buckets/{bucket}/objects/app/1.0/app.tar.gz"
    )
    assert digests["app/1.0/app.tar.gz"].startswith("sha256:")
    assert "### Uploaded 2 file(s)" in result.summary and "Verification passed" in result.summary
    assert pem.splitlines()[1] in result.masks  # the key from the secret is masked too
    assert len(result.summary.encode()) < 1024 * 1024

    # A name conflict names the object and fails unless overwrite: true.
    again = runner.run(".", {**inputs, "sign": "false", "provenance": "false", "sbom": ""})
    assert not again.success
    assert f"{bucket}/app/1.0/app.tar.gz already exists" in again.errors()[0]

    # Tampered: new bytes under the same key (overwrite) are not what was signed.
    (dist / "app.tar.gz").write_bytes(b"tampered" * 100)
    tampered = runner.run(
        ".", {**inputs, "sign": "false", "provenance": "false", "sbom": "", "overwrite": "true"}
    )
    assert not tampered.success
    assert tampered.outputs["verified"] == "false"
    assert any("verification failed" in e for e in tampered.errors()), tampered.errors()

    # The verify action on objects named by key: the untouched one still passes, a missing key
    # is named as missing (not mistaken for an empty listing).
    policy.write_text(json.dumps({"signatures": [{"key": key_id}]}))
    named = runner.run(
        "actions/verify",
        {"url": store.url, "bucket": bucket, "keys": "app/1.0/sub/notes.txt",
         "policy": str(policy)},
    )  # fmt: skip
    assert named.success, named.log
    assert named.outputs["verified"] == "true"
    missing = runner.run(
        "actions/verify",
        {"url": store.url, "bucket": bucket, "keys": "app/9.9/none.txt", "policy": str(policy)},
    )
    assert not missing.success
    assert f"{bucket}/app/9.9/none.txt does not exist" in missing.errors()[0]


@pytest.mark.parametrize("identity", ["github-oidc", "writer-token"])
def test_the_one_step_upload_action_signs_attaches_proves_and_verifies(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
    identity: str,
) -> None:
    """`uses: ./actions/upload-artifact` with sign, sbom, provenance and policy, the README's
    one-liner, as a GitHub OIDC job and with a writer token. Issue 18's finding: a writer
    identity failed with "may not signing:Attest". Now the store builds the provenance from
    what it verified — the OIDC token's claims (a step that sets GITHUB_REPOSITORY=evil/repo
    changes nothing), or for a token only who uploaded — and a policy naming the repository
    passes for the OIDC job, one naming another repository fails."""
    (workspace / "dist").mkdir()
    (workspace / "dist" / "app.tar.gz").write_bytes(os.urandom(2048))
    (workspace / "dist" / "app.txt").write_text("notes\n")
    (workspace / "sbom.cdx.json").write_text(
        json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []})
    )
    inputs = {"url": store.url, "bucket": bucket, "key-prefix": "one", "path": "dist/",
              "sign": "true", "sbom": "sbom.cdx.json", "provenance": "true"}  # fmt: skip
    if identity == "github-oidc":
        runner = job(workspace, issuer)
        runner.env["GITHUB_REPOSITORY"] = "evil/repo"  # set by some earlier step: not believed
        source: dict[str, str] = {"repository": REPOSITORY, "ref": "refs/heads/*"}
    else:
        runner = job(workspace, None)
        made = admin.post("/v1/tokens", json={"name": "ci", "roles": ["writer"]})
        assert made.status_code == 201, made.text
        inputs["token"] = made.json()["token"]
        source = {}
    key = next(k["id"] for k in admin.get("/v1/keys").json()["keys"]
               if k["name"] == "server signing key")  # fmt: skip
    attestation: dict[str, Any] = {
        "predicate_type": "https://slsa.dev/provenance/v1", "signer": {"key": key},
        **({"source": source} if source else {})}  # fmt: skip
    policy = workspace / "policy.json"
    policy.write_text(json.dumps({"signatures": [{"key": key}], "sbom": True,
                                  "attestations": [attestation]}))  # fmt: skip
    result = runner.run("actions/upload-artifact", {**inputs, "policy": str(policy)})
    assert result.success, result.log
    assert result.outputs["verified"] == "true"
    # Signature, SBOM and attestation ids, for both files, in the outputs and the summary.
    evidence = json.loads(result.outputs["evidence-ids"])
    assert len(evidence) == 6, evidence
    assert all(e in result.summary for e in evidence)
    listed = admin.get(f"/v1/buckets/{bucket}/objects/one/app.tar.gz/attestations").json()
    [attestation_listed] = listed["attestations"]
    assert attestation_listed["details"]["built_by_server"] == "true"
    envelope = admin.get(f"/v1/evidence/{attestation_listed['id']}").json()
    statement = json.loads(base64.b64decode(envelope["payload"]))
    # One statement for the run, naming every file relative to the bucket.
    assert sorted(s["name"] for s in statement["subject"]) == ["one/app.tar.gz", "one/app.txt"]
    build = statement["predicate"]["buildDefinition"]
    if identity == "writer-token":
        assert build["externalParameters"]["uploader"].startswith("token:"), build
        return
    workflow = build["externalParameters"]["workflow"]
    assert workflow["repository"] == f"https://github.com/{REPOSITORY}"  # the token's, not env's
    # A policy naming another repository fails for the same files.
    policy.write_text(json.dumps({"attestations": [{
        "predicate_type": "https://slsa.dev/provenance/v1",
        "source": {"repository": "evil/repo"}}]}))  # fmt: skip
    verify = {"url": store.url, "bucket": bucket, "keys": "one/app.tar.gz", "policy": str(policy)}
    other = runner.run("actions/verify", verify)
    assert not other.success and other.outputs["verified"] == "false"


def test_tekton_upload_then_verify_with_the_service_account_token(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    bucket: str,
    step_image: Container,
) -> None:
    source = Path(tempfile.mkdtemp(prefix="tekton-src-"))
    volume = Path(tempfile.mkdtemp(prefix="tekton-sa-"))
    for d in (source, volume):
        d.chmod(0o755)
    (source / "dist").mkdir()
    (source / "dist" / "app.bin").write_bytes(os.urandom(1000))
    sa_token = issuer.mint(
        AUDIENCE, {"sub": "system:serviceaccount:ci:builder", "kubernetes.io/namespace": "ci"}
    )
    (volume / "token").write_text(sa_token)
    (volume / "token").chmod(0o644)
    runner = TaskRunner(volumes={"sa-token": volume}, container=step_image)
    task = REPO / "tekton/task/zot-artifact-upload/zot-artifact-upload.yaml"
    run = runner.run(
        task,
        {"url": store.url, "bucket": bucket, "path": "dist", "sign": "true"},
        {"source": source},
    )
    assert run.success, run.log
    assert run.results["UPLOAD_ARTIFACT_OUTPUTS"]["digest"] == run.results["ARTIFACT_DIGEST"]
    assert run.results["ARTIFACT_URI"].endswith(f"/v1/buckets/{bucket}/objects/app.bin")
    assert run.results_size < 3000
    keys = admin.get("/v1/keys").json()["keys"]
    server_key = next(k["id"] for k in keys if k["name"] == "server signing key")
    verify = REPO / "tekton/task/zot-artifact-verify/zot-artifact-verify.yaml"
    policy = json.dumps({"signatures": [{"key": server_key}]})
    ok = runner.run(
        verify, {"url": store.url, "digest": run.results["ARTIFACT_DIGEST"], "policy": policy}, {}
    )
    assert ok.success and ok.results["VERIFIED"] == "true", ok.log
    bad = runner.run(
        verify, {"url": store.url, "digest": "sha256:" + "ab" * 32, "policy": policy}, {}
    )
    assert not bad.success and bad.results["VERIFIED"] == "false"
    assert "FAIL" in bad.log


# ---- defects found in review: each test asserts what a user of the action/task would see ----


def put(admin: httpx.Client, bucket: str, key: str, data: bytes) -> str:
    r = admin.put(f"/v1/buckets/{bucket}/objects/{key}", content=data)
    assert r.status_code == 201, r.text
    return str(r.json()["digest"])


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_verify_fails_when_it_has_nothing_to_verify(
    store: ServerProcess, issuer: TestIssuer, workspace: Path, bucket: str, action_python: str
) -> None:
    """A verify-path that matches no file (a typo, a download that did not happen) is a
    failed verification naming the pattern, never verified=true; the same for the root
    action when a policy is set and nothing was uploaded."""
    policy = workspace / "policy.json"
    policy.write_text(json.dumps({"sbom": True}))
    (workspace / "downloaded").mkdir()
    (workspace / "downloaded" / "other.txt").write_text("not what the pattern names\n")
    runner = job(workspace, issuer)
    result = runner.run(
        "actions/verify",
        {"url": store.url, "bucket": bucket, "policy": str(policy),
         "verify-path": "downloaded/other.txt\ndownloaded/does-not-exist.tar.gz"},
    )  # fmt: skip
    assert not result.success
    assert result.outputs["verified"] == "false"
    [error] = result.errors()
    assert "downloaded/does-not-exist.tar.gz matches no file" in error, error
    assert "downloaded/other.txt" not in error

    root = runner.run(
        ".", {"url": store.url, "bucket": bucket, "path": "dist/", "policy": str(policy)}
    )
    assert not root.success
    assert root.outputs["verified"] == "false"
    assert any("nothing was verified" in e for e in root.errors()), root.errors()


def test_download_by_key_prefix_takes_a_folder_and_never_overwrites_a_file(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
    step_image: Container,
) -> None:
    first = put(admin, bucket, "release/2/a.txt", b"release 2 a\n")
    put(admin, bucket, "release/2/sub/b.txt", b"release 2 b\n")
    put(admin, bucket, "release/2b/a.txt", b"release 2b: not release 2\n")
    put(admin, bucket, "release/20.txt", b"release 20: not release 2\n")
    put(admin, bucket, "a.txt", b"top-level a\n")
    runner = job(workspace, issuer)
    result = runner.run(
        "actions/download-artifact",
        {"url": store.url, "bucket": bucket, "key-prefix": "release/2", "download-path": "out"},
    )
    assert result.success, result.log
    assert result.outputs["keys"].splitlines() == ["release/2/a.txt", "release/2/sub/b.txt"]
    assert files_under(workspace / "out") == {
        "a.txt": b"release 2 a\n",
        "sub/b.txt": b"release 2 b\n",
    }

    # Two keys that land on one local file: refused before anything is written.
    clash = runner.run(
        "actions/download-artifact",
        {"url": store.url, "bucket": bucket, "key-prefix": "release/2",
         "keys": "release/2/a.txt\na.txt", "download-path": "clash"},
    )  # fmt: skip
    assert not clash.success
    [error] = clash.errors()
    assert f"{bucket}/release/2/a.txt and {bucket}/a.txt would both be written to" in error
    assert not (workspace / "clash" / "a.txt").exists()

    # The Tekton task: the same folder, and its digest names the file it wrote.
    out = Path(tempfile.mkdtemp(prefix="tekton-out-"))
    out.chmod(0o777)
    token = admin.post("/v1/tokens", json={"name": "dl", "roles": ["reader"]}).json()["token"]
    creds = Path(tempfile.mkdtemp(prefix="tekton-creds-"))
    creds.chmod(0o755)
    (creds / "token").write_text(token)
    (creds / "token").chmod(0o644)
    task = REPO / "tekton/task/zot-artifact-download/zot-artifact-download.yaml"
    run = TaskRunner(volumes={"sa-token": creds}, container=step_image).run(
        task,
        {"url": store.url, "bucket": bucket, "key-prefix": "release/2"},
        {"output": out, "credentials": creds},
    )
    assert run.success, run.log
    assert run.results["DOWNLOADED"] == "2"
    assert run.results["ARTIFACT_DIGEST"] == first
    assert files_under(out) == {"a.txt": b"release 2 a\n", "sub/b.txt": b"release 2 b\n"}


def test_excludes_and_symlinks_however_the_paths_are_written(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
) -> None:
    dist = workspace / "dist"
    dist.mkdir()
    (dist / "app.bin").write_bytes(b"app\n")
    (dist / "app.bin.map").write_bytes(b"map\n")
    (dist / "secret.key").write_bytes(b"PRIVATE KEY\n")
    (workspace / "LICENSE").write_text("MIT\n")
    (dist / "LICENSE").symlink_to("../LICENSE")
    runner = job(workspace, issuer)
    variants = [
        "./dist/\n!./dist/secret.key\n!dist/*.map",
        "dist/\n!./dist/secret.key\n!./dist/*.map",
        f"{workspace}/dist/\n!dist/secret.key\n!dist//*.map",
        f"dist\n!{workspace}/dist/secret.key\n!{workspace}/dist/*.map",
    ]
    for index, path in enumerate(variants):
        prefix = f"app/{index}"
        result = runner.run(
            "actions/upload-artifact",
            {"url": store.url, "bucket": bucket, "key-prefix": prefix, "path": path},
        )
        assert result.success, (path, result.log)
        # The symlink is stored under its own name, inside the prefix (not as ../LICENSE).
        assert result.outputs["keys"].splitlines() == [f"{prefix}/LICENSE", f"{prefix}/app.bin"]
    listed = admin.get(f"/v1/buckets/{bucket}/objects", params={"prefix": ""}).json()
    keys = [o["key"] for o in listed.get("objects", [])]
    assert keys and not any(k.endswith("secret.key") or ".." in k.split("/") for k in keys), keys


def test_uploads_name_their_workflow_run_so_its_webhook_links_them(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
) -> None:
    """docs/user-guide.md: uploads labelled github.repository and github.run_id (the action
    sets both) are linked to the run's build when its signed workflow_run webhook arrives."""
    run_id = str(uuid.uuid4().int % 10**10)
    (workspace / "dist").mkdir()
    (workspace / "dist" / "app.tar.gz").write_bytes(os.urandom(256))
    runner = ActionRunner(workspace, github={**GITHUB, "GITHUB_RUN_ID": run_id}, issuer=issuer)
    result = runner.run("actions/upload-artifact", {"url": store.url, "bucket": bucket,
                                                    "path": "dist/"})  # fmt: skip
    assert result.success, result.log
    digest = result.outputs["digest"]
    meta = admin.get(f"/v1/buckets/{bucket}/objects/app.tar.gz", params={"metadata": "true"})
    assert meta.json()["labels"] == {"github.repository": REPOSITORY, "github.run_id": run_id}

    r = admin.post("/v1/event-sources", json={"name": "gh-ci", "type": "github"})
    assert r.status_code == 201, r.text
    source = r.json()
    parts = urllib.parse.urlsplit(source["url"])
    payload = {
        "action": "completed",
        "workflow_run": {
            "id": int(run_id),
            "name": "release",
            "head_sha": GITHUB["GITHUB_SHA"],
            "run_attempt": 1,
            "status": "completed",
            "conclusion": "success",
            "html_url": f"https://github.com/{REPOSITORY}/actions/runs/{run_id}",
            "repository": {"full_name": REPOSITORY},
        },
        "repository": {"full_name": REPOSITORY},
    }
    raw = json.dumps(payload).encode()
    mac = hmac.new(source["secret"].encode(), raw, hashlib.sha256).hexdigest()
    with store.client() as anonymous:  # GitHub signs; it holds no token of the store
        r = anonymous.post(
            f"{parts.path}?{parts.query}",
            content=raw,
            headers={
                "X-GitHub-Event": "workflow_run",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": f"sha256={mac}",
                "Content-Type": "application/json",
            },
        )
    assert r.status_code == 200, r.text
    assert r.json()["build"]["digests"] == [digest]
    builds = admin.get("/v1/builds", params={"digest": digest}).json()["builds"]
    assert [b["url"] for b in builds] == [f"https://github.com/{REPOSITORY}/actions/runs/{run_id}"]


def test_tekton_upload_never_replaces_an_object_unless_asked(
    store: ServerProcess, admin: httpx.Client, bucket: str, step_image: Container
) -> None:
    """overwrite "false" holds even for a token that may write but not list (the listing's
    403 is not "no objects"): the store refuses the replacement and the task names it."""
    put(admin, bucket, "release/app.bin", b"the released bytes\n")
    r = admin.post(
        "/v1/tokens",
        json={"name": "uploader", "roles": ["reader"], "statements": [
            {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"{bucket}/*"},
            {"Effect": "Deny", "Action": ["s3:ListBucket"], "Resource": bucket},
        ]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    creds = Path(tempfile.mkdtemp(prefix="tekton-creds-"))
    creds.chmod(0o755)
    (creds / "token").write_text(r.json()["token"])
    (creds / "token").chmod(0o644)
    runner = TaskRunner(volumes={"sa-token": creds}, container=step_image)
    task = REPO / "tekton/task/zot-artifact-upload/zot-artifact-upload.yaml"

    def upload(name: str, data: bytes, **params: str) -> Any:
        source = Path(tempfile.mkdtemp(prefix="tekton-src-"))
        source.chmod(0o755)
        (source / "dist").mkdir(mode=0o755)
        (source / "dist" / name).write_bytes(data)
        (source / "dist" / name).chmod(0o644)
        return runner.run(
            task,
            {"url": store.url, "bucket": bucket, "path": "dist", "key-prefix": "release",
             **params},
            {"source": source, "credentials": creds},
        )  # fmt: skip

    replaced = upload("app.bin", b"NEW BYTES\n")
    assert not replaced.success
    assert f"{bucket}/release/app.bin already exists" in replaced.log, replaced.log
    got = admin.get(f"/v1/buckets/{bucket}/objects/release/app.bin")
    assert got.content == b"the released bytes\n"

    # A new object goes up with the same token; the results name it.
    fresh = upload("new.bin", b"new object\n")
    assert fresh.success, fresh.log
    assert fresh.results["ARTIFACT_URI"].endswith(f"/v1/buckets/{bucket}/objects/release/new.bin")
    assert admin.get(f"/v1/buckets/{bucket}/objects/release/new.bin").content == b"new object\n"

    # With overwrite "true" the replacement is what was asked for.
    allowed = upload("app.bin", b"NEW BYTES\n", overwrite="true")
    assert allowed.success, allowed.log
    assert admin.get(f"/v1/buckets/{bucket}/objects/release/app.bin").content == b"NEW BYTES\n"


# ---- issue 18, items 2 and 6: the names of actions/upload-artifact@v4 / download-artifact@v4,
# ---- summaries and outputs as documented


def test_a_v4_workflow_works_with_only_uses_changed(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
) -> None:
    """The `with:` of an upload-artifact@v4 / download-artifact@v4 workflow, unchanged (only
    url and bucket added): named artifacts land under <run id>/<name>, download by name writes
    them into path, without a name every artifact of the run goes to path/<name>/ (or side by
    side with merge-multiple), pattern picks artifacts by name."""
    run_id = GITHUB["GITHUB_RUN_ID"]
    (workspace / "dist").mkdir()
    (workspace / "dist" / "app.tar.gz").write_bytes(os.urandom(512))
    (workspace / "dist" / "sub").mkdir()
    (workspace / "dist" / "sub" / "notes.txt").write_text("notes\n")
    (workspace / "dist" / ".env").write_text("SECRET=1\n")
    (workspace / "reports").mkdir()
    (workspace / "reports" / "junit.xml").write_text("<testsuite/>\n")
    runner = job(workspace, issuer)
    where = {"url": store.url, "bucket": bucket}
    up = runner.run(
        "actions/upload-artifact",
        {**where, "name": "dist", "path": "dist/", "if-no-files-found": "error",
         "retention-days": "0", "overwrite": "false", "include-hidden-files": "false"},
    )  # fmt: skip
    assert up.success, up.log
    assert up.outputs["keys"].splitlines() == [f"{run_id}/dist/app.tar.gz",
                                               f"{run_id}/dist/sub/notes.txt"]  # fmt: skip
    assert up.outputs["artifact-id"] == f"{bucket}/{run_id}/dist"
    listing = admin.get(up.outputs["artifact-url"].removeprefix(store.url)).json()
    assert sorted(o["key"] for o in listing["objects"]) == up.outputs["keys"].splitlines()
    up2 = runner.run("actions/upload-artifact", {**where, "name": "reports", "path": "reports/"})
    assert up2.success, up2.log

    # By name: the artifact's files directly into path, its digest recomputable from them.
    by_name = runner.run("actions/download-artifact", {**where, "name": "dist", "path": "got"})
    assert by_name.success, by_name.log
    got = files_under(workspace / "got")
    assert sorted(got) == ["app.tar.gz", "sub/notes.txt"]
    assert by_name.outputs["download-path"] == str((workspace / "got").resolve())
    listing_text = "".join(f"{hashlib.sha256(got[p]).hexdigest()}  {p}\n" for p in sorted(got))
    assert up.outputs["artifact-digest"] == (
        "sha256:" + hashlib.sha256(listing_text.encode()).hexdigest()
    )

    # No name: every artifact of this run, each in its own folder; never the whole bucket.
    put(admin, bucket, "elsewhere/other.txt", b"not this run's\n")
    everything = runner.run("actions/download-artifact", {**where, "path": "all"})
    assert everything.success, everything.log
    assert sorted(files_under(workspace / "all")) == [
        "dist/app.tar.gz", "dist/sub/notes.txt", "reports/junit.xml"]  # fmt: skip
    merged = runner.run(
        "actions/download-artifact",
        {**where, "path": "merged", "pattern": "rep*", "merge-multiple": "true"},
    )
    assert merged.success, merged.log
    assert sorted(files_under(workspace / "merged")) == ["junit.xml"]

    # Another run's artifacts by run-id, checked against the repository that uploaded them.
    other = ActionRunner(workspace, github={**GITHUB, "GITHUB_RUN_ID": "777"}, issuer=issuer)
    from_run = other.run(
        "actions/download-artifact",
        {**where, "name": "reports", "path": "old", "run-id": run_id,
         "repository": REPOSITORY},
    )  # fmt: skip
    assert from_run.success, from_run.log
    assert sorted(files_under(workspace / "old")) == ["junit.xml"]
    wrong = other.run(
        "actions/download-artifact",
        {**where, "name": "reports", "path": "wrong", "run-id": run_id,
         "repository": "evil/repo"},
    )  # fmt: skip
    assert not wrong.success
    assert "was not uploaded by a workflow run of evil/repo" in wrong.errors()[0]
    assert not (workspace / "wrong" / "junit.xml").exists()
    # This run (777) has none: an error, not the bucket.
    none = other.run("actions/download-artifact", {**where, "path": "none"})
    assert not none.success
    assert f"no objects under {bucket}/777/" in none.errors()[0]
    assert files_under(workspace / "none") == {}


def test_download_path_keeps_its_old_name_and_needs_a_run_or_a_folder(
    store: ServerProcess, admin: httpx.Client, workspace: Path, bucket: str, action_python: str
) -> None:
    put(admin, bucket, "release/1/a.txt", b"a\n")
    runner = ActionRunner(workspace, github={k: v for k, v in GITHUB.items()
                                             if k != "GITHUB_RUN_ID"})  # fmt: skip
    token = admin.post("/v1/tokens", json={"name": "dl", "roles": ["reader"]}).json()["token"]
    where = {"url": store.url, "bucket": bucket, "token": token}
    old = runner.run("actions/download-artifact",
                     {**where, "key-prefix": "release/1", "download-path": "old"})  # fmt: skip
    assert old.success, old.log
    assert files_under(workspace / "old") == {"a.txt": b"a\n"}
    both = runner.run(
        "actions/download-artifact",
        {**where, "key-prefix": "release/1", "download-path": "x", "path": "y"},
    )
    assert not both.success and "path (y) and download-path (x) differ" in both.errors()[0]
    # No keys, no key-prefix, no name, and no run id: refused, never the whole bucket.
    bare = runner.run("actions/download-artifact", {**where, "path": "bare"})
    assert not bare.success
    assert "never downloads a whole bucket" in bare.errors()[0]
    assert files_under(workspace / "bare") == {}


def test_retention_days_expire_the_objects_at_the_lifecycle_run(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
) -> None:
    """retention-days (actions/upload-artifact@v4's name) gives the objects an expiry the store
    enforces: after a lifecycle run at a time the test picks (a day and a minute later), the
    retention-days: 1 objects are gone and the others stay."""
    (workspace / "a.txt").write_text("a\n")
    runner = job(workspace, issuer)
    where = {"url": store.url, "bucket": bucket, "path": "a.txt"}
    for action, name in (("actions/upload-artifact", "short"), (".", "root-short")):
        kept = runner.run(action, {**where, "name": name, "retention-days": "1"})
        assert kept.success, kept.log
    keep = runner.run("actions/upload-artifact", {**where, "name": "keep", "retention-days": "0"})
    assert keep.success, keep.log
    run_id = GITHUB["GITHUB_RUN_ID"]
    info = admin.get(f"/v1/buckets/{bucket}/objects/{run_id}/short/a.txt",
                     params={"metadata": "1"}).json()  # fmt: skip
    assert info["expires_at"], info
    tomorrow = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 + 60))
    ran = admin.post("/v1/admin/lifecycle/run", json={"now": tomorrow})
    assert ran.status_code == 200 and ran.json()["ran"], ran.text
    for name, status in (("short", 404), ("root-short", 404), ("keep", 200)):
        r = admin.get(f"/v1/buckets/{bucket}/objects/{run_id}/{name}/a.txt")
        assert r.status_code == status, (name, r.status_code)
    bad = runner.run("actions/upload-artifact", {**where, "name": "a", "retention-days": "soon"})
    assert not bad.success and "whole number from 0 to 90" in bad.errors()[0]
    too_long = runner.run("actions/upload-artifact", {**where, "name": "a", "retention-days": "91"})
    assert not too_long.success and too_long.outputs["keys"] == ""
    bad_name = runner.run("actions/upload-artifact", {**where, "name": "a/b"})
    assert not bad_name.success and "is not an artifact name" in bad_name.errors()[0]
    with_prefix = runner.run(
        "actions/upload-artifact", {**where, "name": "a", "key-prefix": "rel/1"}
    )
    assert with_prefix.success, with_prefix.log
    assert with_prefix.outputs["keys"] == "rel/1/a/a.txt"
    assert with_prefix.outputs["artifact-id"] == f"{bucket}/rel/1/a"


def test_the_summary_links_evidence_and_folds_long_rule_lists(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    workspace: Path,
    bucket: str,
    action_python: str,
) -> None:
    (workspace / "dist").mkdir()
    for i in range(6):
        (workspace / "dist" / f"f{i}.txt").write_text(f"file {i}\n")
    key = next(k["id"] for k in admin.get("/v1/keys").json()["keys"]
               if k["name"] == "server signing key")  # fmt: skip
    policy = workspace / "policy.json"
    policy.write_text(json.dumps({"signatures": [{"key": key}], "sbom": True}))
    sbom = workspace / "sbom.cdx.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}))
    runner = job(workspace, issuer)
    result = runner.run(
        ".",
        {"url": store.url, "bucket": bucket, "name": "many", "path": "dist/", "sign": "true",
         "sbom": str(sbom), "policy": str(policy)},
    )  # fmt: skip
    assert result.success, result.log
    ids = json.loads(result.outputs["evidence-ids"])
    assert len(ids) == 12
    assert "### Evidence" in result.summary
    for evidence_id in ids:
        link = f"{store.url}/v1/evidence/{evidence_id}"
        assert f"[`{evidence_id}`]({link})" in result.summary
    assert admin.get(f"/v1/evidence/{ids[0]}").status_code == 200
    # More than 10 rule results (several per file): folded, with the counts in the headline.
    verification = result.summary.split("### Verification passed")[1].lstrip()
    rules = verification.count("| ✅ |")
    assert rules > 10
    assert verification.startswith(f"<details><summary>{rules} rule result(s), 0 failed")
    assert result.outputs["artifact-id"] == f"{bucket}/{GITHUB['GITHUB_RUN_ID']}/many"

    # A short list is a plain table; verify-path fills keys, digests and paths.
    where = {"url": store.url, "bucket": bucket}
    got = runner.run("actions/download-artifact", {**where, "name": "many", "path": "got"})
    assert got.success, got.log
    checked = runner.run(
        "actions/verify",
        {"url": store.url, "bucket": bucket, "verify-path": "got/f1.txt", "policy": str(policy)},
    )
    assert checked.success, checked.log
    assert checked.outputs["verified"] == "true"
    assert checked.outputs["keys"] == "got/f1.txt"
    digest = "sha256:" + hashlib.sha256(b"file 1\n").hexdigest()
    assert json.loads(checked.outputs["digests"]) == {"got/f1.txt": digest}
    assert json.loads(checked.outputs["paths"]) == ["got/f1.txt"]
    assert "<details>" not in checked.summary
    assert "| `got/f1.txt` | ✅ |" in checked.summary


def test_docs_name_every_output_the_actions_set() -> None:
    """docs/ci.md names every output of every action.yml, and every output the driver sets
    is declared by some action."""
    import yaml

    doc = (REPO / "docs" / "ci.md").read_text()
    declared: set[str] = set()
    for path in [REPO / "action.yml", *sorted(REPO.glob("actions/*/action.yml"))]:
        outputs = yaml.safe_load(path.read_text()).get("outputs") or {}
        for name in outputs:
            declared.add(name)
            assert f"`{name}`" in doc, f"docs/ci.md does not name {path.parent.name}'s {name}"
    driver = (REPO / "actions/_shared/zas_action.py").read_text()
    import re

    set_by_driver = set(re.findall(r'set_output\("([a-z-]+)"', driver))
    set_by_driver |= {"artifact-id", "artifact-url", "artifact-digest"}
    assert set_by_driver <= declared, set_by_driver - declared
