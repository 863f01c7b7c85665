"""Query parameters on ``/v1`` and ``/v2`` (issue 14), against the running server on both
metadata backends: every route refuses a parameter it does not take, or takes only for another
method, with 400 in its API's dialect naming it, before anything is read or written; the
parameters it does take, and those authentication reads, keep working."""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import tornado.web
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fixtures.oci_layout import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from zot_artifact_store.api.oci import handlers as oci
from zot_artifact_store.api.v1 import routes as v1

ROOT = (ROOT_USER, ROOT_PASSWORD)
METHODS = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE")
UNKNOWN = "zz-not-a-parameter"
# The body every walked PUT/POST/PATCH carries: were the parameter ignored, it would be written.
BODY = json.dumps({"labels": {"walk": "yes"}}).encode()


def routes() -> list[tuple[str, str, type[tornado.web.RequestHandler]]]:
    """(api, route template, handler) of every /v1 and /v2 route the server has (from its own
    route tables, so a new route is walked without touching this file)."""
    out = []
    for api, table in (("v1", v1.routes(None)), ("v2", oci.routes(None))):
        for _pattern, handler, kwargs in table:
            if kwargs["route"] != "unmatched":  # the 404 for anything else
                out.append((api, kwargs["route"], handler))
    return out


def implemented(handler: type[tornado.web.RequestHandler]) -> list[str]:
    """What the route answers (HEAD wherever GET is: api/base.py)."""
    return handler.allowed_methods()  # type: ignore[attr-defined, no-any-return]


def obj_url(bucket: str, key: str) -> str:
    return f"/v1/buckets/{bucket}/objects/{urllib.parse.quote(key, safe='/')}"


def refused(r: httpx.Response, api: str, *names: str) -> str:
    """Assert a 400 refusal of ``names`` in ``api``'s dialect; returns its message."""
    assert r.status_code == 400, (r.request.method, str(r.request.url), r.status_code, r.text)
    if r.request.method == "HEAD":  # no body to name them in
        assert r.content == b""
        return ""
    if api == "v1":
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers
        body = r.json()
        assert body["code"] == "UnexpectedQueryParameter" and body["status"] == 400, body
        assert body["type"].endswith("errors.md#UnexpectedQueryParameter")
        assert body["errors"]["unexpected"] == sorted(names), body
        message = body["message"]
    else:
        assert r.headers["content-type"].startswith("application/json"), r.headers
        assert r.headers["docker-distribution-api-version"] == "registry/2.0"
        (error,) = r.json()["errors"]
        assert error["code"] == "UNSUPPORTED", error
        assert error["detail"]["unexpected"] == sorted(names), error
        message = error["message"]
    for name in names:
        assert repr(name) in message, message
    return message


# ---- the store's known state, which refused requests must leave as it is ----------------------


@dataclass
class Known:
    bucket: str
    key: str
    data: bytes
    object: dict
    upload_id: str  # a /v1 multipart upload in progress
    repo: str
    tag: str
    manifest: bytes
    manifest_digest: str
    layer_digest: str
    oci_upload: str  # an OCI upload session in progress


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201, r.text
    return sha256(data)


def descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


