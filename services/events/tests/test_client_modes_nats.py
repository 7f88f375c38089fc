"""Modes and quiet hours per client on a real nats-server: client A muted while B's
notification is delivered, and unmuting A delivers one digest of what was suppressed; one
client's quiet hours hold only its events, and their end sends the held digest."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from events_harness import EventsHarness

from cctelegram_common import subjects
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.modes import (
    Mode,
    ModeResult,
    QuietHoursResult,
    QuietHoursSpec,
    SetModeRequest,
    SetQuietHoursRequest,
)
from cctelegram_common.contracts.rpc import RpcReply


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


async def test_quiet_hours_belong_to_one_client_and_their_end_sends_the_digest(
    events_harness: EventsHarness,
) -> None:
    tag = uuid.uuid4().hex[:6]
    sleeper, owl = f"sleeper-{tag}", f"owl-{tag}"
    now = datetime.now(UTC)
    night = QuietHoursSpec(
        start=(now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        end=(now + timedelta(hours=1)).time().replace(second=0, microsecond=0),
    )
    request = SetQuietHoursRequest(quiet_hours=night, changed_by=sleeper, client_id=sleeper)
    reply = await events_harness.nc.request(
        subjects.EVENTS_RPC_QUIET_HOURS_SET, request.model_dump_json().encode(), timeout=10
    )
    result = QuietHoursResult.model_validate(RpcReply.model_validate_json(reply.data).result)
    assert result.quiet_hours == night

    held = await submit(events_harness, sleeper, EventType.INFO_NOTIFICATION, f"held-{tag}")
    sent = await submit(events_harness, owl, EventType.INFO_NOTIFICATION, f"owl-{tag}")
    await events_harness.tap.wait_for(lambda ms: any(m.event_id == sent for m in ms))
    await asyncio.sleep(0.5)  # a few digest passes: the sleeper's window is still open
    assert not any(
        held == m.event_id or f"held-{tag}" in (m.text or "") for m in events_harness.tap.messages
    )

    off = SetQuietHoursRequest(
        quiet_hours=QuietHoursSpec(start=night.start, end=night.start),
        changed_by=sleeper,
        client_id=sleeper,
    )
    await events_harness.nc.request(
        subjects.EVENTS_RPC_QUIET_HOURS_SET, off.model_dump_json().encode(), timeout=10
    )
    messages = await events_harness.tap.wait_for(
        lambda ms: any(f"held-{tag}" in (m.text or "") for m in ms)
    )
    (digest,) = [m for m in messages if f"held-{tag}" in (m.text or "")]
    assert "While quiet hours were on" in (digest.text or "")
