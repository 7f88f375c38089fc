"""Routing rules with fakes: modes, quiet hours and the digest, live task cards, commands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

from events_harness import FakeKv, ManualClock, MemoryResponseReader, RecordingPublisher
from pydantic import BaseModel

from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import EventState, Severity, SubmitEvent
from cctelegram_common.contracts.modes import Mode
from cctelegram_common.contracts.outbox import Operation
from cctelegram_common.contracts.updates import (
    CommandIssued,
    InboundUpdate,
    MemberChanged,
    OtherUpdate,
    TelegramPerson,
    TextReceived,
)
from cctelegram_events.approvals import ApprovalService
from cctelegram_events.bridge_client import UNAVAILABLE
from cctelegram_events.callbacks import CallbackSigner
from cctelegram_events.modes import ModeService, ModeStore, QuietHours
from cctelegram_events.notifications import NotificationService
from cctelegram_events.responses import ResponseLog
from cctelegram_events.tasks import TaskService
from cctelegram_events.updates import UpdateInterpreter

USERS = (501, 502)


def notifications(
    clock: ManualClock, quiet: QuietHours | None = None
) -> tuple[NotificationService, RecordingPublisher, ModeService]:
    publisher = RecordingPublisher()
    state = FakeKv()
    store = ModeStore(state, clock)
    service = NotificationService(
        status_kv=FakeKv(),
        state_kv=state,
        publisher=publisher,
        modes=store,
        clock=clock,
        allowed_users=USERS,
        quiet_hours=quiet,
    )
    return service, publisher, ModeService(store, publisher, clock)


def event(event_type: EventType = EventType.INFO_NOTIFICATION, **fields: object) -> SubmitEvent:
    return SubmitEvent.model_validate(
        {"event_id": uuid.uuid4().hex, "type": event_type, "title": "T", "client_id": "c", **fields}
    )


async def test_modes_filter_but_approvals_and_critical_always_go() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, publisher, modes = notifications(clock)
    await modes.set(Mode.LOCAL, "test", "c")
    assert (await service.submit(event())).state is EventState.SUPPRESSED
    assert (await service.submit(event(EventType.BUILD_FAILED))).state is EventState.QUEUED
    await modes.set(Mode.MUTE, "test", "c")
    assert (await service.submit(event(EventType.BUILD_FAILED))).state is EventState.SUPPRESSED
    critical = event(EventType.SYSTEM_HEALTH, severity=Severity.CRITICAL)
    assert (await service.submit(critical)).state is EventState.QUEUED
    assert len(publisher.outbox()) == 2 * len(USERS)


async def test_quiet_hours_hold_then_one_digest_per_chat() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 23, 0, tzinfo=UTC))
    service, publisher, _modes = notifications(clock, QuietHours(time(22), time(7), "UTC"))
    held = [await service.submit(event(title=f"held {i}")) for i in range(3)]
    assert all(status.state is EventState.HELD for status in held)
    critical = await service.submit(event(EventType.SECURITY_ALERT))
    assert critical.state is EventState.QUEUED
    assert await service.flush_digest() == 0  # still quiet
    clock.now = datetime(2026, 1, 2, 7, 1, tzinfo=UTC)
    assert await service.flush_digest() == 3
    digests = [m for m in publisher.outbox() if m.outbox_id.startswith("digest-")]
    assert sorted(m.chat_id for m in digests) == sorted(USERS)
    assert all("held 0" in (m.text or "") and "held 2" in (m.text or "") for m in digests)
    assert await service.flush_digest() == 0


async def test_task_events_edit_one_live_card_and_notify_at_the_end() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, publisher, _modes = notifications(clock)
    started = event(EventType.TASK_STARTED, task_id="build-7", title="Build started")
    await service.submit(started)
    await service.submit(event(EventType.TASK_PROGRESS, task_id="build-7", title="50%"))
    await service.submit(event(EventType.TASK_COMPLETION, task_id="build-7", title="Done"))
    outbox = publisher.outbox()
    sends = [m for m in outbox if m.operation is Operation.SEND_MESSAGE]
    edits = [m for m in outbox if m.operation is Operation.EDIT_MESSAGE_TEXT]
    assert len(sends) == 2 * len(USERS)  # the card, then the fresh "Done"
    assert len(edits) == 2 * len(USERS)  # progress and final state edit the card
    assert all(edit.target_outbox_id == f"{started.event_id}:{edit.chat_id}:0" for edit in edits)
    # A new run of the same task starts a new card.
    await service.submit(event(EventType.TASK_STARTED, task_id="build-7", title="Again"))
    assert len([m for m in publisher.outbox() if m.operation is Operation.SEND_MESSAGE]) == 3 * len(
        USERS
    )


class FlakyPublisher(RecordingPublisher):
    """Refuses every message of one event (its stream has no leader, say)."""

    def __init__(self, refused_event_id: str) -> None:
        super().__init__()
        self.refused_event_id = refused_event_id

    async def publish(self, subject: str, payload: BaseModel, *, msg_id: str, stream: str) -> None:
        if msg_id.startswith(self.refused_event_id):
            raise TimeoutError("no leader")
        await super().publish(subject, payload, msg_id=msg_id, stream=stream)


async def test_a_batch_keeps_order_settles_each_event_on_its_own_and_folds_duplicates() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, _publisher, _modes = notifications(clock)
    batch = [event(title=f"n{i}") for i in range(6)]
    seen_before = batch[1]
    await service.submit(seen_before)
    refused = batch[3]
    service.publisher = publisher = FlakyPublisher(refused.event_id)
    twice = [*batch, batch[4]]  # the same event twice in one fetched batch

    outcomes = await service.submit_many(twice)

    assert len(outcomes) == len(twice)
    assert isinstance(outcomes[3], TimeoutError)  # handed back; the others go on
    statuses = [o for o in outcomes if not isinstance(o, BaseException)]
    assert [s.event_id for s in statuses] == [e.event_id for e in twice if e is not refused]
    assert all(s.state is EventState.QUEUED for s in statuses)
    # Each chat gets the new events once, in the order they were stored.
    for chat in USERS:
        texts = [m.text or "" for m in publisher.outbox() if m.chat_id == chat]
        assert [text.split("<b>")[1] for text in texts] == [f"n{i}</b>" for i in (0, 2, 4, 5)]
    # The refused one goes out when it comes back, as if it were new.
    service.publisher = publisher
    publisher.refused_event_id = "-"
    assert (await service.submit(refused)).state is EventState.QUEUED


async def test_a_live_card_whose_first_send_failed_is_sent_again_not_edited() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    service, _publisher, _modes = notifications(clock)
    started = event(EventType.TASK_STARTED, task_id="deploy-1", title="Deploy started")
    service.publisher = publisher = FlakyPublisher(started.event_id)
    (outcome,) = await service.submit_many([started])
    assert isinstance(outcome, TimeoutError)
    publisher.refused_event_id = "-"
    await service.submit(started)  # redelivered
    sent = publisher.outbox()
    assert [m.operation for m in sent] == [Operation.SEND_MESSAGE] * len(USERS)
    assert {m.outbox_id for m in sent} == {f"{started.event_id}:{chat}:0" for chat in USERS}


class NoBridge:
    async def status_text(self, requested_by: str) -> str:
        return UNAVAILABLE

    async def restart_text(self, requested_by: str) -> str:
        return UNAVAILABLE


def interpreter() -> tuple[UpdateInterpreter, RecordingPublisher, ModeService]:
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    publisher = RecordingPublisher()
    state = FakeKv()
    responses = ResponseLog(publisher, MemoryResponseReader(publisher), state, clock)
    status = FakeKv()
    approvals = ApprovalService(
        FakeKv(), status, state, publisher, CallbackSigner(b"z" * 32), responses, clock, USERS
    )
    modes = ModeService(ModeStore(state, clock), publisher, clock)
    return (
        UpdateInterpreter(
            approvals=approvals,
            responses=responses,
            tasks=TaskService(state, clock),
            modes=modes,
            bridge=NoBridge(),
            seen_kv=FakeKv(),
            publisher=publisher,
            clock=clock,
            allowed_users=USERS,
        ),
        publisher,
        modes,
    )


def message(update_id: int, user_id: int, text: str) -> InboundUpdate:
    return InboundUpdate(
        update_id=update_id,
        update={
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "from": {"id": user_id, "is_bot": False, "first_name": "U"},
                "chat": {"id": user_id, "type": "private"},
                "text": text,
            },
        },
    )


async def test_commands_from_allowed_users_and_strangers_are_ignored() -> None:
    updates, publisher, modes = interpreter()
    assert await updates.handle(message(1, USERS[0], "/cct:mute")) == "command"
    assert (await modes.store.default()).mode is Mode.MUTE  # from Telegram: the default
    assert (await modes.store.of("any-client")).mode is Mode.MUTE
    assert await updates.handle(message(1, USERS[0], "/cct:mute")) == "duplicate"
    assert await updates.handle(message(2, USERS[0], "/bridge")) == "command"
    assert await updates.handle(message(3, USERS[1], "/help")) == "command"
    assert await updates.handle(message(4, 999, "/bridge")) == "ignored"
    assert await updates.handle(message(5, USERS[0], "/pending")) == "command"
    replies = {m.outbox_id.split(":")[0]: m.text or "" for m in publisher.outbox()}
    assert "Mute mode" in replies["cmd-1"]
    assert UNAVAILABLE in replies["cmd-2"]
    assert "/cct:nomad" in replies["cmd-3"]
    assert "cmd-4" not in replies
    assert "No open approvals" in replies["cmd-5"]
    assert all(m.chat_id in USERS for m in publisher.outbox())


async def test_typed_updates_need_no_raw_telegram_json() -> None:
    updates, publisher, _modes = interpreter()
    person = TelegramPerson(user_id=USERS[0], first_name="U")
    typed = [
        CommandIssued(chat_id=USERS[0], message_id=1, person=person, command="/help"),
        TextReceived(chat_id=USERS[0], message_id=2, person=person, text="thanks"),
        MemberChanged(chat_id=USERS[0], person=person, new_status="kicked"),
        OtherUpdate(update_type="edited_message"),
    ]
    kinds = [
        await updates.handle(InboundUpdate(update_id=100 + index, event=event))
        for index, event in enumerate(typed)
    ]
    assert kinds == ["command", "text", "ignored", "ignored"]
    (reply,) = publisher.outbox()
    assert reply.outbox_id == "cmd-100:" + str(USERS[0]) + ":0"
    assert "/cct:nomad" in (reply.text or "")
