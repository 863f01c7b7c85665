"""The Tekton Tasks as shipped, run by the local Task runner (tests/ci/runner.py) inside the
image ``make image`` builds, against a real server (fixtures: tests/ci/conftest.py): the
one-step publish Task with the service-account exchange and store-built provenance, the
results Tekton Chains reads, the download Task's inputs, and a store that cannot be reached."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.ci.conftest import AUDIENCE, ROOT_PASSWORD, ROOT_USER
from tests.ci.issuer import TestIssuer
from tests.ci.runner import REPO, TaskRunner
from tests.fixtures.image import Container
from tests.fixtures.server import ServerProcess

TASKS = REPO / "tekton" / "task"
PUBLISH = TASKS / "zot-artifact-publish" / "zot-artifact-publish.yaml"
DOWNLOAD = TASKS / "zot-artifact-download" / "zot-artifact-download.yaml"
VERIFY = TASKS / "zot-artifact-verify" / "zot-artifact-verify.yaml"
POD_UID = str(uuid.uuid4())


def sa_token(issuer: TestIssuer, namespace: str = "ci", account: str = "builder") -> str:
    """A Kubernetes-shaped projected service-account token (nested ``kubernetes.io`` claims)."""
    return issuer.mint(
        AUDIENCE,
        {
            "sub": f"system:serviceaccount:{namespace}:{account}",
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": account, "uid": str(uuid.uuid4())},
                "pod": {"name": f"{account}-pod", "uid": POD_UID},
            },
        },
    )


def directory(prefix: str, mode: int = 0o755) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(mode)
    return path


def sa_volume(token: str) -> Path:
    volume = directory("tekton-sa-")
    (volume / "token").write_text(token)
    (volume / "token").chmod(0o644)
    return volume


def source_with(files: dict[str, bytes]) -> Path:
    source = directory("tekton-src-")
    for name, data in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(data)
        path.chmod(0o644)
    return source


def server_key(admin: httpx.Client) -> str:
    keys = admin.get("/v1/keys").json()["keys"]
    return next(k["id"] for k in keys if k["name"] == "server signing key")


def statement(admin: httpx.Client, evidence_id: str) -> dict[str, Any]:
    envelope = admin.get(f"/v1/evidence/{evidence_id}").json()
    return json.loads(base64.b64decode(envelope["payload"]))


def test_publish_uploads_signs_attests_and_verifies_with_the_service_account_token(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    bucket: str,
    step_image: Container,
) -> None:
    """One step, no Secret: the pod's token is exchanged, the store signs, the SBOM goes on,
    the store writes one provenance statement for both files from the token's verified claims
    (namespace, service account, pod), and a policy naming that namespace passes."""
    files = {"dist/app.bin": os.urandom(1500), "dist/docs/notes.txt": b"release notes\n"}
    sbom = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1})
    source = source_with({**files, "sbom.cdx.json": sbom.encode()})
    policy = {
        "signatures": [{"key": server_key(admin)}],
        "sbom": True,
        "attestations": [{
            "predicate_type": "https://slsa.dev/provenance/v1",
            "signer": {"key": server_key(admin)},
            "source": {"namespace": "ci", "service_account": "builder"},
        }],
    }  # fmt: skip
    runner = TaskRunner(volumes={"sa-token": sa_volume(sa_token(issuer))}, container=step_image)
    run = runner.run(
        PUBLISH,
        {"url": store.url, "bucket": bucket, "path": "dist", "key-prefix": "rel/1",
         "sbom": "sbom.cdx.json", "policy": json.dumps(policy)},
        {"source": source},
    )  # fmt: skip
    assert run.success, run.log
    assert run.results["UPLOADED"] == "2" and run.results["VERIFIED"] == "true"
    assert "Traceback" not in run.log

    # Tekton Chains: one *ARTIFACT_OUTPUTS object result per file, in key order.
    outputs = {k: v for k, v in run.results.items() if k.endswith("ARTIFACT_OUTPUTS")}
    assert sorted(outputs) == ["FILE1_ARTIFACT_OUTPUTS", "FILE2_ARTIFACT_OUTPUTS"]
    for name, key, data in (
        ("FILE1_ARTIFACT_OUTPUTS", "rel/1/app.bin", files["dist/app.bin"]),
        ("FILE2_ARTIFACT_OUTPUTS", "rel/1/docs/notes.txt", files["dist/docs/notes.txt"]),
    ):
        assert outputs[name] == {
            "uri": f"{store.url}/v1/buckets/{bucket}/objects/{key}",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "isBuildArtifact": "true",
        }
        assert admin.get(f"/v1/buckets/{bucket}/objects/{key}").content == data
    assert run.results_size < 4096  # the termination message's limit

    # The provenance: one statement naming both files, built from the token's claims.
    found = statement(admin, run.results["PROVENANCE"])
    assert sorted(s["name"] for s in found["subject"]) == ["rel/1/app.bin", "rel/1/docs/notes.txt"]
    build = found["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"namespace": "ci", "serviceAccount": "builder"}
    assert build["internalParameters"]["issuer"] == issuer.issuer
    assert build["internalParameters"]["kubernetes"]["pod/uid"] == POD_UID
    assert found["predicate"]["runDetails"]["metadata"]["invocationId"] == POD_UID
    assert found["predicate"]["runDetails"]["builder"]["id"] == f"{issuer.issuer}#ci/builder"

    # A policy naming another namespace does not accept this evidence for the same bytes.
    other = dict(policy, attestations=[{
        "predicate_type": "https://slsa.dev/provenance/v1",
        "source": {"namespace": "other"}}])  # fmt: skip
    bad = runner.run(
        VERIFY,
        {"url": store.url, "bucket": bucket, "key": "rel/1/app.bin", "policy": json.dumps(other)},
        {},
    )
    assert not bad.success and bad.results["VERIFIED"] == "false", bad.log


def test_publish_fails_before_uploading_when_chains_could_not_see_every_file(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    bucket: str,
    step_image: Container,
) -> None:
    """The Task declares 8 FILE<n>_ARTIFACT_OUTPUTS results: a ninth file would be published
    without Chains knowing, so nothing is uploaded and the error says why."""
    source = source_with({f"dist/f{i}.txt": b"x%d\n" % i for i in range(9)})
    runner = TaskRunner(volumes={"sa-token": sa_volume(sa_token(issuer))}, container=step_image)
    run = runner.run(
        PUBLISH, {"url": store.url, "bucket": bucket, "path": "dist"}, {"source": source}
    )
    assert not run.success
    assert "error: 9 files in dist: Tekton Chains" in run.log, run.log
    listed = admin.get(f"/v1/buckets/{bucket}/objects").json()
    assert not listed.get("objects"), listed


def test_an_unreachable_store_is_one_readable_error_in_every_task(
    issuer: TestIssuer, step_image: Container
) -> None:
    """The token exchange cannot reach the store: `error: cannot reach the store at …` and a
    non-zero exit, never a Python traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends
    runner = TaskRunner(volumes={"sa-token": sa_volume(sa_token(issuer))}, container=step_image)
    source = source_with({"dist/app.bin": b"bytes\n"})
    out = directory("tekton-out-", 0o777)
    for task, params, workspaces in (
        (PUBLISH, {"bucket": "b", "path": "dist"}, {"source": source}),
        (TASKS / "zot-artifact-upload/zot-artifact-upload.yaml", {"bucket": "b", "path": "dist"},
         {"source": source}),
        (DOWNLOAD, {"bucket": "b", "key": "k"}, {"output": out}),
        (VERIFY, {"digest": "sha256:" + "ab" * 32, "policy": "{}"}, {}),
    ):  # fmt: skip
        run = runner.run(task, {"url": url, **params}, workspaces)
        assert not run.success, (task.name, run.log)
        assert f"error: cannot reach the store at {url}/v1/auth/exchange" in run.log, run.log
        assert "Traceback" not in run.log, run.log


