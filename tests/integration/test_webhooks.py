"""Outbound webhooks (issue 21) against a real receiver process (tests/fixtures/webhook_receiver.py)
that checks each delivery's Standard Webhooks signature with the ``standardwebhooks`` library
and parses CloudEvents with the ``cloudevents`` library: events from /v1, S3 and OCI, filters,
retries and the delivery log, redelivery, 410, secret rotation, SSRF refusals, a server killed
with SIGKILL before its event was delivered, and two replicas on one MongoDB-wire server."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.cli import Z
from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from zot_artifacts import AsyncClient, BasicAuth, Client, NotFoundError

ROOT = ("hook-admin", "hook-admin-password")
ENV = {"ZAS_ROOT_USER": ROOT[0], "ZAS_ROOT_PASSWORD": ROOT[1]}
REPO = Path(__file__).resolve().parents[2]
FAST = {"allowNetworks": ["127.0.0.0/8"], "retrySchedule": [0.3, 0.3, 0.3, 0.3]}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Receiver:
    def __init__(self, tmp: Path) -> None:
        port_file = tmp / f"receiver-{uuid.uuid4().hex[:6]}.port"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.webhook_receiver", str(port_file)], cwd=REPO
        )
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            assert time.monotonic() < deadline, "the receiver did not start"
            assert self.proc.poll() is None, "the receiver exited"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def control(self, **state: Any) -> None:
        assert httpx.post(f"{self.url}/__control__", json=state).status_code == 200

    def received(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/__received__").json()["deliveries"])

    def wait(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if pred(got):
                return got
            assert time.monotonic() < deadline, json.dumps(got, indent=1)[-3000:]
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path)
    yield r
    r.stop()


def start(tmp: Path, webhooks: dict[str, Any], **kw: Any) -> ServerProcess:
    config = {"extensions": {"webhooks": webhooks}}
    return ServerProcess(tmp / f"data-{uuid.uuid4().hex[:6]}", env=ENV, config=config, **kw).start()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start(tmp_path_factory.mktemp("webhooks"), FAST)
    yield proc
    proc.stop()


@pytest.fixture
def admin(store: ServerProcess) -> Iterator[httpx.Client]:
    with store.client(auth=ROOT) as c:
        yield c


def subscribe(admin: httpx.Client, url: str, **body: Any) -> dict[str, Any]:
    r = admin.post("/v1/webhooks", json={"url": url, **body})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and r.headers["Cache-Control"] == "no-store"
    return dict(created)


def of_type(got: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The events (a Standard Webhooks body's ``data``) of that type."""
    return [d["event"]["data"] for d in got if d["event"]["type"] == kind]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_signed_events_from_v1_s3_and_oci(
    store: ServerProcess, admin: httpx.Client, receiver: Receiver
) -> None:
    bucket = f"hooks-{uuid.uuid4().hex[:8]}"
    events = ["bucket.created", "object.*", "image.pushed", "evidence.attached", "verification.*"]
    hook = subscribe(admin, receiver.url + "/in", events=events, description="ci")
    receiver.control(secrets=[hook["secret"]])
    assert admin.put(f"/v1/buckets/{bucket}").status_code == 201
    assert admin.put(f"/v1/buckets/{bucket}/objects/v1.txt", content=b"from v1").status_code == 201
    s3 = s3_client(store.url, *ROOT)
    s3.put_object(Bucket=bucket, Key="s3.txt", Body=b"from s3")
    s3.close()
    admin.delete(f"/v1/buckets/{bucket}/objects/v1.txt")
    # An OCI push: config, layer, manifest with a tag.
    repo = f"hooks/app-{uuid.uuid4().hex[:6]}"
    blobs = []
    for data in (b'{"architecture":"amd64","os":"linux"}', b"layer bytes"):
        r = admin.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        assert r.status_code == 201, r.text
        blobs.append({"mediaType": "application/octet-stream", "digest": sha256(data),
                      "size": len(data)})  # fmt: skip
    config = {**blobs[0], "mediaType": "application/vnd.oci.image.config.v1+json"}
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [blobs[1]], "config": config}
    body = json.dumps(doc).encode()
    r = admin.put(f"/v2/{repo}/manifests/1.0", content=body,
                  headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    assert r.status_code == 201, r.text
    subject = {"bucket": bucket, "key": "s3.txt"}
    assert admin.post("/v1/sign", json={"subject": subject}).status_code == 201
    verify = admin.post("/v1/verify", json={"subject": subject, "policy": {"sbom": True}})
    assert verify.json()["verified"] is False

    got = receiver.wait(lambda g: len(g) >= 7)
    assert all(d["verified"] for d in got), [d["headers"] for d in got if not d["verified"]]
    assert len({d["id"] for d in got}) == len(got)  # one webhook-id per delivery
    kinds = [d["event"]["type"] for d in got]
    assert sorted(kinds) == sorted(["bucket.created", "object.created", "object.created",
                                    "object.deleted", "image.pushed", "evidence.attached",
                                    "verification.failed"]), kinds  # fmt: skip
    created = {e["subject"]["key"]: e for e in of_type(got, "object.created")}
    s3_event = created["s3.txt"]
    assert s3_event["subject"] == {"bucket": bucket, "key": "s3.txt", "digest": sha256(b"from s3")}
    assert s3_event["actor"] == f"root:{ROOT[0]}"  # SigV4: the access key's owner
    assert s3_event["link"] == f"{store.url}/v1/buckets/{bucket}/objects/s3.txt"
    assert s3_event["version"] == "1" and s3_event["id"].startswith("evt_")
    [image] = of_type(got, "image.pushed")
    assert image["subject"] == {"repository": repo, "tag": "1.0", "digest": sha256(body)}
    [failed] = of_type(got, "verification.failed")
    assert failed["data"]["failed_rules"], failed
    [attached] = of_type(got, "evidence.attached")
    assert attached["data"]["kind"] == "signature"
    # The delivery log shows each, delivered on the first attempt.
    log = admin.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
    assert {d["status"] for d in log} == {"delivered"} and len(log) == 7
    assert all(d["response_code"] == 204 and len(d["attempts"]) == 1 for d in log)


def test_cloudevents_and_filters(admin: httpx.Client, receiver: Receiver) -> None:
    wanted, other = f"ce-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    hook = subscribe(admin, receiver.url, events=["object.created"], format="cloudevents",
                     filter={"buckets": ["ce-*"], "key_prefix": "rel/"})  # fmt: skip
    receiver.control(secrets=[hook["secret"]])
    for bucket in (wanted, other):
        admin.put(f"/v1/buckets/{bucket}")
        for key in ("rel/a.bin", "tmp/b.bin"):
            assert admin.put(f"/v1/buckets/{bucket}/objects/{key}", content=b"x").status_code == 201
    got = receiver.wait(lambda g: len(g) >= 1)
    time.sleep(1.0)  # nothing else arrives
    got = receiver.received()
    assert len(got) == 1, got
    [d] = got
    assert d["verified"] and d["headers"]["content-type"] == "application/cloudevents+json"
    ce = d["event"]
    assert ce["specversion"] == "1.0" and ce["type"] == "dev.zot-artifact-store.object.created.v1"
    assert ce["subject"] == f"{wanted}/rel/a.bin"
    assert ce["data"]["subject"]["key"] == "rel/a.bin"


