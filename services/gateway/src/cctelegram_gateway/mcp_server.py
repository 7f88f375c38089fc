"""MCP over the tool registry: the SDK's low-level ``Server`` with flat schemas from the models,
served as stateless Streamable HTTP (JSON responses) so any replica answers any request."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from cctelegram_common import __version__
from cctelegram_common.contracts.auth import Principal
from cctelegram_gateway.calls import ToolRunner
from cctelegram_gateway.middleware import current_principal, current_request_id
from cctelegram_gateway.registry import ToolError, ToolRegistry, ToolSpec, current_progress
from cctelegram_gateway.tools.claude_code import (
    PROJECT_HEADER,
    SESSION_HEADER,
    current_session_hints,
)

INSTRUCTIONS = (
    "CCTelegram reaches people on Telegram: send notifications (send_telegram_event, "
    "send_telegram_message, ...), ask for approvals and wait for the answer. Tools you "
    "cannot use with this key are not listed."
)


def _caller(ctx: ServerRequestContext[Any, Any]) -> tuple[Principal, str]:
    """The principal the middleware vouched for, from this POST's request state."""
    request = ctx.request
    state = getattr(request, "state", None)
    principal = getattr(state, "principal", None) or current_principal.get()
    request_id = getattr(state, "request_id", None) or current_request_id.get()
    if principal is None:  # unreachable behind the middleware; never serve anonymously
        raise MCPError(INVALID_PARAMS, "not authenticated")
    return principal, request_id


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def tool_schema(spec: ToolSpec[Any, Any]) -> types.Tool:
    return types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=spec.input_model.model_json_schema(),
        output_schema=None
        if spec.text_only
        else spec.output_model.model_json_schema(mode="serialization"),
        annotations=types.ToolAnnotations(read_only_hint=spec.read_only or None),
    )


def _session_hints(ctx: ServerRequestContext[Any, Any]) -> tuple[str | None, str | None]:
    """``X-CCTelegram-Session`` / ``-Project`` of the MCP server's configured headers."""
    headers = getattr(ctx.request, "headers", None)
    if headers is None:
        return None, None
    session = (headers.get(SESSION_HEADER) or "").strip()[:200] or None
    project = (headers.get(PROJECT_HEADER) or "").strip()[:100] or None
    return session, project


def _progress_reporter(ctx: ServerRequestContext[Any, Any]) -> Any:
    """Sends progress notifications on this call's stream when the client asked for them."""
    meta = ctx.meta or {}
    if meta.get("progress_token") is None and meta.get("progressToken") is None:
        return None
    ticks = 0

    async def report(message: str) -> None:
        nonlocal ticks
        ticks += 1
        with contextlib.suppress(Exception):  # a keep-alive must never fail the call
            await ctx.session.report_progress(float(ticks), None, message)

    return report


def build_server(registry: ToolRegistry, runner: ToolRunner, name: str) -> Server[Any]:
    # Building JSON schemas is costly (milliseconds for the whole registry): do it once.
    schemas = {spec.name: tool_schema(spec) for spec in registry}

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal, _ = _caller(ctx)
        return types.ListToolsResult(
            tools=[schemas[spec.name] for spec in registry.visible_to(principal)]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        principal, request_id = _caller(ctx)
        spec = registry.get(params.name)
        if spec is None:
            return _error(f"unknown tool '{params.name}'")
        hints = current_session_hints.set(_session_hints(ctx))
        progress = current_progress.set(_progress_reporter(ctx) if spec.streams else None)
        try:
            result = await runner.call(spec, principal, request_id, params.arguments)
        except ToolError as refused:
            # The message says everything, a rate limit's retry delay included.
            return _error(refused.message)
        finally:
            current_session_hints.reset(hints)
            current_progress.reset(progress)
        if spec.text_only:
            text = result.model_dump_json(exclude_none=True)
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)])
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.model_dump_json())],
            structured_content=result.model_dump(mode="json"),
        )

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        principal, _ = _caller(ctx)
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=spec.uri,
                    name=spec.name,
                    description=spec.description,
                    mime_type=spec.mime_type,
                )
                for spec in registry.resources.values()
                if principal.can(spec.permission)
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        principal, request_id = _caller(ctx)
        spec = registry.resources.get(str(params.uri))
        if spec is None or not principal.can(spec.permission):
            # A forbidden resource looks exactly like an absent one.
            raise MCPError(INVALID_PARAMS, "Resource not found", {"uri": str(params.uri)})
        try:
            text = await runner.read(spec, principal, request_id)
        except ToolError as refused:
            raise MCPError(refused.mcp_error, refused.message) from None
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=spec.uri, mime_type=spec.mime_type, text=text)]
        )

    async def list_resource_templates(
        _ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[])

    async def list_prompts(
        _ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        # No prompts (yet); answering the list, cacheable, beats "method not found".
        return types.ListPromptsResult(prompts=[])

    handlers: dict[str, Any] = {"on_list_prompts": list_prompts}
    if registry.resources:
        handlers |= {
            "on_list_resources": list_resources,
            "on_read_resource": read_resource,
            "on_list_resource_templates": list_resource_templates,
        }
    return Server(
        name,
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        **handlers,
    )


def build_mcp_app(
    server: Server[Any], max_body_bytes: int, *, json_response: bool = True
) -> tuple[StreamableHTTPASGIApp, StreamableHTTPSessionManager]:
    """The ASGI endpoint for /mcp and the manager whose ``run()`` must wrap the app's life.

    Host/Origin are checked by the gateway's own middleware for every path (one policy,
    one error shape), so the SDK's copy of that check is off. ``json_response=False`` is
    the streamed twin for calls that may wait for a person (see ``wants_stream``).
    """
    manager = StreamableHTTPSessionManager(
        app=server,
        json_response=json_response,
        stateless=True,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=max_body_bytes,
    )
    return StreamableHTTPASGIApp(manager), manager


def wants_stream(headers: Any, body: bytes | None, streamed: frozenset[str]) -> bool:
    """A ``tools/call`` of a tool that may wait for a person, from a client that takes an
    SSE response: answer it over a stream (Claude Code abandons a JSON response after 60 s;
    over SSE it waits, and progress notifications keep proxies from timing out). Everything
    else keeps the cheaper plain-JSON path."""
    if b"text/event-stream" not in headers.get(b"accept", b""):
        return False
    name = headers.get(b"mcp-name")
    if name is not None:
        return headers.get(b"mcp-method") == b"tools/call" and name.decode("latin-1") in streamed
    if not body or b'"tools/call"' not in body:
        return False
    if not any(tool.encode() in body for tool in streamed):
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False
    params = message.get("params") if isinstance(message, dict) else None
    return isinstance(params, dict) and params.get("name") in streamed
