"""The one child-process runner: start a child with its environment, output and lifetime
rules; ask whether it runs; stop it with SIGTERM, a grace period, then SIGKILL.

Everything the suite starts as a process goes through here — `cctelegram up`'s services and
its nats-server, the notifiers bridge-manager supervises, the test and benchmark runners — in
a plain flavour (``ProcessSpec.start`` → ``ChildProcess``) and an asyncio one
(``ProcessSpec.start_async`` → ``AsyncChildProcess``) for a supervisor that awaits its
children's exits on its event loop.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, TypedDict

_PR_SET_PDEATHSIG = 1
# How long to wait for a child to be reaped after SIGKILL: it is gone within milliseconds
# unless the kernel holds it (uninterruptible I/O); a stop must stay bounded even then.
KILL_WAIT_S = 10.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        import ctypes  # only children need it

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Output(enum.Enum):
    """Where a child's stream goes when it is not a log file."""

    INHERIT = "inherit"  # this process's own stream
    DISCARD = "discard"  # /dev/null
    PIPE = "pipe"  # a pipe this process reads (``ChildProcess.stdout``)


_STREAM: dict[Output, int | None] = {
    Output.INHERIT: None,
    Output.DISCARD: subprocess.DEVNULL,
    Output.PIPE: subprocess.PIPE,
}


class _SpawnOptions(TypedDict):
    """What ``subprocess.Popen`` and ``asyncio.create_subprocess_exec`` both take."""

    env: Mapping[str, str] | None
    stdin: int | None
    stdout: int | IO[bytes] | None
    stderr: int | None
    start_new_session: bool
    preexec_fn: Callable[[], None] | None


@dataclass(frozen=True)
class ProcessSpec:
    """How to start one child process."""

    command: Sequence[str]
    # None: this process's environment as it is.
    env: Mapping[str, str] | None = None
    # A path: stdout appended to that file (the directory is created).
    stdout: Path | Output = Output.INHERIT
    # None: wherever stdout goes (the same file or pipe; inherited or discarded likewise).
    stderr: Output | None = None
    # The child reads /dev/null, never this process's terminal.
    stdin_devnull: bool = False
    # Its own session and process group: Ctrl-C at our terminal (a signal to our group) does
    # not reach it before we decide to stop it.
    new_session: bool = False
    # SIGKILL goes to its whole process group (needs ``new_session``): what it started dies too.
    kill_group: bool = False
    # SIGTERM when the parent dies without stopping it (Linux; PR_SET_PDEATHSIG), so a killed
    # supervisor (`cctelegram up`, bridge-manager) leaves nothing behind. "The parent" is the
    # thread that spawned it: only for a parent without threads at spawn time, or one that
    # accepts that caveat (asyncio's child watcher forks from the loop's thread).
    die_with_parent: bool = False

    def __post_init__(self) -> None:
        if self.kill_group and not self.new_session:
            raise ValueError("kill_group needs new_session: the child must lead its own group")

    def start(self) -> ChildProcess:
        with self._spawn_options() as options:
            # Callers pass a fixed argv, never a shell command.
            process = subprocess.Popen(list(self.command), **options)  # noqa: S603
        return ChildProcess(process, kill_group=self.kill_group)

    async def start_async(self) -> AsyncChildProcess:
        with self._spawn_options() as options:
            process = await asyncio.create_subprocess_exec(*self.command, **options)
        return AsyncChildProcess(process, kill_group=self.kill_group)

    @contextlib.contextmanager
    def _spawn_options(self) -> Iterator[_SpawnOptions]:
        """The spawn's arguments; a log file is open only while the child is spawned (the
        child keeps a descriptor of its own)."""
        if self.stderr is not None:
            stderr = _STREAM[self.stderr]
        else:
            stderr = None if self.stdout is Output.INHERIT else subprocess.STDOUT
        with contextlib.ExitStack() as opened:
            if isinstance(self.stdout, Path):
                self.stdout.parent.mkdir(parents=True, exist_ok=True)
                stdout: int | IO[bytes] | None = opened.enter_context(open(self.stdout, "ab"))
            else:
                stdout = _STREAM[self.stdout]
            yield _SpawnOptions(
                env=self.env,
                stdin=subprocess.DEVNULL if self.stdin_devnull else None,
                stdout=stdout,
                stderr=stderr,
                start_new_session=self.new_session,
                preexec_fn=(
                    _die_with_parent if self.die_with_parent and sys.platform == "linux" else None
                ),
            )