def test_failures_are_retried_logged_and_redelivered(
    admin: httpx.Client, receiver: Receiver
) -> None:
    hook = subscribe(admin, receiver.url, events=["bucket.created"])
    receiver.control(secrets=[hook["secret"]], fail=3, status=500)
    admin.put(f"/v1/buckets/retry-{uuid.uuid4().hex[:8]}")
    got = receiver.wait(lambda g: any(d["answered"] == 204 for d in g))
    assert [d["answered"] for d in got] == [500, 500, 500, 204]
    assert len({d["id"] for d in got}) == 1  # the same webhook-id on every attempt
    [delivery] = admin.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 204]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
    r = admin.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert r.status_code == 202
    got = receiver.wait(lambda g: len(g) == 5)
    assert got[-1]["id"] == delivery["id"] and got[-1]["verified"]
    missing = admin.post(f"/v1/webhooks/{hook['id']}/deliveries/msg_nope/redeliver")
    assert missing.status_code == 404 and missing.json()["code"] == "NoSuchDelivery"
    # The test event goes to this subscription whatever its events.
    assert admin.post(f"/v1/webhooks/{hook['id']}/test").status_code == 202
    got = receiver.wait(lambda g: len(g) == 6)
    assert got[-1]["event"]["type"] == "webhook.test"


