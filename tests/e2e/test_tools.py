"""Every tool through the official MCP client against `cctelegram up` and the sandbox, the way an
agent uses them: notifications, idempotency, approvals decided by a press, a text reply, expiry
with on_timeout and cancel (final card text and keyboard checked), responses, tasks, modes,
bridge status and control, resources, and field-level errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp import Client

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.mcp import call_ok, mcp_client
from cctelegram_testing.suite import RunningSuite

pytestmark = pytest.mark.e2e

COMPAT_TOOLS = {
    "send_telegram_event",
    "send_telegram_message",
    "send_task_completion",
    "send_performance_alert",
    "send_approval_request",
    "get_telegram_responses",
    "get_bridge_status",
    "list_event_types",
    "clear_old_responses",
    "process_pending_responses",
    "start_bridge",
    "stop_bridge",
    "restart_bridge",
    "ensure_bridge_running",
    "check_bridge_process",
    "get_task_status",
    "register_claude_todos",
    "todo",
    "switch_to_nomad_mode",
    "switch_to_local_mode",
    "switch_to_mute_mode",
}
NEW_TOOLS = {"wait_for_approval", "get_approval", "cancel_approval", "get_event_status"}


@contextlib.asynccontextmanager
async def connect(suite: RunningSuite) -> AsyncIterator[Client]:
    async with mcp_client(suite.mcp_url, suite.api_key) as client:
        yield client


call = call_ok


def chat_messages(suite: RunningSuite) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", timeout=5
    )
    response.raise_for_status()
    return list(response.json())


async def eventually(predicate: Any, timeout_s: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not met in {timeout_s}s")


def message_with(suite: RunningSuite, needle: str) -> dict[str, Any] | None:
    return next((m for m in chat_messages(suite) if needle in (m.get("text") or "")), None)


def keyboard_of(message: dict[str, Any]) -> list[Any]:
    return list((message.get("reply_markup") or {}).get("inline_keyboard") or [])


async def test_every_tool_is_listed_with_input_and_output_schemas(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert set(tools) >= COMPAT_TOOLS | NEW_TOOLS, (COMPAT_TOOLS | NEW_TOOLS) - set(tools)
        for name in COMPAT_TOOLS | NEW_TOOLS:
            assert tools[name].input_schema.get("type") == "object", name
            assert tools[name].output_schema, name


async def test_notifications_any_unicode_title_idempotency_and_status(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        title = "Сборка: упала 🔥 (build #42)"
        sent = await call(
            mcp,
            "send_telegram_event",
            {
                "type": "build_failed",
                "title": title,
                "description": "tests <b>failed</b> & more",
                "data": {"branch_name": "main", "error_message": "exit 1"},
            },
        )
        assert sent["success"] is True
        card = await eventually(lambda: message_with(suite, "Сборка: упала 🔥"), what="event")
        assert "<b>failed</b>" in card["text"]  # interpolated text is escaped, shown literally

        async def state_of(event_id: str) -> dict[str, Any]:
            return dict(await call(mcp, "get_event_status", {"event_id": event_id}))

        deadline = time.monotonic() + 30
        while (current := await state_of(sent["event_id"]))["state"] != "sent":
            assert time.monotonic() < deadline, current
            await asyncio.sleep(0.2)
        assert current["telegram_message_ids"]

        first = await call(
            mcp, "send_telegram_message", {"message": "once only ✉️", "idempotency_key": "k-1"}
        )
        again = await call(
            mcp, "send_telegram_message", {"message": "once only ✉️", "idempotency_key": "k-1"}
        )
        assert first["event_id"] == again["event_id"]
        await eventually(lambda: message_with(suite, "once only ✉️"), what="idempotent message")
        await asyncio.sleep(1.5)
        copies = [m for m in chat_messages(suite) if "once only ✉️" in (m.get("text") or "")]
        assert len(copies) == 1

        done = await call(
            mcp,
            "send_task_completion",
            {
                "task_id": "t-7",
                "title": "Refactor done",
                "results": "3 files",
                "files_affected": ["a.py", "b.py"],
                "duration_ms": 1200,
            },
        )
        alert = await call(
            mcp,
            "send_performance_alert",
            {"title": "CPU high", "current_value": 97.5, "threshold": 80, "severity": "high"},
        )
        assert done["success"]
        assert alert["success"]
        await eventually(lambda: message_with(suite, "Refactor done"), what="task completion")
        await eventually(lambda: message_with(suite, "CPU high"), what="performance alert")


async def test_invalid_arguments_name_the_field(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        result = await mcp.call_tool("send_telegram_event", {"type": "no_such_type", "title": "x"})
        assert result.is_error
        text = " ".join(getattr(block, "text", "") for block in result.content)
        assert "type" in text
        result = await mcp.call_tool("get_telegram_responses", {"limit": 1000})
        assert result.is_error
        assert "limit" in " ".join(getattr(block, "text", "") for block in result.content)


async def test_list_event_types_and_resources(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        listed = await call(mcp, "list_event_types")
        assert listed["count"] == len(listed["event_types"]) >= 47
        git = await call(mcp, "list_event_types", {"category": "Git"})
        assert {entry["type"] for entry in git["event_types"]} >= {"git_commit", "git_push"}
        uris = {str(resource.uri) for resource in (await mcp.list_resources()).resources}
        for uri in (
            "cctelegram://event-types",
            "cctelegram://bridge-status",
            "cctelegram://responses",
            "cctelegram://event-templates",
        ):
            assert uri in uris
            contents = (await mcp.read_resource(uri)).contents
            assert json.loads(contents[0].text)  # type: ignore[union-attr]


async def test_approval_by_text_reply(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        sent = await call(
            mcp,
            "send_approval_request",
            {"title": "Merge PR 12?", "description": "green CI", "options": ["Merge", "Hold"]},
        )
        card = await eventually(lambda: message_with(suite, "Merge PR 12?"), what="card")
        assert [button["text"] for row in keyboard_of(card) for button in row][:2] == [
            "Merge",
            "Hold",
        ]
        httpx.post(
            f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages",
            json={
                "user_id": DEMO_USER_ID,
                "text": "Hold",
                "reply_to_message_id": card["message_id"],
            },
            timeout=5,
        ).raise_for_status()
        decided = await call(
            mcp, "wait_for_approval", {"approval_id": sent["approval_id"], "timeout_seconds": 30}
        )
        assert decided["approval"]["chosen_option"] == "Hold"

        def closed() -> dict[str, Any] | None:
            now = message_with(suite, "Merge PR 12?")
            return now if now and not keyboard_of(now) else None

        final = await eventually(closed, what="card edited without buttons")
        assert "Hold" in final["text"]


async def test_approval_expiry_applies_on_timeout(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        sent = await call(
            mcp,
            "send_approval_request",
            {
                "title": "Auto-rollback?",
                "description": "nobody is around",
                "options": ["Roll back", "Keep"],
                "expires_in_minutes": 0.03,
                "on_timeout": "Roll back",
            },
        )
        decided = await call(
            mcp, "wait_for_approval", {"approval_id": sent["approval_id"], "timeout_seconds": 60}
        )
        assert decided["timed_out"] is False
        assert decided["approval"]["chosen_option"] == "Roll back"

        def closed() -> dict[str, Any] | None:
            now = message_with(suite, "Auto-rollback?")
            return now if now and not keyboard_of(now) else None

        final = await eventually(closed, what="expired card edited")
        assert "Roll back" in final["text"]


async def test_cancel_and_a_press_on_a_closed_card(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        sent = await call(
            mcp,
            "send_approval_request",
            {"title": "Drop table users?", "description": "really?", "options": ["Yes", "No"]},
        )
        card = await eventually(lambda: message_with(suite, "Drop table users?"), what="card")
        cancelled = await call(
            mcp,
            "cancel_approval",
            {"approval_id": sent["approval_id"], "reason": "changed my mind"},
        )
        assert cancelled
        seen = await call(mcp, "get_approval", {"approval_id": sent["approval_id"]})
        assert seen["status"] == "cancelled"

        def closed() -> dict[str, Any] | None:
            now = message_with(suite, "Drop table users?")
            return now if now and not keyboard_of(now) else None

        final = await eventually(closed, what="cancelled card edited")
        assert "Cancelled" in final["text"]
        press = httpx.post(
            f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages/{card['message_id']}/press",
            json={"user_id": DEMO_USER_ID, "text": "Yes"},
            timeout=5,
        )
        # The keyboard is gone, so the sandbox (like Telegram) refuses a press on it.
        assert press.status_code >= 400


async def test_responses_tasks_modes_and_bridge(suite: RunningSuite) -> None:
    async with connect(suite) as mcp:
        responses = await call(mcp, "get_telegram_responses", {"limit": 5})
        assert {"count", "total", "responses"} <= set(responses)
        pending = await call(mcp, "process_pending_responses", {"since_minutes": 60})
        assert "summary" in pending
        assert "actionable_responses" in pending
        cleared = await call(mcp, "clear_old_responses", {"older_than_hours": 1})
        assert "deleted_count" in cleared

        registered = await call(
            mcp,
            "register_claude_todos",
            {
                "todos": [
                    {"id": "1", "content": "write tests", "status": "completed"},
                    {"id": "2", "content": "ship", "status": "in_progress"},
                ],
                "session_id": "e2e",
            },
        )
        assert registered["registered_count"] == 2
        assert await call(mcp, "get_task_status", {"task_system": "claude-code"})
        assert await call(mcp, "todo", {})

        muted = await call(mcp, "switch_to_mute_mode")
        assert muted["mode"] == "mute"
        assert (await call(mcp, "switch_to_local_mode"))["mode"] == "local"
        assert (await call(mcp, "switch_to_nomad_mode"))["mode"] == "nomad"

        status = await call(mcp, "get_bridge_status")
        assert status["running"] is True
        assert {"uptime_seconds", "telegram_messages_sent", "error_count"} <= set(status["metrics"])
        assert (await call(mcp, "check_bridge_process"))["running"] is True
        stopped = await call(mcp, "stop_bridge")
        assert stopped["success"] is True
        started = await call(mcp, "start_bridge")
        assert started["success"] is True
        ensured = await call(mcp, "ensure_bridge_running")
        assert ensured["action"] in {"already_running", "started"}
        await call(mcp, "send_telegram_message", {"message": "after the bridge came back"})
        await eventually(lambda: message_with(suite, "after the bridge came back"), what="resume")
