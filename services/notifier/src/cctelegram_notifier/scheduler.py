"""Our side of Telegram's flood control: sliding windows for the bot, each chat and each group,
even pacing, and the pauses a 429 imposes. Time comes from an injected clock and sleep."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cctelegram_notifier.settings import RateSettings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

NEVER = -math.inf


class CallStamp:
    """When Telegram may have counted one call: from the grant until its answer arrived.

    Windows keep the LATEST moment (the answer's arrival once known), so however late
    Telegram saw the call, our window never undercounts it: jitter cannot cause a 429.
    """

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


@dataclass
class Window:
    """At most ``count`` calls in any ``span_s`` seconds (a sliding window, not a fixed one)."""

    count: int
    span_s: float
    stamps: deque[CallStamp] = field(default_factory=deque)

    def __post_init__(self) -> None:
        # A slow call granted earlier may be counted by Telegram after later ones, so a
        # little more history than `count` is kept.
        self.stamps = deque(self.stamps, maxlen=2 * self.count)

    def free_at(self, margin_s: float) -> float:
        if len(self.stamps) < self.count:
            return NEVER
        latest = sorted(stamp.at for stamp in self.stamps)
        return latest[-self.count] + self.span_s + margin_s

    @classmethod
    def per(cls, rate: float, span_s: float) -> Window:
        """``rate`` calls per ``span_s``; a fractional rate becomes a longer span, whole count."""
        count = max(1, int(rate))
        return cls(count, span_s * count / rate)


@dataclass
class Scope:
    """One thing Telegram limits: the bot, a private chat or a group."""

    windows: tuple[Window, ...]
    pace_s: float = 0.0
    paused_until: float = NEVER
    last_call: float = NEVER

    def free_at(self, margin_s: float) -> float:
        earliest = max(self.paused_until, self.last_call + self.pace_s)
        for window in self.windows:
            earliest = max(earliest, window.free_at(margin_s))
        return earliest

    def record(self, stamp: CallStamp) -> None:
        self.last_call = stamp.at
        for window in self.windows:
            window.stamps.append(stamp)

    def forgettable(self, now: float) -> bool:
        """Nothing this scope remembers can delay a call any more."""
        longest = max((window.span_s for window in self.windows), default=0.0)
        return self.paused_until < now and self.last_call < now - longest - self.pace_s - 60.0


@dataclass(frozen=True)
class Grant:
    """The right to make one call now; give it back with ``Scheduler.release``."""

    at: float
    stamp: CallStamp | None = None  # None: not counted (answerCallbackQuery)


class PauseScope(StrEnum):
    CHAT = "chat"
    BOT = "bot"


@dataclass(frozen=True)
class Limits:
    """The effective limits after ``rate_scale``."""

    global_per_s: float
    private_per_s: float
    group_per_min: float
    group_per_s: float

    @classmethod
    def from_settings(cls, rate: RateSettings, scale: float) -> Limits:
        return cls(
            global_per_s=rate.global_per_s * scale,
            private_per_s=rate.private_per_s * scale,
            group_per_min=rate.group_per_min * scale,
            group_per_s=rate.group_per_s * scale,
        )


class Scheduler:
    """Hands out the right to make one Bot API call, never faster than Telegram allows.

    - the bot: ``global_per_s`` in any sliding second, paced evenly (1/rate apart);
    - a private chat (id > 0): ``private_per_s`` (one call per second at the real limits);
    - a group (id < 0): ``group_per_min`` in any sliding minute and ``group_per_s`` spacing;
    - a 429 pauses that chat for ``retry_after``; 429s for two chats within
      ``escalate_window_s`` pause the whole bot.

    Chats that are ready queue for the bot's budget in FIFO order, so one slow chat never
    holds the others back and busy chats cannot starve quiet ones.
    """

    PRUNE_EVERY = 1000

    def __init__(
        self,
        rate: RateSettings,
        scale: float = 1.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_in_flight: int | None = None,
    ) -> None:
        self.rate_limited_count = 0  # 429 answers (bridge status, per bot)
        self.rate = rate
        self.limits = Limits.from_settings(rate, scale)
        self.clock = clock
        self.sleep = sleep
        self.margin_s = rate.safety_margin_s
        self.chat_margin_s = rate.chat_margin_s
        self.bot = Scope(
            (Window.per(self.limits.global_per_s, 1.0),),
            pace_s=rate.pace_fraction / self.limits.global_per_s,
        )
        self._chats: dict[int, Scope] = {}
        self._recent_429: dict[int, float] = {}
        self._bot_turn = asyncio.Lock()  # FIFO: asyncio.Lock wakes waiters in order
        # Counted calls out at once (from the grant until `release`). A crash can duplicate
        # only calls Telegram accepted but we had not recorded: at most this many.
        self._in_flight = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self._calls_since_prune = 0

    # --- scopes ----------------------------------------------------------------------------
    def _new_chat_scope(self, chat_id: int) -> Scope:
        if chat_id < 0:
            return Scope(
                (
                    Window.per(self.limits.group_per_min, 60.0),
                    Window.per(self.limits.group_per_s, 1.0),
                )
            )
        return Scope((Window.per(self.limits.private_per_s, 1.0),))

    def chat(self, chat_id: int) -> Scope:
        scope = self._chats.get(chat_id)
        if scope is None:
            scope = self._chats[chat_id] = self._new_chat_scope(chat_id)
        return scope

    def chat_wait_s(self, chat_id: int) -> float:
        return max(0.0, self.chat(chat_id).free_at(self.chat_margin_s) - self.clock())

    def bot_wait_s(self) -> float:
        return max(0.0, self.bot.free_at(self.margin_s) - self.clock())

    def bot_pause_s(self) -> float:
        return max(0.0, self.bot.paused_until - self.clock())

    async def chat_ready(self, chat_id: int) -> None:
        """Wait (without counting anything) until a call to ``chat_id`` could be granted as far
        as the chat's windows and any pause go: a lane waits here before it decides what its
        next call carries, so everything that arrived meanwhile can join it."""
        while (wait := max(self.chat_wait_s(chat_id), self.bot_pause_s())) > 0:
            await self.sleep(wait)

    # --- acquiring -------------------------------------------------------------------------
    async def acquire(self, chat_id: int | None, *, counts: bool = True) -> Grant:
        """Wait until one call to ``chat_id`` may be made now, and count it. Returns the time.

        A counted call holds an in-flight permit until ``release()``. ``counts=False``
        (answerCallbackQuery: not a message) only honours a whole-bot pause.
        """
        if not counts or chat_id is None:
            while (wait := self.bot_pause_s()) > 0:
                await self.sleep(wait)
            return Grant(self.clock())
        while True:
            wait = self.chat_wait_s(chat_id)
            if wait > 0:
                await self.sleep(wait)
                continue
            if self._in_flight is not None:
                await self._in_flight.acquire()
            granted = False
            try:
                async with self._bot_turn:
                    while (wait := self.bot_wait_s()) > 0:
                        await self.sleep(wait)
                    # A 429 for this chat may have arrived while we queued for the bot.
                    if self.chat_wait_s(chat_id) > 0:
                        continue
                    now = self.clock()
                    stamp = CallStamp(now)
                    self.bot.record(stamp)
                    self.chat(chat_id).record(stamp)
                    self._maybe_prune(now)
                    granted = True
                    return Grant(now, stamp)
            finally:
                if not granted and self._in_flight is not None:
                    self._in_flight.release()

    def answered(self, grant: Grant) -> None:
        """Telegram answered the call: it counted it at some moment before now."""
        if grant.stamp is not None:
            grant.stamp.at = max(grant.stamp.at, self.clock())

    def release(self, grant: Grant) -> None:
        """The call is finished (answered and recorded): its in-flight permit is free."""
        if grant.stamp is not None and self._in_flight is not None:
            self._in_flight.release()

    def _maybe_prune(self, now: float) -> None:
        self._calls_since_prune += 1
        if self._calls_since_prune < self.PRUNE_EVERY:
            return
        self._calls_since_prune = 0
        for chat_id in [c for c, scope in self._chats.items() if scope.forgettable(now)]:
            del self._chats[chat_id]

    # --- Telegram said 429 -----------------------------------------------------------------
    def rate_limited(self, chat_id: int | None, retry_after_s: float) -> PauseScope:
        """Pause what ``retry_after`` applies to; returns which scope was paused."""
        self.rate_limited_count += 1
        now = self.clock()
        until = now + max(retry_after_s, 0.0) + self.rate.retry_after_pad_s
        if chat_id is None:
            self.bot.paused_until = max(self.bot.paused_until, until)
            return PauseScope.BOT
        scope = self.chat(chat_id)
        scope.paused_until = max(scope.paused_until, until)
        window = self.rate.escalate_window_s
        self._recent_429 = {chat: at for chat, at in self._recent_429.items() if now - at <= window}
        self._recent_429[chat_id] = now
        if len(self._recent_429) >= 2:
            # Several chats hit 429 together: Telegram is limiting the whole bot.
            self.bot.paused_until = max(self.bot.paused_until, until)
            return PauseScope.BOT
        return PauseScope.CHAT
