"""The person on the other side: find cards in the sandbox chat, press buttons, reply."""

from __future__ import annotations

import time
from typing import Any

import httpx

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.suite import RunningSuite


def chat_messages(suite: RunningSuite, chat_id: int = DEMO_USER_ID) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{suite.sandbox_url}/sandbox/api/chats/{chat_id}/messages", timeout=5, trust_env=False
    )
    response.raise_for_status()
    return list(response.json())


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [button["text"] for row in markup.get("inline_keyboard") or [] for button in row]


def find_message(suite: RunningSuite, *needles: str) -> dict[str, Any] | None:
    for message in reversed(chat_messages(suite)):
        text = message.get("text") or ""
        if all(needle in text for needle in needles):
            return message
    return None


def wait_for_message(
    suite: RunningSuite, *needles: str, timeout_s: float = 60, with_buttons: bool | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = find_message(suite, *needles)
        if found is not None and (with_buttons is None or bool(buttons(found)) == with_buttons):
            return found
        time.sleep(0.05)
    raise AssertionError(f"no sandbox message with {needles!r} within {timeout_s} s")


def press(
    suite: RunningSuite, message: dict[str, Any], label: str, user_id: int = DEMO_USER_ID
) -> httpx.Response:
    return httpx.post(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages/"
        f"{message['message_id']}/press",
        json={"user_id": user_id, "text": label},
        timeout=5,
        trust_env=False,
    )


def reply(suite: RunningSuite, message: dict[str, Any], text: str) -> None:
    httpx.post(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages",
        json={"user_id": DEMO_USER_ID, "text": text, "reply_to_message_id": message["message_id"]},
        timeout=5,
        trust_env=False,
    ).raise_for_status()


def command(suite: RunningSuite, text: str) -> None:
    """The person sends a bot command (e.g. ``/rules``) in their chat."""
    httpx.post(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages",
        json={"user_id": DEMO_USER_ID, "text": text},
        timeout=5,
        trust_env=False,
    ).raise_for_status()
