"""create_app: the composition root joining the Bot API, the control API and the web page."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

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
        self.bot_api = BotApiEndpoint(sandbox)
        control = ControlApi(sandbox)
        page = _page_html()

        async def index(request: Request) -> Response:
            return HTMLResponse(page, headers={"Cache-Control": "no-store"})

        async def download(request: Request) -> Response:
            token = request.path_params["token"]
            configured = sandbox.config.token
            if (
                not TOKEN_PATTERN.fullmatch(token)
                or (configured is not None and token != configured)
                or token in sandbox.revoked_tokens
            ):
                # Telegram's file endpoint answers a wrong token with a bare 404.
                return JSONResponse(NOT_FOUND.envelope(), status_code=404)
            # getFile's file_path is "<kind>s/<file_id>".
            request.path_params["file_id"] = request.path_params["file_path"].rsplit("/", 1)[-1]
            return await control.file(request)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await sandbox.shutdown()

        self.web = Starlette(
            routes=[
                Route("/", index, methods=["GET"]),
                Route("/file/bot{token}/{file_path:path}", download, methods=["GET"]),
                *control.routes(),
            ],
            exception_handlers={Exception: _internal_error},
            lifespan=lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bot"):
            await self.bot_api(scope, receive, send)
        else:
            await self.web(scope, receive, send)


def create_app(config: SandboxConfig | None = None, **overrides: Any) -> SandboxApp:
    """Build a sandbox; `create_app(token=..., flood_control=False)` overrides config fields."""
    if config is None:
        config = SandboxConfig(**overrides)
    elif overrides:
        raise TypeError("pass either a SandboxConfig or keyword overrides, not both")
    install_log_filter()
    return SandboxApp(Sandbox(config))
