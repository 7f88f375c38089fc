"""Approvals on a real NATS: replica races, duplicates, forgeries, strangers, expiry."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import nats.js.errors
import pytest
from events_harness import EventsHarness, running_events

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import ApprovalRecord, ApprovalStatus, SubmitApproval
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.outbox import Operation, OutboxMessage
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_events.app import create_app
from cctelegram_events.approval_rules import INVALID_BUTTON, NO_LONGER_OPEN, NOT_AN_APPROVER

_update_ids = itertools.count(int(uuid.uuid4().int % 10**9) * 1000)


@pytest.fixture
async def two_replicas(nats_url: str) -> AsyncIterator[EventsHarness]:
    """The harness's events service plus a second replica with the same settings."""
    async with running_events(nats_url) as harness:
        replica = create_app(harness.settings)
        await asyncio.wait_for(replica.connect_forever(), 30)
        try:
            yield harness
        finally:
            await replica.stop()


async def submit_approval(harness: EventsHarness, **fields: object) -> SubmitApproval:
    base: dict[str, object] = {
        "approval_id": uuid.uuid4().hex,
        "client_id": "agent-x",
        "title": "Merge the release branch?",
        "expires_at": utc_now() + timedelta(minutes=30),
    }
    base.update(fields)
    command = SubmitApproval.model_validate(base)
    await harness.nc.jetstream().publish(
        subjects.APPROVAL_SUBMIT,
        command.model_dump_json().encode(),
        headers={"Nats-Msg-Id": command.approval_id},
    )
    cards = len(command.approvers) if command.approvers is not None else len(harness.users)
    await harness.tap.wait_for(
        lambda messages: sum(m.approval_id == command.approval_id for m in messages) >= cards
    )
    return command


def card_for(harness: EventsHarness, approval_id: str, chat_id: int) -> OutboxMessage:
    return next(
        m
        for m in harness.tap.messages
        if m.approval_id == approval_id
        and m.chat_id == chat_id
        and m.operation is Operation.SEND_MESSAGE
    )


def press_update(chat_id: int, user_id: int, data: str, message_id: int = 10) -> InboundUpdate:
    update_id = next(_update_ids)
    return InboundUpdate(
        update_id=update_id,
        update={
            "update_id": update_id,
            "callback_query": {
                "id": f"cq-{uuid.uuid4().hex[:10]}",
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "P",
                    "username": f"u{user_id}",
                },
                "message": {"message_id": message_id, "chat": {"id": chat_id, "type": "private"}},
                "chat_instance": "1",
                "data": data,
            },
        },
    )


async def deliver(harness: EventsHarness, update: InboundUpdate, msg_id: str | None = None) -> None:
    await harness.nc.jetstream().publish(
        subjects.TELEGRAM_UPDATES,
        update.model_dump_json().encode(),
        headers={"Nats-Msg-Id": msg_id or f"tg-update-{update.update_id}"},
    )


async def answers(harness: EventsHarness, callback_ids: set[str]) -> dict[str, str]:
    messages = await harness.tap.wait_for(
        lambda ms: (
            {m.callback_query_id for m in ms if m.operation is Operation.ANSWER_CALLBACK_QUERY}
            >= callback_ids
        )
    )
    return {
        m.callback_query_id or "": m.text or ""
        for m in messages
        if m.operation is Operation.ANSWER_CALLBACK_QUERY and m.callback_query_id in callback_ids
    }


async def approval(harness: EventsHarness, approval_id: str) -> ApprovalRecord:
    kv = await harness.nc.jetstream().key_value(subjects.KV_APPROVALS)
    entry = await kv.get(approval_id)
    assert entry.value is not None
    return ApprovalRecord.model_validate_json(entry.value)


def callback_id(update: InboundUpdate) -> str:
    return str(update.update["callback_query"]["id"])


async def test_two_approvers_press_at_once_on_two_replicas_one_decision_wins(
    two_replicas: EventsHarness,
) -> None:
    harness = two_replicas
    alice, bob = harness.users[0], harness.users[1]
    for _round in range(3):
        command = await submit_approval(harness)
        approve = card_for(harness, command.approval_id, alice).keyboard[0][0]  # type: ignore[index]
        deny = card_for(harness, command.approval_id, bob).keyboard[0][1]  # type: ignore[index]
        first = press_update(alice, alice, approve.callback_data or "")
        second = press_update(bob, bob, deny.callback_data or "")
        await asyncio.gather(deliver(harness, first), deliver(harness, second))
        got = await answers(harness, {callback_id(first), callback_id(second)})
        texts = sorted(got.values())
        assert NO_LONGER_OPEN in texts
        assert texts.count(NO_LONGER_OPEN) == 1
        record = await approval(harness, command.approval_id)
        winner = alice if got[callback_id(first)] != NO_LONGER_OPEN else bob
        assert record.decided_by_user_id == winner
        assert record.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
        # Every card is edited exactly once, buttons removed.
        approval_id = command.approval_id

        def all_cards_edited(ms: list[OutboxMessage], approval_id: str = approval_id) -> bool:
            edited = [
                m
                for m in ms
                if m.approval_id == approval_id and m.operation is Operation.EDIT_MESSAGE_TEXT
            ]
            return len(edited) >= len(harness.users)

        edits = await harness.tap.wait_for(all_cards_edited)
        closing = [
            m
            for m in edits
            if m.approval_id == command.approval_id and m.operation is Operation.EDIT_MESSAGE_TEXT
        ]
        assert len(closing) == len(harness.users)
        assert all(edit.keyboard is None for edit in closing)


