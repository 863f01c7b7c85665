"""Policy ``Condition`` blocks as AWS writes them: ``{"<Operator>": {"<key>": value(s)}}``.

Operators: ``StringEquals``, ``StringNotEquals``, ``StringEqualsIgnoreCase``,
``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike`` (``*`` and ``?``),
``NumericEquals`` … ``NumericGreaterThanEquals``, ``DateEquals`` … ``DateGreaterThanEquals``,
``Bool``, ``IpAddress``, ``NotIpAddress``, ``Null``; each but ``Null`` also as ``…IfExists``.
Keys (names case-insensitive, a tag's key exact): ``aws:SourceIp``, ``aws:CurrentTime``,
``aws:EpochTime``, ``aws:SecureTransport``, ``aws:username``, ``aws:userid``, ``s3:prefix``,
``s3:delimiter``, ``s3:max-keys``, ``s3:ExistingObjectTag/<key>``,
``s3:RequestObjectTag/<key>``.

As in AWS: several values for one key match when any does (a negated operator: when none
does); several keys and several operators must all hold; a key the request does not have makes
a condition false, a negated one (``StringNotEquals``, ``NotIpAddress`` …) true, an
``…IfExists`` one true, and ``Null: true`` true. A condition this engine cannot honour (another
operator, a key it does not know, ``ForAnyValue:``/``ForAllValues:``) is refused when the
policy is written, naming it: never silently ignored.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError
from ..timefmt import parse_time
from .principal import Principal

# Key types, and the operator families that can test each.
_STRING, _NUMBER, _DATE, _EPOCH, _BOOL, _IP = "string", "number", "date", "epoch", "bool", "ip"
_FAMILIES = {
    _STRING: {"String"},
    _NUMBER: {"Numeric", "String"},
    _DATE: {"Date"},
    _EPOCH: {"Date", "Numeric"},
    _BOOL: {"Bool"},
    _IP: {"Ip"},
}
# Known keys (lower case) and their type; tag keys by prefix.
KEYS = {
    "aws:sourceip": _IP,
    "aws:currenttime": _DATE,
    "aws:epochtime": _EPOCH,
    "aws:securetransport": _BOOL,
    "aws:username": _STRING,
    "aws:userid": _STRING,
    "s3:prefix": _STRING,
    "s3:delimiter": _STRING,
    "s3:max-keys": _NUMBER,
}
EXISTING_TAG = "s3:existingobjecttag/"
REQUEST_TAG = "s3:requestobjecttag/"
_TAG_PREFIXES = (EXISTING_TAG, REQUEST_TAG)
# The actions on an existing object whose requests carry its tags (as AWS gives them).
EXISTING_TAG_ACTIONS = frozenset(
    {
        "s3:GetObject",
        "s3:GetObjectAcl",
        "s3:PutObjectAcl",
        "s3:GetObjectTagging",
        "s3:PutObjectTagging",
        "s3:DeleteObjectTagging",
    }
)

_OPERATORS: dict[str, tuple[str, bool]] = {  # operator → (family, negated)
    "StringEquals": ("String", False),
    "StringNotEquals": ("String", True),
    "StringEqualsIgnoreCase": ("String", False),
    "StringNotEqualsIgnoreCase": ("String", True),
    "StringLike": ("String", False),
    "StringNotLike": ("String", True),
    "NumericEquals": ("Numeric", False),
    "NumericNotEquals": ("Numeric", True),
    "NumericLessThan": ("Numeric", False),
    "NumericLessThanEquals": ("Numeric", False),
    "NumericGreaterThan": ("Numeric", False),
    "NumericGreaterThanEquals": ("Numeric", False),
    "DateEquals": ("Date", False),
    "DateNotEquals": ("Date", True),
    "DateLessThan": ("Date", False),
    "DateLessThanEquals": ("Date", False),
    "DateGreaterThan": ("Date", False),
    "DateGreaterThanEquals": ("Date", False),
    "Bool": ("Bool", False),
    "IpAddress": ("Ip", False),
    "NotIpAddress": ("Ip", True),
}
_COMPARE = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a == b,  # negated by the caller
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}

TagLoader = Callable[[str], Awaitable[Mapping[str, str] | None]]


@dataclass(frozen=True)
class EvalContext:
    """What a request offers conditions: where it came from, when, over which transport, the
    S3 request's own keys (``s3:prefix`` … ``s3:RequestObjectTag/<key>``, names as
    :func:`normalize_key` gives them), and how to read the tags of the object acted on
    (``s3:ExistingObjectTag/<key>``, read only when a statement asks)."""

    source_ip: str = ""
    now: float = field(default_factory=time.time)
    secure_transport: bool = False
    values: Mapping[str, str] = field(default_factory=dict)
    existing_tags: TagLoader | None = None
    object_tags: Mapping[str, str] | None = None  # filled in by the Authorizer
    # The version of the object acted on (S3 ``?versionId=``, "null" for the null version;
    # None: the current one): its public-read ACL and tags are what count.
    version_id: str | None = None


def listing_values(
    prefix: str | None, delimiter: str | None, max_keys: str | None
) -> dict[str, str]:
    """The condition keys of a listing: ``s3:prefix`` (empty when none was sent, as AWS
    compares it), ``s3:delimiter`` and ``s3:max-keys`` when sent."""
    values = {"s3:prefix": prefix or ""}
    if delimiter is not None:
        values["s3:delimiter"] = delimiter
    if max_keys is not None:
        values["s3:max-keys"] = max_keys
    return values


def request_tag_values(tags: Mapping[str, str] | None) -> dict[str, str]:
    """``s3:RequestObjectTag/<key>`` for the tags a write sets."""
    return {REQUEST_TAG + k: v for k, v in (tags or {}).items()}


def normalize_key(key: str) -> str:
    """A condition key as compared: its name lower-cased, a tag's own key kept as written."""
    lowered = key.lower()
    for prefix in _TAG_PREFIXES:
        if lowered.startswith(prefix):
            return prefix + key[len(prefix) :]
    return lowered


