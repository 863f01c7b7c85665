"""Local runners for the CI suite's tests: a composite GitHub Action's ``runs.steps`` and a
Tekton Task's ``steps``, executed exactly as written, against a real server.

GitHub (:class:`ActionRunner`): ``${{ … }}`` expressions are substituted where GitHub
substitutes them (``env:``, ``with:``, ``if:``, output ``value:``; a ``run:`` with ``${{`` is
refused, as the lint test refuses it), ``shell: bash`` steps run with
``bash --noprofile --norc -eo pipefail {0}``, ``GITHUB_OUTPUT`` / ``GITHUB_ENV`` /
``GITHUB_PATH`` / ``GITHUB_STEP_SUMMARY`` files, ``GITHUB_ACTION_PATH``, ``RUNNER_TEMP``, and
the workflow commands on a step's output (``::add-mask::``, ``::error::`` and friends,
``::stop-commands::``) are processed; ``ACTIONS_ID_TOKEN_REQUEST_URL`` / ``_TOKEN`` come from a
:class:`~tests.ci.issuer.TestIssuer` when the job has ``id-token: write``.

Tekton (:class:`TaskRunner`): params (defaults, then the run's) reach the steps' ``env:``
through ``$(params.x)``; workspaces are directories (``$(workspaces.w.path)``,
``$(workspaces.w.bound)``); ``$(results.R.path)`` are files read back as the TaskRun's
results; each step's ``script`` runs with its env (stepTemplate first). With a
:class:`~tests.fixtures.image.Container` (the step image, built by ``make image``) the steps run
inside it as Tekton on OpenShift runs them: an arbitrary UID in group 0, the image's PATH,
workspaces at ``/workspace/<name>``, volumes at their ``mountPath``, results in
``/tekton/results``, scripts in ``/tekton/scripts``. Without one they run on this machine, as a
non-root UID when the tests run as root."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.image import ARBITRARY_UID, Container

REPO = Path(__file__).resolve().parents[2]
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
COMMAND = re.compile(r"^::([a-zA-Z-]+)(?: ([^:]*))?::(.*)$")


def unescape(text: str) -> str:
    return (
        text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


@dataclass
class Annotation:
    level: str
    title: str
    message: str


@dataclass
class ActionResult:
    success: bool
    outputs: dict[str, str]
    summary: str
    log: str  # what the job log shows, masked
    annotations: list[Annotation]
    masks: set[str]
    steps: dict[str, dict[str, Any]]

    def errors(self) -> list[str]:
        return [a.message for a in self.annotations if a.level == "error"]


@dataclass
class ActionRunner:
    """Runs composite actions of this repository in one simulated job."""

    workspace: Path
    github: dict[str, str] = field(default_factory=dict)  # GITHUB_* of the job
    issuer: Any = None  # a TestIssuer when the job has id-token: write
    env: dict[str, str] = field(default_factory=dict)  # the job's env

    def __post_init__(self) -> None:
        self.runner_temp = Path(tempfile.mkdtemp(prefix="runner-temp-"))
        self.github_env = self.runner_temp / "github_env"
        self.github_path = self.runner_temp / "github_path"
        self.github_env.touch()
        self.github_path.touch()

    def base_env(self) -> dict[str, str]:
        # ZAS_ACTION_VENV_ROOT is a runner-level setting (where the actions' venv is cached).
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "SHELL", "ZAS_ACTION_VENV_ROOT")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(self.workspace),
                "RUNNER_TEMP": str(self.runner_temp),
                "RUNNER_OS": "Linux",
                "RUNNER_ENVIRONMENT": "github-hosted",
                "GITHUB_ENV": str(self.github_env),
                "GITHUB_PATH": str(self.github_path),
            }
        )
        env.update(self.github)
        if self.issuer is not None:
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = self.issuer.request_url
            env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = self.issuer.request_token
        env.update(self.env)
        for line in self.github_env.read_text().splitlines():
            if "=" in line and "<<" not in line:
                key, value = line.split("=", 1)
                env[key] = value
        extra = [p for p in self.github_path.read_text().splitlines() if p]
        if extra:
            env["PATH"] = os.pathsep.join([*reversed(extra), env.get("PATH", "")])
        return env

    # ---- expressions (the subset our actions use; anything else is an error) --------------
    def evaluate(self, expr: str, contexts: dict[str, Any]) -> Any:
        expr = expr.strip()
        if expr.startswith("'") and expr.endswith("'"):
            return expr[1:-1].replace("''", "'")
        if expr in ("true", "false"):
            return expr == "true"
        if expr in ("success()", "always()", "failure()"):
            return {"success()": not contexts["_failed"], "always()": True}.get(
                expr, contexts["_failed"]
            )
        if not re.fullmatch(r"[a-zA-Z_][\w-]*(\.[\w-]+)*", expr):
            raise ValueError(f"expression not supported by the local runner: {expr!r}")
        value: Any = contexts
        for part in expr.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def substitute(self, text: Any, contexts: dict[str, Any]) -> str:
        if not isinstance(text, str):
            return (
                "" if text is None else str(text).lower() if isinstance(text, bool) else str(text)
            )
        whole = EXPR.fullmatch(text.strip())
        if whole:
            value = self.evaluate(whole.group(1), contexts)
            return str(value).lower() if isinstance(value, bool) else str(value)

        def one(m: re.Match[str]) -> str:
            value = self.evaluate(m.group(1), contexts)
            return str(value).lower() if isinstance(value, bool) else str(value)

        return EXPR.sub(one, text)

    # ---- running -------------------------------------------------------------------------
    def run(self, action: str, inputs: dict[str, str] | None = None) -> ActionResult:
        """Run ``action`` (``"."`` for the root action.yml, ``"actions/sign"`` …)."""
        action_dir = (REPO / action).resolve()
        spec = yaml.safe_load((action_dir / "action.yml").read_text())
        assert spec["runs"]["using"] == "composite", action
        declared = spec.get("inputs") or {}
        given = dict(inputs or {})
        unknown = set(given) - set(declared)
        if unknown:
            raise ValueError(f"unexpected inputs for {action}: {sorted(unknown)}")
        values = {
            name: given.get(name, str(d.get("default", "")) if d.get("default") is not None else "")
            for name, d in declared.items()
        }
        github = {k.removeprefix("GITHUB_").lower(): v for k, v in self.github.items()}
        contexts: dict[str, Any] = {
            "inputs": values,
            "steps": {},
            "github": {**github, "action_path": str(action_dir)},
            "runner": {"temp": str(self.runner_temp), "os": "Linux"},
            "env": {},
            "_failed": False,
        }
        masks: set[str] = set()
        annotations: list[Annotation] = []
        log: list[str] = []
        summary_parts: list[str] = []
        for index, step in enumerate(spec["runs"]["steps"]):
            step_id = step.get("id") or f"__{index}"
            condition = step.get("if", "success()")
            if isinstance(condition, str) and not self.evaluate(
                EXPR.sub(lambda m: m.group(1), condition), contexts
            ):
                contexts["steps"][step_id] = {"outputs": {}, "outcome": "skipped"}
                continue
            script = step["run"]
            if "${{" in script:
                raise ValueError(f"{action}: step {step_id} interpolates an expression in run:")
            assert step.get("shell") == "bash", f"{action}: step {step_id} must use shell: bash"
            env = self.base_env()
            contexts["env"] = env
            env.update(
                {k: self.substitute(v, contexts) for k, v in (step.get("env") or {}).items()}
            )
            output_file = self.runner_temp / f"output-{uuid.uuid4().hex}"
            summary_file = self.runner_temp / f"summary-{uuid.uuid4().hex}"
            output_file.touch()
            summary_file.touch()
            env.update(
                {
                    "GITHUB_ACTION_PATH": str(action_dir),
                    "GITHUB_OUTPUT": str(output_file),
                    "GITHUB_STEP_SUMMARY": str(summary_file),
                    "GITHUB_ACTION": step_id,
                }
            )
            script_file = self.runner_temp / f"step-{uuid.uuid4().hex}.sh"
            script_file.write_text(script)
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
                cwd=self.workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            self.process_commands(proc.stdout + proc.stderr, masks, annotations, log)
            outputs = parse_env_file(output_file.read_text())
            summary_parts.append(summary_file.read_text())
            ok = proc.returncode == 0
            contexts["steps"][step_id] = {
                "outputs": outputs,
                "outcome": "success" if ok else "failure",
                "exit_code": proc.returncode,
            }
            if not ok:
                contexts["_failed"] = True
                log.append(f"Error: Process completed with exit code {proc.returncode}.")
        outputs = {
            name: self.substitute(o.get("value", ""), contexts)
            for name, o in (spec.get("outputs") or {}).items()
        }
        return ActionResult(
            success=not contexts["_failed"],
            outputs=outputs,
            summary="".join(summary_parts),
            log="\n".join(log),
            annotations=annotations,
            masks=masks,
            steps=contexts["steps"],
        )

    @staticmethod
    def process_commands(
        output: str, masks: set[str], annotations: list[Annotation], log: list[str]
    ) -> None:
        stopped: str | None = None
        for line in output.splitlines():
            shown = line
            for secret in sorted(masks, key=len, reverse=True):
                shown = shown.replace(secret, "***")
            if stopped is not None:
                if line == f"::{stopped}::":
                    stopped = None
                else:
                    log.append(shown)
                continue
            m = COMMAND.match(line)
            if not m:
                log.append(shown)
                continue
            name, props, data = m.group(1), m.group(2) or "", m.group(3)
            if name == "add-mask":
                if data.strip():
                    masks.add(data.strip())
            elif name == "stop-commands":
                stopped = data
            elif name in ("error", "warning", "notice"):
                title = ""
                for prop in props.split(","):
                    if prop.startswith("title="):
                        title = unescape(prop[len("title=") :])
                annotations.append(Annotation(name, title, unescape(data)))
                log.append(f"{name.capitalize()}: {unescape(data)}")
            elif name in ("group", "endgroup", "debug"):
                continue
            else:
                log.append(shown)


def parse_env_file(text: str) -> dict[str, str]:
    """``GITHUB_OUTPUT`` / ``GITHUB_ENV`` syntax: ``name=value`` and ``name<<DELIM`` blocks."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


