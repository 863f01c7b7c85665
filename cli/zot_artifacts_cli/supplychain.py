"""``zot-artifacts`` supply chain: sign, provenance, attach, verify, evidence, key, sbom and
policy (verification gates)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from zot_artifacts import (
    VerificationResult,
)

from .args import (
    load_document,
    load_policy,
    pick_subject,
    policy_option,
    split_ref,
    subject_options,
)
from .context import (
    EXIT_ERROR,
    EXIT_NOT_VERIFIED,
    F,
    Group,
    out,
    state,
)
from .output import plain, table

# ---- supply chain ---------------------------------------------------------------------------


def evidence_out(evidence: Any) -> None:
    data = plain(evidence)
    out(
        data,
        f"{evidence.kind} {evidence.id} ({evidence.format}) attached to "
        f"{evidence.subject or evidence.subject_digest} {evidence.subject_digest}",
    )


@click.command(
    epilog="""\b
Examples:
  zot-artifacts sign builds/app/1.0/app.tar.gz
  zot-artifacts sign --image apps/web@sha256:4f1c...
  zot-artifacts sign builds/app.tar.gz --predicate-type https://slsa.dev/provenance/v1 \\
      --predicate provenance.json
"""
)
@click.argument("ref", required=False, metavar="[BUCKET/KEY]")
@subject_options
@click.option("--predicate-type", help="Sign an attestation of this predicate type.")
@click.option(
    "--predicate",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="The attestation's predicate (JSON or YAML file).",
)
def sign(
    ref: str | None,
    image: str | None,
    digest: str | None,
    predicate_type: str | None,
    predicate: str | None,
) -> None:
    """Have the store sign a subject with its own key.

    Server-side signing makes a signature, or with --predicate-type and --predicate a signed
    attestation. The subject is BUCKET/KEY, --image or --digest."""
    if bool(predicate_type) != bool(predicate):
        raise click.UsageError("--predicate-type and --predicate go together")
    subject = pick_subject(ref, image, digest)
    body = load_document(predicate) if predicate else None
    evidence_out(state().client().sign(subject, predicate_type=predicate_type, predicate=body))


@click.command(
    epilog="""\b
Examples:
  zot-artifacts provenance builds/app/1.0/app.tar.gz builds/app/1.0/app.sbom.json
"""
)
@click.argument("refs", nargs=-1, required=True, metavar="BUCKET/KEY...")
def provenance(refs: tuple[str, ...]) -> None:
    """Have the store build, sign and attach SLSA provenance for what you uploaded.

    The store writes the provenance itself from what it verified — in a CI job that exchanged
    its OIDC token (GitHub Actions, a Kubernetes service account), the token's repository,
    workflow, commit and run — and signs it with its own key: one statement names every file.
    Only files this identity uploaded (in a CI job: in this job) are accepted."""
    evidence = state().client().provenance([split_ref(ref) for ref in refs])
    out(
        {"evidence": [plain(e) for e in evidence]},
        "\n".join(
            f"{e.kind} {e.id} (SLSA provenance v1) attached to {e.subject or e.subject_digest}"
            for e in evidence
        ),
    )


@click.group(cls=Group)
def attach() -> None:
    """Attach an SBOM, an attestation or a signature to a subject."""


def attach_command(kind: str, doc: str, example: str) -> None:
    @attach.command(kind, help=doc, epilog=f"\b\nExamples:\n  {example}")
    @click.argument("args", nargs=-1, required=True, metavar="[BUCKET/KEY] FILE")
    @subject_options
    @click.option("--content-type", help="The document's media type (default: detected).")
    def command(
        args: tuple[str, ...], image: str | None, digest: str | None, content_type: str | None
    ) -> None:
        if len(args) > 2:
            raise click.UsageError("expected [BUCKET/KEY] FILE")
        ref, file = (args[0], args[1]) if len(args) == 2 else (None, args[0])
        subject = pick_subject(ref, image, digest)
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        client = state().client()
        if kind == "sbom":
            evidence = client.attach_sbom(subject, data, content_type)
        elif kind == "signature":
            evidence = client.attach_signature(subject, data, content_type)
        else:
            evidence = client.attach_attestation(subject, data)
        evidence_out(evidence)


attach_command(
    "sbom",
    "Attach an SBOM.\n\nCycloneDX (JSON or XML) or SPDX JSON.",
    "zot-artifacts attach sbom builds/app/1.0/app.tar.gz sbom.cdx.json",
)
attach_command(
    "attestation",
    "Attach an in-toto attestation.\n\nA signed DSSE envelope or a Sigstore bundle.",
    "zot-artifacts attach attestation builds/app/1.0/app.tar.gz provenance.intoto.json",
)
attach_command(
    "signature",
    "Attach a signature.\n\nA Sigstore bundle, a DSSE envelope or a raw base64 signature.",
    "zot-artifacts attach signature --digest sha256:4f1c... app.sig",
)


def verification_text(result: VerificationResult) -> str:
    verdict = "verified" if result.verified else "NOT verified"
    lines = [f"{result.subject or result.subject_digest} {result.subject_digest}: {verdict}"]
    for rule in result.rules:
        mark = "PASS" if rule.passed else "FAIL"
        lines.append(f"  {mark}  {rule.rule}: {rule.reason}")
    return "\n".join(lines)


@click.command(
    epilog="""\b