def _key_type(key: str) -> str | None:
    for prefix in _TAG_PREFIXES:
        if key.startswith(prefix):
            return _STRING if len(key) > len(prefix) else None
    return KEYS.get(key)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S
    )


@dataclass(frozen=True)
class Condition:
    operator: str  # as written, without IfExists
    key: str  # normalized
    values: tuple[str, ...]
    if_exists: bool = False

    @property
    def needs_object_tags(self) -> bool:
        return self.key.startswith(EXISTING_TAG)

    def holds(self, principal: Principal, ctx: EvalContext) -> bool:
        value = lookup(self.key, principal, ctx)
        if self.operator == "Null":
            return (value is None) == (self.values[0] == "true")
        if value is None:
            return self.if_exists or _OPERATORS[self.operator][1]
        negated = _OPERATORS[self.operator][1]
        matched = any(self._matches(value, v) for v in self.values)
        return not matched if negated else matched

    def _matches(self, actual: str, wanted: str) -> bool:
        op = self.operator
        if op in ("StringEquals", "StringNotEquals"):
            return actual == wanted
        if op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
            return actual.casefold() == wanted.casefold()
        if op in ("StringLike", "StringNotLike"):
            return _glob(wanted).fullmatch(actual) is not None
        if op == "Bool":
            return actual == wanted.lower()
        if op in ("IpAddress", "NotIpAddress"):
            try:
                return ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)
            except ValueError:
                return False
        compare = _COMPARE[op.removeprefix("Numeric").removeprefix("Date")]
        try:
            if op.startswith("Numeric"):
                return bool(compare(float(actual), float(wanted)))
            return bool(compare(_instant(actual), _instant(wanted)))
        except ValueError:
            return False


def _instant(value: str) -> float:
    """A date condition value: RFC 3339 or epoch seconds."""
    try:
        return float(value)
    except ValueError:
        return parse_time(value)


