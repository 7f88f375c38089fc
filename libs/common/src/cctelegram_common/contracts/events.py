"""Notification commands: what callers submit and how the events service reports on it."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.files import FileInfo


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class SubmitEvent(Contract):
    """Command: render and deliver one notification. Subject ``cctg.events.submit``.

    Published with ``Nats-Msg-Id`` = ``event_id`` so a retried publish is stored once.
    """

    event_id: str = Field(description="Unique id of this event; also the JetStream dedup id")
    type: EventType = Field(description="One of the 48 CCTelegram event types")
    title: str = Field(min_length=1, max_length=200, description="Short headline (any Unicode)")
    description: str = Field(
        default="", max_length=4000, description="Body text (any Unicode, rendered escaped)"
    )
    task_id: str | None = Field(default=None, max_length=200, description="Task this is about")
    source: str = Field(default="claude-code", max_length=100, description="Who sent it")
    data: dict[str, Any] = Field(
        default_factory=dict, description="Type-specific fields (status, results, branch_name…)"
    )
    severity: Severity | None = Field(default=None, description="Overrides the type's default")
    client_id: str = Field(description="The authenticated caller (API key's client)")
    request_id: str | None = Field(default=None, description="Correlates logs and audit")
    chat_ids: tuple[int, ...] | None = Field(
        default=None, description="Explicit target chats; default: every allowed user's chat"
    )
    project: str | None = Field(
        default=None, max_length=100, description="Project it is about (routes select by it)"
    )
    session_key: str | None = Field(
        default=None, max_length=200, description="Claude Code session (per-session topics)"
    )
    session_tag: str | None = Field(
        default=None, max_length=16, description="The session's short tag (its topic's name)"
    )
    attachment: FileInfo | None = Field(
        default=None,
        description="A stored file sent with the rendered text as its caption (send_file)",
    )
    submitted_at: datetime = Field(default_factory=utc_now)


class EventState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    PARTIALLY_SENT = "partially_sent"
    FAILED = "failed"
    HELD = "held"
    # Not sent on purpose: the delivery mode (local / mute) filtered it out.
    SUPPRESSED = "suppressed"


class EventStatus(Contract):
    """What happened to one event (value of the ``cctg_event_status`` KV, keyed by id)."""

    event_id: str
    client_id: str
    state: EventState = Field(description="queued / sent / partially_sent / failed / held")
    type: EventType | None = None
    outbox_ids: tuple[str, ...] = Field(default=(), description="One per rendered message")
    telegram_message_ids: tuple[int, ...] = Field(default=(), description="Accepted by Telegram")
    chat_ids: tuple[int, ...] = ()
    last_error: str | None = None
    submitted_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utc_now)
    delivered_outbox_ids: tuple[str, ...] = Field(
        default=(), description="Outbox messages Telegram accepted"
    )
    failed_outbox_ids: tuple[str, ...] = Field(
        default=(), description="Outbox messages that failed for good"
    )
