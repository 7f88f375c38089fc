"""The Bot API client: answers mapped to errors, and no error ever carries the token."""

from __future__ import annotations

import httpx
import pytest

from cctelegram_notifier.settings import TelegramHttpSettings
from cctelegram_notifier.telegram import HttpBotApi, TelegramError, TelegramUnavailableError
from cctelegram_testing.nats import free_port

TOKEN = "123456789:AAH-secret-token-that-must-never-be-logged"


async def test_network_errors_name_the_method_never_the_url() -> None:
    bot = HttpBotApi(f"http://127.0.0.1:{free_port()}", TOKEN, TelegramHttpSettings())
    with pytest.raises(TelegramUnavailableError) as caught:
        await bot.call("sendMessage", {"chat_id": 1, "text": "x"})
    await bot.aclose()
    assert "sendMessage" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert "secret" not in repr(caught.value)
    assert caught.value.__cause__ is None  # the httpx error (URL inside) is not chained
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"ok": True, "result": {"message_id": 5}}, {"message_id": 5}),
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            },
            TelegramError,
        ),
        (502, "<html>Bad Gateway</html>", TelegramUnavailableError),
        (
            500,
            {"ok": False, "error_code": 500, "description": "Internal"},
            TelegramUnavailableError,
        ),
    ],
)
async def test_answers_become_results_or_typed_errors(
    status: int, body: object, expected: object
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/bot{TOKEN}/sendMessage"
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    bot = HttpBotApi("https://api.telegram.org", TOKEN, TelegramHttpSettings())
    bot._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    try:
        if isinstance(expected, type):
            with pytest.raises(expected) as caught:
                await bot.call("sendMessage", {"chat_id": 1, "text": "x"})
            assert TOKEN not in str(caught.value)
            if isinstance(caught.value, TelegramError):
                assert caught.value.retry_after_s == 3
        else:
            assert await bot.call("sendMessage", {"chat_id": 1, "text": "x"}) == expected
    finally:
        await bot.aclose()
