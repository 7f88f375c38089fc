"""The gateway's send tools store a SubmitEvent (after the PubAck) that events delivers."""

from __future__ import annotations

import asyncio

import pytest
from events_harness import EventsHarness
from faststream.nats import NatsBroker

from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Principal, Role
from cctelegram_common.contracts.events import EventState
from cctelegram_common.contracts.tools import GetEventStatusInput, SendMessageInput
from cctelegram_gateway.readmodels import EventsReadModels
from cctelegram_gateway.registry import ToolContext, ToolError
from cctelegram_gateway.tools.events import get_event_status, send_telegram_message


def principal(client_id: str, role: Role = Role.AGENT) -> Principal:
    return Principal(
        client_id=client_id, key_id=f"k{client_id}", role=role, permissions=ROLE_PERMISSIONS[role]
    )


async def test_send_telegram_message_with_idempotency_key_sends_once(
    events_harness: EventsHarness, nats_url: str
) -> None:
    broker = NatsBroker(nats_url)
    await broker.connect()
    try:
        ctx = ToolContext(
            principal=principal("agent-1"),
            request_id="r1",
            broker=broker,
            reads=EventsReadModels(broker),
        )
        params = SendMessageInput(message="Hello from the agent 👋", idempotency_key="hello-1")
        first = await send_telegram_message(ctx, params)
        second = await send_telegram_message(ctx, params)
        assert first.success
        assert first.event_id == second.event_id

        await events_harness.tap.wait_for(lambda m: len(m) >= len(events_harness.users))
        await asyncio.sleep(0.3)
        assert len(events_harness.tap.messages) == len(events_harness.users)

        # The status is recorded right after the outbox publish: give it a moment.
        for _ in range(100):
            try:
                view = await get_event_status(ctx, GetEventStatusInput(event_id=first.event_id))
                break
            except ToolError:
                await asyncio.sleep(0.05)
        assert view.state is EventState.QUEUED

        stranger = ToolContext(
            principal=principal("agent-2"),
            request_id="r2",
            broker=broker,
            reads=EventsReadModels(broker),
        )
        with pytest.raises(ToolError) as refused:
            await get_event_status(stranger, GetEventStatusInput(event_id=first.event_id))
        assert refused.value.status == 404
    finally:
        await broker.stop()
