"""Mode tools: switch_to_nomad_mode, switch_to_local_mode, switch_to_mute_mode, and
set_quiet_hours.

Each acts on the caller's own client (the key's client id); ``for_everyone`` (admins) sets
the default that every client without a mode of its own follows.
"""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.modes import (
    Mode,
    ModeResult,
    QuietHoursResult,
    SetModeRequest,
    SetQuietHoursInput,
    SetQuietHoursRequest,
    SwitchModeInput,
)
from cctelegram_common.contracts.tools import TemplateCatalogue, TemplatesRequest
from cctelegram_gateway.registry import ToolContext, ToolError, registry
from cctelegram_gateway.tools.events import call_events


def _require_default_permission(ctx: ToolContext) -> None:
    principal = ctx.principal
    if not principal.can(Permission.MODES_DEFAULT):
        raise ToolError(
            f"permission '{Permission.MODES_DEFAULT.value}' is required to set the default "
            f"for everyone; this key's role '{principal.role.value}' does not have it",
            status=403,
            code="forbidden",
            field="for_everyone",
        )


async def _switch(ctx: ToolContext, mode: Mode, params: SwitchModeInput) -> ModeResult:
    principal = ctx.principal
    if params.for_everyone:
        _require_default_permission(ctx)
    request = SetModeRequest(
        mode=mode,
        changed_by=principal.client_id,
        client_id=None if params.for_everyone else principal.client_id,
    )
    return await call_events(ctx, subjects.EVENTS_RPC_MODE_SET, request, ModeResult)


@registry.tool(
    "switch_to_nomad_mode",
    description="Nomad mode for your client: every notification goes to Telegram (you are away "
    "from the desk). Leaving mute mode sends one digest of what was suppressed meanwhile.",
    permission=Permission.MODES_WRITE,
)
async def switch_to_nomad_mode(ctx: ToolContext, params: SwitchModeInput) -> ModeResult:
    return await _switch(ctx, Mode.NOMAD, params)


@registry.tool(
    "switch_to_local_mode",
    description="Local mode for your client: only what needs a person (failures, alerts, "
    "approvals). Leaving mute mode sends one digest of what was suppressed meanwhile.",
    permission=Permission.MODES_WRITE,
)
async def switch_to_local_mode(ctx: ToolContext, params: SwitchModeInput) -> ModeResult:
    return await _switch(ctx, Mode.LOCAL, params)


@registry.tool(
    "switch_to_mute_mode",
    description="Mute mode for your client: nothing but approvals and critical alerts; what is "
    "suppressed is counted and summarised in one digest when you leave mute mode.",
    permission=Permission.MODES_WRITE,
)
async def switch_to_mute_mode(ctx: ToolContext, params: SwitchModeInput) -> ModeResult:
    return await _switch(ctx, Mode.MUTE, params)


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


@registry.tool(
    "set_quiet_hours",
    description="Quiet hours for your client: a daily window (may cross midnight, in a time "
    "zone) when notifications are held and sent as one digest at its end; approvals and "
    "critical alerts still go. start == end turns them off; neither start nor end = follow "
    "the default again. for_everyone (admins) sets the default instead.",
    permission=Permission.MODES_WRITE,
)
async def set_quiet_hours(ctx: ToolContext, params: SetQuietHoursInput) -> QuietHoursResult:
    principal = ctx.principal
    if params.for_everyone:
        _require_default_permission(ctx)
    request = SetQuietHoursRequest(
        quiet_hours=params.spec(),
        changed_by=principal.client_id,
        client_id=None if params.for_everyone else principal.client_id,
    )
    return await call_events(ctx, subjects.EVENTS_RPC_QUIET_HOURS_SET, request, QuietHoursResult)
