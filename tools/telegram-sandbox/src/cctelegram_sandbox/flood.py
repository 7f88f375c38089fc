"""Telegram's flood limits as deterministic sliding windows over an injectable clock."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .config import Clock
from .errors import BotApiError, too_many_requests


@dataclass(frozen=True)
class WindowLimit:
    """At most `count` messages in any `window_s` seconds."""

    count: int
    window_s: float

    def scaled(self, scale: float) -> WindowLimit:
        # Keep the count whole: fractional allowances become longer windows instead.
        allowed = self.count * scale
        count = max(1, round(allowed))
        return WindowLimit(count, self.window_s * count / allowed)


PRIVATE_CHAT_LIMIT = WindowLimit(1, 1.0)
GROUP_CHAT_LIMIT = WindowLimit(20, 60.0)
GLOBAL_LIMIT = WindowLimit(30, 1.0)
PAID_BROADCAST_LIMIT = WindowLimit(1000, 1.0)


class _Window:
    __slots__ = ("limit", "stamps")

    def __init__(self, limit: WindowLimit) -> None:
        self.limit = limit
        self.stamps: deque[float] = deque()

    def retry_after(self, now: float) -> float:
        """Seconds until one more message fits (0 when it fits now)."""
        stamps = self.stamps
        horizon = now - self.limit.window_s
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        if len(stamps) < self.limit.count:
            return 0.0
        return stamps[0] + self.limit.window_s - now


class FloodControl:
    """1 msg/s per private chat, 20 msg/60 s per group, 30 msg/s per bot; edits count."""

    def __init__(self, clock: Clock, *, enabled: bool = True, rate_scale: float = 1.0) -> None:
        self.clock = clock
        self.enabled = enabled
        self.rejections = 0
        self._penalty_until = 0.0
        self.configure(rate_scale)

    def configure(self, rate_scale: float) -> None:
        if rate_scale <= 0:
            raise ValueError("rate_scale must be positive")
        self.rate_scale = rate_scale
        self.private_limit = PRIVATE_CHAT_LIMIT.scaled(rate_scale)
        self.group_limit = GROUP_CHAT_LIMIT.scaled(rate_scale)
        self._global = _Window(GLOBAL_LIMIT.scaled(rate_scale))
        self._paid = _Window(PAID_BROADCAST_LIMIT.scaled(rate_scale))
        self._chats: dict[int, _Window] = {}

    def reset(self) -> None:
        self._penalty_until = 0.0
        self.rejections = 0
        self.configure(self.rate_scale)

    def set_global_penalty(self, seconds: float) -> None:
        """Every counted call answers 429 until `seconds` from now have passed."""
        self._penalty_until = self.clock.time() + seconds

    @property
    def penalty_remaining_s(self) -> float:
        return max(0.0, self._penalty_until - self.clock.time())

    def acquire(self, chat_id: int, *, paid_broadcast: bool = False) -> None:
        """Count one message to chat_id, or raise 429 with the whole seconds to wait."""
        if not self.enabled:
            return
        now = self.clock.time()
        wait_s = self._penalty_until - now
        chat_window = self._chats.get(chat_id)
        if chat_window is None:
            limit = self.private_limit if chat_id > 0 else self.group_limit
            chat_window = self._chats[chat_id] = _Window(limit)
        bot_window = self._paid if paid_broadcast else self._global
        wait_s = max(wait_s, chat_window.retry_after(now), bot_window.retry_after(now))
        if wait_s > 0:
            self.rejections += 1
            raise self._rejection(wait_s)
        chat_window.stamps.append(now)
        bot_window.stamps.append(now)

    @staticmethod
    def _rejection(wait_s: float) -> BotApiError:
        return too_many_requests(max(1, math.ceil(wait_s - 1e-9)))

    def snapshot(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "rate_scale": self.rate_scale,
            "private_chat": {
                "count": self.private_limit.count,
                "window_s": self.private_limit.window_s,
            },
            "group_chat": {"count": self.group_limit.count, "window_s": self.group_limit.window_s},
            "global": {
                "count": self._global.limit.count,
                "window_s": self._global.limit.window_s,
            },
            "global_penalty_remaining_s": self.penalty_remaining_s,
            "rejections": self.rejections,
        }
