"""Multipart upload checksums through boto3, on both metadata backends: the algorithm and
type chosen at CreateMultipartUpload, part checksums verified or computed, ListParts,
the COMPOSITE (``…-N``) or FULL_OBJECT checksum at completion, and ``ChecksumMode``."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
import zlib
from collections.abc import Iterator

import boto3
import pytest
from awscrt import checksums
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess

MiB = 1 << 20


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> BaseClient:
    return s3_client(server.url)


@pytest.fixture(scope="module")
def bare(server: ServerProcess) -> BaseClient:
    """A client that adds no checksum of its own to a part (so the server computes it)."""
    return s3_client(server.url, request_checksum_calculation="when_required")


@pytest.fixture
def bucket(s3: BaseClient) -> Iterator[str]:
    name = f"mpck-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sha256_b64(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest())


def crc32_raw(data: bytes) -> bytes:
    return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")


def test_sha256_composite(s3: BaseClient, bare: BaseClient, bucket: str) -> None:
    one, two = os.urandom(5 * MiB), os.urandom(1000)
    created = s3.create_multipart_upload(Bucket=bucket, Key="sha", ChecksumAlgorithm="SHA256")
    assert created["ChecksumAlgorithm"] == "SHA256" and created["ChecksumType"] == "COMPOSITE"
    uid = created["UploadId"]
    common = {"Bucket": bucket, "Key": "sha", "UploadId": uid}

    # A wrong part checksum: BadDigest, and no part stored.
    with pytest.raises(ClientError) as exc:
        bare.upload_part(**common, PartNumber=1, Body=one, ChecksumSHA256=sha256_b64(two))
    assert code_of(exc) == ("BadDigest", 400)
    assert s3.list_parts(**common).get("Parts", []) == []
    # A part checksum of another algorithm than the upload's is refused.
    with pytest.raises(ClientError) as exc:
        s3.upload_part(**common, PartNumber=1, Body=one, ChecksumAlgorithm="CRC32")
    assert code_of(exc) == ("InvalidRequest", 400)

    # Sent and right: stored and echoed. Not sent: computed and returned.
    p1 = bare.upload_part(**common, PartNumber=1, Body=one, ChecksumSHA256=sha256_b64(one))
    assert p1["ChecksumSHA256"] == sha256_b64(one)
    p2 = bare.upload_part(**common, PartNumber=2, Body=two)
    assert p2["ChecksumSHA256"] == sha256_b64(two)

    listed = s3.list_parts(**common)
    assert listed["ChecksumAlgorithm"] == "SHA256" and listed["ChecksumType"] == "COMPOSITE"
    assert [(p["PartNumber"], p["ChecksumSHA256"]) for p in listed["Parts"]] == [
        (1, sha256_b64(one)),
        (2, sha256_b64(two)),
    ]

    parts = [
        {"PartNumber": 1, "ETag": p1["ETag"], "ChecksumSHA256": sha256_b64(one)},
        {"PartNumber": 2, "ETag": p2["ETag"], "ChecksumSHA256": sha256_b64(one)},  # wrong
    ]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(**common, MultipartUpload={"Parts": parts})
    assert code_of(exc) == ("InvalidPart", 400)
    parts[1]["ChecksumSHA256"] = sha256_b64(two)
    done = s3.complete_multipart_upload(**common, MultipartUpload={"Parts": parts})
    composite = (
        b64(hashlib.sha256(hashlib.sha256(one).digest() + hashlib.sha256(two).digest()).digest())
        + "-2"
    )
    assert done["ChecksumSHA256"] == composite and done["ChecksumType"] == "COMPOSITE"

    head = s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite and head["ChecksumType"] == "COMPOSITE"
    got = s3.get_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == composite and got["Body"].read() == one + two
    assert "ChecksumSHA256" not in s3.head_object(Bucket=bucket, Key="sha")


def test_crc32_composite_and_full_object(s3: BaseClient, bucket: str) -> None:
    one, two = os.urandom(5 * MiB), os.urandom(4321)
    for kind in ("COMPOSITE", "FULL_OBJECT"):
        key = f"crc-{kind}"
        args = {"ChecksumType": kind} if kind == "FULL_OBJECT" else {}
        created = s3.create_multipart_upload(
            Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", **args
        )
        assert created["ChecksumType"] == kind
        common = {"Bucket": bucket, "Key": key, "UploadId": created["UploadId"]}
        parts = []
        for number, body in ((1, one), (2, two)):
            answer = s3.upload_part(
                **common, PartNumber=number, Body=body, ChecksumAlgorithm="CRC32"
            )
            assert answer["ChecksumCRC32"] == b64(crc32_raw(body))
            parts.append(
                {
                    "PartNumber": number,
                    "ETag": answer["ETag"],
                    "ChecksumCRC32": answer["ChecksumCRC32"],
                }
            )
        whole = b64(crc32_raw(one + two))
        if kind == "FULL_OBJECT":
            # A declared whole-object CRC that is not the parts' is BadDigest; the upload stays.
            with pytest.raises(ClientError) as exc:
                s3.complete_multipart_upload(
                    **common,
                    MultipartUpload={"Parts": parts},
                    ChecksumCRC32=b64(crc32_raw(one)),
                    ChecksumType="FULL_OBJECT",
                )
            assert code_of(exc) == ("BadDigest", 400)
            done = s3.complete_multipart_upload(
                **common,
                MultipartUpload={"Parts": parts},
                ChecksumCRC32=whole,
                ChecksumType="FULL_OBJECT",
            )
            expected = whole
        else:
            done = s3.complete_multipart_upload(**common, MultipartUpload={"Parts": parts})
            expected = b64(crc32_raw(crc32_raw(one) + crc32_raw(two))) + "-2"
        assert done["ChecksumCRC32"] == expected and done["ChecksumType"] == kind
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumCRC32"] == expected and head["ChecksumType"] == kind
        # botocore checks a full-object CRC against the body it reads.
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == one + two


def test_checksum_choices_refused(s3: BaseClient, bucket: str) -> None:
    for algorithm, kind in (
        ("SHA256", "FULL_OBJECT"),
        ("SHA1", "FULL_OBJECT"),
        ("CRC64NVME", "COMPOSITE"),
    ):
        with pytest.raises(ClientError) as exc:
            s3.create_multipart_upload(
                Bucket=bucket, Key="x", ChecksumAlgorithm=algorithm, ChecksumType=kind
            )
        assert code_of(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumType="COMPOSITE")
    assert code_of(exc) == ("InvalidRequest", 400)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    created = s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="CRC64NVME")
    assert created["ChecksumType"] == "FULL_OBJECT"


def test_upload_part_copy_gets_the_uploads_checksum(s3: BaseClient, bucket: str) -> None:
    source = os.urandom(3000)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    created = s3.create_multipart_upload(Bucket=bucket, Key="copy", ChecksumAlgorithm="SHA1")
    common = {"Bucket": bucket, "Key": "copy", "UploadId": created["UploadId"]}
    copied = s3.upload_part_copy(
        **common, PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"}
    )
    part_sha1 = b64(hashlib.sha1(source).digest())
    assert copied["CopyPartResult"]["ChecksumSHA1"] == part_sha1
    done = s3.complete_multipart_upload(
        **common,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": copied["CopyPartResult"]["ETag"]}]},
    )
    assert done["ChecksumSHA1"] == b64(hashlib.sha1(hashlib.sha1(source).digest()).digest()) + "-1"


@pytest.mark.parametrize("algorithm", ["SHA256", "CRC32C"])
def test_transfer_manager_with_a_checksum_algorithm(
    s3: BaseClient, bucket: str, algorithm: str
) -> None:
    data = os.urandom(11 * MiB)
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB
    )
    s3.upload_fileobj(
        io.BytesIO(data), bucket, "tm", ExtraArgs={"ChecksumAlgorithm": algorithm}, Config=config
    )
    head = s3.head_object(Bucket=bucket, Key="tm", ChecksumMode="ENABLED")
    chunks = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    if algorithm == "SHA256":
        digests = b"".join(hashlib.sha256(c).digest() for c in chunks)
        expected = b64(hashlib.sha256(digests).digest()) + "-3"
    else:

        def crc32c(raw: bytes) -> bytes:
            return checksums.crc32c(raw).to_bytes(4, "big")

        expected = b64(crc32c(b"".join(crc32c(c) for c in chunks))) + "-3"
    assert head[f"Checksum{algorithm}"] == expected and head["ChecksumType"] == "COMPOSITE"
    out = io.BytesIO()
    s3.download_fileobj(bucket, "tm", out)
    assert out.getvalue() == data


def test_transfer_manager_full_object_crc(s3: BaseClient, bucket: str) -> None:
    """A whole-object CRC given to upload_fileobj makes a FULL_OBJECT upload (s3transfer)."""
    data = os.urandom(11 * MiB)
    whole = b64(crc32_raw(data))
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB
    )
    s3.upload_fileobj(
        io.BytesIO(data), bucket, "full", ExtraArgs={"ChecksumCRC32": whole}, Config=config
    )
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == whole and head["ChecksumType"] == "FULL_OBJECT"


def test_a_part_read_and_the_object_attributes_carry_each_parts_checksum(
    s3: BaseClient, bucket: str
) -> None:
    """GET/HEAD ``?partNumber=`` with ChecksumMode answers that part's checksum (botocore
    checks the part's body against it); GetObjectAttributes lists the parts with theirs,
    a page at a time."""
    bodies = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(777)]
    created = s3.create_multipart_upload(Bucket=bucket, Key="parts", ChecksumAlgorithm="SHA256")
    common = {"Bucket": bucket, "Key": "parts", "UploadId": created["UploadId"]}
    parts = []
    for number, body in enumerate(bodies, start=1):
        answer = s3.upload_part(**common, PartNumber=number, Body=body, ChecksumAlgorithm="SHA256")
        parts.append(
            {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": sha256_b64(body)}
        )
    s3.complete_multipart_upload(**common, MultipartUpload={"Parts": parts})
    for number, body in enumerate(bodies, start=1):
        head = s3.head_object(Bucket=bucket, Key="parts", PartNumber=number, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == sha256_b64(body) and head["PartsCount"] == 3
        got = s3.get_object(Bucket=bucket, Key="parts", PartNumber=number, ChecksumMode="ENABLED")
        assert got["ChecksumSHA256"] == sha256_b64(body) and got["Body"].read() == body

    attrs = s3.get_object_attributes(
        Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts"], MaxParts=2
    )["ObjectParts"]
    assert attrs["TotalPartsCount"] == 3 and attrs["IsTruncated"] is True
    assert attrs["NextPartNumberMarker"] == 2
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in attrs["Parts"]] == [
        (1, 5 * MiB, sha256_b64(bodies[0])),
        (2, 5 * MiB, sha256_b64(bodies[1])),
    ]
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts"], PartNumberMarker=2
    )["ObjectParts"]
    assert rest["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"]) for p in rest["Parts"]] == [(3, 777)]


def test_complete_checks_the_declared_object_size(s3: BaseClient, bucket: str) -> None:
    """``x-amz-mp-object-size`` that is not the parts' total: 400 InvalidRequest, nothing
    written and the upload kept; the right size completes."""
    body = os.urandom(1000)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="sized")["UploadId"]
    common = {"Bucket": bucket, "Key": "sized", "UploadId": uid}
    etag = s3.upload_part(**common, PartNumber=1, Body=body)["ETag"]
    done = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(**common, MultipartUpload=done, MpuObjectSize=999)
    assert code_of(exc) == ("InvalidRequest", 400)
    assert "x-amz-mp-object-size" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="sized")
    assert exc.value.response["Error"]["Code"] == "404"
    assert [p["PartNumber"] for p in s3.list_parts(**common)["Parts"]] == [1]
    s3.complete_multipart_upload(**common, MultipartUpload=done, MpuObjectSize=1000)
    assert s3.get_object(Bucket=bucket, Key="sized")["Body"].read() == body
