"""Which media types a browser would render or run (api/content_safety.py)."""

from __future__ import annotations

import pytest

from zot_artifact_store.api.content_safety import attachment, is_active


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "TEXT/HTML; charset=utf-8",
        " text/html ",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "application/atom+xml",
        "application/rss+xml",
        "application/javascript",
        "text/javascript; charset=utf-8",
        "application/pdf",
        "",
        "html",
    ],
)
def test_active(content_type: str) -> None:
    assert is_active(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/octet-stream",
        "binary/octet-stream",
        "application/json",
        "application/vnd.oci.image.manifest.v1+json",
        "image/png",
        "text/csv",
        "application/gzip",
    ],
)
def test_inert(content_type: str) -> None:
    assert not is_active(content_type)


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        (None, "attachment"),
        ("inline", "attachment"),
        ('inline; filename="r.html"', 'attachment; filename="r.html"'),
        ('attachment; filename="a.svg"', 'attachment; filename="a.svg"'),
    ],
)
def test_attachment_keeps_the_filename(stored: str | None, sent: str) -> None:
    assert attachment(stored) == sent
