"""Claude Code gated from Telegram: how fast a press lets the command run, and what a hook costs.

Starts the whole suite with `cctelegram up` and the Anthropic stand-in, then:

1. press → the gated command starts: the real `claude -p` with
   `--permission-prompt-tool mcp__cctelegram__request_permission` runs a script of N Bash
   calls, each appending its own start time (`date +%s.%N`) to a file; for each card the bench
   presses Allow in the sandbox and reads the time the command started. The path: sandbox
   getUpdates → notifier → NATS → events → KV watch in the gateway → the SSE answer →
   Claude Code → bash.
2. notify-only hook round trip: `POST /v1/hooks/claude-code` with a Notification, sequentially.
3. the gateway's CPU per hook call (from /proc over those calls).

    uv run python bench/claude_code.py [--presses 24] [--hooks 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from cctelegram_anthropic_standin import Standin, ToolUse, marker
from cctelegram_anthropic_standin.claude import ClaudeRunner
from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.bench import percentile
from cctelegram_testing.claude_code import ensure_claude_code
from cctelegram_testing.suite import RunningSuite, processes_mentioning, start_suite


def summary(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.1f} ms, p90 {percentile(values, 0.9):.1f} ms, "
        f"p99 {percentile(values, 0.99):.1f} ms, max {max(values):.1f} ms (n={len(values)})"
    )


def open_card(sandbox: httpx.Client, needle: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in reversed(sandbox.get(f"/sandbox/api/chats/{DEMO_USER_ID}/messages").json()):
            if needle in (message.get("text") or "") and message.get("reply_markup"):
                return dict(message)
        time.sleep(0.01)
    raise RuntimeError(f"no card with {needle!r}")


def press_to_start(suite: RunningSuite, presses: int, workdir: Path) -> list[float]:
    starts = workdir / "starts.txt"
    starts.touch()
    script = [
        ToolUse("Bash", {"command": f"date +%s.%N >> starts.txt # step-{index:03d}"})
        for index in range(presses + 2)
    ]
    with Standin() as standin:
        standin.add_script("bench", [*script, "Done."])
        runner = ClaudeRunner(ensure_claude_code(), standin.url, timeout_s=600)
        process = runner.with_mcp(suite.mcp_url, suite.api_key).start(
            f"{marker('bench')} run the steps",
            cwd=workdir,
            permission_prompt_tool="mcp__cctelegram__request_permission",
        )
        latencies: list[float] = []
        with httpx.Client(base_url=suite.sandbox_url, timeout=10, trust_env=False) as sandbox:
            for index in range(presses + 2):
                card = open_card(sandbox, f"step-{index:03d}")
                seen = len(starts.read_text().splitlines())
                pressed = time.time()
                sandbox.post(
                    f"/sandbox/api/chats/{DEMO_USER_ID}/messages/{card['message_id']}/press",
                    json={"user_id": DEMO_USER_ID, "text": "Allow"},
                ).raise_for_status()
                while len(lines := starts.read_text().splitlines()) <= seen:
                    time.sleep(0.002)
                if index >= 2:  # the first two warm the path up
                    latencies.append((float(lines[seen]) - pressed) * 1000)
        result = process.wait()
        if result.exit_code != 0:
            raise RuntimeError(result.describe())
    return latencies


def gateway_pid(suite: RunningSuite) -> int:
    for pid in processes_mentioning(str(suite.data_dir)):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"cctelegram_gateway" in command:
            return pid
    raise RuntimeError("gateway process not found")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hook_round_trips(suite: RunningSuite, calls: int) -> tuple[list[float], float]:
    url = suite.mcp_url.removesuffix("/mcp") + "/v1/hooks/claude-code"
    headers = {"Authorization": f"Bearer {suite.api_key}"}
    pid = gateway_pid(suite)
    session = uuid.uuid4().hex
    latencies: list[float] = []
    with httpx.Client(timeout=10, trust_env=False) as http:
        for _ in range(20):  # warm-up
            http.post(url, headers=headers, json={"hook_event_name": "Ping", "session_id": session})
        before = cpu_seconds(pid)
        for index in range(calls):
            body = {
                "hook_event_name": "Notification",
                "session_id": session,
                "cwd": "/home/dev/bench",
                "message": f"Claude is waiting for your input ({index})",
                "notification_type": "idle_prompt",
            }
            started = time.perf_counter()
            response = http.post(url, headers=headers, json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        cpu_per_call_ms = (cpu_seconds(pid) - before) / calls * 1000
    return latencies, cpu_per_call_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=24)
    parser.add_argument("--hooks", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        # Notifications of the hook phase would queue behind Telegram's per-chat pace; the
        # sandbox keeps real limits, the cards of phase 1 go first.
        suite = start_suite(Path(data_dir) / "data")
        try:
            workdir = Path(data_dir) / "project"
            workdir.mkdir()
            presses = press_to_start(suite, args.presses, workdir)
            hooks, cpu_ms = hook_round_trips(suite, args.hooks)
        finally:
            suite.stop()
    print(f"press → gated command starts: {summary(presses)}   (target p50 ≤ 150 ms)")
    print(f"notify-only hook answered:     {summary(hooks)}   (target p99 ≤ 50 ms)")
    print(f"gateway CPU per hook call:     {cpu_ms:.2f} ms")


if __name__ == "__main__":
    main()
