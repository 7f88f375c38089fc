"""Runs one of our services as a real child process (``python -m cctelegram_<svc>``) on a
free loopback port, waits for ``/health/ready``, keeps its stderr, and always cleans up.

For tests and benchmarks that need the real thing rather than an in-process app.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from cctelegram_cli.natsserver import free_port
from cctelegram_common.processes import ChildProcess, ProcessSpec


class ServiceProcessError(RuntimeError):
    """The service exited or never became ready."""


class ServiceProcess:
    def __init__(
        self,
        module: str,
        env_prefix: str,
        env: dict[str, str],
        log_path: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.module = module
        self.port = port or free_port(host)
        self.host = host
        self.log_path = log_path
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            f"{env_prefix}HTTP__PORT": str(self.port),
            f"{env_prefix}HTTP__HOST": host,
            f"{env_prefix}LOG__JSON": "true",
            **env,
        }
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, ready_timeout_s: float = 60.0) -> ServiceProcess:
        return self.spawn().wait_ready(ready_timeout_s)

    def spawn(self) -> ServiceProcess:
        """Start the process without waiting (start several, then ``wait_ready`` each)."""
        self.process = ProcessSpec(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self.log_path,
            new_session=True,
            kill_group=True,  # whatever the service started goes with it
        ).start()
        return self

    def wait_ready(self, ready_timeout_s: float = 60.0) -> ServiceProcess:
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if not self.process.alive:
                raise ServiceProcessError(
                    f"{self.module} exited with {self.process.exit_code}: {self.tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise ServiceProcessError(f"{self.module} not ready in {ready_timeout_s}s: {self.tail()}")

    def tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def stop(self, grace_s: float = 10.0) -> int | None:
        if self.process is None:
            return None
        return self.process.stop(grace_s)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
