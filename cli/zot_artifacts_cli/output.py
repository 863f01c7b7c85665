"""Output: ``table`` for people, ``json`` (stable shapes, documented in docs/cli.md) and
``yaml`` for scripts. Data goes to stdout; progress bars and errors go to stderr."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from zot_artifacts import ObjectInfo

FORMATS = ("table", "json", "yaml")


def plain(value: Any) -> Any:
    """An SDK result as JSON-able data: dataclasses become dicts (``ObjectInfo`` gains its
    ``digest``), lists and dicts are converted item by item."""
    if isinstance(value, ObjectInfo):
        data = dataclasses.asdict(value)
        data["digest"] = value.digest
        return data
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# Spaces at the end of a line, before any closing style codes (kept).
TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$")


def stdout_console() -> Console:
    # Not a terminal (a pipe, a file): wide enough that digests and keys are never cut.
    return Console(width=None if sys.stdout.isatty() else 400, highlight=False)


def emit(fmt: str, data: Any, table: Any = None) -> None:
    """Print ``data`` as JSON or YAML, or ``table`` (a rich renderable or text; by default
    the data as JSON) for the table format."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    elif table is None:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif isinstance(table, str):
        sys.stdout.write(table if table.endswith("\n") else table + "\n")
    else:
        console = stdout_console()
        with console.capture() as captured:
            console.print(table)
        # rich pads every cell to its column's width: no line ends in spaces.
        lines = (TRAILING.sub(r"\1", line) for line in captured.get().splitlines())
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    out = Table(
        *columns, title=title, title_justify="left", box=None, header_style="bold", pad_edge=False
    )
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    return out


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def progress_bar(enabled: bool) -> Progress:
    """Transfer bars on stderr; switched off (nothing drawn) unless stderr is a terminal."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}", table_column=None),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and sys.stderr.isatty()),
        transient=False,
    )
