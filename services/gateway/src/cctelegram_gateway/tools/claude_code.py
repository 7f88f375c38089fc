"""request_permission: Claude Code's permission prompt tool, answered from Telegram.

``claude -p … --permission-prompt-tool mcp__cctelegram__request_permission`` calls it for
every tool use its settings neither allow nor deny. The answer is exactly one text block
holding Claude Code's JSON (``{"behavior":"allow","updatedInput":…}`` or
``{"behavior":"deny","message":…}``); a wait over a minute is answered over an SSE stream.

Claude Code's MCP calls carry no session id, so the session is the one named by the
``X-CCTelegram-Session`` / ``X-CCTelegram-Project`` headers of the MCP server's
configuration (``cctelegram claude-code setup`` prints them), else one per API client.
"""

from __future__ import annotations

import contextvars
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cctelegram_common.contracts.audit import AuditOutcome
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.claude_code import (
    DENY_OPTION,
    PERMISSION_OPTIONS,
    CardKind,
)
from cctelegram_common.session_rules import rule_hint
from cctelegram_gateway.claude_code import (
    add_session_rule,
    allowed,
    allowed_for_session,
    ask_person,
    audit_answer,
    audit_tool_use,
    check_session,
    deny_message,
    preview_of,
)
from cctelegram_gateway.registry import ToolContext, registry
from cctelegram_gateway.settings import ClaudeCodeSettings

SESSION_HEADER = "x-cctelegram-session"
PROJECT_HEADER = "x-cctelegram-project"
# The MCP layer sets the calling request's headers that name the session and project.
current_session_hints: contextvars.ContextVar[tuple[str | None, str | None]] = (
    contextvars.ContextVar("current_session_hints", default=(None, None))
)


class RequestPermissionInput(BaseModel):
    """What Claude Code sends its permission prompt tool (extra fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    tool_name: str = Field(min_length=1, max_length=200, description="The tool Claude wants")
    input: dict[str, Any] = Field(description="The tool's input, as Claude would run it")
    tool_use_id: str | None = Field(default=None, max_length=200)


class PermissionAnswer(BaseModel):
    """Claude Code's permission result: allow with the input to run, or deny with why."""

    behavior: Literal["allow", "deny"]
    updatedInput: dict[str, Any] | None = None  # noqa: N815 - Claude Code's field name
    message: str | None = None


def settings_of(ctx: ToolContext) -> ClaudeCodeSettings:
    found = ctx.extras.get("claude_code")
    return found if isinstance(found, ClaudeCodeSettings) else ClaudeCodeSettings()


@registry.tool(
    "request_permission",
    description="Claude Code's permission prompt tool: asks the approvers on Telegram whether "
    "a tool use may run (Allow / Allow for this session / Deny, or a reply as the reason). "
    "Use with --permission-prompt-tool mcp__cctelegram__request_permission.",
    permission=Permission.APPROVALS_REQUEST,
    text_only=True,
    streams=True,
)
async def request_permission(ctx: ToolContext, params: RequestPermissionInput) -> PermissionAnswer:
    settings = settings_of(ctx)
    session_id, project = current_session_hints.get()
    session = await check_session(
        ctx,
        session_id or f"mcp-{ctx.principal.client_id}",
        None,
        params.tool_name,
        params.input,
        project=project,
    )
    if session.allowed_by is not None:
        audit_tool_use(
            ctx, params.tool_name, AuditOutcome.SUCCESS, f"session rule {session.allowed_by}"
        )
        return PermissionAnswer(behavior="allow", updatedInput=params.input)
    record = await ask_person(
        ctx,
        session=session,
        kind=CardKind.PERMISSION,
        title=f"{params.tool_name} wants to run",
        wait_s=settings.permission_wait_s,
        options=PERMISSION_OPTIONS,
        tool_name=params.tool_name,
        preview=preview_of(params.tool_name, params.input),
        rule_hint=rule_hint(params.tool_name, params.input),
        text_reply_decides=DENY_OPTION,
        idempotency_key=params.tool_use_id and f"perm:{session.session_key}:{params.tool_use_id}",
    )
    audit_answer(ctx, params.tool_name, record)
    if allowed(record):
        if allowed_for_session(record):
            await add_session_rule(ctx, session, record, params.tool_name, params.input)
        return PermissionAnswer(behavior="allow", updatedInput=params.input)
    if record.is_open and settings.permission_timeout == "allow":
        return PermissionAnswer(behavior="allow", updatedInput=params.input)
    return PermissionAnswer(
        behavior="deny", message=deny_message(record, settings.permission_wait_s)
    )
