"""Timestamps as the APIs show and accept them: RFC 3339 UTC with milliseconds."""

from __future__ import annotations

import datetime as dt
import time


def iso_time(ts: float) -> str:
    """``1700000000.5`` → ``2023-11-14T22:13:20.500Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def parse_time(text: str) -> float:
    """RFC 3339 (``2026-11-28T16:00:00Z``, offsets allowed; no offset means UTC) or Unix
    seconds → Unix seconds. Raises ValueError."""
    try:
        return float(text)
    except ValueError:
        pass
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
