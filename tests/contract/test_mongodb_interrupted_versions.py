"""Versioned writes on the MongoDB backend interrupted between any two of their steps.

MongoDB (and nx-27017) are used without multi-document transactions, so a versioned write is
several single-document steps. A server or replica that dies between two of them must lose no
version: the test runs each operation with a budget of N writes to the real MongoDB-wire server
— the (N+1)th write raises, as if the process died before sending it — for every N until the
operation completes, and after each interruption checks, with a fresh store on the same
database, what a user would see: every version that existed is still there and listed once,
each key has at most one latest version, and running the operation again finishes it.
(sqlite runs each operation in one transaction; its atomicity is the contract suite's.)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.contract.test_metadata import digest, marker, version
from tests.fixtures.mongo import database_uri
from zot_artifact_store.metadata import MetadataStore, create_metadata_store

WRITES = frozenset(
    {
        "insert_one",
        "insert_many",
        "replace_one",
        "update_one",
        "update_many",
        "delete_one",
        "delete_many",
        "find_one_and_update",
        "find_one_and_delete",
        "find_one_and_replace",
    }
)


class Interrupted(Exception):
    """The process 'died' before sending this write."""


class Budget:
    def __init__(self, writes: int) -> None:
        self.left = writes
        self.spent = 0


class InterruptingCollection:
    """A real pymongo collection whose writes stop once the budget is spent."""

    def __init__(self, collection: Any, budget: Budget) -> None:
        self._collection = collection
        self._budget = budget

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name not in WRITES:
            return attr

        async def write(*args: Any, **kwargs: Any) -> Any:
            if self._budget.left == 0:
                raise Interrupted(name)
            self._budget.left -= 1
            self._budget.spent += 1
            return await attr(*args, **kwargs)

        return write


Setup = Callable[[MetadataStore], Awaitable[None]]
Operation = Callable[[MetadataStore], Awaitable[Any]]


async def listing(store: MetadataStore) -> list[tuple[str, str, bool, bool]]:
    page = await store.list_object_versions("v")
    return [
        (r.key, r.version_id, r.delete_marker, r.noncurrent_since is None) for r in page.objects
    ]


async def check_nothing_lost(store: MetadataStore, kept: list[str]) -> None:
    rows = await listing(store)
    ids = [vid for _, vid, _, _ in rows]
    assert len(ids) == len(set(ids)), f"a version is listed twice: {rows}"
    assert sum(1 for *_, latest in rows if latest) <= 1, f"two latest versions: {rows}"
    for vid in kept:
        assert vid in ids, f"version {vid!r} was lost: {rows}"
        found = await store.get_object_version("v", "k", vid)
        assert found is not None and found.version_id == vid
    current = await store.get_object("v", "k")
    if current is not None:
        assert rows and rows[0][1] == current.version_id and rows[0][3], rows


async def two_versions(store: MetadataStore) -> None:
    await store.put_object_version(version("k", 1, 1.0))
    await store.put_object_version(version("k", 2, 2.0))


async def version_then_marker(store: MetadataStore) -> None:
    await store.put_object_version(version("k", 1, 1.0))
    await store.put_object_version(marker("k", "m2", 2.0))


async def null_then_version(store: MetadataStore) -> None:
    await store.put_object_version(version("k", 1, 1.0, vid=""))  # written while suspended
    await store.put_object_version(version("k", 2, 2.0))


Listed = list[tuple[str, bool, bool]]  # (version id, delete marker, latest), newest first

# name: (state before, the operation, versions no interruption may lose, listing at the end)
SCENARIOS: dict[str, tuple[Setup, Operation, list[str], Listed]] = {
    "overwrite": (
        two_versions,
        lambda s: s.put_object_version(version("k", 3, 3.0)),
        ["v1", "v2"],
        [("v3", False, True), ("v2", False, False), ("v1", False, False)],
    ),
    "delete_marker": (
        two_versions,
        lambda s: s.put_object_version(marker("k", "m3", 3.0)),
        ["v1", "v2"],
        [("m3", True, True), ("v2", False, False), ("v1", False, False)],
    ),
    "write_after_marker": (
        version_then_marker,
        lambda s: s.put_object_version(version("k", 3, 3.0)),
        ["v1", "m2"],
        [("v3", False, True), ("m2", True, False), ("v1", False, False)],
    ),
    "null_overwrite": (  # the old null version is replaced in place; v2 must stay
        null_then_version,
        lambda s: s.put_object_version(version("k", 3, 3.0, vid="")),
        ["v2"],
        [("", False, True), ("v2", False, False)],
    ),
    "delete_latest": (
        two_versions,
        lambda s: s.delete_object_version("v", "k", "v2"),
        ["v1"],
        [("v1", False, True)],
    ),
    "delete_latest_marker": (
        version_then_marker,
        lambda s: s.delete_object_version("v", "k", "m2"),
        ["v1"],
        [("v1", False, True)],
    ),
}


def interrupting(plain: Callable[[str], Any], budget: Budget) -> Callable[[str], Any]:
    return lambda name: InterruptingCollection(plain(name), budget)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_mongodb_versioned_operation_interrupted_at_every_step_loses_no_version(
    mongodb_base_uri: str, name: str
) -> None:
    prepare, operate, kept, final = SCENARIOS[name]
    completed = False
    interruptions = 0
    for writes in range(0, 20):
        uri = database_uri(mongodb_base_uri, f"zas_cut_{uuid.uuid4().hex[:12]}")
        setup_store = create_metadata_store(uri)
        await setup_store.open()
        await prepare(setup_store)
        budget = Budget(writes)
        plain = setup_store._c  # type: ignore[attr-defined]
        setup_store._c = interrupting(plain, budget)  # type: ignore[attr-defined]
        try:
            await operate(setup_store)
            completed = True
        except Interrupted:
            interruptions += 1
        finally:
            setup_store._c = plain  # type: ignore[attr-defined]
            await setup_store.close()
        after = create_metadata_store(uri)  # as a restarted replica sees it
        await after.open()
        try:
            await check_nothing_lost(after, kept)
            await operate(after)  # the client retries; the operation finishes
            await check_nothing_lost(after, [vid for vid, _, _ in final])
            rows = await listing(after)
            assert [(vid, dm, latest) for _, vid, dm, latest in rows] == final, (writes, rows)
            expected = {digest(int(vid[1:])) for vid, dm, _ in final if vid and not dm}
            if name == "null_overwrite":
                expected.add(digest(3))
            assert await after.object_digests() == expected
        finally:
            await after.close()
        if completed:
            break
    assert completed, "the operation never completed within 20 writes"
    assert interruptions >= 2, "the operation had fewer steps than expected: nothing was tested"