def test_each_step_exchanges_its_token_once() -> None:
    """The service-account token is exchanged once per step (a store token lives 10 minutes
    and every exchange is audited): the scripts call token() once."""
    for path in sorted(TASKS.glob("*/*.yaml")):
        for step in yaml.safe_load(path.read_text())["spec"]["steps"]:
            script = step["script"]
            calls = script.count("token()") - script.count("def token()")
            assert calls == 1, (path.name, step["name"])


def test_download_reports_every_file_as_an_input_for_chains(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    bucket: str,
    step_image: Container,
) -> None:
    blobs = {"rel/2/a.txt": b"release 2 a\n", "rel/2/sub/b.txt": b"release 2 b\n"}
    for key, data in blobs.items():
        answer = admin.put(f"/v1/buckets/{bucket}/objects/{key}", content=data)
        assert answer.status_code in (200, 201), answer.text
    out = directory("tekton-out-", 0o777)
    runner = TaskRunner(volumes={"sa-token": sa_volume(sa_token(issuer))}, container=step_image)
    run = runner.run(
        DOWNLOAD, {"url": store.url, "bucket": bucket, "key-prefix": "rel/2"}, {"output": out}
    )
    assert run.success, run.log
    inputs = {k: v for k, v in run.results.items() if k.endswith("ARTIFACT_INPUTS")}
    assert inputs == {
        f"FILE{i}_ARTIFACT_INPUTS": {
            "uri": f"{store.url}/v1/buckets/{bucket}/objects/{key}",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        }
        for i, (key, data) in enumerate(sorted(blobs.items()), start=1)
    }
    assert run.results["ARTIFACT_DIGEST"] == inputs["FILE1_ARTIFACT_INPUTS"]["digest"]


