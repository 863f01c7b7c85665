"""The ``zot-artifacts`` CLI against the real server: every command's JSON answer and exit
code, the config precedence (flag > env > profile), login/logout and the 0600 config file,
upload rules (directories, globs, dotfiles), download resume, one-line errors. Most runs are
in-process (click's CliRunner); a few run the installed entry point as a subprocess.

The CLI does not care about the metadata backend, so its servers run on sqlite only."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.cli import Z
from tests.fixtures.oidc import OIDCProvider
from tests.fixtures.server import ServerProcess, signing_config
from tests.integration.conftest import ROOT_PASSWORD, ROOT_USER

CLI_BIN = str(Path(sys.executable).with_name("zot-artifacts"))
SLSA = "https://slsa.dev/provenance/v1"
DOC_ADMIN = "admin"
SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "version": 1,
    "components": [
        {
            "type": "library",
            "name": "requests",
            "version": "2.31.0",
            "purl": "pkg:pypi/requests@2.31.0",
        }
    ],
}

sqlite_only = pytest.mark.parametrize("server", ["sqlite"], indirect=True)
sqlite_auth = pytest.mark.parametrize("auth_server", ["sqlite"], indirect=True)


def admin_token(url: str, user: str = ROOT_USER) -> str:
    r = httpx.post(
        f"{url}/v1/tokens",
        json={"name": f"cli-{uuid.uuid4().hex[:6]}", "roles": ["admin"]},
        auth=(user, ROOT_PASSWORD),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys_of(listing: dict[str, Any]) -> list[str]:
    return [o["key"] for o in listing["objects"]]


# ---- objects ------------------------------------------------------------------------------


@sqlite_only
def test_buckets_and_objects_answer_json_and_exit_codes(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = Z(tmp_path, server.url)
    name = f"cli-{uuid.uuid4().hex[:10]}"
    created = z.json("bucket", "create", name)
    assert created["name"] == name and created["public_read"] is False
    assert created["web"] is False
    assert z.json("bucket", "create", name, "--exist-ok")["name"] == name
    # --web / --no-web: the bucket serves HTML and other active types inline, or not.
    assert z.json("bucket", "create", name, "--web")["web"] is True
    assert z.json("bucket", "create", name)["web"] is True  # kept when not given
    assert z.json("bucket", "create", name, "--no-web")["web"] is False
    # Yours already: it stays and the command succeeds, as PUT /v1/buckets/NAME does.
    assert z.json("bucket", "create", name)["name"] == name
    assert name in [b["name"] for b in z.json("bucket", "list")["buckets"]]
    assert name in [b["name"] for b in z.json("ls")["buckets"]]

    monkeypatch.chdir(tmp_path)
    Path("app.bin").write_bytes(b"x" * 3000)
    up = z.json("upload", "app.bin", f"{name}/rel/1.0/", "--label", "team=web")
    assert up["bucket"] == name
    [obj] = up["objects"]
    assert obj["key"] == "rel/1.0/app.bin" and obj["size"] == 3000
    assert obj["sha256"] == sha(b"x" * 3000) and obj["digest"] == "sha256:" + obj["sha256"]
    assert obj["path"] == "app.bin"

    info = z.json("head", f"{name}/rel/1.0/app.bin")
    assert info["sha256"] == obj["sha256"] and info["labels"] == {"team": "web"}
    one_level = z.json("ls", f"{name}/rel/")
    assert one_level == {"bucket": name, "prefix": "rel/", "objects": [], "prefixes": ["rel/1.0/"]}
    assert keys_of(z.json("ls", name, "--prefix", "rel/", "--recursive")) == ["rel/1.0/app.bin"]

    copied = z.json("cp", f"{name}/rel/1.0/app.bin", f"{name}/latest/app.bin")
    assert copied["key"] == "latest/app.bin" and copied["sha256"] == obj["sha256"]
    assert z.json("cp", f"{name}/latest/app.bin", name)["key"] == "latest/app.bin"

    signed = z.json("presign", f"{name}/latest/app.bin", "--expires-in", "60")
    assert signed["method"] == "GET" and signed["expires_in"] == 60
    assert httpx.get(signed["url"]).content == b"x" * 3000
    r = z("presign", f"{name}/latest/app.bin")  # the table form is the bare URL, for $(...)
    assert r.exit_code == 0 and r.stdout.startswith(server.url) and len(r.stdout.split()) == 1

    got = z.json("download", f"{name}/latest/app.bin", "out/")
    assert got["path"] == os.path.join("out", "app.bin") and got["size"] == 3000
    assert Path("out/app.bin").read_bytes() == b"x" * 3000
    assert not Path("out/app.bin.part").exists()

    deleted = z.json("rm", f"{name}/latest/app.bin", f"{name}/rel/1.0/app.bin")
    assert deleted == {
        "deleted": [
            {"bucket": name, "key": "latest/app.bin"},
            {"bucket": name, "key": "rel/1.0/app.bin"},
        ]
    }
    assert z.json("ls", name, "-r")["objects"] == []
    z.fails("head", f"{name}/latest/app.bin", code="NoSuchKey")
    z.fails("download", f"{name}/latest/app.bin", code="NoSuchKey")
    assert not Path("app.bin.part").exists() and not Path("out/app.bin.part").exists()
    assert z.json("bucket", "delete", name) == {"deleted": name}
    z.fails("ls", name, code="NoSuchBucket")
    # Usage errors are exit 2 too, in click's words.
    r = z("head", "no-key-here")
    assert r.exit_code == 2 and "BUCKET/KEY" in r.stderr


@sqlite_only
def test_upload_directories_globs_and_dotfiles(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = Z(tmp_path, server.url)
    name = z.new_bucket()
    monkeypatch.chdir(tmp_path)
    for rel in (
        "dist/app.whl",
        "dist/sub/lib.whl",
        "dist/sub/notes.txt",
        "dist/.env",
        "dist/.cache/x.whl",
        ".netrc",
    ):
        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        Path(rel).write_text(rel)

    up = z.json("upload", "dist", f"{name}/dir", "--parallel", "2")
    assert [o["key"] for o in up["objects"]] == [
        "dir/app.whl",
        "dir/sub/lib.whl",
        "dir/sub/notes.txt",
    ]
    assert all(o["sha256"] == sha(Path(o["path"]).read_bytes()) for o in up["objects"])
    # A glob the shell did not expand (quoted): keys relative to the part before the wildcard.
    up = z.json("upload", "dist/**/*.whl", f"{name}/glob")
    assert [o["key"] for o in up["objects"]] == ["glob/app.whl", "glob/sub/lib.whl"]
    up = z.json("upload", "dist", f"{name}/all", "--include-hidden")
    assert "all/.env" in keys_of(up) and "all/.cache/x.whl" in keys_of(up)
    # A dotfile named explicitly is sent; --key names one file's key exactly.
    assert keys_of(z.json("upload", ".netrc", name)) == [".netrc"]
    assert keys_of(z.json("upload", "dist/app.whl", name, "--key", "a/b.whl")) == ["a/b.whl"]
    up = z.json("upload", "dist/app.whl", name, "--key-prefix", "kp/1.0/")
    assert keys_of(up) == ["kp/1.0/app.whl"]
    # --no-overwrite: the store refuses to replace (412), the object stays as it was.
    before = z.json("head", f"{name}/kp/1.0/app.whl")["sha256"]
    Path("other.whl").write_text("other")
    refused = z.fails("upload", "other.whl", name, "--key", "kp/1.0/app.whl", "--no-overwrite",
                      code="PreconditionFailed")  # fmt: skip
    assert f"{name}/kp/1.0/app.whl exists already" in refused
    assert z.json("head", f"{name}/kp/1.0/app.whl")["sha256"] == before

    stored = keys_of(z.json("ls", name, "--recursive"))
    assert "dir/.env" not in stored and "glob/sub/notes.txt" not in stored
    assert len(stored) == 3 + 2 + 5 + 1 + 1 + 1

    z.fails("upload", "missing.txt", name, code=None)
    err = z.fails("upload", "nothing/*.zip", name, code=None)
    assert "no file matches" in err
    r = z("upload", "dist/app.whl", "dist/sub/lib.whl", name, "--key", "x")
    assert r.exit_code == 2 and "--key needs exactly one file" in r.stderr
    r = z("upload", "dist/app.whl", f"{name}/p", "--key-prefix", "q")
    assert r.exit_code == 2 and "give the prefix once" in r.stderr
    assert keys_of(z.json("ls", name, "--recursive")) == stored  # nothing more stored

    # One file, as aws s3 cp / mc cp / gsutil cp take it: BUCKET/NAME is its key, BUCKET/DIR/
    # a folder it keeps its name in; a directory keeps folder semantics without the slash.
    assert keys_of(z.json("upload", "dist/app.whl", f"{name}/one/exact.whl")) == ["one/exact.whl"]
    assert keys_of(z.json("upload", "dist/app.whl", f"{name}/one/dir/")) == ["one/dir/app.whl"]
    assert "one/exact.whl/app.whl" not in keys_of(z.json("ls", name, "--recursive"))


@sqlite_only
def test_download_continues_a_part_file(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = Z(tmp_path, server.url)
    name = z.new_bucket()
    monkeypatch.chdir(tmp_path)
    data = os.urandom(3 * 1024 * 1024)
    Path("big.bin").write_bytes(data)
    etag = z.json("upload", "big.bin", name)["objects"][0]["etag"]
    half = len(data) // 2

    def interrupted(prefix: bytes) -> None:  # what a download cut at ``half`` leaves behind
        Path("got.bin.part").write_bytes(prefix)
        Path("got.bin.part.etag").write_text(etag)

    interrupted(data[:half])
    got = z.json("download", f"{name}/big.bin", "got.bin")
    assert Path("got.bin").read_bytes() == data and got["size"] == len(data)
    assert not Path("got.bin.part").exists() and not Path("got.bin.part.etag").exists()
    # Only the rest is fetched: a .part that is not a prefix of the object is caught by the
    # sha256 check (and removed); --no-resume starts over.
    Path("got.bin").unlink()
    interrupted(b"\0" * half)
    err = z.fails("download", f"{name}/big.bin", "got.bin", code="ChecksumMismatch")
    assert err.startswith(f"error: downloaded {name}/big.bin has sha256 ")
    assert not Path("got.bin").exists() and not Path("got.bin.part").exists()
    interrupted(b"\0" * half)
    z.json("download", f"{name}/big.bin", "got.bin", "--no-resume")
    assert Path("got.bin").read_bytes() == data


@sqlite_only
def test_entry_point_exit_codes_and_no_progress_bar_without_a_tty(
    server: ServerProcess, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOT_ARTIFACTS_")}
    env.update(ZOT_ARTIFACTS_URL=server.url, ZOT_ARTIFACTS_CONFIG=str(tmp_path / "c.yaml"))
    name = f"cli-{uuid.uuid4().hex[:10]}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI_BIN, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    (tmp_path / "f.bin").write_bytes(os.urandom(200_000))
    assert run("bucket", "create", name).returncode == 0
    up = run("upload", "f.bin", name)
    assert up.returncode == 0 and up.stderr == ""  # stderr is a pipe: no progress bar
    assert "f.bin" in up.stdout and sha((tmp_path / "f.bin").read_bytes()) in up.stdout
    listing = run("ls", name, "--recursive").stdout
    for text in (up.stdout, listing):  # tables: no line padded with trailing spaces
        assert text.splitlines() and all(line == line.rstrip() for line in text.splitlines())
    # On a terminal the same upload draws a bar (on stderr; stdout keeps the summary).
    primary, secondary = pty.openpty()
    with_tty = subprocess.run(
        [CLI_BIN, "upload", "f.bin", f"{name}/tty/"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
        timeout=60,
    )
    os.close(secondary)
    drawn = b""
    while select.select([primary], [], [], 0.5)[0]:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(primary)
    assert with_tty.returncode == 0 and "tty/f.bin" in with_tty.stdout
    assert b"tty/f.bin" in drawn and "195.3/195.3 KiB" in drawn.decode(errors="replace")
    down = run("download", f"{name}/f.bin", "copy.bin")
    assert down.returncode == 0 and down.stderr == ""
    missing = run("-o", "json", "head", f"{name}/nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("error: ") and "(NoSuchKey, request " in missing.stderr
    assert len(missing.stderr.splitlines()) == 1
    env["ZOT_ARTIFACTS_URL"] = "http://127.0.0.1:9"  # nothing listens: one line, no traceback
    dead = run("bucket", "list")
    assert dead.returncode == 2 and len(dead.stderr.splitlines()) == 1, dead.stderr
    assert dead.stderr.startswith("error: cannot reach http://127.0.0.1:9: ")
    assert dead.stderr.rstrip().endswith("(ConnectError)")
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("zot-artifacts ")
    for shell, marker in (("bash", "complete "), ("zsh", "compdef"), ("fish", "complete ")):
        script = run("completion", shell)
        assert script.returncode == 0 and marker in script.stdout, script.stderr
        assert "_ZOT_ARTIFACTS_COMPLETE" in script.stdout
    helped = run("upload", "--help")
    assert helped.returncode == 0 and "Examples:" in helped.stdout


# ---- login, profiles and precedence ---------------------------------------------------------


@sqlite_auth
def test_login_checks_saves_0600_and_logout_removes(
    auth_server: ServerProcess, tmp_path: Path
) -> None:
    z = Z(tmp_path, None)
    token = admin_token(auth_server.url)
    z.fails("login", "--url", auth_server.url, "--token", "zat_wrong", code="Unauthenticated")
    assert not z.config.exists()  # refused credentials are not saved

    saved = z.json("login", "--url", auth_server.url, "--token", token)
    assert saved == {
        "profile": "default",
        "url": auth_server.url,
        "auth": "token",
        "config": str(z.config),
    }
    assert stat.S_IMODE(z.config.stat().st_mode) == 0o600
    config = yaml.safe_load(z.config.read_text())
    assert config["current-profile"] == "default"
    assert config["profiles"]["default"] == {"url": auth_server.url, "token": token}
    assert isinstance(z.json("bucket", "list")["buckets"], list)  # the profile is used

    basic = z.json(
        "--profile",
        "root",
        "login",
        "--url",
        auth_server.url,
        "--username",
        ROOT_USER,
        "--password-stdin",
        input=ROOT_PASSWORD + "\n",
    )
    assert basic["auth"] == "basic" and basic["profile"] == "root"
    config = yaml.safe_load(z.config.read_text())
    assert config["current-profile"] == "root" and set(config["profiles"]) == {"default", "root"}
    assert z.json("token", "list")["tokens"]  # with the root user's password
    z.fails(
        "login",
        "--url",
        auth_server.url,
        "--username",
        ROOT_USER,
        "--password-stdin",
        input="wrong\n",
        code="Unauthenticated",
    )

    assert z.json("--profile", "root", "logout") == {"profile": "root", "removed": True}
    config = yaml.safe_load(z.config.read_text())
    assert set(config["profiles"]) == {"default"} and "current-profile" not in config
    assert stat.S_IMODE(z.config.stat().st_mode) == 0o600
    assert z.json("logout") == {"profile": "default", "removed": True}
    assert yaml.safe_load(z.config.read_text())["profiles"] == {}
    assert z.json("logout")["removed"] is False
    err = z.fails("bucket", "list", code=None)
    assert "no store URL" in err


@sqlite_auth
def test_flags_beat_environment_beat_profile(auth_server: ServerProcess, tmp_path: Path) -> None:
    z = Z(tmp_path, None)
    good, url = admin_token(auth_server.url), auth_server.url
    z.json("login", "--url", url, "--token", good)
    z.json("--profile", "dead", "login", "--url", url, "--token", good)
    # Point the "dead" profile at a closed port; select profiles by flag and env.
    config = yaml.safe_load(z.config.read_text())
    config["profiles"]["dead"]["url"] = "http://127.0.0.1:9"
    config["current-profile"] = "default"
    z.config.write_text(yaml.safe_dump(config))

    assert z.json("bucket", "list")  # current profile
    z.fails("bucket", "list", code="ConnectError", ZOT_ARTIFACTS_PROFILE="dead")
    assert z.json("--profile", "default", "bucket", "list", ZOT_ARTIFACTS_PROFILE="dead")
    # The URL: env over profile, flag over env.
    z.fails("bucket", "list", code="ConnectError", ZOT_ARTIFACTS_URL="http://127.0.0.1:9")
    assert z.json("--url", url, "bucket", "list", ZOT_ARTIFACTS_URL="http://127.0.0.1:9")
    # The token: env over profile, flag over env.
    z.fails("bucket", "list", code="Unauthenticated", ZOT_ARTIFACTS_TOKEN="zat_bad")
    assert z.json("--token", good, "bucket", "list", ZOT_ARTIFACTS_TOKEN="zat_bad")
    z.fails("--token", "zat_bad", "bucket", "list", code="Unauthenticated")
    # A profile's credentials only go to its own URL: another spelling of the server gets none.
    other = url.replace("127.0.0.1", "localhost")
    z.fails("--url", other, "bucket", "list", code="Unauthenticated")
    # --config over ZOT_ARTIFACTS_CONFIG.
    z.fails("bucket", "list", code=None, ZOT_ARTIFACTS_CONFIG=str(tmp_path / "none.yaml"))
    assert z.json(
        "--config",
        str(z.config),
        "bucket",
        "list",
        ZOT_ARTIFACTS_CONFIG=str(tmp_path / "none.yaml"),
    )
    # A broken config file is one error line.
    (tmp_path / "bad.yaml").write_text("profiles: [1, 2\n")
    z.fails("--config", str(tmp_path / "bad.yaml"), "bucket", "list", code=None)


@sqlite_auth
def test_tokens_and_audit(auth_server: ServerProcess, tmp_path: Path) -> None:
    z = Z(tmp_path, auth_server.url, admin_token(auth_server.url))
    created = z.json("token", "create", "ci-upload", "--role", "writer", "--expires-in", "3600")
    assert created["name"] == "ci-upload" and created["roles"] == ["writer"]
    assert created["secret"].startswith("zat_") and created["expires_at"]
    listed = {t["id"]: t for t in z.json("token", "list")["tokens"]}
    assert listed[created["id"]]["secret"] is None  # never shown again
    writer = Z(tmp_path / "w", auth_server.url, created["secret"])
    name = f"cli-{uuid.uuid4().hex[:10]}"
    assert writer.json("bucket", "create", name)["name"] == name
    z.fails(
        "token",
        "create",
        "x",
        "--role",
        "admin",
        code="AccessDenied",
        ZOT_ARTIFACTS_TOKEN=created["secret"],
    )

    assert z.json("token", "revoke", created["id"]) == {"revoked": created["id"]}
    writer.fails("bucket", "list", code="Unauthenticated")
    z.fails("token", "revoke", "no-such-token", code="NoSuchToken")

    def creates() -> list[dict[str, Any]]:
        return z.json("audit", "--action", "s3:CreateBucket", "--limit", "5")["records"]

    deadline = 50
    while not any(r["resource"] == name for r in creates()) and deadline:
        deadline -= 1
        __import__("time").sleep(0.2)
    records = creates()
    assert 1 <= len(records) <= 5
    mine = next(r for r in records if r["resource"] == name)
    assert mine["decision"] == "allow" and mine["principal"] == f"token:{created['id']}"
    limited = z.json("audit", "--limit", "2")["records"]
    assert len(limited) == 2 and limited[0]["time"] >= limited[1]["time"]
    denied = z.json("audit", "--decision", "deny", "--limit", "50")["records"]
    assert denied and all(r["decision"] == "deny" for r in denied)


# ---- supply chain -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Authentication on (the root user is docs/cli.md's ``admin``) and a server signing key."""
    base = tmp_path_factory.mktemp("cli-signing")
    config = signing_config(base)
    proc = ServerProcess(
        base / "data",
        config=config,
        env={"ZAS_ROOT_USER": DOC_ADMIN, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
    ).start()
    yield proc
    proc.stop()


def test_sign_attach_verify_and_policy(
    signing_store: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = Z(tmp_path, signing_store.url, admin_token(signing_store.url, DOC_ADMIN))
    monkeypatch.chdir(tmp_path)
    name = f"cli-{uuid.uuid4().hex[:10]}"
    z.json("bucket", "create", name)
    Path("app.tar.gz").write_bytes(os.urandom(5000))
    digest = "sha256:" + sha(Path("app.tar.gz").read_bytes())
    z.json("upload", "app.tar.gz", name)
    ref = f"{name}/app.tar.gz"

    signature = z.json("sign", ref)
    assert signature["kind"] == "signature" and signature["subject_digest"] == digest
    assert signature["id"] and signature["envelope"]["payloadType"]
    Path("provenance.json").write_text(json.dumps({"buildDefinition": {"buildType": "x"}}))
    attestation = z.json("sign", ref, "--predicate-type", SLSA, "--predicate", "provenance.json")
    assert attestation["kind"] == "attestation"
    Path("sbom.cdx.json").write_text(json.dumps(SBOM))
    sbom = z.json("attach", "sbom", ref, "sbom.cdx.json")
    assert sbom["kind"] == "sbom" and sbom["subject_digest"] == digest
    # The same evidence attached to the bare digest, and a bad document refused.
    Path("sig.json").write_text(json.dumps(signature["envelope"]))
    by_digest = z.json("attach", "signature", "--digest", digest, "sig.json")
    assert by_digest["kind"] == "signature" and by_digest["subject_digest"] == digest
    Path("junk.json").write_text('{"not": "an sbom"}')
    z.fails("attach", "sbom", ref, "junk.json", code="UnknownFormat")
    z.fails("attach", "attestation", ref, "junk.json", code="InvalidEvidence")

    # What is attached, and the bytes exactly as attached.
    listed = z.json("evidence", "list", ref)["evidence"]
    assert {e["id"] for e in listed} >= {signature["id"], attestation["id"], sbom["id"]}
    only = z.json("evidence", "list", ref, "--kind", "sboms")["evidence"]
    assert [e["id"] for e in only] == [sbom["id"]]
    fetched = z.json("evidence", "get", sbom["id"], "-o", "fetched.json")
    assert fetched["size"] == len(Path("sbom.cdx.json").read_bytes())
    assert Path("fetched.json").read_bytes() == Path("sbom.cdx.json").read_bytes()
    z.fails("evidence", "get", "0" * 32, code="NoSuchEvidence")
    hits = z.json("sbom", "search", "--name", SBOM["components"][0]["name"])["results"]
    assert ref in {h["subject"] for h in hits}
    assert z("sbom", "search").exit_code == 2

    # Trusted keys: add (with scope), list, revoke.
    private = ec.generate_private_key(ec.SECP256R1())
    Path("release.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    added = z.json("key", "add", "release.pub", "--name", "release", "--scope", f"bucket:{name}")
    assert added["algorithm"] == "ecdsa-p256" and added["scope"] == f"bucket:{name}"
    assert added["id"] in {k["id"] for k in z.json("key", "list")["keys"]}
    assert z.json("key", "revoke", added["id"]) == {"revoked": added["id"]}
    revoked = next(k for k in z.json("key", "list")["keys"] if k["id"] == added["id"])
    assert revoked["revoked_at"]
    Path("not-a-key.pub").write_text("hello")
    z.fails("key", "add", "not-a-key.pub", "--name", "x", code="InvalidArgument")

    Path("policy.yaml").write_text(
        yaml.safe_dump({"sbom": True, "attestations": [{"predicate_type": SLSA}]})
    )
    passed = z.json("verify", ref, "--policy", "policy.yaml")
    assert passed["verified"] is True and passed["subject_digest"] == digest
    assert passed["rules"] and all(r["passed"] and r["reason"] for r in passed["rules"])
    assert z.json("verify", "--digest", digest, "--policy", "policy.yaml")["verified"] is True

    Path("strict.json").write_text(
        json.dumps({"attestations": [{"predicate_type": "https://example.com/scan/v1"}]})
    )
    failed = z.json("verify", ref, "--policy", "strict.json", code=1)
    assert failed["verified"] is False
    assert [r["passed"] for r in failed["rules"]] == [False] and failed["rules"][0]["reason"]
    table = z("verify", ref, "--policy", "strict.json")  # people get each rule and reason
    assert table.exit_code == 1 and "FAIL" in table.stdout
    assert failed["rules"][0]["reason"] in table.stdout
    z.fails("verify", f"{name}/missing", "--policy", "policy.yaml", code="NoSuchKey")
    Path("list.yaml").write_text("- 1\n- 2\n")
    z.fails("verify", ref, "--policy", "list.yaml", code=None)
    # Files as editors and shells write them: PowerShell's `>` (UTF-16 with a byte-order
    # mark) reads as the same policy; a YAML date stays text (JSON has no dates); a file that
    # is not text is an error (2), never "not verified" (1).
    Path("ps.json").write_bytes(Path("policy.yaml").read_text().encode("utf-16"))
    assert z.json("verify", ref, "--policy", "ps.json")["verified"] is True
    Path("dated.yaml").write_text(
        f"attestations:\n- predicate_type: {SLSA}\n  constraints:\n    released: 2024-01-01\n"
    )
    dated = z.json("verify", ref, "--policy", "dated.yaml", code=1)
    assert "2024-01-01" in dated["rules"][0]["reason"]
    Path("binary.json").write_bytes(b"\x80\x81 not text \xff")
    r = z("verify", ref, "--policy", "binary.json")
    assert r.exit_code == 2 and r.stderr.startswith("error: binary.json")
    r = z("verify", ref, "--policy", "no-such-file.json")
    assert r.exit_code == 2 and "no-such-file.json" in r.stderr
    r = z("verify", ref, "--digest", digest, "--policy", "policy.yaml")
    assert r.exit_code == 2 and "name the subject once" in r.stderr

    gate = z.json("policy", "set", name, "--file", "strict.json", "--mode", "enforce")
    assert gate["mode"] == "enforce" and gate["name"] == "default"
    assert z.json("policy", "get", name)["policy"] == json.loads(Path("strict.json").read_text())
    z.fails("download", ref, "blocked.bin", code="VerificationFailed")
    assert not Path("blocked.bin").exists()
    assert z.json("policy", "delete", name) == {"deleted": name}
    z.fails("policy", "get", name, code="NoSuchBucketPolicy")
    z.json("download", ref, "ok.bin")
    assert Path("ok.bin").read_bytes() == Path("app.tar.gz").read_bytes()

    # Repositories' pull gates, by glob.
    gate = z.json("policy", "set", "--repositories", "prod/*", "--file", "strict.json")
    assert (gate["repositories"], gate["mode"]) == ("prod/*", "audit")
    got = z.json("policy", "get", "--repositories", "prod/*")
    assert got["policy"] == json.loads(Path("strict.json").read_text())
    assert z.json("policy", "delete", "--repositories", "prod/*") == {
        "deleted": "repositories prod/*"
    }
    z.fails("policy", "get", "--repositories", "prod/*", code="NoSuchVerificationPolicy")
    r = z("policy", "get", name, "--repositories", "prod/*")
    assert r.exit_code == 2 and "one of them" in r.stderr


# docs/cli.md runs, in order, in tests/integration/test_docs.py.


# ---- login with OAuth 2 client credentials --------------------------------------------------

OIDC_SECRET = "cli-robot-secret"


@pytest.fixture(scope="module")
def oidc_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A real OpenID provider with the client ``cli-robot`` (role zas-writer), and a store
    that trusts it; yields (store, issuer)."""
    clients = [{"client_id": "cli-robot", "client_secret": OIDC_SECRET, "roles": ["zas-writer"]}]
    with OIDCProvider(
        {"audience": "zot-artifact-store", "access_token_ttl": 60, "clients": clients},
        tmp_path_factory.mktemp("cli-oidc"),
    ) as idp:
        base = tmp_path_factory.mktemp("cli-oidc-server")
        rule = {
            "issuer": idp.issuer,
            "audience": "zot-artifact-store",
            "roleMap": {"zas-writer": "writer"},
        }
        (base / "config.yaml").write_text(json.dumps({"auth": {"oidc": [rule]}}))
        proc = ServerProcess(
            base / "data",
            config=base / "config.yaml",
            env={"ZAS_ROOT_USER": ROOT_USER, "ZAS_ROOT_PASSWORD": ROOT_PASSWORD},
        ).start()
        yield proc, idp.issuer
        proc.stop()


def test_login_with_oidc_client_credentials(
    oidc_store: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    store, issuer = oidc_store
    z = Z(tmp_path, None)
    z.fails(
        "login",
        "--url",
        store.url,
        "--oidc-issuer",
        issuer,
        "--client-id",
        "cli-robot",
        "--client-secret-stdin",
        input="wrong\n",
        code=None,
    )
    assert not z.config.exists()
    saved = z.json(
        "--profile",
        "robot",
        "login",
        "--url",
        store.url,
        "--oidc-issuer",
        issuer,
        "--client-id",
        "cli-robot",
        "--client-secret-stdin",
        "--audience",
        "zot-artifact-store",
        input=OIDC_SECRET + "\n",
    )
    assert saved["auth"] == "oidc" and saved["profile"] == "robot"
    profile = yaml.safe_load(z.config.read_text())["profiles"]["robot"]
    assert profile == {
        "url": store.url,
        "oidc": {
            "issuer": issuer,
            "client_id": "cli-robot",
            "client_secret": OIDC_SECRET,
            "audience": "zot-artifact-store",
        },
    }
    assert stat.S_IMODE(z.config.stat().st_mode) == 0o600
    name = z.new_bucket()  # with an access token from the saved client credentials
    owners = {b["name"]: b["owner"] for b in z.json("bucket", "list")["buckets"]}
    assert owners[name] == f"oidc:{issuer}#cli-robot"
    z.fails("token", "list", code="AccessDenied")  # a writer, not an admin
    r = z("login", "--url", store.url, "--client-id", "cli-robot", "--client-secret-stdin")
    assert r.exit_code == 2 and "--oidc-token-url or --oidc-issuer" in r.stderr
