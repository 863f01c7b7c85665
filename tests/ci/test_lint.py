"""Lint of the CI suite, offline: every action.yml against GitHub's action schema and every
workflow against the workflow schema (check-jsonschema's vendored schemas), actionlint and
zizmor --offline clean, no ``${{`` inside a ``run:``; every Tekton YAML against our JSON schema
of the Tekton v1 subset we use and tekton-lint, params reaching scripts only through env, and
steps that run as any non-root UID."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ACTIONS = sorted([REPO / "action.yml", *REPO.glob("actions/*/action.yml")])
WORKFLOWS = sorted(REPO.glob(".github/workflows/*.yml"))
TEKTON = sorted(REPO.glob("tekton/**/*.yaml"))
TASKS = sorted(REPO.glob("tekton/task/*/*.yaml"))
SCHEMA = Path(__file__).with_name("tekton-v1-subset.schema.json")
TEKTON_LINT = Path(__file__).with_name("tekton-lint") / "node_modules" / ".bin" / "tekton-lint"


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=REPO, capture_output=True, text=True)


def test_the_suite_has_every_action_and_task() -> None:
    names = {p.parent.name for p in ACTIONS[1:]}
    assert names == {
        "upload-artifact",
        "download-artifact",
        "sign",
        "attach-sbom",
        "attest",
        "verify",
    }
    assert {p.stem for p in TASKS} == {
        "zot-artifact-upload",
        "zot-artifact-publish",
        "zot-artifact-verify",
        "zot-artifact-download",
    }
    assert WORKFLOWS


def test_the_root_action_is_the_one_step_upload_action() -> None:
    """One action, two addresses: the root action.yml is generated from
    actions/upload-artifact/action.yml (actions/generate.py) and runs the same driver."""
    out = run(sys.executable, "actions/generate.py", "--check")
    assert out.returncode == 0, out.stdout + out.stderr
    root = yaml.safe_load((REPO / "action.yml").read_text())
    upload = yaml.safe_load((REPO / "actions" / "upload-artifact" / "action.yml").read_text())
    assert root["inputs"] == upload["inputs"] and root["outputs"] == upload["outputs"]
    for name in ("sign", "signing-method", "sbom", "sbom-generate", "provenance", "policy"):
        assert name in upload["inputs"], name
    assert upload["runs"]["steps"][-1]["run"].endswith('zas_action.py" all')


def test_actions_and_workflows_match_githubs_schemas() -> None:
    out = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", *ACTIONS)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_and_zizmor_are_clean() -> None:
    out = run(BIN / "actionlint", "-no-color", *WORKFLOWS)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run(
        BIN / "zizmor", "--offline", "--no-progress", ".github/workflows", "action.yml", "actions"
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_docs_workflows_are_lint_clean(tmp_path: Path) -> None:
    """docs/ci.md's complete workflows (YAML blocks with ``jobs:``), as a user copies them:
    GitHub's schema, actionlint and zizmor (pinned uses, no credential persistence)."""
    doc = (REPO / "docs" / "ci.md").read_text()
    blocks = [b for b in re.findall(r"^```yaml\n(.*?)^```", doc, re.S | re.M) if "\njobs:" in b]
    assert len(blocks) >= 2
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for i, block in enumerate(blocks):
        (workflows / f"doc{i}.yml").write_text(block)
    files = sorted(workflows.iterdir())
    out = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run(BIN / "actionlint", "-no-color", *files)
    assert out.returncode == 0, out.stdout + out.stderr
    config = REPO / ".github" / "zizmor.yml"
    out = run(BIN / "zizmor", "--offline", "--no-progress", "--config", config, workflows)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_linters_can_fail(tmp_path: Path) -> None:
    """A template injection and a bad input key: each tool says so."""
    bad = tmp_path / "action.yml"
    bad.write_text(
        "name: x\ndescription: x\ninputs:\n  a:\n    descripton: typo\n"
        "runs:\n  using: composite\n  steps:\n    - shell: bash\n"
        "      run: echo ${{ github.event.issue.title }}\n"
    )
    out = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", bad)
    assert out.returncode != 0 and "descripton" in out.stdout
    out = run(BIN / "zizmor", "--offline", "--no-progress", bad)
    assert out.returncode != 0 and "template-injection" in out.stdout


def test_no_expression_inside_run() -> None:
    for path in [*ACTIONS, *WORKFLOWS]:
        doc = yaml.safe_load(path.read_text())
        steps = doc.get("runs", {}).get("steps", []) or [
            s for job in doc.get("jobs", {}).values() for s in job.get("steps", [])
        ]
        for step in steps:
            assert "${{" not in step.get("run", ""), (path, step.get("name"))


def test_action_inputs_are_kebab_case_documented_and_outputs_have_values() -> None:
    for path in ACTIONS:
        doc = yaml.safe_load(path.read_text())
        for name, spec in doc["inputs"].items():
            assert name == name.lower() and "_" not in name, (path, name)
            assert spec.get("description"), (path, name)
            assert spec.get("required") or "default" in spec, (path, name)
        for name, spec in doc["outputs"].items():
            assert spec["value"].startswith("${{ steps."), (path, name)
        for step in doc["runs"]["steps"]:
            assert "uses" not in step, f"{path}: a composite uses ./… resolves in the caller"


