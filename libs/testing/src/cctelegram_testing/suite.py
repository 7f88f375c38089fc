"""Runs `cctelegram up` as a real process on free ports: for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cctelegram_cli.natsserver import free_port_block
from cctelegram_common.processes import ChildProcess, Output, ProcessSpec

# `cctelegram up` gives its services 15 s before it kills them; still running after 40 s, it
# hangs, and the test says so.
STOP_GRACE_S = 40.0


@dataclass
class RunningSuite:
    process: ChildProcess
    data_dir: Path
    mcp_url: str
    api_key: str
    sandbox_url: str
    banner: str
    started_in_s: float
    ports: dict[str, int]
    nats_url: str

    def stop(self) -> int:
        """Its exit code; ``subprocess.TimeoutExpired`` if it had to be killed."""
        code = self.process.stop(STOP_GRACE_S)
        if self.process.killed:
            raise subprocess.TimeoutExpired("cctelegram up", STOP_GRACE_S)
        return code


def start_suite(data_dir: Path, timeout_s: float = 90, **env_overrides: str) -> RunningSuite:
    base = free_port_block(8)
    env = {
        **os.environ,
        "CCTELEGRAM_DATA_DIR": str(data_dir),
        "CCTELEGRAM_NATS_PORT": str(base),
        "CCTELEGRAM_GATEWAY_PORT": str(base + 1),
        "CCTELEGRAM_SANDBOX_PORT": str(base + 2),
        "CCTELEGRAM_SERVICE_PORTS_START": str(base + 3),
        **env_overrides,
    }
    for name in ("TELEGRAM_BOT_TOKEN", "CCTELEGRAM_NATS_URL", "NATS_URL"):
        if name not in env_overrides:
            env.pop(name, None)
    started = time.monotonic()
    process = ProcessSpec(
        [sys.executable, "-m", "cctelegram_cli", "up"], env=env, stdout=Output.PIPE
    ).start()
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode(errors="replace")
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    text = "".join(lines)
    if "Ctrl-C stops everything" not in text:
        process.kill()
        process.stdout.close()
        raise AssertionError(f"`cctelegram up` did not print its block:\n{text[-4000:]}")
    elapsed = time.monotonic() - started

    def field(pattern: str) -> str:
        match = re.search(pattern, text)
        assert match, f"{pattern!r} not in banner:\n{text}"
        return match.group(1)

    return RunningSuite(
        process=process,
        data_dir=data_dir,
        mcp_url=field(r"MCP URL\s+(\S+)"),
        api_key=field(r"API key\s+(\S+)"),
        sandbox_url=field(r"Sandbox\s+(\S+)"),
        banner=text,
        started_in_s=elapsed,
        ports={
            "nats": base,
            "gateway": base + 1,
            "sandbox": base + 2,
            "auth": base + 3,
            "events": base + 4,
            "notifier": base + 5,
            "bridge-manager": base + 6,
        },
        nats_url=field(r"NATS\s+(\S+)"),
    )


def processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line or environment mentions ``marker`` (our data dir)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(entry.name))
    return found