def test_a_burst_of_puts_is_delivered_once_each_signed_through_failures(
    admin: httpx.Client, receiver: Receiver
) -> None:
    """Issue 23: deliveries go out in batches now (one read of the subscriptions per batch,
    names looked up once) on kept-alive connections; each event still arrives, signed, in its
    own request with its own webhook-id, and the ones that met a failing receiver arrive on a
    retry."""
    bucket = f"burst-{uuid.uuid4().hex[:8]}"
    hook = subscribe(admin, receiver.url, events=["object.created"], filter={"buckets": [bucket]})
    assert admin.put(f"/v1/buckets/{bucket}").status_code == 201
    receiver.control(secrets=[hook["secret"]], fail=5, status=503)
    keys = [f"k/{i:03d}" for i in range(120)]

    def put(key: str) -> int:
        return admin.put(f"/v1/buckets/{bucket}/objects/{key}", content=key.encode()).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert set(pool.map(put, keys)) == {201}

    def delivered(got: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in got if d["answered"] == 204]

    got = receiver.wait(lambda g: len(delivered(g)) >= len(keys), timeout=60)
    ok = delivered(got)
    assert all(d["verified"] for d in got)
    assert sorted(d["event"]["data"]["subject"]["key"] for d in ok) == keys
    assert len({d["id"] for d in ok}) == len(keys)  # one webhook-id per event, no duplicate
    assert sum(d["answered"] == 503 for d in got) == 5
    failed_ids = {d["id"] for d in got if d["answered"] == 503}
    assert failed_ids <= {d["id"] for d in ok}  # each failure was retried until it arrived
    listed = admin.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 200}).json()
    assert {d["status"] for d in listed["deliveries"]} == {"delivered"}
    assert len(listed["deliveries"]) == len(keys)
    # Kept-alive connections: far fewer than one per delivery (at most 4 at once per endpoint).
    assert len({d["peer"] for d in got}) < len(keys) / 4, sorted({d["peer"] for d in got})


def test_a_receiver_that_drops_kept_connections_still_gets_every_event_once(
    admin: httpx.Client, receiver: Receiver
) -> None:
    """A kept-alive connection the receiver closed for idleness, without a word: the next
    delivery does not try to reuse it and goes out on a new connection, in one attempt, once
    (a close that races with the reuse is retried on a new connection: webhook_client.py)."""
    bucket = f"idle-{uuid.uuid4().hex[:8]}"
    hook = subscribe(admin, receiver.url, events=["object.created"], filter={"buckets": [bucket]})
    assert admin.put(f"/v1/buckets/{bucket}").status_code == 201
    receiver.control(secrets=[hook["secret"]], idle=0.3)
    keys = [f"k{i}" for i in range(5)]
    for n, key in enumerate(keys, 1):
        assert admin.put(f"/v1/buckets/{bucket}/objects/{key}", content=b"x").status_code == 201
        receiver.wait(lambda g, n=n: len(g) >= n)
        time.sleep(0.6)  # the receiver closes the connection this delivery came on
    got = receiver.received()
    assert [d["event"]["data"]["subject"]["key"] for d in got] == keys
    assert all(d["verified"] and d["answered"] == 204 for d in got)
    assert len({d["peer"] for d in got}) == len(keys)  # a new connection each time
    listed = admin.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
    assert [(d["status"], len(d["attempts"])) for d in listed] == [("delivered", 1)] * len(keys)


