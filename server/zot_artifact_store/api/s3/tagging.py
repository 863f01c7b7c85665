"""S3 tags as AWS limits them: an object's (PutObjectTagging's ``<Tagging>`` body or the
``x-amz-tagging`` header of a write) and a bucket's (PutBucketTagging)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

from ...errors import StoreError
from . import xml

# S3's limits: an object has at most 10 tags, a bucket at most 50; keys 1-128 characters,
# values at most 256, each key once.
MAX_OBJECT_TAGS, MAX_BUCKET_TAGS = 10, 50
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256


def check_tags(pairs: Iterable[tuple[str, str]], limit: int, what: str) -> dict[str, str]:
    """``pairs`` as a tag map, or ``InvalidTag`` when they break S3's limits."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise StoreError(
                "InvalidTag",
                f"tag keys are 1 to {MAX_TAG_KEY} characters, values at most {MAX_TAG_VALUE}",
            )
        if key in tags:
            raise StoreError("InvalidTag", f"the tag key {key!r} is given twice")
        tags[key] = value
    if len(tags) > limit:
        raise StoreError("InvalidTag", f"{what} has at most {limit} tags")
    return tags


def parse_tagging(
    body: bytes, limit: int = MAX_OBJECT_TAGS, what: str = "an object"
) -> dict[str, str]:
    """A ``<Tagging><TagSet><Tag><Key/><Value/></Tag>…`` body, within S3's limits."""
    root = xml.parse(body, "Tagging")
    pairs: list[tuple[str, str]] = []
    for tag_set in xml.children(root, "TagSet"):
        for tag in xml.children(tag_set, "Tag"):
            key, value = xml.child_text(tag, "Key"), xml.child_text(tag, "Value")
            if key is None or value is None:
                raise StoreError("MalformedXML", "each Tag needs a Key and a Value")
            pairs.append((key, value))
    return check_tags(pairs, limit, what)


def parse_tagging_header(value: str) -> dict[str, str]:
    """The ``x-amz-tagging`` header of PutObject, CopyObject and CreateMultipartUpload: URL
    query encoded (``team=build&stage=rc%201``), within the limits of object tags."""
    pairs = urllib.parse.parse_qsl(value, keep_blank_values=True)
    return check_tags(pairs, MAX_OBJECT_TAGS, "an object")


def tagging_xml(tags: dict[str, str]) -> dict[str, object]:
    """The ``<Tagging>`` answer's content (GetObjectTagging, GetBucketTagging)."""
    return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}}
