"""Response tools: get_telegram_responses, process_pending_responses, clear_old_responses.

The events service owns the response history; these are RPCs to it, carrying the caller's
client id and whether its role may read everyone's responses.
"""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.responses import (
    ClearedResponses,
    PendingResponses,
    ResponsesPage,
    ResponsesQuery,
)
from cctelegram_common.contracts.tools import (
    ClearOldResponsesInput,
    GetTelegramResponsesInput,
    ProcessPendingResponsesInput,
)
from cctelegram_gateway.registry import ToolContext, registry
from cctelegram_gateway.tools.events import call_events


def _query(ctx: ToolContext, **fields: int) -> ResponsesQuery:
    return ResponsesQuery(
        client_id=ctx.principal.client_id,
        read_all=ctx.principal.can(Permission.READ_ALL),
        **fields,
    )


@registry.tool(
    "get_telegram_responses",
    description="People's answers on Telegram (button presses, replies, commands) to your "
    "requests, newest first.",
    permission=Permission.RESPONSES_READ,
    read_only=True,
)
async def get_telegram_responses(
    ctx: ToolContext, params: GetTelegramResponsesInput
) -> ResponsesPage:
    return await call_events(
        ctx, subjects.EVENTS_RPC_RESPONSES_LIST, _query(ctx, limit=params.limit), ResponsesPage
    )


@registry.tool(
    "process_pending_responses",
    description="Summarise the approvals and denials people gave in the last since_minutes, "
    "with recommendations for what to do next.",
    permission=Permission.RESPONSES_READ,
    read_only=True,
)
async def process_pending_responses(
    ctx: ToolContext, params: ProcessPendingResponsesInput
) -> PendingResponses:
    return await call_events(
        ctx,
        subjects.EVENTS_RPC_RESPONSES_PENDING,
        _query(ctx, since_minutes=params.since_minutes),
        PendingResponses,
    )


@registry.tool(
    "clear_old_responses",
    description="Hide your responses older than older_than_hours from later queries (the "
    "history itself ages out of the stream on its own).",
    permission=Permission.RESPONSES_MANAGE,
)
async def clear_old_responses(ctx: ToolContext, params: ClearOldResponsesInput) -> ClearedResponses:
    return await call_events(
        ctx,
        subjects.EVENTS_RPC_RESPONSES_CLEAR,
        _query(ctx, older_than_hours=params.older_than_hours),
        ClearedResponses,
    )


@registry.resource(
    "cctelegram://responses",
    name="responses",
    description="Your 50 most recent Telegram responses",
    permission=Permission.RESPONSES_READ,
)
async def responses_resource(ctx: ToolContext) -> ResponsesPage:
    return await get_telegram_responses(ctx, GetTelegramResponsesInput(limit=50))
