"""create_app: the composition root joining the Bot API, the control API and the web page."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .config import TOKEN_PATTERN, SandboxConfig
from .control_api import ControlApi
from .errors import NOT_FOUND
from .state import Sandbox
from .transport import BotApiEndpoint, install_log_filter

# Bots one sandbox serves besides the default one.
MAX_WORLDS = 64


def _page_html() -> str:
    return resources.files("cctelegram_sandbox").joinpath("static/index.html").read_text("utf-8")


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Never a traceback in the body, and in Telegram's shape so any client can read it.
    return JSONResponse(
        {"ok": False, "error_code": 500, "description": "Internal Server Error"}, status_code=500
    )


class SandboxApp:
    """The ASGI app. /bot... goes straight to the lean Bot API endpoint; the rest to Starlette."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        # Other bots' worlds, by bot id (the first bot to call, or --token's, has `sandbox`).
        self.worlds: dict[int, Sandbox] = {}
        self._world_webs: dict[int, Starlette] = {}
        self.bot_api = BotApiEndpoint(sandbox, self.world_for)
        self.web = self._web(sandbox, primary=True)

    def world_for(self, bot_id: int) -> Sandbox | None:
        """The world of one bot: its own chats, messages, updates and flood windows (a bot
        never sees another bot's private chats; the sandbox also keeps groups apart)."""
        primary = self.sandbox
        if primary.bot_id is None or primary.bot_id == bot_id:
            return primary
        world = self.worlds.get(bot_id)
        if world is None and len(self.worlds) >= MAX_WORLDS:
            return None  # answered 401: any-token mode must not grow without bound
        if world is None:
            config = dataclasses.replace(
                primary.config, bot_username=f"{primary.config.bot_username}_{bot_id}"
            )
            world = Sandbox(config)
            world.bot_id = bot_id
            self.worlds[bot_id] = world
            self._world_webs[bot_id] = self._web(world, primary=False)
        return world

    def _web(self, sandbox: Sandbox, *, primary: bool) -> Starlette:
        control = ControlApi(sandbox)
        page = _page_html()

        async def index(request: Request) -> Response:
            return HTMLResponse(page, headers={"Cache-Control": "no-store"})

        async def download(request: Request) -> Response:
            token = request.path_params["token"]
            configured = sandbox.config.token
            if (
                not TOKEN_PATTERN.fullmatch(token)
                or (
                    configured is not None
                    and token not in (configured, *sandbox.config.extra_tokens)
                )
                or token in sandbox.revoked_tokens
            ):
                # Telegram's file endpoint answers a wrong token with a bare 404.
                return JSONResponse(NOT_FOUND.envelope(), status_code=404)
            # Each bot downloads from its own world (the file was sent to that bot); a bot
            # with no world yet has no files (and downloading makes none).
            bot_id = int(token.split(":", 1)[0])
            world: Sandbox | None = sandbox
            if primary and sandbox.bot_id is not None and sandbox.bot_id != bot_id:
                world = self.worlds.get(bot_id)
            if world is None or token in world.revoked_tokens:
                return JSONResponse(NOT_FOUND.envelope(), status_code=404)
            # getFile's file_path is "<kind>s/<file_id>".
            request.path_params["file_id"] = request.path_params["file_path"].rsplit("/", 1)[-1]
            return await (control if world is sandbox else ControlApi(world)).file(request)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await sandbox.shutdown()
            if primary:
                for world in self.worlds.values():
                    await world.shutdown()

        return Starlette(
            routes=[
                Route("/", index, methods=["GET"]),
                Route("/file/bot{token}/{file_path:path}", download, methods=["GET"]),
                *control.routes(),
            ],
            exception_handlers={Exception: _internal_error},
            lifespan=lifespan,
        )

    def bots(self) -> list[dict[str, Any]]:
        """Every bot that has a world: the default one first."""
        worlds = [self.sandbox, *self.worlds.values()]
        return [
            {"id": world.bot_id, "username": world.bot_user().username, "default": index == 0}
            for index, world in enumerate(worlds)
            if world.bot_id is not None
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bot"):
            await self.bot_api(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == "/sandbox/api/bots":
            await JSONResponse(self.bots())(scope, receive, send)
            return
        if scope["type"] == "http" and scope.get("query_string"):
            # ?bot=<bot id>: the control API and the page of another bot's world.
            wanted = parse_qs(scope["query_string"].decode("latin-1")).get("bot")
            if wanted and wanted[0].isdigit() and int(wanted[0]) != self.sandbox.bot_id:
                web = (
                    self._world_webs.get(int(wanted[0])) if self.world_for(int(wanted[0])) else None
                )
                if web is not None:
                    await web(scope, receive, send)
                    return
        await self.web(scope, receive, send)


def create_app(config: SandboxConfig | None = None, **overrides: Any) -> SandboxApp:
    """Build a sandbox; `create_app(token=..., flood_control=False)` overrides config fields."""
    if config is None:
        config = SandboxConfig(**overrides)
    elif overrides:
        raise TypeError("pass either a SandboxConfig or keyword overrides, not both")
    install_log_filter()
    return SandboxApp(Sandbox(config))
