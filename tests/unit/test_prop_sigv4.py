"""SigV4 properties: for generated requests (methods, paths with odd characters, query
parameters, headers), the canonical request we build from the wire equals botocore's, and what
botocore signs verifies; one changed byte does not (hypothesis, "ci" profile in conftest)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.unit.test_sigv4 import (
    CREDS,
    REGION,
    _request_time,
    verify_error,
    verify_ok,
)
from zot_artifact_store.auth.sigv4 import (
    UNSIGNED_PAYLOAD,
    SigV4Request,
    build_canonical_request,
    canonical_headers,
    canonical_query_string,
    canonical_uri,
)

METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"])
# Path text: anything a key may hold but NUL and lone surrogates, with the characters clients
# encode differently ('+', '%', '!*()', spaces, '~') made likely.
ODD = " +%!*'()~&=?#;:@,$[]/\\\"<>{}|^`é漢字\t"
PATH_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(ODD),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    min_size=1,
    max_size=40,
)
# How a client puts the key on the wire: AWS-style (every byte but A-Za-z0-9-._~/ escaped),
# or leaving the sub-delimiters some clients send raw.
QUOTE_SAFE = st.sampled_from(["/~", "/~!*'()", "/~!*'()@,;:$="])
QUERY_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(ODD), st.characters(blacklist_categories=("Cs",))),
    max_size=20,
)
QUERY = st.lists(
    st.tuples(QUERY_TEXT.filter(bool), QUERY_TEXT).filter(
        lambda kv: not kv[0].lower().startswith("x-amz-")
    ),
    max_size=5,
)
TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
# Header values as clients send them: visible ASCII with inner and surrounding whitespace.
HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
HEADERS = st.dictionaries(
    st.builds(lambda p, t: p + t, st.sampled_from(["x-amz-meta-", "x-custom-"]), TOKEN),
    HEADER_VALUE,
    max_size=4,
)


def _url(path_parts: list[str], safe: str, query: list[tuple[str, str]]) -> str:
    path = "/bucket/" + "/".join(quote(p, safe=safe) for p in path_parts)
    qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    return "http://127.0.0.1:9000" + path + (f"?{qs}" if qs else "")


def _wire(request: AWSRequest) -> SigV4Request:
    """The request as the server receives it (http.client adds ``Host``)."""
    parts = urlsplit(request.url)
    headers = [("Host", parts.netloc), *((k, str(v)) for k, v in request.headers.items())]
    return SigV4Request(request.method, parts.path, parts.query, headers)


class _RecordingAuth(S3SigV4Auth):
    """botocore's signer, keeping the canonical request it signed."""

    signed_canonical_request = ""

    def canonical_request(self, request: AWSRequest) -> str:
        self.signed_canonical_request = super().canonical_request(request)
        return self.signed_canonical_request


def _signed_headers(request: AWSRequest) -> list[str]:
    auth = request.headers["Authorization"]
    return auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")


@given(METHODS, st.lists(PATH_TEXT, min_size=1, max_size=3), QUOTE_SAFE, QUERY, HEADERS)
@example("GET", ["a b+c%2F!*'()"], "/~!*'()", [("prefix", "a+b c"), ("list-type", "2")], {})
def test_header_auth_matches_botocore(
    method: str,
    path_parts: list[str],
    safe: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
) -> None:
    request = AWSRequest(method=method, url=_url(path_parts, safe, query), headers=dict(headers))
    request.headers["x-amz-content-sha256"] = UNSIGNED_PAYLOAD
    auth = _RecordingAuth(CREDS, "s3", REGION)
    auth.add_auth(request)
    wire = _wire(request)

    # The canonical request, byte for byte, as botocore built it from the same request.
    signed = _signed_headers(request)
    ours = build_canonical_request(
        wire.method,
        canonical_uri(wire.raw_path),
        canonical_query_string(wire.raw_query),
        canonical_headers(wire, signed),
        signed,
        wire.header("x-amz-content-sha256") or "",
    )
    if safe == "/~":  # botocore signs the path as given; AWS-style encoding is canonical
        assert ours == auth.signed_canonical_request.encode("utf-8")

    when = _request_time(wire)
    ctx = verify_ok(wire, when).context
    assert ctx.region == REGION
    assert ctx.signed_headers == tuple(signed)

    # One byte more in the path, or a signed header's value changed: refused.
    tampered = SigV4Request(method, wire.raw_path + "x", wire.raw_query, wire.headers)
    assert verify_error(tampered, when).code == "SignatureDoesNotMatch"
    changed = [(k, v + "x" if k.lower() == "host" else v) for k, v in wire.headers]  # type: ignore[misc]
    assert verify_error(
        SigV4Request(method, wire.raw_path, wire.raw_query, changed), when
    ).code == ("SignatureDoesNotMatch")


@given(
    st.sampled_from(["GET", "PUT", "HEAD"]),
    st.lists(PATH_TEXT, min_size=1, max_size=3),
    QUERY,
    st.integers(1, 604800),
    st.integers(0, 604800 + 10),
)
def test_presigned_urls_match_botocore_and_expire(
    method: str,
    path_parts: list[str],
    query: list[tuple[str, str]],
    expires: int,
    elapsed: int,
) -> None:
    request = AWSRequest(method=method, url=_url(path_parts, "/~", query))
    S3SigV4QueryAuth(CREDS, "s3", REGION, expires=expires).add_auth(request)
    wire = _wire(request)
    signed_at = _request_time(wire)
    now = signed_at + dt.timedelta(seconds=elapsed)
    if elapsed <= expires:
        assert verify_ok(wire, now).context.presigned
    else:
        err = verify_error(wire, now)
        assert (err.status, err.code, err.message) == (403, "AccessDenied", "Request has expired")
    # A changed query or path: refused.
    if query:
        key, value = query[0]
        changed = f"{quote(key, safe='')}={quote(value + 'x', safe='')}"
        other = SigV4Request(method, wire.raw_path, f"{wire.raw_query}&{changed}", wire.headers)
    else:
        other = SigV4Request(method, wire.raw_path + "x", wire.raw_query, wire.headers)
    assert verify_error(other, signed_at).code == "SignatureDoesNotMatch"
