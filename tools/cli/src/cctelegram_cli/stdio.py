"""``cctelegram stdio --url URL``: an MCP stdio server forwarding everything to a gateway.

For MCP clients that can only launch stdio servers. The API key comes from
``CCTELEGRAM_API_KEY``. stdout carries JSON-RPC and nothing else: every log line goes to
stderr, and the SDK points fd 1 at stderr while serving, so a stray print cannot corrupt it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from cctelegram_common import __version__

API_KEY_ENV = "CCTELEGRAM_API_KEY"
log = logging.getLogger("cctelegram.stdio")


def build_proxy(upstream: Client, name: str = "cctelegram") -> Server[Any]:
    """A low-level server whose every handler asks the gateway (no caching: the gateway's
    answer depends on the key, and keys can be revoked)."""

    async def list_tools(
        _ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        cursor = params.cursor if params else None
        return await upstream.list_tools(cursor=cursor, cache_mode="bypass")

    async def call_tool(
        _ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return await upstream.call_tool(params.name, params.arguments)
        except Exception as error:
            log.warning("upstream call failed: %s", type(error).__name__)
            return types.CallToolResult(
                content=[
                    types.TextContent(
                        type="text",
                        text=f"the gateway could not be reached ({type(error).__name__})",
                    )
                ],
                is_error=True,
            )

    async def list_resources(
        _ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        cursor = params.cursor if params else None
        return await upstream.list_resources(cursor=cursor, cache_mode="bypass")

    async def read_resource(
        _ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        result = await upstream.read_resource(str(params.uri))
        assert isinstance(result, types.ReadResourceResult)
        return result

    return Server(
        name,
        version=__version__,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


async def serve(url: str, api_key: str, mode: str) -> None:
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx2.Timeout(30, read=600),  # wait_for_approval may block for minutes
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as upstream,
    ):
        proxy = build_proxy(upstream)
        async with stdio_server() as (read_stream, write_stream):
            await proxy.run(read_stream, write_stream, proxy.create_initialization_options())


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="cctelegram stdio: %(message)s"
    )
    for noisy in ("httpx", "httpx2", "httpcore", "mcp"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    api_key = os.environ.get(API_KEY_ENV, "").strip()
    if not api_key:
        print(f"cctelegram stdio: set {API_KEY_ENV} to an API key", file=sys.stderr)
        return 2
    try:
        anyio.run(serve, args.url, api_key, args.mode)
    except KeyboardInterrupt:
        return 130
    except BaseException as error:  # ExceptionGroup from the SDK's task groups included
        print(
            f"cctelegram stdio: cannot talk to {args.url} ({_first_cause(error)})",
            file=sys.stderr,
        )
        return 1
    return 0


def _first_cause(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stdio", help=f"MCP stdio server forwarding to a gateway (key from {API_KEY_ENV})"
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("CCTELEGRAM_URL", "http://127.0.0.1:8080/mcp"),
        help="the gateway's MCP URL (CCTELEGRAM_URL, default http://127.0.0.1:8080/mcp)",
    )
    parser.add_argument(
        "--mode",
        choices=["auto", "legacy"],
        default="auto",
        help="wire to the gateway: auto (2026-07-28, falls back) or legacy (2025-11-25)",
    )
    parser.set_defaults(func=_run)
