"""Provenance the store vouches for (issue 18 §3): ``POST /v1/provenance`` builds SLSA v1
provenance from the CI platform token's verified claims (a GitHub-shaped OIDC token and a
Kubernetes service-account token from the test issuer, exchanged at /v1/auth/exchange), never
from what the caller says; one statement names every file; only what the asking identity (in a
workload session: that very session) wrote; a policy naming another repository fails."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ci.issuer import REPOSITORY, TestIssuer, github_claims
from tests.fixtures.server import ServerProcess

AUDIENCE = "zot-artifact-store"
ROOT = ("prov-admin", "prov-admin-password")
SLSA = "https://slsa.dev/provenance/v1"


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as it:
        yield it


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def store(
    request: pytest.FixtureRequest,
    issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
    metadata_uri_for: Any,
) -> Iterator[ServerProcess]:
    rule = {"issuer": issuer.issuer, "audience": AUDIENCE, "roles": ["writer"], "expiry": "10m"}
    config = {
        "auth": {
            "trust": [
                {"name": "acme", **rule, "claims": {"repository": "acme/*"}},
                {"name": "evil", **rule, "claims": {"repository": "evil/*"}},
                {"name": "ci-pods", **rule, "claims": {"kubernetes.io/namespace": "ci"}},
            ]
        }
    }
    env = {"ZAS_ROOT_USER": ROOT[0], "ZAS_ROOT_PASSWORD": ROOT[1]}
    data = tmp_path_factory.mktemp("provenance") / "data"
    uri = metadata_uri_for(request.param, data)
    proc = ServerProcess(data, env=env, config=config, metadata_uri=uri).start()
    yield proc
    proc.stop()


@pytest.fixture
def admin(store: ServerProcess) -> Iterator[httpx.Client]:
    with store.client(auth=ROOT) as c:
        yield c


@pytest.fixture
def bucket(admin: httpx.Client) -> str:
    name = f"prov-{uuid.uuid4().hex[:8]}"
    assert admin.put(f"/v1/buckets/{name}").status_code == 201
    return name


def session(store: ServerProcess, platform_token: str) -> httpx.Client:
    r = httpx.post(f"{store.url}/v1/auth/exchange", json={"token": platform_token})
    assert r.status_code == 200, r.text
    return store.client(headers={"Authorization": f"Bearer {r.json()['token']}"})


def put(c: httpx.Client, bucket: str, key: str, data: bytes) -> str:
    r = c.put(f"/v1/buckets/{bucket}/objects/{key}", content=data)
    assert r.status_code in (200, 201), r.text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def statement_of(evidence_id: str, c: httpx.Client) -> dict[str, Any]:
    envelope = c.get(f"/v1/evidence/{evidence_id}").json()
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def verify(c: httpx.Client, bucket: str, key: str, rule: dict[str, Any]) -> dict[str, Any]:
    subject = {"bucket": bucket, "key": key}
    r = c.post("/v1/verify", json={"subject": subject, "policy": {"attestations": [rule]}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def server_key(c: httpx.Client) -> str:
    keys = c.get("/v1/keys").json()["keys"]
    return str(next(k["id"] for k in keys if k["name"] == "server signing key"))


def test_github_provenance_is_built_from_the_verified_claims(
    store: ServerProcess, issuer: TestIssuer, admin: httpx.Client, bucket: str
) -> None:
    claims = github_claims(run_id="777", run_attempt="2", sha="ab" * 20)
    with session(store, issuer.mint(AUDIENCE, claims)) as job:
        digests = {
            "app/1.0/app.tar.gz": put(job, bucket, "app/1.0/app.tar.gz", b"app bytes"),
            "app/1.0/app.sbom.json": put(job, bucket, "app/1.0/app.sbom.json", b"{}"),
        }
        subjects = [{"bucket": bucket, "key": k} for k in digests]
        r = job.post("/v1/provenance", json={"subjects": subjects})
        assert r.status_code == 201, r.text
        answer = r.json()
    statement = answer["statement"]
    # One statement names every file, relative to the bucket.
    assert {s["name"]: "sha256:" + s["digest"]["sha256"] for s in statement["subject"]} == digests
    assert statement["predicateType"] == SLSA
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == "https://actions.github.io/buildtypes/workflow/v1"
    assert build["externalParameters"]["workflow"] == {
        "ref": "refs/heads/main",
        "repository": f"https://github.com/{REPOSITORY}",
        "path": ".github/workflows/release.yml",
    }
    assert build["internalParameters"]["github"] == {
        "event_name": "push",
        "repository_id": "424242",
        "repository_owner_id": "4242",
        "runner_environment": "github-hosted",
    }
    assert build["resolvedDependencies"] == [
        {
            "uri": f"git+https://github.com/{REPOSITORY}@refs/heads/main",
            "digest": {"gitCommit": "ab" * 20},
        }
    ]
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == f"https://github.com/{claims['job_workflow_ref']}"
    assert run["metadata"]["invocationId"].endswith(f"/{REPOSITORY}/actions/runs/777/attempts/2")
    # Attached to each subject, signed by the store: the stored envelope is that statement.
    assert len(answer["evidence"]) == 2
    for evidence in answer["evidence"]:
        assert evidence["kind"] == "attestation" and evidence["details"]["built_by_server"]
        assert statement_of(evidence["id"], admin) == statement

    # Policies name who built it: this repository passes, another repository fails.
    rule = {
        "predicate_type": SLSA,
        "signer": {"key": server_key(admin)},
        "constraints": {
            "buildDefinition.externalParameters.workflow.repository": "https://github.com/acme/app"
        },
    }
    assert verify(admin, bucket, "app/1.0/app.tar.gz", rule)["verified"] is True
    other = {**rule, "constraints": {"buildDefinition.externalParameters.workflow.repository":
                                     "https://github.com/evil/app"}}  # fmt: skip
    assert verify(admin, bucket, "app/1.0/app.tar.gz", other)["verified"] is False

    # The shorthand for the same: source (repository, ref, commit) and builder (the workflow).
    short = {
        "predicate_type": SLSA,
        "signer": {"key": server_key(admin)},
        "source": {"repository": "Acme/App", "ref": "refs/heads/*", "commit": "ab" * 20},
        "builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml@*"},
    }
    assert verify(admin, bucket, "app/1.0/app.tar.gz", short)["verified"] is True
    for wrong, reason in [
        ({"source": {"repository": "evil/app"}}, "repository is 'acme/app', not 'evil/app'"),
        ({"source": {"ref": "refs/tags/*"}}, "ref is 'refs/heads/main', not 'refs/tags/*'"),
        ({"source": {"namespace": "ci"}}, "namespace is None"),
        ({"builder": {"id": "https://github.com/acme/app/.github/workflows/other.yml@*"}},
         "builder is 'https://github.com/acme/app/.github/workflows/release.yml@"),
    ]:  # fmt: skip
        result = verify(admin, bucket, "app/1.0/app.tar.gz", {**short, **wrong})
        assert result["verified"] is False and reason in json.dumps(result), result


@pytest.mark.parametrize(
    "rule",
    [
        {"predicate_type": SLSA, "source": {"repo": "acme/app"}},
        {"predicate_type": SLSA, "source": {"repository": ""}},
        {"predicate_type": SLSA, "source": {}},
        {"predicate_type": SLSA, "source": "acme/app"},
        {"predicate_type": SLSA, "builder": "https://github.com/acme/*"},
        {"predicate_type": SLSA, "builder": {"id": "x", "name": "y"}},
        {"predicate_type": "https://in-toto.io/attestation/test-result/v0.1",
         "source": {"repository": "acme/app"}},
    ],
)  # fmt: skip
def test_a_source_or_builder_rule_that_names_nothing_known_is_refused(
    admin: httpx.Client, bucket: str, rule: dict[str, Any]
) -> None:
    admin.put(f"/v1/buckets/{bucket}/objects/x.bin", content=b"x")
    subject = {"bucket": bucket, "key": "x.bin"}
    r = admin.post("/v1/verify", json={"subject": subject, "policy": {"attestations": [rule]}})
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", r.text


def test_identical_bytes_from_another_repository_cannot_borrow_provenance(
    store: ServerProcess, issuer: TestIssuer, admin: httpx.Client, bucket: str
) -> None:
    """evil/app uploads the same bytes and gets provenance: it names evil/app, so a policy
    naming acme/app still fails for evil's object; and evil cannot ask for acme's object."""
    with session(store, issuer.mint(AUDIENCE, github_claims())) as acme:
        put(acme, bucket, "acme.bin", b"same bytes")
    evil_claims = github_claims(repository="evil/app", repository_id="666",
                                workflow_ref="evil/app/.github/workflows/x.yml@refs/heads/main",
                                job_workflow_ref="evil/app/.github/workflows/x.yml@refs/heads/main",
                                sub="repo:evil/app:ref:refs/heads/main")  # fmt: skip
    with session(store, issuer.mint(AUDIENCE, evil_claims)) as evil:
        put(evil, bucket, "evil.bin", b"same bytes")
        refused = evil.post(
            "/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "acme.bin"}]}
        )
        assert refused.status_code == 403 and "not written by this session" in refused.text
        assert (
            evil.post(
                "/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "evil.bin"}]}
            ).status_code
            == 201
        )
    rule = {
        "predicate_type": SLSA,
        "constraints": {
            "buildDefinition.externalParameters.workflow.repository": "https://github.com/acme/app"
        },
    }
    # The digest is the same, so evil's evidence is listed under it too — and fails the rule.
    assert verify(admin, bucket, "evil.bin", rule)["verified"] is False


def test_only_what_this_session_wrote_and_no_caller_fields(
    store: ServerProcess, issuer: TestIssuer, admin: httpx.Client, bucket: str
) -> None:
    with session(store, issuer.mint(AUDIENCE, github_claims())) as first:
        put(first, bucket, "first.bin", b"first run")
    # The next run of the same repository and ref is another session: not its file.
    with session(store, issuer.mint(AUDIENCE, github_claims(run_id="2"))) as second:
        r = second.post(
            "/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "first.bin"}]}
        )
        assert r.status_code == 403, r.text
        # The root user wrote this one: not the session's either.
        put(admin, bucket, "root.bin", b"root")
        r = second.post(
            "/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "root.bin"}]}
        )
        assert r.status_code == 403
        # No predicate fields from the caller, and bad requests are refused.
        for body in (
            {"subjects": [{"bucket": bucket, "key": "first.bin"}], "predicate": {"x": 1}},
            {"subjects": []},
            {"subjects": [{"bucket": bucket}]},
            {"subject": {"bucket": bucket, "key": "first.bin"}},
        ):
            r = second.post("/v1/provenance", json=body)
            assert r.status_code == 400, (body, r.text)
        missing = second.post(
            "/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "none"}]}
        )
        assert missing.status_code == 404
    assert (
        admin.get(f"/v1/buckets/{bucket}/objects/first.bin/attestations").json()["attestations"]
        == []
    )


def test_kubernetes_and_token_identities(
    store: ServerProcess, issuer: TestIssuer, admin: httpx.Client, bucket: str
) -> None:
    sa = {"sub": "system:serviceaccount:ci:builder", "kubernetes.io": {
        "namespace": "ci", "serviceaccount": {"name": "builder", "uid": "u-1"},
        "pod": {"name": "build-pod", "uid": "p-1"}}}  # fmt: skip
    with session(store, issuer.mint(AUDIENCE, sa)) as pod:
        put(pod, bucket, "k8s.bin", b"from a pod")
        r = pod.post("/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "k8s.bin"}]})
        assert r.status_code == 201, r.text
    predicate = r.json()["statement"]["predicate"]
    assert predicate["buildDefinition"]["externalParameters"] == {
        "namespace": "ci",
        "serviceAccount": "builder",
    }
    assert predicate["runDetails"]["builder"]["id"] == f"{issuer.issuer}#ci/builder"
    assert predicate["runDetails"]["metadata"]["invocationId"] == "p-1"

    # A writer API token: the store vouches only for who uploaded.
    token = admin.post("/v1/tokens", json={"name": "w", "roles": ["writer"]}).json()
    with store.client(headers={"Authorization": f"Bearer {token['token']}"}) as w:
        put(w, bucket, "token.bin", b"by a token")
        r = w.post("/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "token.bin"}]})
        assert r.status_code == 201, r.text
        build = r.json()["statement"]["predicate"]["buildDefinition"]
        assert build["buildType"] == "https://zot-artifact-store.dev/buildtypes/upload/v1"
        assert build["externalParameters"] == {"uploader": f"token:{token['id']}"} or build[
            "externalParameters"
        ]["uploader"].endswith(token["id"])
        assert (
            w.post(
                "/v1/provenance", json={"subjects": [{"bucket": bucket, "key": "k8s.bin"}]}
            ).status_code
            == 403
        )
