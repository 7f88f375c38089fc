"""Claude Code gated from Telegram, with the real `claude` CLI against `cctelegram up`:
the permission prompt tool (allow, deny with a typed reason, allow for this session, a decision
after 75 s, a stranger's press refused) and `wait_for_approval` waiting 90 s over a stream."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from people import buttons, command, find_message, press, reply, wait_for_message

from cctelegram_anthropic_standin import Standin, ToolUse, marker
from cctelegram_anthropic_standin.claude import ClaudeRunner
from cctelegram_testing.suite import RunningSuite

pytestmark = [pytest.mark.claude_code, pytest.mark.e2e]

PROMPT_TOOL = "mcp__cctelegram__request_permission"
STRANGER_ID = 424242


def _name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def test_allow_from_telegram_runs_the_command_and_a_stranger_cannot_press(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    target = f"ran-{uuid.uuid4().hex[:8]}.txt"
    name = _name("allow")
    standin.add_script(name, [ToolUse("Bash", {"command": f"touch {target}"}), "Done."])
    process = claude.with_mcp(suite.mcp_url, suite.api_key).start(
        f"{marker(name)} create the file", cwd=tmp_path, permission_prompt_tool=PROMPT_TOOL
    )
    card = wait_for_message(suite, f"touch {target}", "Bash", with_buttons=True)
    assert buttons(card) == ["Allow", "Allow for this session", "Deny"]
    assert "Claude Code" in card["text"]  # the project (no session header: the client's)

    refused = press(suite, card, "Allow", user_id=STRANGER_ID)
    assert refused.status_code < 300  # the sandbox delivers the press; the bot refuses it
    time.sleep(1.0)
    assert process.poll() is None  # still waiting: a stranger decides nothing
    assert not (tmp_path / target).exists()

    press(suite, card, "Allow").raise_for_status()
    result = process.wait()
    assert result.exit_code == 0, result.describe()
    assert (tmp_path / target).exists()
    assert result.result_text == "Done."
    closed = wait_for_message(suite, f"touch {target}", with_buttons=False)
    assert "Allow" in closed["text"]


def test_a_typed_reply_denies_and_the_reason_reaches_the_model(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    target = f"deny-{uuid.uuid4().hex[:8]}.txt"
    name = _name("deny")
    standin.add_script(name, [ToolUse("Bash", {"command": f"touch {target}"}), "Understood."])
    process = claude.with_mcp(suite.mcp_url, suite.api_key).start(
        f"{marker(name)} create the file", cwd=tmp_path, permission_prompt_tool=PROMPT_TOOL
    )
    card = wait_for_message(suite, f"touch {target}", with_buttons=True)
    reply(suite, card, "not on a Friday, use the staging box")
    result = process.wait()
    assert result.exit_code == 0, result.describe()
    assert not (tmp_path / target).exists()
    [tool_result] = standin.tool_results(name)
    assert tool_result.is_error
    assert "not on a Friday, use the staging box" in tool_result.text


def test_allow_for_this_session_lets_a_matching_call_through_without_asking(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    name = _name("session")
    standin.add_script(
        name,
        [
            ToolUse("Bash", {"command": f"touch first-{tag}.txt"}),
            ToolUse("Bash", {"command": f"touch second-{tag}.txt"}),
            ToolUse("Bash", {"command": f"rm -f first-{tag}.txt"}),
            "All done.",
        ],
    )
    # Its own session (header), so rules of other tests' sessions do not apply here.
    process = claude.with_mcp(suite.mcp_url, suite.api_key).start(
        f"{marker(name)} make files",
        cwd=tmp_path,
        permission_prompt_tool=PROMPT_TOOL,
        extra_args=["--mcp-config", _session_mcp_config(tmp_path, suite, tag)],
    )
    first = wait_for_message(suite, f"touch first-{tag}.txt", with_buttons=True)
    assert "commands starting with “touch”" in first["text"]
    press(suite, first, "Allow for this session").raise_for_status()
    # The second touch is allowed by the rule; the rm is a different program: asked.
    third = wait_for_message(suite, f"rm -f first-{tag}.txt", with_buttons=True)
    press(suite, third, "Deny").raise_for_status()
    result = process.wait()
    assert result.exit_code == 0, result.describe()
    assert (tmp_path / f"second-{tag}.txt").exists()
    assert (tmp_path / f"first-{tag}.txt").exists()  # the rm was denied
    results = standin.tool_results(name)
    assert [r.is_error for r in results] == [False, False, True]
    assert find_message(suite, f"touch second-{tag}.txt") is None  # never asked

    # /rules lists the session's rule with a button to revoke it; once revoked it is gone.
    command(suite, "/rules")
    listing = wait_for_message(suite, f"proj-{tag}", "Bash(touch …)", with_buttons=True)
    press(suite, listing, "🗑 Bash(touch …)").raise_for_status()
    time.sleep(0.5)
    command(suite, "/rules")
    wait_for_message(suite, "No session rules")


def _session_mcp_config(tmp_path: Path, suite: RunningSuite, tag: str) -> str:
    """An MCP config naming a session and a project (what `setup` prints to add)."""
    config = tmp_path / "mcp-session.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "cctelegram": {
                        "type": "http",
                        "url": suite.mcp_url,
                        "headers": {
                            "Authorization": f"Bearer {suite.api_key}",
                            "X-CCTelegram-Session": f"test-{tag}",
                            "X-CCTelegram-Project": f"proj-{tag}",
                        },
                    }
                }
            }
        )
    )
    return str(config)


@pytest.mark.slow
def test_decisions_after_75_seconds_arrive_over_the_stream(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    """Claude Code gives up on a JSON response after 60 s; over SSE it waits. Two sessions at
    once: the permission prompt tool decided after 75 s, and wait_for_approval waiting 90 s."""
    target = f"late-{uuid.uuid4().hex[:8]}.txt"
    gate = _name("late")
    standin.add_script(gate, [ToolUse("Bash", {"command": f"touch {target}"}), "Late but done."])
    title = f"Deploy {uuid.uuid4().hex[:6]}?"
    waiter = _name("wait")
    standin.add_script(
        waiter,
        [
            ToolUse(
                "mcp__cctelegram__send_approval_request",
                {"title": title, "description": "ship it", "options": ["Approve", "Deny"]},
            ),
            ToolUse(
                "mcp__cctelegram__wait_for_approval",
                {"approval_id": "{{result:approval_id}}", "timeout_seconds": 90},
            ),
            "Waited.",
        ],
    )
    runner = claude.with_mcp(suite.mcp_url, suite.api_key)
    gated_dir = tmp_path / "gated"
    gated_dir.mkdir()
    gated = runner.start(
        f"{marker(gate)} create", cwd=gated_dir, permission_prompt_tool=PROMPT_TOOL, timeout_s=300
    )
    waiting = runner.start(
        f"{marker(waiter)} ask",
        cwd=tmp_path,
        allowed_tools=[
            "mcp__cctelegram__send_approval_request",
            "mcp__cctelegram__wait_for_approval",
        ],
        timeout_s=300,
    )
    card = wait_for_message(suite, f"touch {target}", with_buttons=True)
    approval_card = wait_for_message(suite, title, with_buttons=True)
    started = time.monotonic()
    time.sleep(75)
    press(suite, card, "Allow").raise_for_status()
    press(suite, approval_card, "Approve").raise_for_status()
    assert time.monotonic() - started >= 75

    gated_result = gated.wait()
    assert gated_result.exit_code == 0, gated_result.describe()
    assert (gated_dir / target).exists()
    waited_result = waiting.wait()
    assert waited_result.exit_code == 0, waited_result.describe()
    results = standin.tool_results(waiter)
    assert len(results) == 2
    assert not results[1].is_error, results[1].text
    assert '"approved"' in results[1].text
