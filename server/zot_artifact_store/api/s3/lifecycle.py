"""S3 bucket lifecycle configurations in S3's XML: ``<LifecycleConfiguration>`` to
:class:`~zot_artifact_store.services.lifecycle.LifecycleRule` and back.

What the store does: Expiration (``Days``, ``Date``, ``ExpiredObjectDeleteMarker``),
NoncurrentVersionExpiration (``NoncurrentDays``, ``NewerNoncurrentVersions``) and
AbortIncompleteMultipartUpload, for the keys a rule's filter selects (``Prefix``, ``Tag``,
``ObjectSize*``, ``And``; or the old rule-level ``Prefix``). What it cannot do is refused,
never stored and silently ignored: transitions (there are no storage classes).
"""

from __future__ import annotations

import re
import time
from typing import Any
from xml.etree.ElementTree import Element

from ...errors import StoreError
from ...services.lifecycle import DAY, LifecycleRule, check_rules, new_rule_id
from ...timefmt import parse_time
from . import xml
from .tagging import MAX_TAG_KEY, MAX_TAG_VALUE

_RULE_ELEMENTS = frozenset(
    {"ID", "Filter", "Prefix", "Status", "Expiration", "AbortIncompleteMultipartUpload"}
    | {"NoncurrentVersionExpiration"}
)
_NOT_IMPLEMENTED = {
    "Transition": "transitions (there are no storage classes here)",
    "Transitions": "transitions (there are no storage classes here)",
    "NoncurrentVersionTransition": "transitions (there are no storage classes here)",
    "NoncurrentVersionTransitions": "transitions (there are no storage classes here)",
}
_FILTER_ELEMENTS = ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan")


def _only(element: Element, allowed: tuple[str, ...] | frozenset[str], where: str) -> None:
    for child in element:
        name = xml.local_name(child.tag)
        if name not in allowed:
            raise StoreError("MalformedXML", f"{where} has an unknown element <{name}>")


def _one(element: Element, name: str) -> Element | None:
    found = list(xml.children(element, name))
    if len(found) > 1:
        raise StoreError("MalformedXML", f"<{name}> is given more than once")
    return found[0] if found else None


def _int(element: Element, name: str, rule_id: str) -> int | None:
    child = _one(element, name)
    if child is None:
        return None
    text = (child.text or "").strip()
    if not re.fullmatch(r"-?[0-9]{1,12}", text):
        raise StoreError("InvalidArgument", f"rule {rule_id!r}: <{name}> must be an integer")
    return int(text)


def _tag(element: Element) -> tuple[str, str]:
    key, value = xml.child_text(element, "Key"), xml.child_text(element, "Value")
    if key is None or value is None:
        raise StoreError("MalformedXML", "each <Tag> needs a <Key> and a <Value>")
    if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
        raise StoreError(
            "InvalidTag",
            f"tag keys are 1 to {MAX_TAG_KEY} characters, values at most {MAX_TAG_VALUE}",
        )
    return key, value


def _filter(rule: LifecycleRule, element: Element) -> None:
    """``<Filter>``: one predicate, or ``<And>`` of several."""
    _only(element, (*_FILTER_ELEMENTS, "And"), "<Filter>")
    present = [xml.local_name(c.tag) for c in element]
    if len(present) > 1:
        raise StoreError(
            "MalformedXML", f"rule {rule.id!r}: a <Filter> holds one predicate; use <And>"
        )
    target = _one(element, "And")
    if target is not None:
        _only(target, _FILTER_ELEMENTS, "<And>")
    else:
        target = element
    prefix = _one(target, "Prefix")
    if prefix is not None:
        rule.prefix = prefix.text or ""
    for tag in xml.children(target, "Tag"):
        key, value = _tag(tag)
        if key in rule.tags:
            raise StoreError("InvalidRequest", f"rule {rule.id!r}: the tag {key!r} is given twice")
        rule.tags[key] = value
    rule.size_greater_than = _int(target, "ObjectSizeGreaterThan", rule.id)
    rule.size_less_than = _int(target, "ObjectSizeLessThan", rule.id)


def _expiration(rule: LifecycleRule, element: Element) -> None:
    _only(element, ("Days", "Date", "ExpiredObjectDeleteMarker"), "<Expiration>")
    marker = _one(element, "ExpiredObjectDeleteMarker")
    if marker is not None:
        flag = (marker.text or "").strip()
        if flag not in ("true", "false"):
            raise StoreError(
                "MalformedXML",
                f"rule {rule.id!r}: <ExpiredObjectDeleteMarker> must be true or false",
            )
        if _one(element, "Days") is not None or _one(element, "Date") is not None:
            raise StoreError(
                "InvalidArgument",
                f"rule {rule.id!r}: ExpiredObjectDeleteMarker cannot be specified with Days or "
                "Date in a Lifecycle Expiration Policy",
            )
        rule.expired_marker = flag == "true"
        return
    rule.expiration_days = _int(element, "Days", rule.id)
    date = _one(element, "Date")
    if date is not None:
        if rule.expiration_days is not None:
            raise StoreError(
                "InvalidRequest", f"rule {rule.id!r}: <Expiration> takes Days or Date, not both"
            )
        try:
            when = parse_time((date.text or "").strip())
        except (ValueError, OverflowError):
            raise StoreError(
                "InvalidArgument", f"rule {rule.id!r}: <Date> is not an ISO 8601 time"
            ) from None
        if when % DAY:
            raise StoreError("InvalidArgument", f"rule {rule.id!r}: 'Date' must be at midnight GMT")
        rule.expiration_date = when
    if rule.expiration_days is None and rule.expiration_date is None:
        raise StoreError("MalformedXML", f"rule {rule.id!r}: <Expiration> needs Days or Date")


