"""The S3 allow-list (api/s3/operations.py): every request is identified as one operation of
botocore's S3 model, and only implemented operations run."""

from __future__ import annotations

import inspect

import pytest

from zot_artifact_store.api.s3 import operations
from zot_artifact_store.api.s3.buckets import BucketHandler
from zot_artifact_store.api.s3.objects import ObjectHandler
from zot_artifact_store.api.s3.operations import IMPLEMENTED, model_operations, resolve
from zot_artifact_store.api.s3.service import ServiceHandler
from zot_artifact_store.errors import StoreError

HANDLERS = {"service": ServiceHandler, "bucket": BucketHandler, "object": ObjectHandler}


def refused(method: str, level: str, query: dict[str, str], headers: tuple[str, ...] = ()):
    with pytest.raises(StoreError) as exc:
        resolve(method, level, query, headers)  # type: ignore[arg-type]
    return exc.value


def test_every_implemented_operation_is_in_the_model_and_has_a_handler_method() -> None:
    by_name = {op.name: op for op in model_operations()}
    assert set(IMPLEMENTED) <= set(by_name), set(IMPLEMENTED) - set(by_name)
    for name, supported in IMPLEMENTED.items():
        op = by_name[name]
        assert supported <= op.query, (name, supported - op.query)
        method = getattr(HANDLERS[op.level], f"op_{name}", None)
        assert method is not None and inspect.iscoroutinefunction(method), name
    # ... and no handler method runs an operation that is not allowed.
    for level, handler in HANDLERS.items():
        for attr in dir(handler):
            if attr.startswith("op_"):
                assert attr[3:] in IMPLEMENTED, (level, attr)


def test_the_model_is_walked_whole() -> None:
    ops = model_operations()
    assert len(ops) >= 110  # 111 in botocore 1.43, 119 in 1.44
    assert {"PutObjectTagging", "DeleteBucketAnalyticsConfiguration", "GetObjectAttributes"} <= {
        op.name for op in ops
    }


