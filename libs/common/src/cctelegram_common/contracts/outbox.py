"""Rendered Telegram operations (the outbox) and the notifier's reports about them."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from cctelegram_common.contracts.base import Contract, utc_now
from cctelegram_common.contracts.files import FileInfo


class Operation(StrEnum):
    SEND_MESSAGE = "send_message"
    SEND_DOCUMENT = "send_document"
    SEND_PHOTO = "send_photo"
    EDIT_MESSAGE_TEXT = "edit_message_text"
    EDIT_REPLY_MARKUP = "edit_reply_markup"
    ANSWER_CALLBACK_QUERY = "answer_callback_query"


class InlineButton(Contract):
    text: str = Field(min_length=1, max_length=64)
    callback_data: str | None = Field(default=None, description="1-64 bytes of UTF-8")
    url: str | None = None


class OutboxMessage(Contract):
    """One Telegram operation for one chat. Subject ``cctg.outbox.chat.<chat>``.

    ``outbox_id`` is deterministic (event id + chat + part) and is the ``Nats-Msg-Id``,
    the deliveries-KV key and therefore the notifier's idempotency key.
    """

    outbox_id: str = Field(description="Deterministic id; dedup and idempotency key")
    operation: Operation
    chat_id: int
    event_id: str | None = Field(default=None, description="The event this renders")
    approval_id: str | None = None
    text: str | None = Field(default=None, description="Telegram HTML (or plain) text")
    parse_mode: str | None = Field(default="HTML")
    keyboard: tuple[tuple[InlineButton, ...], ...] | None = Field(
        default=None, description="Inline keyboard rows; None = no keyboard (edit: remove it)"
    )
    message_thread_id: int | None = None
    reply_to_message_id: int | None = None
    disable_notification: bool = False
    # Edits name their target either by Telegram id or by the outbox message that sent it.
    target_message_id: int | None = None
    target_outbox_id: str | None = None
    # answerCallbackQuery
    callback_query_id: str | None = None
    show_alert: bool = False
    # documents and photos: a URL or file_id, or bytes kept in the object store
    file_ref: str | None = None
    file_name: str | None = None
    stored_file: FileInfo | None = Field(
        default=None,
        description="A file in the cctg_files object store: the notifier uploads its bytes",
    )
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _operation_has_what_it_needs(self) -> "OutboxMessage":
        if self.operation is Operation.SEND_MESSAGE and not self.text:
            raise ValueError("send_message needs text")
        if self.operation in (Operation.EDIT_MESSAGE_TEXT, Operation.EDIT_REPLY_MARKUP) and (
            self.target_message_id is None and self.target_outbox_id is None
        ):
            raise ValueError("an edit needs target_message_id or target_outbox_id")
        if self.operation is Operation.ANSWER_CALLBACK_QUERY and not self.callback_query_id:
            raise ValueError("answer_callback_query needs callback_query_id")
        if self.operation in (Operation.SEND_DOCUMENT, Operation.SEND_PHOTO) and (
            (self.file_ref is None) == (self.stored_file is None)
        ):
            raise ValueError("a document or photo needs file_ref or stored_file (one of them)")
        return self


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"


class DeliveryReported(Contract):
    """Event: the notifier finished with one outbox message. Subject ``cctg.delivery.reported``."""

    outbox_id: str
    event_id: str | None
    approval_id: str | None = None
    chat_id: int
    operation: Operation
    outcome: DeliveryOutcome
    telegram_message_ids: tuple[int, ...] = ()
    error: str | None = Field(default=None, description="Telegram's description, when failed")
    error_code: int | None = None
    attempts: int = 1
    migrated_to_chat_id: int | None = None
    accepted_at: datetime = Field(default_factory=utc_now)
    submitted_at: datetime | None = Field(
        default=None, description="When the outbox message was created (for latency)"
    )


class DeadLetter(Contract):
    """An outbox message that could not be delivered. Subject ``cctg.deadletter.outbox``."""

    outbox_message: OutboxMessage
    reason: str
    error_code: int | None = None
    attempts: int
    dead_at: datetime = Field(default_factory=utc_now)


class DeliveryRecord(Contract):
    """Value in the ``cctg_deliveries`` KV (key = outbox id): what Telegram already accepted."""

    outbox_id: str
    chat_id: int
    telegram_message_ids: tuple[int, ...]
    recorded_at: datetime = Field(default_factory=utc_now)
