"""Helpers for tests and benchmarks: a service in-process with a lifespan that connects it, and
a real auth + gateway stack as child processes (run by module name: nothing here imports a
service)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from cctelegram_common.apikeys import generate_key
from cctelegram_testing.processes import ServiceProcess


class RunnableApp(Protocol):
    """What ``lifespan_app`` needs of a service (the gateway's ``Gateway``)."""

    fastapi: FastAPI

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    async def connect_forever(self) -> None: ...

    async def stop(self) -> None: ...


def lifespan_app(gateway: RunnableApp) -> ASGIApp:
    """The service's ASGI app whose lifespan connects NATS and runs FastAPI's lifespan (the
    gateway's MCP session manager), in whatever event loop serves it (Starlette's TestClient,
    schemathesis ``from_asgi``)."""

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        await gateway.connect_forever()
        async with gateway.fastapi.router.lifespan_context(gateway.fastapi):
            try:
                yield
            finally:
                await gateway.stop()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await gateway.asgi(scope, receive, send)
            return
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with running():
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    return app


@dataclass
class Stack:
    """auth + N gateways as real processes on one NATS, with a bootstrap admin key."""

    nats_url: str
    directory: Path
    admin_key: str = field(default_factory=lambda: generate_key().full)
    auth_secret: str = field(default_factory=lambda: generate_key().secret)
    auth: ServiceProcess | None = None
    gateways: list[ServiceProcess] = field(default_factory=list)

    def start(self, gateways: int = 1, gateway_env: dict[str, str] | None = None) -> Stack:
        key_file = self.directory / "admin-key"
        key_file.write_text(self.admin_key)
        key_file.chmod(0o600)
        self.auth = ServiceProcess(
            "cctelegram_auth",
            "AUTH_",
            {
                "NATS_URL": self.nats_url,
                "AUTH_SECRET": self.auth_secret,
                "AUTH_BOOTSTRAP_KEY_FILE": str(key_file),
            },
            self.directory / "auth.log",
        ).start()
        for index in range(gateways):
            self.gateways.append(
                ServiceProcess(
                    "cctelegram_gateway",
                    "GATEWAY_",
                    {"NATS_URL": self.nats_url, **(gateway_env or {})},
                    self.directory / f"gateway-{index}.log",
                ).start()
            )
        return self

    def stop(self) -> list[int | None]:
        codes = [gateway.stop() for gateway in self.gateways]
        if self.auth is not None:
            codes.append(self.auth.stop())
        return codes

    def logs(self) -> str:
        parts = [gateway.output() for gateway in self.gateways]
        if self.auth is not None:
            parts.append(self.auth.output())
        return "\n".join(parts)


@contextlib.contextmanager
def running_stack(
    nats_url: str, directory: Path, gateways: int = 1, gateway_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    stack = Stack(nats_url, directory)
    try:
        yield stack.start(gateways, gateway_env)
    finally:
        stack.stop()