def test_gone_disables_the_subscription(admin: httpx.Client, receiver: Receiver) -> None:
    hook = subscribe(admin, receiver.url, events=["bucket.created"])
    receiver.control(secrets=[hook["secret"]], fail=1, status=410)
    admin.put(f"/v1/buckets/gone-{uuid.uuid4().hex[:8]}")
    receiver.wait(lambda g: len(g) == 1)
    deadline = time.monotonic() + 10
    while admin.get(f"/v1/webhooks/{hook['id']}").json()["active"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    state = admin.get(f"/v1/webhooks/{hook['id']}").json()
    assert state["disabled_reason"] == "the endpoint answered 410 Gone"
    admin.put(f"/v1/buckets/gone-{uuid.uuid4().hex[:8]}")
    time.sleep(1.0)
    assert len(receiver.received()) == 1
    # Re-activated, it receives again.
    assert admin.patch(f"/v1/webhooks/{hook['id']}", json={"active": True}).json()["active"]
    time.sleep(SUBSCRIPTIONS_SETTLE)
    admin.put(f"/v1/buckets/gone-{uuid.uuid4().hex[:8]}")
    receiver.wait(lambda g: len(g) == 2)


SUBSCRIPTIONS_SETTLE = 0.1


def test_secret_rotation_signs_with_both_during_the_grace(
    admin: httpx.Client, receiver: Receiver
) -> None:
    hook = subscribe(admin, receiver.url, events=["bucket.created"])
    old = hook["secret"]
    rotated = admin.post(f"/v1/webhooks/{hook['id']}/rotate-secret", json={"grace_seconds": 600})
    assert rotated.status_code == 200 and rotated.json()["secrets"] == 2
    new = rotated.json()["secret"]
    assert new != old
    for secrets, n in (([old], 1), ([new], 2)):
        receiver.control(secrets=secrets)
        admin.put(f"/v1/buckets/rot-{uuid.uuid4().hex[:8]}")
        got = receiver.wait(lambda g, n=n: len(g) == n)
        assert got[-1]["verified"], secrets
        assert len(got[-1]["headers"]["webhook-signature"].split(" ")) == 2
    # Without a grace the old secret stops at once.
    rotated = admin.post(f"/v1/webhooks/{hook['id']}/rotate-secret", json={"grace_seconds": 0})
    newest = rotated.json()["secret"]
    receiver.control(secrets=[new])
    admin.put(f"/v1/buckets/rot-{uuid.uuid4().hex[:8]}")
    got = receiver.wait(lambda g: len(g) == 3)
    assert not got[-1]["verified"]
    assert len(got[-1]["headers"]["webhook-signature"].split(" ")) == 1
    receiver.control(secrets=[newest])
    r = admin.post(f"/v1/webhooks/{hook['id']}/deliveries/{got[-1]['id']}/redeliver")
    assert r.status_code == 202
    assert receiver.wait(lambda g: len(g) == 4)[-1]["verified"]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:9/", "WebhookTargetRefused"),
        ("http://169.254.169.254/latest/meta-data/", "WebhookTargetRefused"),
        ("http://localhost:9/", "WebhookTargetRefused"),
        ("http://[::1]:9/", "WebhookTargetRefused"),
        ("http://10.1.2.3/hook", "WebhookTargetRefused"),
        ("file:///etc/passwd", "InvalidArgument"),
        ("http://user:pw@example.com/", "InvalidArgument"),
    ],
)
def test_private_targets_are_refused_by_default(
    tmp_path: Path, url: str, code: str, default_store: ServerProcess
) -> None:
    with default_store.client(auth=ROOT) as c:
        r = c.post("/v1/webhooks", json={"url": url, "events": ["object.*"]})
        assert r.status_code == 400 and r.json()["code"] == code, r.text
        assert c.get("/v1/webhooks").json()["webhooks"] == []


@pytest.fixture(scope="module")
def default_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start(tmp_path_factory.mktemp("webhooks-default"), {})
    yield proc
    proc.stop()


def test_metadata_addresses_stay_refused_with_the_loopback_allowed(admin: httpx.Client) -> None:
    r = admin.post("/v1/webhooks", json={"url": "http://169.254.169.254/", "events": ["object.*"]})
    assert r.status_code == 400 and r.json()["code"] == "WebhookTargetRefused"


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/", "events": []},
        {"url": "http://127.0.0.1:9/", "events": ["no.such"]},
        {"url": "http://127.0.0.1:9/", "events": ["object.*"], "format": "xml"},
        {"url": "http://127.0.0.1:9/", "events": ["object.*"], "filter": {"tags": ["x"]}},
        {"url": "http://127.0.0.1:9/", "events": ["object.*"], "secret": "mine"},
    ],
)
def test_bad_subscriptions_are_refused(admin: httpx.Client, body: dict[str, Any]) -> None:
    before = admin.get("/v1/webhooks").json()["webhooks"]
    r = admin.post("/v1/webhooks", json=body)
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", r.text
    assert admin.get("/v1/webhooks").json()["webhooks"] == before


