"""Claude Code at the gateway: which tool uses need a person, how they are shown, and asking.

Both doors — the ``request_permission`` MCP tool (``--permission-prompt-tool``) and the HTTP
hooks (``POST /v1/hooks/claude-code``) — come here. A tool use is checked against the
session's rules (events service, ``session_check``); if none allows it, an approval with a
:class:`ClaudeCodeCard` is submitted and watched until a person answers or the wait ends.

The raw input never leaves this process except to match a rule: the card carries a redacted
preview, and "allow" answers with the input the agent sent (kept here, in the call).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import (
    ON_TIMEOUT_EXPIRE,
    ApprovalRecord,
    ApprovalStatus,
    SubmitApproval,
)
from cctelegram_common.contracts.audit import AuditOutcome
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.claude_code import (
    ALLOW_SESSION_OPTION,
    DENY_OPTION,
    PERMISSION_OPTIONS,
    CardKind,
    ClaudeCodeCard,
    SessionCheckRequest,
    SessionCheckResult,
    SessionRule,
    SessionRuleRequest,
)
from cctelegram_common.redaction import redact
from cctelegram_gateway.auditing import Auditor
from cctelegram_gateway.registry import ToolContext
from cctelegram_gateway.settings import ClaudeCodeSettings
from cctelegram_gateway.tools.approvals import watch_approval
from cctelegram_gateway.tools.events import call_events, derive_id, publish_command

# Tools whose use changes something; reads (Read, Grep, Glob, LS, WebSearch, …) pass.
GATED_TOOLS = frozenset({"Bash", "Write", "Edit", "MultiEdit", "NotebookEdit"})
# Tools with their own UI in Claude Code: never force-allowed, answered with the person's
# choice in updatedInput or left to the terminal.
INTERACTIVE_TOOLS = frozenset({"AskUserQuestion", "ExitPlanMode"})
OWN_SERVER_PREFIX = "mcp__cctelegram__"
PREVIEW_CHARS = 2500


def needs_person(tool_name: str, settings: ClaudeCodeSettings) -> bool:
    """Default policy: changing tools and other servers' MCP tools need a person."""
    if tool_name in GATED_TOOLS:
        return True
    if tool_name.startswith(OWN_SERVER_PREFIX):
        return False  # our own tools: gating them would ask a person to allow asking a person
    if tool_name.startswith("mcp__"):
        for pattern in settings.read_only_mcp_tools:
            if pattern == tool_name or (
                pattern.endswith("*") and tool_name.startswith(pattern[:-1])
            ):
                return False
        return True
    return False


def _excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview_of(tool_name: str, tool_input: dict[str, Any]) -> tuple[str, bool, str, str]:
    """(redacted preview, show as code, code language, one-line description)."""
    description = str(tool_input.get("description") or "")[:200]
    if tool_name in ("Bash", "BashOutput"):
        command = str(tool_input.get("command", ""))
        return redact(_excerpt(command, PREVIEW_CHARS)), True, "bash", redact(description)
    if tool_name in ("Write", "Edit", "MultiEdit", "NotebookEdit"):
        path = str(tool_input.get("file_path") or tool_input.get("notebook_path") or "")
        if tool_name == "Write":
            body = str(tool_input.get("content", ""))
        elif tool_name == "Edit":
            body = f"- {tool_input.get('old_string', '')}\n+ {tool_input.get('new_string', '')}"
        elif tool_name == "MultiEdit":
            edits = tool_input.get("edits") or []
            body = f"{len(edits) if isinstance(edits, list) else '?'} edits"
        else:
            body = str(tool_input.get("new_source", ""))
        text = f"{path}\n\n{_excerpt(body, PREVIEW_CHARS - len(path) - 2)}"
        return redact(text), False, "", redact(description or path)
    rendered = json.dumps(tool_input, ensure_ascii=False, indent=1, default=str)
    return redact(_excerpt(rendered, PREVIEW_CHARS)), True, "json", redact(description)


async def check_session(
    ctx: ToolContext,
    session_id: str,
    cwd: str | None,
    tool_name: str = "",
    tool_input: dict[str, Any] | None = None,
    project: str | None = None,
) -> SessionCheckResult:
    return await call_events(
        ctx,
        subjects.EVENTS_RPC_SESSION_CHECK,
        SessionCheckRequest(
            client_id=ctx.principal.client_id,
            session_id=session_id,
            cwd=cwd,
            project=project,
            tool_name=tool_name,
            tool_input=tool_input or {},
        ),
        SessionCheckResult,
    )


