"""Route rules (admin keys only): list, add or replace, remove — RPCs to the events service.

Also served as REST at ``/v1/routes`` (GET lists, POST adds) and ``/v1/routes/remove``.
"""

from __future__ import annotations

from pydantic import Field

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.routing import (
    RULE_NAME_PATTERN,
    RouteAddRequest,
    RouteList,
    RouteListRequest,
    RouteRemoveRequest,
    RouteRule,
)
from cctelegram_gateway.registry import ToolContext, registry
from cctelegram_gateway.tools.events import call_events


class RemoveRouteInput(Contract):
    name: str = Field(pattern=RULE_NAME_PATTERN, description="The rule to remove")


@registry.tool(
    "list_routes",
    description="List the route rules: what each matches (client, project, type, severity) "
    "and where it sends (bot, chat, forum topic).",
    permission=Permission.ROUTES_MANAGE,
    rest_method="GET",
    rest_path="/v1/routes",
    read_only=True,
)
async def list_routes(ctx: ToolContext, arguments: RouteListRequest) -> RouteList:
    return await call_events(ctx, subjects.EVENTS_RPC_ROUTES_LIST, arguments, RouteList)


@registry.tool(
    "add_route",
    description="Add a route rule, or replace the rule of the same name. Every rule that "
    "matches an event is a route for it; with no rule matching, events go to every allowed "
    "user's private chat.",
    permission=Permission.ROUTES_MANAGE,
    rest_path="/v1/routes",
)
async def add_route(ctx: ToolContext, arguments: RouteRule) -> RouteRule:
    request = RouteAddRequest(rule=arguments, actor=ctx.principal.client_id)
    return await call_events(ctx, subjects.EVENTS_RPC_ROUTES_ADD, request, RouteRule)


@registry.tool(
    "remove_route",
    description="Remove a route rule by name.",
    permission=Permission.ROUTES_MANAGE,
    rest_path="/v1/routes/remove",
)
async def remove_route(ctx: ToolContext, arguments: RemoveRouteInput) -> RouteRule:
    request = RouteRemoveRequest(name=arguments.name, actor=ctx.principal.client_id)
    return await call_events(
        ctx, subjects.EVENTS_RPC_ROUTES_REMOVE, request, RouteRule, field="name"
    )
