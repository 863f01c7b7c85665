"""S3 POST policies: parsing, AWS's condition semantics, and the SigV4 signature over the
policy (checked against botocore's own signer)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from zot_artifact_store.auth.post_policy import (
    check_length,
    check_policy,
    parse_policy,
    verify_signature,
)
from zot_artifact_store.auth.principal import Principal
from zot_artifact_store.errors import StoreError

LATER = "2030-01-01T00:00:00.000Z"
NOW = 1_800_000_000.0  # 2027-01-15


def encoded(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def policy(*conditions: Any, expiration: str = LATER) -> Any:
    return parse_policy(encoded({"expiration": expiration, "conditions": list(conditions)}))


def test_conditions_hold() -> None:
    p = policy(
        {"bucket": "b"},
        ["starts-with", "$key", "uploads/"],
        ["eq", "$x-amz-meta-build", "42"],
        ["starts-with", "$Content-Type", "image/"],
        ["starts-with", "$success_action_status", ""],
        ["content-length-range", 1, 100],
    )
    fields = {
        "key": "uploads/${filename}",
        "x-amz-meta-build": "42",
        "content-type": "image/png, image/jpeg",
        "policy": "…",
        "x-amz-signature": "…",
        "x-ignore-tracking": "1",
    }
    check_policy(p, fields, "b", NOW)
    check_length(p, 100, final=True)


@pytest.mark.parametrize(
    "fields, bucket, says",
    [
        ({"key": "other/a"}, "b", '["starts-with", "$key", "uploads/"]'),
        ({"key": "uploads/a"}, "c", '["eq", "$bucket", "b"]'),
        ({"key": "uploads/a", "content-type": "image/png, text/html"}, "b", "$content-type"),
        (
            {"key": "uploads/a", "content-type": "image/png", "acl": "public-read"},
            "b",
            "Extra input fields: acl",
        ),
    ],
)
def test_conditions_fail(fields: dict[str, str], bucket: str, says: str) -> None:
    p = policy({"bucket": "b"}, ["starts-with", "$key", "uploads/"],
               ["starts-with", "$Content-Type", "image/"])  # fmt: skip
    with pytest.raises(StoreError) as exc:
        check_policy(p, fields, bucket, NOW)
    assert exc.value.code == "AccessDenied" and says in exc.value.message, exc.value.message


def test_expiry_and_lengths() -> None:
    with pytest.raises(StoreError, match="Policy expired"):
        check_policy(policy(expiration="2020-01-01T00:00:00Z"), {}, "b", NOW)
    p = policy(["content-length-range", 10, 20])
    check_length(p, 5, final=False)  # still streaming: not too small yet
    with pytest.raises(StoreError) as exc:
        check_length(p, 5, final=True)
    assert exc.value.code == "EntityTooSmall"
    with pytest.raises(StoreError) as exc:
        check_length(p, 21, final=False)
    assert exc.value.code == "EntityTooLarge"


@pytest.mark.parametrize(
    "raw",
    [
        "%%%",
        encoded({"conditions": []}),
        encoded({"expiration": "soon", "conditions": []}),
        encoded({"expiration": LATER}),
        encoded({"expiration": LATER, "conditions": [["content-length-range", 5, 1]]}),
        encoded({"expiration": LATER, "conditions": [["matches", "$key", ".*"]]}),
        encoded({"expiration": LATER, "conditions": [["eq", "key", "a"]]}),
        encoded({"expiration": LATER, "conditions": [{"key": 1}]}),
    ],
)
def test_malformed_policies(raw: str) -> None:
    with pytest.raises(StoreError) as exc:
        parse_policy(raw)
    assert exc.value.code == "InvalidPolicyDocument"


async def test_sigv4_signature_matches_botocores() -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret-key",
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    post = client.generate_presigned_post("b", "k", ExpiresIn=60)
    fields = {k.lower(): v for k, v in post["fields"].items()}
    who = Principal("s3key:AKIDEXAMPLE", "robot", source="s3key")

    async def lookup(key_id: str) -> tuple[str, Principal] | None:
        return ("secret-key", who) if key_id == "AKIDEXAMPLE" else None

    assert await verify_signature(fields, lookup, region="us-east-1") == who
    with pytest.raises(StoreError) as exc:
        await verify_signature(fields, lookup, region="eu-west-1")
    assert exc.value.code == "AuthorizationQueryParametersError"
    tampered = {**fields, "policy": fields["policy"][:-4] + "AAA="}
    with pytest.raises(StoreError) as exc:
        await verify_signature(tampered, lookup, region="us-east-1")
    assert exc.value.code == "SignatureDoesNotMatch"
