"""Run the stand-in as a real HTTP server on a free loopback port, in a background thread.

from cctelegram_anthropic_standin import Standin, ToolUse, marker

with Standin() as standin:
    standin.add_script("notify", [ToolUse("mcp__cctelegram__send_telegram_message",
                                          {"message": "hi"}), "Sent."])
    ...  # run claude with ANTHROPIC_BASE_URL=standin.url and a prompt holding marker("notify")
    standin.tool_results("notify")
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

import uvicorn

from .app import RecordedRequest, StandinState, create_app
from .scripts import ToolResult, Turn, marker

_START_TIMEOUT_S = 20.0


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free port without a race."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


class ThreadedServer:
    """Any ASGI app served by uvicorn on a loopback socket in a background thread (the
    stand-in uses it; tests use it for small helper servers, e.g. a fake MCP server)."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        lifespan: Literal["auto", "on", "off"] = "off",
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._lifespan = lifespan
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> ThreadedServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        sock = bind_socket(self._host, self._port)
        host, port = sock.getsockname()[:2]
        self._sock = sock
        self.url = f"http://{host}:{port}"
        server = uvicorn.Server(
            uvicorn.Config(
                self._app,
                log_level="warning",
                access_log=False,
                lifespan=self._lifespan,
                timeout_graceful_shutdown=2,
                proxy_headers=False,
                server_header=False,
            )
        )
        # uvicorn installs signal handlers only in the main thread: this one is stopped by stop().
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name=f"threaded-server:{port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server thread for {self.url} died while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server for {self.url} did not start in time")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = None
        self._thread = None
        self._sock = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Standin:
    """A running stand-in of the Anthropic Messages API: scripts in, recorded requests out.

    `start()` / `stop()` or a `with` block. Thread-safe: scripts may be added and requests read
    while `claude` processes talk to it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = StandinState()
        self._server = ThreadedServer(create_app(self.state), host, port)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` once started."""
        return self._server.url

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Standin:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Standin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripts and records ---------------------------------------------------------------
    def add_script(self, name: str, turns: Sequence[Turn]) -> str:
        """Register (or replace) script `name`; returns its marker for the prompt."""
        self.state.add_script(name, turns)
        return marker(name)

    def requests_for(self, name: str, session_id: str | None = None) -> list[RecordedRequest]:
        """The `/v1/messages` requests of the conversation(s) that carried script `name`
        (side requests excluded), optionally of one Claude Code session only."""
        return self.state.requests(name, session_id)

    def sessions(self, name: str) -> list[str]:
        """Claude Code session ids that ran script `name`, in order of first request."""
        return self.state.sessions(name)

    def all_requests(self) -> list[RecordedRequest]:
        """Every request received, side requests and unknown routes included, in order."""
        return self.state.all_requests()

    def tool_results(self, name: str, session_id: str | None = None) -> list[ToolResult]:
        """The distinct tool_result blocks the model received in script `name`, in order."""
        return self.state.tool_results(name, session_id)
