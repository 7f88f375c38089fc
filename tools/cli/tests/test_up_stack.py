"""`cctelegram up`'s process handling without the suite: a child that dies is reported
with its last log line, and the stop ends every child, killing one that ignores SIGTERM.
(The whole command, end to end, is tests/e2e/test_up.py.)"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path

from cctelegram_cli.up.banner import banner
from cctelegram_cli.up.config import UpConfig
from cctelegram_cli.up.stack import Endpoints, Stack, watch

SLEEPER = "import time; time.sleep(600)"
# Ignores SIGTERM once it has said so in its log; only SIGKILL ends it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(600)
"""


def _config(data_dir: Path) -> UpConfig:
    return UpConfig(
        data_dir=data_dir,
        nats_url=None,
        nats_port=4222,
        gateway_port=8080,
        sandbox_port=8081,
        service_ports_start=8091,
        bot_token=None,
        api_base_url="https://api.telegram.org",
        allowed_users=[],
    )


def test_a_dead_child_is_reported_with_its_code_and_last_log_line(tmp_path: Path) -> None:
    stack = Stack(_config(tmp_path))
    try:
        stack.spawn("sleeper", [sys.executable, "-c", SLEEPER], {}, None)
        failing = stack.spawn(
            "failing",
            [sys.executable, "-c", "import sys; print('bad setting: X'); sys.exit(3)"],
            {},
            None,
        )
        exits = watch(stack)
        child, code = next(exits)
        assert (child, code) == (failing, 3)
        assert child.last_log_line() == "bad setting: X"
        assert (tmp_path / "logs" / "failing.log").read_text() == "bad setting: X\n"
        assert all(other.process.alive for other in stack.children if other is not failing)
    finally:
        stack.stop(grace_s=30)


def test_stop_ends_every_child_and_kills_one_that_ignores_sigterm(tmp_path: Path) -> None:
    stack = Stack(_config(tmp_path))
    polite = stack.spawn("polite", [sys.executable, "-c", SLEEPER], {}, None)
    stubborn = stack.spawn("stubborn", [sys.executable, "-c", STUBBORN], {}, None)
    log = tmp_path / "logs" / "stubborn.log"
    while "ignoring" not in (log.read_text() if log.exists() else ""):
        assert stubborn.process.alive
        time.sleep(0.02)
    stack.stop(grace_s=1)
    assert polite.process.exit_code == -signal.SIGTERM
    assert stubborn.process.exit_code == -signal.SIGKILL
    assert stack.children == []


def test_the_banner_names_the_sandbox_only_when_there_is_one(tmp_path: Path) -> None:
    config = _config(tmp_path)
    endpoints = Endpoints(
        mcp_url="http://127.0.0.1:8080/mcp",
        api_key="cctg_key",
        nats_url="nats://127.0.0.1:4222",
        sandbox_url="http://127.0.0.1:8081",
    )
    shown = banner(endpoints, config)
    assert "  Sandbox   http://127.0.0.1:8081" in shown
    assert (
        "claude mcp add --transport http cctelegram http://127.0.0.1:8080/mcp "
        '--header "Authorization: Bearer cctg_key"'
    ) in shown
    assert shown.splitlines()[-1].endswith("Ctrl-C stops everything")
    real_bot = banner(dataclasses.replace(endpoints, sandbox_url=""), config)
    assert "Sandbox" not in real_bot