def lookup(key: str, principal: Principal, ctx: EvalContext) -> str | None:
    """The request's value of ``key`` (normalized), or None when it has none."""
    if key == "aws:sourceip":
        return ctx.source_ip or None
    if key == "aws:currenttime":
        return repr(ctx.now)
    if key == "aws:epochtime":
        return str(int(ctx.now))
    if key == "aws:securetransport":
        return "true" if ctx.secure_transport else "false"
    if key == "aws:username":
        return None if principal.is_anonymous else principal.name
    if key == "aws:userid":
        return principal.id
    if key.startswith(EXISTING_TAG):
        tags = ctx.object_tags
        return None if tags is None else tags.get(key[len(EXISTING_TAG) :])
    return ctx.values.get(key)


def _text(value: Any) -> str | None:
    """A condition value as text: JSON booleans and numbers are written bare as often as quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def parse_conditions(cond: Any, where: str) -> tuple[Condition, ...]:
    """Compile a statement's ``Condition`` object, or refuse it (``MalformedPolicy``) naming the
    operator or key this engine cannot honour."""
    if cond is None:
        return ()
    if not isinstance(cond, dict):
        raise StoreError("MalformedPolicy", f"{where} must be an object")
    out: list[Condition] = []
    for raw_op, body in cond.items():
        here = f"{where}.{raw_op}"
        if ":" in raw_op:
            raise StoreError(
                "MalformedPolicy",
                f"{here}: the set operators ForAnyValue:/ForAllValues: are not supported",
            )
        operator = raw_op.removesuffix("IfExists")
        if_exists = operator != raw_op
        if operator not in _OPERATORS and (operator != "Null" or if_exists):
            raise StoreError(
                "MalformedPolicy",
                f"{here}: the condition operator {raw_op!r} is not supported (supported: "
                f"{', '.join([*_OPERATORS, 'Null'])}, and …IfExists)",
            )
        if not isinstance(body, dict) or not body:
            raise StoreError("MalformedPolicy", f"{here} must map condition keys to values")
        for raw_key, raw_values in body.items():
            out.append(_condition(operator, if_exists, raw_key, raw_values, f"{here}.{raw_key}"))
    return tuple(out)


def _condition(operator: str, if_exists: bool, raw_key: str, raw: Any, where: str) -> Condition:
    key = normalize_key(raw_key)
    kind = _key_type(key)
    if kind is None:
        raise StoreError(
            "MalformedPolicy",
            f"{where}: the condition key {raw_key!r} is not supported (supported: aws:SourceIp, "
            "aws:CurrentTime, aws:EpochTime, aws:SecureTransport, aws:username, aws:userid, "
            "s3:prefix, s3:delimiter, s3:max-keys, s3:ExistingObjectTag/<key>, "
            "s3:RequestObjectTag/<key>)",
        )
    items = raw if isinstance(raw, list) else [raw]
    values = [_text(v) for v in items]
    if not values or any(v is None for v in values):
        raise StoreError(
            "MalformedPolicy", f"{where} must be a string, number or boolean, or a list of them"
        )
    texts = tuple(v for v in values if v is not None)
    if any("${" in v for v in texts):
        raise StoreError(
            "MalformedPolicy",
            f"{where}: policy variables (${{aws:username}} …) are not supported; name the "
            "value itself",
        )
    if operator == "Null":
        if len(texts) != 1 or texts[0].lower() not in ("true", "false"):
            raise StoreError("MalformedPolicy", f"{where}: Null takes true or false")
        return Condition(operator, key, (texts[0].lower(),))
    family = _OPERATORS[operator][0]
    if family not in _FAMILIES[kind]:
        raise StoreError("MalformedPolicy", f"{where}: {raw_key} cannot be tested with {operator}")
    for v in texts:
        try:
            if family == "Ip":
                ipaddress.ip_network(v, strict=False)
            elif family == "Numeric":
                float(v)
            elif family == "Date":
                _instant(v)
            elif family == "Bool" and v.lower() not in ("true", "false"):
                raise ValueError(f"{v!r} is not true or false")
        except ValueError as exc:
            raise StoreError("MalformedPolicy", f"{where}: {exc}") from None
    return Condition(operator, key, texts, if_exists)