Examples:
  zot-artifacts verify builds/app/1.0/app.tar.gz --policy policy.yaml
  zot-artifacts --output json verify --digest sha256:4f1c... --policy policy.json
  zot-artifacts verify builds/app/1.0/app.tar.gz builds/app/1.0/app.whl --policy policy.yaml

\b
Exit codes: 0 verified (every subject), 1 not verified (the failing rules' reasons are
printed), 2 error (for several subjects: one could not be verified, e.g. it does not exist).
"""
)
@click.argument("refs", nargs=-1, metavar="[BUCKET/KEY...]")
@subject_options
@policy_option("--policy")
@click.option("--vsa", is_flag=True, help="Have the store issue a signed VSA when it passes.")
def verify(
    refs: tuple[str, ...], image: str | None, digest: str | None, policy_file: str, vsa: bool
) -> None:
    """Check subjects against a policy.

    Prints each rule with PASS or FAIL and its reason. The subject is BUCKET/KEY, --image or
    --digest; several BUCKET/KEY are checked in one request (POST /v1/batch/verify)."""
    if len(refs) <= 1:
        subject = pick_subject(refs[0] if refs else None, image, digest)
        policy = load_policy(policy_file)
        result = state().client().verify(subject, policy, issue_vsa=vsa)
        out(plain(result), verification_text(result))
        if not result.verified:
            click.get_current_context().exit(EXIT_NOT_VERIFIED)
        return
    if image or digest:
        raise click.UsageError("name the subject once: several BUCKET/KEY, or one --image/--digest")
    subjects = [pick_subject(ref, None, None) for ref in refs]
    policy = load_policy(policy_file)
    checked = state().client().batch_verify(subjects, policy, issue_vsa=vsa)
    texts = []
    for subject, item in zip(subjects, checked.subjects):
        if item.verification is not None:
            texts.append(verification_text(item.verification))
        else:
            name = "/".join(subject.to_json().values())
            error = item.error
            texts.append(f"{name}: ERROR {error.message} ({error.code})" if error else name)
    c = checked.counts
    texts.append(
        f"{len(subjects)} subject(s): {c.get('passed', 0)} verified, {c.get('failed', 0)} NOT "
        f"verified, {c.get('error', 0)} error(s)"
    )
    out(plain(checked), "\n".join(texts))
    if c.get("error"):
        click.get_current_context().exit(EXIT_ERROR)
    if not checked.verified:
        click.get_current_context().exit(EXIT_NOT_VERIFIED)


@click.group(cls=Group)
def evidence() -> None:
    """List and fetch a subject's signatures, SBOMs, attestations."""


