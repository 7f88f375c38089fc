"""Test helpers: an in-process events service on a real NATS and a tap on the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from cctelegram_common import subjects
from cctelegram_common.contracts.outbox import OutboxMessage
from cctelegram_common.service import Service
from cctelegram_events.app import create_app
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
        self, predicate: Callable[[list[OutboxMessage]], bool], timeout_s: float = 10.0
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
        callback_secret="test-callback-secret-0123456789",  # noqa: S106
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
