"""Input and output models of the gateway tools (MCP schemas, OpenAPI and AsyncAPI read these).

Argument names and defaults follow the original CCTelegram so existing MCP clients keep
working; results contain the original's fields plus new ones.
"""

from datetime import datetime
from typing import Any

from pydantic import Field

from cctelegram_common.contracts.approvals import (
    DEFAULT_OPTIONS,
    ON_TIMEOUT_EXPIRE,
    ApprovalRecord,
    ApprovalStatus,
)
from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import EventState, Severity
from cctelegram_common.contracts.tasks import TaskSystem, TodoItem, TodoStatus

IDEMPOTENCY_KEY_FIELD = Field(
    default=None,
    min_length=1,
    max_length=200,
    description="Same key (per client) = same event_id and one Telegram message, across retries",
)

CALLBACK_URL_FIELD = Field(
    default=None,
    min_length=8,
    max_length=2000,
    pattern=r"^https?://",
    description="When the approval is decided, expires or is cancelled, its final record is "
    "POSTed here, signed with your webhook secret (X-CCTelegram-Signature). https, or a host "
    "listed in CCTELEGRAM_WEBHOOK_ALLOWED_HOSTS; private addresses are refused",
    examples=["https://ci.example.com/hooks/cctelegram"],
)

# --- sending -------------------------------------------------------------------------------


# Ids the suite hands out are hex / url-safe; anything else cannot name a record (and must
# never reach a KV lookup as a key).
ID_PATTERN = r"^[A-Za-z0-9_-]+$"


class SendEventInput(Contract):
    type: EventType = Field(description="One of the 48 event types (see list_event_types)")
    title: str = Field(min_length=1, max_length=200, description="Headline; any Unicode")
    description: str = Field(min_length=1, max_length=2000, description="Body text")
    task_id: str | None = Field(
        default=None, max_length=200, description="Task this is about (generated if absent)"
    )
    source: str = Field(default="claude-code", max_length=100, description="Who sends it")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Type-specific fields: status, results, exit_code, file_path, branch_name, "
        "commit_hash, test_count, tests_passed, coverage_percentage, duration_ms, "
        "error_message, severity, url, tags…",
    )
    idempotency_key: str | None = IDEMPOTENCY_KEY_FIELD


class SendMessageInput(Contract):
    message: str = Field(min_length=1, max_length=4000, description="The text to send")
    source: str = Field(default="claude-code", max_length=100, description="Who sends it")
    idempotency_key: str | None = IDEMPOTENCY_KEY_FIELD


class SendTaskCompletionInput(Contract):
    task_id: str = Field(min_length=1, max_length=200, description="The finished task")
    title: str = Field(min_length=1, max_length=200, description="What was done")
    results: str | None = Field(default=None, max_length=5000, description="Outcome summary")
    files_affected: list[str] = Field(
        default_factory=list, max_length=50, description="Paths changed (up to 50)"
    )
    duration_ms: int | None = Field(
        default=None, ge=0, le=86_400_000, description="How long it took (ms)"
    )
    idempotency_key: str | None = IDEMPOTENCY_KEY_FIELD


class SendPerformanceAlertInput(Contract):
    title: str = Field(min_length=1, max_length=200, description="What is slow or heavy")
    current_value: float = Field(description="The measured value")
    threshold: float = Field(description="The limit it crossed")
    severity: Severity = Field(default=Severity.MEDIUM, description="low/medium/high/critical")
    idempotency_key: str | None = IDEMPOTENCY_KEY_FIELD


class SendResult(Contract):
    """The original's result: stored durably before this returns."""

    success: bool
    event_id: str = Field(description="Use with get_event_status")
    message: str


# --- approvals -----------------------------------------------------------------------------


class SendApprovalRequestInput(Contract):
    title: str = Field(min_length=1, max_length=200, description="What to decide; any Unicode")
    description: str = Field(min_length=1, max_length=2000, description="Context for the person")
    options: list[str] = Field(
        default_factory=lambda: list(DEFAULT_OPTIONS),
        min_length=1,
        max_length=10,
        description="Button labels (1-10, each ≤100 characters); default Approve / Deny",
    )
    approvers: list[int] | None = Field(
        default=None, description="Telegram user ids who may answer; default all allowed users"
    )
    expires_in_minutes: float = Field(
        default=30, gt=0, le=7 * 24 * 60, description="After this the on_timeout rule applies"
    )
    on_timeout: str = Field(
        default=ON_TIMEOUT_EXPIRE,
        max_length=100,
        description="'expire', or one of the options to apply when nobody answers in time",
    )
    details: str | None = Field(
        default=None, max_length=3000, description="Long text behind an expandable quote"
    )
    allow_text_reply: bool = Field(
        default=True, description="Accept a text reply to the card as the answer / a comment"
    )
    wait_seconds: float = Field(
        default=0, ge=0, le=120, description="0 = return at once; >0 = also wait for a decision"
    )
    task_id: str | None = Field(default=None, max_length=200, description="Task this is about")
    source: str = Field(default="claude-code", max_length=100)
    idempotency_key: str | None = IDEMPOTENCY_KEY_FIELD
    callback_url: str | None = CALLBACK_URL_FIELD


