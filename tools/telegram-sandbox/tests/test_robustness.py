"""Whatever a client sends, the answer is Telegram-shaped and never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cctelegram_sandbox import create_app
from cctelegram_sandbox.config import ManualClock, SandboxConfig

TOKEN = "123456789:TEST-token-abcdefghijklmnopqrstuvwxyz"
METHODS = [
    "sendMessage", "sendDocument", "sendPhoto", "editMessageText", "editMessageReplyMarkup",
    "editMessageCaption", "deleteMessage", "answerCallbackQuery", "getChat", "setMyCommands",
    "getMyCommands", "sendChatAction", "getFile", "getWebhookInfo", "getMe",
]  # fmt: skip
PARAMETER_NAMES = [
    "chat_id", "text", "parse_mode", "entities", "reply_markup", "message_id", "caption",
    "message_thread_id", "reply_parameters", "reply_to_message_id", "document", "photo",
    "callback_query_id", "commands", "action", "file_id", "allow_sending_without_reply",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
chat_ids = st.sampled_from([42, "42", -1002000000001, "@nobody", 0, "", "x"])
markups = st.sampled_from(
    [
        '{"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}',
        {"inline_keyboard": "no"},
        {"inline_keyboard": [["no"]]},
        {"inline_keyboard": [[{"text": 1, "url": 2}]]},
        "[]",
    ]
)
parameters = st.dictionaries(
    st.sampled_from(PARAMETER_NAMES), json_values | chat_ids | markups, max_size=6
)


async def call(method: str, params: dict[str, Any], as_form: bool) -> httpx.Response:
    app = create_app(SandboxConfig(token=TOKEN, clock=ManualClock()))
    app.sandbox.create_chat("private", user={"id": 42, "first_name": "Ann"})
    app.sandbox.create_chat("forum", chat_id=-1002000000001, topics=["a"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        await client.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": 42, "text": "seed"})
        url = f"/bot{TOKEN}/{method}"
        if as_form:
            form = {
                name: value if isinstance(value, str) else str(value)
                for name, value in params.items()
            }
            return await client.post(url, data=form)
        return await client.post(url, json=params)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(METHODS), parameters, st.booleans())
def test_random_parameters_get_a_telegram_envelope(
    method: str, params: dict[str, Any], as_form: bool
) -> None:
    response = asyncio.run(call(method, params, as_form))
    assert response.status_code in (200, 400, 403, 429), response.text
    body = response.json()
    assert body["ok"] is (response.status_code == 200)
    if not body["ok"]:
        assert body["error_code"] == response.status_code
        assert body["description"].startswith(("Bad Request: ", "Forbidden: ", "Too Many"))
