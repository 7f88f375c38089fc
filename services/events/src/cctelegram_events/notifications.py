"""Submitted events → outbox messages and event status; delivery reports → status; digests."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
from asyncio import Future
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import Field

from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import EventState, EventStatus, SubmitEvent
from cctelegram_common.contracts.files import FileKind
from cctelegram_common.contracts.modes import Mode
from cctelegram_common.contracts.outbox import (
    DeliveryOutcome,
    DeliveryReported,
    Operation,
    OutboxBookkeeping,
    OutboxMessage,
    outbox_id,
)
from cctelegram_common.logging import get_logger
from cctelegram_events import metrics
from cctelegram_events.modes import (
    Gate,
    ModeStore,
    MutedItem,
    QuietHours,
    gate,
    is_notable,
    note_suppressed,
)
from cctelegram_events.ports import (
    CasConflictError,
    Clock,
    KvStore,
    Publisher,
    key_part,
    load,
    publish_outbox,
)
from cctelegram_events.rendering import Style, render_event, render_message_parts, severity_of
from cctelegram_events.routing import (
    Destination,
    RouteBook,
    default_destinations,
    destinations_of,
    parse_token,
)
from cctelegram_events.telegram_html import safe, split_html
from cctelegram_events.templates import TASK_LIVE, TASK_TERMINAL, template_for

log = get_logger(__name__)

# Telegram's caption limit (media messages), in UTF-16 units.
MAX_CAPTION_UTF16 = 1024
HELD_PREFIX = "held."
TASK_CARD_PREFIX = "taskcard."
CAS_ATTEMPTS = 20


class HeldEvent(Contract):
    """Value of ``cctg_state[held.<event_id>]``: waits for the end of quiet hours."""

    event_id: str
    client_id: str
    type: EventType
    title: str
    chat_ids: tuple[int, ...]
    held_at: str
    places: tuple[str, ...] = Field(
        default=(), description="Routed destinations (chat@bot tokens); empty = chat_ids"
    )

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.places or tuple(str(chat) for chat in self.chat_ids)


class TaskCard(Contract):
    """Value of ``cctg_state[taskcard.<client>.<task>]``: the live status card of a task."""

    event_id: str = Field(description="The event whose message is the card")
    card_outbox_ids: dict[str, str] = Field(description="chat id → outbox id of the card")


@dataclass(frozen=True)
class Route:
    """What a new event comes to: its state, what goes to the outbox, to which chats."""

    state: EventState
    messages: tuple[OutboxMessage, ...]
    chats: tuple[int, ...]
    error: str | None


StepT = TypeVar("StepT")


@dataclass
class NotificationService:
    """Turns ``SubmitEvent`` into outbox messages exactly once per event id."""

    status_kv: KvStore
    state_kv: KvStore
    publisher: Publisher
    modes: ModeStore
    clock: Clock
    allowed_users: tuple[int, ...]
    style: Style = "concise"
    live_task_cards: bool = True
    quiet_hours: QuietHours | None = None
    routes: RouteBook | None = None
    # A task's status card reference is kept this long after its last change (per-key TTL).
    history_s: float = 30 * 24 * 3600.0

    def targets(self, event: SubmitEvent) -> tuple[int, ...]:
        # A private chat's id is the user's id.
        return tuple(event.chat_ids) if event.chat_ids else self.allowed_users

    async def destinations(self, event: SubmitEvent) -> list[Destination]:
        """Explicit chats; else the routes whose rules fit; else the default route."""
        if not event.chat_ids and self.routes is not None:
            rules = await self.routes.select(
                client_id=event.client_id,
                project=event.project,
                event_type=event.type,
                severity=severity_of(event),
            )
            if rules:
                return destinations_of(
                    rules,
                    project=event.project,
                    session_key=event.session_key,
                    session_tag=event.session_tag,
                )
        return default_destinations(self.targets(event))

    async def submit(self, event: SubmitEvent) -> EventStatus:
        """Render and route one event. A redelivered or re-submitted id changes nothing."""
        (outcome,) = await self.submit_many([event])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def submit_many(
        self, events: Sequence[SubmitEvent], contexts: Sequence[contextvars.Context] | None = None
    ) -> list[EventStatus | BaseException]:
        """``submit`` for a batch, sharing its round trips: one outcome per event, in order
        (its status, or the exception that stopped it; the others go on).

        1. Whether each event was seen before: the status reads are issued together.
        2. Each new event is gated, rendered and routed *in order* (live task cards and
           held events keep state that the next event of the same task may read).
        3. Its outbox messages are published pipelined, in the same order: nats-py writes a
           request's bytes before it first waits, and tasks start in the order they were
           made, so the stream (and each chat) gets them in order.
        4. Statuses are recorded together.

        Every step of event ``i`` runs as a task in ``contexts[i]`` (its span and log context).
        """
        loop = asyncio.get_running_loop()

        def step(index: int, work: Callable[[], Coroutine[Any, Any, StepT]]) -> Future[StepT]:
            context = contexts[index] if contexts is not None else None
            return loop.create_task(work(), context=context)

        outcomes: list[EventStatus | BaseException | None] = [None] * len(events)
        seen = await asyncio.gather(
            *(
                step(i, functools.partial(load, self.status_kv, event.event_id, EventStatus))
                for i, event in enumerate(events)
            ),
            return_exceptions=True,
        )
        routes: dict[int, Route] = {}
        first_of: dict[str, int] = {}
        for i, event in enumerate(events):
            earlier = seen[i]
            if isinstance(earlier, BaseException):
                outcomes[i] = earlier
            elif earlier is not None:
                metrics.EVENTS_PROCESSED.labels("duplicate").inc()
                outcomes[i] = earlier[0]
            elif event.event_id in first_of:  # the same event twice in one batch
                metrics.EVENTS_PROCESSED.labels("duplicate").inc()
            else:
                first_of[event.event_id] = i
                try:
                    routes[i] = await step(i, functools.partial(self._route, event))
                except Exception as error:
                    outcomes[i] = error
        publishes = [
            (i, step(i, functools.partial(self._publish, message)))
            for i, route in routes.items()
            for message in route.messages
        ]
        for i, publish in publishes:
            try:
                await publish
            except Exception as error:
                outcomes[i] = error
        published = [i for i in routes if outcomes[i] is None]
        recorded = await asyncio.gather(
            *(
                step(i, functools.partial(self._record_route, events[i], routes[i]))
                for i in published
            ),
            return_exceptions=True,
        )
        for i, status in zip(published, recorded, strict=True):
            outcomes[i] = status
        finished: list[EventStatus | BaseException] = []
        for i, event in enumerate(events):
            # A duplicate within the batch ends as its first copy did.
            outcome = outcomes[i] if outcomes[i] is not None else outcomes[first_of[event.event_id]]
            assert outcome is not None
            finished.append(outcome)
        return finished

    async def _publish(self, message: OutboxMessage) -> None:
        await publish_outbox(self.publisher, message)
        metrics.OUTBOX_PUBLISHED.labels(message.operation.value).inc()

    async def _route(self, event: SubmitEvent) -> Route:
        """What to do with a new event: its state, and the outbox messages to publish."""
        places = await self.destinations(event)
        chats = tuple(dict.fromkeys(place.chat_id for place in places))
        if event.type in TASK_TERMINAL:
            metrics.TASK_COMPLETIONS.labels(event.type.value).inc()
        state = await self.modes.of(event.client_id)
        severity = severity_of(event)
        decision = gate(
            event.type, severity, state.mode, state.quiet_hours or self.quiet_hours, self.clock()
        )
        if not chats:
            return Route(
                EventState.FAILED, (), (), "no target chats: TELEGRAM_ALLOWED_USERS is empty"
            )
        if decision is Gate.SUPPRESS:
            if state.mode is Mode.MUTE:  # counted for the digest sent when it is unmuted
                item = MutedItem(
                    event_id=event.event_id, type=event.type, title=event.title, at=self.clock()
                )
                notable = is_notable(event.type, severity)
                await note_suppressed(
                    self.state_kv, self.clock, event.client_id, item, notable, chats
                )
            metrics.EVENTS_PROCESSED.labels("suppressed").inc()
            return Route(EventState.SUPPRESSED, (), chats, f"mode {state.mode}")
        if decision is Gate.HOLD:
            held = HeldEvent(
                event_id=event.event_id,
                client_id=event.client_id,
                type=event.type,
                title=event.title,
                chat_ids=chats,
                held_at=self.clock().isoformat(),
                # The digest goes through each route's bot (to the chat; topics are left out).
                places=tuple(dict.fromkeys(p.token.split("~", 1)[0] for p in places))
                if any(p.bot is not None for p in places)
                else (),
            )
            await self.state_kv.put(HELD_PREFIX + event.event_id, held.model_dump_json().encode())
            metrics.EVENTS_PROCESSED.labels("held").inc()
            return Route(EventState.HELD, (), chats, None)

        if event.attachment is not None:
            return Route(
                EventState.QUEUED, tuple(file_messages(event, places, self.style)), chats, None
            )
        parts = render_message_parts(event, self.style)
        messages = await self._live_card_messages(event, parts, places)
        if messages is None:
            messages = _sends(event, parts, places)
        return Route(EventState.QUEUED, tuple(messages), chats, None)

    async def _record_route(self, event: SubmitEvent, route: Route) -> EventStatus:
        if route.state is EventState.QUEUED:
            metrics.EVENTS_PROCESSED.labels("queued").inc()
        outbox_ids = tuple(message.outbox_id for message in route.messages)
        return await self._record(event, route.state, outbox_ids, route.chats, route.error)

    async def _record(
        self,
        event: SubmitEvent,
        state: EventState,
        outbox_ids: tuple[str, ...],
        chats: tuple[int, ...],
        error: str | None,
    ) -> EventStatus:
        status = EventStatus(
            event_id=event.event_id,
            client_id=event.client_id,
            state=state,
            type=event.type,
            outbox_ids=outbox_ids,
            chat_ids=chats,
            last_error=error,
            submitted_at=event.submitted_at,
            updated_at=self.clock(),
        )
        # Another replica may have recorded it first; the outbox ids are deterministic.
        with contextlib.suppress(CasConflictError):
            await self.status_kv.create(event.event_id, status.model_dump_json().encode())
        return status

    # --- live task cards ---------------------------------------------------------------------
    async def _live_card_messages(
        self, event: SubmitEvent, parts: list[str], places: list[Destination]
    ) -> list[OutboxMessage] | None:
        """Edits of the task's status card (plus a fresh message at the end), or None to send
        the event as ordinary messages."""
        if not (self.live_task_cards and event.task_id):
            return None
        if event.type not in TASK_LIVE and event.type not in TASK_TERMINAL:
            return None
        key = f"{TASK_CARD_PREFIX}{key_part(event.client_id)}.{key_part(event.task_id)}"
        loaded = await load(self.state_kv, key, TaskCard)
        if loaded is None:
            if event.type in TASK_TERMINAL:
                return None
            card = TaskCard(
                event_id=event.event_id,
                card_outbox_ids={
                    place.token: outbox_id(event.event_id, place.token, 0) for place in places
                },
            )
            await self.state_kv.put(key, card.model_dump_json().encode(), ttl_s=self.history_s)
            return None  # this event's own message becomes the card
        card, _revision = loaded
        if card.event_id == event.event_id:
            # This event made the card and is back (its publish failed): send it as the card.
            return None
        # The card is one message: its first part, which split_html kept valid on its own.
        card_text = parts[0]
        edits = [
            OutboxMessage(
                outbox_id=outbox_id(event.event_id, token, "card"),
                operation=Operation.EDIT_MESSAGE_TEXT,
                chat_id=parse_token(token)[0],
                bot=parse_token(token)[1],
                event_id=event.event_id,
                text=card_text,
                target_outbox_id=target,
            )
            for token, target in card.card_outbox_ids.items()
        ]
        if event.type not in TASK_TERMINAL:
            metrics.EVENTS_PROCESSED.labels("edited").inc()
            return edits
        await self.state_kv.delete(key)
        return edits + _sends(event, parts, places)

    # --- delivery reports --------------------------------------------------------------------
    async def on_delivery(self, report: DeliveryReported) -> EventStatus | None:
        """Fold one delivery report into the event's status (compare-and-set, retried)."""
        if report.event_id is None:
            return None
        for _ in range(CAS_ATTEMPTS):
            loaded = await load(self.status_kv, report.event_id, EventStatus)
            if loaded is None:
                return None
            status, revision = loaded
            if report.outbox_id not in status.outbox_ids:
                return status
            if (
                report.outbox_id in status.delivered_outbox_ids
                or report.outbox_id in status.failed_outbox_ids
            ):
                return status
            updated = _apply_report(status, report, self.clock)
            try:
                await self.status_kv.update(
                    report.event_id, updated.model_dump_json().encode(), revision
                )
            except CasConflictError:
                continue
            metrics.DELIVERY_REPORTS.labels(report.outcome.value).inc()
            return updated
        log.warning("delivery_report_cas_exhausted", event_id=report.event_id)
        return None

    # --- quiet hours digest ------------------------------------------------------------------
    async def flush_digest(self) -> int:
        """After quiet hours: one digest message per chat for everything held whose client's
        quiet hours are over. Returns how many events it covered. Safe on every replica: the
        digest's outbox ids derive from the held set, so JetStream keeps one copy."""
        keys = await self.state_kv.keys(HELD_PREFIX + ">")
        if not keys:
            return 0
        now = self.clock()
        held: list[HeldEvent] = []
        for key in sorted(keys):
            loaded = await load(self.state_kv, key, HeldEvent)
            if loaded is None:
                continue
            # Each client's own quiet hours (else the default's, else the settings').
            quiet = (await self.modes.of(loaded[0].client_id)).quiet_hours or self.quiet_hours
            if quiet is None or not quiet.active(now):
                held.append(loaded[0])
        if not held:
            return 0
        digest_id = hashlib.sha256(
            ",".join(sorted(item.event_id for item in held)).encode()
        ).hexdigest()[:20]
        by_chat: dict[str, list[HeldEvent]] = {}
        for item in held:
            for token in item.tokens:
                by_chat.setdefault(token, []).append(item)
        for chat, items in by_chat.items():
            chat_id, bot = parse_token(chat)
            lines = [f"🌙 <b>While quiet hours were on</b> ({len(items)})", ""]
            lines += [
                f"{template_for(item.type).emoji} {safe(item.title)}"
                for item in sorted(items, key=lambda i: i.held_at)
            ]
            for index, part in enumerate(split_html("\n".join(lines))):
                await publish_outbox(
                    self.publisher,
                    OutboxMessage(
                        outbox_id=outbox_id(f"digest-{digest_id}", chat, index),
                        operation=Operation.SEND_MESSAGE,
                        chat_id=chat_id,
                        bot=bot,
                        text=part,
                        bookkeeping=OutboxBookkeeping(
                            digest_of=tuple(item.event_id for item in items)[:100]
                        ),
                    ),
                )
        for item in held:
            await self._mark_digested(item.event_id, digest_id, item.tokens)
            await self.state_kv.delete(HELD_PREFIX + item.event_id)
        return len(held)

    async def _mark_digested(self, event_id: str, digest_id: str, tokens: tuple[str, ...]) -> None:
        for _ in range(CAS_ATTEMPTS):
            loaded = await load(self.status_kv, event_id, EventStatus)
            if loaded is None or loaded[0].state is not EventState.HELD:
                return
            status, revision = loaded
            updated = status.model_copy(
                update={
                    "state": EventState.QUEUED,
                    "last_error": None,
                    "outbox_ids": tuple(outbox_id(f"digest-{digest_id}", t, 0) for t in tokens),
                    "updated_at": self.clock(),
                }
            )
            try:
                await self.status_kv.update(event_id, updated.model_dump_json().encode(), revision)
                return
            except CasConflictError:
                continue