def test_upload_reports_every_file_to_chains(
    store: ServerProcess,
    issuer: TestIssuer,
    admin: httpx.Client,
    bucket: str,
    step_image: Container,
) -> None:
    """The upload Task: UPLOAD_ARTIFACT_OUTPUTS names the first file, FILE<n>_ARTIFACT_OUTPUTS
    the others, each with isBuildArtifact so Chains' v2alpha4 formatter makes it a subject."""
    files = {"dist/a.bin": b"a" * 100, "dist/b.bin": b"b" * 100, "dist/c/d.bin": b"d" * 100}
    source = source_with(files)
    runner = TaskRunner(volumes={"sa-token": sa_volume(sa_token(issuer))}, container=step_image)
    task = TASKS / "zot-artifact-upload/zot-artifact-upload.yaml"
    run = runner.run(task, {"url": store.url, "bucket": bucket, "path": "dist"}, {"source": source})
    assert run.success, run.log
    names = ["UPLOAD_ARTIFACT_OUTPUTS", "FILE2_ARTIFACT_OUTPUTS", "FILE3_ARTIFACT_OUTPUTS"]
    outputs = {k: v for k, v in run.results.items() if k.endswith("ARTIFACT_OUTPUTS")}
    assert sorted(outputs) == sorted(names)
    for name, (path, data) in zip(names, sorted(files.items()), strict=True):
        key = path.removeprefix("dist/")
        assert outputs[name] == {
            "uri": f"{store.url}/v1/buckets/{bucket}/objects/{key}",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "isBuildArtifact": "true",
        }
    assert run.results["ARTIFACT_DIGEST"] == outputs["UPLOAD_ARTIFACT_OUTPUTS"]["digest"]
    assert run.results_size < 4096


# ---- the catalog tests (tekton/task/*/tests/run.yaml), as the catalog's harness runs them ----

CATALOG_STORE = REPO / "tekton" / "tests" / "catalog-store.sh"
VAR = re.compile(r"\$\((params\.[^)]+|context\.pipelineRun\.name)\)")


def seed_like_the_hook(url: str) -> str:
    """Run the store-side part of tekton/tests/catalog-store.sh (the Python it runs in the
    store's pod) against ``url``: the bucket, hello.txt, and a writer token (returned)."""
    script = CATALOG_STORE.read_text()
    code = script.split("python3 -c '", 1)[1].split("\n')\"", 1)[0]
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "ZAS_URL": url, "ZAS_ROOT_USER": ROOT_USER,
             "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def run_catalog_test(run_yaml: Path, url: str, creds: Path, runner: TaskRunner) -> list[Any]:
    """tests/run.yaml as written (a TaskRun, or a PipelineRun whose tasks run in order), with
    the store's Service URL replaced by ``url`` and the Secret by ``creds``."""
    doc = yaml.safe_load(run_yaml.read_text())
    spec = doc["spec"]
    context = {f"params.{p['name']}": p["value"] for p in spec.get("params", [])}
    context["context.pipelineRun.name"] = f"catalog-{uuid.uuid4().hex[:8]}"
    context["params.url"] = url
    volumes: dict[str, Path] = {}
    for binding in spec.get("workspaces", []):
        volumes[binding["name"]] = creds if "secret" in binding else directory("tekton-ws-", 0o777)

    def values(params: list[dict[str, Any]]) -> dict[str, str]:
        out = {p["name"]: VAR.sub(lambda m: context[m.group(1)], p["value"]) for p in params}
        return {**out, "url": url} if "url" in out else out  # the Service, here the server

    if doc["kind"] == "TaskRun":
        name = spec["taskRef"]["name"]
        return [runner.run(TASKS / name / f"{name}.yaml", values(spec["params"]), volumes)]
    runs = []
    for task in spec["pipelineSpec"]["tasks"]:
        if "taskSpec" in task:
            path = directory("tekton-inline-") / "task.yaml"
            path.write_text(yaml.safe_dump({"apiVersion": "tekton.dev/v1", "kind": "Task",
                                            "metadata": {"name": task["name"]},
                                            "spec": task["taskSpec"]}))  # fmt: skip
        else:
            path = TASKS / task["taskRef"]["name"] / f"{task['taskRef']['name']}.yaml"
        workspaces = {w["name"]: volumes[w["workspace"]] for w in task.get("workspaces", [])}
        runs.append(runner.run(path, values(task.get("params", [])), workspaces))
        if not runs[-1].success:
            break
    return runs


