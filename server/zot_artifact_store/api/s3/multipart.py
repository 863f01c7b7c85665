"""S3 multipart uploads on an object: create, copy a part, list parts, abort, complete.
(UploadPart streams its body, so it lives with PutObject in :mod:`.objects`.)"""

from __future__ import annotations

import re
import urllib.parse

from ...errors import StoreError
from ...metadata import MultipartUpload, ObjectRecord, Part
from ...services.checksums import (
    CHECKSUM_TYPE_HEADER,
    S3_ALGORITHMS,
    algorithm_for_header,
    checksum_type_of,
    multipart_checksum_choice,
)
from ...services.multipart import check_part_number
from ..httputil import quote_etag
from . import xml
from .base import MAX_KEYS, OWNER, STORAGE_CLASS
from .objectlock import ObjectLockRequests

_COPY_RANGE_RE = re.compile(r"bytes=(\d{1,19})-(\d{1,19})")


class MultipartOperations(ObjectLockRequests):
    """The multipart operations of :class:`.objects.ObjectHandler`."""

    def _part_number(self) -> int:
        try:
            return check_part_number(int(self.arg("partNumber") or ""))
        except ValueError:
            raise StoreError("InvalidArgument", "partNumber must be an integer") from None

    async def _upload(self, bucket: str, key: str) -> MultipartUpload:
        return await self.ctx.multipart.get(bucket, key, self.arg("uploadId") or "")

    async def op_CreateMultipartUpload(self, bucket: str, key: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        options = self.put_options()
        options.tags = await self.header_tags(bucket, key) or {}  # the object's, at complete
        options.retention, options.legal_hold = await self.lock_request(bucket, key)
        public = self.canned_acl()
        algorithm, kind = multipart_checksum_choice(
            self.request.headers.get("x-amz-checksum-algorithm"),
            self.request.headers.get(CHECKSUM_TYPE_HEADER),
        )
        upload = await self.ctx.multipart.create(
            bucket,
            key,
            self.principal.id,
            options,
            public_read=bool(public),
            checksum_algorithm=algorithm,
            checksum_type=kind,
        )
        if algorithm and kind:
            self.set_header("x-amz-checksum-algorithm", algorithm)
            self.set_header(CHECKSUM_TYPE_HEADER, kind)
        self.write_xml(
            "InitiateMultipartUploadResult",
            {"Bucket": bucket, "Key": key, "UploadId": upload.upload_id},
        )

    async def op_UploadPartCopy(self, bucket: str, key: str) -> None:
        source = await self.copy_source(bucket, key)
        upload = await self._upload(bucket, key)
        start, end = _copy_range(self.request.headers.get("x-amz-copy-source-range"), source)
        part = await self.ctx.multipart.copy_part(upload, self._part_number(), source, start, end)
        self.write_xml(
            "CopyPartResult",
            {
                "ETag": quote_etag(part.etag),
                "LastModified": xml.s3_time(part.last_modified),
                **_part_checksums(part),
            },
        )

    async def op_ListParts(self, bucket: str, key: str) -> None:
        await self.authorize("s3:ListMultipartUploadParts", f"{bucket}/{key}")
        upload = await self._upload(bucket, key)
        marker = self.int_arg("part-number-marker", 0, high=10_000)
        limit = self.int_arg("max-parts", MAX_KEYS, low=1)
        parts, truncated = await self.ctx.metadata.list_parts(upload.upload_id, marker, limit)
        self.write_xml(
            "ListPartsResult",
            {
                "Bucket": bucket,
                "Key": key,
                "UploadId": upload.upload_id,
                "Initiator": OWNER,
                "Owner": OWNER,
                "StorageClass": STORAGE_CLASS,
                "ChecksumAlgorithm": upload.checksum_algorithm,
                "ChecksumType": upload.checksum_type,
                "PartNumberMarker": marker,
                "NextPartNumberMarker": parts[-1].part_number if parts else marker,
                "MaxParts": limit,
                "IsTruncated": truncated,
                "Part": [
                    {
                        "PartNumber": p.part_number,
                        "LastModified": xml.s3_time(p.last_modified),
                        "ETag": quote_etag(p.etag),
                        "Size": p.size,
                        **_part_checksums(p),
                    }
                    for p in parts
                ],
            },
        )

    async def op_AbortMultipartUpload(self, bucket: str, key: str) -> None:
        await self.authorize("s3:DeleteObject", f"{bucket}/{key}")
        await self.ctx.multipart.abort(await self._upload(bucket, key))
        self.set_status(204)
        self.finish()

    async def op_CompleteMultipartUpload(self, bucket: str, key: str) -> None:
        if self._finished:  # the body was refused while it streamed in
            return
        await self.authorize("s3:PutObject", f"{bucket}/{key}")
        request = xml.parse(self.body, "CompleteMultipartUpload")
        parts: list[tuple[int, str]] = []
        part_checksums: dict[int, dict[str, str]] = {}
        for part in xml.children(request, "Part"):
            number, etag = xml.child_text(part, "PartNumber"), xml.child_text(part, "ETag")
            if number is None or etag is None:
                raise StoreError("MalformedXML", "each <Part> needs <PartNumber> and <ETag>")
            try:
                parts.append((int(number), etag))
            except ValueError:
                raise StoreError("MalformedXML", "<PartNumber> must be an integer") from None
            given = {
                algorithm: value
                for algorithm in S3_ALGORITHMS
                if (value := xml.child_text(part, f"Checksum{algorithm}")) is not None
            }
            if given:
                part_checksums[int(number)] = given
        declared = next(
            (
                (algorithm, value)
                for name, value in self.request.headers.get_all()
                if (algorithm := algorithm_for_header(name)) is not None
            ),
            None,
        )
        try:
            upload = await self._upload(bucket, key)
        except StoreError as exc:
            if exc.code != "NoSuchUpload":
                raise
            # Completed already? A retry (its first answer lost) gets the same answer.
            done = await self.ctx.multipart.completed(
                bucket, key, self.arg("uploadId") or "", parts
            )
            if done is None:
                raise
            record = done
        else:
            kind = self.request.headers.get(CHECKSUM_TYPE_HEADER, "").strip().upper()
            if kind and kind != upload.checksum_type:
                raise StoreError(
                    "InvalidRequest",
                    f"The upload was created using the {upload.checksum_type or 'null'} "
                    f"checksum mode; the complete request asked for {kind}",
                )
            record, _ = await self.ctx.multipart.complete(
                upload,
                parts,
                if_absent=self.create_only(),
                part_checksums=part_checksums,
                declared_checksum=declared,
                expected_size=self._mp_object_size(),
            )
        await self.set_expiration_header(record)
        await self.set_version_header(record)
        self.write_xml(
            "CompleteMultipartUploadResult",
            {
                "Location": f"{self.request.protocol}://{self.request.host}/{bucket}/"
                + urllib.parse.quote(key),
                "Bucket": bucket,
                "Key": key,
                "ETag": quote_etag(record.etag),
                **{
                    f"Checksum{algorithm.upper()}": value
                    for algorithm, value in sorted(record.checksums.items())
                },
                "ChecksumType": next(
                    (checksum_type_of(v) for _, v in sorted(record.checksums.items())), None
                ),
            },
        )

    def _mp_object_size(self) -> int | None:
        """``x-amz-mp-object-size``: the object size the client expects (None: not sent)."""
        raw = self.request.headers.get("x-amz-mp-object-size")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise StoreError("InvalidArgument", "x-amz-mp-object-size must be a whole number")
        return int(raw.strip())

    @property
    def body(self) -> bytes:
        raise NotImplementedError  # the small XML body (ObjectHandler)


def _copy_range(value: str | None, source: ObjectRecord) -> tuple[int, int]:
    """``x-amz-copy-source-range``: ``bytes=first-last`` only (no suffix or open range, as on
    AWS), within the source; anything else is ``InvalidArgument`` before a byte is copied."""
    if not value:
        return 0, source.size
    match = _COPY_RANGE_RE.fullmatch(value.strip())
    if match is None or int(match[1]) > int(match[2]):
        raise StoreError(
            "InvalidArgument",
            "the x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
        )
    first, last = int(match[1]), int(match[2])
    if last >= source.size:
        raise StoreError(
            "InvalidArgument",
            f"range specified is not valid for source object of size: {source.size}",
        )
    return first, last + 1


def _part_checksums(part: Part) -> dict[str, str]:
    """A part's ``ChecksumCRC32``… elements (ListParts, CopyPartResult)."""
    return {f"Checksum{a.upper()}": v for a, v in sorted(part.checksums.items())}
