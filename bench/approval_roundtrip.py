"""Latency from a button press in the Telegram sandbox to `wait_for_approval` returning.

Starts the whole suite with `cctelegram up` (embedded NATS, sandbox, five services), then for
each round: `send_approval_request` over MCP, find the card in the sandbox chat, start
`wait_for_approval`, press a button through the sandbox control API, and time press → result.
The path measured: sandbox getUpdates long poll → notifier → NATS → events (MAC, approver,
compare-and-set) → KV watch in the gateway → MCP response. Prints p50 / p90 / p99 / max.

    uv run python bench/approval_roundtrip.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from cctelegram_cli.up import DEMO_USER_ID
from cctelegram_testing.suite import start_suite


async def find_card(sandbox: httpx.AsyncClient, title: str) -> dict[str, Any]:
    for _ in range(400):
        response = await sandbox.get(f"/sandbox/api/chats/{DEMO_USER_ID}/messages")
        for message in response.json():
            if title in (message.get("text") or "") and message.get("reply_markup"):
                return dict(message)
        await asyncio.sleep(0.025)
    raise RuntimeError(f"card {title!r} never arrived")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def run(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        suite = start_suite(Path(data_dir))
        try:
            latencies_ms: list[float] = []
            async with (
                httpx2.AsyncClient(
                    headers={"Authorization": f"Bearer {suite.api_key}"},
                    timeout=httpx2.Timeout(30, read=150),
                ) as http,
                Client(streamable_http_client(suite.mcp_url, http_client=http)) as client,
                httpx.AsyncClient(base_url=suite.sandbox_url, timeout=10) as sandbox,
            ):
                for number in range(rounds + 3):
                    title = f"Bench approval {number} {time.monotonic_ns()}"
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
                    if number >= 3:  # the first rounds warm caches and connections
                        latencies_ms.append(elapsed_ms)
        finally:
            suite.stop()
    print(f"approval round trip, press in sandbox → wait_for_approval returns ({rounds} rounds)")
    print(f"  p50  {percentile(latencies_ms, 0.50):7.1f} ms   (target ≤ 100 ms)")
    print(f"  p90  {percentile(latencies_ms, 0.90):7.1f} ms")
    print(f"  p99  {percentile(latencies_ms, 0.99):7.1f} ms   (target ≤ 300 ms)")
    print(f"  max  {max(latencies_ms):7.1f} ms   mean {statistics.fmean(latencies_ms):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
