"""The Bot API over HTTP (in-process): transport, envelopes, methods and Telegram's errors."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from cctelegram_sandbox.app import SandboxApp
from cctelegram_sandbox.config import ManualClock

BotCaller = Any  # the conftest fixture's type; importlib mode keeps conftest unimportable


async def private_chat(bot: BotCaller, user_id: int = 42) -> None:
    response = await bot.control(
        "POST", "/chats", type="private", user={"id": user_id, "first_name": "Ann"}
    )
    assert response.status_code == 201, response.text


KEYBOARD = {"inline_keyboard": [[{"text": "Approve", "callback_data": "ap:1"}]]}


# -- transport ---------------------------------------------------------------------------


async def test_get_me_is_a_full_bot_user(bot: BotCaller) -> None:
    me = await bot.ok("getMe")
    assert me["id"] == 123456789
    assert me["is_bot"] is True
    assert me["username"]


@pytest.mark.parametrize("method", ["getMe", "getme", "GETME"])
async def test_method_names_are_case_insensitive(
    client: httpx.AsyncClient, token: str, method: str
) -> None:
    response = await client.get(f"/bot{token}/{method}")
    assert response.status_code == 200


async def test_unknown_method_and_malformed_token_are_404(
    client: httpx.AsyncClient, token: str
) -> None:
    not_found = {"ok": False, "error_code": 404, "description": "Not Found"}
    response = await client.post(f"/bot{token}/sendTelepathy")
    assert (response.status_code, response.json()) == (404, not_found)
    response = await client.post("/botnot-a-token/getMe")
    assert (response.status_code, response.json()) == (404, not_found)


async def test_wrong_or_revoked_token_is_401(app: SandboxApp, client: httpx.AsyncClient) -> None:
    other = "987654321:OTHER-token-abcdefghijklmnopqrstuvwx"
    response = await client.get(f"/bot{other}/getMe")
    assert response.status_code == 401
    assert response.json()["description"] == "Unauthorized"


async def test_query_form_json_and_multipart_bodies(
    bot: BotCaller, client: httpx.AsyncClient, token: str
) -> None:
    await private_chat(bot)
    markup = json.dumps(KEYBOARD)
    url = f"/bot{token}/sendMessage"
    responses = [
        await client.get(url, params={"chat_id": 42, "text": "query", "reply_markup": markup}),
        await client.post(url, data={"chat_id": "42", "text": "form", "reply_markup": markup}),
        await client.post(url, json={"chat_id": 42, "text": "json", "reply_markup": KEYBOARD}),
        await client.post(
            url,
            files={
                "chat_id": (None, "42"),
                "text": (None, "multi"),
                "reply_markup": (None, markup),
            },
        ),
    ]
    assert all(response.status_code in (200, 429) for response in responses)


BAD_PARAMETERS = [
    ({"text": "x"}, "chat_id is empty"),
    ({"chat_id": 42}, "message text is empty"),
    ({"chat_id": 42, "text": "   "}, "message text is empty"),
    ({"chat_id": "nope", "text": "x"}, "chat not found"),
    ({"chat_id": 7, "text": "x"}, "chat not found"),
    (
        {"chat_id": 42, "text": "x", "reply_markup": "{oops"},
        "can't parse reply keyboard markup JSON object",
    ),
    ({"chat_id": 42, "text": "x", "parse_mode": "BB"}, "unsupported parse_mode"),
    (
        {"chat_id": 42, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "t"}]]}},
        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("params", "detail"), BAD_PARAMETERS)
async def test_bad_parameters_are_telegram_400s(
    bot: BotCaller, params: dict[str, Any], detail: str
) -> None:
    await private_chat(bot)
    assert await bot.error("sendMessage", **params) == (400, f"Bad Request: {detail}")


async def test_malformed_bodies_are_telegram_400s(client: httpx.AsyncClient, token: str) -> None:
    url = f"/bot{token}/sendMessage"
    bad_json = await client.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["description"] == "Bad Request: can't parse JSON object"
    not_json = await client.post(
        url, content=b'{"chat_id": 42, "text": NaN}', headers={"content-type": "application/json"}
    )
    assert not_json.json()["description"] == "Bad Request: can't parse JSON object"
    not_an_object = await client.post(url, json=[1, 2])
    assert not_an_object.json()["description"] == "Bad Request: JSON object expected"


async def test_unexpected_errors_answer_a_telegram_shaped_500(
    app: SandboxApp, bot: BotCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.sandbox, "get_me", broken)
    status, body = await bot("getMe")
    assert (status, body) == (
        500,
        {"ok": False, "error_code": 500, "description": "Internal Server Error"},
    )


# -- sending and editing -----------------------------------------------------------------


async def test_send_message_returns_a_message(bot: BotCaller, clock: ManualClock) -> None:
    await private_chat(bot)
    message = await bot.ok(
        "sendMessage", chat_id=42, text="<b>Hi</b> there", parse_mode="HTML", reply_markup=KEYBOARD
    )
    assert message["message_id"] == 1
    assert message["date"] == int(clock.now)
    assert message["from"]["is_bot"] is True
    assert message["chat"] == {"id": 42, "type": "private", "first_name": "Ann"}
    assert message["text"] == "Hi there"
    assert message["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    assert message["reply_markup"] == KEYBOARD
    clock.advance(1)
    second = await bot.ok(
        "sendMessage", chat_id=42, text="x", reply_markup={"remove_keyboard": True}
    )
    assert second["message_id"] == 2
    assert "reply_markup" not in second


async def test_parse_errors_and_limits(bot: BotCaller) -> None:
    await private_chat(bot)
    assert await bot.error("sendMessage", chat_id=42, text="Done.", parse_mode="MarkdownV2") == (
        400,
        "Bad Request: can't parse entities: "
        "Character '.' is reserved and must be escaped with the preceding '\\'",
    )
    assert await bot.error("sendMessage", chat_id=42, text="a" * 4097) == (
        400,
        "Bad Request: message is too long",
    )
    too_long_data = {"inline_keyboard": [[{"text": "x", "callback_data": "é" * 33}]]}
    assert await bot.error("sendMessage", chat_id=42, text="x", reply_markup=too_long_data) == (
        400,
        "Bad Request: BUTTON_DATA_INVALID",
    )


async def test_forum_topics_and_replies(bot: BotCaller, clock: ManualClock) -> None:
    response = await bot.control("POST", "/chats", type="forum", title="Ops", topics=["Deploys"])
    forum = response.json()
    chat_id = forum["id"]
    deploys = forum["topics"][1]["message_thread_id"]
    message = await bot.ok(
        "sendMessage", chat_id=chat_id, text="in topic", message_thread_id=deploys
    )
    assert message["message_thread_id"] == deploys
    assert message["is_topic_message"] is True
    assert message["chat"]["is_forum"] is True
    assert await bot.error("sendMessage", chat_id=chat_id, text="x", message_thread_id=999) == (
        400,
        "Bad Request: message thread not found",
    )
    reply = await bot.ok(
        "sendMessage",
        chat_id=chat_id,
        text="reply",
        reply_parameters={"message_id": message["message_id"]},
    )
    assert reply["reply_to_message"]["message_id"] == message["message_id"]
    assert reply["message_thread_id"] == deploys  # a reply stays in its topic
    assert await bot.error(
        "sendMessage", chat_id=chat_id, text="x", reply_parameters={"message_id": 555}
    ) == (
        400,
        "Bad Request: message to be replied not found",
    )
    lenient = await bot.ok(
        "sendMessage",
        chat_id=chat_id,
        text="x",
        reply_parameters=json.dumps({"message_id": 555, "allow_sending_without_reply": True}),
    )
    assert "reply_to_message" not in lenient


async def test_edits_not_modified_and_keyboard_removal(bot: BotCaller, clock: ManualClock) -> None:
    await private_chat(bot)
    sent = await bot.ok("sendMessage", chat_id=42, text="Approve?", reply_markup=KEYBOARD)
    clock.advance(5)
    same = {
        "chat_id": 42,
        "message_id": sent["message_id"],
        "text": "Approve?",
        "reply_markup": KEYBOARD,
    }
    status, description = await bot.error("editMessageText", **same)
    assert (status, description) == (
        400,
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message",
    )
    edited = await bot.ok(
        "editMessageText", chat_id=42, message_id=sent["message_id"], text="Approved"
    )
    assert edited["edit_date"] == int(clock.now)
    assert "reply_markup" not in edited  # leaving reply_markup out removes the keyboard
    clock.advance(5)
    with_keyboard = await bot.ok(
        "editMessageReplyMarkup", chat_id=42, message_id=sent["message_id"], reply_markup=KEYBOARD
    )
    assert with_keyboard["reply_markup"] == KEYBOARD
    assert await bot.error("editMessageText", chat_id=42, message_id=99, text="x") == (
        400,
        "Bad Request: message to edit not found",
    )
    assert await bot.error(
        "editMessageCaption", chat_id=42, message_id=sent["message_id"], caption="c"
    ) == (
        400,
        "Bad Request: there is no caption in the message to edit",
    )
    view = (await bot.control("GET", "/chats/42/messages")).json()
    assert [version["text"] for version in view[0]["edit_history"]] == ["Approve?", "Approved"]


async def test_delete_message(bot: BotCaller, clock: ManualClock) -> None:
    await private_chat(bot)
    first = await bot.ok("sendMessage", chat_id=42, text="one")
    assert await bot.ok("deleteMessage", chat_id=42, message_id=first["message_id"]) is True
    assert await bot.error("deleteMessage", chat_id=42, message_id=first["message_id"]) == (
        400,
        "Bad Request: message to delete not found",
    )
    clock.advance(1)
    old = await bot.ok("sendMessage", chat_id=42, text="two")
    clock.advance(48 * 3600)
    assert await bot.error("deleteMessage", chat_id=42, message_id=old["message_id"]) == (
        400,
        "Bad Request: message can't be deleted for everyone",
    )
    visible = (await bot.control("GET", "/chats/42/messages")).json()
    assert [message["message_id"] for message in visible] == [old["message_id"]]
    everything = await bot.client.get("/sandbox/api/chats/42/messages?include_deleted=true")
    assert [message["deleted"] for message in everything.json()] == [True, False]


async def test_documents_and_photos(
    bot: BotCaller, client: httpx.AsyncClient, token: str, clock: ManualClock
) -> None:
    await private_chat(bot)
    response = await client.post(
        f"/bot{token}/sendDocument",
        data={"chat_id": "42", "caption": "<b>report</b>", "parse_mode": "HTML"},
        files={"document": ("report.csv", b"a,b\n1,2\n", "text/csv")},
    )
    message = response.json()["result"]
    document = message["document"]
    assert document["file_name"] == "report.csv"
    assert document["file_size"] == 8
    assert message["caption"] == "report"
    assert message["caption_entities"] == [{"type": "bold", "offset": 0, "length": 6}]
    download = await client.get(f"/sandbox/api/files/{document['file_id']}")
    assert download.content == b"a,b\n1,2\n"
    clock.advance(1)
    again = await bot.ok("sendDocument", chat_id=42, document=document["file_id"])
    assert again["document"]["file_unique_id"] == document["file_unique_id"]
    png = (
        b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\rIHDR"
        + (640).to_bytes(4, "big")
        + (480).to_bytes(4, "big")
        + b"\x08\x02"
    )
    clock.advance(1)
    response = await client.post(
        f"/bot{token}/sendPhoto",
        data={"chat_id": "42"},
        files={"photo": ("p.png", png, "image/png")},
    )
    photo = response.json()["result"]["photo"][0]
    assert (photo["width"], photo["height"]) == (640, 480)
    clock.advance(1)
    assert await bot.error("sendDocument", chat_id=42, document="nonsense") == (
        400,
        "Bad Request: wrong file identifier/HTTP URL specified",
    )
    assert await bot.error(
        "sendDocument", chat_id=42, document=document["file_id"], caption="a" * 1025
    ) == (
        400,
        "Bad Request: message caption is too long",
    )


async def test_a_person_sends_a_photo_and_a_document_the_bot_fetches_them(
    bot: BotCaller, client: httpx.AsyncClient, token: str, clock: ManualClock
) -> None:
    await private_chat(bot)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (8).to_bytes(4, "big") * 2 + b"\x08\x02"
    png += bytes(range(256)) * 4
    sent = await bot.control(
        "POST",
        "/chats/42/messages",
        photo={"content_base64": base64.b64encode(png).decode()},
        caption="whiteboard",
    )
    assert sent.status_code == 201
    updates = await bot.ok("getUpdates")
    message = updates[-1]["message"]
    assert message["caption"] == "whiteboard"
    (size,) = message["photo"]
    assert (size["width"], size["height"], size["file_size"]) == (8, 8, len(png))
    found = await bot.ok("getFile", file_id=size["file_id"])
    download = await client.get(f"/file/bot{token}/{found['file_path']}")
    assert download.content == png
    # A wrong token gets nothing (Telegram answers 404).
    wrong = await client.get(f"/file/bot1:{'x' * 35}/{found['file_path']}")
    assert wrong.status_code == 404

    clock.advance(1)
    await bot.control(
        "POST",
        "/chats/42/messages",
        document={"file_name": "log.txt", "content_base64": base64.b64encode(b"line\n").decode()},
    )
    document = (await bot.ok("getUpdates", offset=updates[-1]["update_id"] + 1))[-1]["message"][
        "document"
    ]
    assert (document["file_name"], document["mime_type"]) == ("log.txt", "text/plain")
    path = (await bot.ok("getFile", file_id=document["file_id"]))["file_path"]
    assert (await client.get(f"/file/bot{token}/{path}")).content == b"line\n"

    clock.advance(1)
    big = await bot.control(
        "POST",
        "/chats/42/messages",
        document={
            "file_name": "big.bin",
            "content_base64": base64.b64encode(b"x" * (20 * 2**20 + 1)).decode(),
        },
    )
    big_id = big.json()["document"]["file_id"]
    assert await bot.error("getFile", file_id=big_id) == (400, "Bad Request: file is too big")

    not_an_image = await bot.control(
        "POST", "/chats/42/messages", photo={"content_base64": base64.b64encode(b"hi").decode()}
    )
    assert not_an_image.status_code == 400
    assert "not a PNG, GIF or JPEG" in not_an_image.json()["error"]


# -- chat states --------------------------------------------------------------------------


async def test_blocked_deactivated_kicked_and_migrated_chats(bot: BotCaller) -> None:
    await private_chat(bot)
    await private_chat(bot, 43)
    group = (await bot.control("POST", "/chats", type="group", title="G")).json()
    supergroup = (await bot.control("POST", "/chats", type="supergroup", title="S")).json()
    await bot.control("POST", "/chats/42/state", state="blocked")
    await bot.control("POST", "/chats/43/state", state="deactivated")
    await bot.control("POST", f"/chats/{supergroup['id']}/state", state="kicked")
    migrated = (await bot.control("POST", f"/chats/{group['id']}/state", state="migrated")).json()
    new_id = migrated["migrated_to"]["id"]
    assert await bot.error("sendMessage", chat_id=42, text="x") == (
        403,
        "Forbidden: bot was blocked by the user",
    )
    assert await bot.error("sendMessage", chat_id=43, text="x") == (
        403,
        "Forbidden: user is deactivated",
    )
    assert await bot.error("sendMessage", chat_id=supergroup["id"], text="x") == (
        403,
        "Forbidden: bot was kicked from the supergroup chat",
    )
    status, body = await bot("sendMessage", chat_id=group["id"], text="x")
    assert (status, body["description"], body["parameters"]) == (
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": new_id},
    )
    assert (await bot.ok("sendMessage", chat_id=new_id, text="x"))["chat"]["type"] == "supergroup"
    updates = await bot.ok("getUpdates")
    member = next(update["my_chat_member"] for update in updates if "my_chat_member" in update)
    assert member["chat"]["id"] == 42
    assert member["new_chat_member"]["status"] == "kicked"


# -- updates -------------------------------------------------------------------------------


async def test_get_updates_offsets_limits_and_negative_offsets(bot: BotCaller) -> None:
    await private_chat(bot)
    for number in range(5):
        await bot.control("POST", "/chats/42/messages", text=f"/cmd{number}")
    updates = await bot.ok("getUpdates", limit=2)
    assert [update["message"]["text"] for update in updates] == ["/cmd0", "/cmd1"]
    assert updates[0]["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 5}]
    first_id = updates[0]["update_id"]
    assert [update["update_id"] for update in await bot.ok("getUpdates", offset=first_id + 2)] == [
        first_id + 2, first_id + 3, first_id + 4,
    ]  # fmt: skip
    assert len(await bot.ok("getUpdates")) == 3  # confirmed updates are gone
    assert [update["update_id"] for update in await bot.ok("getUpdates", offset=-1)] == [
        first_id + 4
    ]
    assert len(await bot.ok("getUpdates")) == 1


async def test_allowed_updates_persist(bot: BotCaller) -> None:
    await private_chat(bot)
    await bot.ok("getUpdates", allowed_updates=["callback_query"])
    await bot.control("POST", "/chats/42/messages", text="ignored")
    assert await bot.ok("getUpdates") == []
    await bot.ok("getUpdates", allowed_updates=[])
    await bot.control("POST", "/chats/42/messages", text="seen")
    assert len(await bot.ok("getUpdates")) == 1


async def test_long_poll_wakes_on_enqueue(bot: BotCaller) -> None:
    await private_chat(bot)
    poll = asyncio.create_task(bot("getUpdates", timeout=30))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await bot.control("POST", "/chats/42/messages", text="hello")
    status, body = await asyncio.wait_for(poll, 5)
    assert status == 200
    assert body["result"][0]["message"]["text"] == "hello"


async def test_second_poller_ends_the_first_with_409(bot: BotCaller) -> None:
    first = asyncio.create_task(bot("getUpdates", timeout=30))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(bot("getUpdates", timeout=0.2))
    status, body = await asyncio.wait_for(first, 5)
    assert (status, body["description"]) == (
        409,
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running",
    )
    assert (await second)[0] == 200


async def test_press_answer_and_query_expiry(bot: BotCaller, clock: ManualClock) -> None:
    await private_chat(bot)
    sent = await bot.ok("sendMessage", chat_id=42, text="Approve?", reply_markup=KEYBOARD)
    path = f"/chats/42/messages/{sent['message_id']}/press"
    refused = await bot.control("POST", path, callback_data="forged")
    assert refused.status_code == 400
    forged = await bot.control("POST", path, callback_data="forged", forge=True)
    assert forged.status_code == 201
    pressed = (await bot.control("POST", path, text="Approve")).json()
    updates = await bot.ok("getUpdates")
    query = updates[-1]["callback_query"]
    assert query["id"] == pressed["callback_query_id"]
    assert query["data"] == "ap:1"
    assert query["from"]["id"] == 42
    assert query["message"]["message_id"] == sent["message_id"]
    assert await bot.ok("answerCallbackQuery", callback_query_id=query["id"], text="Done") is True
    too_old = (
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )
    assert await bot.error("answerCallbackQuery", callback_query_id=query["id"]) == too_old
    clock.advance(16 * 60)
    assert (
        await bot.error("answerCallbackQuery", callback_query_id=forged.json()["callback_query_id"])
        == too_old
    )
    answers = (await bot.control("GET", "/callback_queries")).json()
    assert [answer["answer"]["text"] for answer in answers if answer["answered"]] == ["Done"]


# -- webhooks (configuration; delivery is tested against a real receiver) -----------------


async def test_webhook_configuration_rules(bot: BotCaller, clock: ManualClock) -> None:
    assert await bot.error("setWebhook", url="http://example.com/hook") == (
        400,
        "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
    )
    assert await bot.error("setWebhook", url="https://example.com:1234/hook") == (
        400,
        "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
    )
    assert await bot.error(
        "setWebhook", url="http://127.0.0.1:9/hook", secret_token="no spaces"
    ) == (
        400,
        "Bad Request: secret token contains unallowed characters",
    )
    status, body = await bot("setWebhook", url="http://127.0.0.1:9/hook", secret_token="s3cret")
    assert (status, body["description"]) == (200, "Webhook was set")
    status, body = await bot("setWebhook", url="http://127.0.0.1:9/other")
    assert (status, body["parameters"]) == (429, {"retry_after": 1})
    assert await bot.error("getUpdates") == (
        409,
        "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first",
    )
    info = await bot.ok("getWebhookInfo")
    assert info["url"] == "http://127.0.0.1:9/hook"
    clock.advance(1)
    status, body = await bot("deleteWebhook", drop_pending_updates=True)
    assert (status, body["description"]) == (200, "Webhook was deleted")
    assert (await bot.ok("getWebhookInfo"))["url"] == ""
    assert await bot.ok("getUpdates") == []


# -- flood control over HTTP, control knobs -----------------------------------------------


async def test_flood_control_over_http_counts_edits(bot: BotCaller, clock: ManualClock) -> None:
    await private_chat(bot)
    sent = await bot.ok("sendMessage", chat_id=42, text="one")
    status, body = await bot(
        "editMessageText", chat_id=42, message_id=sent["message_id"], text="two"
    )
    assert (status, body["parameters"]) == (429, {"retry_after": 1})
    clock.advance(1)
    await bot.ok("editMessageText", chat_id=42, message_id=sent["message_id"], text="two")
    await bot.control("POST", "/flood", global_penalty_s=30)
    clock.advance(1)
    status, body = await bot("sendMessage", chat_id=42, text="x")
    assert (status, body["parameters"]) == (429, {"retry_after": 29})
    flood = (await bot.control("POST", "/flood", enabled=False, global_penalty_s=0)).json()
    assert flood["enabled"] is False
    await bot.ok("sendMessage", chat_id=42, text="free")


async def test_clock_control(bot: BotCaller, clock: ManualClock) -> None:
    before = (await bot.control("POST", "/clock", freeze=True)).json()
    assert before["frozen"] is True
    clock.advance(100)  # the base clock moves, the frozen sandbox clock does not
    assert (await bot.control("GET", "/clock")).json()["now"] == before["now"]
    after = (await bot.control("POST", "/clock", advance_s=2.5)).json()
    assert after["now"] == before["now"] + 2.5


async def test_faults_calls_stats_and_reset(bot: BotCaller) -> None:
    await private_chat(bot)
    await bot.control("POST", "/faults", method="sendMessage", times=2, status=500)
    await bot.control(
        "POST", "/faults", method="getme", status=502, raw_body="<html>Bad Gateway</html>"
    )
    await bot.control(
        "POST", "/faults", method="getChat", status=429, parameters={"retry_after": 7}
    )
    assert await bot.error("sendMessage", chat_id=42, text="x") == (500, "Internal Server Error")
    assert await bot.error("sendMessage", chat_id=42, text="x") == (500, "Internal Server Error")
    response = await bot.client.get(f"/bot{bot.token}/getMe")
    assert (response.status_code, response.text) == (502, "<html>Bad Gateway</html>")
    status, body = await bot("getChat", chat_id=42)
    assert (status, body["description"], body["parameters"]) == (
        429,
        "Too Many Requests: retry after 7",
        {"retry_after": 7},
    )
    await bot.ok("sendMessage", chat_id=42, text="fine")
    calls = (await bot.client.get("/sandbox/api/calls", params={"method": "sendmessage"})).json()
    assert [(call["status"], call["chat_id"], call["ok"]) for call in calls] == [
        (500, 42, False),
        (500, 42, False),
        (200, 42, True),
    ]
    since = calls[-1]["timestamp"]
    assert len((await bot.client.get("/sandbox/api/calls", params={"since": since})).json()) >= 1
    stats = (await bot.control("GET", "/stats")).json()
    assert stats["calls_by_status"]["500"] == 2
    assert stats["messages_by_bot"] == 1
    await bot.control("POST", "/reset")
    assert (await bot.control("GET", "/chats")).json() == []
    assert (await bot.control("GET", "/calls")).json() == []


async def test_get_chat_commands_and_chat_action(bot: BotCaller) -> None:
    await private_chat(bot)
    info = await bot.ok("getChat", chat_id=42)
    assert info["id"] == 42
    assert "accent_color_id" in info
    assert (
        await bot.ok("setMyCommands", commands=[{"command": "mute", "description": "Mute"}]) is True
    )
    assert await bot.ok("getMyCommands") == [{"command": "mute", "description": "Mute"}]
    assert await bot.error(
        "setMyCommands", commands=[{"command": "Bad Name", "description": "x"}]
    ) == (
        400,
        "Bad Request: BOT_COMMAND_INVALID",
    )
    assert await bot.ok("sendChatAction", chat_id=42, action="typing") is True


async def test_control_api_refuses_bad_requests(client: httpx.AsyncClient) -> None:
    assert (await client.post("/sandbox/api/chats", json={"type": "room"})).status_code == 400
    assert (
        await client.post("/sandbox/api/chats/5/messages", json={"text": "x"})
    ).status_code == 404
    assert (await client.post("/sandbox/api/chats", content=b"[")).status_code == 400
    assert (await client.get("/sandbox/api/chats/abc")).status_code == 400
    created = await client.post("/sandbox/api/chats", json={"type": "private", "id": 7})
    assert created.status_code == 201
    assert (
        await client.post("/sandbox/api/chats", json={"type": "private", "id": 7})
    ).status_code == 409


async def test_legacy_test_routes(bot: BotCaller, client: httpx.AsyncClient) -> None:
    await private_chat(bot)
    sent = await bot.ok("sendMessage", chat_id=42, text="x", reply_markup=KEYBOARD)
    assert (
        await client.post("/_test/message", json={"chat_id": 42, "text": "hi"})
    ).status_code == 201
    press = await client.post(
        "/_test/press", json={"chat_id": 42, "message_id": sent["message_id"], "data": "ap:1"}
    )
    assert press.status_code == 201
    assert len((await client.get("/_test/chats/42/messages")).json()) == 2
    assert (await client.post("/_test/fail", json={"status": 500})).status_code == 201
    assert len((await client.get("/_test/calls")).json()) == 1


async def test_updates_expire_after_a_day(bot: BotCaller, clock: ManualClock) -> None:
    await private_chat(bot)
    await bot.control("POST", "/chats/42/messages", text="old")
    clock.advance(24 * 3600 + 1)
    await bot.control("POST", "/chats/42/messages", text="new")
    assert [update["message"]["text"] for update in await bot.ok("getUpdates")] == ["new"]


async def test_a_press_on_an_old_message_carries_an_inaccessible_message(
    bot: BotCaller, clock: ManualClock
) -> None:
    await private_chat(bot)
    sent = await bot.ok("sendMessage", chat_id=42, text="old", reply_markup=KEYBOARD)
    clock.advance(49 * 3600)
    await bot.control("POST", f"/chats/42/messages/{sent['message_id']}/press", text="Approve")
    [update] = await bot.ok("getUpdates")
    assert update["callback_query"]["message"] == {
        "chat": {"id": 42, "type": "private", "first_name": "Ann"},
        "message_id": sent["message_id"],
        "date": 0,
    }


async def test_faults_match_by_chat(bot: BotCaller, clock: ManualClock) -> None:
    await private_chat(bot, 42)
    await private_chat(bot, 43)
    await bot.control("POST", "/faults", chat_id=43, status=403, description="Forbidden: nope")
    await bot.ok("sendMessage", chat_id=42, text="unaffected")
    assert await bot.error("sendMessage", chat_id=43, text="x") == (403, "Forbidden: nope")
    assert (await bot.control("GET", "/faults")).json() == []


def test_update_ids_keep_growing_across_restarts() -> None:
    """A client's offset stored during an earlier run must never hide a new run's updates."""
    import time

    from cctelegram_sandbox.config import SandboxConfig
    from cctelegram_sandbox.state import Sandbox

    earlier = Sandbox(SandboxConfig()).updates.next_update_id
    time.sleep(1.01)
    later = Sandbox(SandboxConfig()).updates.next_update_id
    assert later > earlier > 1_000_000_000
    assert Sandbox(SandboxConfig(first_update_id=1)).updates.next_update_id == 1
