"""The OCI distribution API (spec v1.1) over HTTP against the running server, on both
metadata backends: the spec's pull, push, content-discovery and content-management
workflows, bad inputs included. Every error must be the spec's JSON with its code."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fixtures.oci_layout import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def oci_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    if r.request.method == "HEAD":  # no body to carry the code
        return {}
    assert r.headers["content-type"].startswith("application/json"), r.headers
    errors = r.json()["errors"]
    assert errors and errors[0]["code"] == code, errors
    assert errors[0]["message"]
    return errors[0]


def repo_name() -> str:
    return f"conformance/{uuid.uuid4().hex[:10]}"


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = sha256(data)
    r = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    return digest


def descriptor(media_type: str, data: bytes, **extra: object) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def index_of(media_type: str, child_type: str, child: bytes, arch: str) -> bytes:
    """A one-platform index (OCI) or manifest list (Docker) of ``child``."""
    platform = {"architecture": arch, "os": "linux"}
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [descriptor(child_type, child, platform=platform)],
        }
    ).encode()


def image(client: httpx.Client, repo: str, layers: int = 2, **manifest_extra: object) -> bytes:
    """Push a config and layers; return the bytes of a manifest that references them."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()})
    push_blob(client, repo, config.encode())
    blobs = [os.urandom(1000 + i) for i in range(layers)]
    for blob in blobs:
        push_blob(client, repo, blob)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config.encode()),
        "layers": [descriptor(OCI_LAYER, b) for b in blobs],
        **manifest_extra,
    }
    # Unusual spacing: the registry must keep the exact bytes (the digest is of the bytes).
    return json.dumps(doc, indent=3).encode()


def put_manifest(
    client: httpx.Client, repo: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": media_type}
    )


# ---- base and pull --------------------------------------------------------------------------


def test_base_endpoint_answers_with_the_api_version(client: httpx.Client) -> None:
    r = client.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert client.get("/v2").status_code == 200


