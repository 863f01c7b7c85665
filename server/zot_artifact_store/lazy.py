"""Modules imported on first use, so a worker that never needs a heavy stack never loads it.

The supply-chain stack (sigstore, securesystemslib), JWT (joserfc) and botocore's SigV2
signer are most of a worker's memory and start-up time, and many servers never touch them
(issue 23: idle RSS, time to ready). Instead of ``from sigstore.models import Bundle`` at the
top of a module, write::

    from ..lazy import lazy_module

    sigstore_models = lazy_module("sigstore.models")
    ...
    bundle = sigstore_models.Bundle.from_json(body)  # imported here, on first use

and, for annotations, import the names under ``typing.TYPE_CHECKING``. The module is imported
(under Python's import lock, so threads are safe) by the first attribute read; each attribute
is then kept on the proxy, so later reads cost a plain attribute lookup. An ``except
module.Error`` clause is evaluated only when an exception reaches it, so it imports nothing
on the happy path.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A stand-in for module ``name`` that imports it when an attribute is first read."""

    def __init__(self, name: str) -> None:
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attr: str) -> Any:
        # Called only for attributes not yet cached in the proxy's __dict__.
        if attr.startswith("__"):  # copy, pickle, inspect: not a module attribute lookup
            raise AttributeError(attr)
        value = getattr(self.module(), attr)
        self.__dict__[attr] = value
        return value

    def module(self) -> ModuleType:
        """The real module (imported now if it was not yet)."""
        return importlib.import_module(self.__dict__["_lazy_name"])

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_lazy_name']!r}>"


def lazy_module(name: str) -> Any:
    """A proxy for module ``name`` that imports it on first attribute access (typed ``Any``:
    annotate with the real names imported under ``TYPE_CHECKING``)."""
    return LazyModule(name)


__all__ = ["LazyModule", "lazy_module"]
