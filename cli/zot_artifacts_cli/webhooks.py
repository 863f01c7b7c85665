"""``zot-artifacts webhook``: outbound webhook subscriptions, their deliveries and redelivery."""

from __future__ import annotations

import itertools
from typing import Any

import click

from zot_artifacts import Webhook, WebhookDelivery

from .context import Group, out, state
from .output import plain, table


@click.group(cls=Group)
def webhook() -> None:
    """Outbound webhooks: subscriptions, their deliveries and redelivery (admins)."""


def _webhook_rows(hooks: list[Webhook]) -> Any:
    rows = [
        (w.id, w.url, ",".join(w.events), w.format, "yes" if w.active else "no",
         w.disabled_reason, w.description)
        for w in hooks
    ]  # fmt: skip
    return table(["ID", "URL", "EVENTS", "FORMAT", "ACTIVE", "DISABLED", "DESCRIPTION"], rows)


@webhook.command(
    "create",
    epilog="""\b
Examples:
  zot-artifacts webhook create https://ci.example.com/hooks/zas \\
      --event image.pushed --event verification.failed --repository 'prod/*'
  zot-artifacts webhook create https://ci.example.com/ce --event 'object.*' \\
      --bucket releases --key-prefix widget/ --format cloudevents
""",
)
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True,
              help="An event type or glob: object.created, 'image.*' (repeatable).")  # fmt: skip
@click.option("--bucket", "buckets", multiple=True, help="Only events of these buckets (globs).")
@click.option("--repository", "repositories", multiple=True,
              help="Only events of these repositories (globs).")  # fmt: skip
@click.option("--key-prefix", help="Only object events whose key starts with this.")
@click.option("--format", "fmt", type=click.Choice(["standard-webhooks", "cloudevents"]),
              default="standard-webhooks", show_default=True)  # fmt: skip
@click.option("--description", default="")
@click.option("--inactive", is_flag=True, help="Create it disabled.")
def webhook_create(
    url: str,
    events: tuple[str, ...],
    buckets: tuple[str, ...],
    repositories: tuple[str, ...],
    key_prefix: str | None,
    fmt: str,
    description: str,
    inactive: bool,
) -> None:
    """Subscribe URL to events; the signing secret (whsec_...) is shown once."""
    created = state().client().create_webhook(
        url, list(events), buckets=list(buckets) or None,
        repositories=list(repositories) or None, key_prefix=key_prefix, format=fmt,
        description=description, active=not inactive,
    )  # fmt: skip
    out(
        plain(created), f"{created.secret}\n(webhook {created.id}; secret shown once, store it now)"
    )


@webhook.command("list", epilog="\b\nExamples:\n  zot-artifacts webhook list")
def webhook_list() -> None:
    """List webhook subscriptions (never their secrets)."""
    hooks = state().client().list_webhooks()
    out({"webhooks": plain(hooks)}, _webhook_rows(hooks))


@webhook.command("show", epilog="\b\nExamples:\n  zot-artifacts webhook show wh_...")
@click.argument("webhook_id", metavar="ID")
def webhook_show(webhook_id: str) -> None:
    """Show one subscription."""
    hook = state().client().get_webhook(webhook_id)
    out(plain(hook), _webhook_rows([hook]))


@webhook.command(
    "update",
    epilog="""\b
Examples:
  zot-artifacts webhook update wh_... --enable          # after the store disabled it
  zot-artifacts webhook update wh_... --event 'image.*' --url https://ci.example.com/v2
""",
)
@click.argument("webhook_id", metavar="ID")
@click.option("--url")
@click.option("--event", "events", multiple=True, help="Replace the events (repeatable).")
@click.option("--description")
@click.option("--enable/--disable", "active", default=None, help="Turn deliveries on or off.")
def webhook_update(
    webhook_id: str,
    url: str | None,
    events: tuple[str, ...],
    description: str | None,
    active: bool | None,
) -> None:
    """Change a subscription's URL, events, description or whether it is active."""
    changes = {"url": url, "events": list(events) or None, "description": description,
               "active": active}  # fmt: skip
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise click.UsageError(
            "give at least one of --url, --event, --description, --enable/--disable"
        )
    hook = state().client().update_webhook(webhook_id, **changes)
    out(plain(hook), _webhook_rows([hook]))


@webhook.command("delete", epilog="\b\nExamples:\n  zot-artifacts webhook delete wh_...")
@click.argument("webhook_id", metavar="ID")
def webhook_delete(webhook_id: str) -> None:
    """Delete a subscription (its pending deliveries are dropped)."""
    state().client().delete_webhook(webhook_id)
    out({"deleted": webhook_id}, f"Deleted webhook {webhook_id}")


@webhook.command(
    "rotate-secret",
    epilog="\b\nExamples:\n  zot-artifacts webhook rotate-secret wh_... --grace-seconds 3600",
)
@click.argument("webhook_id", metavar="ID")
@click.option("--grace-seconds", type=click.FloatRange(0),
              help="How long the old secret stays valid [server default: a day].")  # fmt: skip
def webhook_rotate_secret(webhook_id: str, grace_seconds: float | None) -> None:
    """A new signing secret (shown once); the old one stays valid for the grace period."""
    hook = state().client().rotate_webhook_secret(webhook_id, grace_seconds=grace_seconds)
    out(plain(hook), f"{hook.secret}\n(webhook {hook.id}; new secret shown once)")


@webhook.command("test", epilog="\b\nExamples:\n  zot-artifacts webhook test wh_...")
@click.argument("webhook_id", metavar="ID")
def webhook_test(webhook_id: str) -> None:
    """Send a webhook.test event to the subscription."""
    delivery = state().client().test_webhook(webhook_id)
    out(plain(delivery), f"Queued test delivery {delivery.id} ({delivery.status})")


def _delivery_rows(deliveries: list[WebhookDelivery]) -> Any:
    rows = [
        (d.id, d.event_type, d.status, len(d.attempts), d.response_code, d.latency_ms,
         d.created_at, d.next_attempt_at)
        for d in deliveries
    ]  # fmt: skip
    columns = ["ID", "EVENT", "STATUS", "ATTEMPTS", "CODE", "MS", "CREATED", "NEXT ATTEMPT"]
    return table(columns, rows)


@webhook.command(
    "deliveries",
    epilog="\b\nExamples:\n  zot-artifacts webhook deliveries wh_... --limit 20",
)
@click.argument("webhook_id", metavar="ID")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def webhook_deliveries(webhook_id: str, limit: int) -> None:
    """A subscription's deliveries, newest first, with their attempts."""
    pages = state().client().webhook_deliveries(webhook_id, page_size=min(limit, 1000))
    deliveries = list(itertools.islice(pages, limit))
    out({"deliveries": plain(deliveries)}, _delivery_rows(deliveries))


@webhook.command(
    "redeliver",
    epilog="\b\nExamples:\n  zot-artifacts webhook redeliver wh_... dlv_...",
)
@click.argument("webhook_id", metavar="ID")
@click.argument("delivery_id", metavar="DELIVERY")
def webhook_redeliver(webhook_id: str, delivery_id: str) -> None:
    """Send a delivery again (the same webhook-id, a new attempt)."""
    delivery = state().client().redeliver(webhook_id, delivery_id)
    out(plain(delivery), f"Queued delivery {delivery.id} again ({delivery.status})")
