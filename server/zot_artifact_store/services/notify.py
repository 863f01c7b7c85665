"""How services announce what happened, for outbound webhooks (services/webhooks.py): they
call ``self.notify.emit(event_type, subject, data)``; until app.py connects the webhook
service, :data:`NULL_NOTIFIER` drops every event. Its own module, with no imports, so that
any service (and auth/tokens.py) can depend on it without an import cycle."""

from __future__ import annotations

from typing import Any


class Notifier:
    """What services call; does nothing until webhooks are configured (app.py)."""

    async def emit(
        self,
        event_type: str,
        subject: dict[str, Any],
        data: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        """Announce ``event_type`` about ``subject``; ``actor`` defaults to the principal of
        the request being served (``system`` outside one)."""
        return None


NULL_NOTIFIER = Notifier()
