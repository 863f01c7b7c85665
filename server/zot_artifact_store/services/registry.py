"""The OCI registry (distribution-spec v1.1): repositories, blobs, uploads, manifests, tags,
referrers. No Tornado here.

Blobs are the one content-addressed blob store that S3 objects use too, so a layer pushed
twice, or also uploaded as an object, is stored once. Manifests are stored as blobs (their
exact bytes) plus a metadata record (media type, subject, what they reference); tags point at
manifest digests. Upload sessions are a metadata record plus, from the first chunk on, a
blob-store upload session, so any replica can continue an upload another one started. A blob
pushed whole (``POST ?digest=`` with the body, or ``PUT ?digest=`` with the body on a session
that has received nothing yet, as most clients push small blobs) streams straight into an
ordinary blob write committed on its digest: no blob-store session at all.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from .. import jsonbody
from ..errors import StoreError
from ..metadata import SUPPLYCHAIN_GENERATION, Manifest, MetadataStore, RegistryUpload, Tag
from ..storage import (
    BlobInfo,
    BlobStore,
    BlobWriter,
    DigestMismatchError,
    UploadNotFoundError,
    is_digest,
)
from .notify import NULL_NOTIFIER, Notifier
from .space import StorageSpace

NAME_RE = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
MAX_NAME = 255
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MANIFEST_CACHE_BYTES = 32 * 1024 * 1024
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MANIFEST_TYPES = INDEX_TYPES | {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
EMPTY_INDEX = "application/vnd.oci.image.index.v1+json"


def validate_name(name: str) -> None:
    if len(name) > MAX_NAME or not NAME_RE.fullmatch(name):
        raise StoreError("NameInvalid", f"invalid repository name {name!r}")


def validate_digest(digest: str) -> None:
    if not is_digest(digest):
        raise StoreError("DigestInvalid", f"invalid digest {digest!r}")


def is_tag(reference: str) -> bool:
    return bool(TAG_RE.fullmatch(reference))


def _descriptor_digests(doc: dict[str, Any], key: str) -> list[str]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise StoreError("ManifestInvalid", f"{key} must be a list of descriptors")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            raise StoreError("ManifestInvalid", f"a descriptor in {key} has no digest")
        if not is_digest(item["digest"]):
            raise StoreError("ManifestInvalid", f"malformed digest {item['digest']!r} in {key}")
        out.append(item["digest"])
    return out


class RegistryService:
    def __init__(
        self, metadata: MetadataStore, blobs: BlobStore, space: StorageSpace | None = None
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        # The free-space policy blob uploads are checked against (None: no check).
        self.space = space
        self._manifest_cache: OrderedDict[str, bytes] = OrderedDict()
        self._manifest_cache_bytes = 0
        # Outbound webhooks (services/webhooks.py): image.pushed, image.deleted.
        self.notify: Notifier = NULL_NOTIFIER

    # ---- blobs --------------------------------------------------------------------------
    async def blob_size(self, name: str, digest: str) -> int:
        """The size of a blob of ``name``: pushed or mounted there, and still stored."""
        validate_name(name)
        validate_digest(digest)
        stat = await self.blobs.stat(digest)
        if stat is None or not await self.metadata.is_blob_linked(name, digest):
            raise StoreError("BlobUnknown", f"blob {digest} is unknown", resource=name)
        return stat.size

    async def mount(self, name: str, source: str, digest: str) -> bool:
        """Link ``source``'s blob into ``name``; False when ``source`` does not have it."""
        validate_name(name)
        try:
            await self.blob_size(source, digest)
        except StoreError as exc:
            if exc.code in ("BlobUnknown", "NameInvalid"):
                return False
            raise
        await self.metadata.link_blob(name, digest)
        return True

    async def delete_blob(self, name: str, digest: str) -> None:
        """Remove the blob from ``name``; the bytes go at GC once nothing else uses them."""
        validate_name(name)
        validate_digest(digest)
        if not await self.metadata.unlink_blob(name, digest):
            raise StoreError("BlobUnknown", f"blob {digest} is unknown", resource=name)

    def read_blob(self, digest: str, start: int, end: int) -> AsyncIterator[bytes]:
        return self.blobs.read(digest, start, end)

    async def blob_url(self, digest: str, expires: int) -> str | None:
        """A URL the backend signed for ``expires`` seconds that serves the blob's bytes (the
        caller authorized the pull and checked the repository has it), or None when the
        backend gives none."""
        return await self.blobs.presign(digest, expires)

    async def send_blob_to_socket(self, digest: str, sock_fd: int, start: int, end: int) -> int:
        """Bytes ``[start, end)`` of a blob straight to a plain socket, as far as that goes
        quickly (``BlobStore.send_to_socket``); the caller streams the rest."""
        return await self.blobs.send_to_socket(digest, sock_fd, start, end)

    # ---- uploads ------------------------------------------------------------------------
    async def start_upload(self, name: str) -> RegistryUpload:
        """A new upload: its metadata record only. The blob-store session that collects
        chunks is made by the first chunk (:meth:`open_session`); an upload finished by one
        ``PUT`` with the whole body never has one (:meth:`blob_writer`)."""
        validate_name(name)
        upload = RegistryUpload(secrets.token_hex(16), name, "", time.time())
        await self.metadata.create_registry_upload(upload)
        return upload

    async def open_session(self, upload: RegistryUpload) -> RegistryUpload:
        """``upload`` with a blob-store session to append chunks to, made now when it has
        none yet. Two replicas racing to make it agree on one (the metadata record decides)."""
        if upload.session_id:
            return upload
        session = await self.blobs.upload_create()
        winner = await self.metadata.set_registry_upload_session(upload.upload_id, session)
        if winner != session:
            await self.blobs.upload_abort(session)
        if winner is None:
            raise StoreError("BlobUploadUnknown", f"upload {upload.upload_id!r} is unknown")
        upload.session_id = winner
        return upload

    async def get_upload(self, name: str, upload_id: str) -> RegistryUpload:
        validate_name(name)
        upload = await self.metadata.get_registry_upload(upload_id)
        if upload is None or upload.repo != name:
            raise StoreError("BlobUploadUnknown", f"upload {upload_id!r} is unknown")
        return upload

    async def upload_size(self, upload: RegistryUpload) -> int:
        if not upload.session_id:
            return 0
        try:
            return await self.blobs.upload_size(upload.session_id)
        except UploadNotFoundError:
            raise StoreError("BlobUploadUnknown", "the upload's data is gone") from None

    async def check_space(self, size: int | None) -> None:
        """Refuse (``InsufficientStorage``) a chunk of ``size`` bytes (None: not declared)
        that would not fit or would eat into the free-space reserve (:mod:`.space`)."""
        if self.space is not None:
            await self.space.check_write(size)

    async def append(self, upload: RegistryUpload, chunks: AsyncIterator[bytes]) -> int:
        try:
            return await self.blobs.upload_append(upload.session_id, chunks)
        except UploadNotFoundError:
            raise StoreError("BlobUploadUnknown", "the upload's data is gone") from None

    async def finish_upload(self, upload: RegistryUpload, digest: str) -> BlobInfo:
        validate_digest(digest)
        try:
            info = await self.blobs.upload_finalize(upload.session_id, digest)
        except DigestMismatchError as exc:
            raise StoreError(
                "DigestInvalid", f"the upload's digest is {exc.actual}, not {exc.expected}"
            ) from None
        except UploadNotFoundError:
            raise StoreError("BlobUploadUnknown", "the upload's data is gone") from None
        await self._link_and_end(upload.repo, info.digest, upload)
        return info

    async def blob_writer(self, digest: str) -> BlobWriter:
        """A blob pushed whole in one request: stream its body into this write (the same
        hashed write an S3 PUT uses), then :meth:`commit_blob` on ``digest``."""
        validate_digest(digest)
        return await self.blobs.writer()

    async def commit_blob(
        self, name: str, writer: BlobWriter, digest: str, upload: RegistryUpload | None = None
    ) -> BlobInfo:
        """Commit a whole-blob write on ``digest`` (durable before this returns) and link it
        into ``name``; ``upload``, the session it was pushed to, ends. A digest that does not
        match stores nothing and leaves ``upload`` as it was (empty: the client may retry)."""
        try:
            info = await writer.commit(digest)
        except DigestMismatchError as exc:
            raise StoreError(
                "DigestInvalid", f"the blob's digest is {exc.actual}, not {exc.expected}"
            ) from None
        await self._link_and_end(name, info.digest, upload)
        return info

    async def _link_and_end(self, name: str, digest: str, upload: RegistryUpload | None) -> None:
        """Link the committed blob into ``name`` and drop ``upload``'s record: two metadata
        writes sent together (one trip to the metadata thread, not two in a row)."""
        if upload is None:
            await self.metadata.link_blob(name, digest)
            return
        await asyncio.gather(
            self.metadata.link_blob(name, digest),
            self.metadata.delete_registry_upload(upload.upload_id),
        )

    async def cancel_upload(self, upload: RegistryUpload) -> None:
        if upload.session_id:
            await self.blobs.upload_abort(upload.session_id)
        await self.metadata.delete_registry_upload(upload.upload_id)

    # ---- manifests ----------------------------------------------------------------------
    async def put_manifest(
        self, name: str, reference: str, body: bytes, content_type: str
    ) -> Manifest:
        validate_name(name)
        by_digest = is_digest(reference)
        if not by_digest and not is_tag(reference):
            raise StoreError("TagInvalid", f"{reference!r} is neither a valid tag nor a digest")
        if len(body) > MAX_MANIFEST_BYTES:
            raise StoreError("ManifestInvalid", "manifests may be at most 4 MiB")
        try:
            doc = jsonbody.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise StoreError("ManifestInvalid", "the manifest is not valid JSON") from None
        if not isinstance(doc, dict):
            raise StoreError("ManifestInvalid", "the manifest must be a JSON object")
        media_type = doc.get("mediaType") or content_type.split(";")[0].strip()
        if doc.get("mediaType") and content_type and content_type.split(";")[0] != media_type:
            raise StoreError("ManifestInvalid", "Content-Type and mediaType differ")
        if media_type not in MANIFEST_TYPES:
            raise StoreError("ManifestInvalid", f"unsupported manifest media type {media_type!r}")
        if doc.get("schemaVersion") != 2:
            raise StoreError("ManifestInvalid", "schemaVersion must be 2")
        children = _descriptor_digests(doc, "manifests")
        blobs = _descriptor_digests(doc, "layers") + _descriptor_digests(doc, "blobs")
        config = doc.get("config")
        if config is not None:
            blobs += _descriptor_digests({"config": [config]}, "config")
        subject = doc.get("subject")
        subject_digest = (
            _descriptor_digests({"subject": [subject]}, "subject")[0] if subject else None
        )
        for digest in blobs:
            if not (
                await self.metadata.is_blob_linked(name, digest) and await self.blobs.exists(digest)
            ):
                raise StoreError("ManifestBlobUnknown", f"blob {digest} is unknown", resource=name)
        for digest in children:
            if await self.metadata.get_manifest(name, digest) is None:
                raise StoreError(
                    "ManifestBlobUnknown", f"manifest {digest} is unknown", resource=name
                )
        algorithm = reference.split(":", 1)[0] if by_digest else "sha256"
        try:
            info = await self.blobs.put_bytes(body, reference if by_digest else None)
        except DigestMismatchError as exc:
            raise StoreError(
                "DigestInvalid", f"the manifest's digest is {exc.actual}, not {exc.expected}"
            ) from None
        if not info.digest.startswith(algorithm + ":"):
            raise StoreError("DigestInvalid", "unsupported digest algorithm")
        annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
        artifact_type = doc.get("artifactType") or (
            (config or {}).get("mediaType") if media_type not in INDEX_TYPES else None
        )
        manifest = Manifest(
            repo=name,
            digest=info.digest,
            media_type=media_type,
            size=len(body),
            created_at=time.time(),
            subject=subject_digest,
            artifact_type=artifact_type,
            annotations={str(k): str(v) for k, v in annotations.items()},
            references=sorted(set(blobs) | set(children)),
        )
        await self.metadata.put_manifest(manifest)
        if not by_digest:
            await self.metadata.put_tag(Tag(name, reference, info.digest, time.time()))
        subject = {"repository": name, "digest": info.digest}
        if not by_digest:
            subject["tag"] = reference
        await self.notify.emit(
            "image.pushed",
            subject,
            {"media_type": media_type, "size": len(body), "artifact_type": artifact_type or None,
             "subject_digest": subject_digest or None},
        )  # fmt: skip
        return manifest

    async def resolve(self, name: str, reference: str) -> Manifest:
        validate_name(name)
        digest = reference
        if not is_digest(reference):
            if not is_tag(reference):
                # No manifest can have a name no tag may have: unknown, as the spec's GET/HEAD
                # answer (a PUT under such a name is TagInvalid).
                raise StoreError("ManifestUnknown", f"{reference!r} is not a valid tag or digest")
            tag = await self.metadata.get_tag(name, reference)
            if tag is None:
                raise StoreError("ManifestUnknown", f"no tag {reference!r} in {name}")
            digest = tag.digest
        manifest = await self.metadata.get_manifest(name, digest)
        if manifest is None:
            raise StoreError("ManifestUnknown", f"no manifest {digest} in {name}")
        return manifest

    async def manifest_bytes(self, manifest: Manifest) -> bytes:
        """A manifest's exact bytes. Content-addressed, so immutable: the most recently used
        ones are kept in memory (a tag pulled by a whole CI fleet is read from disk once)."""
        cached = self._manifest_cache.get(manifest.digest)
        if cached is not None:
            self._manifest_cache.move_to_end(manifest.digest)
            return cached
        data = await self.blobs.read_all(manifest.digest)
        self._manifest_cache[manifest.digest] = data
        self._manifest_cache_bytes += len(data)
        while self._manifest_cache_bytes > MANIFEST_CACHE_BYTES:
            _, evicted = self._manifest_cache.popitem(last=False)
            self._manifest_cache_bytes -= len(evicted)
        return data

    async def delete(self, name: str, reference: str) -> None:
        validate_name(name)
        if is_digest(reference):
            if not await self.metadata.delete_manifest(name, reference):
                raise StoreError("ManifestUnknown", f"no manifest {reference} in {name}")
            # It may be evidence (a signature, an SBOM): gate verdicts are recomputed.
            await self.metadata.bump_generation(SUPPLYCHAIN_GENERATION)
            # Its tags go with it (as distribution does): a tag never names a missing manifest.
            after: str | None = None
            while True:
                tags, more = await self.metadata.list_tags(name, after, 1000)
                for tag in tags:
                    if tag.digest == reference:
                        await self.metadata.delete_tag(name, tag.name)
                if not more or not tags:
                    break
                after = tags[-1].name
            await self.notify.emit("image.deleted", {"repository": name, "digest": reference})
            return
        if not is_tag(reference) or not await self.metadata.delete_tag(name, reference):
            raise StoreError("ManifestUnknown", f"no tag {reference!r} in {name}")
        await self.notify.emit("image.deleted", {"repository": name, "tag": reference})

    # ---- discovery ----------------------------------------------------------------------
    async def tags(self, name: str, last: str | None, n: int) -> tuple[list[str], bool]:
        validate_name(name)
        tags, more = await self.metadata.list_tags(name, last, n)
        if not tags and last is None and not await self._exists(name):
            raise StoreError("NameUnknown", f"repository {name!r} is unknown")
        return [t.name for t in tags], more

    async def _exists(self, name: str) -> bool:
        # The first repository at or after ``name`` (names never end in a code point below
        # '.', so the string just before ``name`` is well defined).
        before = name[:-1] + chr(ord(name[-1]) - 1) + "\U0010ffff"
        repos, _ = await self.metadata.list_repositories(after=before, limit=1)
        return repos == [name]

    async def referrers(
        self, name: str, digest: str, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        validate_name(name)
        validate_digest(digest)
        out = []
        for m in await self.metadata.list_referrers(name, digest):
            if artifact_type and m.artifact_type != artifact_type:
                continue
            descriptor: dict[str, Any] = {
                "mediaType": m.media_type,
                "digest": m.digest,
                "size": m.size,
            }
            if m.artifact_type:
                descriptor["artifactType"] = m.artifact_type
            if m.annotations:
                descriptor["annotations"] = m.annotations
            out.append(descriptor)
        return out

    async def catalog(self, last: str | None, n: int) -> tuple[list[str], bool]:
        return await self.metadata.list_repositories(last, n)
