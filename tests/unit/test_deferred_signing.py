"""The embedded default's signing key is set up on first use (issue 23: idle memory): the
first callers share one set-up, and a set-up that failed is tried again by the next caller."""

from __future__ import annotations

import asyncio

import pytest

from zot_artifact_store.services.supplychain.base import SupplyChainBase


class _Service(SupplyChainBase):
    def __init__(self) -> None:
        self.signing = None
        self.signing_key_id = ""
        self._signing_loader = None
        self._signing_loading = None


def test_concurrent_first_uses_share_one_set_up() -> None:
    async def main() -> None:
        service = _Service()
        loads = 0

        async def load() -> None:
            nonlocal loads
            loads += 1
            await asyncio.sleep(0.05)
            service.signing = "provider"  # type: ignore[assignment]

        assert await service.ensure_signing() is None  # nothing configured: no signing
        service.defer_signing(load)
        got = await asyncio.gather(*(service.ensure_signing() for _ in range(10)))
        assert got == ["provider"] * 10
        assert await service.ensure_signing() == "provider"
        assert loads == 1

    asyncio.run(main())


def test_a_failed_set_up_is_tried_again() -> None:
    async def main() -> None:
        service = _Service()
        attempts = 0

        async def load() -> None:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise OSError("data directory not writable")
            service.signing = "provider"  # type: ignore[assignment]

        service.defer_signing(load)
        with pytest.raises(OSError, match="not writable"):
            await service.ensure_signing()
        assert await service.ensure_signing() == "provider"
        assert attempts == 2

    asyncio.run(main())
