"""The child-process runner: output where it was sent, SIGTERM then SIGKILL, the whole group
killed when asked, and a child that does not outlive its parent (Linux)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cctelegram_common.processes import Output, ProcessSpec

PARENT = """
import sys, time
from cctelegram_common.processes import ProcessSpec
child = ProcessSpec(
    [sys.executable, "-c", "import time; time.sleep(600)"], die_with_parent=True
).start()
print(child.pid, flush=True)
time.sleep(600)
"""
# Ignores SIGTERM, says so once it does (and creates the file named by its argument, if
# any), then sleeps: only SIGKILL ends it.
STUBBORN = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
if sys.argv[1:]:
    pathlib.Path(sys.argv[1]).touch()
time.sleep(600)
"""
# Ignores SIGTERM, leaves a grandchild (ignoring it too) in its process group, prints its pid.
GROUP_LEADER = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(grandchild.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose: its parent (init) reaps it eventually.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:  # reaped in between
        return False


def _wait_gone(pid: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_stdout_and_stderr_are_appended_to_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    log.parent.mkdir()
    log.write_text("earlier run\n")
    script = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"
    child = ProcessSpec([sys.executable, "-c", script], stdout=log).start()
    assert child.wait(60) == 3
    assert child.exit_code == 3
    assert not child.alive
    assert log.read_text().splitlines() == ["earlier run", "to stdout", "to stderr"]


def test_the_environment_is_the_one_given_and_a_pipe_is_readable() -> None:
    script = "import os; print(os.environ.get('ONLY_THIS', 'missing'), 'HOME' in os.environ)"
    child = ProcessSpec(
        [sys.executable, "-c", script], env={"ONLY_THIS": "here"}, stdout=Output.PIPE
    ).start()
    assert child.stdout is not None
    assert child.stdout.readline().decode().split() == ["here", "False"]
    assert child.wait(60) == 0
    assert child.stop(grace_s=30) == 0
    assert child.stdout.closed


def test_stop_sends_sigterm_first() -> None:
    child = ProcessSpec([sys.executable, "-c", "import time; time.sleep(600)"]).start()
    assert child.alive
    assert child.stop(grace_s=30) == -signal.SIGTERM
    assert not child.killed


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    child = ProcessSpec(
        [sys.executable, "-c", STUBBORN], stdout=Output.PIPE, new_session=True
    ).start()
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    assert child.stop(grace_s=0.5) == -signal.SIGKILL
    assert child.killed


def test_kill_group_takes_the_childs_own_children_too() -> None:
    child = ProcessSpec(
        [sys.executable, "-c", GROUP_LEADER],
        stdout=Output.PIPE,
        new_session=True,
        kill_group=True,
    ).start()
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    try:
        assert child.stop(grace_s=0.5) == -signal.SIGKILL
        _wait_gone(grandchild)
        assert not _alive(grandchild)
    finally:
        if _alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_kill_group_needs_a_session_of_its_own() -> None:
    with pytest.raises(ValueError, match="new_session"):
        ProcessSpec(["true"], kill_group=True)


async def test_the_asyncio_flavour_stops_the_same_way(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = await ProcessSpec(
        [sys.executable, "-c", STUBBORN, str(ready)], stdout=Output.DISCARD
    ).start_async()
    while not ready.exists():
        assert child.alive
        await asyncio.sleep(0.02)
    assert await child.stop(grace_s=0.5) == -signal.SIGKILL
    assert child.killed
    assert child.exit_code == -signal.SIGKILL
    polite = await ProcessSpec([sys.executable, "-c", "import time; time.sleep(600)"]).start_async()
    assert await polite.stop(grace_s=30) == -signal.SIGTERM
    assert not polite.killed


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux only")
def test_the_child_gets_sigterm_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    try:
        assert _alive(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        _wait_gone(child_pid)
        assert not _alive(child_pid)
    finally:
        parent.stdout.close()
        if _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)
