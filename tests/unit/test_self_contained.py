"""A clone anywhere passes its tests: nothing the tests, the docs or the build read lies
outside the repository (the Sigstore test data once lived in a folder beside it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\.\./shared|shared/testdata|parents\[(?:[3-9])\]\s*/\s*[\"']shared")


def tracked() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [REPO / line for line in out.splitlines()]


def test_nothing_points_outside_the_repository() -> None:
    offenders = []
    for path in tracked():
        if path.suffix not in (".py", ".md", ".sh", ".yml", ".yaml", ".toml") and path.name not in (
            "Makefile",
            "Containerfile",
        ):
            continue
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_pattern_finds_what_it_guards_against() -> None:
    assert OUTSIDE.search('DATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"')
    assert OUTSIDE.search("see ../" + "shared/DESIGN.md")
    assert not OUTSIDE.search("tests/fixtures/data/sigstore")