def test_only_admins_manage_webhooks(store: ServerProcess, admin: httpx.Client) -> None:
    token = admin.post("/v1/tokens", json={"name": "w", "roles": ["writer"]}).json()["token"]
    with store.client(headers={"Authorization": f"Bearer {token}"}) as writer:
        r = writer.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["*"]})
        assert r.status_code == 403
        assert writer.get("/v1/webhooks").status_code == 403
    with store.client() as anonymous:
        assert anonymous.get("/v1/webhooks").status_code == 401
    assert admin.get("/v1/webhooks/wh_missing").json()["code"] == "NoSuchWebhook"


def test_an_event_survives_a_sigkill_before_its_delivery(
    tmp_path: Path, receiver: Receiver
) -> None:
    proc = start(tmp_path, {**FAST, "retrySchedule": [0.2] * 20})
    try:
        with proc.client(auth=ROOT) as c:
            hook = subscribe(c, receiver.url, events=["bucket.created"])
            receiver.control(secrets=[hook["secret"]], fail=1000, status=503)
            c.put("/v1/buckets/survivor")
            receiver.wait(lambda g: len(g) >= 1)
        proc.kill()  # SIGKILL: the event was written, not yet delivered
        failed = len(receiver.received())
        receiver.control(fail=0)
        proc.start()
        # The dead process held the delivery lease: the restarted one takes it when it expires.
        got = receiver.wait(lambda g: any(d["answered"] == 204 for d in g), timeout=40)
        assert [d["answered"] for d in got[failed:]] == [204]
        assert len({d["id"] for d in got}) == 1 and got[-1]["verified"]
        time.sleep(1.0)
        assert len(receiver.received()) == len(got)  # delivered once
    finally:
        proc.stop()


def test_two_replicas_deliver_each_event_once(
    tmp_path: Path, receiver: Receiver, metadata_uri_for: Any
) -> None:
    uri = metadata_uri_for("mongodb", tmp_path)
    secrets_key, token_key = tmp_path / "secrets.key", tmp_path / "registry-token.key"
    secrets_key.write_bytes(b"k" * 32)
    token_key.write_bytes(b"t" * 32)
    config = {**FAST}
    # Replicas share their keys (they refuse to start otherwise: services/replica_keys.py).
    env = {
        **ENV,
        "ZAS_AUTH_SECRETSKEYFILE": str(secrets_key),
        "ZAS_AUTH_TOKEN_KEYFILE": str(token_key),
    }
    replicas = [
        ServerProcess(tmp_path / f"r{i}", env=env, metadata_uri=uri,
                      config={"extensions": {"webhooks": config}}).start()
        for i in range(2)
    ]  # fmt: skip
    try:
        with replicas[0].client(auth=ROOT) as c:
            hook = subscribe(c, receiver.url, events=["object.created"])
            receiver.control(secrets=[hook["secret"]])
            c.put("/v1/buckets/replicated")
        for i in range(20):
            with replicas[i % 2].client(auth=ROOT) as c:
                assert c.put(f"/v1/buckets/replicated/objects/{i}", content=b"x").status_code == 201
        got = receiver.wait(lambda g: len(g) >= 20, timeout=40)
        time.sleep(1.5)
        got = receiver.received()
        keys = sorted(d["event"]["data"]["subject"]["key"] for d in got)
        assert keys == sorted(str(i) for i in range(20)), keys
        assert all(d["verified"] for d in got)
    finally:
        for r in replicas:
            r.stop()


