"""Garbage collection marks what every kind of record references (real stores, no mocks)."""

from __future__ import annotations

import time
from pathlib import Path

from zot_artifact_store.metadata import Bucket, Manifest, ObjectRecord, create_metadata_store
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
