"""Buckets, their objects by prefix, an object's detail and evidence, and its download."""

from __future__ import annotations

import urllib.parse
from shlex import quote

from ...errors import StoreError
from ...services.artifacts import Listing, decode_token
from ..content_safety import attachment
from .base import DEFAULT_PAGE_SIZE, PAGE_SIZES, UIHandler


class HomeHandler(UIHandler):
    """``/ui/``: the buckets the visitor may list (anonymous: the public ones)."""

    async def get(self) -> None:
        buckets = await self.ctx.authorizer.visible_buckets(
            self.principal, sorted(await self.ctx.artifacts.list_buckets(), key=lambda b: b.name)
        )
        # A bucket's verification gate, where the visitor may read it (as /v1 decides).
        gates = {
            b.name: b.settings.get("verification")
            for b in buckets
            if b.settings.get("verification") and await self.allowed("supplychain:read", b.name)
        }
        self.page("home.html", buckets=buckets, gates=gates)


def crumbs(prefix: str) -> list[tuple[str, str]]:
    """``a/b/`` → [("a/", "a/"), ("b/", "a/b/")]: each folder of a prefix and its prefix."""
    out: list[tuple[str, str]] = []
    acc = ""
    for part in prefix.split("/"):
        if not part and acc == prefix:
            break
        last = len(acc) + len(part) >= len(prefix)
        acc += part if last else part + "/"
        out.append((part if last else part + "/", acc))
    return out


class BucketHandler(UIHandler):
    """``/ui/buckets/{bucket}?prefix=&token=&limit=``: one page of objects and folders."""

    async def get(self, bucket: str) -> None:
        await self.authorize("s3:ListBucket", bucket)
        prefix = self.get_query_argument("prefix", "")
        token = self.get_query_argument("token", None)
        limit = self.int_arg("limit", DEFAULT_PAGE_SIZE, 1, PAGE_SIZES[-1])
        listing: Listing = await self.ctx.artifacts.list_objects(
            bucket,
            prefix=prefix,
            delimiter="/",
            start_after=decode_token(token) if token else None,
            limit=limit,
        )
        self.page(
            "bucket.html",
            bucket=bucket,
            prefix=prefix,
            crumbs=crumbs(prefix),
            listing=listing,
            limit=limit,
            paged=token is not None,
        )


class ObjectHandler(UIHandler):
    """``/ui/buckets/{bucket}/object?key=``: an object's metadata, commands and evidence."""

    async def get(self, bucket: str) -> None:
        key = self.get_query_argument("key", "")
        if not key:
            raise StoreError("InvalidArgument", "which object? (the key query parameter)")
        resource = f"{bucket}/{key}"
        await self.authorize("s3:GetObject", resource)
        record = await self.ctx.artifacts.head_object(bucket, key)
        evidence = await self.evidence_of(record.digest, resource)
        gate = None if evidence is None else await self.ctx.supplychain.gate(bucket, record.digest)
        base = self.base_url()
        path = urllib.parse.quote(key, safe="/")
        self.page(
            "object.html",
            bucket=bucket,
            record=record,
            evidence=evidence,
            gate=gate,
            commands=object_commands(base, bucket, key, path),
        )


def object_commands(base: str, bucket: str, key: str, path: str) -> list[tuple[str, str]]:
    """Shell commands that fetch an object, each argument quoted for a POSIX shell."""
    name = key.rsplit("/", 1)[-1] or "object"
    url = f"{base}/v1/buckets/{bucket}/objects/{path}"
    return [
        (
            "curl",
            f'curl -fL -H "Authorization: Bearer $ZOT_ARTIFACTS_TOKEN" -o {quote(name)} '
            f"{quote(url)}",
        ),
        (
            "zot-artifacts",
            f"zot-artifacts --url {quote(base)} download {quote(f'{bucket}/{key}')}",
        ),
        ("aws", f"aws --endpoint-url {quote(base)} s3 cp {quote(f's3://{bucket}/{key}')} ."),
    ]


class DownloadHandler(UIHandler):
    """``/ui/buckets/{bucket}/download?key=``: the object's bytes, always as an attachment
    (never rendered in the UI's origin), after the same checks as a ``/v1`` download
    (authorization, the bucket's verification gate)."""

    async def get(self, bucket: str) -> None:
        key = self.get_query_argument("key", "")
        if not key:
            raise StoreError("InvalidArgument", "which object? (the key query parameter)")
        await self.authorize("s3:GetObject", f"{bucket}/{key}")
        record = await self.ctx.artifacts.head_object(bucket, key)
        name = key.rsplit("/", 1)[-1] or "download"
        self.set_header("Content-Type", record.content_type)
        self.set_header(
            "Content-Disposition",
            attachment(f"attachment; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"),
        )
        self.set_header("X-Checksum-Sha256", record.digest.removeprefix("sha256:"))
        await self.send_object(record, None, send_body=self.request.method != "HEAD")

    async def head(self, bucket: str) -> None:  # type: ignore[override]
        await self.get(bucket)
