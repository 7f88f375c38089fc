"""Sandbox settings and the clock that flood control, dates and expiries read."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Protocol

# Real tokens are "<bot id>:<35 characters>"; the sandbox is a little lenient on the length
# so hand-written test tokens work, but rejects anything that is clearly not a token.
TOKEN_PATTERN = re.compile(r"[0-9]{1,15}:[A-Za-z0-9_-]{20,64}")

DEFAULT_BOT_USERNAME = "cctelegram_sandbox_bot"
DEFAULT_BOT_FIRST_NAME = "CCTelegram Sandbox"


class Clock(Protocol):
    """Anything that tells the current Unix time in seconds."""

    def time(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; for deterministic tests."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ControllableClock:
    """Wraps any clock so the control API can freeze it or move it forward."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self._offset_s = 0.0
        self._frozen_at: float | None = None

    def time(self) -> float:
        if self._frozen_at is not None:
            return self._frozen_at
        return self.base.time() + self._offset_s

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def freeze(self) -> None:
        if self._frozen_at is None:
            self._frozen_at = self.time()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            self._offset_s = self._frozen_at - self.base.time()
            self._frozen_at = None

    def advance(self, seconds: float) -> None:
        if self._frozen_at is not None:
            self._frozen_at += seconds
        else:
            self._offset_s += seconds

    def set(self, timestamp: float) -> None:
        if self._frozen_at is not None:
            self._frozen_at = timestamp
        else:
            self._offset_s = timestamp - self.base.time()


@dataclass
class SandboxConfig:
    """How one sandbox behaves; every field has a default that imitates real Telegram."""

    token: str | None = None
    """The only accepted bot token; None accepts any well-formed token."""
    rate_scale: float = 1.0
    """Multiplies Telegram's flood limits (2.0 allows twice as many messages)."""
    flood_control: bool = True
    clock: Clock = field(default_factory=SystemClock)
    bot_username: str = DEFAULT_BOT_USERNAME
    bot_first_name: str = DEFAULT_BOT_FIRST_NAME
    revoked_tokens: frozenset[str] = frozenset()
    """Well-formed tokens answered with 401 Unauthorized."""
    auto_create_chats: bool = False
    """Create an unknown chat on first use instead of answering "chat not found"."""
    strict_params: bool = False
    """Answer 400 to a call carrying a parameter its method does not define (Telegram ignores
    those); our tests and `cctelegram up` turn it on so stray parameters fail loudly."""
    demo_chats: bool = False
    """Start with a private chat, a group and a forum so the web page is not empty."""
    webhook_initial_backoff_s: float = 1.0
    webhook_max_backoff_s: float = 60.0
    callback_query_ttl_s: float = 15 * 60.0
    calls_log_size: int = 100_000
    first_update_id: int | None = None
    """None: start from the wall clock in seconds, so ids keep growing across restarts the
    way a real bot's do; a client's stored offset from an earlier run never skips new ones."""
