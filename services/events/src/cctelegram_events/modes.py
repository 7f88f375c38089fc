"""Delivery modes and quiet hours per API client: which events go out now, which wait, which
are suppressed — and the one digest of what a client missed while it was muted."""

from __future__ import annotations

import time as time_module
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from cctelegram_common import subjects
from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity
from cctelegram_common.contracts.modes import (
    ClientModeState,
    Mode,
    ModeState,
    QuietHoursResult,
    QuietHoursSpec,
)
from cctelegram_common.contracts.outbox import Operation, OutboxMessage
from cctelegram_common.logging import get_logger
from cctelegram_events import metrics
from cctelegram_events.ports import (
    CasConflictError,
    Clock,
    KvStore,
    ModelT,
    Publisher,
    key_part,
    load,
    publish_outbox,
)
from cctelegram_events.telegram_html import safe, split_html
from cctelegram_events.templates import template_for

log = get_logger(__name__)

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
MODE_EMOJI: dict[Mode, str] = {Mode.NOMAD: "🔔", Mode.LOCAL: "💻", Mode.MUTE: "🔕"}
# A muted client's digest lists at most this many failures and alerts (the counts cover all).
NOTABLE_MAX = 30
CAS_ATTEMPTS = 20


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

    @classmethod
    def of(cls, spec: QuietHoursSpec) -> QuietHours:
        return cls(spec.start, spec.end, spec.timezone)

    def active(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class ClientState:
    """What applies to one client now: its own choice where it made one, else the default."""

    client_id: str
    mode: Mode
    own_mode: bool
    quiet_hours: QuietHours | None  # None: the service's configured quiet hours


def describe_quiet_hours(spec: QuietHoursSpec) -> str:
    if spec.start == spec.end:
        return "off"
    return f"{spec.start:%H:%M}-{spec.end:%H:%M} {spec.timezone}"


def client_key(client_id: str) -> str:
    return subjects.STATE_KEY_MODE_CLIENT_PREFIX + key_part(client_id)


def muted_key(client_id: str) -> str:
    return subjects.STATE_KEY_MUTED_PREFIX + key_part(client_id)


class ModeStore:
    """The default (``cctg_state[mode]``) and each client's own state
    (``cctg_state[mode.client.<client>]``); last writer wins.

    Every event asks for its client's state, and states change a few times a day: a read is
    served from memory for ``cache_s`` (no KV round trip per event). A change made through
    this replica applies at once; one made through another replica within ``cache_s``.
    """

    def __init__(
        self,
        state_kv: KvStore,
        clock: Clock,
        *,
        cache_s: float = 1.0,
        monotonic: Callable[[], float] = time_module.monotonic,
        max_cached: int = 10_000,
    ) -> None:
        self.kv = state_kv
        self.clock = clock
        self.cache_s = cache_s
        self.monotonic = monotonic
        self.max_cached = max_cached
        self._cached: dict[str, tuple[float, BaseModel | None]] = {}

    async def _read(self, key: str, model: type[ModelT]) -> ModelT | None:
        now = self.monotonic()
        hit = self._cached.get(key)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1] if isinstance(hit[1], model) else None
        loaded = await load(self.kv, key, model)
        value = loaded[0] if loaded else None
        self._remember(key, value)
        return value

    def _remember(self, key: str, value: BaseModel | None) -> None:
        if len(self._cached) >= self.max_cached:
            self._cached.clear()  # bounded memory; worst case one KV read per client again
        self._cached[key] = (self.monotonic(), value)

    async def default(self) -> ModeState:
        state = await self._read(subjects.STATE_KEY_MODE, ModeState)
        return state or ModeState(mode=Mode.NOMAD, changed_at=self.clock())

    async def own(self, client_id: str) -> ClientModeState | None:
        return await self._read(client_key(client_id), ClientModeState)

    async def of(self, client_id: str) -> ClientState:
        default = await self.default()
        own = await self.own(client_id)
        mode = own.mode if own is not None and own.mode is not None else default.mode
        spec = own.quiet_hours if own is not None and own.quiet_hours is not None else None
        spec = spec or default.quiet_hours
        return ClientState(
            client_id=client_id,
            mode=mode,
            own_mode=own is not None and own.mode is not None,
            quiet_hours=QuietHours.of(spec) if spec is not None else None,
        )

    async def set_default(self, changed_by: str, mode: Mode) -> ModeState:
        """Change the default's mode (its quiet hours stay)."""
        loaded = await load(self.kv, subjects.STATE_KEY_MODE, ModeState)
        current = loaded[0] if loaded else ModeState()
        state = ModeState(
            mode=mode,
            quiet_hours=current.quiet_hours,
            changed_by=changed_by,
            changed_at=self.clock(),
        )
        await self.kv.put(subjects.STATE_KEY_MODE, state.model_dump_json().encode())
        self._remember(subjects.STATE_KEY_MODE, state)
        return state

    async def set_own(self, client_id: str, changed_by: str, mode: Mode | None) -> ClientModeState:
        """Change one client's mode (None: follow the default's); its quiet hours stay."""
        key = client_key(client_id)
        loaded = await load(self.kv, key, ClientModeState)
        current = loaded[0] if loaded else ClientModeState(client_id=client_id)
        state = ClientModeState(
            client_id=client_id,
            mode=mode,
            quiet_hours=current.quiet_hours,
            changed_by=changed_by,
            changed_at=self.clock(),
        )
        await self.kv.put(key, state.model_dump_json().encode())
        self._remember(key, state)
        return state

    async def set_quiet_hours(
        self, client_id: str | None, spec: QuietHoursSpec | None, changed_by: str
    ) -> None:
        """A client's own quiet hours, or the default's (``client_id`` None); ``spec`` None:
        the client follows the default, the default follows the EVENTS_QUIET_HOURS_* settings."""
        if client_id is None:
            current = await load(self.kv, subjects.STATE_KEY_MODE, ModeState)
            base = current[0] if current else ModeState()
            state: BaseModel = base.model_copy(
                update={"quiet_hours": spec, "changed_by": changed_by, "changed_at": self.clock()}
            )
            key = subjects.STATE_KEY_MODE
        else:
            key = client_key(client_id)
            loaded = await load(self.kv, key, ClientModeState)
            own = loaded[0] if loaded else ClientModeState(client_id=client_id)
            state = own.model_copy(
                update={"quiet_hours": spec, "changed_by": changed_by, "changed_at": self.clock()}
            )
        await self.kv.put(key, state.model_dump_json().encode())
        self._remember(key, state)

    async def clients(self) -> list[ClientModeState]:
        """Every client with a state of its own, by client id (``/mode`` lists them)."""
        found: list[ClientModeState] = []
        for key in await self.kv.keys(subjects.STATE_KEY_MODE_CLIENT_PREFIX + ">"):
            loaded = await load(self.kv, key, ClientModeState)
            if loaded is not None:
                found.append(loaded[0])
        return sorted(found, key=lambda state: state.client_id)


