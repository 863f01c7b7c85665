"""Properties of the policy engine (auth/policy.py) and the Authorizer (auth/authz.py), over
generated principals, statements (parsed from JSON documents as users write them), actions,
resources and request contexts:

* an applicable Deny always wins (save root's lock-out-proof policy actions);
* adding an Allow never removes access; adding a Deny never adds it;
* the order of statements does not change the decision.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from zot_artifact_store.auth.authz import LOCKOUT_PROOF_ACTIONS, Authorizer
from zot_artifact_store.auth.policy import EvalContext, Statement, parse_statements
from zot_artifact_store.auth.principal import Principal

ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "s3:PutBucketPolicy",
    "oci:pull",
    "oci:push",
    "supplychain:sign",
    "supplychain:readEvidence",
    "admin:PutPolicy",
    "admin:ListTokens",
    "events:Publish",
]
ACTION_PATTERNS = [*ACTIONS, "*", "s3:*", "s3:Get*", "oci:*", "*Policy", "s3:?utObject"]
RESOURCES = ["builds", "builds/a.txt", "builds/x/y", "other/k", "repo:team/app", "policies", ""]
RESOURCE_PATTERNS = [*RESOURCES[:-1], "*", "builds/*", "builds/x/*", "repo:team/*", "o*"]
IDS = ["root:admin", "token:abc", "oidc:https://idp#alice", "s3key:bob", "anonymous"]
ROLES = ["admin", "writer", "reader", "events-publisher", "auditor"]
GROUPS = ["devs", "ops"]
PRINCIPAL_PATTERNS = ["*", *IDS, "token:*", "role:writer", "role:reader", "group:devs"]
IPS = ["10.0.0.5", "192.168.1.9", "2001:db8::1", ""]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _one_or_list(values: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(values), st.lists(st.sampled_from(values), min_size=1, max_size=3)
    )


CONDITIONS = st.one_of(
    st.just({}),
    st.builds(
        lambda op, cidrs: {op: {"aws:SourceIp": cidrs}},
        st.sampled_from(["IpAddress", "NotIpAddress"]),
        _one_or_list(["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"]),
    ),
    st.builds(
        lambda op, days: {op: {"aws:CurrentTime": (T0 + dt.timedelta(days=days)).isoformat()}},
        st.sampled_from(["DateGreaterThan", "DateLessThan"]),
        st.integers(-3, 3),
    ),
)


def statement_doc(effect: str | None = None) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "Effect": st.sampled_from(["Allow", "Deny"]) if effect is None else st.just(effect),
            "Principal": st.one_of(
                _one_or_list(PRINCIPAL_PATTERNS),
                st.builds(lambda p: {"AWS": p}, _one_or_list(PRINCIPAL_PATTERNS)),
            ),
            "Action": _one_or_list(ACTION_PATTERNS),
            "Resource": _one_or_list(RESOURCE_PATTERNS),
            "Condition": CONDITIONS,
        }
    )


def aimed_at(
    effect: str, principal: Principal, action: str, resource: str
) -> st.SearchStrategy[dict[str, Any]]:
    """A statement that names this request's principal, action and resource (exactly or by a
    wildcard) more often than not: random statements seldom apply to a given request."""
    who = [principal.id, "*", *(f"role:{r}" for r in principal.roles)]
    return st.fixed_dictionaries(
        {
            "Effect": st.just(effect),
            "Principal": st.one_of(st.sampled_from(who), _one_or_list(PRINCIPAL_PATTERNS)),
            "Action": st.one_of(st.sampled_from([action, "*"]), _one_or_list(ACTION_PATTERNS)),
            "Resource": st.one_of(
                st.sampled_from([resource or "*", "*"]), _one_or_list(RESOURCE_PATTERNS)
            ),
            "Condition": CONDITIONS,
        }
    )


def compiled(docs: list[dict[str, Any]], source: str = "generated") -> list[Statement]:
    return parse_statements({"Statement": docs}, source) if docs else []


PRINCIPALS = st.builds(
    Principal,
    id=st.sampled_from(IDS),
    name=st.just("someone"),
    roles=st.frozensets(st.sampled_from(ROLES), max_size=2),
    groups=st.frozensets(st.sampled_from(GROUPS), max_size=2),
    source=st.sampled_from(["root", "oidc", "token", "s3key", "anonymous"]),
    scopes=st.one_of(
        st.none(),
        st.frozensets(
            st.builds("{} {}".format, st.sampled_from(ACTIONS), st.sampled_from(RESOURCES)),
            max_size=3,
        ),
    ),
)
CONTEXTS = st.builds(
    EvalContext,
    source_ip=st.sampled_from(IPS),
    now=st.integers(-4, 4).map(lambda d: (T0 + dt.timedelta(days=d, hours=1)).timestamp()),
)
PUBLIC = st.frozensets(st.sampled_from(["builds", "other"]), max_size=2)


class FixedPolicies:
    """The statements the store holds (global and bucket), without a metadata store."""

    def __init__(self, statements: list[Statement]) -> None:
        self.statements = statements

    async def statements_for(self, resource: str) -> list[Statement]:
        return self.statements


def decide(
    statements: list[Statement],
    principal: Principal,
    action: str,
    resource: str,
    ctx: EvalContext,
    public: frozenset[str],
) -> bool:
    async def is_public(res: str, version_id: str | None = None) -> bool:
        return res.split("/", 1)[0] in public

    authz = Authorizer(is_public, FixedPolicies(statements))  # type: ignore[arg-type]
    return asyncio.run(authz.decide(principal, action, resource, ctx)).allowed


CASE = st.tuples(
    st.lists(statement_doc(), max_size=6),
    PRINCIPALS,
    st.sampled_from(ACTIONS),
    st.sampled_from(RESOURCES),
    CONTEXTS,
    PUBLIC,
)


@given(CASE, st.data(), st.integers(0, 6))
def test_an_applicable_deny_always_wins(case: tuple, data: st.DataObject, where: int) -> None:
    docs, principal, action, resource, ctx, public = case
    deny_doc = data.draw(aimed_at("Deny", principal, action, resource))
    deny = compiled([deny_doc], "deny")[0]
    statements = compiled(docs)
    statements.insert(min(where, len(statements)), deny)
    allowed = decide(statements, principal, action, resource, ctx, public)
    if deny.applies(principal, action, resource, ctx) and not (
        principal.source == "root" and action in LOCKOUT_PROOF_ACTIONS
    ):
        assert not allowed


@given(CASE, st.data(), st.integers(0, 6))
def test_adding_an_allow_never_removes_access(case: tuple, data: st.DataObject, where: int) -> None:
    docs, principal, action, resource, ctx, public = case
    allow_doc = data.draw(aimed_at("Allow", principal, action, resource))
    statements = compiled(docs)
    before = decide(statements, principal, action, resource, ctx, public)
    statements.insert(min(where, len(statements)), compiled([allow_doc], "allow")[0])
    after = decide(statements, principal, action, resource, ctx, public)
    assert after or not before


@given(CASE, st.data(), st.integers(0, 6))
def test_adding_a_deny_never_adds_access(case: tuple, data: st.DataObject, where: int) -> None:
    docs, principal, action, resource, ctx, public = case
    deny_doc = data.draw(aimed_at("Deny", principal, action, resource))
    statements = compiled(docs)
    before = decide(statements, principal, action, resource, ctx, public)
    statements.insert(min(where, len(statements)), compiled([deny_doc], "deny")[0])
    after = decide(statements, principal, action, resource, ctx, public)
    assert before or not after


@given(CASE, st.randoms(use_true_random=False))
def test_statement_order_does_not_matter(case: tuple, rnd: Any) -> None:
    docs, principal, action, resource, ctx, public = case
    statements = compiled(docs)
    before = decide(statements, principal, action, resource, ctx, public)
    rnd.shuffle(statements)
    assert decide(statements, principal, action, resource, ctx, public) == before


@given(st.lists(statement_doc("Allow"), min_size=1, max_size=4), PRINCIPALS, CONTEXTS)
def test_an_applicable_allow_grants_unless_a_scope_decides(
    docs: list[dict[str, Any]], principal: Principal, ctx: EvalContext
) -> None:
    """Allow statements are not dead weight: when one applies and the principal carries no
    token scope, the action is allowed."""
    statements = compiled(docs)
    for action in ACTIONS:
        for resource in RESOURCES:
            applies = any(s.applies(principal, action, resource, ctx) for s in statements)
            if applies and principal.scopes is None:
                assert decide(statements, principal, action, resource, ctx, frozenset())


ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.sampled_from(["", "junk", "10.1.2.3", "192.168.1.9", "2001:db8::1"]),
)
NETWORKS = st.lists(
    st.one_of(
        st.builds("{}/{}".format, st.ip_addresses(v=4), st.integers(0, 32)),
        st.builds("{}/{}".format, st.ip_addresses(v=6), st.integers(0, 128)),
        st.sampled_from(["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"]),
    ).map(lambda n: str(ipaddress.ip_network(n, strict=False))),
    min_size=1,
    max_size=3,
)


@given(ADDRESSES, NETWORKS, st.sampled_from(["IpAddress", "NotIpAddress"]))
def test_ip_conditions_match_the_networks(address: str, networks: list[str], op: str) -> None:
    """Found by mutation testing: the relations above never pinned what a condition means."""
    try:
        ip = ipaddress.ip_address(address)
        inside = any(ip in ipaddress.ip_network(n) for n in networks)
    except ValueError:
        inside = None  # no usable source address: only NotIpAddress holds
    [st_] = compiled(
        [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
          "Condition": {op: {"aws:SourceIp": networks}}}]
    )  # fmt: skip
    applies = st_.applies(Principal("x", "x"), "s3:GetObject", "b", EvalContext(address, 0.0))
    if inside is None:
        assert applies == (op == "NotIpAddress")
    else:
        assert applies == (inside if op == "IpAddress" else not inside)


@given(st.integers(-(10**6), 10**6), st.sampled_from(["DateGreaterThan", "DateLessThan"]))
def test_date_conditions_compare_with_now(offset: int, op: str) -> None:
    limit = T0.timestamp()
    [st_] = compiled(
        [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
          "Condition": {op: {"aws:CurrentTime": T0.isoformat()}}}]
    )  # fmt: skip
    now = limit + offset
    applies = st_.applies(Principal("x", "x"), "s3:GetObject", "b", EvalContext("", now))
    assert applies == (now > limit if op == "DateGreaterThan" else now < limit)


def _glob(pattern: str, text: str) -> bool:
    """``*`` and ``?`` globs, as a regular expression (an oracle independent of fnmatch)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


@given(statement_doc(), PRINCIPALS, st.sampled_from(ACTIONS), st.sampled_from(RESOURCES))
def test_a_statement_applies_exactly_when_each_part_matches(
    doc: dict[str, Any], principal: Principal, action: str, resource: str
) -> None:
    """Found by mutation testing: nothing pinned `applies` itself (and/or, role:, group:)."""
    [statement] = compiled([{**doc, "Condition": {}}])

    def principal_ok(p: str) -> bool:
        if p.startswith("role:"):
            return p[5:] in principal.roles
        if p.startswith("group:"):
            return p[6:] in principal.groups
        return _glob(p, principal.id)

    def resource_ok(r: str) -> bool:
        return _glob(r, resource) or (r.endswith("/*") and resource == r[:-2])

    expected = (
        any(principal_ok(p) for p in statement.principals)
        and any(_glob(a, action) for a in statement.actions)
        and any(resource_ok(r) for r in statement.resources)
    )
    assert statement.applies(principal, action, resource, EvalContext()) == expected
