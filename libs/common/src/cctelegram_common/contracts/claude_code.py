"""Claude Code sessions: what a card shows about the agent's tool use, and session rules.

Claude Code asks the gateway (the ``request_permission`` MCP tool or an HTTP hook) whether a
tool may run. The gateway redacts the input into a preview and submits an approval that
carries a :class:`ClaudeCodeCard`; the events service renders it and keeps a
:class:`SessionRecord` per session in ``cctg_sessions`` (project, activity, the rules
"Allow for this session" created). The raw tool input never leaves the gateway except for
matching a rule (``SessionCheckRequest``), and is never stored.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now

ALLOW_OPTION = "Allow"
ALLOW_SESSION_OPTION = "Allow for this session"
DENY_OPTION = "Deny"
PERMISSION_OPTIONS: tuple[str, ...] = (ALLOW_OPTION, ALLOW_SESSION_OPTION, DENY_OPTION)


class CardKind(StrEnum):
    """What the person is asked: a tool use, one of the agent's questions, its plan, or
    whether a finished session should go on (a reply continues it)."""

    PERMISSION = "permission"
    QUESTION = "question"
    PLAN = "plan"
    CONTINUE = "continue"


class ClaudeCodeCard(Contract):
    """The Claude Code side of an approval card (``SubmitApproval.claude_code``)."""

    kind: CardKind
    session_key: str = Field(max_length=200, description="Session this card belongs to")
    session_tag: str = Field(max_length=16, description="Short tag shown on every card")
    project: str = Field(max_length=100, description="The session's project (cwd's folder)")
    tool_name: str = Field(default="", max_length=200)
    preview: str = Field(
        default="", max_length=3000, description="Redacted rendering of the tool input"
    )
    preview_is_code: bool = Field(
        default=False, description="Show the preview as a code block (a shell command)"
    )
    preview_language: str = Field(default="", max_length=20, description="Code block language")
    rule_hint: str = Field(
        default="", max_length=300, description="What 'Allow for this session' would allow"
    )


class SessionRule(Contract):
    """A rule "Allow for this session" created: the same tool with this command prefix or
    under this path (``pattern``), or the tool with any input (``pattern`` empty)."""

    rule_id: str = Field(description="The approval that created it")
    tool_name: str
    pattern: str = Field(default="", description="Command prefix or path prefix; empty = any")
    kind: str = Field(default="tool", description="command / path / tool")
    approved_by: str | None = None
    created_at: datetime = Field(default_factory=utc_now)

    @property
    def label(self) -> str:
        if self.kind == "command":
            return f"{self.tool_name}({self.pattern} …)"
        if self.kind == "path":
            return f"{self.tool_name}({self.pattern}**)"
        return self.tool_name


class SessionRecord(Contract):
    """Value of ``cctg_sessions[key]``: one Claude Code session of one API client."""

    session_key: str
    client_id: str
    session_id: str
    project: str
    tag: str
    cwd: str | None = None
    first_seen: datetime = Field(default_factory=utc_now)
    last_seen: datetime = Field(default_factory=utc_now)
    asked: int = Field(default=0, description="Tool uses that went to a person")
    auto_allowed: int = Field(default=0, description="Tool uses a session rule allowed")
    rules: tuple[SessionRule, ...] = ()
    ended_at: datetime | None = None


class SessionCheckRequest(Contract):
    """RPC ``cctg.events.rpc.session_check``: note the session's activity and say whether a
    session rule already allows this tool use."""

    client_id: str
    session_id: str = Field(min_length=1, max_length=200)
    cwd: str | None = Field(default=None, max_length=4096)
    project: str | None = Field(default=None, max_length=100, description="Overrides the cwd")
    tool_name: str = Field(default="", max_length=200)
    tool_input: dict[str, Any] = Field(default_factory=dict)


class SessionCheckResult(Contract):
    session_key: str
    project: str
    tag: str
    allowed_by: str | None = Field(default=None, description="The matching rule's label")


class SessionRuleRequest(Contract):
    """RPC ``cctg.events.rpc.session_rule``: add the rule a decided "Allow for this session"
    approval stands for. Refused unless that approval is the caller's, belongs to the
    session and was decided with that option."""

    client_id: str
    session_key: str
    approval_id: str
    tool_name: str
    tool_input: dict[str, Any] = Field(default_factory=dict)


class SessionEndRequest(Contract):
    """RPC ``cctg.events.rpc.session_end``: the session ended; its rules go with it."""

    client_id: str
    session_id: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=200)