class ApprovalView(Contract):
    """An approval as a caller sees it."""

    approval_id: str
    status: ApprovalStatus = Field(
        description="pending / approved / rejected / decided / expired / cancelled"
    )
    title: str
    options: list[str]
    chosen_option: str | None = Field(default=None, description="The option applied, if any")
    chosen_index: int | None = None
    decided_by_user_id: int | None = None
    decided_by_username: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    cancel_reason: str | None = None
    expires_at: datetime
    created_at: datetime
    task_id: str | None = None
    callback_url: str | None = Field(
        default=None, description="Where the final record is POSTed when it closes"
    )


def approval_view(record: ApprovalRecord) -> ApprovalView:
    """The caller's view of a stored approval (tools, REST and the decision webhook)."""
    return ApprovalView(
        approval_id=record.approval_id,
        status=record.status,
        title=record.title,
        options=list(record.options),
        chosen_option=record.chosen_option,
        chosen_index=record.chosen_index,
        decided_by_user_id=record.decided_by_user_id,
        decided_by_username=record.decided_by_username,
        decided_at=record.decided_at,
        comment=record.comment,
        cancel_reason=record.cancel_reason,
        expires_at=record.expires_at,
        created_at=record.created_at,
        task_id=record.task_id,
        callback_url=record.callback_url,
    )


class SendApprovalResult(Contract):
    """The original's fields plus the approval id and, when waited for, the decision."""

    success: bool
    event_id: str
    approval_id: str = Field(description="Pass to wait_for_approval / get_approval")
    message: str
    status: ApprovalStatus = ApprovalStatus.PENDING
    approval: ApprovalView | None = Field(default=None, description="Set when wait_seconds > 0")


class WaitForApprovalInput(Contract):
    approval_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    timeout_seconds: float = Field(
        default=50, gt=0, le=120, description="Give up after this; status stays pending"
    )


class WaitForApprovalResult(Contract):
    approval: ApprovalView
    status: ApprovalStatus
    timed_out: bool = Field(description="True when still pending at the timeout: call again")


class ApprovalIdInput(Contract):
    approval_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)


class CancelApprovalInput(Contract):
    approval_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    reason: str | None = Field(default=None, max_length=500, description="Shown on the card")


# --- event status and types -----------------------------------------------------------------


class GetEventStatusInput(Contract):
    event_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)


class EventStatusView(Contract):
    event_id: str
    state: EventState = Field(description="queued / sent / partially_sent / failed / held / …")
    type: EventType | None = None
    telegram_message_ids: list[int] = Field(default_factory=list)
    chat_ids: list[int] = Field(default_factory=list)
    last_error: str | None = None
    submitted_at: datetime | None = None
    updated_at: datetime


class ListEventTypesInput(Contract):
    category: str | None = Field(
        default=None, max_length=100, description="Substring of a category name"
    )


class EventTypeInfo(Contract):
    type: EventType
    category: str
    description: str


class EventTypeList(Contract):
    count: int
    event_types: list[EventTypeInfo]


# --- responses -------------------------------------------------------------------------------


class GetTelegramResponsesInput(Contract):
    limit: int = Field(default=10, ge=1, le=100, description="Newest N responses")


class ClearOldResponsesInput(Contract):
    older_than_hours: int = Field(default=24, ge=1, le=8760)


class ProcessPendingResponsesInput(Contract):
    since_minutes: int = Field(default=10, ge=1, le=1440)


# --- tasks -------------------------------------------------------------------------------------


class GetTaskStatusInput(Contract):
    project_root: str | None = Field(
        default=None, max_length=1000, description="Where .taskmaster/tasks/tasks.json lives"
    )
    task_system: TaskSystem = TaskSystem.BOTH
    status_filter: TodoStatus | None = None
    summary_only: bool = False


class RegisterClaudeTodosInput(Contract):
    todos: list[TodoItem] = Field(max_length=100, description="{id, content, status} each")
    session_id: str = Field(default="default", min_length=1, max_length=100)


class TodoInput(Contract):
    project_root: str | None = Field(default=None, max_length=1000)
    task_system: TaskSystem = TaskSystem.BOTH
    sections: list[str] = Field(
        default_factory=lambda: ["completed", "current", "upcoming", "blocked"],
        description="Any of completed / current / upcoming / blocked",
    )
    limit_completed: int = Field(default=5, ge=1, le=50)
    show_subtasks: bool = False


class NoInput(Contract):
    """This tool takes no arguments."""


# --- resources ---------------------------------------------------------------------------------


class TemplateInfo(Contract):
    """One event type's template (``cctelegram://event-templates``)."""

    type: EventType
    name: str | None = Field(default=None, description="The original's template name, if any")
    category: str
    description: str
    emoji: str
    label: str
    default_severity: Severity
    fields: list[str] = Field(description="The data keys the template shows, in order")


class TemplateCatalogue(Contract):
    """RPC ``cctg.events.rpc.templates``: every template the events service renders with."""

    count: int
    templates: list[TemplateInfo]


class TemplatesRequest(Contract):
    """RPC ``cctg.events.rpc.templates`` takes nothing."""
