"""What the sandbox remembers: users, chats, forum topics, messages and files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]

CHAT_KINDS = ("private", "group", "supergroup", "forum", "channel")
CHAT_STATES = ("active", "blocked", "deactivated", "kicked", "migrated")
GENERAL_TOPIC_ID = 1


@dataclass
class User:
    id: int
    first_name: str
    is_bot: bool = False
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def to_api(self) -> JsonDict:
        user: JsonDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class Topic:
    message_thread_id: int
    name: str
    icon_color: int = 0x6FB9F0
    closed: bool = False
    deleted: bool = False

    def to_api(self) -> JsonDict:
        return {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    content: bytes | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    source_url: str | None = None

    @property
    def file_size(self) -> int | None:
        return None if self.content is None else len(self.content)

    def to_document(self) -> JsonDict:
        document: JsonDict = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_name:
            document["file_name"] = self.file_name
        if self.mime_type:
            document["mime_type"] = self.mime_type
        if self.file_size is not None:
            document["file_size"] = self.file_size
        return document

    def to_photo_sizes(self) -> list[JsonDict]:
        size: JsonDict = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 1,
            "height": self.height or 1,
        }
        if self.file_size is not None:
            size["file_size"] = self.file_size
        return [size]


@dataclass
class Chat:
    id: int
    kind: str
    """private, group, supergroup, forum or channel (a forum is a supergroup with topics)."""
    title: str | None = None
    user: User | None = None
    """In a private chat, the person; in a group, who writes and presses by default."""
    username: str | None = None
    state: str = "active"
    migrate_to_chat_id: int | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    next_message_id: int = 1
    created_at: float = 0.0
    _api: JsonDict | None = None

    @property
    def telegram_type(self) -> str:
        return "supergroup" if self.kind == "forum" else self.kind

    @property
    def is_forum(self) -> bool:
        return self.kind == "forum"

    @property
    def display_name(self) -> str:
        if self.title:
            return self.title
        if self.user is not None:
            return " ".join(filter(None, [self.user.first_name, self.user.last_name]))
        return str(self.id)

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def to_api(self) -> JsonDict:
        if self._api is None:
            chat: JsonDict = {"id": self.id, "type": self.telegram_type}
            if self.kind == "private" and self.user is not None:
                chat["first_name"] = self.user.first_name
                if self.user.last_name:
                    chat["last_name"] = self.user.last_name
                if self.user.username:
                    chat["username"] = self.user.username
            else:
                chat["title"] = self.display_name
                if self.username:
                    chat["username"] = self.username
            if self.is_forum:
                chat["is_forum"] = True
            self._api = chat
        return self._api

    def to_full_info(self) -> JsonDict:
        """getChat's ChatFullInfo: the Chat plus the fields every client requires."""
        info = dict(self.to_api())
        info.update(
            accent_color_id=self.id % 7,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        )
        if self.kind == "private":
            info["has_private_forwards"] = False
        return info


@dataclass
class StoredMessage:
    chat: Chat
    message_id: int
    date: int
    sender: User | None
    from_bot: bool
    text: str | None = None
    entities: list[JsonDict] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[JsonDict] = field(default_factory=list)
    file: StoredFile | None = None
    reply_markup: JsonDict | None = None
    thread_id: int | None = None
    reply_to: StoredMessage | None = None
    edit_date: int | None = None
    parse_mode: str | None = None
    source_text: str | None = None
    history: list[JsonDict] = field(default_factory=list)
    deleted: bool = False
    service: JsonDict | None = None

    def content_snapshot(self) -> JsonDict:
        """The editable part of the message, for edit history and 'not modified' checks."""
        return {
            "text": self.text,
            "entities": self.entities,
            "caption": self.caption,
            "caption_entities": self.caption_entities,
            "reply_markup": self.reply_markup,
            "parse_mode": self.parse_mode,
            "source_text": self.source_text,
            "edit_date": self.edit_date,
        }

    def to_api(self, *, with_reply: bool = True) -> JsonDict:
        message: JsonDict = {"message_id": self.message_id}
        chat = self.chat
        if self.sender is not None and chat.kind != "channel":
            message["from"] = self.sender.to_api()
        if chat.kind == "channel":
            message["sender_chat"] = chat.to_api()
        message["chat"] = chat.to_api()
        message["date"] = self.date
        if self.thread_id is not None:
            message["message_thread_id"] = self.thread_id
            if chat.is_forum:
                message["is_topic_message"] = True
        if with_reply and self.reply_to is not None and not self.reply_to.deleted:
            message["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if self.text is not None:
            message["text"] = self.text
            if self.entities:
                message["entities"] = self.entities
        if self.file is not None:
            if self.file.kind == "photo":
                message["photo"] = self.file.to_photo_sizes()
            else:
                message["document"] = self.file.to_document()
        if self.caption:
            message["caption"] = self.caption
            if self.caption_entities:
                message["caption_entities"] = self.caption_entities
        if self.reply_markup is not None:
            message["reply_markup"] = self.reply_markup
        if self.service:
            message.update(self.service)
        return message

    def to_view(self) -> JsonDict:
        """The control API's view: the Telegram message plus how it came to look like this."""
        view = self.to_api()
        view["sender"] = "bot" if self.from_bot else "user"
        view["parse_mode"] = self.parse_mode
        view["source_text"] = self.source_text
        view["edit_history"] = self.history
        view["deleted"] = self.deleted
        if self.file is not None:
            view["file_url"] = f"/sandbox/api/files/{self.file.file_id}"
        return view
