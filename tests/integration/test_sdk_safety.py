"""What the SDK must never do, against the real server (both metadata backends) and a real
fault-injecting proxy: repeat a request the server may already have applied, re-send a
half-read stream, let a resumed upload publish another attempt's metadata, lose a bucket's
settings on an idempotent create, or fail an upload over a permission it does not need."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER
from zot_artifacts import (
    ArtifactStoreError,
    Auth,
    AuthenticationError,
    BasicAuth,
    Client,
    RetryPolicy,
    TokenAuth,
)
from zot_artifacts.auth import AuthFlow

MIB = 1 << 20
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)
ROOT = BasicAuth(ROOT_USER, ROOT_PASSWORD)


@pytest.fixture
def root(auth_server: ServerProcess) -> Iterator[Client]:
    with Client(auth_server.url, auth=ROOT, retry=FAST) as c:
        yield c


@pytest.fixture
def proxy(auth_server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(auth_server.url) as p:
        yield p


@pytest.fixture
def via_proxy(proxy: FaultProxy) -> Iterator[Client]:
    with Client(proxy.url, auth=ROOT, retry=FAST) as c:
        yield c


@pytest.fixture
def bucket(root: Client) -> str:
    return root.create_bucket(f"safe-{uuid.uuid4().hex[:12]}").name


def test_a_request_the_server_may_have_applied_is_not_repeated(
    via_proxy: Client, proxy: FaultProxy, root: Client, bucket: str
) -> None:
    # A gateway timeout after the server created the token: trying again would mint a second
    # live credential whose secret nobody holds.
    before = {t.id for t in root.list_tokens()}
    proxy.lose_answer_next(1, 504, match="/v1/tokens")
    with pytest.raises(ArtifactStoreError) as err:
        via_proxy.create_token(f"once-{uuid.uuid4().hex[:6]}", ["reader"])
    assert err.value.http_status == 504
    assert len(proxy.seen("POST", "/v1/tokens")) == 1
    assert len({t.id for t in root.list_tokens()} - before) == 1  # applied once, not twice

    # A 503 (or 429) says the request was turned away: that is retried, even for a POST.
    proxy.reset()
    proxy.fail_next(1, 503, match="/v1/tokens")
    token = via_proxy.create_token(f"again-{uuid.uuid4().hex[:6]}", ["reader"])
    assert token.secret and [r.status for r in proxy.seen("POST", "/v1/tokens")] == [503, 201]

    # Reads and whole-object PUTs stay retried on 502/504.
    proxy.reset()
    proxy.fail_next(1, 504, match="/objects/")
    assert via_proxy.upload(bucket, "idem.txt", b"same bytes").size == 10
    assert [r.status for r in proxy.seen("PUT", "/objects/")] == [504, 201]


def test_a_completion_whose_answer_was_lost_is_recognised(
    via_proxy: Client, proxy: FaultProxy, root: Client, bucket: str
) -> None:
    # The store published the object, the answer was lost: the SDK does not complete again
    # (the upload is gone) but sees that the object holds exactly its bytes.
    data = os.urandom(11 * MIB + 3)
    proxy.lose_answer_next(1, 504, match="/complete")
    info = via_proxy.upload(
        bucket, "lost.bin", data, multipart_threshold=6 * MIB, part_size=5 * MIB
    )
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    assert len(proxy.seen("POST", "/complete")) == 1
    assert root.list_uploads(bucket) == []


class StaleThenFresh(Auth):
    """A cached bearer token the store no longer accepts (revoked, rotated), then a good one
    after :meth:`invalidate`: what an OIDC or CI-exchange token cache goes through."""

    def __init__(self, fresh: str) -> None:
        self.fresh = fresh
        self.stale = True

    def flow(self) -> AuthFlow:
        token = "zat_0000000000000000_stale" if self.stale else self.fresh
        return {"Authorization": f"Bearer {token}"}
        yield  # pragma: no cover

    def invalidate(self) -> bool:
        self.stale = False
        return True


def test_a_stream_is_never_resent_half_read(root: Client, auth_server: ServerProcess) -> None:
    bucket = root.create_bucket(f"pipe-{uuid.uuid4().hex[:8]}").name
    writer = root.create_token(f"pipe-{uuid.uuid4().hex[:6]}", ["writer"])
    assert writer.secret
    data = os.urandom(3 * MIB)
    previous = root.upload(bucket, "from-pipe.bin", b"the good version")

    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert cat.stdin is not None and cat.stdout is not None
    pipe_in = cat.stdin

    def feed_pipe() -> None:
        try:
            pipe_in.write(data)
            pipe_in.close()
        except BrokenPipeError:
            with contextlib.suppress(BrokenPipeError):
                pipe_in.close()  # the reader stopped: what this test is about

    feed = threading.Thread(target=feed_pipe)
    feed.start()
    try:
        with Client(auth_server.url, auth=StaleThenFresh(writer.secret), retry=FAST) as c:
            with pytest.raises(AuthenticationError):
                c.upload(bucket, "from-pipe.bin", cat.stdout)
    finally:
        cat.stdout.close()
        feed.join()
        cat.wait()
    # Nothing was published: not a truncated copy, and the old version is intact.
    assert root.head(bucket, "from-pipe.bin").sha256 == previous.sha256

    # A body that can be read again is simply sent again with the fresh token.
    with Client(auth_server.url, auth=StaleThenFresh(writer.secret), retry=FAST) as c:
        info = c.upload(bucket, "from-bytes.bin", io.BytesIO(data))
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_a_resumed_upload_publishes_what_this_call_asked_for(root: Client, bucket: str) -> None:
    data = os.urandom(11 * MIB)
    stale = root._run(  # an attempt that was interrupted after it started
        root.ops.json_call(
            "POST",
            f"/v1/buckets/{bucket}/uploads",
            json={"key": "m.bin", "content_type": "text/x-old", "labels": {"version": "1"}},
            idempotent=False,
        )
    )
    info = root.upload(
        bucket, "m.bin", data, content_type="application/x-new", labels={"version": "2"},
        multipart_threshold=6 * MIB, part_size=5 * MIB,
    )  # fmt: skip
    assert info.content_type == "application/x-new" and info.labels == {"version": "2"}
    head = root.head(bucket, "m.bin")
    assert head.content_type == "application/x-new" and head.labels == {"version": "2"}
    # The other attempt's upload is left alone (it may be someone else's).
    assert [u.upload_id for u in root.list_uploads(bucket, "m.bin")] == [stale["upload_id"]]
    root.abort_upload(bucket, stale["upload_id"])


def test_upload_in_parts_needs_only_put_permission(
    root: Client, auth_server: ServerProcess, bucket: str
) -> None:
    # A writer that may not list uploads in progress (a Deny narrows its role).
    uploader = root.create_token(
        f"put-only-{uuid.uuid4().hex[:6]}", ["writer"],
        statements=[{"Effect": "Deny", "Action": "s3:ListBucketMultipartUploads",
                     "Resource": bucket}],
    )  # fmt: skip
    assert uploader.secret
    data = os.urandom(7 * MIB)
    with Client(auth_server.url, auth=TokenAuth(uploader.secret), retry=FAST) as c:
        with pytest.raises(ArtifactStoreError):
            c.list_uploads(bucket)  # the Deny holds
        info = c.upload(bucket, "parts.bin", data, multipart_threshold=6 * MIB, part_size=5 * MIB)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_create_bucket_exist_ok_keeps_settings_it_was_not_given(
    root: Client, auth_server: ServerProcess
) -> None:
    name = f"pub-{uuid.uuid4().hex[:10]}"
    root.create_bucket(name, public_read=True, labels={"team": "a"})
    again = root.create_bucket(name, exist_ok=True)
    assert again.public_read is True and again.labels == {"team": "a"}
    assert httpx.get(f"{auth_server.url}/v1/buckets/{name}/objects").status_code == 200
    assert root.create_bucket(name, exist_ok=True, public_read=False).public_read is False
    assert httpx.get(f"{auth_server.url}/v1/buckets/{name}/objects").status_code == 401


@pytest.mark.parametrize("key", ["a/sboms", "x/signatures", "release/attestations", "a b/c%2F"])
def test_presigned_urls_for_keys_that_look_like_routes(root: Client, bucket: str, key: str) -> None:
    root.upload(bucket, key, b"content of " + key.encode())
    url = root.presign(bucket, key, expires_in=60)
    r = httpx.get(url)
    assert r.status_code == 200, r.text
    assert r.content == b"content of " + key.encode()
    put = root.presign(bucket, key, method="PUT", expires_in=60)
    assert httpx.put(put, content=b"replaced").status_code in (200, 201)
    assert root.head(bucket, key).size == len(b"replaced")
