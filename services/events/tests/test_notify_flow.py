"""Submitted events reach every allowed chat's outbox once, and delivery reports set status."""

from __future__ import annotations

import asyncio
import uuid

from events_harness import EventsHarness, running_events

from cctelegram_common import subjects
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import EventState, EventStatus, SubmitEvent
from cctelegram_common.contracts.outbox import DeliveryOutcome, DeliveryReported, Operation


async def _publish(harness: EventsHarness, subject: str, payload: object, msg_id: str) -> None:
    js = harness.nc.jetstream()
    await js.publish(subject, payload.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})  # type: ignore[attr-defined]


async def _status(harness: EventsHarness, event_id: str, want: EventState) -> EventStatus:
    kv = await harness.nc.jetstream().key_value(subjects.KV_EVENT_STATUS)
    for _ in range(200):
        try:
            entry = await kv.get(event_id)
        except Exception:
            entry = None
        if entry is not None and entry.value:
            status = EventStatus.model_validate_json(entry.value)
            if status.state is want:
                return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{event_id} never reached {want}")


async def test_message_goes_to_every_allowed_chat_once_and_reports_mark_it_sent(
    events_harness: EventsHarness,
) -> None:
    event = SubmitEvent(
        event_id=uuid.uuid4().hex,
        type=EventType.INFO_NOTIFICATION,
        title="Deploy <finished> & 🎉",
        description="all good",
        client_id="client-a",
    )
    # The same command twice (a retried tool call): one message per chat.
    await _publish(events_harness, subjects.EVENT_SUBMIT, event, event.event_id)
    await _publish(events_harness, subjects.EVENT_SUBMIT, event, event.event_id)
    users = events_harness.users
    messages = await events_harness.tap.wait_for(lambda m: len(m) >= len(users))
    await asyncio.sleep(0.3)
    messages = events_harness.tap.messages
    assert sorted(m.chat_id for m in messages) == sorted(users)
    assert all(m.operation is Operation.SEND_MESSAGE for m in messages)
    assert all(m.outbox_id == f"{event.event_id}:{m.chat_id}:0" for m in messages)
    assert "Deploy &lt;finished&gt; &amp; 🎉" in (messages[0].text or "")

    status = await _status(events_harness, event.event_id, EventState.QUEUED)
    assert set(status.chat_ids) == set(users)

    for index, message in enumerate(messages):
        report = DeliveryReported(
            outbox_id=message.outbox_id,
            event_id=event.event_id,
            chat_id=message.chat_id,
            operation=Operation.SEND_MESSAGE,
            outcome=DeliveryOutcome.SENT,
            telegram_message_ids=(100 + index,),
        )
        await _publish(events_harness, subjects.DELIVERY_REPORTED, report, message.outbox_id)
    status = await _status(events_harness, event.event_id, EventState.SENT)
    assert sorted(status.telegram_message_ids) == [100 + i for i in range(len(users))]


async def test_a_failed_delivery_is_reported_with_its_error(events_harness: EventsHarness) -> None:
    event = SubmitEvent(
        event_id=uuid.uuid4().hex,
        type=EventType.BUILD_FAILED,
        title="Build failed",
        client_id="client-b",
        chat_ids=(events_harness.users[0],),
    )
    await _publish(events_harness, subjects.EVENT_SUBMIT, event, event.event_id)
    [message] = await events_harness.tap.wait_for(lambda m: len(m) >= 1)
    report = DeliveryReported(
        outbox_id=message.outbox_id,
        event_id=event.event_id,
        chat_id=message.chat_id,
        operation=Operation.SEND_MESSAGE,
        outcome=DeliveryOutcome.FAILED,
        error="Forbidden: bot was blocked by the user",
        error_code=403,
    )
    await _publish(events_harness, subjects.DELIVERY_REPORTED, report, message.outbox_id)
    status = await _status(events_harness, event.event_id, EventState.FAILED)
    assert status.last_error == "Forbidden: bot was blocked by the user"


async def test_a_burst_reaches_each_chat_in_the_order_it_was_stored(nats_url: str) -> None:
    """Events stored back to back are handled in batches (outbox publishes pipelined): each
    chat's outbox still gets them in stream order. Guards the assumption that nats-py writes
    a request before it first waits, should an upgrade change that."""
    async with running_events(nats_url, submit_linger_ms=20) as harness:
        js = harness.nc.jetstream()
        events = [
            SubmitEvent(
                event_id=uuid.uuid4().hex,
                type=EventType.INFO_NOTIFICATION,
                title=f"n{index}",
                client_id="client-a",
            )
            for index in range(60)
        ]
        acks = [
            await js.publish_async(
                subjects.EVENT_SUBMIT,
                event.model_dump_json().encode(),
                headers={"Nats-Msg-Id": event.event_id},
            )
            for event in events
        ]
        await asyncio.gather(*acks)
        users = harness.users
        messages = await harness.tap.wait_for(lambda m: len(m) >= len(events) * len(users))
    for user in users:
        titles = [m.text for m in messages if m.chat_id == user]
        assert titles == [f"ℹ️ <b>n{index}</b>" for index in range(len(events))]  # noqa: RUF001
