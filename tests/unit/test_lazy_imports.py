"""Heavy stacks load on first use, not at start (issue 23: a worker idles lean and is ready
fast), and still work when first used. Memory and time are measured by benchmarks/run.py;
this checks what is imported, which does not depend on the machine."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zot_artifact_store.lazy import lazy_module

REPO = Path(__file__).resolve().parents[2]
HEAVY = (
    "cryptography",
    "sigstore",
    "securesystemslib",
    "joserfc",
    "botocore",
    "awscrt",
    "cbor2",
    "cyclonedx",
    "spdx_tools",
)

# Run in a fresh interpreter: the test process itself has imported all of them already.
PROGRAM = textwrap.dedent(
    """
    import asyncio, json, sys, tempfile

    from zot_artifact_store.app import create_context, make_application
    from zot_artifact_store.auth.principal import Principal
    from zot_artifact_store.config import load_config

    HEAVY = {heavy!r}

    def loaded():
        return sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY))

    async def main():
        data = tempfile.mkdtemp()
        config = load_config(environ={{}}, overrides={{"storage.rootDirectory": data}})
        ctx = await create_context(config, serving=False)
        make_application(ctx)
        out = {{"at_start": loaded()}}
        # First use: a registry session token round trip (joserfc), the Sigstore verifier over
        # the shipped root (sigstore), a DSSE signature by the server's key (securesystemslib).
        principal = Principal(id="user:alice", name="alice", roles=frozenset({{"admin"}}))
        token = ctx.registry_tokens.issue_session(principal, 60)["token"]
        out["session_token_subject"] = ctx.registry_tokens.verify(token).id
        out["verifier"] = type(ctx.supplychain.verifier).__name__
        await ctx.supplychain.ensure_signing()  # the embedded default's key: on first use
        envelope = ctx.supplychain.signing.signer.sign(b"payload")
        out["signature_keyid"] = envelope.keyid == ctx.supplychain.signing.signer.public_key.keyid
        out["after_use"] = loaded()
        await ctx.close()
        print(json.dumps(out))

    asyncio.run(main())
    """
).format(heavy=HEAVY)


def test_heavy_stacks_load_on_first_use_and_work() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["at_start"] == [], f"imported at start: {out['at_start']}"
    assert out["session_token_subject"] == "user:alice"
    assert out["verifier"] == "Verifier"
    assert out["signature_keyid"] is True
    assert {"joserfc", "sigstore", "securesystemslib"} <= set(out["after_use"])


def test_a_lazy_module_imports_on_first_attribute_and_keeps_it() -> None:
    # A stdlib module this test process has not needed: nothing else imports it here.
    proxy = lazy_module("json.tool")
    assert "json.tool" in repr(proxy)
    main = proxy.main
    assert main is sys.modules["json.tool"].main
    assert proxy.__dict__["main"] is main  # later reads are plain attribute reads
    missing = lazy_module("zot_artifact_store.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        _ = missing.anything
