"""JetStream publishes of the notifier (reports, dead letters, updates)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import nats.errors

from cctelegram_common import subjects
from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.outbox import DeadLetter, DeliveryReported
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_common.resilience import retry_async

# NATS writes that record what Telegram already accepted are retried this long: a NATS
# restart takes a few seconds, and giving up early turns into a duplicate send later.
PATIENCE_S = 20.0


async def patiently(operation: Callable[[], Awaitable[None]]) -> None:
    """Run a NATS write, retrying through a short outage (a restart, a leader change)."""
    await retry_async(
        operation,
        attempts=1000,
        max_total_s=PATIENCE_S,
        base_s=0.2,
        cap_s=2.0,
        retry_on=lambda error: isinstance(error, nats.errors.Error | OSError | TimeoutError),
    )


class Publisher(Protocol):
    async def publish(self, subject: str, payload: Contract, *, msg_id: str, stream: str) -> None:
        """Store ``payload`` on ``stream``; returns after the PubAck (dedup by ``msg_id``)."""


async def publish_report(publisher: Publisher, report: DeliveryReported) -> None:
    await publisher.publish(
        subjects.DELIVERY_REPORTED,
        report,
        msg_id=f"delivery-{report.outbox_id}",
        stream=subjects.STREAM_DELIVERIES,
    )


async def publish_dead_letter(publisher: Publisher, dead: DeadLetter) -> None:
    await publisher.publish(
        subjects.DEAD_LETTER_OUTBOX,
        dead,
        msg_id=f"dead-{dead.outbox_message.outbox_id}",
        stream=subjects.STREAM_DEAD_LETTER,
    )


async def publish_update(publisher: Publisher, update: InboundUpdate) -> None:
    await publisher.publish(
        subjects.TELEGRAM_UPDATES,
        update,
        msg_id=update.msg_id,
        stream=subjects.STREAM_UPDATES,
    )
