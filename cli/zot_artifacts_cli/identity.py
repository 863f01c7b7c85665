"""``zot-artifacts`` identity and audit: API tokens and the audit trail."""

from __future__ import annotations

from typing import Any

import click

from .args import load_document
from .context import (
    Group,
    out,
    state,
)
from .output import plain, table

# ---- identity and audit ---------------------------------------------------------------------


@click.group(cls=Group)
def token() -> None:
    """API tokens for robots (CI jobs, scripts)."""


@token.command(
    "create",
    epilog="\b\nExamples:\n  zot-artifacts token create ci-upload --role writer --expires-in 86400",
)
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeatable).")
@click.option("--expires-in", type=float, help="Seconds until it expires.")
@click.option(
    "--statements",
    type=click.Path(exists=True, dir_okay=False),
    help="IAM-style statements limiting it further (JSON or YAML list).",
)
def token_create(
    name: str, roles: tuple[str, ...], expires_in: float | None, statements: str | None
) -> None:
    """Create an API token; its secret (zat_...) is shown once."""
    extra = load_document(statements) if statements else None
    created = (
        state().client().create_token(name, list(roles), expires_in=expires_in, statements=extra)
    )
    out(plain(created), f"{created.secret}\n(token {created.id}; shown once, store it now)")


@token.command("list", epilog="\b\nExamples:\n  zot-artifacts token list")
def token_list() -> None:
    """List API tokens (never their secrets)."""
    tokens = state().client().list_tokens()
    rows = [
        (t.id, t.name, ",".join(t.roles), t.owner, t.expires_at, t.last_used_at, t.revoked_at)
        for t in tokens
    ]
    columns = ["ID", "NAME", "ROLES", "OWNER", "EXPIRES", "LAST USED", "REVOKED"]
    out({"tokens": plain(tokens)}, table(columns, rows))


@token.command("revoke", epilog="\b\nExamples:\n  zot-artifacts token revoke 01J9...")
@click.argument("token_id", metavar="ID")
def token_revoke(token_id: str) -> None:
    """Revoke an API token at once."""
    state().client().revoke_token(token_id)
    out({"revoked": token_id}, f"Revoked token {token_id}")


@click.command(
    epilog="""\b
Examples:
  zot-artifacts audit --limit 20
  zot-artifacts --output json audit --principal token:01J9... --action s3:PutObject \\
      --since 2026-01-01T00:00:00Z
"""
)
@click.option("--since", help="Records at or after this time (RFC 3339).")
@click.option("--until", help="Records before this time (RFC 3339).")
@click.option("--principal", help="e.g. root:admin, token:<id>, anonymous.")
@click.option("--action", help="e.g. s3:PutObject, admin:CreateToken, authenticate.")
@click.option("--resource", help="e.g. bucket/key.")
@click.option("--decision", type=click.Choice(["allow", "deny"]))
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
def audit(
    since: str | None,
    until: str | None,
    principal: str | None,
    action: str | None,
    resource: str | None,
    decision: str | None,
    limit: int,
) -> None:
    """Show the audit trail, newest first."""
    records: list[dict[str, Any]] = []
    pages = (
        state()
        .client()
        .audit(
            principal=principal,
            action=action,
            resource=resource,
            decision=decision,
            since=since,
            until=until,
            page_size=min(limit, 500),
        )
    )
    for record in pages:
        records.append(record)
        if len(records) >= limit:
            break
    rows = [
        (
            r.get("time"),
            r.get("principal"),
            r.get("action"),
            r.get("resource"),
            r.get("decision"),
            r.get("reason"),
        )
        for r in records
    ]
    columns = ["TIME", "PRINCIPAL", "ACTION", "RESOURCE", "DECISION", "REASON"]
    out({"records": records}, table(columns, rows))


COMMANDS = [token, audit]