# --- what a muted client missed --------------------------------------------------------------


class MutedItem(Contract):
    event_id: str
    type: EventType
    title: str
    at: datetime


class MutedDigest(Contract):
    """Value of ``cctg_state[muted.<client>]``: what was suppressed while the client was muted.

    Counts, not events: its size is bounded however long the mute lasts. ``generation``
    changes each time the record starts afresh after a digest went out.
    """

    client_id: str
    generation: str
    since: datetime
    total: int = 0
    counts: dict[EventType, int] = Field(default_factory=dict)
    notable: tuple[MutedItem, ...] = Field(
        default=(), description=f"Failures and alerts, the first {NOTABLE_MAX}"
    )
    notable_total: int = Field(default=0, description="Failures and alerts, listed or not")
    chat_ids: tuple[int, ...] = ()

    def plus(self, item: MutedItem, notable: bool, chats: tuple[int, ...]) -> MutedDigest:
        counts = dict(self.counts)
        counts[item.type] = counts.get(item.type, 0) + 1
        listed = self.notable
        if notable and len(listed) < NOTABLE_MAX:
            listed = (*listed, item)
        return self.model_copy(
            update={
                "total": self.total + 1,
                "notable_total": self.notable_total + (1 if notable else 0),
                "counts": counts,
                "notable": listed,
                "chat_ids": tuple(dict.fromkeys((*self.chat_ids, *chats))),
            }
        )

    def minus(self, sent: MutedDigest | None) -> MutedDigest:
        """What this record holds beyond ``sent`` (a digest already published from it)."""
        if sent is None or sent.generation != self.generation:
            return self
        sent_ids = {item.event_id for item in sent.notable}
        counts = {
            kind: count - sent.counts.get(kind, 0)
            for kind, count in self.counts.items()
            if count > sent.counts.get(kind, 0)
        }
        return self.model_copy(
            update={
                "total": max(0, self.total - sent.total),
                "notable_total": max(0, self.notable_total - sent.notable_total),
                "counts": counts,
                "notable": tuple(i for i in self.notable if i.event_id not in sent_ids),
            }
        )


