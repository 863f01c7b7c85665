"""``zot-artifact-store config schema``: the JSON Schema of the config file, generated from the
model the loader validates with. It is published as docs/config.schema.json, and the schema and
the loader agree on every documented example and on bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from zot_artifact_store.config import Config, ConfigError, config_schema, load_config

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "docs" / "config.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(config_schema())


# What the loader checks beyond the file's shape: files a config names exist on this machine.
MISSING_FILE = re.compile(r"does not exist|cannot read")


def loads(data: dict[str, Any], tmp_path: Path) -> bool:
    """The loader takes it (a file it names being absent here is not the config's fault)."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        return all(MISSING_FILE.search(problem) for problem in exc.problems)
    return True


def test_the_published_schema_is_the_generated_one() -> None:
    jsonschema.Draft202012Validator.check_schema(config_schema())
    fix = "zot-artifact-store config schema > docs/config.schema.json"
    assert json.loads(PUBLISHED.read_text()) == config_schema(), f"stale; run: {fix}"


def documented_configs() -> list[tuple[str, dict[str, Any]]]:
    """Every YAML block in the docs whose top-level keys are config sections."""
    sections = set(Config.model_fields)
    found = []
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        for n, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            try:
                data = yaml.safe_load(block)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and data and set(data) <= sections:
                found.append((f"{doc.name}#{n}", data))
    return found


@pytest.mark.parametrize(("where", "data"), documented_configs(), ids=lambda v: str(v)[:40])
def test_documented_configs_pass_the_schema_and_the_loader(
    where: str, data: dict[str, Any], tmp_path: Path
) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(data)]
    assert not errors, (where, errors)
    assert loads(data, tmp_path), where


def test_there_are_documented_configs() -> None:
    assert len(documented_configs()) >= 2


GOOD = [
    {"storage": {"gcDelay": "1h30m", "gcInterval": 90}},
    {"storage": {"gcDelay": "500ms"}, "http": {"shutdownTimeout": "90"}},
    {"http": {"address": "0.0.0.0", "port": 9000}, "log": {"format": "text"}},
]
BAD = [
    {"http": {"adress": "0.0.0.0"}},  # unknown field
    {"storage": {"gcDelay": "1 h"}},  # not a duration
    {"storage": {"gcDelay": -5}},
    {"http": {"port": 99999}},
    {"log": {"level": "loud"}},
]


@pytest.mark.parametrize("data", GOOD, ids=str)
def test_both_accept(data: dict[str, Any], tmp_path: Path) -> None:
    assert VALIDATOR.is_valid(data) and loads(data, tmp_path)


@pytest.mark.parametrize("data", BAD, ids=str)
def test_both_refuse(data: dict[str, Any], tmp_path: Path) -> None:
    assert not VALIDATOR.is_valid(data) and not loads(data, tmp_path)
