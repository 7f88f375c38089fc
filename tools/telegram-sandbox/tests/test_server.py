"""The real server: CLI, subprocess helper, dropped connections, live stream, shutdown."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from cctelegram_sandbox.__main__ import parse_args
from cctelegram_testing.sandbox import run_sandbox


def test_cli_options() -> None:
    args = parse_args(["--port", "0", "--rate-scale", "2", "--no-flood-control"])
    assert (args.host, args.port, args.rate_scale, args.no_flood_control) == (
        "127.0.0.1", 0, 2.0, True,
    )  # fmt: skip
    with pytest.raises(SystemExit):
        parse_args(["--token", "not-a-token"])


def test_subprocess_mode_serves_the_page_and_the_bot_api() -> None:
    with run_sandbox(subprocess=True, token=None, flood_control=False) as sandbox:
        page = httpx.get(sandbox.url + "/", trust_env=False)
        assert page.status_code == 200
        assert "Telegram sandbox" in page.text
        other_token = "55:ANY-well-formed-token-is-fine-here"
        me = httpx.get(f"{sandbox.url}/bot{other_token}/getMe", trust_env=False).json()
        assert me["result"]["id"] == 55


def test_dropped_connection_after_the_message_was_stored() -> None:
    with run_sandbox(flood_control=False) as sandbox:
        sandbox.create_chat(type="private", user={"id": 42, "first_name": "Ann"})
        sandbox.fault(method="sendMessage", drop_connection_after_record=True)
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{sandbox.bot_url}/sendMessage", json={"chat_id": 42, "text": "x"}, trust_env=False
            )
        # The send took effect although the client saw an error: a retry would duplicate it.
        assert [message["text"] for message in sandbox.messages(42)] == ["x"]
        assert sandbox.bot("sendMessage", chat_id=42, text="y")["ok"] is True


def test_delay_fault_and_live_stream() -> None:
    with run_sandbox(flood_control=False) as sandbox:
        sandbox.create_chat(type="private", user={"id": 42, "first_name": "Ann"})
        sandbox.fault(method="getMe", delay_s=0.3)
        started = time.monotonic()
        assert sandbox.bot("getMe")["ok"] is True
        assert time.monotonic() - started >= 0.3
        with httpx.stream("GET", f"{sandbox.api_url}/stream", timeout=5, trust_env=False) as stream:
            lines = (line for line in stream.iter_lines() if line)
            assert next(lines) == "retry: 1000"
            sandbox.write(42, "ping")
            event = [next(lines), next(lines)]
        assert event[0] == "event: change"
        assert "chat:42" in event[1]


def test_stopping_ends_a_waiting_long_poll_quickly() -> None:
    runner = run_sandbox()
    sandbox = runner.__enter__()
    with httpx.Client(trust_env=False, timeout=60) as client:
        results: list[int] = []
        poll = threading.Thread(
            target=lambda: results.append(
                client.post(f"{sandbox.bot_url}/getUpdates", json={"timeout": 50}).status_code
            )
        )
        poll.start()
        time.sleep(0.3)
        started = time.monotonic()
        runner.stop()
        poll.join(10)
    assert results == [200]
    assert time.monotonic() - started < 5
