"""Modes per client on a real nats-server: client A muted while B's notification is delivered,
and unmuting A delivers one digest of what was suppressed."""

from __future__ import annotations

import asyncio
import uuid

from cctelegram_common import subjects
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.modes import Mode, ModeResult, SetModeRequest
from cctelegram_common.contracts.rpc import RpcReply
from cctelegram_events.testing import EventsHarness


async def set_mode(harness: EventsHarness, mode: Mode, client_id: str | None) -> ModeResult:
    request = SetModeRequest(mode=mode, changed_by=client_id or "admin", client_id=client_id)
    reply = await harness.nc.request(
        subjects.EVENTS_RPC_MODE_SET, request.model_dump_json().encode(), timeout=10
    )
    envelope = RpcReply.model_validate_json(reply.data)
    assert envelope.ok, envelope
    return ModeResult.model_validate(envelope.result)


async def submit(harness: EventsHarness, client_id: str, event_type: EventType, title: str) -> str:
    event = SubmitEvent(
        event_id=uuid.uuid4().hex,
        type=event_type,
        title=title,
        client_id=client_id,
        chat_ids=(harness.users[0],),
    )
    await harness.nc.jetstream().publish(
        subjects.EVENT_SUBMIT,
        event.model_dump_json().encode(),
        headers={"Nats-Msg-Id": event.event_id},
    )
    return event.event_id


async def test_a_muted_client_does_not_silence_another_and_unmuting_sends_the_digest(
    events_harness: EventsHarness,
) -> None:
    tag = uuid.uuid4().hex[:6]
    client_a, client_b = f"agent-a-{tag}", f"agent-b-{tag}"
    muted = await set_mode(events_harness, Mode.MUTE, client_a)
    assert (muted.mode, muted.client_id) == (Mode.MUTE, client_a)

    for index in range(3):
        await submit(events_harness, client_a, EventType.INFO_NOTIFICATION, f"a-info-{index}")
    await submit(events_harness, client_a, EventType.BUILD_FAILED, f"a-build-broke-{tag}")
    b_event = await submit(events_harness, client_b, EventType.INFO_NOTIFICATION, "b-info")
    # B's notification is delivered (events are handled in stream order: A's came first).
    await events_harness.tap.wait_for(lambda ms: any(m.event_id == b_event for m in ms))
    assert not any(
        "a-info" in (m.text or "") or "a-build-broke" in (m.text or "")
        for m in events_harness.tap.messages
    )

    unmuted = await set_mode(events_harness, Mode.NOMAD, client_a)
    assert unmuted.digested == 4
    digest_of_a = f"While {client_a} was muted"
    messages = await events_harness.tap.wait_for(
        lambda ms: any(digest_of_a in (m.text or "") for m in ms)
    )
    (digest,) = [m for m in messages if digest_of_a in (m.text or "")]
    text = digest.text or ""
    assert "(4 suppressed" in text
    assert "Info: 3" in text
    assert f"a-build-broke-{tag}" in text  # failures are listed by title
    assert "a-info-0" not in text  # the rest is counted
    # One digest only: switching again sends none, and A is delivered again.
    assert (await set_mode(events_harness, Mode.LOCAL, client_a)).digested == 0
    a_failed = await submit(events_harness, client_a, EventType.TASK_FAILED, "a-after")
    await events_harness.tap.wait_for(lambda ms: any(m.event_id == a_failed for m in ms))
    await asyncio.sleep(0.2)
    assert sum(digest_of_a in (m.text or "") for m in events_harness.tap.messages) == 1
