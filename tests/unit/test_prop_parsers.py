"""Properties of the edge parsers: ``Range`` (RFC 9110 §14), names against their grammars
(S3 bucket naming rules, object keys, the OCI distribution spec's repository and tag grammar)
and S3 XML round trips through botocore's own serializer and parser."""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from hypothesis import assume, example, given
from hypothesis import strategies as st

from zot_artifact_store.api.httputil import ByteRange, parse_range
from zot_artifact_store.api.s3 import xml
from zot_artifact_store.api.s3.tagging import (
    MAX_OBJECT_TAGS,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    parse_tagging,
    tagging_xml,
)
from zot_artifact_store.errors import StoreError
from zot_artifact_store.services.artifacts import (
    MAX_KEY_BYTES,
    RESERVED_BUCKET_NAMES,
    validate_bucket_name,
    validate_key,
)
from zot_artifact_store.services.registry import MAX_NAME, is_tag, validate_name

# --------------------------------------------------------------------------- Range


def reference_range(first: int | None, last: int | None, size: int) -> ByteRange | str | None:
    """RFC 9110 §14.1.2 for one range spec (``"416"`` when unsatisfiable)."""
    if first is None:  # suffix-range: the last `last` bytes
        assert last is not None
        if last == 0 or size == 0:
            return "416"
        return ByteRange(max(0, size - last), size)
    if last is not None and last < first:
        return None  # invalid range-spec: the header is ignored
    if first >= size:
        return "416"
    return ByteRange(first, size if last is None else min(last, size - 1) + 1)


OFFSETS = st.one_of(st.integers(0, 40), st.integers(0, 10**15))
SPACES = st.sampled_from(["", " ", "  "])


@given(st.one_of(OFFSETS, st.none()), st.one_of(OFFSETS, st.none()), st.integers(0, 50), SPACES)
@example(None, 0, 10, "")
@example(10, None, 10, "")
@example(0, None, 0, "")
def test_range_follows_rfc9110(first: int | None, last: int | None, size: int, pad: str) -> None:
    assume(first is not None or last is not None)
    header = f"{pad}bytes={pad}{'' if first is None else first}-{'' if last is None else last}"
    expected = reference_range(first, last, size)
    if expected == "416":
        with pytest.raises(StoreError) as info:
            parse_range(header, size)
        assert info.value.status == 416
        assert info.value.headers["Content-Range"] == f"bytes */{size}"
        return
    got = parse_range(header, size)
    assert got == expected
    if got is not None:
        assert 0 <= got.start < got.end <= size
        assert got.content_range(size) == f"bytes {got.start}-{got.end - 1}/{size}"


@given(st.text(max_size=30), st.integers(0, 50))
@example("bytes=0-1,3-4", 10)
@example("bytes=0x1-2", 10)
@example("bytes=--1", 10)
@example("items=0-1", 10)
def test_range_never_fails_on_garbage(header: str, size: int) -> None:
    """Whatever the header, the answer is the whole entity, a range inside it, or a 416."""
    try:
        got = parse_range(header, size)
    except StoreError as exc:
        assert exc.status == 416
        return
    if not re.fullmatch(r"\s*bytes\s*=\s*\d*\s*-\s*\d*\s*", header):
        assert got is None  # only one well-formed byte range is ever served
    if got is not None:
        assert 0 <= got.start < got.end <= size


# --------------------------------------------------------------------------- names


def bucket_name_ok(name: str) -> bool:
    """S3's general purpose bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/
    userguide/bucketnamingrules.html), written as labels, plus the store's reserved names."""
    if name in RESERVED_BUCKET_NAMES or not 3 <= len(name) <= 63:
        return False
    if any(c not in string.ascii_lowercase + string.digits + ".-" for c in name):
        return False
    labels = name.split(".")
    if not all(lab and lab[0].isalnum() and lab[-1].isalnum() for lab in labels):
        return False  # begins and ends with a letter or digit; no "..", ".-" or "-."
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return True
    return False


BUCKETISH = st.one_of(
    st.text(alphabet="abz09.-", min_size=2, max_size=8),
    st.text(alphabet=string.ascii_lowercase + string.digits + ".-_A ", max_size=70),
    st.from_regex(r"\A[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]\Z"),
    st.builds(
        "{}{}{}".format,
        st.sampled_from(["", "xn--", "sthree-", "192.168."]),
        st.text(alphabet="ab1.-", min_size=1, max_size=6),
        st.sampled_from(["", "-s3alias", "--ol-s3", ".1"]),
    ),
    st.sampled_from(sorted(RESERVED_BUCKET_NAMES)),
)


@given(BUCKETISH)
@example("a..b")
@example("a.-b")
@example("10.0.0.1")
def test_bucket_names_follow_the_s3_rules(name: str) -> None:
    try:
        validate_bucket_name(name)
    except StoreError as exc:
        assert exc.status == 400
        assert exc.code in ("InvalidBucketName", "ReservedName")
        assert not bucket_name_ok(name), f"{name!r} is a valid bucket name"
    else:
        assert bucket_name_ok(name), f"{name!r} was accepted"


@given(st.text(min_size=0, max_size=400) | st.text(alphabet="é漢\x00/", max_size=600))
def test_object_keys_are_utf8_up_to_1024_bytes_without_nul(key: str) -> None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1  # a lone surrogate: not UTF-8
    ok = 0 < size <= MAX_KEY_BYTES and "\x00" not in key
    try:
        validate_key(key)
    except StoreError as exc:
        assert exc.code == "InvalidKey"
        assert not ok
    else:
        assert ok