def test_expiry_and_aborted_uploads_are_announced(admin: httpx.Client, receiver: Receiver) -> None:
    bucket = f"exp-{uuid.uuid4().hex[:8]}"
    hook = subscribe(admin, receiver.url, events=["object.deleted", "upload.aborted"],
                     filter={"buckets": [bucket]})  # fmt: skip
    receiver.control(secrets=[hook["secret"]])
    admin.put(f"/v1/buckets/{bucket}")
    r = admin.put(f"/v1/buckets/{bucket}/objects/short.txt", params={"expires_in": "60"},
                  content=b"soon gone")  # fmt: skip
    assert r.status_code == 201, r.text
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
    assert admin.post("/v1/admin/lifecycle/run", json={"now": later}).json()["ran"]
    upload = admin.post(f"/v1/buckets/{bucket}/uploads", json={"key": "big.bin"}).json()
    assert admin.delete(f"/v1/buckets/{bucket}/uploads/{upload['upload_id']}").status_code == 204
    got = receiver.wait(lambda g: len(g) == 2)
    events = {d["event"]["type"]: d["event"]["data"] for d in got}
    expired = events["object.deleted"]
    assert expired["actor"] == "system:lifecycle" and expired["subject"]["key"] == "short.txt"
    assert expired["data"]["reason"].startswith("expired")
    aborted = events["upload.aborted"]
    assert aborted["actor"] == f"root:{ROOT[0]}"
    assert aborted["data"]["upload_id"] == upload["upload_id"]


