"""Files in the events core: a file event becomes a document or photo with the rendering as
its caption (or the text first when it is longer than a caption may be); a photo a person
sends in reply to a card is listed with the response and given to the card's client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from events_harness import FakeKv, ManualClock, MemoryResponseReader, RecordingPublisher

from cctelegram_common.contracts.approvals import SubmitApproval
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import EventState, SubmitEvent
from cctelegram_common.contracts.files import FileInfo, FileKind
from cctelegram_common.contracts.outbox import DeliveryOutcome, DeliveryReported, Operation
from cctelegram_common.contracts.responses import ResponseRecord, ResponsesQuery
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_events.approvals import ApprovalService
from cctelegram_events.callbacks import CallbackSigner
from cctelegram_events.modes import ModeService, ModeStore
from cctelegram_events.notifications import NotificationService
from cctelegram_events.responses import ResponseLog
from cctelegram_events.tasks import TaskService
from cctelegram_events.updates import UpdateInterpreter

USERS = (501, 502)
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def stored(kind: FileKind = FileKind.DOCUMENT) -> FileInfo:
    return FileInfo(id="f1", name="report <1>.pdf", type="application/pdf", size=10, kind=kind)


def file_event(**fields: object) -> SubmitEvent:
    return SubmitEvent.model_validate(
        {
            "event_id": uuid.uuid4().hex,
            "type": EventType.BUILD_COMPLETED,
            "title": "Artifacts <ready>",
            "client_id": "c",
            "attachment": stored(),
            **fields,
        }
    )


def service() -> tuple[NotificationService, RecordingPublisher]:
    publisher = RecordingPublisher()
    state = FakeKv()
    clock = ManualClock(NOW)
    return (
        NotificationService(
            status_kv=FakeKv(),
            state_kv=state,
            publisher=publisher,
            modes=ModeStore(state, clock),
            clock=clock,
            allowed_users=USERS,
        ),
        publisher,
    )


async def test_a_file_goes_to_every_chat_with_its_rendering_as_caption() -> None:
    notifications, publisher = service()
    status = await notifications.submit(file_event())
    assert status.state is EventState.QUEUED
    messages = publisher.outbox()
    assert [m.operation for m in messages] == [Operation.SEND_DOCUMENT] * len(USERS)
    assert {m.chat_id for m in messages} == set(USERS)
    first = messages[0]
    assert first.stored_file == stored()
    assert first.text is not None
    assert "<b>Artifacts &lt;ready&gt;</b>" in first.text  # rendered like any notification
    assert status.outbox_ids == tuple(m.outbox_id for m in messages)
    photo = await notifications.submit(file_event(attachment=stored(FileKind.PHOTO)))
    assert publisher.outbox()[-1].operation is Operation.SEND_PHOTO
    assert photo.state is EventState.QUEUED


async def test_a_rendering_longer_than_a_caption_goes_first_as_text() -> None:
    notifications, publisher = service()
    await notifications.submit(file_event(description="word " * 300, chat_ids=(501,)))
    text, document = publisher.outbox()
    assert text.operation is Operation.SEND_MESSAGE
    assert "word word" in (text.text or "")
    assert document.operation is Operation.SEND_DOCUMENT
    assert document.text is None


async def test_a_photo_in_reply_to_a_card_is_listed_and_given_to_the_cards_client() -> None:
    clock = ManualClock(NOW)
    publisher = RecordingPublisher()
    state = FakeKv()
    responses = ResponseLog(publisher, MemoryResponseReader(publisher), state, clock)
    status = FakeKv()
    approvals = ApprovalService(
        FakeKv(), status, state, publisher, CallbackSigner(b"z" * 32), responses, clock, USERS
    )
    owners: dict[str, str] = {}

    async def assign(file_id: str, owner: str) -> bool:
        owners[file_id] = owner
        return True

    updates = UpdateInterpreter(
        approvals=approvals,
        responses=responses,
        tasks=TaskService(state, clock),
        modes=ModeService(ModeStore(state, clock), publisher, clock),
        bridge=None,  # type: ignore[arg-type]  # no command in this test
        seen_kv=FakeKv(),
        publisher=publisher,
        clock=clock,
        allowed_users=USERS,
        assign_file_owner=assign,
    )
    approval_id = uuid.uuid4().hex
    await approvals.submit(
        SubmitApproval(
            approval_id=approval_id,
            client_id="agent-a",
            title="Whiteboard?",
            expires_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
    )
    card = next(m for m in publisher.outbox() if m.approval_id == approval_id and m.chat_id == 501)
    await approvals.on_card_delivered(  # the card reached Telegram as message 9001
        DeliveryReported(
            outbox_id=card.outbox_id,
            event_id=approval_id,
            approval_id=approval_id,
            chat_id=501,
            operation=Operation.SEND_MESSAGE,
            outcome=DeliveryOutcome.SENT,
            telegram_message_ids=(9001,),
        )
    )
    photo = FileInfo(id="tg7-0", name="photo.jpg", type="image/jpeg", size=99, kind=FileKind.PHOTO)
    inbound = InboundUpdate(
        update_id=7,
        update={
            "update_id": 7,
            "message": {
                "message_id": 9002,
                "from": {"id": 501, "first_name": "U"},
                "chat": {"id": 501, "type": "private"},
                "photo": [{"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}],
                "reply_to_message": {"message_id": 9001},
            },
        },
        files=(photo,),
    )
    assert await updates.handle(inbound) == "file"
    assert owners == {"tg7-0": "agent-a"}
    page = await responses.list(ResponsesQuery(client_id="agent-a"))
    (view,) = page.responses
    assert view.approval_id == approval_id
    assert view.files == (photo,)
    # Another client sees nothing of it.
    assert (await responses.list(ResponsesQuery(client_id="agent-b"))).total == 0
    recorded = [p for _, p in publisher.published if isinstance(p, ResponseRecord)]
    assert recorded[-1].client_id == "agent-a"
