"""Repositories → tags → a manifest or index: platforms, config, layers, referrers, evidence
and pull commands."""

from __future__ import annotations

import json
import urllib.parse
from shlex import quote
from typing import Any

from ...errors import StoreError
from .base import DEFAULT_PAGE_SIZE, PAGE_SIZES, UIHandler

SCAN_LIMIT = 5000  # catalog names looked at per page (a visitor may pull few of many)


class RepositoriesHandler(UIHandler):
    """``/ui/repositories?after=``: the repositories the visitor may pull."""

    async def get(self) -> None:
        after = self.get_query_argument("after", None) or None
        limit = self.int_arg("limit", DEFAULT_PAGE_SIZE, 1, PAGE_SIZES[-1])
        shown: list[str] = []
        scanned, last, more = 0, after, True
        while more and len(shown) < limit and scanned < SCAN_LIMIT:
            names, more = await self.ctx.registry.catalog(last, min(500, SCAN_LIMIT - scanned))
            for name in names:
                last = name
                scanned += 1
                if await self.allowed("oci:pull", f"repo:{name}"):
                    shown.append(name)
                    if len(shown) == limit:
                        more = more or name != names[-1]
                        break
            if not names:
                more = False
        self.page("repositories.html", names=shown, next_after=last if more else None, limit=limit)


class TagsHandler(UIHandler):
    """``/ui/repositories/tags?name=&after=``: a repository's tags."""

    async def get(self) -> None:
        name = self.get_query_argument("name", "")
        await self.authorize("oci:pull", f"repo:{name}")
        after = self.get_query_argument("after", None) or None
        limit = self.int_arg("limit", DEFAULT_PAGE_SIZE, 1, PAGE_SIZES[-1])
        tags, more = await self.ctx.registry.tags(name, after, limit)
        self.page(
            "tags.html", name=name, tags=tags, next_after=tags[-1] if more and tags else None,
            limit=limit,
        )  # fmt: skip


def registry_host(base_url: str) -> tuple[str, bool]:
    """(host[:port] registry clients name images with, whether it speaks plain HTTP)."""
    parts = urllib.parse.urlsplit(base_url)
    return parts.netloc, parts.scheme == "http"


def pull_commands(base_url: str, name: str, digest: str) -> list[tuple[str, str]]:
    host, plain = registry_host(base_url)
    ref = f"{host}/{name}@{digest}"
    tls = " --src-tls-verify=false" if plain else ""
    oras_plain = " --plain-http" if plain else ""
    return [
        (
            "skopeo",
            f"skopeo copy{tls} {quote('docker://' + ref)} {quote('oci:' + name.replace('/', '_'))}",
        ),
        ("oras", f"oras pull{oras_plain} {quote(ref)}"),
        ("oras discover", f"oras discover{oras_plain} {quote(ref)}"),
    ]


class ManifestHandler(UIHandler):
    """``/ui/repositories/manifest?name=&ref=``: a manifest (config, layers) or an index
    (platforms), its referrers and the evidence about it."""

    async def get(self) -> None:
        name = self.get_query_argument("name", "")
        ref = self.get_query_argument("ref", "")
        resource = f"repo:{name}"
        await self.authorize("oci:pull", resource)
        if not ref:
            raise StoreError("InvalidArgument", "which manifest? (the ref query parameter)")
        manifest = await self.ctx.registry.resolve(name, ref)
        try:
            doc: dict[str, Any] = json.loads(await self.ctx.registry.manifest_bytes(manifest))
        except ValueError:
            doc = {}
        layers = doc.get("layers") or doc.get("blobs") or []
        children = doc.get("manifests") or []
        evidence = await self.evidence_of(manifest.digest, resource)
        gate = None
        if evidence is not None:
            gate = await self.ctx.supplychain.repo_gate(name, manifest.digest)
        self.page(
            "manifest.html",
            gate=gate,
            name=name,
            ref=ref,
            manifest=manifest,
            config=doc.get("config") if isinstance(doc.get("config"), dict) else None,
            layers=[d for d in layers if isinstance(d, dict)],
            children=[d for d in children if isinstance(d, dict)],
            total=sum(int(d.get("size", 0)) for d in layers if isinstance(d, dict)),
            annotations=doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {},
            referrers=await self.ctx.registry.referrers(name, manifest.digest, None),
            evidence=evidence,
            commands=pull_commands(self.base_url(), name, manifest.digest),
        )
