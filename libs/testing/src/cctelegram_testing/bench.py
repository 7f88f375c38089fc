"""What the benchmarks in ``bench/`` share: percentiles, finding a card in the sandbox chat,
and the press → ``wait_for_approval`` round trip (approval_roundtrip.py, approvals_at_scale.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.mcp import mcp_client
from cctelegram_testing.suite import RunningSuite

WARM_UP_ROUNDS = 3


def percentile(values: list[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of the sorted values (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def find_card(sandbox: httpx.AsyncClient, title: str, attempts: int = 800) -> dict[str, Any]:
    """The demo user's message that holds ``title`` and a keyboard (polled every 25 ms)."""
    for _ in range(attempts):
        response = await sandbox.get(f"/sandbox/api/chats/{DEMO_USER_ID}/messages")
        for message in response.json():
            if title in (message.get("text") or "") and message.get("reply_markup"):
                return dict(message)
        await asyncio.sleep(0.025)
    raise RuntimeError(f"card {title!r} never arrived")


async def approval_round_trips(suite: RunningSuite, rounds: int, label: str) -> list[float]:
    """Milliseconds from a press in the sandbox to ``wait_for_approval`` returning, per round
    (after a few warm-up rounds): send_approval_request over MCP, find the card, start the
    wait, press the first button through the sandbox control API."""
    latencies_ms: list[float] = []
    async with (
        mcp_client(suite.mcp_url, suite.api_key) as client,
        httpx.AsyncClient(base_url=suite.sandbox_url, timeout=10) as sandbox,
    ):
        for number in range(rounds + WARM_UP_ROUNDS):
            title = f"{label} {number} {time.monotonic_ns()}"
            sent = await client.call_tool(
                "send_approval_request", {"title": title, "description": "bench"}
            )
            approval_id = (sent.structured_content or {})["approval_id"]
            card = await find_card(sandbox, title)
            data = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            waiting = asyncio.create_task(
                client.call_tool(
                    "wait_for_approval", {"approval_id": approval_id, "timeout_seconds": 30}
                )
            )
            await asyncio.sleep(0.15)  # the watch is in place before the press
            started = time.perf_counter()
            pressed = await sandbox.post(
                f"/sandbox/api/chats/{DEMO_USER_ID}/messages/{card['message_id']}/press",
                json={"callback_data": data},
            )
            pressed.raise_for_status()
            result = await waiting
            elapsed_ms = (time.perf_counter() - started) * 1000
            status = (result.structured_content or {}).get("status")
            if status != "approved":
                raise RuntimeError(f"round {number}: status {status}")
            if number >= WARM_UP_ROUNDS:  # the first rounds warm caches and connections
                latencies_ms.append(elapsed_ms)
    return latencies_ms
