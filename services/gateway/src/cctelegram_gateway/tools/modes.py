"""Mode tools: switch_to_nomad_mode, switch_to_local_mode, switch_to_mute_mode."""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.modes import Mode, ModeResult, SetModeRequest
from cctelegram_common.contracts.tools import NoInput, TemplateCatalogue, TemplatesRequest
from cctelegram_gateway.registry import ToolContext, registry
from cctelegram_gateway.tools.events import call_events


async def _switch(ctx: ToolContext, mode: Mode) -> ModeResult:
    request = SetModeRequest(mode=mode, changed_by=ctx.principal.client_id)
    return await call_events(ctx, subjects.EVENTS_RPC_MODE_SET, request, ModeResult)


@registry.tool(
    "switch_to_nomad_mode",
    description="Nomad mode: every notification goes to Telegram (you are away from the desk).",
    permission=Permission.MODES_WRITE,
)
async def switch_to_nomad_mode(ctx: ToolContext, _params: NoInput) -> ModeResult:
    return await _switch(ctx, Mode.NOMAD)


@registry.tool(
    "switch_to_local_mode",
    description="Local mode: only what needs a person (failures, alerts, approvals).",
    permission=Permission.MODES_WRITE,
)
async def switch_to_local_mode(ctx: ToolContext, _params: NoInput) -> ModeResult:
    return await _switch(ctx, Mode.LOCAL)


@registry.tool(
    "switch_to_mute_mode",
    description="Mute mode: nothing but approvals and critical alerts.",
    permission=Permission.MODES_WRITE,
)
async def switch_to_mute_mode(ctx: ToolContext, _params: NoInput) -> ModeResult:
    return await _switch(ctx, Mode.MUTE)


@registry.resource(
    "cctelegram://event-templates",
    name="event-templates",
    description="The template of every event type: emoji, label, severity, fields shown",
    permission=Permission.EVENTS_READ,
)
async def event_templates_resource(ctx: ToolContext) -> TemplateCatalogue:
    return await call_events(
        ctx, subjects.EVENTS_RPC_TEMPLATES, TemplatesRequest(), TemplateCatalogue
    )