def _rule(element: Element) -> LifecycleRule:
    for child in element:
        name = xml.local_name(child.tag)
        if name in _NOT_IMPLEMENTED:
            raise StoreError(
                "NotImplemented", f"lifecycle <{name}>: {_NOT_IMPLEMENTED[name]} is not implemented"
            )
    _only(element, _RULE_ELEMENTS, "<Rule>")
    rule_id = xml.child_text(element, "ID") or new_rule_id()
    rule = LifecycleRule(id=rule_id)
    status = xml.child_text(element, "Status")
    if status not in ("Enabled", "Disabled"):
        raise StoreError("MalformedXML", f"rule {rule_id!r}: <Status> must be Enabled or Disabled")
    rule.enabled = status == "Enabled"
    old_prefix, filter_element = _one(element, "Prefix"), _one(element, "Filter")
    if old_prefix is not None and filter_element is not None:
        raise StoreError(
            "MalformedXML", f"rule {rule_id!r}: give <Filter> or the old <Prefix>, not both"
        )
    if old_prefix is not None:
        rule.prefix = old_prefix.text or ""
    if filter_element is not None:
        _filter(rule, filter_element)
    expiration = _one(element, "Expiration")
    if expiration is not None:
        _expiration(rule, expiration)
    noncurrent = _one(element, "NoncurrentVersionExpiration")
    if noncurrent is not None:
        _only(
            noncurrent,
            ("NoncurrentDays", "NewerNoncurrentVersions"),
            "<NoncurrentVersionExpiration>",
        )
        rule.noncurrent_days = _int(noncurrent, "NoncurrentDays", rule_id)
        rule.newer_noncurrent = _int(noncurrent, "NewerNoncurrentVersions", rule_id)
        if rule.noncurrent_days is None:
            raise StoreError(
                "MalformedXML",
                f"rule {rule_id!r}: <NoncurrentVersionExpiration> needs NoncurrentDays",
            )
    abort = _one(element, "AbortIncompleteMultipartUpload")
    if abort is not None:
        _only(abort, ("DaysAfterInitiation",), "<AbortIncompleteMultipartUpload>")
        rule.abort_days = _int(abort, "DaysAfterInitiation", rule_id)
        if rule.abort_days is None:
            raise StoreError(
                "MalformedXML",
                f"rule {rule_id!r}: <AbortIncompleteMultipartUpload> needs DaysAfterInitiation",
            )
    return rule


def parse_lifecycle(body: bytes) -> list[LifecycleRule]:
    """A ``<LifecycleConfiguration>`` body as checked rules (StoreError in S3's terms)."""
    root = xml.parse(body, "LifecycleConfiguration")
    _only(root, ("Rule",), "<LifecycleConfiguration>")
    return check_rules([_rule(r) for r in xml.children(root, "Rule")])


def _iso_date(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def lifecycle_xml(rules: list[LifecycleRule]) -> dict[str, Any]:
    """The ``<LifecycleConfiguration>`` answer's content (GetBucketLifecycleConfiguration)."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        predicates: dict[str, Any] = {}
        if rule.prefix:
            predicates["Prefix"] = rule.prefix
        if rule.tags:
            predicates["Tag"] = [{"Key": k, "Value": v} for k, v in rule.tags.items()]
        if rule.size_greater_than is not None:
            predicates["ObjectSizeGreaterThan"] = rule.size_greater_than
        if rule.size_less_than is not None:
            predicates["ObjectSizeLessThan"] = rule.size_less_than
        count = len(predicates) + max(0, len(rule.tags) - 1)
        item: dict[str, Any] = {
            "ID": rule.id,
            "Filter": {"And": predicates} if count > 1 else predicates,
            "Status": "Enabled" if rule.enabled else "Disabled",
        }
        if rule.expiration_days is not None:
            item["Expiration"] = {"Days": rule.expiration_days}
        elif rule.expiration_date is not None:
            item["Expiration"] = {"Date": _iso_date(rule.expiration_date)}
        elif rule.expired_marker:
            item["Expiration"] = {"ExpiredObjectDeleteMarker": "true"}
        if rule.noncurrent_days is not None:
            item["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule.noncurrent_days}
            if rule.newer_noncurrent is not None:
                item["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] = (
                    rule.newer_noncurrent
                )
        if rule.abort_days is not None:
            item["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": rule.abort_days}
        out.append(item)
    return {"Rule": out}
