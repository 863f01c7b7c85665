"""The embedded default's signing key is set up on first use (issue 23: idle memory): the
first callers share one set-up, and a set-up that failed is tried again by the next caller."""

from __future__ import annotations

import asyncio

import pytest

from zot_artifact_store.services.supplychain.base import SupplyChainBase


class _Service(SupplyChainBase):
    """The signing state of the supply-chain service, with a set-up that counts its runs and
    fails its first ``failures`` runs."""

    def __init__(self, failures: int = 0) -> None:
        self.signing = None
        self.signing_key_id = ""
        self._signing_loader = None
        self._signing_loading = None
        self.loads = 0
        self.failures = failures

    async def load(self) -> None:
        self.loads += 1
        await asyncio.sleep(0.05)
        if self.loads <= self.failures:
            raise OSError("data directory not writable")
        self.signing = "provider"  # type: ignore[assignment]


def test_concurrent_first_uses_share_one_set_up() -> None:
    async def main() -> None:
        service = _Service()
        assert await service.ensure_signing() is None  # nothing configured: no signing
        service.defer_signing(service.load)
        got = await asyncio.gather(*(service.ensure_signing() for _ in range(10)))
        assert got == ["provider"] * 10
        assert await service.ensure_signing() == "provider"
        assert service.loads == 1

    asyncio.run(main())


def test_a_failed_set_up_is_tried_again() -> None:
    async def main() -> None:
        service = _Service(failures=1)
        service.defer_signing(service.load)
        with pytest.raises(OSError, match="not writable"):
            await service.ensure_signing()
        assert await service.ensure_signing() == "provider"
        assert service.loads == 2

    asyncio.run(main())
