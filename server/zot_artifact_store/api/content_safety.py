"""Object bytes are served so that a browser never runs them as a page of the store's origin.

Anyone who may upload could otherwise publish HTML or SVG with a script in it, and a link to
it would run that script with the store's origin: its UI session, its cookies, its API. So
every object download (S3 GetObject/HeadObject, ``/v1`` object reads) carries:

- ``Content-Security-Policy: sandbox``: a document rendered from it gets an opaque origin and
  runs no script, submits no form, opens no popup;
- for an *active* type (:data:`ACTIVE_TYPES`: what a browser renders as a document or runs as
  a script), ``Content-Disposition: attachment``: the browser saves the file instead of
  showing it; a stored ``filename`` parameter is kept.

A bucket whose ``web`` setting is on (``PUT /v1/buckets/{name} {"web": true}``, off by
default) serves active types inline, as a static site (test reports, docs) needs, still in a
sandbox with an opaque origin (:data:`WEB_CSP`): its scripts run, but cannot read the store's
cookies or storage or call it with the viewer's credentials. ``X-Content-Type-Options:
nosniff`` (on every response, see :class:`..base.BaseHandler`) stops a browser from guessing
an active type for bytes declared as something else.
"""

from __future__ import annotations

DOWNLOAD_CSP = "sandbox"
WEB_CSP = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"

# Media types a browser renders as a document or runs (essence, lower case). Besides these,
# every ``…/xml`` and ``…+xml`` type counts: XML documents may carry XHTML, SVG or XSLT.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "application/xslt+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/ecmascript",
        "application/ecmascript",
        "text/jscript",
        "text/vbscript",
        "application/pdf",
        "application/x-shockwave-flash",
        "multipart/x-mixed-replace",
        "text/cache-manifest",
    }
)


def media_essence(content_type: str) -> str:
    """``Text/HTML; charset=utf-8`` → ``text/html``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_active(content_type: str) -> bool:
    """Would a browser render or run a body of this type? An empty or unparsable type too:
    a browser would sniff it (``nosniff`` does not stop every such guess)."""
    essence = media_essence(content_type)
    if "/" not in essence:
        return True
    return essence in ACTIVE_TYPES or essence.endswith(("+xml", "/xml"))


def attachment(disposition: str | None) -> str:
    """``attachment``, keeping the parameters (``filename=…``) of ``disposition``."""
    params = (disposition or "").partition(";")[2].strip()
    return f"attachment; {params}" if params else "attachment"
