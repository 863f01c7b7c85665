"""What ``upload`` sends: files, directories (recursively) and globs, as (path, key) pairs."""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

GLOB_CHARS = "*?["
NEW_GLOB = sys.version_info >= (3, 11)  # glob's include_hidden


class SourceError(Exception):
    """A path that names nothing, or two files that would land on the same key."""


def hidden(rel: str) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in rel.split("/"))


def _literal_base(pattern: str) -> Path:
    """The directory before the first wildcard (``dist/**/*.whl`` -> ``dist``)."""
    parts: list[str] = []
    for part in pattern.split("/"):
        if any(c in part for c in GLOB_CHARS):
            break
        parts.append(part)
    return Path("/".join(parts) or ".")


def _walk(directory: Path, base: Path, include_hidden: bool) -> list[tuple[Path, str]]:
    out = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            rel = path.relative_to(base).as_posix()
            if include_hidden or not hidden(path.relative_to(directory).as_posix()):
                out.append((path, rel))
    return out


def collect(paths: list[str], include_hidden: bool = False) -> list[tuple[Path, str]]:
    """(file, relative key) for every PATH: a file is its own name; a directory gives its
    files relative to it; a glob (expanded here when the shell did not, ``**`` any depth)
    gives matches relative to the directory before its first wildcard. Files and directories
    whose name starts with a dot are skipped inside directories and globs unless
    ``include_hidden``; a dotfile named explicitly is sent."""
    found: list[tuple[Path, str]] = []
    for arg in paths:
        path = Path(arg)
        if path.is_file():
            found.append((path, path.name))
        elif path.is_dir():
            found.extend(_walk(path, path, include_hidden))
        elif any(c in arg for c in GLOB_CHARS):
            base = _literal_base(arg.replace(os.sep, "/"))
            options = {"include_hidden": True} if include_hidden and NEW_GLOB else {}
            matches = sorted(glob.glob(arg, recursive=True, **options))
            if not matches:
                raise SourceError(f"{arg}: no file matches")
            for match in matches:
                m = Path(match)
                rel = m.relative_to(base).as_posix() if base != Path(".") else m.as_posix()
                if not include_hidden and hidden(rel):
                    continue
                if m.is_dir():
                    found.extend(_walk(m, base, include_hidden))
                elif m.is_file():
                    found.append((m, rel))
        else:
            raise SourceError(f"{arg}: no such file or directory")
    seen: dict[str, Path] = {}
    for file, rel in found:
        other = seen.get(rel)
        if other is not None and other.resolve() != file.resolve():
            raise SourceError(f"{other} and {file} would both be uploaded as {rel}")
        seen[rel] = file
    return [(file, rel) for rel, file in seen.items()]
