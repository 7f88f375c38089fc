"""Thin NATS adapters: decode, call the domain services in the runtime, publish or reply."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from nats.js.api import ConsumerConfig

from cctelegram_common import subjects
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.outbox import DeliveryReported
from cctelegram_events.runtime import RuntimeHolder

# Streams exist already (Service.connect_forever provisions them): never let FastStream
# re-declare them with only its own subject.
EVENTS_STREAM = JStream(subjects.STREAM_EVENTS, declare=False)
DELIVERIES_STREAM = JStream(subjects.STREAM_DELIVERIES, declare=False)
UPDATES_STREAM = JStream(subjects.STREAM_UPDATES, declare=False)


def _durable(max_deliver: int = 50) -> ConsumerConfig:
    return ConsumerConfig(ack_wait=30, max_deliver=max_deliver)


def register(broker: NatsBroker, holder: RuntimeHolder) -> None:
    """Attach every subscriber of the events service to ``broker``."""

    @broker.subscriber(
        subjects.EVENT_SUBMIT,
        stream=EVENTS_STREAM,
        durable=subjects.CONSUMER_EVENTS_SUBMIT,
        pull_sub=PullSub(batch_size=16, timeout=5.0),
        config=_durable(),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="events-submit",
        description="Render and route submitted notifications",
    )
    async def on_submit(event: SubmitEvent) -> None:
        await holder.get().notifications.submit(event)

    @broker.subscriber(
        subjects.DELIVERY_REPORTED,
        stream=DELIVERIES_STREAM,
        durable=subjects.CONSUMER_EVENTS_DELIVERIES,
        pull_sub=PullSub(batch_size=32, timeout=5.0),
        config=_durable(),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="events-deliveries",
        description="Fold the notifier's delivery reports into event status",
    )
    async def on_delivery(report: DeliveryReported) -> None:
        await holder.get().notifications.on_delivery(report)
