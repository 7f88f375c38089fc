"""Telegram's error policy: what is retried, resent, remembered, dead-lettered or alarmed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cctelegram_common.contracts.files import FileInfo, FileKind
from cctelegram_common.contracts.outbox import (
    DeliveryOutcome,
    DeliveryRecord,
    InlineButton,
    Operation,
    OutboxMessage,
)
from cctelegram_common.resilience import CircuitBreaker
from cctelegram_notifier.delivery import (
    DeliveryService,
    FailureReason,
    FileGoneError,
    TokenRejectedError,
    build_call,
    to_plain_text,
)
from cctelegram_notifier.scheduler import Scheduler
from cctelegram_notifier.settings import RateSettings, RetrySettings
from cctelegram_notifier.store import MemoryDeliveryStore, delivery_key
from cctelegram_notifier.telegram import TelegramError, TelegramUnavailableError, Upload

Answer = Callable[[str, dict[str, Any]], Any]


class ScriptedBot:
    """Answers each call with the next scripted outcome (an exception or a result)."""

    def __init__(self, clock: Any, *script: Any) -> None:
        self.clock = clock
        self.script = list(script)
        self.calls: list[tuple[float, str, dict[str, Any]]] = []
        self.uploads: list[bytes] = []
        self.next_message_id = 100

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        timeout_s: float | None = None,
        upload: Upload | None = None,
    ) -> Any:
        self.calls.append((self.clock.now, method, params))
        if upload is not None:
            self.uploads.append(b"".join([chunk async for chunk in upload.chunks()]))
        outcome = self.script.pop(0) if self.script else "ok"
        if isinstance(outcome, Exception):
            raise outcome
        self.next_message_id += 1
        return {"message_id": self.next_message_id, "chat": {"id": params.get("chat_id")}}


def _service(
    clock: Any,
    bot: ScriptedBot,
    store: MemoryDeliveryStore | None = None,
    uploads: Any = None,
    **retry: Any,
):
    scheduler = Scheduler(RateSettings(retry_after_pad_s=0.0), clock=clock, sleep=clock.sleep)
    breaker = CircuitBreaker(failure_threshold=3, reset_s=5.0, clock=clock)
    return DeliveryService(
        bot,
        scheduler,
        breaker,
        store or MemoryDeliveryStore(),
        RetrySettings(**retry),
        sleep=clock.sleep,
        clock=clock,
        uploads=uploads,
    )


def _message(**fields: Any) -> OutboxMessage:
    base: dict[str, Any] = {
        "outbox_id": "evt-1:42:0",
        "operation": Operation.SEND_MESSAGE,
        "chat_id": 42,
        "text": "<b>Build</b> done &amp; green",
    }
    return OutboxMessage(**{**base, **fields})


def _error(code: int, description: str, **parameters: Any) -> TelegramError:
    return TelegramError("sendMessage", code, description, parameters)


async def test_cant_parse_entities_resends_once_as_plain_text(clock: Any) -> None:
    bot = ScriptedBot(clock, _error(400, "Bad Request: can't parse entities: unclosed tag"))
    (result,) = await clock.run(_service(clock, bot).deliver(_message()))
    assert result.outcome is DeliveryOutcome.SENT
    assert len(bot.calls) == 2
    plain = bot.calls[1][2]
    assert plain["text"] == "Build done & green"
    assert plain.get("parse_mode") is None


async def test_plain_text_resend_failing_too_is_dead_lettered(clock: Any) -> None:
    bad = _error(400, "Bad Request: can't parse entities: x")
    bot = ScriptedBot(clock, bad, bad)
    (result,) = await clock.run(_service(clock, bot).deliver(_message()))
    assert result.reason is FailureReason.PARSE_ENTITIES
    assert len(bot.calls) == 2


async def test_message_not_modified_is_success(clock: Any) -> None:
    bot = ScriptedBot(clock, _error(400, "Bad Request: message is not modified: same"))
    edit = _message(operation=Operation.EDIT_MESSAGE_TEXT, target_message_id=7)
    (result,) = await clock.run(_service(clock, bot).deliver(edit))
    assert result.outcome is DeliveryOutcome.SENT
    assert result.telegram_message_ids == (7,)


async def test_migrated_group_is_remembered_and_resent_to_the_new_id(clock: Any) -> None:
    store = MemoryDeliveryStore()
    upgraded = _error(
        400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1009
    )
    bot = ScriptedBot(clock, upgraded)
    service = _service(clock, bot, store)
    (result,) = await clock.run(service.deliver(_message(chat_id=-5)))
    assert result.outcome is DeliveryOutcome.SENT
    assert result.migrated_to_chat_id == -1009
    assert [call[2]["chat_id"] for call in bot.calls] == [-5, -1009]
    assert store.migrations == {-5: -1009}
    # The next message goes straight to the new id.
    (again,) = await clock.run(service.deliver(_message(outbox_id="evt-2", chat_id=-5)))
    assert bot.calls[-1][2]["chat_id"] == -1009
    assert again.chat_id == -1009


async def test_blocked_chat_is_marked_inactive_and_dead_lettered(clock: Any) -> None:
    store = MemoryDeliveryStore()
    bot = ScriptedBot(clock, _error(403, "Forbidden: bot was blocked by the user"))
    service = _service(clock, bot, store)
    (result,) = await clock.run(service.deliver(_message()))
    assert result.outcome is DeliveryOutcome.FAILED
    assert result.reason is FailureReason.BLOCKED
    assert result.dead_letter_reason == "recipient_gone: Forbidden: bot was blocked by the user"
    assert 42 in store.inactive
    (second,) = await clock.run(service.deliver(_message(outbox_id="evt-2")))
    assert second.reason is FailureReason.CHAT_INACTIVE
    assert len(bot.calls) == 1  # no call to a chat known to be gone


@pytest.mark.parametrize("code", [401, 404])
async def test_rejected_token_stops_sending(clock: Any, code: int) -> None:
    bot = ScriptedBot(clock, _error(code, "Unauthorized"))
    service = _service(clock, bot)
    with pytest.raises(TokenRejectedError):
        await clock.run(service.deliver(_message()))
    assert service.api_health.token_rejected


@pytest.mark.parametrize(
    "description",
    ["Bad Request: chat not found", "Bad Request: message is too long", "BUTTON_DATA_INVALID"],
)
async def test_other_400s_are_not_retried(clock: Any, description: str) -> None:
    bot = ScriptedBot(clock, _error(400, description))
    (result,) = await clock.run(_service(clock, bot).deliver(_message()))
    assert result.reason is FailureReason.BAD_REQUEST
    assert result.error_code == 400
    assert len(bot.calls) == 1


async def test_5xx_and_network_errors_are_retried_with_backoff(clock: Any) -> None:
    bot = ScriptedBot(
        clock,
        TelegramUnavailableError("sendMessage", "server error", 502),
        TelegramUnavailableError("sendMessage", "ReadError"),
    )
    (result,) = await clock.run(_service(clock, bot).deliver(_message()))
    assert result.outcome is DeliveryOutcome.SENT
    assert result.attempts == 3


async def test_retries_are_bounded_then_dead_lettered(clock: Any) -> None:
    down = TelegramUnavailableError("sendMessage", "timeout")
    bot = ScriptedBot(clock, *([down] * 50))
    (result,) = await clock.run(_service(clock, bot, max_attempts=4).deliver(_message()))
    assert result.reason is FailureReason.UNAVAILABLE
    assert len(bot.calls) == 4


async def test_429_waits_retry_after_before_calling_that_chat_again(clock: Any) -> None:
    bot = ScriptedBot(clock, _error(429, "Too Many Requests: retry after 4", retry_after=4))
    (result,) = await clock.run(_service(clock, bot).deliver(_message()))
    assert result.outcome is DeliveryOutcome.SENT
    first, second = bot.calls[0][0], bot.calls[1][0]
    assert second - first >= 4.0


async def test_too_many_429s_are_dead_lettered(clock: Any) -> None:
    limited = _error(429, "Too Many Requests: retry after 1", retry_after=1)
    bot = ScriptedBot(clock, *([limited] * 10))
    (result,) = await clock.run(_service(clock, bot, max_rate_limited=3).deliver(_message()))
    assert result.reason is FailureReason.RATE_LIMITED


async def test_open_circuit_holds_every_chat_until_the_trial(clock: Any) -> None:
    down = TelegramUnavailableError("sendMessage", "ConnectError")
    bot = ScriptedBot(clock, down, down, down)
    service = _service(clock, bot, max_attempts=10, base_s=0.01, cap_s=0.01)
    (result,) = await clock.run(service.deliver(_message()))
    assert result.outcome is DeliveryOutcome.SENT
    # Three failures opened the circuit: the fourth call waited for reset_s.
    assert bot.calls[3][0] - bot.calls[2][0] >= 5.0


async def test_recorded_message_is_not_sent_again(clock: Any) -> None:
    store = MemoryDeliveryStore()
    await store.put_record(
        DeliveryRecord(outbox_id="evt-1:42:0", chat_id=42, telegram_message_ids=(9,))
    )
    bot = ScriptedBot(clock)
    (result,) = await clock.run(_service(clock, bot, store).deliver(_message()))
    assert result.already_recorded
    assert result.telegram_message_ids == (9,)
    assert bot.calls == []


async def test_edit_finds_its_target_through_the_delivery_record(clock: Any) -> None:
    store = MemoryDeliveryStore()
    await store.put_record(
        DeliveryRecord(outbox_id="card-1", chat_id=42, telegram_message_ids=(55,))
    )
    bot = ScriptedBot(clock)
    edit = _message(
        outbox_id="card-1:edit",
        operation=Operation.EDIT_REPLY_MARKUP,
        target_outbox_id="card-1",
        keyboard=None,
    )
    (result,) = await clock.run(_service(clock, bot, store).deliver(edit))
    assert result.outcome is DeliveryOutcome.SENT
    method, params = bot.calls[0][1], bot.calls[0][2]
    assert method == "editMessageReplyMarkup"
    assert params["message_id"] == 55
    assert params.get("reply_markup") is None  # no keyboard: Telegram removes it


async def test_edit_of_an_unknown_target_is_dead_lettered(clock: Any) -> None:
    bot = ScriptedBot(clock)
    edit = _message(operation=Operation.EDIT_MESSAGE_TEXT, target_outbox_id="never-sent")
    (result,) = await clock.run(_service(clock, bot).deliver(edit))
    assert result.reason is FailureReason.EDIT_TARGET_UNKNOWN
    assert bot.calls == []


def test_calls_are_built_as_telegram_expects() -> None:
    card = _message(
        keyboard=((InlineButton(text="Approve", callback_data="a:1"),),),
        reply_to_message_id=3,
        message_thread_id=11,
    )
    method, params = build_call(card, 42, None)
    assert method == "sendMessage"
    assert params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Approve", "callback_data": "a:1"}]]
    }
    assert params["reply_parameters"]["message_id"] == 3
    assert params["message_thread_id"] == 11
    answer = _message(
        operation=Operation.ANSWER_CALLBACK_QUERY, callback_query_id="q1", text="Recorded"
    )
    assert build_call(answer, 42, None)[0] == "answerCallbackQuery"
    assert "chat_id" not in build_call(answer, 42, None)[1]


def test_plain_text_and_kv_keys() -> None:
    assert to_plain_text("a &lt;b&gt; <i>c</i>", "HTML") == "a <b> c"
    assert to_plain_text(r"v1\.2 \- ok\!", "MarkdownV2") == "v1.2 - ok!"
    assert delivery_key("evt-1_a.b") == "evt-1_a.b"
    assert delivery_key("evt:1") != delivery_key("evt_1")
    assert delivery_key("evt:1").startswith("evt_1.")


class StoredFiles:
    """``UploadSource`` over a dict: file id → bytes (missing ids have aged out)."""

    def __init__(self, contents: dict[str, bytes]) -> None:
        self.contents = contents

    async def open(self, stored: FileInfo) -> Upload:
        content = self.contents.get(stored.id or "")
        if content is None:
            raise FileGoneError(f"file {stored.id} is no longer stored")

        async def chunks() -> Any:
            for start in range(0, len(content), 4):
                yield content[start : start + 4]

        return Upload("document", stored.name, stored.type, len(content), chunks)


def _file_message(file_id: str) -> OutboxMessage:
    info = FileInfo(id=file_id, name="a.txt", type="text/plain", size=10, kind=FileKind.DOCUMENT)
    return _message(operation=Operation.SEND_DOCUMENT, stored_file=info, text="<b>caption</b>")


async def test_a_stored_file_is_uploaded_afresh_on_every_attempt(clock: Any) -> None:
    bot = ScriptedBot(clock, TelegramUnavailableError("sendDocument", "timeout"))
    service = _service(clock, bot, uploads=StoredFiles({"f1": b"0123456789"}))
    (result,) = await clock.run(service.deliver(_file_message("f1")))
    assert result.outcome is DeliveryOutcome.SENT
    assert [method for _, method, _ in bot.calls] == ["sendDocument", "sendDocument"]
    assert bot.uploads == [b"0123456789", b"0123456789"]
    # The file travels as the upload, never as a parameter.
    assert bot.calls[0][2].get("document") is None
    assert bot.calls[0][2]["caption"] == "<b>caption</b>"


async def test_a_file_no_longer_stored_is_dead_lettered_without_a_call(clock: Any) -> None:
    bot = ScriptedBot(clock)
    service = _service(clock, bot, uploads=StoredFiles({}))
    (result,) = await clock.run(service.deliver(_file_message("gone")))
    assert result.reason is FailureReason.INVALID_PAYLOAD
    assert "no longer stored" in (result.error or "")
    assert bot.calls == []
