"""JSON (or text) logs with the request id on every line.

The request id lives in a context variable set by the API layer, so any log call made while
serving a request — in handlers, services or stores — carries it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}
# Never log these, whatever a caller passes in ``extra``.
_SECRET_NAMES = ("password", "secret", "token", "authorization", "signature")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


# Whether a field name is a secret's, by name (the same few names come on every line).
_SECRET_KEY: dict[str, bool] = {}


def _is_secret(key: str) -> bool:
    secret = _SECRET_KEY.get(key)
    if secret is None:
        secret = any(s in key.lower() for s in _SECRET_NAMES)
        if len(_SECRET_KEY) < 4096:  # names come from code, but never grow without bound
            _SECRET_KEY[key] = secret
    return secret


def _scrub(key: str, value: object) -> object:
    return "[redacted]" if _is_secret(key) else value


# One encoder for every line (``json.dumps(..., default=str)`` builds a new one per call).
_ENCODER = json.JSONEncoder(default=str)
_second: tuple[int, str] = (-1, "")


def _utc_second(created: float) -> str:
    """``2026-12-05T11:22:33`` of a record's time, formatted once per second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return _second[1]


def log_fields(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    """``logger.log(level, msg, extra=fields)`` without looking up the caller's file and line
    (a walk up the stack for every line, which no formatter here prints): for the lines
    written on every request (access, audit)."""
    if logger.isEnabledFor(level):
        logger.handle(logger.makeRecord(logger.name, level, "", 0, msg, (), None, extra=fields))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{_utc_second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # tells the worker processes apart
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """What a caller passed in ``extra`` (scrubbed), without the standard attributes."""
    return {
        key: _scrub(key, value)
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and key != "request_id" and not key.startswith("_")
    }


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n')) else text


def _flat(fields: dict[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    """Nested mappings as dotted keys: ``audit.action=s3:PutObject``."""
    out: list[tuple[str, object]] = []
    for key, value in fields.items():
        if isinstance(value, dict) and value:
            out.extend(_flat(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", _scrub(key, value)))
    return out


# The access log's fields, in the order a person reads them (the rest follow as key=value).
_ACCESS = ("method", "path", "status", "duration_ms", "bytes_in", "bytes_out", "principal")


class TextFormatter(logging.Formatter):
    """One line for people: time, level, logger, [request id], message, then every field the
    JSON line has, as key=value; access lines read ``GET /b/k 200 1.9ms in=0 out=252 …``."""

    def format(self, record: logging.LogRecord) -> str:
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        rid = getattr(record, "request_id", None) or "-"
        fields = _fields(record)
        line = f"{when}.{int(record.msecs):03d}Z {record.levelname} {record.name} [{rid}] "
        if record.name.endswith(".access") and {"method", "path", "status"} <= fields.keys():
            method, path, status = (fields.pop(k) for k in ("method", "path", "status"))
            line += f"{method} {_text_value(path)} {status}"
            if "duration_ms" in fields:
                line += f" {fields.pop('duration_ms')}ms"
            for key in _ACCESS[4:]:
                if key in fields:
                    line += f" {key.removeprefix('bytes_')}={_text_value(fields.pop(key))}"
        else:
            line += record.getMessage()
        for key, value in _flat(fields):
            line += f" {key}={_text_value(value)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "info", fmt: str = "json", output: str | None = None) -> None:
    """Install one handler on the root logger (idempotent)."""
    stream: TextIO = open(output, "a", buffering=1) if output else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel({"warn": "WARNING"}.get(level, level.upper()))
    # Tornado's own access log is replaced by ours (see api/base.py: log_request).
    logging.getLogger("tornado.access").propagate = False
