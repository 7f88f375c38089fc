"""MCP over the tool registry: the SDK's low-level ``Server`` with flat schemas from the models,
served as stateless Streamable HTTP (JSON responses) so any replica answers any request."""

from __future__ import annotations

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
from cctelegram_gateway.registry import ToolError, ToolRegistry, ToolSpec

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
        output_schema=spec.output_model.model_json_schema(mode="serialization"),
        annotations=types.ToolAnnotations(read_only_hint=spec.read_only or None),
    )


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
        try:
            result = await runner.call(spec, principal, request_id, params.arguments)
        except ToolError as refused:
            # The message says everything, a rate limit's retry delay included.
            return _error(refused.message)
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
    server: Server[Any], max_body_bytes: int
) -> tuple[StreamableHTTPASGIApp, StreamableHTTPSessionManager]:
    """The ASGI endpoint for /mcp and the manager whose ``run()`` must wrap the app's life.

    Host/Origin are checked by the gateway's own middleware for every path (one policy,
    one error shape), so the SDK's copy of that check is off.
    """
    manager = StreamableHTTPSessionManager(
        app=server,
        json_response=True,
        stateless=True,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=max_body_bytes,
    )
    return StreamableHTTPASGIApp(manager), manager
