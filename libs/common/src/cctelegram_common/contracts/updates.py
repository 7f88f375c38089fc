"""Inbound Telegram updates as they travel from the Telegram edge (the notifier's poller, the
gateway's webhook route) to the events service: typed, so no consumer parses Telegram JSON.

``InboundUpdate.from_telegram`` is the one translation of a Telegram ``Update`` into these
contracts; it runs at the edge that received the update.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from cctelegram_common.contracts.base import Contract, utc_now
from cctelegram_common.contracts.files import FileInfo


class TelegramPerson(Contract):
    """Who pressed, wrote or changed (Telegram's ``from``)."""

    user_id: int = Field(description="Telegram user id (0 when Telegram named nobody)")
    username: str | None = None
    first_name: str | None = None


class ButtonPressed(Contract):
    """A person pressed an inline button (Telegram ``callback_query``)."""

    kind: Literal["button_pressed"] = "button_pressed"
    callback_query_id: str = Field(description="To answer the press (answerCallbackQuery)")
    chat_id: int = Field(description="The chat of the message with the button")
    message_id: int | None = Field(default=None, description="The message with the button")
    person: TelegramPerson
    data: str = Field(description="The button's callback_data ('' when it had none)")
    message_thread_id: int | None = Field(
        default=None, description="The forum topic it happened in (None: not inside a topic)"
    )


class TextReceived(Contract):
    """A person wrote in a chat (Telegram ``message``), possibly replying to a message."""

    kind: Literal["text_received"] = "text_received"
    chat_id: int
    message_id: int
    person: TelegramPerson
    text: str = Field(description="The text, else the caption, else ''")
    reply_to_message_id: int | None = Field(
        default=None, description="The message this one replies to, when it is a reply"
    )
    message_thread_id: int | None = Field(
        default=None, description="The forum topic it happened in (None: not inside a topic)"
    )


class CommandIssued(Contract):
    """A person sent a bot command: a message whose text starts with ``/``."""

    kind: Literal["command_issued"] = "command_issued"
    chat_id: int
    message_id: int
    person: TelegramPerson
    command: str = Field(description="Lower-cased, with its '/', without any '@botname'")
    argument: str = Field(default="", description="The rest of the text after the command")
    message_thread_id: int | None = Field(
        default=None, description="The forum topic it happened in (None: not inside a topic)"
    )


class MemberChanged(Contract):
    """The bot's membership in a chat changed (Telegram ``my_chat_member``): blocked, kicked,
    unblocked, added."""

    kind: Literal["member_changed"] = "member_changed"
    chat_id: int
    person: TelegramPerson = Field(description="Who made the change")
    old_status: str | None = None
    new_status: str | None = Field(default=None, description="member, kicked, left, ...")


class OtherUpdate(Contract):
    """Any other update (edited messages, reactions, ...), or one that could not be read."""

    kind: Literal["other"] = "other"
    update_type: str = Field(description="The Update's field naming its kind, or 'unreadable'")


TelegramEvent = Annotated[
    ButtonPressed | TextReceived | CommandIssued | MemberChanged | OtherUpdate,
    Field(discriminator="kind"),
]


class InboundUpdate(Contract):
    """One Telegram ``Update``, typed. Subject ``cctg.telegram.updates``.

    Published with ``Nats-Msg-Id`` = ``tg-update-<update_id>`` so a re-polled update is
    stored once. A publisher that sends only ``update`` (the raw Update, as before ``event``
    existed) still works: ``event`` is then read from it when the message is parsed.
    """

    update_id: int
    event: TelegramEvent = Field(description="What happened, typed; consumers read only this")
    update: dict[str, Any] | None = Field(
        default=None, description="The Update exactly as Telegram sent it, kept for the record"
    )
    received_at: datetime = Field(default_factory=utc_now)
    source: str = Field(default="polling", description="polling or webhook")
    bot: str | None = Field(
        default=None, description="The named bot that received it (None: the default bot)"
    )
    topic_key: str | None = Field(
        default=None,
        description="The forum topic it came from, when the notifier made that topic for a "
        "route (project:<name> or session:<key>)",
    )
    files: tuple[FileInfo, ...] = Field(
        default=(),
        description="The message's document or photo, fetched by the notifier and stored",
    )

    @model_validator(mode="before")
    @classmethod
    def _event_from_raw_update(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("event") is None and "update" in data:
            raw = data["update"]
            data = {**data, "event": telegram_event(raw if isinstance(raw, dict) else {})}
        return data

    @classmethod
    def from_telegram(
        cls,
        update: dict[str, Any],
        *,
        source: str,
        bot: str | None = None,
        topic_key: str | None = None,
        files: tuple[FileInfo, ...] = (),
    ) -> "InboundUpdate":
        """The edge's translation of a Telegram ``Update`` (raises ``KeyError`` or pydantic's
        ``ValidationError`` when it has no usable ``update_id``). ``bot`` names the bot that
        received it; ``topic_key`` is the route topic its ``message_thread_id`` stands for."""
        return cls(
            update_id=update["update_id"],
            event=telegram_event(update),
            update=update,
            source=source,
            bot=bot,
            topic_key=topic_key,
            files=files,
        )

    @property
    def msg_id(self) -> str:
        """Its ``Nats-Msg-Id``: polled, re-polled or posted by webhook, stored once."""
        return update_msg_id(self.update_id, self.bot)

    @property
    def key(self) -> str:
        """Unique across bots (update ids are per bot)."""
        return str(self.update_id) if self.bot is None else f"{self.bot}-{self.update_id}"


def update_msg_id(update_id: int, bot: str | None = None) -> str:
    return f"tg-update-{update_id}" if bot is None else f"tg-update-{bot}-{update_id}"


def _person(raw: Any) -> TelegramPerson:
    raw = raw if isinstance(raw, dict) else {}
    return TelegramPerson(
        user_id=int(raw.get("id", 0)),
        username=raw.get("username"),
        first_name=raw.get("first_name"),
    )


def _chat_id(holder: Any, default: int) -> int:
    chat = holder.get("chat") if isinstance(holder, dict) else None
    return int((chat if isinstance(chat, dict) else {}).get("id", default))


def _thread_of(message: Any) -> int | None:
    """The forum topic a message is in: its thread id when the message is a topic message
    (or the chat a forum), else None (a reply thread in a plain group is no topic)."""
    if not isinstance(message, dict):
        return None
    thread = message.get("message_thread_id")
    chat = message.get("chat")
    in_topic = message.get("is_topic_message") or (
        chat.get("is_forum") if isinstance(chat, dict) else False
    )
    return thread if isinstance(thread, int) and in_topic else None


def _message_event(message: dict[str, Any]) -> TextReceived | CommandIssued:
    person = _person(message.get("from"))
    chat_id = _chat_id(message, person.user_id)
    message_id = int(message.get("message_id", 0))
    text = str(message.get("text") or message.get("caption") or "")
    if text.startswith("/"):
        head, _, argument = text.strip().partition(" ")
        return CommandIssued(
            chat_id=chat_id,
            message_id=message_id,
            person=person,
            command=head.split("@", 1)[0].lower(),
            argument=argument,
            message_thread_id=_thread_of(message),
        )
    replied = message.get("reply_to_message")
    return TextReceived(
        chat_id=chat_id,
        message_id=message_id,
        person=person,
        text=text,
        reply_to_message_id=(
            int(replied.get("message_id", 0)) if isinstance(replied, dict) else None
        ),
        message_thread_id=_thread_of(message),
    )


def telegram_event(update: dict[str, Any]) -> TelegramEvent:
    """What a Telegram ``Update`` says happened. Never raises: an update whose parts cannot be
    read is ``OtherUpdate(update_type="unreadable")``."""
    try:
        callback = update.get("callback_query")
        if isinstance(callback, dict):
            person = _person(callback.get("from"))
            message = callback.get("message")
            return ButtonPressed(
                callback_query_id=str(callback.get("id", "")),
                chat_id=_chat_id(message, person.user_id),
                message_id=(
                    int(message["message_id"])
                    if isinstance(message, dict) and "message_id" in message
                    else None
                ),
                person=person,
                data=str(callback.get("data") or ""),
                message_thread_id=_thread_of(message),
            )
        message = update.get("message")
        if isinstance(message, dict):
            return _message_event(message)
        member = update.get("my_chat_member")
        if isinstance(member, dict):
            old = member.get("old_chat_member")
            new = member.get("new_chat_member")
            return MemberChanged(
                chat_id=int((member.get("chat") or {})["id"]),
                person=_person(member.get("from")),
                old_status=old.get("status") if isinstance(old, dict) else None,
                new_status=new.get("status") if isinstance(new, dict) else None,
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        return OtherUpdate(update_type="unreadable")
    kinds = [key for key in update if key != "update_id"]
    return OtherUpdate(update_type=kinds[0] if kinds else "empty")
