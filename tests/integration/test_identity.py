"""API tokens and the audit trail over HTTP against the running server with authentication on,
on both metadata backends: tokens work as Bearer on /v1 and as the Basic password of the OCI
token flow, are limited to their roles, stop at once when revoked; every decision is audited
and ``/v1/audit`` finds it."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.s3client import s3_client
from tests.fixtures.server import ServerProcess
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

ROOT = (ROOT_USER, ROOT_PASSWORD)


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["code"] == code, r.text


def make_token(c: httpx.Client, roles: list[str], name: str = "robot", **extra: Any) -> dict:
    r = c.post("/v1/tokens", json={"name": name, "roles": roles, **extra}, auth=ROOT)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token"].startswith("zat_")
    assert r.headers["location"] == f"/v1/tokens/{body['id']}"
    return body


def bearer(token: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['token']}"}


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Audit records are written in batches: poll for them."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_writer_token_writes_reader_token_reads_only(auth_server: ServerProcess) -> None:
    bucket = f"tok-{uuid.uuid4().hex[:10]}"
    with auth_server.client() as c:
        writer, reader = make_token(c, ["writer"]), make_token(c, ["reader"], "ci-reader")
        assert c.put(f"/v1/buckets/{bucket}", headers=bearer(writer)).status_code == 201
        r = c.put(f"/v1/buckets/{bucket}/objects/a.txt", content=b"hi", headers=bearer(writer))
        assert r.status_code == 201, r.text
        r = c.get(f"/v1/buckets/{bucket}/objects/a.txt", headers=bearer(reader))
        assert r.content == b"hi"
        r = c.put(f"/v1/buckets/{bucket}/objects/b.txt", content=b"no", headers=bearer(reader))
        problem(r, 403, "AccessDenied")
        problem(c.get(f"/v1/buckets/{bucket}/objects/b.txt", auth=ROOT), 404, "NoSuchKey")
        # Tokens cannot mint tokens unless admin, nor hand out roles they lack.
        r = c.post("/v1/tokens", json={"name": "x", "roles": ["reader"]}, headers=bearer(writer))
        problem(r, 403, "AccessDenied")
        listing = c.get("/v1/tokens", auth=ROOT).json()["tokens"]
        by_id = {t["id"]: t for t in listing}
        assert by_id[writer["id"]]["roles"] == ["writer"]
        assert all("token" not in t and "secret_sha256" not in t for t in listing)
        assert eventually(
            lambda: (
                c.get("/v1/tokens", auth=ROOT).json()["tokens"]
                and next(
                    t
                    for t in c.get("/v1/tokens", auth=ROOT).json()["tokens"]
                    if t["id"] == writer["id"]
                )["last_used_at"]
            )
        )


def test_token_as_registry_password(auth_server: ServerProcess) -> None:
    with auth_server.client() as c:
        writer = make_token(c, ["writer"])
        r = c.get(
            "/v2/token",
            params={"scope": "repository:robots/app:pull,push"},
            auth=("any-user", writer["token"]),
        )
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        data = b"layer pushed by a robot"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = c.post("/v2/robots/app/blobs/uploads/", params={"digest": digest}, content=data,
                   headers=headers)  # fmt: skip
        assert r.status_code == 201, r.text
        # Revoked: the next login fails at once.
        assert c.delete(f"/v1/tokens/{writer['id']}", auth=ROOT).status_code == 204
        r = c.get("/v2/token", params={"scope": "repository:robots/app:pull"},
                  auth=("any-user", writer["token"]))  # fmt: skip
        assert r.status_code == 401
        assert "revoked" in r.json()["errors"][0]["message"]


def test_revoked_tampered_and_malformed_tokens_are_refused(auth_server: ServerProcess) -> None:
    with auth_server.client() as c:
        token = make_token(c, ["reader"])
        assert c.get("/v1/buckets", headers=bearer(token)).status_code == 200
        tampered = token["token"][:-3] + ("aaa" if not token["token"].endswith("aaa") else "bbb")
        for bad in (tampered, "zat_short", f"zat_{'0' * 16}_{'A' * 43}"):
            r = c.get("/v1/buckets", headers={"Authorization": f"Bearer {bad}"})
            problem(r, 401, "Unauthenticated")
            assert "www-authenticate" in r.headers
        assert c.delete(f"/v1/tokens/{token['id']}", auth=ROOT).status_code == 204
        problem(c.get("/v1/buckets", headers=bearer(token)), 401, "Unauthenticated")
        assert c.delete(f"/v1/tokens/{token['id']}", auth=ROOT).status_code == 204  # idempotent
        problem(c.delete("/v1/tokens/ffffffffffffffff", auth=ROOT), 404, "NoSuchToken")
        listed = {t["id"]: t for t in c.get("/v1/tokens", auth=ROOT).json()["tokens"]}
        assert listed[token["id"]]["revoked_at"] is not None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "x", "roles": ["superuser"]}, 400, "InvalidArgument"),
        ({"name": "x", "roles": []}, 400, "InvalidArgument"),
        ({"name": "", "roles": ["reader"]}, 400, "InvalidArgument"),
        ({"name": "x", "roles": ["reader"], "expires_in": 5}, 400, "InvalidArgument"),
        ({"name": "x", "roles": ["reader"], "expires_in": "soon"}, 400, "MalformedJSON"),
        ({"name": "x", "roles": "reader"}, 400, "MalformedJSON"),
        (
            {"name": "x", "roles": ["reader"], "statements": [{"Effect": "Maybe"}]},
            400,
            "MalformedPolicy",
        ),
        (
            {"name": "x", "roles": ["reader"], "statements": {"Effect": "Deny"}},
            400,
            "MalformedPolicy",
        ),
        ({"name": "x", "roles": ["reader"], "colour": "red"}, 400, "MalformedJSON"),
    ],
)
def test_bad_token_requests_create_nothing(
    auth_server: ServerProcess, body: dict, status: int, code: str
) -> None:
    with auth_server.client() as c:
        before = len(c.get("/v1/tokens", auth=ROOT).json()["tokens"])
        problem(c.post("/v1/tokens", json=body, auth=ROOT), status, code)
        problem(c.post("/v1/tokens", content=b"{nope", auth=ROOT), 400, "MalformedJSON")
        assert len(c.get("/v1/tokens", auth=ROOT).json()["tokens"]) == before
        # Anonymous callers may not even ask.
        problem(c.post("/v1/tokens", json={"name": "x", "roles": ["reader"]}), 401,
                "Unauthenticated")  # fmt: skip


def test_audit_records_decisions_and_failed_logins(auth_server: ServerProcess) -> None:
    bucket = f"aud-{uuid.uuid4().hex[:10]}"
    with auth_server.client() as c:
        reader = make_token(c, ["reader"], "auditee")
        principal = f"token:{reader['id']}"
        r = c.put(f"/v1/buckets/{bucket}", headers=bearer(reader))
        problem(r, 403, "AccessDenied")
        request_id = r.headers["x-request-id"]
        assert c.get("/v1/buckets", headers=bearer(reader)).status_code == 200
        c.get("/v1/buckets", auth=(ROOT_USER, "wrong-password"))

        def find(**params: str) -> list[dict]:
            r = c.get("/v1/audit", params=params, auth=ROOT)
            assert r.status_code == 200, r.text
            return r.json()["records"]

        # Records are written in batches, but a query first writes what its process holds:
        # the refusal is in the very next answer (one worker here).
        denied = find(principal=principal, decision="deny")
        assert [d["action"] for d in denied] == ["s3:CreateBucket"]
        assert denied[0]["resource"] == bucket
        assert denied[0]["request_id"] == request_id
        assert denied[0]["source_ip"] == "127.0.0.1"
        allowed = eventually(lambda: find(principal=principal, action="s3:ListAllMyBuckets"))
        assert allowed[0]["decision"] == "allow"
        assert eventually(lambda: find(resource=bucket))[0]["principal"] == principal
        failed = eventually(lambda: find(action="authenticate", decision="deny"))
        assert any("invalid username or password" in f["reason"] for f in failed)
        created = eventually(
            lambda: find(action="admin:CreateToken", resource=f"admin:tokens/{reader['id']}")
        )
        assert created[-1]["principal"] == f"root:{ROOT_USER}"

        # Pages: newest first, the cursor continues exactly where the page ended. Each query
        # is itself audited, so the pages are read in a window that ends before them.
        everything = find(limit="1000")
        until = everything[0]["time"]
        everything = [e for e in everything if e["time"] < until]
        seen, cursor = [], None
        while True:
            params = {"limit": "3", "until": until, **({"cursor": cursor} if cursor else {})}
            page = c.get("/v1/audit", params=params, auth=ROOT).json()
            seen += page["records"]
            cursor = page["next_cursor"]
            if not cursor or len(seen) >= 9:
                break
        assert [s["id"] for s in seen] == [e["id"] for e in everything[: len(seen)]]
        times = [e["time"] for e in everything]
        assert times == sorted(times, reverse=True)

        # Time window and bad inputs.
        assert find(since="2999-01-01T00:00:00Z") == []
        assert find(until="1970-01-02T00:00:00Z") == []
        for params in ({"decision": "maybe"}, {"since": "yesterday"}, {"limit": "0"}):
            problem(c.get("/v1/audit", params=params, auth=ROOT), 400, "InvalidArgument")
        problem(c.get("/v1/audit", params={"cursor": "!!"}, auth=ROOT), 400,
                "InvalidContinuationToken")  # fmt: skip
        problem(c.get("/v1/audit", headers=bearer(reader)), 403, "AccessDenied")


def test_s3_access_keys(auth_server: ServerProcess) -> None:
    from botocore.exceptions import ClientError

    def s3(key: str, secret: str) -> Any:
        return s3_client(auth_server.url, key, secret)

    bucket = f"keys-{uuid.uuid4().hex[:10]}"
    with auth_server.client() as c:
        keys = {}
        for role in ("writer", "reader"):
            r = c.post("/v1/access-keys", json={"name": f"{role} key", "roles": [role]}, auth=ROOT)
            assert r.status_code == 201, r.text
            assert r.headers["cache-control"] == "no-store"
            body = r.json()
            assert body["access_key_id"].startswith("ZAK") and len(body["access_key_id"]) == 20
            # Letters and digits only: `aws configure set aws_secret_access_key -x…` would be
            # an argument error, as a version id beginning with "-" was for awscli.
            assert len(body["secret_access_key"]) == 40 and body["secret_access_key"].isalnum()
            keys[role] = (body["access_key_id"], body["secret_access_key"])
        writer, reader = s3(*keys["writer"]), s3(*keys["reader"])
        writer.create_bucket(Bucket=bucket)
        writer.put_object(Bucket=bucket, Key="a.txt", Body=b"from a key")
        assert reader.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"from a key"
        with pytest.raises(ClientError) as exc:
            reader.put_object(Bucket=bucket, Key="b.txt", Body=b"no")
        assert exc.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(ClientError) as exc:
            s3(keys["reader"][0], "wrong-secret").list_buckets()
        assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

        # The key pair logs registry clients in too (Basic → Bearer).
        r = c.get("/v2/token", params={"scope": "repository:keys/app:pull"}, auth=keys["reader"])
        assert r.status_code == 200, r.text
        r = c.get("/v2/token", params={"scope": "repository:keys/app:pull"},
                  auth=(keys["reader"][0], "wrong"))  # fmt: skip
        assert r.status_code == 401

        listed = c.get("/v1/access-keys", auth=ROOT).json()["access_keys"]
        assert {k["access_key_id"] for k in listed} >= {keys["writer"][0], keys["reader"][0]}
        assert all("secret_access_key" not in k and "secret_encrypted" not in k for k in listed)
        # The secret is not stored in clear (sqlite: the database file itself).
        if auth_server.metadata_uri is None:
            for path in auth_server.data_dir.glob("metadata.db*"):
                assert keys["writer"][1].encode() not in path.read_bytes()

        # Revoked: refused at once, as an unknown key.
        assert c.delete(f"/v1/access-keys/{keys['reader'][0]}", auth=ROOT).status_code == 204
        with pytest.raises(ClientError) as exc:
            reader.list_buckets()
        assert exc.value.response["Error"]["Code"] == "InvalidAccessKeyId"

        # Both refusals (wrong secret, revoked key) are in the audit trail.
        def reasons() -> str:
            q = {"action": "authenticate", "decision": "deny", "limit": "1000"}
            records = c.get("/v1/audit", params=q, auth=ROOT).json()["records"]
            text = " | ".join(r["reason"] for r in records)
            return text if "InvalidAccessKeyId" in text and "SignatureDoesNotMatch" in text else ""

        assert eventually(reasons)
        r = c.delete("/v1/access-keys/ZAKNOSUCHKEY00000000", auth=ROOT)
        problem(r, 404, "NoSuchAccessKey")
        # Keys cannot be made by non-admins, nor with bad input.
        r = c.post("/v1/access-keys", json={"name": "x", "roles": ["writer"]},
                   auth=keys["writer"])  # fmt: skip
        problem(r, 403, "AccessDenied")
        r = c.post("/v1/access-keys", json={"name": "x", "roles": ["god"]}, auth=ROOT)
        problem(r, 400, "InvalidArgument")


def test_no_secret_reaches_the_log(auth_server: ServerProcess) -> None:
    with auth_server.client() as c:
        token = make_token(c, ["reader"], "log-check")
        r = c.post("/v1/access-keys", json={"name": "log-check", "roles": ["reader"]}, auth=ROOT)
        secret_key = r.json()["secret_access_key"]
        c.get("/v1/buckets", headers=bearer(token))
        c.get("/v1/buckets", headers={"Authorization": f"Bearer {token['token']}x"})
        c.get("/v2/token", params={"scope": "repository:a/b:pull"}, auth=("u", token["token"]))
        c.get(f"/v1/buckets?X-Amz-Signature={secret_key}&token={token['token']}", auth=ROOT)
    time.sleep(1.0)  # audit and access lines are flushed
    log = auth_server.log_path.read_text()
    assert "log-check" in log or "token:" in log  # the log did record these requests
    for secret in (token["token"], token["token"].split("_", 2)[2], secret_key, ROOT_PASSWORD):
        assert secret not in log


def test_statements_attached_to_a_token(auth_server: ServerProcess) -> None:
    bucket = f"stm-{uuid.uuid4().hex[:10]}"
    with auth_server.client() as c:
        assert c.put(f"/v1/buckets/{bucket}", auth=ROOT).status_code == 201
        statements = [
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{bucket}/secret/*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{bucket}/drop/*"},
        ]
        writer = make_token(c, ["writer"], "narrowed", statements=statements)
        reader = make_token(c, ["reader"], "widened", statements=statements)
        assert writer["statements"] == statements

        def put(token: dict, key: str) -> int:
            r = c.put(f"/v1/buckets/{bucket}/objects/{key}", content=b"x", headers=bearer(token))
            return r.status_code

        assert put(writer, "public/a") == 201
        assert put(writer, "secret/a") == 403  # its own Deny narrows its role
        assert put(reader, "drop/a") == 201  # its own Allow widens its role
        assert put(reader, "public/b") == 403
        assert c.head(f"/v1/buckets/{bucket}/objects/secret/a", auth=ROOT).status_code == 404


def test_sbom_search_shows_only_what_the_caller_may_read(auth_server: ServerProcess) -> None:
    run = uuid.uuid4().hex[:10]
    open_bucket, closed_bucket = f"sbom-open-{run}", f"sbom-closed-{run}"
    purl = f"pkg:npm/left-pad-{run}@1.3.0"
    sbom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "components": [{"type": "library", "name": f"left-pad-{run}", "version": "1.3.0",
                        "purl": purl}],
    }  # fmt: skip
    with auth_server.client() as c:
        for bucket in (open_bucket, closed_bucket):
            assert c.put(f"/v1/buckets/{bucket}", auth=ROOT).status_code == 201
            url = f"/v1/buckets/{bucket}/objects/app.tgz"
            assert c.put(url, content=bucket.encode(), auth=ROOT).status_code == 201
            r = c.post(f"{url}/sboms", json=sbom, auth=ROOT,
                       headers={"Content-Type": "application/vnd.cyclonedx+json"})  # fmt: skip
            assert r.status_code == 201, r.text
        statements = [
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{closed_bucket}/*"}
        ]
        reader = make_token(c, ["reader"], "sbom-reader", statements=statements)

        def found(**kw: Any) -> set[str]:
            r = c.get("/v1/sboms/search", params={"purl": purl}, **kw)
            assert r.status_code == 200, r.text
            return {hit["subject"] for hit in r.json()["results"]}

        assert found(auth=ROOT) == {f"{open_bucket}/app.tgz", f"{closed_bucket}/app.tgz"}
        assert found(headers=bearer(reader)) == {f"{open_bucket}/app.tgz"}