@pytest.fixture(scope="module")
def known(server: ServerProcess) -> Iterator[Known]:
    with server.client() as c:
        bucket, key, data = f"qp-{uuid.uuid4().hex[:12]}", "dir/a.txt", os.urandom(300)
        assert c.put(f"/v1/buckets/{bucket}", json={"labels": {"team": "qp"}}).status_code == 201
        r = c.put(
            obj_url(bucket, key),
            content=data,
            headers={"Content-Type": "text/plain", "X-Artifact-Labels": "stage=known"},
        )
        assert r.status_code == 201, r.text
        upload = c.post(f"/v1/buckets/{bucket}/uploads", json={"key": "big.bin"})
        assert upload.status_code == 201, upload.text

        repo, tag = f"qp/{uuid.uuid4().hex[:10]}", "1.0"
        config, layer = (
            json.dumps({"os": "linux", "n": os.urandom(4).hex()}).encode(),
            os.urandom(900),
        )
        push_blob(c, repo, config)
        layer_digest = push_blob(c, repo, layer)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer)],
            }
        ).encode()
        r = c.put(
            f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 201, r.text
        session = c.post(f"/v2/{repo}/blobs/uploads/")
        assert session.status_code == 202, session.text
        yield Known(
            bucket=bucket,
            key=key,
            data=data,
            object=c.get(obj_url(bucket, key), params={"metadata": "true"}).json(),
            upload_id=upload.json()["upload_id"],
            repo=repo,
            tag=tag,
            manifest=manifest,
            manifest_digest=sha256(manifest),
            layer_digest=layer_digest,
            oci_upload=session.headers["location"].rsplit("/", 1)[1],
        )


def fill(api: str, template: str, known: Known) -> str:
    """A route template with its placeholders naming the known things (so a request that was
    not refused would read, replace or delete them)."""
    if api == "v2":
        values = {
            "name": known.repo,
            "reference": known.tag,
            "digest": known.layer_digest if "/blobs/" in template else known.manifest_digest,
            "id": known.oci_upload,
        }
    else:
        values = {
            "bucket": known.bucket,
            "key": known.key,
            "kind": "signatures",
            "digest": known.object["digest"],
            "upload_id": known.upload_id,
            "part_number": "1",
            "id": "qp-unknown-id",
            "delivery_id": "qp-unknown-delivery",
            "name": "qp-policy",
            "pattern": f"{known.repo}*",
        }
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


def assert_unchanged(c: httpx.Client, known: Known) -> None:
    bucket = c.get(f"/v1/buckets/{known.bucket}")
    assert bucket.status_code == 200 and bucket.json()["labels"] == {"team": "qp"}, bucket.text
    assert c.get(obj_url(known.bucket, known.key)).content == known.data
    meta = c.get(obj_url(known.bucket, known.key), params={"metadata": "true"}).json()
    assert meta == known.object
    listing = c.get(f"/v1/buckets/{known.bucket}/objects").json()
    assert [o["key"] for o in listing["objects"]] == [known.key]
    assert c.get(f"/v1/buckets/{known.bucket}/policy").status_code == 404
    assert c.get(f"/v1/buckets/{known.bucket}/verification").status_code == 404
    upload = c.get(f"/v1/buckets/{known.bucket}/uploads/{known.upload_id}")
    assert upload.status_code == 200 and upload.json()["parts"] == [], upload.text
    evidence = c.get(obj_url(known.bucket, known.key) + "/signatures").json()
    assert evidence["signatures"] == []
    r = c.get(f"/v2/{known.repo}/manifests/{known.tag}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == known.manifest
    assert c.get(f"/v2/{known.repo}/tags/list").json()["tags"] == [known.tag]
    assert c.head(f"/v2/{known.repo}/blobs/{known.layer_digest}").status_code == 200
    session = c.get(f"/v2/{known.repo}/blobs/uploads/{known.oci_upload}")
    assert session.status_code == 204 and session.headers["range"] == "0-0", session.headers
    referrers = c.get(f"/v2/{known.repo}/referrers/{known.manifest_digest}").json()
    assert referrers["manifests"] == []


# ---- the bug of issue 14 -----------------------------------------------------------------------


def test_put_and_delete_with_metadata_true_are_refused_and_change_nothing(
    client: httpx.Client, bucket: str
) -> None:
    url = obj_url(bucket, "a.txt")
    assert client.put(url, content=b"the artifact's bytes").status_code == 201
    before = client.get(url, params={"metadata": "true"}).json()

    # A metadata "update" as a user who reads metadata with GET ?metadata=true would write it.
    r = client.put(url, params={"metadata": "true"}, json={"labels": {"stage": "prod"}})
    message = refused(r, "v1", "metadata")
    assert "PUT /v1/buckets/{bucket}/objects/{key}" in message
    assert "'metadata' (a GET parameter here)" in message
    assert r.json()["errors"]["accepted"] == ["expires_in", "sha256"]
    assert client.get(url).content == b"the artifact's bytes"

    r = client.delete(url, params={"metadata": "true"})
    refused(r, "v1", "metadata")
    assert client.head(url).status_code == 200
    assert client.get(url).content == b"the artifact's bytes"
    assert client.get(url, params={"metadata": "true"}).json() == before

    # Refused before the body is read: the connection is closed, the answer is whole.
    r = client.put(url, params={"metadata": "1", "labels": "x"}, content=os.urandom(1 << 20))
    refused(r, "v1", "labels", "metadata")
    assert client.get(url, params={"metadata": "true"}).json() == before


def test_a_refusal_names_only_the_parameters_not_taken(client: httpx.Client, bucket: str) -> None:
    r = client.get(f"/v1/buckets/{bucket}/objects", params={"prefix": "a/", "recursive": "true"})
    message = refused(r, "v1", "recursive")
    assert "'recursive';" in message and "it takes continuation_token, delimiter" in message
    message = refused(
        client.get(f"/v1/buckets/{bucket}", params={"recursive": "true"}), "v1", "recursive"
    )
    assert "'recursive' (a DELETE parameter here); it takes none" in message
    # A parameter without a value, and an empty one, are parameters too.
    refused(client.get(f"/v1/buckets/{bucket}?versioning"), "v1", "versioning")
    refused(client.get(f"/v1/buckets/{bucket}?acl="), "v1", "acl")
    # Names match exactly, as the handlers read them.
    refused(client.get(f"/v1/buckets/{bucket}/objects", params={"Prefix": "a/"}), "v1", "Prefix")
    # A path nothing answers is still a 404, whatever its query.
    assert client.get("/v1/nowhere", params={UNKNOWN: "1"}).status_code == 404
    assert client.get("/v2/_nowhere/x", params={UNKNOWN: "1"}).status_code == 404


# ---- every route, every method -----------------------------------------------------------------


def test_every_route_and_method_refuses_what_it_does_not_take(
    client: httpx.Client, known: Known
) -> None:
    walked: set[tuple[str, str]] = set()
    table = routes()
    for api, template, handler in table:
        path = fill(api, template, known)
        declared = getattr(handler, "query_parameters", None)
        assert declared is not None, f"{handler.__name__} declares no query parameters"
        every = set().union(*declared.values()) if declared else set()
        for method in implemented(handler):
            taken = declared.get(method, frozenset())
            # Unknown anywhere, and each parameter this route takes for another method only.
            for name in [UNKNOWN, *sorted(every - taken)]:
                body = BODY if method in ("PUT", "POST", "PATCH") else None
                r = client.request(
                    method,
                    path,
                    params={name: "true"},
                    content=body,
                    headers={"Content-Type": "application/json"} if body else {},
                )
                message = refused(r, api, name)
                if method != "HEAD":
                    assert f"{method} {template}" in message, message
                    if name != UNKNOWN:
                        assert "parameter here" in message, message
            walked.add((method, template))
    # The walk covered every route of both APIs, and the route tables are what we expect.
    assert {t for _, t in walked} == {t for _, t, _ in table}
    assert len([t for a, t, _ in table if a == "v1"]) >= 35
    assert ("PUT", "/v2/{name}/manifests/{reference}") in walked
    assert ("DELETE", "/v1/buckets/{bucket}/objects/{key}") in walked
    assert_unchanged(client, known)


DIALECT = {
    "v1": "application/problem+json",
    "v2": "application/json",
    "s3": "application/xml",
    "health": "application/problem+json",
}


def test_no_route_answers_with_an_html_page(client: httpx.Client, known: Known) -> None:
    """Every route (and paths no route claims), every method — implemented or not, OPTIONS
    and HEAD too: the answer is in its API's dialect, never Tornado's HTML error page, and a
    method the route does not have is 405 naming the ones it has."""
    targets = [(api, fill(api, t, known), handler) for api, t, handler in routes()]
    targets += [
        ("s3", f"/{known.bucket}/{known.key}", None),
        ("s3", f"/{known.bucket}", None),
        ("health", "/health/ready", None),
        ("v1", "/v1/nowhere", None),
        ("v2", "/v2/_nowhere/x", None),
    ]
    seen = 0
    for api, path, handler in targets:
        # Methods the route lacks (all of them), and only the reads of those it has: the walk
        # must not change what assert_unchanged checks.
        has = implemented(handler) if handler is not None else ["PUT", "POST", "DELETE"]
        for method in (*METHODS, "OPTIONS"):
            if method in has and method not in ("GET", "HEAD"):
                continue
            r = client.request(method, path)
            kind = r.headers.get("content-type", "").split(";")[0]
            if r.status_code < 400:
                assert kind != "text/html", (method, path, r.status_code)
                continue
            seen += 1
            assert kind == DIALECT[api], (method, path, r.status_code, kind, r.text[:200])
            if method != "HEAD":
                assert r.content and not r.text.lstrip().startswith("<html"), (method, path)
            if r.status_code == 405 and handler is not None:
                allowed = set(r.headers.get("allow", "").replace(" ", "").split(","))
                # What the route answers (a handler serving two routes names the route's own).
                assert method not in allowed and allowed <= set(implemented(handler)), allowed
                assert "GET" not in allowed or "HEAD" in allowed, (path, allowed)
    assert seen > 100
    assert_unchanged(client, known)


def test_misplaced_oci_parameters(client: httpx.Client, known: Known) -> None:
    manifest_url = f"/v2/{known.repo}/manifests/{known.tag}"
    headers = {"Content-Type": OCI_MANIFEST}
    for params in ({"n": "1"}, {"last": "0.9"}, {"n": "1", "last": "0.9"}):
        r = client.put(manifest_url, params=params, content=known.manifest, headers=headers)
        refused(r, "v2", *params)
    refused(client.delete(manifest_url, params={"digest": known.manifest_digest}), "v2", "digest")
    session = f"/v2/{known.repo}/blobs/uploads/{known.oci_upload}"
    refused(client.patch(session, params={"digest": sha256(b"x")}, content=b"x"), "v2", "digest")
    refused(client.put(session, params={"mount": known.layer_digest}), "v2", "mount")
    r = client.get(f"/v2/{known.repo}/tags/list", params={"artifactType": "x", "n": "1"})
    refused(r, "v2", "artifactType")
    assert_unchanged(client, known)


# ---- what the routes take keeps working --------------------------------------------------------


def test_v1_parameters_still_work(client: httpx.Client, known: Known) -> None:
    url = obj_url(known.bucket, known.key)
    meta = client.get(url, params={"metadata": "true"})
    assert meta.status_code == 200 and meta.headers["content-type"] == "application/json"
    assert meta.json()["sha256"] == known.object["sha256"] and meta.json()["builds"] == []

    listing = client.get(
        f"/v1/buckets/{known.bucket}/objects", params={"prefix": "dir/", "delimiter": "/"}
    ).json()
    assert [o["key"] for o in listing["objects"]] == [known.key]
    listing = client.get(
        f"/v1/buckets/{known.bucket}/objects", params={"prefix": "", "delimiter": "/"}
    ).json()
    assert listing["common_prefixes"] == ["dir/"] and listing["objects"] == []
    page = client.get(
        f"/v1/buckets/{known.bucket}/objects", params={"limit": "1", "start_after": "a"}
    ).json()
    assert [o["key"] for o in page["objects"]] == [known.key]

    # sha256 on a PUT of an object and of a part; recursive on a bucket DELETE.
    scratch = f"qp-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/buckets/{scratch}").status_code == 201
    data = b"declared"
    r = client.put(obj_url(scratch, "x"), content=data, params={"sha256": sha256(data)})
    assert r.status_code == 201, r.text
    r = client.put(obj_url(scratch, "y"), content=data, params={"sha256": sha256(b"other")})
    assert r.status_code == 422 and r.json()["code"] == "ChecksumMismatch"
    upload = client.post(f"/v1/buckets/{scratch}/uploads", json={"key": "z"}).json()
    part = f"/v1/buckets/{scratch}/uploads/{upload['upload_id']}/parts/1"
    r = client.put(part, content=data, params={"sha256": sha256(data)})
    assert r.status_code == 200 and r.json()["sha256"] == sha256(data).split(":")[1], r.text
    assert client.put(part, content=data, params={"sha256": sha256(b"x")}).status_code == 422
    uploads = client.get(f"/v1/buckets/{scratch}/uploads", params={"prefix": "z", "limit": "5"})
    assert [u["key"] for u in uploads.json()["uploads"]] == ["z"]
    assert client.delete(f"/v1/buckets/{scratch}", params={"recursive": "true"}).status_code == 204

    r = client.get("/v1/audit", params={"action": "s3:PutObject", "decision": "allow", "limit": 1})
    assert r.status_code == 200 and len(r.json()["records"]) <= 1
    r = client.get("/v1/sboms/search", params={"name": "nothing-qp", "limit": "5"})
    assert r.status_code == 200 and r.json() == {"results": []}
    r = client.get("/v1/builds", params={"digest": known.object["digest"], "limit": "5"})
    assert r.status_code == 200 and r.json()["builds"] == []


def test_oci_parameters_still_work(client: httpx.Client, known: Known) -> None:
    repo = f"qp/{uuid.uuid4().hex[:10]}"
    # Monolithic POST ?digest=, session POST then PUT ?digest=, mount ?mount=&from=.
    config = json.dumps({"os": "linux", "qp": repo}).encode()
    push_blob(client, repo, config)
    layer = os.urandom(500)
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    r = client.put(location, params={"digest": sha256(layer)}, content=layer)
    assert r.status_code == 201, r.text
    r = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"mount": known.layer_digest, "from": known.repo}
    )
    assert r.status_code == 201 and r.headers["docker-content-digest"] == known.layer_digest
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer)],
    }
    headers = {"Content-Type": OCI_MANIFEST}
    for tag in ("a", "b", "c"):
        body = json.dumps(manifest).encode()
        r = client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers=headers)
        assert r.status_code == 201, r.text

    r = client.get(f"/v2/{repo}/tags/list", params={"n": "1", "last": "a"})
    assert r.status_code == 200 and r.json()["tags"] == ["b"]
    assert r.headers["link"] == f'</v2/{repo}/tags/list?n=1&last=b>; rel="next"'
    r = client.get("/v2/_catalog", params={"n": "1000"})
    assert r.status_code == 200 and repo in r.json()["repositories"]

    # A referrer of the image, found with and without ?artifactType=.
    empty = b"{}"
    push_blob(client, repo, empty)
    subject = descriptor(OCI_MANIFEST, json.dumps(manifest).encode())
    referrer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/x-qp",
            "config": descriptor("application/vnd.oci.empty.v1+json", empty),
            "layers": [descriptor("application/vnd.oci.empty.v1+json", empty)],
            "subject": subject,
        }
    ).encode()
    r = client.put(f"/v2/{repo}/manifests/{sha256(referrer)}", content=referrer, headers=headers)
    assert r.status_code == 201, r.text
    url = f"/v2/{repo}/referrers/{subject['digest']}"
    r = client.get(url, params={"artifactType": "application/x-qp"})
    assert r.status_code == 200 and r.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sha256(referrer)]
    r = client.get(url, params={"artifactType": "application/x-other"})
    assert r.json()["manifests"] == []