@evidence.command(
    "list",
    epilog="\b\nExamples:\n  zot-artifacts evidence list builds/app/1.0/app.tar.gz\n"
    "  zot-artifacts evidence list --image apps/web@sha256:4f1c... --kind signatures",
)
@click.argument("ref", required=False, metavar="[BUCKET/KEY]")
@subject_options
@click.option(
    "--kind", type=click.Choice(["signatures", "sboms", "attestations"]), help="Only this kind."
)
def evidence_list(ref: str | None, image: str | None, digest: str | None, kind: str | None) -> None:
    """Evidence attached to a subject (BUCKET/KEY, --image or --digest)."""
    items = state().client().list_evidence(pick_subject(ref, image, digest), kind)
    out(
        {"evidence": plain(items)},
        table(
            ["ID", "KIND", "FORMAT", "CREATED", "BY"],
            [(e.id, e.kind, e.format, e.created_at, e.created_by) for e in items],
        ),
    )


@evidence.command(
    "get", epilog="\b\nExamples:\n  zot-artifacts evidence get 3f9c0a1b... -o bundle.json"
)
@click.argument("evidence_id", metavar="ID")
@click.option("-o", "--output-file", "dest", metavar="FILE", help="Write here (default: stdout).")
def evidence_get(evidence_id: str, dest: str | None) -> None:
    """The document exactly as attached."""
    body = state().client().get_evidence(evidence_id)
    if dest is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        Path(dest).write_bytes(body)
        out({"id": evidence_id, "path": dest, "size": len(body)}, f"{len(body)} B -> {dest}")


@click.group(cls=Group)
def key() -> None:
    """Public keys trusted to sign evidence (admins).

    Signatures and attestations count in policies when a trusted key verifies them."""


def key_rows(keys: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (k.id[:16], k.name, k.algorithm, k.scope or "*", k.expires_at or "", k.revoked_at or "")
        for k in keys
    ]


KEY_COLUMNS = ["ID", "NAME", "ALGORITHM", "SCOPE", "EXPIRES", "REVOKED"]


@key.command(
    "add",
    epilog="\b\nExamples:\n  zot-artifacts key add cosign.pub --name release\n"
    "  zot-artifacts key add ci.pub --name ci --scope bucket:nightly --expires-in 2592000",
)
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False), metavar="PEM_FILE")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--scope", default="", help="bucket:<name> or repo:<name> (default: everywhere).")
@click.option("--expires-in", type=click.IntRange(1), help="Seconds until it is no longer trusted.")
def key_add(public_key: str, name: str, scope: str, expires_in: int | None) -> None:
    """Trust a public key (PEM: ECDSA P-256/P-384, Ed25519, RSA >= 2048)."""
    added = state().client().add_key(Path(public_key), name, scope=scope, expires_in=expires_in)
    out(plain(added), table(KEY_COLUMNS, key_rows([added]), title=f"trusted key {added.id}"))


@key.command("list", epilog="\b\nExamples:\n  zot-artifacts key list")
def key_list() -> None:
    """The trusted keys, revoked ones included."""
    keys = state().client().list_keys()
    out({"keys": plain(keys)}, table(KEY_COLUMNS, key_rows(keys)))


@key.command("revoke", epilog="\b\nExamples:\n  zot-artifacts key revoke 3b1f...")
@click.argument("key_id", metavar="ID")
def key_revoke(key_id: str) -> None:
    """Stop trusting a key: its signatures no longer pass any policy."""
    state().client().revoke_key(key_id)
    out({"revoked": key_id}, f"Revoked key {key_id}")


@click.group(cls=Group)
def sbom() -> None:
    """Search the components of every attached SBOM."""


@sbom.command(
    "search",
    epilog="\b\nExamples:\n  zot-artifacts sbom search --purl pkg:pypi/requests@2.31.0\n"
    "  zot-artifacts sbom search --name requests",
)
@click.option("--purl", help="A package URL; without a version, any version.")
@click.option("--name", help="A component name.")
@click.option("--limit", type=click.IntRange(1, 10000), help="At most this many results.")
def sbom_search(purl: str | None, name: str | None, limit: int | None) -> None:
    """Which artifacts and images contain a component (those you may read)."""
    if not purl and not name:
        raise click.UsageError("give --purl or --name")
    found = state().client().search_sboms(purl, name, limit=limit)
    out(
        {"results": found},
        table(
            ["SUBJECT", "COMPONENT", "VERSION", "PURL"],
            [
                (r["subject"], r["component"]["name"], r["component"]["version"],
                 r["component"]["purl"])
                for r in found
            ],
        ),
    )  # fmt: skip


