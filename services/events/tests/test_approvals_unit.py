"""The approval state machine with in-memory fakes: presses, replies, expiry, cancel, races."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from events_harness import FakeKv, ManualClock, MemoryResponseReader, RecordingPublisher

from cctelegram_common.contracts.approvals import (
    ApprovalRecord,
    ApprovalStatus,
    CancelApprovalRequest,
    SubmitApproval,
)
from cctelegram_common.contracts.outbox import Operation
from cctelegram_common.contracts.responses import ResponseRecord
from cctelegram_events.approval_rules import (
    INVALID_BUTTON,
    NO_LONGER_OPEN,
    NOT_AN_APPROVER,
    ApprovalError,
    Person,
    classify_option,
    match_option,
)
from cctelegram_events.approvals import ApprovalService
from cctelegram_events.callbacks import CallbackSigner
from cctelegram_events.ports import MemoryDueIndex, load
from cctelegram_events.responses import ResponseLog

ALICE, BOB, MALLORY = 1001, 1002, 6666


def build(
    clock: ManualClock | None = None,
) -> tuple[ApprovalService, FakeKv, RecordingPublisher, ManualClock]:
    clock = clock or ManualClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    publisher = RecordingPublisher()
    approvals_kv = FakeKv()
    state_kv = FakeKv()
    service = ApprovalService(
        approvals_kv=approvals_kv,
        status_kv=FakeKv(),
        state_kv=state_kv,
        publisher=publisher,
        signer=CallbackSigner(b"s" * 32),
        responses=ResponseLog(publisher, MemoryResponseReader(publisher), state_kv, clock),
        clock=clock,
        allowed_users=(ALICE, BOB),
    )
    return service, approvals_kv, publisher, clock


def command(clock: ManualClock, **fields: object) -> SubmitApproval:
    base: dict[str, object] = {
        "approval_id": uuid.uuid4().hex,
        "client_id": "agent",
        "title": "Deploy to prod?",
        "description": "v1.2.3",
        "expires_at": clock() + timedelta(minutes=30),
        "submitted_at": clock(),
    }
    base.update(fields)
    return SubmitApproval.model_validate(base)


async def record_of(kv: FakeKv, approval_id: str) -> ApprovalRecord:
    loaded = await load(kv, approval_id, ApprovalRecord)
    assert loaded is not None
    return loaded[0]


def data_for(service: ApprovalService, approval_id: str, index: int) -> str:
    return service.signer.sign(approval_id, index)


def test_option_classification_and_reply_matching() -> None:
    assert classify_option("Approve") is ApprovalStatus.APPROVED
    assert classify_option("✅ Yes, ship it") is ApprovalStatus.APPROVED
    assert classify_option("Deny") is ApprovalStatus.REJECTED
    assert classify_option("Roll back") is ApprovalStatus.DECIDED
    assert match_option("approve — looks fine", ("Approve", "Deny")) == 0
    assert match_option("Deny", ("Approve", "Deny")) == 1
    assert match_option("denyish", ("Approve", "Deny")) is None


async def test_submit_sends_one_card_per_approver_with_custom_options() -> None:
    service, kv, publisher, clock = build()
    cmd = command(clock, options=("Ship it", "Wait", "Roll back"))
    await service.submit(cmd)
    await service.submit(cmd)  # redelivered: nothing new
    cards = publisher.outbox()
    assert sorted(card.chat_id for card in cards) == [ALICE, BOB]
    labels = [button.text for row in cards[0].keyboard or () for button in row]
    assert labels == ["Ship it", "Wait", "Roll back"]
    assert all(
        len((button.callback_data or "").encode()) <= 64
        for row in cards[0].keyboard or ()
        for button in row
    )
    assert (await record_of(kv, cmd.approval_id)).status is ApprovalStatus.PENDING


async def test_approvers_outside_the_allowed_users_get_no_card() -> None:
    service, _kv, publisher, clock = build()
    cmd = command(clock, approvers=(ALICE, MALLORY))
    record = await service.submit(cmd)
    assert record.approvers == (ALICE,)
    assert [card.chat_id for card in publisher.outbox()] == [ALICE]


async def test_press_decides_answers_and_edits_every_card() -> None:
    service, kv, publisher, clock = build()
    cmd = command(clock)
    await service.submit(cmd)
    clock.advance(42)
    answer = await service.press(
        update_id=1,
        callback_query_id="q1",
        chat_id=ALICE,
        person=Person(ALICE, "alice"),
        data=data_for(service, cmd.approval_id, 0),
    )
    assert answer == "✅ Recorded: Approve"
    record = await record_of(kv, cmd.approval_id)
    assert record.status is ApprovalStatus.APPROVED
    assert record.decided_by_username == "alice"
    edits = [m for m in publisher.outbox() if m.operation is Operation.EDIT_MESSAGE_TEXT]
    assert sorted(edit.chat_id for edit in edits) == [ALICE, BOB]
    assert all(edit.keyboard is None for edit in edits)
    assert "✅ Approved by @alice · 12:00" in (edits[0].text or "")
    answers = [m for m in publisher.outbox() if m.operation is Operation.ANSWER_CALLBACK_QUERY]
    assert [a.text for a in answers] == ["✅ Recorded: Approve"]


async def test_concurrent_presses_one_decision_the_other_no_longer_open() -> None:
    service, kv, _publisher, clock = build()
    cmd = command(clock)
    await service.submit(cmd)
    answers = await asyncio.gather(
        service.press(
            update_id=1,
            callback_query_id="qa",
            chat_id=ALICE,
            person=Person(ALICE, "alice"),
            data=data_for(service, cmd.approval_id, 0),
        ),
        service.press(
            update_id=2,
            callback_query_id="qb",
            chat_id=BOB,
            person=Person(BOB, "bob"),
            data=data_for(service, cmd.approval_id, 1),
        ),
    )
    assert sorted(answers, key=len) in (
        ["✅ Recorded: Deny", NO_LONGER_OPEN],
        ["✅ Recorded: Approve", NO_LONGER_OPEN],
    )
    record = await record_of(kv, cmd.approval_id)
    winner = "Approve" if "✅ Recorded: Approve" in answers else "Deny"
    assert record.chosen_option == winner


async def test_forged_and_stranger_presses_change_nothing() -> None:
    service, kv, _publisher, clock = build()
    cmd = command(clock)
    await service.submit(cmd)
    forged = CallbackSigner(b"x" * 32).sign(cmd.approval_id, 0)
    assert (
        await service.press(
            update_id=1,
            callback_query_id="q1",
            chat_id=ALICE,
            person=Person(ALICE),
            data=forged,
        )
        == INVALID_BUTTON
    )
    assert (
        await service.press(
            update_id=2,
            callback_query_id="q2",
            chat_id=MALLORY,
            person=Person(MALLORY),
            data=data_for(service, cmd.approval_id, 0),
        )
        == NOT_AN_APPROVER
    )
    assert (await record_of(kv, cmd.approval_id)).status is ApprovalStatus.PENDING


async def test_expiry_applies_on_timeout_and_later_presses_are_refused() -> None:
    service, kv, publisher, clock = build()
    expire = command(clock)
    auto_deny = command(clock, on_timeout="Deny")
    await service.submit(expire)
    await service.submit(auto_deny)
    clock.advance(31 * 60)
    index = service.due_index
    assert isinstance(index, MemoryDueIndex)
    due = index.fire_due(clock())
    assert sorted(due) == sorted([expire.approval_id, auto_deny.approval_id])
    assert [await service.expire(approval_id) for approval_id in due] == [True, True]
    # A redelivered "due" (or a second replica) changes nothing; decided ones left the index.
    assert [await service.expire(approval_id) for approval_id in due] == [False, False]
    assert index.fire_due(clock()) == []
    # Closed records carry the retention TTL, so NATS removes them later.
    assert kv.ttls[expire.approval_id] == service.history_s
    assert (await record_of(kv, expire.approval_id)).status is ApprovalStatus.EXPIRED
    denied = await record_of(kv, auto_deny.approval_id)
    assert denied.status is ApprovalStatus.REJECTED
    assert denied.auto_applied
    late = await service.press(
        update_id=9,
        callback_query_id="late",
        chat_id=ALICE,
        person=Person(ALICE),
        data=data_for(service, expire.approval_id, 0),
    )
    assert late == NO_LONGER_OPEN
    edits = [m for m in publisher.outbox() if m.operation is Operation.EDIT_MESSAGE_TEXT]
    assert any("No answer in time — applied <b>Deny</b>" in (e.text or "") for e in edits)


async def test_text_reply_decides_with_comment_or_just_comments() -> None:
    service, kv, publisher, clock = build()
    cmd = command(clock)
    await service.submit(cmd)
    assert await service.text_reply(
        update_id=5,
        chat_id=ALICE,
        message_id=77,
        approval_id=cmd.approval_id,
        person=Person(ALICE, "alice"),
        text="please check the logs first",
    )
    record = await record_of(kv, cmd.approval_id)
    assert record.is_open
    assert record.comment == "please check the logs first"
    assert await service.text_reply(
        update_id=6,
        chat_id=BOB,
        message_id=78,
        approval_id=cmd.approval_id,
        person=Person(BOB, "bob"),
        text="Deny — not today",
    )
    record = await record_of(kv, cmd.approval_id)
    assert record.status is ApprovalStatus.REJECTED
    assert record.comment == "Deny — not today"
    responses = [p for _, p in publisher.published if isinstance(p, ResponseRecord)]
    assert [r.action for r in responses] == ["comment", "deny"]


async def test_cancel_by_owner_only_and_only_once() -> None:
    service, _kv, _publisher, clock = build()
    cmd = command(clock)
    await service.submit(cmd)
    with pytest.raises(ApprovalError) as refused:
        await service.cancel(CancelApprovalRequest(approval_id=cmd.approval_id, client_id="x"))
    assert refused.value.code == "not_found"
    cancelled = await service.cancel(
        CancelApprovalRequest(approval_id=cmd.approval_id, client_id="agent", reason="obsolete")
    )
    assert cancelled.status is ApprovalStatus.CANCELLED
    with pytest.raises(ApprovalError) as again:
        await service.cancel(CancelApprovalRequest(approval_id=cmd.approval_id, client_id="agent"))
    assert again.value.code == "conflict"


async def test_the_due_index_holds_only_open_approvals_and_pending_reads_only_it() -> None:
    service, kv, _publisher, clock = build()
    index = service.due_index
    assert isinstance(index, MemoryDueIndex)
    pressed, cancelled, still_open = command(clock), command(clock), command(clock)
    for cmd in (pressed, cancelled, still_open):
        await service.submit(cmd)
    assert set(await index.open_ids()) == {
        pressed.approval_id,
        cancelled.approval_id,
        still_open.approval_id,
    }
    await service.press(
        update_id=1,
        callback_query_id="q1",
        chat_id=ALICE,
        person=Person(ALICE),
        data=data_for(service, pressed.approval_id, 0),
    )
    await service.cancel(
        CancelApprovalRequest(approval_id=cancelled.approval_id, client_id="agent")
    )
    assert await index.open_ids() == [still_open.approval_id]
    assert [r.approval_id for r in await service.open_for(ALICE)] == [still_open.approval_id]
    # Open records are kept; closed ones carry the history TTL.
    assert kv.ttls[still_open.approval_id] is None
    assert kv.ttls[pressed.approval_id] == kv.ttls[cancelled.approval_id] == service.history_s
    # Until the TTL runs out the decided record stays readable by id.
    assert (await record_of(kv, pressed.approval_id)).status is ApprovalStatus.APPROVED
