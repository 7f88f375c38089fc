"""Claude Code's HTTP hooks against `cctelegram up`, with the real `claude` CLI: hooks written by
`cctelegram claude-code setup` gate a Bash call and the Stop notification names the project;
an AskUserQuestion answered by a press; a reply to the "finished" card continues the session;
two sessions sharing one bot get their own cards; PermissionRequest's suggestions; bad bodies;
and no key or tool-input secret in any log, audit record or stored approval."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from people import buttons, find_message, press, reply, wait_for_message

from cctelegram_anthropic_standin import Standin, ToolUse, marker
from cctelegram_anthropic_standin.claude import ClaudeRunner
from cctelegram_testing.suite import RunningSuite, start_suite

pytestmark = [pytest.mark.claude_code, pytest.mark.e2e]

SECRET_CANARY = "canary" + uuid.uuid4().hex  # a secret the agent's command carries
CONTINUE_PREFIX = "continue-"
SETUP = (sys.executable, "-m", "cctelegram_cli", "claude-code", "setup")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    """Projects named continue-* wait 60 s for a reply to their "finished" card."""
    running = start_suite(
        Path(tmp_path_factory.mktemp("cctelegram-hooks")),
        GATEWAY_CLAUDE_CODE__CONTINUE_WINDOW_S="60",
        GATEWAY_CLAUDE_CODE__CONTINUE_PROJECTS=json.dumps([f"{CONTINUE_PREFIX}*"]),
    )
    try:
        yield running
    finally:
        running.stop()


def gateway_url(suite: RunningSuite) -> str:
    return suite.mcp_url.removesuffix("/mcp")


def set_up(project: Path, suite: RunningSuite) -> None:
    """`cctelegram claude-code setup` as a user runs it."""
    project.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [*SETUP, "--dir", str(project), "--url", gateway_url(suite)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert suite.api_key not in (project / ".claude" / "settings.json").read_text()


def hook(suite: RunningSuite, body: Any, key: str | None = None) -> httpx.Response:
    """POST one hook as Claude Code does (``body`` as JSON, or raw bytes)."""
    headers = {"Authorization": f"Bearer {key or suite.api_key}"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers["Content-Type"] = "application/json"
    return httpx.post(
        f"{gateway_url(suite)}/v1/hooks/claude-code",
        headers=headers,
        content=content,
        trust_env=False,
        timeout=30,
    )


def test_setup_hooks_gate_bash_and_stop_names_the_project(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    project = tmp_path / f"shop-{uuid.uuid4().hex[:6]}"
    set_up(project, suite)
    name = f"gate-{uuid.uuid4().hex[:8]}"
    command = f"touch deployed.txt # API_TOKEN={SECRET_CANARY}"
    standin.add_script(name, [ToolUse("Bash", {"command": command}), "Deployed it."])
    process = claude.start(
        f"{marker(name)} deploy", cwd=project, env={"CCTELEGRAM_API_KEY": suite.api_key}
    )
    card = wait_for_message(suite, project.name, "touch deployed.txt", with_buttons=True)
    assert SECRET_CANARY not in card["text"]  # redacted on the card
    press(suite, card, "Allow").raise_for_status()
    result = process.wait()
    assert result.exit_code == 0, result.describe()
    assert (project / "deployed.txt").exists()
    finished = wait_for_message(suite, f"{project.name} · ", "finished")
    assert "Deployed it." in finished["text"]


def answer_in_background(suite: RunningSuite, body: dict[str, Any]) -> Any:
    """POST a hook that waits for a person; the future resolves to the HTTP response."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(hook, suite, body)
    pool.shutdown(wait=False)
    return future


