"""Route rules with fakes: selection by client, project, type and severity; fan-out; the
default route without rules; routed approval cards; replies attributed to bot and topic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from events_harness import FakeKv, ManualClock, MemoryResponseReader, RecordingPublisher
from pydantic import ValidationError

from cctelegram_common.contracts.approvals import ApprovalRecord, SubmitApproval
from cctelegram_common.contracts.claude_code import CardKind, ClaudeCodeCard
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity, SubmitEvent
from cctelegram_common.contracts.files import FileInfo, FileKind
from cctelegram_common.contracts.outbox import (
    DeliveryOutcome,
    DeliveryReported,
    Operation,
    OutboxMessage,
)
from cctelegram_common.contracts.routing import RouteRule
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_common.routes_file import RoutesFileError, load_routes_file
from cctelegram_events.approval_rules import Person
from cctelegram_events.approvals import ApprovalService
from cctelegram_events.bridge_client import UNAVAILABLE
from cctelegram_events.callbacks import CallbackSigner
from cctelegram_events.modes import ModeService, ModeStore
from cctelegram_events.notifications import NotificationService
from cctelegram_events.ports import MemoryDueIndex, load
from cctelegram_events.responses import ResponseLog
from cctelegram_events.routing import RouteBook
from cctelegram_events.tasks import TaskService
from cctelegram_events.updates import UpdateInterpreter

USERS = (501, 502)
OPS_GROUP = -1001000000001
FORUM = -1001000000002


def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))


async def book(*rules: RouteRule) -> RouteBook:
    routes = RouteBook(FakeKv(), refresh_s=0)
    await routes.seed(rules)
    return routes


def notifications(routes: RouteBook) -> tuple[NotificationService, RecordingPublisher]:
    publisher = RecordingPublisher()
    state = FakeKv()
    now = clock()
    service = NotificationService(
        status_kv=FakeKv(),
        state_kv=state,
        publisher=publisher,
        modes=ModeStore(state, now),
        clock=now,
        allowed_users=USERS,
        live_task_cards=False,
        routes=routes,
    )
    return service, publisher


def event(event_type: EventType = EventType.INFO_NOTIFICATION, **fields: object) -> SubmitEvent:
    return SubmitEvent.model_validate(
        {
            "event_id": uuid.uuid4().hex,
            "type": event_type,
            "title": "T",
            "client_id": "ci",
            **fields,
        }
    )


def places(messages: list[OutboxMessage]) -> set[tuple[str | None, int, str | None]]:
    return {(m.bot, m.chat_id, m.topic.key if m.topic else None) for m in messages}


async def test_no_rules_is_todays_behaviour() -> None:
    service, publisher = notifications(await book())
    status = await service.submit(event(project="api"))
    assert status.chat_ids == USERS
    assert [m.outbox_id.split(":", 1)[1] for m in publisher.outbox()] == ["501:0", "502:0"]
    assert all(m.bot is None and m.topic is None for m in publisher.outbox())


async def test_rules_select_by_client_project_type_severity_and_fan_out() -> None:
    routes = await book(
        RouteRule(
            name="ci-builds", clients=("ci",), types=(EventType.BUILD_FAILED,), chat_id=OPS_GROUP
        ),
        RouteRule(name="api", projects=("api",), chat_id=FORUM, topic="per-project", bot="ops"),
        RouteRule(name="pager", min_severity=Severity.HIGH, chat_id=77),
    )
    service, publisher = notifications(routes)

    await service.submit(event(EventType.BUILD_FAILED, project="web"))  # ci-builds + pager (high)
    assert places(publisher.outbox()) == {(None, OPS_GROUP, None), (None, 77, None)}

    publisher.published.clear()
    await service.submit(event(EventType.INFO_NOTIFICATION, project="api"))  # api only (low)
    (message,) = publisher.outbox()
    assert places([message]) == {("ops", FORUM, "project:api")}
    assert message.topic is not None
    assert message.topic.name == "api"

    publisher.published.clear()
    await service.submit(event(EventType.INFO_NOTIFICATION, project="web", client_id="other"))
    # Nothing fits: the default route.
    assert places(publisher.outbox()) == {(None, 501, None), (None, 502, None)}

    publisher.published.clear()
    critical = event(EventType.BUILD_FAILED, client_id="other", severity=Severity.CRITICAL)
    await service.submit(critical)
    assert places(publisher.outbox()) == {(None, 77, None)}


async def test_a_file_goes_through_its_routes_bot_and_topic() -> None:
    routes = await book(
        RouteRule(name="api", projects=("api",), chat_id=FORUM, topic="per-project", bot="ops"),
        RouteRule(name="group", projects=("api",), chat_id=OPS_GROUP),
    )
    service, publisher = notifications(routes)
    attachment = FileInfo(
        id="f1", name="r.pdf", type="application/pdf", size=10, kind=FileKind.DOCUMENT
    )
    status = await service.submit(event(project="api", attachment=attachment))
    messages = publisher.outbox()
    assert [m.operation for m in messages] == [Operation.SEND_DOCUMENT] * 2
    assert places(messages) == {("ops", FORUM, "project:api"), (None, OPS_GROUP, None)}
    assert all(m.stored_file == attachment and m.text for m in messages)
    assert len({m.outbox_id for m in messages}) == 2
    assert status.outbox_ids == tuple(m.outbox_id for m in messages)

    # A rendering longer than a caption: the text first, through the same bot and topic.
    publisher.published.clear()
    await service.submit(event(project="api", attachment=attachment, description="word " * 300))
    routed = [m for m in publisher.outbox() if m.bot == "ops"]
    assert [m.operation for m in routed][-1] is Operation.SEND_DOCUMENT
    assert Operation.SEND_MESSAGE in [m.operation for m in routed]
    assert all(m.topic is not None and m.topic.key == "project:api" for m in routed)


async def test_explicit_chats_win_over_rules() -> None:
    service, publisher = notifications(await book(RouteRule(name="all", chat_id=77)))
    await service.submit(event(chat_ids=(42,)))
    assert places(publisher.outbox()) == {(None, 42, None)}


def test_rule_validation_is_field_level() -> None:
    with pytest.raises(ValidationError, match="topics exist only in forum"):
        RouteRule(name="x", chat_id=5, topic="per-project")
    with pytest.raises(ValidationError, match="escalate_to and escalate_after_minutes"):
        RouteRule(name="x", chat_id=-5, escalate_to="y")
    with pytest.raises(ValidationError, match="bot"):
        RouteRule(name="x", chat_id=-5, bot="Not A Bot")


def test_routes_file_errors_name_the_field(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "routes.yaml"
    path.write_text("routes:\n  - name: a\n    chat_id: 5\n    topic: per-project\n")
    with pytest.raises(RoutesFileError, match=r"routes\.0"):
        load_routes_file(path)
    path.write_text("bots:\n  ops: '1:AAA'\nroutes:\n  - name: a\n    chat_id: -5\n")
    loaded = load_routes_file(path)
    assert loaded is not None
    assert loaded.bots == {"ops": "1:AAA"}
    assert loaded.routes[0].name == "a"


def approvals(routes: RouteBook) -> tuple[ApprovalService, RecordingPublisher, FakeKv]:
    publisher = RecordingPublisher()
    state = FakeKv()
    now = clock()
    service = ApprovalService(
        approvals_kv=FakeKv(),
        status_kv=FakeKv(),
        state_kv=state,
        publisher=publisher,
        signer=CallbackSigner(b"s" * 32),
        responses=ResponseLog(publisher, MemoryResponseReader(publisher), state, now),
        clock=now,
        allowed_users=USERS,
        routes=routes,
    )
    return service, publisher, state


def approval(**fields: object) -> SubmitApproval:
    now = clock()()
    return SubmitApproval.model_validate(
        {
            "approval_id": uuid.uuid4().hex,
            "client_id": "agent",
            "title": "Deploy?",
            "expires_at": now + timedelta(minutes=30),
            "submitted_at": now,
            **fields,
        }
    )


async def test_routed_card_goes_to_the_project_topic_and_its_approvers_decide() -> None:
    routes = await book(
        RouteRule(
            name="api-approvals",
            projects=("api",),
            types=(EventType.APPROVAL_REQUEST,),
            bot="ops",
            chat_id=FORUM,
            topic="per-project",
            approvers=(9001,),
        )
    )
    service, publisher, _state = approvals(routes)
    card = ClaudeCodeCard(
        kind=CardKind.PERMISSION, session_key="s1", session_tag="ab12", project="api"
    )
    record = await service.submit(approval(claude_code=card))
    assert record.approvers == (9001,)
    (sent,) = publisher.outbox()
    assert (sent.bot, sent.chat_id, sent.topic and sent.topic.key) == ("ops", FORUM, "project:api")
    assert sent.keyboard is not None

    # Not an approver of this route: refused; the route's approver decides; the edit goes
    # through the same bot.
    data = service.signer.sign(record.approval_id, 0)
    refused = await service.press(
        update_id=1, callback_query_id="q1", chat_id=FORUM, person=Person(501), data=data, bot="ops"
    )
    assert "only the listed approvers" in refused
    await service.press(
        update_id=2,
        callback_query_id="q2",
        chat_id=FORUM,
        person=Person(9001),
        data=data,
        bot="ops",
        topic_key="project:api",
    )
    edits = [m for m in publisher.outbox() if m.operation is Operation.EDIT_MESSAGE_TEXT]
    assert [(m.bot, m.chat_id, m.target_outbox_id) for m in edits] == [
        ("ops", FORUM, sent.outbox_id)
    ]
    answers = [m for m in publisher.outbox() if m.operation is Operation.ANSWER_CALLBACK_QUERY]
    assert {m.bot for m in answers} == {"ops"}


async def test_unrouted_card_keeps_private_chats_and_ids() -> None:
    service, publisher, _ = approvals(
        await book(RouteRule(name="other", projects=("x",), chat_id=-9))
    )
    record = await service.submit(approval())
    assert record.chat_ids == USERS
    assert record.card_targets == ()
    assert [m.outbox_id for m in publisher.outbox()] == [
        f"{record.approval_id}:501:0",
        f"{record.approval_id}:502:0",
    ]


async def test_a_two_of_three_quorum_needs_two_approvals_and_one_deny_rejects() -> None:
    trio = (9001, 9002, 9003)
    routes = await book(
        RouteRule(
            name="prod",
            projects=("prod",),
            types=(EventType.APPROVAL_REQUEST,),
            chat_id=OPS_GROUP,
            approvers=trio,
            quorum=2,
        )
    )
    service, publisher, _ = approvals(routes)

    async def press(record_id: str, user: int, option: int, n: int) -> str:
        return await service.press(
            update_id=n,
            callback_query_id=f"q{n}",
            chat_id=OPS_GROUP,
            person=Person(user),
            data=service.signer.sign(record_id, option),
        )

    first = await service.submit(approval(project="prod"))
    assert first.quorum == 2
    assert await press(first.approval_id, 9001, 0, 1) == "✅ Recorded: Approve (1 of 2)"
    assert await press(first.approval_id, 9001, 0, 2) == "✅ Recorded: Approve (1 of 2)"  # again
    # The card shows the count and keeps its buttons; a repeated vote changes nothing.
    (progress,) = [m for m in publisher.outbox() if m.operation is Operation.EDIT_MESSAGE_TEXT]
    assert progress.keyboard is not None
    assert progress.text is not None
    assert progress.text.endswith("1 of 2 approvals")
    assert await press(first.approval_id, 9002, 0, 3) == "✅ Recorded: Approve"
    record = await _record(service, first.approval_id)
    assert record.status.value == "approved"
    assert record.approved_by == (9001, 9002)

    second = await service.submit(approval(project="prod"))
    await press(second.approval_id, 9001, 0, 4)
    assert await press(second.approval_id, 9003, 1, 5) == "✅ Recorded: Deny"
    assert (await _record(service, second.approval_id)).status.value == "rejected"


async def _record(service: ApprovalService, approval_id: str) -> ApprovalRecord:
    loaded = await load(service.approvals_kv, approval_id, ApprovalRecord)
    assert loaded is not None
    return loaded[0]


async def test_an_unanswered_card_escalates_once_and_every_copy_is_edited() -> None:
    routes = await book(
        RouteRule(
            name="backup",
            types=(EventType.INFO_NOTIFICATION,),  # matches no approval by itself
            bot="oncall",
            chat_id=-1005555,
            approvers=(7777,),
        ),
        RouteRule(
            name="team",
            projects=("api",),
            types=(EventType.APPROVAL_REQUEST,),
            chat_id=OPS_GROUP,
            approvers=(9001,),
            escalate_after_minutes=5,
            escalate_to="backup",
        ),
    )
    service, publisher, _ = approvals(routes)
    now = service.clock
    assert isinstance(now, ManualClock)
    record = await service.submit(approval(project="api"))
    index = service.due_index
    assert isinstance(index, MemoryDueIndex)
    assert index.due_at[record.approval_id] == record.escalate_at
    sends = lambda: [m for m in publisher.outbox() if m.operation is Operation.SEND_MESSAGE]  # noqa: E731
    assert [(m.bot, m.chat_id) for m in sends()] == [(None, OPS_GROUP)]

    now.advance(5 * 60)
    for approval_id in index.fire_due(now()):
        assert await service.expire(approval_id) is False
    assert [(m.bot, m.chat_id) for m in sends()] == [(None, OPS_GROUP), ("oncall", -1005555)]
    # Once: the index now holds the expiry, and a second call changes nothing.
    assert index.due_at[record.approval_id] == record.expires_at
    assert await service.expire(record.approval_id) is False
    assert len(sends()) == 2

    # The escalation route's approver decides; both copies are edited.
    await service.press(
        update_id=9,
        callback_query_id="q9",
        chat_id=-1005555,
        person=Person(7777),
        data=service.signer.sign(record.approval_id, 0),
        bot="oncall",
    )
    edits = [m for m in publisher.outbox() if m.operation is Operation.EDIT_MESSAGE_TEXT]
    assert sorted((m.bot or "", m.chat_id) for m in edits) == [
        ("", OPS_GROUP),
        ("oncall", -1005555),
    ]


async def test_a_route_approver_who_is_no_allowed_user_answers_by_replying_to_the_card() -> None:
    routes = await book(
        RouteRule(
            name="ops",
            types=(EventType.APPROVAL_REQUEST,),
            bot="ops",
            chat_id=FORUM,
            topic=3,
            approvers=(9001,),
        )
    )
    service, publisher, state = approvals(routes)
    now = service.clock
    modes = ModeService(ModeStore(state, now), publisher, now)
    updates = UpdateInterpreter(
        approvals=service,
        responses=service.responses,
        tasks=TaskService(state, now),
        modes=modes,
        bridge=NoBridge(),
        seen_kv=FakeKv(),
        publisher=publisher,
        clock=now,
        allowed_users=USERS,
    )
    record = await service.submit(approval())
    (card,) = publisher.outbox()
    assert card.message_thread_id == 3
    await service.on_card_delivered(
        DeliveryReported(
            outbox_id=card.outbox_id,
            event_id=record.approval_id,
            approval_id=record.approval_id,
            chat_id=FORUM,
            bot="ops",
            operation=Operation.SEND_MESSAGE,
            outcome=DeliveryOutcome.SENT,
            telegram_message_ids=(50,),
        )
    )

    def said(update_id: int, user: int, text: str, reply_to: int | None) -> InboundUpdate:
        message: dict[str, object] = {
            "message_id": 60 + update_id,
            "from": {"id": user},
            "chat": {"id": FORUM, "is_forum": True},
            "message_thread_id": 3,
            "is_topic_message": True,
            "text": text,
        }
        if reply_to is not None:
            message["reply_to_message"] = {"message_id": reply_to}
        return InboundUpdate(update_id=update_id, update={"message": message}, bot="ops")

    assert await updates.handle(said(1, 9001, "hello there", None)) == "ignored"
    assert await updates.handle(said(2, 9001, "/pending", 50)) == "ignored"
    assert await updates.handle(said(3, 9001, "approve", 50)) == "reply"
    assert (await _record(service, record.approval_id)).status.value == "approved"
    reply = [m for m in publisher.outbox() if m.outbox_id.startswith("reply-")]
    assert [(m.bot, m.chat_id, m.message_thread_id) for m in reply] == [("ops", FORUM, 3)]


class NoBridge:
    async def status_text(self, requested_by: str) -> str:
        return UNAVAILABLE

    async def restart_text(self, requested_by: str) -> str:
        return UNAVAILABLE


async def test_per_session_topics_follow_the_hook_session() -> None:
    routes = await book(RouteRule(name="s", chat_id=FORUM, topic="per-session"))
    service, publisher = notifications(routes)
    await service.submit(event(project="api", session_key="sess-1", session_tag="ab12"))
    await service.submit(event(project="api", session_key="sess-2"))
    await service.submit(event(project="api"))  # no session: the forum's General topic
    keys = [(m.topic.key, m.topic.name) if m.topic else None for m in publisher.outbox()]
    assert keys == [("session:sess-1", "api · ab12"), ("session:sess-2", "api · sess-2"), None]


async def test_quiet_hours_digest_goes_through_each_routes_bot() -> None:
    from datetime import time

    from cctelegram_events.modes import QuietHours

    routes = await book(RouteRule(name="ops", projects=("ops",), bot="ops", chat_id=77))
    service, publisher = notifications(routes)
    clock = ManualClock(datetime(2026, 1, 1, 23, 0, tzinfo=UTC))
    service.clock = clock
    service.quiet_hours = QuietHours(time(22), time(7), "UTC")
    held = await service.submit(event(project="ops", title="nightly ops note"))
    assert held.state.value == "held"
    clock.now = datetime(2026, 1, 2, 7, 1, tzinfo=UTC)
    assert await service.flush_digest() == 1
    (digest,) = [m for m in publisher.outbox() if m.outbox_id.startswith("digest-")]
    assert (digest.bot, digest.chat_id) == ("ops", 77)
    status = await service.status_kv.get(held.event_id)
    assert status is not None
    assert digest.outbox_id in status.value.decode()
