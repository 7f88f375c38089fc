"""``POST /v1/hooks/claude-code``: Claude Code's HTTP hooks, one endpoint for every event.

Claude Code posts the hook's JSON with the headers of the hook's configuration (the API key
as ``Authorization: Bearer $CCTELEGRAM_API_KEY``). Dispatch is on ``hook_event_name``:

- PreToolUse: the policy (``claude_code.needs_person``) decides whether a person is asked;
  AskUserQuestion and ExitPlanMode are shown as their questions / plan and answered with the
  person's choice in ``updatedInput`` (never force-allowed: no answer leaves them to the
  terminal);
- PermissionRequest: the same card, Claude Code's ``permission_suggestions`` as choices;
- Notification, Stop, SubagentStop, SessionStart, SessionEnd: a notification, queued durably
  and answered at once (SessionEnd has 1.5 s in all) — except a Stop that may be continued
  from Telegram (``GATEWAY_CLAUDE_CODE__CONTINUE_WINDOW_S``): a reply within the window
  is returned as ``{"decision": "block", "reason": …}``.

Unknown events and fields are accepted and answered ``{}`` (no opinion). No answer takes
longer than the policy's wait.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import uuid
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import ApprovalRecord, ApprovalStatus
from cctelegram_common.contracts.audit import AuditOutcome
from cctelegram_common.contracts.auth import Permission, Principal
from cctelegram_common.contracts.claude_code import (
    ALLOW_OPTION,
    DENY_OPTION,
    PERMISSION_OPTIONS,
    CardKind,
    SessionCheckResult,
    SessionEndRequest,
)
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity, SubmitEvent
from cctelegram_common.logging import get_logger
from cctelegram_common.redaction import redact
from cctelegram_common.session_rules import rule_hint
from cctelegram_gateway.calls import ToolRunner, describe_validation_error
from cctelegram_gateway.claude_code import (
    add_session_rule,
    allowed,
    allowed_for_session,
    ask_person,
    audit_answer,
    audit_tool_use,
    check_session,
    decided_by,
    deny_message,
    needs_person,
    preview_of,
)
from cctelegram_gateway.errors import ERROR_RESPONSES
from cctelegram_gateway.registry import ToolContext, ToolError
from cctelegram_gateway.rest import error_response, principal_of, request_id_of
from cctelegram_gateway.settings import ClaudeCodeSettings
from cctelegram_gateway.tools.claude_code import PROJECT_HEADER
from cctelegram_gateway.tools.events import call_events, publish_command

log = get_logger(__name__)

HOOK_PATH = "/v1/hooks/claude-code"
PLAN_APPROVE = "Approve plan"
PLAN_KEEP = "Keep planning"
CONTINUE_DONE = "Done"
CONTINUE_GO = "Continue"
EXCERPT_CHARS = 600
NOTIFY_TIMEOUT_S = 1.0
_NO_OPINION = b"{}"


class HookInput(BaseModel):
    """The fields of Claude Code's hook input that we use; the rest is accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    hook_event_name: str = Field(min_length=1, max_length=100)
    session_id: str = Field(min_length=1, max_length=200)
    cwd: str | None = Field(default=None, max_length=4096)
    tool_name: str = Field(default="", max_length=200)
    tool_input: dict[str, Any] = Field(default_factory=dict)
    tool_use_id: str | None = Field(default=None, max_length=200)
    permission_suggestions: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    message: str | None = None
    title: str | None = None
    notification_type: str | None = None
    stop_hook_active: bool = False
    last_assistant_message: str | None = None
    reason: str | None = None
    source: str | None = None
    agent_type: str | None = None


def _json(payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload), media_type="application/json")


def _no_opinion() -> Response:
    return Response(_NO_OPINION, media_type="application/json")


def _pre_tool_use(
    decision: str, reason: str, updated_input: dict[str, Any] | None = None
) -> Response:
    output: dict[str, Any] = {
        "hookEventName": "PreToolUse",
        "permissionDecision": decision,
        "permissionDecisionReason": reason,
    }
    if updated_input is not None:
        output["updatedInput"] = updated_input
    return _json({"hookSpecificOutput": output})


