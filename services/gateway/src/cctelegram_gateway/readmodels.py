"""The gateway's read port onto the events service's read models.

The events service publishes two read models for other services to read, and only these:

| bucket | key | value (contract) | written by events |
|---|---|---|---|
| ``cctg_event_status`` | event id | ``EventStatus`` | on submit, on each delivery report |
| ``cctg_approvals`` | approval id | ``ApprovalRecord`` | on create, on each decision (CAS) |

Every key of both buckets is a record of that contract: the events service keeps its own
bookkeeping (processed-update markers) in a private bucket, ``cctg_events_updates``, which no
other service may read (deploy/nats/users.conf). The tools read through one ``EventsReadModels``
per gateway, built with the gateway's broker and handed to them in ``ToolContext.reads``; it
opens each bucket once, on first use (nats-py reconnects inside the same client, so a handle
stays valid for the life of the broker).
"""

from __future__ import annotations

import nats.errors
import nats.js.errors
from faststream.nats import NatsBroker
from nats.js.kv import KeyValue

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import ApprovalRecord
from cctelegram_common.contracts.events import EventStatus
from cctelegram_common.nats import jetstream
from cctelegram_gateway.registry import ToolError

_MISSING = (
    nats.js.errors.KeyNotFoundError,
    nats.js.errors.KeyDeletedError,
    nats.js.errors.InvalidKeyError,
)
_KV_REMOVED = ("DEL", "PURGE")


class ApprovalWatch:
    """Successive states of one approval, as the events service writes them."""

    def __init__(self, watcher: KeyValue.KeyWatcher) -> None:
        self._watcher = watcher

    async def next(self, timeout_s: float) -> ApprovalRecord | None:
        """The next state; None when nothing new came within ``timeout_s`` (or only the end of
        the history, or a removal)."""
        try:
            entry = await self._watcher.updates(timeout=timeout_s)  # type: ignore[no-untyped-call]
        except nats.errors.TimeoutError:
            return None
        if entry is None or entry.value is None or entry.operation in _KV_REMOVED:
            return None
        return ApprovalRecord.model_validate_json(entry.value)

    async def stop(self) -> None:
        await self._watcher.stop()  # type: ignore[no-untyped-call]


class EventsReadModels:
    """Read-only access to ``EventStatus`` and ``ApprovalRecord`` records (see the module)."""

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker
        self._buckets: dict[str, KeyValue] = {}

    async def _bucket(self, name: str) -> KeyValue:
        handle = self._buckets.get(name)
        if handle is None:
            try:
                handle = await jetstream(self._broker).key_value(name)
            except Exception as error:
                raise ToolError(
                    f"state store unavailable ({type(error).__name__})",
                    status=503,
                    code="unavailable",
                ) from None
            self._buckets[name] = handle
        return handle

    async def event_status(self, event_id: str) -> EventStatus | None:
        store = await self._bucket(subjects.KV_EVENT_STATUS)
        try:
            entry = await store.get(event_id)
        except _MISSING:
            return None
        if entry.value is None:
            return None
        return EventStatus.model_validate_json(entry.value)

    async def approval(self, approval_id: str) -> ApprovalRecord | None:
        """The approval's current record; None while it does not exist (yet)."""
        store = await self._bucket(subjects.KV_APPROVALS)
        try:
            entry = await store.get(approval_id)
        except _MISSING:
            return None
        if entry.value is None:
            return None
        return ApprovalRecord.model_validate_json(entry.value)

    async def watch_approval(self, approval_id: str) -> ApprovalWatch | None:
        """A watch on the approval's entry (its current state first); None for a key the
        store cannot hold (no approval has it)."""
        store = await self._bucket(subjects.KV_APPROVALS)
        try:
            return ApprovalWatch(await store.watch(approval_id))
        except nats.js.errors.InvalidKeyError:
            return None