@click.group(cls=Group)
def policy() -> None:
    """Verification gates on downloads and image pulls.

    A gate is on a BUCKET (every download) or, with --repositories, on the registry
    repositories matching a name or glob (every manifest pull). In audit mode failures are
    logged; in enforce mode the download or pull is refused."""


def gate_text(gate: Any) -> str:
    return f"{gate.name} ({gate.mode})\n" + yaml.safe_dump(gate.policy, sort_keys=False)


def repositories_option(func: F) -> F:
    return click.option(
        "--repositories",
        metavar="PATTERN",
        help="Registry repositories (a name or a glob such as 'prod/*') instead of a bucket.",
    )(func)


def gate_scope(bucket_name: str | None, repositories: str | None) -> str:
    """Exactly one of BUCKET and --repositories; the scope's name for messages."""
    if (bucket_name is None) == (repositories is None):
        raise click.UsageError("name a BUCKET or --repositories PATTERN (one of them)")
    return bucket_name if bucket_name is not None else f"repositories {repositories}"


@policy.command(
    "get",
    epilog="\b\nExamples:\n  zot-artifacts policy get releases\n"
    "  zot-artifacts policy get --repositories 'prod/*'",
)
@click.argument("bucket_name", metavar="[BUCKET]", required=False)
@repositories_option
def policy_get(bucket_name: str | None, repositories: str | None) -> None:
    """Show a bucket's (or repositories') verification gate."""
    gate_scope(bucket_name, repositories)
    client = state().client()
    gate = (
        client.get_repository_verification(repositories)
        if repositories is not None
        else client.get_verification(str(bucket_name))
    )
    out(plain(gate), gate_text(gate))


@policy.command(
    "set",
    epilog="\b\nExamples:\n  zot-artifacts policy set releases --file policy.yaml --mode enforce\n"
    "  zot-artifacts policy set --repositories 'prod/*' --file policy.yaml --mode enforce",
)
@click.argument("bucket_name", metavar="[BUCKET]", required=False)
@repositories_option
@policy_option("--file")
@click.option(
    "--mode",
    type=click.Choice(["audit", "enforce"]),
    default="audit",
    show_default=True,
    help="audit logs failures; enforce refuses the download or pull.",
)
@click.option("--name", default="default", show_default=True, help="The gate's name.")
def policy_set(
    bucket_name: str | None, repositories: str | None, policy_file: str, mode: str, name: str
) -> None:
    """Check every download from BUCKET (or pull from --repositories) against a policy."""
    gate_scope(bucket_name, repositories)
    client = state().client()
    rules = load_policy(policy_file)
    gate = (
        client.set_repository_verification(repositories, rules, mode, name=name)
        if repositories is not None
        else client.set_verification(str(bucket_name), rules, mode, name=name)
    )
    out(plain(gate), gate_text(gate))


@policy.command(
    "delete",
    epilog="\b\nExamples:\n  zot-artifacts policy delete releases\n"
    "  zot-artifacts policy delete --repositories 'prod/*'",
)
@click.argument("bucket_name", metavar="[BUCKET]", required=False)
@repositories_option
def policy_delete(bucket_name: str | None, repositories: str | None) -> None:
    """Remove a bucket's (or repositories') verification gate."""
    scope = gate_scope(bucket_name, repositories)
    client = state().client()
    if repositories is not None:
        client.delete_repository_verification(repositories)
    else:
        client.delete_verification(str(bucket_name))
    out({"deleted": scope}, f"Removed the verification gate of {scope}")


COMMANDS = [sign, provenance, attach, verify, evidence, key, sbom, policy]
