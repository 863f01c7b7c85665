"""The web UI's sealed session cookie (api/ui/session.py): opens only as sealed, only before
it expires, only under the key and purpose it was sealed with; and the login redirect target
stays inside the UI."""

from __future__ import annotations

import time

import pytest

from zot_artifact_store.api.ui.base import safe_next
from zot_artifact_store.api.ui.session import (
    MAX_COOKIE_VALUE,
    OIDCLogin,
    Session,
    basic,
    sealed_to_fit,
)
from zot_artifact_store.auth.access_keys import SecretBox
from zot_artifact_store.errors import StoreError

BOX = SecretBox(b"k" * 32)


def test_a_sealed_session_opens_to_what_was_sealed() -> None:
    session = Session.new("Bearer zat_abc_def")
    sealed = session.seal(BOX)
    assert "zat_abc" not in sealed and "=" not in sealed and ";" not in sealed
    assert Session.open(BOX, sealed) == session


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),  # a flipped tag
        lambda s: s[:20],  # cut short
        lambda s: "not base64 at all!",
        lambda s: "",
    ],
)
def test_damaged_cookies_do_not_open(damage) -> None:  # type: ignore[no-untyped-def]
    assert Session.open(BOX, damage(Session.new("Bearer x").seal(BOX))) is None


def test_another_key_or_purpose_does_not_open_it() -> None:
    sealed = Session.new("Bearer x").seal(BOX)
    assert Session.open(SecretBox(b"o" * 32), sealed) is None
    # Something else the secrets key seals (an access key's secret) is not a session.
    other = BOX.seal('{"v":1,"a":"Bearer x","e":9999999999,"c":"n"}', "ZAKSOMEKEY")
    assert Session.open(BOX, other.replace("+", "-").replace("/", "_").rstrip("=")) is None


def test_an_expired_session_does_not_open() -> None:
    expired = Session("Bearer x", time.time() - 1, "nonce").seal(BOX)
    assert Session.open(BOX, expired) is None
    assert Session.open(BOX, Session.new("Bearer x", ttl_s=60).seal(BOX)) is not None


def test_an_oidc_session_keeps_its_issuer_and_refresh_token() -> None:
    session = Session.new("Bearer eyJ.x.y", issuer="https://sso.example/realms/a", refresh="rt")
    opened = Session.open(BOX, session.seal(BOX))
    assert opened == session and opened.refresh == "rt"
    assert Session.open(BOX, Session.new("Bearer x").seal(BOX)).refresh is None  # type: ignore[union-attr]


def test_an_oidc_login_under_way_is_sealed_apart_from_sessions() -> None:
    started = OIDCLogin.new("/ui/buckets/b")
    sealed = started.seal(BOX)
    for secret in (started.state, started.nonce, started.verifier):
        assert secret not in sealed
    assert OIDCLogin.open(BOX, sealed) == started
    assert len(started.verifier) >= 43 and started.state != started.nonce  # RFC 7636: 43-128
    # Neither opens as the other: a login cookie is no session, a session no login.
    assert Session.open(BOX, sealed) is None
    assert OIDCLogin.open(BOX, Session.new("Bearer x").seal(BOX)) is None
    late = OIDCLogin("s", "n", "v" * 43, "/ui/", time.time() - 1).seal(BOX)
    assert OIDCLogin.open(BOX, late) is None


def test_a_session_too_large_for_a_cookie_drops_its_refresh_token_or_is_refused() -> None:
    small = Session.new("Bearer " + "a" * 1000, issuer="https://i", refresh="r" * 500)
    assert sealed_to_fit(small, BOX)[0] == small
    big = Session.new("Bearer " + "a" * 2000, issuer="https://i", refresh="r" * 1500)
    kept, sealed = sealed_to_fit(big, BOX)
    assert kept.refresh is None and kept.authorization == big.authorization
    assert len(sealed) <= MAX_COOKIE_VALUE and Session.open(BOX, sealed) == kept
    with pytest.raises(StoreError, match="too large for a session cookie"):
        sealed_to_fit(Session.new("Bearer " + "a" * 3500), BOX)


def test_basic_credentials() -> None:
    assert basic("root", "p:w") == "Basic cm9vdDpwOnc="


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/buckets/b?prefix=a%2F", "/ui/buckets/b?prefix=a%2F"),
        ("https://evil.example/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui//evil.example", "/ui/"),
        ("/ui/\\evil", "/ui/"),
        ("/v1/buckets", "/ui/"),
        (None, "/ui/"),
    ],
)
def test_login_redirects_stay_inside_the_ui(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