def test_pull_by_tag_and_digest_returns_the_exact_bytes(client: httpx.Client) -> None:
    repo = repo_name()
    body = image(client, repo)
    r = put_manifest(client, repo, "v1.0", body)
    assert r.status_code == 201, r.text
    digest = sha256(body)
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["location"] == f"/v2/{repo}/manifests/{digest}"
    for ref in ("v1.0", digest):
        got = client.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == digest
        head = client.head(f"/v2/{repo}/manifests/{ref}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(body))
        assert head.headers["docker-content-digest"] == digest
        assert head.content == b""


def test_docker_schema2_manifest_and_list_keep_their_media_types(client: httpx.Client) -> None:
    repo = repo_name()
    config, layer = b'{"os":"linux"}', os.urandom(2048)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor("application/vnd.docker.container.image.v1+json", config),
            "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)],
        }
    ).encode()
    assert put_manifest(client, repo, "amd64", manifest, DOCKER_MANIFEST).status_code == 201
    listing = index_of(DOCKER_LIST, DOCKER_MANIFEST, manifest, "amd64")
    assert put_manifest(client, repo, "latest", listing, DOCKER_LIST).status_code == 201
    r = client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": DOCKER_LIST})
    assert r.headers["content-type"] == DOCKER_LIST
    assert r.content == listing
    r = client.get(f"/v2/{repo}/manifests/amd64")
    assert r.headers["content-type"] == DOCKER_MANIFEST
    # Accept negotiation: a client that lists manifest types, but not this one, is told the
    # manifest is unknown instead of being sent a format it cannot read.
    only_oci = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
    oci_error(client.get(f"/v2/{repo}/manifests/latest", headers=only_oci), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{repo}/manifests/amd64", headers=only_oci).status_code == 404
    both = {"Accept": f"{OCI_MANIFEST};q=0.9, {DOCKER_MANIFEST}"}
    assert client.get(f"/v2/{repo}/manifests/amd64", headers=both).status_code == 200
    assert client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": "*/*"}).content == listing


def test_blob_get_head_and_range(client: httpx.Client) -> None:
    repo = repo_name()
    data = os.urandom(100_000)
    digest = push_blob(client, repo, data)
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["docker-content-digest"] == digest
    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    part = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]


def test_pull_of_unknown_things_gives_the_spec_codes(client: httpx.Client) -> None:
    repo = repo_name()
    missing = sha256(b"never pushed")
    oci_error(client.get(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/{repo}/blobs/{missing}").status_code == 404
    oci_error(client.get(f"/v2/{repo}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    oci_error(client.get(f"/v2/{repo}/manifests/{missing}"), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{repo}/manifests/nope").status_code == 404
    oci_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")
    oci_error(client.get(f"/v2/{repo}/blobs/sha256:xyz"), 400, "DIGEST_INVALID")
    oci_error(client.get(f"/v2/{repo}/blobs/md5:{'0' * 32}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize(
    "name",
    ["UPPER/case", "a//b", "-lead", "trail-", "a/.b", "dots..x", "x" * 256, "sp ace"],
)
def test_invalid_repository_names_are_refused(client: httpx.Client, name: str) -> None:
    r = client.get(f"/v2/{name}/tags/list")
    oci_error(r, 400, "NAME_INVALID")
    r = client.post(f"/v2/{name}/blobs/uploads/")
    oci_error(r, 400, "NAME_INVALID")


def test_nested_names_and_separators_are_accepted(client: httpx.Client) -> None:
    base = uuid.uuid4().hex[:8]
    for name in (f"{base}/a/b/c", f"{base}/x.y_z__w--v", f"{base}-0"):
        push_blob(client, name, b"nested")


# ---- push ------------------------------------------------------------------------------------


def test_session_upload_post_then_put(client: httpx.Client) -> None:
    repo = repo_name()
    data = os.urandom(70_000)
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    assert r.headers["docker-upload-uuid"]
    r = client.put(
        location,
        params={"digest": sha256(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
    # The session is finished: it cannot be continued.
    oci_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_chunked_upload_with_status_and_out_of_order_chunk(client: httpx.Client) -> None:
    repo = repo_name()
    data = os.urandom(300_000)
    chunks = [data[:100_000], data[100_000:250_000], data[250_000:]]
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    offset = 0
    for chunk in chunks[:2]:
        r = client.patch(
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )
        assert r.status_code == 202, r.text
        offset += len(chunk)
        assert r.headers["range"] == f"0-{offset - 1}"
        location = r.headers["location"]
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-249999"
    assert status.headers["location"] == location
    # A chunk that does not start where the upload ends: 416, and the upload is unharmed.
    r = client.patch(location, content=b"x" * 10, headers={"Content-Range": "0-9"})
    oci_error(r, 416, "BLOB_UPLOAD_INVALID")
    assert r.headers["range"] == "0-249999"
    assert client.get(location).headers["range"] == "0-249999"
    # The last chunk arrives with the closing PUT.
    r = client.put(location, params={"digest": sha256(data)}, content=chunks[2])
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_chunked_upload_without_content_range(client: httpx.Client) -> None:
    """What docker and skopeo do: streamed PATCH bodies, then an empty PUT."""
    repo = repo_name()
    data = os.urandom(50_000)
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    r = client.patch(location, content=iter([data[:20_000], data[20_000:]]))
    assert r.status_code == 202
    assert r.headers["range"] == f"0-{len(data) - 1}"
    r = client.put(r.headers["location"], params={"digest": sha256(data)})
    assert r.status_code == 201


def test_empty_blob(client: httpx.Client) -> None:
    repo = repo_name()
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert client.get(location).headers["range"] == "0-0"
    r = client.put(location, params={"digest": sha256(b"")})
    assert r.status_code == 201
    r = client.get(f"/v2/{repo}/blobs/{sha256(b'')}")
    assert r.status_code == 200
    assert r.content == b""


def test_digest_mismatch_stores_nothing(client: httpx.Client) -> None:
    repo = repo_name()
    data, claimed = b"actual bytes", sha256(b"other bytes")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=data)
    oci_error(r, 400, "DIGEST_INVALID")
    oci_error(client.head(f"/v2/{repo}/blobs/{claimed}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    oci_error(client.put(location, params={"digest": claimed}, content=data), 400, "DIGEST_INVALID")
    oci_error(client.put(location, content=b""), 400, "DIGEST_INVALID")  # no ?digest=
    oci_error(client.put(location, params={"digest": "sha256:zz"}), 400, "DIGEST_INVALID")


def test_cancel_upload_and_unknown_sessions(client: httpx.Client) -> None:
    repo = repo_name()
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert client.patch(location, content=b"abc").status_code == 202
    assert client.delete(location).status_code == 204
    oci_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    oci_error(client.patch(location, content=b"more"), 404, "BLOB_UPLOAD_UNKNOWN")
    oci_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    bogus = f"/v2/{repo}/blobs/uploads/{uuid.uuid4().hex}"
    oci_error(client.put(bogus, params={"digest": sha256(b"")}), 404, "BLOB_UPLOAD_UNKNOWN")
    # A session belongs to its repository.
    other = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    stolen = other.replace(repo, repo_name())
    oci_error(client.get(stolen), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cross_repository_mount(client: httpx.Client) -> None:
    source, target = repo_name(), repo_name()
    digest = push_blob(client, source, os.urandom(5000))
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{target}/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert client.head(f"/v2/{target}/blobs/{digest}").status_code == 200
    # The source does not have it: the answer is a new upload session instead.
    missing = sha256(b"nowhere")
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": missing, "from": source})
    assert r.status_code == 202
    assert "/blobs/uploads/" in r.headers["location"]


def test_blobs_belong_to_the_repository_they_were_pushed_to(client: httpx.Client) -> None:
    repo, other = repo_name(), repo_name()
    digest = push_blob(client, repo, os.urandom(3000))
    oci_error(client.head(f"/v2/{other}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    # A manifest may only reference blobs of its own repository.
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest, "size": 3000},
            "layers": [],
        }
    ).encode()
    oci_error(put_manifest(client, other, "t", body), 400, "MANIFEST_BLOB_UNKNOWN")


def test_the_same_layer_in_two_repositories_and_s3_is_stored_once(
    client: httpx.Client, server
) -> None:
    layer = os.urandom(64 * 1024)
    digest = push_blob(client, repo_name(), layer)
    push_blob(client, repo_name(), layer)
    bucket = f"dedup-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/buckets/{bucket}").status_code == 201
    assert client.put(f"/v1/buckets/{bucket}/objects/layer.tgz", content=layer).status_code < 300
    hexpart = digest.split(":", 1)[1]
    copies = [p for p in Path(server.data_dir).rglob(hexpart) if p.is_file()]
    assert len(copies) == 1, copies


# ---- manifests: validation ---------------------------------------------------------------


def test_manifest_bad_inputs_store_nothing(client: httpx.Client) -> None:
    repo = repo_name()
    good = image(client, repo)
    assert put_manifest(client, repo, "keep", good).status_code == 201
    doc = json.loads(good)
    cases: list[tuple[bytes, str, str]] = [
        (b"{not json", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"[1, 2]", OCI_MANIFEST, "MANIFEST_INVALID"),
        (json.dumps({**doc, "schemaVersion": 1}).encode(), OCI_MANIFEST, "MANIFEST_INVALID"),
        (json.dumps({**doc, "mediaType": "text/plain"}).encode(), "text/plain", "MANIFEST_INVALID"),
        (json.dumps(doc).encode(), OCI_INDEX, "MANIFEST_INVALID"),  # header ≠ mediaType
        (json.dumps({**doc, "layers": [{"size": 1}]}).encode(), OCI_MANIFEST, "MANIFEST_INVALID"),
        (
            json.dumps({**doc, "layers": [{"digest": "sha256:nothex", "size": 1}]}).encode(),
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (
            json.dumps({**doc, "layers": [descriptor(OCI_LAYER, b"never pushed")]}).encode(),
            OCI_MANIFEST,
            "MANIFEST_BLOB_UNKNOWN",
        ),
    ]
    for body, media_type, code in cases:
        r = put_manifest(client, repo, "bad", body, media_type)
        oci_error(r, 400, code)
    # A digest reference must be the digest of the bytes.
    r = put_manifest(client, repo, sha256(b"something else"), good)
    oci_error(r, 400, "DIGEST_INVALID")
    # Over 4 MiB.
    big = json.dumps({**doc, "annotations": {"pad": "x" * (4 * 1024 * 1024)}}).encode()
    r = put_manifest(client, repo, "big", big)
    assert r.status_code in (400, 413), r.text
    assert r.json()["errors"][0]["code"] in ("MANIFEST_INVALID", "SIZE_INVALID")
    # An invalid tag: a PUT under it is TAG_INVALID, and nothing is tagged.
    for bad in ("-bad-tag", "Bad_Tag!", "x" * 129, ".dot"):
        oci_error(put_manifest(client, repo, bad, good), 400, "TAG_INVALID")
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["keep"]


@pytest.mark.parametrize("reference", ["-bad-tag", "Bad_Tag!", "x" * 129, "sha256:nothex"])
def test_a_reference_no_tag_can_have_is_an_unknown_manifest(
    client: httpx.Client, reference: str
) -> None:
    """GET/HEAD of a syntactically invalid tag answer 404 MANIFEST_UNKNOWN, as for any tag
    the repository does not have (clients probing for a tag expect 404, not 400)."""
    repo = repo_name()
    assert put_manifest(client, repo, "keep", image(client, repo)).status_code == 201
    for method in ("GET", "HEAD"):
        r = client.request(method, f"/v2/{repo}/manifests/{reference}")
        oci_error(r, 404, "MANIFEST_UNKNOWN")


def test_index_needs_its_child_manifests(client: httpx.Client) -> None:
    repo = repo_name()
    child = image(client, repo, layers=1)
    index = index_of(OCI_INDEX, OCI_MANIFEST, child, "arm64")
    oci_error(put_manifest(client, repo, "multi", index, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")
    assert put_manifest(client, repo, sha256(child), child).status_code == 201
    r = put_manifest(client, repo, "multi", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    got = client.get(f"/v2/{repo}/manifests/multi", headers={"Accept": OCI_INDEX})
    assert got.content == index
    assert got.headers["content-type"] == OCI_INDEX


def test_retagging_moves_the_tag(client: httpx.Client) -> None:
    repo = repo_name()
    first, second = image(client, repo), image(client, repo)
    put_manifest(client, repo, "latest", first)
    put_manifest(client, repo, "latest", second)
    assert client.get(f"/v2/{repo}/manifests/latest").content == second
    assert client.get(f"/v2/{repo}/manifests/{sha256(first)}").content == first


# ---- content discovery ---------------------------------------------------------------------


def test_tags_list_pagination_with_link_header(client: httpx.Client) -> None:
    repo = repo_name()
    body = image(client, repo, layers=1)
    tags = sorted(f"t{i:02d}" for i in range(7))
    for tag in tags:
        assert put_manifest(client, repo, tag, body).status_code == 201
    assert client.get(f"/v2/{repo}/tags/list").json() == {"name": repo, "tags": tags}
    seen: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list?n=3"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        pages += 1
        link = r.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
        if url:
            assert link.endswith('rel="next"')
    assert seen == tags
    assert pages == 3
    assert client.get(f"/v2/{repo}/tags/list", params={"last": "t03"}).json()["tags"] == tags[4:]
    assert client.get(f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []
    oci_error(client.get(f"/v2/{repo}/tags/list", params={"n": "many"}), 400, "UNSUPPORTED")


def test_catalog_lists_repositories_in_pages(client: httpx.Client) -> None:
    prefix = f"cat{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}/r{i}" for i in range(3)]
    for name in names:
        put_manifest(client, name, "v1", image(client, name, layers=1))
    r = client.get("/v2/_catalog", params={"n": 1000})
    assert r.status_code == 200
    listed = r.json()["repositories"]
    assert listed == sorted(listed)
    assert set(names) <= set(listed)
    r = client.get("/v2/_catalog", params={"n": 2, "last": f"{prefix}/"})
    assert r.json()["repositories"] == names[:2]
    assert f"last={prefix}%2Fr1" in r.headers["link"]


def test_referrers_api(client: httpx.Client) -> None:
    repo = repo_name()
    subject_body = image(client, repo, layers=1)
    put_manifest(client, repo, "app", subject_body)
    subject = descriptor(OCI_MANIFEST, subject_body)
    empty = b"{}"
    push_blob(client, repo, empty)

    def referrer(artifact_type: str, note: str) -> bytes:
        payload = note.encode()
        push_blob(client, repo, payload)
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": descriptor("application/vnd.oci.empty.v1+json", empty),
                "layers": [descriptor("text/plain", payload)],
                "subject": subject,
                "annotations": {"note": note},
            }
        ).encode()

    sbom, sig = referrer("application/spdx+json", "sbom"), referrer("application/x-sig", "sig")
    for body in (sbom, sig):
        r = put_manifest(client, repo, sha256(body), body)
        assert r.status_code == 201, r.text
        assert r.headers["oci-subject"] == subject["digest"]
    r = client.get(f"/v2/{repo}/referrers/{subject['digest']}")
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    by_type = {m["artifactType"]: m for m in index["manifests"]}
    assert set(by_type) == {"application/spdx+json", "application/x-sig"}
    assert by_type["application/spdx+json"]["digest"] == sha256(sbom)
    assert by_type["application/spdx+json"]["size"] == len(sbom)
    assert by_type["application/spdx+json"]["annotations"] == {"note": "sbom"}
    r = client.get(
        f"/v2/{repo}/referrers/{subject['digest']}", params={"artifactType": "application/x-sig"}
    )
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sha256(sig)]
    # None: still a valid, empty index.
    r = client.get(f"/v2/{repo}/referrers/{sha256(b'no referrers')}")
    assert r.status_code == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    oci_error(client.get(f"/v2/{repo}/referrers/not-a-digest"), 400, "DIGEST_INVALID")
    # Deleting the subject leaves its referrers discoverable (until GC).
    assert client.delete(f"/v2/{repo}/manifests/{subject['digest']}").status_code == 202
    r = client.get(f"/v2/{repo}/referrers/{subject['digest']}")
    assert len(r.json()["manifests"]) == 2


# ---- content management --------------------------------------------------------------------


def test_delete_tag_then_manifest_then_blob(client: httpx.Client) -> None:
    repo = repo_name()
    body = image(client, repo, layers=1)
    digest = sha256(body)
    put_manifest(client, repo, "a", body)
    put_manifest(client, repo, "b", body)
    assert client.delete(f"/v2/{repo}/manifests/a").status_code == 202
    oci_error(client.get(f"/v2/{repo}/manifests/a"), 404, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["b"]
    assert client.get(f"/v2/{repo}/manifests/{digest}").status_code == 200
    oci_error(client.delete(f"/v2/{repo}/manifests/a"), 404, "MANIFEST_UNKNOWN")
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    oci_error(client.get(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    # Its remaining tag went with it; with no manifest left the repository is gone.
    oci_error(client.get(f"/v2/{repo}/manifests/b"), 404, "MANIFEST_UNKNOWN")
    oci_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")
    oci_error(client.delete(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    layer = json.loads(body)["layers"][0]["digest"]
    assert client.delete(f"/v2/{repo}/blobs/{layer}").status_code == 202
    oci_error(client.get(f"/v2/{repo}/blobs/{layer}"), 404, "BLOB_UNKNOWN")
    oci_error(client.delete(f"/v2/{repo}/blobs/{layer}"), 404, "BLOB_UNKNOWN")


def test_unknown_v2_paths_and_methods(client: httpx.Client) -> None:
    r = client.get("/v2/a/b/nothing-here")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "UNSUPPORTED"
    r = client.post(f"/v2/{repo_name()}/manifests/v1")
    assert r.status_code == 405
    assert r.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_upload_routes_refuse_the_other_methods(client: httpx.Client) -> None:
    """``…/blobs/uploads/`` only starts sessions (POST); ``…/blobs/uploads/<id>`` only acts on
    one. The wrong method is 405 with Allow, not a 500 from a handler missing its argument."""
    name = repo_name()
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = client.request(method, f"/v2/{name}/blobs/uploads/")
        assert r.status_code == 405, (method, r.text)
        assert r.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert r.headers["Allow"] == "POST"
    session = client.post(f"/v2/{name}/blobs/uploads/")
    assert session.status_code == 202
    r = client.post(session.headers["Location"])
    assert r.status_code == 405 and r.headers["Allow"] == "GET, PATCH, PUT, DELETE"
    # The session is still there and usable.
    assert client.get(session.headers["Location"]).status_code == 204
