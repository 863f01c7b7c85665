"""Log lines: the text format ("for humans") carries every field the JSON format does."""

from __future__ import annotations

import json
import logging

from zot_artifact_store.observability.logging import JsonFormatter, TextFormatter


def record(name: str, message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
    rec.request_id = "3ed5aa"
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


ACCESS = {
    "method": "PUT",
    "path": "/builds/app 1.0.tar.gz",
    "route": "s3:/{bucket}/{key}",
    "status": 200,
    "duration_ms": 12.5,
    "bytes_in": 4096,
    "bytes_out": 0,
    "remote_ip": "127.0.0.1",
    "principal": "root:admin",
}


def test_an_access_line_reads_like_an_access_log() -> None:
    line = TextFormatter().format(record("zot_artifact_store.access", "request", **ACCESS))
    assert " INFO zot_artifact_store.access [3ed5aa] " in line
    assert line.endswith(
        'PUT "/builds/app 1.0.tar.gz" 200 12.5ms in=4096 out=0 principal=root:admin '
        "route=s3:/{bucket}/{key} remote_ip=127.0.0.1"
    )


def test_other_lines_keep_their_message_and_every_field_as_json_does() -> None:
    rec = record(
        "zot_artifact_store",
        "listening",
        port=8080,
        url="http://0.0.0.0:8080",
        password="hunter2",
        workers={"n": 2, "token": "zat_x"},
    )
    text = TextFormatter().format(rec)
    assert text.endswith(
        "listening port=8080 url=http://0.0.0.0:8080 password=[redacted] workers.n=2 "
        "workers.token=[redacted]"
    )
    entry = json.loads(JsonFormatter().format(rec))
    assert entry["password"] == "[redacted]" and entry["port"] == 8080
    assert "hunter2" not in text and "zat_x" not in text


def test_a_line_without_a_request_says_so_and_carries_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("zot_artifact_store.api", "unhandled", method="GET")
        rec.request_id = None
        rec.exc_info = sys.exc_info()
    text = TextFormatter().format(rec)
    assert "[-] unhandled method=GET\nTraceback" in text and "ValueError: boom" in text
