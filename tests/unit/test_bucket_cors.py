"""S3 CORS rules: AWS's matching (first rule wins, one wildcard, headers case-insensitive) and
the XML a PutBucketCors body may hold."""

from __future__ import annotations

import pytest

from zot_artifact_store.api.s3.cors import cors_xml, parse_cors
from zot_artifact_store.errors import StoreError
from zot_artifact_store.services.bucket_cors import CorsRule, matching_rule

UPLOAD = CorsRule(["https://ui.example.com"], ["PUT"], ["content-type", "x-amz-*"], ["ETag"], 60)
READ = CorsRule(["*"], ["GET", "HEAD"])
SUB = CorsRule(["https://*.example.org"], ["DELETE"], ["*"])


@pytest.mark.parametrize(
    "origin, method, headers, expected",
    [
        ("https://ui.example.com", "PUT", ["Content-Type", "X-Amz-Date"], UPLOAD),
        ("https://ui.example.com", "PUT", ["x-other"], None),
        ("https://ui.example.com", "put", [], None),  # methods are case-sensitive, as on AWS
        ("https://ui.example.com", "GET", ["x-other"], None),  # READ allows no headers
        ("https://ui.example.com", "GET", [], READ),
        ("https://a.example.org", "DELETE", ["anything"], SUB),
        ("https://example.org", "DELETE", [], None),
        ("http://a.example.org", "DELETE", [], None),
        ("https://UI.example.com", "PUT", [], None),  # origins are compared exactly
    ],
)
def test_the_first_matching_rule_decides(
    origin: str, method: str, headers: list[str], expected: CorsRule | None
) -> None:
    assert matching_rule([UPLOAD, READ, SUB], origin, method, headers) is expected


def test_allow_origin_is_star_only_for_a_rule_open_to_all() -> None:
    assert READ.allow_origin("https://x.example") == "*"
    assert SUB.allow_origin("https://a.example.org") == "https://a.example.org"


def test_parse_and_render_round_trip() -> None:
    body = b"""<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
      <CORSRule><ID>up</ID><AllowedOrigin>https://ui.example.com</AllowedOrigin>
        <AllowedMethod>PUT</AllowedMethod><AllowedHeader>content-type</AllowedHeader>
        <AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>
        <MaxAgeSeconds>60</MaxAgeSeconds></CORSRule>
    </CORSConfiguration>"""
    rules = parse_cors(body)
    assert rules == [CorsRule(**{**UPLOAD.__dict__, "id": "up"})]
    assert cors_xml(rules)["CORSRule"][0]["AllowedHeader"] == ["content-type", "x-amz-*"]


@pytest.mark.parametrize(
    "body, code",
    [
        (b"<CORSConfiguration/>", "MalformedXML"),
        (b"<CORSConfiguration><Rule/></CORSConfiguration>", "MalformedXML"),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET"
            b"</AllowedMethod><Colour>red</Colour></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET"
            b"</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>OPTIONS"
            b"</AllowedMethod></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"
            b"</CORSConfiguration>",
            "MalformedXML",
        ),
    ],
    ids=["no-rule", "other-element", "unknown-field", "max-age", "method", "no-origin"],
)
def test_bad_configurations_are_refused(body: bytes, code: str) -> None:
    with pytest.raises(StoreError) as exc:
        parse_cors(body)
    assert exc.value.code == code
