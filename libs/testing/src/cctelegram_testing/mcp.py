"""The one MCP test client: the official SDK client over Streamable HTTP with an API key.

Open it inside the test's own task (``async with mcp_client(...)``), not in a fixture: the
SDK's cancel scopes must be left in the task that entered them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@contextlib.asynccontextmanager
async def mcp_client(
    url: str, api_key: str, *, read_timeout_s: float = 150
) -> AsyncIterator[Client]:
    """A connected client; the read timeout covers tools that wait for a person."""
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx2.Timeout(30, read=read_timeout_s),
        ) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def call_ok(client: Client, name: str, arguments: dict[str, Any] | None = None) -> Any:
    """Call a tool that must succeed; its structured result."""
    result = await client.call_tool(name, arguments or {})
    assert not result.is_error, (name, result.content)
    return result.structured_content
