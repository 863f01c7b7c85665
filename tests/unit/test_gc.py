"""Garbage collection marks what every kind of record references (real stores, no mocks)."""

from __future__ import annotations

import time
from pathlib import Path

from zot_artifact_store.metadata import (
    Bucket,
    Manifest,
    ObjectRecord,
    Tag,
    create_metadata_store,
)
from zot_artifact_store.services.gc import GarbageCollector
from zot_artifact_store.storage import create_blob_store


async def test_blobs_referenced_by_objects_parts_and_manifests_survive(tmp_path: Path) -> None:
    blobs = create_blob_store(str(tmp_path / "data"), fsync=False)
    await blobs.open()
    meta = create_metadata_store(f"sqlite:///{tmp_path / 'data' / 'metadata.db'}")
    await meta.open()
    try:
        obj = await blobs.put_bytes(b"object bytes")
        layer = await blobs.put_bytes(b"layer bytes")
        manifest_blob = await blobs.put_bytes(b'{"schemaVersion": 2}')
        orphan = await blobs.put_bytes(b"nobody points here")
        now = time.time()
        await meta.create_bucket(Bucket("b", now))
        await meta.put_object(ObjectRecord("b", "k", obj.digest, obj.size, "e", "x/y", now, now))
        await meta.put_manifest(
            Manifest(
                "repo",
                manifest_blob.digest,
                "application/vnd.oci.image.manifest.v1+json",
                manifest_blob.size,
                now,
                references=[layer.digest],
            )
        )
        report = await GarbageCollector(meta, blobs, delay=0).run()
        assert report.blobs_deleted == 1
        for kept in (obj, layer, manifest_blob):
            assert await blobs.exists(kept.digest)
        assert not await blobs.exists(orphan.digest)

        await meta.delete_manifest("repo", manifest_blob.digest)
        await GarbageCollector(meta, blobs, delay=0).run()
        assert not await blobs.exists(layer.digest) and not await blobs.exists(manifest_blob.digest)
        assert await blobs.exists(obj.digest)
    finally:
        await meta.close()
        await blobs.close()


async def test_untagged_manifests_past_retention_that_nothing_refers_to(tmp_path: Path) -> None:
    blobs = create_blob_store(str(tmp_path / "data"), fsync=False)
    await blobs.open()
    meta = create_metadata_store(f"sqlite:///{tmp_path / 'data' / 'metadata.db'}")
    await meta.open()
    old, young = time.time() - 7200, time.time()
    kinds = "application/vnd.oci.image.manifest.v1+json"

    async def manifest(name: str, created: float, **kw: object) -> Manifest:
        info = await blobs.put_bytes(name.encode())
        m = Manifest("repo", info.digest, kinds, info.size, created, **kw)  # type: ignore[arg-type]
        await meta.put_manifest(m)
        return m

    try:
        tagged = await manifest("tagged", old)
        await meta.put_tag(Tag("repo", "latest", tagged.digest, old))
        orphan = await manifest("orphan", old)
        recent = await manifest("recent", young)
        signature = await manifest("signature of tagged", old, subject=tagged.digest)
        lost_sig = await manifest("signature of orphan", old, subject=orphan.digest)
        child = await manifest("child", old)
        index = await manifest("untagged index", old, references=[child.digest])
        kept_child = await manifest("child of tagged index", old)
        tagged_index = await manifest("tagged index", old, references=[kept_child.digest])
        await meta.put_tag(Tag("repo", "multi", tagged_index.digest, old))

        gc = GarbageCollector(meta, blobs, delay=0, untagged_retention=3600)
        dry = await gc.run(dry_run=True)
        assert dry.manifests_deleted == 4
        assert await meta.get_manifest("repo", orphan.digest) is not None

        report = await gc.run()
        # The orphan, then the signature whose subject it was; the untagged index, then its
        # child once nothing listed it.
        gone = {orphan.digest, lost_sig.digest, index.digest, child.digest}
        assert report.manifests_deleted == len(gone) == 4
        for m in (tagged, recent, signature, kept_child, tagged_index):
            assert await meta.get_manifest("repo", m.digest) is not None, m
            assert await blobs.exists(m.digest)
        for digest in gone:
            assert await meta.get_manifest("repo", digest) is None
            assert not await blobs.exists(digest)

        # Retention 0 (the default) keeps untagged manifests forever.
        keeper = await manifest("another orphan", old)
        assert (await GarbageCollector(meta, blobs, delay=0).run()).manifests_deleted == 0
        assert await meta.get_manifest("repo", keeper.digest) is not None
    finally:
        await meta.close()
        await blobs.close()
