"""JSON from outside the server (request bodies, tokens, evidence), parsed with a depth limit.

``json.loads`` recurses once per nested array or object: a few thousand ``[`` make it raise
``RecursionError`` (a 500 with a traceback), and libraries that walk the parsed value recurse
again. :func:`loads` first measures the nesting without recursion and refuses anything deeper
than :data:`MAX_JSON_DEPTH` with :class:`JSONTooDeep`, a ``ValueError``, so every caller that
already turns invalid JSON into its API's error (``MalformedJSON``, ``ManifestInvalid``,
``InvalidEvidence``…) does the same for it. Every parse of client-supplied JSON goes through
here; JSON the server wrote itself (metadata rows, policies it validated) need not.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 64

# A JSON string (escapes included): its brackets are text, not structure.
_STRING_BYTES = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_KEEP = b"[]{}"
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_SQUARE = bytes.maketrans(b"{}", b"[]")


class JSONTooDeep(ValueError):
    """The document nests arrays/objects deeper than the limit (or leaves brackets open)."""


def check_depth(data: bytes | bytearray | str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JSONTooDeep` if ``data`` nests deeper than ``max_depth``, without
    recursing and in time linear in its size (for ``max_depth`` fixed)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # cannot nest deeper than the brackets it has
    brackets = _STRING_BYTES.sub(b"", raw).translate(_SQUARE, _DROP)
    # Each pass removes the innermost level everywhere ("[[][]]" → "[]" → "").
    for _ in range(max_depth):
        if not brackets:
            return
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break  # no pair left: unbalanced, which the parser reports
        brackets = shorter
    if b"[]" in brackets:
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")
    if brackets.count(b"[") > max_depth:  # "[[[[…" never closed: as deep for the parser
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")


def loads(data: bytes | bytearray | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for client-supplied JSON: ValueError (:class:`JSONTooDeep` among them)
    for anything invalid, never RecursionError."""
    check_depth(data, max_depth)
    try:
        return json.loads(data)
    except RecursionError:  # only reachable with a max_depth near the interpreter's limit
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels") from None
