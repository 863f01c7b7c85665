"""The failed-authentication model (auth/ratelimit.py) on a real sqlite metadata store with a
controlled clock: what a request presents, whom it throttles, when a block lifts."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zot_artifact_store.auth.ratelimit import FailureLimiter, Presented, source_of
from zot_artifact_store.config import LockoutConfig
from zot_artifact_store.metadata import MetadataStore, create_metadata_store

TOKEN = "zat_0123456789abcdef_" + "s" * 43


class Clock:
    def __init__(self) -> None:
        self.now = 6_000_000.0  # a slot boundary (slots are a tenth of the window)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    s = create_metadata_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    await s.open()
    yield s
    await s.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_every_presentation_names_its_identity() -> None:
    assert Presented.of(basic("alice", "pw"), {}).identities == ("name:alice",)
    # An API token as a registry login's password is the token, whatever the user name.
    assert Presented.of(basic("anyone", TOKEN), {}).identities == ("token:0123456789abcdef",)
    assert Presented.of({"Authorization": f"Bearer {TOKEN}"}, {}).identities == (
        "token:0123456789abcdef",
    )
    sigv4 = "AWS4-HMAC-SHA256 Credential=AKID1/20261205/us-east-1/s3/aws4_request, S=x"
    assert Presented.of({"Authorization": sigv4}, {}).identities == ("name:AKID1",)
    assert Presented.of({"Authorization": "AWS AKID2:c2ln"}, {}).identities == ("name:AKID2",)
    query = {"X-Amz-Credential": ["AKID3/20261205/us-east-1/s3/aws4_request"]}
    assert Presented.of({}, query).identities == ("name:AKID3",)
    assert Presented.of({}, {"AWSAccessKeyId": ["AKID4"], "Signature": ["x"]}).identities == (
        "name:AKID4",
    )
    v1 = {"zas-principal": ["token:0123456789abcdef"], "zas-signature": ["00"]}
    assert Presented.of({}, v1).identities == ("presign:token:0123456789abcdef",)
    # A JWT names nobody guessable, yet it is a credential (its source counts).
    jwt = Presented.of({"Authorization": "Bearer eyJhbGciOi.x.y"}, {})
    assert jwt.any and jwt.identities == ()
    assert not Presented.of({}, {"metadata": ["true"]}).any
    assert Presented.of({"Authorization": "Bearer junk"}, v1).both


def test_sources() -> None:
    assert source_of("192.0.2.1") == "192.0.2.1"
    assert source_of("::ffff:192.0.2.1") == "192.0.2.1"
    # One host owns a whole /64.
    assert source_of("2001:db8:1:2::1") == source_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")


async def test_pair_limit_refuses_one_source_only_and_lifts(store: MetadataStore) -> None:
    clock = Clock()
    config = LockoutConfig(attempts=3, addressAttempts=100, identityAttempts=0, window=60)
    limiter = FailureLimiter(store, config, clock)
    guess = Presented.of(basic("ci", "wrong"), {})
    for _ in range(3):
        assert (await limiter.check(guess, "198.51.100.1")).retry_after == 0
        await limiter.failed(guess, "198.51.100.1")
        clock.now += 10
    verdict = await limiter.check(guess, "198.51.100.1")
    # The first failure (slot of t=0) leaves the window at t=60; it is now t=30.
    assert verdict.retry_after == 30 and verdict.delay == 0
    assert (await limiter.check(guess, "192.0.2.7")).retry_after == 0  # the owner, elsewhere
    other = Presented.of(basic("someone-else", "pw"), {})
    assert (await limiter.check(other, "198.51.100.1")).retry_after == 0
    clock.now += 30
    assert (await limiter.check(guess, "198.51.100.1")).retry_after == 0


async def test_address_limit_and_identity_delay(store: MetadataStore) -> None:
    clock = Clock()
    config = LockoutConfig(
        attempts=100, addressAttempts=4, identityAttempts=6, identityDelay=2, window=60
    )
    limiter = FailureLimiter(store, config, clock)
    for i in range(4):  # four names from one address: the address is over its limit
        await limiter.failed(Presented.of(basic(f"user{i}", "x"), {}), "203.0.113.9")
    assert (await limiter.check(Presented.of(basic("root", "pw"), {}), "203.0.113.9")).retry_after
    # Six failures against one token from six addresses: slowed, never refused.
    token = Presented.of({"Authorization": f"Bearer {TOKEN}"}, {})
    for i in range(6):
        await limiter.failed(token, f"198.51.100.{i + 10}")
    verdict = await limiter.check(token, "192.0.2.50")
    assert verdict == type(verdict)(retry_after=0, delay=2)
    # Two limiters (two workers or replicas) on one store see the same counts.
    other = FailureLimiter(store, config, clock)
    assert (await other.check(token, "192.0.2.51")).delay == 2
    clock.now += 61
    assert (await other.check(token, "192.0.2.51")).delay == 0