# ---- parameters authentication reads -----------------------------------------------------------


@pytest.fixture
def root_client(auth_server: ServerProcess) -> Iterator[httpx.Client]:
    with auth_server.client(auth=ROOT) as c:
        yield c


@pytest.fixture
def anonymous(auth_server: ServerProcess) -> Iterator[httpx.Client]:
    with auth_server.client() as c:
        yield c


def test_presigned_urls_keep_working_and_take_nothing_more(
    root_client: httpx.Client, anonymous: httpx.Client
) -> None:
    bucket = f"qp-{uuid.uuid4().hex[:12]}"
    assert root_client.put(f"/v1/buckets/{bucket}").status_code == 201
    assert root_client.put(obj_url(bucket, "p.txt"), content=b"presigned").status_code == 201

    def presign(method: str) -> str:
        r = root_client.post(
            "/v1/presign", json={"bucket": bucket, "key": "p.txt", "method": method}
        )
        assert r.status_code == 200, r.text
        return r.json()["url"]

    get_url, put_url = presign("GET"), presign("PUT")
    assert anonymous.get(get_url).content == b"presigned"
    assert anonymous.head(get_url).status_code == 200
    # A presigned URL allows only what it signs: a GET parameter the route takes would turn
    # the download into another operation (issue 19), so it is refused.
    r = anonymous.get(get_url + "&metadata=true")
    assert r.status_code == 403 and r.json()["code"] == "SignatureDoesNotMatch"
    # A presigned PUT URL with a GET parameter: refused, nothing written.
    r = anonymous.put(put_url + "&metadata=true", content=b"replaced")
    refused(r, "v1", "metadata")
    assert anonymous.get(get_url).content == b"presigned"
    r = anonymous.put(put_url, content=b"replaced")
    assert r.status_code == 200, r.text
    assert anonymous.get(get_url).content == b"replaced"

    # Presign parameters are authentication's only with a signature to check; alone they are
    # nobody's, and they are not the registry's.
    url = f"/v1/buckets/{bucket}/objects/p.txt"
    refused(root_client.get(url, params={"zas-expires": "1"}), "v1", "zas-expires")
    r = anonymous.get(url, params={"zas-signature": "00", "zas-expires": "1", "zas-principal": "x"})
    assert r.status_code == 403 and r.json()["code"] == "SignatureDoesNotMatch", r.text
    query = urllib.parse.urlsplit(get_url).query
    refused(
        root_client.get(f"/v2/_catalog?{query}"),
        "v2",
        "zas-expires",
        "zas-principal",
        "zas-signature",
    )


