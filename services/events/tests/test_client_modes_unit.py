"""Modes and quiet hours per API client, with fakes: independence, the default, the digest of
what a muted client missed, and the bot's ``/mode`` listing with its buttons."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

from events_harness import FakeKv, ManualClock, RecordingPublisher

from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import EventState, Severity, SubmitEvent
from cctelegram_common.contracts.modes import Mode, QuietHoursSpec
from cctelegram_common.contracts.outbox import Operation, OutboxMessage
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_events.modes import MutedItem, muted_key, note_suppressed

from .test_notifications_unit import USERS, interpreter, message, notifications


def event(client_id: str, event_type: EventType = EventType.INFO_NOTIFICATION, **fields: object):
    return SubmitEvent.model_validate(
        {
            "event_id": uuid.uuid4().hex,
            "type": event_type,
            "title": f"{event_type.value} of {client_id}",
            "client_id": client_id,
            **fields,
        }
    )


def digests(publisher: RecordingPublisher) -> list[OutboxMessage]:
    return [m for m in publisher.outbox() if m.outbox_id.startswith("muted-")]


async def test_two_clients_modes_are_independent() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, publisher, modes = notifications(clock)
    await modes.set(Mode.MUTE, "agent-a", "agent-a")
    muted = await service.submit(event("agent-a"))
    delivered = await service.submit(event("agent-b"))
    assert muted.state is EventState.SUPPRESSED
    assert delivered.state is EventState.QUEUED
    assert {m.event_id for m in publisher.outbox()} == {delivered.event_id}
    assert sorted(m.chat_id for m in publisher.outbox()) == sorted(USERS)
    assert (await modes.store.of("agent-a")).mode is Mode.MUTE
    assert (await modes.store.of("agent-b")).mode is Mode.NOMAD


async def test_unmuting_sends_one_digest_counts_by_type_and_failures_listed() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, publisher, modes = notifications(clock)
    await modes.set(Mode.MUTE, "agent-a", "agent-a")
    for _ in range(3):
        await service.submit(event("agent-a"))
    await service.submit(event("agent-a", EventType.BUILD_FAILED, title="Build #7 failed"))
    await service.submit(event("agent-a", EventType.ALERT_NOTIFICATION, title="Leaked <token>"))
    await service.submit(event("agent-a", EventType.TASK_COMPLETION))
    critical = await service.submit(
        event("agent-a", EventType.SYSTEM_HEALTH, severity=Severity.CRITICAL)
    )
    assert critical.state is EventState.QUEUED  # critical goes through mute, not in the digest
    assert digests(publisher) == []

    assert await modes.set(Mode.NOMAD, "agent-a", "agent-a") == 6
    sent = digests(publisher)
    assert sorted(m.chat_id for m in sent) == sorted(USERS)  # one digest per chat
    text = sent[0].text or ""
    assert "While agent-a was muted</b> (6 suppressed" in text
    assert "Info: 3" in text
    assert "Build #7 failed" in text
    assert "Leaked &lt;token&gt;" in text
    assert "info_notification of agent-a" not in text  # counted, not listed
    # Nothing left: switching again sends nothing; muting and unmuting again sends a new one.
    assert await modes.set(Mode.LOCAL, "agent-a", "agent-a") == 0
    assert len(digests(publisher)) == len(USERS)
    await modes.set(Mode.MUTE, "agent-a", "agent-a")
    await service.submit(event("agent-a", EventType.TEST_FAILED, title="flaky"))
    assert await modes.set(Mode.NOMAD, "agent-a", "agent-a") == 1
    assert len(digests(publisher)) == 2 * len(USERS)
    assert "flaky" in (digests(publisher)[-1].text or "")


async def test_the_default_applies_to_clients_without_their_own_and_unmuting_it_digests() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, publisher, modes = notifications(clock)
    await modes.set(Mode.NOMAD, "ci", "ci")  # ci chose for itself
    await modes.set(Mode.MUTE, "admin")  # the default for everyone else
    assert (await service.submit(event("agent-b"))).state is EventState.SUPPRESSED
    assert (await service.submit(event("ci"))).state is EventState.QUEUED
    assert await modes.set(Mode.NOMAD, "admin") == 1
    (digest, *_) = digests(publisher)
    assert "While agent-b was muted" in (digest.text or "")
    # A client that follows the default again takes the default's mode.
    await modes.set(Mode.MUTE, "admin")
    assert await modes.follow_default("ci", "admin") == 0
    assert (await modes.store.of("ci")).mode is Mode.MUTE


async def test_an_event_counted_while_the_digest_goes_out_comes_in_the_next_one() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, publisher, modes = notifications(clock)
    kv = service.state_kv
    assert isinstance(kv, FakeKv)
    await modes.set(Mode.MUTE, "agent-a", "agent-a")
    await service.submit(event("agent-a", EventType.BUILD_FAILED, title="first"))
    original_update = kv.update
    raced = False

    async def racing_update(key: str, value: bytes, revision: int) -> int:
        nonlocal raced
        if key == muted_key("agent-a") and value == b"" and not raced:
            raced = True  # another replica counts one more event between publish and claim
            item = MutedItem(event_id="late", type=EventType.TASK_FAILED, title="late", at=clock())
            await note_suppressed(kv, clock, "agent-a", item, True, (USERS[0],))
        return await original_update(key, value, revision)

    kv.update = racing_update  # type: ignore[method-assign]
    assert await modes.set(Mode.NOMAD, "agent-a", "agent-a") == 2
    texts = [m.text or "" for m in digests(publisher) if m.chat_id == USERS[0]]
    assert len(texts) == 2
    assert "first" in texts[0]
    assert "late" not in texts[0]
    assert "late" in texts[1]
    assert "first" not in texts[1]


async def test_quiet_hours_per_client() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 23, 0, tzinfo=UTC))
    service, _publisher, modes = notifications(clock)
    night = QuietHoursSpec(start=time(22), end=time(7), timezone="UTC")
    await modes.store.set_quiet_hours("sleeper", night, "sleeper")
    assert (await service.submit(event("sleeper"))).state is EventState.HELD
    assert (await service.submit(event("owl"))).state is EventState.QUEUED
    assert await service.flush_digest() == 0  # the sleeper's night is not over
    clock.now = datetime(2026, 1, 2, 7, 1, tzinfo=UTC)
    assert await service.flush_digest() == 1
    # The default's quiet hours apply to a client without its own; "off" (start == end) wins.
    await modes.store.set_quiet_hours(None, night, "admin")
    await modes.store.set_quiet_hours("owl", QuietHoursSpec(start=time(0), end=time(0)), "owl")
    clock.now = datetime(2026, 1, 2, 23, 0, tzinfo=UTC)
    assert (await service.submit(event("someone"))).state is EventState.HELD
    assert (await service.submit(event("owl"))).state is EventState.QUEUED


def press(update_id: int, user_id: int, data: str, message_id: int = 77) -> InboundUpdate:
    return InboundUpdate(
        update_id=update_id,
        update={
            "update_id": update_id,
            "callback_query": {
                "id": f"cq-{update_id}",
                "from": {"id": user_id, "is_bot": False, "first_name": "U"},
                "message": {"message_id": message_id, "chat": {"id": user_id, "type": "private"}},
                "data": data,
            },
        },
    )


async def test_mode_lists_each_client_with_buttons_that_change_it() -> None:
    updates, publisher, modes = interpreter()
    await modes.set(Mode.MUTE, "agent-a", "agent-a")
    await modes.set(Mode.LOCAL, "ci", "ci")
    assert await updates.handle(message(1, USERS[0], "/mode")) == "command"
    (listing,) = [m for m in publisher.outbox() if m.outbox_id.startswith("cmd-1:")]
    text = listing.text or ""
    assert "Default for everyone: 🔔 nomad" in text
    assert "<code>agent-a</code>: 🔕 mute" in text
    assert "<code>ci</code>: 💻 local" in text
    assert listing.keyboard is not None
    rows = {row[0].text.rsplit(" ", 1)[-1]: row for row in listing.keyboard}
    assert set(rows) == {"default", "agent-a", "ci"}
    assert all(len((b.callback_data or "").encode()) <= 64 for r in listing.keyboard for b in r)
    assert rows["agent-a"][2].text.startswith("• 🔕")  # the current choice is marked

    nomad = rows["agent-a"][0].callback_data or ""
    assert await updates.handle(press(2, USERS[0], nomad)) == "callback"
    assert (await modes.store.of("agent-a")).mode is Mode.NOMAD
    assert (await modes.store.of("ci")).mode is Mode.LOCAL
    answers = [m for m in publisher.outbox() if m.operation is Operation.ANSWER_CALLBACK_QUERY]
    assert "agent-a: 🔔 Nomad mode" in (answers[-1].text or "")
    (edit,) = [m for m in publisher.outbox() if m.operation is Operation.EDIT_MESSAGE_TEXT]
    assert edit.target_message_id == 77
    assert "<code>agent-a</code>: 🔔 nomad" in (edit.text or "")

    # Forged data and strangers change nothing.
    forged = nomad.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAA"
    mute_ci = rows["ci"][2].callback_data or ""
    await updates.handle(press(3, USERS[0], forged.replace(".0.", ".2.")))
    await updates.handle(press(4, 999, mute_ci))
    assert (await modes.store.of("agent-a")).mode is Mode.NOMAD
    assert (await modes.store.of("ci")).mode is Mode.LOCAL
    answers = [m.text for m in publisher.outbox() if m.operation is Operation.ANSWER_CALLBACK_QUERY]
    assert answers[-2:] == [
        "This button is not valid.",
        "Sorry, only allowed users can change modes.",
    ]
    # "Follow the default" from a button, then the default from a button.
    await updates.handle(press(5, USERS[0], rows["ci"][3].callback_data or ""))
    await updates.handle(press(6, USERS[0], rows["default"][1].callback_data or ""))
    assert (await modes.store.of("ci")).mode is Mode.LOCAL
    assert not (await modes.store.of("ci")).own_mode
    assert (await modes.store.default()).mode is Mode.LOCAL


async def test_mode_commands_set_one_client_or_the_default() -> None:
    updates, publisher, modes = interpreter()
    await updates.handle(message(1, USERS[0], "/mode agent-b local"))
    await updates.handle(message(2, USERS[0], "/cct:mute agent-c"))
    await updates.handle(message(3, USERS[0], "/mode default mute"))
    await updates.handle(message(4, USERS[0], "/mode agent-b"))
    assert (await modes.store.of("agent-b")).mode is Mode.LOCAL
    assert (await modes.store.of("agent-c")).mode is Mode.MUTE
    assert (await modes.store.of("agent-z")).mode is Mode.MUTE  # follows the default
    await updates.handle(message(5, USERS[0], "/mode agent-b default"))
    assert (await modes.store.of("agent-b")).mode is Mode.MUTE
    replies = {m.outbox_id.split(":")[0]: m.text or "" for m in publisher.outbox()}
    assert "<code>agent-b</code>: 💻 Local mode" in replies["cmd-1"]
    assert "Default for every client: 🔕" in replies["cmd-3"]
    assert "Usage: /mode" in replies["cmd-4"]
    assert "follows the default" in replies["cmd-5"]


async def test_a_suppressed_count_survives_a_record_emptied_by_a_digest() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    kv = FakeKv()
    item = MutedItem(event_id="e1", type=EventType.INFO_NOTIFICATION, title="t", at=clock())
    await note_suppressed(kv, clock, "a", item, False, (1,))
    entry = await kv.get(muted_key("a"))
    assert entry is not None
    await kv.update(muted_key("a"), b"", entry.revision)  # a digest went out
    await note_suppressed(kv, clock, "a", item, False, (1,))
    after = await kv.get(muted_key("a"))
    assert after is not None
    assert b'"total":1' in after.value


async def test_quiet_commands_set_a_clients_or_the_default_window() -> None:
    updates, publisher, modes = interpreter()
    await updates.handle(message(1, USERS[0], "/quiet agent-a 22:00 07:00 Europe/Paris"))
    await updates.handle(message(2, USERS[0], "/quiet default 23:00 06:00"))
    await updates.handle(message(3, USERS[0], "/quiet agent-b off"))
    await updates.handle(message(4, USERS[0], "/quiet agent-c 22:00 07:00 Mars/Base"))
    await updates.handle(message(5, USERS[0], "/mode"))
    a, b, c = [await modes.store.of(client) for client in ("agent-a", "agent-b", "agent-c")]
    assert a.quiet_hours is not None
    assert (a.quiet_hours.start, a.quiet_hours.end) == (time(22), time(7))
    assert a.quiet_hours.timezone == "Europe/Paris"
    assert b.quiet_hours is not None
    assert b.quiet_hours.start == b.quiet_hours.end  # off, whatever the default says
    assert c.quiet_hours is not None
    assert (c.quiet_hours.start, c.quiet_hours.end) == (time(23), time(6))  # the default's
    replies = {m.outbox_id.split(":")[0]: m.text or "" for m in publisher.outbox()}
    assert "Quiet hours for agent-a: 22:00-07:00 Europe/Paris." in replies["cmd-1"]
    assert "Quiet hours for the default: 23:00-06:00 UTC." in replies["cmd-2"]
    assert "No quiet hours for agent-b." in replies["cmd-3"]
    assert "unknown time zone" in replies["cmd-4"]
    assert "<code>agent-a</code>: ↩ follows the default · 🌙 22:00-07:00" in replies["cmd-5"]
    await updates.handle(message(6, USERS[0], "/quiet agent-a default"))
    a = await modes.store.of("agent-a")
    assert a.quiet_hours is not None
    assert a.quiet_hours.start == time(23)
