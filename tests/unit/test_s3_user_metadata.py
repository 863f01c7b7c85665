"""S3 user metadata values: RFC 2047 encoded-words decoded before storing, non-ASCII returned as
one ``=?UTF-8?B?...?=`` word (what AWS does), and what is not an encoded-word kept as sent."""

from __future__ import annotations

import base64

import pytest

from zot_artifact_store.api.s3.base import decode_metadata_value, encode_metadata_value


def word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (word("héllo ✓"), "héllo ✓"),
        ("=?utf-8?q?h=C3=A9llo_world?=", "héllo world"),
        ("=?ISO-8859-1?Q?gr=FC=DFe?=", "grüße"),
        (f"a {word('é')} {word('é')} b", "a éé b"),  # whitespace between words is dropped
        (word("hello"), "hello"),
        ("build 42", "build 42"),
        ("héllo".encode().decode("latin-1"), "héllo"),  # raw UTF-8 bytes, as Tornado reads them
        ("caf\xe9", "caf\xe9"),  # raw ISO-8859-1 that is not UTF-8
        ("=?UTF-8?B?!!!?=", "=?UTF-8?B?!!!?="),  # not base64: not an encoded-word
        ("=?x-no-such-charset?B?aGk=?=", "=?x-no-such-charset?B?aGk=?="),
    ],
)
def test_decoded_before_storing(sent: str, stored: str) -> None:
    assert decode_metadata_value(sent) == stored


@pytest.mark.parametrize(
    ("stored", "returned"),
    [
        ("plain\tvalue ~", "plain\tvalue ~"),
        ("héllo ✓", word("héllo ✓")),
        ("line\nbreak", word("line\nbreak")),  # a header cannot carry it raw
    ],
)
def test_returned_mail_safe(stored: str, returned: str) -> None:
    assert encode_metadata_value(stored) == returned
    assert decode_metadata_value(returned) == stored
