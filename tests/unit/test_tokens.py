"""API token rules against a real (sqlite) metadata store: expiry, revocation, role limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zot_artifact_store.auth.principal import Principal, root_principal
from zot_artifact_store.auth.tokens import ApiTokens
from zot_artifact_store.errors import StoreError
from zot_artifact_store.metadata import MetadataStore, create_metadata_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    s = create_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    await s.open()
    yield s
    await s.close()


async def test_expired_token_is_refused(store: MetadataStore) -> None:
    tokens = ApiTokens(store)
    token, secret = await tokens.create(root_principal("admin"), "ci", ["reader"], 60)
    principal = await tokens.verify(secret)
    assert principal is not None and principal.roles == {"reader"}
    token.expires_at = time.time() - 1
    await store.update_api_token(token)
    with pytest.raises(StoreError, match="expired"):
        await tokens.verify(secret)


async def test_only_tokens_are_claimed_and_secrets_are_not_stored(store: MetadataStore) -> None:
    tokens = ApiTokens(store)
    assert await tokens.verify("an-ordinary-password") is None
    token, secret = await tokens.create(root_principal("admin"), "ci", ["writer"], None)
    stored = await store.get_api_token(token.token_id)
    assert stored is not None and secret.split("_", 2)[2] not in repr(stored)
    assert stored.expires_at == pytest.approx(time.time() + 30 * 86400, abs=5)


async def test_a_creator_cannot_grant_roles_it_lacks(store: MetadataStore) -> None:
    tokens = ApiTokens(store)
    writer = Principal("token:w", "w", roles=frozenset({"writer"}), source="token")
    with pytest.raises(StoreError) as exc:
        await tokens.create(writer, "escalate", ["admin"], None)
    assert exc.value.code == "AccessDenied"
    token, _ = await tokens.create(writer, "same", ["writer"], None)
    assert token.roles == ["writer"]
