"""The notifier sends Telegram only Bot API parameters: every flow (notification, approval
card, button answer, edits, quiet-hours digest) against the sandbox in strict mode, which
answers 400 to any parameter a method does not define."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from nats.aio.client import Client

from cctelegram_common import subjects
from cctelegram_common.contracts.outbox import (
    BotApiOptions,
    DeliveryOutcome,
    DeliveryReported,
    InlineButton,
    LinkPreviewOptions,
    Operation,
    OutboxBookkeeping,
    OutboxMessage,
)
from cctelegram_notifier.delivery import build_call
from cctelegram_testing.notifier import (
    publish_outbox,
    sandbox_calls,
    sandbox_messages,
    stream_contracts,
    wait_until,
)
from cctelegram_testing.sandbox import KNOWN_PARAMETERS, RunningSandbox, run_sandbox

CHAT = 7101


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(rate_scale=10.0, auto_create_chats=True, strict_params=True) as running:
        yield running


def _flows(callback_query_id: str = "1") -> list[OutboxMessage]:
    keyboard = ((InlineButton(text="Approve", callback_data="a:1"),),)
    return [
        OutboxMessage(
            outbox_id="evt-1:7101:0",
            operation=Operation.SEND_MESSAGE,
            chat_id=CHAT,
            event_id="evt-1",
            text="<b>Build passed</b> https://example.test",
            disable_notification=True,
            bot_api=BotApiOptions(
                protect_content=True, link_preview_options=LinkPreviewOptions(is_disabled=True)
            ),
        ),
        OutboxMessage(
            outbox_id="apr-1:7101:0",
            operation=Operation.SEND_MESSAGE,
            chat_id=CHAT,
            approval_id="apr-1",
            text="Deploy?",
            keyboard=keyboard,
        ),
        OutboxMessage(
            outbox_id="apr-1:7101:answer",
            operation=Operation.ANSWER_CALLBACK_QUERY,
            chat_id=CHAT,
            callback_query_id=callback_query_id,
            text="Recorded",
        ),
        OutboxMessage(
            outbox_id="apr-1:7101:markup",
            operation=Operation.EDIT_REPLY_MARKUP,
            chat_id=CHAT,
            target_outbox_id="apr-1:7101:0",
            keyboard=None,
        ),
        OutboxMessage(
            outbox_id="apr-1:7101:decided",
            operation=Operation.EDIT_MESSAGE_TEXT,
            chat_id=CHAT,
            target_outbox_id="apr-1:7101:0",
            text="Deploy? <i>approved</i>",
            bot_api=BotApiOptions(link_preview_options=LinkPreviewOptions(is_disabled=True)),
        ),
        OutboxMessage(
            outbox_id="digest-abc:7101:0",
            operation=Operation.SEND_MESSAGE,
            chat_id=CHAT,
            text="🌙 <b>While quiet hours were on</b> (2)",
            bookkeeping=OutboxBookkeeping(digest_of=("evt-2", "evt-3")),
        ),
    ]


def test_every_call_the_notifier_builds_uses_only_bot_api_parameters() -> None:
    for message in _flows():
        method, params = build_call(message, message.chat_id, 1)
        sent = {name for name, value in params.items() if value is not None}
        assert sent <= KNOWN_PARAMETERS[method], (method, sent - KNOWN_PARAMETERS[method])
        assert "digest_of" not in params
        assert "bookkeeping" not in params


def test_options_that_do_not_fit_the_operation_are_refused_field_by_field() -> None:
    with pytest.raises(ValueError, match="protect_content does not apply"):
        OutboxMessage(
            outbox_id="x",
            operation=Operation.EDIT_MESSAGE_TEXT,
            chat_id=CHAT,
            target_message_id=1,
            text="x",
            bot_api=BotApiOptions(protect_content=True),
        )


def test_a_stored_legacy_extra_becomes_bookkeeping_and_unknown_keys_are_refused() -> None:
    legacy = {
        "outbox_id": "digest-abc:7101:0",
        "operation": "send_message",
        "chat_id": CHAT,
        "text": "digest",
        "extra": {"digest_of": ["evt-2"]},
    }
    message = OutboxMessage.model_validate_json(json.dumps(legacy))
    assert message.bookkeeping.digest_of == ("evt-2",)
    with pytest.raises(ValueError, match="surprise"):
        OutboxMessage.model_validate({**legacy, "extra": {"surprise": 1}})


async def test_no_flow_sends_telegram_an_unknown_parameter(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    await start_notifier(make_settings(sandbox))
    notification, card, answer, markup, decided, digest = _flows()
    for message in (notification, card):
        await publish_outbox(nc, message)
    await wait_until(lambda: len(sandbox_messages(sandbox, CHAT)) == 2)
    card_id = sandbox_messages(sandbox, CHAT)[1]["message_id"]
    press = sandbox.press(CHAT, card_id, callback_data="a:1")
    answer = answer.model_copy(update={"callback_query_id": press["callback_query_id"]})
    for message in (answer, markup, decided, digest):
        await publish_outbox(nc, message)

    async def all_reported() -> bool:
        reports = await stream_contracts(nc, subjects.STREAM_DELIVERIES, DeliveryReported)
        return len(reports) == 6

    await wait_until(all_reported)
    reports = await stream_contracts(nc, subjects.STREAM_DELIVERIES, DeliveryReported)
    assert {report.outcome for report in reports} == {DeliveryOutcome.SENT}, reports
    calls = sandbox_calls(sandbox)
    assert calls, "the notifier made no call"
    refused = [call for call in calls if call["status"] == 400]
    assert refused == []
    methods = [call["method"] for call in calls]
    for method in ("sendMessage", "answerCallbackQuery", "editMessageReplyMarkup"):
        assert method in methods
    assert "editMessageText" in methods
    assert all("digest_of" not in call["params"] for call in calls)
    texts = [message["text"] for message in sandbox_messages(sandbox, CHAT)]
    assert texts == ["Build passed https://example.test", "Deploy? approved", texts[2]]
    assert texts[2].startswith("🌙 While quiet hours were on")