async def add_session_rule(
    ctx: ToolContext,
    session: SessionCheckResult,
    record: ApprovalRecord,
    tool_name: str,
    tool_input: dict[str, Any],
) -> SessionRule:
    return await call_events(
        ctx,
        subjects.EVENTS_RPC_SESSION_RULE,
        SessionRuleRequest(
            client_id=ctx.principal.client_id,
            session_key=session.session_key,
            approval_id=record.approval_id,
            tool_name=tool_name,
            tool_input=tool_input,
        ),
        SessionRule,
    )


async def ask_person(
    ctx: ToolContext,
    *,
    session: SessionCheckResult,
    kind: CardKind,
    title: str,
    wait_s: float,
    options: tuple[str, ...],
    tool_name: str = "",
    preview: tuple[str, bool, str, str] = ("", False, "", ""),
    rule_hint: str = "",
    text_reply_decides: str | None = None,
    idempotency_key: str | None = None,
) -> ApprovalRecord:
    """Submit a Claude Code card and wait for its answer (or the wait's end: the record is
    then expired, or still pending if the events service has not expired it yet)."""
    text, is_code, language, description = preview
    approval_id = derive_id(ctx.principal.client_id, idempotency_key, "claude-code")
    now = utc_now()
    command = SubmitApproval(
        approval_id=approval_id,
        client_id=ctx.principal.client_id,
        title=_excerpt(title, 200) or kind.value,
        description=_excerpt(description, 2000),
        options=options,
        expires_at=now + timedelta(seconds=wait_s),
        on_timeout=ON_TIMEOUT_EXPIRE,
        allow_text_reply=True,
        text_reply_decides=text_reply_decides,
        source="claude-code",
        claude_code=ClaudeCodeCard(
            kind=kind,
            session_key=session.session_key,
            session_tag=session.tag,
            project=session.project,
            tool_name=tool_name[:200],
            preview=_excerpt(text, 3000),
            preview_is_code=is_code,
            preview_language=language,
            rule_hint=rule_hint[:300],
        ),
        request_id=ctx.request_id,
        submitted_at=now,
    )
    await publish_command(ctx, subjects.APPROVAL_SUBMIT, command, approval_id)
    return await watch_approval(ctx, approval_id, wait_s)


def audit_tool_use(ctx: ToolContext, tool_name: str, outcome: AuditOutcome, reason: str) -> None:
    """One audit record per gated tool use: who allowed or refused it, never its input."""
    auditor = ctx.extras.get("auditor")
    if isinstance(auditor, Auditor):
        auditor.record(
            "claude_code.tool_use",
            outcome,
            client_id=ctx.principal.client_id,
            key_id=ctx.principal.key_id,
            request_id=ctx.request_id,
            target=tool_name[:200],
            reason=reason[:200],
        )


def audit_answer(ctx: ToolContext, tool_name: str, record: ApprovalRecord) -> None:
    if allowed(record):
        how = "for this session" if allowed_for_session(record) else "once"
        audit_tool_use(
            ctx, tool_name, AuditOutcome.SUCCESS, f"allowed {how} by {decided_by(record)}"
        )
    elif record.is_open or record.status is ApprovalStatus.EXPIRED:
        audit_tool_use(ctx, tool_name, AuditOutcome.DENIED, "no answer in time")
    else:
        audit_tool_use(ctx, tool_name, AuditOutcome.DENIED, f"refused by {decided_by(record)}")


def decided_by(record: ApprovalRecord) -> str:
    return f"@{record.decided_by_username}" if record.decided_by_username else "a person"


def deny_message(record: ApprovalRecord, waited_s: float) -> str:
    """Why the tool use may not run, in words for the model (and the person reading logs)."""
    if record.status is ApprovalStatus.REJECTED or record.chosen_option == DENY_OPTION:
        reason = (record.comment or "").strip()
        if reason:
            return f"Denied by {decided_by(record)} on Telegram: {reason}"
        return f"Denied by {decided_by(record)} on Telegram"
    if record.status is ApprovalStatus.CANCELLED:
        return f"The request was cancelled: {record.cancel_reason or 'no reason given'}"
    return f"No one answered on Telegram within {round(waited_s)} s, so it was denied"


def allowed(record: ApprovalRecord) -> bool:
    return not record.is_open and record.chosen_option in PERMISSION_OPTIONS[:2]


def allowed_for_session(record: ApprovalRecord) -> bool:
    return not record.is_open and record.chosen_option == ALLOW_SESSION_OPTION