# ---- Tekton ---------------------------------------------------------------------------------


@dataclass
class TaskRunResult:
    success: bool
    results: dict[str, Any]
    results_size: int  # bytes, what the termination message would carry
    log: str
    failed_step: str | None


VAR = re.compile(r"\$\(([^)]+)\)")
NON_ROOT_UID = 65532


class TaskRunner:
    """Runs a Tekton Task's steps locally, as written (images are not pulled: the steps run
    on this machine with ``path_prefix`` first on PATH, where the CLI is)."""

    def __init__(
        self,
        path_prefix: str = "",
        volumes: dict[str, Path] | None = None,
        container: Container | None = None,
    ) -> None:
        self.path_prefix = path_prefix
        self.volumes = volumes or {}  # volume name -> local directory
        self.container = container  # the step image; None: run on this machine
        self.non_root = os.geteuid() == 0 and shutil.which("setpriv") is not None

    def _mount(self, local: Path, inside: str) -> str:
        """Where a step sees ``local``: bound at ``inside`` in the step image, else itself."""
        if self.container is None:
            return str(local)
        self.container.bind(local, inside)
        return inside

    def run(
        self,
        task_file: Path,
        params: dict[str, Any],
        workspaces: dict[str, Path],
        name: str = "run",
    ) -> TaskRunResult:
        task = yaml.safe_load(task_file.read_text())
        spec = task["spec"]
        values: dict[str, Any] = {}
        for p in spec.get("params", []):
            if p["name"] in params:
                values[p["name"]] = params[p["name"]]
            elif "default" in p:
                values[p["name"]] = p["default"]
            else:
                raise ValueError(f"param {p['name']} is required")
        unknown = set(params) - {p["name"] for p in spec.get("params", [])}
        if unknown:
            raise ValueError(f"unknown params: {sorted(unknown)}")
        results_dir = Path(tempfile.mkdtemp(prefix="tekton-results-"))
        scratch = Path(tempfile.mkdtemp(prefix="tekton-home-"))
        scripts = Path(tempfile.mkdtemp(prefix="tekton-scripts-"))
        for d in (results_dir, scratch, scripts):
            d.chmod(0o777)
        try:
            return self._run(task, values, workspaces, name, results_dir, scratch, scripts)
        finally:
            if self.container is not None:
                self.container.unbind()
            for d in (results_dir, scratch, scripts):
                shutil.rmtree(d, ignore_errors=True)

    def _run(
        self,
        task: dict[str, Any],
        values: dict[str, Any],
        workspaces: dict[str, Path],
        name: str,
        results_dir: Path,
        scratch: Path,
        scripts: Path,
    ) -> TaskRunResult:
        spec = task["spec"]
        results_at = self._mount(results_dir, "/tekton/results")
        home = self._mount(scratch, "/tekton/home")
        scripts_at = self._mount(scripts, "/tekton/scripts")
        volumes: dict[str, str] = {}
        for step in spec["steps"]:
            for m in step.get("volumeMounts", []):
                if m["name"] not in volumes:
                    volumes[m["name"]] = self._mount(self.volumes[m["name"]], m["mountPath"])
        variables: dict[str, str] = {
            "context.taskRun.name": f"{task['metadata']['name']}-{name}",
            "context.taskRun.namespace": "ci",
            "context.task.name": task["metadata"]["name"],
        }
        for key, value in values.items():
            variables[f"params.{key}"] = value if isinstance(value, str) else json.dumps(value)
        for ws in spec.get("workspaces", []):
            bound = ws["name"] in workspaces
            if not bound and not ws.get("optional"):
                raise ValueError(f"workspace {ws['name']} is required")
            variables[f"workspaces.{ws['name']}.bound"] = "true" if bound else "false"
            variables[f"workspaces.{ws['name']}.path"] = (
                self._mount(workspaces[ws["name"]], f"/workspace/{ws['name']}") if bound else ""
            )
        for result in spec.get("results", []):
            variables[f"results.{result['name']}.path"] = f"{results_at}/{result['name']}"

        def sub(text: str) -> str:
            return VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), text)

        template = spec.get("stepTemplate", {})
        log: list[str] = []
        failed: str | None = None
        for step in spec["steps"]:
            env = {"HOME": home, "LANG": "C.UTF-8"}
            if self.container is None:
                env["PATH"] = f"{self.path_prefix}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
            mounts = {m["mountPath"]: volumes[m["name"]] for m in step.get("volumeMounts", [])}
            for item in [*template.get("env", []), *step.get("env", [])]:
                value = sub(str(item.get("value", "")))
                for mount, local in mounts.items():
                    if value.startswith(mount):
                        value = str(local) + value[len(mount) :]
                env[item["name"]] = value
            image = sub(step.get("image", ""))
            if self.container is not None and "/zot-artifact-store" not in image:
                raise ValueError(f"step {step['name']} runs {image!r}, not this repository's image")
            script = sub(step["script"])
            (scripts / f"{step['name']}.sh").write_text(script)
            (scripts / f"{step['name']}.sh").chmod(0o755)
            script_file = f"{scripts_at}/{step['name']}.sh"
            cmd = [script_file] if script.startswith("#!") else ["sh", script_file]
            cwd = (step.get("workingDir") and sub(step["workingDir"])) or home
            if self.container is not None:
                proc = self.container.run(cmd, env=env, uid=ARBITRARY_UID, cwd=cwd, timeout=300)
                log.append(f"[{step['name']} in {self.container.image}]\n{proc.stdout}")
            else:
                if self.non_root:
                    uid = str(NON_ROOT_UID)
                    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]
                proc = subprocess.run(
                    cmd,
                    cwd=cwd,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                log.append(f"[{step['name']}]\n{proc.stdout}{proc.stderr}")
            if proc.returncode != 0:
                failed = step["name"]
                break
        results: dict[str, Any] = {}
        size = 0
        for result in spec.get("results", []):
            path = results_dir / result["name"]
            if not path.exists():
                continue
            text = path.read_text()
            size += len(result["name"]) + len(text) + 40  # the termination message's JSON
            results[result["name"]] = json.loads(text) if result.get("type") == "object" else text
        return TaskRunResult(failed is None, results, size, "\n".join(log), failed)