def is_notable(event_type: EventType, severity: Severity) -> bool:
    """What needs a person: sent in local mode, listed one by one in a muted digest (the
    rest is counted there)."""
    return event_type in NEEDS_PERSON or severity in (Severity.HIGH, Severity.CRITICAL)


async def note_suppressed(
    kv: KvStore,
    clock: Clock,
    client_id: str,
    item: MutedItem,
    notable: bool,
    chats: tuple[int, ...],
) -> None:
    """Count one event suppressed by mute mode into the client's digest (compare-and-set)."""
    key = muted_key(client_id)
    for _ in range(CAS_ATTEMPTS):
        entry = await kv.get(key)
        current = (
            MutedDigest.model_validate_json(entry.value)
            if entry is not None and entry.value
            else MutedDigest(client_id=client_id, generation=uuid.uuid4().hex, since=clock())
        )
        value = current.plus(item, notable, chats).model_dump_json().encode()
        try:
            if entry is None:
                await kv.create(key, value)
            else:  # an emptied record (its digest went out) is updated, not created
                await kv.update(key, value, entry.revision)
        except CasConflictError:
            continue
        return
    log.warning("muted_digest_cas_exhausted", client_id=client_id)


def digest_text(digest: MutedDigest, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    lines = [
        f"🔔 <b>While {safe(digest.client_id)} was muted</b> ({digest.total} suppressed, "
        f"since {digest.since.astimezone(zone):%Y-%m-%d %H:%M})",
        "",
    ]
    for kind, count in sorted(digest.counts.items(), key=lambda pair: (-pair[1], pair[0].value)):
        lines.append(f"{template_for(kind).emoji} {template_for(kind).label}: {count}")
    if digest.notable:
        lines += ["", "<b>Failures and alerts</b>"]
        lines += [
            f"{template_for(item.type).emoji} {item.at.astimezone(zone):%H:%M} {safe(item.title)}"
            for item in digest.notable
        ]
        unlisted = digest.notable_total - len(digest.notable)
        if unlisted > 0:
            lines.append(f"… and {unlisted} more")
    return "\n".join(lines)


@dataclass
class ModeService:
    """Changes modes (tools, bot commands, buttons) and sends the digest of what a client
    missed when it leaves mute mode — whoever made it leave: itself or a new default."""

    store: ModeStore
    publisher: Publisher
    clock: Clock
    timezone: str = "UTC"
    configured_quiet_hours: QuietHours | None = None  # EVENTS_QUIET_HOURS_*

    async def set_quiet_hours(
        self, client_id: str | None, spec: QuietHoursSpec | None, changed_by: str
    ) -> QuietHoursResult:
        """Set a client's (or the default's) quiet hours; says which window applies now.
        Events held by a window that ended are sent by the next digest pass."""
        await self.store.set_quiet_hours(client_id, spec, changed_by)
        if client_id is None:
            default = (await self.store.default()).quiet_hours
            applies = QuietHours.of(default) if default is not None else None
        else:
            applies = (await self.store.of(client_id)).quiet_hours
        applies = applies or self.configured_quiet_hours
        whose = "the default" if client_id is None else client_id
        if applies is None or applies.start == applies.end:
            return QuietHoursResult(
                success=True, message=f"No quiet hours for {whose}.", client_id=client_id
            )
        window = QuietHoursSpec(start=applies.start, end=applies.end, timezone=applies.timezone)
        return QuietHoursResult(
            success=True,
            message=f"Quiet hours for {whose}: {describe_quiet_hours(window)}.",
            client_id=client_id,
            quiet_hours=window,
        )

    async def set(self, mode: Mode, changed_by: str, client_id: str | None = None) -> int:
        """Set a client's mode (or the default's when ``client_id`` is None); returns how
        many suppressed events the digests it sent covered."""
        if client_id is None:
            await self.store.set_default(changed_by, mode)
            return await self.flush_unmuted()
        await self.store.set_own(client_id, changed_by, mode)
        return await self.flush(client_id) if mode is not Mode.MUTE else 0

    async def follow_default(self, client_id: str, changed_by: str) -> int:
        await self.store.set_own(client_id, changed_by, None)
        if (await self.store.of(client_id)).mode is Mode.MUTE:
            return 0
        return await self.flush(client_id)

    async def flush_unmuted(self) -> int:
        """Digests for every client that has suppressed events and is no longer muted. Runs
        after a default change and when the service starts (a digest interrupted by a crash)."""
        covered = 0
        for key in await self.store.kv.keys(subjects.STATE_KEY_MUTED_PREFIX + ">"):
            loaded = await load(self.store.kv, key, MutedDigest)
            if loaded is None:
                continue
            client_id = loaded[0].client_id
            if (await self.store.of(client_id)).mode is not Mode.MUTE:
                covered += await self.flush(client_id)
        return covered

    async def flush(self, client_id: str) -> int:
        """Send one digest of what ``client_id`` missed while muted, then empty the record.

        Published first (its outbox id derives from the record's revision, so replicas racing
        publish one copy), then emptied with compare-and-set. When an event was counted in
        between, only what the published digest did not cover goes out next.
        """
        key = muted_key(client_id)
        sent: MutedDigest | None = None
        covered = 0
        for _ in range(CAS_ATTEMPTS):
            entry = await self.store.kv.get(key)
            if entry is None or not entry.value:
                return covered
            record = MutedDigest.model_validate_json(entry.value)
            remainder = record.minus(sent)
            if remainder.total > 0:
                await self._publish(remainder, f"muted-{key_part(client_id)}-{entry.revision}")
            try:
                await self.store.kv.update(key, b"", entry.revision)
            except CasConflictError:
                sent = record
                covered += remainder.total
                continue
            return covered + remainder.total
        log.warning("muted_flush_cas_exhausted", client_id=client_id)
        return covered

    async def _publish(self, digest: MutedDigest, digest_id: str) -> None:
        text = digest_text(digest, self.timezone)
        for chat in digest.chat_ids:
            for index, part in enumerate(split_html(text)):
                await publish_outbox(
                    self.publisher,
                    OutboxMessage(
                        outbox_id=f"{digest_id}:{chat}:{index}",
                        operation=Operation.SEND_MESSAGE,
                        chat_id=chat,
                        text=part,
                    ),
                )
                metrics.OUTBOX_PUBLISHED.labels(Operation.SEND_MESSAGE.value).inc()


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
    if mode is Mode.LOCAL and not is_notable(event_type, severity):
        return Gate.SUPPRESS
    if quiet_hours is not None and quiet_hours.active(now):
        return Gate.HOLD
    return Gate.SEND
