"""Which query parameters a request may carry: each handler declares, per method, the
parameters it takes (:func:`takes`); :class:`QueryCheckedHandler` refuses every other one with
400 ``UnexpectedQueryParameter`` before the request is authenticated, read or written.

A parameter a route takes for another method is refused too (``?metadata=true`` reads an
object's metadata on GET; on PUT or DELETE it would otherwise be ignored and the bytes replaced
or the object deleted). Parameters the authenticators read (presigned ``/v1`` URLs, SigV4
presigned URLs) are accepted wherever authentication reads them, and judged by it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import ClassVar

import tornado.web

from ..auth.presign import EXPIRES, PRINCIPAL, SHA256, SIGNATURE, SIZE
from ..errors import StoreError
from .base import BaseHandler

QueryParameters = Mapping[str, frozenset[str]]

# The parameters that make the authenticators read the query (auth/presign.py
# Presigner.verify, auth/sigv4.py verify_request): with one of them present the authenticator
# checks the others of its kind (and a signature covers every parameter of the URL).
PRESIGN_PARAMETERS = frozenset({EXPIRES, PRINCIPAL, SIGNATURE, SHA256, SIZE})
SIGV4_TRIGGERS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})
_MAX_NAMED = 10  # at most this many refused names in a message
_MAX_NAME = 64  # characters of each


def takes(**methods: Iterable[str]) -> QueryParameters:
    """A handler's declaration: ``takes(GET=("prefix", "limit"), DELETE=("recursive",))``.
    A method not named takes no query parameter."""
    return {method.upper(): frozenset(names) for method, names in methods.items()}


def authentication_parameters(path: str, names: Collection[str]) -> set[str]:
    """The names among ``names`` that authentication reads for a request to ``path``."""
    accepted: set[str] = set()
    if SIGNATURE in names and path.startswith("/v1/"):
        accepted |= PRESIGN_PARAMETERS & set(names)
    if SIGV4_TRIGGERS & set(names):
        accepted |= {n for n in names if n.lower().startswith("x-amz-")}
    return accepted


def unexpected_parameters(
    declared: QueryParameters, method: str, path: str, names: Collection[str]
) -> list[str]:
    """The names a ``method`` request to ``path`` may not carry, sorted."""
    allowed = declared.get(method.upper(), frozenset())
    auth = authentication_parameters(path, names)
    return sorted(n for n in names if n not in allowed and n not in auth)


def refusal(declared: QueryParameters, method: str, route: str, names: list[str]) -> StoreError:
    """The 400 for ``names`` on ``method route``: each name, the methods of this route that
    do take it, and what this method takes."""
    method = method.upper()
    described = []
    for name in names[:_MAX_NAMED]:
        shown = name if len(name) <= _MAX_NAME else name[:_MAX_NAME] + "…"
        elsewhere = sorted(m for m, params in declared.items() if name in params)
        described.append(
            repr(shown) + (f" (a {'/'.join(elsewhere)} parameter here)" if elsewhere else "")
        )
    if len(names) > _MAX_NAMED:
        described.append(f"and {len(names) - _MAX_NAMED} more")
    accepted = sorted(declared.get(method, ()))
    plural = "s" if len(names) > 1 else ""
    return StoreError(
        "UnexpectedQueryParameter",
        f"{method} {route} does not take the query parameter{plural} {', '.join(described)}; "
        f"it takes {', '.join(accepted) if accepted else 'none'}",
        detail={"unexpected": names[:_MAX_NAMED], "accepted": accepted},
    )


class QueryCheckedHandler(BaseHandler):
    """A handler whose methods take only the query parameters ``query_parameters`` declares
    (:func:`takes`). :meth:`check_query` runs first in ``prepare``: nothing has been
    authenticated, read or written when a request is refused."""

    query_parameters: ClassVar[QueryParameters] = {}

    def check_query(self) -> None:
        method = (self.request.method or "GET").upper()
        implemented = getattr(type(self), method.lower(), None)
        if implemented is getattr(tornado.web.RequestHandler, method.lower(), None):
            return  # Tornado answers 405 for a method the handler does not have
        names = self.request.query_arguments.keys()
        unexpected = unexpected_parameters(self.query_parameters, method, self.request.path, names)
        if unexpected:
            raise refusal(self.query_parameters, method, self.route, unexpected)

    async def prepare(self) -> None:
        self.check_query()
