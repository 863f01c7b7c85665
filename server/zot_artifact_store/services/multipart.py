"""Multipart uploads (S3): parts are blobs; completing an upload writes no bytes.

Each part streams into its own content-addressed blob. Completion checks the part list, then
publishes an object record whose ``parts`` name those blobs in order, so reading the object
reads the parts and nothing is copied. The object's full sha256 is still computed at
completion (one sequential read of the parts, hashed off the event loop) so the object is
the same artifact, with the same digest, as if it had been uploaded in one piece.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections.abc import Mapping

from ..errors import StoreError
from ..metadata import MultipartUpload, ObjectRecord, Part
from ..storage import BlobWriter
from .artifacts import DEFAULT_CONTENT_TYPE, ArtifactService, PutOptions, PutSession, validate_key
from .checksums import multipart_checksum, new_checksum
from .objectlock import check_lock_request

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000


def multipart_etag(part_md5s: list[str]) -> str:
    """S3's ETag of a multipart object: md5 of the parts' binary MD5s, ``-`` part count."""
    joined = b"".join(bytes.fromhex(m) for m in part_md5s)
    return f"{hashlib.md5(joined).hexdigest()}-{len(part_md5s)}"


def check_part_number(value: int) -> int:
    if not 1 <= value <= MAX_PART_NUMBER:
        raise StoreError("InvalidArgument", f"part number must be between 1 and {MAX_PART_NUMBER}")
    return value


class PartSession(PutSession):
    """One part's body streaming into a blob."""

    def __init__(
        self,
        service: ArtifactService,
        upload: MultipartUpload,
        number: int,
        writer: BlobWriter,
        options: PutOptions,
    ) -> None:
        super().__init__(service, upload.bucket, upload.key, writer, options)
        self.upload = upload
        self.number = number
        self.started_at = time.time()

    async def finish_part(self) -> Part:
        info = await self.commit_blob()
        checksums = dict(self.options.checksums)
        if self.upload.checksum_algorithm == "SHA256" and "sha256" not in checksums:
            # The blob's own digest is the part's SHA-256: no second pass over the bytes.
            raw = bytes.fromhex(info.digest.removeprefix("sha256:"))
            checksums["sha256"] = base64.b64encode(raw).decode("ascii")
        part = Part(
            upload_id=self.upload.upload_id,
            part_number=self.number,
            digest=info.digest,
            size=info.size,
            etag=info.hashes["md5"],
            last_modified=time.time(),
            checksums=checksums,
            started_at=self.started_at,
        )
        metadata = self._service.metadata
        replaced = await metadata.put_part(part)
        if replaced is not None and replaced.started_at > part.started_at:
            # A later upload of this part number (a client's retry) finished first: it stays.
            await metadata.put_part(replaced)
        return part


