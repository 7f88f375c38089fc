"""The Telegram edge's one translation of an ``Update`` into typed contracts."""

from __future__ import annotations

from typing import Any

import pytest

from cctelegram_common.contracts.updates import (
    ButtonPressed,
    CommandIssued,
    InboundUpdate,
    MemberChanged,
    OtherUpdate,
    TelegramPerson,
    TextReceived,
    telegram_event,
)

ANN = {"id": 42, "is_bot": False, "first_name": "Ann", "username": "ann"}
PERSON = TelegramPerson(user_id=42, username="ann", first_name="Ann")
CHAT = {"id": -100, "type": "group"}


def _message(**fields: Any) -> dict[str, Any]:
    return {"update_id": 7, "message": {"message_id": 5, "from": ANN, "chat": CHAT, **fields}}


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        (
            {
                "update_id": 7,
                "callback_query": {
                    "id": "cb-1",
                    "from": ANN,
                    "message": {"message_id": 9, "chat": CHAT},
                    "data": "a.0.mac",
                },
            },
            ButtonPressed(
                callback_query_id="cb-1", chat_id=-100, message_id=9, person=PERSON, data="a.0.mac"
            ),
        ),
        (
            # an inaccessible message: the chat falls back to the presser's private chat
            {"update_id": 7, "callback_query": {"id": "cb-2", "from": ANN}},
            ButtonPressed(callback_query_id="cb-2", chat_id=42, person=PERSON, data=""),
        ),
        (
            _message(text="hello"),
            TextReceived(chat_id=-100, message_id=5, person=PERSON, text="hello"),
        ),
        (
            _message(caption="a photo", reply_to_message={"message_id": 3}),
            TextReceived(
                chat_id=-100, message_id=5, person=PERSON, text="a photo", reply_to_message_id=3
            ),
        ),
        (
            _message(text="/Pending@cctelegram_bot  now please"),
            CommandIssued(
                chat_id=-100,
                message_id=5,
                person=PERSON,
                command="/pending",
                argument=" now please",
            ),
        ),
        (
            {
                "update_id": 7,
                "my_chat_member": {
                    "chat": {"id": 42, "type": "private"},
                    "from": ANN,
                    "old_chat_member": {"status": "member"},
                    "new_chat_member": {"status": "kicked"},
                },
            },
            MemberChanged(chat_id=42, person=PERSON, old_status="member", new_status="kicked"),
        ),
        ({"update_id": 7, "edited_message": {}}, OtherUpdate(update_type="edited_message")),
        (_message(message_id="five"), OtherUpdate(update_type="unreadable")),
        ({"update_id": 7, "my_chat_member": {"chat": {}}}, OtherUpdate(update_type="unreadable")),
    ],
)
def test_each_kind_of_update_is_typed(update: dict[str, Any], expected: object) -> None:
    assert telegram_event(update) == expected
    inbound = InboundUpdate.from_telegram(update, source="webhook")
    assert (inbound.update_id, inbound.event, inbound.update) == (7, expected, update)
    # What travels on the stream reads back the same.
    assert InboundUpdate.model_validate_json(inbound.model_dump_json()) == inbound


def test_a_publisher_sending_only_the_raw_update_still_works() -> None:
    raw = _message(text="hi")
    inbound = InboundUpdate.model_validate({"update_id": 7, "update": raw, "source": "polling"})
    assert inbound.event == TextReceived(chat_id=-100, message_id=5, person=PERSON, text="hi")


def test_an_update_without_an_update_id_is_refused() -> None:
    with pytest.raises(KeyError):
        InboundUpdate.from_telegram({"message": {}}, source="webhook")
