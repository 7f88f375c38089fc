"""Rendered Telegram operations (the outbox) and the notifier's reports about them."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from cctelegram_common.contracts.base import Contract, utc_now
from cctelegram_common.contracts.files import FileInfo
from cctelegram_common.contracts.routing import BOT_NAME_PATTERN, ForumTopicRef


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


class LinkPreviewOptions(Contract):
    """Telegram's ``LinkPreviewOptions`` object, sent as is."""

    is_disabled: bool | None = Field(default=None, description="No link preview at all")
    url: str | None = Field(default=None, description="The URL to preview instead of the first")
    prefer_small_media: bool | None = None
    prefer_large_media: bool | None = None
    show_above_text: bool | None = None


# Which Bot API method each operation becomes; BotApiOptions fields name the ones they fit.
_SENDS = frozenset({Operation.SEND_MESSAGE, Operation.SEND_DOCUMENT, Operation.SEND_PHOTO})
_TEXT_OPERATIONS = frozenset({Operation.SEND_MESSAGE, Operation.EDIT_MESSAGE_TEXT})


class BotApiOptions(Contract):
    """Optional Bot API parameters beyond those the outbox message names itself.

    Each field is a documented parameter of the Bot API method the operation becomes, sent
    under its own name when set (None leaves it out): nothing else ever reaches Telegram.
    """

    protect_content: bool | None = Field(
        default=None,
        description="sendMessage, sendDocument, sendPhoto: forbid forwarding and saving",
    )
    link_preview_options: LinkPreviewOptions | None = Field(
        default=None, description="sendMessage, editMessageText: how links are previewed"
    )

    def parameters(self, operation: Operation) -> dict[str, Any]:
        """The Bot API parameters these options add to ``operation``'s call."""
        params: dict[str, Any] = {}
        if self.protect_content is not None and operation in _SENDS:
            params["protect_content"] = self.protect_content
        if self.link_preview_options is not None and operation in _TEXT_OPERATIONS:
            params["link_preview_options"] = self.link_preview_options.model_dump(exclude_none=True)
        return params

    def check_fits(self, operation: Operation) -> None:
        if self.protect_content is not None and operation not in _SENDS:
            raise ValueError(f"bot_api.protect_content does not apply to {operation.value}")
        if self.link_preview_options is not None and operation not in _TEXT_OPERATIONS:
            raise ValueError(f"bot_api.link_preview_options does not apply to {operation.value}")


class OutboxBookkeeping(Contract):
    """What the suite notes about an outbox message for itself; never sent to Telegram."""

    digest_of: tuple[str, ...] = Field(
        default=(),
        max_length=100,
        description="A quiet-hours digest: the event ids it summarises (at most 100)",
    )


class OutboxMessage(Contract):
    """One Telegram operation for one chat. Subject ``cctg.outbox.chat.<chat>`` (the default
    bot) or ``cctg.outbox.bot.<bot>.<chat>`` (a named bot).

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
    bot: str | None = Field(
        default=None, pattern=BOT_NAME_PATTERN, description="Named bot; None = the default bot"
    )
    topic: ForumTopicRef | None = Field(
        default=None,
        description="Forum topic found or created by the notifier (wins over message_thread_id)",
    )
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
    bot_api: BotApiOptions = Field(
        default_factory=BotApiOptions,
        description="Further Bot API parameters of the operation's method (typed, sent as is)",
    )
    bookkeeping: OutboxBookkeeping = Field(
        default_factory=OutboxBookkeeping,
        description="The suite's own notes about this message; never sent to Telegram",
    )
    created_at: datetime = Field(default_factory=utc_now)

    @model_validator(mode="before")
    @classmethod
    def _legacy_extra(cls, data: Any) -> Any:
        # Outbox messages stored before ``bot_api``/``bookkeeping`` existed carried one
        # untyped ``extra`` dict; the only key ever written was the digest's ``digest_of``.
        # Anything else in it is refused by the typed fields below, never silently dropped.
        if isinstance(data, dict) and "extra" in data:
            data = dict(data)
            legacy = dict(data.pop("extra") or {})
            if "digest_of" in legacy:
                data["bookkeeping"] = {"digest_of": legacy.pop("digest_of")}
            if legacy:
                data["bot_api"] = legacy
        return data

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
        self.bot_api.check_fits(self.operation)
        return self


def outbox_id(origin: str, chat_id: int | str, part: int | str) -> str:
    """The deterministic id of one outbox message: ``<origin>:<chat>:<part>``.

    ``chat_id`` is the chat id, or a route's token for it (the chat id with the bot and topic
    when they differ from the default route's, so fan-out to one chat through two bots or
    topics yields distinct ids).

    ``origin`` is what the message renders (an event or approval id, ``digest-<id>``,
    ``cmd-<update id>``, ...), ``part`` which piece of it for that chat (a split text's index,
    ``card``, an edit's name). Being deterministic, a re-run of the same work yields the same
    id, which JetStream (``Nats-Msg-Id``) and the notifier (deliveries KV) deduplicate.
    """
    return f"{origin}:{chat_id}:{part}"


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"


class DeliveryReported(Contract):
    """Event: the notifier finished with one outbox message. Subject ``cctg.delivery.reported``."""

    outbox_id: str
    event_id: str | None
    approval_id: str | None = None
    chat_id: int
    bot: str | None = Field(default=None, description="The named bot that sent it (None: default)")
    message_thread_id: int | None = Field(default=None, description="Forum topic it went to")
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
