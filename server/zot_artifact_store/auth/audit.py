"""The audit trail (DESIGN.md §5): every authentication failure, authorization decision and
identity change becomes an :class:`AuditRecord` in the metadata store and a line on the
``zot_artifact_store.audit`` JSON logger.

Records are buffered and written in batches (every ``FLUSH_INTERVAL_S`` or ``BATCH`` records)
so auditing costs a request no metadata round trip; shutdown flushes what is left, and so
does ``GET /v1/audit`` in the process that answers it (a reader sees its own actions). Records
older than ``auth.audit.retention`` are deleted by the worker that runs garbage collection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import time
import uuid
from typing import Any

from ..errors import StoreError
from ..metadata import AuditRecord, MetadataStore
from ..observability.logging import log_fields
from ..timefmt import iso_time
from .principal import Principal

log = logging.getLogger("zot_artifact_store.audit")

FLUSH_INTERVAL_S = 0.5
BATCH = 500
# Beyond this many unwritten records (the metadata store is down), the oldest are dropped
# from the store, never from the log.
MAX_BUFFER = 100_000


_READ = re.compile(r"(^|:)(Get|List|Head|pull|read|verify|gate)", re.IGNORECASE)


def is_read(action: str) -> bool:
    """``s3:GetObject``, ``s3:ListBucket``, ``oci:pull``, ``supplychain:read``, …"""
    return bool(_READ.search(action))


def audit_json(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.record_id,
        "time": iso_time(record.time),
        "principal": record.principal,
        "source_ip": record.source_ip,
        "action": record.action,
        "resource": record.resource,
        "decision": record.decision,
        "reason": record.reason,
        "request_id": record.request_id,
        "detail": record.detail,
    }


def encode_audit_cursor(record: AuditRecord) -> str:
    return encode_cursor(record.time, record.record_id)


def encode_cursor(when: float, ident: str) -> str:
    """A (time, id) cursor of a newest-first listing (audit records, builds)."""
    raw = f"{when!r}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_audit_cursor(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, record_id = raw.split("|", 1)
        return float(when), record_id
    except (ValueError, UnicodeDecodeError):
        raise StoreError(
            "InvalidContinuationToken", "the cursor was not made by this server"
        ) from None


class AuditLog:
    def __init__(self, metadata: MetadataStore, *, enabled: bool = True) -> None:
        self.metadata = metadata
        self.enabled = enabled
        self.dropped = 0
        self._buffer: list[AuditRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run())

    def record(
        self,
        principal: Principal | str,
        action: str,
        resource: str,
        decision: str,
        *,
        reason: str = "",
        request_id: str = "",
        source_ip: str = "",
        detail: dict[str, str] | None = None,
        served: bool | None = None,
    ) -> None:
        """Buffer a record for the store; log it too when it is a refusal or a change.
        ``served`` says whether the request it is about went through, for decisions that are
        not the authorization of ``action`` itself (a verification gate's verdict: ``deny``
        in audit mode still serves the download, a read); None: ``decision`` says it."""
        if not self.enabled:
            return
        who = principal if isinstance(principal, str) else principal.id
        rec = AuditRecord(
            record_id=uuid.uuid4().hex,
            time=time.time(),
            principal=who,
            source_ip=source_ip,
            action=action,
            resource=resource,
            decision=decision,
            reason=reason,
            request_id=request_id,
            detail=detail or {},
        )
        # The log carries refusals and changes; allowed reads are in the store (and the access
        # log line of their request), which halves the logging cost of a download.
        refused = decision != "allow" if served is None else not served
        if refused or not is_read(action):
            log_fields(log, logging.INFO, "audit", {"audit": vars(rec)})
        self._buffer.append(rec)
        if len(self._buffer) > MAX_BUFFER:
            overflow = len(self._buffer) - MAX_BUFFER
            del self._buffer[:overflow]
            self.dropped += overflow
        if len(self._buffer) >= BATCH:
            self._wake.set()

    async def flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[:BATCH], self._buffer[BATCH:]
            try:
                await self.metadata.add_audit_records(batch)
            except Exception:
                self._buffer[:0] = batch  # keep them for the next try
                raise

    async def settle(self) -> None:
        """Write what this process has buffered now, so that a query right after an action
        sees its records; a failure is logged and left to the background writer."""
        try:
            await self.flush()
        except Exception:
            log.exception("could not write buffered audit records before a query")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("could not write audit records; retrying")
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.enabled:
            try:
                await self.flush()
            except Exception:
                log.exception("could not write %d audit records at shutdown", len(self._buffer))

    async def expire(self, retention: float) -> int:
        return await self.metadata.expire_audit(time.time() - retention)

    async def expire_periodically(self, retention: float, interval: float = 3600.0) -> None:
        """Delete records past ``retention`` every ``interval`` seconds until cancelled."""
        while True:
            try:
                removed = await self.expire(retention)
                if removed:
                    log.info("expired audit records", extra={"removed": removed})
            except Exception:
                log.exception("could not expire audit records; next try in %ss", interval)
            await asyncio.sleep(interval)
