"""The outbox consumer: one durable pull consumer, one lane per chat (sequential inside,
parallel across chats), ack only after the delivery record and the report are stored."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import propagate, trace
from pydantic import ValidationError

from cctelegram_common import subjects
from cctelegram_common.consumers import PullFetcher
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.outbox import (
    DeadLetter,
    DeliveryOutcome,
    DeliveryReported,
    OutboxMessage,
)
from cctelegram_common.logging import get_logger
from cctelegram_notifier import metrics
from cctelegram_notifier.coalesce import merge_key, plan
from cctelegram_notifier.delivery import (
    DeliveryInterruptedError,
    DeliveryResult,
    DeliveryService,
    FailureReason,
    Interrupter,
    TokenRejectedError,
)
from cctelegram_notifier.publishing import (
    Publisher,
    patiently,
    publish_dead_letter,
    publish_report,
)
from cctelegram_notifier.settings import CoalesceSettings, OutboxSettings
from cctelegram_notifier.store import DeliveryStore

log = get_logger(__name__)
tracer = trace.get_tracer("cctelegram.notifier")

# A chat whose lane is full gets its new messages back after this long (order is kept:
# nothing newer for that chat is accepted before they return).
OVERFLOW_RETRY_S = 5.0
# A message whose bookkeeping failed (NATS away for longer than `patiently` waits) is
# handed back this much later.
BOOKKEEPING_RETRY_S = 1.0
TOKEN_REJECTED_RETRY_S = 30.0
# A merged message Telegram refuses with these is sent again original by original: merging
# must never make a notification fail that would have gone through alone.
UNMERGE_ON = frozenset({FailureReason.BAD_REQUEST, FailureReason.PARSE_ENTITIES})


@dataclass
class Held:
    """One fetched outbox message this instance is responsible for until it acks or naks."""

    msg: Msg
    outbox: OutboxMessage | None
    fetched_at: float = field(default_factory=time.monotonic)


@dataclass
class Lane:
    chat_id: int
    queue: deque[Held] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    closed_until: float = 0.0


@dataclass
class Counters:
    sent: int = 0
    failed: int = 0


class OutboxConsumer:
    """Fetches outbox messages and delivers each chat's messages in order.

    - per-chat order: one lane (task) per chat handles its messages one after another;
    - parallel chats: lanes run concurrently; the scheduler decides who may call when;
    - a slow or rate-limited chat blocks only its lane; past ``chat_backlog`` held messages
      its newer messages go back to NATS for a while instead of filling ``max_ack_pending``;
    - held messages are kept alive with ``in_progress`` so AckWait only fires on a crash
      (a lane at a time, head first: a crash hands a chat's messages back in order);
    - bursts coalesced (``coalesce.enabled``): when the head of a lane is a plain notification,
      the lane first waits until the chat may be called, then sends the head and the plain
      notifications right behind it as one message; a card with buttons ends the run and
      keeps its place. Each original is recorded, reported and acked as itself.
    """

    def __init__(
        self,
        js: JetStreamContext,
        delivery: DeliveryService,
        store: DeliveryStore,
        publisher: Publisher,
        settings: OutboxSettings,
        interrupter: Interrupter,
        *,
        on_token_rejected: Callable[[str], None] | None = None,
        coalesce: CoalesceSettings | None = None,
    ) -> None:
        self.delivery = delivery
        self.coalesce = coalesce if coalesce is not None else CoalesceSettings(enabled=False)
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.interrupter = interrupter
        self.on_token_rejected = on_token_rejected
        self.lanes: dict[int, Lane] = {}
        self.counters = Counters()
        self.fetcher = PullFetcher(
            js, subjects.STREAM_OUTBOX, self.consumer_config(), settings.fetch_timeout_s
        )
        self._fetching = asyncio.Event()  # set = fetch; cleared = paused / token rejected
        self._capacity = asyncio.Event()
        self._capacity.set()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._held = 0  # messages in all lanes (kept as a count: asked once per message)

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def held(self) -> int:
        return self._held

    @property
    def fetching(self) -> bool:
        return self._fetching.is_set()

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=subjects.CONSUMER_NOTIFIER_OUTBOX,
            durable_name=subjects.CONSUMER_NOTIFIER_OUTBOX,
            description="notifier: outbox → Telegram",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            # Dead-lettering is ours (with reason and attempts); never let NATS stop delivering.
            max_deliver=-1,
            max_ack_pending=self.settings.max_ack_pending,
            filter_subject=subjects.OUTBOX_ALL,
        )

    @property
    def subscription(self) -> JetStreamContext.PullSubscription | None:
        return self.fetcher.subscription

    async def start(self, *, fetching: bool) -> None:
        await self.fetcher.subscribe()
        if fetching:
            self._fetching.set()
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name="outbox-fetch"),
            asyncio.create_task(self._keep_alive_loop(), name="outbox-keepalive"),
        ]

    async def pause(self) -> None:
        """Fetch nothing more; finish the calls already made; hand the rest back to NATS."""
        self._fetching.clear()
        await self.drain()

    def resume(self) -> None:
        if not self._closing:
            self._fetching.set()

    async def drain(self) -> None:
        """Interrupt every wait, let in-flight Bot API calls finish, nak what is left."""
        self.interrupter.event.set()
        try:
            tasks = [lane.task for lane in self.lanes.values() if lane.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.interrupter.event.clear()

    async def stop(self) -> None:
        self._closing = True
        await self.pause()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.fetcher.unsubscribe()

    # --- fetching --------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        while not self._closing:
            await self._fetching.wait()
            free = self.settings.max_ack_pending - self.held
            if free <= 0:
                self._capacity.clear()
                await self._capacity.wait()
                continue
            messages = await self.fetcher.fetch(min(free, self.settings.fetch_batch))
            for msg in messages:
                await self._dispatch(msg)

    async def _dispatch(self, msg: Msg) -> None:
        if not self._fetching.is_set():
            await _nak(msg)  # paused while the fetch was out: give it straight back
            return
        try:
            outbox: OutboxMessage | None = OutboxMessage.model_validate_json(msg.data)
        except ValidationError as error:
            log.error("outbox_invalid_payload", subject=msg.subject, errors=error.error_count())
            outbox = None
        chat_id = outbox.chat_id if outbox is not None else 0
        lane = self.lanes.get(chat_id)
        if lane is None:
            lane = self.lanes[chat_id] = Lane(chat_id)
        now = time.monotonic()
        if len(lane.queue) >= self.settings.chat_backlog or now < lane.closed_until:
            # Keep order: until these come back, nothing newer for this chat is taken either.
            lane.closed_until = max(lane.closed_until, now + OVERFLOW_RETRY_S + 0.5)
            await _nak(msg, OVERFLOW_RETRY_S)
            return
        lane.queue.append(Held(msg, outbox))
        self._held += 1
        metrics.OUTBOX_IN_FLIGHT.set(self._held)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._run_lane(lane), name=f"lane-{chat_id}")

    # --- one chat --------------------------------------------------------------------------
    async def _run_lane(self, lane: Lane) -> None:
        try:
            while lane.queue:
                try:
                    done = await self._next(lane)
                except DeliveryInterruptedError:
                    await self._hand_back(lane)
                    return
                except TokenRejectedError as error:
                    log.error("telegram_token_rejected", error=str(error))
                    await self._hand_back(lane, TOKEN_REJECTED_RETRY_S)
                    if self.on_token_rejected is not None:
                        self.on_token_rejected(str(error))
                    return
                except Exception as error:
                    # NATS away while recording or reporting: the next delivery finds the
                    # record (if written) and only reports and acks.
                    log.warning(
                        "outbox_bookkeeping_failed", chat_id=lane.chat_id, error=repr(error)
                    )
                    await self._hand_back(lane, BOOKKEEPING_RETRY_S)
                    return
                for _ in range(done):
                    lane.queue.popleft()
                    self._held -= 1
                metrics.OUTBOX_IN_FLIGHT.set(self._held)
        finally:
            if not lane.queue and self.lanes.get(lane.chat_id) is lane:
                del self.lanes[lane.chat_id]
            metrics.OUTBOX_IN_FLIGHT.set(self.held)
            self._capacity.set()

    async def _hand_back(self, lane: Lane, delay_s: float | None = None) -> None:
        while lane.queue:
            held = lane.queue.popleft()
            self._held -= 1
            await _nak(held.msg, delay_s)

    async def _next(self, lane: Lane) -> int:
        """Deliver the head of the lane, alone or with the plain notifications behind it;
        returns how many held messages (from the head) are finished."""
        head = lane.queue[0]
        if self.coalesce.enabled and head.outbox is not None and merge_key(head.outbox):
            # Whatever arrives while the chat's window is closed joins this call.
            await self.delivery.scheduler.chat_ready(head.outbox.chat_id)
            waiting = [
                held.outbox
                for held in itertools.takewhile(lambda held: held.outbox is not None, lane.queue)
                if held.outbox is not None
            ]
            count = plan(
                waiting,
                max_utf16=self.coalesce.max_chars,
                max_entities=self.coalesce.max_entities,
                max_messages=self.coalesce.max_messages,
            )
            if count > 1:
                await self._handle_merged(list(itertools.islice(lane.queue, count)))
                return count
        await self._handle(head)
        return 1

    async def _handle_merged(self, batch: list[Held]) -> None:
        """Several plain notifications of one chat as one Telegram message. Already recorded
        ones (a redelivery after a crash) are only reported; the rest share one call, and
        each is then recorded, reported and acked as itself with the carrying message id."""
        outboxes = [held.outbox for held in batch if held.outbox is not None]
        context = propagate.extract(dict(batch[0].msg.headers or {}))
        with tracer.start_as_current_span(
            "telegram deliver",
            context=context,
            attributes={
                "cctg.outbox_id": outboxes[0].outbox_id,
                "cctg.chat_id": outboxes[0].chat_id,
                "cctg.operation": outboxes[0].operation.value,
                "cctg.coalesced": len(outboxes),
            },
        ):
            records = await asyncio.gather(
                *(self.store.get_record(outbox.outbox_id) for outbox in outboxes)
            )
            finished: list[tuple[Held, OutboxMessage, DeliveryResult]] = []
            fresh: list[tuple[Held, OutboxMessage]] = []
            # The same outbox message held twice (handed out again while we held it) is
            # sent once: the later copy ends like a redelivery of a recorded message.
            twins: list[tuple[Held, OutboxMessage]] = []
            for held, outbox, record in zip(batch, outboxes, records, strict=True):
                given_up = self._redelivered_too_often(held.msg, outbox)
                if given_up is not None:
                    finished.append((held, outbox, given_up))
                elif record is not None:
                    finished.append((held, outbox, DeliveryResult.recorded(record)))
                elif any(outbox.outbox_id == other.outbox_id for _, other in fresh):
                    twins.append((held, outbox))
                else:
                    fresh.append((held, outbox))
            await self._finish_all(finished)
            if not fresh:
                return
            result = await self.delivery.deliver_merged([outbox for _, outbox in fresh])
            if len(fresh) > 1 and result.reason in UNMERGE_ON:
                log.info(
                    "coalesced_message_refused_sending_one_by_one",
                    chat_id=outboxes[0].chat_id,
                    count=len(fresh),
                    error=result.error,
                )
                for held, _ in fresh + twins:
                    await self._handle(held)
                return
            if len(fresh) > 1 and result.outcome is DeliveryOutcome.SENT:
                metrics.COALESCED.inc(len(fresh))
            again = replace(result, already_recorded=True)
            await self._finish_all(
                [(held, outbox, result) for held, outbox in fresh]
                + [(held, outbox, again) for held, outbox in twins]
            )

    async def _finish_all(self, finished: list[tuple[Held, OutboxMessage, DeliveryResult]]) -> None:
        await asyncio.gather(
            *(self._finish(held.msg, outbox, result) for held, outbox, result in finished)
        )

    async def _handle(self, held: Held) -> None:
        msg, outbox = held.msg, held.outbox
        if outbox is None:
            # Not an OutboxMessage at all: retrying cannot help and a DeadLetter cannot hold it.
            metrics.DEAD_LETTERS.labels(FailureReason.INVALID_PAYLOAD.value).inc()
            await msg.term()
            return
        context = propagate.extract(dict(msg.headers or {}))
        with tracer.start_as_current_span(
            "telegram deliver",
            context=context,
            attributes={
                "cctg.outbox_id": outbox.outbox_id,
                "cctg.chat_id": outbox.chat_id,
                "cctg.operation": outbox.operation.value,
            },
        ):
            result = self._redelivered_too_often(msg, outbox)
            if result is None:
                result = await self.delivery.deliver(outbox)
            await self._finish(msg, outbox, result)

    def _redelivered_too_often(self, msg: Msg, outbox: OutboxMessage) -> DeliveryResult | None:
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        if deliveries <= self.settings.max_deliveries:
            return None
        return DeliveryResult(
            DeliveryOutcome.FAILED,
            outbox.chat_id,
            attempts=deliveries,
            reason=FailureReason.REDELIVERED_TOO_OFTEN,
            error=f"handed out {deliveries} times",
        )

    async def _finish(self, msg: Msg, outbox: OutboxMessage, result: DeliveryResult) -> None:
        """Report, then ack (the delivery record is already written): a crash before the ack
        only causes a redelivery that finds the record and is not sent again."""
        if result.outcome is DeliveryOutcome.FAILED:
            reason = result.reason.value if result.reason else "failed"
            metrics.DEAD_LETTERS.labels(reason).inc()
            log.warning(
                "outbox_dead_letter",
                outbox_id=outbox.outbox_id,
                chat_id=outbox.chat_id,
                reason=result.dead_letter_reason,
                attempts=result.attempts,
            )
            dead = DeadLetter(
                outbox_message=outbox,
                reason=result.dead_letter_reason,
                error_code=result.error_code,
                attempts=result.attempts,
            )
            await patiently(lambda: publish_dead_letter(self.publisher, dead))
        report = DeliveryReported(
            outbox_id=outbox.outbox_id,
            event_id=outbox.event_id,
            approval_id=outbox.approval_id,
            chat_id=outbox.chat_id,
            operation=outbox.operation,
            outcome=result.outcome,
            telegram_message_ids=result.telegram_message_ids,
            error=result.dead_letter_reason if result.reason else None,
            error_code=result.error_code,
            attempts=max(result.attempts, 1),
            migrated_to_chat_id=result.migrated_to_chat_id,
            submitted_at=outbox.created_at,
        )
        await patiently(lambda: publish_report(self.publisher, report))
        await msg.ack()
        if result.already_recorded:
            metrics.DUPLICATES_SKIPPED.inc()
            return
        if result.outcome is DeliveryOutcome.SENT:
            self.counters.sent += 1
            metrics.DELIVERY_LATENCY.observe(
                max(0.0, (utc_now() - outbox.created_at).total_seconds())
            )
        else:
            self.counters.failed += 1

    # --- keeping held messages alive -------------------------------------------------------
    async def _keep_alive_loop(self) -> None:
        period = max(0.5, self.settings.ack_wait_s / 3)
        while not self._closing:
            await asyncio.sleep(period)
            for held in due_for_keep_alive(self.lanes.values(), time.monotonic(), period):
                with contextlib.suppress(Exception):
                    await held.msg.in_progress()


def due_for_keep_alive(lanes: Iterable[Lane], now: float, period: float) -> list[Held]:
    """What to send ``in_progress`` for: every held message of each lane whose head (its
    oldest) was fetched at least ``period`` ago, lane by lane, head first.

    After a crash NATS hands messages back in the order their ack wait ran out. Refreshing
    only the old enough ones would give a lane's head a later deadline than the messages
    fetched just after it, and the next instance would get (and send) them before the head:
    a whole lane, in order, keeps the deadlines in the chat's stream order.
    """
    return [
        held
        for lane in list(lanes)
        if lane.queue and now - lane.queue[0].fetched_at >= period
        for held in list(lane.queue)
        if not held.msg.is_acked
    ]


async def _nak(msg: Msg, delay_s: float | None = None) -> None:
    with contextlib.suppress(Exception):
        await msg.nak(delay=delay_s)
