"""A full approval round trip through the real processes: MCP → events → notifier → sandbox,
a press in the sandbox → wait_for_approval returns, and the card is edited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.mcp import mcp_client
from cctelegram_testing.suite import RunningSuite, start_suite

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    running = start_suite(Path(tmp_path_factory.mktemp("events-e2e")))
    try:
        yield running
    finally:
        running.stop()


def card_message(sandbox_url: str, needle: str, timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", timeout=5)
        response.raise_for_status()
        for message in response.json():
            if needle in (message.get("text") or ""):
                return dict(message)
        time.sleep(0.05)
    raise AssertionError(f"no card with {needle!r} in the sandbox chat")


async def test_press_in_the_sandbox_returns_from_wait_for_approval(suite: RunningSuite) -> None:
    title = f"Ship build {time.monotonic_ns()}?"
    async with mcp_client(suite.mcp_url, suite.api_key) as client:
        sent = await client.call_tool(
            "send_approval_request",
            {
                "title": title,
                "description": "Release <1.2> & notes",
                "options": ["Ship it", "Hold", "Roll back"],
            },
        )
        assert not sent.is_error, sent
        approval_id = sent.structured_content["approval_id"]  # type: ignore[index]

        card = card_message(suite.sandbox_url, title)
        buttons = [b for row in card["reply_markup"]["inline_keyboard"] for b in row]
        assert [b["text"] for b in buttons] == ["Ship it", "Hold", "Roll back"]

        waiting = asyncio.create_task(
            client.call_tool(
                "wait_for_approval", {"approval_id": approval_id, "timeout_seconds": 60}
            )
        )
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(timeout=10) as sandbox:
            pressed = await sandbox.post(
                f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages/"
                f"{card['message_id']}/press",
                json={"callback_data": buttons[2]["callback_data"]},
            )
            pressed.raise_for_status()
        result = await asyncio.wait_for(waiting, 60)
        assert not result.is_error, result
        structured = result.structured_content or {}
        assert structured["status"] == "decided"
        assert structured["approval"]["chosen_option"] == "Roll back"
        assert structured["timed_out"] is False

        # The card is edited (decision line, buttons removed) shortly after the decision.
        edited = card_message(suite.sandbox_url, title)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "☑️" not in (edited.get("text") or ""):
            await asyncio.sleep(0.1)
            edited = card_message(suite.sandbox_url, title)
        assert "☑️ Roll back" in edited["text"]
        assert not (edited.get("reply_markup") or {}).get("inline_keyboard")
