"""What the notifier does on NATS: the one declaration its subscriptions and the AsyncAPI
document are made from (see ``cctelegram_common.messaging``). What it publishes for the
suite (delivery reports, inbound updates) is declared where it is consumed (events)."""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import BridgeControl
from cctelegram_common.contracts.outbox import DeadLetter, OutboxMessage
from cctelegram_common.messaging import Consume, Listen, Publish, ServiceContract

CONTRACT = ServiceContract(
    service="notifier",
    consumes=(
        Consume(
            subjects.outbox_consumer(None),
            subjects.STREAM_OUTBOX,
            subjects.outbox_bot_filter(None),
            OutboxMessage,
            ("events",),
            "One Telegram operation for one chat of the default bot (work queue; per-chat "
            "order by subject).",
            own_loop=True,
            address=f"{subjects.OUTBOX_CHAT_PREFIX}.{{chat}}",
        ),
        Consume(
            subjects.outbox_consumer("{bot}"),
            subjects.STREAM_OUTBOX,
            subjects.outbox_bot_filter("{bot}"),
            OutboxMessage,
            ("events",),
            "One Telegram operation for one chat of a named bot (its own consumer and budget).",
            own_loop=True,
            address=f"{subjects.OUTBOX_BOT_PREFIX}.{{bot}}.{{chat}}",
        ),
    ),
    listens=(
        Listen(
            subjects.BRIDGE_CONTROL,
            BridgeControl,
            ("bridge-manager",),
            "Pause / resume / restart every notifier instance (core NATS).",
        ),
    ),
    publishes=(
        Publish(
            subjects.DEAD_LETTER_OUTBOX,
            DeadLetter,
            "event",
            "An outbox message that could not be delivered, with reason and attempts.",
            subjects.STREAM_DEAD_LETTER,
            consumers=("operators",),
        ),
    ),
)
