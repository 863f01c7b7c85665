"""``/v1/audit``: query the audit log."""

from __future__ import annotations

from typing import Any

from ...auth.audit import audit_json, decode_audit_cursor, encode_audit_cursor
from ...errors import StoreError
from ...metadata import AuditQuery
from ...timefmt import parse_time
from ..query import takes
from .common import MAX_LIST_LIMIT, V1Handler


class AuditHandler(V1Handler):
    """``GET /v1/audit``: the audit trail, newest first, filtered and paginated."""

    query_parameters = takes(
        GET=("principal", "action", "resource", "decision", "since", "until", "cursor", "limit")
    )

    async def get(self) -> None:
        await self.authorize("admin:ReadAudit", "admin:audit")
        arg = self.get_query_argument
        decision = arg("decision", None)
        if decision not in (None, "allow", "deny"):
            raise StoreError("InvalidArgument", "decision must be allow or deny")
        query = AuditQuery(
            principal=arg("principal", None),
            action=arg("action", None),
            resource_prefix=arg("resource", None),
            decision=decision,
            since=self.time_arg("since"),
            until=self.time_arg("until"),
        )
        before = decode_audit_cursor(arg("cursor", None))
        limit = self.int_arg("limit", 100, 1, MAX_LIST_LIMIT)
        await self.ctx.audit.settle()  # what this process buffered is in the answer
        records, more = await self.ctx.metadata.query_audit(query, before, limit)
        out: dict[str, Any] = {"records": [audit_json(r) for r in records]}
        out["next_cursor"] = encode_audit_cursor(records[-1]) if more and records else None
        self.write_json(out)

    def time_arg(self, name: str) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            return parse_time(raw)
        except ValueError:
            raise StoreError(
                "InvalidArgument", f"{name} must be an RFC 3339 time or Unix seconds"
            ) from None
