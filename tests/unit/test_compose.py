"""deploy/compose/compose.yaml, checked as far as a machine without a container engine can.

It is valid by the compose spec's JSON schema (check-jsonschema's vendored copy), its ``${...}``
are filled in from ``.env.example`` by the compose spec's interpolation rules, and then what a
user would notice holds: the server's environment is a valid configuration with the root user
from the env file, the server's metadata URI names the one-member replica set that MongoDB is
started as (and that its healthcheck initiates: the healthcheck script runs under node against
a stand-in ``rs``), the server's healthcheck command passes against a real ready server and
fails without one, start-up waits for a healthy MongoDB, and data lives in named volumes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from tests.fixtures.server import ServerProcess
from zot_artifact_store.config import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
ENV_EXAMPLE = REPO / "deploy" / "compose" / ".env.example"
BIN = Path(sys.executable).parent
# What a user puts in .env beside .env.example's values.
PASSWORD = "correct-horse-battery"
DATA_DIR = (
    "/var/lib/zas"  # the image's storage.rootDirectory (zot-artifact-store serve --container)
)

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt},
# $VAR and $$ (a literal $), as the compose spec's interpolation section defines them.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(Exception):
    """What compose prints when a required variable (``${VAR:?message}``) is missing."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        current = env.get(name)
        op, arg = match["op"], match["arg"]
        if op is None:
            return current or ""
        unset = current is None or (op.startswith(":") and current == "")
        if op.endswith("-"):
            return arg if unset else str(current)
        if op.endswith("?"):
            if unset:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return str(current)
        return "" if unset else arg  # :+ and +

    return _VARIABLE.sub(substitute, value)


def read_dotenv(path: Path) -> dict[str, str]:
    """The assignments of a compose ``.env`` file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, raw = line.removeprefix("export ").partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
        else:
            raw = raw.split(" #", 1)[0].strip()
        values[name.strip()] = raw
    return values


def documented_variables(path: Path) -> set[str]:
    """Every NAME= in the file, set or commented out."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), re.MULTILINE))


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def user_env() -> dict[str, str]:
    """.env.example as a user fills it in: the password set, everything else as shipped."""
    env = read_dotenv(ENV_EXAMPLE)
    env["ZAS_ROOT_PASSWORD"] = PASSWORD
    return env


def compose() -> dict[str, Any]:
    return interpolate(raw_compose(), user_env())


def server_environment(doc: dict[str, Any]) -> dict[str, str]:
    env = doc["services"]["server"]["environment"]
    if isinstance(env, list):  # the NAME=value list form
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def run(*cmd: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=REPO, capture_output=True, text=True, timeout=60, **kwargs
    )


def check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)


# ---- the file ---------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec_schema() -> None:
    out = check_schema(COMPOSE)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    doc = raw_compose()
    doc["services"]["server"]["depends_on"]["mongo"]["condition"] = "service_happy"
    doc["services"]["mongo"]["healthcheck"]["intervall"] = "5s"
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(doc))
    out = check_schema(bad)
    assert out.returncode != 0
    assert "service_happy" in out.stdout and "intervall" in out.stdout, out.stdout


def test_every_variable_is_documented_in_the_env_example_and_used() -> None:
    used = {m["braced"] or m["named"] for m in _VARIABLE.finditer(COMPOSE.read_text())} - {None}
    documented = documented_variables(ENV_EXAMPLE)
    assert used == documented, (
        f"used, not in .env.example: {sorted(used - documented)}; "
        f"in .env.example, not used: {sorted(documented - used)}"
    )


def test_the_root_password_must_be_set_before_anything_starts() -> None:
    shipped = read_dotenv(ENV_EXAMPLE)
    assert shipped["ZAS_ROOT_PASSWORD"] == "", "no password ships in the example"
    with pytest.raises(InterpolationError, match=r"ZAS_ROOT_PASSWORD.*\.env"):
        interpolate(raw_compose(), shipped)