def _excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _suggestion_label(suggestion: dict[str, Any]) -> str:
    """ "Allow for session: Bash(git:*)" from a PermissionUpdate entry."""
    rules = suggestion.get("rules")
    if isinstance(rules, list) and rules:
        parts = []
        for rule in rules[:2]:
            if isinstance(rule, dict):
                content = rule.get("ruleContent")
                name = str(rule.get("toolName", ""))
                parts.append(f"{name}({content})" if content else name)
        shown = ", ".join(parts)
    elif isinstance(suggestion.get("directories"), list):
        shown = "dirs " + ", ".join(str(d) for d in suggestion["directories"][:2])
    elif suggestion.get("mode"):
        shown = f"mode {suggestion['mode']}"
    else:
        shown = str(suggestion.get("type", "rule"))
    label = f"Allow for session: {redact(shown)}"
    return label if len(label) <= 100 else label[:99] + "…"


class HookHandler:
    """One hook call: the principal, its tool context and the Claude Code settings."""

    def __init__(
        self,
        runner: ToolRunner,
        principal: Principal,
        request_id: str,
        project: str | None = None,
    ) -> None:
        self.runner = runner
        self.project = project
        self.principal = principal
        self.request_id = request_id
        self.ctx: ToolContext = runner.context(principal, request_id)
        found = runner.extras.get("claude_code")
        self.settings = found if isinstance(found, ClaudeCodeSettings) else ClaudeCodeSettings()

    async def _gate(self, permission: Permission, hook: HookInput) -> None:
        what = f"hook '{hook.hook_event_name}'"
        self.runner.authorize(self.principal, permission, what, self.request_id)
        await self.runner.spend(self.principal, what, self.request_id)

    async def _session(self, hook: HookInput, with_tool: bool = False) -> SessionCheckResult:
        return await check_session(
            self.ctx,
            hook.session_id,
            hook.cwd,
            hook.tool_name if with_tool else "",
            hook.tool_input if with_tool else None,
            project=self.project,
        )

    async def handle(self, hook: HookInput) -> Response:
        event = hook.hook_event_name
        if event == "PreToolUse":
            if hook.tool_name == "AskUserQuestion":
                return await self.ask_user_question(hook)
            if hook.tool_name == "ExitPlanMode":
                return await self.exit_plan_mode(hook)
            return await self.pre_tool_use(hook)
        if event == "PermissionRequest":
            return await self.permission_request(hook)
        if event == "Stop":
            return await self.stop(hook)
        if event in ("Notification", "SubagentStop", "SessionStart", "SessionEnd"):
            return await self.notify(hook)
        return _no_opinion()

    # --- gating -----------------------------------------------------------------------------
    async def _ask_tool_use(
        self, hook: HookInput, session: SessionCheckResult, options: tuple[str, ...]
    ) -> ApprovalRecord:
        return await ask_person(
            self.ctx,
            session=session,
            kind=CardKind.PERMISSION,
            title=f"{hook.tool_name} wants to run",
            wait_s=self.settings.hook_wait_s,
            options=options,
            tool_name=hook.tool_name,
            preview=preview_of(hook.tool_name, hook.tool_input),
            rule_hint=rule_hint(hook.tool_name, hook.tool_input)
            if PERMISSION_OPTIONS[1] in options
            else "",
            text_reply_decides=DENY_OPTION,
        )

    async def pre_tool_use(self, hook: HookInput) -> Response:
        if not needs_person(hook.tool_name, self.settings):
            return _no_opinion()
        await self._gate(Permission.APPROVALS_REQUEST, hook)
        session = await self._session(hook, with_tool=True)
        if session.allowed_by is not None:
            audit_tool_use(
                self.ctx, hook.tool_name, AuditOutcome.SUCCESS, f"session rule {session.allowed_by}"
            )
            return _pre_tool_use("allow", f"Allowed for this session ({session.allowed_by})")
        record = await self._ask_tool_use(hook, session, PERMISSION_OPTIONS)
        audit_answer(self.ctx, hook.tool_name, record)
        if allowed(record):
            if allowed_for_session(record):
                await add_session_rule(self.ctx, session, record, hook.tool_name, hook.tool_input)
            return _pre_tool_use("allow", f"Allowed by {decided_by(record)} on Telegram")
        if record.status in (ApprovalStatus.PENDING, ApprovalStatus.EXPIRED):
            waited = round(self.settings.hook_wait_s)
            fallback = self.settings.hook_fallback
            return _pre_tool_use(fallback, f"No answer on Telegram within {waited} s")
        return _pre_tool_use("deny", deny_message(record, self.settings.hook_wait_s))

    async def permission_request(self, hook: HookInput) -> Response:
        await self._gate(Permission.APPROVALS_REQUEST, hook)
        session = await self._session(hook, with_tool=True)
        if session.allowed_by is not None:
            audit_tool_use(
                self.ctx, hook.tool_name, AuditOutcome.SUCCESS, f"session rule {session.allowed_by}"
            )
            return self._permission_decision({"behavior": "allow", "updatedInput": hook.tool_input})
        suggestions = hook.permission_suggestions[:7]
        labels = list(dict.fromkeys(_suggestion_label(s) for s in suggestions))
        options = (ALLOW_OPTION, *labels, DENY_OPTION) if labels else PERMISSION_OPTIONS
        record = await self._ask_tool_use(hook, session, options)
        audit_answer(self.ctx, hook.tool_name, record)
        if record.is_open or record.chosen_option is None:
            return _no_opinion()  # nobody answered: the terminal dialog decides
        chosen = record.chosen_option
        if chosen == DENY_OPTION:
            return self._permission_decision(
                {"behavior": "deny", "message": deny_message(record, self.settings.hook_wait_s)}
            )
        decision: dict[str, Any] = {"behavior": "allow", "updatedInput": hook.tool_input}
        if chosen in labels:
            suggestion = suggestions[[_suggestion_label(s) for s in suggestions].index(chosen)]
            decision["updatedPermissions"] = [{**suggestion, "destination": "session"}]
        elif allowed_for_session(record):
            await add_session_rule(self.ctx, session, record, hook.tool_name, hook.tool_input)
        return self._permission_decision(decision)

    @staticmethod
    def _permission_decision(decision: dict[str, Any]) -> Response:
        return _json(
            {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}
        )

    # --- the agent's own UI: questions and plans --------------------------------------------
    async def ask_user_question(self, hook: HookInput) -> Response:
        questions = hook.tool_input.get("questions")
        if not isinstance(questions, list) or not questions:
            return _no_opinion()
        await self._gate(Permission.APPROVALS_REQUEST, hook)
        session = await self._session(hook)
        cards = []
        for question in questions[:4]:
            if not isinstance(question, dict):
                return _no_opinion()
            labels = [
                str(option.get("label", ""))[:100]
                for option in question.get("options") or []
                if isinstance(option, dict) and option.get("label")
            ][:10]
            if not labels or len(set(labels)) != len(labels):
                return _no_opinion()
            described = "\n".join(
                f"• {option.get('label')}: {option.get('description')}"
                for option in question.get("options") or []
                if isinstance(option, dict) and option.get("description")
            )
            cards.append(
                ask_person(
                    self.ctx,
                    session=session,
                    kind=CardKind.QUESTION,
                    title=str(question.get("question") or question.get("header") or "?"),
                    wait_s=self.settings.question_wait_s,
                    options=tuple(labels),
                    preview=(redact(described), False, "", ""),
                )
            )
        records = await asyncio.gather(*cards)
        if any(record.is_open or record.chosen_option is None for record in records):
            return _no_opinion()  # the terminal asks as usual
        answers = {
            str(question.get("question")): record.chosen_option
            for question, record in zip(questions, records, strict=False)
        }
        return _pre_tool_use(
            "allow",
            "Answered on Telegram",
            {**hook.tool_input, "answers": answers},
        )

    async def exit_plan_mode(self, hook: HookInput) -> Response:
        await self._gate(Permission.APPROVALS_REQUEST, hook)
        session = await self._session(hook)
        plan = str(hook.tool_input.get("plan") or "")
        record = await ask_person(
            self.ctx,
            session=session,
            kind=CardKind.PLAN,
            title="Plan ready for review",
            wait_s=self.settings.question_wait_s,
            options=(PLAN_APPROVE, PLAN_KEEP),
            preview=(redact(plan), False, "", ""),
            text_reply_decides=PLAN_KEEP,
        )
        if record.is_open or record.chosen_option is None:
            return _no_opinion()
        if record.chosen_option == PLAN_APPROVE:
            return _pre_tool_use("allow", f"Plan approved by {decided_by(record)} on Telegram")
        feedback = (record.comment or "").strip() or "Keep planning."
        return _pre_tool_use("deny", f"{decided_by(record)} on Telegram: {feedback}")

    # --- the session's life -----------------------------------------------------------------
    def _continues(self, project: str) -> bool:
        return self.settings.continue_window_s > 0 and any(
            fnmatch.fnmatchcase(project, pattern) for pattern in self.settings.continue_projects
        )

    async def stop(self, hook: HookInput) -> Response:
        await self._gate(Permission.EVENTS_SEND, hook)
        session = await self._session(hook)
        if not self._continues(session.project):
            await self._submit(hook, session)
            return _no_opinion()
        await self._gate(Permission.APPROVALS_REQUEST, hook)
        record = await ask_person(
            self.ctx,
            session=session,
            kind=CardKind.CONTINUE,
            title="Claude finished",
            wait_s=self.settings.continue_window_s,
            options=(CONTINUE_DONE, CONTINUE_GO),
            preview=(redact(_excerpt(hook.last_assistant_message, 1500)), False, "", ""),
            text_reply_decides=CONTINUE_GO,
        )
        if record.chosen_option == CONTINUE_GO:
            reason = (record.comment or "").strip() or "Continue where you left off."
            return _json({"decision": "block", "reason": reason})
        return _no_opinion()

    async def notify(self, hook: HookInput) -> Response:
        await self._gate(Permission.EVENTS_SEND, hook)
        if hook.hook_event_name == "SessionEnd":
            session = await call_events(
                self.ctx,
                subjects.EVENTS_RPC_SESSION_END,
                SessionEndRequest(
                    client_id=self.principal.client_id,
                    session_id=hook.session_id,
                    reason=hook.reason,
                ),
                SessionCheckResult,
                timeout_s=NOTIFY_TIMEOUT_S,
            )
        else:
            session = await self._session(hook)
        if hook.hook_event_name == "SubagentStop" and not self.settings.notify_subagent_stop:
            return _no_opinion()
        await self._submit(hook, session)
        return _no_opinion()

    async def _submit(self, hook: HookInput, session: SessionCheckResult) -> None:
        event_type, title, description, severity = self._describe(hook)
        event = SubmitEvent(
            event_id=uuid.uuid4().hex,
            type=event_type,
            title=f"{session.project} · {session.tag}: {title}"[:200],
            description=redact(description)[:4000],
            source="claude-code",
            data={"project": session.project, "session": session.tag},
            severity=severity,
            client_id=self.principal.client_id,
            request_id=self.request_id,
        )
        await publish_command(self.ctx, subjects.EVENT_SUBMIT, event, event.event_id)

    @staticmethod
    def _describe(hook: HookInput) -> tuple[EventType, str, str, Severity | None]:
        event = hook.hook_event_name
        if event == "Stop":
            return (
                EventType.TASK_COMPLETION,
                "finished",
                _excerpt(hook.last_assistant_message),
                None,
            )
        if event == "SubagentStop":
            agent = hook.agent_type or "subagent"
            return EventType.PROGRESS_UPDATE, f"{agent} finished", "", Severity.LOW
        if event == "SessionStart":
            return EventType.STATUS_CHANGE, "session started", hook.source or "", Severity.LOW
        if event == "SessionEnd":
            return EventType.STATUS_CHANGE, "session ended", hook.reason or "", Severity.LOW
        title = _excerpt(hook.title or "needs your attention", 120)
        return EventType.INFO_NOTIFICATION, title, _excerpt(hook.message), None


