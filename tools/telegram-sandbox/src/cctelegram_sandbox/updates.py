"""The bot's update queue: offsets, long polling that wakes on enqueue, and poller conflicts."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from .config import Clock
from .errors import POLLER_CONFLICT, WEBHOOK_ACTIVE_CONFLICT, BotApiError

UPDATE_TTL_S = 24 * 3600.0
LONG_POLL_MAX_TIMEOUT_S = 50.0
# Telegram leaves these out unless a bot asks for them by name.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class PendingUpdate:
    update_id: int
    update_type: str
    created_at: float
    payload: dict[str, Any]

    def to_api(self) -> dict[str, Any]:
        return {"update_id": self.update_id, self.update_type: self.payload}


class UpdateQueue:
    """Updates waiting for getUpdates or the webhook, oldest first."""

    def __init__(self, clock: Clock, first_update_id: int = 1) -> None:
        self.clock = clock
        self.pending: deque[PendingUpdate] = deque()
        self.next_update_id = first_update_id
        self.allowed_updates: frozenset[str] | None = None
        self.webhook_active = False
        self.closing = False
        self._poll_generation = 0
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Wake everything waiting for the queue (pollers, the webhook sender)."""
        changed = self._changed
        self._changed = asyncio.Event()
        changed.set()

    async def wait_for_change(self, timeout_s: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def is_allowed(self, update_type: str) -> bool:
        if self.allowed_updates is None:
            return update_type not in _OPT_IN_UPDATES
        return update_type in self.allowed_updates

    def enqueue(self, update_type: str, payload: dict[str, Any]) -> PendingUpdate | None:
        if not self.is_allowed(update_type):
            return None
        update = PendingUpdate(self.next_update_id, update_type, self.clock.time(), payload)
        self.next_update_id += 1
        self.pending.append(update)
        self.notify()
        return update

    def set_allowed_updates(self, allowed: list[str] | None) -> None:
        # An empty list means "the default set", as in the Bot API.
        self.allowed_updates = frozenset(allowed) if allowed else None

    def drop_expired(self) -> None:
        horizon = self.clock.time() - UPDATE_TTL_S
        while self.pending and self.pending[0].created_at < horizon:
            self.pending.popleft()

    def confirm(self, offset: int) -> None:
        """Forget what offset confirms: ids below it, or all but the last -offset updates."""
        pending = self.pending
        if offset > 0:
            while pending and pending[0].update_id < offset:
                pending.popleft()
        elif offset < 0:
            while len(pending) > -offset:
                pending.popleft()

    def take(self, limit: int) -> list[PendingUpdate]:
        self.drop_expired()
        if limit >= len(self.pending):
            return list(self.pending)
        return [self.pending[index] for index in range(limit)]

    def remove(self, update_id: int) -> None:
        if self.pending and self.pending[0].update_id == update_id:
            self.pending.popleft()

    def clear(self) -> None:
        self.pending.clear()
        self.notify()

    def close(self) -> None:
        """Answer every waiting long poll now (shutdown)."""
        self.closing = True
        self.notify()

    async def get_updates(self, offset: int, limit: int, timeout_s: float) -> list[PendingUpdate]:
        """getUpdates: confirm, then return at once or hold until an update or the timeout."""
        if self.webhook_active:
            raise BotApiError(409, WEBHOOK_ACTIVE_CONFLICT)
        self._poll_generation += 1
        generation = self._poll_generation
        # An earlier long poll still waiting is answered with 409 (it sees a newer generation).
        self.notify()
        if offset:
            self.confirm(offset)
        updates = self.take(limit)
        timeout_s = min(max(timeout_s, 0.0), LONG_POLL_MAX_TIMEOUT_S)
        if updates or timeout_s <= 0 or self.closing:
            return updates
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining_s = deadline - loop.time()
            if remaining_s <= 0 or not await self.wait_for_change(remaining_s):
                return []
            if generation != self._poll_generation:
                raise BotApiError(409, POLLER_CONFLICT)
            if self.webhook_active:
                raise BotApiError(409, WEBHOOK_ACTIVE_CONFLICT)
            updates = self.take(limit)
            if updates or self.closing:
                return updates