def test_downloads_and_pulls_refused_by_a_gate_are_announced(
    store: ServerProcess, admin: httpx.Client, receiver: Receiver
) -> None:
    """``gate.denied``: an enforcing gate's refusal of a /v1 download, an S3 GET and an OCI
    pull, each announced once with the subject and the policy; an audit-mode gate's failure
    and a passing subject announce nothing."""
    hook = subscribe(admin, receiver.url + "/gate", events=["gate.denied"])
    receiver.control(secrets=[hook["secret"]])
    policy = {"sbom": True}
    enforced, audited = (f"gated-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for bucket, mode in ((enforced, "enforce"), (audited, "audit")):
        assert admin.put(f"/v1/buckets/{bucket}").status_code == 201
        assert admin.put(f"/v1/buckets/{bucket}/objects/a.bin", content=b"unsigned").status_code
        gate = {"name": "sbom-required", "mode": mode, "policy": policy}
        assert admin.put(f"/v1/buckets/{bucket}/verification", json=gate).status_code == 200
    r = admin.get(f"/v1/buckets/{enforced}/objects/a.bin")
    assert r.status_code == 403 and r.json()["code"] == "VerificationFailed", r.text
    s3 = s3_client(store.url, *ROOT)
    with pytest.raises(Exception, match=r"AccessDenied.*sbom-required"):  # S3 dialect
        s3.get_object(Bucket=enforced, Key="a.bin")
    s3.close()
    r = admin.get(f"/v1/buckets/{audited}/objects/a.bin")
    assert r.status_code == 200 and r.headers["X-Verification"] == "failed"
    # An image pull under an enforcing repository gate.
    repo = f"gated/app-{uuid.uuid4().hex[:6]}"
    layer = b"layer"
    assert admin.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(layer)},
                      content=layer).status_code == 201  # fmt: skip
    ref = {"mediaType": "application/octet-stream", "digest": sha256(layer), "size": len(layer)}
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [ref],
           "config": {**ref, "mediaType": "application/vnd.oci.image.config.v1+json"}}  # fmt: skip
    body = json.dumps(doc).encode()
    headers = {"Content-Type": OCI_MANIFEST}
    assert admin.put(f"/v2/{repo}/manifests/1.0", content=body, headers=headers).status_code == 201
    gate = {"name": "sbom-required", "mode": "enforce", "policy": policy}
    assert admin.put(f"/v1/repositories/{repo}/verification", json=gate).status_code == 200
    r = admin.get(f"/v2/{repo}/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 403, r.text

    got = receiver.wait(lambda g: len(g) >= 3)
    time.sleep(1)  # nothing more arrives: the audit-mode failure is not a denial
    got = receiver.received()
    assert all(d["verified"] for d in got)
    denied = of_type(got, "gate.denied")
    assert len(denied) == len(got) == 3, [e["subject"] for e in denied]
    object_subject = {"bucket": enforced, "key": "a.bin", "digest": sha256(b"unsigned")}
    image_subject = {"repository": repo, "digest": sha256(body)}
    subjects = sorted((e["subject"] for e in denied), key=json.dumps)
    assert subjects == sorted([object_subject, object_subject, image_subject], key=json.dumps)
    for event in denied:
        assert event["data"]["policy"] == "sbom-required" and event["data"]["mode"] == "enforce"
        assert "no SBOM is attached" in event["data"]["reasons"], event["data"]
        assert event["actor"] == f"root:{ROOT[0]}"


def test_the_sdk_and_cli_manage_subscriptions_and_redeliver(
    store: ServerProcess, receiver: Receiver, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The Python SDK and ``zot-artifacts webhook`` do what an admin does by hand: subscribe,
    test, read the delivery log, redeliver, rotate the secret, disable, delete."""
    sdk = Client(store.url, auth=BasicAuth(*ROOT))
    request.addfinalizer(sdk.close)
    hook = sdk.create_webhook(receiver.url + "/sdk", ["webhook.test", "object.*"],
                              buckets=["sdk-*"], description="from the sdk")  # fmt: skip
    assert (
        hook.secret and hook.secret.startswith("whsec_") and hook.filter == {"buckets": ["sdk-*"]}
    )
    receiver.control(secrets=[hook.secret])
    queued = sdk.test_webhook(hook.id)
    assert queued.event_type == "webhook.test" and queued.status == "pending"
    got = receiver.wait(lambda g: len(of_type(g, "webhook.test")) >= 1)
    assert all(d["verified"] for d in got)
    [delivered] = [d for d in sdk.webhook_deliveries(hook.id) if d.id == queued.id]
    assert delivered.status == "delivered" and delivered.response_code == 204
    again = sdk.redeliver(hook.id, queued.id)
    assert again.id == queued.id
    receiver.wait(lambda g: len(of_type(g, "webhook.test")) >= 2)
    rotated = sdk.rotate_webhook_secret(hook.id, grace_seconds=60)
    assert rotated.secret and rotated.secret != hook.secret and rotated.secrets == 2
    assert sdk.update_webhook(hook.id, active=False).active is False
    assert [w.id for w in sdk.list_webhooks() if w.id == hook.id] == [hook.id]

    # The same through the CLI, with an API token.
    token = sdk.create_token("hooks-cli", ["admin"]).secret
    assert token
    z = Z(tmp_path, store.url, token)
    made = z.json("webhook", "create", receiver.url + "/cli", "--event", "image.*",
                  "--repository", "prod/*", "--format", "cloudevents")  # fmt: skip
    assert made["secret"].startswith("whsec_") and made["format"] == "cloudevents"
    assert made["filter"] == {"repositories": ["prod/*"]} and made["events"] == ["image.*"]
    listed = z.json("webhook", "list")["webhooks"]
    assert {made["id"], hook.id} <= {w["id"] for w in listed}
    assert all("secret" not in w or w["secret"] is None for w in listed)
    assert z.json("webhook", "update", made["id"], "--disable")["active"] is False
    test = z.json("webhook", "test", made["id"])
    assert test["event_type"] == "webhook.test"
    assert z.json("webhook", "deliveries", hook.id, "--limit", "1")["deliveries"][0]["id"]
    assert z.json("webhook", "rotate-secret", made["id"])["secret"].startswith("whsec_")
    r = z("webhook", "update", made["id"])
    assert r.exit_code == 2 and "give at least one of" in r.stderr
    z.fails("webhook", "show", "wh_missing", code="NoSuchWebhook")
    for ident in (made["id"], hook.id):
        assert z.json("webhook", "delete", ident) == {"deleted": ident}
    z.fails("webhook", "redeliver", hook.id, queued.id, code="NoSuchDelivery")


async def test_the_async_client_manages_subscriptions(
    store: ServerProcess, receiver: Receiver
) -> None:
    async with AsyncClient(store.url, auth=BasicAuth(*ROOT)) as sdk:
        hook = await sdk.create_webhook(receiver.url + "/async", ["webhook.test"])
        assert hook.secret and hook.format == "standard-webhooks" and hook.active
        receiver.control(secrets=[hook.secret])
        queued = await sdk.test_webhook(hook.id)
        assert (await sdk.get_webhook(hook.id)).url == receiver.url + "/async"
        assert hook.id in [w.id for w in await sdk.list_webhooks()]
        seen = [d.id async for d in sdk.webhook_deliveries(hook.id)]
        assert seen == [queued.id]
        assert (await sdk.update_webhook(hook.id, description="async")).description == "async"
        await sdk.delete_webhook(hook.id)
        with pytest.raises(NotFoundError):
            await sdk.get_webhook(hook.id)