def _sends(event: SubmitEvent, parts: list[str], places: list[Destination]) -> list[OutboxMessage]:
    return [
        OutboxMessage(
            outbox_id=outbox_id(event.event_id, place.token, index),
            operation=Operation.SEND_MESSAGE,
            chat_id=place.chat_id,
            bot=place.bot,
            message_thread_id=place.message_thread_id,
            topic=place.topic,
            event_id=event.event_id,
            text=part,
        )
        for place in places
        for index, part in enumerate(parts)
    ]


def file_messages(
    event: SubmitEvent, places: list[Destination], style: Style
) -> list[OutboxMessage]:
    """A file with its rendered text: as the caption when it fits Telegram's 1024, else the
    text as messages first and the file after them without a caption."""
    attachment = event.attachment
    assert attachment is not None
    operation = (
        Operation.SEND_PHOTO if attachment.kind is FileKind.PHOTO else Operation.SEND_DOCUMENT
    )
    text = render_event(event, style)
    fits = len(split_html(text, MAX_CAPTION_UTF16)) == 1
    messages: list[OutboxMessage] = []
    for place in places:
        if not fits:
            messages += _sends(event, split_html(text), [place])
        messages.append(
            OutboxMessage(
                outbox_id=outbox_id(event.event_id, place.token, "file"),
                operation=operation,
                chat_id=place.chat_id,
                bot=place.bot,
                message_thread_id=place.message_thread_id,
                topic=place.topic,
                event_id=event.event_id,
                text=text if fits else None,
                stored_file=attachment,
                file_name=attachment.name,
            )
        )
    return messages


def _apply_report(status: EventStatus, report: DeliveryReported, clock: Clock) -> EventStatus:
    delivered = status.delivered_outbox_ids
    failed = status.failed_outbox_ids
    message_ids = status.telegram_message_ids
    last_error = status.last_error
    if report.outcome is DeliveryOutcome.SENT:
        delivered = (*delivered, report.outbox_id)
        message_ids = (*message_ids, *report.telegram_message_ids)
    else:
        failed = (*failed, report.outbox_id)
        last_error = report.error or "delivery failed"
    finished = len(delivered) + len(failed)
    if finished < len(status.outbox_ids):
        state = EventState.PARTIALLY_SENT if failed else EventState.QUEUED
    elif not failed:
        state = EventState.SENT
    elif not delivered:
        state = EventState.FAILED
    else:
        state = EventState.PARTIALLY_SENT
    return status.model_copy(
        update={
            "state": state,
            "delivered_outbox_ids": delivered,
            "failed_outbox_ids": failed,
            "telegram_message_ids": message_ids,
            "last_error": last_error,
            "updated_at": clock(),
        }
    )
