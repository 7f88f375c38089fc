"""Reading the fleet from NATS: heartbeats and desired state (KV), the outbox, delivery reports."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue
from pydantic import ValidationError

from cctelegram_common import subjects
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.bridge import DesiredBridgeState, NotifierHeartbeat, QueueFigures
from cctelegram_common.contracts.outbox import DeliveryOutcome, DeliveryReported
from cctelegram_common.logging import get_logger

log = get_logger(__name__)

WINDOW_S = 60.0
# Compare-and-set retries when two managers (or an operator) write ``desired`` at once.
CAS_ATTEMPTS = 10


async def read_heartbeats(js: JetStreamContext, kv: KeyValue) -> list[NotifierHeartbeat]:
    """Every heartbeat still in the bucket (expired ones are gone or are delete markers)."""
    # The stream's subject list, not ``kv.keys()``: that watcher can report "no keys" when
    # it asks for consumer info before the first entry arrives.
    stream = f"KV_{subjects.KV_BRIDGE}"
    prefix = f"$KV.{subjects.KV_BRIDGE}."
    info = await js.stream_info(
        stream, subjects_filter=f"{prefix}{subjects.BRIDGE_KEY_INSTANCES_ALL}"
    )
    keys = [subject.removeprefix(prefix) for subject in (info.state.subjects or {})]
    beats: list[NotifierHeartbeat] = []
    for key in keys:
        if not key.startswith(subjects.BRIDGE_KEY_INSTANCE_PREFIX):
            continue
        try:
            entry = await kv.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            continue  # expired between listing and reading
        if not entry.value:
            continue
        try:
            beats.append(NotifierHeartbeat.model_validate_json(entry.value))
        except ValidationError:
            log.warning("heartbeat_unreadable", key=key)
    return beats


class DesiredStateStore:
    """``desired`` in the bridge bucket, changed only with compare-and-set."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def read(self) -> tuple[DesiredBridgeState, int | None]:
        """The desired state and its revision (None when never written: running)."""
        try:
            entry = await self.kv.get(subjects.BRIDGE_KEY_DESIRED)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return DesiredBridgeState(paused=False), None
        if not entry.value:
            return DesiredBridgeState(paused=False), None
        try:
            return DesiredBridgeState.model_validate_json(entry.value), entry.revision
        except ValidationError:
            log.warning("desired_state_unreadable")
            return DesiredBridgeState(paused=False), entry.revision

    async def set_paused(self, paused: bool, changed_by: str) -> DesiredBridgeState:
        """Write ``paused``; retried on a concurrent writer's revision, never blind."""
        state = DesiredBridgeState(paused=paused, changed_by=changed_by, changed_at=utc_now())
        value = state.model_dump_json().encode()
        for _attempt in range(CAS_ATTEMPTS):
            _current, revision = await self.read()
            try:
                if revision is None:
                    await self.kv.create(subjects.BRIDGE_KEY_DESIRED, value)
                else:
                    await self.kv.update(subjects.BRIDGE_KEY_DESIRED, value, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # someone wrote between our read and write: read again
            return state
        raise RuntimeError("desired state kept changing underneath; gave up")


class DeliveryWindow:
    """Delivery reports of the last minute, from an ordered ephemeral consumer.

    The consumer starts one minute back, so a restarted bridge-manager knows the rate at
    once; it holds no durable state, and nats-py recreates it after a reconnect.
    """

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self.reports: deque[tuple[datetime, DeliveryOutcome]] = deque()
        self.last_report_at: datetime | None = None
        self._subscription: JetStreamContext.PushSubscription | None = None

    def record(self, at: datetime, outcome: DeliveryOutcome) -> None:
        self.reports.append((at, outcome))
        if self.last_report_at is None or at > self.last_report_at:
            self.last_report_at = at
        self._forget_old()

    def _forget_old(self) -> None:
        horizon = self.clock() - timedelta(seconds=WINDOW_S)
        while self.reports and self.reports[0][0] < horizon:
            self.reports.popleft()

    def counts(self) -> tuple[int, int]:
        """(sent, failed) in the last minute."""
        self._forget_old()
        sent = sum(1 for _at, outcome in self.reports if outcome is DeliveryOutcome.SENT)
        return sent, len(self.reports) - sent

    async def _on_report(self, msg: Msg) -> None:
        try:
            report = DeliveryReported.model_validate_json(msg.data)
        except ValidationError:
            return
        # The stream's own timestamp: one clock for every notifier.
        stored_at = msg.metadata.timestamp if msg.metadata else report.accepted_at
        self.record(stored_at, report.outcome)

    async def start(self, js: JetStreamContext) -> None:
        # The consumer replays the last minute: start from nothing so nothing counts twice.
        self.reports.clear()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            last = await js.get_last_msg(subjects.STREAM_DELIVERIES, subjects.DELIVERY_REPORTED)
            self.last_report_at = last.time
        self._subscription = await js.subscribe(
            subjects.DELIVERIES_ALL,
            stream=subjects.STREAM_DELIVERIES,
            cb=self._on_report,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=self.clock() - timedelta(seconds=WINDOW_S),
            ),
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None


async def _message_count(js: JetStreamContext, stream: str) -> int:
    info = await js.stream_info(stream)
    return int(info.state.messages)


async def _oldest_age_s(js: JetStreamContext, first_seq: int, now: datetime) -> float | None:
    try:
        # ``next`` tolerates a first message acknowledged between stream_info and this read.
        oldest = await js.get_msg(subjects.STREAM_OUTBOX, seq=first_seq, next=True)
    except nats.js.errors.NotFoundError:
        return None
    if oldest.time is None:
        return None
    stored = oldest.time if oldest.time.tzinfo else oldest.time.replace(tzinfo=UTC)
    return round(max(0.0, (now - stored).total_seconds()), 2)


async def read_queue(
    js: JetStreamContext,
    window: DeliveryWindow,
    *,
    growing: bool = False,
    now: datetime | None = None,
) -> QueueFigures:
    """The outbox figures. In a work-queue stream a message stays stored until it is
    acknowledged, so the stored count is the depth and the consumer's ack-pending count is
    the part already handed to a notifier."""
    now = now or utc_now()
    outbox, dead_letters = await asyncio.gather(
        js.stream_info(subjects.STREAM_OUTBOX),
        _message_count(js, subjects.STREAM_DEAD_LETTER),
    )
    depth = int(outbox.state.messages)
    in_flight = 0
    with contextlib.suppress(nats.js.errors.NotFoundError):
        consumer = await js.consumer_info(subjects.STREAM_OUTBOX, subjects.CONSUMER_NOTIFIER_OUTBOX)
        in_flight = min(depth, int(consumer.num_ack_pending or 0))
    oldest = await _oldest_age_s(js, outbox.state.first_seq, now) if depth else None
    sent, failed = window.counts()
    return QueueFigures(
        depth=depth,
        waiting=depth - in_flight,
        in_flight=in_flight,
        oldest_waiting_age_s=oldest,
        dead_letters=dead_letters,
        delivered_last_minute=sent,
        failed_last_minute=failed,
        delivery_rate_per_s=round(sent / WINDOW_S, 2),
        growing=growing,
    )
