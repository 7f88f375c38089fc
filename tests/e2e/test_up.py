"""`make run` as a new user meets it: one block printed, a message through MCP reaches the
sandbox chat, the key survives a restart, and stopping leaves nothing running."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.mcp import mcp_client
from cctelegram_testing.suite import processes_mentioning, start_suite

pytestmark = pytest.mark.e2e


async def call_tool(url: str, key: str, name: str, arguments: dict[str, object]) -> object:
    async with mcp_client(url, key, read_timeout_s=120) as client:
        return await client.call_tool(name, arguments)


def wait_for_chat_text(sandbox_url: str, chat_id: int, needle: str, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        response = httpx.get(f"{sandbox_url}/sandbox/api/chats/{chat_id}/messages", timeout=5)
        if response.status_code == 200 and needle in response.text:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in chat {chat_id}")


async def test_up_prints_block_delivers_a_message_reuses_key_and_stops_clean(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    suite = start_suite(data_dir)
    try:
        assert suite.mcp_url.endswith("/mcp")
        assert "claude mcp add --transport http cctelegram" in suite.banner
        assert suite.api_key in suite.banner
        key_file = data_dir / "dev-api-key"
        assert key_file.read_text().strip() == suite.api_key
        assert key_file.stat().st_mode & 0o777 == 0o600

        result = await call_tool(
            suite.mcp_url, suite.api_key, "send_telegram_message", {"message": "Hello from e2e"}
        )
        assert not result.is_error, result
        structured = result.structured_content or {}
        assert structured.get("success") is True
        assert structured.get("event_id")
        wait_for_chat_text(suite.sandbox_url, DEMO_USER_ID, "Hello from e2e", timeout_s=15)
    finally:
        assert suite.stop() == 0
    assert processes_mentioning(str(data_dir)) == []
    # Every Bot API URL carried the bot token and every call the key: no log line may.
    bot_token = (data_dir / "sandbox-token").read_text().strip()
    logs = list((data_dir / "logs").glob("*.log"))
    assert {path.stem for path in logs} >= {"auth", "events", "gateway", "bridge-manager"}
    for path in logs:
        text = path.read_text(errors="replace")
        assert suite.api_key not in text, path
        assert bot_token.split(":", 1)[1] not in text, path

    again = start_suite(data_dir)
    try:
        assert again.api_key == suite.api_key
    finally:
        assert again.stop() == 0
    assert processes_mentioning(str(data_dir)) == []


def test_a_port_in_use_gives_one_clear_line_and_starts_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy_port = blocker.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "cctelegram_cli", "up"],
            env={
                "PATH": "/usr/bin:/bin",
                "CCTELEGRAM_DATA_DIR": str(tmp_path / "data"),
                "CCTELEGRAM_GATEWAY_PORT": str(busy_port),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"port {busy_port} is already in use" in lines[0]
    assert "CCTELEGRAM_GATEWAY_PORT" in lines[0]
    assert processes_mentioning(str(tmp_path / "data")) == []
