"""Inbound CI events against the running server (authentication on, both metadata backends):
Tekton CloudEvents (binary mode) through a source's URL token or a bearer token, GitHub
``workflow_run`` webhooks signed with the source's secret; each becomes a build record linked
to the artifacts it produced, which object metadata and ``/v1/builds`` then show."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fixtures.server import ServerProcess
from tests.integration.test_identity import ROOT, bearer, eventually, make_token, problem

TASKRUN_TYPE = "dev.tekton.event.taskrun.{}.v1"


def create_source(c: httpx.Client, kind: str, **extra: Any) -> dict[str, Any]:
    r = c.post("/v1/event-sources", json={"name": f"{kind}-ci", "type": kind, **extra}, auth=ROOT)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def events_path(source: dict[str, Any]) -> str:
    """The path and query of the URL the server handed out (its host is the server's)."""
    parts = urlsplit(source["url"])
    assert parts.path == "/v1/events"
    return f"{parts.path}?{parts.query}"


def upload(c: httpx.Client, bucket: str, key: str, data: bytes, labels: str = "") -> str:
    headers = {"X-Artifact-Labels": labels} if labels else {}
    r = c.put(f"/v1/buckets/{bucket}/objects/{key}", content=data, headers=headers, auth=ROOT)
    assert r.status_code == 201, r.text
    return r.json()["digest"]


def make_bucket(c: httpx.Client) -> str:
    name = f"ev-{uuid.uuid4().hex[:12]}"
    assert c.put(f"/v1/buckets/{name}", auth=ROOT).status_code == 201
    return name


def taskrun(name: str, uid: str, phase: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """A TaskRun as Tekton Pipelines v1 puts it in its CloudEvents."""
    succeeded = {"started": None, "running": "Unknown", "successful": "True", "failed": "False"}
    reason = {"running": "Running", "successful": "Succeeded", "failed": "Failed"}
    status: dict[str, Any] = {
        "podName": f"{name}-pod",
        "startTime": "2026-11-28T10:00:00Z",
        "steps": [{"name": "build", "container": "step-build", "imageID": "docker.io/x@sha256:1"}],
    }
    if succeeded[phase] is not None:
        status["conditions"] = [
            {
                "type": "Succeeded",
                "status": succeeded[phase],
                "reason": reason[phase],
                "message": "All Steps have completed executing",
                "lastTransitionTime": "2026-11-28T10:05:00Z",
            }
        ]
    if phase in ("successful", "failed"):
        status["completionTime"] = "2026-11-28T10:05:00Z"
        status["results"] = results
    return {
        "taskRun": {
            "kind": "TaskRun",
            "apiVersion": "tekton.dev/v1",
            "metadata": {
                "name": name,
                "namespace": "ci",
                "uid": uid,
                "generation": 1,
                "labels": {
                    "app.kubernetes.io/managed-by": "tekton-pipelines",
                    "tekton.dev/task": "zot-upload",
                    "tekton.dev/taskRun": name,
                },
            },
            "spec": {
                "taskRef": {"kind": "Task", "name": "zot-upload"},
                "serviceAccountName": "default",
                "timeout": "1h0m0s",
            },
            "status": status,
        }
    }


def cloudevent(
    c: httpx.Client,
    path: str,
    kind: str,
    phase: str,
    body: dict[str, Any],
    event_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    run = (body.get("taskRun") or body.get("pipelineRun") or {}).get("metadata", {"name": "x"})
    return c.post(
        path,
        content=json.dumps(body).encode(),
        headers={
            "Ce-Specversion": "1.0",
            "Ce-Id": event_id or str(uuid.uuid4()),
            "Ce-Source": f"/apis/tekton.dev/v1/namespaces/ci/{kind}s/{run['name']}",
            "Ce-Type": f"dev.tekton.event.{kind}.{phase}.v1",
            "Ce-Subject": run["name"],
            "Ce-Time": "2026-11-28T10:05:00.123456789Z",
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )


def builds_of(c: httpx.Client, digest: str, **auth: Any) -> list[dict[str, Any]]:
    r = c.get("/v1/builds", params={"digest": digest}, **(auth or {"auth": ROOT}))
    assert r.status_code == 200, r.text
    return r.json()["builds"]


def object_builds(c: httpx.Client, bucket: str, key: str) -> list[dict[str, Any]]:
    r = c.get(f"/v1/buckets/{bucket}/objects/{key}", params={"metadata": "true"}, auth=ROOT)
    assert r.status_code == 200, r.text
    return r.json()["builds"]


def test_tekton_taskrun_events_record_the_build_and_link_its_artifact(
    auth_server: ServerProcess,
) -> None:
    with auth_server.client() as c:
        source = create_source(c, "tekton")
        assert parse_qs(urlsplit(source["url"]).query) == {
            "source": [source["id"]],
            "token": [source["secret"]],
        }
        bucket = make_bucket(c)
        digest = upload(c, bucket, "app/app.tar.gz", b"release bytes")
        other = upload(c, bucket, "unrelated.bin", b"something else")
        assert object_builds(c, bucket, "app/app.tar.gz") == []
        path, uid, started_id = events_path(source), str(uuid.uuid4()), str(uuid.uuid4())

        r = cloudevent(c, path, "taskrun", "started", taskrun("build-abc", uid, "started", []),
                       started_id)  # fmt: skip
        assert r.status_code == 200, r.text
        started = r.json()
        assert started["duplicate"] is False and started["build"]["status"] == "started"
        assert started["build"]["digests"] == []
        results = [
            {"name": "ARTIFACT_URI", "type": "string",
             "value": f"{auth_server.url}/v1/buckets/{bucket}/objects/app/app.tar.gz"},
            {"name": "ARTIFACT_DIGEST", "type": "string", "value": digest},
            {"name": "COMMIT", "type": "string", "value": "0123abcd" * 5},
            {"name": "FILES", "type": "array", "value": ["a", "b"]},
        ]  # fmt: skip
        body = taskrun("build-abc", uid, "successful", results)
        r = cloudevent(c, path, "taskrun", "successful", body)
        assert r.status_code == 200, r.text
        build = r.json()["build"]
        assert build["id"] == started["build"]["id"]  # one record per run
        assert (build["status"], build["name"], build["namespace"]) == (
            "succeeded",
            "build-abc",
            "ci",
        )
        assert build["commit"] == "0123abcd" * 5
        assert build["results"]["FILES"] == ["a", "b"]
        assert build["digests"] == [digest]
        assert build["started_at"] == "2026-11-28T10:00:00.000Z"
        assert build["finished_at"] == "2026-11-28T10:05:00.000Z"

        # The artifact shows the build that produced it; the other object shows none.
        shown = object_builds(c, bucket, "app/app.tar.gz")
        assert shown == [{"id": build["id"], "source": source["id"], "name": "build-abc",
                          "status": "succeeded", "url": build["url"]}]  # fmt: skip
        assert object_builds(c, bucket, "unrelated.bin") == []
        assert [b["id"] for b in builds_of(c, digest)] == [build["id"]]
        assert builds_of(c, other) == []
        r = c.get(f"/v1/builds/{build['id']}", auth=ROOT)
        assert r.status_code == 200 and r.json()["results"]["ARTIFACT_DIGEST"] == digest

        # Tekton retries a delivery with the same Ce-Id: recorded once, the run unchanged.
        before = c.get(f"/v1/builds/{build['id']}", auth=ROOT).json()
        r = cloudevent(c, path, "taskrun", "started", taskrun("build-abc", uid, "started", []),
                       started_id)  # fmt: skip
        assert r.status_code == 200 and r.json() == {"duplicate": True, "event_id": started_id}
        assert c.get(f"/v1/builds/{build['id']}", auth=ROOT).json() == before
        # A delayed "running" event (new id) does not move a finished run back.
        r = cloudevent(c, path, "taskrun", "running", taskrun("build-abc", uid, "running", []))
        assert r.status_code == 200 and r.json()["build"]["status"] == "succeeded"
        assert r.json()["build"]["digests"] == [digest]

        listed = c.get("/v1/builds", params={"source": source["id"]}, auth=ROOT).json()
        assert [b["id"] for b in listed["builds"]] == [build["id"]]

        def audited() -> list[dict]:
            q = {"action": "events:Publish", "resource": f"events:{source['id']}"}
            r = c.get("/v1/audit", params=q, auth=ROOT)
            return list(r.json()["records"])

        # Audit records are written in batches: wait for all three, then for no fourth.
        eventually(lambda: len(audited()) >= 3)
        time.sleep(0.5)
        records = audited()
        assert {r["principal"] for r in records} == {f"event-source:{source['id']}"}
        assert len(records) == 3  # started, successful, running; not the duplicate
        # The URL token never reaches the server's log (the access log redacts it).
        assert source["secret"] not in auth_server.log_path.read_text()
        assert any(
            line.get("route") == "/v1/events" and "token=REDACTED" in line.get("path", "")
            for line in auth_server.log_lines()
        )


def test_pipelinerun_outputs_images_and_store_uris_without_digest(
    auth_server: ServerProcess,
) -> None:
    with auth_server.client() as c:
        source = create_source(c, "tekton", secret="a-long-enough-url-token-123")
        assert source["secret"] == "a-long-enough-url-token-123"
        bucket = make_bucket(c)
        by_uri = upload(c, bucket, "dist/cli", b"cli binary")
        chains = upload(c, bucket, "dist/sbom.json", b"{}")
        image = "sha256:" + hashlib.sha256(b"an image manifest").hexdigest()
        body = {
            "pipelineRun": {
                "apiVersion": "tekton.dev/v1",
                "kind": "PipelineRun",
                "metadata": {"name": "release-7", "namespace": "ci", "uid": str(uuid.uuid4()),
                             "labels": {"tekton.dev/pipeline": "release"}},
                "spec": {"pipelineRef": {"name": "release"}},
                "status": {
                    "startTime": "2026-11-28T11:00:00Z",
                    "completionTime": "2026-11-28T11:09:00Z",
                    "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}],
                    "results": [
                        {"name": "ARTIFACT_URI", "value": f"zot://{bucket}/dist/cli"},
                        {"name": "sbom-ARTIFACT_OUTPUTS",
                         "value": {"uri": f"s3://{bucket}/dist/sbom.json", "digest": chains}},
                        {"name": "IMAGE_URL", "value": "registry.example/app:1"},
                        {"name": "IMAGE_DIGEST", "value": image},
                        {"name": "NOT_A_DIGEST", "value": "sha256:nope"},
                    ],
                    "childReferences": [{"kind": "TaskRun", "name": "release-7-build"}],
                },
            }
        }  # fmt: skip
        r = cloudevent(c, events_path(source), "pipelinerun", "failed", body)
        assert r.status_code == 200, r.text
        build = r.json()["build"]
        assert (build["kind"], build["status"]) == ("pipelinerun", "failed")
        assert build["details"]["pipeline"] == "release"
        # A URL token may not read objects, so a URI without its digest is not looked up:
        # otherwise posting an event would tell whether a private object exists, and its
        # digest. (A bearer token that may read it gets it resolved: see below.)
        assert sorted(build["digests"]) == sorted([chains, image])
        assert {"uri": f"zot://{bucket}/dist/cli", "digest": ""} in build["artifacts"]
        for d in (chains, image):
            assert [b["id"] for b in builds_of(c, d)] == [build["id"]]
        assert builds_of(c, by_uri) == []
        assert object_builds(c, bucket, "dist/sbom.json")[0]["status"] == "failed"


def test_bad_tokens_unknown_types_and_big_bodies_record_nothing(
    auth_server: ServerProcess,
) -> None:
    with auth_server.client() as c:
        source = create_source(c, "tekton")
        good = taskrun("run-x", str(uuid.uuid4()), "started", [])
        for path in (
            f"/v1/events?source={source['id']}&token={'x' * 43}",
            f"/v1/events?source=es_0000000000000000&token={source['secret']}",
            f"/v1/events?source={source['id']}",  # no token, no credentials
            "/v1/events",
        ):
            problem(cloudevent(c, path, "taskrun", "started", good), 401, "Unauthenticated")
        path = events_path(source)
        r = cloudevent(c, path, "taskrun", "started", good,
                       headers={"Ce-Type": "dev.tekton.event.customrun.started.v1"})  # fmt: skip
        problem(r, 400, "UnsupportedEvent")
        r = cloudevent(c, path, "taskrun", "started", good, headers={"Ce-Specversion": "0.3"})
        problem(r, 400, "InvalidRequest")
        r = cloudevent(c, path, "taskrun", "started", {"pipelineRun": {}})
        problem(r, 400, "MalformedJSON")
        big = {**good, "padding": "x" * (1024 * 1024)}
        problem(cloudevent(c, path, "taskrun", "started", big), 413, "EntityTooLarge")
        r = c.get("/v1/builds", params={"source": source["id"]}, auth=ROOT)
        assert r.json() == {"builds": [], "next_cursor": None}
        # A refused delivery's Ce-Id is not spent: the same id is accepted when valid.
        event_id = str(uuid.uuid4())
        bad = f"/v1/events?source={source['id']}&token={'y' * 43}"
        problem(cloudevent(c, bad, "taskrun", "started", good, event_id), 401, "Unauthenticated")
        r = cloudevent(c, path, "taskrun", "started", good, event_id)
        assert r.status_code == 200 and r.json()["duplicate"] is False

        # Deleting the source kills its URL.
        assert c.delete(f"/v1/event-sources/{source['id']}", auth=ROOT).status_code == 204
        problem(cloudevent(c, path, "taskrun", "started", good), 401, "Unauthenticated")
        problem(c.delete(f"/v1/event-sources/{source['id']}", auth=ROOT), 404, "NoSuchEventSource")


def test_bearer_tokens_publish_with_events_publish(auth_server: ServerProcess) -> None:
    with auth_server.client() as c:
        publisher = make_token(c, ["events-publisher"], "tekton-sink")
        reader = make_token(c, ["reader"], "looker")
        bucket = make_bucket(c)
        digest = upload(c, bucket, "out.bin", b"built by a bearer-token pipeline")
        results = [{"name": "ARTIFACT_URI", "value": f"zot://{bucket}/out.bin"},
                   {"name": "ARTIFACT_DIGEST", "value": digest}]  # fmt: skip
        body = taskrun("run-b", str(uuid.uuid4()), "successful", results)
        r = cloudevent(c, "/v1/events", "taskrun", "successful", body, headers=bearer(reader))
        problem(r, 403, "AccessDenied")
        assert builds_of(c, digest) == []
        r = cloudevent(c, "/v1/events", "taskrun", "successful", body, headers=bearer(publisher))
        assert r.status_code == 200, r.text
        assert r.json()["build"]["source"] == "default"
        # Readers see builds; the publisher's role does not include reading them.
        assert [b["name"] for b in builds_of(c, digest, headers=bearer(reader))] == ["run-b"]
        r = c.get("/v1/builds", params={"digest": digest}, headers=bearer(publisher))
        problem(r, 403, "AccessDenied")
        # A result naming an object without its digest is resolved only for a poster who may
        # read it; for any other, an existing private object and a missing one look the same.
        by_uri = [{"name": "ARTIFACT_URI", "value": f"zot://{bucket}/out.bin"}]
        missing = [{"name": "ARTIFACT_URI", "value": f"zot://{bucket}/no-such.bin"}]
        reading = make_token(c, ["events-publisher", "reader"], "reading-sink")
        answers = {}
        for name, token, res in (("blind", publisher, by_uri), ("absent", publisher, missing),
                                 ("reads", reading, by_uri)):  # fmt: skip
            body = taskrun(f"run-{name}", str(uuid.uuid4()), "successful", res)
            r = cloudevent(c, "/v1/events", "taskrun", "successful", body, headers=bearer(token))
            assert r.status_code == 200, r.text
            answers[name] = r.json()["build"]
        assert answers["blind"]["artifacts"] == [{"uri": by_uri[0]["value"], "digest": ""}]
        assert answers["blind"]["digests"] == answers["absent"]["digests"] == []
        assert answers["reads"]["artifacts"] == [{"uri": by_uri[0]["value"], "digest": digest}]
        assert "run-reads" in {b["name"] for b in builds_of(c, digest)}
        assert "run-blind" not in {b["name"] for b in builds_of(c, digest)}

        # Nor managing sources.
        r = c.post("/v1/event-sources", json={"name": "x", "type": "tekton"},
                   headers=bearer(publisher))  # fmt: skip
        problem(r, 403, "AccessDenied")
        problem(c.get("/v1/builds/bnope", auth=ROOT), 404, "NoSuchBuild")


def github_delivery(
    c: httpx.Client,
    path: str,
    secret: str | None,
    payload: dict[str, Any],
    event: str = "workflow_run",
    delivery: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    raw = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "123456",
        "User-Agent": "GitHub-Hookshot/abc1234",
        "Content-Type": "application/json",
    }
    if secret is not None:
        mac = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = signature or f"sha256={mac}"
    return c.post(path, content=raw, headers=headers)


def workflow_run(action: str, run_id: int, conclusion: str | None = None) -> dict[str, Any]:
    repo = {"id": 1, "name": "app", "full_name": "acme/app", "private": False}
    return {
        "action": action,
        "workflow_run": {
            "id": run_id,
            "name": "release",
            "head_branch": "main",
            "head_sha": "9f" * 20,
            "run_number": 17,
            "run_attempt": 1,
            "event": "push",
            "status": "completed" if action == "completed" else action,
            "conclusion": conclusion,
            "html_url": f"https://github.com/acme/app/actions/runs/{run_id}",
            "run_started_at": "2026-11-28T12:00:00Z",
            "updated_at": "2026-11-28T12:04:00Z",
            "repository": repo,
        },
        "workflow": {"id": 5, "name": "release", "path": ".github/workflows/release.yml"},
        "repository": repo,
        "sender": {"login": "octocat"},
    }


def test_github_workflow_run_links_objects_labelled_with_the_run(
    auth_server: ServerProcess,
) -> None:
    with auth_server.client() as c:
        source = create_source(c, "github")
        secret, path = source["secret"], events_path(source)
        assert "token" not in parse_qs(urlsplit(source["url"]).query)
        listed = c.get("/v1/event-sources", auth=ROOT).json()["sources"]
        assert source["id"] in {s["id"] for s in listed}
        assert all("secret" not in s and "token=" not in s["url"] for s in listed)
        run_id = int(uuid.uuid4().int % 10**10)
        labels = f"github.repository=acme/app,github.run_id={run_id}"
        bucket = make_bucket(c)
        before = upload(c, bucket, "wheel.whl", b"uploaded during the run", labels)
        unrelated = upload(c, bucket, "x.whl", b"other run", f"github.repository=acme/app,"
                           f"github.run_id={run_id + 1}")  # fmt: skip

        r = github_delivery(c, path, secret, {"zen": "Keep it logically awesome."}, "ping")
        assert r.status_code == 200 and r.json()["ping"] is True
        # Wrong or missing signatures: refused before the body is looked at, nothing stored.
        problem(github_delivery(c, path, None, workflow_run("requested", run_id)),
                401, "Unauthenticated")  # fmt: skip
        r = github_delivery(c, path, "not-the-secret", workflow_run("requested", run_id))
        problem(r, 403, "SignatureDoesNotMatch")
        r = github_delivery(c, path, secret, workflow_run("requested", run_id),
                            signature="sha1=" + "0" * 40)  # fmt: skip
        problem(r, 403, "SignatureDoesNotMatch")
        assert builds_of(c, before) == []
        problem(github_delivery(c, path, secret, {"ref": "main"}, "push"), 400, "UnsupportedEvent")

        delivery = str(uuid.uuid4())
        r = github_delivery(c, path, secret, workflow_run("completed", run_id, "success"),
                            delivery=delivery)  # fmt: skip
        assert r.status_code == 200, r.text
        build = r.json()["build"]
        assert (build["status"], build["repository"], build["commit"]) == (
            "succeeded", "acme/app", "9f" * 20)  # fmt: skip
        assert build["url"] == f"https://github.com/acme/app/actions/runs/{run_id}"
        assert build["digests"] == [before]
        r = github_delivery(c, path, secret, workflow_run("completed", run_id, "success"),
                            delivery=delivery)  # fmt: skip
        assert r.json() == {"duplicate": True, "event_id": delivery}
        # A late "in_progress" does not undo the conclusion.
        r = github_delivery(c, path, secret, workflow_run("in_progress", run_id))
        assert r.json()["build"]["status"] == "succeeded"

        # An object of the run uploaded after its event joins the build too.
        after = upload(c, bucket, "late.tar", b"uploaded after the event", labels)
        assert object_builds(c, bucket, "late.tar") == [
            {"id": build["id"], "source": source["id"], "name": "release",
             "status": "succeeded", "url": build["url"]}
        ]  # fmt: skip
        assert object_builds(c, bucket, "wheel.whl")[0]["id"] == build["id"]
        assert builds_of(c, unrelated) == []
        assert sorted(c.get(f"/v1/builds/{build['id']}", auth=ROOT).json()["digests"]) == sorted(
            [before, after]
        )
        # A Tekton-style URL token does not open a GitHub source.
        r = cloudevent(c, f"{path}&token={secret}", "taskrun", "started",
                       taskrun("t", "u", "started", []))  # fmt: skip
        problem(r, 401, "Unauthenticated")


def test_event_source_requests_are_validated(auth_server: ServerProcess) -> None:
    with auth_server.client() as c:
        for body in (
            {"name": "x", "type": "jenkins"},
            {"name": "x", "type": "github", "secret": "short"},
            {"name": "", "type": "tekton"},
        ):
            problem(c.post("/v1/event-sources", json=body, auth=ROOT), 400, "InvalidArgument")
        r = c.post("/v1/event-sources", json={"name": "x", "type": "github", "extra": 1}, auth=ROOT)
        problem(r, 400, "MalformedJSON")
        problem(c.post("/v1/event-sources", json={"name": "x", "type": "tekton"}), 401,
                "Unauthenticated")  # fmt: skip
