"""Strict mode: a parameter the Bot API does not define is refused with a 400 and recorded;
without it the sandbox ignores the parameter as Telegram does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cctelegram_sandbox.app import create_app
from cctelegram_sandbox.config import ManualClock
from cctelegram_sandbox.strict import KNOWN_PARAMETERS
from cctelegram_testing.sandbox import run_sandbox

TOKEN = "123456789:SANDBOX-strict-token-0123456789abc"


async def _client(strict: bool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(token=TOKEN, clock=ManualClock(), strict_params=strict, flood_control=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        response = await client.post(
            "/sandbox/api/chats", json={"type": "private", "user": {"id": 42, "first_name": "A"}}
        )
        assert response.status_code == 201, response.text
        yield client


@pytest.fixture
async def strict() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(strict=True):
        yield client


@pytest.fixture
async def lenient() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(strict=False):
        yield client


async def _call(client: httpx.AsyncClient, method: str, **params: Any) -> httpx.Response:
    return await client.post(f"/bot{TOKEN}/{method}", json=params)


async def test_strict_mode_refuses_an_unknown_send_message_parameter_and_records_it(
    strict: httpx.AsyncClient,
) -> None:
    response = await _call(strict, "sendMessage", chat_id=42, text="hi", digest_of=["e1"])
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert body["error_code"] == 400
    assert body["description"].startswith("Bad Request: unknown parameter")
    assert "digest_of" in body["description"]
    messages = (await strict.get("/sandbox/api/chats/42/messages")).json()
    assert messages == []  # refused before anything happened
    (call,) = (await strict.get("/sandbox/api/calls")).json()
    assert call["method"] == "sendMessage"
    assert call["status"] == 400
    assert call["params"]["digest_of"] == ["e1"]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("editMessageText", {"chat_id": 42, "message_id": 1, "text": "x", "extra": 1}),
        ("editMessageReplyMarkup", {"chat_id": 42, "message_id": 1, "parse_mode": "HTML"}),
        ("answerCallbackQuery", {"callback_query_id": "1", "chat_id": 42}),
        ("sendDocument", {"chat_id": 42, "document": "https://x.test/a", "entities": []}),
    ],
)
async def test_strict_mode_refuses_unknown_parameters_of_every_outbox_method(
    strict: httpx.AsyncClient, method: str, params: dict[str, Any]
) -> None:
    response = await _call(strict, method, **params)
    assert response.status_code == 400
    assert "unknown parameter" in response.json()["description"]


async def test_strict_mode_accepts_every_documented_parameter(strict: httpx.AsyncClient) -> None:
    response = await _call(
        strict,
        "sendMessage",
        chat_id=42,
        text="<b>hi</b>",
        parse_mode="HTML",
        protect_content=True,
        link_preview_options={"is_disabled": True},
        disable_notification=True,
        reply_markup={"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]},
    )
    assert response.status_code == 200, response.text
    message_id = response.json()["result"]["message_id"]
    edited = await _call(
        strict, "editMessageText", chat_id=42, message_id=message_id, text="done",
        link_preview_options={"is_disabled": True},
    )  # fmt: skip
    assert edited.status_code == 200, edited.text


async def test_without_strict_mode_unknown_parameters_are_ignored_like_telegram(
    lenient: httpx.AsyncClient,
) -> None:
    response = await _call(lenient, "sendMessage", chat_id=42, text="hi", digest_of=["e1"])
    assert response.status_code == 200, response.text


def test_every_method_served_has_its_parameter_list() -> None:
    from cctelegram_sandbox.bot_api import METHODS

    assert set(METHODS) == set(KNOWN_PARAMETERS)


def test_the_test_helper_and_the_command_line_turn_strict_mode_on() -> None:
    with run_sandbox(subprocess=True, auto_create_chats=True) as sandbox:
        refused = sandbox.bot("sendMessage", chat_id=7, text="hi", digest_of=["e1"])
        assert refused["error_code"] == 400
    with run_sandbox(strict_params=False, auto_create_chats=True) as sandbox:
        assert sandbox.bot("sendMessage", chat_id=7, text="hi", digest_of=["e1"])["ok"] is True
