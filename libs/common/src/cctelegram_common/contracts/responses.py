"""People's answers (button presses, text replies, commands) and the queries over them."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now
from cctelegram_common.contracts.files import FileInfo


class ResponseKind(StrEnum):
    BUTTON = "button"
    TEXT = "text"
    COMMAND = "command"


class ResponseRecord(Contract):
    """Event: an allowed user answered. Subject ``cctg.responses.<kind>`` on ``CCTG_RESPONSES``.

    Published with ``Nats-Msg-Id`` = ``response_id`` (``resp-<update_id>``), so a redelivered
    update is recorded once.
    """

    response_id: str = Field(description="resp-<update_id>")
    kind: ResponseKind
    update_id: int
    user_id: int
    username: str | None = None
    chat_id: int
    client_id: str | None = Field(
        default=None, description="Owner of the approval/event answered; None for commands"
    )
    approval_id: str | None = None
    event_id: str | None = None
    task_id: str | None = None
    action: str = Field(description="approve, deny, the option label, comment, or the command")
    option_index: int | None = None
    text: str | None = Field(default=None, description="Text replies and command arguments")
    accepted: bool = Field(
        default=True, description="False when the press came too late or was not allowed"
    )
    bot: str | None = Field(default=None, description="The named bot it came through")
    topic_key: str | None = Field(
        default=None,
        description="The forum topic it came from: project:<name> or session:<key> (routes)",
    )
    files: tuple[FileInfo, ...] = Field(
        default=(), description="Documents and photos sent with the message"
    )
    recorded_at: datetime = Field(default_factory=utc_now)


class ResponsesQuery(Contract):
    """RPC ``cctg.events.rpc.responses_list`` / ``responses_pending`` / ``responses_clear``."""

    client_id: str = Field(description="Who asks; sees only responses to its own requests")
    read_all: bool = Field(default=False, description="The caller may read everyone's responses")
    limit: int = Field(default=10, ge=1, le=100, description="responses_list: newest N")
    since_minutes: int = Field(default=10, ge=1, le=1440, description="responses_pending window")
    older_than_hours: int = Field(default=24, ge=1, le=8760, description="responses_clear age")


class ResponseView(Contract):
    """One response as the tools show it (the original's fields plus links)."""

    id: str
    kind: ResponseKind
    user_id: int
    username: str | None = None
    action: str
    approval_id: str | None = None
    event_id: str | None = None
    task_id: str | None = None
    option_index: int | None = None
    text: str | None = None
    accepted: bool = True
    files: tuple[FileInfo, ...] = Field(
        default=(), description="Documents and photos sent: id, name, type, size"
    )
    timestamp: datetime


class ResponsesPage(Contract):
    """``get_telegram_responses``: newest first."""

    count: int = Field(description="Responses in this page")
    total: int = Field(description="Responses visible to the caller (not cleared)")
    responses: tuple[ResponseView, ...] = ()


class ActionableResponse(Contract):
    action: str = Field(description="approve, deny, or the option label chosen")
    task_id: str | None = None
    approval_id: str | None = None
    user_id: int
    username: str | None = None
    timestamp: datetime
    response_data: dict[str, Any] = Field(default_factory=dict)


class PendingSummary(Contract):
    total_recent_responses: int
    actionable_responses: int
    pending_approvals: int = Field(description="Approve-like answers in the window")
    pending_denials: int = Field(description="Deny-like answers in the window")
    time_window_minutes: int


class PendingResponses(Contract):
    """``process_pending_responses``: what people answered recently that an agent should act on."""

    summary: PendingSummary
    actionable_responses: tuple[ActionableResponse, ...] = ()
    recommendations: tuple[str, ...] = ()


class ClearedResponses(Contract):
    """``clear_old_responses``: hides (for this caller) responses older than the cut-off."""

    deleted_count: int
    message: str
