"""Approvals: the command that asks people to decide, and the record kept in ``cctg_approvals``."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now
from cctelegram_common.contracts.claude_code import ClaudeCodeCard

DEFAULT_OPTIONS: tuple[str, ...] = ("Approve", "Deny")
ON_TIMEOUT_EXPIRE = "expire"


class ApprovalStatus(StrEnum):
    """pending → approved / rejected / decided (a custom option) / expired / cancelled."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    DECIDED = "decided"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class SubmitApproval(Contract):
    """Command: show an approval card to the approvers. Subject ``cctg.events.approval.submit``.

    Published with ``Nats-Msg-Id`` = ``approval_id``; the events service creates the record
    in ``cctg_approvals`` (key = ``approval_id``) once, whatever the redeliveries.
    """

    approval_id: str = Field(
        pattern=r"^[0-9a-f]{32}$",
        description="32 hex characters; KV key, the card's event id, part of callback_data",
    )
    client_id: str = Field(description="The authenticated caller who owns the approval")
    title: str = Field(min_length=1, max_length=200, description="Headline (any Unicode)")
    description: str = Field(default="", max_length=2000, description="What is to be decided")
    options: tuple[str, ...] = Field(
        default=DEFAULT_OPTIONS, min_length=1, max_length=10, description="One button each"
    )
    approvers: tuple[int, ...] | None = Field(
        default=None, description="Telegram user ids who may decide; None = every allowed user"
    )
    expires_at: datetime = Field(description="When the expiry job applies on_timeout")
    on_timeout: str = Field(
        default=ON_TIMEOUT_EXPIRE, description="'expire' or the option label to apply at expiry"
    )
    details: str | None = Field(
        default=None, max_length=3000, description="Long text shown as an expandable quote"
    )
    allow_text_reply: bool = Field(
        default=True,
        description="A text reply to the card decides (if it names an option) or comments",
    )
    task_id: str | None = Field(default=None, max_length=200)
    source: str = Field(default="claude-code", max_length=100)
    text_reply_decides: str | None = Field(
        default=None,
        description="Option a text reply applies when it names none (e.g. 'Deny': the reply "
        "is the reason); None = such a reply is a comment",
    )
    claude_code: ClaudeCodeCard | None = Field(
        default=None, description="A Claude Code tool use, question, plan or finished session"
    )
    request_id: str | None = None
    submitted_at: datetime = Field(default_factory=utc_now)
    callback_url: str | None = Field(
        default=None, max_length=2000, description="Decision webhook: POST the final record here"
    )


class ApprovalRecord(Contract):
    """Value of ``cctg_approvals[approval_id]``; changed only by compare-and-set."""

    approval_id: str
    client_id: str = Field(description="Owner: only it (or a read-all role) may read or cancel")
    title: str
    description: str = ""
    options: tuple[str, ...]
    approvers: tuple[int, ...] = Field(description="Who may decide (Telegram user ids)")
    status: ApprovalStatus = ApprovalStatus.PENDING
    chosen_option: str | None = Field(default=None, description="The option label applied")
    chosen_index: int | None = None
    decided_by_user_id: int | None = None
    decided_by_username: str | None = None
    decided_at: datetime | None = None
    comment: str | None = Field(default=None, description="A text reply to the card")
    auto_applied: bool = Field(
        default=False, description="Nobody answered in time; on_timeout chose the option"
    )
    cancel_reason: str | None = None
    on_timeout: str = ON_TIMEOUT_EXPIRE
    details: str | None = None
    allow_text_reply: bool = True
    task_id: str | None = None
    source: str = "claude-code"
    text_reply_decides: str | None = None
    claude_code: ClaudeCodeCard | None = None
    chat_ids: tuple[int, ...] = Field(default=(), description="Chats the card went to")
    card_outbox_ids: tuple[str, ...] = Field(default=(), description="One per chat, same order")
    card_text: str = Field(default="", description="The card's HTML, reused when it is edited")
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime
    traceparent: str | None = Field(
        default=None, description="W3C trace context of the request; the decision links to it"
    )
    callback_url: str | None = Field(
        default=None, description="Decision webhook: POST the final record here when it closes"
    )

    @property
    def is_open(self) -> bool:
        return self.status is ApprovalStatus.PENDING


class ApprovalDue(Contract):
    """Scheduled event: an open approval reached its expiry. Subject
    ``cctg.approvals.timeout.<approval_id>``, published by the NATS server itself from the
    schedule the events service stored on ``cctg.approvals.due.<approval_id>``."""

    approval_id: str = Field(description="The approval whose on_timeout rule now applies")
    expires_at: datetime = Field(description="When it was due (to measure lateness)")


class CancelApprovalRequest(Contract):
    """RPC ``cctg.events.rpc.approval_cancel``: withdraw an open approval (owner or read-all)."""

    approval_id: str
    client_id: str = Field(description="Who asks")
    read_all: bool = Field(default=False, description="The caller may act on anyone's approvals")
    reason: str | None = Field(default=None, max_length=500)
