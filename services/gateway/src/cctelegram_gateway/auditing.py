"""The gateway's audit trail: fire-and-forget records so no request waits on auditing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cctelegram_common.contracts.audit import AuditOutcome, AuditRecord
from cctelegram_gateway import metrics

SERVICE = "gateway"
Publish = Callable[[AuditRecord], Coroutine[Any, Any, object]]


class Auditor:
    def __init__(self, publish: Publish, repeat_window_s: float = 10.0) -> None:
        self._publish = publish
        self._tasks: set[asyncio.Task[object]] = set()
        self._last: dict[tuple[str, str | None, str | None], float] = {}
        self.repeat_window_s = repeat_window_s

    def record(
        self,
        action: str,
        outcome: AuditOutcome,
        *,
        client_id: str | None = None,
        key_id: str | None = None,
        request_id: str | None = None,
        target: str | None = None,
        reason: str | None = None,
        coalesce: bool = False,
    ) -> None:
        """Queue one record. ``coalesce``: at most one per (action, key, target) per window,
        so a client hammering a limit cannot flood the trail."""
        if outcome is not AuditOutcome.SUCCESS:
            metrics.SECURITY_EVENTS.labels(action).inc()
        if coalesce:
            slot = (action, key_id, target)
            now = time.monotonic()
            if now - self._last.get(slot, -1e9) < self.repeat_window_s:
                return
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[slot] = now
        record = AuditRecord(
            service=SERVICE,
            action=action,
            outcome=outcome,
            client_id=client_id,
            key_id=key_id,
            request_id=request_id,
            target=target,
            reason=reason,
        )
        task: asyncio.Task[object] = asyncio.create_task(self._publish(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
