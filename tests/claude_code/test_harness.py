"""The Claude Code test harness itself: the Anthropic stand-in speaks the streamed Messages API,
the real `claude -p` runs a scripted MCP tool call against `cctelegram up` and the sandbox, a
project PreToolUse http hook can deny a Bash command (it does not run; the reason reaches the
model) or allow it (two sessions at once), and `--permission-prompt-tool` reaches an MCP tool
(here a small fake server, so the runner's flag is proven independently of the gateway)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from cctelegram_anthropic_standin import Standin, Text, ToolUse, marker
from cctelegram_anthropic_standin.claude import ClaudeRunner, run_claude, start_claude
from cctelegram_anthropic_standin.hooks import (
    HookServer,
    http_hook_entry,
    pre_tool_use_decision,
    write_hook_settings,
)
from cctelegram_anthropic_standin.server import ThreadedServer
from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.suite import RunningSuite

pytestmark = pytest.mark.claude_code

SEND = "mcp__cctelegram__send_telegram_message"


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_standin_streams_scripted_turns_chosen_by_marker_and_history(standin: Standin) -> None:
    standin.add_script(
        "plain",
        [[Text("Let me send it."), ToolUse("notify", {"message": "hi ✉️", "n": 1})], "Done."],
    )
    first_user = {"role": "user", "content": [{"type": "text", "text": f"{marker('plain')} go"}]}
    url = f"{standin.url}/v1/messages?beta=true"
    with httpx.Client(timeout=10, trust_env=False) as http:
        body = {
            "model": "m",
            "max_tokens": 100,
            "stream": True,
            "tools": [{"name": "notify", "input_schema": {"type": "object"}}],
            "messages": [first_user],
        }
        response = http.post(url, json=body, headers={"x-api-key": "sk-secret-1"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.text)
        names = [name for name, _ in events]
        assert names[0] == "message_start"
        assert names[-2:] == ["message_delta", "message_stop"]
        assert all(name == data["type"] for name, data in events)
        starts = [d["content_block"] for n, d in events if n == "content_block_start"]
        assert starts[0] == {"type": "text", "text": ""}
        assert starts[1]["type"] == "tool_use"
        assert starts[1]["input"] == {}
        assert starts[1]["name"] == "notify"
        assert starts[1]["id"].startswith("toolu_")
        deltas = [d for n, d in events if n == "content_block_delta"]
        text = "".join(d["delta"]["text"] for d in deltas if d["index"] == 0)
        partial = "".join(d["delta"]["partial_json"] for d in deltas if d["index"] == 1)
        assert text == "Let me send it."
        assert json.loads(partial) == {"message": "hi ✉️", "n": 1}
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
        assert "output_tokens" in events[-2][1]["usage"]

        # The same request again (a retry) gets the same tool_use id: stateless.
        again = sse_events(http.post(url, json=body).text)
        again_starts = [d["content_block"] for n, d in again if n == "content_block_start"]
        assert again_starts[1]["id"] == starts[1]["id"]

        # Turn 1: one assistant message in the history; non-streaming this time.
        history = [
            first_user,
            {"role": "assistant", "content": [{"type": "text", "text": "Let me send it."}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": starts[1]["id"], "content": "sent"}
                ],
            },
        ]
        plain = http.post(url, json={**body, "stream": False, "messages": history})
        assert plain.status_code == 200
        assert plain.json()["content"] == [{"type": "text", "text": "Done."}]
        assert plain.json()["stop_reason"] == "end_turn"

        # A marker but no tools (a title or summary request quoting the prompt): not a turn.
        quoting = http.post(url, json={"model": "m", "max_tokens": 9, "messages": [first_user]})
        assert quoting.json()["content"] == [{"type": "text", "text": "OK."}]

        side = http.post(
            url,
            json={
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "quota"}],
            },
        )
        assert side.json()["content"][0]["type"] == "text"

        assert http.get(f"{standin.url}/v1/models").json() == {
            "data": [],
            "has_more": False,
            "first_id": None,
            "last_id": None,
        }
        missing = http.get(f"{standin.url}/v1/elsewhere")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found_error"
        bad = http.post(url, content=b"{nope")
        assert bad.status_code == 400
        assert bad.json()["type"] == "error"

    recorded = standin.requests_for("plain")
    assert [r.turn for r in recorded] == [0, 0, 1]
    assert [r.side for r in standin.all_requests() if r.script == "plain"] == [
        False,
        False,
        False,
        True,
    ]
    assert recorded[0].query == "beta=true"
    assert recorded[0].headers["x-api-key"] == "[redacted]"
    assert [(r.tool_use_id, r.text) for r in standin.tool_results("plain")] == [
        (starts[1]["id"], "sent")
    ]


def chat_messages(suite: RunningSuite) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", timeout=5
    )
    response.raise_for_status()
    return list(response.json())


def wait_for_message(suite: RunningSuite, needle: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in chat_messages(suite) if needle in (m.get("text") or "")]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no sandbox message containing {needle!r} in {timeout_s} s")


def test_real_claude_calls_the_gateway_tool_and_the_message_reaches_the_chat(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    text = f"Build passed ✅ {uuid.uuid4().hex[:8]}"
    name = f"send-{uuid.uuid4().hex[:8]}"
    standin.add_script(name, [ToolUse(SEND, {"message": text}), "Sent it."])

    result = claude.with_mcp(suite.mcp_url, suite.api_key).run(
        f"{marker(name)} Tell the team the build passed.", cwd=tmp_path, allowed_tools=[SEND]
    )

    assert result.exit_code == 0, result.describe()
    assert result.result_text == "Sent it.", result.describe()
    assert suite.api_key not in result.stdout + result.stderr + " ".join(result.argv)
    wait_for_message(suite, text)
    [tool_result] = standin.tool_results(name)
    assert not tool_result.is_error, tool_result.text
    assert "event_id" in tool_result.text


def test_a_project_pre_tool_use_http_hook_denies_bash_and_the_model_hears_why(
    claude_bin: Path, standin: Standin, tmp_path: Path
) -> None:
    reason = f"blocked by the harness {uuid.uuid4().hex[:6]}"
    name = f"deny-{uuid.uuid4().hex[:8]}"
    standin.add_script(
        name,
        [ToolUse("Bash", {"command": "touch ran.txt", "description": "Create a file"}), "OK."],
    )

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("hook_event_name") == "PreToolUse":
            return pre_tool_use_decision("deny", reason)
        return {}

    with HookServer(answer) as hooks:
        write_hook_settings(
            tmp_path,
            {
                "PreToolUse": [
                    http_hook_entry(
                        hooks.url,
                        matcher="Bash",
                        headers={"Authorization": "Bearer $HARNESS_HOOK_TOKEN"},
                        allowed_env_vars=["HARNESS_HOOK_TOKEN"],
                    )
                ],
                "Stop": [http_hook_entry(hooks.url)],
            },
        )
        result = run_claude(
            f"{marker(name)} Create ran.txt.",
            cwd=tmp_path,
            standin_url=standin.url,
            env={"HARNESS_HOOK_TOKEN": "hook-token-123"},
            claude_bin=claude_bin,
            timeout_s=180,
        )

    assert result.exit_code == 0, result.describe()
    assert not (tmp_path / "ran.txt").exists()
    [tool_result] = standin.tool_results(name)
    assert tool_result.is_error
    assert reason in tool_result.text
    [call] = hooks.events("PreToolUse")
    assert call.headers["Authorization"] == "Bearer hook-token-123"  # env interpolated
    assert call.body["tool_name"] == "Bash"
    assert call.body["tool_input"]["command"] == "touch ran.txt"
    assert call.body["cwd"] == str(tmp_path)
    assert call.body["tool_use_id"] == tool_result.tool_use_id
    [stop] = hooks.events("Stop")
    assert stop.body["last_assistant_message"] == "OK."
    assert stop.body["session_id"] == call.body["session_id"]


def test_an_allowing_hook_lets_bash_run_and_two_sessions_run_at_once(
    claude_bin: Path, standin: Standin, tmp_path: Path
) -> None:
    with HookServer(lambda body: pre_tool_use_decision("allow", "fine")) as hooks:
        runs = []
        for index in range(2):
            cwd = tmp_path / f"project-{index}"
            cwd.mkdir()
            write_hook_settings(cwd, {"PreToolUse": [http_hook_entry(hooks.url, matcher="Bash")]})
            name = f"allow-{index}-{uuid.uuid4().hex[:8]}"
            standin.add_script(
                name,
                [ToolUse("Bash", {"command": f"echo ran-{index} > ran.txt"}), f"Done {index}."],
            )
            process = start_claude(
                f"{marker(name)} write the file",
                cwd=cwd,
                standin_url=standin.url,
                claude_bin=claude_bin,
                timeout_s=180,
            )
            runs.append((cwd, name, process))
        results = [(cwd, name, process.wait()) for cwd, name, process in runs]

    for index, (cwd, name, result) in enumerate(results):
        assert result.exit_code == 0, result.describe()
        assert result.result_text == f"Done {index}."
        assert (cwd / "ran.txt").read_text().strip() == f"ran-{index}"
        [tool_result] = standin.tool_results(name)
        assert not tool_result.is_error, tool_result.text
    assert len(hooks.events("PreToolUse")) == 2
    sessions = {standin.sessions(name)[0] for _, name, _ in results}
    assert {c.body["session_id"] for c in hooks.events("PreToolUse")} == sessions
    assert {r.output["session_id"] for _, _, r in results if r.output} == sessions


def test_the_permission_prompt_tool_decides_whether_bash_runs(
    claude: ClaudeRunner, standin: Standin, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []
    fake = MCPServer("fake-permissions")

    @fake.tool(structured_output=False)  # Claude Code accepts exactly one text block
    def request_permission(
        tool_name: str, input: dict[str, Any], tool_use_id: str | None = None
    ) -> str:
        calls.append({"tool_name": tool_name, "input": input, "tool_use_id": tool_use_id})
        if "deny-me" in str(input.get("command")):
            return json.dumps({"behavior": "deny", "message": "the fake says no"})
        return json.dumps({"behavior": "allow", "updatedInput": input})

    app = fake.streamable_http_app(stateless_http=True, json_response=True)
    with ThreadedServer(app, lifespan="on") as server:
        runner = claude.with_mcp(f"{server.url}/mcp", "fake-key-0123456789")
        results = {}
        for word in ("deny-me", "allow-me"):
            name = f"{word}-{uuid.uuid4().hex[:8]}"
            standin.add_script(
                name, [ToolUse("Bash", {"command": f"echo {word} > {word}.txt"}), "Done."]
            )
            results[word] = (
                name,
                runner.run(
                    f"{marker(name)} write it",
                    cwd=tmp_path,
                    permission_prompt_tool="mcp__cctelegram__request_permission",
                ),
            )

    for _, result in results.values():
        assert result.exit_code == 0, result.describe()
    assert not (tmp_path / "deny-me.txt").exists()
    assert (tmp_path / "allow-me.txt").read_text().strip() == "allow-me"
    [denied] = standin.tool_results(results["deny-me"][0])
    assert denied.is_error
    assert denied.text == "the fake says no"
    [allowed] = standin.tool_results(results["allow-me"][0])
    assert not allowed.is_error
    assert [c["tool_name"] for c in calls] == ["Bash", "Bash"]
    assert calls[0]["input"] == {"command": "echo deny-me > deny-me.txt"}
    assert calls[0]["tool_use_id"] == denied.tool_use_id