def test_tekton_yaml_matches_the_schema_and_tekton_lint() -> None:
    out = run(BIN / "check-jsonschema", "--schemafile", SCHEMA, *TEKTON)
    assert out.returncode == 0, out.stdout + out.stderr
    if not TEKTON_LINT.exists():
        pytest.fail("tekton-lint is not installed: run scripts/setup.sh")
    out = run(TEKTON_LINT, "--format", "json", "--max-warnings", "0", "tekton/**/*.yaml")
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stdout + out.stderr


def test_tekton_schema_and_tekton_lint_can_fail(tmp_path: Path) -> None:
    task = yaml.safe_load(TASKS[0].read_text())
    task["spec"]["steps"][0]["scrip"] = "typo"
    task["spec"]["params"].append({"name": "unused", "type": "string"})
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(task))
    out = run(BIN / "check-jsonschema", "--schemafile", SCHEMA, bad)
    assert out.returncode != 0 and "scrip" in out.stdout
    shutil.copy(bad, REPO / "tekton" / ".lint-probe.yaml")
    try:
        out = run(TEKTON_LINT, "--format", "json", "--max-warnings", "0", "tekton/.lint-probe.yaml")
    finally:
        (REPO / "tekton" / ".lint-probe.yaml").unlink()
    assert out.returncode != 0 and "unused" in out.stdout


def test_tasks_follow_the_catalog_and_run_restricted() -> None:
    for path in TASKS:
        task = yaml.safe_load(path.read_text())
        folder = path.parent
        assert path.stem == folder.name == task["metadata"]["name"]
        assert (folder / "README.md").is_file() and (folder / "tests" / "run.yaml").is_file()
        assert list((folder / "samples").glob("*.yaml")), folder
        assert task["apiVersion"] == "tekton.dev/v1"
        assert "app.kubernetes.io/version" in task["metadata"]["labels"]
        for annotation in (
            "pipelines.minVersion",
            "categories",
            "tags",
            "displayName",
            "platforms",
        ):
            assert f"tekton.dev/{annotation}" in task["metadata"]["annotations"], annotation
        spec = task["spec"]
        security = spec["stepTemplate"]["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "runAsUser" not in security  # any UID (OpenShift assigns one)
        for step in spec["steps"]:
            assert "$(params." not in step["script"], (
                f"{path}: {step['name']} uses $(params) in script"
            )
            assert "securityContext" not in step or step["securityContext"].get("runAsNonRoot")
        creds = [w for w in spec["workspaces"] if w["name"] == "credentials"]
        assert creds and creds[0]["optional"] is True


def test_every_step_runs_the_image_the_release_publishes() -> None:
    """The Tasks' step image is this repository's image (tests/image builds it; the Task tests
    run their steps in it), by the name and version the release workflow pushes."""
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    release = (REPO / ".github/workflows/release.yml").read_text()
    assert 'image="ghcr.io/${OWNER,,}/zot-artifact-store"' in release
    for path in TASKS:
        spec = yaml.safe_load(path.read_text())["spec"]
        [param] = [p for p in spec["params"] if p["name"] == "cli-image"]
        assert param["default"] == f"ghcr.io/zot-artifact-store/zot-artifact-store:{version}", path
        for step in spec["steps"]:
            assert step["image"] == "$(params.cli-image)", (path, step["name"])


def test_docs_show_the_workflow_and_pipeline_the_tests_run() -> None:
    doc = (REPO / "docs" / "ci.md").read_text()
    blocks = doc.split("```yaml\n")[1:]
    shown = [block.split("```")[0] for block in blocks]
    assert (REPO / ".github/workflows/actions.yml").read_text() in shown
    assert (REPO / "tekton/pipeline/zot-artifact-release.yaml").read_text() in shown


def test_server_text_cannot_inject_workflow_commands(tmp_path: Path) -> None:
    """What the driver echoes from the server runs between ::stop-commands:: markers; the
    runner (as GitHub's) then processes no command in it, and annotations are escaped."""
    from tests.ci.runner import ActionRunner

    script = (
        "import sys; sys.path.insert(0, 'actions/_shared'); import zas_action as z;"
        "z.echo_untrusted('::add-mask::x\\n::error::forged\\n::set-env name=A::b');"
        "z.annotate('error', 'line one\\n::error::two')"
    )
    out = run(sys.executable, "-c", script)
    masks: set[str] = set()
    annotations: list = []
    log: list[str] = []
    ActionRunner.process_commands(out.stdout, masks, annotations, log)
    assert masks == set()
    assert [(a.level, a.message) for a in annotations] == [("error", "line one\n::error::two")]
    assert "::error::forged" in log and "::set-env name=A::b" in log
