"""Modes per client through the whole suite (`cctelegram up`, the official MCP client, the
sandbox): one agent mutes itself and another is still heard; a person opens `/mode` in
Telegram, presses the muted client's 🔔 button, the listing is edited in place and one digest
of what was suppressed arrives."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp import Client

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.mcp import mcp_client
from cctelegram_testing.suite import RunningSuite

from .test_tools import call, chat_messages, eventually, keyboard_of, message_with

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def connect(suite: RunningSuite, key: str | None = None) -> AsyncIterator[Client]:
    async with mcp_client(suite.mcp_url, key or suite.api_key) as client:
        yield client


def sandbox(suite: RunningSuite, path: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/{path}", json=body)
    response.raise_for_status()


async def test_one_client_mutes_itself_and_a_person_unmutes_it_from_mode(
    suite: RunningSuite,
) -> None:
    tag = uuid.uuid4().hex[:6]
    async with connect(suite) as admin:
        created = await call(
            admin, "create_api_key", {"client_id": f"quiet-agent-{tag}", "role": "agent"}
        )
        other = await call(
            admin, "create_api_key", {"client_id": f"loud-agent-{tag}", "role": "agent"}
        )
    quiet_id = f"quiet-agent-{tag}"
    async with (
        connect(suite, created["api_key"]) as quiet,
        connect(suite, other["api_key"]) as loud,
    ):
        muted = await call(quiet, "switch_to_mute_mode")
        assert (muted["mode"], muted["client_id"]) == ("mute", quiet_id)
        await call(quiet, "send_telegram_message", {"message": f"unheard-{tag}"})
        await call(
            quiet,
            "send_telegram_event",
            {"type": "build_failed", "title": f"broke-{tag}", "description": "exit 1"},
        )
        await call(loud, "send_telegram_message", {"message": f"heard-{tag}"})
        await eventually(lambda: message_with(suite, f"heard-{tag}"), what="the other client")
        assert not message_with(suite, f"unheard-{tag}")
        assert not message_with(suite, f"broke-{tag}")

        sandbox(suite, "messages", {"user_id": DEMO_USER_ID, "text": "/mode"})
        listing = await eventually(
            lambda: (
                message_with(suite, f"{quiet_id}</code>: 🔕 mute")
                or message_with(suite, f"{quiet_id}: 🔕 mute")
            ),
            what="/mode listing",
        )
        row = next(r for r in keyboard_of(listing) if r[0]["text"].endswith(quiet_id))
        sandbox(
            suite,
            f"messages/{listing['message_id']}/press",
            {"user_id": DEMO_USER_ID, "text": row[0]["text"]},
        )

        digest = await eventually(
            lambda: message_with(suite, f"While {quiet_id} was muted"), what="the digest"
        )
        assert "(2 suppressed" in digest["text"]
        assert f"broke-{tag}" in digest["text"]  # failures listed; the message is counted

        def edited() -> dict[str, Any] | None:
            now = next(m for m in chat_messages(suite) if m["message_id"] == listing["message_id"])
            return now if f"{quiet_id}: 🔔 nomad" in now["text"] else None

        await eventually(edited, what="the listing edited in place")
        await call(quiet, "send_telegram_message", {"message": f"heard-again-{tag}"})
        await eventually(lambda: message_with(suite, f"heard-again-{tag}"), what="unmuted")