async def test_the_same_update_twice_is_processed_once(events_harness: EventsHarness) -> None:
    harness = events_harness
    alice = harness.users[0]
    command = await submit_approval(harness)
    data = card_for(harness, command.approval_id, alice).keyboard[0][0].callback_data  # type: ignore[index]
    press = press_update(alice, alice, data or "")
    # Different Nats-Msg-Ids: the stream's dedup window does not help, update_id must.
    await deliver(harness, press, "first-copy-" + uuid.uuid4().hex)
    await deliver(harness, press, "second-copy-" + uuid.uuid4().hex)
    got = await answers(harness, {callback_id(press)})
    assert got[callback_id(press)] == "✅ Recorded: Approve"
    await asyncio.sleep(0.5)
    answered = [
        m
        for m in harness.tap.messages
        if m.operation is Operation.ANSWER_CALLBACK_QUERY
        and m.callback_query_id == callback_id(press)
    ]
    assert len(answered) == 1
    assert (await approval(harness, command.approval_id)).status is ApprovalStatus.APPROVED


async def test_a_processed_update_is_marked_in_the_private_bucket_not_the_status_one(
    events_harness: EventsHarness,
) -> None:
    """``cctg_event_status`` is a read model (``EventStatus`` records only, read by the
    gateway); the processed-update marks are the events service's own bookkeeping."""
    harness = events_harness
    alice = harness.users[0]
    command = await submit_approval(harness)
    data = card_for(harness, command.approval_id, alice).keyboard[0][0].callback_data  # type: ignore[index]
    press = press_update(alice, alice, data or "")
    await deliver(harness, press)
    await answers(harness, {callback_id(press)})
    js = harness.nc.jetstream()
    seen = await js.key_value(subjects.KV_UPDATES_SEEN)
    entry = None
    for _ in range(100):
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):
            entry = await seen.get(str(press.update_id))
            break
        await asyncio.sleep(0.05)
    assert entry is not None
    assert entry.value == b"callback"
    status = await js.key_value(subjects.KV_EVENT_STATUS)
    for key in (str(press.update_id), f"update.{press.update_id}"):
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await status.get(key)


async def test_forged_callback_data_is_refused(events_harness: EventsHarness) -> None:
    harness = events_harness
    alice = harness.users[0]
    command = await submit_approval(harness)
    genuine = card_for(harness, command.approval_id, alice).keyboard[0][1].callback_data or ""  # type: ignore[index]
    forged = genuine.split(".")[0] + ".0." + genuine.split(".")[2]  # Deny's MAC on Approve
    press = press_update(alice, alice, forged)
    await deliver(harness, press)
    got = await answers(harness, {callback_id(press)})
    assert got[callback_id(press)] == INVALID_BUTTON
    assert (await approval(harness, command.approval_id)).status is ApprovalStatus.PENDING


async def test_a_press_by_someone_who_is_not_an_approver_changes_nothing(
    events_harness: EventsHarness,
) -> None:
    harness = events_harness
    alice, bob = harness.users[0], harness.users[1]
    command = await submit_approval(harness, approvers=(alice,))
    data = card_for(harness, command.approval_id, alice).keyboard[0][0].callback_data or ""  # type: ignore[index]
    # Bob is an allowed user but not an approver of this one (e.g. a group chat).
    press = press_update(bob, bob, data)
    await deliver(harness, press)
    got = await answers(harness, {callback_id(press)})
    assert got[callback_id(press)] == NOT_AN_APPROVER
    assert (await approval(harness, command.approval_id)).status is ApprovalStatus.PENDING


async def test_a_press_after_expiry_gets_no_longer_open(events_harness: EventsHarness) -> None:
    harness = events_harness
    alice = harness.users[0]
    command = await submit_approval(
        harness, expires_at=utc_now() + timedelta(seconds=0.5), on_timeout="Deny"
    )
    data = card_for(harness, command.approval_id, alice).keyboard[0][0].callback_data or ""  # type: ignore[index]
    for _ in range(100):
        if not (await approval(harness, command.approval_id)).is_open:
            break
        await asyncio.sleep(0.1)
    record = await approval(harness, command.approval_id)
    assert record.status is ApprovalStatus.REJECTED
    assert record.auto_applied
    press = press_update(alice, alice, data)
    await deliver(harness, press)
    got = await answers(harness, {callback_id(press)})
    assert got[callback_id(press)] == NO_LONGER_OPEN
