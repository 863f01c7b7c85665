"""``/v1/batch`` (the Git LFS batch model), ``/v1/batch/delete``, ``/v1/batch/head`` and
``/v1/batch/verify`` against the real server on both metadata backends, with authentication
on: uploads through the returned hrefs with the real ``curl``, refusals of the wrong bytes,
links only for callers who may read the source, per-item authorization and errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from tests.integration.test_cli import Z, admin_token
from tests.integration.test_gate_bypass import CYCLONEDX, SBOM_GATE, gate_bucket, sbom_doc
from tests.integration.test_identity import eventually
from tests.integration.test_v1_objects import obj_url, problem
from tests.integration.test_v1_uploads import token
from tests.integration.test_webhooks import FAST, Receiver, of_type, subscribe
from tests.integration.test_webhooks import ROOT as HOOK_ROOT
from tests.integration.test_webhooks import start as start_hooked
from zot_artifacts import AsyncClient, BasicAuth, Client, Subject, TokenAuth

ROOT = (ROOT_USER, ROOT_PASSWORD)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(key: str, data: bytes) -> dict[str, Any]:
    return {"key": key, "sha256": sha(data), "size": len(data)}


@pytest.fixture
def c(auth_server: ServerProcess) -> Any:
    with auth_server.client(auth=ROOT) as client:
        yield client


def new_bucket(c: httpx.Client, prefix: str = "bt") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    assert c.put(f"/v1/buckets/{name}").status_code == 201
    return name


@pytest.fixture
def bucket(c: httpx.Client) -> str:
    return new_bucket(c)


def plan(c: httpx.Client, bucket: str, objects: list[Any], **kw: Any) -> httpx.Response:
    body = {"operation": kw.pop("operation", "upload"), "bucket": bucket, "objects": objects}
    return c.post("/v1/batch", json={**body, **kw})


def put(c: httpx.Client, bucket: str, key: str, data: bytes) -> None:
    assert c.put(obj_url(bucket, key), content=data).status_code in (200, 201)


def curl_put(href: str, body: Path, *extra: str) -> tuple[int, str]:
    """PUT ``body`` to ``href`` with the real curl; (status, response body)."""
    out = subprocess.run(
        ["curl", "-sS", "-T", str(body), "-w", "\n%{http_code}", *extra, href],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text, _, status = out.stdout.rpartition("\n")
    return int(status), text


def stored(c: httpx.Client, bucket: str, key: str) -> bytes | None:
    r = c.get(obj_url(bucket, key))
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.content


# ---- POST /v1/batch ---------------------------------------------------------------------------


def test_thousand_objects_mixed_then_uploads_through_hrefs_with_curl(
    c: httpx.Client, bucket: str, tmp_path: Path
) -> None:
    present = {f"present/{i}": os.urandom(100 + i) for i in range(10)}
    elsewhere = new_bucket(c, "src")
    sources = {f"src/{i}": os.urandom(200 + i) for i in range(10)}
    for key, data in present.items():
        put(c, bucket, key, data)
    for key, data in sources.items():
        put(c, elsewhere, key, data)
    linked = {f"linked/{i}": data for i, data in enumerate(sources.values())}
    invalid: list[Any] = [
        {"key": "bad/sha", "sha256": "xyz", "size": 1},
        {"key": "bad/size", "sha256": "a" * 64, "size": -1},
        {"key": "", "sha256": "a" * 64, "size": 1},
        {"key": "bad/missing-size", "sha256": "a" * 64},
        "not an object",
    ]
    new = {f"new/{i:04d}": os.urandom(50 + i % 7) for i in range(1000 - 25)}
    objects = (
        [entry(k, d) for k, d in present.items()]
        + [entry(k, d) for k, d in linked.items()]
        + invalid
        + [entry(k, d) for k, d in new.items()]
    )
    assert len(objects) == 1000
    r = plan(c, bucket, objects, expires_in=600)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    answer = r.json()
    assert answer["counts"] == {"present": 10, "linked": 10, "upload": 975, "error": 5}
    results = answer["objects"]
    assert len(results) == 1000
    for result, key in zip(results[:10], present, strict=True):
        assert result["key"] == key and result["result"] == "present", result
        assert "actions" not in result
    for result, (key, data) in zip(results[10:20], linked.items(), strict=True):
        assert result["result"] == "linked", result
        assert result["linked_from"].startswith(f"{elsewhere}/src/")
        assert stored(c, bucket, key) == data  # linked server-side, no transfer
    codes = [(r["key"], r["error"]["code"], r["error"]["status"]) for r in results[20:25]]
    assert codes == [
        ("bad/sha", "InvalidDigest", 400),
        ("bad/size", "MalformedJSON", 400),
        ("", "InvalidKey", 400),
        ("bad/missing-size", "MalformedJSON", 400),
        (None, "MalformedJSON", 400),
    ]
    uploads = results[25:]
    assert [u["key"] for u in uploads] == list(new)
    for u in uploads:
        action = u["actions"]["upload"]
        assert action["method"] == "PUT" and action["expires_at"].endswith("Z")
        assert action["headers"] == {"X-Checksum-Sha256": u["sha256"]}
        assert action["href"].startswith(c.base_url.scheme + "://")
    assert stored(c, bucket, "new/0000") is None  # nothing stored until uploaded

    # Three uploads through the hrefs with curl, without credentials: stored, checked.
    for u in uploads[:3]:
        path = tmp_path / "f"
        path.write_bytes(new[u["key"]])
        status, text = curl_put(u["actions"]["upload"]["href"], path)
        assert status == 201, text
        assert stored(c, bucket, u["key"]) == new[u["key"]]
    # Asked again, those are present and the rest still need uploading.
    again = plan(c, bucket, [entry(k, d) for k, d in list(new.items())[:5]]).json()
    assert [o["result"] for o in again["objects"]] == ["present"] * 3 + ["upload"] * 2


def test_href_refuses_wrong_sha256_or_size_and_stores_nothing(
    c: httpx.Client, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(4096)
    [result] = plan(c, bucket, [entry("bound.bin", data)]).json()["objects"]
    href = result["actions"]["upload"]["href"]
    same_size = tmp_path / "same-size"
    same_size.write_bytes(os.urandom(4096))
    status, text = curl_put(href, same_size)
    assert status == 422 and '"code": "ChecksumMismatch"' in text, text
    longer = tmp_path / "longer"
    longer.write_bytes(data + b"x")
    status, text = curl_put(href, longer)
    assert status == 422 and "issued for 4096 bytes" in text, text
    shorter = tmp_path / "shorter"
    shorter.write_bytes(data[:-1])
    status, text = curl_put(href, shorter, "-H", "Transfer-Encoding: chunked")
    assert status == 400 and "IncompleteBody" in text, text
    right = tmp_path / "right"
    right.write_bytes(data)
    status, text = curl_put(href, right, "-H", "X-Checksum-Sha256: " + "0" * 64)
    assert status == 422 and "issued for sha256" in text, text
    # The binding is signed: another sha256 or size in the URL breaks the signature.
    forged = href.replace(result["sha256"], sha(same_size.read_bytes()))
    status, text = curl_put(forged, same_size)
    assert status == 403 and "SignatureDoesNotMatch" in text, text
    forged = href.replace("zas-size=4096", "zas-size=4097")
    status, text = curl_put(forged, longer)
    assert status == 403 and "SignatureDoesNotMatch" in text, text
    assert stored(c, bucket, "bound.bin") is None
    # The right bytes go through (the same URL, until it expires).
    status, text = curl_put(href, right)
    assert status == 201, text
    assert stored(c, bucket, "bound.bin") == data


def test_link_needs_read_on_the_source(c: httpx.Client, tmp_path: Path) -> None:
    secret_bucket, target = new_bucket(c, "secret"), new_bucket(c, "target")
    secret = os.urandom(777)
    put(c, secret_bucket, "secret.bin", secret)
    put(c, target, "same-key.bin", secret)
    # A writer who knows the digest but may not read the secret (nor the key it writes).
    deny = [
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{secret_bucket}/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{target}/same-key.bin"},
    ]
    outsider = token(c, ["writer"], deny)
    body = {
        "operation": "upload",
        "bucket": target,
        "objects": [entry("copy.bin", secret), entry("same-key.bin", secret)],
    }
    r = c.post("/v1/batch", json=body, headers=outsider, auth=None)
    assert r.status_code == 200, r.text
    results = r.json()["objects"]
    assert [o["result"] for o in results] == ["upload", "upload"], results
    assert "linked_from" not in results[0]
    assert stored(c, target, "copy.bin") is None
    # A caller who may read it gets the link (and no transfer).
    insider = token(c, ["writer"])
    r = c.post("/v1/batch", json=body, headers=insider, auth=None)
    results = r.json()["objects"]
    assert [o["result"] for o in results] == ["linked", "present"], results
    assert results[0]["linked_from"] in (f"{secret_bucket}/secret.bin", f"{target}/same-key.bin")
    assert stored(c, target, "copy.bin") == secret


def test_many_keys_of_one_content_in_one_batch(c: httpx.Client, bucket: str) -> None:
    """Items run concurrently: each one of many keys with the same content is linked from the
    one source (or each gets its upload href when there is none)."""
    put(c, bucket, "source", b"same")
    keys = [f"copy/{i}" for i in range(40)]
    answer = plan(c, bucket, [entry(k, b"same") for k in keys]).json()
    assert answer["counts"]["linked"] == 40, answer["counts"]
    assert all(o["linked_from"] == f"{bucket}/source" for o in answer["objects"])
    fresh = plan(c, bucket, [entry(f"new/{i}", b"unseen") for i in range(40)]).json()
    assert fresh["counts"]["upload"] == 40, fresh["counts"]
    assert [o["key"] for o in fresh["objects"]] == [f"new/{i}" for i in range(40)]


def test_link_skips_a_source_its_gate_refuses(c: httpx.Client) -> None:
    gated, target = new_bucket(c, "gated"), new_bucket(c, "target")
    gate_bucket(c, gated)  # enforce: an SBOM is required to read
    data = os.urandom(300)
    put(c, gated, "unverified.bin", data)
    r = plan(c, target, [entry("x.bin", data)])
    assert r.json()["objects"][0]["result"] == "upload"
    r = c.post(
        f"/v1/buckets/{gated}/objects/unverified.bin/sboms",
        content=sbom_doc("x"),
        headers={"Content-Type": CYCLONEDX},
    )
    assert r.status_code == 201, r.text
    r = plan(c, target, [entry("y.bin", data)])
    assert r.json()["objects"][0]["result"] == "linked"


def test_more_than_a_thousand_is_413_naming_the_limit(c: httpx.Client, bucket: str) -> None:
    objects = [{"key": f"k{i}", "sha256": "a" * 64, "size": 1} for i in range(1001)]
    body = problem(plan(c, bucket, objects), 413, "BatchTooLarge")
    assert "at most 1000 objects" in body["message"] and "1001" in body["message"]
    assert body["errors"] == {"limit": 1000, "given": 1001}
    keys = [f"k{i}" for i in range(1001)]
    for route in ("delete", "head"):
        r = c.post(f"/v1/batch/{route}", json={"bucket": bucket, "keys": keys})
        assert problem(r, 413, "BatchTooLarge")["errors"]["limit"] == 1000
    r = c.post("/v1/batch/verify", json={"subjects": [{"digest": "x"}] * 1001, "policy": {}})
    problem(r, 413, "BatchTooLarge")
    assert c.get(f"/v1/buckets/{bucket}/objects").json()["objects"] == []


def test_bad_requests(c: httpx.Client, bucket: str) -> None:
    problem(c.post("/v1/batch", content=b"{"), 400, "MalformedJSON")
    problem(plan(c, bucket, [], operation="upload"), 400, "MalformedJSON")
    problem(plan(c, bucket, [entry("a", b"a")], operation="copy"), 400, "InvalidArgument")
    problem(plan(c, bucket, [entry("a", b"a")], expires_in=0), 400, "InvalidArgument")
    problem(plan(c, bucket, [entry("a", b"a")], extra=1), 400, "MalformedJSON")
    problem(plan(c, "Bad_Bucket", [entry("a", b"a")]), 400, "InvalidBucketName")
    r = c.post(
        "/v1/batch", json={"operation": "upload", "bucket": bucket, "objects": []}, auth=None
    )
    problem(r, 401, "Unauthenticated")
    problem(c.get("/v1/batch"), 405, "MethodNotAllowed")


def test_per_object_authorization_and_missing_bucket(c: httpx.Client, bucket: str) -> None:
    deny = [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{bucket}/locked/*"}]
    writer = token(c, ["writer"], deny)
    objects = [entry("open/a", b"a"), entry("locked/b", b"b")]
    body = {"operation": "upload", "bucket": bucket, "objects": objects}
    r = c.post("/v1/batch", json=body, headers=writer, auth=None)
    assert r.status_code == 200, r.text
    first, second = r.json()["objects"]
    assert first["result"] == "upload"
    assert second["result"] == "error" and second["error"]["code"] == "AccessDenied"
    assert second["error"]["status"] == 403 and "locked/b" in second["error"]["message"]

    def decisions() -> list[str]:
        params = {"resource": f"{bucket}/locked/b", "action": "s3:PutObject"}
        return [x["decision"] for x in c.get("/v1/audit", params=params).json()["records"]]

    assert eventually(lambda: decisions() == ["deny"]), decisions()
    # A reader may neither upload nor download what it may not read.
    reader = token(c, ["reader"], [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}])
    body = {"operation": "download", "bucket": bucket, "objects": [{"key": "open/a"}]}
    r = c.post("/v1/batch", json=body, headers=reader, auth=None)
    assert r.json()["objects"][0]["error"]["code"] == "AccessDenied"
    r = plan(c, "no-such-bucket-here", [entry("a", b"a")])
    assert r.json()["objects"][0]["error"]["code"] == "NoSuchBucket"


def test_download_hrefs(c: httpx.Client, bucket: str) -> None:
    data = os.urandom(1234)
    put(c, bucket, "d/one.bin", data)
    objects = [
        {"key": "d/one.bin"},
        entry("d/one.bin", data),
        {"key": "d/one.bin", "sha256": "0" * 64},
        {"key": "d/missing"},
    ]
    r = plan(c, bucket, objects, operation="download")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["counts"] == {"download": 2, "error": 2}
    first, second, wrong, missing = answer["objects"]
    assert (first["sha256"], first["size"]) == (sha(data), 1234)
    href = first["actions"]["download"]["href"]
    assert httpx.get(href).content == data  # no credentials needed
    assert httpx.get(second["actions"]["download"]["href"]).content == data
    assert wrong["error"]["code"] == "PreconditionFailed"
    assert missing["error"]["code"] == "NoSuchKey"


# ---- batch delete, head, verify ---------------------------------------------------------------


def test_batch_delete_per_key_and_evidence_kept(c: httpx.Client, bucket: str) -> None:
    data = os.urandom(64)
    for key in ("a", "b", "locked/c"):
        put(c, bucket, key, data if key == "a" else os.urandom(10))
    r = c.post(
        f"/v1/buckets/{bucket}/objects/a/sboms",
        content=sbom_doc("a"),
        headers={"Content-Type": CYCLONEDX},
    )
    assert r.status_code == 201, r.text
    deny = [{"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"{bucket}/locked/*"}]
    writer = token(c, ["writer"], deny)
    keys = ["a", "b", "missing", "", 7, "locked/c"]
    r = c.post("/v1/batch/delete", json={"bucket": bucket, "keys": keys}, headers=writer, auth=None)
    assert r.status_code == 200, r.text
    answer = r.json()
    outcome = [(k["key"], k["result"], k.get("error", {}).get("code")) for k in answer["keys"]]
    assert outcome == [
        ("a", "deleted", None),
        ("b", "deleted", None),
        ("missing", "error", "NoSuchKey"),
        ("", "error", "InvalidKey"),
        (7, "error", "MalformedJSON"),
        ("locked/c", "error", "AccessDenied"),
    ]
    assert answer["keys"][0]["sha256"] == sha(data)
    assert answer["counts"] == {"deleted": 2, "error": 4}
    assert stored(c, bucket, "a") is None and stored(c, bucket, "b") is None
    assert stored(c, bucket, "locked/c") is not None
    # The SBOM stays with the digest, as after a single DELETE.
    sboms = c.get(f"/v1/digests/sha256:{sha(data)}/sboms").json()["sboms"]
    assert [(e["subject"], e["format"]) for e in sboms] == [(f"{bucket}/a", "cyclonedx")]


def test_batch_head_per_key(c: httpx.Client, bucket: str) -> None:
    data = os.urandom(99)
    put(c, bucket, "h/one", data)
    put(c, bucket, "h/secret", b"s")
    reader = token(
        c,
        ["reader"],
        [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{bucket}/h/secret"}],
    )
    keys = ["h/one", "h/none", "h/secret", ["x"]]
    r = c.post("/v1/batch/head", json={"bucket": bucket, "keys": keys}, headers=reader, auth=None)
    assert r.status_code == 200, r.text
    one, none, secret, bad = r.json()["keys"]
    assert one["result"] == "found"
    assert one["object"]["sha256"] == sha(data) and one["object"]["size"] == 99
    single = c.get(obj_url(bucket, "h/one"), params={"metadata": "true"}).json()
    assert {k: single[k] for k in one["object"]} == one["object"]
    assert none["error"]["code"] == "NoSuchKey"
    assert secret["error"]["code"] == "AccessDenied"
    assert bad["error"]["code"] == "MalformedJSON"
    r = c.post("/v1/batch/head", json={"bucket": "no-such-bucket-x", "keys": ["a"]})
    assert r.json()["keys"][0]["error"]["code"] == "NoSuchBucket"


def test_batch_verify_matches_single_verify(c: httpx.Client, bucket: str) -> None:
    put(c, bucket, "v/with-sbom", b"with")
    put(c, bucket, "v/without", b"without")
    r = c.post(
        f"/v1/buckets/{bucket}/objects/v/with-sbom/sboms",
        content=sbom_doc("v"),
        headers={"Content-Type": CYCLONEDX},
    )
    assert r.status_code == 201, r.text
    subjects: list[Any] = [
        {"bucket": bucket, "key": "v/with-sbom"},
        {"bucket": bucket, "key": "v/without"},
        {"digest": f"sha256:{sha(b'with')}"},
        {"bucket": bucket, "key": "v/missing"},
        {"bucket": bucket},
        {"bucket": "no-read-bucket-x", "key": "k"},
    ]
    deny = [{"Effect": "Deny", "Action": "*", "Resource": "no-read-bucket-x/*"}]
    reader = token(c, ["reader"], deny)
    body = {"subjects": subjects, "policy": SBOM_GATE}
    r = c.post("/v1/batch/verify", json=body, headers=reader, auth=None)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["verified"] is False
    assert answer["counts"] == {"passed": 2, "failed": 1, "error": 3}
    results = answer["subjects"]
    assert [x["result"] for x in results] == [
        "passed",
        "failed",
        "passed",
        "error",
        "error",
        "error",
    ]
    assert [x.get("error", {}).get("code") for x in results[3:]] == [
        "NoSuchKey",
        "InvalidArgument",
        "AccessDenied",
    ]
    for subject, result in zip(subjects[:3], results[:3], strict=True):
        single = c.post("/v1/verify", json={"subject": subject, "policy": SBOM_GATE}).json()
        assert {k: result[k] for k in single} == single
    only_passing = {"subjects": subjects[:1] + subjects[2:3], "policy": SBOM_GATE}
    assert c.post("/v1/batch/verify", json=only_passing).json()["verified"] is True
    # A policy the verifier refuses fails the request, not each subject.
    r = c.post("/v1/batch/verify", json={"subjects": subjects, "policy": {"nope": 1}})
    problem(r, 400, "InvalidArgument")
    problem(c.post("/v1/batch/verify", json={"subjects": subjects}), 400, "MalformedJSON")


# ---- events: the same as the single operations' ------------------------------------------------


def test_batch_operations_announce_the_single_operations_events(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)
    store = start_hooked(tmp_path, FAST)
    try:
        with store.client(auth=HOOK_ROOT) as c:
            hook = subscribe(c, receiver.url + "/in", events=["object.*", "verification.*"])
            receiver.control(secrets=[hook["secret"]])
            bucket = new_bucket(c)
            put(c, bucket, "source", b"shared")
            answer = plan(c, bucket, [entry("linked", b"shared"), entry("sent", b"new")]).json()
            assert [o["result"] for o in answer["objects"]] == ["linked", "upload"]
            href = answer["objects"][1]["actions"]["upload"]["href"]
            assert httpx.put(href, content=b"new").status_code == 201
            r = c.post("/v1/batch/delete", json={"bucket": bucket, "keys": ["source"]})
            assert r.json()["counts"] == {"deleted": 1, "error": 0}
            subjects = [{"bucket": bucket, "key": "linked"}, {"bucket": bucket, "key": "sent"}]
            r = c.post("/v1/batch/verify", json={"subjects": subjects, "policy": SBOM_GATE})
            assert r.json()["counts"] == {"passed": 0, "failed": 2, "error": 0}
            got = receiver.wait(lambda g: len(g) >= 6)
            assert all(d["verified"] for d in got)
            created = sorted(e["subject"]["key"] for e in of_type(got, "object.created"))
            assert created == ["linked", "sent", "source"]
            [deleted] = of_type(got, "object.deleted")
            assert deleted["subject"]["key"] == "source"
            failed = of_type(got, "verification.failed")
            assert sorted(e["subject"]["key"] for e in failed) == ["linked", "sent"]
            assert all(e["actor"] == f"root:{HOOK_ROOT[0]}" for e in got_events(got))
    finally:
        store.stop()
        receiver.stop()


def got_events(got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d["event"]["data"] for d in got]


# ---- the Python SDK -------------------------------------------------------------------------


def test_sdk_upload_many_sends_only_what_is_needed(
    auth_server: ServerProcess, c: httpx.Client, tmp_path: Path
) -> None:
    bucket = new_bucket(c)
    deny = [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{bucket}/locked/*"}]
    secret = token(c, ["writer"], deny)["Authorization"].removeprefix("Bearer ")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 << 20))
    put(c, bucket, "old/small.txt", b"small")
    files: dict[str, Any] = {
        "new/small.txt": b"small",  # linked from old/small.txt
        "new/big.bin": big,  # over the threshold: a multipart upload
        "new/fresh.txt": b"fresh",  # through its href
        "locked/x.txt": b"x",  # refused
    }
    seen: set[str] = set()
    with Client(auth_server.url, auth=TokenAuth(secret)) as sdk:
        done = sdk.upload_many(
            bucket,
            files,
            content_types={"new/fresh.txt": "text/plain"},
            multipart_threshold=5 << 20,
            part_size=5 << 20,
            progress=lambda p: seen.add(p.key),
        )
        assert done.linked == ["new/small.txt"] and done.present == []
        assert sorted(o.key for o in done.uploaded) == ["new/big.bin", "new/fresh.txt"]
        assert list(done.failed) == ["locked/x.txt"]
        assert done.failed["locked/x.txt"].code == "AccessDenied" and not done.ok
        assert seen == {"new/big.bin", "new/fresh.txt"}
        assert stored(c, bucket, "new/big.bin") == big.read_bytes()
        assert c.head(obj_url(bucket, "new/fresh.txt")).headers["content-type"] == "text/plain"
        again = sdk.upload_many(bucket, {k: v for k, v in files.items() if k != "locked/x.txt"})
        assert sorted(again.present) == ["new/big.bin", "new/fresh.txt", "new/small.txt"]
        # More than 1,000 keys: several requests, one answer in order.
        keys = [f"new/missing-{i}" for i in range(1200)] + ["new/small.txt"]
        heads = sdk.batch_head(bucket, keys)
        assert len(heads.keys) == 1201 and heads.counts == {"found": 1, "error": 1200}
        assert heads.keys[-1].object is not None and heads.keys[-1].object.size == 5
        assert sdk.batch_delete(bucket, ["new/small.txt"]).keys[0].sha256 == sha(b"small")


async def test_async_sdk_batch(auth_server: ServerProcess, c: httpx.Client) -> None:
    bucket = new_bucket(c)
    put(c, bucket, "a", b"a")
    async with AsyncClient(auth_server.url, auth=BasicAuth(*ROOT)) as sdk:
        plan = await sdk.batch(bucket, [entry("a", b"a"), entry("b", b"b")])
        assert [o.result for o in plan.objects] == ["present", "upload"]
        assert plan.having("upload")[0].action is not None
        done = await sdk.upload_many(bucket, {"c": b"a", "d": b"d"})
        assert (done.linked, [o.key for o in done.uploaded]) == (["c"], ["d"])
        checked = await sdk.batch_verify([Subject.object(bucket, "a")], {"sbom": True})
        assert not checked and checked.subjects[0].result == "failed"
        gone = await sdk.batch_delete(bucket, ["a", "c", "d"])
        assert gone.counts == {"deleted": 3, "error": 0}


# ---- the CLI ------------------------------------------------------------------------------------


def test_cli_upload_of_many_files_sends_only_what_is_needed(
    auth_server: ServerProcess, c: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_bucket(c)
    put(c, bucket, "old/a.txt", b"A")
    z = Z(tmp_path, auth_server.url, admin_token(auth_server.url))
    monkeypatch.chdir(tmp_path)
    for rel, text in (("dist/a.txt", "A"), ("dist/b.txt", "B"), ("dist/sub/c.html", "<p>C")):
        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        Path(rel).write_text(text)
    up = z.json("upload", "dist", f"{bucket}/rel")
    assert (up["uploaded"], up["skipped"], up["linked"], up["failed"]) == (2, 0, 1, 0)
    results = {o["key"]: o["result"] for o in up["objects"]}
    assert results == {"rel/a.txt": "linked", "rel/b.txt": "uploaded", "rel/sub/c.html": "uploaded"}
    assert all(o["sha256"] == sha(Path(o["path"]).read_bytes()) for o in up["objects"])
    assert stored(c, bucket, "rel/sub/c.html") == b"<p>C"
    assert c.head(obj_url(bucket, "rel/sub/c.html")).headers["content-type"] == "text/html"
    # Again, after one file changed: only that one goes.
    Path("dist/b.txt").write_text("B2")
    r = z("upload", "dist", f"{bucket}/rel")
    assert r.exit_code == 0, r.stderr
    assert "1 uploaded, 2 skipped (already there), 0 linked" in r.stdout
    assert stored(c, bucket, "rel/b.txt") == b"B2"
    # A file the caller may not write: the others go, the failure is named, exit 2.
    deny = [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{bucket}/locked/*"}]
    writer = token(c, ["writer"], deny)["Authorization"].removeprefix("Bearer ")
    Path("more").mkdir()
    Path("more/x.txt").write_text("X")
    Path("more/y.txt").write_text("Y")
    r = Z(tmp_path, auth_server.url, writer)(
        "upload", "more/x.txt", "more/y.txt", f"{bucket}/locked/"
    )
    assert r.exit_code == 2 and "2 file(s) not uploaded" in r.stderr and "AccessDenied" in r.stderr


def test_cli_verify_of_many_subjects_is_one_batch(
    auth_server: ServerProcess, c: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_bucket(c)
    put(c, bucket, "with", b"with")
    put(c, bucket, "without", b"without")
    r = c.post(
        f"/v1/buckets/{bucket}/objects/with/sboms",
        content=sbom_doc("w"),
        headers={"Content-Type": CYCLONEDX},
    )
    assert r.status_code == 201, r.text
    z = Z(tmp_path, auth_server.url, admin_token(auth_server.url))
    monkeypatch.chdir(tmp_path)
    Path("policy.yaml").write_text("sbom: true\n")
    both = z.json(
        "verify", f"{bucket}/with", f"{bucket}/without", "--policy", "policy.yaml", code=1
    )
    assert both["verified"] is False and both["counts"] == {"passed": 1, "failed": 1, "error": 0}
    assert [s["result"] for s in both["subjects"]] == ["passed", "failed"]
    ok = z.json("verify", f"{bucket}/with", f"{bucket}/with", "--policy", "policy.yaml")
    assert ok["verified"] is True
    r = z("verify", f"{bucket}/with", f"{bucket}/missing", "--policy", "policy.yaml")
    assert r.exit_code == 2 and f"{bucket}/missing: ERROR" in r.stdout and "NoSuchKey" in r.stdout
    assert "2 subject(s): 1 verified, 0 NOT verified, 1 error(s)" in r.stdout
    r = z("verify", f"{bucket}/with", f"{bucket}/x", "--digest", "sha256:" + "0" * 64,
          "--policy", "policy.yaml")  # fmt: skip
    assert r.exit_code == 2 and "name the subject once" in r.stderr