class MultipartService:
    def __init__(self, artifacts: ArtifactService) -> None:
        self.artifacts = artifacts
        self.metadata = artifacts.metadata
        self.blobs = artifacts.blobs

    async def create(
        self,
        bucket: str,
        key: str,
        owner: str,
        options: PutOptions,
        public_read: bool = False,
        *,
        checksum_algorithm: str | None = None,
        checksum_type: str | None = None,
    ) -> MultipartUpload:
        """Open an upload; ``checksum_algorithm`` / ``checksum_type`` as
        :func:`.checksums.multipart_checksum_choice` returns them (every part then has one)."""
        validate_key(key)
        found = await self.artifacts.get_bucket(bucket)
        check_lock_request(found, options.retention, options.legal_hold)
        upload = MultipartUpload(
            upload_id=uuid.uuid4().hex + uuid.uuid4().hex[:8],
            bucket=bucket,
            key=key,
            initiated_at=time.time(),
            content_type=options.content_type or DEFAULT_CONTENT_TYPE,
            owner=owner,
            user_metadata=options.user_metadata,
            headers={**options.headers, **({"x-amz-acl": "public-read"} if public_read else {})},
            labels=options.labels,
            tags=options.tags,
            expires_at=options.expires_at,
            retention_mode=options.retention.mode,
            retain_until=options.retention.until,
            legal_hold=options.legal_hold,
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
        )
        await self.metadata.create_multipart(upload)
        return upload

    async def get(self, bucket: str, key: str | None, upload_id: str) -> MultipartUpload:
        """The open upload ``upload_id`` of ``bucket/key`` (any key when ``key`` is None)."""
        upload = await self.metadata.get_multipart(upload_id)
        if upload is None or upload.bucket != bucket or key not in (None, upload.key):
            await self.artifacts.get_bucket(bucket)
            raise StoreError(
                "NoSuchUpload",
                f"upload {upload_id!r} does not exist (completed, aborted or never started)",
                resource=f"{bucket}/{key}" if key is not None else bucket,
            )
        return upload

    async def parts(self, upload: MultipartUpload) -> list[Part]:
        """Every part uploaded so far, by part number."""
        parts: list[Part] = []
        while True:
            after = parts[-1].part_number if parts else 0
            page, truncated = await self.metadata.list_parts(upload.upload_id, after_part=after)
            parts.extend(page)
            if not truncated or not page:
                return parts

    async def begin_part(
        self, upload: MultipartUpload, number: int, options: PutOptions
    ) -> PartSession:
        check_part_number(number)
        await self.artifacts.check_space(options.expected_size)
        writer = await self.blobs.writer(extra_hashes=("md5",))
        return PartSession(self.artifacts, upload, number, writer, options)

    async def copy_part(
        self, upload: MultipartUpload, number: int, source: ObjectRecord, start: int, end: int
    ) -> Part:
        """UploadPartCopy: the source's bytes [start, end) become the part."""
        check_part_number(number)
        session = await self.begin_part(upload, number, PutOptions())
        algorithm = upload.checksum_algorithm
        calc = new_checksum(algorithm) if algorithm and algorithm != "SHA256" else None
        try:
            async for chunk in self.artifacts.read_object(source, start, end):
                if calc is not None:
                    calc.update(chunk)
                await session.write(chunk)
            if calc is not None and algorithm:
                session.options.checksums = {
                    algorithm.lower(): base64.b64encode(calc.digest()).decode("ascii")
                }
            return await session.finish_part()
        finally:
            await session.abort()

    async def complete(
        self,
        upload: MultipartUpload,
        requested: list[tuple[int, str]],
        expected_sha256: str | None = None,
        *,
        sha256_etag: bool = False,
        if_absent: bool = False,
        part_checksums: Mapping[int, Mapping[str, str]] | None = None,
        declared_checksum: tuple[str, str] | None = None,
        expected_size: int | None = None,
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        """Publish the object made of the ``requested`` (number, ETag) parts. With
        ``expected_sha256`` (``sha256:<hex>``) of the whole object, a mismatch writes nothing
        and keeps the upload. The ETag is S3's ``md5-of-md5s-N``, or with ``sha256_etag`` the
        sha256 (as every ``/v1`` object's).

        ``part_checksums`` (part number → {ALGORITHM: base64}) are the parts' checksums the
        request lists: each must be the part's (``InvalidPart``). An upload with a checksum
        algorithm gives the object its COMPOSITE or FULL_OBJECT checksum; a
        ``declared_checksum`` (ALGORITHM, base64) of the object must equal it (``BadDigest``).
        ``expected_size`` (S3 ``x-amz-mp-object-size``) must be the parts' total size
        (``InvalidRequest``, nothing written)."""
        if not requested:
            raise StoreError("MalformedXML", "CompleteMultipartUpload lists no parts")
        numbers = [n for n, _ in requested]
        if numbers != sorted(set(numbers)):
            raise StoreError(
                "InvalidPartOrder", "parts must be listed in ascending order, each once"
            )
        stored = {p.part_number: p for p in await self.parts(upload)}
        chosen: list[Part] = []
        for index, (number, etag) in enumerate(requested):
            part = stored.get(number)
            if part is None or etag.strip().strip('"') != part.etag:
                raise StoreError(
                    "InvalidPart",
                    f"part {number} was not uploaded, or its ETag is not {etag}",
                    resource=f"{upload.bucket}/{upload.key}",
                )
            if index < len(requested) - 1 and part.size < MIN_PART_SIZE:
                raise StoreError(
                    "EntityTooSmall",
                    f"part {number} is {part.size} bytes; every part but the last must be "
                    f"at least {MIN_PART_SIZE}",
                    resource=f"{upload.bucket}/{upload.key}",
                )
            for algorithm, value in (part_checksums or {}).get(number, {}).items():
                if part.checksums.get(algorithm.lower()) != value.strip():
                    raise StoreError(
                        "InvalidPart",
                        f"part {number}'s {algorithm} checksum is not {value}",
                        resource=f"{upload.bucket}/{upload.key}",
                    )
            chosen.append(part)
        if expected_size is not None and expected_size != sum(p.size for p in chosen):
            raise StoreError(
                "InvalidRequest",
                f"The provided 'x-amz-mp-object-size' header value {expected_size} does not "
                f"match what was computed: {sum(p.size for p in chosen)}",
                resource=f"{upload.bucket}/{upload.key}",
            )
        checksums = self._object_checksums(upload, chosen, declared_checksum)
        algorithm = (upload.checksum_algorithm or "").lower()
        sha256 = await self._sha256_of([p.digest for p in chosen])
        if expected_sha256 is not None and expected_sha256 != f"sha256:{sha256}":
            raise StoreError(
                "ChecksumMismatch",  # S3 answers it as BadDigest (api/s3 maps it)
                f"the parts' sha256 is {sha256}, not the declared "
                f"{expected_sha256.removeprefix('sha256:')}; no object was written and the "
                "upload is kept",
                resource=f"{upload.bucket}/{upload.key}",
                detail={"expected": expected_sha256, "actual": f"sha256:{sha256}"},
            )
        now = time.time()
        headers = dict(upload.headers)
        public = headers.pop("x-amz-acl", "") == "public-read"
        record = ObjectRecord(
            bucket=upload.bucket,
            key=upload.key,
            digest=f"sha256:{sha256}",
            size=sum(p.size for p in chosen),
            etag=sha256 if sha256_etag else multipart_etag([p.etag for p in chosen]),
            content_type=upload.content_type,
            created_at=now,
            updated_at=now,
            labels=upload.labels,
            user_metadata=upload.user_metadata,
            headers=headers,
            checksums=checksums,
            parts=[
                {
                    "digest": p.digest,
                    "size": p.size,
                    "etag": p.etag,
                    # The part's own checksum (GET ?partNumber= with ChecksumMode, and
                    # GetObjectAttributes ObjectParts answer it).
                    **({"checksums": {algorithm: p.checksums[algorithm]}} if algorithm else {}),
                }
                for p in chosen
            ],
            public_read=public,
            tags=upload.tags,
            expires_at=upload.expires_at,
            upload_id=upload.upload_id,
            retention_mode=upload.retention_mode,
            retain_until=upload.retain_until,
            legal_hold=upload.legal_hold,
        )
        result = await self.artifacts.publish(record, if_absent=if_absent)
        await self.metadata.delete_multipart(upload.upload_id)
        return result

    @staticmethod
    def _object_checksums(
        upload: MultipartUpload, chosen: list[Part], declared: tuple[str, str] | None
    ) -> dict[str, str]:
        """The completed object's checksum ({algorithm: base64}, empty when the upload has
        no checksum algorithm), checked against the one the request declares."""
        algorithm = upload.checksum_algorithm
        if not algorithm:
            if declared is not None:
                raise StoreError(
                    "InvalidRequest",
                    f"the upload was created without a checksum algorithm; "
                    f"x-amz-checksum-{declared[0].lower()} cannot be checked",
                )
            return {}
        values = []
        for part in chosen:
            value = part.checksums.get(algorithm.lower())
            if value is None:
                raise StoreError(
                    "InvalidPart",
                    f"part {part.part_number} has no {algorithm} checksum",
                    resource=f"{upload.bucket}/{upload.key}",
                )
            values.append((value, part.size))
        kind = upload.checksum_type or "COMPOSITE"
        value = multipart_checksum(algorithm, kind, values)
        if declared is not None:
            if declared[0] != algorithm:
                raise StoreError(
                    "InvalidRequest",
                    f"the upload's checksum algorithm is {algorithm}, not {declared[0]}",
                )
            if declared[1].strip() not in (value, value.split("-")[0]):
                raise StoreError(
                    "BadDigest",
                    f"The {kind} {algorithm} checksum of the parts is {value}, not the "
                    f"declared {declared[1]}; no object was written and the upload is kept",
                )
        return {algorithm.lower(): value}

    async def completed(
        self, bucket: str, key: str, upload_id: str, requested: list[tuple[int, str]]
    ) -> ObjectRecord | None:
        """The object a CompleteMultipartUpload of ``upload_id`` with these parts already
        made, while it is still the current version of ``bucket/key`` (None otherwise): a
        retried completion whose first answer was lost gets the same answer."""
        record = await self.metadata.get_object(bucket, key)
        if record is None or not upload_id or record.upload_id != upload_id:
            return None
        etags = [str(p.get("etag", "")) for p in record.parts]
        if etags != [etag.strip().strip('"') for _, etag in requested]:
            return None
        return record

    async def _sha256_of(self, digests: list[str]) -> str:
        h = hashlib.sha256()
        for digest in digests:
            async for chunk in self.blobs.read(digest):
                await asyncio.to_thread(h.update, chunk)
        return h.hexdigest()

    async def abort(self, upload: MultipartUpload) -> None:
        # The part blobs become unreferenced; garbage collection removes them.
        if await self.metadata.delete_multipart(upload.upload_id):
            subject = {"bucket": upload.bucket, "key": upload.key}
            await self.artifacts.notify.emit(
                "upload.aborted", subject, {"upload_id": upload.upload_id}
            )
