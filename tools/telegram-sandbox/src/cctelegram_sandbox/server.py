"""Running the sandbox under uvicorn so that shutdown also ends long polls and live streams."""

from __future__ import annotations

import asyncio
import socket
from types import FrameType

import uvicorn

from .app import SandboxApp


class SandboxServer(uvicorn.Server):
    """uvicorn.Server that answers waiting getUpdates calls and closes event streams on exit."""

    def __init__(self, app: SandboxApp, *, log_level: str = "warning") -> None:
        super().__init__(
            uvicorn.Config(
                app,
                log_level=log_level,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=3,
                # Long polls hold connections for up to 50 s; keep idle ones around like Telegram.
                timeout_keep_alive=75,
                # Loopback only and no proxy in front: skip per-request header rewriting.
                proxy_headers=False,
                server_header=False,
            )
        )
        self.sandbox_app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def begin_shutdown(self) -> None:
        """Thread-safe: wake everything that holds a connection open, so exit is quick."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            sandbox = self.sandbox_app.sandbox
            loop.call_soon_threadsafe(sandbox.updates.close)
            loop.call_soon_threadsafe(sandbox.feed.close)

    def stop(self) -> None:
        self.begin_shutdown()
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.begin_shutdown()
        super().handle_exit(sig, frame)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free port without a race."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say they are TCP,
    # and without it every two-part response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
