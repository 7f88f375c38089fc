"""The stand-in without the CLI: scripts, sessions, side requests, the control API and errors;
the installer's lock and idempotency and the runner's environment with fake npm/claude
executables (the real CLI runs in tests/claude_code)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cctelegram_anthropic_standin import Standin, Text, ToolUse, marker
from cctelegram_anthropic_standin.claude import OFFLINE_ENV, ClaudeRunner, run_claude

TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]


@pytest.fixture
def standin() -> Iterator[Standin]:
    with Standin() as running:
        yield running


def ask(
    http: httpx.Client,
    standin: Standin,
    messages: list[dict[str, Any]],
    session: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    headers = {"x-claude-code-session-id": session} if session else {}
    body = {"model": "m", "max_tokens": 10, "tools": TOOLS, "messages": messages, **extra}
    response = http.post(f"{standin.url}/v1/messages?beta=true", json=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_one_script_in_two_sessions_gets_distinct_tool_ids_and_separate_records(
    standin: Standin,
) -> None:
    standin.add_script("shared", [ToolUse("Bash", {"command": "ls"}), "done"])
    with httpx.Client(timeout=10, trust_env=False) as http:
        first = [ask(http, standin, [user(f"{marker('shared')} x")], s) for s in ("s1", "s2")]
        ids = [reply["content"][0]["id"] for reply in first]
        assert ids[0] != ids[1]
        for session, tool_id in zip(("s1", "s2"), ids, strict=True):
            history = [
                user(f"{marker('shared')} x"),
                {"role": "assistant", "content": first[0]["content"]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": tool_id,
                            "content": [{"type": "text", "text": f"out-{session}"}],
                            "is_error": session == "s2",
                        }
                    ],
                },
            ]
            assert ask(http, standin, history, session)["content"] == [
                {"type": "text", "text": "done"}
            ]
    assert standin.sessions("shared") == ["s1", "s2"]
    assert len(standin.requests_for("shared")) == 4
    assert len(standin.requests_for("shared", "s1")) == 2
    [only] = standin.tool_results("shared", "s2")
    assert (only.text, only.is_error) == ("out-s2", True)
    assert [r.text for r in standin.tool_results("shared")] == ["out-s1", "out-s2"]


def test_unknown_script_past_the_end_and_requests_without_a_marker(standin: Standin) -> None:
    standin.add_script("short", ["only turn"])
    with httpx.Client(timeout=10, trust_env=False) as http:
        missing = ask(http, standin, [user(f"{marker('nope')} hi")])
        assert "no script named 'nope'" in missing["content"][0]["text"]
        beyond = ask(
            http,
            standin,
            [user(f"{marker('short')} hi"), {"role": "assistant", "content": "x"}, user("more")],
        )
        assert "has no turn 1" in beyond["content"][0]["text"]
        assert beyond["stop_reason"] == "end_turn"
        plain = ask(http, standin, [user("quota")])
        assert plain["content"] == [{"type": "text", "text": "OK."}]
    assert [r.script for r in standin.all_requests()] == ["nope", "short", None]


def test_add_script_refuses_bad_names_and_shapes(standin: Standin) -> None:
    with pytest.raises(ValueError, match="must match"):
        standin.add_script("has space", ["x"])
    with pytest.raises(TypeError, match="list of turns"):
        standin.add_script("single", "x")
    with pytest.raises(ValueError, match="at least one block"):
        standin.add_script("empty", [[]])
    assert standin.add_script("mixed", [[Text("a"), "b", ToolUse("T")]]) == "[[script:mixed]]"


def test_control_api_and_errors_answer_in_the_api_error_shape(standin: Standin) -> None:
    with httpx.Client(base_url=standin.url, timeout=10, trust_env=False) as http:
        created = http.post(
            "/standin/scripts",
            json={"name": "remote", "turns": [{"tool_use": {"name": "Bash", "input": {}}}, "ok"]},
        )
        assert created.status_code == 201
        assert created.json() == {"name": "remote", "turns": 2}
        refused = http.post("/standin/scripts", json={"name": "r", "turns": [{"oops": 1}]})
        assert refused.status_code == 422
        assert refused.json()["error"]["type"] == "invalid_request_error"
        reply = http.post(
            "/v1/messages", json={"tools": TOOLS, "messages": [user(f"{marker('remote')} go")]}
        )
        assert reply.json()["content"][0]["name"] == "Bash"
        recorded = http.get("/standin/requests", params={"script": "remote"}).json()
        assert [r["turn"] for r in recorded] == [0]

        wrong_method = http.get("/v1/messages")
        assert wrong_method.status_code == 404
        assert wrong_method.json()["error"]["type"] == "not_found_error"
        assert http.post("/v1/messages", json=[1]).status_code == 400
        no_messages = http.post("/v1/messages", json={"model": "m"})
        assert no_messages.status_code == 400
        assert "messages" in no_messages.json()["error"]["message"]
        counted = http.post("/v1/messages/count_tokens", json={"messages": [user("hello")]})
        assert counted.json()["input_tokens"] > 0


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_installer_runs_npm_once_for_two_concurrent_callers_then_reuses(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "npm-calls"
    # A fake npm: records the call, sleeps so the callers overlap, creates the binary.
    write_executable(
        bin_dir / "npm",
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        "sleep 1\n"
        'prefix=""; while [ $# -gt 0 ]; do [ "$1" = --prefix ] && prefix="$2"; shift; done\n'
        'mkdir -p "$prefix/node_modules/.bin"\n'
        'printf "#!/bin/sh\\necho fake\\n" > "$prefix/node_modules/.bin/claude"\n'
        'chmod +x "$prefix/node_modules/.bin/claude"\n',
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    code = (
        "from cctelegram_testing.claude_code import ensure_claude_code;"
        "print(ensure_claude_code('9.9.9'))"
    )
    callers = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    paths = {caller.communicate(timeout=60)[0].strip() for caller in callers}
    assert all(caller.returncode == 0 for caller in callers)
    expected = tmp_path / "cache/cctelegram-test/claude-code-9.9.9/node_modules/.bin/claude"
    assert paths == {str(expected)}
    lines = calls.read_text().splitlines()
    assert len(lines) == 1
    assert "@anthropic-ai/claude-code@9.9.9" in lines[0]
    again = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert again.stdout.strip() == str(expected)
    assert len(calls.read_text().splitlines()) == 1


def test_runner_sets_an_offline_env_own_home_and_keeps_the_key_off_argv_and_output(
    tmp_path: Path,
) -> None:
    # A fake claude: prints its argv, env and the MCP config it was given, and the key.
    fake = write_executable(
        tmp_path / "claude",
        "#!/usr/bin/env python3\n"
        "import json, os, sys, stat\n"
        "argv = sys.argv[1:]\n"
        "config = argv[argv.index('--mcp-config') + 1]\n"
        "print(json.dumps({'argv': argv, 'env': dict(os.environ), 'cwd': os.getcwd(),\n"
        "  'mode': stat.S_IMODE(os.stat(config).st_mode), 'config': json.load(open(config))}))\n"
        "print('the key is', json.load(open(config))['mcpServers']['cctelegram']['headers'])\n",
    )
    key = "cct_secret_key_0123456789"
    result = run_claude(
        "hello",
        cwd=tmp_path,
        standin_url="http://127.0.0.1:9",
        mcp_url="http://127.0.0.1:8/mcp",
        api_key=key,
        permission_prompt_tool="mcp__cctelegram__request_permission",
        allowed_tools=["Read", "mcp__cctelegram__send_telegram_message"],
        env={"CCTELEGRAM_API_KEY": key, "OTHER": "1"},
        claude_bin=fake,
        timeout_s=30,
    )
    assert result.exit_code == 0, result.describe()
    assert key not in result.stdout + result.stderr
    assert key not in " ".join(result.argv)
    seen = json.loads(result.stdout.splitlines()[0])
    argv = seen["argv"]
    assert argv[:4] == ["-p", "hello", "--output-format", "json"]
    assert "--strict-mcp-config" in argv
    assert argv[argv.index("--permission-prompt-tool") + 1] == "mcp__cctelegram__request_permission"
    assert argv[argv.index("--allowedTools") + 1] == "Read,mcp__cctelegram__send_telegram_message"
    assert seen["mode"] == 0o600
    server = seen["config"]["mcpServers"]["cctelegram"]
    assert server["type"] == "http"
    assert server["url"] == "http://127.0.0.1:8/mcp"
    env = seen["env"]
    assert {k: env[k] for k in OFFLINE_ENV} == OFFLINE_ENV
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert env["ANTHROPIC_API_KEY"].startswith("sk-ant-standin")
    assert env["HOME"] != os.environ.get("HOME")
    assert env["OTHER"] == "1"
    assert not Path(env["HOME"]).exists()  # removed after the run
    assert seen["cwd"] == str(tmp_path)

    runner = ClaudeRunner(fake, "http://127.0.0.1:9").with_mcp("http://127.0.0.1:8/mcp", None)
    kept = runner.run("again", cwd=tmp_path, keep_home=True)
    assert kept.home is not None
    assert kept.home.is_dir()
    shutil.rmtree(kept.home)
    assert (
        "headers"
        not in json.loads(kept.stdout.splitlines()[0])["config"]["mcpServers"]["cctelegram"]
    )


def test_a_run_past_its_timeout_is_killed_and_says_so(tmp_path: Path) -> None:
    fake = write_executable(tmp_path / "claude", "#!/bin/sh\nsleep 60\n")
    result = run_claude(
        "x", cwd=tmp_path, standin_url="http://127.0.0.1:9", claude_bin=fake, timeout_s=1
    )
    assert result.timed_out
    assert result.exit_code != 0


def test_a_short_wait_raises_without_ending_the_run_and_close_ends_it(tmp_path: Path) -> None:
    fake = write_executable(tmp_path / "claude", "#!/bin/sh\nsleep 60\n")
    runner = ClaudeRunner(fake, "http://127.0.0.1:9")
    process = runner.start("x", cwd=tmp_path)
    with pytest.raises(TimeoutError):
        process.wait(0.2)
    assert process.poll() is None
    runner.close()
    assert process.poll() is not None
    assert process.wait().exit_code != 0
