"""Delivery modes and quiet hours: which events go out now, which wait, which are dropped."""

from __future__ import annotations

import time as time_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from cctelegram_common import subjects
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity
from cctelegram_common.contracts.modes import Mode, ModeState
from cctelegram_events.ports import Clock, KvStore, load

# What "needs a person" in local mode: failures, security, approvals (besides high severity).
NEEDS_PERSON: frozenset[EventType] = frozenset(
    {
        EventType.TASK_FAILED,
        EventType.BUILD_FAILED,
        EventType.TEST_FAILED,
        EventType.ERROR_OCCURRED,
        EventType.SECURITY_ALERT,
        EventType.APPROVAL_REQUEST,
        EventType.ALERT_NOTIFICATION,
    }
)

MODE_MESSAGES: dict[Mode, str] = {
    Mode.NOMAD: "Nomad mode: every notification goes to Telegram.",
    Mode.LOCAL: "Local mode: only what needs a person (failures, alerts, approvals).",
    Mode.MUTE: "Mute mode: nothing but approvals and critical alerts.",
}


class Gate(StrEnum):
    SEND = "send"
    HOLD = "hold"
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class QuietHours:
    """A daily window (may cross midnight) in a time zone; start == end means off."""

    start: time
    end: time
    timezone: str = "UTC"

    def active(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class ModeStore:
    """The global delivery mode in ``cctg_state[mode]`` (last writer wins).

    Every event asks for the mode, and modes change a few times a day: a read is served
    from memory for ``cache_s`` (one KV round trip less per event). A change made through
    this replica applies at once; one made through another replica within ``cache_s``.
    """

    def __init__(
        self,
        state_kv: KvStore,
        clock: Clock,
        *,
        cache_s: float = 1.0,
        monotonic: Callable[[], float] = time_module.monotonic,
    ) -> None:
        self.kv = state_kv
        self.clock = clock
        self.cache_s = cache_s
        self.monotonic = monotonic
        self._cached: tuple[float, ModeState] | None = None

    async def get(self) -> ModeState:
        now = self.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        loaded = await load(self.kv, subjects.STATE_KEY_MODE, ModeState)
        state = loaded[0] if loaded else ModeState(mode=Mode.NOMAD, changed_at=self.clock())
        self._cached = (now, state)
        return state

    async def set(self, mode: Mode, changed_by: str) -> ModeState:
        state = ModeState(mode=mode, changed_by=changed_by, changed_at=self.clock())
        await self.kv.put(subjects.STATE_KEY_MODE, state.model_dump_json().encode())
        self._cached = (self.monotonic(), state)
        return state


def gate(
    event_type: EventType,
    severity: Severity,
    mode: Mode,
    quiet_hours: QuietHours | None,
    now: datetime,
) -> Gate:
    """Send now, hold for the digest, or suppress. Approvals and critical alerts always go."""
    if event_type is EventType.APPROVAL_REQUEST or severity is Severity.CRITICAL:
        return Gate.SEND
    if mode is Mode.MUTE:
        return Gate.SUPPRESS
    if mode is Mode.LOCAL and not (
        event_type in NEEDS_PERSON or severity in (Severity.HIGH, Severity.CRITICAL)
    ):
        return Gate.SUPPRESS
    if quiet_hours is not None and quiet_hours.active(now):
        return Gate.HOLD
    return Gate.SEND
