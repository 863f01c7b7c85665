"""AWS Signature Version 2 for S3: ``Authorization: AWS key:signature`` and presigned URLs
(``AWSAccessKeyId``, ``Expires``, ``Signature``).

Legacy, but still what boto3 produces for ``generate_presigned_url`` unless configured for
``s3v4``, and what older tools send. The string to sign is botocore's own
(:class:`botocore.auth.HmacV1Auth`: verb, Content-MD5, Content-Type, date or expiry, the
``x-amz-*`` headers, the resource with its sub-resources), so the server signs exactly as the
clients do; only the date source differs (the request's, not the clock's).
"""

from __future__ import annotations

import email.utils
import hmac
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from functools import cache
from typing import Any

from ..errors import StoreError
from ..lazy import lazy_module
from .principal import Principal

MAX_CLOCK_SKEW_S = 15 * 60
KeyLookup = Callable[[str], Awaitable[tuple[str, Principal] | None]]


# botocore (and awscrt under it) on the first SigV2 request (issue 23: lean workers).
botocore_auth = lazy_module("botocore.auth")
botocore_compat = lazy_module("botocore.compat")
botocore_credentials = lazy_module("botocore.credentials")


@cache
def _request_date_v1() -> Any:
    """botocore's SigV2 signer (``HmacV1Auth``) with the date taken from the request."""

    class RequestDateV1(botocore_auth.HmacV1Auth):  # type: ignore[misc]
        def __init__(self, secret: str, date: str) -> None:
            super().__init__(botocore_credentials.Credentials("unused", secret))
            self._request_date = date

        def _get_date(self) -> str:
            return self._request_date

    return RequestDateV1


async def verify_sigv2(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    lookup: KeyLookup,
    *,
    now: float | None = None,
) -> Principal | None:
    """The principal of a SigV2-signed request; None when it carries no SigV2 credentials;
    ``StoreError`` when they are wrong or expired."""
    now = time.time() if now is None else now
    header_list = list(headers)
    lower = {name.lower(): value for name, value in header_list}
    query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
    authorization = lower.get("authorization", "")
    if authorization.startswith("AWS "):
        key_id, sep, signature = authorization[4:].strip().rpartition(":")
        if not sep or not key_id:
            raise StoreError("AuthorizationHeaderMalformed", "expected AWS AccessKeyId:Signature")
        date = lower.get("date", "")
        when = lower.get("x-amz-date") or date
        parsed = email.utils.parsedate_to_datetime(when) if when else None
        if parsed is None:
            raise StoreError("AccessDenied", "AWS authentication requires a valid Date")
        if abs(parsed.timestamp() - now) > MAX_CLOCK_SKEW_S:
            raise StoreError("RequestTimeTooSkewed", "the request time is too far from ours")
        if "x-amz-date" in lower:
            date = ""  # x-amz-date is signed among the x-amz-* headers instead
    elif "AWSAccessKeyId" in query and "Signature" in query:
        key_id, signature = query["AWSAccessKeyId"][0], query["Signature"][0]
        date = (query.get("Expires") or [""])[0]
        if not date.isdigit():
            raise StoreError("AuthorizationQueryParametersError", "Expires must be a number")
        if int(date) < now:
            raise StoreError("AccessDenied", "Request has expired")
    else:
        return None
    found = await lookup(key_id)
    if found is None:
        raise StoreError("InvalidAccessKeyId", "the access key id does not exist")
    secret, principal = found
    signer = _request_date_v1()(secret, date)
    # botocore's header type (repeated x-amz-* headers join)
    signed_headers = botocore_compat.HTTPHeaders()
    for name, value in header_list:
        if name.lower() not in ("date", "authorization"):
            signed_headers[name] = value
    split = urllib.parse.urlsplit(raw_path + ("?" + raw_query if raw_query else ""))
    expected = signer.sign_string(signer.canonical_string(method, split, signed_headers))
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise StoreError(
            "SignatureDoesNotMatch",
            "the request signature we calculated does not match the signature you provided",
        )
    return principal
