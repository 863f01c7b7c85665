"""S3 POST Object's form authentication: a base64 POST policy, signed with SigV4 (or the
legacy SigV2: ``AWSAccessKeyId`` and ``signature``).

A browser form carries ``policy`` (base64 JSON: ``expiration`` and ``conditions``),
``x-amz-algorithm`` (``AWS4-HMAC-SHA256``), ``x-amz-credential``, ``x-amz-date`` and
``x-amz-signature`` (the policy's base64 text signed with the credential's SigV4 signing
key). As on AWS:

- every condition must hold: ``{"field": "value"}`` and ``["eq", "$field", "value"]`` exactly,
  ``["starts-with", "$field", "prefix"]`` (``Content-Type``: each comma-separated value), and
  ``["content-length-range", min, max]`` on the file's size (checked as it streams);
  ``bucket`` is the bucket of the URL;
- every form field but ``policy``, ``x-amz-signature``, ``file`` and ``x-ignore-*`` must be named
  by a condition (an unnamed field could change what is stored);
- an expired policy, a failed condition or an extra field is ``AccessDenied`` ("Invalid
  according to Policy: …"); an unparseable one ``InvalidPolicyDocument``; a wrong signature
  ``SignatureDoesNotMatch``.

Form field names are compared case-insensitively (``Content-Type`` = ``content-type``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError
from ..timefmt import parse_time
from .principal import Principal
from .sigv4 import (
    ALGORITHM,
    KeyLookup,
    derive_signing_key,
    lookup_secret,
    parse_amz_date,
    parse_credential,
    sign,
    signature_mismatch,
    signatures_equal,
)

# Form fields no condition needs to name.
UNCHECKED = frozenset({"policy", "x-amz-signature", "file", "awsaccesskeyid", "signature"})
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class PostPolicy:
    expiration: float
    # (operator, lower-case field name, value): "eq" / "starts-with"
    matches: tuple[tuple[str, str, str], ...] = ()
    length_range: tuple[int, int] | None = None
    raw: list[Any] = field(default_factory=list)  # the conditions as written, for messages

    @property
    def named(self) -> frozenset[str]:
        return frozenset(name for _, name, _ in self.matches)


def _invalid(message: str) -> StoreError:
    return StoreError("InvalidPolicyDocument", f"Invalid Policy: {message}")


def _denied(message: str) -> StoreError:
    return StoreError("AccessDenied", f"Invalid according to Policy: {message}")


def parse_policy(encoded: str) -> PostPolicy:
    """The ``policy`` field, decoded, or ``InvalidPolicyDocument``."""
    try:
        doc = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid("the policy is not base64-encoded JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("the policy must be a JSON object")
    unknown = sorted(set(doc) - {"expiration", "conditions"})
    if unknown:
        raise _invalid(f"unexpected field(s) {unknown}")
    expiration = doc.get("expiration")
    if not isinstance(expiration, str):
        raise _invalid("Policy missing expiration")
    try:
        expires = parse_time(expiration.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"expiration {expiration!r} is not an ISO 8601 time") from None
    conditions = doc.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid("Policy missing conditions")
    matches: list[tuple[str, str, str]] = []
    length: tuple[int, int] | None = None
    for condition in conditions:
        if isinstance(condition, dict) and len(condition) == 1:
            [(name, value)] = condition.items()
            if not isinstance(value, str):
                raise _invalid(f"condition {json.dumps(condition)}: the value must be a string")
            matches.append(("eq", name.lower(), value))
        elif isinstance(condition, list) and len(condition) == 3:
            op = str(condition[0]).lower()
            if op == "content-length-range":
                low, high = condition[1], condition[2]
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
                    raise _invalid("content-length-range takes two integers")
                if low < 0 or high < low:
                    raise _invalid("content-length-range needs 0 <= min <= max")
                length = (low, high)
            elif op in ("eq", "starts-with"):
                name, value = condition[1], condition[2]
                if not isinstance(name, str) or not name.startswith("$"):
                    raise _invalid(f"condition {json.dumps(condition)}: name a field as $field")
                if not isinstance(value, str):
                    raise _invalid(f"condition {json.dumps(condition)}: the value must be a string")
                matches.append((op, name[1:].lower(), value))
            else:
                raise _invalid(f"unknown condition {json.dumps(condition)}")
        else:
            raise _invalid(f"condition {json.dumps(condition)} is neither an object with one field "
                           "nor a list of three")  # fmt: skip
    return PostPolicy(expires, tuple(matches), length, conditions)


def check_policy(policy: PostPolicy, fields: Mapping[str, str], bucket: str, now: float) -> None:
    """The policy's expiry, conditions and covered fields, against the form's ``fields``
    (lower-case names; the ``key`` as sent, before ``${filename}``)."""
    if now > policy.expiration:
        raise _denied("Policy expired.")
    values = {**fields, "bucket": bucket}
    for op, name, wanted in policy.matches:
        actual = values.get(name, "")
        if op == "eq":
            held = actual == wanted
        elif name == "content-type":
            held = all(v.strip().startswith(wanted) for v in actual.split(","))
        else:
            held = actual.startswith(wanted)
        if not held:
            raise _denied(f'Policy Condition failed: ["{op}", "${name}", "{wanted}"]')
    extra = sorted(
        name
        for name in fields
        if name not in UNCHECKED and not name.startswith("x-ignore-") and name not in policy.named
    )
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")


def check_length(policy: PostPolicy, size: int, *, final: bool) -> None:
    """``content-length-range``: too large as soon as it is (while streaming); too small at
    the end."""
    if policy.length_range is None:
        return
    low, high = policy.length_range
    if size > high:
        raise StoreError(
            "EntityTooLarge",
            f"Your proposed upload exceeds the maximum allowed size ({high} bytes, "
            "content-length-range)",
        )
    if final and size < low:
        raise StoreError(
            "EntityTooSmall",
            f"Your proposed upload is smaller than the minimum allowed size ({low} bytes, "
            "content-length-range)",
        )


async def _verify_v2(fields: Mapping[str, str], lookup: KeyLookup) -> Principal:
    """The legacy form (what boto3's ``generate_presigned_post`` makes unless configured for
    ``s3v4``): ``AWSAccessKeyId`` and ``signature``, the base64 HMAC-SHA1 of the policy."""
    if "signature" not in fields:
        raise StoreError("InvalidArgument", "Bucket POST must contain a field named 'signature'.")
    secret, principal = await lookup_secret(lookup, fields["awsaccesskeyid"])
    digest = hmac.new(secret.encode(), fields.get("policy", "").encode(), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest), fields["signature"].strip().encode()):
        raise signature_mismatch(fields["awsaccesskeyid"])
    return principal


async def verify_signature(
    fields: Mapping[str, str],
    lookup: KeyLookup,
    *,
    region: str,
    now: dt.datetime | None = None,
) -> Principal:
    """Who signed the form's policy (SigV4), or the error AWS answers."""
    algorithm = fields.get("x-amz-algorithm")
    if algorithm is None and "awsaccesskeyid" in fields:
        return await _verify_v2(fields, lookup)
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        if name not in fields:
            raise StoreError("InvalidArgument", f"Bucket POST must contain a field named '{name}'.")
    if algorithm != ALGORITHM:
        raise StoreError("InvalidArgument", f"x-amz-algorithm must be {ALGORITHM}")
    credential = parse_credential(fields["x-amz-credential"], "InvalidArgument")
    if credential.region != region:
        raise StoreError(
            "AuthorizationQueryParametersError",
            f"Error parsing the X-Amz-Credential parameter; the region '{credential.region}' is "
            f"wrong; expecting '{region}'",
            detail={"Region": region},
        )
    when = parse_amz_date(fields["x-amz-date"])
    if when is None or when.strftime("%Y%m%d") != credential.date:
        raise StoreError(
            "InvalidArgument", "x-amz-date must be YYYYMMDDTHHMMSSZ on the credential's date"
        )
    now = now or dt.datetime.now(dt.UTC)
    if when - now > MAX_CLOCK_SKEW:
        raise StoreError("AccessDenied", "x-amz-date is in the future")
    secret, principal = await lookup_secret(lookup, credential.access_key_id)
    key = derive_signing_key(secret, credential.date, credential.region)
    if not signatures_equal(sign(key, fields.get("policy", "")), fields["x-amz-signature"]):
        raise signature_mismatch(credential.access_key_id)
    return principal