def test_the_default_image_is_this_release_on_ghcr() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    image = interpolate(raw_compose(), {"ZAS_ROOT_PASSWORD": PASSWORD})["services"]["server"][
        "image"
    ]
    assert re.fullmatch(rf"ghcr\.io/[a-z0-9-]+/zot-artifact-store:{re.escape(version)}", image)
    local = {"ZAS_IMAGE": "localhost/zot-artifact-store:dev", "ZAS_ROOT_PASSWORD": PASSWORD}
    assert interpolate(raw_compose(), local)["services"]["server"]["image"] == local["ZAS_IMAGE"]


# ---- the server -------------------------------------------------------------------------------


def test_the_server_environment_is_a_valid_config_with_the_root_user_from_the_env_file() -> None:
    doc = compose()
    env = server_environment(doc)
    config = load_config(None, environ=env)  # raises on an unknown ZAS_ name or a bad value
    assert config.auth.enabled
    assert (config.auth.root.user, config.auth.root.password) == ("admin", PASSWORD)
    assert config.metadata_uri.startswith("mongodb://")
    # Compose's own variables (image, published address) do not reach the server.
    assert not {"ZAS_IMAGE", "ZAS_HOST_ADDRESS", "ZAS_HOST_PORT"} & set(env)
    other = interpolate(raw_compose(), {**user_env(), "ZAS_ROOT_USER": "release-bot"})
    assert load_config(None, environ=server_environment(other)).auth.root.user == "release-bot"


def test_the_server_is_published_on_its_port_on_this_machine_only_by_default() -> None:
    doc = compose()
    server = doc["services"]["server"]
    port = load_config(None, environ=server_environment(doc)).http.port
    assert server["ports"] == [f"127.0.0.1:8080:{port}"]
    assert port == 8080
    moved = {**user_env(), "ZAS_HOST_ADDRESS": "0.0.0.0", "ZAS_HOST_PORT": "9000"}
    assert interpolate(raw_compose(), moved)["services"]["server"]["ports"] == ["0.0.0.0:9000:8080"]
    assert "ports" not in doc["services"]["mongo"], "MongoDB is not published"