def test_sigv4_presigned_v1_urls_keep_working(
    auth_server: ServerProcess, root_client: httpx.Client, anonymous: httpx.Client
) -> None:
    bucket = f"qp-{uuid.uuid4().hex[:12]}"
    assert root_client.put(f"/v1/buckets/{bucket}").status_code == 201
    assert root_client.put(obj_url(bucket, "s.txt"), content=b"sigv4").status_code == 201

    def presigned(url: str) -> str:
        request = AWSRequest(method="GET", url=url)
        S3SigV4QueryAuth(Credentials(ROOT_USER, ROOT_PASSWORD), "s3", "us-east-1", 300).add_auth(
            request
        )
        return request.url

    r = anonymous.get(presigned(f"{auth_server.url}/v1/buckets/{bucket}/objects/s.txt"))
    assert r.status_code == 200 and r.content == b"sigv4", r.text
    r = anonymous.get(presigned(f"{auth_server.url}/v1/buckets/{bucket}/objects?prefix=s"))
    assert r.status_code == 200 and [o["key"] for o in r.json()["objects"]] == ["s.txt"]
    r = anonymous.get(presigned(f"{auth_server.url}/v2/_catalog?n=5"))
    assert r.status_code == 200, r.text
    # A parameter the route does not take is refused even when the signature covers it.
    r = anonymous.get(presigned(f"{auth_server.url}/v1/buckets/{bucket}/objects?recursive=1"))
    refused(r, "v1", "recursive")
    # X-Amz-* without a signature to check is nobody's parameter.
    r = root_client.get(f"/v1/buckets/{bucket}", params={"X-Amz-Date": "20260101T000000Z"})
    refused(r, "v1", "X-Amz-Date")


def test_token_endpoint_takes_what_registry_clients_send(
    root_client: httpx.Client, anonymous: httpx.Client
) -> None:
    params = {
        "service": "zot-artifact-store",
        "scope": "repository:qp/app:pull,push",
        "account": ROOT_USER,
        "client_id": "docker",
        "offline_token": "true",
    }
    r = root_client.get("/v2/token", params=params)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    r = anonymous.get("/v2/qp/app/tags/list", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN", r.text
    refused(root_client.get("/v2/token", params={**params, "grant_type": "x"}), "v2", "grant_type")
    # The query is checked before credentials are: a refusal tells nothing about them.
    refused(anonymous.get("/v1/buckets", params={UNKNOWN: "1"}), "v1", UNKNOWN)
    refused(anonymous.get("/v2/", params={UNKNOWN: "1"}), "v2", UNKNOWN)
