"""``/v1/admin/…``: operator actions.

``POST /v1/admin/lifecycle/run`` runs the lifecycle now (services/lifecycle.py): expired
objects and abandoned uploads go at once instead of at the next ``storage.lifecycleInterval``.
``{"now": "<RFC 3339>"}`` applies the rules as of that time instead of the server's clock —
what the tests use, and how an operator previews (and then applies) a rule change. It can
only make things expire sooner, so it is for admins and audited like the removals it makes.
"""

from __future__ import annotations

from ...errors import StoreError
from ...services.lifecycle import report_json
from ...timefmt import parse_time
from .common import V1Handler
from .uploads import json_object


class LifecycleRunHandler(V1Handler):
    async def post(self) -> None:
        await self.authorize("admin:RunLifecycle", "admin:lifecycle")
        body = (
            json_object(self, {"now"}, '{"now"?: "<RFC 3339 time>"}') if self.request.body else {}
        )
        now = None
        if body.get("now") is not None:
            if not isinstance(body["now"], str):
                raise StoreError("MalformedJSON", "now must be an RFC 3339 string")
            try:
                now = parse_time(body["now"])
            except (ValueError, OverflowError):
                raise StoreError(
                    "InvalidArgument", "now must be an RFC 3339 time such as 2030-01-31T00:00:00Z"
                ) from None
        report = await self.ctx.lifecycle.run(now)
        if not report.ran:
            raise StoreError(
                "OperationAborted",
                "another lifecycle run holds the lease (another replica or worker); retry later",
                resource="admin:lifecycle",
            )
        self.audit(
            "admin:RunLifecycle",
            "admin:lifecycle",
            True,
            f"as of {report.now}: {report.objects_expired} object(s) expired, "
            f"{report.uploads_aborted + report.registry_uploads_aborted} upload(s) aborted",
        )
        self.write_json(report_json(report))