def test_a_question_is_answered_by_a_press(suite: RunningSuite) -> None:
    """Claude Code 2.1.332 disables AskUserQuestion in `-p` runs ("No such tool available:
    AskUserQuestion. AskUserQuestion is disabled for this session"), so the real CLI cannot
    send it here; this posts the PreToolUse body an interactive session sends."""
    question = f"Which database, {uuid.uuid4().hex[:4]}?"
    tool_input = {
        "questions": [
            {
                "question": question,
                "header": "Database",
                "multiSelect": False,
                "options": [
                    {"label": "Postgres", "description": "the usual"},
                    {"label": "SQLite", "description": "one file"},
                ],
            }
        ]
    }
    pending = answer_in_background(
        suite,
        {
            "hook_event_name": "PreToolUse",
            "session_id": uuid.uuid4().hex,
            "cwd": "/home/dev/quiz",
            "tool_name": "AskUserQuestion",
            "tool_input": tool_input,
            "tool_use_id": "toolu_q1",
        },
    )
    card = wait_for_message(suite, question, "quiz", with_buttons=True)
    assert buttons(card) == ["Postgres", "SQLite"]
    press(suite, card, "SQLite").raise_for_status()
    response = pending.result(timeout=60)
    assert response.status_code == 200, response.text
    output = response.json()["hookSpecificOutput"]
    assert output["permissionDecision"] == "allow"
    assert output["updatedInput"] == {**tool_input, "answers": {question: "SQLite"}}


def test_a_plan_is_sent_back_with_feedback(suite: RunningSuite) -> None:
    plan = f"1. migrate\n2. deploy {uuid.uuid4().hex[:6]}"
    pending = answer_in_background(
        suite,
        {
            "hook_event_name": "PreToolUse",
            "session_id": uuid.uuid4().hex,
            "cwd": "/home/dev/planner",
            "tool_name": "ExitPlanMode",
            "tool_input": {"plan": plan},
        },
    )
    card = wait_for_message(suite, plan.split("\n")[1], with_buttons=True)
    assert buttons(card) == ["Approve plan", "Keep planning"]
    reply(suite, card, "add a rollback step")
    output = pending.result(timeout=60).json()["hookSpecificOutput"]
    assert output["permissionDecision"] == "deny"
    assert "add a rollback step" in output["permissionDecisionReason"]