def test_the_catalog_tests_pass_as_written(
    store: ServerProcess, issuer: TestIssuer, step_image: Container
) -> None:
    """Each Task's tests/run.yaml, after its pre-apply hook's setup (twice: it is idempotent),
    creates its own inputs and passes with the Secret the hook makes."""
    token = seed_like_the_hook(store.url)
    assert seed_like_the_hook(store.url)
    creds = directory("tekton-creds-")
    (creds / "token").write_text(token)
    (creds / "token").chmod(0o644)
    runner = TaskRunner(volumes={"sa-token": sa_volume(sa_token(issuer))}, container=step_image)
    for run_yaml in sorted(TASKS.glob("*/tests/run.yaml")):
        hook = run_yaml.with_name("pre-apply-task-hook.sh")
        assert "tests/catalog-store.sh" in hook.read_text(), hook
        runs = run_catalog_test(run_yaml, store.url, creds, runner)
        assert runs and all(r.success for r in runs), (run_yaml, [r.log for r in runs])


def test_the_docs_pipelinerun_publishes_without_a_secret(
    store: ServerProcess, issuer: TestIssuer, admin: httpx.Client, step_image: Container
) -> None:
    """docs/ci.md's PipelineRun (tekton/pipeline/samples/pipelinerun.yaml, shown verbatim) runs
    the sample Pipeline as written — only the Service URL is the test server's — with no
    credentials workspace: each step exchanges the pod's service-account token, the store
    builds the provenance from it, and the run's own policy (naming the namespace and the
    service account) passes."""
    sample = REPO / "tekton" / "pipeline" / "samples" / "pipelinerun.yaml"
    assert f"```yaml\n{sample.read_text()}```" in (REPO / "docs" / "ci.md").read_text()
    run_doc = yaml.safe_load(sample.read_text())
    spec = run_doc["spec"]
    name = spec["pipelineRef"]["name"]
    pipeline = yaml.safe_load((REPO / "tekton" / "pipeline" / f"{name}.yaml").read_text())
    assert "credentials" not in {w["name"] for w in spec["workspaces"]}
    params = {p["name"]: p.get("default", "") for p in pipeline["spec"]["params"]}
    params |= {p["name"]: p["value"] for p in spec["params"]}
    params["url"] = store.url  # the Service, here the server
    assert admin.put(f"/v1/buckets/{params['bucket']}").status_code in (201, 409)
    files = {"dist/app.bin": os.urandom(1500), "dist/README.txt": b"read me\n"}
    source = source_with({**files, "sbom.cdx.json": json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []}
    ).encode()})  # fmt: skip
    token = sa_token(
        issuer, run_doc["metadata"]["namespace"], spec["taskRunTemplate"]["serviceAccountName"]
    )
    runner = TaskRunner(volumes={"sa-token": sa_volume(token)}, container=step_image)
    results = {}
    for task in pipeline["spec"]["tasks"]:
        values = {
            p["name"]: VAR.sub(lambda m: params[m.group(1).removeprefix("params.")], p["value"])
            for p in task["params"]
        }
        workspaces = {w["name"]: source for w in task["workspaces"] if w["workspace"] == "source"}
        path = TASKS / task["taskRef"]["name"] / f"{task['taskRef']['name']}.yaml"
        result = runner.run(path, values, workspaces)
        assert result.success, result.log
        results[task["name"]] = result.results
    published = results["publish"]
    assert published["UPLOADED"] == "2" and published["VERIFIED"] == "true"
    found = statement(admin, published["PROVENANCE"])
    assert sorted(s["name"] for s in found["subject"]) == [
        f"{params['key-prefix']}/README.txt",
        f"{params['key-prefix']}/app.bin",
    ]
    build = found["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"namespace": "ci", "serviceAccount": "builder"}