SEPARATORS = (".", "_", "__")


def repository_name_ok(name: str) -> bool:
    """The distribution spec's name grammar, read component by component: lowercase
    alphanumeric runs joined by ``.``, ``_``, ``__`` or a run of ``-``; components joined by
    ``/``; at most 255 characters (the store's limit)."""
    if not name or len(name) > MAX_NAME:
        return False
    for component in name.split("/"):
        parts = re.split(r"([a-z0-9]+)", component)
        # re.split with a capture group: [sep0, run1, sep1, run2, ..., sepN]
        if len(parts) < 3 or parts[0] or parts[-1]:
            return False
        for sep in parts[2:-1:2]:
            if sep not in SEPARATORS and not (sep and set(sep) == {"-"}):
                return False
    return True


NAMEISH = st.one_of(
    st.text(alphabet="ab09._-/A", max_size=20),
    st.from_regex(
        r"\A[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:[._]|__|-+)?[a-z0]+)*\Z"
    ),
    st.text(alphabet="a/", min_size=250, max_size=260),
)


@given(NAMEISH)
@example("a___b")
@example("a--b")
@example("a/_b")
@example("a" * 256)
def test_repository_names_follow_the_distribution_spec(name: str) -> None:
    try:
        validate_name(name)
    except StoreError as exc:
        assert exc.code == "NameInvalid"
        assert not repository_name_ok(name), f"{name!r} is a valid repository name"
    else:
        assert repository_name_ok(name), f"{name!r} was accepted"


def tag_ok(tag: str) -> bool:
    """``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``, read as: 1 to 128 word characters, dots and
    dashes, not starting with a dot or dash."""
    word = string.ascii_letters + string.digits + "_"
    return 1 <= len(tag) <= 128 and tag[0] in word and all(c in word + ".-" for c in tag)


@given(st.text(alphabet=string.ascii_letters + string.digits + "._-:@/ é", max_size=140))
@example("a" * 128)
@example("a" * 129)
@example(".latest")
@example("-x")
def test_tags_follow_the_distribution_spec(tag: str) -> None:
    assert is_tag(tag) == tag_ok(tag)


# --------------------------------------------------------------------------- S3 XML

S3_MODEL = botocore.session.get_session().get_service_model("s3")

# What XML 1.0 can carry (its Char production), '\r' included: a parser turns a raw CR into
# a line feed, so it must reach the client escaped.
XML_CHAR = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")
    + "\ufffe\uffff",
)
TAGS = st.dictionaries(
    st.text(XML_CHAR, min_size=1, max_size=MAX_TAG_KEY),
    st.text(XML_CHAR, max_size=MAX_TAG_VALUE),
    max_size=MAX_OBJECT_TAGS,
)


def as_xml_reads(text: str) -> str:
    """``text`` after XML end-of-line handling: botocore sends CR raw in request bodies, so
    any XML reader (ours, S3's) sees a line feed there."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def botocore_request_body(operation: str, params: dict[str, Any]) -> bytes:
    serializer = create_serializer("rest-xml")
    body = serializer.serialize_to_request(params, S3_MODEL.operation_model(operation))["body"]
    return body if isinstance(body, bytes) else body.encode()


def botocore_parse(operation: str, body: bytes) -> dict[str, Any]:
    parser = create_parser("rest-xml")
    response = {"body": body, "headers": {}, "status_code": 200}
    return parser.parse(response, S3_MODEL.operation_model(operation).output_shape)


@given(TAGS.filter(lambda tags: len({as_xml_reads(k) for k in tags}) == len(tags)))
@example({"k\r\n": " v\r "})
@example({"<&>\"'": "]]>"})
def test_tagging_round_trips_through_botocore(tags: dict[str, str]) -> None:
    tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
    body = botocore_request_body(
        "PutObjectTagging", {"Bucket": "b", "Key": "k", "Tagging": {"TagSet": tag_set}}
    )
    # what boto3 sends, we read
    assert parse_tagging(body) == {as_xml_reads(k): as_xml_reads(v) for k, v in tags.items()}
    answer = xml.render("Tagging", tagging_xml(tags))
    parsed = botocore_parse("GetObjectTagging", answer)  # what we answer, boto3 reads
    assert {t["Key"]: t["Value"] for t in parsed["TagSet"]} == tags


@given(st.lists(st.text(XML_CHAR, min_size=1, max_size=60), max_size=20, unique=True))
@example(["a\rb", "line\r\n", " padded "])
def test_listing_keys_round_trip_through_botocore(keys: list[str]) -> None:
    answer = xml.render(
        "ListBucketResult",
        {
            "Name": "b",
            "KeyCount": len(keys),
            "IsTruncated": False,
            "Contents": [{"Key": k, "Size": 1} for k in keys],
        },
    )
    parsed = botocore_parse("ListObjectsV2", answer)
    assert [c["Key"] for c in parsed.get("Contents", [])] == keys


@given(st.lists(st.text(XML_CHAR, min_size=1, max_size=60), min_size=1, max_size=20))
def test_delete_objects_body_from_botocore_parses(keys: list[str]) -> None:
    body = botocore_request_body(
        "DeleteObjects",
        {"Bucket": "b", "Delete": {"Objects": [{"Key": k} for k in keys], "Quiet": True}},
    )
    root = xml.parse(body, "Delete")
    assert [xml.child_text(o, "Key") for o in xml.children(root, "Object")] == [
        as_xml_reads(k) for k in keys
    ]
    assert xml.child_text(root, "Quiet") == "true"