class _Signalable(Protocol):
    @property
    def pid(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...


class _Child(abc.ABC):
    """What both flavours share: the signals."""

    def __init__(self, process: _Signalable, *, kill_group: bool) -> None:
        self._signalable = process
        self.kill_group = kill_group
        # Whether it had to be killed: a stop that ran out of grace, or ``kill()``.
        self.killed = False

    @property
    def pid(self) -> int:
        return self._signalable.pid

    @property
    @abc.abstractmethod
    def exit_code(self) -> int | None:
        """None while it runs."""

    @property
    def alive(self) -> bool:
        return self.exit_code is None

    def terminate(self) -> None:
        """SIGTERM: the child's own orderly stop (finish what is in flight, then exit)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self._signalable.send_signal(signal.SIGTERM)

    def _send_kill(self) -> None:
        if not self.alive:
            return
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            if self.kill_group:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                self._signalable.send_signal(signal.SIGKILL)


class ChildProcess(_Child):
    """A started child (``ProcessSpec.start``)."""

    def __init__(self, process: subprocess.Popen[bytes], *, kill_group: bool) -> None:
        super().__init__(process, kill_group=kill_group)
        self.process = process

    @property
    def exit_code(self) -> int | None:
        return self.process.poll()

    @property
    def stdout(self) -> IO[bytes] | None:
        """The pipe of ``Output.PIPE``, else None."""
        return self.process.stdout

    def wait(self, timeout_s: float | None = None) -> int:
        """Its exit code; ``subprocess.TimeoutExpired`` if it still runs after ``timeout_s``."""
        return self.process.wait(timeout_s)

    def kill(self) -> int:
        """SIGKILL (``kill -9``; to its whole group with ``kill_group``), then reap it."""
        self._send_kill()
        return self.process.wait(KILL_WAIT_S)

    def wait_or_kill(self, timeout_s: float) -> int:
        """Wait for the exit; SIGKILL once ``timeout_s`` has passed. Its exit code."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return self.kill()

    def stop(self, grace_s: float) -> int:
        """SIGTERM, SIGKILL after ``grace_s``; closes its output pipe. Its exit code."""
        try:
            self.terminate()
            return self.wait_or_kill(grace_s)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


class AsyncChildProcess(_Child):
    """A started child whose exit is awaited on the event loop (``ProcessSpec.start_async``)."""

    def __init__(self, process: asyncio.subprocess.Process, *, kill_group: bool) -> None:
        super().__init__(process, kill_group=kill_group)
        self.process = process

    @property
    def exit_code(self) -> int | None:
        return self.process.returncode

    async def wait(self) -> int:
        return await self.process.wait()

    async def kill(self) -> int:
        """SIGKILL (to its whole group with ``kill_group``), then reap it."""
        self._send_kill()
        return await asyncio.wait_for(self.process.wait(), KILL_WAIT_S)

    async def wait_or_kill(self, timeout_s: float) -> int:
        """Wait for the exit; SIGKILL once ``timeout_s`` has passed. Its exit code."""
        try:
            return await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            return await self.kill()

    async def stop(self, grace_s: float) -> int:
        """SIGTERM, SIGKILL after ``grace_s``. Its exit code."""
        self.terminate()
        return await self.wait_or_kill(grace_s)
