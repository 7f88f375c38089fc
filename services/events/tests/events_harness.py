"""Test helpers of the events tests: an in-process events service on a real NATS, a tap on the
outbox, and in-memory fakes of the ports (``FakeKv``, ``RecordingPublisher``, ...)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.outbox import OutboxMessage
from cctelegram_common.contracts.responses import ResponseRecord
from cctelegram_common.service import Service
from cctelegram_events.app import create_app
from cctelegram_events.ports import CasConflictError, KvEntry
from cctelegram_events.settings import EventsSettings


def unique_user_ids(count: int = 2) -> tuple[int, ...]:
    """Telegram user ids no other test uses (tests share one NATS server)."""
    return tuple(10**9 + secrets.randbelow(8 * 10**11) for _ in range(count))


@dataclass
class OutboxTap:
    """Core-NATS subscriptions on chats' outbox subjects: sees what the events service queues
    without consuming from the work-queue stream (the notifier's job)."""

    messages: list[OutboxMessage] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, msg: Msg) -> None:
        async with self.arrived:
            self.messages.append(OutboxMessage.model_validate_json(msg.data))
            self.arrived.notify_all()

    async def wait_for(
        self, predicate: Callable[[list[OutboxMessage]], bool], timeout_s: float = 30.0
    ) -> list[OutboxMessage]:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: predicate(self.messages)), timeout_s
            )
            return list(self.messages)


@dataclass
class EventsHarness:
    service: Service
    settings: EventsSettings
    nc: Client
    tap: OutboxTap
    users: tuple[int, ...]


@contextlib.asynccontextmanager
async def running_events(nats_url: str, **overrides: Any) -> AsyncIterator[EventsHarness]:
    """The events service in this process against ``nats_url``, with fresh allowed users."""
    users = overrides.pop("allowed_users", None) or unique_user_ids(3)
    settings = EventsSettings(
        nats={"urls": [nats_url]},
        allowed_users=users,
        callback_secret="test-callback-secret-0123456789",
        expiry_interval_s=0.2,
        **overrides,
    )
    service = create_app(settings)
    await asyncio.wait_for(service.connect_forever(), 30)
    nc = await nats.connect(nats_url)
    tap = OutboxTap()
    for user in users:
        await nc.subscribe(subjects.outbox_subject(user), cb=tap.on_message)
    try:
        yield EventsHarness(service, settings, nc, tap, users)
    finally:
        await nc.drain()
        await service.stop()


@pytest.fixture
async def events_harness(nats_url: str) -> AsyncIterator[EventsHarness]:
    async with running_events(nats_url) as harness:
        yield harness


# --- in-memory fakes for unit tests --------------------------------------------------------


class FakeKv:
    """``KvStore`` in memory with the same revision / compare-and-set rules as JetStream KV."""

    def __init__(self) -> None:
        self.entries: dict[str, KvEntry] = {}
        # The per-key TTL of each key's last write (None = kept).
        self.ttls: dict[str, float | None] = {}
        self._revision = 0

    def _next(self) -> int:
        self._revision += 1
        return self._revision

    async def get(self, key: str) -> KvEntry | None:
        return self.entries.get(key)

    async def create(self, key: str, value: bytes, *, ttl_s: float | None = None) -> int:
        if key in self.entries:
            raise CasConflictError(key)
        return await self.put(key, value, ttl_s=ttl_s)

    async def update(
        self, key: str, value: bytes, revision: int, *, ttl_s: float | None = None
    ) -> int:
        current = self.entries.get(key)
        if current is None or current.revision != revision:
            raise CasConflictError(key)
        return await self.put(key, value, ttl_s=ttl_s)

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> int:
        revision = self._next()
        self.entries[key] = KvEntry(key, value, revision)
        self.ttls[key] = ttl_s
        return revision

    async def delete(self, key: str) -> None:
        self.entries.pop(key, None)
        self.ttls.pop(key, None)

    async def keys(self, pattern: str = ">") -> list[str]:
        if pattern == ">":
            return list(self.entries)
        prefix = pattern.removesuffix(">")
        return [key for key in self.entries if key.startswith(prefix)]


@dataclass
class RecordingPublisher:
    """``Publisher`` that keeps what was published, deduplicating by msg id like JetStream."""

    published: list[tuple[str, BaseModel]] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)

    async def publish(self, subject: str, payload: BaseModel, *, msg_id: str, stream: str) -> None:
        if msg_id in self.seen_ids:
            return
        self.seen_ids.add(msg_id)
        self.published.append((subject, payload))

    def outbox(self) -> list[OutboxMessage]:
        return [p for _, p in self.published if isinstance(p, OutboxMessage)]


@dataclass
class MemoryResponseReader:
    """``ResponseReader`` over what a RecordingPublisher stored on the responses stream."""

    publisher: RecordingPublisher

    async def since(self, start: datetime) -> list[ResponseRecord]:
        return [
            payload
            for _, payload in self.publisher.published
            if isinstance(payload, ResponseRecord) and payload.recorded_at >= start
        ]


@dataclass
class ManualClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