def test_a_reply_to_the_finished_card_continues_the_session(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    project = tmp_path / f"{CONTINUE_PREFIX}{uuid.uuid4().hex[:6]}"
    set_up(project, suite)
    name = f"cont-{uuid.uuid4().hex[:8]}"
    standin.add_script(name, ["First pass done.", "Tests run too."])
    process = claude.start(
        f"{marker(name)} work", cwd=project, env={"CCTELEGRAM_API_KEY": suite.api_key}
    )
    card = wait_for_message(suite, project.name, "First pass done.", with_buttons=True)
    reply(suite, card, "now run the tests please")
    second = wait_for_message(suite, project.name, "Tests run too.", with_buttons=True)
    press(suite, second, "Done").raise_for_status()
    result = process.wait()
    assert result.exit_code == 0, result.describe()
    assert result.result_text == "Tests run too."
    said = json.dumps([request.body for request in standin.requests_for(name)])
    assert "now run the tests please" in said


def test_two_sessions_sharing_one_bot_get_their_own_cards_and_answers(
    claude: ClaudeRunner, standin: Standin, suite: RunningSuite, tmp_path: Path
) -> None:
    runs = []
    for letter in "ab":
        project = tmp_path / f"team-{letter}-{uuid.uuid4().hex[:4]}"
        set_up(project, suite)
        name = f"two-{letter}-{uuid.uuid4().hex[:6]}"
        standin.add_script(name, [ToolUse("Bash", {"command": "touch out.txt"}), "Ok."])
        process = claude.start(
            f"{marker(name)} go", cwd=project, env={"CCTELEGRAM_API_KEY": suite.api_key}
        )
        runs.append((project, name, process))
    (project_a, name_a, process_a), (project_b, name_b, process_b) = runs
    card_a = wait_for_message(suite, project_a.name, "touch out.txt", with_buttons=True)
    card_b = wait_for_message(suite, project_b.name, "touch out.txt", with_buttons=True)
    assert card_a["message_id"] != card_b["message_id"]
    press(suite, card_b, "Deny").raise_for_status()
    press(suite, card_a, "Allow").raise_for_status()
    assert process_a.wait().exit_code == 0
    assert process_b.wait().exit_code == 0
    assert (project_a / "out.txt").exists()
    assert not (project_b / "out.txt").exists()
    assert not standin.tool_results(name_a)[0].is_error
    assert standin.tool_results(name_b)[0].is_error


def test_permission_request_offers_claude_codes_suggestions(suite: RunningSuite) -> None:
    session = uuid.uuid4().hex
    command = f"git push origin {uuid.uuid4().hex[:6]}"
    suggestion = {
        "type": "addRules",
        "rules": [{"toolName": "Bash", "ruleContent": "git push:*"}],
        "behavior": "allow",
        "destination": "localSettings",
    }
    body = {
        "hook_event_name": "PermissionRequest",
        "session_id": session,
        "cwd": "/work/shop",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "permission_suggestions": [suggestion],
        "some_future_field": {"ignored": True},
    }
    with httpx.Client(trust_env=False, timeout=120) as http:
        pending = http.build_request(
            "POST",
            f"{gateway_url(suite)}/v1/hooks/claude-code",
            json=body,
            headers={"Authorization": f"Bearer {suite.api_key}"},
        )
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(http.send, pending)
            card = wait_for_message(suite, command, "shop", with_buttons=True)
            assert buttons(card) == ["Allow", "Allow for session: Bash(git push:*)", "Deny"]
            press(suite, card, "Allow for session: Bash(git push:*)").raise_for_status()
            response = answer.result(timeout=60)
    assert response.status_code == 200, response.text
    decision = response.json()["hookSpecificOutput"]["decision"]
    assert decision["behavior"] == "allow"
    assert decision["updatedInput"] == {"command": command}
    assert decision["updatedPermissions"] == [{**suggestion, "destination": "session"}]


def test_bad_hook_bodies_get_clear_answers_and_unknown_events_none(suite: RunningSuite) -> None:
    not_json = hook(suite, b"{nope")
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid"
    assert not_json.json()["error"]["request_id"]
    not_object = hook(suite, [1, 2])
    assert not_object.status_code == 400
    missing = hook(suite, {"hook_event_name": "Stop"})
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "session_id"
    unknown = hook(suite, {"hook_event_name": "FutureEvent", "session_id": "s1", "x": 1})
    assert unknown.status_code == 200
    assert unknown.json() == {}
    read = hook(
        suite,
        {"hook_event_name": "PreToolUse", "session_id": "s1", "tool_name": "Read"},
    )
    assert read.json() == {}  # reads pass: no opinion, Claude Code's own rules apply
    stranger = hook(suite, {"hook_event_name": "Stop", "session_id": "s1"}, key="cctg_nope")
    assert stranger.status_code == 401


def test_a_notification_is_answered_at_once_and_reaches_the_chat(suite: RunningSuite) -> None:
    text = f"Claude needs your permission {uuid.uuid4().hex[:6]}"
    response = hook(
        suite,
        {
            "hook_event_name": "Notification",
            "session_id": "abcdef123456",
            "cwd": "/home/dev/billing",
            "message": text,
            "notification_type": "permission_prompt",
        },
    )
    assert response.status_code == 200
    assert response.json() == {}
    seen = wait_for_message(suite, "billing · abcdef", text)
    assert seen


def test_no_key_or_tool_input_secret_in_logs_audit_or_stored_approvals(
    suite: RunningSuite,
) -> None:
    """Runs after the traffic above: the canary rode in a Bash command through a hook."""
    import asyncio

    import nats

    async def stored() -> list[bytes]:
        client = await nats.connect(suite.nats_url)
        found: list[bytes] = []
        try:
            js = client.jetstream()
            for subject in ("cctg.audit.>", "$KV.cctg_approvals.>", "$KV.cctg_sessions.>"):
                subscription = await js.subscribe(subject, ordered_consumer=True)
                with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                    while True:
                        found.append((await subscription.next_msg(timeout=1)).data)
                await subscription.unsubscribe()
        finally:
            await client.close()
        return found

    records = asyncio.run(stored())
    assert records
    for record in records:
        assert suite.api_key.encode() not in record
        assert SECRET_CANARY.encode() not in record
    time.sleep(0.5)  # let the last log lines reach the files
    for path in (suite.data_dir / "logs").glob("*.log"):
        text = path.read_text(errors="replace")
        assert suite.api_key not in text, path
        assert SECRET_CANARY not in text, path
    assert find_message(suite, SECRET_CANARY) is None