def healthcheck_code(doc: dict[str, Any]) -> str:
    test = doc["services"]["server"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python3", "-c"], "the image has python3, not curl or wget"
    assert "http://127.0.0.1:8080/health/ready" in test[3]
    return test[3]


def test_the_server_healthcheck_passes_on_a_ready_server_and_fails_without_one(
    tmp_path: Path,
) -> None:
    """The healthcheck's own command against the real server started with the compose file's
    environment (sqlite instead of the compose network's MongoDB); root credentials work."""
    doc = compose()
    code = healthcheck_code(doc)
    env = server_environment(doc)
    del env["ZAS_METADATA_URI"]
    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        probe = code.replace("http://127.0.0.1:8080", server.url)
        assert run(sys.executable, "-c", probe).returncode == 0
        with server.client() as client:
            assert client.get("/v1/buckets").status_code == 401
            assert client.get("/v1/buckets", auth=("admin", PASSWORD)).status_code == 200
            assert client.get("/v1/buckets", auth=("admin", "wrong-password")).status_code == 401
    finally:
        assert server.stop() == 0
    failed = run(sys.executable, "-c", probe)
    assert failed.returncode != 0 and "Connection refused" in failed.stderr, failed.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health/ready")


# ---- MongoDB ----------------------------------------------------------------------------------


def mongo_healthcheck(script: str, scenario: dict[str, Any]) -> dict[str, Any]:
    """Run the healthcheck's mongosh script under node with a stand-in ``rs`` object."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run scripts/setup.sh")
    harness = r"""
const vm = require('vm');
const [script, scenario] = [process.argv[1], JSON.parse(process.argv[2])];
const initiated = [];
const rs = {
  status() {
    if (scenario.state === null) {
      const e = new Error('no replset config has been received');
      e.codeName = 'NotYetInitialized';
      throw e;
    }
    return {ok: 1, myState: scenario.state};
  },
  initiate(config) {
    initiated.push(config);
    if (scenario.initiateFails) throw new Error('initiate failed');
    return {ok: 1};
  },
};
let healthy = true, error = null;
try { vm.runInNewContext(script, {rs}); } catch (e) { healthy = false; error = String(e); }
console.log(JSON.stringify({healthy, initiated, error}));
"""
    out = run(node, "-e", harness, script, json.dumps(scenario))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_mongo_is_a_replica_set_of_one_that_the_server_points_at() -> None:
    doc = compose()
    mongo = doc["services"]["mongo"]
    assert mongo["image"].rsplit("/", 1)[-1].startswith("mongo:"), "the official mongo image"
    command = mongo["command"]
    assert command[0] == "mongod" and "--bind_ip_all" in command
    replica_set = command[command.index("--replSet") + 1]

    uri = urlsplit(load_config(None, environ=server_environment(doc)).metadata_uri)
    assert uri.scheme == "mongodb" and uri.path == "/zas"
    assert (uri.hostname, uri.port or 27017) == ("mongo", 27017)
    assert "mongo" in doc["services"], "the URI's host is the mongo service"
    assert parse_qs(uri.query)["replicaSet"] == [replica_set]

    test = mongo["healthcheck"]["test"]
    assert test[:2] == ["CMD", "mongosh"] and test[-2] == "--eval"
    script = test[-1]
    member = {"_id": 0, "host": f"{uri.hostname}:{uri.port or 27017}"}

    first = mongo_healthcheck(script, {"state": None})
    assert not first["healthy"]
    assert first["initiated"] == [{"_id": replica_set, "members": [member]}]
    failed = mongo_healthcheck(script, {"state": None, "initiateFails": True})
    assert not failed["healthy"] and "initiate failed" in failed["error"]
    secondary = mongo_healthcheck(script, {"state": 2})
    assert (secondary["healthy"], secondary["initiated"]) == (False, [])
    primary = mongo_healthcheck(script, {"state": 1})
    assert (primary["healthy"], primary["initiated"]) == (True, [])


# ---- both -------------------------------------------------------------------------------------


def test_the_server_starts_only_after_mongo_is_healthy_and_both_have_healthchecks() -> None:
    services = compose()["services"]
    assert services["server"]["depends_on"] == {"mongo": {"condition": "service_healthy"}}
    for name, service in services.items():
        check = service["healthcheck"]
        assert check["test"][0] == "CMD" and not check.get("disable"), name
        for field in ("interval", "timeout", "retries", "start_period"):
            assert field in check, (name, field)


def test_data_lives_in_named_volumes() -> None:
    doc = compose()
    declared = set(doc["volumes"])
    mounts = {
        name: dict(reversed(m.split(":")[:2]) for m in service["volumes"])
        for name, service in doc["services"].items()
    }
    assert set(mounts["server"]) == {DATA_DIR}
    assert set(mounts["mongo"]) == {"/data/db", "/data/configdb"}
    sources = [source for service in mounts.values() for source in service.values()]
    assert len(set(sources)) == len(sources), "one volume for each data directory"
    assert set(sources) == declared, "named volumes (not bind mounts), all declared"
    # The server keeps its data where the volume is: the image's data directory.
    env = server_environment(doc)
    assert not any(name.startswith("ZAS_STORAGE_") for name in env)


def test_containers_run_non_root_read_only_without_privileges() -> None:
    doc = compose()
    for name, service in doc["services"].items():
        uid, _, gid = str(service["user"]).partition(":")
        assert uid.isdigit() and int(uid) != 0 and gid.isdigit(), name
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["cap_drop"] == ["ALL"], name
        assert "privileged" not in service and "cap_add" not in service, name
    assert doc["services"]["server"]["user"].endswith(":0"), "group 0, as OpenShift runs it"
    internal = {name for name, net in doc["networks"].items() if (net or {}).get("internal")}
    assert set(doc["services"]["mongo"]["networks"]) <= internal, "MongoDB has no way out"
    assert set(doc["services"]["server"]["networks"]) - internal, "the server is reachable"
