"""The error catalogue: every code is documented with its likely causes and the fix, the
problem JSON's ``type`` links to that section, and problem JSON has the promised shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zot_artifact_store.errors import CATALOGUE, PROBLEM_TYPE_BASE, StoreError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "errors.md"
# A section: the explicit anchor, then the heading naming the same code.
SECTION_RE = re.compile(r'^<a id="([^"]+)"></a>\n### (\S+)\n', re.M)
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")


def sections() -> dict[str, str]:
    """Code → the text of its section (up to the next section or heading of level ≤ 2)."""
    text = DOC.read_text()
    matches = list(SECTION_RE.finditer(text))
    out: dict[str, str] = {}
    for i, match in enumerate(matches):
        anchor, heading = match.groups()
        assert anchor == heading, f"the anchor {anchor!r} heads the section of {heading!r}"
        assert anchor not in out, f"two sections for {anchor}"
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end]
        out[anchor] = re.split(r"^#{1,2} ", body, maxsplit=1, flags=re.M)[0]
    return out


def part(body: str, title: str, following: str | None) -> str:
    """The text between ``**title**`` and ``**following**`` (or the end)."""
    _, sep, rest = body.partition(f"**{title}**")
    assert sep, f"no **{title}** part"
    if following is not None:
        rest, sep, _ = rest.partition(f"**{following}**")
        assert sep, f"no **{following}** part after **{title}**"
    return rest.strip()


def slugs(path: Path) -> set[str]:
    """The anchors a Markdown file offers: explicit ``id``s and GitHub's heading slugs (outside
    fenced code)."""
    text = path.read_text()
    found = set(re.findall(r'<a id="([^"]+)"></a>', text))
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            heading = m.group(1).strip().lower().replace("`", "")
            found.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return found


def test_every_code_is_documented() -> None:
    text = DOC.read_text()
    missing = [code for code in CATALOGUE if f"`{code}`" not in text]
    assert not missing, f"add these codes to docs/errors.md: {missing}"


def test_every_code_has_a_section_with_causes_and_fix() -> None:
    found = sections()
    missing = [code for code in CATALOGUE if code not in found]
    assert not missing, f'add <a id="CODE"></a> / ### CODE sections to docs/errors.md: {missing}'
    for code in CATALOGUE:
        body = found[code]
        causes = part(body, "Likely causes", "Fix")
        fix = part(body, "Fix", None)
        assert causes.startswith("- ") and len(causes) > 40, f"{code}: say what leads to it"
        assert fix.startswith("- ") and len(fix) > 20, f"{code}: say what to do"


def test_every_section_names_a_code_of_the_catalogue() -> None:
    stale = sorted(set(sections()) - set(CATALOGUE))
    assert not stale, f"docs/errors.md has sections for codes that do not exist: {stale}"


def test_the_summary_table_links_each_code_to_its_section() -> None:
    rows = re.findall(r"^\| \[`(\w+)`\]\(#(\w+)\) \| (\d{3}) \| (yes|no) \|", DOC.read_text(), re.M)
    codes = [r[0] for r in rows]
    assert len(codes) == len(set(codes)), "one table row per code"
    assert set(codes) == set(CATALOGUE), set(codes) ^ set(CATALOGUE)
    for code, target, status, retryable in rows:
        spec = CATALOGUE[code]
        assert target == code, f"the row of {code} links to #{target}"
        assert int(status) == spec.status, code
        assert (retryable == "yes") == spec.retryable, code


def test_links_resolve() -> None:
    """Every link in docs/errors.md to an anchor, here or in another document, leads to one."""
    text = DOC.read_text()
    broken = []
    for target in LINK_RE.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, fragment = target.partition("#")
        file = (DOC.parent / path).resolve() if path else DOC
        if not file.exists():
            broken.append(target)
        elif fragment and file.suffix == ".md" and fragment not in slugs(file):
            broken.append(target)
    assert not broken, f"links in docs/errors.md that lead nowhere: {broken}"


def test_problem_type_links_to_the_codes_section() -> None:
    anchors = slugs(DOC)
    containerfile = (ROOT / "Containerfile").read_text()
    source = re.search(r"^ARG SOURCE=(\S+)$", containerfile, re.M)
    assert source, "the Containerfile names the repository (org.opencontainers.image.source)"
    assert PROBLEM_TYPE_BASE == f"{source.group(1)}/blob/main/docs/errors.md#"
    for code in CATALOGUE:
        body = StoreError(code).problem()
        assert body["type"].endswith(f"errors.md#{code}")
        assert body["type"].rpartition("#")[2] in anchors, code


def test_problem_shape() -> None:
    err = StoreError("NoSuchKey", "object 'k' does not exist", resource="b/k")
    body = err.problem("rid-1")
    assert body["status"] == 404 and body["code"] == "NoSuchKey"
    assert body["retryable"] is False
    assert body["instance"] == "b/k" and body["request_id"] == "rid-1"
    assert StoreError("ServiceUnavailable").retryable is True


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        StoreError("NoSuchThing")