@pytest.mark.parametrize(
    ("method", "level", "query", "headers", "expected"),
    [
        ("GET", "service", {}, (), "ListBuckets"),
        ("GET", "service", {"prefix": "a", "max-buckets": "2"}, (), "ListBuckets"),
        ("PUT", "bucket", {}, (), "CreateBucket"),
        ("GET", "bucket", {}, (), "ListObjects"),
        ("GET", "bucket", {"list-type": "2", "prefix": "a/"}, (), "ListObjectsV2"),
        ("GET", "bucket", {"versions": ""}, (), "ListObjectVersions"),
        ("GET", "bucket", {"uploads": "", "encoding-type": "url"}, (), "ListMultipartUploads"),
        ("POST", "bucket", {"delete": ""}, (), "DeleteObjects"),
        ("PUT", "object", {}, (), "PutObject"),
        ("PUT", "object", {"x-id": "PutObject"}, (), "PutObject"),  # AWS SDK v3 hint
        ("PUT", "object", {}, ("X-Amz-Copy-Source",), "CopyObject"),
        ("PUT", "object", {"partNumber": "1", "uploadId": "u"}, (), "UploadPart"),
        (
            "PUT",
            "object",
            {"partNumber": "1", "uploadId": "u"},
            ("x-amz-copy-source",),
            "UploadPartCopy",
        ),
        ("GET", "object", {"uploadId": "u"}, (), "ListParts"),
        ("GET", "object", {"versionId": "null", "response-content-type": "a/b"}, (), "GetObject"),
        ("GET", "object", {"X-Amz-Signature": "s", "X-Amz-Credential": "c"}, (), "GetObject"),
        ("GET", "object", {"cachebust": "1"}, (), "GetObject"),  # not S3's: ignored, as AWS does
        ("DELETE", "object", {"uploadId": "u"}, (), "AbortMultipartUpload"),
        ("POST", "object", {"uploads": ""}, (), "CreateMultipartUpload"),
        ("POST", "object", {"uploadId": "u"}, (), "CompleteMultipartUpload"),
        ("PUT", "object", {"tagging": ""}, (), "PutObjectTagging"),
        ("GET", "object", {"tagging": ""}, (), "GetObjectTagging"),
        ("DELETE", "object", {"tagging": ""}, (), "DeleteObjectTagging"),
        ("GET", "object", {"versionId": "3HL4kqtJlcpXroDTDmJ"}, (), "GetObject"),
        ("DELETE", "object", {"versionId": "abc"}, (), "DeleteObject"),
        ("PUT", "bucket", {"versioning": ""}, (), "PutBucketVersioning"),
        ("PUT", "bucket", {"object-lock": ""}, (), "PutObjectLockConfiguration"),
        ("PUT", "object", {"retention": ""}, (), "PutObjectRetention"),
        ("GET", "object", {"legal-hold": "", "versionId": "v"}, (), "GetObjectLegalHold"),
        ("PUT", "object", {}, ("x-amz-object-lock-mode",), "PutObject"),
        ("PUT", "bucket", {}, ("x-amz-bucket-object-lock-enabled",), "CreateBucket"),
        ("GET", "object", {"attributes": ""}, (), "GetObjectAttributes"),
        ("PUT", "bucket", {"tagging": ""}, (), "PutBucketTagging"),
        ("GET", "bucket", {"tagging": ""}, (), "GetBucketTagging"),
        ("DELETE", "bucket", {"tagging": ""}, (), "DeleteBucketTagging"),
        ("PUT", "bucket", {"cors": ""}, (), "PutBucketCors"),
        ("GET", "bucket", {"cors": ""}, (), "GetBucketCors"),
        ("DELETE", "bucket", {"cors": ""}, (), "DeleteBucketCors"),
        ("GET", "bucket", {"policyStatus": ""}, (), "GetBucketPolicyStatus"),
        # Tags on a write are honoured now (they were refused with 501 before).
        ("PUT", "object", {}, ("x-amz-tagging",), "PutObject"),
        ("POST", "object", {"uploads": ""}, ("x-amz-tagging",), "CreateMultipartUpload"),
        (
            "PUT",
            "object",
            {},
            ("x-amz-copy-source", "x-amz-tagging", "x-amz-tagging-directive"),
            "CopyObject",
        ),
    ],
)
def test_implemented_operations_are_identified(
    method: str, level: str, query: dict[str, str], headers: tuple[str, ...], expected: str
) -> None:
    assert resolve(method, level, query, headers).name == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "level", "query", "named"),
    [
        ("PUT", "bucket", {"website": ""}, "PutBucketWebsite"),
        ("GET", "bucket", {"replication": ""}, "GetBucketReplication"),
        ("POST", "object", {"restore": ""}, "RestoreObject"),
        ("POST", "object", {"select": "", "select-type": "2"}, "SelectObjectContent"),
        ("PUT", "object", {"renameObject": ""}, "RenameObject"),
        ("DELETE", "bucket", {"analytics": "", "id": "x"}, "DeleteBucketAnalyticsConfiguration"),
        ("DELETE", "bucket", {"metrics": "", "id": "x"}, "DeleteBucketMetricsConfiguration"),
        ("DELETE", "bucket", {"inventory": "", "id": "x"}, "DeleteBucketInventoryConfiguration"),
        (
            "DELETE",
            "bucket",
            {"intelligent-tiering": "", "id": "x"},
            "DeleteBucketIntelligentTieringConfiguration",
        ),
        ("GET", "bucket", {"analytics": ""}, "ListBucketAnalyticsConfigurations"),
        ("GET", "bucket", {"session": ""}, "CreateSession"),
        ("GET", "bucket", {"website": ""}, "GetBucketWebsite"),
        ("GET", "service", {"max-directory-buckets": "1"}, "ListDirectoryBuckets"),
        ("POST", "bucket", {}, "WriteGetObjectResponse"),
    ],
)
def test_unimplemented_operations_are_refused_by_name(
    method: str, level: str, query: dict[str, str], named: str
) -> None:
    with pytest.raises(StoreError) as exc:
        resolve(method, level, query, (), "WriteGetObjectResponse")  # type: ignore[arg-type]
    error = exc.value
    assert error.code == "NotImplemented" and error.status == 501
    assert named in error.message


@pytest.mark.parametrize(
    ("method", "level", "query", "headers", "code", "named"),
    [
        # A request that is no operation of the model at all.
        ("POST", "bucket", {}, (), "NotImplemented", "POST"),
        ("PUT", "service", {}, (), "NotImplemented", "PUT"),
        # A sub-resource beside an implemented operation's own markers.
        ("PUT", "object", {"acl": "", "retention": ""}, (), "NotImplemented", "retention"),
        ("GET", "object", {"uploadId": "u", "torrent": ""}, (), "NotImplemented", "torrent"),
        # A parameter of another operation.
        ("PUT", "object", {"uploadId": "u"}, (), "InvalidArgument", "uploadId"),
        ("GET", "object", {"max-keys": "3"}, (), "InvalidArgument", "max-keys"),
        # A parameter of the operation that this store does not honour.
        ("GET", "bucket", {"uploads": "", "delimiter": "/"}, (), "NotImplemented", "delimiter"),
        # Headers asking for a feature this store does not have.
        ("PUT", "object", {}, ("x-amz-grant-read",), "NotImplemented", "x-amz-grant-read"),
        (
            "PUT",
            "object",
            {},
            ("x-amz-server-side-encryption",),
            "NotImplemented",
            "server-side encryption",
        ),
        (
            "GET",
            "object",
            {},
            ("x-amz-server-side-encryption-customer-algorithm",),
            "NotImplemented",
            "SSE-C",
        ),
    ],
)
def test_what_is_not_honoured_is_refused(
    method: str,
    level: str,
    query: dict[str, str],
    headers: tuple[str, ...],
    code: str,
    named: str,
) -> None:
    error = refused(method, level, query, headers)
    assert error.code == code, error.message
    assert named in error.message


def test_sub_resources_include_what_s3_signs() -> None:
    assert {"tagging", "versionId", "uploadId", "analytics", "object-lock"} <= (
        operations.sub_resources()
    )
