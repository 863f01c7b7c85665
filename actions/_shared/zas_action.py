#!/usr/bin/env python3
"""The one driver behind every Zot Artifact Store GitHub Action (the root ``action.yml`` and
``actions/*``): it reads the action's inputs from ``INPUT_*`` environment variables (set by the
action's ``env:``, never interpolated into a script), authenticates, runs the ``zot-artifacts``
CLI for every store operation, and speaks the runner's protocol: ``GITHUB_OUTPUT``,
``GITHUB_STEP_SUMMARY``, ``::add-mask::`` for every minted token, ``::error::`` annotations,
and server text echoed between ``::stop-commands::`` markers so it cannot inject commands.

    python zas_action.py all|upload|download|sign|attach-sbom|attest|verify

Runs on the runner's Python >= 3.9 inside the action's private venv (stdlib + the CLI)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1"
SUMMARY_LIMIT = 1024 * 1024 - 4096  # GitHub refuses step summaries over 1 MiB
DEFAULT_AUDIENCE = "zot-artifact-store"
FOLD_RULES = 10  # a verification table with more rule results than this is folded


class ActionError(Exception):
    """A failure the user can act on: one ``::error::`` annotation, exit 1."""

    def __init__(self, message: str, title: str = "zot-artifacts", code: str = "") -> None:
        super().__init__(message)
        self.title = title
        self.code = code  # the store's error code, when the CLI named one


# ---- the runner's protocol ------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def mask(secret: str) -> None:
    """Tell the runner to mask ``secret`` in every log line from now on."""
    for line in secret.splitlines() or [secret]:
        if line.strip():
            print(f"::add-mask::{line.strip()}", flush=True)


def annotate(level: str, message: str, title: str = "zot-artifacts") -> None:
    print(f"::{level} title={_escape_property(title)}::{_escape_data(message)}", flush=True)


def echo_untrusted(text: str) -> None:
    """Print text that came from the server or a tool with workflow commands switched off."""
    if not text.strip():
        return
    token = uuid.uuid4().hex
    print(f"::stop-commands::{token}", flush=True)
    print(text.rstrip("\n"), flush=True)
    print(f"::{token}::", flush=True)


def set_output(name: str, value: str) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        print(f"{name}={value}")
        return
    delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


class Summary:
    """The job summary: markdown appended to ``$GITHUB_STEP_SUMMARY``, kept under 1 MiB."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, markdown: str) -> None:
        self.parts.append(markdown.rstrip("\n") + "\n")

    def write(self) -> None:
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path or not self.parts:
            return
        text = "\n".join(self.parts)
        data = text.encode("utf-8")
        if len(data) > SUMMARY_LIMIT:
            cut = data[:SUMMARY_LIMIT].decode("utf-8", "ignore")
            text = cut + "\n\n*(summary truncated at 1 MiB)*\n"
        with open(path, "a", encoding="utf-8") as out:
            out.write(text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


# ---- inputs ---------------------------------------------------------------------------------


def inp(name: str, default: str = "") -> str:
    return os.environ.get("INPUT_" + name.upper().replace("-", "_"), default).strip() or default


def flag(name: str, default: bool = False) -> bool:
    value = inp(name, "true" if default else "false").lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off", ""):
        return False
    raise ActionError(f"input {name} must be true or false, not {value!r}")


def required(name: str) -> str:
    value = inp(name)
    if not value:
        raise ActionError(f"input {name} is required")
    return value


def lines(value: str) -> list[str]:
    return [x.strip() for x in value.splitlines() if x.strip() and not x.strip().startswith("#")]


# ---- the CLI --------------------------------------------------------------------------------


def venv_tool(name: str) -> Path:
    """A console script of this venv, beside its interpreter (``name.exe`` on Windows)."""
    return Path(sys.executable).with_name(name + (".exe" if os.name == "nt" else ""))


class Store:
    """The ``zot-artifacts`` CLI of this venv, authenticated for one store."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        exe = venv_tool("zot-artifacts")
        self.exe = str(exe) if exe.exists() else (shutil.which("zot-artifacts") or "zot-artifacts")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ZOT_ARTIFACTS_")}
        self.env["ZOT_ARTIFACTS_URL"] = self.url
        # No profile of the runner's user is read: the action's inputs are the whole config.
        self.env["ZOT_ARTIFACTS_CONFIG"] = os.path.join(
            os.environ.get("RUNNER_TEMP") or tempfile.gettempdir(), "zot-artifacts-action.yaml"
        )
        if token:
            self.env["ZOT_ARTIFACTS_TOKEN"] = token

    def run(self, *args: str, ok: Sequence[int] = (0,)) -> tuple[int, Any]:
        """Run ``zot-artifacts --output json ARGS``; its JSON answer (or None)."""
        cmd = [self.exe, "--output", "json", *args]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=False)
        if proc.returncode not in ok:
            echo_untrusted(proc.stdout)
            echo_untrusted(proc.stderr)
            reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            reason = reason.removeprefix("error: ") if reason else f"exit {proc.returncode}"
            # The CLI's one-line errors end "(<Code>, request <id>)" or "(<Code>)".
            found = re.search(r"\(([A-Za-z]+)(?:, request [^)]*)?\)$", reason)
            raise ActionError(
                f"zot-artifacts {args[0]} failed: {reason}", code=found.group(1) if found else ""
            )
        try:
            return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            echo_untrusted(proc.stdout)
            return proc.returncode, None

    def object_url(self, bucket: str, key: str) -> str:
        return f"{self.url}/v1/buckets/{bucket}/objects/{urllib.parse.quote(key)}"


def _http_json(url: str, *, headers: dict[str, str], body: bytes | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as err:
        text = err.read().decode("utf-8", "replace")
        try:
            problem = json.loads(text)
            text = problem.get("detail") or problem.get("title") or text
        except ValueError:
            pass
        raise ActionError(f"{url.split('?')[0]} answered {err.code}: {text[:500]}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ActionError(f"cannot reach {url.split('?')[0]}: {err}") from None


def authenticate(url: str) -> str:
    """The store token: the ``token`` input, else the job's GitHub OIDC token exchanged at
    ``/v1/auth/exchange`` (needs ``permissions: id-token: write``), else none (anonymous)."""
    token = inp("token")
    if token:
        mask(token)
        return token
    request_url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not request_url or not request_token:
        annotate(
            "notice",
            "no token input and no workload identity (add `permissions: id-token: write` to "
            "the job to exchange its OIDC token): talking to the store anonymously",
        )
        return ""
    audience = inp("audience", DEFAULT_AUDIENCE)
    sep = "&" if "?" in request_url else "?"
    oidc = _http_json(
        f"{request_url}{sep}audience={urllib.parse.quote(audience, safe='')}",
        headers={"Authorization": f"Bearer {request_token}"},
    ).get("value")
    if not isinstance(oidc, str):
        raise ActionError("the runner sent no OIDC token")
    mask(oidc)
    answer = _http_json(
        f"{url.rstrip('/')}/v1/auth/exchange",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"token": oidc}).encode(),
    )
    store_token = answer.get("token")
    if not isinstance(store_token, str):
        raise ActionError("the store's token exchange answered without a token")
    mask(store_token)
    return store_token


# ---- files ----------------------------------------------------------------------------------


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in rel.split("/"))


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A glob (``*``, ``?``, ``[...]``, ``**`` for any depth) as a regex on posix paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out, i = out + "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _literal_base(pattern: str) -> Path:
    """The directory before the first wildcard of a glob (``dist/**/*.whl`` -> ``dist``)."""
    parts = []
    for part in pattern.split("/"):
        if any(c in part for c in "*?["):
            break
        parts.append(part)
    return Path("/".join(parts) or ".")


def _normalize(pattern: str) -> str:
    """A path pattern as the walk below names files: posix separators, ``~`` expanded, an
    absolute path under the workspace (the current directory) made relative to it, ``./`` and
    ``.`` segments and doubled slashes dropped, so ``./dist/x``, ``dist//x`` and
    ``$GITHUB_WORKSPACE/dist/x`` all name ``dist/x`` (for includes and excludes alike)."""
    text = os.path.expanduser(pattern).replace(os.sep, "/")
    if os.path.isabs(text):
        cwd = os.getcwd().replace(os.sep, "/").rstrip("/")
        if text == cwd:
            text = "."
        elif text.startswith(cwd + "/"):
            text = text[len(cwd) + 1 :]
    absolute = text.startswith("/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    text = "/".join(parts)
    if absolute:
        text = "/" + text
    return text or "."


def collect(patterns: list[str], include_hidden: bool) -> list[tuple[Path, str]]:
    """Files matching the patterns (paths, globs with ``**``, directories; ``!pattern``
    excludes) as (path, key relative to the patterns' common root), sorted, no duplicates.
    Includes and excludes are normalised alike (:func:`_normalize`) before matching. Files
    and directories whose name starts with a dot below what the pattern names literally are
    skipped unless ``include_hidden``. The root is the least common ancestor of the patterns'
    literal parts (a directory pattern is its own root). Keys come from the paths as found
    under the root, never from where a symlink points, and never contain ``..``."""
    includes = [_normalize(p) for p in patterns if p[0] != "!"]
    excludes = [_pattern_regex(_normalize(p[1:])) for p in patterns if p[0] == "!"]
    found: dict[str, Path] = {}  # absolute path as named (symlinks not followed) -> as named
    roots: list[str] = []
    for pattern in includes:
        literal = Path(pattern)
        if not any(c in pattern for c in "*?["):
            if literal.is_file():
                roots.append(os.path.abspath(literal.parent))
                found[os.path.abspath(literal)] = literal
                continue
            if not literal.is_dir():
                continue
            pattern = "**" if pattern == "." else pattern.rstrip("/") + "/**"
        base = _literal_base(pattern)
        if not base.is_dir():
            continue
        roots.append(os.path.abspath(base))
        regex = _pattern_regex(pattern)
        for directory, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                path = Path(directory, name)
                rel_to_base = path.relative_to(base).as_posix()
                if not include_hidden and _hidden(rel_to_base):
                    continue
                if regex.match(path.as_posix()):
                    found[os.path.abspath(path)] = path
    files = [
        (named, path)
        for named, path in found.items()
        if not any(x.match(path.as_posix()) for x in excludes)
    ]
    if not files:
        return []
    root = os.path.commonpath(roots)
    out = []
    for named, path in files:
        key = Path(os.path.relpath(named, root)).as_posix()
        if ".." in key.split("/"):  # cannot happen: every file is below its root
            raise ActionError(f"{path} is not below {root}: cannot name its key")
        out.append((path, key))
    return sorted(out, key=lambda item: item[1])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


# ---- signing with a key (openssl: EC P-256/P-384 and RSA keys) ------------------------------


class KeySigner:
    def __init__(self, pem: str, key_id: str = "") -> None:
        # A key from a secret is masked by GitHub already; one from elsewhere (a file, an
        # output) is not: mask every line of it before anything can echo it.
        mask(pem)
        if "PRIVATE KEY" not in pem:
            raise ActionError("signing-key must be a PEM private key (from a secret)")
        if "ENCRYPTED" in pem:
            raise ActionError("signing-key must not be encrypted")
        openssl = shutil.which("openssl")
        if not openssl:
            raise ActionError("key-based signing needs openssl on the runner")
        self.openssl = openssl
        self.key_id = key_id
        fd, self.path = tempfile.mkstemp(prefix="zas-key-", dir=os.environ.get("RUNNER_TEMP"))
        with os.fdopen(fd, "w") as f:
            f.write(pem.strip() + "\n")

    def sign(self, data: bytes) -> bytes:
        return self._openssl(data=data)

    def sign_file(self, path: Path) -> bytes:
        """The signature of a file's bytes, streamed by openssl (never read into memory)."""
        return self._openssl(path=path)

    def _openssl(self, data: bytes | None = None, path: Path | None = None) -> bytes:
        proc = subprocess.run(
            [self.openssl, "dgst", "-sha256", "-sign", self.path, *([str(path)] if path else [])],
            input=data,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ActionError("openssl could not sign with signing-key (EC or RSA keys only)")
        return proc.stdout

    def dsse(self, statement: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()
        pae = b"DSSEv1 %d %s %d %s" % (
            len(DSSE_PAYLOAD_TYPE),
            DSSE_PAYLOAD_TYPE.encode(),
            len(payload),
            payload,
        )
        signature = base64.b64encode(self.sign(pae)).decode()
        return {
            "payloadType": DSSE_PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": self.key_id, "sig": signature}],
        }

    def close(self) -> None:
        os.unlink(self.path)


# ---- SLSA provenance v1 from the GitHub context ---------------------------------------------


def provenance(subjects: list[tuple[str, str]]) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA provenance v1 predicate for ``subjects``
    ((name, sha256 hex)), built from the GitHub Actions context of this job."""
    env = os.environ
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repository = env.get("GITHUB_REPOSITORY", "")
    workflow_ref = env.get("GITHUB_WORKFLOW_REF", "")  # owner/repo/.github/workflows/x.yml@ref
    path = workflow_ref.split("@")[0].removeprefix(repository + "/") if workflow_ref else ""
    run_id = env.get("GITHUB_RUN_ID", "")
    attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
    builder = env.get("ZAS_JOB_WORKFLOW_REF") or workflow_ref
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in subjects],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "workflow": {
                        "ref": env.get("GITHUB_REF", ""),
                        "repository": f"{server}/{repository}",
                        "path": path,
                    }
                },
                "internalParameters": {
                    "github": {
                        "event_name": env.get("GITHUB_EVENT_NAME", ""),
                        "repository_id": env.get("GITHUB_REPOSITORY_ID", ""),
                        "repository_owner_id": env.get("GITHUB_REPOSITORY_OWNER_ID", ""),
                        "runner_environment": env.get("RUNNER_ENVIRONMENT", ""),
                    }
                },
                "resolvedDependencies": [
                    {
                        "uri": f"git+{server}/{repository}@{env.get('GITHUB_REF', '')}",
                        "digest": {"gitCommit": env.get("GITHUB_SHA", "")},
                    }
                ],
            },
            "runDetails": {
                "builder": {"id": f"{server}/{builder}"},
                "metadata": {
                    "invocationId": f"{server}/{repository}/actions/runs/{run_id}"
                    f"/attempts/{attempt}",
                    "startedOn": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            },
        },
    }


def run_labels() -> list[str]:
    """``--label`` options naming this workflow run (``github.repository``,
    ``github.run_id``): the store links objects so labelled to the run's build when the
    repository's ``workflow_run`` webhook arrives (before or after the upload)."""
    repository = os.environ.get("GITHUB_REPOSITORY", "").strip()
    run_id = os.environ.get("GITHUB_RUN_ID", "").strip()
    if not repository or not run_id:
        return []
    return ["--label", f"github.repository={repository}", "--label", f"github.run_id={run_id}"]


# ---- named artifacts (the names of actions/upload-artifact@v4) ------------------------------

# actions/upload-artifact@v4 refuses these in a name; "/" would also make it two folders.
_BAD_NAME_CHARS = set('"\\:<>|*?/\r\n')


def artifact_name() -> str:
    name = inp("name")
    if name and (name in (".", "..") or _BAD_NAME_CHARS & set(name)):
        raise ActionError(
            f"name {name!r} is not an artifact name: no /, \\, :, <, >, |, *, ?, quotes or "
            "line breaks, and not . or .."
        )
    return name


def artifact_folder(prefix: str, name: str, what: str) -> str:
    """The folder of a named artifact: ``<key-prefix>/<name>``, or ``<run id>/<name>`` without
    a key-prefix (``run-id`` or ``GITHUB_RUN_ID``); without a name, the key-prefix alone."""
    if not name:
        return prefix
    if prefix:
        return f"{prefix}/{name}"
    run_id = current_run_id()
    if not run_id:
        raise ActionError(
            f"name {name} lives under the workflow run's id, and this job has none "
            f"(GITHUB_RUN_ID is empty): set key-prefix to {what} it elsewhere"
        )
    return f"{run_id}/{name}"


def current_run_id() -> str:
    run_id = inp("run-id") or os.environ.get("GITHUB_RUN_ID", "").strip()
    if run_id and not run_id.isdigit():
        raise ActionError(f"run-id must be a workflow run's id (digits), not {run_id!r}")
    return run_id


def retention_days() -> list[str]:
    """``retention-days`` (as in actions/upload-artifact@v4: 1 to 90; 0 or empty: the store's
    default, no expiry) as the CLI's ``--expires-in``: the store removes the objects that many
    days after the upload (its lifecycle run enforces it)."""
    value = inp("retention-days")
    if not value or value == "0":
        return []
    if not (value.isascii() and value.isdigit()) or int(value) > 90:
        raise ActionError(f"retention-days must be a whole number from 0 to 90, not {value!r}")
    return ["--expires-in", f"{int(value)}d"]


def download_path() -> str:
    """``path`` (actions/download-artifact@v4's name) or its alias ``download-path``."""
    path, alias = inp("path"), inp("download-path")
    if path and alias and path != alias:
        raise ActionError(f"path ({path}) and download-path ({alias}) differ: give one")
    return path or alias or "."


def artifact_digest(files: list[tuple[str, str]]) -> str:
    """``sha256:`` of the artifact's listing in ``sha256sum`` format (``<hex>  <path>``, paths
    relative to its folder, in byte order): reproducible from a download with
    ``find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum``."""
    listing = "".join(f"{digest}  {path}\n" for path, digest in sorted(files))
    return "sha256:" + hashlib.sha256(listing.encode("utf-8")).hexdigest()


# ---- the steps ------------------------------------------------------------------------------


class Run:
    """One action invocation: its store, its results and its summary."""

    def __init__(self) -> None:
        self.url = required("url")
        self.store = Store(self.url, authenticate(self.url))
        self.bucket = required("bucket")
        self.summary = Summary()
        self.objects: list[dict[str, Any]] = []  # {key, size, sha256, uri}
        self.evidence: list[dict[str, str]] = []  # {key, kind, id}
        self.verified: bool | None = None
        self.artifact: dict[str, str] = {}  # artifact-id, artifact-url, artifact-digest
        self.tmp = Path(tempfile.mkdtemp(prefix="zas-", dir=os.environ.get("RUNNER_TEMP")))

    def ref(self, key: str) -> str:
        return f"{self.bucket}/{key}"

    # -- objects the step works on: uploaded now, or named by the keys input
    def targets(self) -> list[dict[str, Any]]:
        if self.objects:
            return self.objects
        keys = lines(inp("keys")) or lines(inp("key"))
        if not keys:
            raise ActionError("input keys is required (one object key a line)")
        out = []
        for key in keys:
            try:
                _, info = self.store.run("head", self.ref(key))
            except ActionError as err:
                if err.code in ("NoSuchKey", "NoSuchBucket"):
                    raise ActionError(f"{self.ref(key)} does not exist") from None
                raise
            digest = str(info.get("sha256") or info.get("digest") or "").removeprefix("sha256:")
            out.append(
                {
                    "key": key,
                    "size": info.get("size", 0),
                    "sha256": digest,
                    "uri": self.store.object_url(self.bucket, key),
                }
            )
        self.objects = out
        return out

    def upload(self) -> None:
        retention = retention_days()
        patterns = lines(required("path"))
        prefix = artifact_folder(inp("key-prefix").strip("/"), artifact_name(), "upload")
        files = collect(patterns, flag("include-hidden-files"))
        if not files:
            mode = inp("if-no-files-found", "warn")
            message = f"no files match {', '.join(patterns)}"
            if mode == "error":
                raise ActionError(message)
            if mode == "warn":
                annotate("warning", message)
            elif mode != "ignore":
                raise ActionError("if-no-files-found must be warn, error or ignore")
            return
        if flag("create-bucket"):
            self.store.run("bucket", "create", self.bucket, "--exist-ok")
        keys = [(path, f"{prefix}/{rel}" if prefix else rel) for path, rel in files]
        if not flag("overwrite"):
            folder = prefix + "/" if prefix else ""
            try:
                existing = self.existing(folder)
            except ActionError as err:
                if err.code != "AccessDenied":
                    raise
                # A token that may write but not list: --no-overwrite below still has the
                # store refuse every replacement, one object at a time.
                annotate("notice", f"may not list {self.ref(folder)}: conflicts are checked "
                         "by the store for each object")  # fmt: skip
                existing = set()
            clash = [key for _, key in keys if key in existing]
            if clash:
                raise ActionError(
                    f"{self.ref(clash[0])} already exists"
                    + (f" (and {len(clash) - 1} more)" if len(clash) > 1 else "")
                    + ": set overwrite: true to replace it",
                    title="name conflict",
                )
        labels = run_labels()
        for path, key in keys:
            digest = sha256_file(path)
            # The listing above names every conflict at once; --no-overwrite makes the store
            # itself refuse a replacement, so a writer racing this step cannot be overwritten.
            create_only = [] if flag("overwrite") else ["--no-overwrite"]
            try:
                _, answer = self.store.run("upload", str(path), self.bucket, "--key", key,
                                           *create_only, *retention, *labels)  # fmt: skip
            except ActionError as err:
                if err.code == "PreconditionFailed":
                    raise ActionError(
                        f"{self.ref(key)} already exists: set overwrite: true to replace it",
                        title="name conflict",
                    ) from None
                raise
            stored = (answer or {}).get("objects", [{}])[0].get("sha256")
            if stored and stored != digest:
                raise ActionError(f"{self.ref(key)}: the store holds sha256 {stored}, not {digest}")
            self.objects.append(
                {
                    "key": key,
                    "size": path.stat().st_size,
                    "sha256": digest,
                    "uri": self.store.object_url(self.bucket, key),
                    "path": str(path),
                }
            )
        rows = "\n".join(
            f"| `{_cell(o['key'])}` | {human(o['size'])} | `sha256:{o['sha256'][:16]}…` |"
            for o in self.objects
        )
        self.artifact = {
            "artifact-id": self.ref(prefix) if prefix else self.bucket,
            "artifact-url": f"{self.store.url}/v1/buckets/{self.bucket}/objects?"
            + urllib.parse.urlencode({"prefix": prefix + "/" if prefix else ""}),
            "artifact-digest": artifact_digest(
                [(key[len(prefix) + 1 :] if prefix else key, d) for key, d in self.digests()]
            ),
        }
        self.summary.add(
            f"### Uploaded {len(self.objects)} file(s) to `{_cell(self.bucket)}`\n\n"
            f"Artifact `{_cell(self.artifact['artifact-id'])}` "
            f"([list]({self.artifact['artifact-url']})), "
            f"`{self.artifact['artifact-digest']}`\n\n"
            f"| key | size | digest |\n|---|---|---|\n{rows}\n"
        )

    def digests(self) -> list[tuple[str, str]]:
        return [(o["key"], o["sha256"]) for o in self.objects]

    def listing(self, prefix: str) -> list[dict[str, Any]]:
        """``zot-artifacts ls bucket/prefix --recursive``; empty when the bucket is missing."""
        target = self.ref(prefix) if prefix else self.bucket
        try:
            _, listing = self.store.run("ls", target, "--recursive")
        except ActionError as err:
            if err.code == "NoSuchBucket":
                return []
            raise  # an authentication or network failure is not "no objects"
        items = listing.get("objects", listing) if isinstance(listing, dict) else listing or []
        return [item for item in items if isinstance(item, dict)]

    def existing(self, prefix: str) -> set[str]:
        return {str(item.get("key")) for item in self.listing(prefix)}

    def signing_mode(self) -> str:
        mode = inp("signing-method", "auto")
        if mode == "auto":
            return "key" if inp("signing-key") else "server"
        if mode not in ("server", "key", "sigstore"):
            raise ActionError("signing-method must be auto, server, key or sigstore")
        return mode

    def record(self, key: str, kind: str, answer: Any) -> None:
        evidence_id = ""
        if isinstance(answer, dict):
            evidence_id = str(answer.get("id") or answer.get("evidence_id") or "")
        self.evidence.append({"key": key, "kind": kind, "id": evidence_id})

    def sign(self) -> None:
        mode = self.signing_mode()
        signer = (
            KeySigner(required("signing-key"), inp("signing-key-id")) if mode == "key" else None
        )
        try:
            for obj in self.targets():
                if mode == "server":
                    _, answer = self.store.run("sign", self.ref(obj["key"]))
                elif mode == "key":
                    assert signer is not None
                    # A private copy (streamed, never held in memory) is hashed and signed,
                    # so the bytes signed are the bytes checked.
                    copy = self.tmp / uuid.uuid4().hex
                    source = obj.get("path")
                    if source:
                        shutil.copyfile(source, copy)
                    else:
                        self.fetch_to(obj["key"], copy)
                    if sha256_file(copy) != obj["sha256"]:
                        raise ActionError(f"{self.ref(obj['key'])} changed while signing it")
                    sig = self.tmp / f"{uuid.uuid4().hex}.sig"
                    sig.write_text(base64.b64encode(signer.sign_file(copy)).decode() + "\n")
                    copy.unlink()
                    _, answer = self.store.run(
                        "attach", "signature", self.ref(obj["key"]), str(sig)
                    )
                else:
                    answer = self.sigstore_sign(obj)
                self.record(obj["key"], "signature", answer)
        finally:
            if signer:
                signer.close()
        self.summary.add(f"Signed {len(self.targets())} object(s) ({mode}).")

    def fetch_to(self, key: str, dest: Path) -> Path:
        """Download ``key`` to ``dest`` (the CLI streams it to disk)."""
        self.store.run("download", self.ref(key), str(dest))
        return dest

    def sigstore_sign(self, obj: dict[str, Any]) -> Any:
        source = obj.get("path") or str(self.tmp / Path(obj["key"]).name)
        if not obj.get("path"):
            self.fetch_to(obj["key"], Path(source))
        bundle = self.tmp / f"{uuid.uuid4().hex}.sigstore.json"
        sigstore = venv_tool("sigstore")
        proc = subprocess.run(
            [str(sigstore), "sign", "--bundle", str(bundle), source],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            echo_untrusted(proc.stderr)
            raise ActionError("sigstore could not sign (does the job have id-token: write?)")
        _, answer = self.store.run("attach", "signature", self.ref(obj["key"]), str(bundle))
        return answer

    def attach_sbom(self) -> None:
        sbom = inp("sbom")
        if not sbom and flag("sbom-generate"):
            sbom = str(self.generate_sbom())
        if not sbom:
            raise ActionError("give an sbom file or set sbom-generate: true")
        if not Path(sbom).is_file():
            raise ActionError(f"sbom file {sbom} does not exist")
        for obj in self.targets():
            _, answer = self.store.run("attach", "sbom", self.ref(obj["key"]), sbom)
            self.record(obj["key"], "sbom", answer)
        self.summary.add(f"Attached the SBOM `{_cell(os.path.basename(sbom))}`.")

    def generate_sbom(self) -> Path:
        """A CycloneDX JSON SBOM of a Python project with cyclonedx-py: its requirements
        file, Poetry or Pipenv lock, else the runner's python3 environment."""
        project = Path(inp("sbom-project", "."))
        out = self.tmp / "sbom.cdx.json"
        cyclonedx = str(venv_tool("cyclonedx-py"))
        if (project / "poetry.lock").is_file():
            args = ["poetry", str(project)]
        elif (project / "Pipfile.lock").is_file():
            args = ["pipenv", str(project)]
        elif (project / "requirements.txt").is_file():
            args = ["requirements", str(project / "requirements.txt")]
        else:
            python = shutil.which("python3") or "python3"
            args = ["environment", python]
        pyproject = project / "pyproject.toml"
        extra = ["--pyproject", str(pyproject)] if pyproject.is_file() else []
        cmd = [cyclonedx, *args, *extra, "--output-format", "JSON", "--output-file", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            echo_untrusted(proc.stderr)
            raise ActionError(f"cyclonedx-py {args[0]} failed for {project}")
        return out

    def attest(self) -> None:
        mode = self.signing_mode()
        targets = self.targets()
        statement = provenance([(o["key"], o["sha256"]) for o in targets])
        path = self.tmp / "provenance.intoto.json"
        if mode == "key":
            signer = KeySigner(required("signing-key"), inp("signing-key-id"))
            try:
                path.write_text(json.dumps(signer.dsse(statement)))
            finally:
                signer.close()
            for obj in targets:
                _, answer = self.store.run("attach", "attestation", self.ref(obj["key"]), str(path))
                self.record(obj["key"], "attestation", answer)
        elif mode == "server":
            # The store builds the provenance from the claims it verified at the token
            # exchange (never from this job's environment), signs it, one statement for all.
            _, answer = self.store.run("provenance", *(self.ref(o["key"]) for o in targets))
            for obj, evidence in zip(targets, (answer or {}).get("evidence", [])):
                self.record(obj["key"], "attestation", evidence)
        else:
            path.write_text(json.dumps(statement["predicate"]))
            sigstore = venv_tool("sigstore")
            for obj in targets:
                source = obj.get("path")
                if not source:
                    source = str(self.fetch_to(obj["key"], self.tmp / uuid.uuid4().hex))
                bundle = self.tmp / f"{uuid.uuid4().hex}.sigstore.json"
                cmd = [
                    str(sigstore),
                    "attest",
                    "--predicate-type",
                    SLSA_PROVENANCE_V1,
                    "--predicate",
                    str(path),
                    "--bundle",
                    str(bundle),
                    source,
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    echo_untrusted(proc.stderr)
                    raise ActionError(
                        "sigstore could not attest (does the job have id-token: write?)"
                    )
                _, answer = self.store.run(
                    "attach", "attestation", self.ref(obj["key"]), str(bundle)
                )
                self.record(obj["key"], "attestation", answer)
        self.summary.add(f"Attached SLSA provenance v1 ({mode}) to {len(targets)} object(s).")

    def verify(self) -> None:
        self.verified = False  # until every subject passed: a failure on the way is "false"
        policy = required("policy")
        if not Path(policy).is_file():
            raise ActionError(f"policy file {policy} does not exist")
        subjects: list[tuple[str, list[str]]] = []
        local = lines(inp("verify-path")) if not self.objects else []
        if local:
            excludes = [p for p in local if p.startswith("!")]
            includes = [p for p in local if not p.startswith("!")]
            empty = [p for p in includes if not collect([p, *excludes], True)]
            if empty:
                # Nothing verified is not "verified": a pattern that names no file fails.
                self.verified = False
                raise ActionError(
                    f"verify-path {', '.join(empty)} matches no file: nothing to verify",
                    title="verification failed",
                )
            for path, _ in collect(local, True):
                digest = sha256_file(path)
                subjects.append((str(path), ["--digest", "sha256:" + digest]))
                # The outputs name what was verified: the local files and their digests.
                self.objects.append({"key": str(path), "size": path.stat().st_size,
                                     "sha256": digest, "uri": "", "path": str(path)})  # fmt: skip
        else:
            subjects = [(self.ref(o["key"]), [self.ref(o["key"])]) for o in self.targets()]
        if not subjects:
            self.verified = False
            raise ActionError("nothing to verify", title="verification failed")
        failures: list[str] = []
        details: list[str] = []
        results = {}
        for name, args in subjects:
            code, result = self.store.run("verify", *args, "--policy", policy, ok=(0, 1))
            result = result if isinstance(result, dict) else {}
            results[name] = result
            rules = result.get("rules") or []
            for rule in rules:
                passed = bool(rule.get("passed"))
                reason = str(rule.get("reason") or "")
                what = json.dumps(rule.get("rule"), sort_keys=True) if rule.get("rule") else "rule"
                details.append(
                    f"| `{_cell(name)}` | {'✅' if passed else '❌'} | "
                    f"`{_cell(what)}` | {_cell(reason)} |"
                )
                if not passed:
                    failures.append(f"{name}: {reason or what}")
            if code != 0 and not any(f.startswith(name + ":") for f in failures):
                failures.append(f"{name}: not verified")
        self.verified = not failures
        set_output("verification", json.dumps(results, sort_keys=True))
        verdict = "passed" if self.verified else "failed"
        table = "| subject | | rule | reason |\n|---|---|---|---|\n" + "\n".join(details)
        failed = len(details) - sum(1 for d in details if "| ✅ |" in d)
        if len(details) > FOLD_RULES:
            # A long list is folded: the headline counts, the rules are one click away.
            table = (
                f"<details><summary>{len(details)} rule result(s), {failed} failed</summary>"
                f"\n\n{table}\n\n</details>"
            )
        self.summary.add(f"### Verification {verdict}\n\n{table}\n")
        if failures and flag("fail-on-unverified", True):
            for failure in failures[:10]:
                annotate("error", failure, title="verification failed")
            raise ActionError(
                f"verification failed for {len(failures)} rule(s): {failures[0]}",
                title="verification failed",
            )

    def download(self) -> None:
        dest = Path(download_path())
        dest.mkdir(parents=True, exist_ok=True)
        keys = lines(inp("keys")) or lines(inp("key"))
        prefix = self.download_folder(bool(keys))
        name = artifact_name()
        if not keys:
            # The folder: release/2 takes release/2/..., never release/2b/...
            folder = prefix + "/"
            keys = sorted(k for k in self.existing(folder) if k.startswith(folder))
            pattern = inp("pattern")
            if pattern and not name:
                # As download-artifact@v4's pattern: a glob on the artifacts' names (the first
                # folder below the run's, or key-prefix's, folder).
                regex = _pattern_regex(pattern)
                keys = [k for k in keys if regex.match(k[len(folder) :].split("/")[0])]
            if not keys:
                raise ActionError(
                    f"no objects under {self.ref(folder)}"
                    + (f" whose artifact name matches {pattern}" if pattern and not name else "")
                    + (
                        " (key-prefix names a folder; name one object with keys)"
                        if inp("key-prefix") and not name
                        else ""
                    )
                )
        self.check_repository(keys)
        merge = flag("merge-multiple") and not name and not lines(inp("keys"))
        self.download_to(dest, keys, prefix, merge)
        set_output("download-path", str(dest.resolve()))

    def download_folder(self, has_keys: bool) -> str:
        """What download takes (without keys) and writes relative to: ``<key-prefix>/<name>``,
        ``<run id>/<name>``, ``<key-prefix>``, else this run's (or ``run-id``'s) artifacts,
        ``<run id>``; never the whole bucket."""
        prefix = inp("key-prefix").strip("/")
        name = artifact_name()
        if prefix and inp("run-id"):
            raise ActionError("give key-prefix or run-id, not both: key-prefix replaces the run id")
        if has_keys and not name:
            return prefix
        if name or prefix:
            return artifact_folder(prefix, name, "download")
        run_id = current_run_id()
        if not run_id:
            raise ActionError(
                "name keys, key-prefix or name: without them download takes this workflow run's "
                "artifacts (<run id>/...), and this job has no run id (GITHUB_RUN_ID is empty); "
                "it never downloads a whole bucket"
            )
        return run_id

    def check_repository(self, keys: list[str]) -> None:
        """``repository``: every object must carry the ``github.repository`` label the action
        gives uploads from that repository's runs, or nothing is downloaded."""
        repository = inp("repository")
        if not repository:
            return
        for key in keys:
            _, info = self.store.run("head", self.ref(key))
            labels = (info or {}).get("labels") or {}
            found = str(labels.get("github.repository", ""))
            if found.lower() != repository.lower():
                raise ActionError(
                    f"{self.ref(key)} was not uploaded by a workflow run of {repository} (its "
                    f"github.repository label is {found or 'missing'}): nothing was downloaded",
                    title="wrong repository",
                )

    def download_to(self, dest: Path, keys: list[str], prefix: str, merge: bool) -> None:
        root = dest.resolve()
        targets: dict[Path, str] = {}
        for key in keys:
            rel = key[len(prefix) + 1 :] if prefix and key.startswith(prefix + "/") else key
            if merge and "/" in rel:
                rel = rel.split("/", 1)[1]  # merge-multiple: the artifacts' files side by side
            target = (dest / rel).resolve()
            if root not in target.parents:
                raise ActionError(f"refusing to write {key} outside {dest}")
            if target in targets:
                raise ActionError(
                    f"{self.ref(targets[target])} and {self.ref(key)} would both be written to "
                    f"{target}: download them separately"
                )
            targets[target] = key
        for target, key in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            self.store.run("download", self.ref(key), str(target))
            self.objects.append(
                {
                    "key": key,
                    "size": target.stat().st_size,
                    "sha256": sha256_file(target),
                    "uri": self.store.object_url(self.bucket, key),
                    "path": str(target),
                }
            )
        self.summary.add(f"Downloaded {len(self.objects)} object(s) to `{_cell(str(dest))}`.")

    def evidence_summary(self) -> None:
        """Each piece of evidence attached, its id linked to ``/v1/evidence/<id>``."""
        rows = [
            f"| `{_cell(e['key'])}` | {_cell(e['kind'])} | "
            f"[`{_cell(e['id'])}`]({self.store.url}/v1/evidence/{urllib.parse.quote(e['id'])}) |"
            for e in self.evidence
            if e["id"]
        ]
        if rows:
            table = "| subject | kind | evidence |\n|---|---|---|\n" + "\n".join(rows)
            if len(rows) > FOLD_RULES:
                summary = f"<summary>{len(rows)} evidence id(s)</summary>"
                table = f"<details>{summary}\n\n{table}\n\n</details>"
            self.summary.add(f"### Evidence\n\n{table}\n")

    def finish(self) -> None:
        uris = [o["uri"] for o in self.objects if o["uri"]]
        set_output("keys", "\n".join(o["key"] for o in self.objects))
        set_output("uris", json.dumps(uris))
        set_output("digests", json.dumps({o["key"]: "sha256:" + o["sha256"] for o in self.objects}))
        set_output("paths", json.dumps([o.get("path", "") for o in self.objects]))
        if uris:
            set_output("uri", uris[0])
        if self.objects:
            set_output("digest", "sha256:" + self.objects[0]["sha256"])
        set_output("evidence-ids", json.dumps([e["id"] for e in self.evidence if e["id"]]))
        if self.verified is not None:
            set_output("verified", "true" if self.verified else "false")
        for name, value in self.artifact.items():
            set_output(name, value)
        self.evidence_summary()
        self.summary.write()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_all(run: Run) -> None:
    """The root action: upload, then each optional step."""
    run.upload()
    if not run.objects:
        if inp("policy"):
            # A policy asked for verification and nothing was uploaded: nothing is verified.
            run.verified = False
            message = "no files were uploaded, so nothing was verified against the policy"
            if flag("fail-on-unverified", True) and inp("if-no-files-found", "warn") != "ignore":
                raise ActionError(message, title="verification failed")
            annotate("warning", message)
        return
    if flag("sign"):
        run.sign()
    if inp("sbom") or flag("sbom-generate"):
        run.attach_sbom()
    if flag("provenance"):
        run.attest()
    if inp("policy"):
        run.verify()


COMMANDS: dict[str, Callable[[Run], None]] = {
    "all": run_all,
    "upload": Run.upload,
    "download": Run.download,
    "sign": Run.sign,
    "attach-sbom": Run.attach_sbom,
    "attest": Run.attest,
    "verify": Run.verify,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in COMMANDS:
        print(f"usage: zas_action.py {'|'.join(COMMANDS)}", file=sys.stderr)
        return 2
    run: Run | None = None
    try:
        run = Run()
        COMMANDS[args[0]](run)
        return 0
    except ActionError as err:
        annotate("error", str(err), title=err.title)
        if run is not None:
            run.summary.add(f"**Failed:** {_cell(str(err))}")
        return 1
    finally:
        if run is not None:
            run.finish()


if __name__ == "__main__":
    sys.exit(main())