def add_hook_routes(app: FastAPI, runner: ToolRunner) -> None:
    @app.post(
        HOOK_PATH,
        responses=ERROR_RESPONSES,
        tags=["claude-code"],
        operation_id="claude_code_hook",
        summary="Claude Code HTTP hooks (PreToolUse, PermissionRequest, Stop, Notification, "
        "SessionStart, SessionEnd, SubagentStop); answers in Claude Code's hook output shape",
    )
    async def claude_code_hook(request: Request) -> Response:
        request_id = request_id_of(request)
        try:
            raw: Any = json.loads(await request.body() or b"null")
        except ValueError:
            return error_response(request, 400, "invalid", "the body is not JSON")
        if not isinstance(raw, dict):
            return error_response(request, 400, "invalid", "the body must be a JSON object")
        try:
            hook = HookInput.model_validate(raw)
        except ValidationError as error:
            field, message = describe_validation_error(error)
            return error_response(request, 422, "invalid", message, field=field)
        # A hook's headers may name the project (else it is the cwd's folder name).
        project = (request.headers.get(PROJECT_HEADER) or "").strip()[:100] or None
        handler = HookHandler(runner, principal_of(request), request_id, project)
        try:
            return await handler.handle(hook)
        except ToolError as refused:
            return error_response(
                request,
                refused.status,
                refused.code,
                refused.message,
                field=refused.field,
                retry_after_s=refused.retry_after_s,
            )
        except Exception as error:
            log.exception(
                "hook_failed",
                hook=hook.hook_event_name,
                request_id=request_id,
                error=type(error).__name__,
            )
            return error_response(
                request, 503, "unavailable", f"could not handle the hook (request id {request_id})"
            )
